//! Streaming parser for full update documents (`<upd:Update>`, as GetUpdateData serves them).
//!
//! One pass over the document builds the [`Update`] model and writes the three fragment kinds,
//! so a 46 MB document costs one walk and no tree. DTDs are refused and only the five predefined
//! entities exist, so nothing in a document can expand.

use super::digest::{Sha1Digest, Sha256Digest};
use super::fragments::{self, FragmentCapture, Fragments};
use super::guid::Guid;
use super::model::*;
use super::xml::{self, ns};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, NamespaceResolver, QName, ResolveResult};
use quick_xml::reader::Reader;
use std::borrow::Cow;
use std::ops::Range;

/// Larger documents are refused before parsing (the largest real one is 46 MB).
pub const MAX_DOCUMENT_BYTES: usize = 256 << 20;
const MAX_DEPTH: usize = 256;
/// `Properties/Language` values one update may state (real ones state one; WSUS knows 39).
pub const MAX_UPDATE_LANGUAGES: usize = 64;
/// The largest payload file a document may declare (1 TiB; real ones stay below 10 GiB): sums of
/// sizes, volume layouts and dry runs never overflow or run for ever on a declared size.
pub const MAX_FILE_SIZE: u64 = 1 << 40;
/// Attributes on one element (real documents carry fewer than 20): the duplicate check of an
/// element's attributes costs the square of their number.
pub const MAX_ATTRIBUTES: usize = 128;
/// Namespace declarations in scope at once (real documents: a handful): every element's name is
/// resolved against those in scope.
pub const MAX_DECLARATIONS_IN_SCOPE: usize = 128;
/// Namespaces whose prefixes fragments drop (or map to `b.`, `m.`, `d.`).
const MSUS_NAMESPACES: &[u8] = b"http://schemas.microsoft.com/msus/";

/// A document that cannot be parsed: where, which update (when its identity was already read),
/// and what is wrong. Callers add which file or batch it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}byte {offset}: {message}", self.update_id.as_ref().map(|u| format!("update {u}, ")).unwrap_or_default())]
pub struct DocumentError {
    pub offset: u64,
    pub update_id: Option<String>,
    pub message: String,
}

/// The model and the fragments of one document.
#[derive(Debug, Clone)]
pub struct ParsedUpdate {
    pub update: Update,
    pub fragments: Fragments,
}

/// Parses a full update document.
pub fn parse_update(document: &[u8]) -> Result<ParsedUpdate, DocumentError> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError {
            offset: MAX_DOCUMENT_BYTES as u64,
            update_id: None,
            message: format!(
                "document is {} bytes; the limit is {} bytes",
                document.len(),
                MAX_DOCUMENT_BYTES
            ),
        });
    }
    // SIMD validation: this pass reads every byte once more, at several GB/s rather than ~2.
    if simdutf8::basic::from_utf8(document).is_err() {
        let offset = std::str::from_utf8(document).err().map_or(0, |e| e.valid_up_to());
        return Err(DocumentError {
            offset: offset as u64,
            update_id: None,
            message: "document is not valid UTF-8".into(),
        });
    }
    let body = document.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(document);
    let bom = document.len() - body.len();
    // quick-xml skips a byte-order mark of its own: a second one would shift every span by it.
    if body.starts_with(b"\xEF\xBB\xBF") {
        return Err(DocumentError {
            offset: bom as u64,
            update_id: None,
            message: "a second byte-order mark".into(),
        });
    }
    let mut parser = Parser::new(body);
    let mut parsed = parser.run().map_err(|mut e| {
        e.offset += bom as u64;
        e
    })?;
    // Spans are "byte ranges of the document the model was parsed from": the one given, BOM and all.
    let u = &mut parsed.update;
    let shift = |span: &mut Span| *span = span.start + bom..span.end + bom;
    u.applicability_rules.iter_mut().chain(u.handler_specific_data.iter_mut()).for_each(shift);
    u.unknown_elements.iter_mut().for_each(|(_, span)| shift(span));
    u.language_elements.iter_mut().for_each(|e| shift(&mut e.span));
    Ok(parsed)
}

/// A slice of the document as text, without validating it again.
///
/// `parse_update` checks the whole document is UTF-8 before parsing, and quick-xml cuts the input
/// only at ASCII delimiters (`<`, `>`, `=`, quotes, whitespace, `&`, `;`, `:`), which never occur
/// inside a multi-byte UTF-8 sequence; so every slice it hands out is valid UTF-8. Debug builds
/// check this anyway.
fn validated_str(bytes: &[u8]) -> &str {
    debug_assert!(
        std::str::from_utf8(bytes).is_ok(),
        "quick-xml returned a slice that is not on a character boundary"
    );
    // SAFETY: see above: the bytes are a boundary-aligned sub-slice of a validated UTF-8 document.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// What an element means to the model, decided from its parent and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Root,
    Identity,
    Properties,
    KbArticle,
    SecurityBulletin,
    PropertiesSupportUrl,
    PropertiesLanguage,
    Installation,
    Uninstallation,
    LocalizedCollection,
    Localized,
    LocalizedField(LocalizedField),
    EulaFile,
    Relationships,
    Prerequisites,
    PrerequisiteIdentity,
    PrerequisiteGroup,
    PrerequisiteGroupIdentity,
    Bundled,
    BundledGroup,
    BundledIdentity,
    Superseded,
    SupersededIdentity,
    Rules,
    Files,
    File,
    AdditionalDigest,
    Handler,
    CategoryInformation,
    UnknownTop,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalizedField {
    Language,
    Title,
    Description,
    ReleaseNotes,
    UninstallNotes,
    MoreInfoUrl,
    SupportUrl,
}

fn role_of(parent: Option<Role>, in_update_ns: bool, local: &str, in_handler: bool) -> Role {
    use Role::*;
    let Some(parent) = parent else { return Root };
    if in_handler && local == "CategoryInformation" {
        return CategoryInformation;
    }
    if !in_update_ns {
        return Other;
    }
    match (parent, local) {
        (Root, "UpdateIdentity") => Identity,
        (Root, "Properties") => Properties,
        (Root, "LocalizedPropertiesCollection") => LocalizedCollection,
        (Root, "Relationships") => Relationships,
        (Root, "ApplicabilityRules") => Rules,
        (Root, "Files") => Files,
        (Root, "HandlerSpecificData") => Handler,
        (Root, _) => UnknownTop,
        (Properties, "KBArticleID") => KbArticle,
        (Properties, "SecurityBulletinID") => SecurityBulletin,
        (Properties, "SupportUrl") => PropertiesSupportUrl,
        (Properties, "Language") => PropertiesLanguage,
        (Properties, "InstallationBehavior") => Installation,
        (Properties, "UninstallationBehavior") => Uninstallation,
        (LocalizedCollection, "LocalizedProperties") => Localized,
        (LocalizedCollection, "EulaFile") => EulaFile,
        (Localized, "Language") => LocalizedField(self::LocalizedField::Language),
        (Localized, "Title") => LocalizedField(self::LocalizedField::Title),
        (Localized, "Description") => LocalizedField(self::LocalizedField::Description),
        (Localized, "ReleaseNotes") => LocalizedField(self::LocalizedField::ReleaseNotes),
        (Localized, "UninstallNotes") => LocalizedField(self::LocalizedField::UninstallNotes),
        (Localized, "MoreInfoUrl") => LocalizedField(self::LocalizedField::MoreInfoUrl),
        (Localized, "SupportUrl") => LocalizedField(self::LocalizedField::SupportUrl),
        (Relationships, "Prerequisites") => Prerequisites,
        (Relationships, "BundledUpdates") => Bundled,
        (Relationships, "SupersededUpdates") => Superseded,
        (Prerequisites, "UpdateIdentity") => PrerequisiteIdentity,
        (Prerequisites, "AtLeastOne") => PrerequisiteGroup,
        (PrerequisiteGroup, "UpdateIdentity") => PrerequisiteGroupIdentity,
        (Bundled, "AtLeastOne") => BundledGroup,
        (Bundled, "UpdateIdentity") | (BundledGroup, "UpdateIdentity") => BundledIdentity,
        (Superseded, "UpdateIdentity") => SupersededIdentity,
        (Files, "File") => File,
        (File, "AdditionalDigest") => AdditionalDigest,
        _ => Other,
    }
}

/// Decoded attributes of the current element, in one reusable buffer.
#[derive(Default)]
struct Attributes {
    text: String,
    /// (name range, namespaced, value range) into `text`.
    items: Vec<(Range<usize>, bool, Range<usize>)>,
}

impl Attributes {
    fn clear(&mut self) {
        self.text.clear();
        self.items.clear();
    }

    fn push(&mut self, name: &str, namespaced: bool, value: &str) {
        let n0 = self.text.len();
        self.text.push_str(name);
        let n1 = self.text.len();
        self.text.push_str(value);
        self.items.push((n0..n1, namespaced, n1..self.text.len()));
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.items.iter().map(|(n, _, v)| (&self.text[n.clone()], &self.text[v.clone()]))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(n, namespaced, _)| !namespaced && &self.text[n.clone()] == name)
            .map(|(_, _, v)| &self.text[v.clone()])
    }

    fn owned(&self) -> Vec<(String, bool, String)> {
        self.items
            .iter()
            .map(|(n, ns, v)| {
                (self.text[n.clone()].to_string(), *ns, self.text[v.clone()].to_string())
            })
            .collect()
    }
}

