//! The module layering of `src/` (README "Architecture"), checked from the
//! source text: every `crate::`, `super::` and child-module path a file names
//! is an edge to the file that defines that module.
//!
//! 1. Between top-level modules, every edge points to a lower layer or stays
//!    in the same layer, and the module graph has no cycle.
//! 2. Between files, no cycle spans more than 3 files (a parser and its
//!    own helper may refer to each other; nothing bigger).
//!
//! A new module must be given a layer in `LAYERS`, so the test also fails
//! on a module nobody placed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers, bottom up. A module may use modules of its own layer or below.
const LAYERS: &[(&str, &[&str])] = &[
    // 0: primitives without the relay's state: clocks, config, line framing,
    // sans-IO cores (policy, dkim, dns wire, mail syntax), the store.
    (
        "core",
        &[
            "clock",
            "config",
            "logger",
            "net",
            "mail",
            "hub",
            "store",
            "policy",
            "dkim",
            "dns",
            "tls",
            "https_client",
            "natpmp",
        ],
    ),
    // 1: the shared context every session holds (relay::Ctx), accounts,
    // delivery into the store, the inbound pipeline.
    ("context", &["relay", "doctor", "backup", "upstream"]),
    // 2: protocol services. They use the context and the cores, never
    // each other.
    (
        "services",
        &[
            "smtp", "imap", "http", "outbound", "push", "prune", "turn", "iroh", "acme", "ddns",
            "router",
        ],
    ),
    // 3: listeners and dispatch.
    ("server", &["server"]),
];

/// Services that must not use one another even though they share a layer.
const ISOLATED_LAYER: &str = "services";

fn layer_of(module: &str) -> Option<(usize, &'static str)> {
    LAYERS
        .iter()
        .enumerate()
        .find(|(_, (_, ms))| ms.contains(&module))
        .map(|(i, (name, _))| (i, *name))
}

