#!/usr/bin/env python3
"""One guest connection of QEMU's user network to a host TCP address.

QEMU runs this per connection the guest opens to a `guestfwd=...-cmd:`
address (image/emutest.py: the guest's ACME client reaching pebble on the
host), with the connection as fd 0/1/2. It pumps bytes both ways until
either side closes. Usage: guestfwd.py HOST PORT
"""

import selectors
import socket
import sys


def main() -> int:
    guest = socket.socket(fileno=0)
    host = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
    host.settimeout(None)
    sel = selectors.DefaultSelector()
    sel.register(guest, selectors.EVENT_READ, host)
    sel.register(host, selectors.EVENT_READ, guest)
    open_ends = 2
    while open_ends:
        events = sel.select(timeout=300)
        if not events:
            return 0   # idle for 5 minutes: give up (bounded)
        for key, _ in events:
            src, dst = key.fileobj, key.data
            data = src.recv(65536)
            if data:
                dst.sendall(data)
            else:
                sel.unregister(src)
                open_ends -= 1
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
