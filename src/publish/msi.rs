//! What a Windows Installer package says about itself: an MSI's product (the Property table) and
//! an MSP's patch code and target products (its summary information).
//!
//! Both are OLE compound files. The file is read through a seekable reader: the tables and
//! streams it names are opened one at a time, and the embedded cabinets (most of a large
//! installer) are never read.

use crate::catalog::Guid;
use std::fmt;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Root CLSIDs of the compound file: what kind of Windows Installer file it is.
const CLSID_INSTALLER: &str = "000c1084-0000-0000-c000-000000000046";
const CLSID_PATCH: &str = "000c1086-0000-0000-c000-000000000046";
const CLSID_TRANSFORM: &str = "000c1082-0000-0000-c000-000000000046";
/// The summary information stream of every compound document.
const SUMMARY_STREAM: &str = "\u{5}SummaryInformation";
/// Summary information is a few hundred bytes; more is not a summary.
const MAX_SUMMARY_BYTES: u64 = 1 << 20;
/// Summary property ids (MS-OLEPS, as Windows Installer uses them).
const PID_TEMPLATE: u32 = 7;
const PID_REVISION_NUMBER: u32 = 9;
/// `VT_LPSTR`: a code-page string.
const VT_LPSTR: u16 = 0x1e;

macro_rules! msi_guid {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Guid);

        impl $name {
            pub fn guid(&self) -> Guid {
                self.0
            }
        }

        /// Windows Installer's own spelling: braced, upper case.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{{{}}}", self.0.to_string().to_ascii_uppercase())
            }
        }

        impl FromStr for $name {
            type Err = crate::catalog::guid::GuidError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Guid::parse(s).map($name)
            }
        }
    };
}

msi_guid!(
    /// `ProductCode`: one release (language, version line) of one product.
    ProductCode
);
msi_guid!(
    /// `UpgradeCode`: the family of releases of a product.
    UpgradeCode
);
msi_guid!(
    /// An MSP's patch code (the first GUID of its summary Revision Number).
    PatchCode
);

/// A dotted version of one to four parts, each 0..=65535 (`ProductVersion`, file versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    parts: [u16; 4],
    len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a version: {0:?} (expected 1 to 4 numbers 0-65535 separated by dots)")]
pub struct VersionError(pub String);

impl Version {
    pub fn parts(&self) -> &[u16] {
        &self.parts[..self.len as usize]
    }

    /// The parts padded with zeros to four: `1.2` and `1.2.0.0` compare equal this way.
    pub fn padded(&self) -> [u16; 4] {
        self.parts
    }

    /// The four-part form (`1.2` is `1.2.0.0`), as file-version rules write versions.
    pub fn four_part(&self) -> String {
        let [a, b, c, d] = self.parts;
        format!("{a}.{b}.{c}.{d}")
    }
}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || VersionError(text.chars().take(80).collect());
        let mut parts = [0u16; 4];
        let mut len = 0usize;
        for piece in text.split('.') {
            if len == 4 || piece.is_empty() || piece.len() > 5 {
                return Err(err());
            }
            if !piece.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            parts[len] = piece.parse().map_err(|_| err())?;
            len += 1;
        }
        Ok(Version { parts, len: len as u8 })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.parts().iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{part}")?;
        }
        Ok(())
    }
}

/// A Windows language identifier (LCID), e.g. 1033 for English (United States); 0 is neutral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lcid(pub u16);

impl fmt::Display for Lcid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What an MSI says about the product it installs (its Property table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsiProduct {
    pub product_code: ProductCode,
    pub version: Version,
    pub language: Lcid,
    pub manufacturer: String,
    pub name: String,
    /// Optional in Windows Installer: a product without one cannot be major-upgraded.
    pub upgrade_code: Option<UpgradeCode>,
}

/// What an MSP says about itself (its summary information).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MspPatch {
    pub patch_code: PatchCode,
    /// Patch codes this patch makes obsolete (the rest of the Revision Number).
    pub obsoletes: Vec<PatchCode>,
    /// The products it applies to (the Template), at least one.
    pub target_products: Vec<ProductCode>,
}

