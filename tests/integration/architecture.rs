//! Invariants from ARCHITECTURE.md that a test can hold.

use std::path::Path;

fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(sources(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
        }
    }
    out
}

/// Invariant: `catalog/`, `wsus/` and `compliance.rs` are pure: no files, sockets, processes,
/// threads, databases, clocks or OS randomness.
#[test]
fn pure_modules_import_no_io() {
    let forbidden = [
        "std::fs",
        "std::net",
        "std::process",
        "std::thread",
        "std::env",
        "File::",
        "tokio",
        "rusqlite",
        "reqwest",
        "hyper",
        "axum",
        "getrandom",
        "SystemTime",
        "Instant",
        "Utc::now",
        "Local::now",
        "crate::store",
        "crate::server",
        "println!",
        "eprintln!",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for module in ["catalog", "wsus", "compliance.rs"] {
        let at = root.join(module);
        assert!(at.exists(), "{} is gone: update this test", at.display());
        let files = if at.is_dir() {
            sources(&at)
        } else {
            vec![(at.display().to_string(), std::fs::read_to_string(&at).unwrap())]
        };
        for (path, text) in files {
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for f in forbidden {
                    if code.contains(f) {
                        violations.push(format!("{path}:{}: {f}", n + 1));
                    }
                }
            }
        }
    }
    assert!(violations.is_empty(), "pure modules must not do I/O:\n{}", violations.join("\n"));
}

/// Invariant: only `cli/` prints; the library reports through return values.
#[test]
fn library_never_prints() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for (path, text) in sources(&root) {
        if path.contains("/cli/") || path.ends_with("main.rs") {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if (line.contains("println!") || line.contains("eprintln!") || line.contains("print!("))
                && !line.trim_start().starts_with("//")
            {
                violations.push(format!("{path}:{}", n + 1));
            }
        }
    }
    assert!(violations.is_empty(), "only cli/ prints:\n{}", violations.join("\n"));
}

/// Invariant: each database engine lives in its backend only: `rusqlite` in `store/sqlite/`,
/// `postgres` and its pool in `store/postgres/`. The rest of the store (its types, errors and
/// the content tree) and the whole program know no engine, so both backends stand behind the
/// same types.
#[test]
fn engines_stay_in_their_backends() {
    let engines =
        [("/store/sqlite/", &["rusqlite"][..]), ("/store/postgres/", &["postgres::", "r2d2"][..])];
    // A crate's path, not a module's: `store::postgres::` is the backend module itself.
    let uses = |text: &str, name: &str| {
        text.match_indices(name).any(|(at, _)| !text[..at].ends_with("::"))
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for (path, text) in sources(&root) {
        for (home, names) in engines {
            let used = names.iter().find(|n| uses(&text, n));
            if let Some(name) = used.filter(|_| !path.contains(home)) {
                violations.push(format!("{path} uses {name}, which belongs in {home}"));
            }
        }
    }
    assert!(violations.is_empty(), "engines outside their backends:\n{}", violations.join("\n"));
}

/// Invariant: what the program asks of storage is the storage traits (`store::Storage` and its
/// parts), through the backend-neutral `store::Store`: the SQLite backend (a private module)
/// has no public method of its own.
#[test]
fn the_backend_is_reached_through_the_storage_traits() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/sqlite");
    let mut inherent = Vec::new();
    for (path, text) in sources(&root) {
        let mut in_store = false;
        for (n, line) in text.lines().enumerate() {
            if line.starts_with("impl SqliteStore {") {
                in_store = true;
            } else if line.starts_with('}') {
                in_store = false;
            } else if in_store && line.starts_with("    pub fn ") {
                inherent.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        inherent.is_empty(),
        "declare these in a storage trait (store/<topic>.rs):\n{}",
        inherent.join("\n")
    );
}

/// Invariant: the console renders the administration service's own values: it reads no JSON
/// and calls nothing of the API, neither its code nor its routes (the API's JSON shapes live in `server/api/dto.rs`).
#[test]
fn the_console_uses_the_service_not_the_api() {
    let console = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server/console.rs");
    let text = std::fs::read_to_string(&console).unwrap();
    let found: Vec<String> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .filter(|(_, l)| {
            ["serde_json", "json!", "api::", "admin_api", "/api/v1", "dispatch("]
                .iter()
                .any(|n| l.contains(n))
        })
        .map(|(n, l)| format!("console.rs:{}: {}", n + 1, l.trim()))
        .collect();
    assert!(found.is_empty(), "the console calls AdminService directly:\n{}", found.join("\n"));
}

/// Invariant: a function reads at once: at most 100 lines.
#[test]
fn functions_stay_short() {
    const LONGEST: usize = 100;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut problems = Vec::new();
    for (path, text) in sources(&root) {
        let relative = path.strip_prefix(&format!("{}/", root.display())).unwrap_or(&path);
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some((indent, name)) = function_start(line) else { continue };
            let close = format!("{indent}}}");
            let end = lines[i..].iter().position(|l| *l == close).map_or(lines.len(), |n| i + n);
            let length = end - i + 1;
            if length > LONGEST {
                problems.push(format!("{relative}: {name} is {length} lines"));
            }
        }
    }
    assert!(problems.is_empty(), "functions over {LONGEST} lines:\n{}", problems.join("\n"));
}

/// `(indentation, name)` when `line` opens a function with a body.
fn function_start(line: &str) -> Option<(&str, String)> {
    let code = line.trim_start();
    let indent = &line[..line.len() - code.len()];
    let rest = ["pub(crate) ", "pub(super) ", "pub "]
        .iter()
        .find_map(|p| code.strip_prefix(p))
        .unwrap_or(code);
    let rest = rest.strip_prefix("async ").unwrap_or(rest);
    let name = rest.strip_prefix("fn ")?;
    let name: String = name.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty() && !line.trim_end().ends_with(';')).then_some((indent, name))
}

