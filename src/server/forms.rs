//! Form bodies, query strings and path segments as browsers and HTTP clients encode them, for
//! the admin API and the console.

/// `a=1&b=x%20y` → pairs, percent- and plus-decoded.
pub fn url_decode_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (url_decode(k), url_decode(v))
    })
}

/// A path segment: `%XX` escapes only (`+` is a plus sign in paths).
pub fn path_decode(text: &str) -> String {
    decode(text, false)
}

/// A query or form value: `%XX` escapes and `+` for space.
pub fn url_decode(text: &str) -> String {
    decode(text, true)
}

fn decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |b: u8| (b as char).to_digit(16).expect("checked hex digit") as u8;
                out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_forms_decode_as_browsers_encode_them() {
        for (text, path, form) in [
            ("All%20Computers", "All Computers", "All Computers"),
            ("a+b", "a+b", "a b"),
            ("100%", "100%", "100%"),
            ("%+A", "%+A", "% A"),
            ("%e2%9c%93", "\u{2713}", "\u{2713}"),
            ("%4", "%4", "%4"),
        ] {
            assert_eq!(path_decode(text), path, "{text}");
            assert_eq!(url_decode(text), form, "{text}");
        }
    }
}
