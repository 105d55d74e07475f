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
    /// Also carry every update published in the cache store (`ferry publish`), whatever the
    /// products and classifications select: its newest revision, the vendor and product
    /// categories it names and its signed CAB.
    #[serde(default)]
    pub published: bool,
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
        assert!(!p.published);
        let with = Profile::parse("channel = \"w11\"\nproducts = [\"Windows 11\"]\nclassifications = [\"Security Updates\"]\npublished = true\n", "p").unwrap();
        assert!(with.published);
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
