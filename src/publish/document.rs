//! The `<upd:Update>` documents of a locally published update and of its vendor and product
//! categories, in the shape WSUS local publishing gives them, so that the rest of Ferry (parser,
//! fragments, store, bundles, serving) takes them like any Microsoft update.
//!
//! Pure: no I/O, no clock, no randomness. Times, update ids and digests are inputs; category ids
//! are derived from the names (`vendor_category_id`, `product_category_id`) unless given.
//!
//! The input is typed and checked when built ([`PublishedUpdate::new`], [`ExeInstaller::new`],
//! ...): what a document is written from cannot be wrong any more.

use super::msi::{Lcid, MsiProduct, MspPatch, ProductCode, Version};
use crate::catalog::xml::{push_escaped_attribute, push_escaped_text};
use crate::catalog::{Guid, Sha1Digest, Sha256Digest};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

mod stored;
pub use stored::StoredUpdate;

/// Namespaces of the documents.
pub mod ns {
    pub const UPDATE: &str = "http://schemas.microsoft.com/msus/2002/12/Update";
    pub const PUBLISHING: &str = "http://schemas.microsoft.com/msus/2002/12/Publishing";
    pub const BASE_RULES: &str = "http://schemas.microsoft.com/msus/2002/12/BaseApplicabilityRules";
    pub const LOGICAL_RULES: &str =
        "http://schemas.microsoft.com/msus/2002/12/LogicalApplicabilityRules";
    pub const MSI_RULES: &str = "http://schemas.microsoft.com/msus/2002/12/MsiApplicabilityRules";
    pub const COMMAND_LINE: &str =
        "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CommandLineInstallation";
    pub const WINDOWS_INSTALLER: &str =
        "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsInstaller";
    pub const CATEGORY: &str = "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Category";
    pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
}

/// Longest title, description, name and URL accepted (WSUS's publishing limits are of this order).
const MAX_TITLE: usize = 200;
const MAX_DESCRIPTION: usize = 1500;
const MAX_URL: usize = 2048;
const MAX_ATTRIBUTE: usize = 1024;

/// Why the description of an update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUpdate {
    /// A stored document this module did not write (or one changed since).
    #[error(
        "the stored document of {0} is not one ferry publish wrote: {1}; to change what clients are offered, publish a new update that supersedes it"
    )]
    NotPublishedHere(Guid, &'static str),
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} is {len} characters long; at most {max} are allowed")]
    TooLong { field: &'static str, len: usize, max: usize },
    #[error(
        "{field} contains a control character (or, in a name or title, a line separator or an invisible formatting character)"
    )]
    ControlCharacter { field: &'static str },
    #[error(
        "an EXE needs at least one detection rule: without one it would be offered, and installed, again and again"
    )]
    NoDetection,
    #[error("{field} {name:?} is not a plain file name (no folders, no `..`, at most 255 bytes)")]
    FileName { field: &'static str, name: String },
    #[error("revision {0} is out of range (1 to 2147483647)")]
    Revision(u32),
    #[error("return code {0} is given twice")]
    DuplicateReturnCode(i32),
    #[error("no return code means success: every installation would be reported as failed")]
    NoSuccessCode,
    #[error("KB article {0:?} is not a number (e.g. 5012345 or KB5012345)")]
    KbArticle(String),
    #[error("unknown classification {0:?} (one of: {list})", list = Classification::NAMES.join(", "))]
    UnknownClassification(String),
    #[error("unknown MSRC severity {0:?} (Critical, Important, Moderate or Low)")]
    UnknownSeverity(String),
    #[error("the more-info URL {0:?} is not an http or https URL")]
    MoreInfoUrl(String),
    #[error("the update {0} cannot supersede itself")]
    SupersedesItself(Guid),
    #[error("a prerequisite group names no update")]
    EmptyPrerequisite,
    #[error("the payload is empty (0 bytes)")]
    EmptyPayload,
    #[error("the payload is {0} bytes; at most {max} are allowed", max = crate::catalog::parse::MAX_FILE_SIZE)]
    PayloadTooLarge(u64),
    #[error("the patch names no target product")]
    NoTargetProduct,
    #[error(
        "{0} ({1}) is expired: clients are no longer offered it, and it is not revised or expired again; publish a new update instead"
    )]
    Expired(Guid, String),
    #[error(
        "{0} is installed by Windows Installer, whose package says when it is installed: only an EXE's detection rules can be revised"
    )]
    DetectionOfInstaller(Guid),
    #[error("the minimum version {min} is above the maximum version {max}")]
    VersionRange { min: Version, max: Version },
}

/// Text of an element (a description): trimmed, not empty, no control characters other than
/// tab and line breaks; line breaks become LF, as an XML parser reads them back.
fn element_text(field: &'static str, text: &str, max: usize) -> Result<String, InvalidUpdate> {
    let text = text.trim().replace("\r\n", "\n").replace('\r', "\n");
    check_text(field, &text, max, |c| c.is_control() && !matches!(c, '\t' | '\n'))
}

/// One line of text that people read (a title, a vendor or product name): trimmed, not empty,
/// no control characters, line separators, or invisible characters that reorder or hide text
/// (bidirectional controls, zero-width characters), so that listings show one update per line
/// and a name reads as what it is.
fn line_text(field: &'static str, text: &str, max: usize) -> Result<String, InvalidUpdate> {
    let bad = |c: char| {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}')
            || matches!(c, '\u{2060}'..='\u{2069}')
    };
    check_text(field, text.trim(), max, bad)
}

/// Text of an attribute (paths, names, arguments): no control characters at all, since
/// attribute-value normalization would turn tabs and line breaks into spaces.
fn attribute_text(field: &'static str, text: &str, max: usize) -> Result<String, InvalidUpdate> {
    check_text(field, text, max, char::is_control)
}

fn check_text(
    field: &'static str,
    text: &str,
    max: usize,
    bad: impl Fn(char) -> bool,
) -> Result<String, InvalidUpdate> {
    if text.trim().is_empty() {
        return Err(InvalidUpdate::Empty { field });
    }
    let len = text.chars().count();
    if len > max {
        return Err(InvalidUpdate::TooLong { field, len, max });
    }
    // XML 1.0 has no U+FFFE/U+FFFF; the other control characters are refused by `bad`.
    if text.chars().any(|c| bad(c) || matches!(c, '\u{fffe}' | '\u{ffff}')) {
        return Err(InvalidUpdate::ControlCharacter { field });
    }
    Ok(text.to_string())
}

/// A plain file name: what the CAB is called, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileName(String);

