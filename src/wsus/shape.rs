//! A client request cut around its cookie. On the morning after an import a fleet sends the
//! same SyncUpdates and GetExtendedUpdateInfo requests byte for byte but for the cookie each
//! client echoes (`<cookie><Expiration>…</Expiration><EncryptedData>…</EncryptedData></cookie>`).
//! Cut out those two texts and what is left, the request's *shape*, is the same for all of them,
//! so the server parses a shape once (`server/shapes.rs`) and reads each client's cookie from its
//! own two texts.
//!
//! Invariant: a shape is parsed with its texts replaced by markers, and is used only when that
//! parse shows the markers as the cookie's texts, the body has no entity (`&`) and the markers'
//! character (`~`) occurs nowhere else. The texts then are exactly the two elements' character
//! data, and any other texts of the allowed characters (base64 and timestamps: no markup) parse
//! to the same tree with those texts in their place: the parse of a shape and the cut's cookie
//! are the parse of the whole request (`tests` below, and `shaped_requests_parse_as_themselves`).

use super::client::WireCookie;
use super::soap::{Fault, Request};
use memchr::memmem;

const OPEN: &[u8] = b"<cookie><Expiration>";
const BETWEEN: &[u8] = b"</Expiration><EncryptedData>";
const CLOSE: &[u8] = b"</EncryptedData></cookie>";

/// The markers that stand for the texts in a shape's parse. `~` is neither base64 nor part of a
/// timestamp: a marker read as a cookie is refused, never taken for anyone's.
const EXPIRATION_MARK: &str = "~";
const DATA_MARK: &str = "~~";
const MARK: u8 = b'~';

/// Longest texts cut out (a ferry cookie is about 140 base64 characters; a timestamp 28).
const LONGEST_EXPIRATION: usize = 64;
const LONGEST_DATA: usize = 4096;

/// A request body cut around its cookie's two texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut<'a> {
    /// The body before the expiration, between the two texts, and after the data.
    pub segments: [&'a [u8]; 3],
    pub expiration: &'a str,
    pub data: &'a str,
}

