//! IMAP COMPRESS=DEFLATE (RFC 4978): raw DEFLATE both ways (§4), with a
//! bound on how far the peer's bytes may inflate.
//!
//! DEFLATE reaches about 1000:1, so without a bound a few KiB on the wire
//! become hundreds of MiB of command lines that the one thread inflates,
//! scans and answers: a cheap request made expensive. Every
//! [`WINDOW`] inflated bytes must have cost the peer at least
//! 1/[`MAX_RATIO`] as many bytes on the wire, or the read fails with
//! `InvalidData` (the session answers `BYE`). Real traffic is far below:
//! a client flushes after each command (§4), so a command compresses a few
//! times at most; encrypted messages hardly at all; even plain text and
//! logs stay under 20:1.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, BufReader, ReadHalf, WriteHalf};

use super::Conn;

/// Inflated bytes per ratio check.
pub const WINDOW: u64 = 256 * 1024;
/// Most inflated bytes per wire byte within one window.
pub const MAX_RATIO: u64 = 32;

/// The ratio check without I/O: `wire_total` is every wire byte read so
/// far, `inflated` what one read produced.
#[derive(Default)]
pub struct RatioGuard {
    inflated: u64,
    wire_at_start: u64,
}

impl RatioGuard {
    /// `false` when the window just completed inflated more than
    /// [`MAX_RATIO`] times its wire bytes.
    pub fn allow(&mut self, inflated: usize, wire_total: u64) -> bool {
        self.inflated += inflated as u64;
        if self.inflated < WINDOW {
            return true;
        }
        let wire = wire_total.saturating_sub(self.wire_at_start);
        let ok = self.inflated <= wire.saturating_mul(MAX_RATIO);
        self.inflated = 0;
        self.wire_at_start = wire_total;
        ok
    }
}

/// The read half with a count of the bytes it delivered.
pub struct Counted {
    inner: ReadHalf<Conn>,
    n: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.n.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }
}

/// `flush` does a sync flush so every response leaves at once.
pub struct Deflate {
    rd: async_compression::futures::bufread::DeflateDecoder<BufReader<Counted>>,
    wr: async_compression::futures::write::DeflateEncoder<WriteHalf<Conn>>,
    wire: Arc<AtomicU64>,
    guard: RatioGuard,
}

impl Deflate {
    pub fn new(inner: Conn) -> Deflate {
        let (r, w) = futures_lite::io::split(inner);
        let wire = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            inner: r,
            n: wire.clone(),
        };
        let mut rd =
            async_compression::futures::bufread::DeflateDecoder::new(BufReader::new(counted));
        rd.multiple_members(true);
        Deflate {
            rd,
            wr: async_compression::futures::write::DeflateEncoder::new(w),
            wire,
            guard: RatioGuard::default(),
        }
    }

    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.rd).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            if !self.guard.allow(*n, self.wire.load(Ordering::Relaxed)) {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "compressed input inflates too far",
                )));
            }
        }
        r
    }

    pub fn writer(
        &mut self,
    ) -> Pin<&mut async_compression::futures::write::DeflateEncoder<WriteHalf<Conn>>> {
        Pin::new(&mut self.wr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_checked_per_window() {
        let mut g = RatioGuard::default();
        // A window at exactly the ratio passes; one byte short of wire fails.
        let wire_needed = WINDOW / MAX_RATIO + 1;
        assert!(g.allow((WINDOW - 1) as usize, 0));
        assert!(g.allow(1, wire_needed));
        assert!(g.allow(WINDOW as usize / 2, wire_needed));
        assert!(!g.allow(WINDOW as usize / 2, wire_needed + 1));
        // Credit does not carry over: after a window of plain bytes, a
        // bomb window still fails.
        let mut g = RatioGuard::default();
        assert!(g.allow(WINDOW as usize, WINDOW));
        assert!(!g.allow(WINDOW as usize, WINDOW + 10));
        // Small reads below a window are never refused.
        let mut g = RatioGuard::default();
        for _ in 0..1000 {
            assert!(g.allow(100, 0));
        }
    }
}
