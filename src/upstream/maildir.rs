//! Dovecot Maildir++ names as upstream chatmail stores them (cmdeploy's
//! dovecot.conf: `mail_location = maildir:<mailboxes_dir>/%u`): INBOX in
//! `cur/` and `new/`, other folders as `.Name/` with `.` as hierarchy
//! separator, a message's flags in its file name after `:2,` (Maildir
//! spec, cr.yp.to/proto/maildir.html; Dovecot's "Maildir mailbox format":
//! letters `a`–`z` are keywords listed in `dovecot-keywords`). Pure: no I/O.

use crate::store::{flag, Flags};

/// The folder name for a Maildir++ directory `.A.B` (`A/B`), or `None` for
/// names that are not folders (`.`, `..`, `.` alone, empty parts).
pub fn folder_name(dir: &str) -> Option<String> {
    let rest = dir.strip_prefix('.')?;
    if rest.is_empty() || rest.split('.').any(|p| p.is_empty()) {
        return None;
    }
    // What our IMAP CREATE accepts: printable, no list wildcards (RFC 9051
    // §6.3.9), bounded; `/` is our hierarchy delimiter, so a name holding
    // one (a file system would not make it, a fuzzer did) is not a level.
    if rest.len() > 255
        || rest
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '*' | '%'))
    {
        return None;
    }
    // Dovecot's `INBOX` is the root; a `.INBOX` folder would clash.
    if rest.eq_ignore_ascii_case("INBOX") {
        return None;
    }
    Some(rest.replace('.', "/"))
}

/// Flags of a message file name; `keywords[i]` is the keyword of letter
/// `a + i` (from `dovecot-keywords`). Names without an info part (`new/`
/// or odd names) have no flags. Unknown letters are ignored.
pub fn flags_of(name: &str, keywords: &[Option<String>]) -> Flags {
    let mut f = Flags::default();
    // Dovecot writes `:2,`; on file systems without `:` some setups use `!2,`
    // or `;2,` (maildir_info_separator).
    let info = [":2,", "!2,", ";2,"]
        .iter()
        .filter_map(|sep| name.rfind(sep).map(|i| &name[i + 3..]))
        .next();
    let Some(info) = info else { return f };
    for c in info.chars() {
        match c {
            'S' => f.bits |= flag::SEEN,
            'R' => f.bits |= flag::ANSWERED,
            'F' => f.bits |= flag::FLAGGED,
            'T' => f.bits |= flag::DELETED,
            'D' => f.bits |= flag::DRAFT,
            // "Passed": resent/forwarded, IMAP keyword `$Forwarded`.
            'P' => push_kw(&mut f, "$Forwarded"),
            'a'..='z' => {
                if let Some(Some(k)) = keywords.get((c as u8 - b'a') as usize) {
                    push_kw(&mut f, k);
                }
            }
            _ => {}
        }
    }
    f
}

fn push_kw(f: &mut Flags, k: &str) {
    if !f.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
        f.keywords.push(k.to_string());
    }
}

/// `dovecot-keywords`: lines `<index> <keyword>`; index 0 is letter `a`.
pub fn parse_keywords(text: &str) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = vec![None; 26];
    for l in text.lines() {
        let Some((i, k)) = l.split_once(' ') else {
            continue;
        };
        let Ok(i) = i.trim().parse::<usize>() else {
            continue;
        };
        let k = k.trim();
        if i < 26
            && !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
        {
            out[i] = Some(k.to_string());
        }
    }
    out
}

/// The size Dovecot recorded in the name (`,S=<bytes>`), if any.
pub fn size_of(name: &str) -> Option<u64> {
    let base = name.split([':', '!', ';']).next()?;
    base.split(',')
        .find_map(|p| p.strip_prefix("S="))
        .and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders() {
        assert_eq!(folder_name(".Archive").as_deref(), Some("Archive"));
        assert_eq!(folder_name(".Deep.Nested").as_deref(), Some("Deep/Nested"));
        assert_eq!(folder_name(".&AOQ-rger").as_deref(), Some("&AOQ-rger"));
        // `.\x01{/` was found by the backup_manifest fuzz target.
        let long = format!(".{}", "a".repeat(256));
        for bad in [
            "cur",
            ".",
            "..",
            ".a..b",
            ".INBOX",
            ".x.",
            "new",
            ".\x01{/",
            ".a/b",
            ".a*",
            ".%",
            ".tab\there",
            &long,
        ] {
            assert_eq!(folder_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn flags_from_names() {
        let kw = parse_keywords("0 $Label1\n1 Work\nx y\n99 far\n");
        let f = flags_of("1700000000.M1P2.host,S=300,W=310:2,FRSab", &kw);
        assert!(f.has(flag::SEEN) && f.has(flag::ANSWERED) && f.has(flag::FLAGGED));
        assert!(!f.has(flag::DRAFT) && !f.has(flag::DELETED));
        assert_eq!(f.keywords, vec!["$Label1", "Work"]);
        assert_eq!(flags_of("1700000000.M1P2.host", &kw), Flags::default());
        assert_eq!(flags_of("x:2,", &kw), Flags::default());
        let f = flags_of("odd name!2,DTPz", &kw);
        assert!(f.has(flag::DRAFT) && f.has(flag::DELETED));
        assert_eq!(f.keywords, vec!["$Forwarded"]);
        assert_eq!(size_of("1.M2.h,S=300,W=310:2,S"), Some(300));
        assert_eq!(size_of("1.M2.h:2,S"), None);
    }
}