struct Frame {
    role: Role,
    /// Namespace of an element outside the msus namespaces (see `FOREIGN_NAMESPACE_RULE`).
    foreign_ns: Option<Range<usize>>,
    /// Fragment name of the element, in `Parser::names`.
    name: Range<usize>,
    /// Byte offset of the start tag.
    start: usize,
}

/// Where a finished capture goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    CoreIdentity,
    CoreRelationships,
    CoreRules,
    ExtendedProperties,
    ExtendedFiles,
    ExtendedHandler,
    Localized,
}

struct Parser<'a> {
    doc: &'a [u8],
    reader: Reader<&'a [u8]>,
    /// Namespace scopes, one per open element (quick-xml's `NsReader` would read every
    /// element's attributes a second time to find declarations; `start` does it in its one pass).
    namespaces: NamespaceResolver,
    /// The element just ended (or empty): its scope goes before the next event.
    pending_pop: bool,
    /// Namespace declarations of each open scope, and their sum.
    scope_declarations: Vec<usize>,
    declarations_in_scope: usize,
    /// The current start tag's attributes other than namespace declarations, as (name, raw
    /// value) byte ranges of the document.
    raw_attributes: Vec<(Range<usize>, Range<usize>)>,
    stack: Vec<Frame>,
    names: String,
    foreign_namespaces: String,
    attributes: Attributes,
    text: String,
    want_text: bool,
    in_handler: usize,
    captures: Vec<(Target, FragmentCapture)>,
    event_start: usize,
    root_closed: bool,

    // Results.
    sections: [Option<String>; 6],
    core_properties: Option<String>,
    /// The Core sections already written at the start of the rules capture (see `core_head`).
    core_seed: Option<CoreHead>,
    localized_fragments: Vec<(String, String)>,
    identity: Option<UpdateIdentity>,
    identity_text: Option<String>,
    properties: Option<Vec<(String, bool, String)>>,
    kb_article_ids: Vec<String>,
    languages: Vec<String>,
    security_bulletin_ids: Vec<String>,
    support_url: Option<String>,
    installation: Option<Behavior>,
    uninstallation: Option<Behavior>,
    eula_languages: Vec<String>,
    language_elements: Vec<LanguageElement>,
    /// The `Language` of the open `EulaFile`.
    eula_language: String,
    localized: Vec<LocalizedProperties>,
    current_localized: Option<LocalizedProperties>,
    prerequisites: Vec<PrerequisiteClause>,
    bundled: Vec<BundleClause>,
    superseded: Vec<Guid>,
    files: Vec<UpdateFile>,
    current_file: Option<UpdateFile>,
    pending_sha256: Option<String>,
    handler_data_type: Option<String>,
    category_kind: Option<CategoryKind>,
    applicability_rules: Option<Span>,
    handler_specific_data: Option<Span>,
    unknown_elements: Vec<(String, Span)>,
}

