#!/usr/bin/env python3
"""Write the seed corpus of the iroh_frame fuzz target to
fuzz/corpus/iroh_frame/ (run from the repository root; needs the
`cryptography` package for the ed25519 signatures)."""
import os
import struct
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MAGIC = "RELAY🔑".encode()


def frame(t, p=b""):
    return bytes([t]) + struct.pack(">I", len(p)) + p


def client_info(key, msg, signed=None):
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return frame(2, MAGIC + pub + key.sign(msg if signed is None else signed) + msg)


k = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
peer = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
peer_pub = peer.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
seeds = {
    "session-v3": client_info(k, b"\x03") + frame(4, peer_pub + b"hello") + frame(12, b"12345678")
    + frame(6) + frame(7, b"\x01"),
    "client-info-v4": client_info(k, b"\x04"),
    "client-info-v128": client_info(k, b"\x80\x01"),
    "client-info-bad-signature": client_info(k, b"\x03", b"\x04"),
    "client-info-wrong-magic": b"\x02" + client_info(k, b"\x03")[1:5] + b"RELAX" + client_info(k, b"\x03")[10:],
    "server-frames": frame(5, peer_pub + b"data") + frame(8, peer_pub) + frame(13, b"abcdefgh")
    + frame(14, b"not authenticated") + frame(15, struct.pack(">II", 1000, 5000)),
    "big-packet": frame(4, peer_pub + b"\xab" * 65536),
    "packet-over-64k": frame(4, peer_pub + b"\xab" * 65537),
    "oversize-header": b"\x04\x00\x20\x00\x00",
    "truncated": frame(4, peer_pub + b"x" * 100)[:60],
    "http-garbage": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "note-preferred-2": frame(7, b"\x02"),
    "unknown-type": frame(9, b"mesh"),
}
out = Path("fuzz/corpus/iroh_frame")
out.mkdir(parents=True, exist_ok=True)
for name, data in seeds.items():
    (out / name).write_bytes(data)
print(f"{len(seeds)} seeds in {out}")