impl FileName {
    pub fn new(field: &'static str, name: &str) -> Result<FileName, InvalidUpdate> {
        let bad = || InvalidUpdate::FileName { field, name: name.chars().take(300).collect() };
        let name = attribute_text(field, name, 255).map_err(|_| bad())?;
        let forbidden = ['/', '\\', ':', '*', '?', '"', '<', '>', '|'];
        if name.len() > 255 || name.contains(forbidden) || name == "." || name == ".." {
            return Err(bad());
        }
        if name.trim() != name {
            return Err(bad());
        }
        Ok(FileName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a vendor or product category.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CategoryName(String);

impl CategoryName {
    pub fn new(name: &str) -> Result<CategoryName, InvalidUpdate> {
        line_text("category name", name, MAX_TITLE).map(CategoryName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CategoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The category id WSUS gives a vendor it creates for local publishing: the first 16 bytes of
/// SHA-256 of the lower-case name, read as a .NET `Guid` (little-endian first three fields).
/// Deterministic, so both sides of an air gap (and a WSUS) agree on it.
pub fn vendor_category_id(vendor: &str) -> Guid {
    name_guid(&vendor.to_lowercase())
}

/// The product's category id: as for the vendor, over the lower-case vendor name followed by the
/// lower-case product name.
pub fn product_category_id(vendor: &str, product: &str) -> Guid {
    name_guid(&format!("{}{}", vendor.to_lowercase(), product.to_lowercase()))
}

fn name_guid(text: &str) -> Guid {
    let hash = Sha256::digest(text.as_bytes());
    let h = &hash[..16];
    Guid::from_bytes([
        h[3], h[2], h[1], h[0], h[5], h[4], h[7], h[6], h[8], h[9], h[10], h[11], h[12], h[13],
        h[14], h[15],
    ])
}

/// A vendor (`CategoryType="Company"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vendor {
    name: CategoryName,
    id: Guid,
}

impl Vendor {
    /// A vendor whose id is derived from its name.
    pub fn new(name: CategoryName) -> Vendor {
        let id = vendor_category_id(name.as_str());
        Vendor { name, id }
    }

    pub fn with_id(name: CategoryName, id: Guid) -> Vendor {
        Vendor { name, id }
    }

    pub fn name(&self) -> &CategoryName {
        &self.name
    }

    pub fn id(&self) -> Guid {
        self.id
    }
}

/// A product of a vendor (`CategoryType="Product"`): updates belong to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    name: CategoryName,
    id: Guid,
    vendor: Vendor,
}

impl Product {
    /// A product whose id is derived from its vendor's name and its own.
    pub fn new(vendor: Vendor, name: CategoryName) -> Product {
        let id = product_category_id(vendor.name.as_str(), name.as_str());
        Product { name, id, vendor }
    }

    pub fn with_id(vendor: Vendor, name: CategoryName, id: Guid) -> Product {
        Product { name, id, vendor }
    }

    pub fn name(&self) -> &CategoryName {
        &self.name
    }

    pub fn id(&self) -> Guid {
        self.id
    }

    pub fn vendor(&self) -> &Vendor {
        &self.vendor
    }
}

/// Microsoft's update classifications (fixed category ids, `CategoryType="UpdateClassification"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Classification {
    CriticalUpdates,
    SecurityUpdates,
    DefinitionUpdates,
    Updates,
    UpdateRollups,
    ServicePacks,
    FeaturePacks,
    Tools,
    Applications,
}

impl Classification {
    pub const ALL: [Classification; 9] = [
        Classification::CriticalUpdates,
        Classification::SecurityUpdates,
        Classification::DefinitionUpdates,
        Classification::Updates,
        Classification::UpdateRollups,
        Classification::ServicePacks,
        Classification::FeaturePacks,
        Classification::Tools,
        Classification::Applications,
    ];
    const NAMES: [&'static str; 9] = [
        "Critical Updates",
        "Security Updates",
        "Definition Updates",
        "Updates",
        "Update Rollups",
        "Service Packs",
        "Feature Packs",
        "Tools",
        "Applications",
    ];
    const IDS: [&'static str; 9] = [
        "e6cf1350-c01b-414d-a61f-263d14d133b4",
        "0fa1201d-4330-4fa8-8ae9-b877473b6441",
        "e0789628-ce08-4437-be74-2495b842f43b",
        "cd5ffd1e-e932-4e3a-bf74-18bf0b1bbd83",
        "28bc880e-0592-4cbf-8f95-c79b17911d5f",
        "68c5b0a3-d1a6-4553-ae49-01d3a7827828",
        "b54e7d24-7add-428f-8b75-90a396fa584f",
        "b4832bd8-e735-4761-8daf-37f882276dab",
        "5c9376ab-8ce6-464a-b136-22113dd69801",
    ];

    fn index(self) -> usize {
        Classification::ALL.iter().position(|c| *c == self).expect("every variant is in ALL")
    }

    pub fn name(self) -> &'static str {
        Classification::NAMES[self.index()]
    }

    pub fn id(self) -> Guid {
        Guid::parse(Classification::IDS[self.index()]).expect("the table holds GUIDs")
    }

    /// The classification whose category id is `id`.
    pub fn from_id(id: Guid) -> Option<Classification> {
        Classification::ALL.into_iter().find(|c| c.id() == id)
    }
}

/// `Security Updates`, `security-updates`, `security` (any case) or the category id.
impl FromStr for Classification {
    type Err = InvalidUpdate;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let key = |s: &str| s.to_ascii_lowercase().replace(['-', '_', ' '], "");
        let wanted = key(text.trim());
        Classification::ALL
            .into_iter()
            .find(|c| {
                let name = key(c.name());
                wanted == name
                    || wanted == name.trim_end_matches("updates")
                    || Guid::parse(text).is_ok_and(|g| g == c.id())
            })
            .filter(|_| !wanted.is_empty())
            .ok_or_else(|| InvalidUpdate::UnknownClassification(text.to_string()))
    }
}

/// `MsrcSeverity`: how the vendor rates a security update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsrcSeverity {
    Critical,
    Important,
    Moderate,
    Low,
}

impl MsrcSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            MsrcSeverity::Critical => "Critical",
            MsrcSeverity::Important => "Important",
            MsrcSeverity::Moderate => "Moderate",
            MsrcSeverity::Low => "Low",
        }
    }
}

impl FromStr for MsrcSeverity {
    type Err = InvalidUpdate;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [MsrcSeverity::Critical, MsrcSeverity::Important, MsrcSeverity::Moderate, MsrcSeverity::Low]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| InvalidUpdate::UnknownSeverity(text.to_string()))
    }
}

