//! The client side of MS-WUSP: requests in the shapes the native Windows Update Agent sends
//! (`conformance/wua-native/`), and readers for the answers. Used by `ferry dev loadgen` and
//! the tests; the server never calls it.

use super::client::{CLIENT_NS, REPORTING_NS, SIMPLE_AUTH_NS, WireCookie};
use super::soap::{SOAP11, Writer};
use super::tree::{self, Element};
use crate::catalog::Guid;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// The protocol version the Windows 11 agent announces.
pub const AGENT_PROTOCOL: &str = "2.90";

fn envelope(body: &str) -> String {
    format!("<s:Envelope xmlns:s=\"{SOAP11}\"><s:Body>{body}</s:Body></s:Envelope>")
}

fn write_cookie(w: &mut Writer, name: &str, cookie: &WireCookie) {
    w.open(name).raw("Expiration", &cookie.expiration);
    if let Some(d) = &cookie.data {
        w.raw("EncryptedData", &B64.encode(d));
    }
    w.close(name);
}

fn write_ints(w: &mut Writer, name: &str, ids: &[i32]) {
    w.open(name);
    for id in ids {
        w.int("int", *id as i64);
    }
    w.close(name);
}

/// SOAPAction of a ClientWebService operation.
pub fn client_action(op: &str) -> String {
    format!("\"{CLIENT_NS}/{op}\"")
}

pub fn get_config(protocol: &str) -> String {
    let mut w = Writer::default();
    w.open_ns("GetConfig", CLIENT_NS).text("protocolVersion", protocol).close("GetConfig");
    envelope(&w.out)
}

pub fn get_authorization_cookie(client_id: &str, dns_name: &str, target_groups: &[&str]) -> String {
    let mut w = Writer::default();
    w.open_ns("GetAuthorizationCookie", SIMPLE_AUTH_NS)
        .text("clientId", client_id)
        .text("dnsName", dns_name);
    if !target_groups.is_empty() {
        // Client-side targeting sends the group names as one `;`-separated string.
        w.text("targetGroupName", &target_groups.join(";"));
    }
    w.close("GetAuthorizationCookie");
    envelope(&w.out)
}

pub fn get_cookie(
    auth_cookie: &[u8],
    old_cookie_expiration: &str,
    last_change: &str,
    now: &str,
    protocol: &str,
) -> String {
    let mut w = Writer::default();
    w.open_ns("GetCookie", CLIENT_NS)
        .open("authCookies")
        .open("AuthorizationCookie")
        .raw("PlugInId", "SimpleTargeting");
    w.raw("CookieData", &B64.encode(auth_cookie)).close("AuthorizationCookie").close("authCookies");
    w.open("oldCookie").raw("Expiration", old_cookie_expiration).close("oldCookie");
    w.text("lastChange", last_change).text("currentTime", now).text("protocolVersion", protocol);
    w.close("GetCookie");
    envelope(&w.out)
}

/// What RegisterComputer says about a machine.
#[derive(Debug, Clone)]
pub struct ComputerInfo<'a> {
    pub dns_name: &'a str,
    pub os_build: u32,
    pub manufacturer: &'a str,
    pub model: &'a str,
    pub os_description: &'a str,
}

