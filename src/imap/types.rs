//! Data types produced by the IMAP command parser (`super::parser`).
//!
//! Pure data plus small helpers (sequence-set matching, wire names); no I/O.

use std::fmt;

/// Mailbox name as the client sent it (astring; modified UTF-7 kept as-is).
/// `INBOX` in any case is normalised to `"INBOX"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mailbox(pub String);

impl Mailbox {
    /// Build a mailbox name, normalising any-case `INBOX` to `INBOX`.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        if name.eq_ignore_ascii_case("INBOX") {
            Mailbox("INBOX".to_string())
        } else {
            Mailbox(name)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One element of a sequence set: a number or `*` (largest value in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqNum {
    Num(u32),
    Star,
}

impl SeqNum {
    /// The numeric value, with `*` replaced by `star`.
    pub fn resolve(self, star: u32) -> u32 {
        match self {
            SeqNum::Num(n) => n,
            SeqNum::Star => star,
        }
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqNum::Num(n) => write!(f, "{n}"),
            SeqNum::Star => f.write_str("*"),
        }
    }
}

/// A sequence set (`1,3:5,7:*`). Each element is a range `(a, b)` as sent
/// (single numbers are `(a, a)`); ranges may be reversed (`5:1` == `1:5`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeqSet(pub Vec<(SeqNum, SeqNum)>);

impl SeqSet {
    /// A set with a single number.
    pub fn single(n: u32) -> Self {
        SeqSet(vec![(SeqNum::Num(n), SeqNum::Num(n))])
    }

    /// Does the set contain `*` anywhere?
    pub fn has_star(&self) -> bool {
        self.0
            .iter()
            .any(|(a, b)| *a == SeqNum::Star || *b == SeqNum::Star)
    }

    /// Normalised inclusive ranges `(lo, hi)` with `*` resolved to `star`.
    pub fn ranges(&self, star: u32) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.0.iter().map(move |(a, b)| {
            let (a, b) = (a.resolve(star), b.resolve(star));
            if a <= b {
                (a, b)
            } else {
                (b, a)
            }
        })
    }

    /// Is `n` in the set, where `*` means `star`?
    pub fn contains(&self, n: u32, star: u32) -> bool {
        self.ranges(star).any(|(lo, hi)| lo <= n && n <= hi)
    }

    /// The values of the sorted (ascending) slice `existing` that are in the
    /// set, ascending and without duplicates; `*` means the largest existing
    /// value (RFC 3501 §6.4.8: `UID 10:*` matches the last message even if
    /// its UID is below 10). O(r·log n + m·log m), never walks 1..=u32::MAX.
    pub fn matching(&self, existing: &[u32]) -> Vec<u32> {
        match existing.last() {
            Some(&star) => self.matching_with_star(existing, star),
            None => Vec::new(),
        }
    }

    /// Like [`SeqSet::matching`] with an explicit value for `*`.
    /// The ranges are merged first, so a set that repeats `1:*` a thousand
    /// times costs one range, never a thousand copies of the mailbox.
    pub fn matching_with_star(&self, existing: &[u32], star: u32) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for (lo, hi) in self.merged(star) {
            let start = existing.partition_point(|&x| x < lo);
            let end = existing.partition_point(|&x| x <= hi);
            if let Some(slice) = existing.get(start..end) {
                out.extend_from_slice(slice);
            }
        }
        out
    }

    /// The set as sorted, disjoint, non-adjacent inclusive ranges with `*`
    /// resolved to `star`. O(r log r).
    pub fn merged(&self, star: u32) -> Vec<(u32, u32)> {
        let mut r: Vec<(u32, u32)> = self.ranges(star).collect();
        r.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(r.len());
        for (lo, hi) in r {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        out
    }

    /// Iterator form of [`SeqSet::matching`].
    pub fn iter_existing(&self, existing: &[u32]) -> std::vec::IntoIter<u32> {
        self.matching(existing).into_iter()
    }

    /// Compress a sorted list of values into a compact set (`1:3,7`), e.g. for
    /// COPYUID/ESEARCH responses.
    pub fn from_sorted(values: &[u32]) -> SeqSet {
        let mut v: Vec<(SeqNum, SeqNum)> = Vec::new();
        let mut cur: Option<(u32, u32)> = None;
        for &x in values {
            cur = match cur {
                Some((a, b)) if b.checked_add(1) == Some(x) || b == x => Some((a, x)),
                Some((a, b)) => {
                    v.push((SeqNum::Num(a), SeqNum::Num(b)));
                    Some((x, x))
                }
                None => Some((x, x)),
            };
        }
        if let Some((a, b)) = cur {
            v.push((SeqNum::Num(a), SeqNum::Num(b)));
        }
        SeqSet(v)
    }
}

impl fmt::Display for SeqSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (a, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}:{b}")?;
            }
        }
        Ok(())
    }
}

/// A message flag. System flags are matched case-insensitively; keywords keep
/// the client's spelling. Unknown `\Xxx` flag-extensions become
/// `Keyword("\\Xxx")`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    Recent,
    Keyword(String),
}

