//! Signing (RFC 6376 §5) as upstream's OpenDKIM does it (spec §5.3).

use base64::Engine;
use ring::rand::SystemRandom;

use super::canon::{self, BodyCanon, HeaderCanon};
use super::header::Message;
use super::key::{Signer, SigningKey};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Header fields signed when present: OpenDKIM's default, the "SHOULD be
/// signed" list of RFC 6376 §5.4.1, plus `autocrypt` and `content-type`
/// (spec §5.3).
pub const SIGNED_HEADERS: &[&str] = &[
    "from",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "resent-date",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "in-reply-to",
    "references",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
    "autocrypt",
    "content-type",
];

/// Over-signed header fields (spec §5.3): listed in `h=` once more than they
/// occur, so that an instance added later (above or below) breaks the
/// signature (RFC 6376 §5.4.2, §8.15). All of the signed ones except the
/// last, `content-type`.
pub const OVERSIGNED_HEADERS: &[&str] = SIGNED_HEADERS.split_at(SIGNED_HEADERS.len() - 1).0;

const HC: HeaderCanon = HeaderCanon::Relaxed;
const BC: BodyCanon = BodyCanon::Simple;

/// Fold a tag list into header lines of at most 78 columns (RFC 5322
/// §2.1.1): tags are separated by `; ` or a CRLF+TAB; long base64 values
/// (`b=`, `bh=`) are broken with CRLF+TAB+SP (FWS is allowed inside them,
/// RFC 6376 §2.4).
fn fold(tags: &[(&str, String)], out: &mut String) {
    let line = &out[out.rfind('\n').map(|p| p + 1).unwrap_or(0)..];
    let mut col: usize = line.chars().map(|c| if c == '\t' { 8 } else { 1 }).sum();
    for (i, (name, value)) in tags.iter().enumerate() {
        let last = i + 1 == tags.len();
        let piece = format!("{name}={value}{}", if last { "" } else { ";" });
        let sep = if i == 0 { "" } else { " " };
        if col + sep.len() + piece.len() <= 78 {
            out.push_str(sep);
            out.push_str(&piece);
            col += sep.len() + piece.len();
            continue;
        }
        if i > 0 {
            out.push_str("\r\n\t");
            col = 8;
        }
        let breakable = matches!(*name, "b" | "bh");
        if !breakable || col + piece.len() <= 78 {
            // h= is split at colons when it does not fit.
            if *name == "h" && col + piece.len() > 78 {
                let mut first = true;
                out.push_str("h=");
                col += 2;
                let names: Vec<&str> = value.split(':').collect();
                for (j, n) in names.iter().enumerate() {
                    let tail = if j + 1 == names.len() {
                        if last {
                            ""
                        } else {
                            ";"
                        }
                    } else {
                        ":"
                    };
                    let w = n.len() + tail.len();
                    if !first && col + w > 78 {
                        out.push_str("\r\n\t ");
                        col = 9;
                    }
                    out.push_str(n);
                    out.push_str(tail);
                    col += w;
                    first = false;
                }
            } else {
                out.push_str(&piece);
                col += piece.len();
            }
            continue;
        }
        // Break base64 anywhere.
        let mut rest = piece.as_str();
        while !rest.is_empty() {
            let room = 78usize.saturating_sub(col).max(1);
            let take = room.min(rest.len());
            out.push_str(&rest[..take]);
            rest = &rest[take..];
            if !rest.is_empty() {
                out.push_str("\r\n\t ");
                col = 9;
            } else {
                col += take;
            }
        }
    }
}

/// The `h=` list for a message: every signed name present, once per
/// occurrence, then every over-signed name once more (RFC 6376 §5.4.2: the
/// verifier picks instances bottom-up, and a name listed more often than it
/// occurs selects "nothing", so an added field breaks the signature).
pub(crate) fn h_list(m: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..m.fields.len() {
        let n = String::from_utf8_lossy(m.name(i)).to_ascii_lowercase();
        if SIGNED_HEADERS.contains(&n.as_str()) {
            out.push(n);
        }
    }
    out.extend(OVERSIGNED_HEADERS.iter().map(|s| s.to_string()));
    out
}

