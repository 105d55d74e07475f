//! Local publishing (`ferry publish`): third-party and in-house installers (MSI, MSP, EXE) made
//! into update documents that go through the same parser, fragments, store and serving as every
//! Microsoft update, their payload a CAB signed with the site's publishing certificate
//! (Authenticode), as the Windows Update Agent requires of locally published content.
//!
//! - `signing.rs`: the publishing certificate and key (made by `ferry publish cert new`, or the
//!   site's own as PEM or PFX), checked before use.
//! - `cab.rs`: the CAB that carries an installer: one uncompressed member, the reserve
//!   Authenticode needs, written in one pass (the installer read in blocks, never held in
//!   memory; every digest computed on the way) to a temporary file renamed into place, the
//!   signature appended; returns its size, SHA-1 and SHA-256.
//! - `authenticode.rs`: that signature: PKCS#7 SignedData over `SpcIndirectDataContent` for CAB
//!   data (SHA-256), as signtool and osslsigncode make it, without timestamp; its length is
//!   known before the CAB is hashed.
//! - `msi.rs`: what an MSI or MSP says about itself (product code, version, language, ...).
//! - `document.rs`: the `<upd:Update>` documents of a published update and of its vendor and
//!   product categories. Pure: no I/O.

mod authenticode;
pub mod cab;
pub mod detect;
pub mod document;
pub mod msi;
pub mod publisher;
pub mod signing;

/// Opens a file the operator names (an installer, a certificate, a key, a password file) for
/// reading, refusing anything but a regular file without waiting on it: a FIFO or a device
/// would otherwise block the open or be read for ever.
pub(crate) fn open_regular(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(file)
}
