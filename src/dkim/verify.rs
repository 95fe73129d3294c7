//! Verification (RFC 6376 §6) and the alignment rule of spec §6.2.

use std::collections::HashMap;

use ring::signature::{UnparsedPublicKey, ED25519, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY};

use super::canon::{self, BodyCanon, HeaderCanon};
use super::header::MAX_SIGNATURES;
use super::header::{self, Algorithm, Message, ParsedSignature, Signature};
use super::key::{parse_key_record, KeyKind, PublicKey};

/// Outcome of the spec §6.2 origin check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A signature verified and its `d=` is the From domain.
    Pass,
    /// The message carries no DKIM-Signature field.
    NoSignature,
    /// Signatures exist but none is valid and aligned; the text says why.
    Fail(String),
}

impl Verdict {
    /// The SMTP reply for a rejection (spec §8), `None` for [`Verdict::Pass`].
    pub fn reply(&self) -> Option<(u16, &'static str)> {
        match self {
            Verdict::Pass => None,
            Verdict::NoSignature => Some((554, "5.7.1 No DKIM signature found")),
            Verdict::Fail(_) => Some((554, "5.7.1 No valid DKIM signature found")),
        }
    }
}

/// Parse all DKIM-Signature fields (top-down, at most [`MAX_SIGNATURES`]);
/// malformed ones are returned with the reason.
pub fn signatures(msg: &[u8]) -> Vec<ParsedSignature> {
    header::signatures_of(&Message::parse(msg))
}

/// Append the canonicalized signed header fields named in `h` (RFC 6376
/// §5.4.2): for each name, the last not yet used instance, bottom-up; a name
/// with no instance left contributes nothing (this is what makes
/// over-signing work).
pub(crate) fn signed_headers_data(
    m: &Message<'_>,
    h: &[String],
    c: HeaderCanon,
    out: &mut Vec<u8>,
) {
    let mut used: HashMap<&str, usize> = HashMap::new();
    for name in h {
        let skip = used.entry(name.as_str()).or_insert(0);
        let found = (0..m.fields.len())
            .rev()
            .filter(|&i| m.name(i).eq_ignore_ascii_case(name.as_bytes()))
            .nth(*skip);
        *skip += 1;
        if let Some(i) = found {
            canon::header(c, m.field(i), true, out);
        }
    }
}

