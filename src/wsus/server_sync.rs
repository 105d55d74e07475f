//! MS-WSUSSS, the upstream's side: ServerSync and DssAuth requests in, answers out, in the
//! element order real WSUS 2025 writes (`conformance/wsusss/exchanges/`, WSUS-PROTOCOL.md §4).

use super::client::{WireCookie, base64, write_cookie};
use super::soap::{Fault, Writer};
use super::tree::Element;
use crate::catalog::Guid;
use crate::catalog::xml::push_escaped_text;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

pub const SERVER_SYNC_NS: &str = "http://www.microsoft.com/SoftwareDistribution";
pub const DSS_AUTH_NS: &str =
    "http://www.microsoft.com/SoftwareDistribution/Server/DssAuthWebService";
/// The protocol version WSUS 10 and later speak.
pub const PROTOCOL_VERSION: &str = "1.20";

fn guid(text: &str, parameter: &str) -> Result<Guid, Fault> {
    Guid::parse(text.trim()).map_err(|_| Fault::invalid(parameter))
}

fn boolean(e: Option<&str>, parameter: &str) -> Result<bool, Fault> {
    match e.map(str::trim) {
        None | Some("") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(_) => Err(Fault::invalid(parameter)),
    }
}

/// `UpdateIdentity` items of an array.
pub fn update_identities(
    array: Option<&Element>,
    parameter: &str,
) -> Result<Vec<(Guid, i32)>, Fault> {
    let Some(array) = array.filter(|a| !a.is_nil()) else { return Ok(Vec::new()) };
    array
        .items()
        .map(|u| {
            let id = guid(
                u.child_text("UpdateID").ok_or_else(|| Fault::invalid(parameter))?,
                parameter,
            )?;
            let rev = u
                .child_text("RevisionNumber")
                .and_then(|r| r.parse::<i32>().ok())
                .ok_or_else(|| Fault::invalid(parameter))?;
            Ok((id, rev))
        })
        .collect()
}

fn write_identity(w: &mut Writer, name: &str, id: &Guid, revision: i32) {
    w.open(name)
        .raw("UpdateID", &id.to_string())
        .int("RevisionNumber", revision as i64)
        .close(name);
}

// ---------------------------------------------------------------- authorization

/// GetAuthConfig: where the downstream authenticates (relative to the server root).
pub fn auth_config_response(last_change: &str) -> String {
    let mut w = Writer::default();
    w.open_ns("GetAuthConfigResponse", SERVER_SYNC_NS)
        .open("GetAuthConfigResult")
        .raw("LastChange", last_change);
    w.open("AuthInfo")
        .open("AuthPlugInInfo")
        .raw("PlugInID", "DssTargeting")
        .raw("ServiceUrl", "DssAuthWebService/DssAuthWebService.asmx");
    w.push_raw("<Parameter />").close("AuthPlugInInfo").close("AuthInfo");
    w.close("GetAuthConfigResult").close("GetAuthConfigResponse");
    w.out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DssAuthRequest {
    pub account_name: String,
    pub account_guid: Guid,
}

/// DssAuth GetAuthorizationCookie. Some clients swap the two fields (a GUID as the name): the
/// GUID is taken from whichever holds one.
pub fn dss_auth_request(op: &Element) -> Result<DssAuthRequest, Fault> {
    let name = op
        .child_text("accountName")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Fault::invalid("accountName"))?;
    let id = op
        .child_text("accountGuid")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Fault::invalid("accountGuid"))?;
    let (name, id) = match (Guid::parse(id), Guid::parse(name)) {
        (Ok(g), _) => (name, g),
        (Err(_), Ok(g)) => (id, g),
        _ => return Err(Fault::invalid("accountGuid")),
    };
    if name.len() > 255 || name.chars().any(|c| c.is_control()) {
        return Err(Fault::invalid("accountName"));
    }
    Ok(DssAuthRequest { account_name: name.to_string(), account_guid: id })
}

// ---------------------------------------------------------------- GetConfigData

/// One language of GetConfigData's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language {
    pub id: i32,
    pub short: String,
    pub long: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigData {
    pub catalog_only_sync: bool,
    pub lazy_sync: bool,
    pub hosts_psf_files: bool,
    pub max_updates_per_request: i32,
    pub new_anchor: String,
    pub protocol_version: String,
    pub languages: Vec<Language>,
    pub max_decryption_per_request: i32,
}

