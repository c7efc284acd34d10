//! Tidy checks over the repository's own text, in the style of rust-analyzer's `tidy` test:
//! the docs and comments stay true as files move, and two architecture rules stay kept.
//!
//! - Every repository path cited in a Markdown file or a Rust comment exists: paths in
//!   backticks or plain text starting with a top-level folder (`crates/`, `docs/`, …) or naming
//!   a root file, and Markdown links relative to their file.
//! - Every section cited as `docs/<X>.md §n`, `<X>.md §n` or `<X> §n`, and every bare `§n` inside a
//!   numbered doc, names a heading of that doc; no doc numbers two headings alike.
//! - Arrow's `DataType::` is matched outside `publish-columns` (the one owner of type mapping)
//!   only in the files [`DATA_TYPE_ALLOWED`] lists, each with its reason, and in tests.
//! - The `duckdb` crate is used only by the DuckDB writer, its FFI module, test code and the
//!   bench ([`DUCKDB_ALLOWED`]).
//!
//! Failures list every offence with its file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level folders whose paths are checked wherever they are cited.
const TOP_FOLDERS: &[&str] = &[
    "crates/",
    "services/",
    "docs/",
    "tools/",
    "fixtures/",
    "deploy/",
    ".ci/",
    ".cargo/",
];

/// Root files whose names are checked when cited in backticks.
const ROOT_FILES: &[&str] = &[
    "ARCHITECTURE.md",
    "README.md",
    "Cargo.toml",
    "Cargo.lock",
    "deny.toml",
    "justfile",
    "Dockerfile",
    "clippy.toml",
    "rust-toolchain.toml",
];

/// Source files outside `crates/columns` that may name Arrow types, and why.
const DATA_TYPE_ALLOWED: &[(&str, &str)] = &[
    (
        "crates/bench/src/dataset.rs",
        "builds the benchmark's Arrow tables",
    ),
    (
        "crates/databricks-emulator/src/catalog.rs",
        "the emulator answers as Databricks does, independently of the client's mapping",
    ),
    (
        "crates/databricks-emulator/src/result.rs",
        "the emulator encodes results as Databricks does",
    ),
    (
        "crates/databricks-emulator/src/types.rs",
        "the emulator's own type table, so it cannot share the client's mistakes",
    ),
    (
        "crates/databricks/src/chunks/decode.rs",
        "checks what arrived against the declared column before converting",
    ),
    (
        "crates/sink/src/conformance.rs",
        "test-util: the sink conformance suite's fixtures",
    ),
    (
        "crates/source/src/conformance.rs",
        "test-util: the source conformance suite's fixtures",
    ),
    (
        "crates/sql/src/builders.rs",
        "builds Arrow arrays from decoded rows",
    ),
    (
        "crates/sql/src/postgres/copy.rs",
        "decodes binary COPY into the Arrow types publish-columns chose",
    ),
    (
        "crates/sql/src/postgres/destination/encode.rs",
        "encodes Arrow arrays into binary COPY",
    ),
    (
        "crates/writers/src/database.rs",
        "DuckDB's column type of an Arrow type, for the DDL",
    ),
    (
        "crates/writers/src/regroup.rs",
        "its unit tests build batches",
    ),
    (
        "crates/writers/src/conformance/",
        "test-util: the writers' conformance suite",
    ),
];

/// Files and folders that may use the `duckdb` crate.
const DUCKDB_ALLOWED: &[&str] = &[
    "crates/writers/src/database.rs",
    "crates/writers/src/duckdb_ffi.rs",
    "crates/writers/src/conformance/",
    "crates/bench/",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// Every `.md` and `.rs` file of the repository, relative to its root, `/`-separated.
fn text_files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                let hidden = name.starts_with('.') && name != ".ci" && name != ".cargo";
                if !hidden && name != "target" && name != "node_modules" {
                    walk(root, &path, out);
                }
            } else if name.ends_with(".md") || name.ends_with(".rs") {
                let relative = path.strip_prefix(root).expect("under the root");
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// The lines of `file` that are prose: all of a Markdown file, the comments of a Rust file.
fn prose_lines(file: &str, text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !file.ends_with(".rs") || line.trim_start().starts_with("//"))
        .map(|(i, line)| (i + 1, line.to_owned()))
        .collect()
}

/// A cited path as it names a file: punctuation, anchors and line numbers removed; `None`
/// when it is a pattern, a placeholder or a URL rather than a path.
fn clean_citation(cited: &str) -> Option<&str> {
    let cited = cited.trim().trim_end_matches(['.', ',', ';', ':', ')']);
    if cited.is_empty()
        || cited.contains("://")
        || cited
            .chars()
            .any(|c| matches!(c, '<' | '>' | '*' | '{' | '}' | '$' | '…' | '|' | ' '))
    {
        return None;
    }
    let cited = cited.split('#').next().unwrap_or(cited);
    // `path:12` or `path:12-20`.
    let cited = match cited.rsplit_once(':') {
        Some((path, line)) if line.chars().all(|c| c.is_ascii_digit() || c == '-') => path,
        _ => cited,
    };
    Some(cited)
}

