//! MS-WUSP messages: the client web service, SimpleAuth and client reporting. Requests are read
//! leniently (any order, unknown elements, literal or SOAP-encoded arrays, `xsi:nil`); responses
//! are written in the element order and shapes of real WSUS 2025 answers.

use super::soap::{Fault, Piece, Writer};
use super::tree::Element;
use crate::catalog::Guid;
use crate::catalog::xml::push_escaped_text;
use crate::ids::ComputerId;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::sync::Arc;

pub const CLIENT_NS: &str = "http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService";
pub const SIMPLE_AUTH_NS: &str =
    "http://www.microsoft.com/SoftwareDistribution/Server/SimpleAuthWebService";
pub const REPORTING_NS: &str = "http://www.microsoft.com/SoftwareDistribution";

// ---------------------------------------------------------------- request helpers

pub fn base64(text: &str, parameter: &str) -> Result<Vec<u8>, Fault> {
    base64_or(text, || Fault::invalid(parameter))
}

/// Base64 that may be wrapped over lines; `fault` says which parameter was wrong.
fn base64_or(text: &str, fault: impl FnOnce() -> Fault) -> Result<Vec<u8>, Fault> {
    let decoded = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        B64.decode(compact)
    } else {
        B64.decode(text)
    };
    decoded.map_err(|_| fault())
}

fn int(text: &str, parameter: &str) -> Result<i64, Fault> {
    text.trim().parse::<i64>().map_err(|_| Fault::invalid(parameter))
}

fn boolean(text: &str, parameter: &str) -> Result<bool, Fault> {
    match text.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Fault::invalid(parameter)),
    }
}

fn guid(text: &str, parameter: &str) -> Result<Guid, Fault> {
    Guid::parse(text).map_err(|_| Fault::invalid(parameter))
}

/// Items of an array of ints (`<int>` children), or an empty list when absent.
fn int_array(parent: &Element, name: &str, parameter: &str) -> Result<Vec<i32>, Fault> {
    let Some(array) = parent.child(name).filter(|a| !a.is_nil()) else { return Ok(Vec::new()) };
    let to_i32 = |v: i64| i32::try_from(v).map_err(|_| Fault::invalid(parameter));
    // Literal `<int>` items come parsed; other spellings (SOAP-encoded items) as elements.
    let mut out: Vec<i32> = array.ints.iter().map(|&v| to_i32(v)).collect::<Result<_, _>>()?;
    for item in array.items() {
        out.push(int(&item.text, parameter).and_then(to_i32)?);
    }
    Ok(out)
}

fn string_array(parent: &Element, name: &str) -> Vec<String> {
    parent
        .child(name)
        .filter(|a| !a.is_nil())
        .map(|a| a.items().map(|i| i.text.trim().to_string()).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- cookies

/// A `Cookie` as it travels: WSUS clients read only the expiration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireCookie {
    pub expiration: String,
    pub data: Option<Vec<u8>>,
}

impl WireCookie {
    /// The cookie `name` made of its two texts (`EncryptedData` in base64; empty: no data).
    pub fn from_texts(name: &str, expiration: &str, data: &str) -> Result<WireCookie, Fault> {
        let data = match data {
            "" => None,
            t => Some(base64_or(t, || Fault::invalid(format!("{name}.EncryptedData")))?),
        };
        Ok(WireCookie { expiration: expiration.to_string(), data })
    }
}

pub fn cookie(parent: &Element, name: &str) -> Result<Option<WireCookie>, Fault> {
    let Some(c) = parent.child(name).filter(|c| !c.is_nil()) else { return Ok(None) };
    WireCookie::from_texts(
        name,
        c.child_text("Expiration").unwrap_or_default(),
        c.child_text("EncryptedData").unwrap_or_default(),
    )
    .map(Some)
}

pub fn write_cookie(w: &mut Writer, name: &str, expiration: &str, data: &[u8]) {
    w.open(name).raw("Expiration", expiration).raw("EncryptedData", &B64.encode(data)).close(name);
}

// ---------------------------------------------------------------- GetConfig

pub struct ConfigProperty<'a> {
    pub name: &'a str,
    pub value: String,
}

