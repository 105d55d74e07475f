//! Low-level XML text handling shared by the update parser and the fragment writer:
//! entity and attribute-value decoding as an XML 1.0 parser does it, and the escaping WSUS's
//! .NET serializer applies when it writes fragments.

use std::borrow::Cow;

/// Namespaces of the update metadata (WSUS-PROTOCOL.md §5.2).
pub mod ns {
    pub const UPDATE: &[u8] = b"http://schemas.microsoft.com/msus/2002/12/Update";
    pub const BASE_RULES: &[u8] =
        b"http://schemas.microsoft.com/msus/2002/12/BaseApplicabilityRules";
    pub const MSI_RULES: &[u8] = b"http://schemas.microsoft.com/msus/2002/12/MsiApplicabilityRules";
    pub const WINDOWS_DRIVER: &[u8] =
        b"http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsDriver";
    pub const XSI: &[u8] = b"http://www.w3.org/2001/XMLSchema-instance";
}

/// Why a piece of text could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    /// `&name;` where name is not one of the five predefined entities (no DTD is read, so no
    /// other entity can exist).
    UnknownEntity(String),
    /// `&#...;` that is not a legal XML character.
    BadCharacterReference(String),
    /// `&` without a terminating `;`.
    UnterminatedReference,
    NotUtf8,
}

impl std::fmt::Display for TextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextError::UnknownEntity(n) => write!(
                f,
                "undeclared entity &{n}; (DTDs and entity declarations are not supported)"
            ),
            TextError::BadCharacterReference(n) => write!(f, "invalid character reference &{n};"),
            TextError::UnterminatedReference => f.write_str("'&' without a terminating ';'"),
            TextError::NotUtf8 => f.write_str("text is not valid UTF-8"),
        }
    }
}

/// Resolves the name of a reference (`amp`, `#65`, `#x41`) to its character.
pub fn resolve_reference(name: &str) -> Result<char, TextError> {
    match name {
        "amp" => return Ok('&'),
        "lt" => return Ok('<'),
        "gt" => return Ok('>'),
        "quot" => return Ok('"'),
        "apos" => return Ok('\''),
        _ => {}
    }
    let Some(num) = name.strip_prefix('#') else {
        return Err(TextError::UnknownEntity(name.chars().take(40).collect()));
    };
    let bad = || TextError::BadCharacterReference(name.chars().take(40).collect());
    let code = match num.strip_prefix('x') {
        Some(hex) => u32::from_str_radix(hex, 16).map_err(|_| bad())?,
        None => num.parse::<u32>().map_err(|_| bad())?,
    };
    let c = char::from_u32(code).ok_or_else(bad)?;
    let legal = matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && !matches!(code, 0xFFFE | 0xFFFF));
    if legal { Ok(c) } else { Err(bad()) }
}

/// Decodes a raw attribute value as an XML 1.0 parser does: literal tab, CR and LF (and the
/// CR LF pair) become one space each, then references are resolved.
pub fn decode_attribute(raw: &[u8]) -> Result<Cow<'_, str>, TextError> {
    decode_attribute_text(std::str::from_utf8(raw).map_err(|_| TextError::NotUtf8)?)
}

/// [`decode_attribute`] for a value already known to be UTF-8.
pub fn decode_attribute_text(text: &str) -> Result<Cow<'_, str>, TextError> {
    // Values are short (GUIDs, names, versions): one plain pass beats several memchr calls.
    if !text.bytes().any(|b| matches!(b, b'&' | b'\t' | b'\n' | b'\r')) {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['&', '\t', '\n', '\r']) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        rest = &rest[i + 1..];
        match c {
            b'&' => {
                let end = rest.find(';').ok_or(TextError::UnterminatedReference)?;
                out.push(resolve_reference(&rest[..end])?);
                rest = &rest[end + 1..];
            }
            b'\r' => {
                out.push(' ');
                rest = rest.strip_prefix('\n').unwrap_or(rest);
            }
            _ => out.push(' '),
        }
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Decodes raw character data (no references inside): CR LF and lone CR become LF.
pub fn normalize_newlines(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\r') {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n"))
}

/// Appends an attribute value escaped as WSUS writes it in fragments: `&`, `<` and `"`.
pub fn push_escaped_attribute(out: &mut String, value: &str) {
    push_escaped(out, value, [b'&', b'<', b'"'], ["&amp;", "&lt;", "&quot;"])
}

/// Appends character data escaped as WSUS writes it in fragments: `&`, `<` and `>`.
pub fn push_escaped_text(out: &mut String, value: &str) {
    push_escaped(out, value, [b'&', b'<', b'>'], ["&amp;", "&lt;", "&gt;"])
}

/// Copies `value`, replacing each of the three ASCII `special` bytes by its `replacement`
/// (SIMD search: most values contain none).
#[inline]
fn push_escaped(out: &mut String, value: &str, special: [u8; 3], replacement: [&str; 3]) {
    let bytes = value.as_bytes();
    let mut start = 0;
    for i in memchr::memchr3_iter(special[0], special[1], special[2], bytes) {
        out.push_str(&value[start..i]);
        let which =
            special.iter().position(|&s| s == bytes[i]).expect("memchr3 found one of the three");
        out.push_str(replacement[which]);
        start = i + 1;
    }
    out.push_str(&value[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_are_normalized_then_unescaped() {
        assert_eq!(decode_attribute(b"a\r\nb\tc\nd").unwrap(), "a b c d");
        assert_eq!(decode_attribute(b"x &amp; y &#10;z &#x41;").unwrap(), "x & y \nz A");
        assert_eq!(decode_attribute(b"plain").unwrap(), "plain");
    }

    #[test]
    fn unknown_entities_and_bad_references_are_errors() {
        assert!(matches!(decode_attribute(b"&xxe;"), Err(TextError::UnknownEntity(_))));
        assert!(matches!(decode_attribute(b"&#0;"), Err(TextError::BadCharacterReference(_))));
        assert!(matches!(decode_attribute(b"&amp"), Err(TextError::UnterminatedReference)));
    }

    #[test]
    fn escaping_follows_the_dotnet_fragment_writer() {
        let mut s = String::new();
        push_escaped_attribute(&mut s, r#"a&b<c>d"e'f"#);
        assert_eq!(s, "a&amp;b&lt;c>d&quot;e'f");
        let mut t = String::new();
        push_escaped_text(&mut t, r#"a&b<c>d"e"#);
        assert_eq!(t, "a&amp;b&lt;c&gt;d\"e");
    }
}
