//! `--detect RULE`: how an operator writes a detection rule for an EXE, read into a
//! [`DetectRule`]. Pure.
//!
//! ```text
//! file:PATH                      the file exists
//! file:PATH>=VERSION             its file version compares (>=, <=, >, <, =)
//! registry:HKLM\KEY              the key exists (registry32: reads the 32-bit view)
//! registry:HKLM\KEY@VALUE        the value exists
//! registry:HKLM\KEY@VALUE>=VER   the string value, read as a version, compares
//! msi:{PRODUCT-CODE}             the MSI product is installed (>=MIN and <=MAX may follow)
//! ```
//! A PATH may start with a known folder: `%Windows%`, `%System%`, `%ProgramFiles%`,
//! `%ProgramFilesX86%`, `%CommonProgramFiles%`.

use super::document::{
    Comparison, DetectRule, FilePath, InvalidUpdate, KnownFolder, MsiProductRule, RegistryKey,
};
use super::msi::{ProductCode, Version};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DetectError {
    #[error(
        "--detect {0:?}: begins with none of file:, registry:, registry32:, msi: (see ferry publish --help)"
    )]
    Kind(String),
    #[error("--detect {rule:?}: {problem}")]
    Bad { rule: String, problem: String },
}

const COMPARISONS: [(&str, Comparison); 5] = [
    (">=", Comparison::GreaterThanOrEqualTo),
    ("<=", Comparison::LessThanOrEqualTo),
    (">", Comparison::GreaterThan),
    ("<", Comparison::LessThan),
    ("=", Comparison::EqualTo),
];

const FOLDERS: [(&str, KnownFolder); 5] = [
    ("%Windows%", KnownFolder::Windows),
    ("%System%", KnownFolder::System),
    ("%ProgramFiles%", KnownFolder::ProgramFiles),
    ("%ProgramFilesX86%", KnownFolder::ProgramFilesX86),
    ("%CommonProgramFiles%", KnownFolder::CommonProgramFiles),
];

/// Reads one `--detect` rule.
pub fn parse_detect(rule: &str) -> Result<DetectRule, DetectError> {
    let bad = |problem: String| DetectError::Bad { rule: rule.to_owned(), problem };
    let invalid = |e: InvalidUpdate| bad(e.to_string());
    let (kind, rest) = rule.split_once(':').ok_or_else(|| DetectError::Kind(rule.to_owned()))?;
    match kind {
        "file" => {
            let (path, compared) = split_comparison(rest).map_err(bad)?;
            let file = file_path(path).map_err(invalid)?;
            Ok(match compared {
                Some((comparison, version)) => {
                    DetectRule::FileVersion { file, comparison, version }
                }
                None => DetectRule::FileExists(file),
            })
        }
        "registry" | "registry32" => registry(rest, kind == "registry32").map_err(bad),
        "msi" => msi(rest).map_err(bad),
        _ => Err(DetectError::Kind(rule.to_owned())),
    }
}

/// A comparison with a version that ends a rule.
type Compared = Option<(Comparison, Version)>;

/// `TEXT` and, when it ends in a comparison with a version, the comparison.
fn split_comparison(text: &str) -> Result<(&str, Compared), String> {
    for (i, _) in text.char_indices().filter(|(_, c)| matches!(c, '<' | '>' | '=')) {
        let (head, tail) = text.split_at(i);
        let Some((op, comparison)) = COMPARISONS.iter().find(|(op, _)| tail.starts_with(op)) else {
            continue;
        };
        let version = tail[op.len()..]
            .parse::<Version>()
            .map_err(|e| format!("{:?} is not a version: {e}", &tail[op.len()..]))?;
        return Ok((head, Some((*comparison, version))));
    }
    Ok((text, None))
}

fn file_path(path: &str) -> Result<FilePath, InvalidUpdate> {
    for (prefix, folder) in FOLDERS {
        if let Some(rest) = strip_prefix_ignoring_case(path, prefix) {
            return FilePath::new(Some(folder), rest);
        }
    }
    FilePath::new(None, path)
}

fn registry(rest: &str, view32: bool) -> Result<DetectRule, String> {
    let key = ["HKLM\\", "HKEY_LOCAL_MACHINE\\"]
        .iter()
        .find_map(|hive| strip_prefix_ignoring_case(rest, hive))
        .ok_or("rules read HKEY_LOCAL_MACHINE only: begin the key with HKLM\\")?;
    let Some((key, value)) = key.split_once('@') else {
        return Ok(DetectRule::RegistryKeyExists(RegistryKey::new(key, view32).map_err(text)?));
    };
    let registry_key = RegistryKey::new(key, view32).map_err(text)?;
    match split_comparison(value)? {
        (name, Some((comparison, version))) => {
            DetectRule::registry_version(registry_key, name, comparison, version).map_err(text)
        }
        (name, None) => DetectRule::registry_value(registry_key, name).map_err(text),
    }
}

