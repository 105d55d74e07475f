//! What `ferry import` and `ferry verify` read before anything else: `manifest.json.minisig`,
//! the trusted `.pub` key and `manifest.json`. The same input goes to all three readers.
//!
//! Besides "never panics", the properties the bundle types state:
//! - every `SafePath` in an accepted manifest keeps the invariant of `safe_path.rs`, checked
//!   here independently, and joining it under a directory stays under that directory;
//! - bundle ids, channels and sequences keep the invariants of `names.rs` and come back
//!   unchanged through serde (the exporter writes what the importer reads);
//! - the whole manifest comes back unchanged through serde, and the directory name and the
//!   trusted comment it derives are a safe path component and a single line;
//! - a public key comes back unchanged through its file text.

#![no_main]

use ferry::bundle::Manifest;
use ferry::bundle::minisign::{PublicKey, SecretKey, Signature};
use ferry::bundle::names::{BundleId, ChannelName, Sequence};
use ferry::bundle::safe_path::SafePath;
use libfuzzer_sys::fuzz_target;
use std::path::{Component, Path};

/// The invariant of `safe_path.rs`, restated.
fn check_safe_path(p: &SafePath) {
    let s = p.as_str();
    assert!(!s.is_empty() && s.len() <= 100, "SafePath {s:?}: length");
    let components: Vec<&str> = s.split('/').collect();
    assert!((1..=4).contains(&components.len()), "SafePath {s:?}: component count");
    for c in components {
        assert!(!c.is_empty() && c != "." && c != "..", "SafePath {s:?}: component {c:?}");
        assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')), "SafePath {s:?}: characters");
    }
    let root = Path::new("/fuzz-root");
    let joined = p.under(root);
    assert!(joined.starts_with(root), "SafePath {s:?} leaves its root: {joined:?}");
    assert!(joined.strip_prefix(root).unwrap().components().all(|c| matches!(c, Component::Normal(_))), "SafePath {s:?}: {joined:?}");
    assert_eq!(SafePath::new(s).as_ref(), Ok(p));
    let json = serde_json::to_string(p).unwrap();
    assert_eq!(&serde_json::from_str::<SafePath>(&json).unwrap(), p);
}

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{value:?} does not read back from {json}: {e}"));
    assert_eq!(&back, value, "{json}");
}

fn check_bundle_id(id: &BundleId) {
    let text = id.to_string();
    assert!(
        text.len() == 36
            && text.bytes().enumerate().all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
            }),
        "bundle id {text:?} is not a lower-case GUID"
    );
    assert_eq!(BundleId::parse(&text).as_ref(), Ok(id));
    round_trip(id);
}

fn check_channel(c: &ChannelName) {
    let s = c.as_str();
    assert!(
        !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "channel {s:?}"
    );
    assert_eq!(ChannelName::parse(s).as_ref(), Ok(c));
    round_trip(c);
}

fn check_sequence(s: Sequence) {
    assert!(s.get() >= 1 && s.get() <= i64::MAX as u64, "sequence {s}");
    assert!(s.as_i64() >= 1);
    round_trip(&s);
}

fn check_manifest(m: &Manifest) {
    check_bundle_id(&m.bundle_id);
    check_channel(&m.channel);
    check_sequence(m.sequence);
    if let Some(base) = m.base_sequence {
        check_sequence(base);
    }
    let comment = m.trusted_comment();
    assert!(!comment.contains(['\n', '\r']), "the trusted comment {comment:?} is not one line");
    let dir = m.directory_name();
    assert!(!dir.contains('/') && SafePath::new(&dir).is_ok(), "directory name {dir:?} is not a safe path component");
    let _ = m.is_delta();
    for member in &m.members {
        check_safe_path(&member.path);
        for chunk in &member.chunks {
            check_safe_path(&chunk.path);
        }
        if let Some((sha1, extension)) = member.payload_name() {
            let hex = sha1.to_hex_upper();
            let file = member.path.as_str().strip_prefix(&format!("content/{}/", sha1.content_folder()));
            assert!(file.is_some_and(|f| f.starts_with(&hex)), "payload_name {hex} of {}", member.path);
            assert!(extension.is_empty() || member.path.as_str().ends_with(&format!(".{extension}")));
        }
    }
    // What the exporter writes is what the importer reads. `from_cache` is a profile-only
    // field that is never serialized.
    let mut expected = m.clone();
    if let Some(p) = expected.approval_policy.as_mut() {
        p.from_cache = false;
    }
    round_trip(&expected);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(sig) = Signature::parse(&text) {
        let _ = sig.key_id.to_string();
        assert!(!sig.trusted_comment.contains(['\n']), "the trusted comment spans lines");
    }
    if let Ok(key) = PublicKey::parse(&text) {
        let again = PublicKey::parse(&key.to_file_text()).expect("a key reads back from its own file text");
        assert_eq!(again, key);
    }
    // Unencrypted keys only: an encrypted one stops at "password required" (no scrypt here).
    let _ = SecretKey::file_is_encrypted(&text);
    let _ = SecretKey::parse(&text, None);
    if let Ok(m) = serde_json::from_slice::<Manifest>(data) {
        check_manifest(&m);
    }
});
