//! Update languages as WSUS names them: the short codes of `Properties/Language`, of localized
//! properties and of a server's language list (`en`, `de`, `pt-br`, `zh-hk`), and `all`, which
//! stands for every language.

use super::model::{LanguageElement, Span, Update};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The languages WSUS offers (LCID, short name, English name), "all" first as WSUS lists them.
pub const WSUS_LANGUAGES: &[(i32, &str, &str)] = &[
    (0, "all", "all"),
    (1025, "ar", "Arabic"),
    (1026, "bg", "Bulgarian"),
    (1028, "zh-tw", "Chinese (Traditional)"),
    (1029, "cs", "Czech"),
    (1030, "da", "Danish"),
    (1031, "de", "German"),
    (1032, "el", "Greek"),
    (1033, "en", "English"),
    (1034, "es", "Spanish"),
    (1035, "fi", "Finnish"),
    (1036, "fr", "French"),
    (1037, "he", "Hebrew"),
    (1038, "hu", "Hungarian"),
    (1040, "it", "Italian"),
    (1041, "ja", "Japanese"),
    (1042, "ko", "Korean"),
    (1043, "nl", "Dutch"),
    (1044, "no", "Norwegian"),
    (1045, "pl", "Polish"),
    (1046, "pt-br", "Portuguese (Brazil)"),
    (1048, "ro", "Romanian"),
    (1049, "ru", "Russian"),
    (1050, "hr", "Croatian"),
    (1051, "sk", "Slovak"),
    (1053, "sv", "Swedish"),
    (1054, "th", "Thai"),
    (1055, "tr", "Turkish"),
    (1058, "uk", "Ukrainian"),
    (1060, "sl", "Slovenian"),
    (1061, "et", "Estonian"),
    (1062, "lv", "Latvian"),
    (1063, "lt", "Lithuanian"),
    (1081, "hi", "Hindi"),
    (2052, "zh-cn", "Chinese (Simplified)"),
    (2070, "pt", "Portuguese (Portugal)"),
    (2074, "sr", "Serbian (Latin)"),
    (3076, "zh-hk", "Chinese (Hong Kong SAR)"),
    (66577, "ja-nec", "Japanese NEC"),
];

