//! DKIM (RFC 6376) signing and verification, without I/O.
//!
//! * Signing (spec §5.3): `c=relaxed/simple`, `a=rsa-sha256` (or
//!   `ed25519-sha256`, RFC 8463), the headers OpenDKIM signs by default
//!   (RFC 6376 §5.4.1) plus `Autocrypt` and `Content-Type`, with the
//!   over-signing list of spec §5.3.
//! * Verification (spec §6.2): all DKIM-Signature fields are parsed
//!   ([`signatures`]); the caller resolves `<s>._domainkey.<d>` TXT records
//!   (asynchronously, with its own cache) for the pairs [`key_queries`]
//!   returns and then calls the synchronous [`check_aligned_with`]. A
//!   message passes iff at least one signature verifies **and** its `d=`
//!   equals the From domain (case-insensitive, no subdomains).
//!
//! Deliberate choices (see the comments where they are implemented):
//! * `l=` (body length limit) is **refused**: a signature carrying `l=` is
//!   treated as invalid, because it lets anyone append content to a signed
//!   body (RFC 6376 §8.2).
//! * `rsa-sha1` is refused (RFC 8301 §3.1); RSA keys must have ≥ 1024 bits
//!   (RFC 8301 §3.2 says verifiers MUST accept 1024..4096).
//! * A lone LF in the message is read as CRLF both when signing and when
//!   verifying (SMTP delivers CRLF; files on disk may not).
//! * Hostile input is bounded: header fields ([`MAX_HEADER_FIELDS`]),
//!   signatures examined ([`MAX_SIGNATURES`]), tag lists and field sizes.

mod canon;
mod header;
mod key;
mod sign;
mod verify;

pub use canon::{BodyCanon, HeaderCanon};
pub use header::{Algorithm, ParsedSignature, Signature, MAX_HEADER_FIELDS, MAX_SIGNATURES};
pub use key::{parse_key_record, KeyKind, PublicKey, SigningKey};
pub use sign::{sign, OVERSIGNED_HEADERS, SIGNED_HEADERS};
pub use verify::{
    check_aligned, check_aligned_with, key_queries, signatures, verify_with_key,
    verify_with_key_at, Verdict,
};
