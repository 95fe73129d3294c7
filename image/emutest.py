#!/usr/bin/env python3
"""Emulation test of the chatrelay appliance image (run by image/test.sh).

Boots the SD-card image that image/build.sh assembled, under QEMU (TCG):

* ``virt`` (aarch64), virtio disk = a fresh copy of sdcard.img grown to 2 GiB,
  user-mode network with ``restrict=on`` and only host-forwarded ports on
  127.0.0.1 (IMAPS, SMTPS, HTTPS, SSH). Boot A: first boot (data partition grown),
  console status/invite, read-only root, HTTPS /new, IMAP APPEND+FETCH over
  TLS, SMTPS delivery, the Delta Chat core e2e (project venv), then a hard kill
  of QEMU while messages are being delivered. Boot B on the same disk: every
  acknowledged message is there; graceful reboot (Ctrl-Alt-Del -> init ->
  rcK). Boot C on the same disk with chatmail.ini, wifi.txt and
  authorized_keys on the boot partition: the relay honours them, SSH with the
  key only (and a look from inside), data still intact, then the frozen
  watchdog daemon gets the VM reset by the hardware watchdog; a backup is
  taken over SSH. Boot F: a fresh disk with that backup on its boot
  partition restores it at first boot (accounts, messages, config). Boot D: a disk
  without a data partition gets one. Boot E: domain mode on the console.
* ``raspi3b``: smoke boot of the SD image itself (firmware, DTBs, config.txt,
  cmdline.txt present; the relay answers over USB networking).

Every wait has a wall-clock deadline; QEMU is killed by its own PID. Prints a
closing line ``N passed, M failed``; exits non-zero if anything failed.
"""

from __future__ import annotations

import email.utils
import imaplib
import json
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = Path(os.environ.get("CHATRELAY_IMAGE_WORK", REPO / "target" / "image"))
BIN = WORK / "binaries"
RUN = WORK / "run"
# Boots to run, for working on one part: A (A, B, C and F, one chain: the
# disk, accounts and backup carry over), D, E, R (raspi3b). CI runs all.
BOOTS = set((os.environ.get("IMAGE_TEST_BOOTS") or "A,D,E,R").upper().replace(" ", "").split(","))
VENV_PY = REPO / ".venv" / "bin" / "python"

HOST = "127.0.0.1"
# host ports (127.0.0.1 only) -> guest ports: free ones picked at start
# (another run of this test may be going on), or fixed by IMAGE_TEST_*_PORT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port(name: str) -> int:
    v = os.environ.get(f"IMAGE_TEST_{name}_PORT")
    return int(v) if v else _free_port()


P_IMAPS, P_SMTPS, P_HTTPS, P_RPI, P_SSH, P_HTTP = (
    _port(n) for n in ("IMAPS", "SMTPS", "HTTPS", "RPI", "SSH", "HTTP"))

VIRT_CMDLINE = "root=/dev/vda2 rootfstype=squashfs ro rootwait console=tty1 console=ttyAMA0,115200 loglevel=4"

results: list[tuple[str, bool, str]] = []
figures: dict[str, str] = {}


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(name: str, fn, *a, **kw):
    """Run one named check; record pass/fail; never raise."""
    t0 = time.monotonic()
    try:
        value = fn(*a, **kw)
        results.append((name, True, ""))
        say(f"PASSED {name} ({time.monotonic() - t0:.1f}s)")
        return value
    except Exception as e:  # noqa: BLE001 - every failure is reported
        detail = f"{type(e).__name__}: {e}"
        results.append((name, False, detail))
        say(f"FAILED {name}: {detail}")
        if os.environ.get("IMAGE_TEST_VERBOSE"):
            traceback.print_exc()
        return None


# --------------------------------------------------------------------------
# QEMU
# --------------------------------------------------------------------------


class VM:
    def __init__(self, name: str, disk: Path, machine: str = "virt", fwd: dict | None = None,
                 guestfwd: list[str] | None = None):
        self.name = name
        self.guestfwd = guestfwd or []
        self.disk = disk
        self.machine = machine
        self.fwd = fwd or {}
        self.dir = RUN / name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.serial = self.dir / "serial.log"
        self.monitor = self.dir / "monitor.sock"
        self.proc: subprocess.Popen | None = None
        self.t_start = 0.0

    def argv(self) -> list[str]:
        hostfwd = ",".join(f"hostfwd=tcp:{HOST}:{h}-:{g}" for h, g in self.fwd.items())
        netdev = f"user,id=n0,restrict=on,{hostfwd}" + "".join(f",guestfwd={g}" for g in self.guestfwd)
        common = [
            "qemu-system-aarch64", "-display", "none", "-no-reboot",
            "-serial", f"file:{self.serial}",
            "-monitor", f"unix:{self.monitor},server,nowait",
            "-kernel", str(BIN / "Image"), "-initrd", str(BIN / "initrd.img"),
        ]
        if self.machine == "virt":
            return common + [
                "-M", "virt", "-cpu", "cortex-a53", "-smp", "2", "-m", "1024",
                "-append", VIRT_CMDLINE,
                "-drive", f"if=none,file={self.disk},format=raw,id=d0",
                "-device", "virtio-blk-pci,drive=d0",
                "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,romfile=",
                "-device", "i6300esb", "-device", "virtio-keyboard-pci",
            ]
        # raspi3b: the kernel command line is the one on the SD card
        # plus chatrelay.nowatchdog: QEMU's bcm2835 power-management block
        # resets the machine at once when the watchdog is armed.
        cmdline = mtype(self.disk, "cmdline.txt").strip() + " chatrelay.nowatchdog"
        return common + [
            "-M", "raspi3b", "-dtb", str(BIN / "bcm2837-rpi-3-b.dtb"),
            "-append", cmdline,
            "-drive", f"if=sd,file={self.disk},format=raw",
            "-netdev", netdev, "-usb", "-device", "usb-net,netdev=n0",
        ]

    def start(self) -> "VM":
        self.serial.write_bytes(b"")
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv(), stdin=subprocess.DEVNULL,
            stdout=open(self.dir / "qemu.log", "wb"), stderr=subprocess.STDOUT,
        )
        say(f"{self.name}: qemu {self.machine} started (pid {self.proc.pid})")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def text(self) -> str:
        return self.serial.read_bytes().decode("utf-8", "replace").replace("\r", "")

    def wait_serial(self, pattern: str, timeout: float) -> re.Match:
        end = time.monotonic() + timeout
        rx = re.compile(pattern, re.M)
        while True:
            m = rx.search(self.text())
            if m:
                return m
            if time.monotonic() > end:
                raise AssertionError(f"{self.name}: no /{pattern}/ on the console within {timeout:.0f}s; "
                                     f"tail:\n{self.text()[-1500:]}")
            if not self.alive():
                raise AssertionError(f"{self.name}: qemu exited ({self.proc.returncode}); tail:\n{self.text()[-1500:]}")
            time.sleep(0.25)

    def wait_imaps(self, port: int, timeout: float) -> float:
        """Seconds from qemu start until an IMAPS greeting arrives on the forwarded port."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if not self.alive():
                raise AssertionError(f"{self.name}: qemu exited; tail:\n{self.text()[-1500:]}")
            try:
                # short timeouts: before the guest listens, QEMU's forwarder
                # accepts and then just stalls; a long timeout would blur the figure
                with socket.create_connection((HOST, port), timeout=2) as s:
                    with tls().wrap_socket(s, server_hostname=None) as t:
                        t.settimeout(5)
                        greeting = t.recv(200)
                        if greeting.startswith(b"* OK"):
                            return time.monotonic() - self.t_start
                        last = greeting
            except OSError as e:
                last = e
            time.sleep(0.2)
        raise AssertionError(f"{self.name}: IMAPS on {HOST}:{port} not ready within {timeout:.0f}s "
                             f"(last: {last}); console tail:\n{self.text()[-1500:]}")

    def hmp(self, cmd: str) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.monitor))
            time.sleep(0.2)
            s.sendall(cmd.encode() + b"\n")
            time.sleep(0.5)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name}: qemu still running after {timeout:.0f}s; tail:\n{self.text()[-1500:]}")

    def kill(self) -> None:
        """Hard power-off: SIGKILL to this qemu's own PID."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def mtools_env() -> dict:
    return dict(os.environ, MTOOLS_SKIP_CHECK="1")


def mtype(disk: Path, name: str) -> str:
    return subprocess.run(["mtype", "-i", f"{disk}@@4M", f"::{name}"], check=True,
                          capture_output=True, env=mtools_env(), timeout=30).stdout.decode()


