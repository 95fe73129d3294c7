//! Secure-Join request exception (spec §7.3): the first message of a
//! Secure-Join handshake is sent before keys are known, so it is cleartext.

use super::structure::Entity;

const KINDS: [&str; 2] = ["vc-request", "vg-request"];

/// True for a genuine `vc-request` / `vg-request`: exactly one header
/// `Secure-Join`, exactly one of those kinds, and the message is a multipart
/// with exactly one `text/plain` leaf whose trimmed, lower-cased (decoded) body
/// is `secure-join: <kind>`. Anything extra (more text, a second part) makes
/// it an ordinary cleartext mail.
pub fn is_securejoin_request(msg: &Entity) -> bool {
    let Some(value) = msg.single("Secure-Join") else {
        return false;
    };
    if !KINDS.iter().any(|k| value == k.as_bytes()) {
        return false;
    }
    if !msg.is_multipart() {
        return false;
    }
    let [part] = msg.parts.as_slice() else {
        return false;
    };
    if part.mime_type != "text/plain" {
        return false;
    }
    let Some(body) = part.decoded_body() else {
        return false;
    };
    let body = body.trim_ascii().to_ascii_lowercase();
    KINDS
        .iter()
        .any(|kind| body == format!("secure-join: {kind}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(header: &str, ctype: &str, body: &str) -> Vec<u8> {
        format!(
            "From: a@example.org\r\nSecure-Join: {header}\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
             --b\r\nContent-Type: {ctype}\r\n\r\n{body}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    fn check(raw: &[u8]) -> bool {
        super::super::structure::read(raw).is_ok_and(|p| is_securejoin_request(&p))
    }

    #[test]
    fn variants() {
        assert!(check(&msg(
            "vc-request",
            "text/plain",
            "Secure-Join: vc-request"
        )));
        assert!(check(&msg(
            "vg-request",
            "text/plain; charset=utf-8",
            "  SECURE-JOIN: VG-REQUEST \r\n\r\n"
        )));
        // Body kind need not match the header kind (as upstream).
        assert!(check(&msg(
            "vc-request",
            "text/plain",
            "secure-join: vg-request"
        )));
        assert!(!check(&msg(
            "vc-auth-required",
            "text/plain",
            "secure-join: vc-request"
        )));
        assert!(!check(&msg(
            "VC-REQUEST",
            "text/plain",
            "secure-join: vc-request"
        )));
        assert!(!check(&msg(
            "vc-request",
            "text/html",
            "secure-join: vc-request"
        )));
        assert!(!check(&msg(
            "vc-request",
            "text/plain",
            "secure-join: vc-request!"
        )));
        assert!(!check(&msg("vc-request", "text/plain", "")));
        // Not multipart at all.
        assert!(!check(b"Secure-Join: vc-request\r\nContent-Type: text/plain\r\n\r\nsecure-join: vc-request\r\n"));
        // No header.
        assert!(!check(
            &msg("vc-request", "text/plain", "x").replace_header()
        ));
        // Two headers.
        let two = String::from_utf8(msg("vc-request", "text/plain", "secure-join: vc-request"))
            .unwrap()
            .replace(
                "Secure-Join: vc-request\r\n",
                "Secure-Join: vc-request\r\nSecure-Join: vc-request\r\n",
            );
        assert!(!check(two.as_bytes()));
    }

    trait NoHeader {
        fn replace_header(&self) -> Vec<u8>;
    }
    impl NoHeader for Vec<u8> {
        fn replace_header(&self) -> Vec<u8> {
            String::from_utf8_lossy(self)
                .replace("Secure-Join: vc-request\r\n", "")
                .replace("\r\n\r\nx\r\n", "\r\n\r\nsecure-join: vc-request\r\n")
                .into_bytes()
        }
    }
}
