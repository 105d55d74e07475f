//! The PostgreSQL backend against a real server: `FERRY_TEST_POSTGRES_URL` names a superuser
//! connection to a throwaway cluster (`.ci/run` starts one with `.ci/postgres.sh`). Without it the
//! tests that need a server say so and pass, unless `FERRY_REQUIRE_TOOLS` is set (as in CI).
//! Each test works in a database of its own, dropped at the end.

use ferry::store::postgres::{DatabaseUrl, PostgresStore};
use ferry::store::{
    IdentityStorage, IngestItem, IngestOptions, SettingStorage, Store, StoreError, UpdateFilter,
};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh database on the test cluster, dropped with the value. `None` (the test says it was
/// skipped) without a cluster, unless CI requires one.
pub struct TestDatabase {
    admin: String,
    pub name: String,
    pub url: DatabaseUrl,
}

impl TestDatabase {
    pub fn new() -> Option<TestDatabase> {
        let Ok(admin) = std::env::var("FERRY_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var_os("FERRY_REQUIRE_TOOLS").is_none(),
                "FERRY_TEST_POSTGRES_URL is required (FERRY_REQUIRE_TOOLS is set)"
            );
            eprintln!("skipped: FERRY_TEST_POSTGRES_URL is not set (see .ci/postgres.sh)");
            return None;
        };
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name =
            format!("ferry_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        client.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}").parse().unwrap();
        Some(TestDatabase { admin, name, url })
    }

    /// A plain client on the database, to look at or damage rows behind the store's back.
    pub fn client(&self) -> postgres::Client {
        let (base, _) = self.admin.rsplit_once('/').unwrap();
        postgres::Client::connect(&format!("{base}/{}", self.name), postgres::NoTls).unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name));
        }
    }
}

#[test]
fn a_new_database_gets_the_schema_once() {
    let Some(db) = TestDatabase::new() else { return };
    let store = PostgresStore::connect(&db.url).unwrap();
    assert_eq!(store.schema_version(), PostgresStore::known_schema_version());
    drop(store);
    let again = PostgresStore::connect(&db.url).unwrap();
    assert_eq!(again.schema_version(), PostgresStore::known_schema_version());
    let mut client = db.client();
    let versions = client.query("SELECT version FROM schema_version", &[]).unwrap();
    assert_eq!(versions.len(), 1, "one row holds the version");
    let groups: i64 = client
        .query_one("SELECT count(*) FROM target_groups WHERE is_builtin", &[])
        .unwrap()
        .get(0);
    assert_eq!(groups, 2, "All Computers and Unassigned Computers, created once");
}

/// Front ends started together migrate one after the other: both start, the schema is built
/// once.
#[test]
fn front_ends_started_together_migrate_once() {
    let Some(db) = TestDatabase::new() else { return };
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || PostgresStore::connect(&url).map(|s| s.schema_version()))
        })
        .collect();
    for start in starts {
        assert_eq!(start.join().unwrap().unwrap(), PostgresStore::known_schema_version());
    }
    let groups: i64 =
        db.client().query_one("SELECT count(*) FROM target_groups", &[]).unwrap().get(0);
    assert_eq!(groups, 2);
}

#[test]
fn a_schema_newer_than_this_ferry_is_refused_and_left_alone() {
    let Some(db) = TestDatabase::new() else { return };
    PostgresStore::connect(&db.url).unwrap();
    let newer = PostgresStore::known_schema_version() as i32 + 1;
    db.client().execute("UPDATE schema_version SET version = $1", &[&newer]).unwrap();
    let err = PostgresStore::connect(&db.url).err().expect("refused");
    assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&format!("schema version {newer}")), "{message}");
    assert!(message.contains(&format!("({})", newer - 1)), "{message}");
    assert!(message.contains(&db.name), "names the database: {message}");
    let kept: i32 =
        db.client().query_one("SELECT version FROM schema_version", &[]).unwrap().get(0);
    assert_eq!(kept, newer, "nothing changed");
}

/// An unreachable server is named by host and database, never with the password.
#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url: DatabaseUrl =
        format!("postgres://ferry:s3cret-pw@127.0.0.1:{port}/plant").parse().unwrap();
    let err = PostgresStore::connect(&url).err().expect("nothing listens there");
    let message = err.to_string();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{message}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("/plant"), "{message}");
    assert!(message.contains("refused"), "says why: {message}");
    assert!(!message.contains("s3cret"), "{message}");
}

