//! Loading update documents on PostgreSQL, one transaction per batch. Behaves as the SQLite
//! backend's `sqlite/ingest.rs` does (same outcomes, same errors, same invariants).
//!
//! A batch owns a pooled connection and drives `BEGIN`/`COMMIT` on it itself (`ROLLBACK` when
//! dropped uncommitted), rather than holding a `postgres::Transaction`: that borrows its client,
//! and `begin_ingest` hands out a batch that must not borrow the pool's guard. The statements a
//! batch runs for every document are prepared once per batch.
//!
//! Invariant: ingests run one after the other across front ends: each batch takes
//! `INGEST_LOCK` (a transaction-level advisory lock) before it reads anything, so `is_latest`,
//! the catalog stamp and "already stored" are decided on what the previous batch committed, and
//! an import recorded by another front end meanwhile is seen (`record_import` refuses it).

use super::{Connection, PostgresStore, database_error};

use crate::store::documents::{PreparedRevision, decompress, prepare_in_order};
use crate::store::ingest::*;
use crate::store::{StoreError, StoreResult, now_rfc3339};
use postgres::Statement;
use postgres::types::ToSql;
use std::cell::{Cell, RefCell};
use std::path::Path;

/// Held by every ingest batch until it ends ("ferryIng").
const INGEST_LOCK: i64 = 0x6665_7272_7949_6e67;

/// The identity of `revisions.revision_id` reached its maximum (`integer`, 2^31 - 1).
const SEQUENCE_EXHAUSTED: &str = "2200H";

type Params<'a> = [&'a (dyn ToSql + Sync)];

/// The statements run for every document, prepared once per batch.
struct Statements {
    lookup: Statement,
    newest: Statement,
    retire: Statement,
    insert_revision: Statement,
    insert_document: Statement,
    stored_fragments: Statement,
    stored_localized: Statement,
    insert_localized: Statement,
    insert_prerequisite: Statement,
    insert_member: Statement,
    insert_superseded: Statement,
    insert_file: Statement,
    stored_file: Statement,
    link_file: Statement,
    unremove: Statement,
    mark_present: Statement,
}

impl Statements {
    fn prepare(client: &mut Connection) -> Result<Statements, postgres::Error> {
        Ok(Statements {
            lookup: client.prepare("SELECT revision_id, fragments_digest FROM revisions WHERE update_id = $1 AND revision_number = $2")?,
            newest: client.prepare("SELECT max(revision_number) FROM revisions WHERE update_id = $1")?,
            retire: client.prepare("UPDATE revisions SET is_latest = false WHERE update_id = $1 AND is_latest")?,
            insert_revision: client.prepare(
                "INSERT INTO revisions (update_id, revision_number, update_type, category_kind, is_bundle, explicitly_deployable,
                    publication_state, title, kb_article, security_bulletin, msrc_severity, creation_date, handler, default_language,
                    core_size, document_size, fragments_digest, changed_stamp, ingested_at, is_latest, languages)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
                 RETURNING revision_id",
            )?,
            insert_document: client.prepare("INSERT INTO revision_documents (revision_id, document, core, extended) VALUES ($1, $2, $3, $4)")?,
            stored_fragments: client.prepare("SELECT core, extended FROM revision_documents WHERE revision_id = $1")?,
            stored_localized: client.prepare("SELECT fragment FROM localized_properties WHERE revision_id = $1 AND language = $2")?,
            insert_localized: client.prepare("INSERT INTO localized_properties (revision_id, language, title, description, fragment) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")?,
            insert_prerequisite: client.prepare("INSERT INTO prerequisites (revision_id, clause, update_id, is_category) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")?,
            insert_member: client.prepare("INSERT INTO bundle_members (revision_id, clause, member_update_id, member_revision_number) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")?,
            insert_superseded: client.prepare("INSERT INTO supersedences (revision_id, superseded_update_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")?,
            insert_file: client.prepare("INSERT INTO files (sha1, sha256, size, file_name, extension, modified, patching_type) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sha1) DO NOTHING")?,
            stored_file: client.prepare("SELECT sha256, size FROM files WHERE sha1 = $1")?,
            link_file: client.prepare("INSERT INTO revision_files (revision_id, sha1) VALUES ($1, $2) ON CONFLICT DO NOTHING")?,
            unremove: client.prepare("DELETE FROM removed_updates WHERE update_id = $1")?,
            mark_present: client.prepare("UPDATE files SET present = true WHERE sha1 = $1")?,
        })
    }
}