/// Remove comments, string and char literals (keeps line structure).
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // raw string r"..." / r#"..."#
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"'
                    && b[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == b'#')
                        .count()
                        == hashes
                {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == b'\'' {
            // char literal or lifetime
            if b.get(i + 1) == Some(&b'\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                i = j + 1;
                out.push_str("' '");
            } else if b.get(i + 2) == Some(&b'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push('\'');
                i += 1;
            }
        } else {
            out.push(c as char);
            i += 1;
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Expand the path (or `{...}` group) that starts at `s[i..]` into full
/// segment lists, each prefixed by `prefix`.
fn paths_at(s: &[u8], mut i: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut segs = prefix;
    loop {
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < s.len() && s[i] == b'{' {
            i += 1;
            loop {
                while i < s.len() && (s[i].is_ascii_whitespace() || s[i] == b',') {
                    i += 1;
                }
                if i >= s.len() || s[i] == b'}' {
                    return i + 1;
                }
                i = paths_at(s, i, segs.clone(), out);
            }
        }
        let start = i;
        while i < s.len() && is_ident(s[i]) {
            i += 1;
        }
        if i == start {
            out.push(segs);
            return i;
        }
        segs.push(String::from_utf8_lossy(&s[start..i]).into_owned());
        let mut j = i;
        while j < s.len() && s[j].is_ascii_whitespace() {
            j += 1;
        }
        if s[j..].starts_with(b"::") {
            i = j + 2;
        } else {
            // `as alias`, `;`, `(`, `,` … end this path.
            out.push(segs);
            return i;
        }
    }
}

struct Tree {
    root: PathBuf,
    /// module path (e.g. ["imap","parser"]) -> file
    files: BTreeMap<Vec<String>, PathBuf>,
}

impl Tree {
    fn load(root: &Path) -> Tree {
        let mut files = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                if p.extension().and_then(|e| e.to_str()) != Some("rs") {
                    continue;
                }
                let rel = p.strip_prefix(root).unwrap();
                let mut m: Vec<String> = rel
                    .with_extension("")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if m.last().map(|s| s == "mod").unwrap_or(false) {
                    m.pop();
                }
                if m == ["lib"] || m == ["main"] {
                    continue;
                }
                files.insert(m, p);
            }
        }
        Tree {
            root: root.to_path_buf(),
            files,
        }
    }

    /// The longest module prefix of `path` that has a file.
    fn resolve(&self, path: &[String]) -> Option<Vec<String>> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| self.files.contains_key(p))
    }

    fn is_mod_file(&self, m: &[String]) -> bool {
        self.files[m].ends_with("mod.rs")
    }

    /// The modules file `m` refers to.
    fn edges(&self, m: &[String]) -> BTreeSet<Vec<String>> {
        let mut text = strip(&std::fs::read_to_string(&self.files[m]).unwrap());
        // Unit tests (by convention the trailing `#[cfg(test)] mod tests`)
        // are not part of the architecture.
        if let Some(i) = text.find("#[cfg(test)]\nmod tests") {
            text.truncate(i);
        }
        let s = text.as_bytes();
        let mut raw: Vec<Vec<String>> = Vec::new();
        // Child modules declared here: relative paths `child::x` name them.
        let mut children: BTreeSet<String> = BTreeSet::new();
        let own_dir: Vec<String> = if self.is_mod_file(m) {
            m.to_vec()
        } else {
            // foo.rs with `mod bar;` has children in foo/bar.rs
            m.to_vec()
        };
        for cand in self.files.keys() {
            if cand.len() == own_dir.len() + 1 && cand.starts_with(&own_dir) {
                children.insert(cand.last().unwrap().clone());
            }
        }
        let parent: Vec<String> = m[..m.len() - 1].to_vec();
        let mut i = 0;
        while i < s.len() {
            let at_word = i == 0 || !(is_ident(s[i - 1]) || s[i - 1] == b':');
            if at_word && s[i..].starts_with(b"crate::") {
                i = paths_at(s, i + 7, Vec::new(), &mut raw);
                continue;
            }
            if at_word && s[i..].starts_with(b"super::") {
                let mut base = parent.clone();
                let mut j = i + 7;
                while s[j..].starts_with(b"super::") {
                    base.pop();
                    j += 7;
                }
                i = paths_at(s, j, base, &mut raw);
                continue;
            }
            if at_word && s[i..].starts_with(b"self::") {
                i = paths_at(s, i + 6, m.to_vec(), &mut raw);
                continue;
            }
            if at_word && is_ident(s[i]) {
                let start = i;
                while i < s.len() && is_ident(s[i]) {
                    i += 1;
                }
                let w = String::from_utf8_lossy(&s[start..i]).into_owned();
                if children.contains(&w) && s[i..].starts_with(b"::") {
                    let mut base = m.to_vec();
                    base.push(w);
                    i = paths_at(s, i + 2, base, &mut raw);
                }
                continue;
            }
            i += 1;
        }
        raw.iter()
            .filter_map(|p| self.resolve(p))
            .filter(|t| t.as_slice() != m)
            .collect()
    }
}

fn name(m: &[String]) -> String {
    m.join("::")
}

/// Tarjan's strongly connected components.
fn sccs(
    nodes: &[Vec<String>],
    adj: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
) -> Vec<Vec<Vec<String>>> {
    struct St<'a> {
        adj: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<Vec<String>, usize>,
        low: BTreeMap<Vec<String>, usize>,
        on: BTreeSet<Vec<String>>,
        stack: Vec<Vec<String>>,
        next: usize,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit(st: &mut St, v: &Vec<String>) {
        st.index.insert(v.clone(), st.next);
        st.low.insert(v.clone(), st.next);
        st.next += 1;
        st.stack.push(v.clone());
        st.on.insert(v.clone());
        let succ: Vec<Vec<String>> = st
            .adj
            .get(v)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for w in succ {
            if !st.index.contains_key(&w) {
                visit(st, &w);
                let lw = st.low[&w];
                let lv = st.low[v];
                st.low.insert(v.clone(), lv.min(lw));
            } else if st.on.contains(&w) {
                let iw = st.index[&w];
                let lv = st.low[v];
                st.low.insert(v.clone(), lv.min(iw));
            }
        }
        if st.low[v] == st.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = st.stack.pop().unwrap();
                st.on.remove(&w);
                let done = &w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            st.out.push(comp);
        }
    }
    let mut st = St {
        adj,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for n in nodes {
        if !st.index.contains_key(n) {
            visit(&mut st, n);
        }
    }
    st.out
}