/// Where each line of `sources` under `src/` contains one of `needles`, outside `allowed`
/// paths (relative to `src/`) and outside comments.
fn occurrences(needles: &[&str], allowed: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for (path, text) in sources(&root) {
        let relative =
            path.strip_prefix(&format!("{}/", root.display())).unwrap_or(&path).to_string();
        if allowed.iter().any(|a| relative.starts_with(a)) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for needle in needles {
                if code.contains(needle) {
                    found.push(format!("src/{relative}:{}: {needle}", n + 1));
                }
            }
        }
    }
    found
}

/// Invariant: approval actions are `admin::Action` values; their names are written only where
/// the type is defined and by the wire formats (`wsus/`, and `loadgen/`, which plays the client).
#[test]
fn approval_actions_are_values_not_strings() {
    let found = occurrences(
        &["\"Install\"", "\"Uninstall\"", "\"Block\""],
        &["admin/types.rs", "wsus/", "loadgen/"],
    );
    assert!(found.is_empty(), "compare admin::Action, not its name:\n{}", found.join("\n"));
}

/// Invariant: the approval rules (refusing declined and expired updates, prerequisites coming
/// along) live in `admin/`; front ends and the store only call them.
#[test]
fn approval_rules_live_in_admin() {
    let rules = [
        "Refusal::Declined",
        "Refusal::Expired",
        "unapproved_prerequisites(",
        "tx.is_declined(",
        "tx.is_expired(",
    ];
    let found = occurrences(&rules, &["admin/", "store/sqlite/deployments.rs"]);
    assert!(found.is_empty(), "approval rules belong in admin/:\n{}", found.join("\n"));
    let writes = occurrences(
        &["put_approval(", ".administer("],
        &[
            "admin/",
            "store/deployments.rs",
            "store/sqlite/deployments.rs",
            "store/postgres/deployments.rs",
        ],
    );
    assert!(
        writes.is_empty(),
        "approvals change only through AdminService:\n{}",
        writes.join("\n")
    );
}

/// Invariant: one zstd decompressor, with a size limit (`store/documents.rs`
/// `decompress_at_most`): nothing else decompresses, so no path forgets the limit.
#[test]
fn one_decompressor_with_a_limit() {
    let decoders = [
        "zstd::stream::decode_all",
        "zstd::decode_all",
        "bulk::decompress",
        "Decoder::",
        "Decompressor",
    ];
    let found = occurrences(&decoders, &["store/documents.rs"]);
    assert!(
        found.is_empty(),
        "decompress through store::documents::decompress_at_most:\n{}",
        found.join("\n")
    );
}

/// Invariant: the content tree's layout (its folder, the staging folder beside it) is named in
/// `store/content.rs` alone; everything else reaches files through `ContentStore`.
#[test]
fn the_content_layout_is_named_once() {
    let joins = [r#"join("content")"#, r#"join("tmp")"#, r#"["tmp", "content"]"#];
    let found = occurrences(&joins, &["store/content.rs"]);
    assert!(found.is_empty(), "go through store::ContentStore:\n{}", found.join("\n"));
}

/// Invariant: the API's JSON shapes are written in `server/api/dto.rs` alone; handlers answer
/// with those types, never with ad-hoc JSON.
#[test]
fn the_api_writes_json_only_through_its_dtos() {
    let handlers = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server/api/handlers.rs"),
    )
    .unwrap();
    let adhoc: Vec<&str> =
        handlers.lines().filter(|l| l.contains("json!") || l.contains("serde_json")).collect();
    assert!(adhoc.is_empty(), "handlers.rs writes JSON itself:\n{}", adhoc.join("\n"));
}

/// Invariant: JSON is written and read at the edges only: the API's DTOs (`server/api/`), the
/// CLI's output (`cli/`), the bundle manifest (`bundle/manifest.rs`), and the backends' encoding
/// of lists in a column (`store/sqlite/`, `store/postgres/`: the same JSON text in both, so the
/// rows mean the same on either engine: a computer's info, an event's strings, a rule's lists).
/// Everything between
/// them holds typed values. (Unit tests may use it to check what they serialize.)
#[test]
fn json_stays_at_the_edges() {
    let allowed = ["server/api/", "cli/", "bundle/manifest.rs", "store/sqlite/", "store/postgres/"];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for (path, text) in sources(&root) {
        let relative = path.strip_prefix(&format!("{}/", root.display())).unwrap_or(&path);
        if allowed.iter().any(|a| relative.starts_with(a)) {
            continue;
        }
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("serde_json") || code.contains("json!(") {
                found.push(format!("src/{relative}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "JSON outside the edges:\n{}", found.join("\n"));
}
