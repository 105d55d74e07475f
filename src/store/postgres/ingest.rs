//! Loading update documents on PostgreSQL, one transaction per batch. Behaves as the SQLite
//! backend's `sqlite/ingest.rs` does (same outcomes, same errors, same invariants).
//!
//! A batch owns a pooled connection and drives `BEGIN`/`COMMIT` on it itself (`ROLLBACK` when
//! dropped uncommitted), rather than holding a `postgres::Transaction`: that borrows its client,
//! and `begin_ingest` hands out a batch that must not borrow the pool's guard.
//!
//! Round trips, not rows, are what an ingest costs: a batch reads what it needs to know of a run
//! of documents at once (their updates' stored revisions, their files, one statement each, kept
//! in [`pending::Known`]), reserves their revision ids from the identity's sequence in one
//! statement, decides each document's outcome there and then, and sends the rows of new
//! revisions later, table by table with `COPY` ([`pending::Pending`]): before any other
//! statement of the batch, when enough is pending, and at the commit.
//!
//! Invariant: ingests run one after the other across front ends: each batch takes
//! `INGEST_LOCK` (a transaction-level advisory lock) before it reads anything, so `is_latest`,
//! the catalog stamp and "already stored" are decided on what the previous batch committed, and
//! an import recorded by another front end meanwhile is seen (`record_import` refuses it).

mod pending;

use super::{Connection, PostgresStore, database_error};

use crate::catalog::Sha1Digest;
use crate::store::documents::{PreparedRevision, prepare_in_order};
use crate::store::ingest::*;
use crate::store::{StoreError, StoreResult, now_rfc3339};
use pending::{FileRow, Known, KnownFile, LocalizedRow, Pending, RevisionRow};
use postgres::Statement;
use postgres::types::{ToSql, Type};
use std::cell::{Cell, RefCell};
use std::collections::{HashSet, VecDeque};

/// Held by every ingest batch until it ends ("ferryIng").
const INGEST_LOCK: i64 = 0x6665_7272_7949_6e67;

/// The identity of `revisions.revision_id` reached its maximum (`integer`, 2^31 - 1).
const SEQUENCE_EXHAUSTED: &str = "2200H";

type Params<'a> = [&'a (dyn ToSql + Sync)];

/// The stored revisions of some updates, each update's found through the index (`LATERAL`,
/// fenced by `OFFSET 0`): `update_id = ANY($1)` alone is planned for a table without statistics
/// (the one a first import fills) as a scan of the whole table, which every read-ahead would
/// repeat. Like [`KNOWN_FILES`], an unnamed statement (`query_typed`), planned for its values.
const KNOWN_REVISIONS: &str =
    "SELECT u.update_id, r.revision_number, r.revision_id, r.fragments_digest
    FROM unnest($1::text[]) AS u (update_id)
    CROSS JOIN LATERAL (SELECT revision_number, revision_id, fragments_digest FROM revisions
                        WHERE revisions.update_id = u.update_id OFFSET 0) AS r";
/// The stored rows of some files.
const KNOWN_FILES: &str = "SELECT sha1, sha256, size, extension FROM files WHERE sha1 = ANY($1)";

/// The statements a batch runs, prepared once per batch.
struct Statements {
    reserve_ids: Statement,
    stored_fragments: Statement,
    stored_localized: Statement,
    insert_localized: Statement,
    stored_file: Statement,
}