#[derive(Debug, thiserror::Error)]
pub enum MsiError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("not an MSI: {}: {reason}", path.display())]
    NotMsi { path: PathBuf, reason: String },
    #[error("not an MSP: {}: {reason}", path.display())]
    NotMsp { path: PathBuf, reason: String },
    #[error("{}: the MSI has no {property} property", path.display())]
    MissingProperty { path: PathBuf, property: &'static str },
    #[error("{}: property {property} = {value:?}: {reason}", path.display())]
    BadProperty { path: PathBuf, property: &'static str, value: String, reason: String },
    #[error("{}: the patch's summary information {what}", path.display())]
    BadPatchSummary { path: PathBuf, what: String },
}

impl MsiProduct {
    /// Reads the MSI at `path`.
    pub fn read_file(path: &Path) -> Result<MsiProduct, MsiError> {
        let file = super::open_regular(path)
            .map_err(|source| MsiError::Io { path: path.into(), source })?;
        MsiProduct::read(BufReader::new(file), path)
    }

    /// Reads an MSI from `reader`; `path` names it in errors.
    pub fn read<R: Read + Seek>(reader: R, path: &Path) -> Result<MsiProduct, MsiError> {
        let not_msi = |reason: String| MsiError::NotMsi { path: path.into(), reason };
        let mut package = msi::Package::open(reader).map_err(|e| not_msi(e.to_string()))?;
        match package.package_type() {
            msi::PackageType::Installer => {}
            msi::PackageType::Patch => {
                return Err(not_msi("it is a patch (MSP), not an installer".into()));
            }
            msi::PackageType::Transform => {
                return Err(not_msi("it is a transform (MST), not an installer".into()));
            }
        }
        let properties = read_properties(&mut package).map_err(|e| not_msi(e.to_string()))?;
        ProductProperties { path, properties }.product()
    }
}

/// The properties an `MsiProduct` needs, as the Property table holds them.
const WANTED_PROPERTIES: [&str; 6] = [
    "ProductCode",
    "ProductVersion",
    "ProductLanguage",
    "Manufacturer",
    "ProductName",
    "UpgradeCode",
];

fn read_properties<R: Read + Seek>(
    package: &mut msi::Package<R>,
) -> std::io::Result<Vec<(&'static str, String)>> {
    if !package.has_table("Property") {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for row in package.select_rows(msi::Select::table("Property"))? {
        let (Some(name), Some(value)) = (row[0].as_str(), row[1].as_str()) else { continue };
        if let Some(wanted) = WANTED_PROPERTIES.iter().find(|w| **w == name) {
            found.push((*wanted, value.to_string()));
        }
    }
    Ok(found)
}

struct ProductProperties<'a> {
    path: &'a Path,
    properties: Vec<(&'static str, String)>,
}

impl ProductProperties<'_> {
    fn get(&self, property: &'static str) -> Option<&str> {
        self.properties.iter().find(|(n, _)| *n == property).map(|(_, v)| v.trim())
    }

    fn required(&self, property: &'static str) -> Result<&str, MsiError> {
        match self.get(property) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(MsiError::MissingProperty { path: self.path.into(), property }),
        }
    }

    fn bad(&self, property: &'static str, value: &str, reason: impl fmt::Display) -> MsiError {
        MsiError::BadProperty {
            path: self.path.into(),
            property,
            // A property can be any length: an error shows its start.
            value: value.chars().take(80).collect(),
            reason: reason.to_string(),
        }
    }

    fn product(&self) -> Result<MsiProduct, MsiError> {
        let code = self.required("ProductCode")?;
        let product_code = code.parse().map_err(|e| self.bad("ProductCode", code, e))?;
        let version_text = self.required("ProductVersion")?;
        let version =
            version_text.parse().map_err(|e| self.bad("ProductVersion", version_text, e))?;
        let language_text = self.required("ProductLanguage")?;
        let language = language_text
            .parse::<u16>()
            .map(Lcid)
            .map_err(|_| self.bad("ProductLanguage", language_text, "not a language id (LCID)"))?;
        let upgrade_code = match self.get("UpgradeCode").filter(|v| !v.is_empty()) {
            Some(v) => Some(v.parse().map_err(|e| self.bad("UpgradeCode", v, e))?),
            None => None,
        };
        Ok(MsiProduct {
            product_code,
            version,
            language,
            manufacturer: self.required("Manufacturer")?.to_string(),
            name: self.required("ProductName")?.to_string(),
            upgrade_code,
        })
    }
}

impl MspPatch {
    /// Reads the MSP at `path`.
    pub fn read_file(path: &Path) -> Result<MspPatch, MsiError> {
        let file = super::open_regular(path)
            .map_err(|source| MsiError::Io { path: path.into(), source })?;
        MspPatch::read(BufReader::new(file), path)
    }

