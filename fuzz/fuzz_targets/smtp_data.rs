//! Fuzz the SMTP DATA reader: the line framing (`net::lines::Lines`, fed in
//! fuzzer-chosen pieces, limit `READ_LIMIT`) and the transparency/limits
//! core (`smtp::transparency::Body`) together, against a whole-input
//! oracle written from RFC 5321 §4.5.2 here. A kept message never exceeds
//! the cap, has only CRLF endings and no line over 998 octets.
#![no_main]

use chatrelay::net::lines::{Line, Lines};
use chatrelay::smtp::transparency::{Body, Problem, Step, MAX_DATA_LINE, READ_LIMIT};
use libfuzzer_sys::fuzz_target;

type Outcome = Option<Result<Vec<u8>, Problem>>;

fn oracle(input: &[u8], max: usize) -> Outcome {
    let (mut msg, mut problem) = (Vec::new(), None::<Problem>);
    let mut rest = input;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let raw = &rest[..i];
        rest = &rest[i + 1..];
        let crlf = raw.last() == Some(&b'\r');
        let l = if crlf { &raw[..raw.len() - 1] } else { raw };
        if l.len() > READ_LIMIT {
            if problem.is_none() && msg.len() + l.len() > max {
                problem = Some(Problem::TooBig);
            }
            problem.get_or_insert(Problem::LongLine);
            continue;
        }
        if !crlf {
            problem.get_or_insert(Problem::BareLf);
        }
        if l == b"." && crlf {
            return Some(match problem {
                Some(p) => Err(p),
                None => Ok(msg),
            });
        }
        let l = l.strip_prefix(b".").unwrap_or(l);
        if l.len() > MAX_DATA_LINE {
            problem.get_or_insert(Problem::LongLine);
        }
        if problem.is_none() {
            if msg.len() + l.len() + 2 > max {
                problem = Some(Problem::TooBig);
            } else {
                msg.extend_from_slice(l);
                msg.extend_from_slice(b"\r\n");
            }
        }
    }
    None
}

fn real(input: &[u8], max: usize, pieces: &[usize]) -> Outcome {
    let (mut lines, mut body) = (Lines::new(), Body::new(max));
    let (mut pos, mut k) = (0, 0);
    loop {
        if let Some(line) = lines.next(READ_LIMIT) {
            match body.line(line, lines.last_crlf) {
                Step::More => continue,
                Step::End => return Some(body.finish()),
                Step::Eof => unreachable!(),
            }
        }
        if pos == input.len() {
            assert_eq!(body.line(Line::Eof, true), Step::Eof);
            return None;
        }
        let n = pieces[k % pieces.len()].min(input.len() - pos);
        k += 1;
        lines.push(&input[pos..pos + n]);
        pos += n;
        assert!(lines.buffered() <= READ_LIMIT + 2 + n);
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let max = u16::from_le_bytes([data[0], data[1]]) as usize;
    let pieces: Vec<usize> = data[2..4].iter().map(|b| *b as usize * 7 + 1).collect();
    let input = &data[4..];
    let got = real(input, max, &pieces);
    if let Some(Ok(m)) = &got {
        assert!(m.len() <= max);
        for l in m.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            assert_eq!(l.last(), Some(&b'\r'), "bare LF kept");
            assert!(l.len() - 1 <= MAX_DATA_LINE);
        }
    }
    let want = oracle(input, max);
    // An over-long line's length may count the CR of its ending, which can
    // move the size decision by one octet: TooBig and LongLine then both stand.
    let close = matches!(
        (&got, &want),
        (Some(Err(Problem::TooBig)), Some(Err(Problem::LongLine)))
            | (Some(Err(Problem::LongLine)), Some(Err(Problem::TooBig)))
    );
    assert!(got == want || close, "{got:?} vs {want:?}");
});