pub fn register_computer(cookie: &WireCookie, info: &ComputerInfo<'_>) -> String {
    let mut w = Writer::default();
    w.open_ns("RegisterComputer", CLIENT_NS);
    write_cookie(&mut w, "cookie", cookie);
    w.open("computerInfo")
        .text("DnsName", info.dns_name)
        .raw("OSMajorVersion", "10")
        .raw("OSMinorVersion", "0");
    w.int("OSBuildNumber", info.os_build as i64)
        .raw("OSServicePackMajorNumber", "0")
        .raw("OSServicePackMinorNumber", "0");
    w.raw("OSLocale", "en-US")
        .text("ComputerManufacturer", info.manufacturer)
        .text("ComputerModel", info.model);
    w.raw("BiosVersion", "1.0")
        .raw("BiosName", "ferry loadgen")
        .raw("BiosReleaseDate", "2024-01-01T00:00:00Z");
    w.raw("ProcessorArchitecture", "AMD64")
        .raw("SuiteMask", "256")
        .raw("OldProductType", "1")
        .raw("NewProductType", "48");
    w.raw("SystemMetrics", "0")
        .raw("ClientVersionMajorNumber", "1507")
        .raw("ClientVersionMinorNumber", "2601");
    w.raw("ClientVersionBuildNumber", "30012")
        .raw("ClientVersionQfeNumber", "0")
        .text("OSDescription", info.os_description);
    w.close("computerInfo").close("RegisterComputer");
    envelope(&w.out)
}

/// One SyncUpdates call's parameters.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest<'a> {
    pub installed_non_leaf: &'a [i32],
    pub other_cached: &'a [i32],
    pub skip_software_sync: bool,
    /// Hardware ids of the devices (driver pass).
    pub devices: &'a [&'a str],
    pub filter_categories: &'a [Guid],
}

pub fn sync_updates(cookie: &WireCookie, r: &SyncRequest<'_>) -> String {
    let mut w =
        Writer::with_capacity(1024 + (r.installed_non_leaf.len() + r.other_cached.len()) * 16);
    w.open_ns("SyncUpdates", CLIENT_NS);
    write_cookie(&mut w, "cookie", cookie);
    w.open("parameters").bool("ExpressQuery", false);
    if !r.installed_non_leaf.is_empty() {
        write_ints(&mut w, "InstalledNonLeafUpdateIDs", r.installed_non_leaf);
    }
    if !r.other_cached.is_empty() {
        write_ints(&mut w, "OtherCachedUpdateIDs", r.other_cached);
    }
    if r.skip_software_sync {
        w.open("SystemSpec");
        for d in r.devices {
            w.open("Device")
                .open("HardwareIDs")
                .text("string", d)
                .close("HardwareIDs")
                .raw("DeviceFlags", "1")
                .close("Device");
        }
        w.close("SystemSpec");
    }
    w.bool("SkipSoftwareSync", r.skip_software_sync);
    if !r.filter_categories.is_empty() {
        w.open("FilterCategoryIds");
        for c in r.filter_categories {
            w.open("CategoryIdentifier").raw("Id", &c.to_string()).close("CategoryIdentifier");
        }
        w.close("FilterCategoryIds");
    }
    w.bool("NeedTwoGroupOutOfScopeUpdates", true)
        .bool("AlsoPerformRegularSync", true)
        .empty("ComputerSpec");
    w.open("ProductsParameters").bool("SyncCurrentVersionOnly", false);
    w.text(
        "DeviceAttributes",
        "App=WU_OS;AppVer=1507.2601.30012.0;DeviceFamily=Windows.Desktop;InstallationType=Client;OSArchitecture=AMD64;OSSkuId=48;",
    );
    w.text("CallerAttributes", "Interactive=0;Id=ferry loadgen;")
        .empty("Products")
        .close("ProductsParameters");
    w.close("parameters").close("SyncUpdates");
    envelope(&w.out)
}

pub fn get_extended_update_info(
    cookie: &WireCookie,
    revision_ids: &[i32],
    locales: &[&str],
) -> String {
    let mut w = Writer::default();
    w.open_ns("GetExtendedUpdateInfo", CLIENT_NS);
    write_cookie(&mut w, "cookie", cookie);
    write_ints(&mut w, "revisionIDs", revision_ids);
    w.open("infoTypes")
        .raw("XmlUpdateFragmentType", "Extended")
        .raw("XmlUpdateFragmentType", "LocalizedProperties")
        .close("infoTypes");
    w.open("locales");
    for l in locales {
        w.text("string", l);
    }
    w.close("locales").close("GetExtendedUpdateInfo");
    envelope(&w.out)
}

