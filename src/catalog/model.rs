//! The update catalog model: what one revision of a Microsoft update says about itself.
//!
//! Everything here is parsed from a full `<upd:Update>` document (see `parse.rs`). The document
//! itself stays the source of truth: fields the model does not name are still in it, and the
//! fragments served to clients are derived from it, not from these structs.

use super::digest::{Sha1Digest, Sha256Digest};
use super::guid::Guid;
use serde::Serialize;
use std::fmt;

/// (UpdateID, RevisionNumber): globally unique name of one revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct UpdateIdentity {
    pub update_id: Guid,
    pub revision_number: i32,
}

impl fmt::Display for UpdateIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.update_id, self.revision_number)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum UpdateType {
    Software,
    Driver,
    Detectoid,
    Category,
}

impl UpdateType {
    pub fn parse(text: &str) -> Option<UpdateType> {
        Some(match text {
            "Software" => UpdateType::Software,
            "Driver" => UpdateType::Driver,
            "Detectoid" => UpdateType::Detectoid,
            "Category" => UpdateType::Category,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UpdateType::Software => "Software",
            UpdateType::Driver => "Driver",
            UpdateType::Detectoid => "Detectoid",
            UpdateType::Category => "Category",
        }
    }
}

/// `CategoryInformation/@CategoryType` of a category update.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum CategoryKind {
    Company,
    ProductFamily,
    Product,
    UpdateClassification,
    /// Plain sub-categories and kinds this version does not know; kept as sent.
    Other(String),
}

impl CategoryKind {
    pub fn parse(text: &str) -> CategoryKind {
        match text {
            "Company" => CategoryKind::Company,
            "ProductFamily" => CategoryKind::ProductFamily,
            "Product" => CategoryKind::Product,
            "UpdateClassification" => CategoryKind::UpdateClassification,
            other => CategoryKind::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            CategoryKind::Company => "Company",
            CategoryKind::ProductFamily => "ProductFamily",
            CategoryKind::Product => "Product",
            CategoryKind::UpdateClassification => "UpdateClassification",
            CategoryKind::Other(s) => s,
        }
    }
}

/// One AND-clause of the prerequisites: satisfied when any of `update_ids` is installed.
/// A bare `<UpdateIdentity>` under `Prerequisites` is a clause with one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrerequisiteClause {
    pub update_ids: Vec<Guid>,
    /// `AtLeastOne IsCategory="true"`: the clause names the product or classification.
    pub is_category: bool,
}

/// One `AtLeastOne` of `BundledUpdates`: exact revisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleClause {
    pub members: Vec<UpdateIdentity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateFile {
    pub file_name: String,
    pub size: u64,
    pub sha1: Sha1Digest,
    pub sha256: Option<Sha256Digest>,
    pub modified: Option<String>,
    pub patching_type: Option<String>,
}

