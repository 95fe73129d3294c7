//! The relay's side of `chatrelay backup` through the control socket
//! (`backup <without messages 0|1> <config path|->`): the archive is
//! written on the blocking pool straight into the socket, never on the
//! event loop. One backup at a time; a reader that stops reading for
//! [`STALL`] ends it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;

const STALL: Duration = Duration::from_secs(60);
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Serve one `backup` command on `conn` (the reply line `ok`, then the
/// archive, or `error ...`).
pub async fn serve(store: Arc<Store>, conn: async_net::unix::UnixStream, args: &[&str]) {
    use std::os::fd::AsFd;
    let (without, config) = match args {
        [w, c] => (*w == "1", (*c != "-").then(|| PathBuf::from(c))),
        _ => {
            reply_error(&conn, "usage: backup 0|1 CONFIG|-").await;
            return;
        }
    };
    if RUNNING.swap(true, Ordering::SeqCst) {
        reply_error(&conn, "a backup is already running").await;
        return;
    }
    // The blocking thread writes through its own descriptor of the socket.
    let fd = match conn.as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => {
            RUNNING.store(false, Ordering::SeqCst);
            log::error!("backup: {e}");
            return;
        }
    };
    drop(conn);
    let opts = super::create::Options {
        without_messages: without,
        config,
    };
    let r = blocking::unblock(move || -> Result<super::create::Summary, String> {
        let s = std::os::unix::net::UnixStream::from(fd);
        s.set_nonblocking(false).map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(STALL))
            .map_err(|e| e.to_string())?;
        let mut w = std::io::BufWriter::with_capacity(64 * 1024, s);
        w.write_all(b"ok\n").map_err(|e| e.to_string())?;
        super::create::write(&store, &opts, w)
    })
    .await;
    RUNNING.store(false, Ordering::SeqCst);
    match r {
        Ok(s) => log::info!(
            "backup: {} files, {} bytes ({} bodies, {} expunged during the backup)",
            s.files,
            s.bytes,
            s.bodies,
            s.gone
        ),
        Err(e) => log::error!("backup failed: {e}"),
    }
}

async fn reply_error(conn: &async_net::unix::UnixStream, e: &str) {
    use futures_lite::io::AsyncWriteExt;
    let mut c = conn.clone();
    let _ = crate::net::timeout(
        Duration::from_secs(5),
        c.write_all(format!("error {e}\n").as_bytes()),
    )
    .await;
}
