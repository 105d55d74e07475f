//! Ingest (`IngestStorage`) and channel state (`ChannelStorage`) behave alike on both backends:
//! each contract runs on a SQLite store and on a PostgreSQL database, over generated update
//! documents, and looks at the rows through a connection of its own. Plus what only PostgreSQL
//! has to guard: front ends ingesting into one database at once.

use crate::postgres::TestDatabase;
use ferry::store::postgres::PostgresStore;
use ferry::store::{
    AddOutcome, ChannelStorage, ExportRecord, ImportRecord, IngestItem, IngestOptions, IngestRows,
    IngestStorage, Store, StoreError,
};
use ferry::synth::{Planner, RenderedFile, render};
use std::path::PathBuf;

/// Both traits on one object (the contracts run over `dyn Storage` and `PostgresStore`).
trait Backend: IngestStorage + ChannelStorage {}
impl<T: IngestStorage + ChannelStorage + ?Sized> Backend for T {}

/// Committed rows, through a connection of their own; each query returns one text column.
trait Look {
    fn texts(&self, sql: &str) -> Vec<String>;

    fn count(&self, table: &str) -> i64 {
        self.texts(&format!("SELECT count(*) || '' FROM {table}"))[0].parse().unwrap()
    }

    /// Every table an ingest writes, by row count.
    fn counts(&self) -> Vec<(String, i64)> {
        [
            "revisions",
            "revision_documents",
            "localized_properties",
            "prerequisites",
            "bundle_members",
            "supersedences",
            "files",
            "revision_files",
            "imports",
            "removed_updates",
        ]
        .iter()
        .map(|t| (t.to_string(), self.count(t)))
        .collect()
    }

    /// `revision_id update_id revision_number latest`, by revision id.
    fn revisions(&self) -> Vec<String> {
        self.texts(
            "SELECT revision_id || ' ' || update_id || ' ' || revision_number || ' ' || CASE WHEN is_latest THEN 'latest' ELSE '-' END
             FROM revisions ORDER BY revision_id",
        )
    }

    fn catalog_stamp(&self) -> Option<String> {
        self.texts("SELECT value FROM settings WHERE key = 'catalog_stamp'").pop()
    }
}

struct SqliteLook(PathBuf);

impl Look for SqliteLook {
    fn texts(&self, sql: &str) -> Vec<String> {
        let conn = rusqlite::Connection::open(&self.0).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    }
}

struct PgLook<'a>(&'a TestDatabase);

impl Look for PgLook<'_> {
    fn texts(&self, sql: &str) -> Vec<String> {
        self.0.client().query(sql, &[]).unwrap().iter().map(|r| r.get(0)).collect()
    }
}

/// `n` generated update documents (categories, software, bundles, files), the same every time.
fn documents(n: usize) -> Vec<(String, Vec<u8>)> {
    documents_in(n, &["en", "de"])
}

/// The same documents, with localized properties in `languages` only.
fn documents_in(n: usize, languages: &[&str]) -> Vec<(String, Vec<u8>)> {
    let languages: Vec<String> = languages.iter().map(|l| l.to_string()).collect();
    let mut planner = Planner::new(7, 4 << 10);
    (0..n)
        .map(|i| {
            let p = planner.next_item();
            let files: Vec<RenderedFile> = p.files.iter().map(RenderedFile::stand_in).collect();
            let doc = render(&p, &files, &languages);
            (format!("doc{i}.xml"), doc.into_bytes())
        })
        .collect()
}

/// The same revision with different content (its English title changed).
fn conflicting(document: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(document.to_vec()).unwrap();
    assert!(text.contains("<upd:Title>"), "a generated document has a title");
    text.replacen("<upd:Title>", "<upd:Title>Changed ", 1).into_bytes()
}

fn stream(docs: &[(String, Vec<u8>)]) -> ferry::store::Documents<'static> {
    let items: Vec<_> = docs
        .iter()
        .map(|(source, document)| {
            Ok(IngestItem {
                source: source.clone(),
                document: document.clone(),
                compressed_size: None,
                present_files: Vec::new(),
            })
        })
        .collect();
    Box::new(items.into_iter())
}

fn ids(outcomes: &[AddOutcome]) -> Vec<(bool, i32)> {
    outcomes
        .iter()
        .map(|o| match o {
            AddOutcome::Added { revision_id } => (true, *revision_id),
            AddOutcome::Unchanged { revision_id } => (false, *revision_id),
        })
        .collect()
}

