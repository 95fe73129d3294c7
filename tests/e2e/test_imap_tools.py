"""Standard IMAP client tools against the relay (issue "Relay core I", item 8).

"Users can retrieve or delete all stored messages with standard IMAP client
tools": imap_tools and the standard library's imaplib, over 993, 143
(STARTTLS) and 443 (ALPN imap).
"""

from __future__ import annotations

import datetime
import imaplib
import re

from imap_tools import AND, H, MailBox, MailBoxStartTls, MailMessageFlags

from harness import (
    create_account,
    imap_connect,
    imap_login,
    imap_wait_for_messages,
    make_encrypted_message,
    make_plain_message,
    new_creds,
    smtp_login,
    tls_context,
)

REQUIRED_CAPS = {
    "IMAP4REV1", "IDLE", "MOVE", "UIDPLUS", "QUOTA", "METADATA", "ID",
    "AUTH=PLAIN", "XCHATMAIL", "XDELTAPUSH",
}


def _caps(imap: imaplib.IMAP4) -> set[str]:
    typ, data = imap.capability()
    assert typ == "OK", (typ, data)
    return {c.upper() for c in data[0].decode().split()}


def test_capabilities_before_and_after_login(relay):
    creds = new_creds(relay)
    imap = imap_connect(relay)  # 993
    before = _caps(imap)
    assert REQUIRED_CAPS <= before, REQUIRED_CAPS - before
    imap.login(creds.addr, creds.password)
    after = _caps(imap)
    assert REQUIRED_CAPS - {"AUTH=PLAIN"} <= after, REQUIRED_CAPS - after
    imap.logout()

    # 143: STARTTLS offered and LOGIN disabled until TLS.
    plain = imaplib.IMAP4(relay.ip, relay.port("imap_port"), timeout=30)
    try:
        caps = {c.upper() for c in plain.capabilities}
        assert "STARTTLS" in caps and "LOGINDISABLED" in caps, caps
        try:
            typ, _ = plain.login(creds.addr, creds.password)
            assert typ != "OK", "LOGIN accepted over cleartext"
        except imaplib.IMAP4.error:
            pass
    finally:
        plain.shutdown()


def _message(i: int, subject: str, text: str, tag: str) -> bytes:
    m = make_plain_message(f"sender{i}@example.org", ["me@example.org"], text=text, subject=subject)
    return m.replace(b"MIME-Version", f"X-E2E-Tag: {tag}\r\nMIME-Version".encode(), 1)


def test_imap_tools_session(relay):
    creds = new_creds(relay)
    old = datetime.datetime(2020, 5, 17, 12, 0, tzinfo=datetime.timezone.utc)
    with MailBox(relay.ip, relay.port("imaps_port"), timeout=30, ssl_context=tls_context()).login(
        creds.addr, creds.password
    ) as mb:
        names = [f.name for f in mb.folder.list()]
        assert "INBOX" in names, names

        mb.append(_message(1, "alpha", "first message", "one"), "INBOX")
        mb.append(_message(2, "beta", "second message " + "b" * 5000, "two"), "INBOX", dt=old)
        mb.append(_message(3, "gamma", "third message", "three"), "INBOX",
                  flag_set=[MailMessageFlags.SEEN])
        assert mb.folder.status("INBOX")["MESSAGES"] == 3

        msgs = {m.subject: m for m in mb.fetch(mark_seen=False)}
        assert set(msgs) == {"alpha", "beta", "gamma"}
        assert msgs["alpha"].text.strip() == "first message"
        assert msgs["beta"].from_ == "sender2@example.org"
        assert msgs["gamma"].flags == (MailMessageFlags.SEEN,)
        assert msgs["alpha"].flags == ()
        uid = {s: m.uid for s, m in msgs.items()}
        assert int(uid["alpha"]) < int(uid["beta"]) < int(uid["gamma"])

        # SEARCH: subject, flags, dates, size, header.
        assert mb.uids(AND(subject="beta")) == [uid["beta"]]
        assert sorted(mb.uids(AND(seen=False))) == sorted([uid["alpha"], uid["beta"]])
        assert mb.uids(AND(seen=True)) == [uid["gamma"]]
        assert mb.uids(AND(date_lt=datetime.date(2021, 1, 1))) == [uid["beta"]]
        assert sorted(mb.uids(AND(date_gte=datetime.date(2021, 1, 1)))) == sorted(
            [uid["alpha"], uid["gamma"]])
        assert mb.uids(AND(size_gt=4000)) == [uid["beta"]]
        assert mb.uids(AND(header=H("X-E2E-Tag", "three"))) == [uid["gamma"]]

        # Flags.
        mb.flag(uid["alpha"], [MailMessageFlags.SEEN, MailMessageFlags.FLAGGED], True)
        [alpha] = mb.fetch(AND(uid=uid["alpha"]), mark_seen=False)
        assert set(alpha.flags) == {MailMessageFlags.SEEN, MailMessageFlags.FLAGGED}
        mb.flag(uid["alpha"], MailMessageFlags.FLAGGED, False)

        # A folder of our own, and MOVE.
        mb.folder.create("Archive")
        assert "Archive" in [f.name for f in mb.folder.list()]
        mb.move(uid["gamma"], "Archive")
        assert mb.folder.status("Archive")["MESSAGES"] == 1

        # Delete.
        mb.delete(uid["beta"])
        assert mb.uids() == [uid["alpha"]]

    # Everything persisted; now through STARTTLS on 143.
    with MailBoxStartTls(relay.ip, relay.port("imap_port"), timeout=30,
                         ssl_context=tls_context()).login(creds.addr, creds.password) as mb:
        [alpha] = list(mb.fetch(mark_seen=False))
        assert alpha.subject == "alpha"
        assert alpha.flags == (MailMessageFlags.SEEN,)
        mb.folder.set("Archive")
        [gamma] = list(mb.fetch(mark_seen=False))
        assert gamma.subject == "gamma" and gamma.text.strip() == "third message"
        # Retrieve-and-delete everything, as a user leaving the relay would.
        mb.delete(mb.uids())
        assert mb.uids() == []
        mb.folder.set("INBOX")
        mb.delete(mb.uids())
        assert mb.uids() == []
        mb.folder.delete("Archive")
        assert "Archive" not in [f.name for f in mb.folder.list()]


