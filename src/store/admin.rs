//! The administration token (kept as its SHA-256). (The SQL is in `sqlite/admin.rs`.)

use super::*;

/// The administration token (kept as its SHA-256).
pub trait TokenStorage {
    /// Makes a new token (the previous one stops working) and returns it.
    fn new_admin_token(&mut self) -> StoreResult<String>;

    fn has_admin_token(&self) -> StoreResult<bool>;

    /// Whether `presented` is the current token. Without a token nothing matches.
    fn admin_token_matches(&self, presented: &str) -> StoreResult<bool>;
}
