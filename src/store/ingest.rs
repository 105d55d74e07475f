//! Loading update documents into the catalog, one transaction per batch.

use super::{Store, StoreError, StoreResult, now_rfc3339};
use crate::catalog::{ParsedUpdate, UpdateIdentity, parse_update};
use rusqlite::{OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added {
        revision_id: i32,
    },
    /// The same revision with the same fragments was already stored: nothing changed.
    Unchanged {
        revision_id: i32,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestReport {
    pub added: u64,
    pub unchanged: u64,
    pub document_bytes: u64,
}

/// An open ingest transaction. Dropping it without [`IngestBatch::commit`] rolls everything back.
pub struct IngestBatch<'s> {
    tx: Transaction<'s>,
    db: PathBuf,
    stamp: i64,
    now: String,
    report: IngestReport,
}

impl Store {
    pub fn begin_ingest(&mut self) -> StoreResult<IngestBatch<'_>> {
        let db = self.db_path();
        let tx = self.conn.transaction().map_err(|e| StoreError::sqlite(&db, "starting an ingest transaction", e))?;
        let stamp: i64 = tx
            .query_row("SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'catalog_stamp'", [], |r| r.get(0))
            .optional()
            .map_err(|e| StoreError::sqlite(&db, "reading the catalog stamp", e))?
            .unwrap_or(0)
            + 1;
        Ok(IngestBatch { tx, db, stamp, now: now_rfc3339(), report: IngestReport::default() })
    }
}

/// A digest of everything a client sees of a revision; two copies of a revision must agree on it.
pub fn fragments_digest(parsed: &ParsedUpdate) -> [u8; 32] {
    let mut h = Sha256::new();
    let f = &parsed.fragments;
    for part in [&f.core, &f.extended] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    for (lang, frag) in &f.localized {
        h.update((lang.len() as u64).to_le_bytes());
        h.update(lang.as_bytes());
        h.update((frag.len() as u64).to_le_bytes());
        h.update(frag.as_bytes());
    }
    h.finalize().into()
}