impl Statements {
    fn prepare(client: &mut Connection) -> Result<Statements, postgres::Error> {
        Ok(Statements {
            // Values of the identity's own sequence: handed out once, as an INSERT would.
            reserve_ids: client.prepare("SELECT nextval(pg_get_serial_sequence('revisions', 'revision_id'))::integer FROM generate_series(1, $1::integer)")?,
            stored_fragments: client.prepare("SELECT core, extended FROM revision_documents WHERE revision_id = $1")?,
            stored_localized: client.prepare("SELECT fragment FROM localized_properties WHERE revision_id = $1 AND language = $2")?,
            insert_localized: client.prepare("INSERT INTO localized_properties (revision_id, language, title, description, fragment) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")?,
            stored_file: client.prepare("SELECT sha256, size, extension FROM files WHERE sha1 = $1")?,
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
    /// The stored and pending revisions of the updates, and the files, this batch has seen.
    known: Known,
    /// Revision ids reserved for the documents read ahead ([`PgIngestBatch::read_ahead`]), in
    /// the order they are added.
    ids: VecDeque<i32>,
    /// Rows decided but not sent yet.
    pending: RefCell<Pending>,
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

    fn query(
        &self,
        statement: &Statement,
        params: &Params<'_>,
    ) -> Result<Vec<postgres::Row>, postgres::Error> {
        self.conn.borrow_mut().query(statement, params)
    }

    fn query_opt(
        &self,
        statement: &Statement,
        params: &Params<'_>,
    ) -> Result<Option<postgres::Row>, postgres::Error> {
        self.conn.borrow_mut().query_opt(statement, params)
    }

    /// Sends the pending rows: before any statement that may read or change them, and at the
    /// commit.
    fn flush(&self) -> StoreResult<()> {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            return Ok(());
        }
        pending.send(&mut self.conn.borrow_mut(), self.stamp, &self.now).map_err(|(context, e)| {
            self.failed.set(true);
            database_error(&self.database, &context, &e)
        })
    }

    /// Before a read-ahead: sends what is pending once there is enough of it. The database
    /// then holds what the batch wrote, so the updates are forgotten, to be read again when
    /// they come up: what is kept of them stays bounded. (Files stay known, one entry each, as
    /// an import keeps each payload it staged: `described_file` answers from them.)
    fn make_room(&mut self) -> StoreResult<()> {
        if self.pending.get_mut().is_full() {
            self.flush()?;
            self.known.updates.clear();
        }
        Ok(())
    }

    /// Reads what the batch does not know yet of the updates and files of `revisions`, which
    /// are about to be added in this order, and reserves revision ids for those that will be
    /// new: one statement each, for any number of documents.
    fn read_ahead(&mut self, revisions: &[&PreparedRevision]) -> StoreResult<()> {
        self.read_updates(revisions)?;
        self.read_files(revisions)?;
        let mut new = HashSet::new();
        let needed = revisions
            .iter()
            .filter(|p| {
                let id = p.update.identity;
                let update_id = id.update_id.to_string();
                let stored = self
                    .known
                    .updates
                    .get(&update_id)
                    .is_some_and(|u| u.revisions.contains_key(&id.revision_number));
                !stored && new.insert((update_id, id.revision_number))
            })
            .count();
        if needed > self.ids.len() {
            self.reserve_ids(needed - self.ids.len())?;
        }
        Ok(())
    }

    /// The stored revisions of the updates of `revisions` the batch has not seen yet.
    fn read_updates(&mut self, revisions: &[&PreparedRevision]) -> StoreResult<()> {
        let mut unknown: Vec<String> = revisions
            .iter()
            .map(|p| p.update.identity.update_id.to_string())
            .filter(|u| !self.known.updates.contains_key(u))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if unknown.is_empty() {
            return Ok(());
        }
        let context = || match unknown.len() {
            1 => format!("looking up revisions of {}", unknown[0]),
            n => format!("looking up revisions of {} and {} other updates", unknown[0], n - 1),
        };
        let rows = self
            .conn
            .borrow_mut()
            .query_typed(KNOWN_REVISIONS, &[(&unknown, Type::TEXT_ARRAY)])
            .map_err(self.fail(context))?;
        for r in rows {
            let read = || Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?));
            let (update_id, number, revision_id, digest): (String, i32, i32, Vec<u8>) =
                read().map_err(self.fail(context))?;
            self.known
                .updates
                .entry(update_id)
                .or_default()
                .revisions
                .insert(number, (revision_id, digest));
        }
        for update_id in unknown {
            self.known.updates.entry(update_id).or_default();
        }
        Ok(())
    }

