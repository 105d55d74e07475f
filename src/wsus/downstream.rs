//! MS-WSUSSS, the downstream's side: the requests a DSS sends (as WSUS 10 sends them) and readers
//! for the answers of Microsoft Update or a WSUS upstream. Answers are read by element name, in
//! any order (MU and WSUS order GetConfigData's fields differently).

use super::client::WireCookie;
use super::server_sync::{ConfigData, DSS_AUTH_NS, Language, PROTOCOL_VERSION, SERVER_SYNC_NS};
use super::soap::Writer;
use super::tree::{self, Element};
use crate::catalog::Guid;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// Decompressed update documents larger than this are refused (the largest real one is 46 MB).
pub const MAX_DOCUMENT_BYTES: usize = 512 << 20;

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>{body}</soap:Body></soap:Envelope>"
    )
}

/// SOAPAction of a ServerSync operation.
pub fn action(op: &str) -> String {
    format!("\"{SERVER_SYNC_NS}/{op}\"")
}

pub fn dss_auth_action() -> String {
    format!("\"{DSS_AUTH_NS}/GetAuthorizationCookie\"")
}

fn write_cookie(w: &mut Writer, cookie: &WireCookie) {
    w.open("cookie").raw("Expiration", &cookie.expiration);
    if let Some(d) = &cookie.data {
        w.raw("EncryptedData", &B64.encode(d));
    }
    w.close("cookie");
}

pub fn get_auth_config() -> String {
    envelope(&format!("<GetAuthConfig xmlns=\"{SERVER_SYNC_NS}\" />"))
}

pub fn get_authorization_cookie(account_name: &str, account_guid: &Guid) -> String {
    let mut w = Writer::default();
    w.open_ns("GetAuthorizationCookie", DSS_AUTH_NS)
        .text("accountName", account_name)
        .raw("accountGuid", &account_guid.to_string());
    w.close("GetAuthorizationCookie");
    envelope(&w.out)
}

pub fn get_cookie(auth_cookie: &[u8], old_cookie: Option<&WireCookie>) -> String {
    let mut w = Writer::default();
    w.open_ns("GetCookie", SERVER_SYNC_NS)
        .open("authCookies")
        .open("AuthorizationCookie")
        .raw("PlugInId", "DssTargeting");
    w.raw("CookieData", &B64.encode(auth_cookie)).close("AuthorizationCookie").close("authCookies");
    if let Some(old) = old_cookie {
        w.open("oldCookie").raw("Expiration", &old.expiration);
        if let Some(d) = &old.data {
            w.raw("EncryptedData", &B64.encode(d));
        }
        w.close("oldCookie");
    }
    w.text("protocolVersion", PROTOCOL_VERSION).close("GetCookie");
    envelope(&w.out)
}

pub fn get_config_data(cookie: &WireCookie, anchor: Option<&str>) -> String {
    let mut w = Writer::default();
    w.open_ns("GetConfigData", SERVER_SYNC_NS);
    write_cookie(&mut w, cookie);
    if let Some(a) = anchor {
        w.text("configAnchor", a);
    }
    w.close("GetConfigData");
    envelope(&w.out)
}

/// A GetRevisionIdList filter: the configuration pass, or products × classifications.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub anchor: Option<&'a str>,
    pub get_config: bool,
    /// (GUID, Delta): Delta true when the item was in the filter the anchor belongs to.
    pub categories: &'a [(Guid, bool)],
    pub classifications: &'a [(Guid, bool)],
    /// (LCID, Delta) of the languages wanted; empty: every language.
    pub languages: &'a [(i32, bool)],
}

pub fn get_revision_id_list(cookie: &WireCookie, f: &Filter<'_>) -> String {
    let mut w = Writer::default();
    w.open_ns("GetRevisionIdList", SERVER_SYNC_NS);
    write_cookie(&mut w, cookie);
    w.open("filter");
    if let Some(a) = f.anchor {
        w.text("Anchor", a);
    }
    w.bool("GetConfig", f.get_config).bool("Get63LanguageOnly", false);
    for (name, list) in [("Categories", f.categories), ("Classifications", f.classifications)] {
        if list.is_empty() {
            continue;
        }
        w.open(name);
        for (id, delta) in list {
            w.open("IdAndDelta")
                .raw("Id", &id.to_string())
                .bool("Delta", *delta)
                .close("IdAndDelta");
        }
        w.close(name);
    }
    if !f.languages.is_empty() {
        w.open("Languages");
        for (id, delta) in f.languages {
            w.open("LanguageAndDelta")
                .int("Id", *id as i64)
                .bool("Delta", *delta)
                .close("LanguageAndDelta");
        }
        w.close("Languages");
    }
    w.close("filter").close("GetRevisionIdList");
    envelope(&w.out)
}

