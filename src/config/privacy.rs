//! The operator's legal details (upstream's `privacy_*` keys): which of
//! them are unset. The privacy page, the LAN status page and
//! `chatrelay doctor` all report the same list.

use super::Config;

/// Names of the `privacy_*` keys that are empty, in the order the privacy
/// page shows them.
pub fn missing_privacy_fields(cfg: &Config) -> Vec<&'static str> {
    [
        ("privacy_postal", &cfg.privacy_postal),
        ("privacy_mail", &cfg.privacy_mail),
        ("privacy_pdo", &cfg.privacy_pdo),
        ("privacy_supervisor", &cfg.privacy_supervisor),
    ]
    .into_iter()
    .filter(|(_, v)| v.trim().is_empty())
    .map(|(k, _)| k)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_empty_ones() {
        let c = Config::from_ini("[params]\nmail_domain = a.example\n", None).unwrap();
        assert_eq!(
            missing_privacy_fields(&c),
            [
                "privacy_postal",
                "privacy_mail",
                "privacy_pdo",
                "privacy_supervisor"
            ]
        );
        let c = Config::from_ini(
            "[params]\nmail_domain = a.example\nprivacy_mail = x@a.example\nprivacy_pdo =   \n",
            None,
        )
        .unwrap();
        assert_eq!(
            missing_privacy_fields(&c),
            ["privacy_postal", "privacy_pdo", "privacy_supervisor"]
        );
    }
}
