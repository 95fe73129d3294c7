"""End-to-end test harness for chatrelay (helpers; fixtures are in conftest.py).

What lives here:

* ``Relay`` / ``relay_factory`` / ``relay``: real ``chatrelay serve`` processes
  (the release binary) on their own loopback address 127.0.0.x with a temp
  data dir and config, the standard ports (tests run as root), stderr+stdout
  captured to a file, readiness awaited with a deadline, stopped with SIGTERM
  then SIGKILL, restartable on the same data dir.
* ``dc`` / ``dcf``: Delta Chat core (``deltachat-rpc-server`` from the venv)
  driven through ``deltachat_rpc_client``; ``dcf`` makes accounts on a relay
  via ``POST /new``, via the ``dclogin_url`` QR, or via plain
  login-creates-account.
* Helpers for raw protocol tests: unverified TLS contexts, SMTP/IMAP logins
  (optionally from a chosen source address), PGP/MIME messages really
  encrypted with gpg.

Every wait has a deadline; pytest-timeout (pytest.ini) is the backstop.
"""

from __future__ import annotations

import atexit
import email.utils
import http.client
import imaplib
import json
import logging
import os
import queue
import random
import shutil
import signal
import smtplib
import socket
import ssl
import string
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

# Standard ports; every relay gets its own loopback address, so they never clash.
PORTS = {
    "smtp_port": 25,
    "submission_port": 587,
    "submissions_port": 465,
    "imap_port": 143,
    "imaps_port": 993,
    "https_port": 443,
    "http_port": 80,
}

# Client source address used by the privacy test; never given to a relay.
CLIENT_SOURCE_IP = "127.0.0.5"

READY_LINE = b"chatrelay ready"
START_DEADLINE = 30.0
STOP_DEADLINE = 15.0
NET_TIMEOUT = 30.0

# Defaults for test relays: generous rate limits (Delta Chat tests send many
# messages quickly; the rate-limit test sets its own), and a small message
# size limit so the near-limit attachment test is fast.
DEFAULT_PARAMS = {
    "max_user_send_per_minute": "6000",
    "max_user_send_burst_size": "1000",
    "max_message_size": str(4 * 1024 * 1024),
    "max_mailbox_size": "500M",
    # The test machine may be busy (cargo builds on 2 cores): do not let the
    # resource checks refuse accounts.
    "max_load_1m": "1000",
    "min_available_memory": "1M",
    "min_free_disk_space": "1M",
}

log = logging.getLogger("e2e")


# --------------------------------------------------------------------------
# relay processes
# --------------------------------------------------------------------------


def relay_binary() -> Path:
    env = os.environ.get("CHATRELAY_BIN")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    return target / "release" / "chatrelay"