pub fn get_config_response(
    last_change: &str,
    registration_required: bool,
    properties: &[ConfigProperty<'_>],
) -> String {
    let mut w = Writer::with_capacity(1024);
    w.open_ns("GetConfigResponse", CLIENT_NS).open("GetConfigResult");
    w.raw("LastChange", last_change).bool("IsRegistrationRequired", registration_required);
    w.open("AuthInfo")
        .open("AuthPlugInInfo")
        .raw("PlugInID", "SimpleTargeting")
        .raw("ServiceUrl", "SimpleAuthWebService/SimpleAuth.asmx")
        .empty("Parameter");
    w.close("AuthPlugInInfo").close("AuthInfo");
    w.open("Properties");
    for p in properties {
        w.open("ConfigurationProperty")
            .text("Name", p.name)
            .text("Value", &p.value)
            .close("ConfigurationProperty");
    }
    w.close("Properties").close("GetConfigResult").close("GetConfigResponse");
    w.out
}

// ---------------------------------------------------------------- SimpleAuth

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client_id: ComputerId,
    /// Client-side targeting: group names (the policy may list several, `;`-separated).
    pub target_groups: Vec<String>,
    pub dns_name: String,
}

/// Identifiers and names a client sends about itself: WSUS keeps them in columns of at most 256
/// characters; anything longer, or with control characters, is not a client's.
pub use crate::ids::MAX_NAME_CHARS;

fn client_name(op: &Element, parameter: &str) -> Result<String, Fault> {
    op.child_text(parameter)
        .filter(|s| {
            !s.is_empty() && s.chars().count() <= MAX_NAME_CHARS && !s.chars().any(char::is_control)
        })
        .map(str::to_string)
        .ok_or_else(|| Fault::invalid(parameter))
}

pub fn authorization_request(op: &Element) -> Result<AuthorizationRequest, Fault> {
    let client_id = op
        .child_text("clientId")
        .and_then(|t| ComputerId::parse(t).ok())
        .ok_or_else(|| Fault::invalid("clientId"))?;
    let dns_name = client_name(op, "dnsName")?;
    let target_groups = op
        .child_text("targetGroupName")
        .map(|t| {
            t.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
        })
        .unwrap_or_default();
    Ok(AuthorizationRequest { client_id, target_groups, dns_name })
}

/// For SimpleAuth (`SimpleTargeting`) and the DSS auth service (`DssTargeting`).
pub fn authorization_cookie_response(namespace: &str, plugin: &str, data: &[u8]) -> String {
    let mut w = Writer::with_capacity(1024);
    w.open_ns("GetAuthorizationCookieResponse", namespace).open("GetAuthorizationCookieResult");
    w.raw("PlugInId", plugin).raw("CookieData", &B64.encode(data));
    w.close("GetAuthorizationCookieResult").close("GetAuthorizationCookieResponse");
    w.out
}

// ---------------------------------------------------------------- GetCookie

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetCookieRequest {
    pub auth_cookies: Vec<(String, Vec<u8>)>,
    pub old_cookie: Option<WireCookie>,
    pub last_change: Option<String>,
    pub current_time: Option<String>,
    pub protocol_version: String,
}

pub fn get_cookie_request(op: &Element) -> Result<GetCookieRequest, Fault> {
    let mut auth_cookies = Vec::new();
    if let Some(list) = op.child("authCookies").filter(|a| !a.is_nil()) {
        for c in list.items() {
            let plugin = c.child_text("PlugInId").unwrap_or_default().to_string();
            let data = base64(c.child_text("CookieData").unwrap_or_default(), "authCookies")?;
            auth_cookies.push((plugin, data));
        }
    }
    Ok(GetCookieRequest {
        auth_cookies,
        old_cookie: cookie(op, "oldCookie")?,
        last_change: op.child_text("lastChange").map(str::to_string),
        current_time: op.child_text("currentTime").map(str::to_string),
        protocol_version: op.child_text("protocolVersion").unwrap_or_default().to_string(),
    })
}

