"""One TURN Allocate (RFC 8656 §7) with REST credentials, from wherever it
runs (the router tests run it in the WAN namespace, through the router's
port mapping). Prints the answer's method/class and XOR-RELAYED-ADDRESS.

usage: turn_allocate.py HOST PORT SECRET
Written from RFC 8489/8656 for the tests; shares nothing with src/turn.
"""
import base64, hashlib, hmac, os, socket, struct, sys, time

MAGIC = 0x2112A442
ALLOCATE = 0x0003


def pad(v):
    return v + b"\0" * ((4 - len(v) % 4) % 4)


def message(attrs, key=None):
    tid = os.urandom(12)
    body = b"".join(struct.pack("!HH", t, len(v)) + pad(v) for t, v in attrs)
    if key:
        # RFC 8489 §14.5: the length covers MESSAGE-INTEGRITY itself.
        head = struct.pack("!HHI", ALLOCATE, len(body) + 24, MAGIC) + tid
        body += struct.pack("!HH", 0x0008, 20) + hmac.new(key, head + body, hashlib.sha1).digest()
    return struct.pack("!HHI", ALLOCATE, len(body), MAGIC) + tid + body, tid


def attributes(b):
    _, length, _ = struct.unpack("!HHI", b[:8])
    out, i = {}, 20
    while i + 4 <= min(len(b), 20 + length):
        t, n = struct.unpack("!HH", b[i : i + 4])
        out[t] = b[i + 4 : i + 4 + n]
        i += 4 + n + (4 - n % 4) % 4
    return out


def ask(sock, server, msg, tid):
    for _ in range(5):
        sock.sendto(msg, server)
        try:
            while True:
                b, _ = sock.recvfrom(4096)
                if b[8:20] == tid:
                    return struct.unpack("!H", b[:2])[0], attributes(b)
        except socket.timeout:
            continue
    sys.exit("no answer")


host, port, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3]
server = (host, port)
user = "%d:test" % (time.time() + 3600)
password = base64.b64encode(hmac.new(secret.encode(), user.encode(), hashlib.sha1).digest()).decode()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
transport = [(0x0019, bytes([17, 0, 0, 0]))]
m, tid = message(transport)
_, a = ask(s, server, m, tid)
realm, nonce = a[0x0014], a[0x0015]
key = hashlib.md5(user.encode() + b":" + realm + b":" + password.encode()).digest()
m, tid = message(transport + [(0x0006, user.encode()), (0x0014, realm), (0x0015, nonce)], key)
t, a = ask(s, server, m, tid)
x = a.get(0x0016)
if x is None:
    print("%#06x no-relayed-address" % t)
else:
    p = struct.unpack("!H", x[2:4])[0] ^ (MAGIC >> 16)
    ip = socket.inet_ntoa(struct.pack("!I", struct.unpack("!I", x[4:8])[0] ^ MAGIC))
    print("%#06x %s:%d" % (t, ip, p))