pub fn config_data_request(op: &Element) -> Option<String> {
    op.child_text("configAnchor").filter(|a| !a.is_empty()).map(str::to_string)
}

pub fn config_data_response(c: &ConfigData) -> String {
    let mut w = Writer::with_capacity(4096);
    w.open_ns("GetConfigDataResponse", SERVER_SYNC_NS).open("GetConfigDataResult");
    w.bool("CatalogOnlySync", c.catalog_only_sync)
        .bool("LazySync", c.lazy_sync)
        .bool("ServerHostsPsfFiles", c.hosts_psf_files);
    // Driver sets are a Microsoft Update feature: WSUS advertises 0.
    w.raw("MaxNumberOfComputerIdsInRequest", "0")
        .raw("MaxNumberOfDriverSetsPerRequest", "0")
        .raw("MaxNumberOfPnpHardwareIdsInRequest", "0");
    w.int("MaxNumberOfUpdatesPerRequest", c.max_updates_per_request as i64)
        .text("NewConfigAnchor", &c.new_anchor)
        .text("ProtocolVersion", &c.protocol_version);
    if c.languages.is_empty() {
        w.push_raw("<LanguageUpdateList />");
    } else {
        w.open("LanguageUpdateList");
        for l in &c.languages {
            w.open("ServerSyncLanguageData")
                .int("LanguageID", l.id as i64)
                .text("ShortLanguage", &l.short)
                .text("LongLanguage", &l.long);
            w.bool("Enabled", l.enabled).close("ServerSyncLanguageData");
        }
        w.close("LanguageUpdateList");
    }
    w.int("MaxUpdatesPerRequestInGetUpdateDecryptionData", c.max_decryption_per_request as i64);
    w.close("GetConfigDataResult").close("GetConfigDataResponse");
    w.out
}

// ---------------------------------------------------------------- GetRevisionIdList

/// What a downstream asks GetRevisionIdList for (WSUS-PROTOCOL.md §4.7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevisionFilter {
    pub anchor: Option<String>,
    /// Categories and detectoids (the configuration pass) instead of software and drivers.
    pub get_config: bool,
    /// Products and categories with `Delta` (true: only changes since the anchor).
    pub categories: Option<Vec<(Guid, bool)>>,
    pub classifications: Option<Vec<(Guid, bool)>>,
    /// LCIDs of the languages wanted (absent: every language).
    pub languages: Option<Vec<i32>>,
}

/// `Languages`: LanguageAndDelta items. A list longer than WSUS's languages is refused.
fn language_ids(e: Option<&Element>) -> Result<Option<Vec<i32>>, Fault> {
    let Some(list) = e.filter(|l| !l.is_nil()) else { return Ok(None) };
    let ids = list
        .items()
        .map(|i| {
            i.child_text("Id")
                .and_then(|v| v.trim().parse::<i32>().ok())
                .ok_or_else(|| Fault::invalid("filter"))
        })
        .collect::<Result<Vec<i32>, Fault>>()?;
    if ids.len() > 256 {
        return Err(Fault::invalid("filter"));
    }
    Ok(Some(ids))
}

fn ids_and_deltas(e: Option<&Element>) -> Result<Option<Vec<(Guid, bool)>>, Fault> {
    let Some(list) = e.filter(|l| !l.is_nil()) else { return Ok(None) };
    list.items()
        .map(|i| {
            Ok((
                guid(i.child_text("Id").ok_or_else(|| Fault::invalid("filter"))?, "filter")?,
                boolean(i.child_text("Delta"), "filter")?,
            ))
        })
        .collect::<Result<Vec<_>, Fault>>()
        .map(Some)
}

pub fn revision_id_list_request(op: &Element) -> Result<RevisionFilter, Fault> {
    let f = op.child("filter").filter(|f| !f.is_nil()).ok_or_else(|| Fault::invalid("filter"))?;
    Ok(RevisionFilter {
        anchor: f.child_text("Anchor").filter(|a| !a.is_empty()).map(str::to_string),
        get_config: boolean(f.child_text("GetConfig"), "filter")?,
        categories: ids_and_deltas(f.child("Categories"))?,
        classifications: ids_and_deltas(f.child("Classifications"))?,
        languages: language_ids(f.child("Languages"))?,
    })
}

