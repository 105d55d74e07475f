//! The administrator's bearer token for the admin API and the web console, kept as a setting.
//!
//! Invariant: the store keeps only the token's SHA-256; the token itself is shown once, when it
//! is made, and compared in constant time. Every backend has it through its settings.

use super::*;
use sha2::{Digest, Sha256};

const TOKEN_KEY: &str = "admin.token_sha256";

/// The administration token (kept as its SHA-256).
pub trait TokenStorage {
    /// Makes a new token (the previous one stops working) and returns it.
    fn new_admin_token(&mut self) -> StoreResult<String>;

    fn has_admin_token(&self) -> StoreResult<bool>;

    /// Whether `presented` is the current token. Without a token nothing matches.
    fn admin_token_matches(&self, presented: &str) -> StoreResult<bool>;
}

impl<S: SettingStorage + ?Sized> TokenStorage for S {
    fn new_admin_token(&mut self) -> StoreResult<String> {
        let token = format!("ferry_{}", hex::encode(crate::random::bytes::<32>()));
        self.set_setting(TOKEN_KEY, &digest_hex(&token))?;
        Ok(token)
    }

    fn has_admin_token(&self) -> StoreResult<bool> {
        Ok(self.setting(TOKEN_KEY)?.is_some())
    }

    fn admin_token_matches(&self, presented: &str) -> StoreResult<bool> {
        let Some(stored) = self.setting(TOKEN_KEY)? else { return Ok(false) };
        let given = digest_hex(presented);
        // Both are 64 hex digits; compare every byte.
        let differing = stored.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        Ok(stored.len() == given.len() && differing == 0)
    }
}

fn digest_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}