def _ports_free(ip: str, ports) -> bool:
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((ip, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


class _IpAllocator:
    """Hands out a fresh 127.0.0.x per relay for the whole session."""

    def __init__(self) -> None:
        # CHATRELAY_E2E_IPS="100-109" keeps a run to those addresses
        # (several people testing on one machine).
        first, _, last = os.environ.get("CHATRELAY_E2E_IPS", "20-254").partition("-")
        self._candidates = iter(range(int(first), int(last or first) + 1))
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            for last in self._candidates:
                ip = f"127.0.0.{last}"
                if ip == CLIENT_SOURCE_IP:
                    continue
                if _ports_free(ip, PORTS.values()):
                    return ip
                log.warning("ports on %s are taken, skipping that address", ip)
        raise RuntimeError("no free loopback address left for a relay")


IPS = _IpAllocator()


class RelayError(AssertionError):
    pass


_LIVE: set = set()


@atexit.register
def _kill_leftover_relays() -> None:
    for relay in list(_LIVE):
        if relay.proc is not None and relay.proc.poll() is None:
            relay.proc.kill()


class Relay:
    """One ``chatrelay serve`` process on its own loopback address."""

    def __init__(self, binary: Path, workdir: Path, ip: str, params: dict, env: dict):
        self.binary = binary
        self.workdir = workdir
        self.ip = ip
        self.data_dir = workdir / "data"
        self.config_path = workdir / "chatmail.ini"
        self.log_path = workdir / "relay.log"
        self.params = dict(params)
        self.env = env
        self.proc: Optional[subprocess.Popen] = None
        self.exit_codes: list[int] = []
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()

    # -- naming ------------------------------------------------------------

    @property
    def mail_domain(self) -> str:
        return self.params["mail_domain"]

    @property
    def addr_domain(self) -> str:
        """Domain part of addresses: ``[a.b.c.d]`` in IP-literal mode."""
        d = self.mail_domain
        if all(p.isdigit() for p in d.split(".")) and d.count(".") == 3:
            return f"[{d}]"
        return d

    def port(self, name: str) -> int:
        return int(self.params[name])

    def addr(self, localpart: str) -> str:
        return f"{localpart}@{self.addr_domain}"

    # -- config ------------------------------------------------------------

    def _write_config(self) -> None:
        lines = ["[params]"]
        for k, v in self.params.items():
            lines.append(f"{k} = {v}")
        self.config_path.write_text("\n".join(lines) + "\n")

    def reconfigure(self, **params) -> None:
        """Change ``[params]``; takes effect at the next start/restart."""
        self.params.update({k: str(v) for k, v in params.items()})
        self._write_config()

    # -- lifecycle ---------------------------------------------------------

    def start(self, deadline: float = START_DEADLINE) -> "Relay":
        assert self.proc is None or self.proc.poll() is not None, "relay already running"
        if not self.binary.exists():
            raise RelayError(
                f"relay binary {self.binary} does not exist: run `cargo build --release` "
                "(or set CHATRELAY_BIN)"
            )
        with open(self.log_path, "ab") as f:
            f.write(f"=== e2e: starting {self.binary} on {self.ip} at {time.ctime()}\n".encode())
            f.flush()
            offset = f.tell()
            self.proc = subprocess.Popen(
                [
                    str(self.binary),
                    "serve",
                    "--config",
                    str(self.config_path),
                    "--data-dir",
                    str(self.data_dir),
                ],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=f,
                env=self.env,
                # Same process group as pytest: a `timeout` that ends the test
                # run ends the relays too.
            )
            _LIVE.add(self)
        end = time.monotonic() + deadline
        while True:
            data = self.log_path.read_bytes()[offset:]
            if READY_LINE in data:
                break
            rc = self.proc.poll()
            if rc is not None:
                self.exit_codes.append(rc)
                raise RelayError(
                    f"relay on {self.ip} exited with code {rc} before it was ready; log:\n"
                    + self.log_tail()
                )
            if time.monotonic() > end:
                self._kill()
                raise RelayError(
                    f"relay on {self.ip} did not print {READY_LINE!r} within {deadline}s; log:\n"
                    + self.log_tail()
                )
            time.sleep(0.05)
        # The contract: every listener is bound before the ready line.
        for name in ("imaps_port", "https_port", "submissions_port"):
            port = self.port(name)
            if port == 0:
                continue
            try:
                socket.create_connection((self.ip, port), timeout=5).close()
            except OSError as e:
                raise RelayError(
                    f"relay on {self.ip} said ready but {name} {port} refuses: {e}; log:\n"
                    + self.log_tail()
                )
        log.info("relay %s ready (pid %s)", self.ip, self.proc.pid)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_DEADLINE)

    def stop(self) -> int:
        """SIGTERM, wait, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                log.error("relay %s ignored SIGTERM for %ss, killing it", self.ip, STOP_DEADLINE)
                self._kill()
        rc = self.proc.returncode
        self.exit_codes.append(rc)
        self.proc = None
        return rc

    def restart(self) -> "Relay":
        """Stop and start again on the same data dir, config and address."""
        self.stop()
        return self.start()

    def kill9(self) -> None:
        """SIGKILL without warning (crash simulation)."""
        if self.proc is not None:
            self._kill()
            self.exit_codes.append(self.proc.returncode)
            self.proc = None

    # -- logs --------------------------------------------------------------

    def log_bytes(self) -> bytes:
        try:
            return self.log_path.read_bytes()
        except FileNotFoundError:
            return b""

    def log_text(self) -> str:
        return self.log_bytes().decode("utf-8", "replace")

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    # -- HTTP --------------------------------------------------------------

    def https_url(self, path: str) -> str:
        port = self.port("https_port")
        host = self.ip if port == 443 else f"{self.ip}:{port}"
        return f"https://{host}{path}"

    def new_account(self, source_address: Optional[str] = None) -> dict:
        """``POST /new``; returns the parsed JSON ({"email","password",...})."""
        status, headers, body = https_request(
            self, "POST", "/new", source_address=source_address
        )
        assert status == 200, f"POST /new answered {status}: {body[:500]!r}"
        ctype = headers.get("content-type", "")
        assert "application/json" in ctype, f"POST /new content-type {ctype!r}"
        return json.loads(body)


class ExternalRelay(Relay):
    """A relay this harness did not start (e.g. the appliance image in QEMU).

    Gives the helpers (HTTPS /new, SMTP/IMAP logins, DCAccountFactory) an
    address and ports to talk to; start/stop/restart are not available.
    ``ports`` maps the PORTS keys to where the services are reachable.
    """

    def __init__(self, ip: str, mail_domain: Optional[str] = None, ports: Optional[dict] = None,
                 **params):
        self.binary = None
        self.workdir = None
        self.ip = ip
        self.data_dir = None
        self.config_path = None
        self.log_path = None
        self.env = None
        self.proc = None
        self.exit_codes = []
        merged = {"mail_domain": mail_domain or ip}
        merged.update(DEFAULT_PARAMS)
        merged.update({k: str(v) for k, v in PORTS.items()})
        merged.update({k: str(v) for k, v in (ports or {}).items()})
        merged.update({k: str(v) for k, v in params.items()})
        self.params = merged

    def start(self, deadline: float = START_DEADLINE):
        raise RelayError("an external relay is not started by the harness")

    def stop(self) -> int:
        return 0

    def restart(self):
        raise RelayError("an external relay is not restarted by the harness")

    def log_bytes(self) -> bytes:
        return b""


def _relay_env(extra: Optional[dict]) -> dict:
    env = dict(os.environ)
    env.setdefault("CHATRELAY_LOG", "info")  # the relay's own log level variable
    env.setdefault("RUST_LOG", "info")
    env.setdefault("RUST_BACKTRACE", "1")
    if extra:
        env.update(extra)
    return env


class RelayFactory:
    def __init__(self, tmp_path_factory, request):
        self._tmp = tmp_path_factory
        self._request = request
        self.relays: list[Relay] = []

    def make(
        self,
        start: bool = True,
        env: Optional[dict] = None,
        mail_domain: Optional[str] = None,
        ip: Optional[str] = None,
        **params,
    ) -> Relay:
        """Create (and by default start) a relay.

        ``params`` go into ``[params]`` over DEFAULT_PARAMS; ``mail_domain``
        defaults to the relay's own IP (IP-literal, self-signed mode).
        """
        ip = ip or IPS.next()
        workdir = self._tmp.mktemp(f"relay-{ip}")
        merged = {"mail_domain": mail_domain or ip}
        merged.update(DEFAULT_PARAMS)
        merged["listen_address"] = ip
        merged["data_dir"] = str(workdir / "data")
        merged.update({k: str(v) for k, v in PORTS.items()})
        merged.update({k: str(v) for k, v in params.items()})
        relay = Relay(relay_binary(), workdir, ip, merged, _relay_env(env))
        self.relays.append(relay)
        if start:
            relay.start()
        return relay

    def stop_all(self) -> list[str]:
        problems = []
        for relay in self.relays:
            if relay.proc is not None and relay.proc.poll() is not None:
                problems.append(
                    f"relay {relay.ip} died during the test (exit {relay.proc.returncode}); log:\n"
                    + relay.log_tail()
                )
            relay.stop()
        return problems


# --------------------------------------------------------------------------
# TLS, HTTP, SMTP, IMAP helpers
# --------------------------------------------------------------------------


def tls_context(alpn: Optional[list[str]] = None) -> ssl.SSLContext:
    """Client context for self-signed relays: no verification."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def https_request(
    relay: Relay,
    method: str,
    path: str,
    body: Optional[bytes] = None,
    headers: Optional[dict] = None,
    source_address: Optional[str] = None,
):
    """One HTTPS request (unverified TLS, optional source address).

    Returns (status, lower-cased headers dict, body bytes).
    """
    conn = http.client.HTTPSConnection(
        relay.ip,
        relay.port("https_port"),
        timeout=NET_TIMEOUT,
        context=tls_context(),
        source_address=(source_address, 0) if source_address else None,
    )
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def random_localpart(n: int = 9) -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def random_password(n: int = 16) -> str:
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(n))


