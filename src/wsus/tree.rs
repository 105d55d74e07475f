//! A small, bounded XML tree for SOAP requests: namespace-aware, prefix-agnostic, no DTDs,
//! only the five predefined entities, limits on depth and element count. Requests are at most a
//! few MB (a client with 5,000 cached revision ids sends ~100 KB), so a tree is the simple choice.

use crate::catalog::xml::{decode_attribute, normalize_newlines, resolve_reference};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use std::sync::Arc;

const MAX_DEPTH: usize = 64;
const MAX_ELEMENTS: usize = 500_000;

pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Shared between elements: a request with 5,000 `<int>` items holds one copy of each.
    pub ns: Arc<str>,
    pub name: Arc<str>,
    /// (namespace, local name, value)
    pub attributes: Vec<(String, String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed XML at byte {offset}: {message}")]
pub struct XmlError {
    pub offset: u64,
    pub message: String,
}

impl Element {
    /// The first child with this local name (any namespace).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| &*c.name == name)
    }

    /// The first child with this local name, ignoring ASCII case (real clients vary the case of
    /// some elements between versions).
    pub fn child_ci(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Text of a child, trimmed; `None` when absent or `xsi:nil`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).filter(|c| !c.is_nil()).map(|c| c.text.trim())
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(_, n, _)| n == name).map(|(_, _, v)| v.as_str())
    }

    pub fn is_nil(&self) -> bool {
        self.attributes.iter().any(|(ns, n, v)| ns == XSI && n == "nil" && (v == "true" || v == "1"))
    }

    /// Items of an array element (literal `<int>..</int>` items or SOAP-encoded ones).
    pub fn items(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter(|c| !c.is_nil())
    }
}

/// Reuses the previous `Arc<str>` when the same bytes come again (array items, one namespace).
#[derive(Default)]
struct Interner {
    recent: Vec<Arc<str>>,
}

impl Interner {
    fn get(&mut self, bytes: &[u8]) -> Arc<str> {
        if let Some(a) = self.recent.iter().find(|a| a.as_bytes() == bytes) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(String::from_utf8_lossy(bytes));
        if self.recent.len() >= 16 {
            self.recent.remove(0);
        }
        self.recent.push(a.clone());
        a
    }
}

pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|e| XmlError { offset: e.valid_up_to() as u64, message: "not UTF-8".into() })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let mut names = Interner::default();
    let mut namespaces = Interner::default();
    let err = |reader: &NsReader<&[u8]>, message: String| XmlError { offset: reader.buffer_position(), message };
    loop {
        let event = reader.read_event().map_err(|e| XmlError { offset: reader.error_position(), message: e.to_string() })?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(err(&reader, format!("more than {MAX_ELEMENTS} elements")));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(err(&reader, format!("nested deeper than {MAX_DEPTH}")));
                }
                if root.is_some() {
                    return Err(err(&reader, "content after the root element".into()));
                }
                let (ns, local) = reader.resolver().resolve_element(e.name());
                let ns = match ns {
                    ResolveResult::Bound(n) => namespaces.get(n.as_ref()),
                    ResolveResult::Unbound => namespaces.get(b""),
                    ResolveResult::Unknown(p) => return Err(err(&reader, format!("undeclared prefix {:?}", String::from_utf8_lossy(&p)))),
                };
                let mut element = Element { ns, name: names.get(local.as_ref()), ..Default::default() };
                for a in e.attributes() {
                    let a = a.map_err(|e| err(&reader, e.to_string()))?;
                    if a.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (ans, alocal) = reader.resolver().resolve_attribute(a.key);
                    let ans = match ans {
                        ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
                        _ => String::new(),
                    };
                    let value = decode_attribute(&a.value).map_err(|e| err(&reader, e.to_string()))?;
                    element.attributes.push((ans, String::from_utf8_lossy(alocal.as_ref()).into_owned(), value.into_owned()));
                }
                if matches!(event, Event::Empty(_)) {
                    attach(&mut stack, &mut root, element);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or_else(|| err(&reader, "unbalanced end tag".into()))?;
                attach(&mut stack, &mut root, element);
            }
            Event::Text(t) => {
                let raw = std::str::from_utf8(&t).map_err(|_| err(&reader, "not UTF-8".into()))?;
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&normalize_newlines(raw)),
                    None if raw.trim().is_empty() => {}
                    None => return Err(err(&reader, "text outside the root element".into())),
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::GeneralRef(r) => {
                let name = std::str::from_utf8(&r).map_err(|_| err(&reader, "not UTF-8".into()))?;
                let c = resolve_reference(name).map_err(|e| err(&reader, e.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push(c);
                }
            }
            Event::DocType(_) => return Err(err(&reader, "document type declarations are not accepted".into())),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError { offset: text.len() as u64, message: "truncated: elements are not closed".into() });
    }
    root.ok_or(XmlError { offset: 0, message: "empty document".into() })
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaces_and_nil() {
        let t = parse(
            br#"<a:x xmlns:a="urn:a" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><a:y>1 &amp; 2</a:y><z i:nil="true"/></a:x>"#,
        )
        .unwrap();
        assert_eq!((&*t.ns, &*t.name), ("urn:a", "x"));
        assert_eq!(t.child_text("y"), Some("1 & 2"));
        assert!(t.child("z").unwrap().is_nil());
        assert_eq!(t.child_text("z"), None);
    }

    #[test]
    fn refuses_dtds_truncation_and_unknown_entities() {
        assert!(parse(b"<!DOCTYPE x [<!ENTITY e \"y\">]><x>&e;</x>").is_err());
        assert!(parse(b"<x><y>").is_err());
        assert!(parse(b"<x>&e;</x>").is_err());
        assert!(parse(b"").is_err());
    }
}
