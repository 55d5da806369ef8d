//! No import cycles between the daemon's modules (issue 12).
//!
//! Reads every file under `daemon/src` (the binary's `main.rs` and the
//! crate root `lib.rs`, which only declares and re-exports, excepted), takes
//! each path it uses — `use` trees with their braces expanded, and inline
//! `crate::…`, `super::…` and `self::…` paths — and resolves it to the
//! longest module it names. A file's `#[cfg(test)] mod tests` is left out:
//! its `super::*` is the file itself. `mod foo;` declarations are not edges;
//! a child that uses its parent's items is. A private child (`mod foo;`,
//! not `pub mod`) is a file split of its parent's implementation (e.g.
//! `store/peers.rs` adds `impl Store` methods) and counts as the parent.
//! The test fails with the cycle.
//!
//! Run alone: `cargo nextest run -p atrd -E 'test(cycles::)'`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn module_of(src: &Path, file: &Path) -> Option<Module> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    match parts.as_slice() {
        [one] if one == "lib" || one == "main" => None,
        _ => Some(parts),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments, string literals and its test module.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        // Drop string literals (log messages mention `crate::…` paths).
        let mut in_str = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// Expands a `use` tree (`a::{b, c::{d, e}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.split_whitespace().next().unwrap_or("").to_owned()];
    };
    let prefix: String = tree[..open].chars().filter(|c| !c.is_whitespace()).collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| {
            expand(p)
                .into_iter()
                .map(|s| format!("{prefix}{s}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn paths_of(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before_ok =
            i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric() && rest.as_bytes()[i - 1] != b'_';
        let after = &rest[i + 4..];
        let Some(end) = after.find(';') else { break };
        if before_ok {
            out.extend(expand(&after[..end]));
        }
        rest = &after[end..];
    }
    // Inline paths: every `a::b…` token (a first segment that is not
    // `crate`, `super`, `self` or a child module resolves to nothing).
    let bytes = code.as_bytes();
    for (i, _) in code.match_indices("::") {
        let start = code[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |s| s + 1);
        if start > i || (start > 0 && bytes[start - 1] == b':') {
            continue;
        }
        // Only the first `::` of a token starts it.
        if code[start..i].contains("::") {
            continue;
        }
        let end = code[i..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(code.len(), |e| i + e);
        out.push(code[start..end].to_owned());
    }
    out
}

/// The longest known module a path names, from module `here`.
fn resolve(path: &str, here: &Module, modules: &BTreeSet<Module>) -> Option<Module> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Module = Vec::new();
    let mut i = 0;
    match segs.first() {
        Some(&"crate") => i = 1,
        Some(&"super") => {
            base = here.clone();
            while segs.get(i) == Some(&"super") {
                base.pop();
                i += 1;
            }
        }
        Some(&"self") => {
            base = here.clone();
            i = 1;
        }
        Some(first) => {
            // A 2018-edition relative path to a child module.
            let mut child = here.clone();
            child.push((*first).to_owned());
            if !modules.contains(&child) {
                return None;
            }
            base = here.clone();
        }
        None => return None,
    }
    let mut best = (!base.is_empty() && modules.contains(&base)).then(|| base.clone());
    let mut cur = base;
    for s in &segs[i..] {
        cur.push((*s).to_owned());
        if modules.contains(&cur) {
            best = Some(cur.clone());
        } else {
            break;
        }
    }
    best
}

fn find_cycle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        m: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        state: &mut BTreeMap<Module, u8>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        state.insert(m.clone(), 1);
        stack.push(m.clone());
        for n in graph.get(m).into_iter().flatten() {
            match state.get(n).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|x| x == n).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(n.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(n, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(m.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in graph.keys() {
        if state.get(m).copied().unwrap_or(0) == 0
            && let Some(c) = visit(m, graph, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// The module graph of `daemon/src`: module → the modules it uses.
fn module_graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let files: Vec<(Module, PathBuf)> = files
        .into_iter()
        .filter_map(|f| Some((module_of(&src, &f)?, f)))
        .collect();
    let modules: BTreeSet<Module> = files.iter().map(|(m, _)| m.clone()).collect();
    // Private children, to be merged into their parents.
    let mut private = BTreeSet::new();
    for (m, f) in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for line in text.lines() {
            if let Some(name) = line.trim().strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                let mut child = m.clone();
                child.push(name.to_owned());
                private.insert(child);
            }
        }
    }
    let unit = |m: &Module| -> Module {
        let mut m = m.clone();
        while private.contains(&m) {
            m.pop();
        }
        m
    };
    let mut graph: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (m, f) in &files {
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        let me = unit(m);
        let deps: Vec<Module> = paths_of(&code)
            .iter()
            .filter_map(|p| resolve(p, m, &modules))
            .map(|d| unit(&d))
            .filter(|d| *d != me)
            .collect();
        graph.entry(me).or_default().extend(deps);
    }
    graph
}

#[test]
fn the_daemon_has_no_import_cycles() {
    let graph = module_graph();
    assert!(graph.len() > 20, "only {} modules found", graph.len());
    assert!(!graph.contains_key(&vec!["store".to_owned(), "peers".to_owned()]));
    // The checker sees real edges (a broken parser would pass vacuously).
    let node = vec!["node".to_owned()];
    assert!(
        graph[&node].contains(&vec!["repo".to_owned()]),
        "{:?}",
        graph[&node]
    );
    if let Some(c) = find_cycle(&graph) {
        let names: Vec<String> = c.iter().map(|m| m.join("::")).collect();
        panic!("import cycle: {}", names.join(" -> "));
    }
}

#[test]
fn the_checker_finds_a_cycle_through_a_parent() {
    let m = |s: &str| -> Module { s.split("::").map(str::to_owned).collect() };
    let modules: BTreeSet<Module> = [m("node"), m("node::publish"), m("api")].into();
    assert_eq!(
        resolve("super::Thing", &m("node::publish"), &modules),
        Some(m("node"))
    );
    assert_eq!(
        resolve("publish::Publisher", &m("node"), &modules),
        Some(m("node::publish"))
    );
    assert_eq!(
        resolve("crate::node::publish::X", &m("api"), &modules),
        Some(m("node::publish"))
    );
    assert_eq!(
        expand("crate::{a::b, c::{d, e as f}}"),
        vec!["crate::a::b", "crate::c::d", "crate::c::e"]
    );
    let graph: BTreeMap<Module, BTreeSet<Module>> = [
        (m("node"), [m("node::publish")].into()),
        (m("node::publish"), [m("node")].into()),
    ]
    .into();
    assert!(find_cycle(&graph).is_some());
}