class Creds:
    def __init__(self, addr: str, password: str):
        self.addr = addr
        self.password = password

    def __repr__(self) -> str:
        return f"Creds({self.addr!r})"


def new_creds(relay: Relay) -> Creds:
    """Fresh credentials for login-creates-account (nothing is created yet)."""
    return Creds(relay.addr(random_localpart()), random_password())


def smtp_connect(
    relay: Relay,
    port: Optional[int] = None,
    source_address: Optional[str] = None,
    alpn: Optional[list[str]] = None,
) -> smtplib.SMTP:
    """Connected, EHLO'd SMTP client: implicit TLS on 465/443, STARTTLS on 587/25."""
    port = port or relay.port("submissions_port")
    src = (source_address, 0) if source_address else None
    if port in (relay.port("submissions_port"), relay.port("https_port")):
        smtp = smtplib.SMTP_SSL(
            relay.ip, port, timeout=NET_TIMEOUT, context=tls_context(alpn), source_address=src
        )
        smtp.ehlo("e2e-client")
    else:
        smtp = smtplib.SMTP(relay.ip, port, timeout=NET_TIMEOUT, source_address=src)
        smtp.ehlo("e2e-client")
        smtp.starttls(context=tls_context())
        smtp.ehlo("e2e-client")
    return smtp