pub fn revision_id_list_response(anchor: &str, revisions: &[(Guid, i32)]) -> String {
    let mut w = Writer::with_capacity(512 + revisions.len() * 128);
    w.open_ns("GetRevisionIdListResponse", SERVER_SYNC_NS)
        .open("GetRevisionIdListResult")
        .text("Anchor", anchor);
    if revisions.is_empty() {
        w.push_raw("<NewRevisions />");
    } else {
        w.open("NewRevisions");
        for (id, rev) in revisions {
            write_identity(&mut w, "UpdateIdentity", id, *rev);
        }
        w.close("NewRevisions");
    }
    w.close("GetRevisionIdListResult").close("GetRevisionIdListResponse");
    w.out
}

// ---------------------------------------------------------------- GetUpdateData

pub fn update_data_request(op: &Element, max: usize) -> Result<Vec<(Guid, i32)>, Fault> {
    let ids = update_identities(op.child("updateIds"), "updateIds")?;
    if ids.is_empty() || ids.len() > max {
        return Err(Fault::invalid("updateIds"));
    }
    Ok(ids)
}

/// One update of a GetUpdateData answer.
pub struct UpdateDataOut<'a> {
    pub id: Guid,
    pub revision: i32,
    /// The full `<upd:Update>` document.
    pub document: &'a str,
    pub file_digests: &'a [[u8; 20]],
}

/// One file of a GetUpdateData answer: where a downstream fetches it.
pub struct FileUrlOut<'a> {
    pub digest: [u8; 20],
    /// Microsoft Update's URL, when the upstream synced it from there.
    pub mu_url: &'a str,
}

/// Documents go as `XmlUpdateBlob` (escaped text), which the protocol allows for any size.
pub fn update_data_response(updates: &[UpdateDataOut<'_>], files: &[FileUrlOut<'_>]) -> String {
    let total: usize = updates.iter().map(|u| u.document.len() + u.document.len() / 8 + 256).sum();
    let mut w = Writer::with_capacity(total + files.len() * 200 + 512);
    w.open_ns("GetUpdateDataResponse", SERVER_SYNC_NS).open("GetUpdateDataResult");
    w.open("updates");
    for u in updates {
        w.open("ServerSyncUpdateData");
        write_identity(&mut w, "Id", &u.id, u.revision);
        w.open("XmlUpdateBlob");
        push_escaped_text(&mut w.out, u.document);
        w.close("XmlUpdateBlob");
        if !u.file_digests.is_empty() {
            w.open("FileDigestList");
            for d in u.file_digests {
                w.raw("base64Binary", &B64.encode(d));
            }
            w.close("FileDigestList");
        }
        w.close("ServerSyncUpdateData");
    }
    w.close("updates");
    if files.is_empty() {
        w.push_raw("<fileUrls />");
    } else {
        w.open("fileUrls");
        for f in files {
            w.open("ServerSyncUrlData")
                .raw("FileDigest", &B64.encode(f.digest))
                .text("MUUrl", f.mu_url)
                .push_raw("<UssUrl />")
                .close("ServerSyncUrlData");
        }
        w.close("fileUrls");
    }
    w.close("GetUpdateDataResult").close("GetUpdateDataResponse");
    w.out
}

/// GetUpdateDecryptionData: ferry serves no encrypted files.
pub fn update_decryption_data_response() -> String {
    let mut w = Writer::default();
    w.open_ns("GetUpdateDecryptionDataResponse", SERVER_SYNC_NS)
        .open("GetUpdateDecryptionDataResult");
    w.push_raw("<UpdateFileDecryptionData />")
        .close("GetUpdateDecryptionDataResult")
        .close("GetUpdateDecryptionDataResponse");
    w.out
}

// ---------------------------------------------------------------- GetDeployments

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentsRequest {
    pub deployment_anchor: Option<String>,
    pub sync_anchor: Option<String>,
}

pub fn deployments_request(op: &Element) -> DeploymentsRequest {
    DeploymentsRequest {
        deployment_anchor: op
            .child_text("deploymentAnchor")
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        sync_anchor: op.child_text("syncAnchor").filter(|a| !a.is_empty()).map(str::to_string),
    }
}

