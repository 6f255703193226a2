//! The workspace's shape, as ARCHITECTURE.md states it: no source file imports a
//! file that imports it back (directly or round a longer loop), and the controller
//! cannot tell simulated hardware from real (it does not depend on the simulator
//! outside its tests).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: &[&str] = &["proto", "hal", "controller", "simulator", "scenarios", "diag"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's module path inside its crate (`dispense/runner.rs` → `["dispense", "runner"]`);
/// `None` for binaries, which are crates of their own.
fn module_path(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    if parts.last().is_some_and(|p| p == "mod" || p == "lib" || p == "main") {
        parts.pop();
    }
    Some(parts)
}

/// The text without comments and string contents, so only code is read.
fn code_only(text: &str) -> String {
    let (mut out, mut chars) = (String::with_capacity(text.len()), text.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            // A char literal of a quote is no string.
            '\'' if chars.peek() == Some(&'"') => {
                chars.next();
                out.push_str("'\"");
            }
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' => {
                out.push('"');
                let mut escaped = false;
                for c in chars.by_ref() {
                    if !escaped && c == '"' {
                        break;
                    }
                    escaped = !escaped && c == '\\';
                }
                out.push('"');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Expands a use tree (`a::{b, c::{d}}`) into its paths.
fn expand(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    let (head, rest) = match tree.find('{') {
        Some(open) => (&tree[..open], Some(&tree[open + 1..tree.rfind('}').unwrap_or(tree.len())])),
        None => (tree, None),
    };
    let head = head.split(" as ").next().unwrap_or(head);
    let mut path = prefix.to_vec();
    path.extend(head.split("::").map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
    let Some(inner) = rest else {
        out.push(path);
        return;
    };
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&path, &inner[start..i], out);
                start = i + 1;
            }
            _ => {}
        }
    }
    expand(&path, &inner[start..], out);
}

/// The module paths a file names through `crate::`, `super::` or `self::`.
fn references(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before_ok = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric() && rest.as_bytes()[at - 1] != b'_';
        let after = &rest[at + 4..];
        let end = after.find(';').unwrap_or(after.len());
        if before_ok && ["crate::", "super::", "self::"].iter().any(|p| after.trim_start().starts_with(p)) {
            expand(&[], &after[..end], &mut paths);
        }
        rest = &after[end.min(after.len())..];
    }
    // Paths written out in place (`crate::ops::faults::definition(...)`).
    for start in ["crate::", "super::"] {
        for (at, _) in code.match_indices(start) {
            if at > 0 && (code.as_bytes()[at - 1].is_ascii_alphanumeric() || code.as_bytes()[at - 1] == b'_' || code.as_bytes()[at - 1] == b':') {
                continue;
            }
            let path: String = code[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
            paths.push(path.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect());
        }
    }
    paths
}

/// Which file of the crate a path lands in: the longest module prefix that is a file.
fn resolve(files: &BTreeMap<Vec<String>, PathBuf>, from: &[String], from_dir_module: bool, path: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("self") => from.to_vec(),
        Some("super") => {
            if from_dir_module {
                from.to_vec()
            } else {
                from[..from.len().saturating_sub(1)].to_vec()
            }
        }
        _ => return None,
    };
    let mut rest = &path[1..];
    if path[0] == "super" {
        base.pop();
        while rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
    }
    base.extend(rest.iter().cloned());
    (0..=base.len()).rev().map(|k| base[..k].to_vec()).find(|m| files.contains_key(m))
}

/// File-level import graph of one crate: file → files it imports.
fn graph(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = workspace().join(krate).join("src");
    let mut all = Vec::new();
    sources(&src, &mut all);
    let files: BTreeMap<Vec<String>, PathBuf> = all.iter().filter_map(|f| Some((module_path(&src, f)?, f.clone()))).collect();
    let name = |m: &[String]| format!("{krate}/{}", if m.is_empty() { "(root)".to_owned() } else { m.join("/") });
    let mut edges = BTreeMap::new();
    for (module, file) in &files {
        let code = code_only(&std::fs::read_to_string(file).expect("readable source"));
        let dir_module = file.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs" || n == "main.rs");
        let targets: BTreeSet<String> =
            references(&code).iter().filter_map(|p| resolve(&files, module, dir_module, p)).filter(|t| t != module).map(|t| name(&t)).collect();
        edges.insert(name(module), targets);
    }
    edges
}

