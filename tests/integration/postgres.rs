//! The PostgreSQL backend against a real server: `FERRY_TEST_POSTGRES_URL` names a superuser
//! connection to a throwaway cluster (`.ci/run` starts one with `.ci/postgres.sh`). Without it the
//! tests that need a server say so and pass, unless `FERRY_REQUIRE_TOOLS` is set (as in CI).
//! Each test works in a database of its own, dropped at the end.

use ferry::store::postgres::{DatabaseUrl, PostgresStore};
use ferry::store::{IdentityStorage, SettingStorage, Store, StoreError};
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
