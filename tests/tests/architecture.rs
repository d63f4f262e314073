//! The shape of the host's code, checked without building anything: no
//! module of `host/src` imports a module that imports it back (directly or
//! through others), at the level of files and of top-level modules; and the
//! SDK's copy of the WIT package is the repository's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `a/b.rs` → `a::b`, `a/mod.rs` → `a`, `main.rs` → `crate`.
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "main") {
        parts.pop();
    }
    if parts.is_empty() {
        "crate".to_string()
    } else {
        parts.join("::")
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read host/src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The text of a file without its comments and without `#[cfg(test)]`
/// modules (a test module may use anything).
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line.split("//").next().unwrap_or(""));
        code.push('\n');
    }
    code
}

/// Every path written as `crate::…` or `super::…` in `code`, with one level
/// of `{…}` lists expanded, as absolute module paths of `module`.
fn referenced_paths(code: &str, module: &str, is_mod_file: bool) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let text: String = bytes.iter().collect();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            // Not the tail of a longer identifier (e.g. `my_crate::`).
            if at > 0 {
                let before = text[..at].chars().last().unwrap_or(' ');
                if before.is_alphanumeric() || before == '_' {
                    continue;
                }
            }
            let rest = &text[at..];
            let end = rest
                .find(|c: char| {
                    !(c.is_alphanumeric()
                        || c == '_'
                        || c == ':'
                        || c == '{'
                        || c == '}'
                        || c == ','
                        || c == ' '
                        || c == '\n'
                        || c == '*')
                })
                .unwrap_or(rest.len());
            let mut expr = rest[..end].replace(['\n', ' '], "");
            // A `{` list: stop at its closing brace.
            if let Some(open) = expr.find('{') {
                let close = expr[open..].find('}').map_or(expr.len(), |c| open + c + 1);
                expr.truncate(close);
            } else if let Some(cut) = expr.find(['}', ',']) {
                expr.truncate(cut);
            }
            let (head, list) = match expr.find("::{") {
                Some(i) => (
                    expr[..i].to_string(),
                    expr[i + 3..]
                        .trim_end_matches('}')
                        .split(',')
                        .map(str::to_string)
                        .collect::<Vec<_>>(),
                ),
                None => (expr.clone(), vec![String::new()]),
            };
            for item in list {
                let full = if item.is_empty() {
                    head.clone()
                } else {
                    format!("{head}::{item}")
                };
                let mut segments: Vec<String> = full
                    .split("::")
                    .filter(|s| !s.is_empty() && *s != "*")
                    .map(str::to_string)
                    .collect();
                if segments.first().is_some_and(|s| s == "crate") {
                    segments.remove(0);
                } else {
                    // `super` of `a::b::c` (file a/b/c.rs) is `a::b`; of a
                    // mod.rs file `a/b/mod.rs` (module `a::b`) it is `a`.
                    let mut base: Vec<String> = if module == "crate" {
                        Vec::new()
                    } else {
                        module.split("::").map(str::to_string).collect()
                    };
                    let _ = is_mod_file;
                    while segments.first().is_some_and(|s| s == "super") {
                        segments.remove(0);
                        base.pop();
                    }
                    base.extend(segments);
                    segments = base;
                }
                found.push(segments);
            }
        }
    }
    found
}

/// The longest module among `modules` that `path` starts with.
fn resolve(path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains(m))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = repo().join("host/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(&src).unwrap()))
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = module_of(relative);
        let is_mod_file = relative.file_name().is_some_and(|n| n == "mod.rs");
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let entry = edges.entry(module.clone()).or_default();
        for path in referenced_paths(&code, &module, is_mod_file) {
            if let Some(target) = resolve(&path, &modules)
                && target != module
            {
                entry.insert(target);
            }
        }
    }
    edges
}

/// A cycle of `edges`, if there is one, as the modules along it.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn module_graph_has_no_cycles() {
    let files = graph();
    assert!(
        files
            .get("http::dispatch")
            .is_some_and(|e| e.contains("app")),
        "the scan finds imports: {files:#?}"
    );
    if let Some(cycle) = find_cycle(&files) {
        panic!("modules import each other: {}", cycle.join(" → "));
    }
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in &files {
        let head = |m: &str| m.split("::").next().unwrap_or(m).to_string();
        let entry = top.entry(head(from)).or_default();
        for target in to {
            if head(target) != head(from) {
                entry.insert(head(target));
            }
        }
    }
    if let Some(cycle) = find_cycle(&top) {
        panic!("top-level modules import each other: {}", cycle.join(" → "));
    }
}

#[test]
fn cycles_are_found_when_there_are_some() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into();
    assert_eq!(
        find_cycle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let modules: BTreeSet<String> = ["http".into(), "http::dispatch".into(), "app".into()].into();
    let paths = referenced_paths(
        "use crate::app::App;\nuse super::{dispatch, routes::Handler};\n",
        "http::server",
        false,
    );
    let resolved: BTreeSet<String> = paths.iter().filter_map(|p| resolve(p, &modules)).collect();
    assert_eq!(
        resolved,
        BTreeSet::from([
            "app".to_string(),
            "http".to_string(),
            "http::dispatch".to_string()
        ])
    );
}

#[test]
fn wit_copies_are_identical() {
    let canonical = repo().join("wit");
    let copy = repo().join("sdk/wit");
    let names = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&canonical), names(&copy), "the same files");
    for name in names(&canonical) {
        assert_eq!(
            std::fs::read_to_string(canonical.join(&name)).unwrap(),
            std::fs::read_to_string(copy.join(&name)).unwrap(),
            "sdk/wit/{name} differs from wit/{name}: copy wit/ into sdk/wit/"
        );
    }
}