def test_imaplib_fetch_items(relay):
    creds = create_account(relay)
    imap = imap_login(relay, creds)
    try:
        raw = _message(1, "items", "line one\r\nline two", "fetch")
        typ, data = imap.append("INBOX", r"(\Flagged)", imaplib.Time2Internaldate(1600000000), raw)
        assert typ == "OK", (typ, data)
        # UIDPLUS: APPENDUID <uidvalidity> <uid>
        assert b"APPENDUID" in data[0], data
        typ, data = imap.select("INBOX")
        assert typ == "OK" and int(data[0]) == 1
        typ, data = imap.fetch("1", "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)")
        assert typ == "OK", (typ, data)
        line = data[0] if isinstance(data[0], bytes) else data[0][0]
        assert rb"\Flagged" in line
        assert f"RFC822.SIZE {len(raw)}".encode() in line, line
        assert b"ENVELOPE" in line and b'"items"' in line
        assert b"BODYSTRUCTURE" in line and b'"TEXT" "PLAIN"' in line.upper()
        assert b"13-Sep-2020" in line  # INTERNALDATE of 1600000000
        typ, data = imap.fetch("1", "(BODY.PEEK[])")
        assert data[0][1] == raw
        typ, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT X-E2E-TAG)])")
        hdr = data[0][1]
        assert b"Subject: items" in hdr and b"X-E2E-Tag: fetch" in hdr and b"From:" not in hdr
        typ, data = imap.fetch("1", "(BODY.PEEK[]<0.10>)")
        assert data[0][1] == raw[:10]
        typ, data = imap.fetch("1", "(BODY.PEEK[TEXT])")
        assert data[0][1] == raw.split(b"\r\n\r\n", 1)[1]
        typ, data = imap.uid("SEARCH", None, "ALL")
        assert typ == "OK" and len(data[0].split()) == 1
        typ, data = imap.fetch("1", "(FLAGS)")
        assert rb"\Seen" not in data[0], "PEEK must not set \\Seen"
        typ, data = imap.fetch("1", "(BODY[TEXT])")
        typ, data = imap.fetch("1", "(FLAGS)")
        assert rb"\Seen" in data[0], "BODY[] must set \\Seen"
        typ, data = imap.getquotaroot("INBOX")
        assert typ == "OK", (typ, data)
    finally:
        imap.logout()


def test_message_from_smtp_is_retrieved_and_deleted(relay, gpg):
    a, b = create_account(relay, via="smtp"), create_account(relay)
    msg = make_encrypted_message(gpg, a.addr, [b.addr], payload=b"for imap tools")
    smtp = smtp_login(relay, a)
    try:
        assert smtp.sendmail(a.addr, [b.addr], msg) == {}
    finally:
        smtp.quit()
    with MailBox(relay.ip, relay.port("imaps_port"), timeout=30, ssl_context=tls_context()).login(
        b.addr, b.password
    ) as mb:
        [m] = list(mb.fetch(mark_seen=False))
        assert m.from_ == a.addr
        assert m.obj.get_content_type() == "multipart/encrypted"
        mb.delete(m.uid)
        assert mb.uids() == []
        assert mb.folder.status("INBOX")["MESSAGES"] == 0


def test_imap_over_443_with_alpn_imap(relay):
    creds = new_creds(relay)
    imap = imap_connect(relay, port=relay.port("https_port"), alpn=["imap"])
    try:
        assert imap.sock.selected_alpn_protocol() == "imap"
        assert "XCHATMAIL" in _caps(imap)
        typ, _ = imap.login(creds.addr, creds.password)
        assert typ == "OK"
        typ, data = imap.list()
        assert typ == "OK" and any(re.search(rb'"?INBOX"?$', line) for line in data), data
    finally:
        imap.logout()


def test_idle_is_woken_by_delivery(relay, gpg):
    """Raw IDLE: a delivery reaches a waiting session at once (no polling)."""
    a, b = create_account(relay, via="smtp"), create_account(relay)
    imap = imap_login(relay, b)
    try:
        imap_wait_for_messages(imap, "INBOX", 0)
        tag = imap._new_tag()
        imap.send(tag + b" IDLE\r\n")
        assert imap.readline().startswith(b"+"), "no continuation for IDLE"
        smtp = smtp_login(relay, a)
        try:
            msg = make_encrypted_message(gpg, a.addr, [b.addr])
            assert smtp.sendmail(a.addr, [b.addr], msg) == {}
        finally:
            smtp.quit()
        imap.sock.settimeout(10)
        line = imap.readline()
        assert re.match(rb"\* 1 EXISTS", line), line
        imap.send(b"DONE\r\n")
        for _ in range(10):
            line = imap.readline()
            if line.startswith(tag):
                assert b" OK" in line, line
                break
        else:
            raise AssertionError("IDLE not completed after DONE")
        imap.sock.settimeout(30)
    finally:
        imap.logout()