/// A Knowledge Base article number (`KBArticleID`), written without the `KB`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KbArticle(String);

impl KbArticle {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for KbArticle {
    type Err = InvalidUpdate;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let t = text.trim();
        let digits = t.strip_prefix("KB").or_else(|| t.strip_prefix("kb")).unwrap_or(t);
        if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidUpdate::KbArticle(text.to_string()));
        }
        Ok(KbArticle(digits.to_string()))
    }
}

/// The signed CAB that carries the installer, as clients download it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    file_name: FileName,
    size: u64,
    sha1: Sha1Digest,
    sha256: Sha256Digest,
    modified: DateTime<Utc>,
}

impl Payload {
    pub fn new(
        file_name: &str,
        size: u64,
        sha1: Sha1Digest,
        sha256: Sha256Digest,
        modified: DateTime<Utc>,
    ) -> Result<Payload, InvalidUpdate> {
        let file_name = FileName::new("payload file name", file_name)?;
        if size == 0 {
            return Err(InvalidUpdate::EmptyPayload);
        }
        if size > crate::catalog::parse::MAX_FILE_SIZE {
            return Err(InvalidUpdate::PayloadTooLarge(size));
        }
        Ok(Payload { file_name, size, sha1, sha256, modified })
    }

    pub fn file_name(&self) -> &FileName {
        &self.file_name
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn sha1(&self) -> &Sha1Digest {
        &self.sha1
    }
}

/// A comparison in a detection rule (`bt:ScalarComparison`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    LessThan,
    LessThanOrEqualTo,
    EqualTo,
    GreaterThanOrEqualTo,
    GreaterThan,
}

impl Comparison {
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::LessThan => "LessThan",
            Comparison::LessThanOrEqualTo => "LessThanOrEqualTo",
            Comparison::EqualTo => "EqualTo",
            Comparison::GreaterThanOrEqualTo => "GreaterThanOrEqualTo",
            Comparison::GreaterThan => "GreaterThan",
        }
    }
}

/// A folder a file rule's path starts from (`Csidl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KnownFolder {
    Windows,
    System,
    ProgramFiles,
    ProgramFilesX86,
    CommonProgramFiles,
}

impl KnownFolder {
    /// The CSIDL number the rule carries.
    pub fn csidl(self) -> u32 {
        match self {
            KnownFolder::Windows => 36,
            KnownFolder::System => 37,
            KnownFolder::ProgramFiles => 38,
            KnownFolder::ProgramFilesX86 => 42,
            KnownFolder::CommonProgramFiles => 43,
        }
    }
}

/// A file on the client: a full path, or a path under a known folder (`\Vendor\app.exe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePath {
    folder: Option<KnownFolder>,
    path: String,
}

impl FilePath {
    pub fn new(folder: Option<KnownFolder>, path: &str) -> Result<FilePath, InvalidUpdate> {
        Ok(FilePath { folder, path: attribute_text("file path", path, MAX_ATTRIBUTE)? })
    }
}

/// A key under `HKEY_LOCAL_MACHINE` (the only hive rules read), in the 64-bit view unless
/// `view32` (`RegType32`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryKey {
    subkey: String,
    view32: bool,
}

impl RegistryKey {
    pub fn new(subkey: &str, view32: bool) -> Result<RegistryKey, InvalidUpdate> {
        let subkey = attribute_text("registry subkey", subkey.trim_matches('\\'), MAX_ATTRIBUTE)?;
        Ok(RegistryKey { subkey, view32 })
    }
}

/// How the operator tells that an EXE's software is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectRule {
    FileExists(FilePath),
    FileVersion {
        file: FilePath,
        comparison: Comparison,
        version: Version,
    },
    RegistryKeyExists(RegistryKey),
    RegistryValueExists {
        key: RegistryKey,
        value: String,
    },
    /// A string value read as a version (`RegSzToVersion`).
    RegistryVersion {
        key: RegistryKey,
        value: String,
        comparison: Comparison,
        version: Version,
    },
    MsiProductInstalled(MsiProductRule),
}

impl DetectRule {
    /// A registry value rule; `value` is the value's name.
    pub fn registry_value(key: RegistryKey, value: &str) -> Result<DetectRule, InvalidUpdate> {
        let value = attribute_text("registry value name", value, MAX_ATTRIBUTE)?;
        Ok(DetectRule::RegistryValueExists { key, value })
    }

    pub fn registry_version(
        key: RegistryKey,
        value: &str,
        comparison: Comparison,
        version: Version,
    ) -> Result<DetectRule, InvalidUpdate> {
        let value = attribute_text("registry value name", value, MAX_ATTRIBUTE)?;
        Ok(DetectRule::RegistryVersion { key, value, comparison, version })
    }
}

/// An MSI product installed on the client, optionally within versions and in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsiProductRule {
    product_code: ProductCode,
    min_version: Option<Version>,
    max_version: Option<Version>,
    language: Option<Lcid>,
}

impl MsiProductRule {
    pub fn new(
        product_code: ProductCode,
        min_version: Option<Version>,
        max_version: Option<Version>,
        language: Option<Lcid>,
    ) -> Result<MsiProductRule, InvalidUpdate> {
        if let (Some(min), Some(max)) = (min_version, max_version)
            && min.padded() > max.padded()
        {
            return Err(InvalidUpdate::VersionRange { min, max });
        }
        Ok(MsiProductRule { product_code, min_version, max_version, language })
    }
}

/// What an EXE's exit code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    SuccessRebootRequired,
    Failure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReturnCode {
    pub code: i32,
    pub outcome: Outcome,
}

impl ReturnCode {
    pub fn success(code: i32) -> ReturnCode {
        ReturnCode { code, outcome: Outcome::Success }
    }

    pub fn success_with_reboot(code: i32) -> ReturnCode {
        ReturnCode { code, outcome: Outcome::SuccessRebootRequired }
    }

    pub fn failure(code: i32) -> ReturnCode {
        ReturnCode { code, outcome: Outcome::Failure }
    }

    /// What Windows installers commonly return: 0 success, 3010 and 1641 success with a reboot.
    pub fn defaults() -> Vec<ReturnCode> {
        vec![
            ReturnCode::success(0),
            ReturnCode::success_with_reboot(3010),
            ReturnCode::success_with_reboot(1641),
        ]
    }
}

/// An MSI, installed by the Windows Installer handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsiInstaller {
    file: FileName,
    product: MsiProduct,
    properties: Option<String>,
}

