//! Catalog reads, server sync and the consistency check on the PostgreSQL backend, held to what
//! the SQLite backend does: a small synthetic catalog is ingested into a SQLite store, its rows
//! are copied into a PostgreSQL database (same revision ids), and every answer of
//! `CatalogStorage`, `ServerSyncStorage` and `CheckStorage` is compared between the two.

use crate::postgres::TestDatabase;
use ferry::catalog::{Language, Sha1Digest};
use ferry::store::postgres::PostgresStore;
use ferry::store::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// A backend under test, through its storage traits only.
trait Backend {
    fn catalog(&self) -> &dyn CatalogStorage;
    fn sync(&mut self) -> &mut dyn ServerSyncStorage;
    fn checker(&self) -> &dyn CheckStorage;
    /// Runs SQL statements on the database behind the store's back.
    fn seed(&mut self, sql: &str);
}

struct Sqlite {
    store: Store,
    dir: tempfile::TempDir,
}

impl Backend for Sqlite {
    fn catalog(&self) -> &dyn CatalogStorage {
        &*self.store
    }
    fn sync(&mut self) -> &mut dyn ServerSyncStorage {
        &mut *self.store
    }
    fn checker(&self) -> &dyn CheckStorage {
        &*self.store
    }
    fn seed(&mut self, sql: &str) {
        let db = rusqlite::Connection::open(self.dir.path().join(DATABASE_FILE)).unwrap();
        db.execute_batch(sql).unwrap();
    }
}

struct Postgres {
    store: PostgresStore,
    db: TestDatabase,
}

impl Backend for Postgres {
    fn catalog(&self) -> &dyn CatalogStorage {
        &self.store
    }
    fn sync(&mut self) -> &mut dyn ServerSyncStorage {
        &mut self.store
    }
    fn checker(&self) -> &dyn CheckStorage {
        &self.store
    }
    fn seed(&mut self, sql: &str) {
        self.db.client().batch_execute(sql).unwrap();
    }
}

/// Synthetic documents: every real category, detectoids, software, bundles and their members.
pub fn documents(count: usize) -> Vec<Vec<u8>> {
    let mut planner = ferry::synth::Planner::new(7, 4 << 10);
    let languages = ["en".to_string(), "de".to_string()];
    (0..count)
        .map(|_| {
            let p = planner.next_item();
            let files: Vec<_> = p.files.iter().map(ferry::synth::RenderedFile::stand_in).collect();
            ferry::synth::render(&p, &files, &languages).into_bytes()
        })
        .collect()
}

/// Administration rows (approvals, a decline, removed deployments, a downstream server), in
/// SQL both engines read alike.
const ADMINISTRATION: &str = "
INSERT INTO approvals (deployment_guid, update_id, group_id, action, deadline, admin, changed_at, changed_stamp)
  SELECT 'dep-' || update_id, update_id, 'a0a08746-4dbe-4a37-9adf-9e7652c0b421', 'Install', NULL, 'admin', '2024-01-02T00:00:00Z', revision_id
  FROM revisions WHERE is_latest AND update_type = 'Software' AND revision_id % 3 = 0;
INSERT INTO declined_updates (update_id, declined_at, admin, changed_stamp)
  SELECT update_id, '2024-01-03T00:00:00Z', 'admin', 500 FROM revisions WHERE is_latest AND update_type = 'Software' AND revision_id % 7 = 1;
INSERT INTO approval_changes (changed_stamp, deployment_guid, update_id, group_id, change) VALUES
  (3, 'gone-b', 'x', 'g', 'removed'), (5, 'gone-a', 'x', 'g', 'removed'), (6, 'gone-a', 'x', 'g', 'removed'), (7, '', 'x', 'g', 'removed');
