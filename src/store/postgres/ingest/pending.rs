//! The rows an ingest batch has decided on but not sent yet, and what the batch knows of the
//! updates and files its documents name.
//!
//! New revisions get ids from the identity's sequence as they are added, so their rows depend
//! on nothing the database still has to say: they wait here and go to PostgreSQL together,
//! one `COPY ... FROM STDIN (FORMAT binary)` per table (one statement per row cost a round
//! trip each, ten or more per revision). Rows of the same primary key are kept once, the
//! first, as `ON CONFLICT DO NOTHING` kept them.

use super::super::Connection;
use crate::catalog::Sha1Digest;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use std::collections::HashMap;

/// Pending rows are sent once they hold this many bytes of documents and fragments...
const FLUSH_BYTES: usize = 8 << 20;
/// ... or this many revisions (a round trip per table is nothing next to a thousand rows).
const FLUSH_REVISIONS: usize = 1024;

/// A new revision's row and its document's.
pub(super) struct RevisionRow {
    pub revision_id: i32,
    pub update_id: String,
    pub revision_number: i32,
    pub update_type: &'static str,
    pub category_kind: Option<String>,
    pub is_bundle: bool,
    pub explicitly_deployable: bool,
    pub publication_state: Option<String>,
    pub title: Option<String>,
    pub kb_article: Option<String>,
    pub security_bulletin: Option<String>,
    pub msrc_severity: Option<String>,
    pub creation_date: Option<String>,
    pub handler: Option<String>,
    pub default_language: Option<String>,
    pub core_size: i64,
    pub document_size: i64,
    pub digest: Vec<u8>,
    pub is_latest: bool,
    pub languages: Option<String>,
    pub document: Vec<u8>,
    pub core: Vec<u8>,
    pub extended: Vec<u8>,
}

pub(super) struct LocalizedRow {
    pub revision_id: i32,
    pub language: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub fragment: Vec<u8>,
}

pub(super) struct FileRow {
    pub sha1: Sha1Digest,
    pub sha256: Option<Vec<u8>>,
    pub size: i64,
    pub file_name: String,
    pub extension: String,
    pub modified: Option<String>,
    pub patching_type: Option<String>,
}

