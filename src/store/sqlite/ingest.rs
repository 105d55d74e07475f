//! Loading update documents into the catalog, one transaction per batch.

use crate::catalog::parse_update;
use crate::store::documents::{PreparedRevision, decompress, prepare_in_order};
use crate::store::ingest::*;
use crate::store::{SqliteStore, StoreError, StoreResult, now_rfc3339};
use rusqlite::{OptionalExtension, Transaction, params};
use std::path::PathBuf;

/// An open ingest transaction. Dropping it without [`IngestBatch::commit`] rolls everything back.
pub struct IngestBatch<'s> {
    tx: Transaction<'s>,
    db: PathBuf,
    stamp: i64,
    now: String,
    report: IngestReport,
}

/// A newer revision arrived: its update's older revisions stop being what clients see.
pub(crate) const RETIRE_OLDER_REVISIONS: &str =
    "UPDATE revisions SET is_latest = 0 WHERE update_id = ?1 AND is_latest = 1";

/// `Properties/Language` as the `revisions.languages` column keeps it: space-separated, NULL
/// for a language-neutral update.
pub(crate) fn stored_languages(languages: &[String]) -> Option<String> {
    (!languages.is_empty()).then(|| languages.join(" "))
}

impl IngestBatch<'_> {
    /// `Some` when the revision is stored already: unchanged (perhaps with languages added), or
    /// in conflict with what is stored.
    fn stored_already(
        &mut self,
        prepared: &PreparedRevision,
        update_id: &str,
    ) -> StoreResult<Option<AddOutcome>> {
        let (id, digest) = (prepared.update.identity, prepared.digest);
        let existing: Option<(i32, Vec<u8>)> = self
            .tx
            .prepare_cached("SELECT revision_id, fragments_digest FROM revisions WHERE update_id = ?1 AND revision_number = ?2")
            .and_then(|mut s| s.query_row(params![update_id, id.revision_number], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(self.err(|| format!("looking up revision {id}")))?;
        if let Some((revision_id, stored_digest)) = existing {
            if stored_digest[..] == digest[..] {
                self.report.unchanged += 1;
                return Ok(Some(AddOutcome::Unchanged { revision_id }));
            }
            // The same revision with the localized properties of other languages (bundles carry
            // only the languages a site keeps): what clients see of it otherwise is the same, so
            // the languages it did not have yet are added; the stored document stays.
            if self.same_but_languages(revision_id, prepared)? {
                self.store_localized(revision_id, prepared)?;
                self.report.unchanged += 1;
                return Ok(Some(AddOutcome::Unchanged { revision_id }));
            }
            return Err(StoreError::ConflictingRevision {
                document: prepared.source.clone(),
                identity: id,
            });
        }
        Ok(None)
    }

    /// The revision's row and its document; its revision id.
    fn insert_revision(
        &mut self,
        prepared: &PreparedRevision,
        update_id: &str,
        is_latest: bool,
    ) -> StoreResult<i32> {
        let (u, id, digest) = (&prepared.update, prepared.update.identity, prepared.digest);
        let english = u.localized_in("en");
        let title = english.and_then(|l| l.title.clone());
        self.tx
            .prepare_cached(
                "INSERT INTO revisions (update_id, revision_number, update_type, category_kind, is_bundle, explicitly_deployable,
                    publication_state, title, kb_article, security_bulletin, msrc_severity, creation_date, handler, default_language,
                    core_size, document_size, fragments_digest, changed_stamp, ingested_at, is_latest, languages)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    update_id,
                    id.revision_number,
                    u.update_type.as_str(),
                    u.category_kind.as_ref().map(|k| k.as_str()),
                    u.is_bundle(),
                    u.explicitly_deployable,
                    u.publication_state,
                    title,
                    u.kb_article_ids.first(),
                    u.security_bulletin_ids.first(),
                    u.msrc_severity,
                    u.creation_date,
                    u.handler,
                    u.default_language,
                    prepared.core_len as i64,
                    prepared.document_len as i64,
                    &digest[..],
                    self.stamp,
                    self.now,
                    is_latest,
                    stored_languages(&u.languages),
                ])
            })
            .map_err(self.err(|| format!("storing revision {id}")))?;
        let rowid = self.tx.last_insert_rowid();
        let revision_id = i32::try_from(rowid).map_err(|_| StoreError::RevisionIdsExhausted)?;
        self.tx
            .prepare_cached("INSERT INTO revision_documents (revision_id, document, core, extended) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![revision_id, prepared.document, prepared.core, prepared.extended]))
            .map_err(self.err(|| format!("storing the document of {id}")))?;
        Ok(revision_id)
    }

    /// Prerequisites, bundled updates and superseded updates of a new revision.
    fn store_relationships(
        &mut self,
        revision_id: i32,
        prepared: &PreparedRevision,
    ) -> StoreResult<()> {
        let (u, id) = (&prepared.update, prepared.update.identity);
        for (clause, group) in u.prerequisites.iter().enumerate() {
            for member in &group.update_ids {
                self.tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO prerequisites (revision_id, clause, update_id, is_category) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .and_then(|mut s| s.execute(params![revision_id, clause as i64, member.to_string(), group.is_category]))
                    .map_err(self.err(|| format!("storing prerequisites of {id}")))?;
            }
        }
        for (clause, group) in u.bundled_updates.iter().enumerate() {
            for member in &group.members {
                self.tx
                    .prepare_cached("INSERT OR IGNORE INTO bundle_members (revision_id, clause, member_update_id, member_revision_number) VALUES (?1, ?2, ?3, ?4)")
                    .and_then(|mut s| s.execute(params![revision_id, clause as i64, member.update_id.to_string(), member.revision_number]))
                    .map_err(self.err(|| format!("storing bundled updates of {id}")))?;
            }
        }
        for superseded in &u.superseded_update_ids {
            self.tx
                .prepare_cached("INSERT OR IGNORE INTO supersedences (revision_id, superseded_update_id) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![revision_id, superseded.to_string()]))
                .map_err(self.err(|| format!("storing superseded updates of {id}")))?;
        }
        Ok(())
    }

    /// Localized properties of a revision, in the languages it does not have yet.
    fn store_localized(
        &mut self,
        revision_id: i32,
        prepared: &PreparedRevision,
    ) -> StoreResult<()> {
        let (u, id) = (&prepared.update, prepared.update.identity);
        for (language, fragment) in &prepared.localized {
            let props = u.localized.iter().find(|l| &l.language == language);
            self.tx
                .prepare_cached("INSERT OR IGNORE INTO localized_properties (revision_id, language, title, description, fragment) VALUES (?1, ?2, ?3, ?4, ?5)")
                .and_then(|mut s| {
                    s.execute(params![revision_id, language, props.and_then(|p| p.title.as_deref()), props.and_then(|p| p.description.as_deref()), fragment.as_bytes()])
                })
                .map_err(self.err(|| format!("storing localized properties of {id}")))?;
        }
        Ok(())
    }

    /// Whether a stored revision and the prepared one differ only in which languages their
    /// localized properties have: the same Core and Extended fragments, and the same localized
    /// fragment for every language both have.
    fn same_but_languages(
        &self,
        revision_id: i32,
        prepared: &PreparedRevision,
    ) -> StoreResult<bool> {
        let id = prepared.update.identity;
        let stored: (Vec<u8>, Vec<u8>) = self
            .tx
            .prepare_cached("SELECT core, extended FROM revision_documents WHERE revision_id = ?1")
            .and_then(|mut s| s.query_row([revision_id], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(self.err(|| format!("reading the fragments of {id}")))?;
        if !prepared.fragments_match(&stored.0, &stored.1)? {
            return Ok(false);
        }
        // A language both have must read the same: only languages may come or go.
        let mut stmt = self
            .tx
            .prepare_cached("SELECT fragment FROM localized_properties WHERE revision_id = ?1 AND language = ?2")
            .map_err(self.err(|| format!("reading the localized properties of {id}")))?;
        for (language, fragment) in &prepared.localized {
            let stored: Option<Vec<u8>> = stmt
                .query_row(params![revision_id, language], |r| r.get(0))
                .optional()
                .map_err(self.err(|| format!("reading the localized properties of {id}")))?;
            if stored.is_some_and(|s| s != fragment.as_bytes()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Maps a database error, building its context only when there is an error.
    fn err<'a, C: Into<String>>(
        &'a self,
        context: impl FnOnce() -> C + 'a,
    ) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
        move |e| StoreError::sqlite(&self.db, context(), e)
    }

    fn add_file(
        &mut self,
        source: &str,
        revision_id: i32,
        file: &crate::catalog::UpdateFile,
    ) -> StoreResult<()> {
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO files (sha1, sha256, size, file_name, extension, modified, patching_type) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    &file.sha1.0[..],
                    file.sha256.map(|d| d.0.to_vec()),
                    file.size as i64,
                    file.file_name,
                    file.extension(),
                    file.modified,
                    file.patching_type,
                ])
            })
            .map_err(self.err(|| format!("storing file {}", file.sha1)))?;
        if inserted == 0 {
            // Known already: the metadata must agree on what the file is.
            let (stored_sha256, stored_size): (Option<Vec<u8>>, i64) = self
                .tx
                .prepare_cached("SELECT sha256, size FROM files WHERE sha1 = ?1")
                .and_then(|mut s| s.query_row([&file.sha1.0[..]], |r| Ok((r.get(0)?, r.get(1)?))))
                .map_err(self.err(|| format!("looking up file {}", file.sha1)))?;
            let sha_differs =
                matches!((&stored_sha256, &file.sha256), (Some(a), Some(b)) if a[..] != b.0[..]);
            if sha_differs || stored_size as u64 != file.size {
                let hex = |v: Option<&[u8]>| v.map(hex::encode).unwrap_or_else(|| "(none)".into());
                return Err(StoreError::ConflictingFile(Box::new(
                    crate::store::error::FileConflict {
                        document: source.to_string(),
                        sha1: file.sha1.to_hex_upper(),
                        file_name: file.file_name.clone(),
                        stored_size: stored_size as u64,
                        stored_sha256: hex(stored_sha256.as_deref()),
                        size: file.size,
                        sha256: hex(file.sha256.as_ref().map(|d| &d.0[..])),
                    },
                )));
            }
            if stored_sha256.is_none() && file.sha256.is_some() {
                self.tx
                    .execute(
                        "UPDATE files SET sha256 = ?2 WHERE sha1 = ?1",
                        params![&file.sha1.0[..], file.sha256.map(|d| d.0.to_vec())],
                    )
                    .map_err(self.err(|| format!("recording the SHA-256 of file {}", file.sha1)))?;
            }
        }
        self.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO revision_files (revision_id, sha1) VALUES (?1, ?2)",
            )
            .and_then(|mut s| s.execute(params![revision_id, &file.sha1.0[..]]))
            .map_err(self.err(|| format!("linking file {}", file.sha1)))?;
        Ok(())
    }

    pub(crate) fn execute(
        &mut self,
        sql: &str,
        params: impl rusqlite::Params,
        context: &str,
    ) -> StoreResult<()> {
        self.tx
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params))
            .map(|_| ())
            .map_err(self.err(|| context.to_string()))
    }
}