/// Sign `msg` for `domain` with `selector`; returns the `DKIM-Signature:`
/// field (folded, ending in CRLF) to prepend to the message unchanged.
/// `c=relaxed/simple`, `t=now` (spec §5.3).
pub fn sign(
    msg: &[u8],
    domain: &str,
    selector: &str,
    key: &SigningKey,
    now: u64,
) -> Result<String, String> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    if !valid(domain) || !valid(selector) {
        return Err("invalid DKIM domain or selector".into());
    }
    let m = Message::parse(msg);
    if m.truncated {
        return Err("too many header fields to sign".into());
    }
    if !(0..m.fields.len()).any(|i| m.name(i).eq_ignore_ascii_case(b"from")) {
        return Err("message has no From header field".into());
    }
    let bh = canon::body_hash(BC, m.body());
    let algo = match key.signer {
        Signer::Rsa(_) => "rsa-sha256",
        Signer::Ed25519(_) => "ed25519-sha256",
    };
    let h = h_list(&m);
    let tags: Vec<(&str, String)> = vec![
        ("v", "1".into()),
        ("a", algo.into()),
        ("c", format!("{}/{}", HC.as_str(), BC.as_str())),
        ("d", domain.to_ascii_lowercase()),
        ("s", selector.into()),
        ("t", now.to_string()),
        ("bh", B64.encode(bh)),
        ("h", h.join(":")),
        ("b", String::new()),
    ];
    let mut field = String::from("DKIM-Signature: ");
    fold(&tags, &mut field);

    // Header hash input (RFC 6376 §3.7): the signed fields, bottom-up per
    // name, then this field with an empty b= and without its CRLF.
    let mut data = Vec::new();
    super::verify::signed_headers_data(&m, &h, HC, &mut data);
    canon::header(HC, field.as_bytes(), false, &mut data);

    let sig = match &key.signer {
        Signer::Rsa(k) => {
            let mut s = vec![0u8; k.public().modulus_len()];
            k.sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                &data,
                &mut s,
            )
            .map_err(|_| "RSA signing failed".to_string())?;
            s
        }
        // RFC 8463 §3: Ed25519 (pure) over the SHA-256 of the data.
        Signer::Ed25519(k) => {
            let d = ring::digest::digest(&ring::digest::SHA256, &data);
            k.sign(d.as_ref()).as_ref().to_vec()
        }
    };
    // Replace the trailing empty "b=" by the folded signature.
    field.truncate(field.len() - 2);
    let mut tail = String::new();
    // Recompute the column of "b=" for folding.
    let col_line_start = field.rfind('\n').map(|p| p + 1).unwrap_or(0);
    tail.push_str(&field[col_line_start..]);
    field.truncate(col_line_start);
    fold(&[("b", B64.encode(sig))], &mut tail);
    field.push_str(&tail);
    field.push_str("\r\n");
    Ok(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversigned_are_the_signed_without_content_type() {
        assert_eq!(OVERSIGNED_HEADERS.len(), 21);
        assert_eq!(OVERSIGNED_HEADERS, &SIGNED_HEADERS[..21]);
        assert_eq!(SIGNED_HEADERS[21], "content-type");
        assert!(OVERSIGNED_HEADERS.contains(&"from") && OVERSIGNED_HEADERS.contains(&"autocrypt"));
    }

    #[test]
    fn fold_keeps_lines_short() {
        let h: Vec<String> = (0..40).map(|i| format!("header-name-{i}")).collect();
        let tags = vec![
            ("v", "1".to_string()),
            ("d", "a-rather-long-domain-name.example.org".to_string()),
            ("h", h.join(":")),
            ("b", "A".repeat(344)),
        ];
        let mut out = String::from("DKIM-Signature: ");
        fold(&tags, &mut out);
        for line in out.split("\r\n") {
            assert!(line.replace('\t', "        ").len() <= 78, "{line:?}");
        }
        // Unfolding and removing FWS gives back the tags.
        let flat: String = out.replace("\r\n\t ", "").replace("\r\n\t", " ");
        assert!(flat.contains(&format!("h={};", h.join(":"))), "{flat}");
        assert!(flat.ends_with(&format!("b={}", "A".repeat(344))));
    }

    #[test]
    fn h_list_counts() {
        let m =
            Message::parse(b"From: a\r\nTo: b\r\nTo: c\r\nX-Other: d\r\nContent-Type: x\r\n\r\n");
        let h = h_list(&m);
        let n = |s: &str| h.iter().filter(|x| *x == s).count();
        assert_eq!(n("from"), 2);
        assert_eq!(n("to"), 3);
        assert_eq!(n("x-other"), 0);
        assert_eq!(n("content-type"), 1);
        assert_eq!(n("autocrypt"), 1);
    }
}