pub fn get_update_data(cookie: &WireCookie, ids: &[(Guid, i32)]) -> String {
    let mut w = Writer::with_capacity(512 + ids.len() * 130);
    w.open_ns("GetUpdateData", SERVER_SYNC_NS);
    write_cookie(&mut w, cookie);
    w.open("updateIds");
    for (id, rev) in ids {
        w.open("UpdateIdentity")
            .raw("UpdateID", &id.to_string())
            .int("RevisionNumber", *rev as i64)
            .close("UpdateIdentity");
    }
    w.close("updateIds").close("GetUpdateData");
    envelope(&w.out)
}

// ---------------------------------------------------------------- answers

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer is not XML: {0}")]
    Xml(String),
    #[error("SOAP fault {code}: {message}")]
    Fault { code: String, message: String },
    #[error("the answer lacks {0}")]
    Missing(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<tree::XmlError> for AnswerError {
    fn from(e: tree::XmlError) -> Self {
        AnswerError::Xml(e.to_string())
    }
}

impl AnswerError {
    /// The WSUS ErrorCode of a fault, if this is one.
    pub fn fault_code(&self) -> Option<&str> {
        match self {
            AnswerError::Fault { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The result element of an answer, or its fault.
fn result_of<'a>(root: &'a Element, op: &str) -> Result<&'a Element, AnswerError> {
    super::agent::result_of(root, op).map_err(|e| match e {
        super::agent::AnswerError::Fault { code, message } => AnswerError::Fault { code, message },
        other => AnswerError::Missing(other.to_string()),
    })
}

fn text<'a>(e: &'a Element, name: &str) -> Result<&'a str, AnswerError> {
    e.child_text(name).ok_or_else(|| AnswerError::Missing(name.to_string()))
}

pub fn read_auth_config(xml: &[u8]) -> Result<String, AnswerError> {
    let root = tree::parse(xml)?;
    let r = result_of(&root, "GetAuthConfig")?;
    let info = r.child("AuthInfo").and_then(|a| {
        a.items().find(|p| {
            p.child_text("PlugInID").is_some_and(|id| id.eq_ignore_ascii_case("DssTargeting"))
        })
    });
    let url = info
        .and_then(|i| i.child_text("ServiceUrl"))
        .ok_or_else(|| AnswerError::Missing("a DssTargeting AuthPlugInInfo".into()))?;
    Ok(url.to_string())
}

pub fn read_authorization_cookie(xml: &[u8]) -> Result<Vec<u8>, AnswerError> {
    let root = tree::parse(xml)?;
    let r = result_of(&root, "GetAuthorizationCookie")?;
    B64.decode(text(r, "CookieData")?)
        .map_err(|_| AnswerError::Invalid("CookieData is not base64".into()))
}

pub fn read_cookie(xml: &[u8]) -> Result<WireCookie, AnswerError> {
    let root = tree::parse(xml)?;
    let r = result_of(&root, "GetCookie")?;
    let data = B64
        .decode(text(r, "EncryptedData")?)
        .map_err(|_| AnswerError::Invalid("EncryptedData is not base64".into()))?;
    Ok(WireCookie { expiration: text(r, "Expiration")?.to_string(), data: Some(data) })
}

pub fn read_config_data(xml: &[u8]) -> Result<ConfigData, AnswerError> {
    let root = tree::parse(xml)?;
    let r = result_of(&root, "GetConfigData")?;
    let flag = |name: &str| r.child_text(name).is_some_and(|v| v == "true" || v == "1");
    let int = |name: &str, default: i32| {
        r.child_text(name).and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let languages = r
        .child("LanguageUpdateList")
        .map(|l| {
            l.items()
                .map(|x| Language {
                    id: x.child_text("LanguageID").and_then(|v| v.parse().ok()).unwrap_or(-1),
                    short: x.child_text("ShortLanguage").unwrap_or_default().to_string(),
                    long: x.child_text("LongLanguage").unwrap_or_default().to_string(),
                    enabled: x.child_text("Enabled") == Some("true"),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ConfigData {
        catalog_only_sync: flag("CatalogOnlySync"),
        lazy_sync: flag("LazySync"),
        hosts_psf_files: flag("ServerHostsPsfFiles"),
        max_updates_per_request: int("MaxNumberOfUpdatesPerRequest", 100).clamp(1, 10_000),
        new_anchor: r.child_text("NewConfigAnchor").unwrap_or_default().to_string(),
        protocol_version: r.child_text("ProtocolVersion").unwrap_or_default().to_string(),
        languages,
        max_decryption_per_request: int("MaxUpdatesPerRequestInGetUpdateDecryptionData", 100),
    })
}

/// A GetRevisionIdList answer: the new anchor and the revisions. Read as a stream, since real
/// answers run to megabytes (24,509 identities in one body).
pub fn read_revision_id_list(xml: &[u8]) -> Result<(String, Vec<(Guid, i32)>), AnswerError> {
    let text = std::str::from_utf8(xml).map_err(|_| AnswerError::Xml("not UTF-8".into()))?;
    let mut reader = Reader::from_str(text);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut anchor: Option<String> = None;
    let mut ids = Vec::new();
    let (mut id, mut rev): (Option<Guid>, Option<i32>) = (None, None);
    let mut saw_result = false;
    let mut current = String::new();
    loop {
        match reader
            .read_event()
            .map_err(|e| AnswerError::Xml(format!("at byte {}: {e}", reader.error_position())))?
        {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_vec();
                if name == b"Fault" {
                    // Faults are small: read them with the tree reader.
                    let root = tree::parse(xml)?;
                    return Err(result_of(&root, "GetRevisionIdList")
                        .err()
                        .unwrap_or(AnswerError::Missing("the result".into())));
                }
                saw_result |= name == b"GetRevisionIdListResult";
                path.push(name);
                current.clear();
            }
            Event::Empty(e) => saw_result |= e.local_name().as_ref() == b"GetRevisionIdListResult",
            Event::Text(t) => current.push_str(
                std::str::from_utf8(&t).map_err(|_| AnswerError::Xml("not UTF-8".into()))?,
            ),
            Event::GeneralRef(r) => {
                let name =
                    std::str::from_utf8(&r).map_err(|_| AnswerError::Xml("not UTF-8".into()))?;
                current.push(
                    crate::catalog::xml::resolve_reference(name)
                        .map_err(|e| AnswerError::Xml(e.to_string()))?,
                );
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let parent = path.last().map(Vec::as_slice);
                match (name.as_slice(), parent) {
                    (b"Anchor", Some(b"GetRevisionIdListResult")) => {
                        anchor = Some(current.trim().to_string())
                    }
                    (b"UpdateID", Some(b"UpdateIdentity")) => {
                        id = Some(Guid::parse(current.trim()).map_err(|_| {
                            AnswerError::Invalid(format!("UpdateID {:?}", current.trim()))
                        })?)
                    }
                    (b"RevisionNumber", Some(b"UpdateIdentity")) => {
                        rev = Some(current.trim().parse().map_err(|_| {
                            AnswerError::Invalid(format!("RevisionNumber {:?}", current.trim()))
                        })?)
                    }
                    (b"UpdateIdentity", _) => match (id.take(), rev.take()) {
                        (Some(i), Some(r)) => ids.push((i, r)),
                        _ => {
                            return Err(AnswerError::Invalid(
                                "an UpdateIdentity without UpdateID or RevisionNumber".into(),
                            ));
                        }
                    },
                    _ => {}
                }
                current.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_result {
        return Err(AnswerError::Missing("GetRevisionIdListResult".into()));
    }
    Ok((anchor.unwrap_or_default(), ids))
}

/// One update of a GetUpdateData answer.
#[derive(Debug, Clone)]
pub struct UpdateData {
    pub id: Guid,
    pub revision: i32,
    /// The full `<upd:Update>` document (from the plain or the compressed blob).
    pub document: String,
    pub file_digests: Vec<Vec<u8>>,
}

/// Where a file of a GetUpdateData answer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUrl {
    pub digest: Vec<u8>,
    pub mu_url: Option<String>,
    pub uss_url: Option<String>,
}

/// The first element named `name`, depth first.
fn find_mut<'a>(e: &'a mut Element, name: &str) -> Option<&'a mut Element> {
    if &*e.name == name {
        return Some(e);
    }
    e.children.iter_mut().find_map(|c| find_mut(c, name))
}

pub fn read_update_data(xml: &[u8]) -> Result<(Vec<UpdateData>, Vec<FileUrl>), AnswerError> {
    let mut root = tree::parse(xml)?;
    // Plain documents are moved out of the tree, not copied: one can be 46 MB.
    let mut plain_documents: Vec<String> = find_mut(&mut root, "GetUpdateDataResult")
        .and_then(|r| r.children.iter_mut().find(|c| &*c.name == "updates"))
        .map(|updates| {
            updates
                .children
                .iter_mut()
                .filter(|u| !u.is_nil())
                .map(|u| {
                    u.children
                        .iter_mut()
                        .find(|c| &*c.name == "XmlUpdateBlob" && !c.is_nil())
                        .map(|b| std::mem::take(&mut b.text))
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    let r = result_of(&root, "GetUpdateData")?;
    let mut updates = Vec::new();
    let items = r.child("updates").map(|u| u.items().collect::<Vec<_>>()).unwrap_or_default();
    for (index, u) in items.into_iter().enumerate() {
        let id = u.child("Id").ok_or_else(|| AnswerError::Missing("Id".into()))?;
        let guid = Guid::parse(text(id, "UpdateID")?)
            .map_err(|_| AnswerError::Invalid("UpdateID".into()))?;
        let revision: i32 = text(id, "RevisionNumber")?
            .parse()
            .map_err(|_| AnswerError::Invalid("RevisionNumber".into()))?;
        let plain = plain_documents.get_mut(index).map(std::mem::take).unwrap_or_default();
        let document = match (plain, u.child_text("XmlUpdateBlobCompressed")) {
            (plain, _) if !plain.is_empty() => plain,
            (_, Some(compressed)) => {
                let cab = B64
                    .decode(compressed.split_ascii_whitespace().collect::<String>())
                    .map_err(|_| {
                        AnswerError::Invalid(format!(
                            "update {guid}/{revision}: XmlUpdateBlobCompressed is not base64"
                        ))
                    })?;
                super::cab::blob_document(&cab)
                    .map_err(|e| AnswerError::Invalid(format!("update {guid}/{revision}: {e}")))?
            }
            _ => {
                return Err(AnswerError::Missing(format!(
                    "the document of update {guid}/{revision}"
                )));
            }
        };
        let file_digests = u
            .child("FileDigestList")
            .map(|l| l.items().map(|d| B64.decode(d.text.trim())).collect::<Result<Vec<_>, _>>())
            .transpose()
            .map_err(|_| {
                AnswerError::Invalid(format!(
                    "update {guid}/{revision}: a FileDigest is not base64"
                ))
            })?
            .unwrap_or_default();
        updates.push(UpdateData { id: guid, revision, document, file_digests });
    }
    let mut files = Vec::new();
    for f in r.child("fileUrls").map(|u| u.items().collect::<Vec<_>>()).unwrap_or_default() {
        let digest = B64
            .decode(text(f, "FileDigest")?)
            .map_err(|_| AnswerError::Invalid("FileDigest is not base64".into()))?;
        let url = |name: &str| f.child_text(name).filter(|u| !u.is_empty()).map(str::to_string);
        files.push(FileUrl { digest, mu_url: url("MUUrl"), uss_url: url("UssUrl") });
    }
    Ok((updates, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_back_with_the_upstream_readers() {
        let cookie =
            WireCookie { expiration: "2026-10-04T20:33:26.65455Z".into(), data: Some(vec![1, 2]) };
        let products = [(Guid::from_bytes([1; 16]), true)];
        let classes = [(Guid::from_bytes([2; 16]), false)];
        let body = get_revision_id_list(
            &cookie,
            &Filter {
                anchor: Some("1,2026-10-04 16:09:27.371"),
                get_config: false,
                categories: &products,
                classifications: &classes,
                languages: &[(1033, true), (1031, false)],
            },
        );
        let r = crate::wsus::soap::parse_request(body.as_bytes()).unwrap();
        let f = super::super::server_sync::revision_id_list_request(&r.operation).unwrap();
        assert_eq!(
            (
                f.anchor.as_deref(),
                f.categories.unwrap(),
                f.classifications.unwrap(),
                f.languages.unwrap()
            ),
            (
                Some("1,2026-10-04 16:09:27.371"),
                products.to_vec(),
                classes.to_vec(),
                vec![1033, 1031]
            )
        );
        let body = get_update_data(&cookie, &[(Guid::from_bytes([3; 16]), 200)]);
        let r = crate::wsus::soap::parse_request(body.as_bytes()).unwrap();
        assert_eq!(
            super::super::server_sync::update_data_request(&r.operation, 100).unwrap(),
            vec![(Guid::from_bytes([3; 16]), 200)]
        );
    }

    #[test]
    fn revision_lists_stream_and_faults_come_through() {
        let list = super::super::server_sync::revision_id_list_response(
            "5,2026-01-01 00:00:00.000",
            &[(Guid::from_bytes([9; 16]), 100), (Guid::from_bytes([8; 16]), 200)],
        );
        let body = crate::wsus::soap::envelope(
            crate::wsus::soap::SoapVersion::V11,
            crate::wsus::soap::EnvelopeStyle::Asmx,
            &list,
        );
        let (anchor, ids) = read_revision_id_list(body.as_bytes()).unwrap();
        assert_eq!((anchor.as_str(), ids.len(), ids[1].1), ("5,2026-01-01 00:00:00.000", 2, 200));
        let fault = crate::wsus::soap::Fault::invalid("filter").render(
            crate::wsus::soap::SoapVersion::V11,
            crate::wsus::soap::EnvelopeStyle::Asmx,
            "x",
            None,
            None,
        );
        assert_eq!(
            read_revision_id_list(fault.as_bytes()).unwrap_err().fault_code(),
            Some("InvalidParameters")
        );
    }
}
