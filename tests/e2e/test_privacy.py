"""Privacy (issue "Relay core II", item 7; design principle 5).

A client talks to the relay only from source address 127.0.0.5 and does a
full exchange over every service (HTTPS /new, SMTP 465/587/443, IMAP
993/143/443, failed logins, a refused message, METADATA, IDLE). Afterwards
the address must appear nowhere: not in the data folder (any file, any
encoding we can think of) and not in the relay's output.

Outgoing header scrubbing is checked on the same exchange: `Received`,
`X-Originating-IP`, `X-Mailer`, `User-Agent` are dropped and `Subject`
becomes `[...]`.
"""

from __future__ import annotations

import email
import email.utils
import imaplib
import smtplib
import socket
import ssl
import time
from pathlib import Path

import pytest

from harness import (
    CLIENT_SOURCE_IP,
    Creds,
    https_request,
    imap_connect,
    imap_login,
    imap_wait_for_messages,
    make_encrypted_message,
    make_plain_message,
    smtp_connect,
    smtp_login,
    tls_context,
)

SRC = CLIENT_SOURCE_IP
NEEDLES = [
    SRC.encode(),                       # dotted text
    f"::ffff:{SRC}".encode(),           # IPv4-mapped IPv6 text
    socket.inet_aton(SRC),              # 4 packed bytes (network order)
    socket.inet_aton(SRC)[::-1],        # ... and little-endian
    SRC.encode("utf-16-le"),
]


def _grep_tree(root: Path) -> list[str]:
    hits = []
    files = 0
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        files += 1
        data = path.read_bytes()
        for needle in NEEDLES:
            pos = data.find(needle)
            if pos >= 0:
                ctx = data[max(0, pos - 60) : pos + 60]
                hits.append(f"{path}: {needle!r} at {pos}: ...{ctx!r}...")
    assert files > 0, f"nothing at all under {root}"
    return hits


def _raw_tls(relay, port, payload: bytes, alpn=None) -> bytes:
    """Send bytes over TLS from SRC and return what comes back (bounded)."""
    sock = socket.create_connection((relay.ip, port), timeout=10, source_address=(SRC, 0))
    with tls_context(alpn).wrap_socket(sock) as s:
        s.sendall(payload)
        out = b""
        end = time.monotonic() + 5
        try:
            while time.monotonic() < end and len(out) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ssl.SSLError, ConnectionError):
            pass
        return out


