//! The publishing identity: the site's code-signing certificate (with any chain certificates) and
//! its RSA private key, loaded from PEM or PFX and checked before any use, or made new as a
//! self-signed certificate (`ferry publish cert new`).
//!
//! The private key is held in memory only as long as the identity lives; it is written nowhere
//! but the key file `new_self_signed` creates, and `Debug` does not show it.

use der::oid::ObjectIdentifier;
use der::pem::LineEnding;
use der::{Decode, Encode, EncodePem};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

/// Code signing, the extended key usage Authenticode requires of the signer.
pub const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The smallest RSA key the publishing certificate may have: what Microsoft asks of WSUS
/// signing certificates (keys under 1024 bits are blocked outright since KB2661254).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest: beyond it signing is slow for no gain, and a bigger key is more likely a mistake.
pub const MAX_RSA_BITS: usize = 16384;
/// A PFX or PEM file larger than this is not a certificate file.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Why a publishing certificate or key cannot be used, naming the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{}: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "{}: the key is {algorithm}, not RSA; Windows Update's publishing certificates are RSA: make one with `ferry publish cert new`",
        path.display()
    )]
    NotRsa { path: PathBuf, algorithm: String },
    #[error(
        "{}: the private key is encrypted; write it without a passphrase (`openssl pkey -in KEY -out PLAIN.key`, kept as private as the original) or use a PFX with --pfx and --password-file",
        path.display()
    )]
    EncryptedKey { path: PathBuf },
    #[error(
        "{}: the RSA key has {bits} bits; a publishing key needs at least {MIN_RSA_BITS} (and at most {MAX_RSA_BITS}): make a new certificate with `ferry publish cert new`",
        path.display()
    )]
    KeySize { path: PathBuf, bits: usize },
    #[error(
        "{} does not belong to the certificate in {} (their public keys differ): pass the key that was made with this certificate",
        key.display(), certificate.display()
    )]
    KeyMismatch { certificate: PathBuf, key: PathBuf },
    #[error(
        "{}: the certificate \"{subject}\" is not a code-signing certificate ({reason}); Windows installs locally published updates only when they are signed for code signing (extended key usage 1.3.6.1.5.5.7.3.3): use such a certificate, or make one with `ferry publish cert new`",
        path.display()
    )]
    NotCodeSigning { path: PathBuf, subject: String, reason: String },
    #[error(
        "{}: the certificate \"{subject}\" expired on {not_after} (it was valid from {not_before}); clients refuse what it signs: renew it or make a new one with `ferry publish cert new`, and deploy it to the clients",
        path.display()
    )]
    Expired { path: PathBuf, subject: String, not_before: String, not_after: String },
    #[error(
        "{}: the certificate \"{subject}\" is valid only from {not_before} (until {not_after}); check this machine's clock, or wait until then",
        path.display()
    )]
    NotYetValid { path: PathBuf, subject: String, not_before: String, not_after: String },
    #[error("{}: wrong password for this PFX file ({hint})", path.display())]
    WrongPassword { path: PathBuf, hint: String },
    #[error(
        "{}: {reason}; re-export it with OpenSSL 3's defaults (AES-256, PBKDF2): `openssl pkcs12 -in OLD.pfx -legacy -nodes | openssl pkcs12 -export -out NEW.pfx`",
        path.display()
    )]
    UnsupportedPfx { path: PathBuf, reason: String },
    #[error("{} exists already: choose another --out (ferry never replaces a certificate or key)", path.display())]
    Exists { path: PathBuf },
    #[error("{0}")]
    Invalid(String),
    #[error("signing with the certificate \"{subject}\": {reason}")]
    Sign { subject: String, reason: String },
}

/// The certificate that signs published content, its chain, and its private key.
pub struct PublishingIdentity {
    certificate: Certificate,
    /// Further certificates given with it (intermediates, perhaps the root), leaf excluded.
    chain: Vec<Certificate>,
    key: RsaPrivateKey,
}

impl fmt::Debug for PublishingIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishingIdentity")
            .field("subject", &self.subject())
            .field("chain", &self.chain.len())
            .field("key", &"(private)")
            .finish()
    }
}

