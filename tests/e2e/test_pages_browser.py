"""The relay's web pages in a real headless Chromium (Debian ``chromium``),
issue 12: every page at phone (390 px) and desktop (1280 px) width, no
console message, no request of the page to any host but the relay, the QR
code in the screenshot decoded with ``zbarimg`` (Debian ``zbar-tools``) to
the invitation link.

Chromium itself is kept off the network: its resolver maps every name to
nothing (``--host-resolver-rules``), so its own background traffic (update
checks, sign-in probes) never leaves the machine. Which requests a page made
is read from Chromium's NetLog: requests on behalf of the relay's site (its
network isolation key) must all go to the relay.

Screenshots go to the test's temp dir; with CHATRELAY_UPDATE_SCREENSHOTS=1
they replace the ones in docs/screenshots/ (committed, shown in the README).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness import REPO, Creds, imap_login

CHROMIUM = shutil.which("chromium")
ZBARIMG = shutil.which("zbarimg")
WIDTHS = {"phone": (390, 1700), "desktop": (1280, 1300)}
PAGES = {"index": "/", "privacy": "/privacy.html", "info": "/info.html", "status": "/status"}

pytestmark = pytest.mark.skipif(
    os.environ.get("CHATRELAY_NO_BROWSER") == "1", reason="browser test disabled by env"
)


def test_browser_tools_installed():
    # Never skip silently: scripts/install-test-deps.sh installs both.
    assert CHROMIUM, "chromium missing (apt-get install chromium)"
    assert ZBARIMG, "zbarimg missing (apt-get install zbar-tools)"


def shoot(url: str, relay_ip: str, out: Path, size: tuple[int, int], work: Path,
          dark: bool = False) -> dict:
    """Load ``url`` once: screenshot, console lines, the page's requests."""
    netlog = work / (out.stem + ".netlog.json")
    profile = work / (out.stem + ".profile")
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # tests run as root
        "--disable-gpu",
        "--hide-scrollbars",
        "--ignore-certificate-errors",  # the relay's self-signed certificate
        f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {relay_ip}",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={profile}",
        f"--log-net-log={netlog}",
        "--enable-logging=stderr",
        "--v=0",
        f"--window-size={size[0]},{size[1]}",
        "--virtual-time-budget=500",
        f"--screenshot={out}",
    ]
    if dark:
        cmd.append("--force-dark-mode")  # prefers-color-scheme: dark
    cmd.append(url)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, p.stderr[-3000:]
    assert out.exists() and out.stat().st_size > 1000, p.stderr[-3000:]
    console = [ln for ln in p.stderr.splitlines() if ":CONSOLE" in ln]
    log = json.loads(netlog.read_text())
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    page_requests, other = [], []
    for ev in log["events"]:
        if types.get(ev["type"]) != "URL_REQUEST_START_JOB":
            continue
        params = ev.get("params", {})
        target = params.get("url", "")
        nik = params.get("network_isolation_key", "")
        (page_requests if relay_ip in nik else other).append(target)
    return {"console": console, "page_requests": page_requests, "browser_requests": other}


def check_load(r: dict, relay_ip: str, url: str):
    assert not r["console"], f"{url}: console messages: {r['console']}"
    assert r["page_requests"], f"{url}: the NetLog shows no request of the page"
    for target in r["page_requests"]:
        host = urlsplit(target).hostname
        assert host == relay_ip, f"{url}: the page requested {target}"


def decode_qr(png: Path) -> str:
    p = subprocess.run([ZBARIMG, "-q", "--raw", str(png)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"no QR code decoded in {png}: {p.stderr}"
    codes = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert len(codes) == 1, codes
    return codes[0]


def save(shots: dict[str, Path]):
    if os.environ.get("CHATRELAY_UPDATE_SCREENSHOTS") == "1":
        dest = REPO / "docs" / "screenshots"
        dest.mkdir(parents=True, exist_ok=True)
        for name, path in shots.items():
            shutil.copy(path, dest / f"{name}.png")


def test_detector_sees_console_errors(tmp_path):
    """The console check is real: a page that logs is caught."""
    out = tmp_path / "bad.png"
    page = "data:text/html,<script>console.error('planted error')</script>"
    r = shoot(page, "127.0.0.1", out, (390, 400), tmp_path)
    assert any("planted error" in ln for ln in r["console"]), r["console"]


def test_pages_in_chromium(relay_factory, tmp_path):
    relay = relay_factory.make()  # open registration, IP literal, self-signed
    shots = {}
    for name, path in PAGES.items():
        for width, size in WIDTHS.items():
            out = tmp_path / f"{name}-{width}.png"
            url = relay.https_url(path)
            check_load(shoot(url, relay.ip, out, size, tmp_path), relay.ip, url)
            shots[f"{name}-{width}"] = out
    # Dark colours (prefers-color-scheme), with a QR code still readable.
    for name in ("index", "privacy"):
        out = tmp_path / f"{name}-phone-dark.png"
        url = relay.https_url(PAGES[name])
        check_load(shoot(url, relay.ip, out, WIDTHS["phone"], tmp_path, dark=True), relay.ip, url)
        shots[f"{name}-phone-dark"] = out
    assert decode_qr(shots["index-phone-dark"]).startswith("dclogin:")
    # The index QR (fresh credentials on every load) decodes to a dclogin:
    # link of this relay, and those credentials log in.
    for width in WIDTHS:
        link = decode_qr(shots[f"index-{width}"])
        m = re.fullmatch(r"dclogin:([a-z0-9]+@\[[0-9.]+\])\?p=([^&]+)&v=1&ih=([0-9.]+)&sh=[0-9.]+&ic=3", link)
        assert m, link
        assert m.group(3) == relay.ip and m.group(1).endswith(f"@[{relay.ip}]"), link
        from urllib.parse import unquote
        imap = imap_login(relay, Creds(m.group(1), unquote(m.group(2))))
        imap.logout()
    save(shots)


def test_invite_qr_on_status_page(relay_factory, tmp_path):
    relay = relay_factory.make(registration="invite")
    # The first-start invitation, as the console screen prints it.
    p = subprocess.run(
        [str(relay.binary), "invite", "--config", str(relay.config_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, p.stderr
    first = next(ln for ln in p.stdout.splitlines() if ln.startswith("dclogin:"))
    shots = {}
    for width, size in WIDTHS.items():
        out = tmp_path / f"status-invite-{width}.png"
        url = relay.https_url("/status")
        check_load(shoot(url, relay.ip, out, size, tmp_path), relay.ip, url)
        assert decode_qr(out) == first
        shots[f"status-invite-{width}"] = out
    save(shots)