INSERT INTO downstream_servers (server_id, name, last_seen_at, first_seen_at) VALUES
  ('s2', 'replica-b', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z'),
  ('s1', 'Replica-a', '2024-01-02T00:00:00Z', '2024-01-01T00:00:00Z');
";

/// Ingests `count` synthetic documents, in order, through the backend's own ingest.
fn ingest(store: &mut dyn IngestStorage, count: usize) {
    let items = documents(count).into_iter().map(|d| Ok(IngestItem::new("synth", d)));
    let report = store.ingest_stream(Box::new(items), IngestOptions::default()).unwrap();
    assert_eq!(report.added, count as u64);
}

fn sqlite_with_catalog(count: usize) -> Sqlite {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_or_create(dir.path()).unwrap();
    ingest(&mut *store, count);
    let mut sqlite = Sqlite { store, dir };
    sqlite.seed(ADMINISTRATION);
    sqlite
}

/// The tables a catalog lives in, parents first.
const TABLES: &[&str] = &[
    "revisions",
    "revision_documents",
    "localized_properties",
    "prerequisites",
    "bundle_members",
    "supersedences",
    "files",
    "revision_files",
    "removed_updates",
    "approvals",
    "declined_updates",
    "approval_changes",
    "downstream_servers",
];

/// A value as a PostgreSQL literal that the column's type reads (`'1'` is a boolean too).
fn literal(v: rusqlite::types::Value) -> String {
    use rusqlite::types::Value;
    match v {
        Value::Null => "NULL".into(),
        Value::Integer(n) => format!("'{n}'"),
        Value::Real(x) => format!("'{x}'"),
        Value::Text(t) => format!("'{}'", t.replace('\'', "''")),
        Value::Blob(b) => {
            format!("'\\x{}'", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
        }
    }
}

/// Copies the SQLite store's catalog rows (ids and all) into the PostgreSQL database.
fn copy_catalog(from: &Sqlite, to: &mut ::postgres::Client) {
    let sqlite = rusqlite::Connection::open(from.dir.path().join(DATABASE_FILE)).unwrap();
    for table in TABLES {
        let columns: Vec<String> = to
            .query(
                "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1
                 AND column_name <> 'seq' ORDER BY ordinal_position",
                &[table],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let list = columns.join(", ");
        let mut stmt = sqlite.prepare(&format!("SELECT {list} FROM {table}")).unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| {
                let values: Vec<String> =
                    (0..columns.len()).map(|i| literal(r.get(i).unwrap())).collect();
                Ok(format!("({})", values.join(", ")))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for chunk in rows.chunks(200) {
            to.batch_execute(&format!(
                "INSERT INTO {table} ({list}) OVERRIDING SYSTEM VALUE VALUES {}",
                chunk.join(", ")
            ))
            .unwrap();
        }
    }
    let stamp: String = sqlite
        .query_row("SELECT value FROM settings WHERE key = 'catalog_stamp'", [], |r| r.get(0))
        .unwrap();
    to.execute(
        "INSERT INTO settings (key, value) VALUES ('catalog_stamp', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&stamp],
    )
    .unwrap();
}

/// A PostgreSQL database holding what `sqlite` holds, its content tree the same directory.
fn postgres_copy_of(sqlite: &Sqlite) -> Option<Postgres> {
    let db = TestDatabase::new()?;
    let store = PostgresStore::connect(&db.url).unwrap().with_content_in(sqlite.dir.path());
    copy_catalog(sqlite, &mut db.client());
    Some(Postgres { store, db })
}

/// Questions and answers, each answer as its `Debug` text (errors as their message).
#[derive(Default)]
struct Answers(Vec<(String, String)>);

impl Answers {
    fn add<T: Debug>(&mut self, question: impl Into<String>, answer: StoreResult<T>) {
        let text = match answer {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("error: {e}"),
        };
        self.0.push((question.into(), text));
    }
}

/// Both backends answered alike, question by question.
fn assert_alike(sqlite: &Answers, postgres: &Answers) {
    assert_eq!(sqlite.0.len(), postgres.0.len(), "as many answers");
    for ((question, expected), (_, got)) in sqlite.0.iter().zip(&postgres.0) {
        assert_eq!(got, expected, "PostgreSQL answers {question} unlike SQLite");
    }
}

fn filters() -> Vec<UpdateFilter> {
    let mut list = vec![UpdateFilter::default(), UpdateFilter { all: true, ..Default::default() }];
    for text in ["windows", "KB50", "5"] {
        list.push(UpdateFilter { text: Some(text.into()), ..Default::default() });
    }
    for c in ["security", "critical", "UPDATES", "0fa1201d-4330-4fa8-8ae9-b877473b6441"] {
        list.push(UpdateFilter { classification: Some(c.into()), ..Default::default() });
    }
    for p in ["windows 10", "office", "server"] {
        list.push(UpdateFilter { product: Some(p.into()), all: true, ..Default::default() });
    }
    for a in [
        ApprovalState::Approved,
        ApprovalState::Unapproved,
        ApprovalState::Declined,
        ApprovalState::AnyExceptDeclined,
    ] {
        list.push(UpdateFilter { approval: Some(a), ..Default::default() });
    }
    list
}

/// Everything `CatalogStorage` answers about the catalog, one revision at a time.
fn catalog_answers(c: &dyn CatalogStorage) -> Answers {
    let mut a = Answers::default();
    a.add(
        "category_index",
        c.category_index().map(|i| i.by_id.into_iter().collect::<BTreeMap<_, _>>()),
    );
    for f in filters() {
        let listed = c.list_updates(&f);
        assert!(listed.as_ref().is_ok_and(|l| !l.is_empty()), "{f:?} lists something");
        a.add(format!("list_updates {f:?}"), listed);
    }
    let all = c.list_updates(&UpdateFilter { all: true, ..Default::default() }).unwrap();
    assert!(all.len() > 100, "a catalog to compare: {} updates", all.len());
    let mut ids: Vec<String> =
        vec!["#1".into(), "#0".into(), "#x".into(), "KB".into(), "junk".into()];
    ids.extend(
        [
            "KB5000001",
            "kb5",
            "12345678-1234-1234-1234-123456789abc",
            "12345678-1234-1234-1234-123456789abc/x",
        ]
        .map(String::from),
    );
    for s in all.iter().step_by(7) {
        ids.push(s.update_id.to_string());
        ids.push(format!("{}/{}", s.update_id, s.revision_number));
        ids.extend(s.kb_article.iter().map(|kb| format!("KB{kb}")));
    }
    for id in ids {
        a.add(format!("resolve_update {id}"), c.resolve_update(&id));
    }
    let last = all.iter().map(|s| s.revision_id).max().unwrap();
    for rid in (1..=last + 1).chain([0, -1]) {
        a.add(format!("update_detail #{rid}"), c.update_detail(rid));
        a.add(format!("revision_languages #{rid}"), c.revision_languages(rid));
        a.add(format!("document #{rid}"), c.document(rid).map(|d| (d.len(), fold(&d))));
        for kind in [
            FragmentKind::Core,
            FragmentKind::Extended,
            FragmentKind::Localized("en".into()),
            FragmentKind::Localized("de".into()),
            FragmentKind::Localized("fr".into()),
        ] {
            a.add(format!("fragment #{rid} {kind:?}"), c.fragment(rid, &kind));
        }
    }
    a.add("catalog_status", c.catalog_status());
    a.add("offerable_revisions", c.offerable_revisions());
    let files = c.all_files().unwrap();
    assert!(files.len() > 10, "files to compare");
    for (i, f) in files.iter().enumerate().step_by(5) {
        a.add(format!("mark_file_present {i}"), c.mark_file_present(&f.sha1, i % 2 == 0));
    }
    a.add("mark_file_present of an unknown file", c.mark_file_present(&Sha1Digest([9; 20]), true));
    a.add("all_files", c.all_files());
    a.add("catalog_status after marking", c.catalog_status());
    a
}

/// A cheap digest of bytes, to compare documents without printing them.
fn fold(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}

/// Downstream filters over the catalog's own categories: everything, anchors, config, products
/// with classifications and their deltas, languages, and the lists that match nothing.
fn downstream_filters(categories: &CategoryIndex, stamp: i64) -> Vec<DownstreamFilter> {
    let of_kind = |kind: &str| -> Vec<String> {
        let mut ids: Vec<String> = categories
            .by_id
            .iter()
            .filter(|(_, (k, _))| k == kind)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    };
    let (products, classes) = (of_kind("Product"), of_kind("UpdateClassification"));
    assert!(!products.is_empty() && !classes.is_empty(), "categories to filter by");
    let delta =
        |ids: &[String], d: bool| Some(ids.iter().map(|i| (i.clone(), d)).collect::<Vec<_>>());
    let half = |ids: &[String]| ids[..ids.len().div_ceil(2)].to_vec();
    let mut list = vec![
        DownstreamFilter::default(),
        DownstreamFilter { since: Some(stamp - 1), ..Default::default() },
        DownstreamFilter { since: Some(stamp), ..Default::default() },
        DownstreamFilter { get_config: true, ..Default::default() },
        DownstreamFilter { get_config: true, since: Some(stamp), ..Default::default() },
        DownstreamFilter { categories: delta(&products, false), ..Default::default() },
        DownstreamFilter {
            categories: delta(&products, false),
            classifications: Some(vec![]),
            ..Default::default()
        },
    ];
    for (p, c) in [(false, false), (true, true), (true, false)] {
        for since in [None, Some(stamp)] {
            list.push(DownstreamFilter {
                since,
                categories: delta(&half(&products), p),
                classifications: delta(&classes, c),
                ..Default::default()
            });
        }
    }
    for wanted in [vec!["en"], vec!["de"], vec!["fr", "de"]] {
        let languages = Some(wanted.iter().map(|l| Language::new(l).unwrap()).collect());
        list.push(DownstreamFilter { languages, ..Default::default() });
    }
    list
}

/// Everything `ServerSyncStorage` answers, and what its writes leave.
fn sync_answers(b: &mut dyn Backend) -> Answers {
    let mut a = Answers::default();
    let categories = b.catalog().category_index().unwrap();
    let stamp = b.catalog().catalog_status().unwrap().catalog_stamp;
    for f in downstream_filters(&categories, stamp) {
        a.add(format!("revisions_for_downstream {f:?}"), b.sync().revisions_for_downstream(&f));
    }
    let identities: BTreeSet<_> = b.sync().stored_identities().unwrap().into_iter().collect();
    a.add("stored_identities", StoreResult::Ok(&identities));
    for (u, n) in identities.iter().take(20) {
        a.add(format!("stored_revision {u}/{n}"), b.sync().stored_revision(u, *n));
    }
    a.add("stored_revision unknown", b.sync().stored_revision("nothing", 1));
    let files = b.catalog().all_files().unwrap();
    let sources: Vec<([u8; 20], String)> = files
        .iter()
        .step_by(3)
        .map(|f| (f.sha1.0, format!("http://upstream/Content/{}", f.content_path)))
        .chain([([7; 20], "http://upstream/unknown".to_string())])
        .collect();
    a.add("set_file_sources", b.sync().set_file_sources(&sources));
    a.add(
        "file_sources",
        b.sync().file_sources().map(|m| m.into_iter().collect::<BTreeMap<_, _>>()),
    );
    let present: Vec<[u8; 20]> = files.iter().step_by(4).map(|f| f.sha1.0).collect();
    a.add("mark_files_present", b.sync().mark_files_present(&present));
    for f in files.iter().take(12) {
        a.add(
            format!("present_file_extension {}", f.sha1),
            b.sync().present_file_extension(&f.sha1),
        );
    }
    for rid in 0..=identities.len() as i32 + 1 {
        a.add(format!("revision_file_sources #{rid}"), b.sync().revision_file_sources(rid));
    }
    for since in [-1, 0, 4, 6, 30, i64::MAX] {
        a.add(format!("deployments_since {since}"), b.sync().deployments_since(since));
    }
    a.add("languages", b.sync().languages());
    a.add("downstream_servers", b.sync().downstream_servers());
    a.add("all_files after sync writes", b.catalog().all_files());
    a
}

/// What `ferry check` says, quick and deep.
fn check_answers(b: &dyn Backend) -> Answers {
    let mut a = Answers::default();
    let mut seen = Vec::new();
    a.add("check", b.checker().check(false, &mut |_, _| {}));
    a.add("check deep", b.checker().check(true, &mut |done, total| seen.push((done, total))));
    a.add("deep progress", StoreResult::Ok(seen));
    a
}

#[test]
fn catalog_reads_answer_alike_on_both_backends() {
    let sqlite = sqlite_with_catalog(260);
    let postgres = postgres_copy_of(&sqlite);
    let expected = catalog_answers(sqlite.catalog());
    let Some(postgres) = postgres else { return };
    assert_alike(&expected, &catalog_answers(postgres.catalog()));
}

#[test]
fn server_sync_answers_alike_on_both_backends() {
    let mut sqlite = sqlite_with_catalog(260);
    let postgres = postgres_copy_of(&sqlite);
    let expected = sync_answers(&mut sqlite);
    let Some(mut postgres) = postgres else { return };
    assert_alike(&expected, &sync_answers(&mut postgres));
}

/// A clean catalog checks clean; files marked present but missing, a revision without its
/// document and an update with no newest revision are reported alike (the content tree is the
/// same directory for both).
#[test]
fn the_check_reports_alike_on_both_backends() {
    let mut sqlite = sqlite_with_catalog(200);
    let postgres = postgres_copy_of(&sqlite);
    let clean = sqlite.checker().check(true, &mut |_, _| {}).unwrap();
    assert!(clean.is_clean(), "{:?}", clean.problems);
    assert!(clean.revisions_checked >= 200 && clean.documents_reparsed >= 200, "{clean:?}");
    const DAMAGE: &str = "
        UPDATE files SET present = (substr(file_name, 1, 1) < 'm');
        DELETE FROM revision_documents WHERE revision_id = 5;
        UPDATE revisions SET is_latest = (1 = 0) WHERE revision_id = 7;";
    sqlite.seed(DAMAGE);
    let expected = check_answers(&sqlite);
    let report = sqlite.checker().check(false, &mut |_, _| {}).unwrap();
    let rules: BTreeSet<&str> = report.problems.iter().map(|p| p.subject.as_str()).collect();
    assert!(rules.contains("catalog (every revision has its document and fragments)"), "{rules:?}");
    assert!(rules.contains("catalog (every update has exactly one newest revision)"), "{rules:?}");
    assert!(report.problems.iter().any(|p| p.problem.contains("missing or of the wrong size")));
    let Some(mut postgres) = postgres else { return };
    let clean = postgres.checker().check(true, &mut |_, _| {}).unwrap();
    assert!(clean.is_clean(), "{:?}", clean.problems);
    postgres.seed(DAMAGE);
    assert_alike(&expected, &check_answers(&postgres));
}

/// Without a content tree, files marked present are a problem the check names (it cannot look
/// for them), not a silent pass.
#[test]
fn a_postgres_check_without_a_content_tree_says_so() {
    let sqlite = sqlite_with_catalog(120);
    let Some(mut postgres) = postgres_copy_of(&sqlite) else { return };
    postgres.store = PostgresStore::connect(&postgres.db.url).unwrap();
    assert!(postgres.checker().check(false, &mut |_, _| {}).unwrap().is_clean());
    postgres.seed("UPDATE files SET present = true");
    let report = postgres.checker().check(false, &mut |_, _| {}).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].problem.contains("no content tree"), "{:?}", report.problems);
    assert!(report.problems[0].subject.contains(&postgres.db.name), "{:?}", report.problems);
}

/// The same documents ingested by each backend's own ingest read back alike: same revision ids,
/// same rows, same answers (and both check clean).
#[test]
fn ingested_catalogs_answer_alike_on_both_backends() {
    let mut sqlite = sqlite_with_catalog(260);
    let Some(db) = TestDatabase::new() else { return };
    let store = PostgresStore::connect(&db.url).unwrap().with_content_in(sqlite.dir.path());
    let mut postgres = Postgres { store, db };
    ingest(&mut postgres.store, 260);
    postgres.seed(ADMINISTRATION);
    let clean = postgres.checker().check(true, &mut |_, _| {}).unwrap();
    assert!(clean.is_clean() && clean.documents_reparsed == 260, "{clean:?}");
    assert_alike(&check_answers(&sqlite), &check_answers(&postgres));
    assert_alike(&catalog_answers(sqlite.catalog()), &catalog_answers(postgres.catalog()));
    assert_alike(&sync_answers(&mut sqlite), &sync_answers(&mut postgres));
}
