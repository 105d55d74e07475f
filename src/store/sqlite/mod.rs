//! The SQLite backend of the store: `ferry.db` (WAL) beside the content tree. Everything here
//! is SQL and rusqlite; the values it reads and writes are the store's own types.

pub(crate) mod bundles;
pub(crate) mod checkpointer;
pub(crate) mod cleanup;
pub(crate) mod clients;
pub(crate) mod compliance_report;
pub(crate) mod consistency;
pub(crate) mod deployments;
pub(crate) mod groups;
pub(crate) mod ingest;
pub(crate) mod migrate;
pub(crate) mod published;
pub(crate) mod query;
pub(crate) mod rules;
pub(crate) mod schema;
pub(crate) mod server_sync;

use super::{ContentStore, DATABASE_FILE, DatabaseError, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One open store: a connection and the content tree. Cheap to open; open one per thread.
pub struct SqliteStore {
    dir: PathBuf,
    conn: Connection,
    content: ContentStore,
}

#[cfg(test)]
impl SqliteStore {
    /// Test setup only: marks an update's newest revision as Microsoft withdrawing it.
    pub(crate) fn expire_for_test(&self, update_id: &str) {
        self.conn
            .execute("UPDATE revisions SET publication_state = 'Expired' WHERE update_id = ?1 AND is_latest = 1", [update_id])
            .unwrap();
    }

    /// Test setup only: `update_id`'s newest revision needs `needed` installed first (a clause
    /// of its own).
    pub(crate) fn require_for_test(&self, update_id: &str, needed: &str) {
        self.conn
            .execute(
                "INSERT INTO prerequisites (revision_id, clause, update_id, is_category)
                 SELECT revision_id, 1000, ?2, 0 FROM revisions WHERE update_id = ?1 AND is_latest = 1",
                [update_id, needed],
            )
            .unwrap();
    }
}

impl SqliteStore {
    /// Opens the store in `dir`, creating it (and its schema) when it does not exist yet.
    pub(in crate::store) fn open_or_create(dir: &Path) -> StoreResult<SqliteStore> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        Self::open_at(dir)
    }

    /// Opens an existing store; a missing one is an error that says how to create it.
    pub(in crate::store) fn open(dir: &Path) -> StoreResult<SqliteStore> {
        if !dir.join(DATABASE_FILE).is_file() {
            return Err(StoreError::Missing(dir.to_path_buf()));
        }
        Self::open_at(dir)
    }

    fn open_at(dir: &Path) -> StoreResult<SqliteStore> {
        let db_path = dir.join(DATABASE_FILE);
        let conn = Connection::open(&db_path)
            .map_err(|e| StoreError::sqlite(&db_path, "opening the database", e))?;
        let mut store =
            SqliteStore { dir: dir.to_path_buf(), conn, content: ContentStore::in_data_dir(dir) };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    fn configure(&mut self) -> StoreResult<()> {
        self.conn
            .busy_timeout(Duration::from_secs(30))
            .map_err(|e| self.err("setting the busy timeout", e))?;
        self.conn
            .execute_batch("PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;")
            .map_err(|e| self.err("configuring the database", e))
    }

    fn migrate(&mut self) -> StoreResult<()> {
        let version: usize = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err("reading the schema version", e))?;
        if version > schema::MIGRATIONS.len() {
            return Err(StoreError::TooNew {
                database: self.db_path().display().to_string(),
                found: version,
                known: schema::MIGRATIONS.len(),
            });
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version) {
            let db = self.db_path();
            let tx = self
                .conn
                .transaction()
                .map_err(|e| StoreError::sqlite(&db, "starting a migration", e))?;
            tx.execute_batch(sql).map_err(|e| {
                StoreError::sqlite(&db, format!("applying schema migration {}", i + 1), e)
            })?;
            if i + 1 == schema::LANGUAGES_MIGRATION {
                ingest::backfill_languages(&tx, &db)?;
            }
            tx.pragma_update(None, "user_version", i + 1)
                .map_err(|e| StoreError::sqlite(&db, "recording the schema version", e))?;
            tx.commit().map_err(|e| StoreError::sqlite(&db, "committing a migration", e))?;
        }
        Ok(())
    }

    pub(in crate::store) fn db_path(&self) -> PathBuf {
        self.dir.join(DATABASE_FILE)
    }

    pub(in crate::store) fn content(&self) -> &ContentStore {
        &self.content
    }

    pub(crate) fn err(&self, context: impl Into<String>, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.db_path(), context, e)
    }
}

impl super::SettingStorage for SqliteStore {
    fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        self.conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(format!("reading setting {key}"), e))
    }

    fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        self.conn
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(|_| ())
            .map_err(|e| self.err(format!("writing setting {key}"), e))
    }

    fn setting_or_insert(&self, key: &str, candidate: &str) -> StoreResult<String> {
        self.conn
            .query_row(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = value RETURNING value",
                [key, candidate],
                |r| r.get(0),
            )
            .map_err(|e| self.err(format!("reading or creating setting {key}"), e))
    }
}

impl StoreError {
    /// A failure rusqlite reported, with where and what was being done.
    pub(crate) fn sqlite(
        path: &Path,
        context: impl Into<String>,
        source: rusqlite::Error,
    ) -> StoreError {
        let busy = matches!(&source, rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked));
        StoreError::Database {
            database: path.display().to_string(),
            context: context.into(),
            source: DatabaseError { message: source.to_string(), busy },
        }
    }
}

/// Ids are stored as their canonical text; a row whose text is not one reads as an error that
/// names the column's value (written by hand, or damaged), never as a wrong id.
macro_rules! id_column {
    ($id:ty) => {
        impl rusqlite::ToSql for $id {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl rusqlite::types::FromSql for $id {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<$id> {
                <$id>::parse(value.as_str()?)
                    .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

id_column!(crate::ids::GroupId);
id_column!(crate::ids::UpdateId);
id_column!(crate::ids::ComputerId);
