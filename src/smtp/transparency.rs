//! The DATA body without I/O (RFC 5321 §4.1.1.4 and §4.5.2 transparency):
//! lines in, the message out — dot-unstuffed, CRLF-terminated, with the
//! size cap (nothing past it is kept, but reading goes on to the end), the
//! 998-octet line limit (§4.5.3.1.6) and strict CRLF endings.

use crate::net::Line;

/// RFC 5321 §4.5.3.1.6: 998 octets plus CRLF.
pub const MAX_DATA_LINE: usize = 998;
/// The longest line to read: a transparency dot plus [`MAX_DATA_LINE`].
pub const READ_LIMIT: usize = MAX_DATA_LINE + 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    TooBig,
    LongLine,
    BareLf,
}

impl Problem {
    /// The reply for a body refused with this problem.
    pub fn reply(self) -> &'static str {
        match self {
            Problem::TooBig => "552 5.3.4 Message size exceeds fixed limit",
            Problem::LongLine => "500 5.5.2 Line too long (RFC 5321 allows 998 octets)",
            Problem::BareLf => "500 5.5.2 Bare LF line endings are not allowed",
        }
    }
}

pub struct Body {
    max: usize,
    msg: Vec<u8>,
    problem: Option<Problem>,
}

/// What one line did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    More,
    /// The terminating `.` line arrived.
    End,
    /// The connection closed before it: nothing may be stored.
    Eof,
}

impl Body {
    pub fn new(max: usize) -> Body {
        Body {
            max,
            msg: Vec::new(),
            problem: None,
        }
    }

    /// Bytes kept so far.
    pub fn len(&self) -> usize {
        self.msg.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msg.is_empty()
    }

    /// Take one line as read with [`READ_LIMIT`]; `crlf` tells whether it
    /// ended in CRLF.
    pub fn line(&mut self, line: Line, crlf: bool) -> Step {
        let line = match line {
            Line::Eof => return Step::Eof,
            Line::TooLong(n) => {
                // Counted against the size, so an over-long line in an
                // over-large message still gets the size reply.
                if self.problem.is_none() && self.msg.len().saturating_add(n) > self.max {
                    self.refuse(Problem::TooBig);
                }
                self.refuse(Problem::LongLine);
                return Step::More;
            }
            Line::Ok(l) => l,
        };
        if !crlf {
            self.refuse(Problem::BareLf);
        }
        if line == b"." && crlf {
            return Step::End;
        }
        // §4.5.2: a leading dot was added by the sender; remove it.
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if line.len() > MAX_DATA_LINE {
            self.refuse(Problem::LongLine);
        }
        if self.problem.is_none() {
            if self.msg.len() + line.len() + 2 > self.max {
                self.refuse(Problem::TooBig);
            } else {
                self.msg.extend_from_slice(line);
                self.msg.extend_from_slice(b"\r\n");
            }
        }
        Step::More
    }

    /// The first problem seen wins; once refused, nothing more is kept.
    fn refuse(&mut self, p: Problem) {
        if self.problem.is_none() {
            self.problem = Some(p);
            self.msg = Vec::new();
        }
    }

    /// The message, or the problem that refuses it.
    pub fn finish(self) -> Result<Vec<u8>, Problem> {
        match self.problem {
            Some(p) => Err(p),
            None => Ok(self.msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lines: &[(&[u8], bool)], max: usize) -> (Step, Result<Vec<u8>, Problem>) {
        let mut b = Body::new(max);
        let mut last = Step::More;
        for (l, crlf) in lines {
            last = b.line(Line::Ok(l.to_vec()), *crlf);
            if last != Step::More {
                break;
            }
        }
        (last, b.finish())
    }

    #[test]
    fn dot_unstuffing_and_end() {
        let (s, m) = run(
            &[
                (b"Subject: x", true),
                (b"", true),
                (b"..dot", true),
                (b".", true),
            ],
            100,
        );
        assert_eq!(s, Step::End);
        assert_eq!(m.unwrap(), b"Subject: x\r\n\r\n.dot\r\n");
    }

    #[test]
    fn bare_lf_long_line_and_size() {
        assert_eq!(
            run(&[(b"a", false), (b".", true)], 100).1,
            Err(Problem::BareLf)
        );
        // A bare-LF "." does not end the body.
        assert_eq!(run(&[(b".", false)], 100).0, Step::More);
        let long = vec![b'x'; MAX_DATA_LINE + 1];
        assert_eq!(
            run(&[(&long, true), (b".", true)], 10_000).1,
            Err(Problem::LongLine)
        );
        // 998 octets after unstuffing are fine.
        let mut ok = vec![b'.'];
        ok.extend(vec![b'x'; MAX_DATA_LINE]);
        assert!(run(&[(&ok, true), (b".", true)], 10_000).1.is_ok());
        assert_eq!(
            run(&[(b"0123456789", true), (b".", true)], 11).1,
            Err(Problem::TooBig)
        );
        let mut b = Body::new(50);
        b.line(Line::TooLong(5000), true);
        assert_eq!(b.finish(), Err(Problem::TooBig));
        let mut b = Body::new(50_000);
        b.line(Line::TooLong(5000), true);
        assert_eq!(b.finish(), Err(Problem::LongLine));
    }
}