impl<'a> Parser<'a> {
    fn new(doc: &'a [u8]) -> Self {
        let mut reader = Reader::from_reader(doc);
        let config = reader.config_mut();
        config.trim_text(false);
        config.expand_empty_elements = false;
        config.check_end_names = true;
        Parser {
            doc,
            reader,
            namespaces: NamespaceResolver::default(),
            pending_pop: false,
            scope_declarations: Vec::with_capacity(32),
            declarations_in_scope: 0,
            raw_attributes: Vec::new(),
            stack: Vec::with_capacity(32),
            names: String::with_capacity(1024),
            foreign_namespaces: String::new(),
            attributes: Attributes::default(),
            text: String::new(),
            want_text: false,
            in_handler: 0,
            captures: Vec::new(),
            event_start: 0,
            root_closed: false,
            sections: Default::default(),
            core_properties: None,
            core_seed: None,
            localized_fragments: Vec::new(),
            identity: None,
            identity_text: None,
            properties: None,
            kb_article_ids: Vec::new(),
            languages: Vec::new(),
            security_bulletin_ids: Vec::new(),
            support_url: None,
            installation: None,
            uninstallation: None,
            eula_languages: Vec::new(),
            language_elements: Vec::new(),
            eula_language: String::new(),
            localized: Vec::new(),
            current_localized: None,
            prerequisites: Vec::new(),
            bundled: Vec::new(),
            superseded: Vec::new(),
            files: Vec::new(),
            current_file: None,
            pending_sha256: None,
            handler_data_type: None,
            category_kind: None,
            applicability_rules: None,
            handler_specific_data: None,
            unknown_elements: Vec::new(),
        }
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> DocumentError {
        DocumentError {
            offset: offset as u64,
            update_id: self.identity_text.clone(),
            message: message.into(),
        }
    }

    fn run(&mut self) -> Result<ParsedUpdate, DocumentError> {
        loop {
            if std::mem::take(&mut self.pending_pop) {
                self.namespaces.pop();
                self.declarations_in_scope -= self.scope_declarations.pop().unwrap_or(0);
            }
            self.event_start = self.reader.buffer_position() as usize;
            let event = match self.reader.read_event() {
                Ok(e) => e,
                Err(e) => {
                    let at = self.reader.error_position() as usize;
                    return Err(self.error(at, format!("malformed XML: {e}")));
                }
            };
            match event {
                Event::Start(e) => self.start(&e, false)?,
                Event::Empty(e) => {
                    self.start(&e, true)?;
                    self.pending_pop = true;
                }
                Event::End(_) => {
                    self.end()?;
                    self.pending_pop = true;
                }
                Event::Text(t) => {
                    let raw = validated_str(&t);
                    let text = xml::normalize_newlines(raw);
                    self.character_data(&text)?;
                }
                Event::CData(c) => {
                    let raw = validated_str(&c);
                    let text = xml::normalize_newlines(raw);
                    self.character_data(&text)?;
                }
                Event::GeneralRef(r) => {
                    let name = validated_str(&r);
                    let c = xml::resolve_reference(name)
                        .map_err(|e| self.error(self.event_start, e.to_string()))?;
                    let mut buf = [0u8; 4];
                    self.character_data(c.encode_utf8(&mut buf))?;
                }
                Event::DocType(_) => {
                    return Err(self.error(
                        self.event_start,
                        "document type declarations (DTDs, entity declarations) are not allowed in update metadata",
                    ));
                }
                Event::Decl(d) => {
                    if let Some(Ok(enc)) = d.encoding() {
                        let enc = String::from_utf8_lossy(&enc).to_ascii_lowercase();
                        if enc != "utf-8" && enc != "utf8" {
                            return Err(self
                                .error(self.event_start, format!("declared encoding {enc:?} is not supported; documents must be UTF-8")));
                        }
                    }
                }
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        if let Some(open) = self.stack.last() {
            let name = self.names[open.name.clone()].to_string();
            return Err(self
                .error(self.doc.len(), format!("document is truncated: <{name}> is not closed")));
        }
        if !self.root_closed {
            return Err(self.error(0, "document is empty: no <upd:Update> element"));
        }
        self.finish()
    }

    fn character_data(&mut self, text: &str) -> Result<(), DocumentError> {
        if self.stack.is_empty() {
            if text.bytes().all(|b| b.is_ascii_whitespace()) {
                return Ok(());
            }
            return Err(self.error(self.event_start, "text outside the root element"));
        }
        for (_, capture) in &mut self.captures {
            capture.text(text);
        }
        if self.want_text {
            self.text.push_str(text);
        }
        Ok(())
    }

    fn start(&mut self, e: &BytesStart<'_>, empty: bool) -> Result<(), DocumentError> {
        let at = self.event_start;
        if self.root_closed {
            return Err(self.error(at, "a second root element follows </upd:Update>"));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error(at, format!("elements nested deeper than {MAX_DEPTH} levels")));
        }
        self.read_attributes(e, at)?;
        let (resolved, local) = self.namespaces.resolve_element(e.name());
        let uri: &[u8] = match resolved {
            ResolveResult::Bound(n) => n.0,
            ResolveResult::Unbound => b"",
            ResolveResult::Unknown(p) => {
                return Err(self.error(
                    at,
                    format!("undeclared namespace prefix {:?}", String::from_utf8_lossy(&p)),
                ));
            }
        };
        let local = validated_str(local.into_inner());
        let in_update_ns = uri == ns::UPDATE;
        let prefix = fragments::fragment_prefix(uri);
        let depth = self.stack.len();
        if depth == 0 && (!in_update_ns || local != "Update") {
            return Err(self.error(
                at,
                format!(
                    "not an update document: the root element is {{{}}}{local}, expected {{{}}}Update",
                    String::from_utf8_lossy(uri),
                    String::from_utf8_lossy(ns::UPDATE)
                ),
            ));
        }
        let name_start = self.names.len();
        self.names.push_str(prefix);
        self.names.push_str(local);
        let is_localized_properties = in_update_ns && local == "LocalizedProperties";
        let name = name_start..self.names.len();

        // FOREIGN_NAMESPACE_RULE: elements outside the msus namespaces (the CBS package manifest,
        // `urn:schemas-microsoft-com:asm.v3`) are copied with their namespace: real WSUS writes
        // `<assembly xmlns="urn:schemas-microsoft-com:asm.v3" ...>` in Core (cbs/ fragments).
        let foreign = !uri.is_empty() && !uri.starts_with(MSUS_NAMESPACES) && uri != ns::XSI;
        let parent_foreign = self
            .stack
            .last()
            .and_then(|f| f.foreign_ns.clone())
            .map(|r| &self.foreign_namespaces.as_bytes()[r]);
        let declare_namespace = foreign && parent_foreign != Some(uri);
        let foreign_ns = if foreign {
            let start = self.foreign_namespaces.len();
            self.foreign_namespaces.push_str(validated_str(uri));
            Some(start..self.foreign_namespaces.len())
        } else {
            None
        };
        let parent = self.stack.last().map(|f| f.role);
        let role = role_of(parent, in_update_ns, local, self.in_handler > 0);
        self.attributes.clear();
        if role == Role::Other && !is_localized_properties && self.captures.len() == 1 {
            // Most elements are rule expressions the model ignores, inside one capture: their
            // attributes go straight into the fragment instead of through `self.attributes`.
            let uri = if declare_namespace { foreign_ns.clone() } else { None };
            self.write_passthrough_start(name.clone(), uri, at)?;
            return self.push_frame(role, foreign_ns, name, at, empty);
        }
        if declare_namespace && let Some(r) = &foreign_ns {
            let uri = self.foreign_namespaces[r.clone()].to_string();
            self.attributes.push("xmlns", false, &uri);
        }
        for raw in &self.raw_attributes {
            match decoded_attribute(&self.namespaces, self.doc, raw) {
                Ok((name, namespaced, value)) => self.attributes.push(name, namespaced, &value),
                Err(message) => return Err(self.error(at, message)),
            }
        }

        self.model_start(role, at)?;

        self.open_captures(role, &name, is_localized_properties, at);
        self.push_frame(role, foreign_ns, name, at, empty)
    }

    /// Fragment captures: a new top-level section, or a LocalizedProperties anywhere. Every
    /// open capture copies the start tag.
    fn open_captures(
        &mut self,
        role: Role,
        name: &Range<usize>,
        is_localized_properties: bool,
        at: usize,
    ) {
        let depth = self.stack.len();
        let target = match role {
            Role::Identity => Some(Target::CoreIdentity),
            Role::Properties => Some(Target::ExtendedProperties),
            Role::Relationships => Some(Target::CoreRelationships),
            Role::Rules => Some(Target::CoreRules),
            Role::Files => Some(Target::ExtendedFiles),
            Role::Handler => Some(Target::ExtendedHandler),
            _ => None,
        }
        .filter(|t| {
            self.sections[*t as usize].is_none() && !self.captures.iter().any(|(c, _)| c == t)
        });
        let element_name = &self.names[name.clone()];
        for (_, capture) in &mut self.captures {
            capture.start(element_name, self.attributes.iter());
        }
        if let Some(target) = target {
            let mut capture = FragmentCapture::new(depth);
            // Sections are mostly copied through: reserve what is left of the document once,
            // rather than growing (and copying) the buffer many times over.
            if target == Target::CoreRules {
                // The rules are most of a Core fragment, up to 46 MB: the Core sections before
                // them go into the same buffer now, so finishing Core needs no second copy.
                let head = self.core_head();
                capture.out.reserve(head.len + self.doc.len() - at);
                for part in self.core_head_parts() {
                    capture.out.push_str(part);
                }
                self.core_seed = Some(head);
            }
            if target == Target::ExtendedProperties {
                let all = self.attributes.owned();
                self.core_properties = Some(fragments::core_properties(&all));
                capture.start("ExtendedProperties", fragments::extended_property_attributes(&all));
                self.properties = Some(all);
            } else {
                capture.start(element_name, self.attributes.iter());
            }
            self.captures.push((target, capture));
        }
        if is_localized_properties {
            let mut capture = FragmentCapture::new(depth);
            capture.start(element_name, self.attributes.iter());
            self.captures.push((Target::Localized, capture));
        }
    }

    fn push_frame(
        &mut self,
        role: Role,
        foreign_ns: Option<Range<usize>>,
        name: Range<usize>,
        at: usize,
        empty: bool,
    ) -> Result<(), DocumentError> {
        self.text.clear();
        self.want_text = matches!(
            role,
            Role::KbArticle
                | Role::SecurityBulletin
                | Role::PropertiesSupportUrl
                | Role::PropertiesLanguage
                | Role::LocalizedField(_)
                | Role::AdditionalDigest
        );
        if role == Role::Handler {
            self.in_handler += 1;
        }
        self.stack.push(Frame { role, foreign_ns, name, start: at });
        if empty {
            self.end()?;
        }
        Ok(())
    }

    /// The start tag of an element only the one open capture needs, attributes decoded straight
    /// into it. `namespace`: a foreign namespace this element declares (`FOREIGN_NAMESPACE_RULE`).
    fn write_passthrough_start(
        &mut self,
        name: Range<usize>,
        namespace: Option<Range<usize>>,
        at: usize,
    ) -> Result<(), DocumentError> {
        let capture = &mut self.captures[0].1;
        capture.open_start_tag(&self.names[name]);
        if let Some(r) = namespace {
            capture.attribute("xmlns", &self.foreign_namespaces[r]);
        }
        for raw in &self.raw_attributes {
            match decoded_attribute(&self.namespaces, self.doc, raw) {
                Ok((name, _, value)) => capture.attribute(name, &value),
                Err(message) => return Err(self.error(at, message)),
            }
        }
        Ok(())
    }

    /// One pass over the start tag's attributes: opens the element's namespace scope with its
    /// declarations and keeps the other attributes' positions for `start`.
    fn read_attributes(&mut self, e: &BytesStart<'_>, at: usize) -> Result<(), DocumentError> {
        // An empty tag opens the scope; the declarations are added from the pass below.
        self.namespaces
            .push(&BytesStart::new(""))
            .map_err(|err| self.error(at, format!("malformed namespace declaration: {err}")))?;
        self.raw_attributes.clear();
        self.scope_declarations.push(0);
        for (i, attr) in e.attributes().enumerate() {
            if i >= MAX_ATTRIBUTES {
                return Err(
                    self.error(at, format!("more than {MAX_ATTRIBUTES} attributes on one element"))
                );
            }
            let attr = attr.map_err(|err| self.error(at, format!("malformed attribute: {err}")))?;
            if let Some(prefix) = attr.key.as_namespace_binding() {
                if self.declarations_in_scope >= MAX_DECLARATIONS_IN_SCOPE {
                    return Err(self.error(
                        at,
                        format!(
                            "more than {MAX_DECLARATIONS_IN_SCOPE} namespace declarations in scope"
                        ),
                    ));
                }
                self.namespaces.add(prefix, Namespace(&attr.value)).map_err(|err| {
                    self.error(at, format!("malformed namespace declaration: {err}"))
                })?;
                self.declarations_in_scope += 1;
                *self.scope_declarations.last_mut().expect("pushed above") += 1;
                continue;
            }
            let (Some(key), Some(value)) = (self.span_of(attr.key.0), self.span_of(&attr.value))
            else {
                return Err(
                    self.error(at, "an attribute the XML reader copied out of the document")
                );
            };
            self.raw_attributes.push((key, value));
        }
        Ok(())
    }

    /// Where `part`, a slice the reader handed out, lies in the document. The reader reads from
    /// the document slice itself and hands out sub-slices (an attribute value with references
    /// is still the raw text), so this is always `Some`; checked rather than assumed.
    fn span_of(&self, part: &[u8]) -> Option<Range<usize>> {
        let start = (part.as_ptr() as usize).checked_sub(self.doc.as_ptr() as usize)?;
        let end = start.checked_add(part.len())?;
        (end <= self.doc.len()).then_some(start..end)
    }

    fn end(&mut self) -> Result<(), DocumentError> {
        let frame = self.stack.pop().expect("quick-xml checks that end tags match start tags");
        let depth = self.stack.len();
        let end_offset = self.reader.buffer_position() as usize;
        let name = &self.names[frame.name.clone()];
        let mut finished = Vec::new();
        let mut i = 0;
        while i < self.captures.len() {
            let (target, capture) = &mut self.captures[i];
            if capture.base_depth == depth && *target == Target::ExtendedProperties {
                capture.end("ExtendedProperties");
            } else {
                capture.end(name);
            }
            if capture.base_depth == depth {
                finished.push(self.captures.remove(i));
            } else {
                i += 1;
            }
        }
        for (target, capture) in finished {
            self.finish_capture(target, capture.out);
        }
        self.names.truncate(frame.name.start);
        if let Some(r) = frame.foreign_ns {
            self.foreign_namespaces.truncate(r.start);
        }
        if frame.role == Role::Handler {
            self.in_handler -= 1;
        }
        self.model_end(frame.role, frame.start..end_offset)?;
        self.want_text = false;
        if depth == 0 {
            self.root_closed = true;
        }
        Ok(())
    }

    fn finish_capture(&mut self, target: Target, out: String) {
        if target == Target::Localized {
            let language =
                self.current_localized.as_ref().map(|l| l.language.clone()).unwrap_or_default();
            if !language.is_empty() && !self.localized_fragments.iter().any(|(l, _)| *l == language)
            {
                self.localized_fragments.push((language, out));
            }
        } else {
            self.sections[target as usize] = Some(out);
        }
    }

    fn guid_attribute(&self, name: &str, at: usize) -> Result<Guid, DocumentError> {
        let v = self
            .attributes
            .get(name)
            .ok_or_else(|| self.error(at, format!("missing attribute {name}")))?;
        Guid::parse(v).map_err(|e| self.error(at, format!("attribute {name}: {e}")))
    }

    fn identity_attribute(
        &self,
        at: usize,
        revision_required: bool,
    ) -> Result<(Guid, Option<i32>), DocumentError> {
        let id = self.guid_attribute("UpdateID", at)?;
        let rev =
            match self.attributes.get("RevisionNumber") {
                Some(v) => Some(v.trim().parse::<i32>().map_err(|_| {
                    self.error(at, format!("RevisionNumber {v:?} is not an integer"))
                })?),
                None if revision_required => {
                    return Err(self.error(at, "missing attribute RevisionNumber"));
                }
                None => None,
            };
        Ok((id, rev))
    }

    fn model_start(&mut self, role: Role, at: usize) -> Result<(), DocumentError> {
        match role {
            Role::Identity if self.identity.is_none() => {
                let (id, rev) = self.identity_attribute(at, true)?;
                self.identity_text = self.attributes.get("UpdateID").map(str::to_string);
                self.identity = Some(UpdateIdentity {
                    update_id: id,
                    revision_number: rev.unwrap_or_default(),
                });
            }
            Role::Installation => self.installation = Some(behavior(&self.attributes)),
            Role::Uninstallation => self.uninstallation = Some(behavior(&self.attributes)),
            Role::Localized => self.current_localized = Some(LocalizedProperties::default()),
            Role::EulaFile => {
                let language = self.attributes.get("Language").map(str::to_string);
                self.eula_language =
                    language.as_deref().unwrap_or_default().trim().to_ascii_lowercase();
                self.eula_languages.extend(language);
            }
            Role::PrerequisiteIdentity => {
                let (id, _) = self.identity_attribute(at, false)?;
                self.prerequisites
                    .push(PrerequisiteClause { update_ids: vec![id], is_category: false });
            }
            Role::PrerequisiteGroup => {
                let is_category = self
                    .attributes
                    .get("IsCategory")
                    .is_some_and(|v| v.trim() == "true" || v.trim() == "1");
                self.prerequisites.push(PrerequisiteClause { update_ids: Vec::new(), is_category });
            }
            Role::PrerequisiteGroupIdentity => {
                let (id, _) = self.identity_attribute(at, false)?;
                if let Some(group) = self.prerequisites.last_mut() {
                    group.update_ids.push(id);
                }
            }
            Role::BundledGroup => self.bundled.push(BundleClause { members: Vec::new() }),
            Role::BundledIdentity => {
                let (id, rev) = self.identity_attribute(at, true)?;
                let member =
                    UpdateIdentity { update_id: id, revision_number: rev.unwrap_or_default() };
                let direct = self.stack.last().is_some_and(|f| f.role == Role::Bundled);
                match self.bundled.last_mut() {
                    Some(group) if !direct => group.members.push(member),
                    _ => self.bundled.push(BundleClause { members: vec![member] }),
                }
            }
            Role::SupersededIdentity => {
                let (id, _) = self.identity_attribute(at, false)?;
                self.superseded.push(id);
            }
            Role::File => self.current_file = Some(self.file_start(at)?),
            Role::AdditionalDigest => {
                self.pending_sha256 = self.attributes.get("Algorithm").map(str::to_string);
            }
            Role::Handler => {
                self.handler_data_type = self
                    .attributes
                    .items
                    .iter()
                    .find(|(n, _, _)| &self.attributes.text[n.clone()] == "type")
                    .map(|(_, _, v)| self.attributes.text[v.clone()].to_string());
            }
            Role::CategoryInformation => {
                if let Some(kind) = self.attributes.get("CategoryType") {
                    self.category_kind = Some(CategoryKind::parse(kind));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A `<upd:File>`: its name, SHA-1 digest and size, checked.
    fn file_start(&self, at: usize) -> Result<UpdateFile, DocumentError> {
        let name = self
            .attributes
            .get("FileName")
            .ok_or_else(|| self.error(at, "File without FileName"))?
            .to_string();
        let algorithm = self.attributes.get("DigestAlgorithm").unwrap_or("SHA1");
        if !algorithm.eq_ignore_ascii_case("SHA1") {
            return Err(
                self.error(at, format!("file {name}: digest algorithm {algorithm:?} is not SHA1"))
            );
        }
        let digest = self
            .attributes
            .get("Digest")
            .ok_or_else(|| self.error(at, format!("file {name} has no Digest")))?;
        let sha1 = Sha1Digest::from_base64(digest)
            .map_err(|e| self.error(at, format!("file {name}: {e}")))?;
        let size_text = self
            .attributes
            .get("Size")
            .ok_or_else(|| self.error(at, format!("file {name} has no Size")))?;
        let size = size_text.trim().parse::<u64>().map_err(|_| {
            self.error(at, format!("file {name}: Size {size_text:?} is not a number"))
        })?;
        if size > MAX_FILE_SIZE {
            return Err(self.error(
                at,
                format!("file {name}: Size {size} is above the {MAX_FILE_SIZE}-byte limit"),
            ));
        }
        Ok(UpdateFile {
            file_name: name,
            size,
            sha1,
            sha256: None,
            modified: self.attributes.get("Modified").map(str::to_string),
            patching_type: self.attributes.get("PatchingType").map(str::to_string),
        })
    }

    fn model_end(&mut self, role: Role, span: Span) -> Result<(), DocumentError> {
        let text = || self.text.trim().to_string();
        match role {
            Role::KbArticle => self.kb_article_ids.push(text()),
            Role::SecurityBulletin => self.security_bulletin_ids.push(text()),
            Role::PropertiesSupportUrl => self.support_url = Some(text()),
            Role::PropertiesLanguage => {
                let language = text().to_ascii_lowercase();
                if self.languages.len() >= MAX_UPDATE_LANGUAGES {
                    return Err(self.error(
                        span.start,
                        format!("more than {MAX_UPDATE_LANGUAGES} Language properties"),
                    ));
                }
                if !language.is_empty() && !self.languages.contains(&language) {
                    self.languages.push(language);
                }
            }
            Role::LocalizedField(field) => {
                let value = Some(self.text.clone());
                if let Some(l) = self.current_localized.as_mut() {
                    match field {
                        LocalizedField::Language => l.language = self.text.clone(),
                        LocalizedField::Title => l.title = value,
                        LocalizedField::Description => l.description = value,
                        LocalizedField::ReleaseNotes => l.release_notes = value,
                        LocalizedField::UninstallNotes => l.uninstall_notes = value,
                        LocalizedField::MoreInfoUrl => l.more_info_url = value,
                        LocalizedField::SupportUrl => l.support_url = value,
                    }
                }
            }
            Role::Localized => {
                if let Some(l) = self.current_localized.take() {
                    self.language_elements.push(LanguageElement {
                        language: l.language.trim().to_ascii_lowercase(),
                        eula: false,
                        span,
                    });
                    self.localized.push(l);
                }
            }
            Role::EulaFile => {
                self.language_elements.push(LanguageElement {
                    language: std::mem::take(&mut self.eula_language),
                    eula: true,
                    span,
                });
            }
            Role::AdditionalDigest => {
                let algorithm = self.pending_sha256.take().unwrap_or_default();
                if algorithm.eq_ignore_ascii_case("SHA256") {
                    let digest = Sha256Digest::from_base64(&self.text)
                        .map_err(|e| self.error(span.start, e.to_string()))?;
                    if let Some(f) = self.current_file.as_mut() {
                        f.sha256 = Some(digest);
                    }
                }
            }
            Role::File => {
                if let Some(f) = self.current_file.take() {
                    self.files.push(f);
                }
            }
            Role::Rules if self.applicability_rules.is_none() => {
                self.applicability_rules = Some(span)
            }
            Role::Handler if self.handler_specific_data.is_none() => {
                self.handler_specific_data = Some(span)
            }
            Role::UnknownTop => {
                let name = self.names_of_unknown(&span);
                self.unknown_elements.push((name, span));
            }
            _ => {}
        }
        Ok(())
    }

    fn names_of_unknown(&self, span: &Span) -> String {
        // The qualified name as written, for messages; the span itself is the data.
        let tag = &self.doc[span.start + 1..span.end];
        let end = tag
            .iter()
            .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
            .unwrap_or(tag.len());
        String::from_utf8_lossy(&tag[..end]).into_owned()
    }

    fn finish(&mut self) -> Result<ParsedUpdate, DocumentError> {
        let identity = self.identity.ok_or_else(|| self.error(0, "no UpdateIdentity"))?;
        let properties = self.properties.take().ok_or_else(|| self.error(0, "no Properties"))?;
        let get = |name: &str| {
            properties
                .iter()
                .find(|(n, namespaced, _)| !namespaced && n == name)
                .map(|(_, _, v)| v.clone())
        };
        let type_text =
            get("UpdateType").ok_or_else(|| self.error(0, "Properties has no UpdateType"))?;
        let update_type = UpdateType::parse(&type_text)
            .ok_or_else(|| self.error(0, format!("unknown UpdateType {type_text:?}")))?;
        let known = [
            "UpdateType",
            "DefaultPropertiesLanguage",
            "Handler",
            "PublicationState",
            "CreationDate",
            "ExplicitlyDeployable",
            "MsrcSeverity",
            "MaxDownloadSize",
            "EulaID",
        ];
        let max_download_size =
            match get("MaxDownloadSize") {
                Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                    self.error(0, format!("MaxDownloadSize {v:?} is not a number"))
                })?),
                None => None,
            };
        let eula_id = match get("EulaID") {
            Some(v) => Some(Guid::parse(&v).map_err(|e| self.error(0, format!("EulaID: {e}")))?),
            None => None,
        };
        let update = Update {
            identity,
            update_type,
            category_kind: if update_type == UpdateType::Category {
                self.category_kind.take()
            } else {
                None
            },
            default_language: get("DefaultPropertiesLanguage"),
            handler: get("Handler"),
            publication_state: get("PublicationState"),
            creation_date: get("CreationDate"),
            explicitly_deployable: get("ExplicitlyDeployable").is_some_and(|v| v == "true"),
            msrc_severity: get("MsrcSeverity"),
            kb_article_ids: std::mem::take(&mut self.kb_article_ids),
            languages: std::mem::take(&mut self.languages),
            security_bulletin_ids: std::mem::take(&mut self.security_bulletin_ids),
            support_url: self.support_url.take(),
            max_download_size,
            installation: self.installation.take(),
            uninstallation: self.uninstallation.take(),
            eula_id,
            eula_languages: std::mem::take(&mut self.eula_languages),
            language_elements: std::mem::take(&mut self.language_elements),
            other_property_attributes: properties
                .iter()
                .filter(|(n, namespaced, _)| *namespaced || !known.contains(&n.as_str()))
                .map(|(n, _, v)| (n.clone(), v.clone()))
                .collect(),
            prerequisites: std::mem::take(&mut self.prerequisites),
            bundled_updates: std::mem::take(&mut self.bundled),
            superseded_update_ids: std::mem::take(&mut self.superseded),
            files: std::mem::take(&mut self.files),
            localized: std::mem::take(&mut self.localized),
            handler_data_type: self.handler_data_type.take(),
            applicability_rules: self.applicability_rules.take(),
            handler_specific_data: self.handler_specific_data.take(),
            unknown_elements: std::mem::take(&mut self.unknown_elements),
        };

        let fragments = self.take_fragments();
        Ok(ParsedUpdate { update, fragments })
    }

    /// The three fragment kinds, from the sections written while parsing.
    fn take_fragments(&mut self) -> Fragments {
        let take = |s: &mut Option<String>| s.take().unwrap_or_default();
        let rules = take(&mut self.sections[Target::CoreRules as usize]);
        let core = match self.core_seed {
            // Nothing before the rules changed after they started: the buffer is the fragment.
            Some(seed) if seed == self.core_head() => rules,
            seed => {
                let rules = &rules[seed.map_or(0, |s| s.len)..];
                let mut core = String::with_capacity(self.core_head().len + rules.len());
                for part in self.core_head_parts() {
                    core.push_str(part);
                }
                core.push_str(rules);
                core
            }
        };
        let mut extended = take(&mut self.sections[Target::ExtendedProperties as usize]);
        extended.push_str(&take(&mut self.sections[Target::ExtendedFiles as usize]));
        extended.push_str(&take(&mut self.sections[Target::ExtendedHandler as usize]));
        Fragments { core, extended, localized: std::mem::take(&mut self.localized_fragments) }
    }
}

/// One attribute of the current start tag (a pair of `Parser::raw_attributes`) as (local name,
/// namespaced, decoded value); `Err` is the message for a prefix without a declaration or a bad
/// reference. A free function over what it reads, so callers can write elsewhere in the parser.
/// (Inlined by force: it runs for every attribute, and left alone it cost 5% of parsing.)
#[inline(always)]
fn decoded_attribute<'p>(
    namespaces: &'p NamespaceResolver,
    doc: &'p [u8],
    (key, raw_value): &(Range<usize>, Range<usize>),
) -> Result<(&'p str, bool, Cow<'p, str>), String> {
    let (attr_ns, attr_local) = namespaces.resolve_attribute(QName(&doc[key.clone()]));
    let namespaced = match attr_ns {
        ResolveResult::Bound(_) => true,
        ResolveResult::Unbound => false,
        ResolveResult::Unknown(p) => {
            return Err(format!(
                "undeclared namespace prefix {:?} on an attribute",
                String::from_utf8_lossy(&p)
            ));
        }
    };
    let name = validated_str(attr_local.into_inner());
    let value = xml::decode_attribute_text(validated_str(&doc[raw_value.clone()]))
        .map_err(|err| format!("attribute {name}: {err}"))?;
    Ok((name, namespaced, value))
}

/// Which Core sections before the rules (identity, properties, relationships) exist, and
/// their length together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CoreHead {
    present: [bool; 3],
    len: usize,
}

impl Parser<'_> {
    fn core_head_parts(&self) -> [&str; 3] {
        [
            self.sections[Target::CoreIdentity as usize].as_deref().unwrap_or_default(),
            self.core_properties.as_deref().unwrap_or_default(),
            self.sections[Target::CoreRelationships as usize].as_deref().unwrap_or_default(),
        ]
    }