/// One event for ReportEventBatch.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub instance_id: Guid,
    pub event_id: i32,
    pub update_id: Guid,
    pub revision_number: i32,
    pub hresult: i64,
    pub time: &'a str,
    /// `Tag=Value` strings (event 156 carries its status lists here: `U=ID;ID`, `V=...`).
    pub misc: Vec<String>,
}

pub fn report_event_batch(
    cookie: &WireCookie,
    client_id: &str,
    now: &str,
    events: &[Event<'_>],
) -> String {
    let mut w = Writer::with_capacity(512 + events.len() * 700);
    w.open_ns("ReportEventBatch", REPORTING_NS);
    write_cookie(&mut w, "cookie", cookie);
    w.text("clientTime", now).open("eventBatch");
    for e in events {
        w.open("ReportingEvent")
            .open("BasicData")
            .open("TargetID")
            .text("Sid", client_id)
            .close("TargetID");
        w.raw("SequenceNumber", "0")
            .text("TimeAtTarget", e.time)
            .raw("EventInstanceID", &e.instance_id.to_string())
            .raw("NamespaceID", "1");
        w.int("EventID", e.event_id as i64).raw("SourceID", "1");
        w.open("UpdateID")
            .raw("UpdateID", &e.update_id.to_string())
            .int("RevisionNumber", e.revision_number as i64)
            .close("UpdateID");
        w.int("Win32HResult", e.hresult).raw("AppName", "ferry loadgen").close("BasicData");
        w.open("ExtendedData")
            .open("ReplacementStrings")
            .close("ReplacementStrings")
            .open("MiscData")
            .raw("string", "Q=1");
        for m in &e.misc {
            w.text("string", m);
        }
        w.close("MiscData");
        w.raw("ComputerBrand", "Contoso")
            .raw("ComputerModel", "Desk")
            .raw("BiosRevision", "1.0")
            .raw("ProcessorArchitecture", "Amd64Compatible");
        w.open("OSVersion")
            .raw("Major", "10")
            .raw("Minor", "0")
            .raw("Build", "26200")
            .raw("Revision", "0");
        w.raw("ServicePackMajor", "0")
            .raw("ServicePackMinor", "0")
            .close("OSVersion")
            .raw("OSLocaleID", "1033")
            .close("ExtendedData");
        w.empty("PrivateData").close("ReportingEvent");
    }
    w.close("eventBatch").close("ReportEventBatch");
    envelope(&w.out)
}

// ---------------------------------------------------------------- answers

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer is not XML: {0}")]
    Xml(#[from] tree::XmlError),
    #[error("SOAP fault {code}: {message}")]
    Fault { code: String, message: String },
    #[error("the answer lacks {0}")]
    Missing(&'static str),
}

/// The operation's result element (`<OpResult>`), or the fault the server sent.
pub fn result_of<'a>(root: &'a Element, op: &str) -> Result<&'a Element, AnswerError> {
    let body = root.child("Body").ok_or(AnswerError::Missing("Body"))?;
    let first = body.children.first().ok_or(AnswerError::Missing("a Body element"))?;
    if &*first.name == "Fault" {
        let detail = first.child("detail").or_else(|| first.child("Detail"));
        let code = detail.and_then(|d| d.child_text("ErrorCode")).unwrap_or("(none)").to_string();
        let message = detail.and_then(|d| d.child_text("Message")).unwrap_or_default().to_string();
        return Err(AnswerError::Fault { code, message });
    }
    let result = format!("{op}Result");
    first.child(&result).ok_or(AnswerError::Missing("the operation's result"))
}

pub fn parse(xml: &[u8]) -> Result<Element, AnswerError> {
    Ok(tree::parse(xml)?)
}

pub fn read_cookie(e: &Element) -> Option<WireCookie> {
    Some(WireCookie {
        expiration: e.child_text("Expiration")?.to_string(),
        data: e.child_text("EncryptedData").and_then(|d| B64.decode(d).ok()),
    })
}

