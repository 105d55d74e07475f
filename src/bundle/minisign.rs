//! Ed25519 keys and signatures in minisign's file formats, so the stock `minisign` tool can
//! check what Ferry signs (and sign with what Ferry generates).
//!
//! ```text
//! KEY.pub   untrusted comment: minisign public key: <KEY ID>
//!           base64("Ed" || key id (8) || public key (32))
//! KEY.key   untrusted comment: ...
//!           base64("Ed" || kdf "Sc" or 00 00 || "B2" || salt (32) || opslimit (8) || memlimit (8)
//!                  || [key id (8) || secret key (64) || BLAKE2b-256 checksum (32)] XOR scrypt stream)
//! X.minisig untrusted comment: ...
//!           base64("ED" || key id (8) || Ed25519(BLAKE2b-512(message)))
//!           trusted comment: <text>
//!           base64(Ed25519(signature || trusted comment))
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use blake2::digest::consts::U32;
use blake2::{Blake2b, Blake2b512, Digest};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use std::fmt;

const SIG_ALG: &[u8; 2] = b"Ed";
const SIG_ALG_PREHASHED: &[u8; 2] = b"ED";
const KDF_SCRYPT: &[u8; 2] = b"Sc";
const KDF_NONE: &[u8; 2] = &[0, 0];
const CHK_ALG: &[u8; 2] = b"B2";
/// minisign's (rust-minisign's) scrypt cost for new keys: N = 2^15, r = 8, p = 1 (32 MiB).
const OPSLIMIT: u64 = 1_048_576;
const MEMLIMIT: u64 = 33_554_432;
const MEMLIMIT_MAX: u64 = 1 << 30;
const SECRET_KEY_FILE_BYTES: usize = 2 + 2 + 2 + 32 + 8 + 8 + 8 + 64 + 32;
const UNTRUSTED: &str = "untrusted comment: ";
const TRUSTED: &str = "trusted comment: ";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a minisign public key: {0}")]
    BadPublicKey(String),
    #[error("not a minisign secret key: {0}")]
    BadSecretKey(String),
    #[error("the secret key is encrypted: give its password with --password-file")]
    PasswordRequired,
    #[error("wrong password for the secret key (its checksum does not match)")]
    WrongPassword,
    #[error("unsupported key parameters: {0}")]
    Unsupported(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("not a minisign signature: {0}")]
    Malformed(String),
    #[error("the signature was made with key {signed_by}, not with key {key}")]
    WrongKey { signed_by: KeyId, key: KeyId },
    #[error("the signature does not match the signed file: it was changed after signing")]
    Invalid,
    #[error("the trusted comment does not match its signature: it was changed after signing")]
    InvalidTrustedComment,
}

/// minisign's key id: 8 random bytes, shown as a little-endian u64 in upper-case hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", u64::from_le_bytes(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl KeyId {
    pub fn parse(text: &str) -> Option<KeyId> {
        u64::from_str_radix(text.trim(), 16).ok().map(|v| KeyId(v.to_le_bytes()))
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: KeyId,
    key: VerifyingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id)
    }
}

impl PublicKey {
    /// The base64 line of a `.pub` file.
    pub fn to_base64(&self) -> String {
        let mut bytes = Vec::with_capacity(42);
        bytes.extend_from_slice(SIG_ALG);
        bytes.extend_from_slice(&self.key_id.0);
        bytes.extend_from_slice(self.key.as_bytes());
        B64.encode(bytes)
    }

    pub fn to_file_text(&self) -> String {
        format!("{UNTRUSTED}minisign public key {}\n{}\n", self.key_id, self.to_base64())
    }

    /// Reads a `.pub` file, or just its base64 line.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with(UNTRUSTED.trim_end()))
            .ok_or_else(|| KeyError::BadPublicKey("no key line".into()))?;
        let bytes = B64
            .decode(line)
            .map_err(|_| KeyError::BadPublicKey("the key line is not base64".into()))?;
        if bytes.len() != 42 || &bytes[..2] != SIG_ALG {
            return Err(KeyError::BadPublicKey(format!(
                "expected 42 bytes starting with \"Ed\", found {} bytes",
                bytes.len()
            )));
        }
        let key_id = KeyId(bytes[2..10].try_into().expect("8 bytes"));
        let key = VerifyingKey::from_bytes(bytes[10..42].try_into().expect("32 bytes"))
            .map_err(|_| KeyError::BadPublicKey("not a valid Ed25519 point".into()))?;
        Ok(PublicKey { key_id, key })
    }
}