pub fn get_cookie_response(namespace: &str, expiration: &str, data: &[u8]) -> String {
    let mut w = Writer::with_capacity(512);
    w.open_ns("GetCookieResponse", namespace);
    write_cookie(&mut w, "GetCookieResult", expiration, data);
    w.close("GetCookieResponse");
    w.out
}

// ---------------------------------------------------------------- RegisterComputer

/// `ComputerInfo`, field by field as the client sends it (names as in the WSDL).
/// What a client says about itself in RegisterComputer: about 20 short fields in real requests.
/// Stored per computer, so it is bounded: at most 64 fields of at most 1,024 characters.
pub fn computer_info(op: &Element) -> Result<Vec<(String, String)>, Fault> {
    let info = op
        .child("computerInfo")
        .filter(|c| !c.is_nil())
        .ok_or_else(|| Fault::invalid("computerInfo"))?;
    let fields: Vec<(String, String)> = info
        .children
        .iter()
        .filter(|c| !c.is_nil())
        .map(|c| (c.name.to_string(), c.text.trim().to_string()))
        .collect();
    if fields.len() > 64 || fields.iter().any(|(k, v)| k.len() > 256 || v.chars().count() > 1024) {
        return Err(Fault::invalid("computerInfo"));
    }
    Ok(fields)
}

pub fn register_computer_response() -> String {
    let mut w = Writer::default();
    w.empty_ns("RegisterComputerResponse", CLIENT_NS);
    w.out
}

// ---------------------------------------------------------------- StartCategoryScan

pub fn start_category_scan_request(op: &Element) -> Result<Vec<(i64, Guid)>, Fault> {
    let Some(list) = op.child("requestedCategories").filter(|l| !l.is_nil()) else {
        return Ok(Vec::new());
    };
    list.items()
        .map(|c| {
            let index = int(c.child_text("IndexOfAndGroup").unwrap_or("0"), "requestedCategories")?;
            let id = guid(c.child_text("CategoryId").unwrap_or_default(), "requestedCategories")?;
            Ok((index, id))
        })
        .collect()
}

pub fn start_category_scan_response(preferred: &[Guid], in_error: &[Guid]) -> String {
    let mut w = Writer::with_capacity(512);
    w.open_ns("StartCategoryScanResponse", CLIENT_NS);
    for (name, list) in
        [("preferredCategoryIds", preferred), ("requestedCategoryIdsInError", in_error)]
    {
        if !list.is_empty() {
            w.open(name);
            for g in list {
                w.raw("guid", &g.to_string());
            }
            w.close(name);
        }
    }
    w.close("StartCategoryScanResponse");
    w.out
}