/// One `UpdateInfo` of a SyncUpdates answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateInfo {
    pub revision_id: i32,
    pub deployment_id: i32,
    pub action: String,
    pub deadline: Option<String>,
    pub is_leaf: bool,
    /// The Core fragment (unescaped), absent in ChangedUpdates and in `read_sync_summary`.
    pub xml: Option<String>,
    /// From the Core fragment: its UpdateID and UpdateType.
    pub update_id: Option<Guid>,
    pub update_type: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SyncAnswer {
    pub new_updates: Vec<UpdateInfo>,
    pub changed_updates: Vec<UpdateInfo>,
    pub out_of_scope: Vec<i32>,
    pub truncated: bool,
    pub new_cookie: Option<WireCookie>,
    pub driver_sync_not_needed: Option<bool>,
}

fn update_infos(parent: Option<&Element>) -> Vec<UpdateInfo> {
    let Some(p) = parent else { return Vec::new() };
    p.items()
        .map(|u| {
            let d = u.child("Deployment");
            let xml = u.child("Xml").map(|x| x.text.clone());
            UpdateInfo {
                revision_id: u.child_text("ID").and_then(|v| v.parse().ok()).unwrap_or(-1),
                deployment_id: d
                    .and_then(|d| d.child_text("ID"))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(-1),
                action: d.and_then(|d| d.child_text("Action")).unwrap_or_default().to_string(),
                deadline: d.and_then(|d| d.child_text("Deadline")).map(str::to_string),
                is_leaf: u.child_text("IsLeaf") == Some("true"),
                update_id: xml.as_deref().and_then(core_update_id),
                update_type: xml.as_deref().and_then(core_update_type).map(str::to_string),
                xml,
            }
        })
        .collect()
}

pub fn read_sync(xml: &[u8]) -> Result<SyncAnswer, AnswerError> {
    let root = parse(xml)?;
    let r = result_of(&root, "SyncUpdates")?;
    Ok(SyncAnswer {
        new_updates: update_infos(r.child("NewUpdates")),
        changed_updates: update_infos(r.child("ChangedUpdates")),
        out_of_scope: r
            .child("OutOfScopeRevisionIDs")
            .map(|o| {
                o.ints
                    .iter()
                    .map(|&v| v as i32)
                    .chain(o.items().filter_map(|i| i.text.trim().parse().ok()))
                    .collect()
            })
            .unwrap_or_default(),
        truncated: r.child_text("Truncated") == Some("true"),
        new_cookie: r.child("NewCookie").and_then(read_cookie),
        driver_sync_not_needed: r.child_text("DriverSyncNotNeeded").map(|v| v == "true"),
    })
}

/// `str::find` with SIMD (answers are scanned for thousands of tags).
fn find(haystack: &str, needle: &str) -> Option<usize> {
    memchr::memmem::find(haystack.as_bytes(), needle.as_bytes())
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = find(s, open)? + open.len();
    let end = find(&s[start..], close)? + start;
    Some(&s[start..end])
}

/// The pieces `<open>...</close>` in order.
fn pieces<'a>(mut s: &'a str, open: &'a str, close: &'a str) -> impl Iterator<Item = &'a str> {
    std::iter::from_fn(move || {
        let start = find(s, open)? + open.len();
        let end = find(&s[start..], close)? + start;
        let piece = &s[start..end];
        s = &s[end + close.len()..];
        Some(piece)
    })
}

/// An attribute in an escaped fragment: quotes travel raw in element text (as WSUS sends
/// them) or as `&quot;`.
fn escaped_attribute<'a>(fragment: &'a str, (raw, entity): (&str, &str)) -> Option<&'a str> {
    between(fragment, raw, "\"").or_else(|| between(fragment, entity, "&quot;"))
}

