//! Line framing without I/O: bytes go in as they arrive, lines of at most
//! a given length come out (CRLF or bare LF ends a line; RFC 5321 §2.3.8,
//! RFC 9051 §2.2 — the protocols decide what a bare LF means, so the ending
//! is reported). A line over the limit is consumed to its end without being
//! kept: what is held stays bounded by the limit plus one read, whatever
//! the peer sends. Scanning resumes where it stopped, so a line that
//! arrives in n pieces costs O(length), not O(length × n).

/// What [`Lines::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line without its CRLF (or bare LF).
    Ok(Vec<u8>),
    /// The line exceeded the limit; the rest of it up to the newline was
    /// discarded. Carries the line's length (a CR of its ending that
    /// arrived before the cut counts too).
    TooLong(usize),
    /// The peer closed the connection.
    Eof,
}

/// How much consumed input may sit before the buffer is shifted.
const COMPACT_AFTER: usize = 4096;

#[derive(Default)]
pub struct Lines {
    buf: Vec<u8>,
    start: usize,
    /// How far into `buf[start..]` no newline was found.
    scanned: usize,
    /// Bytes of the current line already thrown away (an over-long line).
    discarded: usize,
    /// Whether the last line returned ended in CRLF (not a bare LF).
    pub last_crlf: bool,
}

impl Lines {
    pub fn new() -> Lines {
        Lines {
            last_crlf: true,
            ..Default::default()
        }
    }

    /// Append received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete line of at most `max` bytes, or `None` when more
    /// input is needed.
    pub fn next(&mut self, max: usize) -> Option<Line> {
        let avail = &self.buf[self.start..];
        let Some(i) = memchr::memchr(b'\n', &avail[self.scanned..]) else {
            self.scanned = avail.len();
            if self.scanned > max + 2 {
                // Drop what we have and keep discarding until the newline.
                self.discarded = self.discarded.saturating_add(self.scanned);
                self.start = self.buf.len();
                self.compact();
            }
            return None;
        };
        let end = self.scanned + i;
        self.last_crlf = end > 0 && avail[end - 1] == b'\r';
        let line_end = if self.last_crlf { end - 1 } else { end };
        let out = if self.discarded > 0 || line_end > max {
            Line::TooLong(self.discarded.saturating_add(line_end))
        } else {
            Line::Ok(avail[..line_end].to_vec())
        };
        self.start += end + 1;
        self.scanned = 0;
        self.discarded = 0;
        self.compact();
        Some(out)
    }

    /// Take up to `n` buffered bytes (literals, bodies), appending to `dst`.
    pub fn take_into(&mut self, n: usize, dst: &mut Vec<u8>) -> usize {
        let take = n.min(self.buffered());
        dst.extend_from_slice(&self.buf[self.start..self.start + take]);
        self.start += take;
        self.scanned = self.scanned.saturating_sub(take);
        self.compact();
        take
    }

    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf = Vec::new();
            self.start = 0;
            self.scanned = 0;
        } else if self.start > COMPACT_AFTER {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

/// The same framing computed on the whole input at once — the oracle the
/// unit tests and the `net_lines` fuzz target compare [`Lines`] against.
/// Returns each complete line as `Ok(bytes)` or `Err(length)` when over `max`.
pub fn reference(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, usize>> {
    let mut out = Vec::new();
    let mut rest = input;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let mut l = &rest[..i];
        if l.last() == Some(&b'\r') {
            l = &l[..l.len() - 1];
        }
        out.push(if l.len() > max {
            Err(l.len())
        } else {
            Ok(l.to_vec())
        });
        rest = &rest[i + 1..];
    }
    out
}

/// Feed `input` in pieces of the given sizes (cycled), collecting lines, and
/// check the memory bound after every piece. Used by tests and the fuzzer.
pub fn feed_in_pieces(input: &[u8], max: usize, pieces: &[usize]) -> Vec<Result<Vec<u8>, usize>> {
    let mut l = Lines::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < input.len() {
        let n = pieces[k % pieces.len()].max(1).min(input.len() - pos);
        k += 1;
        l.push(&input[pos..pos + n]);
        pos += n;
        while let Some(line) = l.next(max) {
            out.push(match line {
                Line::Ok(v) => Ok(v),
                Line::TooLong(n) => Err(n),
                Line::Eof => unreachable!("Lines never reports Eof"),
            });
        }
        // Bounded by the limit plus one piece, whatever the input.
        assert!(
            l.buffered() <= max + 2 + n,
            "{} buffered, max {max}",
            l.buffered()
        );
    }
    out
}

/// Whether `got` matches the oracle: identical lines; an over-long line's
/// length may include the CR of its ending.
pub fn agrees(got: &[Result<Vec<u8>, usize>], want: &[Result<Vec<u8>, usize>]) -> bool {
    got.len() == want.len()
        && got.iter().zip(want).all(|(g, w)| match (g, w) {
            (Ok(a), Ok(b)) => a == b,
            (Err(a), Err(b)) => *a == *b || *a == *b + 1,
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_bare_lf_and_pieces() {
        let input = b"A1 NOOP\r\nbare\nx\r\n\r\n";
        for pieces in [&[1usize][..], &[2, 3], &[100]] {
            let got = feed_in_pieces(input, 16, pieces);
            assert!(agrees(&got, &reference(input, 16)), "{got:?}");
        }
        let mut l = Lines::new();
        l.push(b"bare\nok\r\n");
        assert_eq!(l.next(10), Some(Line::Ok(b"bare".to_vec())));
        assert!(!l.last_crlf);
        assert_eq!(l.next(10), Some(Line::Ok(b"ok".to_vec())));
        assert!(l.last_crlf);
        assert_eq!(l.next(10), None);
    }

    #[test]
    fn over_long_lines_are_dropped_not_kept() {
        let mut input = vec![b'a'; 100_000];
        input.extend_from_slice(b"\r\nnext\r\n");
        let got = feed_in_pieces(&input, 998, &[512]);
        assert_eq!(got, vec![Err(100_000), Ok(b"next".to_vec())]);
        // Just over the limit, and exactly at it.
        let got = feed_in_pieces(b"abcdef\r\nabcde\r\n", 5, &[1]);
        assert_eq!(got, vec![Err(6), Ok(b"abcde".to_vec())]);
    }

    #[test]
    fn take_into_after_a_line() {
        let mut l = Lines::new();
        l.push(b"A APPEND {3}\r\nabc\r\n");
        assert_eq!(l.next(100), Some(Line::Ok(b"A APPEND {3}".to_vec())));
        let mut v = Vec::new();
        assert_eq!(l.take_into(3, &mut v), 3);
        assert_eq!(v, b"abc");
        assert_eq!(l.next(100), Some(Line::Ok(Vec::new())));
        assert_eq!(l.buffered(), 0);
    }
}