/// The strongly connected components with more than one file (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        let i = w.index.len();
        w.index.insert(v, i);
        w.low.insert(v, i);
        w.stack.push(v);
        for t in w.edges.get(v).into_iter().flatten() {
            if !w.index.contains_key(t.as_str()) {
                visit(w, t);
                let low = w.low[t.as_str()].min(w.low[v]);
                w.low.insert(v, low);
            } else if w.stack.contains(&t.as_str()) {
                let low = w.index[t.as_str()].min(w.low[v]);
                w.low.insert(v, low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut component = Vec::new();
            while let Some(u) = w.stack.pop() {
                component.push(u.to_owned());
                if u == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                w.found.push(component);
            }
        }
    }
    let mut walk = Walk { edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            visit(&mut walk, v);
        }
    }
    walk.found
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let mut found = Vec::new();
    for krate in CRATES {
        let edges = graph(krate);
        assert!(edges.len() >= 2, "{krate}: the sources were found ({} files)", edges.len());
        found.extend(cycles(&edges));
    }
    assert!(found.is_empty(), "import cycles between files: {found:#?}");
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    // The check itself must be able to fail: two files naming each other.
    let mut files = BTreeMap::new();
    files.insert(vec!["a".to_owned()], PathBuf::from("a.rs"));
    files.insert(vec!["b".to_owned()], PathBuf::from("b.rs"));
    let mut edges = BTreeMap::new();
    for (from, code) in [("a", "use crate::b::Thing;"), ("b", "fn f() { crate::a::g(); }")] {
        let module = vec![from.to_owned()];
        let targets = references(&code_only(code)).iter().filter_map(|p| resolve(&files, &module, false, p)).map(|t| t.join("/")).collect();
        edges.insert(from.to_owned(), targets);
    }
    assert_eq!(cycles(&edges), vec![vec!["a".to_owned(), "b".to_owned()]]);
}

#[test]
fn the_controller_does_not_depend_on_the_simulator() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let tree = std::process::Command::new(cargo)
        .args(["tree", "-e", "normal", "-p", "controller", "--prefix", "none", "--offline"])
        .current_dir(workspace())
        .output()
        .expect("cargo tree runs");
    let listing = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.status.success() && listing.contains("hal v"), "cargo tree lists the controller's dependencies: {}", String::from_utf8_lossy(&tree.stderr));
    assert!(!listing.lines().any(|l| l.starts_with("simulator ")), "the controller links the simulator:\n{listing}");
    let manifest: toml::Table = std::fs::read_to_string(workspace().join("controller/Cargo.toml")).expect("manifest").parse().expect("toml");
    let normal = manifest.get("dependencies").and_then(toml::Value::as_table).expect("[dependencies]");
    assert!(!normal.contains_key("simulator"), "the controller must not link the simulator; wire the two on the simulation side");
    let dev = manifest.get("dev-dependencies").and_then(toml::Value::as_table).expect("[dev-dependencies]");
    assert!(dev.contains_key("simulator"), "its tests may");
}

/// The device methods that move something.
const MOTION_METHODS: &[&str] = &["pick_to_hatch", "release_to_belt", "convey", "home", "jog"];

/// Calls of a motion method on a device handle (`….store.home(`, `….conveyor.convey(`)
/// in `code`, as `store.home`.
fn motion_calls(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for device in ["store", "conveyor"] {
        for method in MOTION_METHODS {
            let call = format!("{device}.{method}(");
            if code.contains(&call) {
                found.push(format!("{device}.{method}"));
            }
        }
    }
    found
}

/// H-05: every motion command the controller sends goes through one gate
/// (`motion.rs`), which journals nothing itself but demands the journalled intent and
/// checks interlocks, maintenance and the belt at the moment of sending.
#[test]
fn every_motion_goes_through_the_gate() {
    let src = workspace().join("controller/src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let around: Vec<String> = files
        .iter()
        .filter(|f| !f.ends_with("motion.rs"))
        .flat_map(|f| {
            let code = code_only(&std::fs::read_to_string(f).expect("source"));
            let name = f.strip_prefix(&src).unwrap_or(f).display().to_string();
            motion_calls(&code).into_iter().map(move |c| format!("{name}: {c}"))
        })
        .collect();
    assert!(around.is_empty(), "motion commands sent around the gate: {around:#?}");
    assert_eq!(motion_calls("devices.conveyor.convey(carrier, to)"), ["conveyor.convey"], "the check can fail");
}