/// Enough generated documents that some are newer revisions of earlier ones.
const N: usize = 400;

/// Ingests `N` documents (a batch, then a stream), then all again; returns what it saw.
fn ingest_contract<B: Backend + ?Sized>(store: &mut B, look: &dyn Look) -> Vec<String> {
    let docs = documents(N);
    let mut batch = store.begin_ingest().unwrap();
    assert_eq!(batch.stamp(), 1);
    let first = batch.add_documents(&docs[..N / 2]).unwrap();
    assert!(first.iter().all(|o| matches!(o, AddOutcome::Added { .. })), "{first:?}");
    let report = batch.commit().unwrap();
    assert_eq!((report.added, report.unchanged), (N as u64 / 2, 0));
    let rest = store.ingest_stream(stream(&docs[N / 2..]), IngestOptions::default()).unwrap();
    assert_eq!((rest.added, rest.unchanged), ((N - N / 2) as u64, 0));
    assert_eq!(look.catalog_stamp().as_deref(), Some("2"));
    let counts = look.counts();
    let revisions = look.revisions();
    assert_eq!(revisions.len(), N);
    assert!(revisions.iter().any(|r| r.ends_with(" -")), "newer revisions retire older ones");

    // Again: every revision is unchanged, under its id; nothing changes, the stamp stays.
    let mut batch = store.begin_ingest().unwrap();
    assert_eq!(batch.stamp(), 3);
    let again = batch.add_documents(&docs).unwrap();
    let report = batch.commit().unwrap();
    assert_eq!((report.added, report.unchanged), (0, N as u64));
    let again = ids(&again);
    assert!(again.iter().all(|(added, _)| !added), "{again:?}");
    let again_ids: Vec<i32> = again.iter().map(|(_, id)| *id).collect();
    assert_eq!(again_ids, (1..=N as i32).collect::<Vec<_>>(), "ids follow the stream");
    assert_eq!(look.counts(), counts);
    assert_eq!(look.catalog_stamp().as_deref(), Some("2"), "an ingest that added nothing");

    let catalog: Vec<String> = store
        .catalog_revisions()
        .unwrap()
        .iter()
        .map(|r| {
            let mut files: Vec<String> =
                r.files.iter().map(|f| format!("{}:{}", f.sha1, f.size)).collect();
            files.sort();
            let mut members = r.bundle_members.clone();
            members.sort();
            let mut superseded = r.superseded.clone();
            superseded.sort();
            format!(
                "{} {} {} {} {:?} {:?} {:?} {:?} {:?} {:?} {}",
                r.revision_id,
                r.update_id,
                r.update_type,
                r.is_latest,
                r.languages,
                r.prerequisite_clauses,
                members,
                superseded,
                files,
                r.title,
                r.document_size
            )
        })
        .collect();
    let (document, size) = store.compressed_document(7).unwrap();
    assert!(!document.is_empty() && size > 0);
    let err = store.compressed_document(9999).unwrap_err();
    assert_eq!(err.to_string(), "no document for revision #9999");
    let mut cores = Vec::new();
    store.for_each_small_core(1 << 40, &mut |id, core| cores.push((id, core.len()))).unwrap();
    cores.sort();
    assert_eq!(cores.len(), N);
    let mut seen = vec![format!("{counts:?}")];
    seen.extend(revisions);
    seen.extend(catalog);
    seen.push(format!("{cores:?}"));
    seen
}

#[test]
fn ingest_behaves_alike_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = Store::open_or_create(dir.path()).unwrap();
    let on_sqlite = ingest_contract(&mut *sqlite, &SqliteLook(dir.path().join("ferry.db")));
    let Some(db) = TestDatabase::new() else { return };
    let on_postgres = ingest_contract(&mut PostgresStore::connect(&db.url).unwrap(), &PgLook(&db));
    assert_eq!(on_sqlite, on_postgres);
}