impl<'a> Cut<'a> {
    /// The body cut at its first `<cookie>`, when its texts can be cut out (see the invariant):
    /// `None` sends the body to an ordinary parse.
    pub fn of(body: &'a [u8]) -> Option<Cut<'a>> {
        let expiration_at = memmem::find(body, OPEN)? + OPEN.len();
        let expiration_end = text_end(body, expiration_at, LONGEST_EXPIRATION)?;
        let data_at = expiration_end + BETWEEN.len();
        if !body[expiration_end..].starts_with(BETWEEN) {
            return None;
        }
        let data_end = text_end(body, data_at, LONGEST_DATA)?;
        if !body[data_end..].starts_with(CLOSE) {
            return None;
        }
        let segments = [&body[..expiration_at], &body[expiration_end..data_at], &body[data_end..]];
        if segments.iter().any(|s| memchr::memchr2(MARK, b'&', s).is_some()) {
            return None;
        }
        Some(Cut {
            segments,
            // The texts are ASCII (checked by `text_end`).
            expiration: std::str::from_utf8(&body[expiration_at..expiration_end]).ok()?,
            data: std::str::from_utf8(&body[data_at..data_end]).ok()?,
        })
    }

    /// The body with the markers in place of the texts: what a shape's parse reads.
    pub fn marked(&self) -> Vec<u8> {
        let [before, between, after] = self.segments;
        let mut out = Vec::with_capacity(self.shape_len() + 3);
        for part in [before, EXPIRATION_MARK.as_bytes(), between, DATA_MARK.as_bytes(), after] {
            out.extend_from_slice(part);
        }
        out
    }

    /// Bytes of the shape (the body without its two texts).
    pub fn shape_len(&self) -> usize {
        self.segments.iter().map(|s| s.len()).sum()
    }

    /// The cookie this client sent, read as the ordinary parse reads it.
    pub fn cookie(&self) -> Result<WireCookie, Fault> {
        WireCookie::from_texts("cookie", self.expiration, self.data)
    }
}

/// Where a cut-out text ends: at the first `<`, when everything before it is base64 or
/// timestamp characters (no markup, no space, no marker) and there is at least one.
fn text_end(body: &[u8], at: usize, longest: usize) -> Option<usize> {
    let rest = &body[at..];
    let len = rest.iter().take(longest + 1).position(|&b| b == b'<')?;
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || b"+/=:.-".contains(b);
    (len > 0 && rest[..len].iter().all(allowed)).then_some(at + len)
}

/// Whether the parse of a marked body shows the markers as the operation's cookie texts (the
/// last condition of the invariant).
pub fn marks_hold(marked: &Request) -> bool {
    let Some(cookie) = marked.operation.child("cookie").filter(|c| !c.is_nil()) else {
        return false;
    };
    let text = |name| cookie.child(name).filter(|c| !c.is_nil()).map(|c| c.text.as_str());
    text("Expiration") == Some(EXPIRATION_MARK) && text("EncryptedData") == Some(DATA_MARK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wsus::client::cookie;
    use crate::wsus::soap::parse_request;

    fn envelope(op: &str) -> String {
        format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><SyncUpdates xmlns="http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService">{op}</SyncUpdates></s:Body></s:Envelope>"#
        )
    }

    const COOKIE: &str = "<cookie><Expiration>2026-12-04T21:06:34.0000000Z</Expiration><EncryptedData>DEx7LyL9ACHo+/Uk</EncryptedData></cookie>";

    #[test]
    fn a_real_shaped_request_is_cut_at_its_cookie() {
        let body = envelope(&format!("{COOKIE}<parameters><int>1</int></parameters>"));
        let cut = Cut::of(body.as_bytes()).expect("cut");
        assert_eq!(cut.expiration, "2026-12-04T21:06:34.0000000Z");
        assert_eq!(cut.data, "DEx7LyL9ACHo+/Uk");
        assert_eq!(cut.shape_len() + cut.expiration.len() + cut.data.len(), body.len());
        let marked = parse_request(&cut.marked()).expect("marked parse");
        assert!(marks_hold(&marked));
        let whole = parse_request(body.as_bytes()).expect("parse");
        assert_eq!(
            Some(cut.cookie().expect("cookie")),
            cookie(&whole.operation, "cookie").unwrap()
        );
    }

    /// Bodies that are not cut, and why.
    #[test]
    fn bodies_whose_texts_cannot_be_cut_out_are_parsed_whole() {
        let cases = [
            ("no cookie", envelope("<parameters/>")),
            ("an entity anywhere", envelope(&format!("{COOKIE}<a>&amp;</a>"))),
            ("a marker character elsewhere", envelope(&format!("{COOKIE}<a>~</a>"))),
            (
                "an entity in the text",
                envelope(
                    "<cookie><Expiration>x&amp;</Expiration><EncryptedData>AA==</EncryptedData></cookie>",
                ),
            ),
            (
                "a space in the text",
                envelope(
                    "<cookie><Expiration>x</Expiration><EncryptedData>AA ==</EncryptedData></cookie>",
                ),
            ),
            (
                "an empty text",
                envelope(
                    "<cookie><Expiration></Expiration><EncryptedData>AA==</EncryptedData></cookie>",
                ),
            ),
            (
                "another element between",
                envelope(
                    "<cookie><Expiration>x</Expiration><b/><EncryptedData>AA==</EncryptedData></cookie>",
                ),
            ),
            (
                "a text longer than any cookie",
                envelope(&format!(
                    "<cookie><Expiration>x</Expiration><EncryptedData>{}</EncryptedData></cookie>",
                    "A".repeat(LONGEST_DATA + 1)
                )),
            ),
        ];
        for (why, body) in cases {
            assert_eq!(Cut::of(body.as_bytes()), None, "{why}");
        }
    }

    /// Where the first `<cookie>` in the bytes is not the one the ordinary parse reads, the
    /// marked parse says so; where it is, the cut's cookie is the parse's.
    #[test]
    fn texts_that_are_not_the_cookies_do_not_hold_the_marks() {
        let decoy =
            "<cookie><Expiration>x</Expiration><EncryptedData>AA==</EncryptedData></cookie>";
        let cases = [
            ("in a comment", envelope(&format!("<!--{decoy}-->{COOKIE}")), false),
            ("in CDATA", envelope(&format!("<a><![CDATA[{decoy}]]></a>{COOKIE}")), false),
            ("in an attribute", envelope(&format!("<a b='{decoy}'/>{COOKIE}")), false),
            ("in a nested element", envelope(&format!("<a>{decoy}</a>{COOKIE}")), false),
            ("a second cookie after", envelope(&format!("{COOKIE}{decoy}")), true),
        ];
        for (why, body, expected) in cases {
            let cut = Cut::of(body.as_bytes()).expect(why);
            let holds = parse_request(&cut.marked()).map(|r| marks_hold(&r)).unwrap_or(false);
            assert_eq!(holds, expected, "{why}");
            if holds {
                let whole = parse_request(body.as_bytes()).expect(why);
                assert_eq!(
                    Some(cut.cookie().expect(why)),
                    cookie(&whole.operation, "cookie").unwrap(),
                    "{why}"
                );
            }
        }
    }
}
