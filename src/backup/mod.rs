//! Backup and restore of a relay's data folder (issue 14): one tar archive
//! with a snapshot of the index, the body files that snapshot refers to,
//! every other file of the data folder (DKIM key, TLS certificate and key,
//! ...) and optionally the config, with a manifest of SHA-256 checksums;
//! optionally age-encrypted. README "Backup and restore" has the commands
//! and the format.

pub mod command;
pub mod control;
pub mod create;
pub mod crypt;
pub mod manifest;
pub mod read;
pub mod restore;
pub mod status;
