//! The MS-WUSP metadata fragments (Core, Extended, LocalizedProperties) and the rules that
//! derive them from a full update document, byte for byte as a real WSUS 2025 writes them
//! (WSUS-PROTOCOL.md §3.7; `shared/reference/derive_fragments.py` is the executable reference).
//!
//! The rules, in short:
//! - element names lose their namespace prefix; elements of the base, MSI and driver
//!   applicability-rule namespaces get `b.`, `m.` and `d.` instead;
//! - namespace declarations disappear, namespaced attributes keep their local name
//!   (`xsi:type` becomes `type`, its value untouched);
//! - .NET serialization: `<X a="v" />` for empty elements, `&`, `<`, `"` escaped in attributes,
//!   `&`, `<`, `>` in text, nothing added between elements;
//! - Core = UpdateIdentity + Properties (five attributes, defaults dropped, no children) +
//!   Relationships + ApplicabilityRules;
//! - Extended = Properties renamed ExtendedProperties (publishing attributes dropped) + Files +
//!   HandlerSpecificData;
//! - LocalizedProperties = one fragment per language.
//!
//! Invariant: this module does no I/O; it turns parser events into strings.

use super::xml::{ns, push_escaped_attribute, push_escaped_text};
use serde::Serialize;

/// Fragments of one revision, ready to serve.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fragments {
    /// `UpdateInfo/Xml` in SyncUpdates. Not well-formed XML by design (several roots).
    pub core: String,
    /// infoType `Extended` in GetExtendedUpdateInfo.
    pub extended: String,
    /// infoType `LocalizedProperties`: (language, fragment), in document order.
    pub localized: Vec<(String, String)>,
}

impl Fragments {
    pub fn localized(&self, language: &str) -> Option<&str> {
        self.localized.iter().find(|(l, _)| l == language).map(|(_, f)| f.as_str())
    }
}

/// Properties attributes kept in Core, in this order.
pub const CORE_PROPERTY_ATTRIBUTES: [&str; 5] =
    ["UpdateType", "ExplicitlyDeployable", "AutoSelectOnWebSites", "OSUpgrade", "EulaID"];

/// Properties attributes removed from Extended.
pub const EXTENDED_DROPPED_ATTRIBUTES: [&str; 12] = [
    "UpdateType",
    "ExplicitlyDeployable",
    "AutoSelectOnWebSites",
    "EulaID",
    "PublicationState",
    "PublisherID",
    "CreationDate",
    "IsPublic",
    "LegacyName",
    "DetectoidType",
    "OSUpgrade",
    "PerUser",
];

/// Attributes WSUS leaves out when they have their default value.
pub fn is_default_value(name: &str, value: &str) -> bool {
    matches!(
        (name, value),
        ("ExplicitlyDeployable", "false")
            | ("PerUser", "false")
            | ("IsPublic", "true")
            | ("AutoSelectOnWebSites", "false")
            | ("OSUpgrade", "false")
    )
}

/// The prefix an element of namespace `uri` gets in a fragment.
pub fn fragment_prefix(uri: &[u8]) -> &'static str {
    match uri {
        ns::BASE_RULES => "b.",
        ns::MSI_RULES => "m.",
        ns::WINDOWS_DRIVER => "d.",
        _ => "",
    }
}

/// The Core `<Properties .../>` element from the document's Properties attributes
/// `(name, is_namespaced, value)`.
pub fn core_properties(attributes: &[(String, bool, String)]) -> String {
    let mut out = String::from("<Properties");
    for wanted in CORE_PROPERTY_ATTRIBUTES {
        // Only unqualified attributes match: a namespaced `x:UpdateType` is another attribute.
        if let Some((name, _, value)) =
            attributes.iter().find(|(n, namespaced, _)| !namespaced && n == wanted)
            && !is_default_value(name, value)
        {
            push_attribute(&mut out, name, value);
        }
    }
    out.push_str(" />");
    out
}

/// The attributes Extended keeps on `ExtendedProperties`, in document order.
pub fn extended_property_attributes(
    attributes: &[(String, bool, String)],
) -> impl Iterator<Item = (&str, &str)> {
    attributes
        .iter()
        .map(|(n, _, v)| (n.as_str(), v.as_str()))
        .filter(|(n, v)| !EXTENDED_DROPPED_ATTRIBUTES.contains(n) && !is_default_value(n, v))
}

pub fn push_attribute(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    push_escaped_attribute(out, value);
    out.push('"');
}

/// Writes one element subtree in fragment form while the parser walks it.
///
/// The start tag stays open until the next event shows whether the element has content, because
/// an element without children and without text is written `<X />`.
#[derive(Debug)]
pub struct FragmentCapture {
    pub out: String,
    /// Depth (in the document) of the element this capture started at.
    pub base_depth: usize,
    open_tag_pending: bool,
}

impl FragmentCapture {
    pub fn new(base_depth: usize) -> Self {
        FragmentCapture { out: String::new(), base_depth, open_tag_pending: false }
    }

    fn close_pending(&mut self) {
        if self.open_tag_pending {
            self.out.push('>');
            self.open_tag_pending = false;
        }
    }

    /// `name` is the fragment name (prefix already mapped); attributes are decoded values.
    pub fn start<'a>(&mut self, name: &str, attributes: impl Iterator<Item = (&'a str, &'a str)>) {
        self.open_start_tag(name);
        for (k, v) in attributes {
            self.attribute(k, v);
        }
    }

    /// Starts a tag whose attributes follow one by one with [`FragmentCapture::attribute`].
    pub fn open_start_tag(&mut self, name: &str) {
        self.close_pending();
        self.out.push('<');
        self.out.push_str(name);
        self.open_tag_pending = true;
    }

    /// An attribute of the tag just opened (decoded value).
    pub fn attribute(&mut self, name: &str, value: &str) {
        debug_assert!(self.open_tag_pending, "attributes belong to an open start tag");
        push_attribute(&mut self.out, name, value);
    }

    /// Decoded character data. Empty text does not count as content, as in ElementTree.
    pub fn text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.close_pending();
        push_escaped_text(&mut self.out, text);
    }

    pub fn end(&mut self, name: &str) {
        if self.open_tag_pending {
            self.out.push_str(" />");
            self.open_tag_pending = false;
        } else {
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[(&str, &str)]) -> Vec<(String, bool, String)> {
        list.iter().map(|(k, v)| (k.to_string(), false, v.to_string())).collect()
    }

    #[test]
    fn core_properties_keep_five_attributes_in_fixed_order_without_defaults() {
        let a = attrs(&[
            ("DefaultPropertiesLanguage", "en"),
            ("AutoSelectOnWebSites", "true"),
            ("UpdateType", "Software"),
            ("ExplicitlyDeployable", "false"),
            ("EulaID", "x&y"),
        ]);
        assert_eq!(
            core_properties(&a),
            r#"<Properties UpdateType="Software" AutoSelectOnWebSites="true" EulaID="x&amp;y" />"#
        );
    }

    #[test]
    fn capture_writes_empty_elements_dotnet_style() {
        let mut c = FragmentCapture::new(1);
        c.start("A", [("k", "v\"")].into_iter());
        c.start("B", std::iter::empty());
        c.end("B");
        c.text("1 < 2");
        c.end("A");
        assert_eq!(c.out, r#"<A k="v&quot;"><B />1 &lt; 2</A>"#);
    }
}