impl IngestBatch<'_> {
    fn err(&self, context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
        let context = context.into();
        move |e| StoreError::sqlite(&self.db, context, e)
    }

    /// The catalog stamp this batch gives the revisions it adds.
    pub fn stamp(&self) -> i64 {
        self.stamp
    }

    /// Parses and stores one document; `source` names it in errors (a file, a bundle member...).
    pub fn add_document(&mut self, source: &str, document: &[u8]) -> StoreResult<AddOutcome> {
        let parsed = parse_update(document).map_err(|e| StoreError::Document { document: source.to_string(), source: e })?;
        self.add_parsed(source, document, &parsed)
    }

    /// Stores a document parsed by the caller (parsing can then run on other threads).
    pub fn add_parsed(&mut self, source: &str, document: &[u8], parsed: &ParsedUpdate) -> StoreResult<AddOutcome> {
        let u = &parsed.update;
        let id = u.identity;
        let update_id = id.update_id.to_string();
        let digest = fragments_digest(parsed);
        self.report.document_bytes += document.len() as u64;

        let existing: Option<(i32, Vec<u8>)> = self
            .tx
            .prepare_cached("SELECT revision_id, fragments_sha256 FROM revisions WHERE update_id = ?1 AND revision_number = ?2")
            .and_then(|mut s| s.query_row(params![update_id, id.revision_number], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(self.err(format!("looking up revision {id}")))?;
        if let Some((revision_id, stored)) = existing {
            if stored == digest {
                self.report.unchanged += 1;
                return Ok(AddOutcome::Unchanged { revision_id });
            }
            return Err(StoreError::ConflictingRevision { document: source.to_string(), identity: id });
        }

        let english = u.localized_in("en");
        let title = english.and_then(|l| l.title.clone());
        self.tx
            .prepare_cached(
                "INSERT INTO revisions (update_id, revision_number, update_type, category_kind, is_bundle, explicitly_deployable,
                    publication_state, title, kb_article, security_bulletin, msrc_severity, creation_date, handler, default_language,
                    core_size, document_size, fragments_sha256, changed_stamp, ingested_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
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
                    parsed.fragments.core.len() as i64,
                    document.len() as i64,
                    &digest[..],
                    self.stamp,
                    self.now,
                ])
            })
            .map_err(self.err(format!("storing revision {id}")))?;
        let rowid = self.tx.last_insert_rowid();
        let revision_id = i32::try_from(rowid).map_err(|_| StoreError::RevisionIdsExhausted)?;

        self.tx
            .prepare_cached("INSERT INTO revision_documents (revision_id, document, core, extended) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| {
                s.execute(params![revision_id, document, parsed.fragments.core.as_bytes(), parsed.fragments.extended.as_bytes()])
            })
            .map_err(self.err(format!("storing the document of {id}")))?;

        for (language, fragment) in &parsed.fragments.localized {
            let props = u.localized.iter().find(|l| &l.language == language);
            self.tx
                .prepare_cached("INSERT OR IGNORE INTO localized_properties (revision_id, language, title, description, fragment) VALUES (?1, ?2, ?3, ?4, ?5)")
                .and_then(|mut s| {
                    s.execute(params![revision_id, language, props.and_then(|p| p.title.as_deref()), props.and_then(|p| p.description.as_deref()), fragment.as_bytes()])
                })
                .map_err(self.err(format!("storing localized properties of {id}")))?;
        }

        for (clause, group) in u.prerequisites.iter().enumerate() {
            for member in &group.update_ids {
                self.tx
                    .prepare_cached("INSERT INTO prerequisites (revision_id, clause, update_id, is_category) VALUES (?1, ?2, ?3, ?4)")
                    .and_then(|mut s| s.execute(params![revision_id, clause as i64, member.to_string(), group.is_category]))
                    .map_err(self.err(format!("storing prerequisites of {id}")))?;
            }
        }
        for (clause, group) in u.bundled_updates.iter().enumerate() {
            for member in &group.members {
                self.tx
                    .prepare_cached("INSERT INTO bundle_members (revision_id, clause, member_update_id, member_revision_number) VALUES (?1, ?2, ?3, ?4)")
                    .and_then(|mut s| s.execute(params![revision_id, clause as i64, member.update_id.to_string(), member.revision_number]))
                    .map_err(self.err(format!("storing bundled updates of {id}")))?;
            }
        }
        for superseded in &u.superseded_update_ids {
            self.tx
                .prepare_cached("INSERT INTO supersedences (revision_id, superseded_update_id) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![revision_id, superseded.to_string()]))
                .map_err(self.err(format!("storing superseded updates of {id}")))?;
        }
        for file in &u.files {
            self.add_file(source, revision_id, file)?;
        }
        self.mark_latest(&update_id, id)?;
        self.report.added += 1;
        Ok(AddOutcome::Added { revision_id })
    }

    fn add_file(&mut self, source: &str, revision_id: i32, file: &crate::catalog::UpdateFile) -> StoreResult<()> {
        let stored: Option<(Option<Vec<u8>>, i64)> = self
            .tx
            .prepare_cached("SELECT sha256, size FROM files WHERE sha1 = ?1")
            .and_then(|mut s| s.query_row([&file.sha1.0[..]], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(self.err(format!("looking up file {}", file.sha1)))?;
        match stored {
            Some((stored_sha256, stored_size)) => {
                let sha_differs = matches!((&stored_sha256, &file.sha256), (Some(a), Some(b)) if a[..] != b.0[..]);
                if sha_differs || stored_size as u64 != file.size {
                    let hex = |v: Option<&[u8]>| v.map(hex::encode).unwrap_or_else(|| "(none)".into());
                    return Err(StoreError::ConflictingFile(Box::new(super::error::FileConflict {
                        document: source.to_string(),
                        sha1: file.sha1.to_hex_upper(),
                        file_name: file.file_name.clone(),
                        stored_size: stored_size as u64,
                        stored_sha256: hex(stored_sha256.as_deref()),
                        size: file.size,
                        sha256: hex(file.sha256.as_ref().map(|d| &d.0[..])),
                    })));
                }
                if stored_sha256.is_none() && file.sha256.is_some() {
                    self.tx
                        .execute(
                            "UPDATE files SET sha256 = ?2 WHERE sha1 = ?1",
                            params![&file.sha1.0[..], file.sha256.map(|d| d.0.to_vec())],
                        )
                        .map_err(self.err(format!("recording the SHA-256 of file {}", file.sha1)))?;
                }
            }
            None => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO files (sha1, sha256, size, file_name, extension, modified, patching_type) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
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
                    .map_err(self.err(format!("storing file {}", file.sha1)))?;
            }
        }
        self.tx
            .prepare_cached("INSERT OR IGNORE INTO revision_files (revision_id, sha1) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![revision_id, &file.sha1.0[..]]))
            .map_err(self.err(format!("linking file {}", file.sha1)))?;
        Ok(())
    }

    /// Keeps `is_latest` on the highest revision number of the update.
    fn mark_latest(&mut self, update_id: &str, id: UpdateIdentity) -> StoreResult<()> {
        self.tx
            .prepare_cached(
                "UPDATE revisions SET is_latest = (revision_number = (SELECT MAX(revision_number) FROM revisions WHERE update_id = ?1))
                 WHERE update_id = ?1",
            )
            .and_then(|mut s| s.execute([update_id]))
            .map_err(self.err(format!("marking the newest revision of {}", id.update_id)))?;
        Ok(())
    }

    /// Records that a payload is verified in the content tree (same transaction as the metadata).
    pub fn mark_present(&mut self, sha1: &crate::catalog::Sha1Digest) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE files SET present = 1 WHERE sha1 = ?1")
            .and_then(|mut s| s.execute([&sha1.0[..]]))
            .map_err(self.err(format!("marking file {sha1} present")))?;
        Ok(())
    }

    /// Writes a setting in the same transaction (progress markers that must agree with the data).
    pub fn set_setting(&mut self, key: &str, value: &str) -> StoreResult<()> {
        self.tx
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map_err(self.err(format!("writing setting {key}")))?;
        Ok(())
    }

    pub fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        self.tx
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.err(format!("reading setting {key}")))
    }

    pub fn report(&self) -> IngestReport {
        self.report
    }

    pub fn commit(self) -> StoreResult<IngestReport> {
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
