//! Cookies: authenticated encryption (ChaCha20-Poly1305) with a key the store keeps, so a
//! restart keeps every cookie valid and nothing but this server can read or forge one.
//!
//! `EncryptedData = nonce (12) || ciphertext`, with the server id and the cookie kind as
//! associated data: a cookie of one kind is never accepted as another.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};

/// Client cookies last an hour, as on WSUS; server-sync cookies four hours.
pub const CLIENT_COOKIE_SECONDS: i64 = 3600;
pub const SERVER_COOKIE_SECONDS: i64 = 4 * 3600;
pub const AUTH_COOKIE_SECONDS: i64 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    ClientAuthorization = 1,
    Client = 2,
    ServerAuthorization = 3,
    Server = 4,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieProblem {
    /// Not ours, damaged, or of another kind.
    Invalid,
    /// Ours and intact, but past its expiry.
    Expired,
}

/// What a cookie carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieData {
    /// SusClientId (client cookies) or the downstream server's id (server cookies).
    pub id: String,
    /// DNS name (authorization cookies).
    pub name: String,
    /// Client-side targeting group names (authorization cookies).
    pub groups: Vec<String>,
    pub issued: i64,
    pub expires: i64,
    /// The deployment stamp the client has seen (ChangedUpdates are the ones after it).
    pub seen_stamp: i64,
    pub protocol: String,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.extend_from_slice(&(b.len().min(u16::MAX as usize) as u16).to_le_bytes());
    out.extend_from_slice(&b[..b.len().min(u16::MAX as usize)]);
}

fn get_str(input: &mut &[u8]) -> Option<String> {
    let (len, rest) = input.split_first_chunk::<2>()?;
    let len = u16::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return None;
    }
    let s = String::from_utf8(rest[..len].to_vec()).ok()?;
    *input = &rest[len..];
    Some(s)
}

fn get_i64(input: &mut &[u8]) -> Option<i64> {
    let (v, rest) = input.split_first_chunk::<8>()?;
    *input = rest;
    Some(i64::from_le_bytes(*v))
}

impl CookieData {
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![1u8];
        put_str(&mut out, &self.id);
        put_str(&mut out, &self.name);
        out.push(self.groups.len().min(255) as u8);
        for g in self.groups.iter().take(255) {
            put_str(&mut out, g);
        }
        for v in [self.issued, self.expires, self.seen_stamp] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        put_str(&mut out, &self.protocol);
        out
    }

    fn decode(mut input: &[u8]) -> Option<CookieData> {
        let (&version, rest) = input.split_first()?;
        if version != 1 {
            return None;
        }
        input = rest;
        let id = get_str(&mut input)?;
        let name = get_str(&mut input)?;
        let (&n, rest) = input.split_first()?;
        input = rest;
        let mut groups = Vec::new();
        for _ in 0..n {
            groups.push(get_str(&mut input)?);
        }
        let issued = get_i64(&mut input)?;
        let expires = get_i64(&mut input)?;
        let seen_stamp = get_i64(&mut input)?;
        let protocol = get_str(&mut input)?;
        Some(CookieData { id, name, groups, issued, expires, seen_stamp, protocol })
    }
}

pub struct CookieJar {
    cipher: ChaCha20Poly1305,
    server_id: Vec<u8>,
    /// Cookies opened before, by kind and sealed bytes (only bytes that decrypted and decoded).
    /// A client sends the same cookie on every call of a scan, and opening one was a twentieth
    /// of the server's time on cached answers. Emptied when full.
    opened: std::sync::Mutex<std::collections::HashMap<(Kind, Vec<u8>), CookieData>>,
}

/// Opened cookies kept: at most 8,192 of at most 512 sealed bytes (what a client cookie is,
/// about 100, with room), so a few MiB.
const OPENED_LIMIT: usize = 8192;
const OPENED_MAX_SEALED: usize = 512;

impl CookieJar {
    pub fn new(key: &[u8; 32], server_id: &str) -> CookieJar {
        CookieJar {
            cipher: ChaCha20Poly1305::new(key.into()),
            server_id: server_id.as_bytes().to_vec(),
            opened: Default::default(),
        }
    }

    fn aad(&self, kind: Kind) -> Vec<u8> {
        let mut aad = self.server_id.clone();
        aad.push(kind as u8);
        aad
    }