def smtp_login(relay: Relay, creds: Creds, **kw) -> smtplib.SMTP:
    smtp = smtp_connect(relay, **kw)
    smtp.login(creds.addr, creds.password)
    return smtp


# imaplib refuses commands it does not know; teach it the extensions we use.
for _cmd in ("GETMETADATA", "SETMETADATA", "ID", "IDLE", "ENABLE", "UNSELECT", "MOVE"):
    imaplib.Commands.setdefault(_cmd, ("AUTH", "SELECTED"))


class _SourceIMAP4_SSL(imaplib.IMAP4_SSL):
    def __init__(self, host, port, ssl_context, source_address, timeout):
        self._source_address = source_address
        super().__init__(host, port, ssl_context=ssl_context, timeout=timeout)

    def _create_socket(self, timeout):
        sock = socket.create_connection(
            (self.host, self.port), timeout, source_address=self._source_address
        )
        return self.ssl_context.wrap_socket(sock, server_hostname=None)


class _SourceIMAP4(imaplib.IMAP4):
    def __init__(self, host, port, source_address, timeout):
        self._source_address = source_address
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection(
            (self.host, self.port), timeout, source_address=self._source_address
        )


def imap_connect(
    relay: Relay,
    port: Optional[int] = None,
    source_address: Optional[str] = None,
    alpn: Optional[list[str]] = None,
) -> imaplib.IMAP4:
    """IMAP client: implicit TLS on 993/443, STARTTLS on 143."""
    port = port or relay.port("imaps_port")
    src = (source_address, 0) if source_address else None
    if port in (relay.port("imaps_port"), relay.port("https_port")):
        return _SourceIMAP4_SSL(relay.ip, port, tls_context(alpn), src, NET_TIMEOUT)
    imap = _SourceIMAP4(relay.ip, port, src, NET_TIMEOUT)
    imap.starttls(ssl_context=tls_context())
    return imap


def imap_login(relay: Relay, creds: Creds, **kw) -> imaplib.IMAP4:
    imap = imap_connect(relay, **kw)
    typ, data = imap.login(creds.addr, creds.password)
    assert typ == "OK", (typ, data)
    return imap


def create_account(relay: Relay, creds: Optional[Creds] = None, via: str = "imap") -> Creds:
    """Create an account by logging in once (create-on-first-login)."""
    creds = creds or new_creds(relay)
    if via == "imap":
        imap = imap_login(relay, creds)
        imap.logout()
    else:
        smtp = smtp_login(relay, creds)
        smtp.quit()
    return creds