/// Found by attack: clap's error for a bad `--database`, `--to` or `FERRY_DATABASE_URL` quoted
/// the whole value, password included, on stderr (and so in a service's journal).
#[test]
fn a_bad_database_url_is_refused_without_its_password() {
    let data = tempfile::tempdir().unwrap();
    let bad = "postgres://ferry:s3cret-pw@db1/wsus?sslmode=sometimes";
    let runs = [
        crate::util::ferry_without_backend(data.path())
            .args(["--database", bad, "status"])
            .output(),
        crate::util::ferry_without_backend(data.path())
            .env("FERRY_DATABASE_URL", bad)
            .arg("status")
            .output(),
        crate::util::ferry_without_backend(data.path())
            .args(["store", "migrate", "--from", "x", "--to", "postgres://f:s3cret-pw@db1"])
            .output(),
    ];
    for out in runs {
        let out = out.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains("is not valid"), "says why: {stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
}

/// What every backend's settings do, checked on the one given.
pub fn settings_contract(store: &dyn SettingStorage) {
    assert_eq!(store.setting("test.absent").unwrap(), None);
    store.set_setting("test.key", "one").unwrap();
    store.set_setting("test.key", "two").unwrap();
    assert_eq!(store.setting("test.key").unwrap().as_deref(), Some("two"));
    assert_eq!(store.setting_or_insert("test.key", "three").unwrap(), "two", "kept");
    assert_eq!(store.setting_or_insert("test.new", "first").unwrap(), "first", "inserted");
    assert_eq!(store.setting("test.new").unwrap().as_deref(), Some("first"));
    let text = "ünïcode, 'quotes'; DROP TABLE settings; --";
    store.set_setting("test.text", text).unwrap();
    assert_eq!(store.setting("test.text").unwrap().as_deref(), Some(text));
}

#[test]
fn settings_behave_alike_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open_or_create(dir.path()).unwrap();
    settings_contract(&*sqlite);
    let Some(db) = TestDatabase::new() else { return };
    settings_contract(&PostgresStore::connect(&db.url).unwrap());
}

/// Front ends started together on one database get one identity and one cookie key, so a
/// cookie one of them issued is valid on the others.
#[test]
fn front_ends_share_the_server_identity() {
    let Some(db) = TestDatabase::new() else { return };
    PostgresStore::connect(&db.url).unwrap();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
    let identities: Vec<_> = (0..6)
        .map(|_| {
            let (url, barrier) = (db.url.clone(), barrier.clone());
            std::thread::spawn(move || {
                let store = PostgresStore::connect(&url).unwrap();
                barrier.wait();
                let identity = store.server_identity().unwrap();
                (identity.server_id, identity.cookie_key, identity.config_last_change)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert!(identities.windows(2).all(|w| w[0] == w[1]), "{identities:?}");
}

/// The administration rules over a whole store: a catalog ingested, a group made, updates
/// approved (with their prerequisites) and declined, a refusal, the tree, the report. What each
/// step answered, as text, to compare between the backends.
fn administration_transcript(store: &mut Store) -> Vec<String> {
    use ferry::admin::{Action, AdminService, Approve};
    let documents = crate::postgres_catalog::documents(300);
    let items = documents.into_iter().map(|d| Ok(IngestItem::new("synth", d)));
    store.ingest_stream(Box::new(items), IngestOptions::default()).unwrap();
    let software: Vec<String> = store
        .list_updates(&UpdateFilter::default())
        .unwrap()
        .into_iter()
        .filter(|u| u.update_type == "Software" && !u.is_bundle)
        .map(|u| u.update_id.to_string())
        .take(4)
        .collect();
    assert_eq!(software.len(), 4, "the catalog holds software updates");
    fn approve(updates: &[String]) -> Approve<'_> {
        Approve {
            updates,
            group: "plant servers",
            action: Action::Install,
            deadline: None,
            admin: Some("test"),
            with_prerequisites: true,
        }
    }
    let mut out = Vec::new();
    let mut admin = AdminService::new(store);
    let group = admin.create_group("Plant Servers", None).unwrap();
    out.push(format!("group {}", group.name));
    let approved = admin.approve(&approve(&software[..2])).unwrap();
    out.push(format!("approved {:?} + {:?}", approved.requested, approved.prerequisites));
    out.push(format!("declined {}", admin.decline(&software[2..3], Some("test")).unwrap()));
    let refused = admin.approve(&approve(&software[2..3])).expect_err("a declined update");
    out.push(format!("refused: {refused}"));
    out.push(format!("again: {:?}", admin.create_group("PLANT SERVERS", None).err()));
    let tree: Vec<String> =
        ferry::admin::group_tree(store).unwrap().into_iter().map(|g| g.path).collect();
    out.push(format!("tree {tree:?}"));
    let mut approvals: Vec<String> = store
        .approvals()
        .unwrap()
        .into_iter()
        .map(|a| {
            let group = if a.group_id == group.group_id { "Plant Servers" } else { "other" };
            format!("{} {group} {:?}", a.update_id, a.action)
        })
        .collect();
    approvals.sort();
    out.push(format!("approvals {approvals:?}"));
    out.push(format!("stamp {}", store.deployment_stamp().unwrap()));
    let report = ferry::admin::compliance_report(store, Vec::new(), None).unwrap();
    out.push(format!("report updates {}", report.updates.len()));
    out
}

/// Invariant: the administration rules (`admin/`) run alike whichever engine keeps the store:
/// the same answers, refusals and stamps on SQLite and on PostgreSQL through `Store`.
#[test]
fn the_administration_rules_run_alike_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = administration_transcript(&mut Store::open_or_create(dir.path()).unwrap());
    assert!(
        sqlite.iter().any(|l| l.starts_with("refused: ") && l.contains("declined")),
        "{sqlite:?}"
    );
    let Some(db) = TestDatabase::new() else { return };
    let content = tempfile::tempdir().unwrap();
    let postgres =
        administration_transcript(&mut Store::on_postgres(&db.url, content.path()).unwrap());
    assert_eq!(sqlite, postgres);
}