/// The DKIM-Signature field with the value of its `b=` tag removed
/// (RFC 6376 §3.7, §3.5 b=), everything else byte-for-byte.
fn without_b(field: &[u8]) -> Result<Vec<u8>, String> {
    let colon = field.iter().position(|&b| b == b':').ok_or("no colon")?;
    let value = &field[colon + 1..];
    let tags = header::parse_tag_list(value, false)?;
    let b = tags.iter().find(|t| t.name == "b").ok_or("no b= tag")?;
    let (s, e) = (
        colon + 1 + b.value_range.start,
        colon + 1 + b.value_range.end,
    );
    let mut out = field[..s].to_vec();
    out.extend_from_slice(&field[e..]);
    Ok(out)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Verify one signature against the TXT record of `<s>._domainkey.<d>`,
/// checking `x=` against the system clock. See [`verify_with_key_at`].
pub fn verify_with_key(msg: &[u8], sig: &ParsedSignature, txt_record: &str) -> Result<(), String> {
    verify_with_key_at(msg, sig, txt_record, Some(now()))
}

/// Verify one signature (RFC 6376 §6.1): key record, body hash, header hash,
/// signature. `now` (if given) is compared with `x=`. A signature carrying
/// `l=` was already refused when parsed (see [`super::header`]).
pub fn verify_with_key_at(
    msg: &[u8],
    sig: &ParsedSignature,
    txt_record: &str,
    now: Option<u64>,
) -> Result<(), String> {
    let m = Message::parse(msg);
    let mut cache = HashMap::new();
    verify_parsed(&m, sig, &parse_key_record(txt_record)?, now, &mut cache)
}

fn verify_parsed(
    m: &Message<'_>,
    psig: &ParsedSignature,
    key: &PublicKey,
    now: Option<u64>,
    body_hashes: &mut HashMap<BodyCanon, [u8; 32]>,
) -> Result<(), String> {
    let sig: &Signature = psig.parsed.as_ref().map_err(|e| e.clone())?;
    if m.truncated {
        return Err("too many header fields".into());
    }
    if psig.field_index >= m.fields.len() || !header::is_dkim_signature(m.name(psig.field_index)) {
        return Err("signature does not belong to this message".into());
    }
    let want = match sig.algorithm {
        Algorithm::RsaSha256 => KeyKind::Rsa,
        Algorithm::Ed25519Sha256 => KeyKind::Ed25519,
    };
    if key.kind != want {
        return Err("key type does not match a=".into());
    }
    // RFC 6376 §3.6.1 t=s: i= must be exactly d=.
    if key.strict {
        if let Some(i) = &sig.identity {
            let idom = i.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
            if !idom.eq_ignore_ascii_case(&sig.domain) {
                return Err("key has t=s but i= is a subdomain of d=".into());
            }
        }
    }
    if let (Some(now), Some(x)) = (now, sig.expiration) {
        if x < now {
            return Err("signature expired (x=)".into());
        }
    }
    // RFC 6376 §3.7 body hash.
    let bh = *body_hashes
        .entry(sig.body_canon)
        .or_insert_with(|| canon::body_hash(sig.body_canon, m.body()));
    if bh[..] != sig.body_hash[..] {
        return Err("body hash did not verify".into());
    }
    // RFC 6376 §3.7 header hash input.
    let mut data = Vec::new();
    signed_headers_data(m, &sig.headers, sig.header_canon, &mut data);
    let own = without_b(m.field(psig.field_index))?;
    canon::header(sig.header_canon, &own, false, &mut data);
    let ok = match sig.algorithm {
        // RFC 8301 §3.2: at least 1024 bits (ring enforces 1024..8192).
        Algorithm::RsaSha256 => {
            UnparsedPublicKey::new(&RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, &key.key)
                .verify(&data, &sig.signature)
                .is_ok()
        }
        // RFC 8463 §3: Ed25519 over SHA-256(data).
        Algorithm::Ed25519Sha256 => {
            let d = ring::digest::digest(&ring::digest::SHA256, &data);
            UnparsedPublicKey::new(&ED25519, &key.key)
                .verify(d.as_ref(), &sig.signature)
                .is_ok()
        }
    };
    if ok {
        Ok(())
    } else {
        Err("signature did not verify".into())
    }
}

/// The `(selector, domain)` pairs whose key records the caller must resolve
/// (`<selector>._domainkey.<domain>` TXT) for [`check_aligned_with`]: the
/// well-formed signatures whose `d=` equals `from_domain` (lower-cased),
/// without duplicates. Unaligned signatures are never looked up.
pub fn key_queries(msg: &[u8], from_domain: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for s in signatures(msg) {
        if let Ok(sig) = &s.parsed {
            if sig.domain.eq_ignore_ascii_case(from_domain) {
                let q = (sig.selector.clone(), sig.domain.clone());
                if !out.contains(&q) {
                    out.push(q);
                }
            }
        }
    }
    out
}

/// Spec §6.2 with the key records already resolved: `keys` maps
/// `(selector, domain)` as returned by [`key_queries`] to the TXT record
/// (strings concatenated); a missing entry means the lookup failed.
pub fn check_aligned_with(
    msg: &[u8],
    from_domain: &str,
    keys: &HashMap<(String, String), String>,
) -> Verdict {
    check(msg, from_domain, Some(now()), |s, d| {
        keys.get(&(s.to_string(), d.to_ascii_lowercase())).cloned()
    })
}

/// Spec §6.2 alignment rule: [`Verdict::Pass`] iff at least one signature
/// verifies **and** its `d=` equals `from_domain` case-insensitively
/// (strict: subdomains do not count). `lookup(selector, domain)` returns the
/// TXT record of `<selector>._domainkey.<domain>`.
pub fn check_aligned(
    msg: &[u8],
    from_domain: &str,
    lookup: impl FnMut(&str, &str) -> Option<String>,
) -> Verdict {
    check(msg, from_domain, Some(now()), lookup)
}

fn check(
    msg: &[u8],
    from_domain: &str,
    now: Option<u64>,
    mut lookup: impl FnMut(&str, &str) -> Option<String>,
) -> Verdict {
    let m = Message::parse(msg);
    let sigs = header::signatures_of(&m);
    if sigs.is_empty() {
        return Verdict::NoSignature;
    }
    if m.truncated {
        return Verdict::Fail("too many header fields".into());
    }
    let mut reasons: Vec<String> = Vec::new();
    let mut body_hashes = HashMap::new();
    for (n, s) in sigs.iter().enumerate().take(MAX_SIGNATURES) {
        let r = match &s.parsed {
            Err(e) => Err(format!("malformed: {e}")),
            // Alignment first: an unaligned signature cannot help, so its key
            // is not even looked up.
            Ok(sig) if !sig.domain.eq_ignore_ascii_case(from_domain) => {
                Err(format!("d={} is not the From domain", sig.domain))
            }
            Ok(sig) => match lookup(&sig.selector, &sig.domain) {
                None => Err(format!(
                    "no key record for {}._domainkey.{}",
                    sig.selector, sig.domain
                )),
                Some(txt) => parse_key_record(&txt)
                    .and_then(|k| verify_parsed(&m, s, &k, now, &mut body_hashes)),
            },
        };
        match r {
            Ok(()) => return Verdict::Pass,
            Err(e) => reasons.push(format!("signature {}: {e}", n + 1)),
        }
    }
    Verdict::Fail(reasons.join("; "))
}
