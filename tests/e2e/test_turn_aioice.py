"""A second TURN client library against our TURN server (issue 11,
done-when): PyPI ``aioice`` allocates with REST credentials taken from IMAP
METADATA (as Delta Chat gets them), binds a channel and exchanges data with
a UDP peer both ways; wrong credentials cannot allocate.

The relay runs with ``turn_allow_loopback_peers_for_tests`` (the peer is on
loopback, which is refused otherwise).
"""

from __future__ import annotations

import asyncio
import re
import socket

import aioice.stun
import aioice.turn
import pytest

from harness import create_account, imap_login


def _turn_metadata(relay, creds) -> tuple[str, int, str, str]:
    imap = imap_login(relay, creds)
    try:
        typ, data = imap._simple_command(
            "GETMETADATA", '""', "(/shared/vendor/deltachat/turn)")
        assert typ == "OK", (typ, data)
        typ, data = imap._untagged_response(typ, data, "METADATA")
        raw = b"".join(p[1] if isinstance(p, tuple) else b"" for p in data).decode()
    finally:
        imap.logout()
    m = re.fullmatch(r"([^:]+):(\d+):(\d+):(.+)", raw.strip())
    assert m, raw
    return m.group(1), int(m.group(2)), m.group(3), m.group(4)


class _Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()

    def datagram_received(self, data, addr) -> None:
        self.queue.put_nowait((data, addr))


async def _exchange(server, user, password, peer_ip) -> int:
    loop = asyncio.get_running_loop()
    transport, proto = await aioice.turn.create_turn_endpoint(
        _Collect, server_addr=server, username=user, password=password)
    peer_t, peer = await loop.create_datagram_endpoint(_Collect, local_addr=(peer_ip, 0))
    try:
        relayed = transport.get_extra_info("sockname")
        peer_addr = peer_t.get_extra_info("sockname")
        n = 0
        for i in range(10):
            msg = f"ping {i}".encode() * (i + 1)
            transport.sendto(msg, peer_addr)
            data, src = await asyncio.wait_for(peer.queue.get(), 5)
            assert data == msg
            assert src == relayed, (src, relayed)
            peer_t.sendto(b"pong " + msg, relayed)
            data, src = await asyncio.wait_for(proto.queue.get(), 5)
            assert data == b"pong " + msg
            assert src == peer_addr
            n += 1
        return n
    finally:
        transport.close()
        peer_t.close()


def test_aioice_allocates_and_relays(relay_factory):
    relay = relay_factory.make(turn_allow_loopback_peers_for_tests="true")
    creds = create_account(relay)
    host, port, user, password = _turn_metadata(relay, creds)
    assert host == relay.ip and port == 3478
    n = asyncio.run(_exchange((host, port), user, password, relay.ip))
    assert n == 10


def test_aioice_wrong_credentials_get_401(relay_factory):
    relay = relay_factory.make()
    creds = create_account(relay)
    host, port, user, _ = _turn_metadata(relay, creds)

    async def attempt():
        await aioice.turn.create_turn_endpoint(
            _Collect, server_addr=(host, port), username=user, password="wrong")

    with pytest.raises(aioice.stun.TransactionFailed) as e:
        asyncio.run(asyncio.wait_for(attempt(), 20))
    assert e.value.response.attributes["ERROR-CODE"][0] == 401
