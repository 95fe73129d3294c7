"""Invite-only registration with the real Delta Chat core (issue 12).

An IP-literal relay with ``registration = invite``: a ``dclogin:`` invite
from ``chatrelay invite new`` (the QR an operator shows) scanned with
``add_transport_from_qr`` creates the account and chats end to end
encrypted with a second one made through ``/new?t=``; an address without
an invite cannot be set up; a used token is refused with its JSON reason,
and opens no other address.

(The ``DCACCOUNT:`` form of domain relays needs a certificate Delta Chat
trusts, which a loopback test cannot have; tests/registration.rs covers
that path over HTTPS.)
"""

from __future__ import annotations

import subprocess
import urllib.parse

import pytest
import requests

from harness import dclogin_params, new_creds, run_with_deadline, wait_incoming_msg


def invite_new(relay) -> str:
    p = subprocess.run(
        [str(relay.binary), "invite", "new", "--config", str(relay.config_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, p.stderr
    return next(ln for ln in p.stdout.splitlines() if ln.startswith("dclogin:"))


def scan(dc, link: str):
    ac = dc.dc.add_account()
    run_with_deadline(lambda: ac.add_transport_from_qr(link), 120, f"scan {link}")
    assert ac.is_configured()
    return ac


def test_invite_only_relay_with_delta_chat(relay_factory, dc, dcf):
    relay = relay_factory.make(registration="invite")

    # Without an invite: no account, Delta Chat cannot configure.
    with pytest.raises(Exception):
        dcf.via_login(relay)
    r = requests.post(relay.https_url("/new"), verify=False, timeout=30)
    assert r.status_code == 403 and "invite code" in r.json()["reason"], r.text

    # An operator's dclogin: invite, scanned.
    link1 = invite_new(relay)
    alice = scan(dc, link1)
    assert alice.get_config("configured_addr") == dclogin_params(link1)["addr"]

    # A second invite redeemed through /new?t= (what a web page or script does).
    token2 = dclogin_params(invite_new(relay))["p"]
    r = requests.post(relay.https_url(f"/new?t={token2}"), verify=False, timeout=30)
    assert r.status_code == 200, r.text
    bob = scan(dc, r.json()["dclogin_url"])

    # Reused: refused with the reason; and the first token opens no other address.
    again = requests.post(relay.https_url(f"/new?t={token2}"), verify=False, timeout=30)
    assert again.status_code == 403, again.text
    assert again.json()["reason"] == "this invite code has already been used"
    other = new_creds(relay)
    forged = link1.replace(urllib.parse.quote(dclogin_params(link1)["addr"], safe="@[]"),
                           urllib.parse.quote(other.addr, safe="@[]"))
    assert forged != link1
    with pytest.raises(Exception):
        scan(dc, forged)

    for ac in (alice, bob):
        dcf.bring_online(ac)
    chat = alice.create_chat(bob)
    chat.send_text("hello from an invited profile")
    msg = wait_incoming_msg(bob, timeout=90, text="hello from an invited profile")
    assert msg.get_snapshot().show_padlock
    bob.create_chat(alice).send_text("invited too")
    back = wait_incoming_msg(alice, timeout=90, text="invited too")
    assert back.get_snapshot().show_padlock