/// The spans between pairs of backticks on `line`.
fn backticked(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// Plain-text words of `line` that start with a top-level folder.
fn bare_paths(line: &str) -> Vec<&str> {
    let is_path_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/');
    let mut found = Vec::new();
    for (start, _) in line.char_indices() {
        let before = line[..start].chars().next_back();
        if before.is_some_and(is_path_char) {
            continue;
        }
        let rest = &line[start..];
        if TOP_FOLDERS.iter().any(|top| rest.starts_with(top)) {
            let end = rest.find(|c: char| !is_path_char(c)).unwrap_or(rest.len());
            found.push(rest[..end].trim_end_matches('.'));
        }
    }
    found
}

/// Targets of Markdown links `](target)`.
fn link_targets(line: &str) -> Vec<&str> {
    line.match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &line[i + 2..];
            rest.find(')').map(|end| &rest[..end])
        })
        .filter(|t| !t.starts_with("http") && !t.starts_with("mailto:") && !t.starts_with('#'))
        .collect()
}

#[test]
fn cited_paths_exist() {
    let root = repo_root();
    let mut missing = Vec::new();
    for file in text_files(&root) {
        let text = std::fs::read_to_string(root.join(&file)).expect("readable");
        for (n, line) in prose_lines(&file, &text) {
            let mut cited: BTreeSet<(PathBuf, &str)> = BTreeSet::new();
            for span in backticked(&line) {
                if let Some(path) = clean_citation(span)
                    && (TOP_FOLDERS.iter().any(|t| path.starts_with(t))
                        || ROOT_FILES.contains(&path))
                {
                    cited.insert((root.join(path), span));
                }
            }
            for word in bare_paths(&line) {
                if let Some(path) = clean_citation(word) {
                    cited.insert((root.join(path), word));
                }
            }
            if file.ends_with(".md") {
                let dir = Path::new(&file).parent().unwrap_or(Path::new(""));
                for target in link_targets(&line) {
                    if let Some(path) = clean_citation(target) {
                        cited.insert((root.join(dir).join(path), target));
                    }
                }
            }
            for (path, as_cited) in cited {
                if !path.exists() {
                    missing.push(format!("{file}:{n}: `{as_cited}` does not exist"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "\n{}", missing.join("\n"));
}

/// The numbered headings (`## §7.1 …`) of each doc under `docs/`, by the doc's name without
/// `.md`; duplicates are reported into `offences`.
fn numbered_headings(
    root: &Path,
    offences: &mut Vec<String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut docs = BTreeMap::new();
    for file in text_files(root) {
        let Some(name) = file
            .strip_prefix("docs/")
            .and_then(|f| f.strip_suffix(".md"))
        else {
            continue;
        };
        let text = std::fs::read_to_string(root.join(&file)).expect("readable");
        let mut headings = BTreeSet::new();
        for (i, line) in text.lines().enumerate() {
            let Some(section) = line
                .trim_start_matches('#')
                .trim_start()
                .strip_prefix('§')
                .filter(|_| line.starts_with('#'))
                .map(section_number)
            else {
                continue;
            };
            if !headings.insert(section.to_owned()) {
                offences.push(format!("{file}:{}: a second heading §{section}", i + 1));
            }
        }
        if !headings.is_empty() {
            docs.insert(name.to_owned(), headings);
        }
    }
    docs
}

/// The leading `7.1` of `7.1 Interrupted operations`.
fn section_number(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text[..end].trim_end_matches('.')
}

/// The sections `line` cites: `(Some(doc), n)` after a doc's name, `(None, n)` when bare.
fn cited_sections(line: &str) -> Vec<(Option<String>, String)> {
    let mut found = Vec::new();
    for (i, _) in line.match_indices('§') {
        let section = section_number(line[i + '§'.len_utf8()..].trim_start());
        if section.is_empty() {
            continue;
        }
        // The word before, e.g. `docs/CONTRACT.md`, `CONTRACT.md` or `CONTRACT`.
        let before = line[..i].trim_end().trim_end_matches(['`', ',', ')']);
        let word = before
            .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '`')
            .next()
            .unwrap_or("");
        let name = word.strip_prefix("docs/").unwrap_or(word);
        let name = name.strip_suffix(".md").unwrap_or(name);
        let is_doc_name =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '-');
        found.push((is_doc_name.then(|| name.to_owned()), section.to_owned()));
    }
    found
}

#[test]
fn cited_sections_exist() {
    let root = repo_root();
    let mut offences = Vec::new();
    let docs = numbered_headings(&root, &mut offences);
    assert!(
        docs.contains_key("CONTRACT"),
        "docs/CONTRACT.md has numbered headings"
    );
    for file in text_files(&root) {
        let own = file
            .strip_prefix("docs/")
            .and_then(|f| f.strip_suffix(".md"))
            .filter(|name| docs.contains_key(*name));
        let text = std::fs::read_to_string(root.join(&file)).expect("readable");
        for (n, line) in prose_lines(&file, &text) {
            if line.starts_with('#') {
                continue;
            }
            for (doc, section) in cited_sections(&line) {
                // A bare `§n` refers to the doc it is in; elsewhere it is not checked.
                let Some(doc) = doc.or_else(|| own.map(str::to_owned)) else {
                    continue;
                };
                // Documents outside the repository (the shared SPEC) are not checked.
                let Some(headings) = docs.get(&doc) else {
                    if root.join("docs").join(format!("{doc}.md")).exists() {
                        offences.push(format!(
                            "{file}:{n}: docs/{doc}.md has no numbered headings"
                        ));
                    }
                    continue;
                };
                if !headings.contains(&section) {
                    offences.push(format!("{file}:{n}: {doc} has no §{section}"));
                }
            }
        }
    }
    assert!(offences.is_empty(), "\n{}", offences.join("\n"));
}

/// Lines of Rust code (not comments) in `crates/` and `services/` that contain `needle`, outside
/// test code and the `allowed` files and folders.
fn code_uses(needle: &str, allowed: &[&str], owner: &str) -> Vec<String> {
    let root = repo_root();
    let this_file = "crates/test-support/tests/tidy.rs";
    let mut found = Vec::new();
    for file in text_files(&root) {
        let in_scope = file.starts_with("crates/") || file.starts_with("services/");
        let test_code = file.contains("/tests/") || file.contains("/examples/");
        if !file.ends_with(".rs")
            || !in_scope
            || test_code
            || file == this_file
            || file.starts_with(owner)
            || allowed.iter().any(|a| file.starts_with(a))
        {
            continue;
        }
        let text = std::fs::read_to_string(root.join(&file)).expect("readable");
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let word_start = code.match_indices(needle).any(|(at, _)| {
                !code[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if word_start {
                found.push(format!("{file}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn arrow_types_are_named_only_where_allowed() {
    let allowed: Vec<&str> = DATA_TYPE_ALLOWED.iter().map(|(file, _)| *file).collect();
    let found = code_uses("DataType::", &allowed, "crates/columns/");
    assert!(
        found.is_empty(),
        "Arrow types are publish-columns' to map; use its functions, or add the file with a \
         reason to DATA_TYPE_ALLOWED:\n{}",
        found.join("\n")
    );
    let root = repo_root();
    for (file, reason) in DATA_TYPE_ALLOWED {
        assert!(
            root.join(file).exists(),
            "{file} ({reason}) no longer exists"
        );
        assert!(!reason.is_empty());
    }
}

#[test]
fn duckdb_is_used_only_by_the_duckdb_writer() {
    let found = code_uses("duckdb::", DUCKDB_ALLOWED, "crates/writers/src/database.rs");
    assert!(
        found.is_empty(),
        "only the DuckDB writer, its FFI module, tests and the bench use the duckdb crate:\n{}",
        found.join("\n")
    );
    let root = repo_root();
    for path in DUCKDB_ALLOWED {
        assert!(root.join(path).exists(), "{path} no longer exists");
    }
}

#[test]
fn the_checks_find_what_they_look_for() {
    assert_eq!(
        clean_citation("crates/storage/src/lock.rs:12"),
        Some("crates/storage/src/lock.rs")
    );
    assert_eq!(
        clean_citation("docs/CONTRACT.md#errors)."),
        Some("docs/CONTRACT.md")
    );
    assert_eq!(clean_citation("crates/*/src"), None);
    assert_eq!(
        bare_paths("see crates/sql/src/source.rs, and x/crates/no"),
        vec!["crates/sql/src/source.rs"]
    );
    assert_eq!(
        link_targets("[a](../b.md) [c](https://x) [d](#e)"),
        vec!["../b.md"]
    );
    assert_eq!(
        cited_sections("(docs/CONTRACT.md §7.1), `docs/OPAL-WIRE.md` §3 and §12."),
        vec![
            (Some("CONTRACT".to_owned()), "7.1".to_owned()),
            (Some("OPAL-WIRE".to_owned()), "3".to_owned()),
            (None, "12".to_owned()),
        ]
    );
    assert_eq!(section_number("7.1 Interrupted operations"), "7.1");
    assert_eq!(section_number("5."), "5");
}