impl MsiInstaller {
    /// `file`: the MSI's name inside the CAB; `properties`: `NAME=value` pairs for msiexec.
    pub fn new(
        file: &str,
        product: MsiProduct,
        properties: Option<&str>,
    ) -> Result<MsiInstaller, InvalidUpdate> {
        let file = FileName::new("installer file name", file)?;
        let properties = match properties.map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => Some(attribute_text("MSI properties", p, MAX_ATTRIBUTE)?),
            None => None,
        };
        Ok(MsiInstaller { file, product, properties })
    }

    pub fn product(&self) -> &MsiProduct {
        &self.product
    }
}

/// An MSP, applied by the Windows Installer handler to its target products.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MspInstaller {
    file: FileName,
    patch: MspPatch,
}

impl MspInstaller {
    pub fn new(file: &str, patch: MspPatch) -> Result<MspInstaller, InvalidUpdate> {
        if patch.target_products.is_empty() {
            return Err(InvalidUpdate::NoTargetProduct);
        }
        Ok(MspInstaller { file: FileName::new("installer file name", file)?, patch })
    }

    pub fn patch(&self) -> &MspPatch {
        &self.patch
    }
}

/// An EXE, run by the command-line handler; detection rules say when it is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExeInstaller {
    file: FileName,
    arguments: Option<String>,
    return_codes: Vec<ReturnCode>,
    detection: Vec<DetectRule>,
}

impl ExeInstaller {
    /// Refuses an EXE without detection rules (it would install for ever), return codes given
    /// twice, and a set of return codes none of which is a success. No return codes: the
    /// [`ReturnCode::defaults`].
    pub fn new(
        file: &str,
        arguments: Option<&str>,
        return_codes: Vec<ReturnCode>,
        detection: Vec<DetectRule>,
    ) -> Result<ExeInstaller, InvalidUpdate> {
        let file = FileName::new("installer file name", file)?;
        check_detection(&detection)?;
        let return_codes =
            if return_codes.is_empty() { ReturnCode::defaults() } else { return_codes };
        for (i, r) in return_codes.iter().enumerate() {
            if return_codes[..i].iter().any(|o| o.code == r.code) {
                return Err(InvalidUpdate::DuplicateReturnCode(r.code));
            }
        }
        if return_codes.iter().all(|r| r.outcome == Outcome::Failure) {
            return Err(InvalidUpdate::NoSuccessCode);
        }
        let arguments = match arguments.map(str::trim).filter(|a| !a.is_empty()) {
            Some(a) => Some(attribute_text("install arguments", a, MAX_ATTRIBUTE)?),
            None => None,
        };
        Ok(ExeInstaller { file, arguments, return_codes, detection })
    }
}

/// An EXE without detection rules would be offered, and installed, again and again.
fn check_detection(detection: &[DetectRule]) -> Result<(), InvalidUpdate> {
    if detection.is_empty() {
        return Err(InvalidUpdate::NoDetection);
    }
    Ok(())
}

/// What is installed, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installer {
    Msi(MsiInstaller),
    Msp(MspInstaller),
    Exe(ExeInstaller),
}

impl Installer {
    /// The installer's name inside the CAB.
    pub fn file_name(&self) -> &FileName {
        match self {
            Installer::Msi(m) => &m.file,
            Installer::Msp(m) => &m.file,
            Installer::Exe(e) => &e.file,
        }
    }
}

/// One AND-clause of prerequisites: met when any of the named updates (or categories, or
/// detectoids) is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrerequisiteGroup(Vec<Guid>);

impl PrerequisiteGroup {
    pub fn any_of(ids: Vec<Guid>) -> Result<PrerequisiteGroup, InvalidUpdate> {
        if ids.is_empty() {
            return Err(InvalidUpdate::EmptyPrerequisite);
        }
        Ok(PrerequisiteGroup(ids))
    }

    pub fn ids(&self) -> &[Guid] {
        &self.0
    }
}

/// What the caller says about an update to publish; checked by [`PublishedUpdate::new`].
#[derive(Debug, Clone)]
pub struct NewUpdate {
    pub id: Guid,
    pub revision: u32,
    pub details: Details,
    pub product: Product,
    pub installer: Installer,
    pub payload: Payload,
    pub created: DateTime<Utc>,
    /// The publishing site's id (`PublisherID`).
    pub publisher_id: Guid,
}

/// Whether clients are offered an update (`PublicationState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicationState {
    Published,
    Expired,
}

impl PublicationState {
    pub fn as_str(self) -> &'static str {
        match self {
            PublicationState::Published => "Published",
            PublicationState::Expired => "Expired",
        }
    }
}

/// What the operator says of an update, and may change in a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    pub title: String,
    pub description: Option<String>,
    pub more_info_url: Option<String>,
    pub kb_article: Option<KbArticle>,
    pub severity: Option<MsrcSeverity>,
    pub classification: Classification,
    pub supersedes: Vec<Guid>,
    pub prerequisites: Vec<PrerequisiteGroup>,
}

/// Everything an update's document says apart from its installer and payload: which revision
/// of which update, written when and by whom, and the [`Details`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFields {
    pub id: Guid,
    pub revision: u32,
    pub state: PublicationState,
    pub created: DateTime<Utc>,
    pub publisher_id: Guid,
    /// The product's category (the vendor's is the product's parent).
    pub product_id: Guid,
    pub details: Details,
}

impl Details {
    /// Checks every value of update `id`'s details: titles trimmed and one line, supersedence
    /// sorted and not the update itself.
    pub fn checked(mut self, id: Guid) -> Result<Details, InvalidUpdate> {
        self.title = line_text("title", &self.title, MAX_TITLE)?;
        self.description = match self.description.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => Some(element_text("description", t, MAX_DESCRIPTION)?),
            _ => None,
        };
        self.more_info_url = match self.more_info_url.as_deref().map(str::trim) {
            Some(u) if !u.is_empty() => Some(more_info_url(u)?),
            _ => None,
        };
        if self.supersedes.contains(&id) {
            return Err(InvalidUpdate::SupersedesItself(id));
        }
        self.supersedes.sort();
        self.supersedes.dedup();
        Ok(self)
    }
}

impl UpdateFields {
    /// Checks every value: the revision's range and the [`Details`].
    fn checked(mut self) -> Result<UpdateFields, InvalidUpdate> {
        if self.revision == 0 || self.revision > i32::MAX as u32 {
            return Err(InvalidUpdate::Revision(self.revision));
        }
        self.details = self.details.checked(self.id)?;
        Ok(self)
    }
}

