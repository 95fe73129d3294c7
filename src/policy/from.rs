//! The author address of a message (RFC 5322 §3.6.2 `From`), as the policy
//! compares it with the envelope sender.

use super::structure::Entity;
use mailparse::MailAddr;

/// The lower-cased address of the single `From` header, or the raw header
/// value (for `500 Invalid FROM header: <value>`). Display names and angle
/// brackets are handled by mailparse's address parser; groups, several
/// addresses, several `From` headers and addresses without exactly one `@`
/// (with non-empty local part and domain) are refused.
pub fn from_address(msg: &Entity) -> Result<String, String> {
    let from: Vec<&[u8]> = msg.values("From").collect();
    let text = |v: &[u8]| String::from_utf8_lossy(v).trim().to_string();
    let [value] = from.as_slice() else {
        return Err(from.first().map(|v| text(v)).unwrap_or_default());
    };
    let value = text(value);
    let invalid = || value.clone();
    let list = mailparse::addrparse(&value).map_err(|_| invalid())?;
    let [MailAddr::Single(info)] = list.as_slice() else {
        return Err(invalid());
    };
    let addr = info.addr.trim().to_ascii_lowercase();
    match addr.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !addr.contains(char::is_whitespace) =>
        {
            Ok(addr)
        }
        _ => Err(invalid()),
    }
}