pub struct SecretKey {
    pub key_id: KeyId,
    key: SigningKey,
}

pub struct KeyPair {
    pub public: PublicKey,
    pub secret: SecretKey,
}

/// A new key pair from the operating system's random generator.
pub fn generate() -> KeyPair {
    let key = SigningKey::from_bytes(&crate::random::bytes::<32>());
    let key_id = KeyId(crate::random::bytes::<8>());
    KeyPair {
        public: PublicKey { key_id, key: key.verifying_key() },
        secret: SecretKey { key_id, key },
    }
}

/// scrypt parameters from libsodium-style limits (minisign's `pickparams`).
fn scrypt_params(opslimit: u64, memlimit: u64) -> Result<scrypt::Params, KeyError> {
    if memlimit > MEMLIMIT_MAX {
        return Err(KeyError::Unsupported(format!(
            "scrypt memory limit {memlimit} is above {MEMLIMIT_MAX}"
        )));
    }
    let opslimit = opslimit.max(32768);
    let r = 8u32;
    let mut n_log2 = 1u8;
    let p;
    if opslimit < memlimit / 32 {
        p = 1;
        let max_n = opslimit / (r as u64 * 4);
        while n_log2 < 63 && (1u64 << n_log2) <= max_n / 2 {
            n_log2 += 1;
        }
    } else {
        let max_n = memlimit / (r as u64 * 128);
        while n_log2 < 63 && (1u64 << n_log2) <= max_n / 2 {
            n_log2 += 1;
        }
        let max_rp = ((opslimit / 4) / (1u64 << n_log2)).min(0x3fff_ffff) as u32;
        p = max_rp / r;
    }
    if n_log2 > 20 {
        return Err(KeyError::Unsupported("scrypt parameters too high".into()));
    }
    scrypt::Params::new(n_log2, r, p.max(1), 32).map_err(|e| KeyError::Unsupported(e.to_string()))
}

fn key_stream(
    password: &str,
    salt: &[u8],
    opslimit: u64,
    memlimit: u64,
) -> Result<[u8; 104], KeyError> {
    let params = scrypt_params(opslimit, memlimit)?;
    let mut stream = [0u8; 104];
    scrypt::scrypt(password.as_bytes(), salt, &params, &mut stream)
        .map_err(|e| KeyError::Unsupported(e.to_string()))?;
    Ok(stream)
}

fn checksum(key_id: &KeyId, secret: &[u8; 64]) -> [u8; 32] {
    let mut h = Blake2b::<U32>::new();
    h.update(SIG_ALG);
    h.update(key_id.0);
    h.update(secret);
    h.finalize().into()
}

impl SecretKey {
    /// libsodium's 64-byte form: seed then public key.
    fn to_libsodium(&self) -> [u8; 64] {
        let mut sk = [0u8; 64];
        sk[..32].copy_from_slice(self.key.as_bytes());
        sk[32..].copy_from_slice(self.key.verifying_key().as_bytes());
        sk
    }

    pub fn public(&self) -> PublicKey {
        PublicKey { key_id: self.key_id, key: self.key.verifying_key() }
    }

    /// The `.key` file; encrypted as minisign does when a password is given.
    pub fn to_file_text(&self, password: Option<&str>) -> Result<String, KeyError> {
        let sk = self.to_libsodium();
        let mut protected = Vec::with_capacity(104);
        protected.extend_from_slice(&self.key_id.0);
        protected.extend_from_slice(&sk);
        protected.extend_from_slice(&checksum(&self.key_id, &sk));
        let mut out = Vec::with_capacity(SECRET_KEY_FILE_BYTES);
        out.extend_from_slice(SIG_ALG);
        let comment = match password {
            Some(password) => {
                let salt = crate::random::bytes::<32>();
                let stream = key_stream(password, &salt, OPSLIMIT, MEMLIMIT)?;
                for (b, s) in protected.iter_mut().zip(stream.iter()) {
                    *b ^= s;
                }
                out.extend_from_slice(KDF_SCRYPT);
                out.extend_from_slice(CHK_ALG);
                out.extend_from_slice(&salt);
                out.extend_from_slice(&OPSLIMIT.to_le_bytes());
                out.extend_from_slice(&MEMLIMIT.to_le_bytes());
                "minisign encrypted secret key"
            }
            None => {
                out.extend_from_slice(KDF_NONE);
                out.extend_from_slice(CHK_ALG);
                out.extend_from_slice(&[0u8; 48]);
                "minisign secret key (NOT password-protected)"
            }
        };
        out.extend_from_slice(&protected);
        Ok(format!("{UNTRUSTED}{comment}\n{}\n", B64.encode(out)))
    }

