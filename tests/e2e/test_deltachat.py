"""Delta Chat end to end (issue "Relay core II", item 6).

Real Delta Chat core (deltachat-rpc-server from the venv) against a real
chatrelay on its own 127.0.0.x address, standard ports, self-signed TLS.
"""

from __future__ import annotations

import os
import re
import time

import requests

from harness import (
    dclogin_params,
    imap_login,
    wait_incoming_msg,
    wait_kind,
    wait_msg_delivered,
    wait_securejoin,
)


def _assert_text_arrives_encrypted(sender, receiver, text, chat=None):
    chat = chat or sender.create_chat(receiver)
    sent = chat.send_text(text)
    msg = wait_incoming_msg(receiver, timeout=60, text=text)
    snap = msg.get_snapshot()
    assert snap.text == text
    assert snap.show_padlock, f"message {text!r} arrived without padlock (not encrypted)"
    assert sent.get_snapshot().show_padlock
    return msg


# --------------------------------------------------------------------------
# accounts
# --------------------------------------------------------------------------


def test_new_endpoint_gives_credentials(relay):
    r = requests.post(relay.https_url("/new"), verify=False, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    data = r.json()
    local, _, domain = data["email"].partition("@")
    assert re.fullmatch(r"[a-z0-9]{9}", local), data["email"]
    assert domain == f"[{relay.ip}]"
    assert len(data["password"]) == 12
    # Self-signed (IP-literal) mode: a dclogin URL that Delta Chat can scan.
    url = data["dclogin_url"]
    p = dclogin_params(url)
    assert p["addr"] == data["email"]
    assert p["p"] == data["password"]
    assert p["v"] == "1"
    assert p["ic"] == "3"
    assert p["ih"] == relay.ip and p["sh"] == relay.ip
    # Two calls, two different accounts.
    other = requests.post(relay.https_url("/new"), verify=False, timeout=30).json()
    assert other["email"] != data["email"]


def test_account_via_new_and_configure(relay, dcf):
    ac = dcf.via_http(relay)
    addr = ac.get_config("configured_addr")
    assert addr == dcf.credentials[ac.id].addr
    assert addr.endswith(f"@[{relay.ip}]")
    dcf.bring_online(ac)
    assert ac.is_configured()


def test_account_via_dclogin_url(relay, dcf):
    ac = dcf.via_dclogin(relay)
    assert ac.get_config("configured_addr") == dcf.credentials[ac.id].addr
    dcf.bring_online(ac)


def test_account_via_login_creates_account(relay, dcf):
    """No /new: Delta Chat logs in with a made-up address; the relay creates it."""
    ac1 = dcf.via_login(relay)
    ac2 = dcf.via_http(relay)
    dcf.bring_online(ac1)
    dcf.bring_online(ac2)
    _assert_text_arrives_encrypted(ac2, ac1, "hello, freshly created account")
    _assert_text_arrives_encrypted(ac1, ac2, "hello back from the created account")


# --------------------------------------------------------------------------
# chatting
# --------------------------------------------------------------------------


def test_securejoin_then_encrypted_text_both_ways(relay, dcf):
    alice = dcf.via_http(relay)
    bob = dcf.via_login(relay)
    dcf.bring_online(alice)
    dcf.bring_online(bob)

    qr = alice.get_qr_code()
    bob.secure_join(qr)
    wait_securejoin(alice, inviter=True)
    wait_securejoin(bob, inviter=False)

    # Core 2.x has no "verified" flag any more: after Secure-Join each side
    # knows the other as a key contact with end-to-end encryption available.
    for ac, other in ((alice, bob), (bob, alice)):
        snap = ac.create_contact(other).get_snapshot()
        assert snap.is_key_contact and snap.e2ee_avail, snap

    _assert_text_arrives_encrypted(alice, bob, "hi bob, this is alice")
    _assert_text_arrives_encrypted(bob, alice, "hi alice, bob here")


def test_group_of_three(relay, dcf):
    ac1, ac2, ac3 = dcf.online(relay, 3)

    group = ac1.create_group("e2e group")
    group.add_contact(ac1.create_contact(ac2), ac1.create_contact(ac3))
    group.send_text("hello group")

    received = {}
    for ac in (ac2, ac3):
        msg = wait_incoming_msg(ac, timeout=60, text="hello group")
        snap = msg.get_snapshot()
        assert snap.show_padlock
        full = snap.chat.get_full_snapshot()
        assert len(full.contact_ids) == 3, full
        received[ac.id] = snap.chat

    # Both accept the group, as their users would.
    received[ac3.id].accept()
    chat2 = received[ac2.id]
    chat2.accept()
    chat2.send_text("reply from member two")
    for ac in (ac1, ac3):
        msg = wait_incoming_msg(ac, timeout=60, text="reply from member two")
        assert msg.get_snapshot().show_padlock


def _imap_sizes(relay, creds):
    """RFC822.SIZE of every message in INBOX (read-only, changes nothing)."""
    imap = imap_login(relay, creds)
    try:
        typ, data = imap.select("INBOX", readonly=True)
        assert typ == "OK", (typ, data)
        if int(data[0]) == 0:
            return []
        typ, data = imap.fetch("1:*", "(RFC822.SIZE)")
        assert typ == "OK", (typ, data)
        sizes = []
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            m = re.search(rb"RFC822\.SIZE (\d+)", line)
            if m:
                sizes.append(int(m.group(1)))
        return sizes
    finally:
        imap.logout()


def _wait_full_download(ac, msg, timeout=90):
    end = time.monotonic() + timeout
    while True:
        snap = msg.get_snapshot()
        if snap.download_state == "Done" and snap.file:
            return snap
        if time.monotonic() > end:
            raise AssertionError(f"attachment not downloaded within {timeout}s: {snap}")
        time.sleep(0.5)


def _send_file_to_offline(relay, dcf, sender, receiver, path):
    """Send with the receiver offline; return the size of the stored message."""
    creds = dcf.credentials[receiver.id]
    before = len(_imap_sizes(relay, creds))
    chat = sender.create_chat(receiver)
    sent = chat.send_file(str(path))
    wait_msg_delivered(sender, sent, timeout=120)
    # Delivered means the relay said 250 on DATA: it is in the INBOX now.
    sizes = _imap_sizes(relay, creds)
    assert len(sizes) > before, "message acknowledged but not in the recipient's INBOX"
    return max(sizes[before:])


def test_attachments_1mb_and_near_size_limit(relay, dcf, tmp_path):
    limit = int(relay.params["max_message_size"])
    sender, receiver = dcf.online(relay, 2)
    # Make sure the key exchange is done, so both files go out encrypted.
    _assert_text_arrives_encrypted(sender, receiver, "files are coming")
    _assert_text_arrives_encrypted(receiver, sender, "ready for files")
    receiver.stop_io()

    one_mb = tmp_path / "one-megabyte.bin"
    one_mb.write_bytes(os.urandom(1_000_000))
    size1 = _send_file_to_offline(relay, dcf, sender, receiver, one_mb)
    # The encoded message is bigger than the file (base64, encryption, armor):
    # aim the second file at ~92% of the relay's limit.
    ratio = size1 / 1_000_000
    near = tmp_path / "near-limit.bin"
    near.write_bytes(os.urandom(int(0.92 * limit / ratio)))
    size2 = _send_file_to_offline(relay, dcf, sender, receiver, near)
    assert 0.8 * limit <= size2 <= limit, (size2, limit)

    receiver.start_io()
    # Distinct messages (core may announce a big one twice: pre- and full message).
    msgs = {}
    end = time.monotonic() + 180
    while len(msgs) < 2:
        msg = wait_incoming_msg(receiver, timeout=max(1, end - time.monotonic()),
                                exclude=tuple(msgs))
        msgs[msg.id] = msg
    got = {}
    for msg in msgs.values():
        snap = _wait_full_download(receiver, msg)
        assert snap.show_padlock
        with open(snap.file, "rb") as f:
            got[snap.file_name] = f.read()
    assert got.get("one-megabyte.bin") == one_mb.read_bytes()
    assert got.get("near-limit.bin") == near.read_bytes()


def test_message_received_while_idle(relay, dcf):
    """The receiver sits in IMAP IDLE; the new message must be pushed to it."""
    sender, receiver = dcf.online(relay, 2)
    _assert_text_arrives_encrypted(sender, receiver, "warm-up")
    # Back to IDLE after the warm-up message.
    wait_kind(receiver, "ImapInboxIdle", timeout=60)
    t0 = time.monotonic()
    sender.create_chat(receiver).send_text("wake up")
    msg = wait_incoming_msg(receiver, timeout=20, text="wake up")
    elapsed = time.monotonic() - t0
    assert msg.get_snapshot().show_padlock
    # Core's fallback poll is far slower than this; only IDLE delivers in time.
    assert elapsed < 20, elapsed


def test_offline_recipient_gets_message_after_relay_restart(relay, dcf):
    """Accepted means durable: a message waits in the store across a restart."""
    sender, receiver = dcf.online(relay, 2)
    _assert_text_arrives_encrypted(sender, receiver, "before the restart")
    receiver.stop_io()
    sent = sender.create_chat(receiver).send_text("kept across the restart")
    wait_msg_delivered(sender, sent, timeout=60)
    sender.stop_io()
    relay.restart()
    receiver.start_io()
    msg = wait_incoming_msg(receiver, timeout=90, text="kept across the restart")
    assert msg.get_snapshot().show_padlock


def test_underscore_domain_mode(relay_factory, dcf):
    """A `_`-prefixed mail_domain: self-signed TLS, addresses in that domain."""
    relay = relay_factory.make(mail_domain="_chatrelay.test")
    r = requests.post(relay.https_url("/new"), verify=False, timeout=30)
    assert r.status_code == 200, r.text
    data = r.json()
    assert re.fullmatch(r"[a-z0-9]{9}@_chatrelay\.test", data["email"]), data["email"]
    assert dclogin_params(data["dclogin_url"])["ic"] == "3"
    ac1, ac2 = dcf.online(relay, 2)
    assert ac1.get_config("configured_addr").endswith("@_chatrelay.test")
    _assert_text_arrives_encrypted(ac1, ac2, "hello underscore")
    _assert_text_arrives_encrypted(ac2, ac1, "hello back")


def test_starttls_ports_and_alpn_443(relay, dcf):
    """Delta Chat on 143/587 (STARTTLS) and on 443 (ALPN imap/smtp), not just 993/465."""
    ac_starttls = dcf.via_http(relay, imapPort=143, imapSecurity="starttls",
                               smtpPort=587, smtpSecurity="starttls")
    ac_443 = dcf.via_http(relay, imapPort=443, imapSecurity="ssl",
                          smtpPort=443, smtpSecurity="ssl")
    dcf.bring_online(ac_starttls)
    dcf.bring_online(ac_443)
    for ac, port in ((ac_starttls, 143), (ac_443, 443)):
        [t] = ac.list_transports()
        assert t["imapPort"] == port, t
    _assert_text_arrives_encrypted(ac_starttls, ac_443, "from 587 to 443")
    _assert_text_arrives_encrypted(ac_443, ac_starttls, "from 443 to 587")
