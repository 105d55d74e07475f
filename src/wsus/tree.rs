//! A small, bounded XML tree for SOAP requests: namespace-aware, prefix-agnostic, no DTDs,
//! only the five predefined entities, limits on depth and element count. Requests are at most a
//! few MB (a client with 5,000 cached revision ids sends ~100 KB), so a tree is the simple choice.

use super::names;
use crate::catalog::xml::{decode_attribute, normalize_newlines, resolve_reference};
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use std::sync::Arc;

const MAX_DEPTH: usize = 64;
/// Elements (and `<int>` items) of one request. The largest real requests hold a few thousand
/// elements (ReportEventBatch) and up to 10,000 ids; each element costs about 160 bytes of tree.
pub const MAX_ELEMENTS: usize = 100_000;

/// Attributes on one element. Real requests carry at most 19 (RollupComputers' `Details`); the
/// duplicate check of an element's attributes costs the square of their number.
pub const MAX_ATTRIBUTES: usize = 64;
/// Namespace bindings in scope at once. Real requests declare at most a dozen; every prefixed
/// name is resolved against those in scope.
pub const MAX_BINDINGS_IN_SCOPE: usize = 64;

pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Shared between elements: a request with 5,000 `<int>` items holds one copy of each.
    pub ns: Name,
    pub name: Name,
    /// (namespace, local name, value)
    pub attributes: Vec<(String, String, String)>,
    pub text: String,
    pub children: Vec<Element>,
    /// `<int>` children (MS-WUSP's ArrayOfInt): kept as numbers, not as elements, because a
    /// client sends thousands of them in every SyncUpdates call.
    pub ints: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed XML at byte {offset}: {message}")]
pub struct XmlError {
    pub offset: u64,
    pub message: String,
}

impl Element {
    /// About the memory the element and everything under it take.
    pub fn approximate_bytes(&self) -> usize {
        std::mem::size_of::<Element>() + self.heap_bytes()
    }

    /// What the element holds on the heap, vectors counted by their capacity (a vector of one
    /// child has room for four).
    fn heap_bytes(&self) -> usize {
        let attributes = self.attributes.capacity()
            * std::mem::size_of::<(String, String, String)>()
            + self.attributes.iter().map(|(a, b, c)| a.len() + b.len() + c.len()).sum::<usize>();
        self.text.capacity()
            + self.ints.capacity() * 8
            + attributes
            + self.children.capacity() * std::mem::size_of::<Element>()
            + self.children.iter().map(Element::heap_bytes).sum::<usize>()
    }

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
        self.attributes
            .iter()
            .any(|(ns, n, v)| ns == XSI && n == "nil" && (v == "true" || v == "1"))
    }

    /// Items of an array element (literal `<int>..</int>` items or SOAP-encoded ones).
    pub fn items(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter(|c| !c.is_nil())
    }
}

/// An element's name or namespace: one of the protocols' own ([`names::KNOWN`], static: no
/// allocation, no reference count shared between threads) or any other, shared within its
/// document. Compares and prints as the text it holds.
#[derive(Clone)]
pub enum Name {
    Known(&'static str),
    Other(Arc<str>),
}

impl std::ops::Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Name::Known(s) => s,
            Name::Other(s) => s,
        }
    }
}

impl Default for Name {
    fn default() -> Self {
        Name::Known("")
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        **self == **other
    }
}

impl Eq for Name {}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// Names that are not [`names::KNOWN`]: the previous copy again when the same bytes come
/// again (array items, one namespace).
#[derive(Default)]
struct Interner {
    recent: Vec<Arc<str>>,
}

impl Interner {
    fn get(&mut self, bytes: &[u8]) -> Name {
        if let Some(known) = names::known(bytes) {
            return Name::Known(known);
        }
        if let Some(a) = self.recent.iter().rev().find(|a| a.as_bytes() == bytes) {
            return Name::Other(a.clone());
        }
        let a: Arc<str> = match std::str::from_utf8(bytes) {
            Ok(text) => Arc::from(text),
            Err(_) => Arc::from(String::from_utf8_lossy(bytes)),
        };
        if self.recent.len() >= 16 {
            self.recent.remove(0);
        }
        self.recent.push(a.clone());
        Name::Other(a)
    }
}

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Namespace bindings in scope: (prefix, namespace, depth of the element that declared it).
#[derive(Default)]
struct Scopes {
    bindings: Vec<(Vec<u8>, Name, usize)>,
}

