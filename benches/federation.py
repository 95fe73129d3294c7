#!/usr/bin/env python3
"""Outbound throughput between two local relays (issue "Federation").

Starts two IP-literal relays (release binary) on 127.0.0.201/.202, submits N
encrypted messages from a user on the first to a user on the second over one
SMTPS connection, and reports messages/s until all are in the receiver's
INBOX. Runs the /mxdeliv path, then the SMTP path (receiver without HTTPS).

    python3 benches/federation.py [N]        (default N = 500; bounded at 5000)
"""
import imaplib
import os
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "chatrelay")
N = min(int(sys.argv[1]) if len(sys.argv) > 1 else 500, 5000)
PW = "password123"
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def start(ip, tmp, extra=""):
    d = os.path.join(tmp, ip)
    os.makedirs(d)
    ini = os.path.join(d, "c.ini")
    with open(ini, "w") as f:
        f.write(f"[params]\nmail_domain = {ip}\nlisten_address = {ip}\ndata_dir = {d}/data\n"
                "max_user_send_per_minute = 1000000\nmax_user_send_burst_size = 1000000\n"
                "max_load_1m = 1000\nmin_free_disk_space = 1M\nmin_available_memory = 1M\n"
                "queue_retry_min = 1\nhttp_port = 0\n" + extra)
    p = subprocess.Popen([BIN, "serve", "--config", ini], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(d, "log"), "w"))
    end = time.monotonic() + 20
    while time.monotonic() < end:
        if "chatrelay ready" in open(os.path.join(d, "log")).read():
            return p
        time.sleep(0.05)
    p.kill()
    raise SystemExit(f"relay {ip} did not start")


def run(label, extra_b):
    tmp = tempfile.mkdtemp(prefix="chatrelay-fedbench-")
    a_ip, b_ip = "127.0.0.201", "127.0.0.202"
    pa, pb = start(a_ip, tmp), start(b_ip, tmp, extra_b)
    try:
        a, b = f"alice0001@[{a_ip}]", f"bobbb0001@[{b_ip}]"
        m = imaplib.IMAP4_SSL(b_ip, 993, ssl_context=CTX)
        m.login(b, PW)
        tpl = open(os.path.join(ROOT, "tests/fixtures/eml/encrypted.eml")).read()
        msg = tpl.replace("alice@example.org", a).replace("bob@example.org", b)
        s = smtplib.SMTP_SSL(a_ip, 465, context=CTX)
        s.login(a, PW)
        t0 = time.monotonic()
        for _ in range(N):
            s.sendmail(a, [b], msg)
        t_sub = time.monotonic() - t0
        end = t0 + 300
        count = 0
        while time.monotonic() < end:
            typ, data = m.status("INBOX", "(MESSAGES)")
            count = int(data[0].split()[-1].strip(b")"))
            if count >= N:
                break
            time.sleep(0.05)
        dt = time.monotonic() - t0
        print(f"{label}: {count}/{N} delivered in {dt:.2f} s -> {count / dt:.0f} msgs/s "
              f"(submission alone {N / t_sub:.0f} msgs/s)")
    finally:
        for p in (pa, pb):
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if not os.path.exists(BIN):
        raise SystemExit("build first: cargo build --release")
    run("HTTPS /mxdeliv", "")
    run("SMTP on 25 (receiver without HTTPS)", "https_port = 0\n")
