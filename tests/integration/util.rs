//! Helpers shared by the integration tests.
//!
//! The tests that open stores run on either backend: SQLite by default, PostgreSQL with
//! `FERRY_TEST_BACKEND=postgres`, on the cluster `FERRY_TEST_POSTGRES_URL` names (a superuser
//! URL). There each data directory gets a database of its own, made the first time the tests
//! use it ([`ferry`], [`location`]), so that `--data DIR` keeps naming one whole store.

use assert_cmd::Command;
use ferry::store::StoreLocation;
use std::collections::HashSet;
use std::path::Path;
use std::sync::{LazyLock, Mutex};

/// Whether the tests run on PostgreSQL (`FERRY_TEST_BACKEND=postgres`) rather than SQLite.
pub fn on_postgres() -> bool {
    match std::env::var("FERRY_TEST_BACKEND").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("FERRY_TEST_BACKEND is {other:?}: write postgres or sqlite"),
    }
}

/// `ferry` with a clean environment for the store location: `--data data`, and on PostgreSQL
/// `--database` for the data directory's database.
pub fn ferry(data: &Path) -> Command {
    Command::from_std(ferry_process(data))
}

/// [`ferry`] as a plain process, for tests that keep it running (`ferry serve`).
pub fn ferry_process(data: &Path) -> std::process::Command {
    let mut c = ferry_process_without_backend(data);
    if let Some(url) = database_url(data) {
        c.arg("--database").arg(url);
    }
    c
}

/// `ferry --data data` and no database, whatever backend the tests run on: for the tests that
/// name their databases themselves (PostgreSQL front ends, `store migrate` from SQLite).
pub fn ferry_without_backend(data: &Path) -> Command {
    Command::from_std(ferry_process_without_backend(data))
}

/// [`ferry_without_backend`] as a plain process.
pub fn ferry_process_without_backend(data: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("ferry"));
    c.env_remove("FERRY_DATA").env_remove("FERRY_DATABASE_URL").arg("--data").arg(data);
    c
}

/// Where the store in `data` lives on the backend the tests run on, for opening it in-process
/// (`Store::open_at`, `Store::open_or_create_at`).
pub fn location(data: &Path) -> StoreLocation {
    let database = database_url(data).map(|url| url.parse().expect("a valid database URL"));
    StoreLocation::new(data.to_path_buf(), database)
}

/// The superuser URL of the test cluster; only on PostgreSQL.
fn cluster_url() -> String {
    std::env::var("FERRY_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "FERRY_TEST_BACKEND=postgres needs FERRY_TEST_POSTGRES_URL, a superuser URL of a \
             throwaway cluster (.ci/postgres.sh start prints one)"
        )
    })
}

/// The URL of a database on the test cluster.
fn url_of(database: &str) -> String {
    let cluster = cluster_url();
    let (base, _) = cluster.rsplit_once('/').expect("the cluster URL ends in /database");
    format!("{base}/{database}")
}

/// The database that belongs to the data directory `data`: `ferry_t_` and 16 hex digits of the
/// SHA-256 of its absolute path.
fn database_name(data: &Path) -> String {
    use sha2::Digest;
    let path = std::path::absolute(data).expect("an absolute path");
    let digest = sha2::Sha256::digest(path.as_os_str().as_encoded_bytes());
    format!("ferry_t_{}", &hex::encode(digest)[..16])
}

/// On PostgreSQL, the URL of the data directory's database, made on first use (by this process
/// or a concurrent one); `None` on SQLite.
pub fn database_url(data: &Path) -> Option<String> {
    static MADE: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);
    if !on_postgres() {
        return None;
    }
    let name = database_name(data);
    let mut made = MADE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !made.contains(&name) {
        create_database(&name, data);
        made.insert(name.clone());
    }
    Some(url_of(&name))
}

/// Makes the database `name` for `data` unless it exists, and gives it ferry's schema: on
/// PostgreSQL a store's database exists before ferry first runs on it (its administrator made
/// it), and the first command that opens it migrates it anyway, so "before" and "after" of a
/// test's first command compare stores, not a store with an empty database. Its comment names
/// this process and the directory, so the next run can drop what this one left
/// ([`drop_earlier_runs`]).
fn create_database(name: &str, data: &Path) {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(drop_earlier_runs);
    let mut client = cluster();
    match client.batch_execute(&format!("CREATE DATABASE {name}")) {
        Ok(()) => {}
        // Another test process made it first (a directory an earlier run kept, used again).
        Err(e)
            if e.code().is_some_and(|c| {
                *c == postgres::error::SqlState::DUPLICATE_DATABASE
                    || *c == postgres::error::SqlState::UNIQUE_VIOLATION
            }) => {}
        Err(e) => panic!("creating the database {name} for {}: {e}", data.display()),
    }
    let comment = format!("ferry test {} {}", std::process::id(), data.display()).replace('\'', "");
    client
        .batch_execute(&format!("COMMENT ON DATABASE {name} IS '{comment}'"))
        .unwrap_or_else(|e| panic!("marking the database {name}: {e}"));
    let url = url_of(name).parse().expect("a valid database URL");
    ferry::store::postgres::PostgresStore::connect(&url)
        .unwrap_or_else(|e| panic!("giving {name} the schema: {e}"));
}

