"""Backup and restore with the real Delta Chat core (issue 14).

Two Delta Chat profiles configured against a relay keep working, without
any re-setup, after the relay's card "died": the relay was backed up while
running, its data folder is gone, the archive is restored into an empty
one and the relay starts again on the same address and domain. The relay
runs on 127.0.0.48 (the backup tests' address range).
"""

from __future__ import annotations

import shutil
import subprocess

from harness import wait_incoming_msg


def _text(sender, receiver, text):
    sender.create_chat(receiver).send_text(text)
    msg = wait_incoming_msg(receiver, timeout=90, text=text)
    assert msg.get_snapshot().show_padlock, f"{text!r} arrived unencrypted"


def test_profiles_keep_working_on_the_restored_relay(relay_factory, dcf, tmp_path):
    relay = relay_factory.make(ip="127.0.0.48")
    ac1, ac2 = dcf.online(relay, 2)
    _text(ac1, ac2, "before the backup")
    _text(ac2, ac1, "reply before the backup")
    addr1 = ac1.get_config("configured_addr")

    archive = tmp_path / "relay.tar"
    r = subprocess.run(
        [str(relay.binary), "backup", "--config", str(relay.config_path),
         "--data-dir", str(relay.data_dir), "--out", str(archive)],
        capture_output=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr.decode()

    # The card dies: relay gone, data folder gone. A new card gets the backup.
    ac1.stop_io()
    ac2.stop_io()
    relay.kill9()
    shutil.rmtree(relay.data_dir)
    r = subprocess.run(
        [str(relay.binary), "restore", str(archive), "--data-dir", str(relay.data_dir)],
        capture_output=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr.decode()
    relay.start()

    # Same profiles, no reconfiguration: they log in with their old
    # passwords, trust the same certificate, and chat on.
    ac1.start_io()
    ac2.start_io()
    assert ac1.get_config("configured_addr") == addr1
    _text(ac1, ac2, "after the restore")
    _text(ac2, ac1, "reply after the restore")
