//! The architecture, held by a test: the top-level parts of `src/` (a
//! folder, or a file directly under it) import one another without a
//! circle — so no two parts import each other, and a layer never reaches
//! back up. Unit tests (`tests.rs` files and inline `mod tests`) may use
//! anything and are not counted.
//!
//! The same rule as `scripts/architecture/folder-pairs.py`, extended to circles
//! of any length; it reads the source text, as that tool does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its inline unit tests and comment lines.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segment after each `crate::` (and each name of a
/// `use crate::{a, b::c}` group).
fn parts_named(code: &str) -> BTreeSet<String> {
    let prefix = concat!("crate", "::");
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices(prefix) {
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or_default();
            for item in group.split(',') {
                let name = item.trim().split("::").next().unwrap_or_default();
                if !name.is_empty() {
                    out.insert(name.to_string());
                }
            }
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

/// Part → the other parts it imports.
fn part_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap_or(&file);
        let mut components = rel.components();
        let first = components
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let part = first.strip_suffix(".rs").unwrap_or(&first).to_string();
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let is_test = name.as_deref() == Some("tests.rs")
            || name.as_deref().is_some_and(|n| n.ends_with("_tests.rs"))
            || rel.components().any(|c| c.as_os_str() == "tests");
        if part == "lib" || part == "main" || is_test {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let used = parts_named(&code_of(&text));
        graph.entry(part.clone()).or_default().extend(used);
    }
    let known: BTreeSet<String> = graph.keys().cloned().collect();
    for (part, used) in graph.iter_mut() {
        used.retain(|u| known.contains(u) && u != part);
    }
    graph
}

/// A circle through the graph, if there is one (as the parts along it).
fn a_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        part: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == part) {
            let mut circle = path[at..].to_vec();
            circle.push(part.to_string());
            return Some(circle);
        }
        if done.contains(part) {
            return None;
        }
        path.push(part.to_string());
        for next in graph.get(part).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(part.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|p| visit(p, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_part_of_src_imports_a_part_that_imports_it_back() {
    let graph = part_graph();
    assert!(graph.len() > 10, "the parts of src/ were found: {graph:?}");
    let pairs: Vec<(&String, &String)> = graph
        .iter()
        .flat_map(|(a, used)| used.iter().map(move |b| (a, b)))
        .filter(|(a, b)| a < b && graph.get(*b).is_some_and(|u| u.contains(*a)))
        .collect();
    assert!(pairs.is_empty(), "parts importing each other: {pairs:?}");
    assert_eq!(a_circle(&graph), None, "parts importing in a circle");
}

#[test]
fn the_check_sees_a_circle_when_there_is_one() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in [("http", "health"), ("health", "dedup"), ("dedup", "http")] {
        graph.entry(a.into()).or_default().insert(b.into());
    }
    let circle = a_circle(&graph).expect("found");
    assert_eq!(circle.first(), circle.last());
    assert_eq!(circle.len(), 4, "{circle:?}");
    assert_eq!(
        parts_named(concat!("use crate", "::{error::X, kafka::client};")),
        BTreeSet::from(["error".to_string(), "kafka".to_string()])
    );
}

/// Paths that production code builds into the binary with `include_str!`
/// or `include_bytes!` (tests excluded), as written.
fn embedded_paths() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut out = Vec::new();
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name == "tests.rs"
            || name.ends_with("_tests.rs")
            || f.components().any(|c| c.as_os_str() == "tests")
        {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let code = code_of(&text);
        for macro_call in ["include_str!(\"", "include_bytes!(\""] {
            for (i, _) in code.match_indices(macro_call) {
                let rest = &code[i + macro_call.len()..];
                let path = rest.split('"').next().unwrap_or_default();
                out.push((f.clone(), path.to_string()));
            }
        }
    }
    out
}

#[test]
fn the_binary_embeds_no_test_fixture() {
    let embedded = embedded_paths();
    assert!(
        embedded
            .iter()
            .any(|(_, p)| p.ends_with("deliveries.jsonl")),
        "the sample deliveries are found as embedded: {embedded:?}"
    );
    let from_tests: Vec<_> = embedded
        .iter()
        .filter(|(_, p)| p.split('/').any(|segment| segment == "tests"))
        .collect();
    assert!(
        from_tests.is_empty(),
        "production code builds test files into the binary (move the data beside the code that uses it): {from_tests:?}"
    );
}
