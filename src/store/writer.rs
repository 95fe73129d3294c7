//! The store thread: every durable index commit runs here, so the event
//! loop never waits for an fsync (issue 10, "disk off the loop"). Jobs run
//! one at a time in arrival order; the caller awaits the result on the loop.
//! Reads stay on the loop (redb's MVCC: a reader never waits for the
//! writer's commit).

use std::sync::mpsc;
use std::sync::Arc;

use super::Store;

type Job = Box<dyn FnOnce(&Store) + Send>;

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Start the store thread for `store`.
    pub fn spawn(store: Arc<Store>) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                for job in rx {
                    job(&store);
                }
            })?;
        Ok(Writer { tx })
    }

    /// Queue `f` on the store thread without waiting for it (work whose
    /// result nobody waits for, such as queueing push notifications).
    pub fn submit(&self, f: impl FnOnce(&Store) + Send + 'static) {
        if self.tx.send(Box::new(f)).is_err() {
            panic!("the store thread has stopped");
        }
    }

    /// Run `f` on the store thread and await its result.
    pub async fn run<R: Send + 'static>(&self, f: impl FnOnce(&Store) -> R + Send + 'static) -> R {
        let (tx, rx) = async_channel::bounded(1);
        let job: Job = Box::new(move |s| {
            let _ = tx.send_blocking(f(s));
        });
        if self.tx.send(job).is_err() {
            panic!("the store thread has stopped");
        }
        match rx.recv().await {
            Ok(r) => r,
            Err(_) => panic!("the store thread dropped a job"),
        }
    }
}
