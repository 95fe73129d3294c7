"""SMTP submission with Python's smtplib (issue "Relay core II", items 1, 2, 6).

Reply codes as in spec §5.2 and §8.
"""

from __future__ import annotations

import base64
import email
import imaplib
import os
import smtplib

import pytest

from harness import (
    create_account,
    imap_connect,
    imap_login,
    imap_wait_for_messages,
    make_encrypted_message,
    make_plain_message,
    new_creds,
    random_localpart,
    smtp_connect,
    smtp_login,
)


def _fetch_all(relay, creds, count, timeout=20):
    """Bodies of the first ``count`` INBOX messages (waits until they are there)."""
    imap = imap_login(relay, creds)
    try:
        imap_wait_for_messages(imap, "INBOX", count, timeout)
        out = []
        for i in range(1, count + 1):
            typ, data = imap.fetch(str(i), "(BODY.PEEK[])")
            assert typ == "OK", (typ, data)
            out.append(data[0][1])
        return out
    finally:
        imap.logout()


@pytest.fixture
def users(relay):
    """Three existing accounts on the relay (made by first login)."""
    return [create_account(relay, via="smtp"), create_account(relay), create_account(relay)]


def test_ehlo_capabilities(relay):
    smtp = smtp_connect(relay)  # 465, implicit TLS
    try:
        for ext in ("size", "pipelining", "8bitmime", "enhancedstatuscodes", "auth"):
            assert smtp.has_extn(ext), f"EHLO on 465 lacks {ext}: {smtp.esmtp_features}"
        assert "PLAIN" in smtp.esmtp_features["auth"].upper().split()
        # SIZE announces the configured limit.
        assert smtp.esmtp_features["size"].strip() == relay.params["max_message_size"]
    finally:
        smtp.quit()


def test_587_requires_starttls_before_auth(relay):
    creds = new_creds(relay)
    smtp = smtplib.SMTP(relay.ip, relay.port("submission_port"), timeout=30)
    try:
        smtp.ehlo("e2e-client")
        assert smtp.has_extn("starttls")
        # AUTH in the clear must not work (530/503/...; never 235).
        code, resp = smtp.docmd("AUTH", "PLAIN " + _plain_b64(creds.addr, creds.password))
        assert 500 <= code < 600, (code, resp)
    finally:
        smtp.close()
    smtp = smtp_login(relay, creds, port=relay.port("submission_port"))
    smtp.quit()