impl Scopes {
    fn resolve(&self, prefix: &[u8]) -> Option<Name> {
        self.bindings.iter().rev().find(|(p, _, _)| p == prefix).map(|(_, ns, _)| ns.clone())
    }

    fn leave(&mut self, depth: usize) {
        while self.bindings.last().is_some_and(|(_, _, d)| *d > depth) {
            self.bindings.pop();
        }
    }
}

fn split_qname(qname: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b':', qname) {
        Some(i) => (&qname[..i], &qname[i + 1..]),
        None => (&[], qname),
    }
}

/// `<int>` with nothing but an integer inside, straight from the input: `Some((value, bytes
/// consumed including the end tag))`. Anything else (an entity, a comment, whitespace oddities)
/// takes the ordinary path. Read byte by byte: a client sends thousands of these per call.
fn int_item(rest: &[u8], qname: &[u8]) -> Option<(i64, usize)> {
    let mut at = skip_spaces(rest, 0);
    let negative = rest.get(at) == Some(&b'-');
    at += usize::from(negative || rest.get(at) == Some(&b'+'));
    let digits_start = at;
    let mut magnitude: i64 = 0;
    while let Some(d) = rest.get(at).filter(|b| b.is_ascii_digit()) {
        // Accumulated negatively, so that i64::MIN parses as it does with `str::parse`.
        magnitude = magnitude.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
        at += 1;
    }
    if at == digits_start {
        return None;
    }
    let value = if negative { magnitude } else { magnitude.checked_neg()? };
    at = skip_spaces(rest, at);
    let after_name = rest[at..].strip_prefix(b"</").and_then(|r| strip_name(r, qname))?;
    let spaces = skip_spaces(after_name, 0);
    (after_name.get(spaces) == Some(&b'>')).then_some((value, at + 2 + qname.len() + spaces + 1))
}

/// The qualified names of the open elements, end to end in one buffer (no allocation per
/// element), to check end tags against.
#[derive(Default)]
struct OpenNames {
    bytes: Vec<u8>,
    starts: Vec<usize>,
}

impl OpenNames {
    fn open(&mut self, name: &[u8]) {
        self.starts.push(self.bytes.len());
        self.bytes.extend_from_slice(name);
    }

    /// Whether `name` closes the innermost open element (which is closed either way).
    fn close(&mut self, name: &[u8]) -> bool {
        let Some(start) = self.starts.pop() else { return false };
        let matches = self.bytes[start..] == *name;
        self.bytes.truncate(start);
        matches
    }
}

fn skip_spaces(bytes: &[u8], from: usize) -> usize {
    from + bytes[from..].iter().take_while(|b| b.is_ascii_whitespace()).count()
}

/// `bytes` after `name`, compared inline: names are a few bytes long, shorter than a call to
/// `memcmp` is worth.
fn strip_name<'a>(bytes: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let head = bytes.get(..name.len())?;
    head.iter().zip(name).all(|(a, b)| a == b).then(|| &bytes[name.len()..])
}

pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| XmlError { offset: e.valid_up_to() as u64, message: "not UTF-8".into() })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    // End tags are checked here, against the open elements' names.
    reader.config_mut().trim_text(false);
    reader.config_mut().check_end_names = false;
    let mut tree = TreeBuilder::default();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError { offset: reader.error_position(), message: e.to_string() })?;
        let inside_int = tree.int_text.is_some();
        match event {
            Event::Start(_) | Event::Empty(_) if inside_int => {
                return Err(err(&reader, "an <int> item holds markup"));
            }
            Event::Start(ref e)
                if e.local_name().as_ref() == b"int"
                    && e.attributes().next().is_none()
                    && !tree.stack.is_empty() =>
            {
                tree.int_items(&mut reader, e.name().as_ref())?
            }
            Event::End(ref e) if inside_int => tree.end_int(&reader, e.name().as_ref())?,
            Event::Text(ref t) if inside_int => {
                let raw = std::str::from_utf8(t).map_err(|_| err(&reader, "not UTF-8"))?;
                tree.int_text.as_mut().expect("inside an int").push_str(raw);
            }
            Event::GeneralRef(_) | Event::CData(_) if inside_int => {
                return Err(err(&reader, "an <int> item holds a reference"));
            }
            Event::Start(ref e) => tree.start(&reader, e, false)?,
            Event::Empty(ref e) => tree.start(&reader, e, true)?,
            Event::End(ref e) => tree.end(&reader, e.name().as_ref())?,
            Event::Text(t) => {
                let raw = std::str::from_utf8(&t).map_err(|_| err(&reader, "not UTF-8"))?;
                xml_characters(&reader, raw)?;
                match tree.stack.last_mut() {
                    Some(top) => top.text.push_str(&normalize_newlines(raw)),
                    None if raw.trim().is_empty() => {}
                    None => return Err(err(&reader, "text outside the root element")),
                }
            }
            Event::CData(c) => {
                let text = String::from_utf8_lossy(&c);
                xml_characters(&reader, &text)?;
                if let Some(top) = tree.stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::GeneralRef(r) => {
                let name = std::str::from_utf8(&r).map_err(|_| err(&reader, "not UTF-8"))?;
                let c = resolve_reference(name).map_err(|e| err(&reader, e.to_string()))?;
                match tree.stack.last_mut() {
                    Some(top) => top.text.push(c),
                    None => return Err(err(&reader, "a reference outside the root element")),
                }
            }
            Event::DocType(_) => {
                return Err(err(&reader, "document type declarations are not accepted"));
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !tree.stack.is_empty() || tree.int_text.is_some() {
        return Err(XmlError {
            offset: text.len() as u64,
            message: "truncated: elements are not closed".into(),
        });
    }
    tree.root.ok_or(XmlError { offset: 0, message: "empty document".into() })
}

/// Refuses NUL, which no XML document holds (`&#0;` is refused too) and quick-xml passes
/// through: in a computer's description or an event it would reach the store, where PostgreSQL
/// refuses it and with it the whole batch of client writes. (Other control characters are each
/// field's own check, as group names do.)
fn xml_characters(reader: &Reader<&[u8]>, text: &str) -> Result<(), XmlError> {
    match memchr::memchr(0, text.as_bytes()) {
        None => Ok(()),
        Some(_) => Err(err(reader, "character U+0000 is not allowed in XML")),
    }
}

fn err(reader: &Reader<&[u8]>, message: impl Into<String>) -> XmlError {
    XmlError { offset: reader.buffer_position(), message: message.into() }
}

/// The tree as it is read: the open elements, the names and namespaces in scope, and the
/// counts the limits are checked against.
struct TreeBuilder {
    stack: Vec<Element>,
    open_names: OpenNames,
    scopes: Scopes,
    root: Option<Element>,
    count: usize,
    names: Interner,
    namespaces: Interner,
    /// Inside an `<int>` item read the ordinary way: its text so far.
    int_text: Option<String>,
}

impl Default for TreeBuilder {
    fn default() -> Self {
        TreeBuilder {
            stack: Vec::with_capacity(16),
            open_names: OpenNames::default(),
            scopes: Scopes::default(),
            root: None,
            count: 0,
            names: Interner::default(),
            namespaces: Interner::default(),
            int_text: None,
        }
    }
}

impl TreeBuilder {
    fn count_element(&mut self, reader: &Reader<&[u8]>) -> Result<(), XmlError> {
        self.count += 1;
        if self.count > MAX_ELEMENTS {
            return Err(err(reader, format!("more than {MAX_ELEMENTS} elements")));
        }
        Ok(())
    }

    /// An `<int>` start tag: the item and the plain items that follow it are read straight from
    /// the input; an item that is not plain is read the ordinary way, into `int_text`.
    fn int_items(&mut self, reader: &mut Reader<&[u8]>, qname: &[u8]) -> Result<(), XmlError> {
        self.count_element(reader)?;
        let mut rest: &[u8] = reader.get_ref();
        let Some((value, consumed)) = int_item(rest, qname) else {
            self.int_text = Some(String::new());
            self.open_names.open(qname);
            return Ok(());
        };
        let ints = &mut self.stack.last_mut().expect("inside an element").ints;
        // Arrays come by the dozen or thousand: skip the smallest steps of growth.
        ints.reserve(64);
        ints.push(value);
        rest = &rest[consumed..];
        // The items that follow, `<int>N</int>` after `<int>N</int>`, in one go.
        while let Some(after_open) = rest
            .strip_prefix(b"<")
            .and_then(|r| strip_name(r, qname))
            .and_then(|r| r.strip_prefix(b">"))
        {
            let Some((value, consumed)) = int_item(after_open, qname) else { break };
            self.count += 1;
            if self.count > MAX_ELEMENTS {
                return Err(err(reader, format!("more than {MAX_ELEMENTS} elements")));
            }
            ints.push(value);
            rest = &after_open[consumed..];
        }
        // The slice reader reads on from wherever its input now starts: past the items, where
        // it expects text, as after any end tag.
        *reader.get_mut() = rest;
        Ok(())
    }

    fn end_int(&mut self, reader: &Reader<&[u8]>, qname: &[u8]) -> Result<(), XmlError> {
        if !self.open_names.close(qname) {
            return Err(err(reader, "mismatched end tag"));
        }
        let text = self.int_text.take().unwrap_or_default();
        let value = text
            .trim()
            .parse::<i64>()
            .map_err(|_| err(reader, format!("an <int> item holds {text:?}, not an integer")))?;
        self.stack.last_mut().expect("inside an element").ints.push(value);
        Ok(())
    }

    fn start(
        &mut self,
        reader: &Reader<&[u8]>,
        e: &BytesStart<'_>,
        empty: bool,
    ) -> Result<(), XmlError> {
        self.count_element(reader)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(err(reader, format!("nested deeper than {MAX_DEPTH}")));
        }
        if self.root.is_some() {
            return Err(err(reader, "content after the root element"));
        }
        let depth = self.stack.len() + 1;
        let attributes = self.attributes(reader, e, depth)?;
        let qname = e.name();
        let (prefix, local) = split_qname(qname.as_ref());
        let ns = match prefix {
            b"" => self.scopes.resolve(b"").unwrap_or_default(),
            p => self.namespace_of(reader, p)?,
        };
        let mut element = Element { ns, name: self.names.get(local), ..Default::default() };
        for (key, value) in attributes {
            let (prefix, local) = split_qname(&key);
            let ns = match prefix {
                b"" => Name::default(),
                p => self.namespace_of(reader, p)?,
            };
            element.attributes.push((
                ns.to_string(),
                String::from_utf8_lossy(local).into_owned(),
                value,
            ));
        }
        if empty {
            self.scopes.leave(depth - 1);
            attach(&mut self.stack, &mut self.root, element);
        } else {
            self.open_names.open(qname.as_ref());
            self.stack.push(element);
        }
        Ok(())
    }

    /// The element's attributes other than namespace declarations, which go into scope.
    fn attributes(
        &mut self,
        reader: &Reader<&[u8]>,
        e: &BytesStart<'_>,
        depth: usize,
    ) -> Result<Vec<(Vec<u8>, String)>, XmlError> {
        let mut attributes = Vec::new();
        for (i, a) in e.attributes().enumerate() {
            if i >= MAX_ATTRIBUTES {
                return Err(err(
                    reader,
                    format!("more than {MAX_ATTRIBUTES} attributes on one element"),
                ));
            }
            if self.scopes.bindings.len() > MAX_BINDINGS_IN_SCOPE {
                return Err(err(
                    reader,
                    format!("more than {MAX_BINDINGS_IN_SCOPE} namespace declarations in scope"),
                ));
            }
            let a = a.map_err(|e| err(reader, e.to_string()))?;
            let key = a.key.as_ref();
            let value = decode_attribute(&a.value).map_err(|e| err(reader, e.to_string()))?;
            xml_characters(reader, &value)?;
            if key == b"xmlns" {
                let ns = self.namespaces.get(value.as_bytes());
                self.scopes.bindings.push((Vec::new(), ns, depth));
            } else if let Some(prefix) = key.strip_prefix(b"xmlns:") {
                let ns = self.namespaces.get(value.as_bytes());
                self.scopes.bindings.push((prefix.to_vec(), ns, depth));
            } else {
                attributes.push((key.to_vec(), value.into_owned()));
            }
        }
        Ok(attributes)
    }

    /// The namespace a (non-empty) prefix stands for.
    fn namespace_of(&self, reader: &Reader<&[u8]>, prefix: &[u8]) -> Result<Name, XmlError> {
        if prefix == b"xml" {
            return Ok(Name::Known(XML_NS));
        }
        self.scopes.resolve(prefix).ok_or_else(|| {
            err(reader, format!("undeclared prefix {:?}", String::from_utf8_lossy(prefix)))
        })
    }

    fn end(&mut self, reader: &Reader<&[u8]>, qname: &[u8]) -> Result<(), XmlError> {
        if !self.open_names.close(qname) {
            return Err(err(
                reader,
                format!("unexpected end tag </{}>", String::from_utf8_lossy(qname)),
            ));
        }
        let element = self.stack.pop().ok_or_else(|| err(reader, "unbalanced end tag"))?;
        self.scopes.leave(self.stack.len());
        attach(&mut self.stack, &mut self.root, element);
        Ok(())
    }
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

    /// Found by attack: a NUL in a client's text reached the store, where PostgreSQL refuses it
    /// and with it every other client's writes in the batch.
    #[test]
    fn nul_is_refused() {
        for bad in ["<a>x\u{0}y</a>", "<a b=\"x\u{0}\"/>", "<a><![CDATA[\u{0}]]></a>"] {
            let e = parse(bad.as_bytes()).expect_err(bad);
            assert!(e.message.contains("not allowed in XML"), "{bad:?}: {e}");
        }
        let ok = parse(b"<a b=\"t\tx\">line\r\nnext\ttab</a>").unwrap();
        assert_eq!(ok.text, "line\nnext\ttab");
    }

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
    fn int_items_become_numbers() {
        let t = parse(b"<a xmlns=\"urn:a\"><ids><int>1</int><int> 22 </int></ids><x><int foo=\"1\">3</int></x></a>").unwrap();
        assert_eq!(t.child("ids").unwrap().ints, vec![1, 22]);
        assert!(t.child("ids").unwrap().children.is_empty());
        // With attributes it stays an element.
        assert_eq!(t.child("x").unwrap().children[0].text, "3");
        assert!(parse(b"<a><ids><int>x</int></ids></a>").is_err());
        assert!(parse(b"<a><ids><int><b/></int></ids></a>").is_err());
    }

    /// The byte-level reader of `<int>` items agrees with `str::parse` on every shape, and what
    /// it leaves to the ordinary path is read there (or refused) the same way.
    #[test]
    fn int_items_read_as_str_parse_reads_them() {
        let cases = [
            "0",
            "-0",
            "+7",
            "-7",
            " 42 ",
            "\n\t9\r\n",
            "007",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "-9223372036854775809",
            "",
            " ",
            "-",
            "+",
            "1 2",
            "0x10",
            "1e3",
            "&#49;",
            "1&#48;",
            "١",
        ];
        for case in cases {
            let doc = format!("<a><ids><int>{case}</int><int>{case}</int></ids></a>");
            let expected = case.trim().parse::<i64>().ok().map(|v| vec![v, v]);
            let got = parse(doc.as_bytes()).ok().map(|t| t.child("ids").unwrap().ints.clone());
            let references = case.contains('&');
            if !references {
                assert_eq!(got, expected, "<int>{case:?}</int>");
            } else {
                assert_eq!(got, None, "<int>{case:?}</int> holds a reference");
            }
        }
        // A name that only starts like the open one does not close it.
        assert!(parse(b"<a><ids><int>1</intx></ids></a>").is_err());
        assert!(parse(b"<a><ids><int>1</int ><int >2</int\t></ids></a>").is_ok());
    }

    #[test]
    fn namespace_scopes_end_with_their_element() {
        let t = parse(br#"<e:a xmlns:e="urn:e"><e:b xmlns:p="urn:p"><p:c p:x="1"/></e:b><d/><int>5</int><int xmlns="urn:z">6</int></e:a>"#)
            .unwrap();
        let b = t.child("b").unwrap();
        assert_eq!(&*b.children[0].ns, "urn:p");
        assert_eq!(
            b.children[0].attributes,
            vec![("urn:p".to_string(), "x".to_string(), "1".to_string())]
        );
        assert_eq!(&*t.child("d").unwrap().ns, "");
        assert_eq!(t.ints, vec![5]);
        assert_eq!(&*t.children.last().unwrap().ns, "urn:z");
        // A prefix used outside the element that declared it.
        assert!(parse(br#"<a><b xmlns:p="urn:p"/><p:c/></a>"#).is_err());
        assert!(parse(b"<a><b></a></b>").is_err());
        assert!(parse(b"<a><int>1</b></a>").is_err());
        assert!(parse(b"<a><int>1</int ></a>").unwrap().ints == vec![1]);
        assert!(parse(b"<a><int> 7 <!-- x --></int></a>").unwrap().ints == vec![7]);
    }

    /// Regression: 80,000 attributes on one element took 11 s (each checked against all before
    /// it), and 100,000 namespace declarations made every prefixed name a scan of all of them.
    #[test]
    fn attributes_and_namespace_declarations_are_bounded() {
        let many_attributes: String = (0..80_000).map(|i| format!(" a{i}=\"\"")).collect();
        let e = parse(format!("<x{many_attributes}/>").as_bytes()).unwrap_err();
        assert!(e.message.contains("attributes on one element"), "{e}");
        let many_bindings: String =
            (0..100_000).map(|i| format!(" xmlns:p{i}=\"urn:{i}\"")).collect();
        let e = parse(format!("<x{many_bindings}><p1:y/></x>").as_bytes()).unwrap_err();
        assert!(
            e.message.contains("attributes on one element"),
            "declarations are attributes: {e}"
        );
        // Nested declarations add up too, while their elements are open.
        let nested: String =
            (0..60).map(|i| format!("<e{i} xmlns:a{i}=\"urn:a\" xmlns:b{i}=\"urn:b\">")).collect();
        assert!(
            parse(format!("{nested}</x>").as_bytes())
                .unwrap_err()
                .message
                .contains("namespace declarations")
        );
        // Declarations that go out of scope do not count.
        let siblings: String =
            (0..1000).map(|i| format!("<p:e xmlns:p=\"urn:{i}\" a=\"1\"/>")).collect();
        assert_eq!(parse(format!("<x>{siblings}</x>").as_bytes()).unwrap().children.len(), 1000);
        let fine: String = (0..MAX_ATTRIBUTES).map(|i| format!(" a{i}=\"\"")).collect();
        assert_eq!(
            parse(format!("<x{fine}/>").as_bytes()).unwrap().attributes.len(),
            MAX_ATTRIBUTES
        );
    }

    #[test]
    fn refuses_dtds_truncation_and_unknown_entities() {
        assert!(parse(b"<!DOCTYPE x [<!ENTITY e \"y\">]><x>&e;</x>").is_err());
        assert!(parse(b"<x><y>").is_err());
        assert!(parse(b"<x>&e;</x>").is_err());
        assert!(parse(b"").is_err());
    }
}