/// A conflicting revision fails the whole batch (nothing it added stays); dropping a batch
/// rolls it back; with `commit_every`, the batches committed before the failure stay.
fn failure_contract<B: Backend + ?Sized>(store: &mut B, look: &dyn Look) -> Vec<String> {
    let docs = documents(12);
    store.ingest_stream(stream(&docs[..4]), IngestOptions::default()).unwrap();
    let before = look.counts();

    // One transaction: the three new documents before the conflict are rolled back too.
    let mut bad = docs[4..7].to_vec();
    bad.push(("changed.xml".into(), conflicting(&docs[1].1)));
    let err = store.ingest_stream(stream(&bad), IngestOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::ConflictingRevision { .. }), "{err}");
    assert!(err.to_string().starts_with("changed.xml: revision "), "{err}");
    assert_eq!(look.counts(), before, "a failed batch changes nothing");
    let mut batch = store.begin_ingest().unwrap();
    let err = batch.add_documents(&bad).unwrap_err();
    assert!(matches!(err, StoreError::ConflictingRevision { .. }), "{err}");
    drop(batch);
    let mut batch = store.begin_ingest().unwrap();
    batch.add_documents(&docs[4..6]).unwrap();
    batch.set_setting("test.marker", "dropped").unwrap();
    assert_eq!(batch.setting("test.marker").unwrap().as_deref(), Some("dropped"));
    drop(batch);
    assert_eq!(look.counts(), before, "a dropped batch changes nothing");
    assert!(look.texts("SELECT value FROM settings WHERE key = 'test.marker'").is_empty());

    // Batches of two: 4..8 commit in two batches, 8..9 and the conflict roll back.
    let mut bad = docs[4..9].to_vec();
    bad.push(("changed.xml".into(), conflicting(&docs[1].1)));
    let mut marks = Vec::new();
    let mut before_commit = |rows: &mut dyn IngestRows, done: u64| {
        marks.push(done);
        rows.set_setting("test.done", &done.to_string())
    };
    let mut progress = Vec::new();
    let mut on_progress = |done: u64, _bytes: u64| progress.push(done);
    let options = IngestOptions {
        commit_every: Some(2),
        progress: Some(&mut on_progress),
        before_commit: Some(&mut before_commit),
        on_document: None,
    };
    let err = store.ingest_stream(stream(&bad), options).unwrap_err();
    assert!(matches!(err, StoreError::ConflictingRevision { .. }), "{err}");
    assert_eq!(marks, [2, 4]);
    assert_eq!(look.texts("SELECT value FROM settings WHERE key = 'test.done'"), ["4"]);
    assert_eq!(look.count("revisions"), 8, "the committed batches stay");
    assert_eq!(look.catalog_stamp().as_deref(), Some("3"), "one stamp per committed batch");
    // The ids the rolled-back documents had are not handed out again.
    let report = store.ingest_stream(stream(&docs[8..12]), IngestOptions::default()).unwrap();
    assert_eq!(report.added, 4);
    let mut seen = vec![format!("{:?}", look.counts())];
    seen.extend(
        look.revisions().iter().map(|r| r.split(' ').skip(1).collect::<Vec<_>>().join(" ")),
    );
    seen
}

#[test]
fn failed_batches_change_nothing_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = Store::open_or_create(dir.path()).unwrap();
    let on_sqlite = failure_contract(&mut *sqlite, &SqliteLook(dir.path().join("ferry.db")));
    let Some(db) = TestDatabase::new() else { return };
    let on_postgres = failure_contract(&mut PostgresStore::connect(&db.url).unwrap(), &PgLook(&db));
    assert_eq!(on_sqlite, on_postgres);
}

fn import_record(bundle_id: &str, sequence: u64) -> ImportRecord {
    ImportRecord {
        bundle_id: bundle_id.into(),
        channel: "main".into(),
        sequence,
        base_sequence: sequence.checked_sub(1).filter(|s| *s > 0),
        signer_key_id: "abcd".into(),
        created: "2026-01-01T00:00:00Z".into(),
        imported_at: format!("2026-01-0{sequence}T00:00:00Z"),
        revisions_added: 2,
        files_added: 1,
        bytes: 100,
    }
}

fn export_record(sequence: u64, base: Option<u64>) -> ExportRecord {
    ExportRecord {
        channel: "main".into(),
        sequence,
        bundle_id: format!("export-{sequence}"),
        base_sequence: base,
        created: "2026-02-01T00:00:00Z".into(),
        path: format!("/out/{sequence}"),
    }
}

