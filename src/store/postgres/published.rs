//! Updates published here, on PostgreSQL.

use super::PostgresStore;
use crate::store::published::PUBLISHED_COLUMNS;
use crate::store::{PublishedRecord, PublishedStorage, StoreResult};
use postgres::Row;
use postgres::types::ToSql;

/// Records a published update (a revision keeps when it was first published).
pub(super) const RECORD_PUBLISHED: &str = "INSERT INTO published_updates
         (update_id, vendor, product, installer, installer_name, version, published_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (update_id) DO UPDATE SET vendor = excluded.vendor, product = excluded.product,
         installer = excluded.installer, installer_name = excluded.installer_name,
         version = excluded.version";

pub(super) fn record_params(r: &PublishedRecord) -> [&(dyn ToSql + Sync); 7] {
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

fn record_from_row(r: &Row) -> Result<PublishedRecord, postgres::Error> {
    Ok(PublishedRecord {
        update_id: r.try_get(0)?,
        vendor: r.try_get(1)?,
        product: r.try_get(2)?,
        installer: r.try_get(3)?,
        installer_name: r.try_get(4)?,
        version: r.try_get(5)?,
        published_at: r.try_get(6)?,
    })
}

impl PublishedStorage for PostgresStore {
    fn published(&self) -> StoreResult<Vec<PublishedRecord>> {
        let sql = format!(
            r#"SELECT {PUBLISHED_COLUMNS} FROM published_updates ORDER BY published_at COLLATE "C", update_id COLLATE "C""#
        );
        self.rows("reading published updates", &sql, &[], record_from_row)
    }
}