/// A language code: lower case, `[a-z]{2,3}` then `-` parts of letters and digits, at most 16
/// characters; or `all`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl Language {
    pub const ALL: &'static str = "all";

    pub fn new(code: &str) -> Result<Language, String> {
        let code = code.trim().to_ascii_lowercase();
        let mut parts = code.split('-');
        let primary = parts.next().unwrap_or_default();
        let primary_ok =
            (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
        let rest_ok = parts
            .all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        if code == Self::ALL || (primary_ok && rest_ok && code.len() <= 16) {
            Ok(Language(code))
        } else {
            Err(format!(
                "{code:?} is not a language code (as WSUS names them: en, de, pt-br, zh-hk; or all)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `all`: every language.
    pub fn is_all(&self) -> bool {
        self.0 == Self::ALL
    }

    /// The LCID WSUS uses for this language in a sync filter, when it is one WSUS knows.
    pub fn wsus_id(&self) -> Option<i32> {
        WSUS_LANGUAGES.iter().find(|(_, short, _)| *short == self.0).map(|(id, _, _)| *id)
    }
}

impl TryFrom<String> for Language {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Language::new(&s)
    }
}

impl From<Language> for String {
    fn from(l: Language) -> String {
        l.0
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether an update whose `Properties/Language` values are `update_languages` is wanted by a
/// site that keeps `wanted`: language-neutral updates (no value, or `all`) always are; others
/// when one of their languages is wanted, or when the site keeps `all`.
pub fn wanted_by(update_languages: &[String], wanted: &[Language]) -> bool {
    update_languages.is_empty()
        || update_languages.iter().any(|l| l == Language::ALL)
        || wanted.iter().any(|w| w.is_all() || update_languages.iter().any(|l| l == w.as_str()))
}

/// The document without the localized properties and EULAs of languages a site does not keep
/// (`None`: nothing to cut). Kept: the wanted languages, `all`, and, where none of an update's
/// localized properties (or EULAs) would stay, those of its default language (else the first),
/// so every update keeps a title. Element spans come from the parser (`Update::language_elements`).
pub fn strip_languages(document: &[u8], update: &Update, wanted: &[Language]) -> Option<Vec<u8>> {
    if wanted.iter().any(Language::is_all) {
        return None;
    }
    let keeps = |l: &str| l == Language::ALL || wanted.iter().any(|w| w.as_str() == l);
    let default = update.default_language.as_deref().map(str::to_ascii_lowercase);
    let mut cut: Vec<&Span> = Vec::new();
    // Localized properties and EULAs are decided apart: each kind keeps at least one.
    for eula in [false, true] {
        let of_kind: Vec<&LanguageElement> =
            update.language_elements.iter().filter(|e| e.eula == eula).collect();
        let fallback = of_kind
            .iter()
            .position(|e| Some(&e.language) == default.as_ref())
            .or((!of_kind.is_empty()).then_some(0));
        let any_kept = of_kind.iter().any(|e| keeps(&e.language));
        for (k, e) in of_kind.iter().enumerate() {
            if !keeps(&e.language) && (any_kept || Some(k) != fallback) {
                cut.push(&e.span);
            }
        }
    }
    if cut.is_empty() {
        return None;
    }
    cut.sort_by_key(|s| s.start);
    let mut out = Vec::with_capacity(document.len());
    let mut at = 0;
    for span in cut {
        if span.start < at || span.end > document.len() {
            return None;
        }
        out.extend_from_slice(&document[at..span.start]);
        at = span.end;
    }
    out.extend_from_slice(&document[at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_checked_and_lowered() {
        for good in ["en", "DE", "pt-br", "zh-hk", "ja-nec", "all", " fr "] {
            assert!(Language::new(good).is_ok(), "{good}");
        }
        for bad in
            ["", "e", "english", "en_us", "en-", "-en", "../x", "en-toolongpart", "1a", "a\u{0}"]
        {
            assert!(Language::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Language::new("pt-BR").unwrap().as_str(), "pt-br");
        assert_eq!(Language::new("de").unwrap().wsus_id(), Some(1031));
    }

    #[test]
    fn neutral_updates_are_always_wanted_and_specific_ones_by_language() {
        let en = [Language::new("en").unwrap()];
        let all = [Language::new("all").unwrap()];
        let cases: &[(&[&str], &[Language], bool)] = &[
            (&[], &en, true),
            (&["all"], &en, true),
            (&["en"], &en, true),
            (&["de"], &en, false),
            (&["de", "en"], &en, true),
            (&["de"], &all, true),
        ];
        for (langs, wanted, expected) in cases {
            let langs: Vec<String> = langs.iter().map(|s| s.to_string()).collect();
            assert_eq!(wanted_by(&langs, wanted), *expected, "{langs:?} for {wanted:?}");
        }
    }

    fn document(default: &str, localized: &[&str], eulas: &[&str]) -> String {
        let props: String = localized
            .iter()
            .map(|l| {
                format!("<upd:LocalizedProperties><upd:Language>{l}</upd:Language><upd:Title>t-{l}</upd:Title></upd:LocalizedProperties>")
            })
            .collect();
        let eulas: String = eulas
            .iter()
            .map(|l| {
                format!(r#"<upd:EulaFile Language="{l}"><upd:File FileName="e" /></upd:EulaFile>"#)
            })
            .collect();
        format!(
            r#"<upd:Update xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update"><upd:UpdateIdentity UpdateID="ccb78947-6453-4ecc-9de8-bc0305c98f2d" RevisionNumber="200" /><upd:Properties UpdateType="Software" DefaultPropertiesLanguage="{default}" /><upd:LocalizedPropertiesCollection>{props}{eulas}</upd:LocalizedPropertiesCollection></upd:Update>"#
        )
    }

    /// (default language, localized languages, EULA languages, wanted) → (localized kept, EULAs kept); None: nothing cut.
    #[test]
    fn other_languages_are_cut_and_every_update_keeps_a_title() {
        type Case<'a> =
            (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str], Option<(&'a [&'a str], usize)>);
        let cases: &[Case] = &[
            ("en", &["en", "de", "fr"], &[], &["en"], Some((&["en"], 0))),
            ("en", &["en", "de"], &["de", "en"], &["de"], Some((&["de"], 1))),
            ("en", &["en"], &[], &["en"], None),
            ("en", &["en", "de"], &[], &["all"], None),
            ("ja", &["ja", "ko"], &["ko"], &["en"], Some((&["ja"], 1))),
            ("en", &["all"], &[], &["de"], None),
        ];
        for (default, localized, eulas, wanted, expected) in cases {
            let doc = document(default, localized, eulas);
            let parsed = crate::catalog::parse_update(doc.as_bytes()).unwrap();
            let wanted: Vec<Language> = wanted.iter().map(|w| Language::new(w).unwrap()).collect();
            let stripped = strip_languages(doc.as_bytes(), &parsed.update, &wanted);
            match (expected, stripped) {
                (None, None) => {}
                (Some((kept, eula_count)), Some(bytes)) => {
                    let again =
                        crate::catalog::parse_update(&bytes).expect("the stripped document parses");
                    let langs: Vec<&str> =
                        again.update.localized.iter().map(|l| l.language.as_str()).collect();
                    assert_eq!(langs, *kept, "{localized:?} for {wanted:?}");
                    assert_eq!(
                        again.update.eula_languages.len(),
                        *eula_count,
                        "{eulas:?} for {wanted:?}"
                    );
                    assert_eq!(again.fragments.core, parsed.fragments.core, "Core never changes");
                    assert_eq!(
                        again.fragments.extended, parsed.fragments.extended,
                        "Extended never changes"
                    );
                }
                (e, s) => panic!(
                    "{localized:?} for {wanted:?}: expected {e:?}, got {:?}",
                    s.map(String::from_utf8)
                ),
            }
        }
    }
}