/// An update ready to be written: every value checked.
#[derive(Debug, Clone)]
pub struct PublishedUpdate {
    fields: UpdateFields,
    product: Product,
    installer: Installer,
    payload: Payload,
}

impl PublishedUpdate {
    pub fn new(u: NewUpdate) -> Result<PublishedUpdate, InvalidUpdate> {
        let fields = UpdateFields {
            id: u.id,
            revision: u.revision,
            state: PublicationState::Published,
            created: u.created,
            publisher_id: u.publisher_id,
            product_id: u.product.id,
            details: u.details,
        }
        .checked()?;
        Ok(PublishedUpdate {
            fields,
            product: u.product,
            installer: u.installer,
            payload: u.payload,
        })
    }

    /// Everything the update was built from, as checked (titles trimmed, supersedence sorted).
    pub fn fields(&self) -> &UpdateFields {
        &self.fields
    }

    pub fn id(&self) -> Guid {
        self.fields.id
    }

    pub fn revision(&self) -> u32 {
        self.fields.revision
    }

    pub fn title(&self) -> &str {
        &self.fields.details.title
    }

    pub fn product(&self) -> &Product {
        &self.product
    }

    pub fn installer(&self) -> &Installer {
        &self.installer
    }

    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    pub fn supersedes(&self) -> &[Guid] {
        &self.fields.details.supersedes
    }

    /// The update's `<upd:Update>` document.
    pub fn document(&self) -> String {
        write_update(&self.fields, &InstallerParts::of(&self.installer, &self.payload))
    }
}

fn more_info_url(url: &str) -> Result<String, InvalidUpdate> {
    let url = attribute_text("more-info URL", url, MAX_URL)?;
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !url.contains(char::is_whitespace) => Ok(url),
        _ => Err(InvalidUpdate::MoreInfoUrl(url)),
    }
}

/// When and by whom a category document is written (categories are written once per site and
/// revision; the same inputs give the same document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategoryRevision {
    pub revision: u32,
    pub created: DateTime<Utc>,
    pub publisher_id: Guid,
}

/// The vendor's category document (`CategoryType="Company"`).
pub fn vendor_document(vendor: &Vendor, at: &CategoryRevision) -> String {
    let info = [
        ("CategoryType", "Company"),
        ("ProhibitsSubcategories", "false"),
        ("ProhibitsUpdates", "true"),
    ];
    write_category(vendor.id, &vendor.name, None, &info, at)
}

/// The product's category document (`CategoryType="Product"`), under its vendor.
pub fn product_document(product: &Product, at: &CategoryRevision) -> String {
    let info = [
        ("CategoryType", "Product"),
        ("ProhibitsSubcategories", "true"),
        ("ProhibitsUpdates", "false"),
    ];
    write_category(product.id, &product.name, Some(product.vendor.id), &info, at)
}

/// Date-times as update metadata writes them: UTC, milliseconds, `Z`.
fn timestamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// An XML writer for the few shapes these documents need; values are escaped here.
struct Xml {
    out: String,
}

impl Xml {
    fn new() -> Xml {
        Xml { out: String::with_capacity(4096) }
    }

    fn tag(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attributes {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            push_escaped_attribute(&mut self.out, value);
            self.out.push('"');
        }
    }

    fn open(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.tag(name, attributes);
        self.out.push('>');
    }

    fn empty(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.tag(name, attributes);
        self.out.push_str(" />");
    }

    fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    fn text_element(&mut self, name: &str, text: &str) {
        self.open(name, &[]);
        push_escaped_text(&mut self.out, text);
        self.close(name);
    }
}

fn write_category(
    id: Guid,
    name: &CategoryName,
    parent: Option<Guid>,
    info: &[(&str, &str)],
    at: &CategoryRevision,
) -> String {
    let mut x = Xml::new();
    let root_ns = [
        ("xmlns:pub", ns::PUBLISHING),
        ("xmlns:lar", ns::LOGICAL_RULES),
        ("xmlns:cat", ns::CATEGORY),
        ("xmlns:upd", ns::UPDATE),
    ];
    x.open("upd:Update", &root_ns);
    identity(&mut x, id, at.revision);
    let (created, publisher) = (timestamp(&at.created), at.publisher_id.to_string());
    x.open(
        "upd:Properties",
        &[
            ("DefaultPropertiesLanguage", "en"),
            ("UpdateType", "Category"),
            ("Handler", ns::CATEGORY),
            ("PublicationState", "Published"),
            ("CreationDate", &created),
            ("PublisherID", &publisher),
        ],
    );
    x.close("upd:Properties");
    localized(&mut x, name.as_str(), Some(name.as_str()), None);
    if let Some(parent) = parent {
        x.open("upd:Relationships", &[]);
        x.open("upd:Prerequisites", &[]);
        category_clause(&mut x, parent);
        x.close("upd:Prerequisites");
        x.close("upd:Relationships");
    }
    x.open("upd:ApplicabilityRules", &[]);
    x.open("upd:IsInstalled", &[]);
    x.empty("lar:True", &[]);
    x.close("upd:IsInstalled");
    x.close("upd:ApplicabilityRules");
    x.open("upd:HandlerSpecificData", &[("xsi:type", "cat:Category"), ("xmlns:xsi", ns::XSI)]);
    x.empty("cat:CategoryInformation", info);
    x.close("upd:HandlerSpecificData");
    x.close("upd:Update");
    x.out
}

fn identity(x: &mut Xml, id: Guid, revision: u32) {
    let (id, revision) = (id.to_string(), revision.to_string());
    x.empty("upd:UpdateIdentity", &[("UpdateID", &id), ("RevisionNumber", &revision)]);
}

fn category_clause(x: &mut Xml, id: Guid) {
    x.open("upd:AtLeastOne", &[("IsCategory", "true")]);
    x.empty("upd:UpdateIdentity", &[("UpdateID", &id.to_string())]);
    x.close("upd:AtLeastOne");
}

fn localized(x: &mut Xml, title: &str, description: Option<&str>, more_info: Option<&str>) {
    x.open("upd:LocalizedPropertiesCollection", &[]);
    x.open("upd:LocalizedProperties", &[]);
    x.text_element("upd:Language", "en");
    x.text_element("upd:Title", title);
    if let Some(d) = description {
        x.text_element("upd:Description", d);
    }
    if let Some(u) = more_info {
        x.text_element("upd:MoreInfoUrl", u);
    }
    x.close("upd:LocalizedProperties");
    x.close("upd:LocalizedPropertiesCollection");
}