/// Rows waiting to be sent, in the order they were decided.
#[derive(Default)]
pub(super) struct Pending {
    /// How many times rows were sent: a position in `revisions` or `files` is of this round.
    pub round: u64,
    /// Updates whose stored latest revision stops being latest (a newer one is pending).
    pub retire: Vec<String>,
    pub revisions: Vec<RevisionRow>,
    pub localized: Vec<LocalizedRow>,
    /// (revision id, clause, update id, is category)
    pub prerequisites: Vec<(i32, i32, String, bool)>,
    /// (revision id, clause, member update id, member revision number)
    pub members: Vec<(i32, i32, String, i32)>,
    /// (revision id, superseded update id)
    pub superseded: Vec<(i32, String)>,
    pub files: Vec<FileRow>,
    /// (revision id, file)
    pub links: Vec<(i32, Sha1Digest)>,
    /// Updates a new revision brings back from a removal.
    pub unremove: Vec<String>,
    /// Files verified in the content tree.
    pub present: Vec<Sha1Digest>,
    /// Bytes of documents and fragments pending.
    pub bytes: usize,
    /// The documents the pending revisions came from, first and last (for messages).
    pub sources: Option<(String, String)>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.retire.is_empty()
            && self.revisions.is_empty()
            && self.files.is_empty()
            && self.unremove.is_empty()
            && self.present.is_empty()
    }

    /// Whether enough is pending to send it before the next read-ahead.
    pub fn is_full(&self) -> bool {
        self.bytes >= FLUSH_BYTES || self.revisions.len() >= FLUSH_REVISIONS
    }

    /// Whether so much is pending that it must go now, read-ahead or not.
    pub fn is_overfull(&self) -> bool {
        self.bytes >= 2 * FLUSH_BYTES || self.revisions.len() >= 2 * FLUSH_REVISIONS
    }

    pub fn note_source(&mut self, source: &str) {
        match &mut self.sources {
            Some((_, last)) => source.clone_into(last),
            None => self.sources = Some((source.to_string(), source.to_string())),
        }
    }

    /// Sends everything pending, in the order the tables depend on each other, and starts the
    /// next round. On failure, says which rows could not be stored.
    pub fn send(
        &mut self,
        client: &mut Connection,
        stamp: i64,
        now: &str,
    ) -> Result<(), (String, postgres::Error)> {
        let rows = std::mem::replace(self, Pending { round: self.round + 1, ..Pending::default() });
        let what = |table: &str| match &rows.sources {
            Some((first, last)) if first != last => {
                format!("storing the {table} of the documents from {first} to {last}")
            }
            Some((first, _)) => format!("storing the {table} of {first}"),
            None => format!("storing the {table} of the batch"),
        };
        let fail = |table: &'static str| move |e| (what(table), e);
        if !rows.retire.is_empty() {
            client
                .execute(
                    "UPDATE revisions SET is_latest = false WHERE update_id = ANY($1) AND is_latest",
                    &[&rows.retire],
                )
                .map_err(fail("older revisions"))?;
        }
        copy_revisions(client, &rows.revisions, stamp, now).map_err(fail("revisions"))?;
        rows.copy_details(client).map_err(|(table, e)| (what(table), e))?;
        if !rows.unremove.is_empty() {
            client
                .execute("DELETE FROM removed_updates WHERE update_id = ANY($1)", &[&rows.unremove])
                .map_err(fail("removals"))?;
        }
        if !rows.present.is_empty() {
            let present: Vec<&[u8]> = rows.present.iter().map(|d| &d.0[..]).collect();
            client
                .execute("UPDATE files SET present = true WHERE sha1 = ANY($1)", &[&present])
                .map_err(fail("payloads in place"))?;
        }
        Ok(())
    }

    /// Everything a revision's row holds up: its document, languages, relationships and files.
    fn copy_details(&self, client: &mut Connection) -> Result<(), (&'static str, postgres::Error)> {
        use Type as T;
        copy(
            client,
            "revision_documents (revision_id, document, core, extended)",
            &[T::INT4, T::BYTEA, T::BYTEA, T::BYTEA],
            &self.revisions,
            |w, r| w.write(&[&r.revision_id, &r.document, &r.core, &r.extended]),
        )
        .map_err(|e| ("documents", e))?;
        copy(
            client,
            "localized_properties (revision_id, language, title, description, fragment)",
            &[T::INT4, T::TEXT, T::TEXT, T::TEXT, T::BYTEA],
            &self.localized,
            |w, r| w.write(&[&r.revision_id, &r.language, &r.title, &r.description, &r.fragment]),
        )
        .map_err(|e| ("localized properties", e))?;
        copy(
            client,
            "prerequisites (revision_id, clause, update_id, is_category)",
            &[T::INT4, T::INT4, T::TEXT, T::BOOL],
            &self.prerequisites,
            |w, r| w.write(&[&r.0, &r.1, &r.2, &r.3]),
        )
        .map_err(|e| ("prerequisites", e))?;
        copy(
            client,
            "bundle_members (revision_id, clause, member_update_id, member_revision_number)",
            &[T::INT4, T::INT4, T::TEXT, T::INT4],
            &self.members,
            |w, r| w.write(&[&r.0, &r.1, &r.2, &r.3]),
        )
        .map_err(|e| ("bundled updates", e))?;
        copy(
            client,
            "supersedences (revision_id, superseded_update_id)",
            &[T::INT4, T::TEXT],
            &self.superseded,
            |w, r| w.write(&[&r.0, &r.1]),
        )
        .map_err(|e| ("superseded updates", e))?;
        copy(
            client,
            "files (sha1, sha256, size, file_name, extension, modified, patching_type)",
            &[T::BYTEA, T::BYTEA, T::INT8, T::TEXT, T::TEXT, T::TEXT, T::TEXT],
            &self.files,
            |w, f| {
                w.write(&[
                    &&f.sha1.0[..],
                    &f.sha256,
                    &f.size,
                    &f.file_name,
                    &f.extension,
                    &f.modified,
                    &f.patching_type,
                ])
            },
        )
        .map_err(|e| ("files", e))?;
        copy(
            client,
            "revision_files (revision_id, sha1)",
            &[T::INT4, T::BYTEA],
            &self.links,
            |w, (revision_id, sha1)| w.write(&[revision_id, &&sha1.0[..]]),
        )
        .map_err(|e| ("file links", e))?;
        Ok(())
    }
}

