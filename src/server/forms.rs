//! Form bodies and query strings as browsers encode them, for the console.

/// `a=1&b=x%20y` → pairs, percent- and plus-decoded.
pub fn url_decode_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (url_decode(k), url_decode(v))
    })
}

/// A query or form value: `%XX` escapes and `+` for space.
pub fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
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
    fn forms_decode_as_browsers_encode_them() {
        for (text, form) in [
            ("All%20Computers", "All Computers"),
            ("a+b", "a b"),
            ("100%", "100%"),
            ("%+A", "% A"),
            ("%e2%9c%93", "\u{2713}"),
            ("%4", "%4"),
            ("%41%", "A%"),
        ] {
            assert_eq!(url_decode(text), form, "{text}");
        }
        let pairs: Vec<_> = url_decode_pairs("a=1&&b=x+y&c").collect();
        assert_eq!(
            pairs,
            [("a".into(), "1".into()), ("b".into(), "x y".into()), ("c".into(), String::new())]
        );
    }
}