fn msi(rest: &str) -> Result<DetectRule, String> {
    let end = rest.find(['<', '>', '=']).unwrap_or(rest.len());
    let code: ProductCode = rest[..end]
        .parse()
        .map_err(|e| format!("{:?} is not a product code: {e}", &rest[..end]))?;
    let (mut min, mut max) = (None, None);
    let mut bounds = &rest[end..];
    while !bounds.is_empty() {
        let next = bounds[1..].find(['<', '>']).map_or(bounds.len(), |i| i + 1);
        match split_comparison(&bounds[..next])? {
            ("", Some((Comparison::GreaterThanOrEqualTo, v))) => min = Some(v),
            ("", Some((Comparison::LessThanOrEqualTo, v))) => max = Some(v),
            _ => {
                return Err(format!(
                    "{:?}: only >=MIN and <=MAX follow a product code",
                    &bounds[..next]
                ));
            }
        }
        bounds = &bounds[next..];
    }
    MsiProductRule::new(code, min, max, None).map(DetectRule::MsiProductInstalled).map_err(text)
}

/// `text` without `prefix` (ASCII, any case), if it starts with it.
fn strip_prefix_ignoring_case<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn text(e: InvalidUpdate) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn rules_read_as_written() {
        let code: ProductCode = "{11111111-2222-3333-4444-555555555555}".parse().unwrap();
        let key = |k: &str, view32| RegistryKey::new(k, view32).unwrap();
        let cases: Vec<(&str, DetectRule)> = vec![
            (
                "file:C:\\Tools\\app.exe",
                DetectRule::FileExists(FilePath::new(None, "C:\\Tools\\app.exe").unwrap()),
            ),
            (
                "file:%ProgramFiles%\\Contoso\\app.exe>=2.1",
                DetectRule::FileVersion {
                    file: FilePath::new(Some(KnownFolder::ProgramFiles), "\\Contoso\\app.exe")
                        .unwrap(),
                    comparison: Comparison::GreaterThanOrEqualTo,
                    version: version("2.1"),
                },
            ),
            (
                "registry:HKLM\\Software\\Contoso",
                DetectRule::RegistryKeyExists(key("Software\\Contoso", false)),
            ),
            (
                "registry32:HKEY_LOCAL_MACHINE\\Software\\Contoso",
                DetectRule::RegistryKeyExists(key("Software\\Contoso", true)),
            ),
            (
                "registry:HKLM\\Software\\Contoso@Version",
                DetectRule::registry_value(key("Software\\Contoso", false), "Version").unwrap(),
            ),
            (
                "registry:HKLM\\Software\\Contoso@Version=3.0.1",
                DetectRule::registry_version(
                    key("Software\\Contoso", false),
                    "Version",
                    Comparison::EqualTo,
                    version("3.0.1"),
                )
                .unwrap(),
            ),
            (
                "msi:{11111111-2222-3333-4444-555555555555}>=1.0<=2.0",
                DetectRule::MsiProductInstalled(
                    MsiProductRule::new(code, Some(version("1.0")), Some(version("2.0")), None)
                        .unwrap(),
                ),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_detect(text), Ok(expected), "{text}");
        }
        // A multi-byte character where a known folder's name would end is a plain path.
        let plain = DetectRule::FileExists(FilePath::new(None, "%Systemé%\\x").unwrap());
        assert_eq!(parse_detect("file:%Systemé%\\x"), Ok(plain));
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        let cases = [
            ("exists:C:\\x", "begins with none of"),
            ("registry:HKCU\\Software\\x", "HKEY_LOCAL_MACHINE only"),
            ("file:C:\\app.exe>=two", "is not a version"),
            ("msi:not-a-guid", "is not a product code"),
            ("msi:{11111111-2222-3333-4444-555555555555}>2.0", "only >=MIN and <=MAX"),
            ("msi:{11111111-2222-3333-4444-555555555555}>=3.0<=2.0", "3.0"),
            ("registry:HKLMé\\x", "HKEY_LOCAL_MACHINE only"),
        ];
        for (text, said) in cases {
            let e = parse_detect(text).unwrap_err().to_string();
            assert!(e.contains(said) && e.contains("--detect"), "{text}: {e}");
        }
    }
}