def imap_wait_for_messages(imap: imaplib.IMAP4, mailbox: str, count: int, timeout: float = 20.0):
    """Poll (SELECT/NOOP, bounded) until ``mailbox`` holds ``count`` messages."""
    end = time.monotonic() + timeout
    while True:
        typ, data = imap.select(mailbox)
        assert typ == "OK", (typ, data)
        n = int(data[0])
        if n >= count:
            return n
        if time.monotonic() > end:
            raise AssertionError(f"{mailbox} has {n} messages, expected {count} within {timeout}s")
        time.sleep(0.2)


# --------------------------------------------------------------------------
# OpenPGP messages (real encryption with gpg)
# --------------------------------------------------------------------------


class Gpg:
    """A throwaway GnuPG home with one key; encrypts payloads to it."""

    def __init__(self, home: Path):
        self.home = home
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.uid = "e2e-key@example.invalid"
        self._run(
            "--batch", "--passphrase", "", "--quick-generate-key", self.uid, "default", "default", "never"
        )

    def _run(self, *args, input: Optional[bytes] = None) -> bytes:
        gpg = shutil.which("gpg")
        assert gpg, "gpg is not installed: run scripts/install-test-deps.sh"
        proc = subprocess.run(
            [gpg, "--homedir", str(self.home), "--no-tty", "--quiet", *args],
            input=input,
            capture_output=True,
            timeout=60,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"gpg {args} failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    def encrypt_armored(self, payload: bytes) -> str:
        out = self._run(
            "--batch", "--trust-model", "always", "--armor", "--encrypt", "-r", self.uid, input=payload
        ).decode("ascii")
        # Outgoing policy refuses a `Version:` armor header; gpg >= 2.1 emits none.
        assert "\nVersion:" not in out, out[:200]
        return out


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def make_encrypted_message(
    gpg: Gpg,
    from_addr: str,
    to_addrs: list[str],
    payload: bytes = b"secret text",
    subject: str = "...",
    header_from: Optional[str] = None,
    extra_headers: Optional[list[tuple[str, str]]] = None,
) -> bytes:
    """An RFC 3156 PGP/MIME message (CRLF line ends), really encrypted."""
    armored = gpg.encrypt_armored(payload)
    boundary = "e2e-" + random_localpart(20)
    headers = [
        ("From", f"<{header_from or from_addr}>"),
        ("To", ", ".join(f"<{a}>" for a in to_addrs)),
        ("Subject", subject),
        ("Date", email.utils.formatdate()),
        ("Message-ID", f"<{random_localpart(20)}@e2e.invalid>"),
        ("MIME-Version", "1.0"),
        ("Chat-Version", "1.0"),
    ]
    headers += extra_headers or []
    headers.append(
        (
            "Content-Type",
            f'multipart/encrypted; protocol="application/pgp-encrypted"; boundary="{boundary}"',
        )
    )
    head = "".join(f"{k}: {v}\n" for k, v in headers)
    body = (
        f"\n--{boundary}\n"
        "Content-Type: application/pgp-encrypted\n"
        "Content-Description: PGP/MIME version identification\n"
        "\n"
        "Version: 1\n"
        "\n"
        f"--{boundary}\n"
        'Content-Type: application/octet-stream; name="encrypted.asc"\n'
        "Content-Description: OpenPGP encrypted message\n"
        'Content-Disposition: inline; filename="encrypted.asc"\n'
        "\n"
        f"{armored}"
        f"\n--{boundary}--\n"
    )
    return _crlf(head + body)


def make_plain_message(
    from_addr: str, to_addrs: list[str], text: str = "hello in the clear", subject: str = "plain"
) -> bytes:
    head = (
        f"From: <{from_addr}>\n"
        f"To: {', '.join(f'<{a}>' for a in to_addrs)}\n"
        f"Subject: {subject}\n"
        f"Date: {email.utils.formatdate()}\n"
        f"Message-ID: <{random_localpart(20)}@e2e.invalid>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
    )
    return _crlf(head + "\n" + text + "\n")


# --------------------------------------------------------------------------
# Delta Chat core
# --------------------------------------------------------------------------


def _rpc_server_path() -> str:
    path = VENV_BIN / "deltachat-rpc-server"
    if path.exists():
        return str(path)
    found = shutil.which("deltachat-rpc-server")
    assert found, "deltachat-rpc-server not found: run scripts/install-test-deps.sh"
    return found


def run_with_deadline(fn: Callable, timeout: float, what: str):
    """Run a blocking call in a thread; fail if it does not finish in time."""
    result: dict = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            result["error"] = e

    t = threading.Thread(target=target, daemon=True, name=f"deadline:{what}")
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError(f"{what} did not finish within {timeout}s")
    if "error" in result:
        raise result["error"]
    return result.get("value")


class DC:
    """One deltachat-rpc-server process and its account manager."""

    def __init__(self, accounts_dir: Path, log_path: Path):
        from deltachat_rpc_client import DeltaChat, Rpc

        self.log_path = log_path
        self._stderr = open(log_path, "ab")
        self.rpc = Rpc(
            accounts_dir=str(accounts_dir),
            rpc_server_path=_rpc_server_path(),
            stderr=self._stderr,
        )
        run_with_deadline(self.rpc.start, 60, "deltachat-rpc-server start")
        self.dc = DeltaChat(self.rpc)

    def close(self) -> None:
        try:
            run_with_deadline(self.rpc.close, 30, "deltachat-rpc-server close")
        except AssertionError:
            log.error("deltachat-rpc-server did not close in time, killing it")
            self.rpc.process.kill()
        finally:
            self._stderr.close()


def wait_event(account, pred: Callable, timeout: float = 60.0, what: str = "event"):
    """Consume ``account``'s events until ``pred(event)``; fail after ``timeout``."""
    from deltachat_rpc_client import AttrDict

    q = account._rpc.get_queue(account.id)
    end = time.monotonic() + timeout
    seen = []
    while True:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"account {account.id}: no {what} within {timeout:.0f}s; last events:\n  "
                + "\n  ".join(seen[-60:])
            )
        try:
            raw = q.get(timeout=min(remaining, 1.0))
        except queue.Empty:
            continue
        ev = AttrDict(raw)
        if ev.kind in ("Warning", "Error", "MsgFailed", "ErrorSelfNotInGroup"):
            log.warning("account %s: %s", account.id, raw)
            seen.append(f"{ev.kind}: {raw.get('msg', raw)}")
        elif ev.kind == "Info":
            seen.append(f"Info: {str(raw.get('msg'))[:300]}")
        else:
            seen.append(json.dumps(raw)[:300])
        if pred(ev):
            return ev


