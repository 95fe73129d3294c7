//! PGP/MIME structure check (spec §7.1, RFC 3156 §4), on the strict reader's view.

use super::openpgp::armor_ok;
use super::openpgp::Direction;
use super::structure::Entity;

/// RFC 3156 §4 control part: `application/pgp-encrypted` with body `Version: 1`.
fn control_part_ok(part: &Entity) -> bool {
    part.mime_type == "application/pgp-encrypted"
        && part
            .decoded_body()
            .is_some_and(|b| b.trim_ascii() == b"Version: 1")
}

/// RFC 3156 §4 data part: `application/octet-stream` holding an armored
/// encrypted OpenPGP message (spec §7.2).
fn data_part_ok(part: &Entity, dir: Direction) -> bool {
    // The reader lower-cases the MIME type, so "exact" and case-insensitive agree.
    part.mime_type == "application/octet-stream"
        && part.decoded_body().is_some_and(|b| armor_ok(&b, dir))
}

/// True if the message is a PGP/MIME encrypted message whose payload is an
/// encrypted OpenPGP message (spec §7.1 + §7.2). Headers are not inspected.
///
/// Exactly two leaf parts are required: upstream rejects a third part; we also
/// require part 2 to exist (the spec recommends it).
pub fn is_encrypted(msg: &Entity, dir: Direction) -> bool {
    if msg.mime_type != "multipart/encrypted" {
        return false;
    }
    match msg.parts.as_slice() {
        [control, data] => control_part_ok(control) && data_part_ok(data, dir),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARMOR: &str = "-----BEGIN PGP MESSAGE-----\r\n\r\nwQwBAgMEBQYHCAkK\r\nCwzSAA==\r\n-----END PGP MESSAGE-----\r\n";

    fn msg(top: &str, p1type: &str, p1body: &str, p2type: &str) -> Vec<u8> {
        format!(
            "Content-Type: {top}; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: {p1type}\r\n\r\n{p1body}\r\n\
             --b\r\nContent-Type: {p2type}\r\n\r\n{ARMOR}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    fn enc(raw: &[u8]) -> bool {
        super::super::structure::read(raw).is_ok_and(|p| is_encrypted(&p, Direction::Outgoing))
    }

    #[test]
    fn structure() {
        let ok = msg(
            "multipart/encrypted",
            "application/pgp-encrypted",
            "Version: 1",
            "application/octet-stream",
        );
        assert!(enc(&ok), "hand-built PKESK (tag 1, len 12) + empty SEIPD");
        assert!(enc(&msg(
            "Multipart/Encrypted",
            "Application/PGP-Encrypted",
            "\r\n  Version: 1  \r\n",
            "application/octet-stream; name=x.asc"
        )));
        assert!(!enc(&msg(
            "multipart/mixed",
            "application/pgp-encrypted",
            "Version: 1",
            "application/octet-stream"
        )));
        assert!(!enc(&msg(
            "multipart/encrypted",
            "text/plain",
            "Version: 1",
            "application/octet-stream"
        )));
        assert!(!enc(&msg(
            "multipart/encrypted",
            "application/pgp-encrypted",
            "Version: 2",
            "application/octet-stream"
        )));
        assert!(!enc(&msg(
            "multipart/encrypted",
            "application/pgp-encrypted",
            "version: 1",
            "application/octet-stream"
        )));
        assert!(!enc(&msg(
            "multipart/encrypted",
            "application/pgp-encrypted",
            "Version: 1",
            "text/plain"
        )));
        assert!(!enc(&msg(
            "multipart/encrypted",
            "application/pgp-encrypted",
            "Version: 1",
            "multipart/mixed"
        )));
        // multipart/encrypted without boundary: refused by the reader.
        assert!(!enc(
            b"Content-Type: multipart/encrypted\r\n\r\nVersion: 1\r\n"
        ));
        // Quoted-printable control part decodes.
        let qp = String::from_utf8(ok.clone()).unwrap().replace(
            "Content-Type: application/pgp-encrypted\r\n",
            "Content-Type: application/pgp-encrypted\r\nContent-Transfer-Encoding: quoted-printable\r\n",
        ).replace("Version: 1", "Version=3A 1");
        assert!(enc(qp.as_bytes()));
    }
}
