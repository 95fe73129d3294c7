//! Import from an upstream chatmail relay (issue 14).
pub struct Options {
    pub mailboxes_dir: std::path::PathBuf,
    pub dkim_key: Option<std::path::PathBuf>,
    pub tls_dir: Option<std::path::PathBuf>,
}
pub fn import(_cfg: &crate::config::Config, _o: &Options) -> Result<String, String> {
    Err("not yet".into())
}
