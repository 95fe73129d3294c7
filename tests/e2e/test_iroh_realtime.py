"""Webxdc realtime channels through our own iroh relay (issue 11, "Done when").

Two real Delta Chat cores (deltachat-rpc-server from the venv), one account
each on one chatrelay that advertises nothing but its own iroh relay (no
``iroh_relay`` in chatmail.ini: METADATA names ``http://<ip>``, port 80).
They share a minimal .xdc, both advertise the realtime channel, then send
realtime data both ways until it arrives (the pattern of Delta Chat core's
own test_iroh_webxdc.py). The relay's counters must show both client keys
accepted and packets forwarded between them.

Strict mode (``iroh_realtime_strict.py`` runs the same exchange in a fresh
network namespace whose UDP is dropped, so no direct path can exist) is
used when the machine allows it: root, ``ip`` and ``nft``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import relay_binary
from iroh_realtime_run import exchange

HERE = Path(__file__).resolve().parent


def test_webxdc_realtime_both_ways_through_our_relay(relay_factory, dcf, tmp_path):
    relay = relay_factory.make()
    result = exchange(relay, dcf, tmp_path)
    st = result["stats"]
    assert st["iroh_accepted"] >= 2, st
    assert st["iroh_pairs"] >= 2, st  # A→B and B→A
    assert st["iroh_packets"] > 0 and st["iroh_bytes"] > 0, st
    assert result["a_got"] and result["b_got"], result
    print("realtime:", st)


def _strict_possible() -> str:
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            return f"{tool} not installed"
    return ""


def test_webxdc_realtime_with_udp_dropped(tmp_path):
    """The same exchange in a network namespace where every UDP packet is
    dropped (TURN's 3478 excepted, for the TURN service): what arrives can
    only have gone through our relay's TCP connections."""
    why = _strict_possible()
    assert not why, f"strict realtime test needs root, ip and nft ({why}): run scripts/install-test-deps.sh"
    ns = f"rt-iroh-e2e-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        def in_ns(*cmd, **kw):
            return subprocess.run(["ip", "netns", "exec", ns, *cmd], **kw)

        in_ns("ip", "link", "set", "lo", "up", check=True)
        rules = (
            "table inet rtiroh {\n"
            " chain out { type filter hook output priority 0; policy accept;\n"
            "  udp dport 3478 accept\n  udp sport 3478 accept\n  meta l4proto udp counter drop\n }\n"
            "}\n"
        )
        in_ns("nft", "-f", "-", input=rules.encode(), check=True)
        out = tmp_path / "result.json"
        env = dict(os.environ)
        env.pop("HTTP_PROXY", None)
        env.pop("HTTPS_PROXY", None)
        env.pop("http_proxy", None)
        env.pop("https_proxy", None)
        env["CHATRELAY_BIN"] = str(relay_binary())
        p = in_ns(
            sys.executable, str(HERE / "iroh_realtime_run.py"), str(tmp_path / "run"), str(out),
            env=env, timeout=280, capture_output=True,
        )
        assert p.returncode == 0, (p.stdout.decode()[-4000:], p.stderr.decode()[-8000:])
        result = json.loads(out.read_text())
        drops = in_ns("nft", "list", "table", "inet", "rtiroh", capture_output=True, check=True)
        st = result["stats"]
        assert st["iroh_accepted"] >= 2, st
        assert st["iroh_pairs"] >= 2, st
        assert st["iroh_packets"] > 0, st
        assert result["a_got"] and result["b_got"], result
        print("strict realtime:", st, drops.stdout.decode().replace("\n", " "))
        # The cores did try UDP (direct paths) and it was dropped.
        assert "counter packets 0 " not in drops.stdout.decode(), drops.stdout.decode()
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