pub struct GroupOut<'a> {
    pub id: &'a str,
    /// The all-zero GUID for the root (All Computers).
    pub parent: &'a str,
    pub name: &'a str,
    pub builtin: bool,
}

pub struct DeploymentOut<'a> {
    pub update_id: &'a str,
    pub revision: i32,
    /// 0 Install, 1 Uninstall, 2 PreDeploymentCheck, 3 Block.
    pub action: i32,
    pub admin: &'a str,
    /// `9999-12-31T23:59:59.9999999` for none.
    pub deadline: &'a str,
    pub go_live: &'a str,
    pub guid: &'a str,
    pub group: &'a str,
}

pub struct DeploymentsOut<'a> {
    pub anchor: &'a str,
    pub groups: &'a [GroupOut<'a>],
    pub deployments: &'a [DeploymentOut<'a>],
    pub dead: &'a [String],
    pub hidden: &'a [String],
}

fn guid_array(w: &mut Writer, name: &str, ids: &[String]) {
    if ids.is_empty() {
        w.push_raw(&format!("<{name} />"));
        return;
    }
    w.open(name);
    for id in ids {
        w.raw("guid", id);
    }
    w.close(name);
}

pub fn deployments_response(d: &DeploymentsOut<'_>) -> String {
    let mut w = Writer::with_capacity(1024 + d.deployments.len() * 600);
    w.open_ns("GetDeploymentsResponse", SERVER_SYNC_NS)
        .open("GetDeploymentsResult")
        .text("Anchor", d.anchor);
    w.open("Groups");
    for g in d.groups {
        w.open("ServerSyncTargetGroup")
            .raw("TargetGroupID", g.id)
            .raw("ParentGroupId", g.parent)
            .text("Name", g.name);
        w.bool("IsBuiltin", g.builtin).close("ServerSyncTargetGroup");
    }
    w.close("Groups");
    w.open("Deployments");
    for x in d.deployments {
        w.open("ServerSyncDeployment")
            .raw("UpdateId", x.update_id)
            .int("RevisionNumber", x.revision as i64)
            .int("Action", x.action as i64);
        w.text("AdminName", x.admin)
            .raw("Deadline", x.deadline)
            .bool("IsAssigned", true)
            .raw("GoLiveTime", x.go_live);
        w.raw("DeploymentGuid", x.guid)
            .raw("TargetGroupId", x.group)
            .raw("DownloadPriority", "1")
            .close("ServerSyncDeployment");
    }
    w.close("Deployments");
    guid_array(&mut w, "DeadDeployments", d.dead);
    guid_array(&mut w, "HiddenUpdates", d.hidden);
    guid_array(&mut w, "AcceptedEulas", &[]);
    w.close("GetDeploymentsResult").close("GetDeploymentsResponse");
    w.out
}

// ---------------------------------------------------------------- DownloadFiles

pub fn download_files_request(op: &Element) -> Result<Vec<Vec<u8>>, Fault> {
    let list = op
        .child("fileDigestList")
        .filter(|l| !l.is_nil())
        .ok_or_else(|| Fault::invalid("fileDigestList"))?;
    let digests: Vec<Vec<u8>> =
        list.items().map(|d| base64(&d.text, "fileDigestList")).collect::<Result<_, _>>()?;
    if digests.is_empty() || digests.len() > 100 {
        return Err(Fault::invalid("fileDigestList"));
    }
    Ok(digests)
}

pub fn empty_response(operation: &str) -> String {
    format!("<{operation}Response xmlns=\"{SERVER_SYNC_NS}\" />")
}

// ---------------------------------------------------------------- reporting rollup (downstream → upstream)

pub fn rollup_configuration_response(server_id: &str, reset: &str) -> String {
    let mut w = Writer::default();
    w.open_ns("GetRollupConfigurationResponse", SERVER_SYNC_NS)
        .open("GetRollupConfigurationResult");
    // Summaries only: ferry keeps no per-computer rollup of downstream servers.
    w.bool("DoDetailedRollup", false).raw("RollupResetGuid", reset).raw("ServerId", server_id);
    w.raw("RollupDownstreamServersMaxBatchSize", "5000").raw("RollupComputersMaxBatchSize", "1500");
    w.raw("GetOutOfSyncComputersMaxBatchSize", "20000")
        .raw("RollupComputerStatusMaxBatchSize", "500");
    w.close("GetRollupConfigurationResult").close("GetRollupConfigurationResponse");
    w.out
}