/// Which handler installs the update: the command-line handler (an EXE) or Windows Installer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    CommandLine,
    WindowsInstaller,
}

impl Handler {
    fn of(installer: &Installer) -> Handler {
        match installer {
            Installer::Exe(_) => Handler::CommandLine,
            Installer::Msi(_) | Installer::Msp(_) => Handler::WindowsInstaller,
        }
    }

    fn namespace(self) -> &'static str {
        match self {
            Handler::CommandLine => ns::COMMAND_LINE,
            Handler::WindowsInstaller => ns::WINDOWS_INSTALLER,
        }
    }

    /// The prefix the root element declares for the handler's namespace.
    fn declaration(self) -> &'static str {
        match self {
            Handler::CommandLine => "xmlns:cmd",
            Handler::WindowsInstaller => "xmlns:msp",
        }
    }
}

/// What an update's document says of its installer and payload, as written: fixed when the
/// update is first published (its signed CAB never changes) and carried as it is into every
/// revision; only an EXE's detection rules may be written anew.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InstallerParts {
    handler: Handler,
    /// The payload's size (`MinDownloadSize`, `MaxDownloadSize`).
    size: u64,
    /// `InstallationBehavior` (and `UninstallationBehavior`) elements.
    behavior: String,
    /// The `ApplicabilityRules`, `Files` and `HandlerSpecificData` elements.
    rules: String,
    files: String,
    handler_data: String,
}

impl InstallerParts {
    fn of(installer: &Installer, payload: &Payload) -> InstallerParts {
        InstallerParts {
            handler: Handler::of(installer),
            size: payload.size,
            behavior: written(|x| behavior(x, installer)),
            rules: written(|x| rules::write(x, installer)),
            files: written(|x| files(x, installer, payload)),
            handler_data: written(|x| handler_data(x, installer)),
        }
    }
}

/// What `write` writes, as a string.
fn written(write: impl FnOnce(&mut Xml)) -> String {
    let mut x = Xml::new();
    write(&mut x);
    x.out
}

/// The update document: the parts in the order Microsoft's documents have them.
fn write_update(f: &UpdateFields, parts: &InstallerParts) -> String {
    let mut x = Xml::new();
    let handler = (parts.handler.declaration(), parts.handler.namespace());
    x.open("upd:Update", &[("xmlns:pub", ns::PUBLISHING), handler, ("xmlns:upd", ns::UPDATE)]);
    identity(&mut x, f.id, f.revision);
    properties(&mut x, f, parts);
    let d = &f.details;
    localized(&mut x, &d.title, d.description.as_deref(), d.more_info_url.as_deref());
    relationships(&mut x, f);
    x.out.push_str(&parts.rules);
    x.out.push_str(&parts.files);
    x.out.push_str(&parts.handler_data);
    x.close("upd:Update");
    x.out
}

/// `Properties` in the attribute order of WSUS local publishing (a real WSUS's Extended
/// fragment of a published MSI keeps exactly this order once the publishing attributes are
/// dropped).
fn properties(x: &mut Xml, f: &UpdateFields, parts: &InstallerParts) {
    let created = timestamp(&f.created);
    let publisher = f.publisher_id.to_string();
    let size = parts.size.to_string();
    let mut attributes = vec![
        ("DefaultPropertiesLanguage", "en"),
        ("CreationDate", created.as_str()),
        ("PublisherID", publisher.as_str()),
        ("IsLocallyPublished", "true"),
        ("UpdateType", "Software"),
        ("ExplicitlyDeployable", "true"),
        ("PublicationState", f.state.as_str()),
        ("MinDownloadSize", size.as_str()),
        ("MaxDownloadSize", size.as_str()),
        ("Handler", parts.handler.namespace()),
    ];
    if let Some(s) = f.details.severity {
        attributes.push(("MsrcSeverity", s.as_str()));
    }
    attributes.push(("CanSourceBeRequired", "false"));
    x.open("upd:Properties", &attributes);
    x.out.push_str(&parts.behavior);
    if let Some(kb) = &f.details.kb_article {
        x.text_element("upd:KBArticleID", kb.as_str());
    }
    x.close("upd:Properties");
}

/// How the installer behaves: whether it may ask for a restart; an EXE cannot be uninstalled.
fn behavior(x: &mut Xml, installer: &Installer) {
    let reboot = match installer {
        Installer::Exe(e)
            if !e.return_codes.iter().any(|r| r.outcome == Outcome::SuccessRebootRequired) =>
        {
            "NeverReboots"
        }
        _ => "CanRequestReboot",
    };
    let behavior = [
        ("CanRequestUserInput", "false"),
        ("RequiresNetworkConnectivity", "false"),
        ("Impact", "Normal"),
        ("RebootBehavior", reboot),
    ];
    x.empty("upd:InstallationBehavior", &behavior);
    if !matches!(installer, Installer::Exe(_)) {
        x.empty("upd:UninstallationBehavior", &behavior);
    }
}

/// Supersedence, then the product and classification (category clauses), then the operator's
/// prerequisites.
fn relationships(x: &mut Xml, f: &UpdateFields) {
    let d = &f.details;
    x.open("upd:Relationships", &[]);
    if !d.supersedes.is_empty() {
        x.open("upd:SupersededUpdates", &[]);
        for id in &d.supersedes {
            x.empty("upd:UpdateIdentity", &[("UpdateID", &id.to_string())]);
        }
        x.close("upd:SupersededUpdates");
    }
    x.open("upd:Prerequisites", &[]);
    category_clause(x, f.product_id);
    category_clause(x, d.classification.id());
    for group in &d.prerequisites {
        x.open("upd:AtLeastOne", &[]);
        for id in group.ids() {
            x.empty("upd:UpdateIdentity", &[("UpdateID", &id.to_string())]);
        }
        x.close("upd:AtLeastOne");
    }
    x.close("upd:Prerequisites");
    x.close("upd:Relationships");
}

fn files(x: &mut Xml, installer: &Installer, p: &Payload) {
    let (digest, size, modified) = (p.sha1.to_base64(), p.size.to_string(), timestamp(&p.modified));
    let mut attributes = vec![
        ("Digest", digest.as_str()),
        ("FileName", p.file_name.as_str()),
        ("Size", size.as_str()),
        ("Modified", modified.as_str()),
        ("DigestAlgorithm", "SHA1"),
    ];
    if matches!(installer, Installer::Msp(_)) {
        attributes.push(("PatchingType", "SelfContained"));
    }
    x.open("upd:Files", &[]);
    x.open("upd:File", &attributes);
    x.open("upd:AdditionalDigest", &[("Algorithm", "SHA256")]);
    x.out.push_str(&p.sha256.to_base64());
    x.close("upd:AdditionalDigest");
    x.close("upd:File");
    x.close("upd:Files");
}

