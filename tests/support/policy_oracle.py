#!/usr/bin/env python3
"""Independent MIME reader for the policy differential test (tests/policy_mime.rs).

Reads one message per file named on the command line (or stdin with no
arguments) with Python's stdlib `email` package and prints, per message, one
line: the content-type tree in the notation of
`chatrelay::policy::structure::Entity::tree`, e.g.
`multipart/encrypted(application/pgp-encrypted,application/octet-stream)`,
then a tab and the names of structural defects Python noticed (comma-separated,
or `-`). `message/*` parts are leaves, as for our reader.
"""
import email
import email.policy
import sys

STRUCTURAL = {
    "StartBoundaryNotFoundDefect",
    "CloseBoundaryNotFoundDefect",
    "MultipartInvariantViolationDefect",
    "NoBoundaryInMultipartDefect",
    "MissingHeaderBodySeparatorDefect",
    "FirstHeaderLineIsContinuationDefect",
    "MisplacedEnvelopeHeaderDefect",
    "InvalidMultipartContentTransferEncodingDefect",
    "MultipartConversionError",
}


def tree(msg, defects):
    for d in msg.defects:
        name = type(d).__name__
        if name in STRUCTURAL:
            defects.add(name)
    ctype = msg.get_content_type()
    if msg.get_content_maintype() == "multipart":
        payload = msg.get_payload()
        if not isinstance(payload, list):
            defects.add("MultipartNotSplit")
            return ctype + "()"
        return ctype + "(" + ",".join(tree(p, defects) for p in payload) + ")"
    return ctype


def describe(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    defects = set()
    t = tree(msg, defects)
    return t + "\t" + (",".join(sorted(defects)) or "-")


def main():
    if len(sys.argv) == 1:
        print(describe(sys.stdin.buffer.read()))
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            print(describe(f.read()))


if __name__ == "__main__":
    main()