    /// The stored rows of the files of `revisions` the batch has not seen yet.
    fn read_files(&mut self, revisions: &[&PreparedRevision]) -> StoreResult<()> {
        let mut unknown: Vec<Sha1Digest> = revisions
            .iter()
            .flat_map(|p| &p.update.files)
            .map(|f| f.sha1)
            .filter(|sha1| !self.known.files.contains_key(sha1))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if unknown.is_empty() {
            return Ok(());
        }
        let context = || match unknown.len() {
            1 => format!("looking up file {}", unknown[0]),
            n => format!("looking up file {} and {} others", unknown[0], n - 1),
        };
        let params: Vec<&[u8]> = unknown.iter().map(|d| &d.0[..]).collect();
        let rows = self.conn.borrow_mut().query_typed(KNOWN_FILES, &[(&params, Type::BYTEA_ARRAY)]);
        let rows = rows.map_err(self.fail(context))?;
        for sha1 in &unknown {
            self.known.files.insert(*sha1, None);
        }
        for r in rows {
            let read = || -> Result<(Vec<u8>, KnownFile), postgres::Error> {
                let file = KnownFile {
                    sha256: r.try_get(1)?,
                    size: r.try_get(2)?,
                    extension: r.try_get(3)?,
                    pending: None,
                };
                Ok((r.try_get(0)?, file))
            };
            let (sha1, file) = read().map_err(self.fail(context))?;
            if let Some(sha1) = Sha1Digest::from_slice(&sha1) {
                self.known.files.insert(sha1, Some(file));
            }
        }
        Ok(())
    }

    /// Takes `n` more values of the revision ids' sequence, in order.
    fn reserve_ids(&mut self, n: usize) -> StoreResult<()> {
        let n = i32::try_from(n).expect("a read-ahead holds fewer documents");
        let rows = match self.query(&self.statements.reserve_ids, &[&n]) {
            Ok(rows) => rows,
            Err(e) if e.code().is_some_and(|c| c.code() == SEQUENCE_EXHAUSTED) => {
                self.failed.set(true);
                return Err(StoreError::RevisionIdsExhausted);
            }
            Err(e) => return Err(self.fail(|| "reserving revision ids")(e)),
        };
        let mut ids = rows
            .iter()
            .map(|r| r.try_get::<_, i32>(0))
            .collect::<Result<Vec<i32>, _>>()
            .map_err(self.fail(|| "reserving revision ids"))?;
        ids.sort_unstable();
        self.ids.extend(ids);
        Ok(())
    }