fn handler_data(x: &mut Xml, installer: &Installer) {
    let kind = match installer {
        Installer::Msi(_) => "msp:WindowsInstallerApp",
        Installer::Msp(_) => "msp:WindowsInstaller",
        Installer::Exe(_) => "cmd:CommandLineInstallation",
    };
    x.open("upd:HandlerSpecificData", &[("xsi:type", kind), ("xmlns:xsi", ns::XSI)]);
    match installer {
        Installer::Msi(m) => {
            let code = m.product.product_code.to_string();
            let mut attributes = vec![("ProductCode", code.as_str()), ("MsiFile", m.file.as_str())];
            if let Some(p) = &m.properties {
                attributes.push(("CommandLine", p));
            }
            attributes.push(("xmlns:msp", ns::WINDOWS_INSTALLER));
            x.empty("msp:MsiData", &attributes);
        }
        Installer::Msp(m) => {
            let code = m.patch.patch_code.to_string();
            let attributes =
                [("FullFilePatchCode", code.as_str()), ("xmlns:msp", ns::WINDOWS_INSTALLER)];
            x.empty("msp:MspData", &attributes);
        }
        Installer::Exe(e) => install_command(x, e),
    }
    x.close("upd:HandlerSpecificData");
}

fn install_command(x: &mut Xml, e: &ExeInstaller) {
    let mut attributes = vec![("Program", e.file.as_str())];
    if let Some(a) = &e.arguments {
        attributes.push(("Arguments", a));
    }
    attributes.extend([
        ("RebootByDefault", "false"),
        ("DefaultResult", "Failed"),
        ("xmlns:cmd", ns::COMMAND_LINE),
    ]);
    x.open("cmd:InstallCommand", &attributes);
    for r in &e.return_codes {
        let code = r.code.to_string();
        let (result, reboot) = match r.outcome {
            Outcome::Success => ("Succeeded", false),
            Outcome::SuccessRebootRequired => ("Succeeded", true),
            Outcome::Failure => ("Failed", false),
        };
        let mut attributes = vec![("Code", code.as_str()), ("Result", result)];
        if reboot {
            attributes.push(("Reboot", "true"));
        }
        x.empty("cmd:ReturnCode", &attributes);
    }
    x.close("cmd:InstallCommand");
}

/// The applicability rules of each installer kind.
mod rules {
    use super::*;

