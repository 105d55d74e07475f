//! Export profiles (`manifests/*.toml`): which part of the catalog a channel carries.

use crate::catalog::Language;
use crate::units::parse_duration_secs;
use serde::Deserialize;
use std::path::Path;

/// Which payload files travel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PayloadPolicy {
    /// Every file of every selected update.
    #[default]
    All,
    /// Metadata only (the isolated side gets files some other way, or only reports).
    None,
    /// Only the files of updates no selected update supersedes.
    NotSuperseded,
    /// Only the files of updates approved in the cache or by the profile's approval policy, and
    /// of what they need (bundle members, prerequisites): WSUS's "download files only when
    /// updates are approved".
    Approved,
}

impl PayloadPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadPolicy::All => "all",
            PayloadPolicy::None => "none",
            PayloadPolicy::NotSuperseded => "not-superseded",
            PayloadPolicy::Approved => "approved",
        }
    }
}

/// Which updates published in the cache store (`ferry publish`) travel: none (the default),
/// every one (`published = true`), or those of the vendors and products a `[published]` table
/// names (names as `ferry publish list` shows them, any case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PublishedSelection {
    #[default]
    None,
    All,
    Of {
        vendors: Vec<String>,
        products: Vec<String>,
    },
}

/// The most names a `[published]` table may hold, and the longest name (a category name's).
const MAX_PUBLISHED_NAMES: usize = 1000;
const MAX_PUBLISHED_NAME: usize = 200;

impl PublishedSelection {
    /// Whether any published update can travel.
    pub fn any(&self) -> bool {
        *self != PublishedSelection::None
    }

    /// Whether the update a vendor published for a product travels.
    pub fn carries(&self, vendor: &str, product: &str) -> bool {
        let named = |names: &[String], name: &str| {
            names.iter().any(|n| n.trim().eq_ignore_ascii_case(name.trim()))
        };
        match self {
            PublishedSelection::None => false,
            PublishedSelection::All => true,
            PublishedSelection::Of { vendors, products } => {
                named(vendors, vendor) || named(products, product)
            }
        }
    }

    /// The names of a `[published]` table that no published update (`vendor`, `product`) has.
    pub fn unmatched<'a>(&self, published: &[(&'a str, &'a str)]) -> Vec<String> {
        let PublishedSelection::Of { vendors, products } = self else { return Vec::new() };
        let has = |name: &str, product: bool| {
            published.iter().any(|&(v, p)| {
                let of = if product { p } else { v };
                of.trim().eq_ignore_ascii_case(name.trim())
            })
        };
        let vendors = vendors.iter().filter(|v| !has(v, false));
        let products = products.iter().filter(|n| !has(n, true));
        vendors.chain(products).cloned().collect()
    }

    fn check(&self) -> Result<(), String> {
        let PublishedSelection::Of { vendors, products } = self else { return Ok(()) };
        if vendors.is_empty() && products.is_empty() {
            return Err("published: the table names no vendor and no product (write published = true for every published update)".into());
        }
        if vendors.len() + products.len() > MAX_PUBLISHED_NAMES {
            return Err(format!("published: at most {MAX_PUBLISHED_NAMES} names"));
        }
        for name in vendors.iter().chain(products) {
            let len = name.trim().chars().count();
            if len == 0 || len > MAX_PUBLISHED_NAME || name.chars().any(char::is_control) {
                return Err(format!(
                    "published: {:?} is not a vendor or product name (1 to {MAX_PUBLISHED_NAME} characters, one line)",
                    name.chars().take(40).collect::<String>()
                ));
            }
        }
        Ok(())
    }
}

/// `published = true|false`, or a `[published]` table with `vendors` and `products`; a wrong
/// key or value is named.
impl<'de> Deserialize<'de> for PublishedSelection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SelectionVisitor)
    }
}

struct SelectionVisitor;