// ---------------------------------------------------------------- SyncUpdates

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Device {
    pub hardware_ids: Vec<String>,
    pub compatible_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SyncParameters {
    pub installed_non_leaf: Vec<i32>,
    pub other_cached: Vec<i32>,
    pub system_spec: Option<Vec<Device>>,
    pub cached_driver_ids: Vec<i32>,
    pub skip_software_sync: bool,
    pub filter_categories: Vec<Guid>,
    pub need_two_group_out_of_scope: bool,
}

pub fn sync_parameters(op: &Element) -> Result<SyncParameters, Fault> {
    let p = op
        .child("parameters")
        .filter(|p| !p.is_nil())
        .ok_or_else(|| Fault::invalid("parameters"))?;
    let system_spec = p.child("SystemSpec").filter(|s| !s.is_nil()).map(|spec| {
        spec.items()
            .map(|d| Device {
                hardware_ids: string_array(d, "HardwareIDs"),
                compatible_ids: string_array(d, "CompatibleIDs"),
            })
            .collect()
    });
    let filter_categories = match p.child("FilterCategoryIds").filter(|f| !f.is_nil()) {
        Some(f) => f
            .items()
            .map(|c| guid(c.child_text("Id").unwrap_or(&c.text), "parameters.FilterCategoryIds"))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(SyncParameters {
        installed_non_leaf: int_array(
            p,
            "InstalledNonLeafUpdateIDs",
            "parameters.InstalledNonLeafUpdateIDs",
        )?,
        other_cached: int_array(p, "OtherCachedUpdateIDs", "parameters.OtherCachedUpdateIDs")?,
        system_spec,
        cached_driver_ids: int_array(p, "CachedDriverIDs", "parameters.CachedDriverIDs")?,
        skip_software_sync: p
            .child_text("SkipSoftwareSync")
            .map(|t| boolean(t, "parameters.SkipSoftwareSync"))
            .transpose()?
            .unwrap_or(false),
        filter_categories,
        need_two_group_out_of_scope: p
            .child_text("NeedTwoGroupOutOfScopeUpdates")
            .map(|t| boolean(t, "parameters.NeedTwoGroupOutOfScopeUpdates"))
            .transpose()?
            .unwrap_or(false),
    })
}

/// One `Deployment` as clients get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: i32,
    pub action: &'static str,
    /// `xs:dateTime` text; absent when there is no deadline.
    pub deadline: Option<String>,
    /// Date only (`2026-10-04`), as WSUS sends it.
    pub last_change: String,
}

pub fn write_deployment(w: &mut Writer, d: &Deployment) {
    w.open("Deployment").int("ID", d.id as i64).raw("Action", d.action);
    if let Some(deadline) = &d.deadline {
        w.text("Deadline", deadline);
    }
    w.bool("IsAssigned", true).raw("LastChangeTime", &d.last_change);
    w.raw("AutoSelect", "0").raw("AutoDownload", "0").raw("SupersedenceBehavior", "0");
    w.close("Deployment");
}

/// One `UpdateInfo` of a SyncUpdates answer.
pub struct UpdateInfoOut<'a> {
    pub revision_id: i32,
    pub deployment: &'a Deployment,
    pub is_leaf: bool,
    /// The Core fragment, already escaped for element text; absent in ChangedUpdates.
    pub xml_escaped: Option<Arc<str>>,
}

fn write_update_info(w: &mut Writer, u: &UpdateInfoOut<'_>) {
    w.open("UpdateInfo").int("ID", u.revision_id as i64);
    write_deployment(w, u.deployment);
    w.bool("IsLeaf", u.is_leaf);
    if let Some(x) = &u.xml_escaped {
        w.open("Xml").shared(x.clone()).close("Xml");
    }
    w.close("UpdateInfo");
}

/// Escapes a fragment for an `Xml` element (it travels as text).
pub fn escape_fragment(fragment: &str) -> String {
    let mut s = String::with_capacity(fragment.len() + fragment.len() / 8);
    push_escaped_text(&mut s, fragment);
    s
}

pub struct SyncResult<'a> {
    pub new_updates: &'a [UpdateInfoOut<'a>],
    pub out_of_scope: &'a [i32],
    pub changed_updates: &'a [UpdateInfoOut<'a>],
    pub truncated: bool,
    pub driver_sync_not_needed: bool,
}

/// A SyncUpdates answer around the one thing in it that belongs to a single client, its
/// `NewCookie`: `head`, then `new_cookie_element`, then `tail`. Clients in the same state get the
/// same head and tail, so a server can share them (`server/answers.rs`).
pub struct SyncAnswerParts {
    /// Core fragments are shared, not copied.
    pub head: Vec<Piece>,
    pub tail: String,
}

pub fn sync_updates_parts(r: &SyncResult<'_>) -> SyncAnswerParts {
    let mut w = Writer::with_capacity(1024 + r.changed_updates.len() * 300);
    w.open_ns("SyncUpdatesResponse", CLIENT_NS).open("SyncUpdatesResult");
    if !r.new_updates.is_empty() {
        w.open("NewUpdates");
        for u in r.new_updates {
            write_update_info(&mut w, u);
        }
        w.close("NewUpdates");
    }
    if !r.out_of_scope.is_empty() {
        w.open("OutOfScopeRevisionIDs");
        for id in r.out_of_scope {
            w.int("int", *id as i64);
        }
        w.close("OutOfScopeRevisionIDs");
    }
    if !r.changed_updates.is_empty() {
        w.open("ChangedUpdates");
        for u in r.changed_updates {
            write_update_info(&mut w, u);
        }
        w.close("ChangedUpdates");
    }
    w.bool("Truncated", r.truncated);
    let head = w.into_pieces();
    let mut w = Writer::with_capacity(128);
    w.raw("DriverSyncNotNeeded", if r.driver_sync_not_needed { "true" } else { "false" });
    w.close("SyncUpdatesResult").close("SyncUpdatesResponse");
    SyncAnswerParts { head, tail: w.out }
}