def wait_kind(account, kind: str, timeout: float = 60.0, **fields):
    def pred(ev):
        return ev.kind == kind and all(ev.get(k) == v for k, v in fields.items())

    return wait_event(account, pred, timeout, what=f"{kind} {fields or ''}")


def wait_incoming_msg(account, timeout: float = 60.0, text: Optional[str] = None,
                      exclude: tuple = ()):
    """Wait until a new incoming (not info, not own) message shows up; return it.

    Core announces a new message with IncomingMsg, but in some chats (e.g. a
    group that is still a contact request) only with MsgsChanged: both count.
    ``text`` picks the message with that text; ``exclude`` skips message ids
    already seen.
    """
    end = time.monotonic() + timeout
    checked: set = set(exclude)

    def pred(ev):
        if ev.kind not in ("IncomingMsg", "MsgsChanged") or not ev.get("msg_id"):
            return False
        if ev.msg_id in checked:
            return False
        snap = account.get_message_by_id(ev.msg_id).get_snapshot()
        if snap.from_id == 1 or snap.is_info:  # own message or info message
            return False
        checked.add(ev.msg_id)
        return text is None or snap.text == text

    ev = wait_event(account, pred, max(0.1, end - time.monotonic()),
                    what=f"incoming message {text!r}" if text else "incoming message")
    return account.get_message_by_id(ev.msg_id)


