//! One worker thread for the CPU-heavy steps over big messages (policy
//! check, header rewrite, DKIM hashing, FETCH parsing and decoding, SEARCH
//! scans): the event loop hands a job over and awaits its result.
//!
//! Why one thread and not `blocking::unblock`: each pool thread gets its
//! own malloc arena, where freed multi-MiB buffers stay resident (see
//! `hasher`); and one thread bounds what hostile big messages can take to
//! one core, whoever sends them. Jobs run in the order they come.

use std::sync::OnceLock;

type Job = Box<dyn FnOnce() + Send>;

fn queue() -> &'static async_channel::Sender<Job> {
    static Q: OnceLock<async_channel::Sender<Job>> = OnceLock::new();
    Q.get_or_init(|| {
        let (tx, rx) = async_channel::unbounded::<Job>();
        std::thread::Builder::new()
            .name("cpu".into())
            .spawn(move || {
                while let Ok(job) = rx.recv_blocking() {
                    job();
                }
            })
            .expect("spawn the cpu thread");
        tx
    })
}

/// Run `f` on the cpu thread and return its result. The queue is not
/// bounded here: each caller holds a connection slot (and large bodies
/// a big-body permit) while it waits, which bounds it.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = async_channel::bounded(1);
    let job: Job = Box::new(move || {
        let _ = tx.send_blocking(f());
    });
    queue()
        .send(job)
        .await
        .expect("the cpu thread's queue is never closed");
    rx.recv().await.expect("the cpu thread ran the job")
}

#[cfg(test)]
mod tests {
    #[test]
    fn jobs_run_in_order_on_one_thread() {
        let names: Vec<String> = futures_lite::future::block_on(async {
            let mut v = Vec::new();
            for i in 0..3 {
                v.push(
                    super::run(move || {
                        format!("{i}:{}", std::thread::current().name().unwrap_or(""))
                    })
                    .await,
                );
            }
            v
        });
        assert_eq!(names, ["0:cpu", "1:cpu", "2:cpu"]);
    }
}
