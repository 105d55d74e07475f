//! Named settings on PostgreSQL.

use super::PostgresStore;
use crate::store::{SettingStorage, StoreResult};

impl SettingStorage for PostgresStore {
    fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        let row = self
            .connection()?
            .query_opt("SELECT value FROM settings WHERE key = $1", &[&key])
            .map_err(self.fail(format!("reading setting {key}")))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        self.connection()?
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .map_err(self.fail(format!("writing setting {key}")))?;
        Ok(())
    }

    fn setting_or_insert(&self, key: &str, candidate: &str) -> StoreResult<String> {
        // `DO UPDATE` (a no-op) rather than `DO NOTHING`: it locks the row and returns it, so a
        // concurrent first insert is waited for and its value returned.
        let row = self
            .connection()?
            .query_one(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = settings.value RETURNING value",
                &[&key, &candidate],
            )
            .map_err(self.fail(format!("reading or creating setting {key}")))?;
        Ok(row.get(0))
    }
}