/// Where an identity was read from, for the errors.
struct Files<'a> {
    certificate: &'a Path,
    key: &'a Path,
}

impl PublishingIdentity {
    /// Reads a PEM certificate file (the signing certificate first, then any chain certificates)
    /// and a PEM private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`), then checks them
    /// (see `check_at`) at the current time.
    pub fn from_pem_files(certificate: &Path, key: &Path) -> Result<Self, SigningError> {
        let mut certificates = read_certificates(certificate)?;
        let leaf = certificates.remove(0);
        let key_file = key;
        warn_if_others_can_read(key_file);
        let key = rsa_key(key_file, &read_private_key(key_file)?)?;
        let identity = Self { certificate: leaf, chain: certificates, key };
        identity.check_at(Files { certificate, key: key_file }, SystemTime::now())?;
        Ok(identity)
    }

    /// Reads a PFX (PKCS#12) file, OpenSSL 3's default encryption (AES-256-CBC, PBKDF2,
    /// HMAC-SHA-256) or the legacy one (3DES, RC2-40, HMAC-SHA-1), with the password on the
    /// first line of `password_file` (none: the empty password), then checks it at the current
    /// time.
    pub fn from_pfx_file(pfx: &Path, password_file: Option<&Path>) -> Result<Self, SigningError> {
        let password = match password_file {
            Some(file) => read_password(file)?,
            None => String::new(),
        };
        let data = read_limited(pfx)?;
        if password.is_empty() {
            warn_if_others_can_read(pfx);
        }
        let identity = parse_pfx(pfx, &data, &password, password_file)?;
        identity.check_at(Files { certificate: pfx, key: pfx }, SystemTime::now())?;
        Ok(identity)
    }

    /// The certificate's subject, as RFC 4514 text.
    pub fn subject(&self) -> String {
        self.certificate.tbs_certificate.subject.to_string()
    }

    /// The end of the certificate's validity: nothing it signs is accepted by clients after it,
    /// since there is no timestamp.
    pub fn not_after(&self) -> SystemTime {
        self.certificate.tbs_certificate.validity.not_after.to_system_time()
    }

    /// The signing certificate, DER.
    pub fn certificate_der(&self) -> Result<Vec<u8>, SigningError> {
        self.certificate.to_der().map_err(|e| self.sign_error(e))
    }

    /// The SHA-1 thumbprint of the certificate, upper-case hex, as Windows shows it.
    pub fn thumbprint(&self) -> Result<String, SigningError> {
        Ok(hex::encode_upper(sha1::Sha1::digest(self.certificate_der()?)))
    }

    /// The signing certificate, then the chain certificates given with it.
    pub(crate) fn certificates(&self) -> impl Iterator<Item = &Certificate> {
        std::iter::once(&self.certificate).chain(&self.chain)
    }

