//! `ferry store migrate`: a SQLite store with a bit of everything (a catalog, a channel's export
//! and an import, trust, groups, rules, approvals, declines, computers and their events, the
//! server's identity and admin token) moved into PostgreSQL; both stores then answer every
//! command alike, the copy checks clean, clients' cookies stay valid and new rows get ids past
//! the old ones. And the refusals: a target that is not empty, one that cannot be reached, a
//! source that is missing, outdated or holds a value PostgreSQL cannot, each changing nothing.
//! Needs `FERRY_TEST_POSTGRES_URL` (see `postgres.rs`).

use crate::bundles::Fixture;
use crate::postgres::TestDatabase;
use crate::served::{Agent, Served};
use crate::util::ferry_without_backend as ferry;
use crate::util::{json_of, stdout_of, wait_until};
use ferry::store::migrate::TABLES;
use ferry::store::{ClientWrite, Store};
use std::path::Path;

/// The URL of the test database as text, for the command line (the test cluster has no
/// password).
fn url_text(db: &TestDatabase) -> String {
    let admin = std::env::var("FERRY_TEST_POSTGRES_URL").unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{}", db.name)
}

fn migrate(from: &Path, url: &str) -> std::process::Output {
    ferry(from).args(["store", "migrate", "--from"]).arg(from).args(["--to", url]).output().unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Rows per table of the test database, as text: the "nothing changed" of a database.
fn rows_per_table(db: &TestDatabase) -> Vec<(String, i64)> {
    let mut client = db.client();
    TABLES
        .iter()
        .map(|t| {
            let sql = format!("SELECT count(*) FROM {}", t.name);
            (t.name.to_string(), client.query_one(&sql, &[]).unwrap().get(0))
        })
        .collect()
}

/// Rows per table of a SQLite store.
fn sqlite_rows(data: &Path) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(data.join("ferry.db")).unwrap();
    TABLES
        .iter()
        .map(|t| {
            let sql = format!("SELECT count(*) FROM {}", t.name);
            (t.name.to_string(), conn.query_row(&sql, [], |r| r.get(0)).unwrap())
        })
        .collect()
}

/// The admin token, the server's identity (from a scan), groups, a rule, approvals, a decline,
/// an approval taken back, computers with events, a downstream server: everything a store keeps
/// besides its catalog. Returns the admin token and a client that holds a cookie.
fn administer(data: &Path) -> (String, Agent, Served) {
    let token = stdout_of(ferry(data).args(["admin", "token"])).trim().to_string();
    stdout_of(ferry(data).args(["groups", "add", "Servers"]));
    stdout_of(ferry(data).args(["groups", "add", "Domain Controllers", "--parent", "Servers"]));
    stdout_of(ferry(data).args([
        "rules",
        "add",
        "--classification",
        "Security Updates",
        "--group",
        "Servers",
        "--deadline-days",
        "7",
    ]));
    stdout_of(ferry(data).args(["rules", "apply"]));
    let ids = stdout_of(ferry(data).args(["updates", "list", "--approval", "unapproved", "--ids"]));
    let ids: Vec<&str> = ids.lines().take(3).collect();
    assert_eq!(ids.len(), 3, "the rule left updates unapproved");
    for id in &ids[..2] {
        stdout_of(ferry(data).args(["updates", "approve", id, "--group", "Domain Controllers"]));
    }
    // The newest approval goes again: the highest deployment id is no row's any more.
    stdout_of(ferry(data).args(["updates", "unapprove", ids[1], "--group", "Domain Controllers"]));
    stdout_of(ferry(data).args(["updates", "decline", ids[2]]));

    let server = Served::start_without_backend(data, &[]);
    let mut agent = Agent::new(&server);
    agent.handshake_as("pc01.plant.example", &["Lab"]);
    agent.scan();
    report_events(&server, &agent);
    let mut other = Agent::new(&server);
    other.handshake_as("pc02.plant.example", &[]);
    wait_until("both computers and the events are recorded", || {
        let computers = json_of(ferry(data).args(["computers", "list"]));
        computers.as_array().unwrap().len() == 2
            && sqlite_rows(data).iter().any(|(t, n)| t == "events" && *n >= 3)
    });
    (token, agent, server)
}

