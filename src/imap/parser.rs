//! IMAP command parser (RFC 3501 §9 grammar), no I/O.