    pub(crate) fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// How long an RSASSA-PKCS1-v1_5 signature made with the key is: the modulus' bytes.
    pub(crate) fn signature_len(&self) -> usize {
        self.key.size()
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`; always `signature_len` bytes.
    pub(crate) fn sign_sha256(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let signer = SigningKey::<Sha256>::new(self.key.clone());
        let signature = signer.try_sign(message).map_err(|e| self.sign_error(e))?;
        Ok(signature.to_vec())
    }

    fn sign_error(&self, e: impl fmt::Display) -> SigningError {
        SigningError::Sign { subject: self.subject(), reason: e.to_string() }
    }

    /// The checks before any use: an RSA key of `MIN_RSA_BITS` to `MAX_RSA_BITS` bits that is
    /// the certificate's, the code-signing extended key usage (and digitalSignature if the
    /// certificate restricts its key usage), and `now` inside the validity.
    fn check_at(&self, files: Files<'_>, now: SystemTime) -> Result<(), SigningError> {
        let bits = self.key.n().bits();
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(SigningError::KeySize { path: files.key.to_path_buf(), bits });
        }
        let public = certificate_rsa_key(&self.certificate, files.certificate)?;
        if public != self.key.to_public_key() {
            return Err(SigningError::KeyMismatch {
                certificate: files.certificate.to_path_buf(),
                key: files.key.to_path_buf(),
            });
        }
        if let Some(reason) = not_code_signing(&self.certificate) {
            return Err(SigningError::NotCodeSigning {
                path: files.certificate.to_path_buf(),
                subject: self.subject(),
                reason,
            });
        }
        check_validity(&self.certificate, files.certificate, now)
    }
}

/// Warns when a private key's file can be read by users other than its owner (a key made by
/// `ferry publish cert new` is 0600).
#[cfg(unix)]
fn warn_if_others_can_read(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "{}: the private key can be read by other users (mode {mode:o}); anyone who reads it can sign updates your clients install: chmod 600 it",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_others_can_read(_: &Path) {}

fn read_limited(path: &Path) -> Result<Vec<u8>, SigningError> {
    use std::io::Read;
    let read_error = |source| SigningError::Read { path: path.to_path_buf(), source };
    let file = super::open_regular(path).map_err(read_error)?;
    let len = file.metadata().map_err(read_error)?.len();
    let too_large = |len: u64| SigningError::Malformed {
        path: path.to_path_buf(),
        reason: format!("{len} bytes is too large for a certificate or key file"),
    };
    if len > MAX_FILE_BYTES {
        return Err(too_large(len));
    }
    // Read no more than the limit, whatever the file grew to meanwhile.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The password on the first line of a file (a trailing CR or LF is not part of it).
fn read_password(path: &Path) -> Result<String, SigningError> {
    let bytes = read_limited(path)?;
    let text = String::from_utf8(bytes).map_err(|_| SigningError::Malformed {
        path: path.to_path_buf(),
        reason: "the password file is not UTF-8 text".into(),
    })?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// Every certificate in a PEM file (or one DER certificate), in file order.
fn read_certificates(path: &Path) -> Result<Vec<Certificate>, SigningError> {
    let data = read_limited(path)?;
    let malformed = |reason: String| SigningError::Malformed { path: path.to_path_buf(), reason };
    let ders: Vec<Vec<u8>> = if data.first() == Some(&0x30) {
        vec![data]
    } else {
        rustls_pemfile::certs(&mut data.as_slice())
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|e| malformed(format!("not a PEM certificate file: {e}")))?
    };
    if ders.is_empty() {
        return Err(malformed(
            "holds no certificate (expected PEM \"-----BEGIN CERTIFICATE-----\")".into(),
        ));
    }
    ders.iter().map(|der| decode_certificate(path, der)).collect()
}

/// A certificate from DER, refused unless it encodes back to the same bytes (it is embedded in
/// every signature as decoded, so a re-encoding that differed would break its own signature).
fn decode_certificate(path: &Path, der: &[u8]) -> Result<Certificate, SigningError> {
    let malformed = |reason: String| SigningError::Malformed { path: path.to_path_buf(), reason };
    let certificate = Certificate::from_der(der)
        .map_err(|e| malformed(format!("not an X.509 certificate: {e}")))?;
    if certificate.to_der().ok().as_deref() != Some(der) {
        return Err(malformed("the certificate is not in canonical DER".into()));
    }
    Ok(certificate)
}

/// A private key as a file holds it.
enum KeyDer {
    Pkcs8(Vec<u8>),
    Pkcs1(Vec<u8>),
}

/// The one private key in a PEM file.
fn read_private_key(path: &Path) -> Result<KeyDer, SigningError> {
    let data = read_limited(path)?;
    let malformed = |reason: String| SigningError::Malformed { path: path.to_path_buf(), reason };
    if data.windows(9).any(|w| w == b"ENCRYPTED") {
        return Err(SigningError::EncryptedKey { path: path.to_path_buf() });
    }
    let mut keys = Vec::new();
    for item in rustls_pemfile::read_all(&mut data.as_slice()) {
        match item.map_err(|e| malformed(format!("not a PEM key file: {e}")))? {
            rustls_pemfile::Item::Pkcs8Key(k) => {
                keys.push(KeyDer::Pkcs8(k.secret_pkcs8_der().to_vec()));
            }
            rustls_pemfile::Item::Pkcs1Key(k) => {
                keys.push(KeyDer::Pkcs1(k.secret_pkcs1_der().to_vec()));
            }
            rustls_pemfile::Item::Sec1Key(_) => {
                return Err(SigningError::NotRsa {
                    path: path.to_path_buf(),
                    algorithm: "an elliptic-curve key".into(),
                });
            }
            _ => {}
        }
    }
    match keys.len() {
        1 => Ok(keys.remove(0)),
        0 => Err(malformed(
            "holds no private key (expected PEM \"PRIVATE KEY\" or \"RSA PRIVATE KEY\")".into(),
        )),
        n => Err(malformed(format!("holds {n} private keys; give the file with the one key"))),
    }
}

fn rsa_key(path: &Path, key: &KeyDer) -> Result<RsaPrivateKey, SigningError> {
    let malformed = |reason: String| SigningError::Malformed { path: path.to_path_buf(), reason };
    let der = match key {
        KeyDer::Pkcs1(der) => {
            return RsaPrivateKey::from_pkcs1_der(der)
                .map_err(|e| malformed(format!("not an RSA private key: {e}")));
        }
        KeyDer::Pkcs8(der) => der.as_slice(),
    };
    let info = pkcs8::PrivateKeyInfo::try_from(der)
        .map_err(|e| malformed(format!("not a PKCS#8 private key: {e}")))?;
    if info.algorithm.oid != RSA_ENCRYPTION {
        return Err(SigningError::NotRsa {
            path: path.to_path_buf(),
            algorithm: algorithm_name(info.algorithm.oid),
        });
    }
    RsaPrivateKey::from_pkcs8_der(der)
        .map_err(|e| malformed(format!("not an RSA private key: {e}")))
}

fn algorithm_name(oid: ObjectIdentifier) -> String {
    match const_oid::db::DB.by_oid(&oid) {
        Some(name) => format!("{name} ({oid})"),
        None => oid.to_string(),
    }
}

/// The PFX's one key and its certificate chain (leaf first).
fn parse_pfx(
    path: &Path,
    data: &[u8],
    password: &str,
    password_file: Option<&Path>,
) -> Result<PublishingIdentity, SigningError> {
    use p12_keystore::error::Error as P12;
    let store = p12_keystore::KeyStore::from_pkcs12(data, password).map_err(|e| match e {
        P12::MacError(_) | P12::UnpadError => SigningError::WrongPassword {
            path: path.to_path_buf(),
            hint: match password_file {
                Some(f) => format!("the password is the first line of {}", f.display()),
                None => "no --password-file was given, so the empty password was tried".into(),
            },
        },
        P12::UnsupportedEncryptionScheme | P12::UnsupportedMacAlgorithm => {
            SigningError::UnsupportedPfx { path: path.to_path_buf(), reason: e.to_string() }
        }
        other => SigningError::Malformed {
            path: path.to_path_buf(),
            reason: format!("not a readable PFX (PKCS#12) file: {other}"),
        },
    })?;
    let malformed = |reason: String| SigningError::Malformed { path: path.to_path_buf(), reason };
    let chains: Vec<_> = store
        .entries()
        .filter_map(|(_, entry)| match entry {
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => Some(chain),
            _ => None,
        })
        .collect();
    let chain = match chains.as_slice() {
        [one] => *one,
        [] => {
            return Err(malformed(
                "holds no private key with its certificate (export both: `openssl pkcs12 -export -inkey KEY -in CRT`)".into(),
            ));
        }
        many => {
            return Err(malformed(format!(
                "holds {} keys; export the one to sign with",
                many.len()
            )));
        }
    };
    let key = rsa_key(path, &KeyDer::Pkcs8(chain.key().to_vec()))?;
    let mut certificates = chain
        .chain()
        .iter()
        .map(|c| decode_certificate(path, c.as_der()))
        .collect::<Result<Vec<_>, _>>()?;
    if certificates.is_empty() {
        return Err(malformed("holds a key without its certificate".into()));
    }
    let certificate = certificates.remove(0);
    Ok(PublishingIdentity { certificate, chain: certificates, key })
}

fn certificate_rsa_key(
    certificate: &Certificate,
    path: &Path,
) -> Result<RsaPublicKey, SigningError> {
    let spki = &certificate.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(SigningError::NotRsa {
            path: path.to_path_buf(),
            algorithm: algorithm_name(spki.algorithm.oid),
        });
    }
    let der = spki.to_der().map_err(|e| SigningError::Malformed {
        path: path.to_path_buf(),
        reason: format!("the certificate's public key: {e}"),
    })?;
    RsaPublicKey::from_public_key_der(&der).map_err(|e| SigningError::Malformed {
        path: path.to_path_buf(),
        reason: format!("the certificate's RSA public key: {e}"),
    })
}

/// Why the certificate cannot sign code, or `None` when it can: it must name code signing in
/// its extended key usage and, if it restricts its key usage, allow digital signatures.
pub(crate) fn not_code_signing(certificate: &Certificate) -> Option<String> {
    let extensions = certificate.tbs_certificate.extensions.as_deref().unwrap_or_default();
    let find = |oid| extensions.iter().find(|e| e.extn_id == oid);
    let Some(eku) = find(EXT_KEY_USAGE) else {
        return Some("it has no extended key usage".into());
    };
    match ExtendedKeyUsage::from_der(eku.extn_value.as_bytes()) {
        Ok(usages) if usages.0.contains(&CODE_SIGNING) => {}
        Ok(usages) => {
            let names: Vec<String> = usages.0.iter().map(|u| algorithm_name(*u)).collect();
            return Some(format!("its extended key usage is {}", names.join(", ")));
        }
        Err(e) => return Some(format!("its extended key usage is unreadable: {e}")),
    }
    if let Some(ku) = find(KEY_USAGE) {
        match KeyUsage::from_der(ku.extn_value.as_bytes()) {
            Ok(usage) if usage.digital_signature() => {}
            Ok(_) => return Some("its key usage does not allow digital signatures".into()),
            Err(e) => return Some(format!("its key usage is unreadable: {e}")),
        }
    }
    None
}

fn check_validity(
    certificate: &Certificate,
    path: &Path,
    now: SystemTime,
) -> Result<(), SigningError> {
    let validity = &certificate.tbs_certificate.validity;
    let (from, until) = (validity.not_before.to_system_time(), validity.not_after.to_system_time());
    let subject = certificate.tbs_certificate.subject.to_string();
    let (not_before, not_after) = (show_time(from), show_time(until));
    let path = path.to_path_buf();
    if now < from {
        return Err(SigningError::NotYetValid { path, subject, not_before, not_after });
    }
    if now > until {
        return Err(SigningError::Expired { path, subject, not_before, not_after });
    }
    Ok(())
}

/// A time as `2026-12-05 08:00:00 UTC`.
pub fn show_time(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// What `new_self_signed` makes.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// The subject: a distinguished name (`CN=...,O=...`) or plain text, which becomes the
    /// common name.
    pub subject: String,
    /// How many years it is valid from now (1 to 30). Clients refuse what it signed once it
    /// expires, since nothing is timestamped offline.
    pub years: u32,
    /// The RSA key's size, `MIN_RSA_BITS` to `MAX_RSA_BITS`.
    pub bits: usize,
}

impl Default for NewCertificate {
    fn default() -> Self {
        Self { subject: "Ferry local publishing".into(), years: 5, bits: 3072 }
    }
}

/// What `new_self_signed` wrote.
#[derive(Debug, Clone)]
pub struct CreatedCertificate {
    /// `PREFIX.crt`: the certificate, PEM, to deploy to the clients.
    pub certificate: PathBuf,
    /// `PREFIX.key`: the private key, PEM (PKCS#8), mode 0600.
    pub key: PathBuf,
    pub subject: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// SHA-1 thumbprint, upper-case hex, as Windows' certificate stores show it.
    pub thumbprint: String,
}

/// Makes a self-signed code-signing certificate (RSA, sha256WithRSAEncryption, extended key
/// usage code signing, key usage digitalSignature, basicConstraints CA:FALSE, a random 128-bit
/// serial, no CRL or AIA location, which an offline client could not reach) and writes it as
/// `PREFIX.crt` and its key as `PREFIX.key` (mode 0600), replacing neither.
pub fn new_self_signed(
    prefix: &Path,
    request: &NewCertificate,
) -> Result<CreatedCertificate, SigningError> {
    let text = prefix.as_os_str().to_string_lossy();
    let named = matches!(prefix.file_name(), Some(n) if n != "." && n != "..");
    if !named || text.ends_with(std::path::MAIN_SEPARATOR) {
        return Err(SigningError::Invalid(format!(
            "--out {text:?}: that is a folder; name the files' prefix (e.g. {}): PREFIX.crt and PREFIX.key are written",
            Path::new(text.trim_end_matches(std::path::MAIN_SEPARATOR))
                .join("publishing")
                .display()
        )));
    }
    let (crt, key_file) = (with_suffix(prefix, "crt"), with_suffix(prefix, "key"));
    for path in [&crt, &key_file] {
        if path.exists() {
            return Err(SigningError::Exists { path: path.clone() });
        }
    }
    let subject = subject_name(&request.subject)?;
    if !(1..=30).contains(&request.years) {
        return Err(SigningError::Invalid(format!(
            "a certificate valid for {} years: choose 1 to 30",
            request.years
        )));
    }
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&request.bits) || request.bits % 8 != 0 {
        return Err(SigningError::Invalid(format!(
            "an RSA key of {} bits: choose a multiple of 8 from {MIN_RSA_BITS} to {MAX_RSA_BITS}",
            request.bits
        )));
    }
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, request.bits)
        .map_err(|e| SigningError::Invalid(format!("making the RSA key: {e}")))?;
    let certificate = build_self_signed(&key, subject, request.years, SystemTime::now())?;
    let cert_pem = certificate
        .to_pem(LineEnding::LF)
        .map_err(|e| SigningError::Invalid(format!("encoding the certificate: {e}")))?;
    let key_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| SigningError::Invalid(format!("encoding the key: {e}")))?;
    write_new(&key_file, key_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&crt, cert_pem.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&key_file);
        return Err(e);
    }
    let validity = &certificate.tbs_certificate.validity;
    let der = certificate.to_der().map_err(|e| SigningError::Invalid(e.to_string()))?;
    Ok(CreatedCertificate {
        certificate: crt,
        key: key_file,
        subject: certificate.tbs_certificate.subject.to_string(),
        not_before: validity.not_before.to_system_time(),
        not_after: validity.not_after.to_system_time(),
        thumbprint: hex::encode_upper(sha1::Sha1::digest(&der)),
    })
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// A subject from what the operator typed: a distinguished name if it has `=`, else a common
/// name.
fn subject_name(text: &str) -> Result<Name, SigningError> {
    let text = text.trim();
    let shown: String = text.chars().take(80).collect();
    let invalid = |why: String| SigningError::Invalid(format!("the subject \"{shown}\": {why}"));
    if text.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid("it contains a control character".into()));
    }
    // RFC 5280's upper bound for a common name; a whole name gets room for a few more parts.
    let (len, dn) = (text.chars().count(), text.contains('='));
    if (!dn && len > 64) || len > 512 {
        let max = if dn { "512 characters" } else { "64 characters (a common name's limit)" };
        return Err(invalid(format!("it is {len} characters long; at most {max}")));
    }
    if dn {
        return Name::from_str(text).map_err(|e| invalid(format!("not a distinguished name: {e}")));
    }
    let escaped: String = text
        .chars()
        .flat_map(|c| {
            let escape = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';');
            escape.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect();
    Name::from_str(&format!("CN={escaped}")).map_err(|e| invalid(e.to_string()))
}

/// The certificate itself, valid from a day before `now` (clients' clocks drift) for `years`.
fn build_self_signed(
    key: &RsaPrivateKey,
    subject: Name,
    years: u32,
    now: SystemTime,
) -> Result<Certificate, SigningError> {
    let failed =
        |e: &dyn fmt::Display| SigningError::Invalid(format!("making the certificate: {e}"));
    let since_epoch = now.duration_since(SystemTime::UNIX_EPOCH).map_err(|e| failed(&e))?;
    let start_secs = since_epoch.as_secs().saturating_sub(86_400);
    let start = chrono::DateTime::<chrono::Utc>::from(
        SystemTime::UNIX_EPOCH + Duration::from_secs(start_secs),
    );
    let end = start
        .checked_add_months(chrono::Months::new(12 * years))
        .ok_or_else(|| failed(&"the validity's end is out of range"))?;
    let validity = Validity {
        not_before: Time::try_from(SystemTime::from(start)).map_err(|e| failed(&e))?,
        not_after: Time::try_from(SystemTime::from(end)).map_err(|e| failed(&e))?,
    };
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(|e| failed(&e))?;
    // Positive, and no leading zero byte for DER to strip.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let serial = SerialNumber::new(&serial).map_err(|e| failed(&e))?;
    let spki = SubjectPublicKeyInfoOwned::from_key(key.to_public_key()).map_err(|e| failed(&e))?;
    let signer = SigningKey::<Sha256>::new(key.clone());
    let profile = Profile::Leaf {
        issuer: subject.clone(),
        enable_key_agreement: false,
        enable_key_encipherment: false,
    };
    let mut builder = CertificateBuilder::new(profile, serial, validity, subject, spki, &signer)
        .map_err(|e| failed(&e))?;
    builder.add_extension(&CodeSigningUsage).map_err(|e| failed(&e))?;
    let certificate = builder.build::<rsa::pkcs1v15::Signature>().map_err(|e| failed(&e))?;
    // The leaf profile gave it SKI, AKI, basicConstraints CA:FALSE (critical) and key usage
    // digitalSignature + nonRepudiation (critical).
    debug_assert!(not_code_signing(&certificate).is_none());
    Ok(certificate)
}

/// The extended key usage code signing, not critical (as Windows' own tools write it; the
/// crate's `ExtendedKeyUsage` would mark it critical).
struct CodeSigningUsage;

impl der::oid::AssociatedOid for CodeSigningUsage {
    const OID: ObjectIdentifier = EXT_KEY_USAGE;
}

impl Encode for CodeSigningUsage {
    fn encoded_len(&self) -> der::Result<der::Length> {
        ExtendedKeyUsage(vec![CODE_SIGNING]).encoded_len()
    }

    fn encode(&self, writer: &mut impl der::Writer) -> der::Result<()> {
        ExtendedKeyUsage(vec![CODE_SIGNING]).encode(writer)
    }
}

impl x509_cert::ext::AsExtension for CodeSigningUsage {
    fn critical(&self, _: &Name, _: &[x509_cert::ext::Extension]) -> bool {
        false
    }
}

/// Writes a file that must not exist yet (never replacing one, even one made meanwhile), with
/// `mode` on Unix.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), SigningError> {
    let write_error = |source| SigningError::Write { path: path.to_path_buf(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => SigningError::Exists { path: path.to_path_buf() },
        _ => write_error(source),
    })?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(write_error(source));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RsaPrivateKey {
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap()
    }

    #[test]
    fn subjects_are_names_or_distinguished_names() {
        let cases = [
            ("Ferry local publishing", "CN=Ferry local publishing"),
            ("  Contoso, Plant 7  ", "CN=Contoso\\, Plant 7"),
            ("CN=Contoso Publishing,O=Contoso", "CN=Contoso Publishing,O=Contoso"),
        ];
        for (typed, expected) in cases {
            assert_eq!(subject_name(typed).unwrap().to_string(), expected, "{typed:?}");
        }
        let (long_name, long_dn) = ("x".repeat(65), format!("CN={}", "x".repeat(510)));
        for bad in ["", "   ", "=oops", "a\nb", &long_name, &long_dn] {
            let e = subject_name(bad).unwrap_err().to_string();
            assert!(e.chars().count() < 300, "the error shows the subject's start: {e}");
        }
        assert!(subject_name(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn files_are_named_from_the_prefix() {
        assert_eq!(with_suffix(Path::new("keys/site"), "crt"), PathBuf::from("keys/site.crt"));
        assert_eq!(with_suffix(Path::new("site.v2"), "key"), PathBuf::from("site.v2.key"));
        // A folder is no prefix: it would make hidden `.crt` and `.key` files in it.
        let dir = tempfile::tempdir().unwrap();
        for folder in [format!("{}/", dir.path().display()), format!("{}/..", dir.path().display())]
        {
            let e = new_self_signed(Path::new(&folder), &NewCertificate::default()).unwrap_err();
            assert!(e.to_string().contains("that is a folder"), "{e}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_new_certificate_is_for_code_signing_from_yesterday_for_its_years() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_458_482); // 2026-12-05 08:14:42
        let subject = subject_name("Test").unwrap();
        let certificate = build_self_signed(&key(), subject, 5, now).unwrap();
        assert_eq!(not_code_signing(&certificate), None);
        let validity = &certificate.tbs_certificate.validity;
        assert_eq!(show_time(validity.not_before.to_system_time()), "2026-12-04 08:14:42 UTC");
        assert_eq!(show_time(validity.not_after.to_system_time()), "2031-12-04 08:14:42 UTC");
        let serial = certificate.tbs_certificate.serial_number.as_bytes();
        assert_eq!(serial.len(), 16);
        assert_eq!(serial[0] & 0xc0, 0x40, "positive, no leading zero");
        assert_eq!(certificate.tbs_certificate.issuer, certificate.tbs_certificate.subject);
        let extensions = certificate.tbs_certificate.extensions.as_deref().unwrap();
        let critical = |oid: &str| {
            let oid = ObjectIdentifier::new_unwrap(oid);
            extensions.iter().find(|e| e.extn_id == oid).map(|e| e.critical)
        };
        assert_eq!(critical("2.5.29.19"), Some(true), "basicConstraints CA:FALSE, critical");
        assert_eq!(critical("2.5.29.15"), Some(true), "key usage, critical");
        assert_eq!(critical("2.5.29.37"), Some(false), "code signing, not critical");
        assert_eq!(critical("2.5.29.31"), None, "no CRL location a client cannot reach");
        let just_after = validity.not_after.to_system_time() + Duration::from_secs(1);
        let path = Path::new("site.crt");
        assert!(check_validity(&certificate, path, now).is_ok());
        assert!(matches!(
            check_validity(&certificate, path, just_after),
            Err(SigningError::Expired { .. })
        ));
        let before = validity.not_before.to_system_time() - Duration::from_secs(1);
        assert!(matches!(
            check_validity(&certificate, path, before),
            Err(SigningError::NotYetValid { .. })
        ));
    }

    #[test]
    fn the_identity_checks_its_key_against_its_certificate() {
        let (mine, other) = (key(), key());
        let now = SystemTime::now();
        let certificate = build_self_signed(&mine, subject_name("Test").unwrap(), 1, now).unwrap();
        let files = || Files { certificate: Path::new("c.crt"), key: Path::new("k.key") };
        let good =
            PublishingIdentity { certificate: certificate.clone(), chain: vec![], key: mine };
        good.check_at(files(), now).unwrap();
        assert_eq!(good.signature_len(), 256);
        assert_eq!(good.sign_sha256(b"x").unwrap().len(), 256);
        let shown = format!("{good:?}");
        let secret = rsa::traits::PrivateKeyParts::d(&good.key).to_string();
        assert!(shown.contains("(private)") && !shown.contains(&secret), "Debug hides the key");
        let bad = PublishingIdentity { certificate, chain: vec![], key: other };
        let e = bad.check_at(files(), now).unwrap_err();
        assert!(matches!(e, SigningError::KeyMismatch { .. }), "{e}");
    }
}
