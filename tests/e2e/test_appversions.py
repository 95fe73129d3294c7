"""App-version index over METADATA (issue 12): the check upstream applies to
its shipped file (single-line JSON, the schema Delta Chat core parses),
applied here to what a real relay serves over IMAP. Written for chatrelay
from the rules of upstream's chatmaild test, not copied from it.
"""

from __future__ import annotations

import imaplib
import json

import pytest

from harness import create_account, imap_login

KEY = "/shared/vendor/deltachat/appversions"
OFFICIAL = ("https://github.com/deltachat/", "https://download.delta.chat/")


def check_string(value):
    assert isinstance(value, str) and value, value


def check_appversions(data):
    """Core deserialises into typed structs: a wrong type drops the whole
    value, unknown keys become defaults; so keys and types must be exact."""
    assert set(data) == {"clients"}, data
    assert isinstance(data["clients"], list) and data["clients"]
    client_ids = []
    for client in data["clients"]:
        assert set(client) == {"clientId", "sources"}, client
        check_string(client["clientId"])
        client_ids.append(client["clientId"])
        assert isinstance(client["sources"], list) and client["sources"]
        source_ids = []
        for source in client["sources"]:
            assert set(source) == {"sourceId", "versionInteger", "versionString", "downloadUrl"}
            check_string(source["sourceId"])
            source_ids.append(source["sourceId"])
            v = source["versionInteger"]
            assert isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32, v
            check_string(source["versionString"])
            check_string(source["downloadUrl"])
            assert source["downloadUrl"].startswith(OFFICIAL), source["downloadUrl"]
        assert len(set(source_ids)) == len(source_ids)
    assert len(set(client_ids)) == len(client_ids)


def get_server_metadata(imap: imaplib.IMAP4, key: str):
    typ, data = imap._simple_command("GETMETADATA", '""', f"({key})")
    assert typ == "OK", (typ, data)
    typ, data = imap._untagged_response(typ, data, "METADATA")
    # A literal value arrives as (b'"" (key {n}', b'value'), then b')'.
    for item in data:
        if isinstance(item, tuple):
            return item[1]
        if item and b"NIL" in item:
            return None
    raise AssertionError(f"no METADATA value in {data!r}")


def test_served_appversions_pass_the_upstream_check(relay):
    creds = create_account(relay)
    imap = imap_login(relay, creds)
    try:
        value = get_server_metadata(imap, KEY)
    finally:
        imap.logout()
    assert value is not None, "appversions answered NIL by default"
    assert b"\n" not in value and b"\r" not in value, value
    check_appversions(json.loads(value))


@pytest.mark.parametrize("value", [True, -1, 2**32, "754", 754.0, None])
def test_check_refuses_bad_version_integers(value):
    data = {"clients": [{"clientId": "deltachat", "sources": [{
        "sourceId": "gplay", "versionInteger": value, "versionString": "1",
        "downloadUrl": "https://github.com/deltachat/x.apk"}]}]}
    with pytest.raises(AssertionError):
        check_appversions(data)


def test_appversions_off_is_nil(relay_factory):
    relay = relay_factory.make(appversions_file="off")
    creds = create_account(relay)
    imap = imap_login(relay, creds)
    try:
        assert get_server_metadata(imap, KEY) is None
    finally:
        imap.logout()