/// Three install events for updates the agent was offered.
fn report_events(server: &Served, agent: &Agent) {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let events: Vec<ferry::wsus::agent::Event<'_>> = agent
        .seen
        .values()
        .filter(|u| u.is_leaf)
        .take(3)
        .map(|u| ferry::wsus::agent::Event {
            instance_id: ferry::random::guid(),
            event_id: 183,
            update_id: u.update_id.unwrap(),
            revision_number: 200,
            hresult: 0,
            time: &now,
            misc: Vec::new(),
        })
        .collect();
    assert_eq!(events.len(), 3, "the agent was offered updates");
    let body = ferry::wsus::agent::report_event_batch(&agent.cookie, &agent.id, &now, &events);
    let r = server.soap(
        "/ReportingWebService/ReportingWebService.asmx",
        "http://www.microsoft.com/SoftwareDistribution/ReportEventBatch",
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// What the commands answer on a store, by command, to compare between the two.
fn answers(data: &Path, database: Option<&str>) -> Vec<(String, String)> {
    let run = |args: &[&str]| {
        let mut c = ferry(data);
        if let Some(url) = database {
            c.args(["--database", url]);
        }
        let mut answer = json_of(c.args(args));
        if let Some(fields) = answer.as_object_mut() {
            fields.remove("generated_at");
        }
        answer
    };
    let status = run(&["status"]);
    let mut out = vec![
        ("status (catalog)".to_string(), status["catalog"].clone()),
        ("status (scan)".to_string(), status["scan"].clone()),
    ];
    for args in [
        &["updates", "list"][..],
        &["updates", "list", "--approval", "declined"],
        &["groups", "list"],
        &["rules", "list"],
        &["computers", "list"],
        &["report"],
        &["report", "--by", "update"],
        &["trust", "list"],
    ] {
        out.push((args.join(" "), run(args)));
    }
    out.into_iter()
        .map(|(what, answer)| (what, serde_json::to_string_pretty(&answer).unwrap()))
        .collect()
}

/// The two stores' answers are equal, command by command; the first line that differs is shown.
fn assert_same_answers(sqlite: &[(String, String)], postgres: &[(String, String)]) {
    for ((what, a), (_, b)) in sqlite.iter().zip(postgres) {
        let differs = a.lines().zip(b.lines()).find(|(x, y)| x != y);
        assert!(a == b, "`ferry {what}` answers differently: {differs:?}");
    }
}

#[test]
fn a_store_moves_into_postgres_whole() {
    if crate::util::on_postgres() {
        // Its source is a SQLite store that the bundle fixture builds on the tests' backend;
        // the run on SQLite (which CI makes too) moves it into PostgreSQL all the same.
        eprintln!("skipped: the source must be a SQLite store; covered by the SQLite run");
        return;
    }
    let Some(db) = TestDatabase::new() else { return };
    let url = url_text(&db);
    let f = Fixture::new(300, "1KiB");
    // One store with both sides: a channel exported from it, and that bundle imported into it.
    let bundle = f.export(&[]);
    stdout_of(
        ferry(&f.cache).args(["trust", "add"]).arg(&f.public).args(["--comment", "exporter"]),
    );
    let imported = f.import(&f.cache, &bundle);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let data = f.cache.clone();
    let (token, mut agent, server) = administer(&data);
    drop(server);
    Store::open(&data)
        .unwrap()
        .apply_client_writes(&[ClientWrite::Downstream {
            server_id: "5b2f9ad5-9a1c-4a66-8c0b-1b6f3c7bd0a1".into(),
            name: "wsus2.plant.example".into(),
        }])
        .unwrap();
    // What a bundle that withdrew an update leaves.
    rusqlite::Connection::open(data.join("ferry.db"))
        .unwrap()
        .execute(
            "INSERT INTO removed_updates VALUES ('9c1d4b7e-2f3a-4e5b-8c6d-7e8f9a0b1c2d', 'expired', 'b1', '2026-01-01T00:00:00Z')",
            [],
        )
        .unwrap();
    // What `ferry publish` records beside an update's documents.
    rusqlite::Connection::open(data.join("ferry.db"))
        .unwrap()
        .execute(
            "INSERT INTO published_updates SELECT update_id, 'Contoso', 'Contoso Widget', 'msi', 'widget.msi', '1.0.0', '2026-01-01T00:00:00.000000Z'
             FROM revisions WHERE update_type = 'Software' LIMIT 1",
            [],
        )
        .unwrap();
    let before = sqlite_rows(&data);
    let empty: Vec<&str> =
        before.iter().filter(|(_, n)| *n == 0).map(|(t, _)| t.as_str()).collect();
    assert!(empty.is_empty(), "the store holds a bit of everything, but not {empty:?}");

    let out = migrate(&data, &url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for (table, rows) in &before {
        let line = format!("  {table:<22} {rows:>10} rows");
        assert!(stdout.contains(&line), "{line:?} in\n{stdout}");
    }
    assert!(stdout.contains("clean: "), "the copy was checked: {stdout}");
    assert!(
        stdout.contains(&format!("ferry check --deep --database {} --data", db.url)),
        "{stdout}"
    );
    assert_eq!(rows_per_table(&db), before, "every row copied");

    assert_same_answers(&answers(&data, None), &answers(&data, Some(&url)));
    let deep = stdout_of(ferry(&data).args(["--database", &url, "check", "--deep"]));
    assert!(deep.starts_with("clean: "), "{deep}");
    same_settings_and_ids(&db, &data, &token);
    cookies_stay_valid_and_ids_go_on(&db, &url, &data, &mut agent);
}

/// The settings (server identity, cookie key, admin token's hash, stamps) are copied verbatim,
/// and so are the ids clients cache.
fn same_settings_and_ids(db: &TestDatabase, data: &Path, token: &str) {
    let conn = rusqlite::Connection::open(data.join("ferry.db")).unwrap();
    let mut client = db.client();
    for sql in [
        "SELECT key || '=' || value FROM settings ORDER BY key",
        "SELECT revision_id || ' ' || update_id || ' ' || revision_number FROM revisions ORDER BY revision_id",
        "SELECT approval_id || ' ' || deployment_guid FROM approvals ORDER BY approval_id",
        "SELECT event_instance_id FROM events ORDER BY rowid",
    ] {
        let sqlite: Vec<String> = conn
            .prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // PostgreSQL sorts text by its locale: settings are compared as sorted bytes.
        let pg_sql = sql
            .replace("ORDER BY rowid", "ORDER BY seq")
            .replace("ORDER BY key", "ORDER BY key COLLATE \"C\"");
        let postgres: Vec<String> =
            client.query(&pg_sql, &[]).unwrap().iter().map(|r| r.get(0)).collect();
        assert!(!sqlite.is_empty(), "{sql}");
        assert_eq!(sqlite, postgres, "{sql}");
    }
    let content = tempfile::tempdir().unwrap();
    let pg = Store::on_postgres(&db.url, content.path()).unwrap();
    let sqlite = Store::open(data).unwrap();
    let (a, b) = (sqlite.server_identity().unwrap(), pg.server_identity().unwrap());
    assert_eq!(
        (a.server_id, a.cookie_key, a.config_last_change),
        (b.server_id, b.cookie_key, b.config_last_change)
    );
    assert!(pg.admin_token_matches(token).unwrap(), "the admin token opens the API still");
}

/// A client's cookie from the SQLite server is taken by a server on the copy; new revisions,
/// approvals and events get ids past every old one (the unapproved deployment's id too).
fn cookies_stay_valid_and_ids_go_on(db: &TestDatabase, url: &str, data: &Path, agent: &mut Agent) {
    let highest = |sql: &str| -> i64 { db.client().query_one(sql, &[]).unwrap().get(0) };
    let conn = rusqlite::Connection::open(data.join("ferry.db")).unwrap();
    let handed_out: i64 = conn
        .query_row("SELECT seq FROM sqlite_sequence WHERE name = 'approvals'", [], |r| r.get(0))
        .unwrap();
    let old_revision = highest("SELECT max(revision_id)::bigint FROM revisions");
    let old_event = highest("SELECT max(seq) FROM events");
    let old_events = highest("SELECT count(*) FROM events");
    let old_approval = highest("SELECT max(approval_id)::bigint FROM approvals");
    assert!(handed_out > old_approval, "a deleted approval's id, to keep unused");

    let server = Served::start_without_backend(data, &["--database", url]);
    agent.http = server.http();
    // A SOAP fault (an unknown cookie) would fail the call.
    agent.sync(&Default::default());
    report_events(&server, agent);
    wait_until("the events are recorded", || {
        highest("SELECT count(*) FROM events") == old_events + 3
    });
    drop(server);

    let list = |args: &[&str]| -> Vec<String> {
        let out =
            stdout_of(ferry(data).args(["--database", url, "updates", "list", "--ids"]).args(args));
        out.lines().map(str::to_string).collect()
    };
    let old_updates = list(&[]);
    stdout_of(ferry(data).args([
        "--database",
        url,
        "dev",
        "synth",
        "--updates",
        "400",
        "--payload-bytes",
        "1KiB",
    ]));
    let new_updates: Vec<String> =
        list(&[]).into_iter().filter(|u| !old_updates.contains(u)).collect();
    assert!(
        new_updates.iter().any(|id| {
            ferry(data)
                .args(["--database", url, "updates", "approve", id, "--group", "Servers"])
                .output()
                .unwrap()
                .status
                .success()
        }),
        "a new update is approved"
    );
    let mut client = db.client();
    let new_revisions: i64 = client
        .query_one(
            "SELECT count(*) FROM revisions WHERE revision_id > $1",
            &[&(old_revision as i32)],
        )
        .unwrap()
        .get(0);
    assert!(new_revisions >= new_updates.len() as i64, "new revisions were stored");
    let first_new: i32 = client
        .query_one(
            "SELECT min(approval_id) FROM approvals WHERE approval_id > $1",
            &[&(old_approval as i32)],
        )
        .unwrap()
        .get(0);
    assert_eq!(i64::from(first_new), handed_out + 1, "no deployment id is handed out twice");
    let new_events: i64 = client
        .query_one("SELECT count(*) FROM events WHERE seq > $1", &[&old_event])
        .unwrap()
        .get(0);
    assert_eq!(new_events, 3, "the events the old cookie reported came after the old ones");
}

/// Refused: a target that holds rows (the first migration's, or a group made by hand there), and
/// the second attempt changes nothing in it.
#[test]
fn a_database_that_is_not_empty_is_refused_and_left_alone() {
    let Some(db) = TestDatabase::new() else { return };
    let url = url_text(&db);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    stdout_of(ferry(&data).args(["dev", "synth", "--updates", "50", "--payload-bytes", "1KiB"]));
    // A schema made by a ferry that connected, without rows, is empty.
    Store::on_postgres(&db.url, dir.path()).unwrap();
    // The content tree copied elsewhere for the front ends: --data has the check look there.
    let shared = dir.path().join("shared");
    copy_tree(&data.join("content"), &shared.join("content"));
    let out = ferry(&shared)
        .args(["store", "migrate", "--from"])
        .arg(&data)
        .args(["--to", &url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let checked = format!("with the content tree in {}\nclean: ", shared.display());
    assert!(stdout.contains(&checked), "{stdout}");
    let before = rows_per_table(&db);
    let groups = stdout_of(ferry(&data).args(["--database", &url, "groups", "list", "--json"]));

    let again = migrate(&data, &url);
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("is not empty") && err.contains("settings, revisions"), "{err}");
    assert!(err.contains(&db.name) && err.contains("nothing was changed"), "{err}");
    assert_eq!(rows_per_table(&db), before);

    let other = TestDatabase::new().unwrap();
    let other_url = url_text(&other);
    stdout_of(ferry(&data).args(["--database", &other_url, "groups", "add", "Lab"]));
    let before = rows_per_table(&other);
    let out = migrate(&data, &other_url);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is not empty (settings, target_groups hold rows)"), "{err}");
    assert_eq!(rows_per_table(&other), before);
    assert_eq!(
        stdout_of(ferry(&data).args(["--database", &url, "groups", "list", "--json"])),
        groups
    );
}

/// Refused before anything is written: a server nobody listens on (named by host and database,
/// never with its password), a source that is not there, a source with an older schema.
#[test]
fn unreachable_targets_and_missing_or_outdated_sources_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    stdout_of(ferry(&data).args(["dev", "synth", "--updates", "20", "--payload-bytes", "1KiB"]));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = migrate(&data, &format!("postgres://ferry:s3cret-pw@127.0.0.1:{port}/plant"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}/plant")) && err.contains("refused"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");

    let Some(db) = TestDatabase::new() else { return };
    let url = url_text(&db);
    let missing = dir.path().join("nowhere");
    let out = migrate(&missing, &url);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no SQLite store at") && err.contains("--from"), "{err}");
    assert!(!missing.exists(), "nothing made there");

    let conn = rusqlite::Connection::open(data.join("ferry.db")).unwrap();
    // One migration short of what this ferry writes.
    let known: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    let older = known - 1;
    conn.pragma_update(None, "user_version", older).unwrap();
    drop(conn);
    let out = migrate(&data, &url);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let said = format!("schema version {older}, older than this ferry writes ({known})");
    assert!(err.contains(&said), "{err}");
    let conn = rusqlite::Connection::open(data.join("ferry.db")).unwrap();
    let kept: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(kept, older, "the source was not upgraded behind its owner's back");
    let tables: i64 = db
        .client()
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &[])
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "the target was not touched");
}

/// A value PostgreSQL cannot hold (a NUL in text), in a table copied late, fails the whole
/// migration naming the table, row and column; the tables copied before it are rolled back.
#[test]
fn a_value_that_does_not_fit_leaves_the_target_empty() {
    let Some(db) = TestDatabase::new() else { return };
    let url = url_text(&db);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    stdout_of(ferry(&data).args(["dev", "synth", "--updates", "50", "--payload-bytes", "1KiB"]));
    stdout_of(ferry(&data).args(["groups", "add", "Servers"]));
    let conn = rusqlite::Connection::open(data.join("ferry.db")).unwrap();
    conn.execute(
        "INSERT INTO computers (computer_id, dns_name, first_seen_at, last_contact_at)
         VALUES ('0d6c7b5e-1b7e-4c1a-9d0e-0c5b1c1d2e3f', 'pc' || char(0) || '01', 'x', 'x')",
        [],
    )
    .unwrap();
    drop(conn);
    let out = migrate(&data, &url);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("computers, row computer_id='0d6c7b5e-1b7e-4c1a-9d0e-0c5b1c1d2e3f', column dns_name: 'pc\\001' holds a NUL"),
        "{err}"
    );
    assert!(
        rows_per_table(&db).iter().all(|(t, n)| *n == 0 || t == "target_groups"),
        "{:?}",
        rows_per_table(&db)
    );
    let groups: i64 = db
        .client()
        .query_one("SELECT count(*) FROM target_groups WHERE NOT is_builtin", &[])
        .unwrap()
        .get(0);
    assert_eq!(groups, 0, "the built-in groups only, as the schema made them");
}