    /// Reads an MSP from `reader`; `path` names it in errors.
    pub fn read<R: Read + Seek>(reader: R, path: &Path) -> Result<MspPatch, MsiError> {
        let not_msp = |reason: String| MsiError::NotMsp { path: path.into(), reason };
        let mut compound = cfb::CompoundFile::open(reader).map_err(|e| not_msp(e.to_string()))?;
        let clsid = compound.root_entry().clsid().hyphenated().to_string();
        match clsid.to_ascii_lowercase().as_str() {
            CLSID_PATCH => {}
            CLSID_INSTALLER => return Err(not_msp("it is an installer (MSI), not a patch".into())),
            CLSID_TRANSFORM => return Err(not_msp("it is a transform (MST), not a patch".into())),
            other => return Err(not_msp(format!("unrecognized package class {other}"))),
        }
        let mut summary = Vec::new();
        compound
            .open_stream(SUMMARY_STREAM)
            .and_then(|s| s.take(MAX_SUMMARY_BYTES).read_to_end(&mut summary))
            .map_err(|e| not_msp(format!("no summary information: {e}")))?;
        let bad = |what: String| MsiError::BadPatchSummary { path: path.into(), what };
        let strings = summary_strings(&summary).map_err(|e| bad(e.to_string()))?;
        let text = |pid: u32| strings.iter().find(|(p, _)| *p == pid).map(|(_, s)| s.as_str());
        let revision = text(PID_REVISION_NUMBER)
            .ok_or_else(|| bad("has no Revision Number (the patch code)".into()))?;
        let mut codes = braced_guids(revision)
            .map_err(|e| bad(format!("Revision Number {revision:?}: {e}")))?
            .into_iter()
            .map(PatchCode);
        let patch_code = codes.next().ok_or_else(|| bad("has an empty Revision Number".into()))?;
        let template = text(PID_TEMPLATE)
            .ok_or_else(|| bad("has no Template (the target products)".into()))?;
        let target_products = template
            .split(';')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.parse::<ProductCode>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("Template {template:?}: {e}")))?;
        if target_products.is_empty() {
            return Err(bad("names no target product".into()));
        }
        Ok(MspPatch { patch_code, obsoletes: codes.collect(), target_products })
    }
}

/// `{A}{B}...`: the patch code and the codes it obsoletes, as a Revision Number holds them.
fn braced_guids(text: &str) -> Result<Vec<Guid>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let end = rest.find('}').ok_or("a GUID without its closing brace")?;
        if !rest.starts_with('{') {
            return Err("expected braced GUIDs".into());
        }
        out.push(Guid::parse(&rest[..=end]).map_err(|e| e.to_string())?);
        rest = rest[end + 1..].trim_start();
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
#[error("malformed property set: {0}")]
struct PropertySetError(&'static str);

/// The string (`VT_LPSTR`) properties of a summary information stream (MS-OLEPS), as
/// (property id, text). Other property types are skipped. Text is read as UTF-8, lossily: the
/// values this module reads (GUIDs, `;`) are ASCII in every code page.
fn summary_strings(stream: &[u8]) -> Result<Vec<(u32, String)>, PropertySetError> {
    let u16_at = |at: usize| {
        stream
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or(PropertySetError("truncated"))
    };
    let u32_at = |at: usize| {
        stream
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(PropertySetError("truncated"))
    };
    if u16_at(0)? != 0xfffe {
        return Err(PropertySetError("wrong byte-order mark"));
    }
    if u32_at(24)? == 0 {
        return Err(PropertySetError("no property set"));
    }
    let set = u32_at(44)? as usize;
    let count = u32_at(set + 4)? as usize;
    if count > 1024 {
        return Err(PropertySetError("too many properties"));
    }
    let mut out = Vec::new();
    for i in 0..count {
        let id = u32_at(set + 8 + i * 8)?;
        let at = set
            .checked_add(u32_at(set + 12 + i * 8)? as usize)
            .ok_or(PropertySetError("offset"))?;
        if u16_at(at)? != VT_LPSTR {
            continue;
        }
        let len = u32_at(at + 4)? as usize;
        let bytes = stream.get(at + 8..at + 8 + len).ok_or(PropertySetError("truncated string"))?;
        let text = bytes.split(|b| *b == 0).next().unwrap_or_default();
        out.push((id, String::from_utf8_lossy(text).into_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_have_one_to_four_parts() {
        let v: Version = "1.2.3".parse().unwrap();
        assert_eq!(v.to_string(), "1.2.3");
        assert_eq!(v.four_part(), "1.2.3.0");
        assert_eq!("65535.0.0.1".parse::<Version>().unwrap().parts(), [65535, 0, 0, 1]);
        for bad in ["", "1.", ".1", "1.2.3.4.5", "1.a", "65536", "-1", "1 .2", "1.2.3.000000"] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn codes_print_as_windows_installer_spells_them() {
        let code: ProductCode = "12345678-abcd-1234-1234-123456789abc".parse().unwrap();
        assert_eq!(code.to_string(), "{12345678-ABCD-1234-1234-123456789ABC}");
        assert_eq!("{12345678-ABCD-1234-1234-123456789ABC}".parse::<ProductCode>().unwrap(), code);
    }

    #[test]
    fn a_revision_number_holds_the_patch_code_then_the_obsoleted_ones() {
        let two = braced_guids(
            "{11111111-2222-3333-4444-555555555555}{AAAAAAAA-2222-3333-4444-555555555555}",
        )
        .unwrap();
        assert_eq!(two.len(), 2);
        assert!(braced_guids("11111111-2222-3333-4444-555555555555").is_err());
        assert!(braced_guids("{11111111-2222-3333-4444-555555555555").is_err());
    }

    #[test]
    fn a_malformed_summary_is_refused_not_read_out_of_bounds() {
        assert!(summary_strings(&[]).is_err());
        let mut stream = vec![0xfe, 0xff];
        stream.resize(48, 0);
        stream[24] = 1;
        stream[44] = 200;
        assert!(summary_strings(&stream).is_err());
    }
}
