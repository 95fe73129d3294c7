//! The iroh relay (protocol v3, iroh-relay 0.35), served from the relay
//! itself: Delta Chat's webxdc realtime channels reach the peer through it
//! when no direct path exists, and find each other's addresses over it.
//!
//! The HTTP service answers `GET /relay` with `Upgrade: iroh derp http` by
//! handing the connection over (`server.rs` joins the two); from there this
//! module answers `101`, checks the client's signed ClientInfo
//! (`handshake`), registers its key (`registry`) and forwards SendPacket →
//! RecvPacket between connected keys. Frames are decoded by `frame`, which
//! does no I/O.
//!
//! Bounds: one slot per client (`iroh_relay_max_clients`), frames of at
//! most 64 KiB plus a key, a send queue of [`registry::QUEUE_BYTES`] per
//! client (dropped beyond), 10 s for the handshake,
//! `iroh_relay_idle_timeout` between frames (we ping at a third of it, at
//! most every 15 s), 10 s per write.
//! Nothing is stored; only counters (`relay::stats`).

pub mod frame;
pub mod handshake;
pub mod registry;

use std::rc::Rc;
use std::time::Duration;

use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::net::{timeout, Stream};
use crate::relay::stats::add;
use crate::relay::{ConnGuard, Ctx, IpSlot};
use frame::{Frame, FrameError, Key};
pub use registry::Registry;

/// The upgrade token of the relay protocol (iroh-relay `http.rs`).
pub const UPGRADE: &str = "iroh derp http";
/// The client must send its ClientInfo within this (iroh-relay: 10 s).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Each write must finish within this; a client that does not read is cut.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to receive the rest of a frame once its header arrived.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);
/// Upstream pings every 15 s.
pub const MAX_PING_INTERVAL: Duration = Duration::from_secs(15);
/// Frames, or payload bytes, read back to back before yielding to other
/// connections (their writers must get to drain what was queued for them:
/// a quarter of a send queue per turn keeps a fast sender from filling a
/// reader's queue in one go).
const FRAMES_PER_YIELD: u32 = 32;
const BYTES_PER_YIELD: usize = registry::QUEUE_BYTES / 4;

/// Why a connection ends; the text goes to the client in a Health frame.
enum End {
    /// The peer closed or a read failed: nothing to tell.
    Gone,
    Protocol(String),
}

impl From<FrameError> for End {
    fn from(e: FrameError) -> End {
        End::Protocol(e.to_string())
    }
}

/// Read one frame's header and payload, waiting at most `wait` for the
/// header; `first`: this must be the ClientInfo, judged from the header.
async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    wait: Duration,
    payload: &mut Vec<u8>,
    first: bool,
) -> Result<u8, End> {
    let mut h = [0u8; frame::HEADER_LEN];
    match timeout(wait, r.read_exact(&mut h)).await {
        Some(Ok(())) => {}
        _ => return Err(End::Gone),
    }
    if first && h[0] != frame::CLIENT_INFO {
        return Err(End::Protocol(
            handshake::HandshakeError::NotClientInfo.to_string(),
        ));
    }
    let (typ, len) = frame::header(&h)?;
    if first && len > frame::MAX_CLIENT_INFO_LEN {
        return Err(FrameError::TooLarge(len as u32).into());
    }
    payload.clear();
    payload.resize(len, 0);
    match timeout(FRAME_TIMEOUT, r.read_exact(payload)).await {
        Some(Ok(())) => Ok(typ),
        _ => Err(End::Gone),
    }
}

async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, b: &[u8]) -> bool {
    let io = async {
        w.write_all(b).await?;
        w.flush().await
    };
    matches!(timeout(WRITE_TIMEOUT, io).await, Some(Ok(())))
}

fn ping_interval(idle: Duration) -> Duration {
    (idle / 3)
        .min(MAX_PING_INTERVAL)
        .max(Duration::from_millis(500))
}