    fn core_head(&self) -> CoreHead {
        let present = [
            self.sections[Target::CoreIdentity as usize].is_some(),
            self.core_properties.is_some(),
            self.sections[Target::CoreRelationships as usize].is_some(),
        ];
        CoreHead { present, len: self.core_head_parts().iter().map(|p| p.len()).sum() }
    }
}

fn behavior(attributes: &Attributes) -> Behavior {
    Behavior {
        attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

/// Reads the text of a document span (for verbatim parts such as applicability rules).
pub fn span_text<'d>(document: &'d [u8], span: &Span) -> Cow<'d, str> {
    String::from_utf8_lossy(&document[span.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"<upd:Update xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update"><upd:UpdateIdentity UpdateID="ccb78947-6453-4ecc-9de8-bc0305c98f2d" RevisionNumber="200" /><upd:Properties UpdateType="Software" /></upd:Update>"#;

    fn err(doc: &str) -> DocumentError {
        parse_update(doc.as_bytes()).expect_err("document should be refused")
    }

    /// Core is identity, properties, relationships, rules, whatever the document's order; the
    /// rules buffer starts with what came before it, so a later section must not be lost.
    #[test]
    fn core_keeps_its_order_when_relationships_follow_the_rules() {
        let identity = r#"<upd:UpdateIdentity UpdateID="ccb78947-6453-4ecc-9de8-bc0305c98f2d" RevisionNumber="200" />"#;
        let properties = r#"<upd:Properties UpdateType="Software" />"#;
        let relationships = r#"<upd:Relationships><upd:Prerequisites><upd:UpdateIdentity UpdateID="59653007-e2e9-4f71-8525-2ff588527978" /></upd:Prerequisites></upd:Relationships>"#;
        let rules = r#"<upd:ApplicabilityRules><upd:IsInstalled><bar:RegValueExists Key="HKEY_LOCAL_MACHINE" Subkey="S" /></upd:IsInstalled></upd:ApplicabilityRules>"#;
        let doc = |parts: &[&str]| {
            format!(
                r#"<upd:Update xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update" xmlns:bar="http://schemas.microsoft.com/msus/2002/12/BaseApplicabilityRules">{}</upd:Update>"#,
                parts.concat()
            )
        };
        let usual =
            parse_update(doc(&[identity, properties, relationships, rules]).as_bytes()).unwrap();
        assert!(
            usual.fragments.core.starts_with("<UpdateIdentity ")
                && usual.fragments.core.ends_with("</ApplicabilityRules>")
        );
        for order in [
            [identity, properties, rules, relationships],
            [rules, identity, relationships, properties],
        ] {
            let reordered = parse_update(doc(&order).as_bytes()).unwrap();
            assert_eq!(reordered.fragments.core, usual.fragments.core);
        }
    }

    #[test]
    fn duplicate_attributes_are_refused_in_model_and_rule_elements() {
        let update = |inner: &str| {
            format!(
                r#"<upd:Update xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update" xmlns:bar="http://schemas.microsoft.com/msus/2002/12/BaseApplicabilityRules"><upd:UpdateIdentity UpdateID="ccb78947-6453-4ecc-9de8-bc0305c98f2d" RevisionNumber="200" /><upd:Properties UpdateType="Software" />{inner}</upd:Update>"#
            )
        };
        let model = err(&update(
            r#"<upd:Files><upd:File FileName="a.cab" FileName="b.cab" Digest="x" Size="1" /></upd:Files>"#,
        ));
        assert!(model.message.contains("duplicated attribute"), "{model}");
        let rule = err(&update(
            r#"<upd:ApplicabilityRules><upd:IsInstalled><bar:RegKeyExists Key="HKEY_LOCAL_MACHINE" Key="x" /></upd:IsInstalled></upd:ApplicabilityRules>"#,
        ));
        assert!(rule.message.contains("duplicated attribute"), "{rule}");
        // Same local name, different prefixes: not duplicates.
        assert!(parse_update(update(r#"<upd:ApplicabilityRules><upd:IsInstalled><bar:RegKeyExists Key="HKEY_LOCAL_MACHINE" bar:Key="x" /></upd:IsInstalled></upd:ApplicabilityRules>"#).as_bytes()).is_ok());
    }

    /// The parser keeps namespace scopes itself (one pass over each tag's attributes): a
    /// declaration is visible on its own element and inside it, never after it ends.
    #[test]
    fn namespace_declarations_last_until_their_element_ends() {
        let update = |rules: &str| {
            format!(
                r#"<upd:Update xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update"><upd:UpdateIdentity UpdateID="ccb78947-6453-4ecc-9de8-bc0305c98f2d" RevisionNumber="200" /><upd:Properties UpdateType="Software" /><upd:ApplicabilityRules>{rules}</upd:ApplicabilityRules></upd:Update>"#
            )
        };
        let base =
            r#"xmlns:bar="http://schemas.microsoft.com/msus/2002/12/BaseApplicabilityRules""#;
        let ok = parse_update(
            update(&format!(r#"<upd:IsInstalled><bar:True {base} /></upd:IsInstalled>"#))
                .as_bytes(),
        )
        .unwrap();
        assert!(
            ok.fragments.core.ends_with(
                "<ApplicabilityRules><IsInstalled><b.True /></IsInstalled></ApplicabilityRules>"
            ),
            "{}",
            ok.fragments.core
        );

        for rules in [
            // Declared on an empty element, used by its sibling.
            format!(r#"<upd:IsInstalled><bar:True {base} /><bar:False /></upd:IsInstalled>"#),
            // Declared on an element with content, used after it closed.
            format!(
                r#"<upd:IsInstalled><bar:And {base}><bar:True /></bar:And><bar:False /></upd:IsInstalled>"#
            ),
            // Declared on a parent, its attribute prefix used after the parent closed.
            format!(
                r#"<upd:IsInstalled {base}><bar:True /></upd:IsInstalled><upd:IsInstallable bar:x="1" />"#
            ),
        ] {
            let e = err(&update(&rules));
            assert!(e.message.contains("undeclared namespace prefix \"bar\""), "{rules}: {e}");
        }
        let e = err(&update(r#"<upd:IsInstalled xmlns:xml="urn:not-xml" />"#));
        assert!(e.message.contains("malformed namespace declaration"), "{e}");
    }

    #[test]
    fn minimal_document_parses() {
        let p = parse_update(MINIMAL.as_bytes()).unwrap();
        assert_eq!(p.update.identity.revision_number, 200);
        assert_eq!(
            p.fragments.core,
            r#"<UpdateIdentity UpdateID="ccb78947-6453-4ecc-9de8-bc0305c98f2d" RevisionNumber="200" /><Properties UpdateType="Software" />"#
        );
        assert_eq!(p.fragments.extended, "<ExtendedProperties />");
    }

    #[test]
    fn truncated_document_names_the_update_and_the_offset() {
        let cut = &MINIMAL[..MINIMAL.len() - 20];
        let e = err(cut);
        assert_eq!(e.update_id.as_deref(), Some("ccb78947-6453-4ecc-9de8-bc0305c98f2d"));
        assert!(e.message.contains("truncated") || e.message.contains("malformed"), "{e}");
    }

    #[test]
    fn entity_declarations_are_refused() {
        let doc = format!("<!DOCTYPE x [<!ENTITY big \"aaaa\">]>{MINIMAL}");
        assert!(err(&doc).message.contains("DTD"), "{}", err(&doc));
        let with_ref = MINIMAL.replace("UpdateType=\"Software\"", "UpdateType=\"&big;\"");
        assert!(err(&with_ref).message.contains("undeclared entity"));
    }

    #[test]
    fn unknown_root_namespace_is_refused() {
        let doc = MINIMAL.replace("msus/2002/12/Update\"", "example.org/other\"");
        assert!(err(&doc).message.contains("not an update document"));
    }

    #[test]
    fn oversized_document_is_refused_before_parsing() {
        let big = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert!(parse_update(&big).unwrap_err().message.contains("limit"));
    }

    /// Regression: quick-xml checks each attribute against every one before it, and names are
    /// resolved against every declaration in scope; both are bounded so no document is quadratic.
    #[test]
    fn attributes_and_namespace_declarations_are_bounded() {
        let many: String = (0..50_000).map(|i| format!(" a{i}=\"\"")).collect();
        let doc =
            MINIMAL.replace("</upd:Update>", &format!("<upd:Properties{many}/></upd:Update>"));
        assert!(err(&doc).message.contains("attributes on one element"), "{}", err(&doc));
        let nested: String = (0..100)
            .map(|i| format!("<p{i}:e xmlns:p{i}=\"urn:{i}\" xmlns:q{i}=\"urn:{i}\">"))
            .collect();
        let closed: String = (0..100).rev().map(|i| format!("</p{i}:e>")).collect();
        let doc = MINIMAL.replace("</upd:Update>", &format!("{nested}{closed}</upd:Update>"));
        assert!(err(&doc).message.contains("namespace declarations in scope"), "{}", err(&doc));
        // Declarations that went out of scope do not count.
        let siblings: String = (0..1000).map(|i| format!("<p:e xmlns:p=\"urn:{i}\"/>")).collect();
        let doc = MINIMAL.replace(
            "</upd:Update>",
            &format!("<upd:Properties>{siblings}</upd:Properties></upd:Update>"),
        );
        assert!(
            !parse_update(doc.as_bytes()).is_err_and(|e| e.message.contains("namespace")),
            "siblings are fine"
        );
    }

    #[test]
    fn second_root_and_stray_text_are_refused() {
        assert!(err(&format!("{MINIMAL}{MINIMAL}")).message.contains("second root"));
        assert!(err(&format!("{MINIMAL}junk")).message.contains("outside the root"));
    }

    /// Found by fuzzing: with a byte-order mark, the model's spans pointed 3 bytes before the
    /// elements they name in the document as given.
    #[test]
    fn spans_point_into_the_document_as_given_byte_order_mark_and_all() {
        let doc = MINIMAL.replace(
            "</upd:Update>",
            "<upd:ApplicabilityRules><upd:IsInstalled><x/></upd:IsInstalled></upd:ApplicabilityRules></upd:Update>",
        );
        for document in [doc.clone().into_bytes(), [&b"\xEF\xBB\xBF"[..], doc.as_bytes()].concat()]
        {
            let p = parse_update(&document).unwrap();
            let span = p.update.applicability_rules.clone().expect("rules");
            assert!(
                span_text(&document, &span).starts_with("<upd:ApplicabilityRules>"),
                "{}",
                span_text(&document, &span)
            );
        }
    }

    #[test]
    fn a_file_size_beyond_a_tebibyte_is_refused() {
        let file = |size: &str| {
            MINIMAL.replace(
            "</upd:Update>",
            &format!(r#"<upd:Files><upd:File Digest="AAAAAAAAAAAAAAAAAAAAAAAAAAA=" FileName="a.cab" Size="{size}" /></upd:Files></upd:Update>"#),
        )
        };
        assert!(parse_update(file("1099511627776").as_bytes()).is_ok());
        assert!(err(&file("18446744073709551615")).message.contains("limit"));
    }

    #[test]
    fn invalid_utf8_is_refused_with_its_offset() {
        let mut doc = MINIMAL.as_bytes().to_vec();
        doc[5] = 0xff;
        assert_eq!(parse_update(&doc).unwrap_err().offset, 5);
    }

    #[test]
    fn cbs_manifest_keeps_its_own_namespace_as_real_wsus_does() {
        // Shape of cbs/cbs-rollupfix-core-reduced.xml: the manifest under CbsPackageApplicabilityMetadata
        // keeps xmlns="urn:schemas-microsoft-com:asm.v3" on its top element only.
        let doc = MINIMAL.replace(
            "</upd:Update>",
            r#"<upd:ApplicabilityRules><upd:Metadata><cbsar:CbsPackageApplicabilityMetadata xmlns:cbsar="http://schemas.microsoft.com/msus/2002/12/CbsApplicabilityRules"><assembly xmlns="urn:schemas-microsoft-com:asm.v3" manifestVersion="1.0"><assemblyIdentity name="Package_for_RollupFix" /><package identifier="KB5026368"></package></assembly></cbsar:CbsPackageApplicabilityMetadata></upd:Metadata></upd:ApplicabilityRules></upd:Update>"#,
        );
        let p = parse_update(doc.as_bytes()).unwrap();
        assert!(
            p.fragments.core.ends_with(r#"<ApplicabilityRules><Metadata><CbsPackageApplicabilityMetadata><assembly xmlns="urn:schemas-microsoft-com:asm.v3" manifestVersion="1.0"><assemblyIdentity name="Package_for_RollupFix" /><package identifier="KB5026368" /></assembly></CbsPackageApplicabilityMetadata></Metadata></ApplicabilityRules>"#),
            "{}",
            p.fragments.core
        );
    }

    #[test]
    fn file_sizes_are_64_bit() {
        let doc = MINIMAL.replace(
            "</upd:Update>",
            r#"<upd:Files><upd:File Digest="h/W9BGlYUAaqXTp30cZi/SiV3c0=" DigestAlgorithm="SHA1" FileName="install.wim" Size="8873450114" /></upd:Files></upd:Update>"#,
        );
        let p = parse_update(doc.as_bytes()).unwrap();
        assert_eq!(p.update.files[0].size, 8_873_450_114);
    }
}
