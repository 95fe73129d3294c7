#!/bin/sh
# Stop the peer started by start.sh DIR (Postfix; OpenDKIM is the caller's child).
DIR=$1
postfix -c "$DIR" stop >/dev/null 2>&1 || true
exit 0
