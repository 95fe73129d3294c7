"""The webxdc realtime exchange of test_iroh_realtime.py, importable and
runnable on its own (``python iroh_realtime_run.py WORKDIR RESULT.json``:
starts one relay and one Delta Chat core itself, writes the result as JSON).
The standalone form is what the strict test runs inside a network
namespace whose UDP is dropped.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    DC,
    DEFAULT_PARAMS,
    PORTS,
    DCAccountFactory,
    Relay,
    _relay_env,
    relay_binary,
    wait_event,
    wait_incoming_msg,
)

REALTIME_DEADLINE = 120.0


def make_xdc(path: Path) -> Path:
    """A minimal webxdc app: a zip with an index.html (and a name)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("index.html", "<!doctype html><html><body>realtime</body></html>\n")
        z.writestr("manifest.toml", 'name = "realtime check"\n')
    return path


def relay_stats(relay: Relay) -> dict:
    """The relay's counters from its control socket (``stats``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(Path(relay.params["data_dir"]) / "control.sock"))
        s.sendall(b"stats\n")
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    line = out.decode().strip()
    assert line.startswith("ok "), line
    return {k: int(v) for k, v in (kv.split("=") for kv in line[3:].split())}


def _send_until_received(sender_msg, receiver, receiver_msg_id, payload: bytes,
                         deadline: float) -> bool:
    """Resend ``payload`` every second until ``receiver`` gets it."""
    stop = threading.Event()

    def pump():
        while not stop.is_set():
            try:
                sender_msg.send_webxdc_realtime_data(payload)
            except Exception:  # noqa: BLE001 - the channel may not be up yet
                pass
            stop.wait(1.0)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        ev = wait_event(
            receiver,
            lambda e: e.kind == "WebxdcRealtimeData"
            and e.msg_id == receiver_msg_id
            and bytes(e.data) == payload,
            timeout=max(1.0, deadline - time.monotonic()),
            what=f"realtime data {payload!r}",
        )
        return ev is not None
    finally:
        stop.set()
        t.join(5)


def exchange(relay: Relay, dcf: DCAccountFactory, tmp: Path) -> dict:
    """Two accounts on ``relay`` share an .xdc and exchange realtime data
    both ways. Returns what arrived and the relay's counters."""
    a = dcf.via_http(relay)
    b = dcf.via_http(relay)
    for ac in (a, b):
        ac.set_config("webxdc_realtime_enabled", "1")
        dcf.bring_online(ac)
    # Both learn the relay's advertised iroh relay from METADATA at login.
    chat_a = a.create_chat(b)
    b.create_chat(a)
    xdc = make_xdc(tmp / "realtime.xdc")
    msg_a = chat_a.send_message(text="play", file=str(xdc))
    msg_b = wait_incoming_msg(b, text="play", timeout=90)
    assert msg_b.get_snapshot().text == "play"

    msg_a.send_webxdc_realtime_advertisement()
    msg_b.send_webxdc_realtime_advertisement()
    deadline = time.monotonic() + REALTIME_DEADLINE
    b_got = _send_until_received(msg_a, b, msg_b.id, b"from a to b", deadline)
    a_got = _send_until_received(msg_b, a, msg_a.id, b"from b to a", deadline)
    return {"a_got": a_got, "b_got": b_got, "stats": relay_stats(relay),
            "relay_url": relay.ip}


def main(workdir: str, result: str) -> None:
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    ip = "127.0.0.100"
    params = {"mail_domain": ip, **DEFAULT_PARAMS, "listen_address": ip,
              "data_dir": str(work / "relay" / "data")}
    params.update({k: str(v) for k, v in PORTS.items()})
    (work / "relay").mkdir(exist_ok=True)
    relay = Relay(relay_binary(), work / "relay", ip, params, _relay_env(None))
    relay.start()
    dc = DC(work / "dc-accounts", work / "deltachat-rpc-server.log")
    try:
        out = exchange(relay, DCAccountFactory(dc), work)
        Path(result).write_text(json.dumps(out))
    finally:
        dc.close()
        relay.stop()
        sys.stderr.write(relay.log_tail(40) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