impl Flag {
    /// Wire form: `\Seen`, `$Label1`, ...
    pub fn as_str(&self) -> &str {
        match self {
            Flag::Seen => "\\Seen",
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Draft => "\\Draft",
            Flag::Recent => "\\Recent",
            Flag::Keyword(k) => k,
        }
    }

    /// Parse a flag name (`\seen` → `Seen`, other text → keyword).
    pub fn from_name(s: &str) -> Flag {
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "\\seen" => Flag::Seen,
            "\\answered" => Flag::Answered,
            "\\flagged" => Flag::Flagged,
            "\\deleted" => Flag::Deleted,
            "\\draft" => Flag::Draft,
            "\\recent" => Flag::Recent,
            _ => Flag::Keyword(s.to_string()),
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// STORE operation: `FLAGS`, `+FLAGS`, `-FLAGS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreOp {
    Replace,
    Add,
    Remove,
}

/// STATUS data item (also LIST-STATUS `RETURN (STATUS (...))`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Size,
    HighestModSeq,
}

impl StatusItem {
    /// Wire name (`MESSAGES`, `UIDNEXT`, ...).
    pub fn name(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::Recent => "RECENT",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::Size => "SIZE",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
        }
    }

    /// Parse a wire name, case-insensitively.
    pub fn from_name(s: &[u8]) -> Option<StatusItem> {
        let up = s.to_ascii_uppercase();
        Some(match up.as_slice() {
            b"MESSAGES" => StatusItem::Messages,
            b"RECENT" => StatusItem::Recent,
            b"UIDNEXT" => StatusItem::UidNext,
            b"UIDVALIDITY" => StatusItem::UidValidity,
            b"UNSEEN" => StatusItem::Unseen,
            b"SIZE" => StatusItem::Size,
            b"HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            _ => return None,
        })
    }
}

/// Text part of a BODY[...] section.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SectionText {
    Header,
    /// Field names as the client sent them (compare case-insensitively).
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    /// Only valid after a part number.
    Mime,
}

/// A BODY[...] section: part path (`1.2` → `[1, 2]`, empty = whole message)
/// and optional text specifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

impl Section {
    /// The section-spec as it goes between `[` and `]` in a FETCH response,
    /// e.g. `1.2.HEADER.FIELDS (FROM TO)`.
    pub fn spec(&self) -> String {
        let mut s = self
            .part
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(".");
        if let Some(t) = &self.text {
            if !s.is_empty() {
                s.push('.');
            }
            match t {
                SectionText::Header => s.push_str("HEADER"),
                SectionText::Text => s.push_str("TEXT"),
                SectionText::Mime => s.push_str("MIME"),
                SectionText::HeaderFields(f) => {
                    s.push_str("HEADER.FIELDS (");
                    s.push_str(&join_fields(f));
                    s.push(')');
                }
                SectionText::HeaderFieldsNot(f) => {
                    s.push_str("HEADER.FIELDS.NOT (");
                    s.push_str(&join_fields(f));
                    s.push(')');
                }
            }
        }
        s
    }
}

fn join_fields(f: &[String]) -> String {
    f.iter()
        .map(|x| String::from_utf8_lossy(&super::wire::astring(x.as_bytes())).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// FETCH data item. Macros ALL/FAST/FULL are expanded by the parser.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FetchAtt {
    Uid,
    Flags,
    InternalDate,
    Rfc822Size,
    Envelope,
    BodyStructure,
    /// `BODY` without a section (non-extensible BODYSTRUCTURE).
    Body,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    ModSeq,
    /// `BODY[section]<partial>` / `BODY.PEEK[...]`; partial = (origin, octets).
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<(u32, u32)>,
    },
    /// `BINARY[part]<partial>` / `BINARY.PEEK[...]` (RFC 3516).
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
    },
    /// `BINARY.SIZE[part]`.
    BinarySize(Vec<u32>),
}

/// SEARCH key. Dates are day numbers (days since 1970-01-01); a multi-key
/// search or a parenthesised list is `And`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SearchKey {
    All,
    Answered,
    Deleted,
    Draft,
    Flagged,
    New,
    Old,
    Recent,
    Seen,
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unseen,
    Keyword(String),
    Unkeyword(String),
    Before(i64),
    On(i64),
    Since(i64),
    SentBefore(i64),
    SentOn(i64),
    SentSince(i64),
    From(String),
    To(String),
    Cc(String),
    Bcc(String),
    Subject(String),
    Body(String),
    Text(String),
    Header(String, String),
    Larger(u64),
    Smaller(u64),
    Uid(SeqSet),
    Seq(SeqSet),
    /// Not parsed: SEARCH resolves `Uid`/`Seq` keys once per command to
    /// the UID ranges they cover (sorted, disjoint): as many ranges as the
    /// client sent, never one entry per message, and membership is a
    /// binary search.
    InUidRanges(Vec<(u32, u32)>),
    Not(Box<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    And(Vec<SearchKey>),
    ModSeq(u64),
}