impl<'de> serde::de::Visitor<'de> for SelectionVisitor {
    type Value = PublishedSelection;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("true, false, or a table of vendors and products")
    }

    fn visit_bool<E>(self, all: bool) -> Result<PublishedSelection, E> {
        Ok(if all { PublishedSelection::All } else { PublishedSelection::None })
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<PublishedSelection, A::Error> {
        use serde::de::Error;
        const KEYS: &[&str] = &["vendors", "products"];
        let (mut vendors, mut products) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            let (slot, name) = match key.as_str() {
                "vendors" => (&mut vendors, KEYS[0]),
                "products" => (&mut products, KEYS[1]),
                other => return Err(A::Error::unknown_field(other, KEYS)),
            };
            if slot.is_some() {
                return Err(A::Error::duplicate_field(name));
            }
            *slot = Some(map.next_value::<Vec<String>>()?);
        }
        Ok(PublishedSelection::Of {
            vendors: vendors.unwrap_or_default(),
            products: products.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Bundles of one channel form one sequence; the isolated side imports them in order.
    pub channel: super::names::ChannelName,
    #[serde(default)]
    pub description: Option<String>,
    /// The upstream to sync from (Microsoft Update or a WSUS server's ServerSyncWebService).
    #[serde(default)]
    pub upstream: Option<String>,
    /// Product titles ("Windows 11") or GUIDs.
    pub products: Vec<String>,
    /// Classification titles ("Security Updates") or GUIDs.
    pub classifications: Vec<String>,
    /// Languages of the language-specific updates that travel (`all`: every language);
    /// language-neutral updates always do.
    #[serde(default = "default_languages")]
    pub languages: Vec<Language>,
    /// Express installation files (`PatchingType="Express"`) travel too (WSUS's "download
    /// express installation files"; off by default, as in WSUS).
    #[serde(default)]
    pub express: bool,
    /// Also carry updates that another selected update supersedes.
    #[serde(default)]
    pub include_superseded: bool,
    #[serde(default)]
    pub payloads: PayloadPolicy,
    /// Also carry updates published in the cache store (`ferry publish`), whatever the
    /// products and classifications select: each one's newest revision, the vendor and product
    /// categories it names and its signed CAB.
    #[serde(default)]
    pub published: PublishedSelection,
    /// How long a bundle stays importable (`180d`); absent: it never expires.
    #[serde(default)]
    pub expires: Option<String>,
    /// Approval policy carried with the bundle (applied on import only with --apply-approvals).
    #[serde(default)]
    pub approvals: Option<super::approvals::ApprovalPolicy>,
}

fn default_languages() -> Vec<Language> {
    vec![Language::new("en").expect("a valid code")]
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl Profile {
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ProfileError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, name: &str) -> Result<Profile, ProfileError> {
        let invalid = |message: String| ProfileError::Invalid { path: name.to_string(), message };
        let profile: Profile =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim().to_string()))?;
        if profile.products.is_empty() || profile.classifications.is_empty() {
            return Err(invalid("products and classifications must each name at least one (updates match one of each, as in WSUS)".into()));
        }
        if profile.languages.is_empty() {
            return Err(invalid("languages must name at least one language (or \"all\")".into()));
        }
        profile.published.check().map_err(invalid)?;
        if let Some(e) = &profile.expires {
            parse_duration_secs(e).map_err(|m| invalid(format!("expires: {m}")))?;
        }
        Ok(profile)
    }

    /// Checks the profile's languages against those an upstream offers (short codes, as its
    /// configuration data lists them).
    pub fn check_languages(&self, offered: &[String], source: &str) -> Result<(), ProfileError> {
        let unknown: Vec<&str> = self
            .languages
            .iter()
            .filter(|l| !l.is_all() && !offered.iter().any(|o| o == l.as_str()))
            .map(Language::as_str)
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let mut codes: Vec<&str> =
            offered.iter().map(String::as_str).filter(|c| *c != Language::ALL).collect();
        codes.sort();
        Err(ProfileError::Invalid {
            path: self.channel.to_string(),
            message: format!(
                "languages: {} not offered by {source}; it offers: all, {}",
                unknown.join(", "),
                codes.join(", ")
            ),
        })
    }

    pub fn expires_secs(&self) -> Option<u64> {
        self.expires.as_deref().and_then(|e| parse_duration_secs(e).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_is_a_flag_or_a_selection_of_vendors_and_products() {
        let base = "channel = \"a\"\nproducts = [\"Windows 11\"]\nclassifications = [\"Security Updates\"]\n";
        let parse = |tail: &str| Profile::parse(&format!("{base}{tail}\n"), "p.toml");
        let p = parse("[published]\nvendors = [\"Contoso\"]\nproducts = [\" Fabrikam Gadget \"]")
            .unwrap();
        let s = &p.published;
        assert!(
            s.any() && s.carries("contoso", "Anything") && s.carries("Fabrikam", "fabrikam gadget")
        );
        assert!(!s.carries("Fabrikam", "Fabrikam Widget"));
        assert!(
            PublishedSelection::All.carries("x", "y")
                && !PublishedSelection::None.carries("x", "y")
        );
        let long = "x".repeat(201);
        for (tail, said) in [
            ("[published]", "names no vendor"),
            ("[published]\nvendors = []", "names no vendor"),
            ("[published]\nvendor = [\"Contoso\"]", "vendor"),
            ("[published]\nvendors = [\"  \"]", "not a vendor or product name"),
            (&format!("[published]\nproducts = [\"{long}\"]"), "not a vendor or product name"),
            ("[published]\nproducts = [\"a\\nb\"]", "not a vendor or product name"),
            ("published = \"yes\"", "true, false, or a table"),
            ("[published]\nvendors = \"Contoso\"", "sequence"),
            ("[published]\nvendors = [1]", "string"),
            ("[published.extra]\nvendors = [\"x\"]", "extra"),
        ] {
            let e = parse(tail).unwrap_err().to_string();
            assert!(e.contains(said) && e.contains("p.toml"), "{tail}: {e}");
        }
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let err = Profile::parse(
            "channel = \"a\"\nproducts = [\"Windows 11\"]\nclassifications = [\"Security Updates\"]\nproduct = 1\n",
            "p.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("product"), "{err}");
        assert!(err.to_string().contains("p.toml"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key_and_the_choices() {
        let base = "channel = \"a\"\nproducts = [\"Windows 11\"]\nclassifications = [\"Security Updates\"]\n";
        let cases = [
            ("payloads = \"some\"", &["payloads", "approved", "not-superseded"][..]),
            ("express = \"yes\"", &["express", "boolean"][..]),
            ("languages = [\"english\"]", &["languages", "english"][..]),
            ("languages = []", &["languages"][..]),
        ];
        for (line, words) in cases {
            let err = Profile::parse(&format!("{base}{line}\n"), "p.toml").unwrap_err().to_string();
            for w in words {
                assert!(err.contains(w), "{line}: {err}");
            }
        }
        let p = Profile::parse(
            &format!(
                "{base}payloads = \"approved\"\nexpress = true\nlanguages = [\"EN\", \"pt-BR\"]\n"
            ),
            "p",
        )
        .unwrap();
        assert_eq!(p.payloads, PayloadPolicy::Approved);
        assert!(p.express);
        assert_eq!(p.languages.iter().map(Language::as_str).collect::<Vec<_>>(), ["en", "pt-br"]);
        let offered = vec!["all".to_string(), "en".to_string(), "de".to_string()];
        let err = p.check_languages(&offered, "the upstream").unwrap_err().to_string();
        assert!(err.contains("pt-br") && err.contains("de, en"), "{err}");
    }

    #[test]
    fn a_minimal_profile_has_defaults() {
        let p = Profile::parse("channel = \"w11\"\nproducts = [\"Windows 11\"]\nclassifications = [\"Security Updates\"]\n", "p").unwrap();
        assert_eq!(p.payloads, PayloadPolicy::All);
        assert_eq!(p.languages, vec![Language::new("en").unwrap()]);
        assert!(!p.express);
        assert!(!p.include_superseded);
        assert_eq!(p.published, PublishedSelection::None);
        let with = Profile::parse("channel = \"w11\"\nproducts = [\"Windows 11\"]\nclassifications = [\"Security Updates\"]\npublished = true\n", "p").unwrap();
        assert_eq!(with.published, PublishedSelection::All);
        assert!(
            Profile::parse(
                "channel = \"Bad Name\"\nproducts = [\"x\"]\nclassifications = [\"y\"]\n",
                "p"
            )
            .is_err()
        );
        assert!(Profile::parse("channel = \"ok\"\nproducts = [\"x\"]\nclassifications = [\"y\"]\nexpires = \"soon\"\n", "p").is_err());
    }
}