    /// A rule expression: logical operators over leaves of the base and MSI rule namespaces.
    pub(super) enum Rule {
        And(Vec<Rule>),
        Or(Vec<Rule>),
        Not(Box<Rule>),
        Leaf { name: &'static str, attributes: Vec<(&'static str, String)> },
    }

    impl Rule {
        /// `And`/`Or` of one rule is that rule.
        fn all(mut rules: Vec<Rule>) -> Rule {
            if rules.len() == 1 { rules.remove(0) } else { Rule::And(rules) }
        }

        fn any(mut rules: Vec<Rule>) -> Rule {
            if rules.len() == 1 { rules.remove(0) } else { Rule::Or(rules) }
        }

        fn leaf(name: &'static str, attributes: Vec<(&'static str, String)>) -> Rule {
            Rule::Leaf { name, attributes }
        }
    }

    /// `ApplicabilityRules`: IsInstalled, then IsInstallable.
    pub(super) fn write(x: &mut Xml, installer: &Installer) {
        let (installed, installable) = match installer {
            Installer::Msi(m) => msi(&m.product),
            Installer::Msp(m) => msp(&m.patch),
            Installer::Exe(e) => exe(&e.detection),
        };
        write_rules(x, &installed, &installable);
    }

    /// An EXE's `ApplicabilityRules` from its detection rules.
    pub(super) fn write_detection(x: &mut Xml, detection: &[DetectRule]) {
        let (installed, installable) = exe(detection);
        write_rules(x, &installed, &installable);
    }

    fn write_rules(x: &mut Xml, installed: &Rule, installable: &Rule) {
        x.open("upd:ApplicabilityRules", &[]);
        x.open("upd:IsInstalled", &[]);
        write_rule(x, installed, "");
        x.close("upd:IsInstalled");
        x.open("upd:IsInstallable", &[]);
        write_rule(x, installable, "");
        x.close("upd:IsInstallable");
        x.close("upd:ApplicabilityRules");
    }

    /// Installed: the product at this version or later. Installable: not installed.
    fn msi(product: &MsiProduct) -> (Rule, Rule) {
        let installed = || {
            Rule::leaf(
                "msiar:MsiProductInstalled",
                vec![
                    ("ProductCode", product.product_code.to_string()),
                    ("VersionMin", product.version.to_string()),
                ],
            )
        };
        (installed(), Rule::Not(Box::new(installed())))
    }

    /// Installed: the patch is on any of its target products. Installable: a target product is
    /// installed and the patch is not.
    fn msp(patch: &MspPatch) -> (Rule, Rule) {
        let installed = || {
            Rule::any(
                patch
                    .target_products
                    .iter()
                    .map(|t| {
                        Rule::leaf(
                            "msiar:MsiPatchInstalledForProduct",
                            vec![
                                ("PatchCode", patch.patch_code.to_string()),
                                ("ProductCode", t.to_string()),
                            ],
                        )
                    })
                    .collect(),
            )
        };
        let targets = Rule::any(
            patch
                .target_products
                .iter()
                .map(|t| {
                    Rule::leaf("msiar:MsiProductInstalled", vec![("ProductCode", t.to_string())])
                })
                .collect(),
        );
        (installed(), Rule::And(vec![targets, Rule::Not(Box::new(installed()))]))
    }

    /// Installed: every detection rule holds. Installable: not installed.
    fn exe(detection: &[DetectRule]) -> (Rule, Rule) {
        let installed = || Rule::all(detection.iter().map(detect).collect());
        (installed(), Rule::Not(Box::new(installed())))
    }

    fn file_attributes(file: &FilePath) -> Vec<(&'static str, String)> {
        vec![("Path", file.path.clone())]
    }

    fn with_folder(
        mut attributes: Vec<(&'static str, String)>,
        file: &FilePath,
    ) -> Vec<(&'static str, String)> {
        if let Some(folder) = file.folder {
            attributes.push(("Csidl", folder.csidl().to_string()));
        }
        attributes
    }

    fn key_attributes(key: &RegistryKey) -> Vec<(&'static str, String)> {
        let mut attributes =
            vec![("Key", "HKEY_LOCAL_MACHINE".to_string()), ("Subkey", key.subkey.clone())];
        if key.view32 {
            attributes.push(("RegType32", "true".to_string()));
        }
        attributes
    }

    fn detect(rule: &DetectRule) -> Rule {
        match rule {
            DetectRule::FileExists(file) => {
                Rule::leaf("bar:FileExists", with_folder(file_attributes(file), file))
            }
            DetectRule::FileVersion { file, comparison, version } => {
                let mut a = file_attributes(file);
                a.push(("Comparison", comparison.as_str().to_string()));
                a.push(("Version", version.four_part()));
                Rule::leaf("bar:FileVersion", with_folder(a, file))
            }
            DetectRule::RegistryKeyExists(key) => {
                Rule::leaf("bar:RegKeyExists", key_attributes(key))
            }
            DetectRule::RegistryValueExists { key, value } => {
                let mut a = key_attributes(key);
                a.push(("Value", value.clone()));
                Rule::leaf("bar:RegValueExists", a)
            }
            DetectRule::RegistryVersion { key, value, comparison, version } => {
                let mut a = key_attributes(key);
                a.push(("Value", value.clone()));
                a.push(("Comparison", comparison.as_str().to_string()));
                a.push(("Data", version.four_part()));
                Rule::leaf("bar:RegSzToVersion", a)
            }
            DetectRule::MsiProductInstalled(p) => msi_product_rule(p),
        }
    }

    fn msi_product_rule(p: &MsiProductRule) -> Rule {
        let mut a = vec![("ProductCode", p.product_code.to_string())];
        if let Some(max) = p.max_version {
            a.push(("VersionMax", max.to_string()));
        }
        if let Some(min) = p.min_version {
            a.push(("VersionMin", min.to_string()));
        }
        if let Some(language) = p.language {
            a.push(("Language", language.to_string()));
        }
        Rule::leaf("msiar:MsiProductInstalled", a)
    }

    /// Each element declares its namespace unless its parent's is the same, as Microsoft's
    /// documents do: every rule element can be read on its own.
    fn write_rule(x: &mut Xml, rule: &Rule, parent_ns: &str) {
        let logical = |x: &mut Xml, name: &str, children: &[&Rule]| {
            let declare = parent_ns != ns::LOGICAL_RULES;
            let attributes: &[(&str, &str)] =
                if declare { &[("xmlns:lar", ns::LOGICAL_RULES)] } else { &[] };
            x.open(name, attributes);
            for child in children {
                write_rule(x, child, ns::LOGICAL_RULES);
            }
            x.close(name);
        };
        match rule {
            Rule::And(rules) => logical(x, "lar:And", &rules.iter().collect::<Vec<_>>()),
            Rule::Or(rules) => logical(x, "lar:Or", &rules.iter().collect::<Vec<_>>()),
            Rule::Not(rule) => logical(x, "lar:Not", &[rule]),
            Rule::Leaf { name, attributes } => {
                let (declaration, uri) = if name.starts_with("bar:") {
                    ("xmlns:bar", ns::BASE_RULES)
                } else {
                    ("xmlns:msiar", ns::MSI_RULES)
                };
                let mut all: Vec<(&str, &str)> =
                    attributes.iter().map(|(k, v)| (*k, v.as_str())).collect();
                all.push((declaration, uri));
                x.empty(name, &all);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_ids_are_those_wsus_derives_from_the_names() {
        // Ids a real Configuration Manager site shows for a vendor and product that WSUS
        // local publishing created.
        assert_eq!(
            vendor_category_id("Patch My PC").to_string(),
            "510a93c7-9415-599a-77ab-ad27ceebb380"
        );
        assert_eq!(
            product_category_id("Patch My PC", "SCUP Updates").to_string(),
            "e49d9f1a-c900-4503-ea91-283000d6b09c"
        );
        assert_eq!(vendor_category_id("patch my pc"), vendor_category_id("PATCH MY PC"));
    }

    #[test]
    fn classifications_are_read_by_name_or_id() {
        for c in Classification::ALL {
            assert_eq!(c.name().parse::<Classification>().unwrap(), c);
            assert_eq!(c.id().to_string().parse::<Classification>().unwrap(), c);
        }
        assert_eq!("security".parse::<Classification>().unwrap(), Classification::SecurityUpdates);
        assert_eq!("Critical".parse::<Classification>().unwrap(), Classification::CriticalUpdates);
        assert!("".parse::<Classification>().is_err());
        assert!("Patches".parse::<Classification>().is_err());
    }

    #[test]
    fn kb_articles_are_numbers() {
        assert_eq!("KB5012345".parse::<KbArticle>().unwrap().as_str(), "5012345");
        assert_eq!("5012345".parse::<KbArticle>().unwrap().as_str(), "5012345");
        for bad in ["", "KB", "KB12a", "12 34", "12345678901"] {
            assert!(bad.parse::<KbArticle>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn exe_return_codes_must_mean_something() {
        let rule = || vec![DetectRule::FileExists(FilePath::new(None, "C:\\x.exe").unwrap())];
        let dup = vec![ReturnCode::success(0), ReturnCode::failure(0)];
        assert_eq!(
            ExeInstaller::new("x.exe", None, dup, rule()),
            Err(InvalidUpdate::DuplicateReturnCode(0))
        );
        let failing = vec![ReturnCode::failure(1)];
        assert_eq!(
            ExeInstaller::new("x.exe", None, failing, rule()),
            Err(InvalidUpdate::NoSuccessCode)
        );
        assert_eq!(
            ExeInstaller::new("x.exe", None, vec![], vec![]),
            Err(InvalidUpdate::NoDetection)
        );
        let defaults = ExeInstaller::new("x.exe", Some("  "), vec![], rule()).unwrap();
        assert_eq!(defaults.return_codes, ReturnCode::defaults());
        assert_eq!(defaults.arguments, None);
    }

    #[test]
    fn file_names_are_plain() {
        for bad in ["", "..", "a/b.exe", "a\\b.exe", "c:x.exe", " x.exe", "x\t.exe"] {
            assert!(FileName::new("f", bad).is_err(), "{bad:?}");
        }
        assert!(FileName::new("f", "Setup 1.2 (x64).exe").is_ok());
    }
}
