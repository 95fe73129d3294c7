//! IMAP command parser (RFC 3501 §9 grammar plus the extensions chatmail
//! clients use: LITERAL+, UIDPLUS, MOVE, ID, ENABLE, CONDSTORE, ESEARCH,
//! SPECIAL-USE, LIST-EXTENDED/LIST-STATUS, METADATA, QUOTA, COMPRESS,
//! BINARY, SASL-IR, UNSELECT). Pure code, no I/O.
//!
//! The session reads a CRLF-terminated line; while [`literal_at_end`] says the
//! line ends in a literal marker it appends CRLF, the literal bytes and the
//! next line, then calls [`parse_command`] on the whole buffer.
//!
//! Hostile input never panics: there is no indexing or unwrapping on input
//! data, and search-key nesting is limited to [`MAX_DEPTH`].

use std::fmt;

pub use super::types::*;
use super::wire;
pub use super::wire::literal_at_end;

/// Maximum nesting of NOT / OR / parenthesised search keys.
pub const MAX_DEPTH: usize = 32;

/// Parse failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A tag was read: reply `<tag> BAD <msg>`.
    Bad { tag: String, msg: String },
    /// No tag readable: reply `* BAD <msg>`.
    NoTag(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Bad { tag, msg } => write!(f, "{tag} BAD {msg}"),
            ParseError::NoTag(msg) => write!(f, "* BAD {msg}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub body: CommandBody,
}

/// Command name and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    Capability,
    Noop,
    Logout,
    StartTls,
    Login {
        user: Vec<u8>,
        pass: Vec<u8>,
    },
    /// SASL-IR initial response is still base64 text; `"="` means empty.
    Authenticate {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    /// `ID NIL` → `None`; values lossily converted to UTF-8.
    Id(Option<Vec<(String, Option<String>)>>),
    /// Capability names, uppercased.
    Enable(Vec<String>),
    Namespace,
    Select {
        mailbox: Mailbox,
        condstore: bool,
    },
    Examine {
        mailbox: Mailbox,
        condstore: bool,
    },
    /// `special_use` from RFC 6154 `CREATE x (USE (\Sent))`, as sent.
    Create {
        mailbox: Mailbox,
        special_use: Vec<String>,
    },
    Delete(Mailbox),
    Rename {
        from: Mailbox,
        to: Mailbox,
    },
    Subscribe(Mailbox),
    Unsubscribe(Mailbox),
    List {
        reference: Vec<u8>,
        patterns: Vec<Vec<u8>>,
        select_special_use: bool,
        return_special_use: bool,
        return_subscribed: bool,
        return_status: Vec<StatusItem>,
    },
    Lsub {
        reference: Vec<u8>,
        pattern: Vec<u8>,
    },
    Status {
        mailbox: Mailbox,
        items: Vec<StatusItem>,
    },
    Append {
        mailbox: Mailbox,
        flags: Vec<Flag>,
        date: Option<i64>,
        message: Vec<u8>,
    },
    Check,
    Close,
    Unselect,
    Expunge,
    UidExpunge(SeqSet),
    /// `ret`: ESEARCH `RETURN (...)` options uppercased; `RETURN ()` gives
    /// `["ALL"]`; empty when no RETURN was given (plain `* SEARCH`).
    Search {
        uid: bool,
        charset: Option<String>,
        key: SearchKey,
        ret: Vec<String>,
    },
    Fetch {
        uid: bool,
        set: SeqSet,
        items: Vec<FetchAtt>,
        changed_since: Option<u64>,
    },
    Store {
        uid: bool,
        set: SeqSet,
        op: StoreOp,
        silent: bool,
        flags: Vec<Flag>,
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SeqSet,
        mailbox: Mailbox,
    },
    Move {
        uid: bool,
        set: SeqSet,
        mailbox: Mailbox,
    },
    Idle,
    GetQuotaRoot(Mailbox),
    GetQuota(String),
    /// Entry names as sent (compare case-insensitively); `depth` lowercased
    /// (`0`, `1`, `infinity`).
    GetMetadata {
        mailbox: Mailbox,
        entries: Vec<String>,
        maxsize: Option<u64>,
        depth: Option<String>,
    },
    /// Value `None` (NIL) means delete.
    SetMetadata {
        mailbox: Mailbox,
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    /// Mechanism, uppercased (`DEFLATE`).
    Compress(String),
}

impl CommandBody {
    /// Command name as used in tagged responses (`UID FETCH`, `SELECT`, ...).
    pub fn name(&self) -> &'static str {
        use CommandBody::*;
        match self {
            Capability => "CAPABILITY",
            Noop => "NOOP",
            Logout => "LOGOUT",
            StartTls => "STARTTLS",
            Login { .. } => "LOGIN",
            Authenticate { .. } => "AUTHENTICATE",
            Id(_) => "ID",
            Enable(_) => "ENABLE",
            Namespace => "NAMESPACE",
            Select { .. } => "SELECT",
            Examine { .. } => "EXAMINE",
            Create { .. } => "CREATE",
            Delete(_) => "DELETE",
            Rename { .. } => "RENAME",
            Subscribe(_) => "SUBSCRIBE",
            Unsubscribe(_) => "UNSUBSCRIBE",
            List { .. } => "LIST",
            Lsub { .. } => "LSUB",
            Status { .. } => "STATUS",
            Append { .. } => "APPEND",
            Check => "CHECK",
            Close => "CLOSE",
            Unselect => "UNSELECT",
            Expunge => "EXPUNGE",
            UidExpunge(_) => "UID EXPUNGE",
            Search { uid: true, .. } => "UID SEARCH",
            Search { .. } => "SEARCH",
            Fetch { uid: true, .. } => "UID FETCH",
            Fetch { .. } => "FETCH",
            Store { uid: true, .. } => "UID STORE",
            Store { .. } => "STORE",
            Copy { uid: true, .. } => "UID COPY",
            Copy { .. } => "COPY",
            Move { uid: true, .. } => "UID MOVE",
            Move { .. } => "MOVE",
            Idle => "IDLE",
            GetQuotaRoot(_) => "GETQUOTAROOT",
            GetQuota(_) => "GETQUOTA",
            GetMetadata { .. } => "GETMETADATA",
            SetMetadata { .. } => "SETMETADATA",
            Compress(_) => "COMPRESS",
        }
    }
}

/// Parse one complete command (line(s) with embedded literals as
/// `{n}\r\n<n bytes>`). A trailing CRLF is optional.
pub fn parse_command(buf: &[u8]) -> Result<Command, ParseError> {
    let mut p = Parser { b: buf, pos: 0 };
    if p.at_cmd_end() {
        return Err(ParseError::NoTag("empty command line".into()));
    }
    let tag_bytes = p.take_while(wire::is_tag_char);
    if tag_bytes.is_empty() {
        return Err(ParseError::NoTag(format!("invalid tag: {}", p.snippet())));
    }
    let tag = String::from_utf8_lossy(tag_bytes).into_owned();
    if p.at_cmd_end() {
        return Err(ParseError::Bad {
            tag,
            msg: "missing command".into(),
        });
    }
    if !p.eat(b' ') {
        return Err(ParseError::NoTag(format!(
            "invalid character in tag: {}",
            p.snippet()
        )));
    }
    match p.command() {
        Ok(body) => Ok(Command { tag, body }),
        Err(msg) => Err(ParseError::Bad { tag, msg }),
    }
}

type R<T> = Result<T, String>;

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
}