def mcopy_in(disk: Path, name: str, data: bytes) -> None:
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        subprocess.run(["mcopy", "-o", "-i", f"{disk}@@4M", f.name, f"::{name}"], check=True,
                       capture_output=True, env=mtools_env(), timeout=30)


def fresh_disk(name: str, size: str) -> Path:
    RUN.mkdir(parents=True, exist_ok=True)
    d = RUN / f"{name}.img"
    shutil.copyfile(BIN / "sdcard.img", d)
    subprocess.run(["truncate", "-s", size, str(d)], check=True)
    return d


# --------------------------------------------------------------------------
# pebble (Debian's ACME test server) on the host, for the domain-mode boot
# --------------------------------------------------------------------------

PEBBLE_IP = os.environ.get("IMAGE_TEST_PEBBLE_IP", "127.0.0.200")
# the guest reaches pebble at this address through a guestfwd rule
# (restrict=on lets only explicit forwards through)
PEBBLE_GUEST_ADDR = "10.0.2.100"
DOMAIN = "chat.example.org"


class Pebble:
    """pebble with validation on: its DNS (pebble-challtestsrv) answers every
    name with 127.0.0.1, and its tlsPort/httpPort are the host ports QEMU
    forwards to the guest's 443/80, so pebble's validation really reaches
    the relay in the guest."""

    def __init__(self, tls_port: int, http_port: int):
        self.dir = Path(tempfile.mkdtemp(prefix="img-pebble-"))
        d = self.dir
        self.procs: list[subprocess.Popen] = []

        def ossl(*a):
            subprocess.run(["openssl", *a], check=True, capture_output=True, timeout=60, cwd=d)
        # a CA for pebble's own HTTPS listener (the guest's acme_extra_ca)
        ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=chatrelay image test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
        ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "pebble.key", "-out", "pebble.csr", "-subj", "/CN=pebble")
        (d / "ext").write_text(f"subjectAltName=IP:{PEBBLE_GUEST_ADDR},IP:{PEBBLE_IP}\n"
                               "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        ossl("x509", "-req", "-in", "pebble.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "pebble.pem", "-days", "2", "-extfile", "ext")
        # free ports (another run of this test may be going on); the DNS
        # port must be free for UDP and TCP
        self.acme_port, self.mgmt_port, mgmt_dns = (self._free(), self._free(), self._free())
        for _ in range(20):
            dns_port = self._free()
            if self._udp_free(dns_port):
                break
        else:
            raise AssertionError(f"no port on {PEBBLE_IP} free for both UDP and TCP")
        (d / "pebble.json").write_text(json.dumps({"pebble": {
            "listenAddress": f"{PEBBLE_IP}:{self.acme_port}",
            "managementListenAddress": f"{PEBBLE_IP}:{self.mgmt_port}",
            "certificate": str(d / "pebble.pem"), "privateKey": str(d / "pebble.key"),
            "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
            "externalAccountBindingRequired": False}}))
        for t in ("pebble", "pebble-challtestsrv", "openssl"):
            assert shutil.which(t), f"{t} missing (scripts/install-test-deps.sh installs it)"
        dns_args = ["pebble-challtestsrv", "-dns01", f"{PEBBLE_IP}:{dns_port}", "-http01", "", "-https01", "",
                    "-tlsalpn01", "", "-management", f"{PEBBLE_IP}:{mgmt_dns}",
                    "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""]
        dns = subprocess.Popen(dns_args + ["-doh", ""], stdout=open(d / "dns.log", "wb"), stderr=subprocess.STDOUT)
        time.sleep(0.3)
        if dns.poll() is not None:   # older builds have no -doh flag
            dns = subprocess.Popen(dns_args, stdout=open(d / "dns.log", "wb"), stderr=subprocess.STDOUT)
        self.procs.append(dns)
        self.procs.append(subprocess.Popen(
            ["pebble", "-config", str(d / "pebble.json"), "-dnsserver", f"{PEBBLE_IP}:{dns_port}"],
            env=dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0"),
            stdout=open(d / "pebble.log", "wb"), stderr=subprocess.STDOUT))
        end = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection((PEBBLE_IP, self.acme_port), timeout=1), \
                        socket.create_connection((PEBBLE_IP, self.mgmt_port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < end, f"pebble did not start: {self.log()[-1500:]}"
                time.sleep(0.2)

    def log(self) -> str:
        return (self.dir / "pebble.log").read_text(errors="replace")

    def ca_pem(self) -> bytes:
        return (self.dir / "ca.pem").read_bytes()

    def root(self) -> Path:
        """pebble's issuing root (made anew at each start), as a PEM file."""
        ctx = ssl.create_default_context(cafile=str(self.dir / "ca.pem"))
        with urllib.request.urlopen(f"https://{PEBBLE_IP}:{self.mgmt_port}/roots/0", context=ctx,
                                    timeout=30) as r:
            pem = r.read()
        f = self.dir / "root.pem"
        f.write_bytes(pem)
        return f

    def guestfwd(self) -> str:
        return (f"tcp:{PEBBLE_GUEST_ADDR}:14000-cmd:{sys.executable} {HERE / 'guestfwd.py'} "
                f"{PEBBLE_IP} {self.acme_port}")

    @staticmethod
    def _free() -> int:
        with socket.socket() as c:
            c.bind((PEBBLE_IP, 0))
            return c.getsockname()[1]

    @staticmethod
    def _udp_free(port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind((PEBBLE_IP, port))
                return True
            except OSError:
                return False

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# protocol helpers (stdlib only)
# --------------------------------------------------------------------------


def tls() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def new_account() -> dict:
    """POST /new, then log in once: the relay creates the account on first login."""
    req = urllib.request.Request(f"https://{HOST}:{P_HTTPS}/new", method="POST", data=b"")
    with urllib.request.urlopen(req, context=tls(), timeout=60) as r:
        assert r.status == 200, r.status
        data = json.loads(r.read())
    assert "@" in data["email"] and data["password"], data
    assert data.get("dclogin_url", "").startswith("dclogin:"), data
    imap(data).logout()
    return data


def imap(acct: dict, port: int = P_IMAPS) -> imaplib.IMAP4_SSL:
    c = imaplib.IMAP4_SSL(HOST, port, ssl_context=tls(), timeout=60)
    c.login(acct["email"], acct["password"])
    return c


class Gpg:
    def __init__(self):
        # a fresh short path each run: an agent left over from an earlier run
        # keeps its socket name; the agent is stopped in close()
        self.home = Path(tempfile.mkdtemp(prefix="img-gpg-"))
        self.uid = "image-test@example.invalid"
        self.run("--batch", "--passphrase", "", "--quick-generate-key", self.uid, "default", "default", "never")

    def run(self, *args, input: bytes | None = None) -> bytes:
        gpg = shutil.which("gpg")
        assert gpg, "gpg is not installed (image/install-deps.sh installs gnupg)"
        p = subprocess.run([gpg, "--homedir", str(self.home), "--no-tty", "--quiet", *args],
                           input=input, capture_output=True, timeout=60)
        if p.returncode:
            raise RuntimeError(f"gpg failed: {p.stderr.decode(errors='replace')}")
        return p.stdout

    def close(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"],
                       capture_output=True, timeout=30)
        shutil.rmtree(self.home, ignore_errors=True)

    def armored(self, payload: bytes) -> str:
        return self.run("--batch", "--trust-model", "always", "--armor", "--encrypt", "-r", self.uid,
                        input=payload).decode("ascii")


def encrypted_message(gpg: Gpg, frm: str, to: str, msgid: str) -> bytes:
    b = "b-" + "".join(random.choices(string.ascii_lowercase, k=16))
    text = (
        f"From: <{frm}>\nTo: <{to}>\nSubject: ...\nDate: {email.utils.formatdate()}\n"
        f"Message-ID: <{msgid}>\nMIME-Version: 1.0\nChat-Version: 1.0\n"
        f'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="{b}"\n'
        f"\n--{b}\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n\n--{b}\n"
        f'Content-Type: application/octet-stream; name="encrypted.asc"\n\n'
        f"{gpg.armored(os.urandom(64).hex().encode())}\n--{b}--\n"
    )
    return text.replace("\n", "\r\n").encode()


def message_ids(acct: dict, port: int = P_IMAPS) -> set[str]:
    c = imap(acct, port)
    try:
        typ, data = c.select("INBOX", readonly=True)
        assert typ == "OK", data
        if int(data[0]) == 0:
            return set()
        typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        assert typ == "OK", data
        ids = set()
        for item in data:
            if isinstance(item, tuple):
                m = re.search(rb"<([^>]+)>", item[1])
                if m:
                    ids.add(m.group(1).decode())
        return ids
    finally:
        c.logout()


# --------------------------------------------------------------------------
# the checks
# --------------------------------------------------------------------------


def status_block(vm: VM, timeout: float = 120) -> str:
    end = time.monotonic() + timeout
    while True:
        t = vm.text()
        blocks = re.findall(r"=+ chatrelay =+\n(.*?)\n=+\n\(Enter: refresh\)", t, re.S)
        if blocks:
            return blocks[-1]
        if time.monotonic() > end or not vm.alive():
            raise AssertionError(f"no status screen on the console; tail:\n{t[-1500:]}")
        time.sleep(0.5)


def check_console_invite(vm: VM) -> None:
    st = status_block(vm)
    assert "relay:   ready" in st, st
    m = re.search(r"(dclogin:\S+|DCACCOUNT:\S+)", st)
    assert m, f"no invitation link on the console:\n{st}"
    assert "ic=3" in m.group(1) or m.group(1).startswith("DCACCOUNT:"), m.group(1)
    qr_lines = [ln for ln in st.splitlines() if ln.count("█") >= 10]
    assert len(qr_lines) >= 10, "no QR code on the console"
    figures["invite"] = m.group(1)[:60] + "..."


def check_turn_binding(key: Path) -> None:
    """A STUN Binding request (RFC 8489 §6) to the relay's TURN port answers,
    sent from inside the guest with `chatrelay turn-probe` over SSH: QEMU's
    user network in restrict mode passed no answer back through a host-side
    UDP forward (tried: no reply in 30 s while the guest's socket was bound),
    and busybox's nc has no UDP mode."""
    p = ssh(key, "c=; [ -f /run/chatrelay/chatmail.ini ] && c='--config /run/chatrelay/chatmail.ini'; "
                 "chatrelay turn-probe $c --data-dir /data/chatrelay")
    out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    assert p.returncode == 0, out
    assert "STUN Binding answered by 127.0.0.1:3478" in out, out


class IrohKey:
    """An ed25519 node key, signing with the openssl CLI (the stdlib has
    no ed25519; openssl is in image/install-deps.sh)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="img-iroh-"))
        self.pem = self.dir / "k.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(self.pem)],
                       check=True, capture_output=True, timeout=30)
        der = subprocess.run(["openssl", "pkey", "-in", str(self.pem), "-pubout", "-outform", "DER"],
                             check=True, capture_output=True, timeout=30).stdout
        self.public = der[-32:]

    def sign(self, msg: bytes) -> bytes:
        m = self.dir / "msg"
        m.write_bytes(msg)
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", str(self.pem), "-rawin", "-in", str(m)],
                             check=True, capture_output=True, timeout=30).stdout
        assert len(sig) == 64, sig
        return sig

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


# iroh relay protocol v3 (iroh-relay 0.35 protos/relay.rs): type byte,
# big-endian u32 length, payload
IROH_MAGIC = "RELAY\U0001F511".encode()
IROH_CLIENT_INFO, IROH_SEND, IROH_RECV, IROH_PING, IROH_PONG, IROH_HEALTH = 2, 4, 5, 12, 13, 14


def iroh_frame(typ: int, payload: bytes) -> bytes:
    return bytes([typ]) + len(payload).to_bytes(4, "big") + payload


def iroh_read_frame(s, timeout: float = 20) -> tuple[int, bytes]:
    s.settimeout(timeout)

    def exact(n: int) -> bytes:
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise AssertionError(f"iroh relay closed the connection ({len(b)} of {n} bytes)")
            b += c
        return b
    h = exact(5)
    return h[0], exact(int.from_bytes(h[1:], "big"))


def http_head(s) -> bytes:
    """Read an HTTP response head byte by byte (nothing after it is consumed)."""
    s.settimeout(20)
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        c = s.recv(1)
        assert c, f"connection closed in the response head: {head!r}"
        head += c
        assert len(head) < 8192, head
    return head


def iroh_connect(port: int, use_tls: bool, key: IrohKey | None, version: int = 3):
    """Upgrade to the relay protocol and send a ClientInfo signed by `key`
    (None: signed by another key, so the signature cannot verify)."""
    raw = socket.create_connection((HOST, port), timeout=20)
    s = tls().wrap_socket(raw, server_hostname=None) if use_tls else raw
    s.sendall(b"GET /relay HTTP/1.1\r\nHost: relay.test\r\nConnection: Upgrade\r\n"
              b"Upgrade: iroh derp http\r\n\r\n")
    head = http_head(s)
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert re.search(rb"(?im)^upgrade: *iroh derp http\r$", head), head
    k = key or IrohKey()
    msg = bytes([version])   # postcard ClientInfo { version } (a one-byte varint)
    signer = k if key else IrohKey()
    s.sendall(iroh_frame(IROH_CLIENT_INFO, IROH_MAGIC + k.public + signer.sign(msg) + msg))
    if not key:
        k.close()
        signer.close()
    return s


def check_iroh_relay(port: int, use_tls: bool) -> None:
    """Issue 11 from the host: the probes, the protocol upgrade, the
    server's first frame (Pong to our Ping after a ClientInfo it verified),
    a packet forwarded from one client key to another, and a Health frame
    for a ClientInfo whose signature does not verify."""
    scheme = "https" if use_tls else "http"
    ctx = tls() if use_tls else None
    with urllib.request.urlopen(f"{scheme}://{HOST}:{port}/ping", context=ctx, timeout=30) as r:
        assert r.status == 200, r.status
    req = urllib.request.Request(f"{scheme}://{HOST}:{port}/generate_204",
                                 headers={"X-Tailscale-Challenge": "image-test.1"})
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        assert r.status == 204, r.status
        assert r.headers.get("X-Tailscale-Response") == "response image-test.1", dict(r.headers)
    a, b = IrohKey(), IrohKey()
    try:
        sa = iroh_connect(port, use_tls, a)
        sb = iroh_connect(port, use_tls, b)
        with sa, sb:
            sa.sendall(iroh_frame(IROH_PING, b"imgtest1"))
            typ, body = iroh_read_frame(sa)
            assert (typ, body) == (IROH_PONG, b"imgtest1"), (typ, body)
            # b is registered once it answered a ping too
            sb.sendall(iroh_frame(IROH_PING, b"imgtest2"))
            assert iroh_read_frame(sb) == (IROH_PONG, b"imgtest2")
            sa.sendall(iroh_frame(IROH_SEND, b.public + b"hello through the appliance"))
            typ, body = iroh_read_frame(sb)
            assert typ == IROH_RECV and body == a.public + b"hello through the appliance", (typ, body)
        with iroh_connect(port, use_tls, None) as bad:
            typ, body = iroh_read_frame(bad)
            assert typ == IROH_HEALTH and b"signature" in body, (typ, body)
    finally:
        a.close()
        b.close()


def check_storage_layout(vm: VM) -> None:
    st = status_block(vm)
    want = [
        r"^\s+/\s+squashfs\s+ro$",          # read-only root
        r"^\s+/data\s+ext4\s+rw$",          # the one writable persistent place
        r"^\s+/tmp\s+tmpfs\s+rw$",          # logs and temp in RAM
        r"^\s+/run\s+tmpfs\s+rw$",
        r"^\s+/boot\s+vfat\s+ro$",
        r"^\s+/var/log -> \.\./tmp$",
        r"^\s+root writable: no$",
        r"^\s+writable disks: /data $",     # no other rw block-device mount
    ]
    for w in want:
        assert re.search(w, st, re.M), f"console status lacks /{w}/:\n{st}"


def check_data_grown(vm: VM) -> None:
    vm.wait_serial(r"^data: growing /dev/vda3", 5)
    st = status_block(vm)
    m = re.search(r"^\s+/data\s+\S+ used of ([\d.]+)([MG])$", st, re.M)
    assert m, f"no /data size on the console:\n{st}"
    mib = float(m.group(1)) * (1024 if m.group(2) == "G" else 1)
    assert mib > 1700, f"/data not grown to the 2 GiB disk: {m.group(0)}"
    figures["data partition after first boot (2 GiB disk)"] = f"{mib:.0f} MiB"


def check_domain_console(vm: VM) -> None:
    vm.wait_imaps(P_IMAPS, 180)
    st = status_block(vm)
    assert "config:  /boot/chatmail.ini" in st, st
    assert "DCACCOUNT:https://chat.example.org/new" in st, st
    assert len([ln for ln in st.splitlines() if ln.count("█") >= 10]) >= 10, "no QR code"
    assert "DNS records to create:" in st and re.search(r"^chat\.example\.org\.\s.*\bMX\b", st, re.M), st


def check_status_selfcheck(vm: VM, key: Path) -> None:
    """The status screen carries the relay's cached self-check (`doctor --last`,
    which asks the running relay and looks nothing up itself): a summary line,
    then each problem with what to do."""
    st = status_block(vm)
    assert re.search(r"^self-check[ :(]", st, re.M), f"no self-check line on the status screen:\n{st}"
    end = time.monotonic() + 120
    while True:
        p = ssh(key, "chatrelay doctor --last --config /run/chatrelay/chatmail.ini --data-dir /data/chatrelay 2>&1",
                timeout=60)
        out = p.stdout.decode(errors="replace")
        if out.startswith("self-check ("):
            break
        assert time.monotonic() < end, f"the relay's self-check never finished: {out!r}"
        time.sleep(3)
    first = out.splitlines()[0]
    problems = [ln for ln in out.splitlines() if ln.startswith("  ✘ ")]
    if "no problems" not in first:
        assert problems, out
        assert "→" in out, f"problems without advice:\n{out}"
    # the emulated LAN has no DNS records for chat.example.org
    assert any(" dns." in ln for ln in problems), out
    figures["status screen self-check"] = first


def verified_leaf(port: int, root: Path, name: str = DOMAIN) -> bytes:
    """The leaf served on `port`, verified (chain and name) against `root`."""
    ctx = ssl.create_default_context(cafile=str(root))
    with socket.create_connection((HOST, port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as t:
            return t.getpeercert(binary_form=True)


def doctor(key: Path) -> str:
    p = ssh(key, "chatrelay doctor --config /run/chatrelay/chatmail.ini --data-dir /data/chatrelay 2>&1",
            timeout=120)
    return p.stdout.decode(errors="replace")


def check_acme_waits_for_ntp(vm: VM, key: Path, pebble: Pebble) -> None:
    """Domain mode with ACME pointed at pebble, before NTP: the relay runs
    in domain mode, serving its self-signed certificate, and its ACME driver
    waits for /run/ntp.synced (doctor: clock not synchronised, no ACME
    certificate yet); pebble has seen no order."""
    vm.wait_imaps(P_IMAPS, 180)
    try:
        verified_leaf(P_IMAPS, pebble.root())
        raise AssertionError("a pebble certificate before the clock was synchronised")
    except ssl.SSLCertVerificationError:
        pass   # the self-signed one
    p = ssh(key, "logread | grep -F 'ACME: waiting for the clock to be synchronised (/run/ntp.synced missing)'")
    assert p.returncode == 0, f"the ACME driver is not waiting for NTP: {p.stdout!r} {p.stderr!r}"
    out = doctor(key)
    assert re.search(r"^problem\s+clock\s+.*not synchronised yet \(/run/ntp.synced missing\)", out, re.M | re.I), out
    assert re.search(r"^problem\s+certificate\s+no ACME certificate yet", out, re.M | re.I), out
    assert "set VALID" not in pebble.log(), pebble.log()


def check_acme_issued(vm: VM, key: Path, pebble: Pebble) -> float:
    """ntpd's event script marks the clock synchronised; the relay orders a
    certificate from pebble, pebble validates through the forwarded 443
    (TLS-ALPN-01), and IMAPS 993 and HTTPS 443 serve a certificate that
    verifies against pebble's root for the domain -- without a restart."""
    pid = ssh(key, "cat /run/chatrelay/pid").stdout.strip()
    p = ssh(key, "/usr/libexec/chatrelay/ntp-event step && ls /run/ntp.synced")
    assert p.returncode == 0, p.stderr
    t0 = time.monotonic()
    root = pebble.root()
    end = t0 + 150
    last = None
    while True:
        try:
            leaf = verified_leaf(P_IMAPS, root)
            break
        except (ssl.SSLError, OSError) as e:
            last = e
        if time.monotonic() > end:
            logs = ssh(key, "logread | grep -F ACME | tail -n 20").stdout.decode(errors="replace")
            raise AssertionError(f"no pebble certificate on IMAPS within 150 s ({last}); relay log:\n{logs}\n"
                                 f"pebble log tail:\n{pebble.log()[-1500:]}")
        time.sleep(2)
    took = time.monotonic() - t0
    assert "set VALID by completed challenge" in pebble.log(), pebble.log()[-1500:]
    logs = ssh(key, "logread | grep -F 'ACME: '").stdout.decode(errors="replace")
    assert re.search(r"ACME: ordering a certificate for .*chat\.example\.org.* by TlsAlpn01", logs), logs
    assert "ACME: certificate issued" in logs, logs
    for name in (DOMAIN, f"mta-sts.{DOMAIN}", f"www.{DOMAIN}"):
        assert verified_leaf(P_HTTPS, root, name) == leaf, f"HTTPS serves another certificate for {name}"
    assert verified_leaf(P_SMTPS, root) == leaf, "SMTPS serves another certificate"
    assert ssh(key, "cat /run/chatrelay/pid").stdout.strip() == pid, "the relay was restarted"
    out = doctor(key)
    assert re.search(r"^ok\s+certificate\s+valid until .*chat\.example\.org", out, re.M | re.I), out
    assert re.search(r"^ok\s+clock\s", out, re.M | re.I), out
    return took


def check_data_created(vm: VM) -> None:
    vm.wait_imaps(P_IMAPS, 180)
    vm.wait_serial(r"^data: no data partition: creating one on vda$", 5)
    st = status_block(vm)
    assert re.search(r"^\s+/data\s+ext4\s+rw$", st, re.M), st
    assert re.search(r"^\s+writable disks: /data $", st, re.M), st
    # (that the relay can store on it is shown by the invite check's
    # account and APPEND: this card is in invite mode)


def login_refused(addr: str, password: str) -> bool:
    try:
        imap({"email": addr, "password": password}).logout()
    except imaplib.IMAP4.error:
        return True
    return False


def status_page() -> str:
    """The LAN status page (QEMU's user net brings the host in from 10.0.2.2,
    inside the default status_networks)."""
    with urllib.request.urlopen(f"https://{HOST}:{P_HTTPS}/status", context=tls(), timeout=60) as r:
        assert r.status == 200, r.status
        return r.read().decode()


def check_first_invite(vm: VM) -> None:
    """Issue 12 on the appliance: registration = invite in the boot
    partition's chatmail.ini; the first boot makes one admin invite, shown
    on the console and on the LAN status page; it logs in (a dclogin: link:
    its token is the new account's password) exactly once, and no unknown
    address can log in or get an account from /new."""
    import html
    import urllib.parse
    st = status_block(vm)
    m = re.search(r"^First invitation \(single use\) for \S+:\n(?:.*\n)*?(dclogin:\S+|DCACCOUNT:\S+)$", st, re.M)
    assert m, f"no first invitation on the console:\n{st}"
    link = m.group(1)
    assert len([ln for ln in st.splitlines() if ln.count("█") >= 10]) >= 10, "no QR code for the invite"
    page = status_page()
    assert link in html.unescape(page), f"the status page does not show the console's invite {link}"
    figures["first-boot invite"] = link[:40] + "..."
    # before it is used: nobody else gets in
    stranger = f"stranger{random.randrange(10**6)}@{link.split('@', 1)[1].split('?', 1)[0]}" \
        if link.startswith("dclogin:") else None
    req = urllib.request.Request(f"https://{HOST}:{P_HTTPS}/new", method="POST", data=b"")
    try:
        urllib.request.urlopen(req, context=tls(), timeout=60)
        raise AssertionError("/new without an invite code made an account")
    except urllib.error.HTTPError as e:
        assert e.code == 403 and b"invite" in e.read(), e.code
    if link.startswith("dclogin:"):
        where, query = link[len("dclogin:"):].split("?", 1)
        addr = urllib.parse.unquote(where)
        token = urllib.parse.parse_qs(query)["p"][0]
        assert login_refused(stranger, "not-an-invite-" + token[:8]), "an unknown address logged in"
        imap({"email": addr, "password": token}).logout()      # redeems the invite
        c = imap({"email": addr, "password": token})           # the account stays, and stores
        try:
            msg = encrypted_message(GPG[0], addr, addr, f"invite-{random.randrange(10**9)}@image.test")
            typ, data = c.append("INBOX", None, None, msg)
            assert typ == "OK", (typ, data)
            typ, data = c.select("INBOX", readonly=True)
            assert typ == "OK" and int(data[0]) == 1, data
        finally:
            c.logout()
        assert login_refused(stranger, token), "a used single-use token made a second account"
    else:
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(link[len("DCACCOUNT:"):]).query)["t"][0]
        req = urllib.request.Request(f"https://{HOST}:{P_HTTPS}/new?t={token}", method="POST", data=b"")
        with urllib.request.urlopen(req, context=tls(), timeout=60) as r:
            acct = json.loads(r.read())
        imap(acct).logout()
        assert login_refused(f"stranger{random.randrange(10**6)}@{acct['email'].split('@')[1]}", "x" * 30)
    # used: the status page no longer offers it
    assert link not in html.unescape(status_page()), "the used first invite is still shown"
    # later invites come from the LAN status page's button (a form POST)
    req = urllib.request.Request(f"https://{HOST}:{P_HTTPS}/status/invite", method="POST", data=b"",
                                 headers={"Origin": "https://evil.example"})
    try:
        urllib.request.urlopen(req, context=tls(), timeout=60)
        raise AssertionError("a cross-site POST /status/invite made an invite")
    except urllib.error.HTTPError as e:
        assert e.code == 403, e.code
    req = urllib.request.Request(f"https://{HOST}:{P_HTTPS}/status/invite", method="POST", data=b"")
    with urllib.request.urlopen(req, context=tls(), timeout=60) as r:
        made = html.unescape(r.read().decode())
    m2 = re.search(r'(dclogin:[^"<\s]+|DCACCOUNT:[^"<\s]+)', made)
    assert m2 and m2.group(1) != link, "no new invite on the status page"
    if m2.group(1).startswith("dclogin:"):
        where, query = m2.group(1)[len("dclogin:"):].split("?", 1)
        imap({"email": urllib.parse.unquote(where), "password": urllib.parse.parse_qs(query)["p"][0]}).logout()


def check_imap_append_fetch(acct: dict) -> None:
    gpg = GPG[0]
    msgid = f"append-{random.randrange(10**9)}@image.test"
    msg = encrypted_message(gpg, acct["email"], acct["email"], msgid)
    c = imap(acct)
    try:
        typ, data = c.append("INBOX", None, None, msg)
        assert typ == "OK", (typ, data)
        typ, data = c.select("INBOX")
        assert typ == "OK", data
        typ, data = c.search(None, "HEADER", "Message-ID", msgid)
        assert typ == "OK" and data[0].split(), ("search", data)
        num = data[0].split()[-1]
        typ, data = c.fetch(num, "(BODY.PEEK[])")
        assert typ == "OK", data
        body = data[0][1]
        assert body == msg, f"fetched {len(body)} bytes differ from the {len(msg)} appended"
    finally:
        c.logout()
    APPENDED.append((acct, msgid))


def check_smtps_delivery(a: dict, b: dict) -> None:
    gpg = GPG[0]
    msgid = f"smtps-{random.randrange(10**9)}@image.test"
    with smtplib.SMTP_SSL(HOST, P_SMTPS, context=tls(), timeout=60) as s:
        s.login(a["email"], a["password"])
        s.sendmail(a["email"], [b["email"]], encrypted_message(gpg, a["email"], b["email"], msgid))
    end = time.monotonic() + 30
    while msgid not in message_ids(b):
        assert time.monotonic() < end, "delivered message not in the recipient's INBOX"
        time.sleep(0.5)
    DELIVERED.append(msgid)


DC_SCRIPT = r"""
import json, os, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "e2e"))
from harness import (DC, DCAccountFactory, ExternalRelay, wait_incoming_msg, wait_securejoin,
                     wait_msg_delivered)
ports = json.loads(sys.argv[2])
relay = ExternalRelay("127.0.0.1", mail_domain=sys.argv[3], ports=ports)
work = Path(tempfile.mkdtemp(prefix="image-dc-"))
dc = DC(work / "accounts", work / "rpc.log")
try:
    f = DCAccountFactory(dc)
    alice = f.via_http(relay)
    bob = f.via_http(relay)   # (the dclogin QR names port 993; QEMU forwards another)
    f.bring_online(alice); f.bring_online(bob)
    bob.secure_join(alice.get_qr_code())
    wait_securejoin(alice, inviter=True, timeout=180)
    wait_securejoin(bob, inviter=False, timeout=180)
    def text(a, b, t):
        a.create_chat(b).send_text(t)
        m = wait_incoming_msg(b, timeout=120, text=t).get_snapshot()
        assert m.show_padlock, "not encrypted: " + t
    text(alice, bob, "hello bob, from the appliance")
    text(bob, alice, "hello alice, bob here")
    p = work / "attachment.bin"; p.write_bytes(os.urandom(200_000))
    sent = alice.create_chat(bob).send_file(str(p))
    wait_msg_delivered(alice, sent, timeout=180)
    end = time.monotonic() + 180
    while True:
        m = wait_incoming_msg(bob, timeout=max(1, end - time.monotonic()))
        s = m.get_snapshot()
        if s.file:
            break
    while s.download_state != "Done" and time.monotonic() < end:
        time.sleep(0.5); s = m.get_snapshot()
    assert s.download_state == "Done" and Path(s.file).read_bytes() == p.read_bytes(), "attachment differs"
    print(json.dumps({"ok": True, "accounts": [f.credentials[a.id].addr for a in (alice, bob)]}))
finally:
    dc.close()
"""


def check_deltachat_e2e(domain: str) -> None:
    if not VENV_PY.exists():
        raise AssertionError(f"{VENV_PY} missing: run scripts/install-test-deps.sh (Delta Chat core venv)")
    ports = {"imaps_port": P_IMAPS, "submissions_port": P_SMTPS, "https_port": P_HTTPS}
    p = subprocess.run([str(VENV_PY), "-c", DC_SCRIPT, str(REPO), json.dumps(ports), domain],
                       capture_output=True, timeout=600, cwd=str(REPO))
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0 or '"ok": true' not in out:
        raise AssertionError(f"Delta Chat e2e failed (rc {p.returncode}):\n{out[-2000:]}\n"
                             f"{p.stderr.decode(errors='replace')[-3000:]}")


def kill_mid_delivery(vm: VM, a: dict, b: dict) -> None:
    """Deliver messages a->b over SMTPS in a loop; SIGKILL qemu while that goes on."""
    gpg = GPG[0]
    msgs = [encrypted_message(gpg, a["email"], b["email"], f"burst-{i}-{random.randrange(10**9)}@image.test")
            for i in range(60)]
    acked: list[str] = []
    stop = threading.Event()
    errors: list[str] = []

    def sender():
        try:
            with smtplib.SMTP_SSL(HOST, P_SMTPS, context=tls(), timeout=30) as s:
                s.login(a["email"], a["password"])
                for m in msgs:
                    if stop.is_set():
                        return
                    mid = re.search(rb"Message-ID: <([^>]+)>", m).group(1).decode()
                    s.sendmail(a["email"], [b["email"]], m)   # returns only after 250
                    acked.append(mid)
        except Exception as e:  # noqa: BLE001 - the kill breaks the connection
            errors.append(f"{type(e).__name__}: {e}")

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    end = time.monotonic() + 120
    while len(acked) < 8 and t.is_alive() and time.monotonic() < end:
        time.sleep(0.05)
    assert len(acked) >= 8, f"only {len(acked)} messages acknowledged before the kill ({errors})"
    vm.kill()   # mid-delivery: the sender is in the middle of its next message
    stop.set()
    t.join(timeout=60)
    ACKED.extend(acked)
    figures["acknowledged before the hard kill"] = f"{len(acked)} of {len(msgs)}"
    assert len(acked) < len(msgs), "all messages went through before the kill: not mid-delivery"


def check_nothing_lost(b: dict, port: int = P_IMAPS) -> None:
    have = message_ids(b, port)
    missing = [m for m in ACKED + DELIVERED if m not in have]
    assert not missing, f"{len(missing)} acknowledged messages lost: {missing[:5]}"
    for acct, mid in APPENDED:
        assert mid in message_ids(acct, port), f"APPENDed message {mid} lost"


def check_accounts_persist(accts: list[dict], port: int = P_IMAPS) -> None:
    for a in accts:
        c = imap(a, port)
        c.logout()
        bad = dict(a, password=a["password"] + "x")
        try:
            imap(bad, port).logout()
        except imaplib.IMAP4.error:
            continue
        raise AssertionError(f"{a['email']} accepted a wrong password: the account was not kept")


def take_backup(key: Path) -> bytes:
    """`chatrelay backup` over SSH on the running appliance (online: through
    its control socket), with the boot partition's config; the archive and
    its status file (what the status screen shows)."""
    p = ssh(key, "chatrelay backup --config /run/chatrelay/chatmail.ini --data-dir /data/chatrelay "
                 "--out - 2>/dev/null", timeout=120)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert b"chatrelay-backup/MANIFEST" in p.stdout, "no manifest in the archive"
    assert b"10.0.2.2" not in p.stdout, "the archive holds the client (host) address"
    figures["backup of the test relay (online, over SSH)"] = f"{len(p.stdout) / 1e3:.0f} kB"
    return p.stdout


BACKUP_PASSPHRASE = "image test: correct horse battery staple"


def take_encrypted_backup(key: Path) -> bytes:
    """The same, encrypted with a passphrase (age, scrypt): what the daily
    backup writes when /boot/backup-passphrase.txt exists."""
    t0 = time.monotonic()
    p = ssh(key, f"umask 077; printf '%s\\n' '{BACKUP_PASSPHRASE}' > /tmp/pass && "
                 "chatrelay backup --config /run/chatrelay/chatmail.ini --data-dir /data/chatrelay "
                 "--passphrase-file /tmp/pass --out - 2>/dev/null; rc=$?; rm -f /tmp/pass; exit $rc", timeout=180)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert p.stdout.startswith(b"age-encryption.org/v1\n"), p.stdout[:40]
    assert b"chatrelay-backup/MANIFEST" not in p.stdout, "the encrypted archive shows its manifest"
    figures["encrypted backup over SSH (age, scrypt, in the guest)"] = \
        f"{len(p.stdout) / 1e3:.0f} kB in {time.monotonic() - t0:.1f} s"
    return p.stdout


def cert_digest(port: int = P_IMAPS) -> str:
    """SHA-256 of the certificate the relay presents on IMAPS (LAN mode
    signs no mail, so its self-signed certificate is what the archive
    carries of its identity, besides the accounts)."""
    import hashlib
    with socket.create_connection((HOST, port), timeout=20) as raw:
        with tls().wrap_socket(raw, server_hostname=None) as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def check_restored_at_first_boot(vm: VM, accts: list[dict], cert_before: str | None) -> None:
    """Boot F: the archive on the boot partition of a fresh card was restored
    before the relay started; the relay serves the old accounts (old
    passwords), their messages, with the archive's config and certificate.
    (Its first run waited on host port 1993 -- the guest's port -- instead
    of the forwarded one, which is why it saw no IMAPS answer.)"""
    vm.wait_serial(r"^restore: restored \d+ files \(\d+ bytes\) into /data/chatrelay; "
                   r"config written to /boot/chatmail.ini$", 180)
    try:
        ready = vm.wait_imaps(P_IMAPS, 120)   # forwarded to the archive's imaps_port (1993)
    except AssertionError as e:
        # the relay's log lives in RAM: fetch it over SSH for the report
        p = ssh(RUN / "ssh" / "id_ed25519", "logread | tail -n 40; ls -la /data/chatrelay /boot", timeout=60)
        raise AssertionError(f"{e}\nguest log and files:\n{p.stdout.decode(errors='replace')}") from None
    figures["virt first boot with a restore to IMAPS ready"] = f"{ready:.1f} s"
    st = status_block(vm)
    assert "config:  /boot/chatmail.ini" in st and "relay:   ready (IMAPS port 1993)" in st, st
    check_accounts_persist(accts)
    check_nothing_lost(accts[1])
    # nothing of the first start's own making: the restore came first
    t = vm.text()
    assert t.index("restore: restored") < t.index("watchdog: armed"), "restore ran after the relay's start"
    if cert_before is not None:
        assert cert_digest() == cert_before, "the restored relay presents another certificate"


def check_corrupt_backup_refused(vm: VM, disk: Path) -> None:
    """A damaged archive is refused before anything is replaced: renamed
    *.failed with the reason on the console, and the relay starts fresh."""
    m = vm.wait_serial(r"^restore: FAILED: (.*)$", 180)
    vm.wait_imaps(P_IMAPS, 120)   # on 993: the archive's config (IMAPS on 1993) is not in use
    st = status_block(vm)
    assert "relay:   ready (IMAPS port 993)" in st, st
    assert not vm.text().count("restore: restored"), "something was restored"
    # this card brought its own chatmail.ini (registration = invite): it wins over the archive's
    vm.wait_serial(r"^restore: keeping this card's chatmail.ini", 1)
    figures["corrupt backup refused with"] = m.group(1)[:100]


def check_graceful_reboot(vm: VM) -> None:
    vm.wait_serial(r"^\(Enter: refresh\)", 60)
    vm.hmp("sendkey ctrl-alt-delete")
    rc = vm.wait_exit(90)
    t = vm.text()
    assert "chatrelay: shutting down" in t, f"rcK did not run; tail:\n{t[-1500:]}"
    assert "chatrelay: relay stopped" in t, f"relay was not stopped by SIGTERM; tail:\n{t[-1500:]}"
    assert "shutdown complete, /data unmounted" in t, f"/data not cleanly unmounted; tail:\n{t[-1500:]}"
    assert rc == 0, rc


def check_boot_config_honoured(vm: VM) -> None:
    st = status_block(vm)
    assert "config:  /boot/chatmail.ini" in st, st
    assert "relay:   ready (IMAPS port 1993)" in st, st
    vm.wait_serial(r'^wifi: network "Test Net" configured \(country DE\)$', 5)


def ssh_key() -> Path:
    key = RUN / "ssh" / "id_ed25519"
    shutil.rmtree(key.parent, ignore_errors=True)
    key.parent.mkdir(mode=0o700, parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "image-test", "-f", str(key)],
                   check=True, timeout=60)
    return key


def ssh(key: Path | None, cmd: str, *opts: str, timeout: float = 60) -> subprocess.CompletedProcess:
    argv = ["ssh", "-p", str(P_SSH), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR", *opts]
    if key:
        argv += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
    return subprocess.run(argv + [f"root@{HOST}", cmd], capture_output=True, timeout=timeout)


def check_no_ssh(vm: VM) -> None:
    assert "ssh: dropbear started" not in vm.text(), "dropbear started without /boot/authorized_keys"
    try:
        with socket.create_connection((HOST, P_SSH), timeout=10) as c:
            c.settimeout(10)
            banner = c.recv(64)
    except OSError:
        return
    assert not banner.startswith(b"SSH-"), f"an SSH server answers: {banner!r}"


def check_ssh_keys_only(vm: VM, key: Path) -> None:
    vm.wait_serial(r"^ssh: dropbear started \(keys only\)$", 30)
    # (busybox without log rotation keeps the syslog in a RAM ring buffer instead: logread)
    p = ssh(key, "cat /proc/mounts; echo; "
                 "if touch /probe 2>/dev/null; then echo ROOT-RW; else echo ROOT-RO; fi; "
                 "echo IP-IN-DATA: $(grep -rlaF 10.0.2.2 /data | head -n 3); "
                 "echo LOGFILES-IN-DATA: $(find /data -name '*.log' | head -n 3); "
                 "if [ -f /var/log/messages ]; then echo LOG=file; grep -c chatrelay /var/log/messages; "
                 "else echo LOG=ring; logread | grep -c chatrelay; fi")
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, f"key login failed: {p.stderr.decode(errors='replace')}"
    assert "ROOT-RO" in out, out
    rw = [ln.split()[1] for ln in out.splitlines()
          if ln.startswith("/dev/") and len(ln.split()) > 3 and ln.split()[3].startswith("rw")]
    assert rw == ["/data"], f"writable block-device mounts: {rw}"
    assert re.search(r"^tmpfs /tmp tmpfs rw", out, re.M), out
    # the relay logs to syslog, whose file lives in /tmp (tmpfs) via /var/log
    assert int(out.strip().splitlines()[-1]) > 0, f"no relay log lines in syslog:\n{out}"
    figures["syslog"] = "file in /tmp" if "LOG=file" in out else "RAM ring buffer (logread)"
    assert re.search(r"^LOGFILES-IN-DATA: *$", out, re.M), out
    # privacy: the host's connections come from 10.0.2.2; that address must not be stored
    assert re.search(r"^IP-IN-DATA: *$", out, re.M), f"client IP address found under /data: {out}"
    # no password logins offered, and no other key accepted
    p = ssh(None, "true", "-o", "PreferredAuthentications=password,keyboard-interactive",
            "-o", "PubkeyAuthentication=no")
    assert p.returncode != 0, "password/keyboard-interactive login succeeded"


def check_stalled_loop_restarts(vm: VM, key: Path) -> float:
    """Freeze the relay (a stuck event loop: the process lives, the heartbeat
    stops): chatrelay-liveness must kill it and init must start a new one."""
    p = ssh(key, "cat /run/chatrelay/pid; echo; cat /run/chatrelay/heartbeat")
    old = p.stdout.decode().split()
    assert len(old) == 2 and old[1].isdigit(), f"no pid/heartbeat: {p.stdout!r} {p.stderr!r}"
    p = ssh(key, f"kill -STOP {old[0]} && echo STOPPED")
    assert b"STOPPED" in p.stdout, p.stderr
    t0 = time.monotonic()
    deadline = t0 + 150
    while time.monotonic() < deadline:
        time.sleep(3)
        p = ssh(key, "cat /run/chatrelay/pid; echo; cat /run/chatrelay/heartbeat; echo; date +%s", timeout=30)
        v = p.stdout.decode().split()
        if len(v) == 3 and v[0] != old[0] and abs(int(v[2]) - int(v[1])) <= 5:
            return time.monotonic() - t0
    raise AssertionError("the stalled relay was not restarted with a fresh heartbeat")


def check_watchdog_fires(vm: VM, key: Path) -> float:
    """Freeze the watchdog daemon (as a hung system would): the i6300esb must reset the VM."""
    p = ssh(key, "kill -STOP $(pidof watchdog) && echo STOPPED")
    assert b"STOPPED" in p.stdout, p.stderr
    t0 = time.monotonic()
    vm.wait_exit(120)          # -no-reboot: the watchdog's reset ends QEMU
    return time.monotonic() - t0


def boot_names(disk: Path) -> set:
    """File names (lower case) in the root of the boot partition."""
    out = subprocess.run(["mdir", "-b", "-i", f"{disk}@@4M", "::/"], capture_output=True, check=True,
                         env=mtools_env(), timeout=30).stdout.decode(errors="replace")
    return {Path(x.strip()).name.lower() for x in out.splitlines() if x.strip()}


def check_backup_renamed(disk: Path, name: str = "chatrelay-backup-test.tar", suffix: str = ".restored") -> None:
    """The archive (binary: listed with mdir, not read) was renamed after
    its restore (or its failed one), so it is never applied twice."""
    names = boot_names(disk)
    assert name + suffix in names, sorted(names)
    assert name not in names, sorted(names)


def check_sd_contents(disk: Path) -> None:
    out = subprocess.run(["mdir", "-b", "-i", f"{disk}@@4M", "::/"], capture_output=True, check=True,
                         env=mtools_env(), timeout=30).stdout.decode()
    names = {Path(x.strip()).name.lower() for x in out.splitlines() if x.strip()}
    need = {"bootcode.bin", "start.elf", "fixup.dat", "start4.elf", "fixup4.dat", "config.txt",
            "cmdline.txt", "image", "bcm2837-rpi-3-b.dtb", "bcm2711-rpi-4-b.dtb",
            "bcm2837-rpi-zero-2-w.dtb", "chatmail.ini.example", "wifi.txt.example", "readme.txt"}
    missing = need - names
    assert not missing, f"boot partition lacks {sorted(missing)}; has {sorted(names)}"
    cfg = mtype(disk, "config.txt")
    assert "arm_64bit=1" in cfg and "kernel=Image" in cfg, cfg
    cmd = mtype(disk, "cmdline.txt")
    assert "root=/dev/mmcblk0p2" in cmd and "rootfstype=squashfs" in cmd and " ro " in f" {cmd} ", cmd
    # partition table: 3 partitions, 4 MiB aligned, boot FAT 64 MiB
    sf = subprocess.run(["sfdisk", "-J", str(disk)], capture_output=True, check=True, timeout=30).stdout
    parts = json.loads(sf)["partitiontable"]["partitions"]
    assert len(parts) == 3, parts
    assert all(p["start"] % 8192 == 0 for p in parts), f"not 4 MiB aligned: {parts}"
    assert parts[0]["size"] == 64 * 2048 and parts[0]["type"].lower() == "c", parts[0]


GPG: list[Gpg] = []
PEBBLES: list[Pebble] = []
ACKED: list[str] = []
DELIVERED: list[str] = []
APPENDED: list[tuple[dict, str]] = []


def main() -> int:
    t_all = time.monotonic()
    for f in ("Image", "initrd.img", "sdcard.img", "bcm2837-rpi-3-b.dtb"):
        if not (BIN / f).exists():
            print(f"emutest: {BIN / f} missing: run image/build.sh first")
            print("0 passed, 1 failed")
            return 1
    figures["sdcard.img"] = f"{(BIN / 'sdcard.img').stat().st_size / 2**20:.0f} MiB"
    figures["rootfs.squashfs"] = f"{(BIN / 'rootfs.squashfs').stat().st_size / 2**20:.1f} MiB"
    for p in (P_IMAPS, P_SMTPS, P_HTTPS, P_RPI, P_SSH, P_HTTP):
        with socket.socket() as s:
            if s.connect_ex((HOST, p)) == 0:
                print(f"emutest: {HOST}:{p} is already in use (set IMAGE_TEST_*_PORT)")
                print("0 passed, 1 failed")
                return 1
    check("gpg key", lambda: GPG.append(Gpg()))
    key = ssh_key()
    accts: list[dict] = []
    archive = sealed = None
    virt_fwd = {P_IMAPS: 993, P_SMTPS: 465, P_HTTPS: 443, P_SSH: 22, P_HTTP: 80}
    vms: list[VM] = []
    try:
        if "A" in BOOTS:
            # ---- boot A: first boot ------------------------------------------
            disk = fresh_disk("virt", "2G")   # the relay wants >= 1 GiB free (min_free_disk_space)
            vm = VM("virt-boot1", disk, fwd=virt_fwd).start()
            vms.append(vm)
            ready = check("virt: first boot, relay ready via forwarded IMAPS", vm.wait_imaps, P_IMAPS, 180)
            if ready:
                figures["virt first boot to IMAPS ready"] = f"{ready:.1f} s"
            check("virt: invitation link and QR code on the serial console", check_console_invite, vm)
            check("virt: console says realtime (TURN) is on", vm.wait_serial, r"^realtime: on \(TURN/STUN UDP 3478", 10)
            check("virt: read-only squashfs root, tmpfs logs, /data the only writable disk", check_storage_layout, vm)
            check("virt: data partition grown to fill the disk", check_data_grown, vm)
            check("virt: hardware watchdog armed", vm.wait_serial, r"^watchdog: armed", 5)
            check("virt: no SSH without /boot/authorized_keys", check_no_ssh, vm)
            accts = check("virt: HTTPS POST /new gives an account", lambda: [new_account() for _ in range(2)]) or []
            domain = accts[0]["email"].split("@", 1)[1].strip("[]") if accts else "127.0.0.1"
            if accts:
                check("virt: IMAP login + APPEND + FETCH over TLS", check_imap_append_fetch, accts[0])
                check("virt: SMTPS submission delivered to INBOX", check_smtps_delivery, accts[0], accts[1])
            check("virt: Delta Chat core e2e (Secure-Join, texts both ways, attachment)", check_deltachat_e2e, domain)
            check("virt: iroh relay on HTTP port 80 (the advertised http:// URL): /ping, /generate_204, "
                  "101 upgrade, Pong, a packet between two client keys, Health for a bad signature",
                  check_iroh_relay, P_HTTP, False)
            check("virt: iroh relay on HTTPS port 443: the same", check_iroh_relay, P_HTTPS, True)
            if accts:
                check("virt: hard kill of qemu while messages are being delivered", kill_mid_delivery, vm, accts[0], accts[1])
            vm.kill()

            # ---- boot B: same disk after the hard kill -----------------------
            vm = VM("virt-boot2", disk, fwd=virt_fwd).start()
            vms.append(vm)
            ready = check("virt: boot after hard kill, relay ready", vm.wait_imaps, P_IMAPS, 180)
            if ready:
                figures["virt later boot to IMAPS ready"] = f"{ready:.1f} s"
            if accts:
                check("virt: accounts kept after the hard kill", check_accounts_persist, accts)
                check("virt: no acknowledged message lost after the hard kill", check_nothing_lost, accts[1])
            check("virt: graceful reboot (Ctrl-Alt-Del -> rcK: relay stopped, /data unmounted)", check_graceful_reboot, vm)
            vm.kill()

            # ---- boot C: chatmail.ini + wifi.txt on the boot partition ------
            ini = "; written by the image test\n[params]\nimaps_port = 1993\nmax_user_send_per_minute = 6000\n"
            mcopy_in(disk, "chatmail.ini", ini.replace("\n", "\r\n").encode())   # as a Windows editor would
            mcopy_in(disk, "wifi.txt", b"ssid=Test Net\r\npsk=correct horse battery\r\ncountry=DE\r\n")
            mcopy_in(disk, "authorized_keys", (RUN / "ssh" / "id_ed25519.pub").read_bytes())
            mcopy_in(disk, "chatrelay-liveness.conf", b"STALL=20\nRECOVER=60\n")
            vm = VM("virt-boot3", disk, fwd={P_IMAPS: 1993, P_SMTPS: 465, P_HTTPS: 443, P_SSH: 22}).start()
            vms.append(vm)
            check("virt: chatmail.ini on the boot partition honoured (IMAPS moved to 1993)", vm.wait_imaps, P_IMAPS, 180)
            check("virt: console shows the boot-partition config and Wi-Fi setup", check_boot_config_honoured, vm)
            check("virt: SSH only with /boot/authorized_keys, key login only; inside: root ro, logs in tmpfs",
                  check_ssh_keys_only, vm, key)
            check("virt: TURN Binding on UDP 3478 answers (from inside the guest)", check_turn_binding, key)
            if accts:
                check("virt: accounts and messages intact after the graceful reboot",
                      lambda: (check_accounts_persist(accts), check_nothing_lost(accts[1])))
            archive = check("virt: chatrelay backup of the running relay over SSH", take_backup, key)
            sealed = check("virt: an encrypted chatrelay backup (passphrase) over SSH", take_encrypted_backup, key)
            cert_c = check("virt: the relay's certificate (to compare after the restore)", cert_digest)
            st = check("virt: a stalled event loop (relay stopped, heartbeat stale) restarts the relay",
                       check_stalled_loop_restarts, vm, key)
            if st:
                figures["relay restarted after its loop stalled (STALL=20)"] = f"{st:.0f} s"
            wd = check("virt: hardware watchdog resets a hung system (watchdog daemon stopped)",
                       check_watchdog_fires, vm, key)
            if wd:
                figures["watchdog reset after the daemon stopped"] = f"{wd:.0f} s"
            vm.kill()

            # ---- boot F: a fresh card with that backup on its boot partition --
            #      (the encrypted archive, with its passphrase file)
            if sealed and accts:
                disk = fresh_disk("virt-restore", "2G")
                mcopy_in(disk, "chatrelay-backup-test.tar.age", sealed)
                mcopy_in(disk, "backup-passphrase.txt", (BACKUP_PASSPHRASE + "\r\n").encode())
                mcopy_in(disk, "authorized_keys", (RUN / "ssh" / "id_ed25519.pub").read_bytes())
                vm = VM("virt-restore", disk, fwd={P_IMAPS: 1993, P_SMTPS: 465, P_HTTPS: 443, P_SSH: 22}).start()
                vms.append(vm)
                check("virt: encrypted backup on the boot partition restored at first boot (old passwords, "
                      "messages, config, certificate)", check_restored_at_first_boot, vm, accts, cert_c)
                vm.kill()
                check("virt: the restored backup file is renamed (*.restored), not applied twice",
                      check_backup_renamed, disk, "chatrelay-backup-test.tar.age")

        if "D" in BOOTS:
            # ---- boot D: a card whose data partition is missing -------------
            #      with a damaged backup archive on its boot partition, and
            #      registration = invite in its chatmail.ini
            disk = fresh_disk("virt-nodata", "2G")
            subprocess.run(["sfdisk", "-q", "--delete", str(disk), "3"], check=True, capture_output=True, timeout=30)
            mcopy_in(disk, "chatmail.ini", b"[params]\r\nregistration = invite\r\n")
            if archive:
                bad = bytearray(archive)
                bad[len(bad) * 3 // 4] ^= 0x40   # one flipped bit in a member's data (or a tar header)
                mcopy_in(disk, "chatrelay-backup-bad.tar", bytes(bad))
            vm = VM("virt-nodata", disk, fwd=virt_fwd).start()
            vms.append(vm)
            check("virt: data partition created when missing, relay ready", check_data_created, vm)
            check("virt: registration = invite: the first boot's admin invite on the console and the LAN "
                  "status page logs in once; unknown addresses and /new without a code are refused; "
                  "the status page's button makes the next invite",
                  check_first_invite, vm)
            if archive:
                check("virt: a damaged backup on the boot partition is refused, the relay starts fresh",
                      check_corrupt_backup_refused, vm, disk)
            vm.kill()
            if archive:
                check("virt: the refused backup file is renamed (*.failed)",
                      check_backup_renamed, disk, "chatrelay-backup-bad.tar", ".failed")

        if "E" in BOOTS:
            # ---- boot E: domain mode from the boot partition -----------------
            #      with ACME pointed at pebble on the host
            pebble = check("pebble (ACME CA with validation) and its DNS on the host", Pebble, P_HTTPS, P_HTTP)
            if pebble:
                PEBBLES.append(pebble)
            disk = fresh_disk("virt-domain", "2G")
            ini = f"[params]\nmail_domain = {DOMAIN}\n"
            if pebble:
                # clock_synced_file: what chatrelay-run passes when ntpd exists
                # (the Debian stand-in's busybox has no ntpd)
                ini += (f"acme_email = admin@example.org\nacme_directory = https://{PEBBLE_GUEST_ADDR}:14000/dir\n"
                        "acme_extra_ca = /boot/acme-ca.pem\nacme_retry_min = 5s\n"
                        "clock_synced_file = /run/ntp.synced\n")
                mcopy_in(disk, "acme-ca.pem", pebble.ca_pem())
                mcopy_in(disk, "authorized_keys", (RUN / "ssh" / "id_ed25519.pub").read_bytes())
            mcopy_in(disk, "chatmail.ini", ini.replace("\n", "\r\n").encode())
            vm = VM("virt-domain", disk, fwd=virt_fwd, guestfwd=[pebble.guestfwd()] if pebble else None).start()
            vms.append(vm)
            check("virt: domain mode (mail_domain in chatmail.ini): DCACCOUNT link, QR, DNS records on the console",
                  check_domain_console, vm)
            if pebble:
                check("virt: domain mode before NTP: self-signed certificate, ACME waits for /run/ntp.synced "
                      "(doctor: clock, certificate)", check_acme_waits_for_ntp, vm, key, pebble)
                took = check("virt: after ntpd's event the relay gets a certificate from pebble (TLS-ALPN-01 "
                             "validated through the forwarded 443), served on 993, 465 and 443 without a restart",
                             check_acme_issued, vm, key, pebble)
                if took:
                    figures["ACME issuance after the clock was marked synchronised"] = f"{took:.1f} s"
                check("virt: the status screen shows the relay's self-check (doctor --last: summary, problems "
                      "with what to do)", check_status_selfcheck, vm, key)
            vm.kill()

        if "R" in BOOTS:
            # ---- raspi3b smoke boot of the SD image ---------------------------
            sd = fresh_disk("raspi3b", "256M")   # SD size must be a power of two
            check("sdcard.img: firmware, DTBs, config.txt, cmdline.txt, 4 MiB-aligned partitions", check_sd_contents, sd)
            vm = VM("raspi3b", sd, machine="raspi3b", fwd={P_RPI: 993}).start()
            vms.append(vm)
            ready = check("raspi3b: SD image boots, relay answers over USB networking", vm.wait_imaps, P_RPI, 240)
            if ready:
                figures["raspi3b boot to IMAPS ready"] = f"{ready:.1f} s"
            check("raspi3b: invitation on the serial console", check_console_invite, vm)
            check("raspi3b: no RTC, clock set forward to the build time until NTP",
                  vm.wait_serial, r"^clock: set forward to .* \(not yet synchronised\)$", 5)
            vm.kill()
    finally:
        for v in vms:
            v.kill()
        for g in GPG:
            g.close()
        for p in PEBBLES:
            p.close()
    figures["image test stage (boots + checks)"] = f"{time.monotonic() - t_all:.0f} s"
    print()
    for k, v in figures.items():
        print(f"  {k}: {v}")
    failed = [r for r in results if not r[1]]
    for name, _, detail in failed:
        print(f"FAILED {name}: {detail.splitlines()[0] if detail else ''}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