def _plain_b64(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def test_wrong_password_refused(relay, users):
    smtp = smtp_connect(relay)
    try:
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            smtp.login(users[0].addr, users[0].password + "x")
        assert e.value.smtp_code == 535
    finally:
        smtp.close()


@pytest.mark.parametrize("port_name", ["submissions_port", "submission_port"])
def test_encrypted_message_is_delivered(relay, users, gpg, port_name):
    a, b, _ = users
    msg = make_encrypted_message(gpg, a.addr, [b.addr], payload=b"delivered intact")
    smtp = smtp_login(relay, a, port=relay.port(port_name))
    try:
        refused = smtp.sendmail(a.addr, [b.addr], msg)
        assert refused == {}
    finally:
        smtp.quit()
    [stored] = _fetch_all(relay, b, 1)
    parsed = email.message_from_bytes(stored)
    assert parsed.get_content_type() == "multipart/encrypted"
    sent_parts = email.message_from_bytes(msg).get_payload()
    stored_parts = parsed.get_payload()
    assert len(stored_parts) == 2
    # The OpenPGP data arrives byte for byte.
    assert stored_parts[1].get_payload().strip() == sent_parts[1].get_payload().strip()


def test_plain_message_refused_523(relay, users):
    a, b, _ = users
    smtp = smtp_login(relay, a)
    try:
        with pytest.raises(smtplib.SMTPDataError) as e:
            smtp.sendmail(a.addr, [b.addr], make_plain_message(a.addr, [b.addr]))
        assert e.value.smtp_code == 523, e.value
        assert b"Encryption Needed: Invalid Unencrypted Mail" in e.value.smtp_error
    finally:
        smtp.quit()
    # Nothing was stored.
    imap = imap_login(relay, b)
    typ, data = imap.select("INBOX")
    assert typ == "OK" and int(data[0]) == 0
    imap.logout()


@pytest.mark.parametrize("forged", ["same-domain", "foreign-domain"])
def test_forged_from_header_refused_500(relay, users, gpg, forged):
    a, b, c = users
    header_from = c.addr if forged == "same-domain" else f"{random_localpart()}@example.org"
    msg = make_encrypted_message(gpg, a.addr, [b.addr], header_from=header_from)
    smtp = smtp_login(relay, a)
    try:
        with pytest.raises(smtplib.SMTPDataError) as e:
            smtp.sendmail(a.addr, [b.addr], msg)
        assert e.value.smtp_code == 500, e.value
        assert b"Invalid FROM" in e.value.smtp_error
    finally:
        smtp.quit()


def test_foreign_mail_from_refused_553_at_rcpt(relay, users):
    a, b, c = users
    smtp = smtp_login(relay, a)
    try:
        code, resp = smtp.mail(b.addr)  # not the login
        assert code == 250, (code, resp)
        code, resp = smtp.rcpt(c.addr)
        assert code == 553, (code, resp)
        assert b"5.7.1" in resp
    finally:
        smtp.quit()


def test_unknown_local_recipient_refused_550(relay, users, gpg):
    a = users[0]
    ghost = relay.addr(random_localpart())
    smtp = smtp_login(relay, a)
    try:
        code, resp = smtp.mail(a.addr)
        assert code == 250, (code, resp)
        code, resp = smtp.rcpt(ghost)
        assert code == 550, (code, resp)
        assert b"5.1.1" in resp
    finally:
        smtp.quit()


def test_rate_limit_450_only_after_burst(relay_factory, gpg):
    burst = 4
    # 2 per minute: no token comes back while the test runs.
    relay = relay_factory.make(max_user_send_per_minute=2, max_user_send_burst_size=burst)
    a, b, c = (create_account(relay, via="smtp"), create_account(relay), create_account(relay))
    smtp = smtp_login(relay, a)
    try:
        for i in range(burst):
            msg = make_encrypted_message(gpg, a.addr, [b.addr], payload=f"burst {i}".encode())
            refused = smtp.sendmail(a.addr, [b.addr], msg)
            assert refused == {}, f"message {i} of the burst of {burst} refused: {refused}"
        msg = make_encrypted_message(gpg, a.addr, [b.addr], payload=b"one too many")
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            smtp.sendmail(a.addr, [b.addr], msg)
        code, resp = e.value.recipients[b.addr]
        assert code == 450, (code, resp)
        assert b"4.7.1: Too much mail from" in resp
        assert a.addr.encode() in resp
    finally:
        smtp.close()
    # The limit is per sender: someone else still gets through.
    smtp = smtp_login(relay, c)
    try:
        msg = make_encrypted_message(gpg, c.addr, [b.addr])
        assert smtp.sendmail(c.addr, [b.addr], msg) == {}
    finally:
        smtp.quit()
    assert len(_fetch_all(relay, b, burst + 1)) == burst + 1


def test_message_size_limit_552(relay_factory, gpg):
    limit = 200_000
    relay = relay_factory.make(max_message_size=limit)
    a, b = create_account(relay, via="smtp"), create_account(relay)
    smtp = smtp_login(relay, a)
    try:
        # Declared too big with SIZE=: refused at MAIL.
        code, resp = smtp.mail(a.addr, [f"SIZE={limit + 1}"])
        assert code == 552, (code, resp)
        smtp.rset()
        # Not declared (no SIZE=; smtplib.sendmail would add it), but the data
        # is too big: refused at the end of DATA.
        # Random payload: gpg compresses, so repeated bytes would stay small.
        big = make_encrypted_message(gpg, a.addr, [b.addr], payload=os.urandom(2 * limit))
        assert len(big) > limit
        code, resp = smtp.mail(a.addr)
        assert code == 250, (code, resp)
        code, resp = smtp.rcpt(b.addr)
        assert code == 250, (code, resp)
        code, resp = smtp.data(big)
        assert code == 552, (code, resp)
    except smtplib.SMTPServerDisconnected:
        pytest.fail("relay closed the connection instead of answering 552")
    finally:
        smtp.close()
    # A small message still goes through on a new connection.
    smtp = smtp_login(relay, a)
    try:
        ok = make_encrypted_message(gpg, a.addr, [b.addr], payload=b"small")
        assert smtp.sendmail(a.addr, [b.addr], ok) == {}
    finally:
        smtp.quit()


def test_submission_over_443_with_alpn_smtp(relay, users, gpg):
    a, b, _ = users
    smtp = smtp_connect(relay, port=relay.port("https_port"), alpn=["smtp"])
    try:
        assert smtp.sock.selected_alpn_protocol() == "smtp"
        smtp.login(a.addr, a.password)
        msg = make_encrypted_message(gpg, a.addr, [b.addr], payload=b"via 443")
        assert smtp.sendmail(a.addr, [b.addr], msg) == {}
    finally:
        smtp.quit()
    assert len(_fetch_all(relay, b, 1)) == 1


# --------------------------------------------------------------------------
# bad input (issue "Relay core II", "Bad input")
# --------------------------------------------------------------------------


def _inbox_count(relay, creds) -> int:
    imap = imap_login(relay, creds)
    try:
        typ, data = imap.select("INBOX", readonly=True)
        assert typ == "OK", (typ, data)
        return int(data[0])
    finally:
        imap.logout()


def test_mail_before_auth_refused(relay, users, gpg):
    a, b, _ = users
    smtp = smtp_connect(relay)
    try:
        code, resp = smtp.mail(a.addr)
        if code < 400:
            code, resp = smtp.rcpt(b.addr)
        assert 500 <= code < 600, (code, resp)
    finally:
        smtp.close()
    assert _inbox_count(relay, b) == 0


def test_auth_with_malformed_base64_refused_501(relay):
    smtp = smtp_connect(relay)
    try:
        code, resp = smtp.docmd("AUTH", "PLAIN !!!not-base64!!!")
        assert code == 501, (code, resp)
        # The session goes on.
        code, _ = smtp.noop()
        assert code == 250
    finally:
        smtp.close()


def test_data_without_rcpt_refused(relay, users):
    a = users[0]
    smtp = smtp_login(relay, a)
    try:
        code, resp = smtp.mail(a.addr)
        assert code == 250, (code, resp)
        code, resp = smtp.docmd("DATA")
        # RFC 5321 §3.3: 503 (bad sequence) or 554 (no valid recipients).
        assert code in (503, 554), (code, resp)
    finally:
        smtp.close()


def test_disconnect_mid_data_stores_nothing(relay, users, gpg):
    a, b, _ = users
    msg = make_encrypted_message(gpg, a.addr, [b.addr], payload=os.urandom(50_000))
    smtp = smtp_login(relay, a)
    code, _ = smtp.mail(a.addr)
    assert code == 250
    code, _ = smtp.rcpt(b.addr)
    assert code == 250
    code, _ = smtp.docmd("DATA")
    assert code == 354
    smtp.sock.sendall(msg[: len(msg) // 2])
    smtp.sock.close()
    smtp.close()
    # The relay lives on, stored nothing, and takes the next message.
    smtp = smtp_login(relay, a)
    try:
        assert smtp.sendmail(a.addr, [b.addr], msg) == {}
    finally:
        smtp.quit()
    [stored] = _fetch_all(relay, b, 1)
    assert _inbox_count(relay, b) == 1
    assert email.message_from_bytes(stored).get_payload()[1].get_payload().strip() == \
        email.message_from_bytes(msg).get_payload()[1].get_payload().strip()


def test_dot_stuffing_round_trip(relay, users, gpg):
    """Lines that start with '.' (here in the MIME preamble) survive submission."""
    a, b, _ = users
    msg = make_encrypted_message(gpg, a.addr, [b.addr])
    head, sep, body = msg.partition(b"\r\n\r\n")
    preamble = b".\r\n..\r\n.leading dot\r\n"
    msg = head + sep + preamble + body
    smtp = smtp_login(relay, a)
    try:
        assert smtp.sendmail(a.addr, [b.addr], msg) == {}  # smtplib dot-stuffs
    finally:
        smtp.quit()
    [stored] = _fetch_all(relay, b, 1)
    assert b"\r\n\r\n" + preamble in stored, stored[:600]
    assert stored.endswith(body), "message body changed in transit"


@pytest.mark.parametrize(
    "localpart, password, why",
    [
        ("abcdefgh", "password123", "local part too short"),
        ("abcdefghij", "password123", "local part too long"),
        ("ABCDEFGHI", "password123", "upper case"),
        ("abcd+efgh", "password123", "charset"),
        ("abcdefghi", "pass1234", "password too short"),
    ],
)
def test_auth_creation_rules(relay, localpart, password, why):
    """SMTP AUTH shares create-on-first-login with IMAP (spec §4.4)."""
    smtp = smtp_connect(relay)
    try:
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            smtp.login(relay.addr(localpart), password)
        assert e.value.smtp_code == 535, (why, e.value)
    finally:
        smtp.close()
    # ... and nothing was created: IMAP refuses the same login too.
    imap = imap_connect(relay)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            imap.login(relay.addr(localpart), password)
    finally:
        imap.shutdown()


def test_auth_foreign_domain_refused(relay):
    smtp = smtp_connect(relay)
    try:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login(f"{random_localpart()}@example.org", "password123")
    finally:
        smtp.close()