/// Trusted keys, imports recorded inside an ingest, removals, and the export journal.
fn channel_contract<B: Backend + ?Sized>(store: &mut B) -> Vec<String> {
    let mut seen = Vec::new();
    assert!(store.add_trusted_key("AB12", "key-one", Some("first")).unwrap());
    assert!(!store.add_trusted_key("AB12", "other", None).unwrap(), "kept once");
    assert!(store.add_trusted_key("cd34", "key-two", None).unwrap());
    let keys = store.trusted_keys().unwrap();
    seen.extend(keys.iter().map(|k| format!("{} {} {:?}", k.key_id, k.public_key, k.comment)));
    assert!(store.remove_trusted_key("ab12").unwrap(), "case-insensitive");
    assert!(!store.remove_trusted_key("ab12").unwrap());
    seen.push(format!("{}", store.trusted_keys().unwrap().len()));

    let docs = documents(3);
    for (i, bundle) in ["bundle-1", "bundle-2"].iter().enumerate() {
        let mut batch = store.begin_ingest().unwrap();
        batch.add_documents(&docs).unwrap();
        batch
            .record_import(&import_record(bundle, i as u64 + 1), &format!("{{\"n\":{i}}}"))
            .unwrap();
        batch.record_removal("0000aaaa-0000-4000-8000-000000000000", "expired", bundle).unwrap();
        batch.commit().unwrap();
    }
    let show = |r: &ImportRecord| serde_json::to_string(r).unwrap();
    seen.push(show(&store.import_by_id("bundle-1").unwrap().unwrap()));
    assert!(store.import_by_id("bundle-9").unwrap().is_none());
    seen.push(show(&store.last_import("main").unwrap().unwrap()));
    assert!(store.last_import("other").unwrap().is_none());
    seen.extend(store.imports().unwrap().iter().map(show));
    seen.push(format!("{:?}", store.import_manifest("bundle-2").unwrap()));
    seen.push(format!("{:?}", store.removed_update_ids().unwrap()));

    let items = |n: &str| vec![format!("{n}-a"), format!("{n}-b")];
    store.record_pending_export(&export_record(1, None), &[("update", items("u1"))]).unwrap();
    seen.push(format!(
        "{:?} {}",
        store.pending_exports("main").unwrap(),
        store.last_export_sequence("main").unwrap()
    ));
    store.confirm_export("main", 1).unwrap();
    store
        .record_pending_export(
            &export_record(2, Some(1)),
            &[("update", items("u2")), ("file", items("f2"))],
        )
        .unwrap();
    store.confirm_export("main", 2).unwrap();
    store.record_pending_export(&export_record(3, Some(2)), &[("update", items("u3"))]).unwrap();
    let err = store.record_pending_export(&export_record(3, Some(2)), &[]).unwrap_err();
    seen.push(err.to_string().split(": ").nth(1).unwrap_or_default().to_string());
    seen.push(format!("{:?}", store.export_chain("main").unwrap()));
    seen.push(format!("{:?}", store.pending_exports("main").unwrap()));
    seen.push(store.last_export_sequence("main").unwrap().to_string());
    let mut carried: Vec<String> =
        store.carried("main", "update", 2).unwrap().into_iter().collect();
    carried.sort();
    seen.push(format!("{carried:?}"));
    store.discard_pending_export("main", 3).unwrap();
    seen.push(format!("{:?}", store.pending_exports("main").unwrap()));
    assert!(store.carried("main", "update", 3).unwrap().is_empty());
    store.record_pending_export(&export_record(4, None), &[]).unwrap();
    store.confirm_export("main", 4).unwrap();
    seen.push(format!("{:?}", store.export_chain("main").unwrap()));
    seen
}

#[test]
fn channel_state_behaves_alike_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = Store::open_or_create(dir.path()).unwrap();
    let on_sqlite = channel_contract(&mut *sqlite);
    let Some(db) = TestDatabase::new() else { return };
    let on_postgres = channel_contract(&mut PostgresStore::connect(&db.url).unwrap());
    assert_eq!(on_sqlite, on_postgres);
}