impl UpdateFile {
    /// The extension WSUS uses in content URLs: the part of the file name after the last dot,
    /// taken from the last path component (UUP names can look like paths).
    pub fn extension(&self) -> &str {
        let base = self.file_name.rsplit(['/', '\\']).next().unwrap_or(&self.file_name);
        match base.rfind('.') {
            Some(i) if i + 1 < base.len() => &base[i + 1..],
            _ => "",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LocalizedProperties {
    pub language: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub release_notes: Option<String>,
    pub uninstall_notes: Option<String>,
    pub more_info_url: Option<String>,
    pub support_url: Option<String>,
}

/// `InstallationBehavior` / `UninstallationBehavior` attributes, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Behavior {
    pub attributes: Vec<(String, String)>,
}

impl Behavior {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A `LocalizedProperties` or `EulaFile` element of one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LanguageElement {
    /// Lower case, as the element states it.
    pub language: String,
    pub eula: bool,
    pub span: Span,
}

/// Byte range inside the document the model was parsed from.
pub type Span = std::ops::Range<usize>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Update {
    pub identity: UpdateIdentity,
    pub update_type: UpdateType,
    /// Set for categories.
    pub category_kind: Option<CategoryKind>,
    pub default_language: Option<String>,
    pub handler: Option<String>,
    /// `Published` or `Expired` (expired revisions still sync, but are never deployed).
    pub publication_state: Option<String>,
    pub creation_date: Option<String>,
    pub explicitly_deployable: bool,
    pub msrc_severity: Option<String>,
    pub kb_article_ids: Vec<String>,
    /// `Properties/Language`, lower case: the languages a language-specific update is for
    /// (Office language children, language packs). Empty, or `all`, for language-neutral ones.
    pub languages: Vec<String>,
    pub security_bulletin_ids: Vec<String>,
    pub support_url: Option<String>,
    pub max_download_size: Option<u64>,
    pub installation: Option<Behavior>,
    pub uninstallation: Option<Behavior>,
    /// `Properties/@EulaID` and the languages of the `EulaFile`s.
    pub eula_id: Option<Guid>,
    pub eula_languages: Vec<String>,
    /// Every `LocalizedProperties` and `EulaFile` element with its language (lower case), as
    /// spans of the document: what `strip_languages` may cut.
    pub language_elements: Vec<LanguageElement>,
    /// Properties attributes the model does not name, in document order.
    pub other_property_attributes: Vec<(String, String)>,
    pub prerequisites: Vec<PrerequisiteClause>,
    pub bundled_updates: Vec<BundleClause>,
    pub superseded_update_ids: Vec<Guid>,
    pub files: Vec<UpdateFile>,
    pub localized: Vec<LocalizedProperties>,
    /// `HandlerSpecificData/@xsi:type`, e.g. `cmd:CommandLineInstallation`.
    pub handler_data_type: Option<String>,
    /// `ApplicabilityRules`, `HandlerSpecificData` and every top-level element this version
    /// does not model, as spans of the document: kept verbatim.
    pub applicability_rules: Option<Span>,
    pub handler_specific_data: Option<Span>,
    pub unknown_elements: Vec<(String, Span)>,
}

impl Update {
    /// Published by a site of its own (WSUS local publishing, `ferry publish`): its
    /// Properties say `IsLocallyPublished="true"`.
    pub fn is_locally_published(&self) -> bool {
        self.other_property_attributes.iter().any(|(n, v)| n == "IsLocallyPublished" && v == "true")
    }

    pub fn is_bundle(&self) -> bool {
        !self.bundled_updates.is_empty()
    }

    pub fn is_expired(&self) -> bool {
        self.publication_state.as_deref() == Some("Expired")
    }

    /// Localized properties in `language`, else the default language, else the first.
    pub fn localized_in(&self, language: &str) -> Option<&LocalizedProperties> {
        let by = |l: &str| self.localized.iter().find(|p| p.language.eq_ignore_ascii_case(l));
        by(language)
            .or_else(|| self.default_language.as_deref().and_then(by))
            .or_else(|| self.localized.first())
    }

    pub fn title(&self) -> Option<&str> {
        self.localized_in("en").and_then(|p| p.title.as_deref())
    }

    /// Every UpdateID named by the prerequisites.
    pub fn prerequisite_ids(&self) -> impl Iterator<Item = Guid> + '_ {
        self.prerequisites.iter().flat_map(|c| c.update_ids.iter().copied())
    }

    pub fn bundle_members(&self) -> impl Iterator<Item = UpdateIdentity> + '_ {
        self.bundled_updates.iter().flat_map(|c| c.members.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> UpdateFile {
        UpdateFile {
            file_name: name.into(),
            size: 1,
            sha1: Sha1Digest([0; 20]),
            sha256: None,
            modified: None,
            patching_type: None,
        }
    }

    #[test]
    fn extension_comes_from_the_last_path_component() {
        assert_eq!(file("AM_Delta.exe").extension(), "exe");
        assert_eq!(file("Windows11.0-KB5026368-x64.msu").extension(), "msu");
        assert_eq!(file("sources\\install.wim").extension(), "wim");
        assert_eq!(file("dir.d/noext").extension(), "");
        assert_eq!(file("trailingdot.").extension(), "");
    }
}
