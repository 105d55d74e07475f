//! `manifest.json`: what a bundle is, everything it holds, and the hash of every byte.
//! Signed as a whole (`manifest.json.minisig`); the JSON Schema is `manifests/bundle-manifest.schema.json`.

use super::names::{BundleId, ChannelName, Sequence};
use super::safe_path::SafePath;
use crate::catalog::{Guid, Sha1Digest};
use crate::ids::UpdateId;
use crate::store::{InstallerKind, PublishedRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const FORMAT: &str = "ferry-bundle/1";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const SIGNATURE_FILE: &str = "manifest.json.minisig";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub channel: ChannelName,
    pub sequence: Sequence,
    /// The sequence a delta applies to; absent for a full bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_sequence: Option<Sequence>,
    pub bundle_id: BundleId,
    /// RFC 3339 UTC.
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    pub exporter: String,
    #[serde(default)]
    pub upstream: Upstream,
    pub signer_key_id: String,
    pub selection: Selection,
    pub summary: Summary,
    /// Software and driver updates the bundle adds or revises (not categories, detectoids or
    /// bundle members: those travel too, counted in `summary`).
    pub updates: Vec<UpdateEntry>,
    /// Updates the bundle withdraws (expired upstream, or no longer selected).
    #[serde(default)]
    pub removed: Vec<Removal>,
    pub volumes: Vec<VolumeEntry>,
    pub members: Vec<MemberEntry>,
    /// Approvals decided on the connected side, applied on import only with --apply-approvals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_policy: Option<super::approvals::ApprovalPolicy>,
    /// Updates published on the connected side (`ferry publish`) whose documents the bundle
    /// carries, with what their documents do not say (absent in older manifests: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<PublishedEntry>,
}

/// An update published on the connected side, as the import records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PublishedEntry {
    pub update_id: UpdateId,
    pub vendor: ManifestText<MAX_NAME>,
    pub product: ManifestText<MAX_NAME>,
    pub installer: InstallerKind,
    pub installer_name: ManifestText<MAX_NAME>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<ManifestText<MAX_VERSION>>,
    pub published_at: Rfc3339,
}

/// The longest vendor, product or installer name a manifest may state (characters).
pub const MAX_NAME: usize = 256;
/// The longest version a manifest may state (characters).
pub const MAX_VERSION: usize = 64;

impl PublishedEntry {
    /// The entry for a record of the cache store; `None` for one no manifest can hold (a
    /// name beyond the bounds, which `ferry publish` never writes).
    pub fn from_record(r: &PublishedRecord) -> Option<PublishedEntry> {
        Some(PublishedEntry {
            update_id: r.update_id.clone(),
            vendor: ManifestText::new(&r.vendor).ok()?,
            product: ManifestText::new(&r.product).ok()?,
            installer: r.installer,
            installer_name: ManifestText::new(&r.installer_name).ok()?,
            version: r.version.as_deref().map(ManifestText::new).transpose().ok()?,
            published_at: Rfc3339::new(&r.published_at).ok()?,
        })
    }

    /// The record an import stores.
    pub fn record(&self) -> PublishedRecord {
        PublishedRecord {
            update_id: self.update_id.clone(),
            vendor: self.vendor.as_str().to_owned(),
            product: self.product.as_str().to_owned(),
            installer: self.installer,
            installer_name: self.installer_name.as_str().to_owned(),
            version: self.version.as_ref().map(|v| v.as_str().to_owned()),
            published_at: self.published_at.as_str().to_owned(),
        }
    }
}

/// Text a manifest states that becomes a row: not empty, at most `MAX` characters, no control
/// characters. A manifest holding another is refused when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ManifestText<const MAX: usize>(String);

