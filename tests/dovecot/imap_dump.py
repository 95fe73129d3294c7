#!/usr/bin/env python3
"""List every message of an IMAP account with Python's standard imaplib:
one line per message, `folder<TAB>sha256 of BODY[]<TAB>flags<TAB>internal date`,
folders with '/' as separator, sorted. Used by tests/import_upstream.rs to
see an upstream Dovecot account and the imported one the same way.

usage: imap_dump.py HOST PORT tls|plain USER PASSWORD
"""
import hashlib
import imaplib
import re
import ssl
import sys

host, port, mode, user, password = sys.argv[1:6]
if mode == "tls":
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx, timeout=30)
else:
    m = imaplib.IMAP4(host, int(port), timeout=30)
typ, _ = m.login(user, password)
assert typ == "OK"
typ, boxes = m.list()
assert typ == "OK", boxes
out = []
for b in boxes:
    line = b.decode()
    mt = re.match(r'\((?P<attrs>[^)]*)\) (?P<delim>"[^"]*"|NIL) (?P<name>.*)$', line)
    attrs, delim, name = mt["attrs"], mt["delim"].strip('"'), mt["name"].strip('"')
    if "\\Noselect" in attrs or "\\NonExistent" in attrs:
        continue
    typ, _ = m.select('"%s"' % name, readonly=True)
    assert typ == "OK", name
    norm = name.replace(delim, "/") if delim and delim != "NIL" else name
    typ, data = m.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert typ == "OK"
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, body = item[0].decode(), item[1]
        flags = re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split()
        flags = " ".join(sorted(f for f in flags if f != "\\Recent"))
        date = re.search(r'INTERNALDATE "([^"]*)"', meta).group(1)
        out.append("%s\t%s\t%s\t%s" % (norm, hashlib.sha256(body).hexdigest(), flags, date))
m.logout()
print("\n".join(sorted(out)))