fn cluster() -> postgres::Client {
    postgres::Client::connect(&cluster_url(), postgres::NoTls)
        .unwrap_or_else(|e| panic!("connecting to the test cluster (FERRY_TEST_POSTGRES_URL): {e}"))
}

/// Drops the databases earlier test runs made on the cluster (a process that is no longer
/// running), so a cluster kept between runs holds only the current runs' databases.
fn drop_earlier_runs() {
    let mut client = cluster();
    let rows = client
        .query(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database \
             WHERE datname LIKE 'ferry\\_t\\_%'",
            &[],
        )
        .expect("listing the test databases");
    for row in rows {
        let (name, comment): (String, Option<String>) = (row.get(0), row.get(1));
        let pid = comment
            .as_deref()
            .and_then(|c| c.strip_prefix("ferry test "))
            .and_then(|c| c.split(' ').next().and_then(|pid| pid.parse::<u32>().ok()));
        let Some(pid) = pid else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .unwrap_or_else(|e| panic!("dropping {name}, left by an earlier run: {e}"));
        }
    }
}

pub fn stdout_of(c: &mut Command) -> String {
    let out = c.output().expect("ferry runs");
    assert!(
        out.status.success(),
        "ferry failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A stock tool's run (wixl, osslsigncode, gcab, ...): whether it succeeded, and what it
/// printed (standard output, then standard error).
pub fn tool(command: &mut std::process::Command) -> (bool, String) {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A stock tool's standard output; the test fails, showing all it printed, if it did not
/// succeed.
pub fn tool_stdout(command: &mut std::process::Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

pub fn json_of(c: &mut Command) -> serde_json::Value {
    serde_json::from_str(&stdout_of(c.arg("--json"))).expect("one JSON document on stdout")
}

/// The store in `data` as it is, for "nothing changed" assertions: every file under it with the
/// SHA-256 of its bytes and, on PostgreSQL, every table of its database with its row count and
/// an MD5 over its rows in order.
pub fn snapshot(data: &Path) -> Vec<(String, String)> {
    let mut out = file_snapshot(data);
    out.extend(database_snapshot(data));
    out
}

/// Every file under `dir` with the SHA-256 of its bytes (for a directory that is not a store,
/// such as the content tree).
pub fn file_snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    for entry in walk(dir) {
        let rel = entry.strip_prefix(dir).unwrap().to_string_lossy().to_string();
        // SQLite's shared-memory index changes on reads; the database and WAL carry the data.
        if rel.ends_with("-shm") {
            continue;
        }
        use sha2::Digest;
        out.push((rel, hex::encode(sha2::Sha256::digest(std::fs::read(&entry).unwrap()))));
    }
    out.sort();
    out
}

/// The tables of the data directory's database, as `("database: TABLE", "ROWS MD5")`; nothing
/// on SQLite.
fn database_snapshot(data: &Path) -> Vec<(String, String)> {
    let Some(url) = database_url(data) else { return Vec::new() };
    let name = database_name(data);
    let mut client = postgres::Client::connect(&url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connecting to {name}: {e}"));
    let tables: Vec<String> = client
        .query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", &[])
        .expect("listing the tables")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut out = Vec::new();
    for table in tables {
        // Rows as text in the text's order: a total order, and equal rows are equal text.
        let sql = format!(
            "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) \
             FROM \"{table}\" t"
        );
        let row = client.query_one(&sql, &[]).unwrap_or_else(|e| panic!("reading {table}: {e}"));
        let (rows, md5): (i64, String) = (row.get(0), row.get(1));
        out.push((format!("database: {table}"), format!("{rows} {md5}")));
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { files.extend(walk(&p)) } else { files.push(p) }
    }
    files
}

/// `n` generated update documents (the synth generator's plan and rendering, without a store);
/// each payload gets its own digests, so the documents ingest together.
pub fn synthetic_documents(n: u64) -> Vec<(ferry::synth::Planned, String)> {
    let mut planner = ferry::synth::Planner::new(3, 1024);
    (0..n)
        .map(|_| {
            let p = planner.next_item();
            let files: Vec<ferry::synth::RenderedFile> =
                p.files.iter().map(ferry::synth::RenderedFile::stand_in).collect();
            let doc = ferry::synth::render(&p, &files, &["en".to_string(), "de".to_string()]);
            (p, doc)
        })
        .collect()
}

/// Polls `f` every 100 ms until it holds; fails the test after 10 s, naming `what`.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