impl IngestRows for IngestBatch<'_> {
    fn stamp(&self) -> i64 {
        self.stamp
    }

    fn add_prepared(&mut self, prepared: &PreparedRevision) -> StoreResult<AddOutcome> {
        let (u, id) = (&prepared.update, prepared.update.identity);
        let update_id = id.update_id.to_string();
        self.report.document_bytes += prepared.document_len as u64;
        if let Some(outcome) = self.stored_already(prepared, &update_id)? {
            return Ok(outcome);
        }
        // Is this the newest revision of its update? (An index-only lookup.)
        let newest_stored: Option<i32> = self
            .tx
            .prepare_cached("SELECT MAX(revision_number) FROM revisions WHERE update_id = ?1")
            .and_then(|mut s| s.query_row([&update_id], |r| r.get(0)))
            .map_err(self.err(|| format!("looking up revisions of {}", id.update_id)))?;
        let is_latest = newest_stored.is_none_or(|n| n < id.revision_number);
        if is_latest && newest_stored.is_some() {
            self.tx
                .prepare_cached(RETIRE_OLDER_REVISIONS)
                .and_then(|mut s| s.execute([&update_id]))
                .map_err(self.err(|| format!("marking older revisions of {}", id.update_id)))?;
        }

        let revision_id = self.insert_revision(prepared, &update_id, is_latest)?;
        self.store_localized(revision_id, prepared)?;
        self.store_relationships(revision_id, prepared)?;
        for file in &u.files {
            self.add_file(&prepared.source, revision_id, file)?;
        }
        // A newer revision of a withdrawn update brings it back.
        self.tx
            .prepare_cached("DELETE FROM removed_updates WHERE update_id = ?1")
            .and_then(|mut s| s.execute([&update_id]))
            .map_err(self.err(|| format!("clearing a removal of {}", id.update_id)))?;
        self.report.added += 1;
        Ok(AddOutcome::Added { revision_id })
    }

    fn described_file(
        &mut self,
        sha1: &crate::catalog::Sha1Digest,
    ) -> StoreResult<Option<DescribedFile>> {
        self.tx
            .prepare_cached("SELECT sha256, size, extension FROM files WHERE sha1 = ?1")
            .and_then(|mut s| {
                s.query_row([&sha1.0[..]], |r| {
                    let sha256: Option<Vec<u8>> = r.get(0)?;
                    Ok(DescribedFile {
                        sha256: sha256
                            .as_deref()
                            .and_then(crate::catalog::Sha256Digest::from_slice),
                        size: r.get::<_, i64>(1)? as u64,
                        extension: r.get(2)?,
                    })
                })
                .optional()
            })
            .map_err(self.err(|| format!("reading file {sha1}")))
    }

    fn mark_present(&mut self, sha1: &crate::catalog::Sha1Digest) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE files SET present = 1 WHERE sha1 = ?1")
            .and_then(|mut s| s.execute([&sha1.0[..]]))
            .map_err(self.err(|| format!("marking file {sha1} present")))?;
        Ok(())
    }

    fn record_published(&mut self, record: &crate::store::PublishedRecord) -> StoreResult<()> {
        use super::published::{RECORD_PUBLISHED, record_params};
        self.tx
            .prepare_cached(RECORD_PUBLISHED)
            .and_then(|mut s| s.execute(&record_params(record)[..]))
            .map_err(self.err(|| format!("recording published update {}", record.update_id)))?;
        Ok(())
    }

    fn set_setting(&mut self, key: &str, value: &str) -> StoreResult<()> {
        self.tx
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map_err(self.err(|| format!("writing setting {key}")))?;
        Ok(())
    }

    fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        self.tx
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.err(|| format!("reading setting {key}")))
    }

    fn report(&self) -> IngestReport {
        self.report
    }

    fn commit(self: Box<Self>) -> StoreResult<IngestReport> {
        let db = self.db.clone();
        if self.report.added > 0 {
            self.tx
                .execute(
                    "INSERT INTO settings (key, value) VALUES ('catalog_stamp', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [self.stamp.to_string()],
                )
                .map_err(|e| StoreError::sqlite(&db, "advancing the catalog stamp", e))?;
        }
        let report = self.report;
        self.tx.commit().map_err(|e| StoreError::sqlite(&db, "committing the ingest batch", e))?;
        Ok(report)
    }
}

