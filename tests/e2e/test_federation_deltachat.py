"""Delta Chat end to end across two relays (issue "Federation", Tests).

Two IP-literal chatrelays on their own 127.0.0.x addresses federate over
HTTPS /mxdeliv (and SMTP on 25 as fallback) with relaxed TLS, as upstream
IP-literal relays do. Real Delta Chat core on both sides.
"""

from __future__ import annotations

import os
import time

from harness import (
    wait_incoming_msg,
    wait_kind,
    wait_securejoin,
)


def _text_both_ways(a, b, text):
    chat = a.create_chat(b)
    chat.send_text(text)
    msg = wait_incoming_msg(b, timeout=90, text=text)
    snap = msg.get_snapshot()
    assert snap.show_padlock, f"{text!r} arrived unencrypted"
    return msg


def test_securejoin_chat_group_receipts_and_file_across_relays(relay_factory, dcf, tmp_path):
    r1 = relay_factory.make()
    r2 = relay_factory.make()
    alice = dcf.via_http(r1)
    bob = dcf.via_http(r2)
    carol = dcf.via_http(r2)
    for ac in (alice, bob, carol):
        dcf.bring_online(ac)
    assert alice.get_config("configured_addr").endswith(f"@[{r1.ip}]")
    assert bob.get_config("configured_addr").endswith(f"@[{r2.ip}]")

    # Secure-Join across relays (the vc-request travels in cleartext; the
    # rest is encrypted).
    bob.secure_join(alice.get_qr_code())
    wait_securejoin(alice, inviter=True)
    wait_securejoin(bob, inviter=False)

    # 1:1 both ways, encrypted.
    _text_both_ways(alice, bob, "hello bob on the other relay")
    msg = _text_both_ways(bob, alice, "hello alice, from relay two")

    # Read receipt: alice reads bob's message, bob sees it as read.
    alice.set_config("mdns_enabled", "1")
    bob.set_config("mdns_enabled", "1")
    alice.mark_seen_messages([msg])
    wait_kind(bob, "MsgRead", timeout=90)

    # A group with members on both relays.
    carol.secure_join(alice.get_qr_code())
    wait_securejoin(carol, inviter=False)
    group = alice.create_group("across relays")
    group.add_contact(alice.create_contact(bob), alice.create_contact(carol))
    group.send_text("hello group across relays")
    for ac in (bob, carol):
        got = wait_incoming_msg(ac, timeout=90, text="hello group across relays")
        snap = got.get_snapshot()
        assert snap.show_padlock
        assert len(snap.chat.get_full_snapshot().contact_ids) == 3

    # An attachment, bytes identical.
    data = os.urandom(200_000)
    path = tmp_path / "across.bin"
    path.write_bytes(data)
    alice.create_chat(bob).send_file(str(path))
    got = wait_incoming_msg(bob, timeout=120)
    snap = got.get_snapshot()
    end = time.monotonic() + 90
    while not (snap.download_state == "Done" and snap.file):
        assert time.monotonic() < end, f"attachment not downloaded: {snap}"
        time.sleep(0.5)
        snap = got.get_snapshot()
    with open(snap.file, "rb") as f:
        assert f.read() == data
    assert snap.show_padlock
