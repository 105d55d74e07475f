//! Named settings the program keeps beside the catalog (sync anchors, the server's identity,
//! progress markers). (The SQL is in `sqlite/mod.rs`.)

use super::*;

/// Named settings: a key and its text.
pub trait SettingStorage {
    fn setting(&self, key: &str) -> StoreResult<Option<String>>;

    fn set_setting(&self, key: &str, value: &str) -> StoreResult<()>;
}