/// Found by attack: a source whose events had reached the highest rowid (SQLite then picks an
/// unused one) was copied, and on PostgreSQL every event reported afterwards failed: the
/// identity had no id left. Refused instead, naming the column; a table name with a terminal's
/// escape sequence in it is shown escaped.
#[test]
fn an_identity_with_no_id_left_is_refused_and_names_are_shown_escaped() {
    let Some(db) = TestDatabase::new() else { return };
    let url = url_text(&db);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    stdout_of(ferry(&data).args(["groups", "add", "Servers"]));
    let conn = rusqlite::Connection::open(data.join("ferry.db")).unwrap();
    conn.execute_batch(
        "INSERT INTO computers (computer_id, dns_name, first_seen_at, last_contact_at)
             VALUES ('c1', 'pc', 'x', 'x');
         INSERT INTO events (rowid, event_instance_id, computer_id, event_id, source_id,
             update_id, revision_number, win32_hresult, received_at)
             VALUES (9223372036854775807, 'e1', 'c1', 1, 1, 'u', 1, 0, 't');",
    )
    .unwrap();
    let out = migrate(&data, &url);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("events.seq: the source handed out id 9223372036854775807"), "{err}");
    assert!(rows_per_table(&db).iter().all(|(t, n)| *n == 0 || t == "target_groups"));
    conn.execute_batch("CREATE TABLE \"x\x1b[31m\" (y)").unwrap();
    let out = migrate(&data, &url);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown: x\\u{1b}[31m;"), "{err}");
    assert!(!err.contains('\x1b'), "{err}");
}