/// The `NewCookie` element of a SyncUpdates answer.
pub fn new_cookie_element(expiration: &str, data: &[u8]) -> String {
    let mut w = Writer::with_capacity(256);
    write_cookie(&mut w, "NewCookie", expiration, data);
    w.out
}

// ---------------------------------------------------------------- RefreshCache

pub fn refresh_cache_request(op: &Element) -> Result<Vec<(Guid, i32)>, Fault> {
    let Some(list) = op.child("globalIDs").filter(|l| !l.is_nil()) else { return Ok(Vec::new()) };
    list.items()
        .map(|i| {
            let id = guid(i.child_text("UpdateID").unwrap_or_default(), "globalIDs")?;
            let rev = int(i.child_text("RevisionNumber").unwrap_or_default(), "globalIDs")? as i32;
            Ok((id, rev))
        })
        .collect()
}

pub struct RefreshEntry<'a> {
    pub revision_id: i32,
    pub update_id: &'a str,
    pub revision_number: i32,
    pub is_leaf: bool,
    pub deployment: Deployment,
}

pub fn refresh_cache_response(entries: &[RefreshEntry<'_>]) -> String {
    let mut w = Writer::with_capacity(256 + entries.len() * 400);
    w.open_ns("RefreshCacheResponse", CLIENT_NS).open("RefreshCacheResult");
    for e in entries {
        w.open("RefreshCacheResult").int("RevisionID", e.revision_id as i64);
        w.open("GlobalID")
            .raw("UpdateID", e.update_id)
            .int("RevisionNumber", e.revision_number as i64)
            .close("GlobalID");
        w.bool("IsLeaf", e.is_leaf);
        write_deployment(&mut w, &e.deployment);
        w.close("RefreshCacheResult");
    }
    w.close("RefreshCacheResult").close("RefreshCacheResponse");
    w.out
}

// ---------------------------------------------------------------- GetExtendedUpdateInfo

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtendedInfoRequest {
    pub revision_ids: Vec<i32>,
    pub info_types: Vec<String>,
    pub locales: Vec<String>,
}

pub fn extended_info_request(op: &Element) -> Result<ExtendedInfoRequest, Fault> {
    Ok(ExtendedInfoRequest {
        revision_ids: int_array(op, "revisionIDs", "revisionIDs")?,
        info_types: string_array(op, "infoTypes"),
        locales: string_array(op, "locales"),
    })
}

pub struct FileLocation {
    pub digest: Vec<u8>,
    pub url: String,
}

fn write_file_locations(w: &mut Writer, locations: &[FileLocation]) {
    w.open("FileLocations");
    for l in locations {
        w.open("FileLocation")
            .raw("FileDigest", &B64.encode(&l.digest))
            .text("Url", &l.url)
            .close("FileLocation");
    }
    w.close("FileLocations");
}

/// `updates` are `(revision id, escaped fragment)`, in the order WSUS sends them.
pub fn extended_info_response(
    updates: &[(i32, String)],
    files: &[FileLocation],
    out_of_scope: &[i32],
) -> String {
    let mut w = Writer::with_capacity(
        512 + updates.iter().map(|(_, x)| x.len() + 40).sum::<usize>() + files.len() * 160,
    );
    w.open_ns("GetExtendedUpdateInfoResponse", CLIENT_NS).open("GetExtendedUpdateInfoResult");
    if !updates.is_empty() {
        w.open("Updates");
        for (id, xml) in updates {
            w.open("Update").int("ID", *id as i64).raw("Xml", xml).close("Update");
        }
        w.close("Updates");
    }
    if !files.is_empty() {
        write_file_locations(&mut w, files);
    }
    if !out_of_scope.is_empty() {
        w.open("OutOfScopeRevisionIDs");
        for id in out_of_scope {
            w.int("int", *id as i64);
        }
        w.close("OutOfScopeRevisionIDs");
    }
    w.close("GetExtendedUpdateInfoResult").close("GetExtendedUpdateInfoResponse");
    w.out
}

// ---------------------------------------------------------------- GetFileLocations

pub fn file_locations_request(op: &Element) -> Result<Vec<Vec<u8>>, Fault> {
    let Some(list) = op.child("fileDigests").filter(|l| !l.is_nil()) else { return Ok(Vec::new()) };
    list.items()
        .map(|i| {
            let d = base64(&i.text, "fileDigests")?;
            if d.len() != 20 { Err(Fault::invalid("fileDigests")) } else { Ok(d) }
        })
        .collect()
}

pub fn file_locations_response(
    files: &[FileLocation],
    expiration: &str,
    cookie_data: &[u8],
) -> String {
    let mut w = Writer::with_capacity(512 + files.len() * 160);
    w.open_ns("GetFileLocationsResponse", CLIENT_NS).open("GetFileLocationsResult");
    write_file_locations(&mut w, files);
    write_cookie(&mut w, "NewCookie", expiration, cookie_data);
    w.close("GetFileLocationsResult").close("GetFileLocationsResponse");
    w.out
}

// ---------------------------------------------------------------- Reporting

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReportedEvent {
    pub computer_id: String,
    pub time_at_target: String,
    pub event_instance_id: String,
    pub event_id: i32,
    pub source_id: i32,
    pub update_id: String,
    pub revision_number: i32,
    pub win32_hresult: i64,
    pub app_name: Option<String>,
    pub replacement_strings: Vec<String>,
    pub misc_data: Vec<String>,
}

/// Events one ReportEventBatch may carry. Real clients send a handful (at most 9 in the captures).
pub const MAX_EVENTS_PER_BATCH: usize = 1000;

pub fn report_event_batch_request(op: &Element) -> Result<Vec<ReportedEvent>, Fault> {
    let Some(batch) = op.child("eventBatch").filter(|b| !b.is_nil()) else { return Ok(Vec::new()) };
    if batch.items().count() > MAX_EVENTS_PER_BATCH {
        return Err(Fault::invalid("eventBatch"));
    }
    let mut out = Vec::new();
    for e in batch.items() {
        let basic = e.child("BasicData").ok_or_else(|| Fault::invalid("eventBatch"))?;
        let update = basic.child("UpdateID");
        let extended = e.child("ExtendedData");
        out.push(ReportedEvent {
            computer_id: basic
                .child("TargetID")
                .and_then(|t| t.child_text("Sid"))
                .unwrap_or_default()
                .to_ascii_lowercase(),
            time_at_target: basic.child_text("TimeAtTarget").unwrap_or_default().to_string(),
            event_instance_id: basic
                .child_text("EventInstanceID")
                .unwrap_or_default()
                .to_ascii_lowercase(),
            event_id: int(basic.child_text("EventID").unwrap_or("0"), "eventBatch")? as i32,
            source_id: int(basic.child_text("SourceID").unwrap_or("0"), "eventBatch")? as i32,
            update_id: update
                .and_then(|u| u.child_text("UpdateID"))
                .unwrap_or("00000000-0000-0000-0000-000000000000")
                .to_ascii_lowercase(),
            revision_number: update
                .and_then(|u| u.child_text("RevisionNumber"))
                .map(|r| int(r, "eventBatch"))
                .transpose()?
                .unwrap_or(0) as i32,
            win32_hresult: int(basic.child_text("Win32HResult").unwrap_or("0"), "eventBatch")?,
            app_name: basic.child_text("AppName").map(str::to_string),
            replacement_strings: extended
                .map(|x| string_array(x, "ReplacementStrings"))
                .unwrap_or_default(),
            misc_data: extended.map(|x| string_array(x, "MiscData")).unwrap_or_default(),
        });
    }
    Ok(out)
}

pub fn report_event_batch_response(accepted: bool) -> String {
    let mut w = Writer::default();
    w.open_ns("ReportEventBatchResponse", REPORTING_NS)
        .bool("ReportEventBatchResult", accepted)
        .close("ReportEventBatchResponse");
    w.out
}