impl<const MAX: usize> ManifestText<MAX> {
    pub fn new(text: &str) -> Result<Self, String> {
        let count = text.chars().count();
        if text.trim().is_empty() || count > MAX {
            return Err(format!("a text of {count} characters; 1 to {MAX} are allowed"));
        }
        if text.chars().any(char::is_control) {
            return Err("a text holding control characters".into());
        }
        Ok(ManifestText(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for ManifestText<MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ManifestText::new(&text).map_err(serde::de::Error::custom)
    }
}

/// A time a manifest states: RFC 3339, at most 40 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Rfc3339(String);

impl Rfc3339 {
    pub fn new(text: &str) -> Result<Rfc3339, String> {
        if text.len() > 40 || chrono::DateTime::parse_from_rfc3339(text).is_err() {
            let shown: String = text.chars().take(40).collect();
            return Err(format!("{shown:?} is not an RFC 3339 time"));
        }
        Ok(Rfc3339(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Rfc3339 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Rfc3339::new(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Upstream {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
}

/// What the export profile selected (as names and GUIDs resolved against the cache).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Selection {
    pub products: Vec<String>,
    pub classifications: Vec<String>,
    pub languages: Vec<crate::catalog::Language>,
    pub include_superseded: bool,
    pub payloads: String,
    /// Express installation files travelled (bundles written before this setting carried them).
    #[serde(default = "carried_before")]
    pub express: bool,
}

fn carried_before() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub revisions: u64,
    pub software_updates: u64,
    pub categories: u64,
    pub detectoids: u64,
    pub bundle_members: u64,
    pub by_classification: BTreeMap<String, u64>,
    pub kb_articles: Vec<String>,
    pub payload_files: u64,
    pub payload_bytes: u64,
    pub metadata_bytes: u64,
    pub total_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UpdateEntry {
    pub update_id: Guid,
    pub revision_number: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kb: Option<String>,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<String>,
    #[serde(default)]
    pub products: Vec<String>,
    /// `new` or `revised` (a newer revision of an update an earlier bundle carried).
    pub change: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msrc_severity: Option<String>,
    pub payload_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Removal {
    pub update_id: Guid,
    #[serde(default)]
    pub title: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VolumeEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MemberKind {
    /// A zstd stream of update documents, each as a 4-byte little-endian length and the bytes.
    Metadata,
    /// A payload file, named by its SHA-1 as in the WSUS content tree.
    Payload,
    /// The approval policy decided on the connected side.
    Approvals,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MemberEntry {
    pub path: SafePath,
    pub kind: MemberKind,
    pub size: u64,
    pub sha256: String,
    /// The volume (1-based) holding the member; absent when it is split into chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncompressed_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documents: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<ChunkEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChunkEntry {
    pub path: SafePath,
    pub size: u64,
    pub sha256: String,
    pub volume: u32,
}

/// The folder of a bundle's payload members (`content/XX/<SHA1>.<ext>`, as in WsusContent).
const PAYLOAD_FOLDER: &str = "content/";

impl MemberEntry {
    /// The member path of a payload: the inverse of [`MemberEntry::payload_name`].
    pub fn payload_path(sha1: &Sha1Digest, extension: &str) -> Result<SafePath, String> {
        let relative = crate::store::ContentStore::relative_path(sha1, extension);
        SafePath::new(&format!("{PAYLOAD_FOLDER}{relative}")).map_err(|e| e.to_string())
    }

    /// A payload's SHA-1 and extension, read from its path `content/XX/<SHA1>.<ext>` (the
    /// WsusContent name); `None` for a path of any other shape, a folder that is not the SHA-1's,
    /// or a SHA-1 that differs from the one the entry states.
    pub fn payload_name(&self) -> Option<(Sha1Digest, &str)> {
        let (folder, file) = self.path.as_str().strip_prefix(PAYLOAD_FOLDER)?.split_once('/')?;
        let (hex, extension) = file.split_once('.').unwrap_or((file, ""));
        let sha1 = Sha1Digest::from_hex(hex).ok()?;
        let canonical = folder == sha1.content_folder() && hex == sha1.to_hex_upper();
        let stated = self.sha1.as_deref().and_then(|h| Sha1Digest::from_hex(h).ok());
        (canonical && stated == Some(sha1)).then_some((sha1, extension))
    }
}

/// Why manifest bytes are not a manifest this ferry reads.
#[derive(Debug, thiserror::Error)]
pub enum ManifestJsonError {
    /// Not JSON, or not shaped as a manifest.
    #[error("not a manifest this ferry can read: {0}")]
    Unreadable(String),
    /// A manifest of another format version.
    #[error("bundle format {found:?}; this ferry reads {FORMAT}: use a newer ferry")]
    OtherFormat { found: String },
    /// Shaped as a manifest, but a value is one no ferry writes (out of range, unsafe).
    #[error("it holds a value no ferry writes ({0})")]
    Impossible(String),
}

impl Manifest {
    /// The manifest's bytes as they are written and signed (pretty JSON).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest serializes")
    }

    /// Reads manifest bytes: first the format version, then the whole manifest.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, ManifestJsonError> {
        #[derive(Deserialize)]
        struct Format {
            format: String,
        }
        let unreadable = |e: serde_json::Error| ManifestJsonError::Unreadable(e.to_string());
        let format: Format = serde_json::from_slice(bytes).map_err(unreadable)?;
        if format.format != FORMAT {
            return Err(ManifestJsonError::OtherFormat { found: format.format });
        }
        serde_json::from_slice(bytes).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ManifestJsonError::Impossible(e.to_string()),
            _ => unreadable(e),
        })
    }

    /// Reads manifest bytes whatever their format version says (for `inspect`).
    pub fn from_json_unchecked(bytes: &[u8]) -> Result<Manifest, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// A manifest as the store keeps it: the JSON recorded when its bundle was imported.
    pub fn from_stored(json: &str) -> Result<Manifest, String> {
        serde_json::from_str(json).map_err(|e| format!("the stored manifest: {e}"))
    }

    /// The trusted comment signed with the manifest: names the bundle, so a signature cannot be
    /// moved to another bundle's manifest unnoticed (and `minisign -V` shows it).
    pub fn trusted_comment(&self) -> String {
        format!(
            "ferry bundle channel:{} sequence:{} bundle_id:{}",
            self.channel, self.sequence, self.bundle_id
        )
    }

    /// `<channel>-<sequence, 6 digits>`, the bundle's directory name.
    pub fn directory_name(&self) -> String {
        directory_name(&self.channel, self.sequence)
    }

    pub fn is_delta(&self) -> bool {
        self.base_sequence.is_some()
    }
}

pub fn directory_name(channel: &ChannelName, sequence: Sequence) -> String {
    format!("{channel}-{sequence:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, sha1: &Sha1Digest) -> MemberEntry {
        MemberEntry {
            path: SafePath::new(path).unwrap(),
            kind: MemberKind::Payload,
            size: 1,
            sha256: String::new(),
            volume: Some(1),
            sha1: Some(sha1.to_hex_lower()),
            uncompressed_size: None,
            documents: None,
            chunks: Vec::new(),
        }
    }

    /// A payload's member path names its SHA-1 and extension, and only the canonical shape does.
    #[test]
    fn payload_paths_read_back_and_other_shapes_do_not() {
        let sha1 = Sha1Digest([0xcd; 20]);
        for extension in ["exe", "cab", ""] {
            let path = MemberEntry::payload_path(&sha1, extension).unwrap();
            assert_eq!(entry(path.as_str(), &sha1).payload_name(), Some((sha1, extension)));
        }
        let hex = sha1.to_hex_upper();
        for wrong in [
            format!("content/AB/{hex}.exe"),
            format!("payloads/CD/{hex}.exe"),
            format!("content/CD/{}.exe", hex.to_lowercase()),
        ] {
            assert_eq!(entry(&wrong, &sha1).payload_name(), None, "{wrong}");
        }
        let other = Sha1Digest([0xab; 20]);
        let path = MemberEntry::payload_path(&other, "exe").unwrap();
        assert_eq!(entry(path.as_str(), &sha1).payload_name(), None, "another SHA-1 stated");
    }

    /// A published entry holds only bounded names without control characters, a GUID, a known
    /// installer kind and an RFC 3339 time: anything else in a manifest is refused when read.
    #[test]
    fn published_entries_refuse_what_no_ferry_writes() {
        let good = serde_json::json!({
            "update_id": "76D6BAA1-4C7A-4262-8B3E-1EE8951C27B0",
            "vendor": "Fabrikam",
            "product": "Fabrikam Gadget",
            "installer": "msi",
            "installer_name": "gadget-3.1.msi",
            "version": "3.1.0",
            "published_at": "2026-12-05T08:39:51.000000Z"
        });
        let entry: PublishedEntry = serde_json::from_value(good.clone()).unwrap();
        assert_eq!(entry.update_id.as_str(), "76d6baa1-4c7a-4262-8b3e-1ee8951c27b0");
        assert_eq!(entry.record().installer, InstallerKind::Msi);
        assert_eq!(PublishedEntry::from_record(&entry.record()), Some(entry));
        let long = "x".repeat(MAX_NAME + 1);
        let cases: [(&str, serde_json::Value); 8] = [
            ("update_id", "../etc".into()),
            ("vendor", long.into()),
            ("product", "Gadget\u{1b}[2J".into()),
            ("installer_name", " ".into()),
            ("installer", "bat".into()),
            ("version", "9".repeat(MAX_VERSION + 1).into()),
            ("published_at", "yesterday".into()),
            ("extra", "field".into()),
        ];
        for (key, value) in cases {
            let mut bad = good.clone();
            bad[key] = value;
            assert!(serde_json::from_value::<PublishedEntry>(bad).is_err(), "{key}");
        }
    }
}