/// An open ingest transaction on a connection of its own. Dropping it without
/// [`IngestRows::commit`] rolls everything back.
pub struct PgIngestBatch {
    conn: RefCell<Connection>,
    statements: Statements,
    database: String,
    stamp: i64,
    now: String,
    report: IngestReport,
    /// Until committed: `Drop` rolls back.
    open: bool,
    /// A statement failed: PostgreSQL aborted the transaction, and would answer `COMMIT` with a
    /// silent rollback, so `commit` refuses instead.
    failed: Cell<bool>,
}

impl Drop for PgIngestBatch {
    fn drop(&mut self) {
        if self.open {
            // A connection that cannot roll back is broken: the pool drops it (`has_broken`).
            let _ = self.conn.get_mut().batch_execute("ROLLBACK");
        }
    }
}

impl PgIngestBatch {
    fn fail<C: Into<String>>(
        &self,
        context: impl FnOnce() -> C,
    ) -> impl FnOnce(postgres::Error) -> StoreError {
        move |e| {
            self.failed.set(true);
            database_error(&self.database, &context().into(), &e)
        }
    }

    fn execute(&self, statement: &Statement, params: &Params<'_>) -> Result<u64, postgres::Error> {
        self.conn.borrow_mut().execute(statement, params)
    }

    fn query_opt(
        &self,
        statement: &Statement,
        params: &Params<'_>,
    ) -> Result<Option<postgres::Row>, postgres::Error> {
        self.conn.borrow_mut().query_opt(statement, params)
    }

    /// `Some` when the revision is stored already: unchanged (perhaps with languages added), or
    /// in conflict with what is stored.
    fn stored_already(
        &mut self,
        prepared: &PreparedRevision,
        update_id: &str,
    ) -> StoreResult<Option<AddOutcome>> {
        let id = prepared.update.identity;
        let existing = self
            .query_opt(&self.statements.lookup, &[&update_id, &id.revision_number])
            .and_then(|row| {
                row.map(|r| Ok((r.try_get::<_, i32>(0)?, r.try_get::<_, Vec<u8>>(1)?))).transpose()
            })
            .map_err(self.fail(|| format!("looking up revision {id}")))?;
        let Some((revision_id, stored_digest)) = existing else { return Ok(None) };
        if stored_digest[..] == prepared.digest[..] {
            self.report.unchanged += 1;
            return Ok(Some(AddOutcome::Unchanged { revision_id }));
        }
        // The same revision with the localized properties of other languages: the languages it
        // did not have yet are added; the stored document stays (as on SQLite).
        if self.same_but_languages(revision_id, prepared)? {
            self.store_localized(revision_id, prepared)?;
            self.report.unchanged += 1;
            return Ok(Some(AddOutcome::Unchanged { revision_id }));
        }
        Err(StoreError::ConflictingRevision { document: prepared.source.clone(), identity: id })
    }