    /// `Some` when the revision is stored already: unchanged (perhaps with languages added), or
    /// in conflict with what is stored.
    fn stored_already(
        &mut self,
        prepared: &PreparedRevision,
        update_id: &str,
    ) -> StoreResult<Option<AddOutcome>> {
        let id = prepared.update.identity;
        let known =
            self.known.updates.get(update_id).and_then(|u| u.revisions.get(&id.revision_number));
        let Some((revision_id, stored_digest)) = known else { return Ok(None) };
        let revision_id = *revision_id;
        if stored_digest[..] == prepared.digest[..] {
            self.report.unchanged += 1;
            return Ok(Some(AddOutcome::Unchanged { revision_id }));
        }
        // The same revision with the localized properties of other languages: the languages it
        // did not have yet are added; the stored document stays (as on SQLite). What is stored
        // is read back, so what is pending goes first.
        self.flush()?;
        if self.same_but_languages(revision_id, prepared)? {
            self.add_languages(revision_id, prepared)?;
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
        let stored: Option<(Vec<u8>, Vec<u8>)> = self
            .query_opt(&self.statements.stored_fragments, &[&revision_id])
            .and_then(|row| row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose())
            .map_err(self.fail(|| format!("reading the fragments of {id}")))?;
        let stored = stored.ok_or_else(|| {
            StoreError::NotFound(format!("revision #{revision_id} ({id}) has no stored document"))
        })?;
        if !prepared.fragments_match(&stored.0, &stored.1)? {
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

    /// Localized properties of a stored revision, in the languages it does not have yet.
    fn add_languages(&self, revision_id: i32, prepared: &PreparedRevision) -> StoreResult<()> {
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

    /// A new revision's rows, pending, under the id reserved for it; older revisions of its
    /// update stop being latest when it is the newest.
    fn pend_revision(&mut self, prepared: &PreparedRevision, update_id: &str, revision_id: i32) {
        let (u, number) = (&prepared.update, prepared.update.identity.revision_number);
        let pending = self.pending.get_mut();
        let known = self.known.updates.entry(update_id.to_string()).or_default();
        let newest = known.newest();
        let is_latest = newest.is_none_or(|n| n < number);
        if is_latest && newest.is_some() {
            if let Some((round, i)) = known.latest_pending.take() {
                if round == pending.round {
                    pending.revisions[i].is_latest = false;
                }
            }
            pending.retire.push(update_id.to_string());
        }
        if is_latest {
            known.latest_pending = Some((pending.round, pending.revisions.len()));
        }
        known.revisions.insert(number, (revision_id, prepared.digest.to_vec()));
        pending.note_source(&prepared.source);
        pending.bytes += prepared.document.len() + prepared.core.len() + prepared.extended.len();
        pending.revisions.push(RevisionRow {
            revision_id,
            update_id: update_id.to_string(),
            revision_number: number,
            update_type: u.update_type.as_str(),
            category_kind: u.category_kind.as_ref().map(|k| k.as_str().to_string()),
            is_bundle: u.is_bundle(),
            explicitly_deployable: u.explicitly_deployable,
            publication_state: u.publication_state.clone(),
            title: u.localized_in("en").and_then(|l| l.title.clone()),
            kb_article: u.kb_article_ids.first().cloned(),
            security_bulletin: u.security_bulletin_ids.first().cloned(),
            msrc_severity: u.msrc_severity.clone(),
            creation_date: u.creation_date.clone(),
            handler: u.handler.clone(),
            default_language: u.default_language.clone(),
            core_size: prepared.core_len as i64,
            document_size: prepared.document_len as i64,
            digest: prepared.digest.to_vec(),
            is_latest,
            // As `revisions.languages` keeps them on SQLite: space-separated, NULL when neutral.
            languages: (!u.languages.is_empty()).then(|| u.languages.join(" ")),
            document: prepared.document.clone(),
            core: prepared.core.clone(),
            extended: prepared.extended.clone(),
        });
        pend_details(pending, revision_id, prepared);
        // A newer revision of a withdrawn update brings it back.
        pending.unremove.push(update_id.to_string());
    }

    /// A file of a new revision: its row, when new, and its link. A file known already must
    /// agree with what is known of it; a SHA-256 learned now is kept.
    fn add_file(
        &mut self,
        source: &str,
        revision_id: i32,
        file: &crate::catalog::UpdateFile,
        link: bool,
    ) -> StoreResult<()> {
        let pending = self.pending.get_mut();
        if link {
            pending.links.push((revision_id, file.sha1));
        }
        let sha256 = file.sha256.map(|d| d.0.to_vec());
        let known = match self.known.files.get_mut(&file.sha1) {
            Some(Some(known)) => known,
            _ => {
                let position = (pending.round, pending.files.len());
                pending.files.push(FileRow {
                    sha1: file.sha1,
                    sha256: sha256.clone(),
                    size: file.size as i64,
                    file_name: file.file_name.clone(),
                    extension: file.extension().to_string(),
                    modified: file.modified.clone(),
                    patching_type: file.patching_type.clone(),
                });
                let extension = file.extension().to_string();
                let known = KnownFile {
                    sha256,
                    size: file.size as i64,
                    extension,
                    pending: Some(position),
                };
                self.known.files.insert(file.sha1, Some(known));
                return Ok(());
            }
        };
        let sha_differs =
            matches!((&known.sha256, &file.sha256), (Some(a), Some(b)) if a[..] != b.0[..]);
        if sha_differs || known.size as u64 != file.size {
            let hex = |v: Option<&[u8]>| v.map(hex::encode).unwrap_or_else(|| "(none)".into());
            return Err(StoreError::ConflictingFile(Box::new(crate::store::error::FileConflict {
                document: source.to_string(),
                sha1: file.sha1.to_hex_upper(),
                file_name: file.file_name.clone(),
                stored_size: known.size as u64,
                stored_sha256: hex(known.sha256.as_deref()),
                size: file.size,
                sha256: hex(file.sha256.as_ref().map(|d| &d.0[..])),
            })));
        }
        if known.sha256.is_some() || sha256.is_none() {
            return Ok(());
        }
        known.sha256.clone_from(&sha256);
        match known.pending {
            Some((round, i)) if round == pending.round => pending.files[i].sha256 = sha256,
            // A stored file (the ones pending are in its round's rows).
            _ => {
                self.conn
                    .borrow_mut()
                    .execute(
                        "UPDATE files SET sha256 = $2 WHERE sha1 = $1",
                        &[&&file.sha1.0[..], &sha256],
                    )
                    .map_err(
                        self.fail(|| format!("recording the SHA-256 of file {}", file.sha1)),
                    )?;
            }
        }
        Ok(())
    }

    /// Runs one statement of the batch's transaction (`ChannelRows`), after what is pending.
    pub(super) fn run(&self, sql: &str, params: &Params<'_>, context: &str) -> StoreResult<u64> {
        self.flush()?;
        self.conn.borrow_mut().execute(sql, params).map_err(self.fail(|| context))
    }

    /// Sends what is pending and commits; the batch is closed (dropping it does nothing more).
    fn commit_now(&mut self) -> StoreResult<IngestReport> {
        if !self.failed.get() {
            self.flush()?;
        }
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

/// A new revision's localized properties, prerequisites, bundled and superseded updates, each
/// kept once (as `ON CONFLICT DO NOTHING` kept them).
fn pend_details(pending: &mut Pending, revision_id: i32, prepared: &PreparedRevision) {
    let u = &prepared.update;
    let mut languages = HashSet::new();
    for (language, fragment) in &prepared.localized {
        if !languages.insert(language) {
            continue;
        }
        let props = u.localized.iter().find(|l| &l.language == language);
        pending.bytes += fragment.len();
        pending.localized.push(LocalizedRow {
            revision_id,
            language: language.clone(),
            title: props.and_then(|p| p.title.clone()),
            description: props.and_then(|p| p.description.clone()),
            fragment: fragment.as_bytes().to_vec(),
        });
    }
    let mut seen = HashSet::new();
    for (clause, group) in u.prerequisites.iter().enumerate() {
        for member in &group.update_ids {
            if seen.insert((clause, member)) {
                let row = (revision_id, clause as i32, member.to_string(), group.is_category);
                pending.prerequisites.push(row);
            }
        }
    }
    let mut seen = HashSet::new();
    for (clause, group) in u.bundled_updates.iter().enumerate() {
        for member in &group.members {
            if seen.insert((clause, member.update_id, member.revision_number)) {
                let row = (
                    revision_id,
                    clause as i32,
                    member.update_id.to_string(),
                    member.revision_number,
                );
                pending.members.push(row);
            }
        }
    }
    let mut seen = HashSet::new();
    for superseded in &u.superseded_update_ids {
        if seen.insert(superseded) {
            pending.superseded.push((revision_id, superseded.to_string()));
        }
    }
}

impl IngestRows for PgIngestBatch {
    fn stamp(&self) -> i64 {
        self.stamp
    }

    /// Prepares on all cores, reads ahead for all of them, then adds them in order.
    fn add_documents(&mut self, documents: &[(String, Vec<u8>)]) -> StoreResult<Vec<AddOutcome>> {
        use rayon::prelude::*;
        let prepared: Vec<StoreResult<PreparedRevision>> = documents
            .par_iter()
            .map(|(source, doc)| crate::store::documents::prepare_revision(source, doc))
            .collect();
        let ahead: Vec<&PreparedRevision> =
            prepared.iter().map_while(|p| p.as_ref().ok()).collect();
        self.make_room()?;
        self.read_ahead(&ahead)?;
        prepared.into_iter().map(|p| p.and_then(|p| self.add_prepared(&p))).collect()
    }

    fn add_prepared(&mut self, prepared: &PreparedRevision) -> StoreResult<AddOutcome> {
        // Nothing to read when the batch read ahead for it.
        self.read_ahead(&[prepared])?;
        let update_id = prepared.update.identity.update_id.to_string();
        self.report.document_bytes += prepared.document_len as u64;
        if let Some(outcome) = self.stored_already(prepared, &update_id)? {
            return Ok(outcome);
        }
        let revision_id =
            self.ids.pop_front().expect("read_ahead reserved an id for each new revision");
        self.pend_revision(prepared, &update_id, revision_id);
        let mut linked = HashSet::new();
        for file in &prepared.update.files {
            self.add_file(&prepared.source, revision_id, file, linked.insert(file.sha1))?;
        }
        self.report.added += 1;
        // Documents added one by one, without a read-ahead: pending rows stay bounded too.
        if self.pending.get_mut().is_overfull() {
            self.flush()?;
        }
        Ok(AddOutcome::Added { revision_id })
    }

    fn described_file(&mut self, sha1: &Sha1Digest) -> StoreResult<Option<DescribedFile>> {
        let described = |sha256: Option<&[u8]>, size: i64, extension: String| DescribedFile {
            sha256: sha256.and_then(crate::catalog::Sha256Digest::from_slice),
            size: size as u64,
            extension,
        };
        // What the batch knows of a file is its row (pending ones are all known).
        if let Some(known) = self.known.files.get(sha1) {
            return Ok(known
                .as_ref()
                .map(|k| described(k.sha256.as_deref(), k.size, k.extension.clone())));
        }
        let row = self
            .query_opt(&self.statements.stored_file, &[&&sha1.0[..]])
            .map_err(self.fail(|| format!("reading file {sha1}")))?;
        row.map(|r| {
            let sha256: Option<Vec<u8>> = r.try_get(0)?;
            Ok(described(sha256.as_deref(), r.try_get(1)?, r.try_get(2)?))
        })
        .transpose()
        .map_err(self.fail(|| format!("reading file {sha1}")))
    }

    fn mark_present(&mut self, sha1: &Sha1Digest) -> StoreResult<()> {
        match self.known.files.get(sha1) {
            // A row, stored or pending: marked when the pending rows go.
            Some(Some(_)) => self.pending.get_mut().present.push(*sha1),
            // No row: nothing to mark (a row added later in the batch is not marked).
            Some(None) => {}
            // Not pending either: the stored row, if any, is marked now.
            None => {
                self.conn
                    .borrow_mut()
                    .execute("UPDATE files SET present = true WHERE sha1 = $1", &[&&sha1.0[..]])
                    .map_err(self.fail(|| format!("marking file {sha1} present")))?;
            }
        }
        Ok(())
    }

    fn record_published(&mut self, record: &crate::store::PublishedRecord) -> StoreResult<()> {
        use super::published::{RECORD_PUBLISHED, record_params};
        let context = format!("recording published update {}", record.update_id);
        self.run(RECORD_PUBLISHED, &record_params(record), &context)?;
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
        // Pending rows hold no settings: nothing to send first.
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
        self.commit_now()
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
            known: Known::default(),
            ids: VecDeque::new(),
            pending: RefCell::new(Pending::default()),
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

/// The writer of a stream reads ahead for at least this many documents at once: it gathers
/// the pipeline's batches (a few dozen documents each) while it would wait for them anyway.
const READ_AHEAD: usize = 256;

/// Documents prepared for a stream's batch, with the payloads verified along with each.
type Run = Vec<(PreparedRevision, Vec<Sha1Digest>)>;

/// The writer of [`IngestStorage::ingest_stream`]: the open batch and the counts.
struct StreamWriter<'o, 'a> {
    batch: PgIngestBatch,
    total: IngestReport,
    in_batch: usize,
    done: u64,
    commit_every: Option<usize>,
    before_commit: &'o mut BeforeCommit<'a>,
}

impl StreamWriter<'_, '_> {
    /// Adds `run`'s documents in order, each stretch up to the next commit read ahead at once.
    fn write(&mut self, store: &PostgresStore, run: &mut Run) -> StoreResult<()> {
        let mut rest = &run[..];
        while !rest.is_empty() {
            let room =
                self.commit_every.map_or(rest.len(), |n| n.saturating_sub(self.in_batch).max(1));
            let (stretch, later) = rest.split_at(room.min(rest.len()));
            rest = later;
            let ahead: Vec<&PreparedRevision> = stretch.iter().map(|(p, _)| p).collect();
            self.batch.make_room()?;
            self.batch.read_ahead(&ahead)?;
            for (prepared, present) in stretch {
                self.batch.add_prepared(prepared)?;
                for sha1 in present {
                    self.batch.mark_present(sha1)?;
                }
                (self.in_batch, self.done) = (self.in_batch + 1, self.done + 1);
            }
            if self.commit_every.is_some_and(|n| self.in_batch >= n) {
                (self.before_commit)(&mut self.batch, self.done)?;
                self.total.add(self.batch.commit_now()?);
                self.batch = store.begin_batch()?;
                self.in_batch = 0;
            }
        }
        run.clear();
        Ok(())
    }

    fn finish(mut self) -> StoreResult<IngestReport> {
        (self.before_commit)(&mut self.batch, self.done)?;
        self.total.add(self.batch.commit_now()?);
        Ok(self.total)
    }
}

impl IngestStorage for PostgresStore {
    fn begin_ingest(&mut self) -> StoreResult<Box<dyn IngestRows + '_>> {
        Ok(Box::new(self.begin_batch()?))
    }

    /// As on SQLite, but the writer takes the documents [`READ_AHEAD`] or more at a time, at
    /// the end of a batch of the pipeline, and reads ahead for all of them at once.
    fn ingest_stream(
        &mut self,
        documents: Documents<'_>,
        options: IngestOptions<'_>,
    ) -> StoreResult<IngestReport> {
        let IngestOptions { commit_every, mut progress, before_commit, mut on_document } = options;
        let mut nothing = |_: &mut dyn IngestRows, _: u64| Ok(());
        let before_commit: &mut BeforeCommit<'_> = match before_commit {
            Some(f) => f,
            None => &mut nothing,
        };
        std::thread::scope(|scope| {
            let batch = self.begin_batch()?;
            let mut writer = StreamWriter {
                batch,
                total: IngestReport::default(),
                in_batch: 0,
                done: 0,
                commit_every,
                before_commit,
            };
            let mut run = Run::new();
            for (prepared, end_of_batch) in prepare_in_order(scope, documents) {
                match prepared {
                    Ok(prepared) => {
                        if let Some(seen) = on_document.as_mut() {
                            seen(&prepared.0.update);
                        }
                        run.push(prepared)
                    }
                    Err(e) => {
                        // The documents before it first, as one at a time would have.
                        writer.write(self, &mut run)?;
                        return Err(e);
                    }
                }
                if end_of_batch && run.len() >= READ_AHEAD {
                    writer.write(self, &mut run)?;
                    if let Some(p) = progress.as_mut() {
                        p(
                            writer.done,
                            writer.total.document_bytes + writer.batch.report.document_bytes,
                        );
                    }
                }
            }
            writer.write(self, &mut run)?;
            writer.finish()
        })
    }
}
