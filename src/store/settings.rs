//! Named settings the program keeps beside the catalog (sync anchors, the server's identity,
//! progress markers). (The SQL is in `sqlite/mod.rs`.)

use super::*;

/// Named settings: a key and its text.
pub trait SettingStorage {
    fn setting(&self, key: &str) -> StoreResult<Option<String>>;

    fn set_setting(&self, key: &str, value: &str) -> StoreResult<()>;

    /// The setting's value; when it has none, `candidate` becomes its value first. Atomic:
    /// processes that start together on one database all get the value that was stored first.
    fn setting_or_insert(&self, key: &str, candidate: &str) -> StoreResult<String>;
}

/// The server's identity, cookie key and configuration time, created on first use and kept: a
/// restart must not invalidate the cookies clients hold, and front ends on one database share
/// them (a cookie one issued is valid on the others).
pub trait IdentityStorage {
    fn server_identity(&self) -> StoreResult<ServerIdentity>;
}

impl<S: SettingStorage + ?Sized> IdentityStorage for S {
    fn server_identity(&self) -> StoreResult<ServerIdentity> {
        let server_id = self.setting_or_insert("server_id", &crate::random::guid().to_string())?;
        let key = |hex_text: &str| {
            hex::decode(hex_text.trim()).ok().and_then(|b| <[u8; 32]>::try_from(b).ok())
        };
        let fresh = hex::encode(crate::random::bytes::<32>());
        let mut cookie_key = key(&self.setting_or_insert("cookie_key", &fresh)?);
        if cookie_key.is_none() {
            // A damaged key is replaced: cookies made with it no longer verify either way.
            self.set_setting("cookie_key", &fresh)?;
            cookie_key = key(&fresh);
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let config_last_change = self.setting_or_insert("config_last_change", &now)?;
        Ok(ServerIdentity {
            server_id,
            cookie_key: cookie_key.expect("a fresh key is 32 bytes"),
            config_last_change,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_identity_is_made_once_and_shared() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open_or_create(dir.path()).unwrap();
        let second = Store::open_or_create(dir.path()).unwrap();
        let a = first.server_identity().unwrap();
        let b = second.server_identity().unwrap();
        assert_eq!((&a.server_id, a.cookie_key), (&b.server_id, b.cookie_key));
        assert_eq!(a.config_last_change, b.config_last_change);
        assert_eq!(first.setting_or_insert("server_id", "other").unwrap(), a.server_id);

        first.set_setting("cookie_key", "not hex").unwrap();
        let replaced = second.server_identity().unwrap();
        assert_ne!(replaced.cookie_key, a.cookie_key, "a damaged key is replaced");
        assert_eq!(first.server_identity().unwrap().cookie_key, replaced.cookie_key, "and kept");
        assert_eq!(replaced.server_id, a.server_id);
    }
}