const UPDATE_ID_ATTRIBUTE: (&str, &str) = ("UpdateID=\"", "UpdateID=&quot;");
const UPDATE_TYPE_ATTRIBUTE: (&str, &str) = ("UpdateType=\"", "UpdateType=&quot;");

fn summary_infos(section: Option<&str>) -> Vec<UpdateInfo> {
    let Some(section) = section else { return Vec::new() };
    pieces(section, "<UpdateInfo>", "</UpdateInfo>")
        .map(|u| {
            let deployment = between(u, "<Deployment>", "</Deployment>").unwrap_or_default();
            let xml = between(u, "<Xml>", "</Xml>");
            UpdateInfo {
                revision_id: between(u, "<ID>", "</ID>").and_then(|v| v.parse().ok()).unwrap_or(-1),
                deployment_id: between(deployment, "<ID>", "</ID>")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(-1),
                action: between(deployment, "<Action>", "</Action>")
                    .unwrap_or_default()
                    .to_string(),
                deadline: between(deployment, "<Deadline>", "</Deadline>").map(str::to_string),
                is_leaf: between(u, "<IsLeaf>", "</IsLeaf>") == Some("true"),
                xml: None,
                update_id: xml
                    .and_then(|x| escaped_attribute(x, UPDATE_ID_ATTRIBUTE))
                    .and_then(|g| Guid::parse(g).ok()),
                update_type: xml
                    .and_then(|x| escaped_attribute(x, UPDATE_TYPE_ATTRIBUTE))
                    .map(str::to_string),
            }
        })
        .collect()
}

/// A SyncUpdates answer read by scanning for the elements ferry writes, without a tree and
/// without unescaping Core fragments: what a load generator needs, at a fraction of the cost.
/// Anything unexpected (a fault, another writer's spelling) falls back to `read_sync`.
pub fn read_sync_summary(xml: &[u8]) -> Result<SyncAnswer, AnswerError> {
    let Ok(text) = std::str::from_utf8(xml) else { return read_sync(xml) };
    let Some(result) = between(text, "<SyncUpdatesResult>", "</SyncUpdatesResult>") else {
        return read_sync(xml);
    };
    let cookie = between(result, "<NewCookie>", "</NewCookie>");
    Ok(SyncAnswer {
        new_updates: summary_infos(between(result, "<NewUpdates>", "</NewUpdates>")),
        changed_updates: summary_infos(between(result, "<ChangedUpdates>", "</ChangedUpdates>")),
        out_of_scope: between(result, "<OutOfScopeRevisionIDs>", "</OutOfScopeRevisionIDs>")
            .map(|o| pieces(o, "<int>", "</int>").filter_map(|i| i.parse().ok()).collect())
            .unwrap_or_default(),
        truncated: between(result, "<Truncated>", "</Truncated>") == Some("true"),
        new_cookie: cookie.map(|c| WireCookie {
            expiration: between(c, "<Expiration>", "</Expiration>").unwrap_or_default().to_string(),
            data: between(c, "<EncryptedData>", "</EncryptedData>")
                .and_then(|d| B64.decode(d).ok()),
        }),
        driver_sync_not_needed: between(result, "<DriverSyncNotNeeded>", "</DriverSyncNotNeeded>")
            .map(|v| v == "true"),
    })
}