fn graph() -> (Tree, BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) {
    let tree = Tree::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let adj = tree
        .files
        .keys()
        .map(|m| (m.clone(), tree.edges(m)))
        .collect();
    (tree, adj)
}

#[test]
fn every_module_has_a_layer() {
    let (tree, _) = graph();
    let tops: BTreeSet<&String> = tree.files.keys().map(|m| &m[0]).collect();
    let missing: Vec<&&String> = tops.iter().filter(|t| layer_of(t).is_none()).collect();
    assert!(
        missing.is_empty(),
        "modules without a layer in tests/layering.rs LAYERS: {missing:?} (root {})",
        tree.root.display()
    );
}

#[test]
fn edges_point_down_and_services_stay_apart() {
    let (_, adj) = graph();
    let mut bad = Vec::new();
    for (from, tos) in &adj {
        for to in tos {
            if from[0] == to[0] {
                continue;
            }
            let (Some((lf, nf)), Some((lt, _))) = (layer_of(&from[0]), layer_of(&to[0])) else {
                continue;
            };
            if lt > lf || (lt == lf && nf == ISOLATED_LAYER) {
                bad.push(format!("{} -> {}", name(from), name(to)));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "edges against the layering:\n  {}",
        bad.join("\n  ")
    );
}

#[test]
fn top_level_modules_form_no_cycle() {
    let (_, adj) = graph();
    let mut top: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (from, tos) in &adj {
        let e = top.entry(vec![from[0].clone()]).or_default();
        for to in tos {
            if to[0] != from[0] {
                e.insert(vec![to[0].clone()]);
            }
        }
    }
    let nodes: Vec<Vec<String>> = top.keys().cloned().collect();
    let cycles: Vec<String> = sccs(&nodes, &top)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| c.iter().map(|m| name(m)).collect::<Vec<_>>().join(", "))
        .collect();
    assert!(
        cycles.is_empty(),
        "import cycles between top-level modules: {cycles:?}"
    );
}

#[test]
fn no_file_cycle_longer_than_three() {
    let (_, adj) = graph();
    let nodes: Vec<Vec<String>> = adj.keys().cloned().collect();
    let big: Vec<String> = sccs(&nodes, &adj)
        .into_iter()
        .filter(|c| c.len() > 3)
        .map(|c| c.iter().map(|m| name(m)).collect::<Vec<_>>().join(", "))
        .collect();
    assert!(
        big.is_empty(),
        "file import cycles of more than 3 files: {big:#?}"
    );
}

/// The checker itself: it sees grouped imports, `super::` and child paths,
/// and ignores paths inside comments and strings.
#[test]
fn checker_reads_paths() {
    let src = "use crate::{a::b, c::{d, e::f}};\n// crate::nope\nlet s = \"crate::nope2\";\nsuper::x::y(); crate::g::h::i();";
    let t = strip(src);
    let b = t.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"crate::") {
            i = paths_at(b, i + 7, Vec::new(), &mut out);
        } else {
            i += 1;
        }
    }
    let got: Vec<String> = out.iter().map(|p| p.join("::")).collect();
    assert_eq!(got, ["a::b", "c::d", "c::e::f", "g::h::i"]);
    assert!(!t.contains("nope"));
}

/// A cycle of two top-level modules is found (what a new back-edge makes).
#[test]
fn checker_finds_cycles() {
    let v = |s: &str| vec![s.to_string()];
    let mut adj: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    adj.entry(v("a")).or_default().insert(v("b"));
    adj.entry(v("b")).or_default().insert(v("c"));
    adj.entry(v("c")).or_default().insert(v("a"));
    adj.entry(v("d")).or_default().insert(v("a"));
    let nodes: Vec<Vec<String>> = adj.keys().cloned().collect();
    let mut big: Vec<usize> = sccs(&nodes, &adj).iter().map(|c| c.len()).collect();
    big.sort();
    assert_eq!(big, [1, 3]);
}