/// Every that many commits the writer lets the background checkpoint catch up, so the log
/// starts over instead of growing by the size of the load (see `checkpointer`).
const CATCH_UP_EVERY_COMMITS: u64 = 4;

/// Fills `revisions.languages` for the software and driver revisions a store held before schema
/// version 9, from their stored documents (through the one parser, so the rule is the same as at
/// ingest). Runs once, inside the migration's transaction; a document that no longer parses
/// stays language-neutral (`ferry check --deep` reports it).
pub(crate) fn backfill_languages(tx: &Transaction<'_>, db: &std::path::Path) -> StoreResult<()> {
    let err = |what: &str, e: rusqlite::Error| {
        StoreError::sqlite(db, format!("filling in update languages: {what}"), e)
    };
    let mut read = tx
        .prepare(
            "SELECT r.revision_id, d.document FROM revisions r JOIN revision_documents d USING (revision_id)
             WHERE r.update_type IN ('Software', 'Driver')",
        )
        .map_err(|e| err("reading documents", e))?;
    let mut write = tx
        .prepare("UPDATE revisions SET languages = ?2 WHERE revision_id = ?1")
        .map_err(|e| err("storing", e))?;
    let mut rows = read.query([]).map_err(|e| err("reading documents", e))?;
    while let Some(row) = rows.next().map_err(|e| err("reading documents", e))? {
        let revision_id: i32 = row.get(0).map_err(|e| err("reading documents", e))?;
        let compressed: Vec<u8> = row.get(1).map_err(|e| err("reading documents", e))?;
        let Ok(document) = decompress(&compressed, "a stored document") else { continue };
        let Ok(parsed) = parse_update(&document) else { continue };
        if let Some(languages) = stored_languages(&parsed.update.languages) {
            write.execute(params![revision_id, languages]).map_err(|e| err("storing", e))?;
        }
    }
    Ok(())
}