def test_client_ip_is_neither_stored_nor_logged(relay_factory, gpg):
    # The most verbose logging (CHATRELAY_LOG=trace): nothing may leak even there.
    relay = relay_factory.make(env={"CHATRELAY_LOG": "trace", "RUST_LOG": "trace"})

    # --- HTTPS --------------------------------------------------------------
    a_json = relay.new_account(source_address=SRC)
    a = Creds(a_json["email"], a_json["password"])
    b_json = relay.new_account(source_address=SRC)
    b = Creds(b_json["email"], b_json["password"])
    for method, path in [
        ("GET", "/new"),
        ("GET", "/.well-known/autoconfig/mail/config-v1.1.xml"),
        ("GET", "/robots.txt"),
        ("GET", "/no-such-page"),
    ]:
        status, _, _ = https_request(relay, method, path, source_address=SRC)
        assert 200 <= status < 500, (method, path, status)
    reply = _raw_tls(relay, relay.port("https_port"), b"GARBAGE \x00\x01 HTTP/9\r\n\r\n")
    assert reply == b"" or reply.startswith(b"HTTP/1.1 4"), reply[:100]

    # --- SMTP: logins (create), a failed login, a refused and a good message -
    smtp = smtp_login(relay, a, source_address=SRC)  # 465
    smtp2 = smtp_login(relay, b, port=relay.port("submission_port"), source_address=SRC)  # 587
    smtp2.quit()
    bad = smtp_connect(relay, source_address=SRC)
    with pytest.raises(smtplib.SMTPAuthenticationError):
        bad.login(a.addr, "wrong-password-123")
    bad.close()
    with pytest.raises(smtplib.SMTPDataError) as e:
        smtp.sendmail(a.addr, [b.addr], make_plain_message(a.addr, [b.addr]))
    assert e.value.smtp_code == 523
    msg = make_encrypted_message(
        gpg,
        a.addr,
        [b.addr],
        payload=b"private payload",
        subject="a secret subject",
        extra_headers=[
            ("Received", f"from [{SRC}] (helo=laptop) by somewhere; {email.utils.formatdate()}"),
            ("X-Originating-IP", f"[{SRC}]"),
            ("X-Mailer", f"MailClient/1.0 on {SRC}"),
            ("User-Agent", f"Agent/2.0 ({SRC})"),
        ],
    )
    assert smtp.sendmail(a.addr, [b.addr], msg) == {}
    smtp.quit()
    # Submission over 443 with ALPN smtp, also from SRC.
    smtp443 = smtp_connect(relay, port=relay.port("https_port"), alpn=["smtp"], source_address=SRC)
    smtp443.login(a.addr, a.password)
    assert smtp443.sendmail(a.addr, [b.addr], make_encrypted_message(gpg, a.addr, [b.addr])) == {}
    smtp443.quit()

    # --- IMAP ---------------------------------------------------------------
    bad_imap = imap_connect(relay, port=relay.port("imap_port"), source_address=SRC)  # STARTTLS
    with pytest.raises(imaplib.IMAP4.error):
        bad_imap.login(b.addr, "wrong-password-123")
    bad_imap.shutdown()

    imap = imap_login(relay, b, source_address=SRC)  # 993
    imap_wait_for_messages(imap, "INBOX", 2)
    typ, data = imap.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK"
    stored = email.message_from_bytes(data[0][1])
    for name in ("Received", "X-Originating-IP", "X-Mailer", "User-Agent"):
        assert stored.get(name) is None, f"{name} header was not removed: {stored.get(name)!r}"
    assert stored["Subject"] == "[...]", stored["Subject"]
    assert b"private payload" not in data[0][1]  # still encrypted, of course
    typ, _ = imap.store("1", "+FLAGS", r"(\Seen)")
    assert typ == "OK"
    typ, data = imap._simple_command("SETMETADATA", "INBOX", '(/private/devicetoken "privacytoken1")')
    assert typ == "OK", (typ, data)
    # A short IDLE.
    tag = imap._new_tag()
    imap.send(tag + b" IDLE\r\n")
    assert imap.readline().startswith(b"+")
    imap.send(b"DONE\r\n")
    imap.sock.settimeout(10)
    for _ in range(10):
        if imap.readline().startswith(tag):
            break
    imap.sock.settimeout(30)
    typ, _ = imap.store("1:*", "+FLAGS", r"(\Deleted)")
    assert typ == "OK"
    imap.expunge()
    imap.logout()

    imap443 = imap_connect(relay, port=relay.port("https_port"), alpn=["imap"], source_address=SRC)
    imap443.login(a.addr, a.password)
    imap443.select("INBOX")
    imap443.logout()

    # --- restart once (startup/shutdown paths log too), then look ----------
    relay.restart()
    imap = imap_login(relay, b, source_address=SRC)
    imap.logout()
    relay.stop()

    log_bytes = relay.log_bytes()
    assert b"chatrelay ready" in log_bytes
    hits = _grep_tree(relay.data_dir)
    hits += [f"relay log: {h}" for h in _grep_hits(log_bytes)]
    # Anything else the relay may have written next to its config.
    for path in relay.workdir.iterdir():
        if path.is_file() and path not in (relay.log_path, relay.config_path):
            hits += _grep_tree_file(path)
    assert not hits, "client address found:\n" + "\n".join(hits)


def _grep_hits(data: bytes) -> list[str]:
    out = []
    for needle in NEEDLES:
        pos = data.find(needle)
        if pos >= 0:
            out.append(f"{needle!r} at {pos}: ...{data[max(0, pos - 80):pos + 80]!r}...")
    return out


def _grep_tree_file(path: Path) -> list[str]:
    return [f"{path}: {h}" for h in _grep_hits(path.read_bytes())]