/// The cookie a GetCookie answer carries.
pub fn cookie_response(expiration: &str, data: &[u8]) -> String {
    let mut w = Writer::default();
    w.open_ns("GetCookieResponse", SERVER_SYNC_NS);
    write_cookie(&mut w, "GetCookieResult", expiration, data);
    w.close("GetCookieResponse");
    w.out
}

/// The `cookie` parameter of a ServerSync call.
pub fn cookie(op: &Element) -> Result<Option<WireCookie>, Fault> {
    super::client::cookie(op, "cookie")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wsus::soap::parse_request;

    fn op(body: &str) -> Element {
        parse_request(
            format!("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{body}</s:Body></s:Envelope>").as_bytes(),
        )
        .unwrap()
        .operation
    }

    #[test]
    fn revision_filters_read_both_lists_and_deltas() {
        let f = revision_id_list_request(&op(&format!(
            "<GetRevisionIdList xmlns=\"{SERVER_SYNC_NS}\"><filter><Anchor>9438,2026-10-04 16:09:27.371</Anchor><GetConfig>false</GetConfig><Categories><IdAndDelta><Id>8c3fcc84-7410-4a95-8b89-a166a0190486</Id><Delta>true</Delta></IdAndDelta></Categories><Classifications><IdAndDelta><Id>e0789628-ce08-4437-be74-2495b842f43b</Id><Delta>false</Delta></IdAndDelta></Classifications></filter></GetRevisionIdList>"
        )))
        .unwrap();
        assert_eq!(f.anchor.as_deref(), Some("9438,2026-10-04 16:09:27.371"));
        assert!(!f.get_config);
        assert_eq!(
            f.categories.unwrap()[0],
            (Guid::parse("8c3fcc84-7410-4a95-8b89-a166a0190486").unwrap(), true)
        );
        assert!(!f.classifications.unwrap()[0].1);
        assert!(
            revision_id_list_request(&op(&format!(
                "<GetRevisionIdList xmlns=\"{SERVER_SYNC_NS}\"/>"
            )))
            .is_err()
        );
    }

    #[test]
    fn dss_accounts_take_the_guid_from_either_field() {
        let a = dss_auth_request(&op(&format!("<GetAuthorizationCookie xmlns=\"{DSS_AUTH_NS}\"><accountName>6f1c2f6e-3f0b-4d3a-9b1e-0d2f6a1c5e12</accountName><accountGuid>dss.example</accountGuid></GetAuthorizationCookie>"))).unwrap();
        assert_eq!(
            (a.account_name.as_str(), a.account_guid.to_string().as_str()),
            ("dss.example", "6f1c2f6e-3f0b-4d3a-9b1e-0d2f6a1c5e12")
        );
        assert!(dss_auth_request(&op(&format!("<GetAuthorizationCookie xmlns=\"{DSS_AUTH_NS}\"><accountName>a</accountName><accountGuid>b</accountGuid></GetAuthorizationCookie>"))).is_err());
    }

    #[test]
    fn update_data_escapes_documents_and_lists_files() {
        let d = [7u8; 20];
        let out = update_data_response(
            &[UpdateDataOut {
                id: Guid::from_bytes([1; 16]),
                revision: 200,
                document: "<upd:Update a=\"1\">&</upd:Update>",
                file_digests: &[d],
            }],
            &[FileUrlOut { digest: d, mu_url: "http://download.windowsupdate.com/x_07.exe" }],
        );
        assert!(
            out.contains(
                "<XmlUpdateBlob>&lt;upd:Update a=\"1\"&gt;&amp;&lt;/upd:Update&gt;</XmlUpdateBlob>"
            ),
            "{out}"
        );
        assert!(out.contains("<fileUrls><ServerSyncUrlData><FileDigest>BwcHBwcHBwcHBwcHBwcHBwcHBwc=</FileDigest><MUUrl>http://download.windowsupdate.com/x_07.exe</MUUrl><UssUrl /></ServerSyncUrlData></fileUrls>"), "{out}");
    }
}