impl IngestStorage for SqliteStore {
    fn begin_ingest(&mut self) -> StoreResult<Box<dyn IngestRows + '_>> {
        let db = self.db_path();
        // IMMEDIATE: the batch reads the catalog stamp before it writes, and a deferred
        // transaction whose snapshot another writer (the server's client writes) moved past
        // fails at its first write with "database is locked", without waiting.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| StoreError::sqlite(&db, "starting an ingest transaction", e))?;
        let stamp: i64 = tx
            .query_row(
                "SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'catalog_stamp'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| StoreError::sqlite(&db, "reading the catalog stamp", e))?
            .unwrap_or(0)
            + 1;
        Ok(Box::new(IngestBatch {
            tx,
            db,
            stamp,
            now: now_rfc3339(),
            report: IngestReport::default(),
        }))
    }

    fn ingest_stream(
        &mut self,
        documents: Documents<'_>,
        options: IngestOptions<'_>,
    ) -> StoreResult<IngestReport> {
        let IngestOptions { commit_every, mut progress, mut before_commit, mut on_document } =
            options;
        let mut before_commit =
            move |batch: &mut dyn IngestRows, done: u64| match before_commit.as_mut() {
                Some(f) => f(batch, done),
                None => Ok(()),
            };
        let db = self.db_path();
        // The writer itself checkpoints rarely during a bulk load: each checkpoint waits for the disk.
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 16384)
            .map_err(|e| self.err("tuning checkpoints", e))?;
        let total = std::thread::scope(|scope| {
            // Batches that commit as they go are checkpointed beside the load, not after it.
            let checkpoints = commit_every
                .and_then(|_| super::checkpointer::background_checkpointer(&db))
                .map(|(signal, checkpoint_on_request)| {
                    scope.spawn(checkpoint_on_request);
                    signal
                });
            let mut total = IngestReport::default();
            let mut batch = self.begin_ingest()?;
            let (mut in_batch, mut done, mut commits) = (0usize, 0u64, 0u64);
            for (prepared, end_of_batch) in prepare_in_order(scope, documents) {
                let (prepared, present) = prepared?;
                if let Some(seen) = on_document.as_mut() {
                    seen(&prepared.update);
                }
                batch.add_prepared(&prepared)?;
                for sha1 in &present {
                    batch.mark_present(sha1)?;
                }
                (in_batch, done) = (in_batch + 1, done + 1);
                if commit_every.is_some_and(|n| in_batch >= n) {
                    before_commit(&mut *batch, done)?;
                    total.add(batch.commit()?);
                    commits += 1;
                    match &checkpoints {
                        Some(signal) if commits % CATCH_UP_EVERY_COMMITS == 0 => {
                            signal.committed_and_caught_up()
                        }
                        Some(signal) => signal.committed(),
                        None => {}
                    }
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
        })?;
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 1000)
            .map_err(|e| self.err("tuning checkpoints", e))?;
        Ok(total)
    }
}
