//! The author address of a message (RFC 5322 §3.6.2 `From`), as the policy
//! compares it with the envelope sender.

use mailparse::{MailAddr, MailHeaderMap, ParsedMail};

/// The lower-cased address of the single `From` header, or the raw header
/// value (for `500 Invalid FROM header: <value>`). Display names and angle
/// brackets are handled by mailparse's address parser; groups, several
/// addresses, several `From` headers and addresses without exactly one `@`
/// (with non-empty local part and domain) are refused.
pub fn from_address(parsed: &ParsedMail) -> Result<String, String> {
    let from = parsed.headers.get_all_headers("From");
    let [header] = from.as_slice() else {
        return Err(parsed
            .headers
            .get_first_value("From")
            .unwrap_or_default()
            .trim()
            .to_string());
    };
    let value = header.get_value();
    let invalid = || value.trim().to_string();
    let list = mailparse::addrparse_header(header).map_err(|_| invalid())?;
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