    pub fn seal(&self, kind: Kind, data: &CookieData) -> Vec<u8> {
        let nonce_bytes = crate::random::bytes::<12>();
        let aad = self.aad(kind);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce_bytes), Payload { msg: &data.encode(), aad: &aad })
            .expect("encryption into memory cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts and checks expiry against `now` (Unix seconds).
    pub fn open(&self, kind: Kind, sealed: &[u8], now: i64) -> Result<CookieData, CookieProblem> {
        // Authorization cookies are opened once each, and carry what a client chose (names and
        // groups, up to 18 KB): only the small cookies a scan repeats are kept.
        let kept = matches!(kind, Kind::Client | Kind::Server) && sealed.len() <= OPENED_MAX_SEALED;
        let data =
            if kept { self.opened_before(kind, sealed)? } else { self.decrypt(kind, sealed)? };
        if data.expires <= now { Err(CookieProblem::Expired) } else { Ok(data) }
    }

    /// A cookie as opened before, or opened now and kept.
    fn opened_before(&self, kind: Kind, sealed: &[u8]) -> Result<CookieData, CookieProblem> {
        let key = (kind, sealed.to_vec());
        if let Some(data) = self.opened.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(data.clone());
        }
        let data = self.decrypt(kind, sealed)?;
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        if opened.len() >= OPENED_LIMIT {
            opened.clear();
        }
        opened.insert(key, data.clone());
        Ok(data)
    }

    fn decrypt(&self, kind: Kind, sealed: &[u8]) -> Result<CookieData, CookieProblem> {
        if sealed.len() < 12 + 16 {
            return Err(CookieProblem::Invalid);
        }
        let aad = self.aad(kind);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(&sealed[..12]), Payload { msg: &sealed[12..], aad: &aad })
            .map_err(|_| CookieProblem::Invalid)?;
        CookieData::decode(&plain).ok_or(CookieProblem::Invalid)
    }
}

/// `2026-10-04T16:03:35.9967236Z`: seven fractional digits, as WSUS writes cookie expirations.
pub fn wire_time(unix: i64) -> String {
    use chrono::{Datelike, Timelike};
    // Written out rather than through a format string: this is on every client answer.
    let Some(d) = chrono::DateTime::from_timestamp(unix, 0) else { return String::new() };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.0000000Z",
        d.year(),
        d.month(),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_times_have_seven_fraction_digits() {
        assert_eq!(wire_time(1_791_216_215), "2026-10-05T16:03:35.0000000Z");
        assert_eq!(wire_time(0), "1970-01-01T00:00:00.0000000Z");
        assert_eq!(wire_time(951_825_599), "2000-02-29T11:59:59.0000000Z");
    }

    #[test]
    fn cookies_round_trip_and_refuse_forgery_expiry_and_other_kinds() {
        let jar = CookieJar::new(&[7; 32], "server-a");
        let data = CookieData {
            id: "client".into(),
            groups: vec!["Servers".into()],
            expires: 2000,
            seen_stamp: 5,
            ..Default::default()
        };
        let sealed = jar.seal(Kind::Client, &data);
        assert_eq!(jar.open(Kind::Client, &sealed, 1000).unwrap(), data);
        assert_eq!(jar.open(Kind::Client, &sealed, 2000), Err(CookieProblem::Expired));
        assert_eq!(jar.open(Kind::ClientAuthorization, &sealed, 1000), Err(CookieProblem::Invalid));
        let mut forged = sealed.clone();
        forged[20] ^= 1;
        assert_eq!(jar.open(Kind::Client, &forged, 1000), Err(CookieProblem::Invalid));
        let other = CookieJar::new(&[8; 32], "server-a");
        assert_eq!(other.open(Kind::Client, &sealed, 1000), Err(CookieProblem::Invalid));
        assert_eq!(jar.open(Kind::Client, &[0u8; 300], 1000), Err(CookieProblem::Invalid));
    }

    /// Opened cookies are kept: what was kept is still checked for expiry and kind, nothing
    /// refused is kept, and the keeping is bounded.
    #[test]
    fn opened_cookies_are_kept_checked_and_bounded() {
        let jar = CookieJar::new(&[7; 32], "server-a");
        let data = CookieData { id: "client".into(), expires: 2000, ..Default::default() };
        let sealed = jar.seal(Kind::Client, &data);
        assert_eq!(jar.open(Kind::Client, &sealed, 1000).unwrap(), data);
        assert_eq!(
            jar.open(Kind::Client, &sealed, 1000).unwrap(),
            data,
            "opened again from what was kept"
        );
        assert_eq!(jar.open(Kind::Client, &sealed, 2000), Err(CookieProblem::Expired));
        assert_eq!(jar.open(Kind::Server, &sealed, 1000), Err(CookieProblem::Invalid));
        let mut forged = sealed.clone();
        forged[20] ^= 1;
        assert_eq!(jar.open(Kind::Client, &forged, 1000), Err(CookieProblem::Invalid));
        assert_eq!(jar.opened.lock().unwrap().len(), 1, "only the cookie that opened is kept");
        // Found by review: authorization cookies carry up to 18 KB a client chose; not kept.
        let big = CookieData {
            id: "c".repeat(256),
            groups: vec!["g".repeat(256); 16],
            expires: 2000,
            ..Default::default()
        };
        let sealed_auth = jar.seal(Kind::ClientAuthorization, &big);
        assert_eq!(jar.open(Kind::ClientAuthorization, &sealed_auth, 1000).unwrap(), big);
        let sealed_big = jar.seal(Kind::Client, &big);
        assert_eq!(jar.open(Kind::Client, &sealed_big, 1000).unwrap(), big);
        assert_eq!(jar.opened.lock().unwrap().len(), 1, "neither is kept");
        for _ in 0..OPENED_LIMIT + 10 {
            jar.open(Kind::Client, &jar.seal(Kind::Client, &data), 1000).unwrap();
        }
        assert!(jar.opened.lock().unwrap().len() <= OPENED_LIMIT);
    }
}