    /// True when the `.key` file needs a password.
    pub fn file_is_encrypted(text: &str) -> Result<bool, KeyError> {
        let bytes = Self::file_bytes(text)?;
        Ok(&bytes[2..4] == KDF_SCRYPT)
    }

    fn file_bytes(text: &str) -> Result<Vec<u8>, KeyError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with(UNTRUSTED.trim_end()))
            .ok_or_else(|| KeyError::BadSecretKey("no key line".into()))?;
        let bytes = B64
            .decode(line)
            .map_err(|_| KeyError::BadSecretKey("the key line is not base64".into()))?;
        if bytes.len() != SECRET_KEY_FILE_BYTES || &bytes[..2] != SIG_ALG || &bytes[4..6] != CHK_ALG
        {
            return Err(KeyError::BadSecretKey(format!(
                "expected {SECRET_KEY_FILE_BYTES} bytes of an Ed25519 key, found {}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    pub fn parse(text: &str, password: Option<&str>) -> Result<SecretKey, KeyError> {
        let bytes = Self::file_bytes(text)?;
        let mut protected: [u8; 104] = bytes[54..].try_into().expect("104 bytes");
        match &bytes[2..4] {
            k if k == KDF_SCRYPT => {
                let password = password.ok_or(KeyError::PasswordRequired)?;
                let opslimit = u64::from_le_bytes(bytes[38..46].try_into().expect("8 bytes"));
                let memlimit = u64::from_le_bytes(bytes[46..54].try_into().expect("8 bytes"));
                let stream = key_stream(password, &bytes[6..38], opslimit, memlimit)?;
                for (b, s) in protected.iter_mut().zip(stream.iter()) {
                    *b ^= s;
                }
            }
            k if k == KDF_NONE => {}
            other => return Err(KeyError::Unsupported(format!("key derivation {other:?}"))),
        }
        let key_id = KeyId(protected[..8].try_into().expect("8 bytes"));
        let sk: [u8; 64] = protected[8..72].try_into().expect("64 bytes");
        if checksum(&key_id, &sk)[..] != protected[72..] {
            return Err(if &bytes[2..4] == KDF_SCRYPT {
                KeyError::WrongPassword
            } else {
                KeyError::BadSecretKey("checksum mismatch".into())
            });
        }
        let key = SigningKey::from_bytes(sk[..32].try_into().expect("32 bytes"));
        if key.verifying_key().as_bytes()[..] != sk[32..] {
            return Err(KeyError::BadSecretKey(
                "the public half does not belong to the secret half".into(),
            ));
        }
        Ok(SecretKey { key_id, key })
    }

    /// A `.minisig` for `message` (prehashed, as current minisign signs).
    pub fn sign(&self, message: &[u8], trusted_comment: &str, untrusted_comment: &str) -> String {
        let prehash = Blake2b512::digest(message);
        let signature = self.key.sign(&prehash).to_bytes();
        let mut line = Vec::with_capacity(74);
        line.extend_from_slice(SIG_ALG_PREHASHED);
        line.extend_from_slice(&self.key_id.0);
        line.extend_from_slice(&signature);
        let mut global_input = signature.to_vec();
        global_input.extend_from_slice(trusted_comment.as_bytes());
        let global = self.key.sign(&global_input).to_bytes();
        format!(
            "{UNTRUSTED}{untrusted_comment}\n{}\n{TRUSTED}{trusted_comment}\n{}\n",
            B64.encode(line),
            B64.encode(global)
        )
    }
}

/// A parsed `.minisig` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub key_id: KeyId,
    prehashed: bool,
    signature: [u8; 64],
    pub trusted_comment: String,
    global: [u8; 64],
}

impl Signature {
    pub fn parse(text: &str) -> Result<Signature, SignatureError> {
        let mut lines = text.lines();
        let bad = |what: &str| SignatureError::Malformed(what.to_string());
        let untrusted = lines.next().ok_or_else(|| bad("empty file"))?;
        if !untrusted.starts_with(UNTRUSTED) {
            return Err(bad("the first line is not an untrusted comment"));
        }
        let sig = B64
            .decode(lines.next().ok_or_else(|| bad("no signature line"))?.trim())
            .map_err(|_| bad("the signature line is not base64"))?;
        if sig.len() != 74 {
            return Err(bad("the signature line has the wrong length"));
        }
        let prehashed = match &sig[..2] {
            a if a == SIG_ALG_PREHASHED => true,
            a if a == SIG_ALG => false,
            _ => return Err(bad("unknown signature algorithm")),
        };
        let trusted = lines.next().ok_or_else(|| bad("no trusted comment"))?;
        let trusted_comment = trusted
            .strip_prefix(TRUSTED)
            .ok_or_else(|| bad("the third line is not a trusted comment"))?
            .to_string();
        let global = B64
            .decode(lines.next().ok_or_else(|| bad("no global signature"))?.trim())
            .map_err(|_| bad("the global signature is not base64"))?;
        Ok(Signature {
            key_id: KeyId(sig[2..10].try_into().expect("8 bytes")),
            prehashed,
            signature: sig[10..74].try_into().expect("64 bytes"),
            trusted_comment,
            global: global
                .try_into()
                .map_err(|_| bad("the global signature has the wrong length"))?,
        })
    }

    /// Checks the signature of `message` and of the trusted comment with `key`.
    pub fn verify(&self, key: &PublicKey, message: &[u8]) -> Result<(), SignatureError> {
        if self.key_id != key.key_id {
            return Err(SignatureError::WrongKey { signed_by: self.key_id, key: key.key_id });
        }
        let sig = ed25519_dalek::Signature::from_bytes(&self.signature);
        let ok = if self.prehashed {
            key.key.verify(&Blake2b512::digest(message), &sig)
        } else {
            key.key.verify(message, &sig)
        };
        ok.map_err(|_| SignatureError::Invalid)?;
        let mut global_input = self.signature.to_vec();
        global_input.extend_from_slice(self.trusted_comment.as_bytes());
        key.key
            .verify(&global_input, &ed25519_dalek::Signature::from_bytes(&self.global))
            .map_err(|_| SignatureError::InvalidTrustedComment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip() {
        let pair = generate();
        let sig = pair.secret.sign(b"manifest", "channel:x sequence:1", "signature from ferry");
        let parsed = Signature::parse(&sig).unwrap();
        assert_eq!(parsed.trusted_comment, "channel:x sequence:1");
        parsed.verify(&pair.public, b"manifest").unwrap();
        assert_eq!(parsed.verify(&pair.public, b"manifesT"), Err(SignatureError::Invalid));
        let tampered = sig.replace("sequence:1", "sequence:2");
        assert_eq!(
            Signature::parse(&tampered).unwrap().verify(&pair.public, b"manifest"),
            Err(SignatureError::InvalidTrustedComment)
        );
        let other = generate();
        assert!(matches!(
            parsed.verify(&other.public, b"manifest"),
            Err(SignatureError::WrongKey { .. })
        ));
    }

    #[test]
    fn key_files_round_trip_with_and_without_password() {
        let pair = generate();
        let public = PublicKey::parse(&pair.public.to_file_text()).unwrap();
        assert_eq!(public, pair.public);
        let plain = pair.secret.to_file_text(None).unwrap();
        assert!(!SecretKey::file_is_encrypted(&plain).unwrap());
        assert_eq!(SecretKey::parse(&plain, None).unwrap().public(), pair.public);
        let encrypted = pair.secret.to_file_text(Some("correct horse")).unwrap();
        assert!(SecretKey::file_is_encrypted(&encrypted).unwrap());
        assert_eq!(SecretKey::parse(&encrypted, None).err(), Some(KeyError::PasswordRequired));
        assert_eq!(
            SecretKey::parse(&encrypted, Some("wrong")).err(),
            Some(KeyError::WrongPassword)
        );
        assert_eq!(
            SecretKey::parse(&encrypted, Some("correct horse")).unwrap().public(),
            pair.public
        );
    }

    #[test]
    fn scrypt_parameters_follow_minisign() {
        let p = scrypt_params(OPSLIMIT, MEMLIMIT).unwrap();
        assert_eq!((p.log_n(), p.r(), p.p()), (15, 8, 1));
    }
}