    /// Whether a stored revision and the prepared one differ only in which languages their
    /// localized properties have.
    fn same_but_languages(
        &self,
        revision_id: i32,
        prepared: &PreparedRevision,
    ) -> StoreResult<bool> {
        let id = prepared.update.identity;
        let stored: (Vec<u8>, Vec<u8>) = self
            .query_opt(&self.statements.stored_fragments, &[&revision_id])
            .and_then(|row| {
                let r = row.expect("a revision has its document (a foreign key)");
                Ok((r.try_get(0)?, r.try_get(1)?))
            })
            .map_err(self.fail(|| format!("reading the fragments of {id}")))?;
        let same = |a: &[u8], b: &[u8]| -> StoreResult<bool> {
            let what = format!("the fragments of {id}");
            let io = |e| StoreError::io(Path::new(&what), e);
            Ok(a == b || decompress(a, &what).map_err(io)? == decompress(b, &what).map_err(io)?)
        };
        if !(same(&stored.0, &prepared.core)? && same(&stored.1, &prepared.extended)?) {
            return Ok(false);
        }
        for (language, fragment) in &prepared.localized {
            let stored: Option<Vec<u8>> = self
                .query_opt(&self.statements.stored_localized, &[&revision_id, language])
                .and_then(|row| row.map(|r| r.try_get(0)).transpose())
                .map_err(self.fail(|| format!("reading the localized properties of {id}")))?;
            if stored.is_some_and(|s| s != fragment.as_bytes()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The revision's row and its document; its revision id (from the identity).
    fn insert_revision(
        &mut self,
        prepared: &PreparedRevision,
        update_id: &str,
        is_latest: bool,
    ) -> StoreResult<i32> {
        let (u, id) = (&prepared.update, prepared.update.identity);
        let title = u.localized_in("en").and_then(|l| l.title.clone());
        // As `revisions.languages` keeps them on SQLite: space-separated, NULL when neutral.
        let languages = (!u.languages.is_empty()).then(|| u.languages.join(" "));
        let row = self.conn.borrow_mut().query_one(
            &self.statements.insert_revision,
            &[
                &update_id,
                &id.revision_number,
                &u.update_type.as_str(),
                &u.category_kind.as_ref().map(|k| k.as_str()),
                &u.is_bundle(),
                &u.explicitly_deployable,
                &u.publication_state,
                &title,
                &u.kb_article_ids.first(),
                &u.security_bulletin_ids.first(),
                &u.msrc_severity,
                &u.creation_date,
                &u.handler,
                &u.default_language,
                &(prepared.core_len as i64),
                &(prepared.document_len as i64),
                &&prepared.digest[..],
                &self.stamp,
                &self.now,
                &is_latest,
                &languages,
            ],
        );
        let revision_id: i32 = match row.and_then(|r| r.try_get(0)) {
            Ok(revision_id) => revision_id,
            Err(e) if e.code().is_some_and(|c| c.code() == SEQUENCE_EXHAUSTED) => {
                return Err(StoreError::RevisionIdsExhausted);
            }
            Err(e) => return Err(self.fail(|| format!("storing revision {id}"))(e)),
        };
        self.execute(
            &self.statements.insert_document,
            &[&revision_id, &prepared.document, &prepared.core, &prepared.extended],
        )
        .map_err(self.fail(|| format!("storing the document of {id}")))?;
        Ok(revision_id)
    }

    /// Prerequisites, bundled updates and superseded updates of a new revision.
    fn store_relationships(
        &self,
        revision_id: i32,
        prepared: &PreparedRevision,
    ) -> StoreResult<()> {
        let (u, id) = (&prepared.update, prepared.update.identity);
        for (clause, group) in u.prerequisites.iter().enumerate() {
            let clause = clause as i32;
            for member in &group.update_ids {
                self.execute(
                    &self.statements.insert_prerequisite,
                    &[&revision_id, &clause, &member.to_string(), &group.is_category],
                )
                .map_err(self.fail(|| format!("storing prerequisites of {id}")))?;
            }
        }
        for (clause, group) in u.bundled_updates.iter().enumerate() {
            let clause = clause as i32;
            for member in &group.members {
                self.execute(
                    &self.statements.insert_member,
                    &[
                        &revision_id,
                        &clause,
                        &member.update_id.to_string(),
                        &member.revision_number,
                    ],
                )
                .map_err(self.fail(|| format!("storing bundled updates of {id}")))?;
            }
        }
        for superseded in &u.superseded_update_ids {
            self.execute(
                &self.statements.insert_superseded,
                &[&revision_id, &superseded.to_string()],
            )
            .map_err(self.fail(|| format!("storing superseded updates of {id}")))?;
        }
        Ok(())
    }

    /// Localized properties of a revision, in the languages it does not have yet.
    fn store_localized(&self, revision_id: i32, prepared: &PreparedRevision) -> StoreResult<()> {
        let (u, id) = (&prepared.update, prepared.update.identity);
        for (language, fragment) in &prepared.localized {
            let props = u.localized.iter().find(|l| &l.language == language);
            let title = props.and_then(|p| p.title.as_deref());
            let description = props.and_then(|p| p.description.as_deref());
            self.execute(
                &self.statements.insert_localized,
                &[&revision_id, language, &title, &description, &fragment.as_bytes()],
            )
            .map_err(self.fail(|| format!("storing localized properties of {id}")))?;
        }
        Ok(())
    }

    fn add_file(
        &self,
        source: &str,
        revision_id: i32,
        file: &crate::catalog::UpdateFile,
    ) -> StoreResult<()> {
        let sha1 = &file.sha1.0[..];
        let sha256 = file.sha256.map(|d| d.0.to_vec());
        let inserted = self
            .execute(
                &self.statements.insert_file,
                &[
                    &sha1,
                    &sha256,
                    &(file.size as i64),
                    &file.file_name,
                    &file.extension(),
                    &file.modified,
                    &file.patching_type,
                ],
            )
            .map_err(self.fail(|| format!("storing file {}", file.sha1)))?;
        if inserted == 0 {
            self.check_known_file(source, file)?;
        }
        self.execute(&self.statements.link_file, &[&revision_id, &sha1])
            .map_err(self.fail(|| format!("linking file {}", file.sha1)))?;
        Ok(())
    }

    /// A file known already: the metadata must agree on what it is; a SHA-256 learned now is kept.
    fn check_known_file(&self, source: &str, file: &crate::catalog::UpdateFile) -> StoreResult<()> {
        let sha1 = &file.sha1.0[..];
        let (stored_sha256, stored_size): (Option<Vec<u8>>, i64) = self
            .query_opt(&self.statements.stored_file, &[&sha1])
            .and_then(|row| {
                let r = row.expect("the insert found it");
                Ok((r.try_get(0)?, r.try_get(1)?))
            })
            .map_err(self.fail(|| format!("looking up file {}", file.sha1)))?;
        let sha_differs =
            matches!((&stored_sha256, &file.sha256), (Some(a), Some(b)) if a[..] != b.0[..]);
        if sha_differs || stored_size as u64 != file.size {
            let hex = |v: Option<&[u8]>| v.map(hex::encode).unwrap_or_else(|| "(none)".into());
            return Err(StoreError::ConflictingFile(Box::new(crate::store::error::FileConflict {
                document: source.to_string(),
                sha1: file.sha1.to_hex_upper(),
                file_name: file.file_name.clone(),
                stored_size: stored_size as u64,
                stored_sha256: hex(stored_sha256.as_deref()),
                size: file.size,
                sha256: hex(file.sha256.as_ref().map(|d| &d.0[..])),
            })));
        }
        if stored_sha256.is_none() {
            if let Some(sha256) = file.sha256 {
                self.conn
                    .borrow_mut()
                    .execute(
                        "UPDATE files SET sha256 = $2 WHERE sha1 = $1",
                        &[&sha1, &&sha256.0[..]],
                    )
                    .map_err(
                        self.fail(|| format!("recording the SHA-256 of file {}", file.sha1)),
                    )?;
            }
        }
        Ok(())
    }

    /// Runs one statement of the batch's transaction (`ChannelRows`).
    pub(super) fn run(&self, sql: &str, params: &Params<'_>, context: &str) -> StoreResult<u64> {
        self.conn.borrow_mut().execute(sql, params).map_err(self.fail(|| context))
    }
}

impl IngestRows for PgIngestBatch {
    fn stamp(&self) -> i64 {
        self.stamp
    }

    fn add_prepared(&mut self, prepared: &PreparedRevision) -> StoreResult<AddOutcome> {
        let id = prepared.update.identity;
        let update_id = id.update_id.to_string();
        self.report.document_bytes += prepared.document_len as u64;
        if let Some(outcome) = self.stored_already(prepared, &update_id)? {
            return Ok(outcome);
        }
        let newest_stored: Option<i32> = self
            .query_opt(&self.statements.newest, &[&update_id])
            .and_then(|row| row.map_or(Ok(None), |r| r.try_get(0)))
            .map_err(self.fail(|| format!("looking up revisions of {}", id.update_id)))?;
        let is_latest = newest_stored.is_none_or(|n| n < id.revision_number);
        if is_latest && newest_stored.is_some() {
            self.execute(&self.statements.retire, &[&update_id])
                .map_err(self.fail(|| format!("marking older revisions of {}", id.update_id)))?;
        }
        let revision_id = self.insert_revision(prepared, &update_id, is_latest)?;
        self.store_localized(revision_id, prepared)?;
        self.store_relationships(revision_id, prepared)?;
        for file in &prepared.update.files {
            self.add_file(&prepared.source, revision_id, file)?;
        }
        // A newer revision of a withdrawn update brings it back.
        self.execute(&self.statements.unremove, &[&update_id])
            .map_err(self.fail(|| format!("clearing a removal of {}", id.update_id)))?;
        self.report.added += 1;
        Ok(AddOutcome::Added { revision_id })
    }

    fn described_file(
        &mut self,
        sha1: &crate::catalog::Sha1Digest,
    ) -> StoreResult<Option<DescribedFile>> {
        let row = self
            .conn
            .borrow_mut()
            .query_opt("SELECT sha256, size, extension FROM files WHERE sha1 = $1", &[&&sha1.0[..]])
            .map_err(self.fail(|| format!("reading file {sha1}")))?;
        row.map(|r| {
            let sha256: Option<Vec<u8>> = r.try_get(0)?;
            Ok(DescribedFile {
                sha256: sha256.as_deref().and_then(crate::catalog::Sha256Digest::from_slice),
                size: r.try_get::<_, i64>(1)? as u64,
                extension: r.try_get(2)?,
            })
        })
        .transpose()
        .map_err(self.fail(|| format!("reading file {sha1}")))
    }

    fn mark_present(&mut self, sha1: &crate::catalog::Sha1Digest) -> StoreResult<()> {
        self.execute(&self.statements.mark_present, &[&&sha1.0[..]])
            .map_err(self.fail(|| format!("marking file {sha1} present")))?;
        Ok(())
    }

    fn set_setting(&mut self, key: &str, value: &str) -> StoreResult<()> {
        self.run(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
            &format!("writing setting {key}"),
        )?;
        Ok(())
    }

    fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        let row = self
            .conn
            .borrow_mut()
            .query_opt("SELECT value FROM settings WHERE key = $1", &[&key])
            .map_err(self.fail(|| format!("reading setting {key}")))?;
        row.map(|r| r.try_get(0))
            .transpose()
            .map_err(self.fail(|| format!("reading setting {key}")))
    }

    fn report(&self) -> IngestReport {
        self.report
    }

    fn commit(mut self: Box<Self>) -> StoreResult<IngestReport> {
        if self.failed.get() {
            return Err(StoreError::Aborted(format!(
                "database {}: the ingest batch was not committed: a statement in it failed, so it was rolled back",
                self.database
            )));
        }
        if self.report.added > 0 {
            self.run(
                "INSERT INTO settings (key, value) VALUES ('catalog_stamp', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&self.stamp.to_string()],
                "advancing the catalog stamp",
            )?;
            super::changes::announce(&mut **self.conn.get_mut(), super::changes::Change::Catalog)
                .map_err(self.fail(|| "announcing the new catalog"))?;
        }
        self.conn
            .get_mut()
            .batch_execute("COMMIT")
            .map_err(self.fail(|| "committing the ingest batch"))?;
        self.open = false;
        Ok(self.report)
    }
}

impl PostgresStore {
    /// A batch: a pooled connection in a transaction that holds `INGEST_LOCK`, under the next
    /// catalog stamp.
    fn begin_batch(&self) -> StoreResult<PgIngestBatch> {
        let mut conn = self.connection()?;
        conn.batch_execute("BEGIN").map_err(self.fail("starting an ingest transaction"))?;
        // From here on, dropping the batch rolls back.
        let mut batch = PgIngestBatch {
            statements: Statements::prepare(&mut conn)
                .map_err(self.fail("preparing the ingest statements"))?,
            conn: RefCell::new(conn),
            database: self.url.to_string(),
            stamp: 0,
            now: now_rfc3339(),
            report: IngestReport::default(),
            open: true,
            failed: Cell::new(false),
        };
        let conn = batch.conn.get_mut();
        conn.execute("SELECT pg_advisory_xact_lock($1)", &[&INGEST_LOCK])
            .map_err(self.fail("waiting for another front end's ingest"))?;
        let stamp: Option<String> = conn
            .query_opt("SELECT value FROM settings WHERE key = 'catalog_stamp'", &[])
            .and_then(|row| row.map(|r| r.try_get(0)).transpose())
            .map_err(self.fail("reading the catalog stamp"))?;
        // As SQLite's CAST: a damaged value counts as 0.
        batch.stamp = stamp.map_or(0, |v| v.trim().parse::<i64>().unwrap_or(0)) + 1;
        Ok(batch)
    }
}

impl IngestStorage for PostgresStore {
    fn begin_ingest(&mut self) -> StoreResult<Box<dyn IngestRows + '_>> {
        Ok(Box::new(self.begin_batch()?))
    }

    fn ingest_stream(
        &mut self,
        documents: Documents<'_>,
        options: IngestOptions<'_>,
    ) -> StoreResult<IngestReport> {
        let IngestOptions { commit_every, mut progress, mut before_commit } = options;
        let mut before_commit =
            move |batch: &mut dyn IngestRows, done: u64| match before_commit.as_mut() {
                Some(f) => f(batch, done),
                None => Ok(()),
            };
        std::thread::scope(|scope| {
            let mut total = IngestReport::default();
            let mut batch = self.begin_ingest()?;
            let (mut in_batch, mut done) = (0usize, 0u64);
            for (prepared, end_of_batch) in prepare_in_order(scope, documents) {
                let (prepared, present) = prepared?;
                batch.add_prepared(&prepared)?;
                for sha1 in &present {
                    batch.mark_present(sha1)?;
                }
                (in_batch, done) = (in_batch + 1, done + 1);
                if commit_every.is_some_and(|n| in_batch >= n) {
                    before_commit(&mut *batch, done)?;
                    total.add(batch.commit()?);
                    batch = self.begin_ingest()?;
                    in_batch = 0;
                }
                if let Some(p) = progress.as_mut().filter(|_| end_of_batch) {
                    p(done, total.document_bytes + batch.report().document_bytes);
                }
            }
            before_commit(&mut *batch, done)?;
            total.add(batch.commit()?);
            StoreResult::Ok(total)
        })
    }
}