/// Serve one upgraded connection. `http_slot` (the HTTP connection slot)
/// is given back once the relay's own slot is taken; `ip` (the per-address
/// slot of unauthenticated connections) once the client proved its key.
pub async fn serve(
    ctx: Rc<Ctx>,
    reg: Rc<Registry>,
    mut s: Stream,
    http_slot: ConnGuard,
    mut ip: IpSlot,
) {
    let stats = &ctx.realtime;
    let Some(_slot) = ConnGuard::try_new(&stats.iroh_clients, ctx.cfg.iroh_relay_max_clients)
    else {
        let _ = s
            .send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\nrelay is at capacity")
            .await;
        return;
    };
    drop(http_slot);
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: {UPGRADE}\r\nConnection: Upgrade\r\n\r\n"
    );
    if s.send(head.as_bytes()).await.is_err() {
        return;
    }
    // Bytes after the request head already belong to the first frame.
    let early = s.take_buffered();
    let (r, mut w) = futures_lite::io::split(s.take_conn());
    let mut r = futures_lite::io::Cursor::new(early).chain(r);

    let mut payload = Vec::new();
    let first = async {
        let typ = read_frame(&mut r, HANDSHAKE_TIMEOUT, &mut payload, true).await?;
        let f = frame::body(typ, &payload)?;
        handshake::verify(&f).map_err(|e| End::Protocol(e.to_string()))
    };
    let key: Key = match first.await {
        Ok(k) => k,
        Err(end) => {
            add(&stats.iroh_refused, 1);
            if let End::Protocol(why) = end {
                log::debug!("iroh relay: handshake refused: {why}");
                let _ = write_all(&mut w, &frame::to_vec(&Frame::Health(why.as_bytes()))).await;
            }
            let _ = timeout(WRITE_TIMEOUT, w.close()).await;
            return;
        }
    };
    ip.release();
    add(&stats.iroh_accepted, 1);
    let (id, outbox) = reg.register(key);
    log::debug!("iroh relay: client connected ({} now)", reg.len());

    let idle = Duration::from_secs(ctx.cfg.iroh_relay_idle_timeout);
    let reader = async {
        let (mut n, mut bytes) = (0u32, 0usize);
        loop {
            let res = match read_frame(&mut r, idle, &mut payload, false).await {
                Ok(typ) => frame::body(typ, &payload).map_err(End::from),
                Err(e) => Err(e),
            };
            let f = match res {
                Ok(f) => f,
                Err(End::Gone) => return,
                Err(End::Protocol(why)) => {
                    outbox.close_with(&why);
                    return futures_lite::future::pending().await;
                }
            };
            match f {
                Frame::SendPacket { dst, data } => {
                    reg.forward(stats, &key, dst, data);
                }
                Frame::Ping(d) => {
                    outbox.push(&Frame::Pong(d));
                }
                Frame::Pong(_) | Frame::KeepAlive | Frame::NotePreferred(_) | Frame::Health(_) => {}
                Frame::ClientInfo { .. }
                | Frame::RecvPacket { .. }
                | Frame::PeerGone(_)
                | Frame::Restarting { .. } => {
                    outbox.close_with("a client does not send this frame type");
                    return futures_lite::future::pending().await;
                }
            }
            n += 1;
            bytes += payload.len();
            // An idle client keeps no packet-sized buffer.
            if payload.capacity() > 4096 {
                payload = Vec::new();
            }
            if n >= FRAMES_PER_YIELD || bytes >= BYTES_PER_YIELD {
                (n, bytes) = (0, 0);
                futures_lite::future::yield_now().await;
            }
        }
    };
    let writer = async {
        let rng = ring::rand::SystemRandom::new();
        let every = ping_interval(idle);
        loop {
            let woke = timeout(every, outbox.wait()).await.is_some();
            if !woke && outbox.is_empty() {
                let mut d = [0u8; 8];
                let _ = ring::rand::SecureRandom::fill(&rng, &mut d);
                outbox.push(&Frame::Ping(d));
            }
            let batch = outbox.take();
            if !batch.is_empty() && !write_all(&mut w, &batch).await {
                return;
            }
            if outbox.is_closing() && outbox.is_empty() {
                let _ = timeout(WRITE_TIMEOUT, w.close()).await;
                return;
            }
        }
    };
    futures_lite::future::or(reader, writer).await;
    reg.unregister(&key, id);
    log::debug!("iroh relay: client left ({} now)", reg.len());
}