fn upper(s: &[u8]) -> String {
    String::from_utf8_lossy(s).to_ascii_uppercase()
}

fn lossy(s: Vec<u8>) -> String {
    match String::from_utf8(s) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn utf8(s: Vec<u8>, what: &str) -> R<String> {
    String::from_utf8(s).map_err(|_| format!("{what} is not valid UTF-8"))
}

impl<'a> Parser<'a> {
    // ---- low-level cursor ----

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn peek_at(&self, off: usize) -> Option<u8> {
        self.b.get(self.pos.checked_add(off)?).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.b.get(self.pos..).unwrap_or(&[])
    }

    fn at_cmd_end(&self) -> bool {
        matches!(self.rest(), b"" | b"\r\n" | b"\n")
    }

    fn snippet(&self) -> String {
        let r = self.rest();
        if r.is_empty() {
            return "end of command".into();
        }
        let s = r.get(..24).unwrap_or(r);
        let s = String::from_utf8_lossy(s).escape_debug().to_string();
        if r.len() > 24 {
            format!("\"{s}...\"")
        } else {
            format!("\"{s}\"")
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8, what: &str) -> R<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "expected '{}' {what}, found {}",
                c as char,
                self.snippet()
            ))
        }
    }

    fn sp(&mut self, what: &str) -> R<()> {
        if self.eat(b' ') {
            Ok(())
        } else if self.at_cmd_end() {
            Err(format!("missing {what}"))
        } else {
            Err(format!(
                "expected space before {what}, found {}",
                self.snippet()
            ))
        }
    }

    fn skip_sp(&mut self) {
        while self.eat(b' ') {}
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let r = self.rest();
        let n = r.iter().position(|&b| !f(b)).unwrap_or(r.len());
        self.pos += n;
        r.get(..n).unwrap_or(&[])
    }

    /// Case-insensitive keyword, only if followed by a non-atom char.
    fn eat_kw(&mut self, kw: &str) -> bool {
        let r = self.rest();
        let n = kw.len();
        match r.get(..n) {
            Some(s) if s.eq_ignore_ascii_case(kw.as_bytes()) => {
                if r.get(n).is_some_and(|&b| wire::is_atom_char(b)) {
                    return false;
                }
                self.pos += n;
                true
            }
            _ => false,
        }
    }

    fn finish(&mut self) -> R<()> {
        if self.at_cmd_end() {
            Ok(())
        } else {
            Err(format!(
                "unexpected characters at end of command: {}",
                self.snippet()
            ))
        }
    }

    // ---- lexical items ----

    fn atom(&mut self, what: &str) -> R<&'a [u8]> {
        let a = self.take_while(wire::is_atom_char);
        if a.is_empty() {
            if self.at_cmd_end() {
                Err(format!("missing {what}"))
            } else {
                Err(format!("expected {what}, found {}", self.snippet()))
            }
        } else {
            Ok(a)
        }
    }

    fn number_u64(&mut self, what: &str) -> R<u64> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() {
            return Err(format!(
                "expected number ({what}), found {}",
                self.snippet()
            ));
        }
        let mut n: u64 = 0;
        for &c in d {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(c - b'0')))
                .ok_or_else(|| format!("number too large ({what})"))?;
        }
        Ok(n)
    }

    fn number_u32(&mut self, what: &str) -> R<u32> {
        let n = self.number_u64(what)?;
        u32::try_from(n).map_err(|_| format!("number too large ({what})"))
    }

    fn nz_number(&mut self, what: &str) -> R<u32> {
        let n = self.number_u32(what)?;
        if n == 0 {
            Err(format!("{what} must not be 0"))
        } else {
            Ok(n)
        }
    }

    fn quoted(&mut self) -> R<Vec<u8>> {
        self.expect(b'"', "to start quoted string")?;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err("unterminated quoted string".into());
            };
            self.pos += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => match self.peek() {
                    Some(e @ (b'"' | b'\\')) => {
                        self.pos += 1;
                        out.push(e);
                    }
                    None => return Err("unterminated quoted string".into()),
                    Some(_) => {
                        return Err("invalid escape in quoted string (only \\\" and \\\\)".into())
                    }
                },
                b'\r' | b'\n' => {
                    return Err("unterminated quoted string (line break inside)".into())
                }
                0 => return Err("NUL byte in quoted string".into()),
                c => out.push(c),
            }
        }
    }

    /// `{n}` / `{n+}` CRLF n bytes (the caller handles a `~` prefix).
    fn literal(&mut self) -> R<Vec<u8>> {
        self.expect(b'{', "to start literal")?;
        let n = self.number_u64("literal length")?;
        self.eat(b'+');
        self.expect(b'}', "to end literal length")?;
        self.eat(b'\r');
        if !self.eat(b'\n') {
            return Err("literal length must be followed by CRLF".into());
        }
        let start = self.pos;
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| format!("literal of {n} bytes is longer than the data sent"))?;
        self.pos = end;
        Ok(self.b.get(start..end).unwrap_or(&[]).to_vec())
    }

    fn literal_or_literal8(&mut self) -> R<Vec<u8>> {
        if self.peek() == Some(b'~') && self.peek_at(1) == Some(b'{') {
            self.pos += 1;
        }
        self.literal()
    }

    /// string = quoted / literal
    fn string(&mut self, what: &str) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            _ if self.at_cmd_end() => Err(format!("missing {what}")),
            _ => Err(format!(
                "expected string ({what}), found {}",
                self.snippet()
            )),
        }
    }

    /// astring = 1*ASTRING-CHAR / string
    fn astring(&mut self, what: &str) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(what),
            _ => {
                let a = self.take_while(wire::is_astring_char);
                if a.is_empty() {
                    if self.at_cmd_end() {
                        Err(format!("missing {what}"))
                    } else {
                        Err(format!("expected {what}, found {}", self.snippet()))
                    }
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    /// nstring = string / NIL
    fn nstring(&mut self, what: &str) -> R<Option<Vec<u8>>> {
        if self.eat_kw("NIL") {
            Ok(None)
        } else {
            self.string(what).map(Some)
        }
    }

    fn mailbox(&mut self) -> R<Mailbox> {
        let s = self.astring("mailbox name")?;
        Ok(Mailbox::new(utf8(s, "mailbox name")?))
    }

    /// list-mailbox = 1*list-char / string
    fn list_mailbox(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string("mailbox pattern"),
            _ => {
                let a = self.take_while(wire::is_list_char);
                if a.is_empty() {
                    Err(format!(
                        "expected mailbox pattern, found {}",
                        self.snippet()
                    ))
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    /// `(` item *(SP item) `)`, tolerating extra spaces and `()`.
    /// `(KEY n)` modifier lists of RFC 7162 (CHANGEDSINCE, UNCHANGEDSINCE):
    /// the only modifier `cmd` accepts is `key`; the last value wins.
    fn modseq_modifiers(&mut self, cmd: &str, key: &str) -> R<Option<u64>> {
        let mods = self.paren_list(&format!("{cmd} modifiers"), |p| {
            let k = upper(p.atom(&format!("{cmd} modifier"))?);
            if k == key {
                p.sp(&format!("{key} value"))?;
                p.number_u64(&format!("{key} value"))
            } else {
                Err(format!("unsupported {cmd} modifier {k}"))
            }
        })?;
        Ok(mods.last().copied())
    }

    fn paren_list<T>(&mut self, what: &str, mut item: impl FnMut(&mut Self) -> R<T>) -> R<Vec<T>> {
        self.expect(b'(', &format!("to start {what}"))?;
        let mut v = Vec::new();
        self.skip_sp();
        if self.eat(b')') {
            return Ok(v);
        }
        loop {
            v.push(item(self)?);
            if self.eat(b')') {
                return Ok(v);
            }
            if !self.eat(b' ') {
                return Err(if self.at_cmd_end() {
                    format!("missing ')' to close {what}")
                } else {
                    format!("expected space or ')' in {what}, found {}", self.snippet())
                });
            }
            self.skip_sp();
            if self.eat(b')') {
                return Ok(v);
            }
        }
    }

    fn seq_num(&mut self) -> R<SeqNum> {
        if self.eat(b'*') {
            return Ok(SeqNum::Star);
        }
        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(format!(
                "invalid sequence set: expected number or '*', found {}",
                self.snippet()
            ));
        }
        let n = self.number_u32("sequence number")?;
        if n == 0 {
            return Err("invalid sequence set: 0 is not a valid message number".into());
        }
        Ok(SeqNum::Num(n))
    }

    fn seq_set(&mut self) -> R<SeqSet> {
        let mut v = Vec::new();
        loop {
            let a = self.seq_num()?;
            let b = if self.eat(b':') { self.seq_num()? } else { a };
            v.push((a, b));
            if !self.eat(b',') {
                break;
            }
        }
        if self.peek().is_some_and(wire::is_atom_char) {
            return Err(format!("invalid sequence set near {}", self.snippet()));
        }
        Ok(SeqSet(v))
    }

    fn flag(&mut self) -> R<Flag> {
        if self.eat(b'\\') {
            if self.peek() == Some(b'*') {
                return Err("\\* is not a valid flag here".into());
            }
            let a = self.atom("flag name after '\\'")?;
            let name = format!("\\{}", String::from_utf8_lossy(a));
            Ok(Flag::from_name(&name))
        } else {
            let a = self.atom("flag")?;
            Ok(Flag::Keyword(String::from_utf8_lossy(a).into_owned()))
        }
    }

    fn flag_list(&mut self) -> R<Vec<Flag>> {
        self.paren_list("flag list", |p| p.flag())
    }

    fn date(&mut self) -> R<i64> {
        let raw = if self.peek() == Some(b'"') {
            self.quoted()?
        } else {
            self.atom("date")?.to_vec()
        };
        wire::parse_date(&raw).ok_or_else(|| {
            format!(
                "invalid date {:?} (expected e.g. 1-Feb-1994)",
                String::from_utf8_lossy(&raw)
            )
        })
    }

    // ---- commands ----

    fn command(&mut self) -> R<CommandBody> {
        let name = upper(self.atom("command name")?);
        let body = match name.as_str() {
            "CAPABILITY" => CommandBody::Capability,
            "NOOP" => CommandBody::Noop,
            "LOGOUT" => CommandBody::Logout,
            "STARTTLS" => CommandBody::StartTls,
            "NAMESPACE" => CommandBody::Namespace,
            "CHECK" => CommandBody::Check,
            "CLOSE" => CommandBody::Close,
            "UNSELECT" => CommandBody::Unselect,
            "EXPUNGE" => CommandBody::Expunge,
            "IDLE" => CommandBody::Idle,
            "LOGIN" => {
                self.sp("user name")?;
                let user = self.astring("user name")?;
                self.sp("password")?;
                let pass = self.astring("password")?;
                CommandBody::Login { user, pass }
            }
            "AUTHENTICATE" => self.authenticate()?,
            "ID" => self.id()?,
            "ENABLE" => {
                let mut caps = Vec::new();
                self.sp("capability name")?;
                loop {
                    caps.push(upper(self.atom("capability name")?));
                    if !self.eat(b' ') {
                        break;
                    }
                }
                CommandBody::Enable(caps)
            }
            "SELECT" | "EXAMINE" => {
                self.sp("mailbox name")?;
                let mailbox = self.mailbox()?;
                let mut condstore = false;
                if self.eat(b' ') {
                    let params = self.paren_list("select parameters", |p| {
                        Ok(upper(p.atom("select parameter")?))
                    })?;
                    for prm in params {
                        match prm.as_str() {
                            "CONDSTORE" => condstore = true,
                            other => return Err(format!("unsupported {name} parameter {other}")),
                        }
                    }
                }
                if name == "SELECT" {
                    CommandBody::Select { mailbox, condstore }
                } else {
                    CommandBody::Examine { mailbox, condstore }
                }
            }
            "CREATE" => {
                self.sp("mailbox name")?;
                let mailbox = self.mailbox()?;
                let mut special_use = Vec::new();
                if self.eat(b' ') {
                    let lists = self.paren_list("CREATE parameters", |p| {
                        let k = upper(p.atom("CREATE parameter")?);
                        if k != "USE" {
                            return Err(format!("unsupported CREATE parameter {k}"));
                        }
                        p.sp("USE flag list")?;
                        p.paren_list("USE flag list", |p| {
                            p.expect(b'\\', "to start special-use attribute")?;
                            let a = p.atom("special-use attribute")?;
                            Ok(format!("\\{}", String::from_utf8_lossy(a)))
                        })
                    })?;
                    special_use = lists.into_iter().flatten().collect();
                }
                CommandBody::Create {
                    mailbox,
                    special_use,
                }
            }
            "DELETE" => {
                self.sp("mailbox name")?;
                CommandBody::Delete(self.mailbox()?)
            }
            "SUBSCRIBE" => {
                self.sp("mailbox name")?;
                CommandBody::Subscribe(self.mailbox()?)
            }
            "UNSUBSCRIBE" => {
                self.sp("mailbox name")?;
                CommandBody::Unsubscribe(self.mailbox()?)
            }
            "RENAME" => {
                self.sp("mailbox name")?;
                let from = self.mailbox()?;
                self.sp("new mailbox name")?;
                let to = self.mailbox()?;
                CommandBody::Rename { from, to }
            }
            "LIST" => self.list()?,
            "LSUB" => {
                self.sp("reference name")?;
                let reference = self.astring("reference name")?;
                self.sp("mailbox pattern")?;
                let pattern = self.list_mailbox()?;
                CommandBody::Lsub { reference, pattern }
            }
            "STATUS" => {
                self.sp("mailbox name")?;
                let mailbox = self.mailbox()?;
                self.sp("status items")?;
                let items = self.status_items()?;
                CommandBody::Status { mailbox, items }
            }
            "APPEND" => self.append()?,
            "GETQUOTAROOT" => {
                self.sp("mailbox name")?;
                CommandBody::GetQuotaRoot(self.mailbox()?)
            }
            "GETQUOTA" => {
                self.sp("quota root")?;
                let r = self.astring("quota root")?;
                CommandBody::GetQuota(utf8(r, "quota root")?)
            }
            "GETMETADATA" => self.getmetadata()?,
            "SETMETADATA" => self.setmetadata()?,
            "COMPRESS" => {
                self.sp("compression mechanism")?;
                CommandBody::Compress(upper(self.atom("compression mechanism")?))
            }
            "UID" => {
                self.sp("UID command")?;
                let sub = upper(self.atom("UID command")?);
                self.uid_command(&sub, true)?
            }
            "FETCH" | "STORE" | "COPY" | "MOVE" | "SEARCH" => self.uid_command(&name, false)?,
            _ => return Err(format!("unknown command {name}")),
        };
        self.finish()?;
        Ok(body)
    }

    fn uid_command(&mut self, sub: &str, uid: bool) -> R<CommandBody> {
        Ok(match sub {
            "FETCH" => {
                self.sp("sequence set")?;
                let set = self.seq_set()?;
                self.sp("fetch items")?;
                let items = self.fetch_items()?;
                let mut changed_since = None;
                if self.eat(b' ') {
                    changed_since = self.modseq_modifiers("FETCH", "CHANGEDSINCE")?;
                }
                CommandBody::Fetch {
                    uid,
                    set,
                    items,
                    changed_since,
                }
            }
            "STORE" => self.store(uid)?,
            "COPY" | "MOVE" => {
                self.sp("sequence set")?;
                let set = self.seq_set()?;
                self.sp("mailbox name")?;
                let mailbox = self.mailbox()?;
                if sub == "COPY" {
                    CommandBody::Copy { uid, set, mailbox }
                } else {
                    CommandBody::Move { uid, set, mailbox }
                }
            }
            "SEARCH" => self.search(uid)?,
            "EXPUNGE" if uid => {
                self.sp("sequence set")?;
                CommandBody::UidExpunge(self.seq_set()?)
            }
            _ => return Err(format!("unknown UID command {sub}")),
        })
    }

    fn authenticate(&mut self) -> R<CommandBody> {
        self.sp("SASL mechanism")?;
        let mechanism = upper(self.atom("SASL mechanism")?);
        let mut initial = None;
        if self.eat(b' ') {
            let ir = self
                .take_while(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
            if ir.is_empty() {
                return Err(format!("invalid SASL initial response: {}", self.snippet()));
            }
            initial = Some(ir.to_vec());
        }
        Ok(CommandBody::Authenticate { mechanism, initial })
    }

    fn id(&mut self) -> R<CommandBody> {
        self.sp("ID parameter list")?;
        if self.eat_kw("NIL") {
            return Ok(CommandBody::Id(None));
        }
        let items = self.paren_list("ID parameter list", |p| p.nstring("ID field"))?;
        if items.len() % 2 != 0 {
            return Err("ID parameter list must have an even number of items".into());
        }
        let mut out = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let k = k.ok_or("ID field name must not be NIL")?;
            out.push((lossy(k), v.map(lossy)));
        }
        Ok(CommandBody::Id(Some(out)))
    }

    fn status_items(&mut self) -> R<Vec<StatusItem>> {
        self.paren_list("status items", |p| {
            let a = p.atom("status item")?;
            StatusItem::from_name(a)
                .ok_or_else(|| format!("unknown status item {}", String::from_utf8_lossy(a)))
        })
    }

    fn list(&mut self) -> R<CommandBody> {
        self.sp("reference name")?;
        let mut select_special_use = false;
        if self.peek() == Some(b'(') {
            let opts = self.paren_list("LIST selection options", |p| {
                Ok(upper(p.atom("LIST selection option")?))
            })?;
            for o in opts {
                match o.as_str() {
                    "SPECIAL-USE" => select_special_use = true,
                    // Every mailbox is subscribed/local here: accept and ignore.
                    "SUBSCRIBED" | "REMOTE" | "RECURSIVEMATCH" => {}
                    _ => return Err(format!("unsupported LIST selection option {o}")),
                }
            }
            self.sp("reference name")?;
        }
        let reference = self.astring("reference name")?;
        self.sp("mailbox pattern")?;
        let patterns = if self.peek() == Some(b'(') {
            self.paren_list("mailbox patterns", |p| p.list_mailbox())?
        } else {
            vec![self.list_mailbox()?]
        };
        let mut return_special_use = false;
        let mut return_subscribed = false;
        let mut return_status = Vec::new();
        if self.eat(b' ') {
            if !self.eat_kw("RETURN") {
                return Err(format!("expected RETURN, found {}", self.snippet()));
            }
            self.sp("LIST return options")?;
            self.expect(b'(', "to start LIST return options")?;
            self.skip_sp();
            while !self.eat(b')') {
                let o = upper(self.atom("LIST return option")?);
                match o.as_str() {
                    "SPECIAL-USE" => return_special_use = true,
                    "SUBSCRIBED" => return_subscribed = true,
                    "CHILDREN" => {}
                    "STATUS" => {
                        self.sp("status items")?;
                        return_status = self.status_items()?;
                    }
                    _ => return Err(format!("unsupported LIST return option {o}")),
                }
                if !self.eat(b' ') && self.peek() != Some(b')') {
                    return Err(if self.at_cmd_end() {
                        "missing ')' to close LIST return options".into()
                    } else {
                        format!(
                            "expected space or ')' in LIST return options, found {}",
                            self.snippet()
                        )
                    });
                }
                self.skip_sp();
            }
        }
        Ok(CommandBody::List {
            reference,
            patterns,
            select_special_use,
            return_special_use,
            return_subscribed,
            return_status,
        })
    }

    fn append(&mut self) -> R<CommandBody> {
        self.sp("mailbox name")?;
        let mailbox = self.mailbox()?;
        self.sp("message literal")?;
        let mut flags = Vec::new();
        if self.peek() == Some(b'(') {
            flags = self.flag_list()?;
            self.sp("message literal")?;
        }
        let mut date = None;
        if self.peek() == Some(b'"') {
            let raw = self.quoted()?;
            date = Some(wire::parse_datetime(&raw).ok_or_else(|| {
                format!(
                    "invalid date-time {:?} (expected e.g. \"27-Nov-2026 13:40:00 +0000\")",
                    String::from_utf8_lossy(&raw)
                )
            })?);
            self.sp("message literal")?;
        }
        if !matches!(self.peek(), Some(b'{' | b'~')) {
            return Err(format!(
                "expected message literal, found {}",
                self.snippet()
            ));
        }
        let message = self.literal_or_literal8()?;
        Ok(CommandBody::Append {
            mailbox,
            flags,
            date,
            message,
        })
    }

    fn store(&mut self, uid: bool) -> R<CommandBody> {
        self.sp("sequence set")?;
        let set = self.seq_set()?;
        self.sp("STORE data item")?;
        let mut unchanged_since = None;
        if self.peek() == Some(b'(') {
            unchanged_since = self.modseq_modifiers("STORE", "UNCHANGEDSINCE")?;
            self.sp("STORE data item")?;
        }
        let item = upper(self.atom("STORE data item")?);
        let (op, rest) = match item.as_bytes().first() {
            Some(b'+') => (StoreOp::Add, item.get(1..).unwrap_or("")),
            Some(b'-') => (StoreOp::Remove, item.get(1..).unwrap_or("")),
            _ => (StoreOp::Replace, item.as_str()),
        };
        let silent = match rest {
            "FLAGS" => false,
            "FLAGS.SILENT" => true,
            _ => return Err(format!("unknown STORE data item {item}")),
        };
        self.sp("flags")?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut v = vec![self.flag()?];
            while self.eat(b' ') {
                v.push(self.flag()?);
            }
            v
        };
        Ok(CommandBody::Store {
            uid,
            set,
            op,
            silent,
            flags,
            unchanged_since,
        })
    }

    fn getmetadata(&mut self) -> R<CommandBody> {
        self.sp("mailbox name")?;
        let mut maxsize = None;
        let mut depth = None;
        if self.peek() == Some(b'(') {
            self.expect(b'(', "to start GETMETADATA options")?;
            self.skip_sp();
            while !self.eat(b')') {
                let o = upper(self.atom("GETMETADATA option")?);
                self.sp("GETMETADATA option value")?;
                match o.as_str() {
                    "MAXSIZE" => maxsize = Some(self.number_u64("MAXSIZE")?),
                    "DEPTH" => {
                        let d = self.atom("DEPTH value")?.to_ascii_lowercase();
                        if !matches!(d.as_slice(), b"0" | b"1" | b"infinity") {
                            return Err("DEPTH must be 0, 1 or infinity".into());
                        }
                        depth = Some(String::from_utf8_lossy(&d).into_owned());
                    }
                    _ => return Err(format!("unsupported GETMETADATA option {o}")),
                }
                if !self.eat(b' ') && self.peek() != Some(b')') {
                    return Err(if self.at_cmd_end() {
                        "missing ')' to close GETMETADATA options".into()
                    } else {
                        format!(
                            "expected space or ')' in GETMETADATA options, found {}",
                            self.snippet()
                        )
                    });
                }
                self.skip_sp();
            }
            self.sp("mailbox name")?;
        }
        let mailbox = self.mailbox()?;
        self.sp("metadata entries")?;
        let entries = if self.peek() == Some(b'(') {
            self.paren_list("metadata entries", |p| p.entry_name())?
        } else {
            vec![self.entry_name()?]
        };
        if entries.is_empty() {
            return Err("empty metadata entry list".into());
        }
        Ok(CommandBody::GetMetadata {
            mailbox,
            entries,
            maxsize,
            depth,
        })
    }

    fn entry_name(&mut self) -> R<String> {
        let e = utf8(self.astring("metadata entry name")?, "metadata entry name")?;
        if !e.starts_with('/') || e.contains(['*', '%']) {
            return Err(format!("invalid metadata entry name {e:?}"));
        }
        Ok(e)
    }

    fn setmetadata(&mut self) -> R<CommandBody> {
        self.sp("mailbox name")?;
        let mailbox = self.mailbox()?;
        self.sp("metadata entries")?;
        let entries = self.paren_list("metadata entry list", |p| {
            let k = p.entry_name()?;
            p.sp("metadata value")?;
            let v = match p.peek() {
                Some(b'~') => Some(p.literal_or_literal8()?),
                _ => p.nstring("metadata value")?,
            };
            Ok((k, v))
        })?;
        if entries.is_empty() {
            return Err("empty metadata entry list".into());
        }
        Ok(CommandBody::SetMetadata { mailbox, entries })
    }

    // ---- FETCH ----

    fn fetch_items(&mut self) -> R<Vec<FetchAtt>> {
        if self.peek() == Some(b'(') {
            let v = self.paren_list("fetch items", |p| p.fetch_att())?;
            if v.is_empty() {
                return Err("empty fetch item list".into());
            }
            return Ok(v);
        }
        use FetchAtt::*;
        if self.eat_kw("ALL") {
            return Ok(vec![Flags, InternalDate, Rfc822Size, Envelope]);
        }
        if self.eat_kw("FAST") {
            return Ok(vec![Flags, InternalDate, Rfc822Size]);
        }
        if self.eat_kw("FULL") {
            return Ok(vec![Flags, InternalDate, Rfc822Size, Envelope, Body]);
        }
        Ok(vec![self.fetch_att()?])
    }

    fn fetch_att(&mut self) -> R<FetchAtt> {
        let raw = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if raw.is_empty() {
            return Err(format!("expected fetch item, found {}", self.snippet()));
        }
        let name = upper(raw);
        let has_section = self.peek() == Some(b'[');
        Ok(match name.as_str() {
            "BODY" | "BODY.PEEK" if has_section => {
                let section = self.section()?;
                let partial = self.partial()?;
                FetchAtt::BodySection {
                    peek: name == "BODY.PEEK",
                    section,
                    partial,
                }
            }
            "BINARY" | "BINARY.PEEK" if has_section => {
                let part = self.binary_part()?;
                let partial = self.partial()?;
                FetchAtt::Binary {
                    peek: name == "BINARY.PEEK",
                    part,
                    partial,
                }
            }
            "BINARY.SIZE" if has_section => FetchAtt::BinarySize(self.binary_part()?),
            "BODY.PEEK" | "BINARY" | "BINARY.PEEK" | "BINARY.SIZE" => {
                return Err(format!("{name} requires a section in [...]"))
            }
            _ if has_section => return Err(format!("{name} does not take a section")),
            "BODY" => FetchAtt::Body,
            "BODYSTRUCTURE" => FetchAtt::BodyStructure,
            "ENVELOPE" => FetchAtt::Envelope,
            "FLAGS" => FetchAtt::Flags,
            "INTERNALDATE" => FetchAtt::InternalDate,
            "RFC822" => FetchAtt::Rfc822,
            "RFC822.HEADER" => FetchAtt::Rfc822Header,
            "RFC822.SIZE" => FetchAtt::Rfc822Size,
            "RFC822.TEXT" => FetchAtt::Rfc822Text,
            "UID" => FetchAtt::Uid,
            "MODSEQ" => FetchAtt::ModSeq,
            "ALL" | "FAST" | "FULL" => {
                return Err(format!(
                    "macro {name} is not allowed inside a fetch item list"
                ))
            }
            _ => return Err(format!("unknown fetch item {name}")),
        })
    }

    fn part_numbers(&mut self, part: &mut Vec<u32>) -> R<()> {
        loop {
            part.push(self.nz_number("section part number")?);
            if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            } else {
                return Ok(());
            }
        }
    }

    fn section(&mut self) -> R<Section> {
        self.expect(b'[', "to start section")?;
        let mut part = Vec::new();
        let mut text = None;
        if self.eat(b']') {
            return Ok(Section { part, text });
        }
        if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.part_numbers(&mut part)?;
            if self.eat(b'.') {
                text = Some(self.section_text(true)?);
            }
        } else {
            text = Some(self.section_text(false)?);
        }
        self.expect(b']', "to end section")?;
        Ok(Section { part, text })
    }

    fn section_text(&mut self, after_part: bool) -> R<SectionText> {
        let raw = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'.');
        let name = upper(raw);
        Ok(match name.as_str() {
            "HEADER" => SectionText::Header,
            "TEXT" => SectionText::Text,
            "MIME" if after_part => SectionText::Mime,
            "MIME" => return Err("MIME section requires a part number".into()),
            "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
                self.sp("header field list")?;
                let fields = self.paren_list("header field list", |p| {
                    Ok(lossy(p.astring("header field name")?))
                })?;
                if fields.is_empty() {
                    return Err("empty header field list".into());
                }
                if name == "HEADER.FIELDS" {
                    SectionText::HeaderFields(fields)
                } else {
                    SectionText::HeaderFieldsNot(fields)
                }
            }
            "" => return Err(format!("expected section text, found {}", self.snippet())),
            _ => return Err(format!("unknown section text {name}")),
        })
    }

    fn binary_part(&mut self) -> R<Vec<u32>> {
        self.expect(b'[', "to start BINARY section")?;
        let mut part = Vec::new();
        if self.peek() != Some(b']') {
            self.part_numbers(&mut part)?;
        }
        self.expect(b']', "to end BINARY section")?;
        Ok(part)
    }

    fn partial(&mut self) -> R<Option<(u32, u32)>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let origin = self.number_u32("partial origin")?;
        self.expect(b'.', "in partial range <origin.length>")?;
        let len = self.nz_number("partial length")?;
        self.expect(b'>', "to end partial range")?;
        Ok(Some((origin, len)))
    }

    // ---- SEARCH ----

    fn search(&mut self, uid: bool) -> R<CommandBody> {
        self.sp("search criteria")?;
        let mut ret = Vec::new();
        if self.eat_kw("RETURN") {
            self.sp("RETURN options")?;
            ret = self.paren_list("RETURN options", |p| Ok(upper(p.atom("RETURN option")?)))?;
            if ret.is_empty() {
                ret.push("ALL".into());
            }
            self.sp("search criteria")?;
        }
        let mut charset = None;
        if self.eat_kw("CHARSET") {
            self.sp("charset")?;
            charset = Some(upper(&self.astring("charset")?));
            self.sp("search criteria")?;
        }
        let mut keys = Vec::new();
        loop {
            keys.push(self.search_key(0)?);
            if self.at_cmd_end() {
                break;
            }
            self.sp("search key")?;
        }
        let key = if keys.len() == 1 {
            keys.pop().unwrap_or(SearchKey::All)
        } else {
            SearchKey::And(keys)
        };
        Ok(CommandBody::Search {
            uid,
            charset,
            key,
            ret,
        })
    }

    fn search_string(&mut self, what: &str) -> R<String> {
        self.sp(what)?;
        Ok(lossy(self.astring(what)?))
    }

    fn search_key(&mut self, depth: usize) -> R<SearchKey> {
        if depth >= MAX_DEPTH {
            return Err(format!(
                "search criteria nested too deeply (max {MAX_DEPTH})"
            ));
        }
        use SearchKey as K;
        match self.peek() {
            Some(b'(') => {
                let mut keys = self.paren_list("search key list", |p| p.search_key(depth + 1))?;
                return match keys.len() {
                    0 => Err("empty search key list".into()),
                    1 => Ok(keys.pop().unwrap_or(K::All)),
                    _ => Ok(K::And(keys)),
                };
            }
            Some(b'0'..=b'9' | b'*') => return Ok(K::Seq(self.seq_set()?)),
            _ => {}
        }
        let kw = upper(self.atom("search key")?);
        Ok(match kw.as_str() {
            "ALL" => K::All,
            "ANSWERED" => K::Answered,
            "DELETED" => K::Deleted,
            "DRAFT" => K::Draft,
            "FLAGGED" => K::Flagged,
            "NEW" => K::New,
            "OLD" => K::Old,
            "RECENT" => K::Recent,
            "SEEN" => K::Seen,
            "UNANSWERED" => K::Unanswered,
            "UNDELETED" => K::Undeleted,
            "UNDRAFT" => K::Undraft,
            "UNFLAGGED" => K::Unflagged,
            "UNSEEN" => K::Unseen,
            "KEYWORD" | "UNKEYWORD" => {
                self.sp("keyword")?;
                let f = match self.flag()? {
                    Flag::Keyword(k) => k,
                    other => other.as_str().to_string(),
                };
                if kw == "KEYWORD" {
                    K::Keyword(f)
                } else {
                    K::Unkeyword(f)
                }
            }
            "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" => {
                self.sp("date")?;
                let d = self.date()?;
                match kw.as_str() {
                    "BEFORE" => K::Before(d),
                    "ON" => K::On(d),
                    "SINCE" => K::Since(d),
                    "SENTBEFORE" => K::SentBefore(d),
                    "SENTON" => K::SentOn(d),
                    _ => K::SentSince(d),
                }
            }
            "FROM" => K::From(self.search_string("FROM string")?),
            "TO" => K::To(self.search_string("TO string")?),
            "CC" => K::Cc(self.search_string("CC string")?),
            "BCC" => K::Bcc(self.search_string("BCC string")?),
            "SUBJECT" => K::Subject(self.search_string("SUBJECT string")?),
            "BODY" => K::Body(self.search_string("BODY string")?),
            "TEXT" => K::Text(self.search_string("TEXT string")?),
            "HEADER" => {
                let name = self.search_string("header field name")?;
                let value = self.search_string("header value")?;
                K::Header(name, value)
            }
            "LARGER" => {
                self.sp("size")?;
                K::Larger(self.number_u64("LARGER size")?)
            }
            "SMALLER" => {
                self.sp("size")?;
                K::Smaller(self.number_u64("SMALLER size")?)
            }
            "UID" => {
                self.sp("UID set")?;
                K::Uid(self.seq_set()?)
            }
            "NOT" => {
                self.sp("search key after NOT")?;
                K::Not(Box::new(self.search_key(depth + 1)?))
            }
            "OR" => {
                self.sp("first search key of OR")?;
                let a = self.search_key(depth + 1)?;
                self.sp("second search key of OR")?;
                let b = self.search_key(depth + 1)?;
                K::Or(Box::new(a), Box::new(b))
            }
            "MODSEQ" => {
                self.sp("MODSEQ value")?;
                if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    // entry-name SP entry-type-req (RFC 7162), ignored.
                    self.astring("MODSEQ entry name")?;
                    self.sp("MODSEQ entry type")?;
                    let t = upper(self.atom("MODSEQ entry type")?);
                    if !matches!(t.as_str(), "PRIV" | "SHARED" | "ALL") {
                        return Err(format!("invalid MODSEQ entry type {t}"));
                    }
                    self.sp("MODSEQ value")?;
                }
                K::ModSeq(self.number_u64("MODSEQ value")?)
            }
            _ => return Err(format!("unknown search key {kw}")),
        })
    }
}
