//! Updates published here, on SQLite.

use crate::store::published::PUBLISHED_COLUMNS;
use crate::store::{InstallerKind, PublishedRecord, PublishedStorage, SqliteStore, StoreResult};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Row, ToSql};

impl ToSql for InstallerKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for InstallerKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<InstallerKind> {
        let text = value.as_str()?;
        InstallerKind::parse(text).ok_or_else(|| {
            FromSqlError::Other(format!("{text:?} is not an installer kind (msi, msp, exe)").into())
        })
    }
}

/// Records a published update (a revision keeps when it was first published).
pub(super) const RECORD_PUBLISHED: &str = "INSERT INTO published_updates
         (update_id, vendor, product, installer, installer_name, version, published_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT (update_id) DO UPDATE SET vendor = excluded.vendor, product = excluded.product,
         installer = excluded.installer, installer_name = excluded.installer_name,
         version = excluded.version";

pub(super) fn record_params(r: &PublishedRecord) -> [&dyn ToSql; 7] {
    [
        &r.update_id,
        &r.vendor,
        &r.product,
        &r.installer,
        &r.installer_name,
        &r.version,
        &r.published_at,
    ]
}

fn record_from_row(r: &Row) -> rusqlite::Result<PublishedRecord> {
    Ok(PublishedRecord {
        update_id: r.get(0)?,
        vendor: r.get(1)?,
        product: r.get(2)?,
        installer: r.get(3)?,
        installer_name: r.get(4)?,
        version: r.get(5)?,
        published_at: r.get(6)?,
    })
}

impl PublishedStorage for SqliteStore {
    fn published(&self) -> StoreResult<Vec<PublishedRecord>> {
        let sql = format!(
            "SELECT {PUBLISHED_COLUMNS} FROM published_updates ORDER BY published_at, update_id"
        );
        let mut stmt =
            self.conn.prepare(&sql).map_err(|e| self.err("reading published updates", e))?;
        stmt.query_map([], record_from_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("reading published updates", e))
    }
}