def wait_msg_delivered(account, msg, timeout: float = 60.0):
    def pred(ev):
        if ev.kind == "MsgFailed" and ev.msg_id == msg.id:
            raise AssertionError(f"message {msg.id} failed: {msg.get_info()}")
        return ev.kind == "MsgDelivered" and ev.msg_id == msg.id

    return wait_event(account, pred, timeout, what=f"MsgDelivered {msg.id}")


def wait_securejoin(account, inviter: bool, timeout: float = 90.0):
    kind = "SecurejoinInviterProgress" if inviter else "SecurejoinJoinerProgress"
    return wait_event(
        account,
        lambda e: e.kind == kind and e.progress == 1000,
        timeout,
        what=f"{kind} 1000",
    )


class DCAccountFactory:
    """Makes Delta Chat accounts on a relay, in the three ways a user can."""

    def __init__(self, dc: DC):
        self.dc = dc
        self.credentials: dict[int, Creds] = {}

    def _transport_params(self, relay: Relay, addr: str, password: str) -> dict:
        # Exact keys: EnteredLoginParam of the installed deltachat-rpc-server
        # (see `deltachat-rpc-server --openrpc`). On the standard ports only
        # the servers are given: ports and security are found by core itself.
        params = {
            "addr": addr,
            "password": password,
            "imapServer": relay.ip,
            "smtpServer": relay.ip,
            "certificateChecks": "acceptInvalidCertificates",
        }
        # A relay on moved ports (e.g. the appliance behind QEMU port
        # forwarding): name the implicit-TLS ports explicitly.
        if relay.port("imaps_port") != 993:
            params.update(imapPort=relay.port("imaps_port"), imapSecurity="ssl")
        if relay.port("submissions_port") != 465:
            params.update(smtpPort=relay.port("submissions_port"), smtpSecurity="ssl")
        return params

    def _configure(self, account, relay: Relay, addr: str, password: str,
                   **overrides) -> None:
        params = self._transport_params(relay, addr, password)
        params.update(overrides)
        run_with_deadline(
            lambda: account.add_or_update_transport(params),
            120,
            f"configure {addr} on {relay.ip}",
        )
        assert account.is_configured()
        self.credentials[account.id] = Creds(addr, password)

    def via_http(self, relay: Relay, **overrides):
        """POST /new, then configure with the returned address and password.

        ``overrides``: further EnteredLoginParam keys, e.g. imapPort=143,
        imapSecurity="starttls".
        """
        data = relay.new_account()
        account = self.dc.dc.add_account()
        self._configure(account, relay, data["email"], data["password"], **overrides)
        return account

    def via_dclogin(self, relay: Relay):
        """POST /new, then add the transport from its ``dclogin_url`` QR."""
        data = relay.new_account()
        url = data["dclogin_url"]
        account = self.dc.dc.add_account()
        run_with_deadline(
            lambda: account.add_transport_from_qr(url), 120, f"add_transport_from_qr {url}"
        )
        assert account.is_configured()
        self.credentials[account.id] = Creds(data["email"], data["password"])
        return account

    def via_login(self, relay: Relay):
        """No /new at all: a made-up address and password; the first login creates it."""
        creds = new_creds(relay)
        account = self.dc.dc.add_account()
        self._configure(account, relay, creds.addr, creds.password)
        return account

    def bring_online(self, account, timeout: float = 90.0):
        """start_io and wait until the inbox is in IDLE."""
        account.start_io()
        wait_kind(account, "ImapInboxIdle", timeout)
        return account

    def online(self, relay: Relay, n: int, how: str = "via_http") -> list:
        maker = getattr(self, how)
        accounts = [maker(relay) for _ in range(n)]
        for ac in accounts:
            self.bring_online(ac)
        return accounts


def dclogin_params(url: str) -> dict:
    """Parse a ``dclogin:`` URL into (addr, {param: value})."""
    assert url.lower().startswith("dclogin:"), url
    rest = url[len("dclogin:") :]
    if rest.startswith("//"):
        rest = rest[2:]
    addr, _, query = rest.partition("?")
    addr = urllib.parse.unquote(addr.rstrip("/"))
    return {"addr": addr, **dict(urllib.parse.parse_qsl(query, keep_blank_values=True))}


# Re-exported for tests.