fn copy_revisions(
    client: &mut Connection,
    rows: &[RevisionRow],
    stamp: i64,
    now: &str,
) -> Result<u64, postgres::Error> {
    use Type as T;
    let columns = "revisions (revision_id, update_id, revision_number, update_type, category_kind, is_bundle, explicitly_deployable,
        publication_state, title, kb_article, security_bulletin, msrc_severity, creation_date, handler, default_language,
        core_size, document_size, fragments_digest, changed_stamp, ingested_at, is_latest, languages)";
    let types = [
        T::INT4,
        T::TEXT,
        T::INT4,
        T::TEXT,
        T::TEXT,
        T::BOOL,
        T::BOOL,
        T::TEXT,
        T::TEXT,
        T::TEXT,
        T::TEXT,
        T::TEXT,
        T::TEXT,
        T::TEXT,
        T::TEXT,
        T::INT8,
        T::INT8,
        T::BYTEA,
        T::INT8,
        T::TEXT,
        T::BOOL,
        T::TEXT,
    ];
    copy(client, columns, &types, rows, |w, r| {
        w.write(&[
            &r.revision_id,
            &r.update_id,
            &r.revision_number,
            &r.update_type,
            &r.category_kind,
            &r.is_bundle,
            &r.explicitly_deployable,
            &r.publication_state,
            &r.title,
            &r.kb_article,
            &r.security_bulletin,
            &r.msrc_severity,
            &r.creation_date,
            &r.handler,
            &r.default_language,
            &r.core_size,
            &r.document_size,
            &r.digest,
            &stamp,
            &now,
            &r.is_latest,
            &r.languages,
        ])
    })
}

/// `COPY table (columns) FROM STDIN` in the binary format, one row per item of `rows`. (An
/// identity column takes the values given, as `OVERRIDING SYSTEM VALUE` would.)
fn copy<R>(
    client: &mut Connection,
    table_and_columns: &str,
    types: &[Type],
    rows: &[R],
    write: impl Fn(&mut BinaryCopyInWriter<'_>, &R) -> Result<(), postgres::Error>,
) -> Result<u64, postgres::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let sink = client.copy_in(&format!("COPY {table_and_columns} FROM STDIN (FORMAT binary)"))?;
    let mut writer = BinaryCopyInWriter::new(sink, types);
    for row in rows {
        write(&mut writer, row)?;
    }
    writer.finish()
}

/// What a batch knows of an update: every stored (or pending) revision of it.
#[derive(Default)]
pub(super) struct KnownUpdate {
    /// Revision number: (revision id, fragments digest).
    pub revisions: HashMap<i32, (i32, Vec<u8>)>,
    /// The pending revision that is the update's latest: (round, position in `revisions`).
    pub latest_pending: Option<(u64, usize)>,
}

impl KnownUpdate {
    pub fn newest(&self) -> Option<i32> {
        self.revisions.keys().copied().max()
    }
}

/// What a batch knows of a file: its row, stored or pending.
pub(super) struct KnownFile {
    pub sha256: Option<Vec<u8>>,
    pub size: i64,
    pub extension: String,
    /// Pending: (round, position in `files`).
    pub pending: Option<(u64, usize)>,
}

/// The updates and files a batch has read or written: the database's rows as this batch's
/// transaction sees them, pending ones included. Exact while the batch holds the ingest lock:
/// only ingests write revisions and the columns of files kept here, and none deletes them.
#[derive(Default)]
pub(super) struct Known {
    pub updates: HashMap<String, KnownUpdate>,
    /// `None`: no row (when the batch looked).
    pub files: HashMap<Sha1Digest, Option<KnownFile>>,
}