/// `(SHA-1 digest, URL)` of every FileLocation in an answer.
pub fn read_file_locations(result: &Element) -> Vec<(Vec<u8>, String)> {
    result
        .child("FileLocations")
        .map(|f| {
            f.items()
                .filter_map(|l| {
                    Some((
                        B64.decode(l.child_text("FileDigest")?).ok()?,
                        l.child_text("Url")?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `UpdateID` a Core fragment names in its `UpdateIdentity`.
pub fn core_update_id(core: &str) -> Option<Guid> {
    let at = core.find("UpdateID=\"")? + "UpdateID=\"".len();
    Guid::parse(core.get(at..at + 36)?).ok()
}

/// The `UpdateType` of a Core fragment's `Properties`.
pub fn core_update_type(core: &str) -> Option<&str> {
    let at = core.find("UpdateType=\"")? + "UpdateType=\"".len();
    let end = core[at..].find('"')?;
    Some(&core[at..at + end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_back_with_the_server_readers() {
        let cookie = WireCookie {
            expiration: "2026-10-04T16:03:35.9967236Z".into(),
            data: Some(vec![1, 2, 3]),
        };
        let body = sync_updates(
            &cookie,
            &SyncRequest { installed_non_leaf: &[1, 2], other_cached: &[3], ..Default::default() },
        );
        let r = super::super::soap::parse_request(body.as_bytes()).unwrap();
        let p = super::super::client::sync_parameters(&r.operation).unwrap();
        assert_eq!(
            (p.installed_non_leaf, p.other_cached, p.skip_software_sync),
            (vec![1, 2], vec![3], false)
        );
        assert_eq!(super::super::client::cookie(&r.operation, "cookie").unwrap().unwrap(), cookie);

        let body = get_authorization_cookie("c1", "pc.example", &["Servers", "Ring 1"]);
        let r = super::super::soap::parse_request(body.as_bytes()).unwrap();
        let a = super::super::client::authorization_request(&r.operation).unwrap();
        assert_eq!(a.target_groups, vec!["Servers".to_string(), "Ring 1".to_string()]);
    }

    #[test]
    fn the_summary_reader_agrees_with_the_tree_reader() {
        let core = crate::wsus::client::escape_fragment(
            r#"<UpdateIdentity UpdateID="56309036-4c77-4dd9-951a-99ee9c246a94" RevisionNumber="101" /><Properties UpdateType="Category" />"#,
        );
        let body = format!(
            "<s:Envelope xmlns:s=\"{SOAP11}\"><s:Body><SyncUpdatesResponse xmlns=\"{CLIENT_NS}\"><SyncUpdatesResult><NewUpdates><UpdateInfo><ID>7</ID><Deployment><ID>7</ID><Action>Evaluate</Action><IsAssigned>true</IsAssigned><LastChangeTime>2026-10-04</LastChangeTime></Deployment><IsLeaf>false</IsLeaf><Xml>{core}</Xml></UpdateInfo></NewUpdates><OutOfScopeRevisionIDs><int>3</int><int>4</int></OutOfScopeRevisionIDs><Truncated>true</Truncated><NewCookie><Expiration>2026-10-04T16:03:35.9967236Z</Expiration><EncryptedData>AQID</EncryptedData></NewCookie><DriverSyncNotNeeded>false</DriverSyncNotNeeded></SyncUpdatesResult></SyncUpdatesResponse></s:Body></s:Envelope>"
        );
        let full = read_sync(body.as_bytes()).unwrap();
        let quick = read_sync_summary(body.as_bytes()).unwrap();
        let strip = |mut u: UpdateInfo| {
            u.xml = None;
            u
        };
        assert_eq!(full.new_updates.into_iter().map(strip).collect::<Vec<_>>(), quick.new_updates);
        assert_eq!(
            (full.out_of_scope, full.truncated, full.new_cookie, full.driver_sync_not_needed),
            (quick.out_of_scope, quick.truncated, quick.new_cookie, quick.driver_sync_not_needed)
        );
        assert_eq!(quick.new_updates[0].update_type.as_deref(), Some("Category"));
    }

    #[test]
    fn core_fragments_name_their_update() {
        let core = r#"<UpdateIdentity UpdateID="56309036-4c77-4dd9-951a-99ee9c246a94" RevisionNumber="101" /><Properties UpdateType="Category" />"#;
        assert_eq!(
            core_update_id(core).unwrap().to_string(),
            "56309036-4c77-4dd9-951a-99ee9c246a94"
        );
        assert_eq!(core_update_type(core), Some("Category"));
    }
}