/// Two front ends load the same documents at once: each revision is stored once, under one id.
#[test]
fn front_ends_ingesting_at_once_store_each_revision_once() {
    let Some(db) = TestDatabase::new() else { return };
    PostgresStore::connect(&db.url).unwrap();
    let docs = documents(40);
    let barrier = std::sync::Barrier::new(2);
    let reports: Vec<_> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let (url, docs, barrier) = (&db.url, &docs, &barrier);
                scope.spawn(move || {
                    let mut store = PostgresStore::connect(url).unwrap();
                    barrier.wait();
                    let options = IngestOptions { commit_every: Some(7), ..Default::default() };
                    store.ingest_stream(stream(docs), options).unwrap()
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(reports.iter().map(|r| r.added).sum::<u64>(), 40, "{reports:?}");
    assert_eq!(reports.iter().map(|r| r.unchanged).sum::<u64>(), 40, "{reports:?}");
    let look = PgLook(&db);
    assert_eq!(look.count("revisions"), 40);
    let latest = look.texts("SELECT count(*) || '' FROM revisions WHERE is_latest");
    let updates = look.texts("SELECT count(DISTINCT update_id) || '' FROM revisions");
    assert_eq!(latest, updates, "one latest revision per update");
}

/// The same bundle imported on two front ends at once: one import, the other refused, and the
/// refused one changed nothing.
#[test]
fn the_same_bundle_imported_twice_at_once_is_imported_once() {
    let Some(db) = TestDatabase::new() else { return };
    PostgresStore::connect(&db.url).unwrap();
    let docs = documents(10);
    let barrier = std::sync::Barrier::new(2);
    let results: Vec<_> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let (url, docs, barrier) = (&db.url, &docs, &barrier);
                scope.spawn(move || {
                    let mut store = PostgresStore::connect(url).unwrap();
                    barrier.wait();
                    let mut batch = store.begin_ingest()?;
                    batch.add_documents(docs)?;
                    batch.record_import(&import_record("bundle-1", 1), "{}")?;
                    batch.commit()
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let refused: Vec<String> =
        results.iter().filter_map(|r| r.as_ref().err()).map(|e| e.to_string()).collect();
    assert_eq!(refused.len(), 1, "{results:?}");
    assert!(refused[0].contains("bundle bundle-1 was imported meanwhile"), "{refused:?}");
    let look = PgLook(&db);
    assert_eq!((look.count("imports"), look.count("revisions")), (1, 10));
}

/// Revision ids are an `integer` identity: past 2^31 - 1 the ingest fails as on SQLite, and
/// changes nothing.
#[test]
fn exhausted_revision_ids_are_refused() {
    let Some(db) = TestDatabase::new() else { return };
    let mut store = PostgresStore::connect(&db.url).unwrap();
    db.client()
        .batch_execute("ALTER TABLE revisions ALTER COLUMN revision_id RESTART WITH 2147483647")
        .unwrap();
    let err = store.ingest_stream(stream(&documents(2)), IngestOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::RevisionIdsExhausted), "{err}");
    assert_eq!(PgLook(&db).count("revisions"), 0);
}

/// After a statement failed, PostgreSQL would answer `COMMIT` with a silent rollback: the
/// batch's commit says it was not committed instead of reporting success.
#[test]
fn a_batch_whose_statement_failed_does_not_report_a_commit() {
    let Some(db) = TestDatabase::new() else { return };
    let mut store = PostgresStore::connect(&db.url).unwrap();
    let mut batch = store.begin_ingest().unwrap();
    batch.add_documents(&documents(3)).unwrap();
    // Text with a NUL byte is not valid in PostgreSQL text.
    let err = batch.record_removal("nul\0update", "expired", "bundle-1").unwrap_err();
    assert!(err.to_string().contains("recording a removed update"), "{err}");
    let err = batch.commit().unwrap_err();
    assert!(matches!(err, StoreError::Aborted(_)), "{err}");
    assert!(err.to_string().contains("was not committed"), "{err}");
    assert_eq!(PgLook(&db).count("revisions"), 0);
    // The connection went back to the pool usable.
    let report = store.ingest_stream(stream(&documents(3)), IngestOptions::default()).unwrap();
    assert_eq!(report.added, 3);
}

/// A revision arriving again with more languages stays unchanged and gains them; files are
/// described by the metadata and marked present in the batch.
fn languages_and_files_contract<B: Backend + ?Sized>(
    store: &mut B,
    look: &dyn Look,
) -> Vec<String> {
    let english = documents_in(80, &["en"]);
    store.ingest_stream(stream(&english), IngestOptions::default()).unwrap();
    let before = look.count("localized_properties");
    let mut batch = store.begin_ingest().unwrap();
    let outcomes = batch.add_documents(&documents(80)).unwrap();
    let report = batch.commit().unwrap();
    assert_eq!((report.added, report.unchanged), (0, 80), "{outcomes:?}");
    let after = look.count("localized_properties");
    assert!(after > before, "German added: {before} -> {after}");

    let file = store.catalog_revisions().unwrap().into_iter().flat_map(|r| r.files).next();
    let file = file.expect("generated updates have files");
    assert!(!file.present);
    let mut batch = store.begin_ingest().unwrap();
    let described = batch.described_file(&file.sha1).unwrap().expect("described");
    assert_eq!(
        (described.size, described.sha256, &described.extension),
        (file.size, file.sha256, &file.extension)
    );
    let unknown = ferry::catalog::Sha1Digest::from_slice(&[0u8; 20]).unwrap();
    assert!(batch.described_file(&unknown).unwrap().is_none());
    batch.mark_present(&file.sha1).unwrap();
    batch.commit().unwrap();
    let present: Vec<_> = store
        .catalog_revisions()
        .unwrap()
        .into_iter()
        .flat_map(|r| r.files)
        .filter(|f| f.present)
        .map(|f| f.sha1.to_string())
        .collect();
    assert!(present.iter().all(|p| *p == file.sha1.to_string()) && !present.is_empty());
    vec![format!("{before} {after} {:?}", look.counts()), file.sha1.to_string()]
}

#[test]
fn languages_and_files_behave_alike_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = Store::open_or_create(dir.path()).unwrap();
    let look = SqliteLook(dir.path().join("ferry.db"));
    let on_sqlite = languages_and_files_contract(&mut *sqlite, &look);
    let Some(db) = TestDatabase::new() else { return };
    let mut postgres = PostgresStore::connect(&db.url).unwrap();
    let on_postgres = languages_and_files_contract(&mut postgres, &PgLook(&db));
    assert_eq!(on_sqlite, on_postgres);
}

/// Longer than a PostgreSQL batch keeps its rows before sending them (1,024 revisions).
const LONG: usize = 1500;

/// One batch longer than what the PostgreSQL backend keeps pending: its rows go in rounds, and
/// newer revisions of updates sent in an earlier round retire them, documents met again in the
/// batch are unchanged under their ids, and the files of every round are described before the
/// commit. The same stream again is unchanged document for document.
fn long_batch_contract<B: Backend + ?Sized>(store: &mut B, look: &dyn Look) -> Vec<String> {
    let mut docs = documents(LONG);
    docs.extend_from_within(..40);
    docs.extend_from_within(LONG - 20..LONG);
    let files: Vec<ferry::catalog::Sha1Digest> = docs
        .iter()
        .flat_map(|(_, d)| ferry::catalog::parse_update(d).unwrap().update.files)
        .map(|f| f.sha1)
        .collect();
    assert!(files.len() > LONG / 4, "{}", files.len());
    let mut described = Vec::new();
    let mut before_commit = |rows: &mut dyn IngestRows, done: u64| {
        assert_eq!(done, docs.len() as u64);
        for sha1 in &files {
            let d = rows.described_file(sha1)?.expect("described by the batch's documents");
            described.push(format!("{sha1} {} {:?} {}", d.size, d.sha256, d.extension));
        }
        rows.mark_present(&files[0])
    };
    let options = IngestOptions { before_commit: Some(&mut before_commit), ..Default::default() };
    let report = store.ingest_stream(stream(&docs), options).unwrap();
    assert_eq!((report.added, report.unchanged), (LONG as u64, 60));
    let counts = look.counts();
    let revisions = look.revisions();
    assert_eq!(revisions.len(), LONG);
    let ids: Vec<i32> =
        revisions.iter().map(|r| r.split(' ').next().unwrap().parse().unwrap()).collect();
    assert_eq!(ids, (1..=LONG as i32).collect::<Vec<_>>(), "ids follow the stream");

    let again = store.ingest_stream(stream(&docs), IngestOptions::default()).unwrap();
    assert_eq!((again.added, again.unchanged), (0, docs.len() as u64));
    assert_eq!(look.counts(), counts);
    assert_eq!(look.revisions(), revisions);
    let present = look.texts("SELECT count(*) || '' FROM files WHERE present");
    let mut seen = vec![format!("{counts:?} {present:?}")];
    seen.extend(revisions);
    seen.extend(described);
    seen
}

#[test]
fn a_long_batch_behaves_alike_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = Store::open_or_create(dir.path()).unwrap();
    let on_sqlite = long_batch_contract(&mut *sqlite, &SqliteLook(dir.path().join("ferry.db")));
    let Some(db) = TestDatabase::new() else { return };
    let mut postgres = PostgresStore::connect(&db.url).unwrap();
    let on_postgres = long_batch_contract(&mut postgres, &PgLook(&db));
    assert_eq!(on_sqlite, on_postgres);
}
