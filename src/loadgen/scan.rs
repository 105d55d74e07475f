//! One simulated Windows Update Agent: the calls of a first scan as the native client makes them
//! (`conformance/wua-native/scan` and `flow`), then repeat scans with its cache, then downloads.

use super::http::HttpClient;
use super::machine::Profile;
use super::stats::Stats;
use crate::catalog::Guid;
use crate::wsus::agent::{self as wire, AnswerError, SyncRequest};
use crate::wsus::client::WireCookie;
use std::path::PathBuf;
use std::time::Instant;

/// WUA gives up after this many SyncUpdates calls in one scan (0x80244010).
pub const MAX_SYNC_CALLS: usize = 200;
/// GetExtendedUpdateInfo takes at most this many revisions per call.
pub const EXTENDED_BATCH: usize = 50;
const CONTENT_PIECE: u64 = 1 << 20;
const CLIENT_PATH: &str = "/ClientWebService/client.asmx";
const AUTH_PATH: &str = "/SimpleAuthWebService/SimpleAuth.asmx";
const REPORTING_PATH: &str = "/ReportingWebService/ReportingWebService.asmx";
/// The largest answer decoded from xpress (the largest real Core fragment is 46 MB).
const MAX_ANSWER_BYTES: usize = 256 << 20;
const DEVICES: &[&str] = &["PCI\\VEN_8086&DEV_15F3", "USB\\VID_046D&PID_C52B", "ACPI\\PNP0C0A"];

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{operation}: {source}")]
    Io { operation: &'static str, source: std::io::Error },
    #[error("{operation}: HTTP {status}")]
    Status { operation: &'static str, status: u16 },
    #[error("{operation}: {source}")]
    Answer { operation: &'static str, source: AnswerError },
    #[error("{operation}: the xpress-compressed answer does not decode: {source}")]
    Xpress { operation: &'static str, source: crate::wsus::xpress::XpressError },
    #[error(
        "more than {0} SyncUpdates calls in one scan (WUA stops after {MAX_SYNC_CALLS} with 0x80244010)"
    )]
    TooManyRoundTrips(usize),
}

/// Where answers come from: the server itself, or answers recorded earlier and served as static
/// files (to compare with a plain web server).
#[derive(Debug, Clone)]
pub enum Target {
    /// A WSUS-compatible server; `xpress`: ask for xpress-compressed answers, as real agents do.
    Server {
        xpress: bool,
    },
    Static,
}

pub struct Agent<'a> {
    http: HttpClient,
    prefix: String,
    target: Target,
    record: Option<PathBuf>,
    download: bool,
    profile: &'a Profile,
    /// SyncUpdates calls of the software pass before the scan fails (WUA's `MAX_SYNC_CALLS`;
    /// more only to measure how many a scan would need).
    pub max_sync_calls: usize,
    pub stats: Stats,
    client_id: String,
    dns_name: String,
    cookie: WireCookie,
    installed: Vec<i32>,
    other_cached: Vec<i32>,
    /// Leaf revisions the machine needs: (revision id, update id, action).
    needed: Vec<(i32, Guid, String)>,
    install_offered: usize,
    /// Numbering of calls within a scan, for recorded answers.
    phase: &'static str,
    call: usize,
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl<'a> Agent<'a> {
    pub fn new(
        authority: &str,
        prefix: &str,
        target: Target,
        record: Option<PathBuf>,
        download: bool,
        profile: &'a Profile,
    ) -> Agent<'a> {
        Agent {
            http: HttpClient::new(authority),
            prefix: prefix.to_string(),
            target,
            record,
            download,
            profile,
            max_sync_calls: MAX_SYNC_CALLS,
            stats: Stats::default(),
            client_id: String::new(),
            dns_name: String::new(),
            cookie: WireCookie { expiration: String::new(), data: None },
            installed: Vec::new(),
            other_cached: Vec::new(),
            needed: Vec::new(),
            install_offered: 0,
            phase: "first",
            call: 0,
        }
    }

    /// Makes the next calls to another server (`http://host:port` and path prefix), as a
    /// client behind a load balancer without affinity: its cookie and registration go along.
    pub fn move_to(&mut self, authority: &str, prefix: &str) {
        if self.http.authority() != authority || self.prefix != prefix {
            self.http = HttpClient::new(authority);
            self.prefix = prefix.to_string();
        }
    }

    /// Updates the server offered for install in the last first scan.
    pub fn offered_for_install(&self) -> usize {
        self.install_offered
    }

    /// Of those, the ones this machine needs (and downloaded).
    pub fn needed_for_install(&self) -> usize {
        self.needed.iter().filter(|n| n.2 == "Install").count()
    }

    /// One SOAP call: timed, recorded, checked.
    async fn call(
        &mut self,
        operation: &'static str,
        path: &str,
        action: &str,
        body: String,
    ) -> Result<Vec<u8>, ScanError> {
        let key = format!("{}-{}-{:03}", self.profile.index, self.phase, self.call);
        self.call += 1;
        let started = Instant::now();
        let response = match self.target {
            Target::Server { xpress } => {
                let mut headers = vec![
                    ("Content-Type", "text/xml; charset=utf-8"),
                    ("SOAPAction", action),
                    ("User-Agent", "Windows-Update-Agent/1507.2601.30012.0 Client-Protocol/2.90"),
                ];
                // The agent asks the client and SimpleAuth services only (MS-WUSP §2.1.1).
                if xpress && path != REPORTING_PATH {
                    headers.push(("Accept-Encoding", "xpress"));
                }
                self.http
                    .request(
                        "POST",
                        &format!("{}{path}", self.prefix),
                        &headers,
                        body.as_bytes(),
                        true,
                    )
                    .await
            }
            Target::Static => {
                self.http
                    .request("GET", &format!("{}/answers/{key}.xml", self.prefix), &[], &[], true)
                    .await
            }
        };
        let elapsed = started.elapsed();
        let response = match response {
            Ok(r) => r,
            Err(source) => {
                self.stats.error(operation);
                return Err(ScanError::Io { operation, source });
            }
        };
        if response.status != 200 {
            self.stats.error(operation);
            // A fault is an answer too: say which.
            if response.status == 500
                && let Ok(root) = wire::parse(&response.body)
                && let Err(source) = wire::result_of(&root, operation)
            {
                return Err(ScanError::Answer { operation, source });
            }
            return Err(ScanError::Status { operation, status: response.status });
        }
        self.stats.record(operation, elapsed);
        self.stats.answer_wire_bytes += response.length;
        let response = if response.xpress {
            let plain = crate::wsus::xpress::unframe(&response.body, MAX_ANSWER_BYTES)
                .map_err(|source| ScanError::Xpress { operation, source })?;
            super::http::Response { body: plain, ..response }
        } else {
            response
        };
        self.stats.answer_bytes += response.body.len() as u64;
        if let Some(dir) = &self.record {
            // The request beside its answer, for benchmarks that replay one call (wrk).
            let answers = dir.join("answers");
            std::fs::write(answers.join(format!("{key}.xml")), &response.body)
                .and_then(|()| std::fs::write(answers.join(format!("{key}.request")), &body))
                .map_err(|source| ScanError::Io { operation, source })?;
        }
        Ok(response.body)
    }

    fn answer<T>(operation: &'static str, r: Result<T, AnswerError>) -> Result<T, ScanError> {
        r.map_err(|source| ScanError::Answer { operation, source })
    }

    fn result<'x>(
        operation: &'static str,
        root: &'x crate::wsus::tree::Element,
    ) -> Result<&'x crate::wsus::tree::Element, ScanError> {
        Self::answer(operation, wire::result_of(root, operation))
    }

    /// A first scan as a new machine: handshake, registration, software and driver passes,
    /// extended information, a status report, then the downloads of what is approved.
    pub async fn first_scan(&mut self) -> Result<(), ScanError> {
        let id = crate::random::guid();
        self.client_id = id.to_string();
        self.dns_name = format!("loadgen-{}.example", &self.client_id[..8]);
        self.installed.clear();
        self.other_cached.clear();
        self.needed.clear();
        self.install_offered = 0;
        self.phase = "first";
        self.call = 0;

        let body = self
            .call(
                "GetConfig",
                CLIENT_PATH,
                &wire::client_action("GetConfig"),
                wire::get_config(wire::AGENT_PROTOCOL),
            )
            .await?;
        let root = Self::answer("GetConfig", wire::parse(&body))?;
        let last_change = Self::result("GetConfig", &root)?
            .child_text("LastChange")
            .unwrap_or_default()
            .to_string();

        let action = format!("\"{}/GetAuthorizationCookie\"", crate::wsus::client::SIMPLE_AUTH_NS);
        let body = self
            .call(
                "GetAuthorizationCookie",
                AUTH_PATH,
                &action,
                wire::get_authorization_cookie(&self.client_id, &self.dns_name, &[]),
            )
            .await?;
        let root = Self::answer("GetAuthorizationCookie", wire::parse(&body))?;
        let auth = Self::result("GetAuthorizationCookie", &root)?
            .child_text("CookieData")
            .unwrap_or_default()
            .to_string();
        let auth = crate::wsus::client::base64(&auth, "CookieData").unwrap_or_default();

        let now = now();
        let body = self
            .call(
                "GetCookie",
                CLIENT_PATH,
                &wire::client_action("GetCookie"),
                wire::get_cookie(&auth, &now, &last_change, &now, wire::AGENT_PROTOCOL),
            )
            .await?;
        let root = Self::answer("GetCookie", wire::parse(&body))?;
        self.cookie =
            wire::read_cookie(Self::result("GetCookie", &root)?).ok_or(ScanError::Answer {
                operation: "GetCookie",
                source: AnswerError::Missing("a cookie"),
            })?;

        let info = wire::ComputerInfo {
            dns_name: &self.dns_name,
            os_build: self.profile.os_build,
            manufacturer: "Contoso",
            model: self.profile.name,
            os_description: self.profile.os_description,
        };
        let body = wire::register_computer(&self.cookie, &info);
        self.call("RegisterComputer", CLIENT_PATH, &wire::client_action("RegisterComputer"), body)
            .await?;

        self.software_pass().await?;
        self.driver_pass().await?;
        let files = self.extended_info().await?;
        self.report().await?;
        if self.download {
            self.download_files(&files).await?;
        }
        self.stats.scans += 1;
        Ok(())
    }

    /// A later scan with a warm cache: what a fleet does every day.
    pub async fn repeat_scan(&mut self) -> Result<(), ScanError> {
        self.phase = "repeat";
        self.call = 0;
        self.software_pass().await?;
        self.driver_pass().await?;
        self.report().await?;
        self.stats.scans += 1;
        Ok(())
    }

    /// SyncUpdates until an answer is not truncated and brings no new non-leaf update.
    async fn software_pass(&mut self) -> Result<(), ScanError> {
        for _ in 0..self.max_sync_calls {
            let request = SyncRequest {
                installed_non_leaf: &self.installed,
                other_cached: &self.other_cached,
                ..Default::default()
            };
            let body = wire::sync_updates(&self.cookie, &request);
            let answer = self
                .call("SyncUpdates", CLIENT_PATH, &wire::client_action("SyncUpdates"), body)
                .await?;
            let bytes = answer.len();
            let answer = Self::answer("SyncUpdates", wire::read_sync_summary(&answer))?;
            self.stats.sync_page(answer.new_updates.len(), bytes);
            if let Some(c) = answer.new_cookie {
                self.cookie = c;
            }
            let gone: std::collections::HashSet<i32> =
                answer.out_of_scope.iter().copied().collect();
            if !gone.is_empty() {
                self.installed.retain(|i| !gone.contains(i));
                self.other_cached.retain(|i| !gone.contains(i));
            }
            let mut new_non_leaf = false;
            for u in &answer.new_updates {
                self.install_offered += usize::from(u.is_leaf && u.action == "Install");
                if !u.is_leaf {
                    new_non_leaf = true;
                    // WSUS refuses more than 400 installed non-leaf ids; the agent keeps within it.
                    if self.profile.installed(u) && self.installed.len() < 400 {
                        self.installed.push(u.revision_id);
                        continue;
                    }
                } else if let Some(id) = u.update_id
                    && matches!(u.action.as_str(), "Install" | "PreDeploymentCheck" | "Bundle")
                    && self.profile.needs(&id, &u.action)
                {
                    self.needed.push((u.revision_id, id, u.action.clone()));
                }
                self.other_cached.push(u.revision_id);
            }
            for u in &answer.changed_updates {
                if u.action == "Install"
                    && let Some(n) = self.needed.iter_mut().find(|n| n.0 == u.revision_id)
                {
                    n.2 = u.action.clone();
                }
            }
            if !answer.truncated && !new_non_leaf {
                return Ok(());
            }
        }
        self.stats.error("SyncUpdates");
        Err(ScanError::TooManyRoundTrips(self.max_sync_calls))
    }

    async fn driver_pass(&mut self) -> Result<(), ScanError> {
        let request = SyncRequest {
            installed_non_leaf: &self.installed,
            skip_software_sync: true,
            devices: DEVICES,
            ..Default::default()
        };
        let body = wire::sync_updates(&self.cookie, &request);
        let answer = self
            .call("SyncUpdates", CLIENT_PATH, &wire::client_action("SyncUpdates"), body)
            .await?;
        let bytes = answer.len();
        let answer = Self::answer("SyncUpdates", wire::read_sync_summary(&answer))?;
        self.stats.sync_page(answer.new_updates.len(), bytes);
        if let Some(c) = answer.new_cookie {
            self.cookie = c;
        }
        Ok(())
    }

    /// Extended information of the needed updates, approved ones first; returns the file URLs of
    /// the approved ones.
    async fn extended_info(&mut self) -> Result<Vec<String>, ScanError> {
        let mut approved: Vec<i32> =
            self.needed.iter().filter(|n| n.2 == "Install").map(|n| n.0).collect();
        let mut rest: Vec<i32> =
            self.needed.iter().filter(|n| n.2 != "Install").map(|n| n.0).collect();
        approved.sort_unstable();
        rest.sort_unstable();
        let mut urls = Vec::new();
        for (batch, keep_files) in approved
            .chunks(EXTENDED_BATCH)
            .map(|b| (b, true))
            .chain(rest.chunks(EXTENDED_BATCH).map(|b| (b, false)))
        {
            let body = wire::get_extended_update_info(&self.cookie, batch, &["en-US", "en"]);
            let answer = self
                .call(
                    "GetExtendedUpdateInfo",
                    CLIENT_PATH,
                    &wire::client_action("GetExtendedUpdateInfo"),
                    body,
                )
                .await?;
            if keep_files {
                let root = Self::answer("GetExtendedUpdateInfo", wire::parse(&answer))?;
                let result = Self::result("GetExtendedUpdateInfo", &root)?;
                urls.extend(wire::read_file_locations(result).into_iter().map(|(_, url)| url));
            }
        }
        urls.sort();
        urls.dedup();
        Ok(urls)
    }

    async fn report(&mut self) -> Result<(), ScanError> {
        let now = now();
        // As the native agent reports: detection finished (147), then the status report (156)
        // listing the applicable updates it has not installed (U).
        let needed: Vec<String> =
            self.needed.iter().map(|(_, id, _)| id.to_string().to_uppercase()).collect();
        let none = Guid::from_bytes([0; 16]);
        let event = |event_id, misc| wire::Event {
            instance_id: crate::random::guid(),
            event_id,
            update_id: none,
            revision_number: 0,
            hresult: 0,
            time: &now,
            misc,
        };
        let events =
            vec![event(147, Vec::new()), event(156, vec![format!("U={}", needed.join(";"))])];
        let body = wire::report_event_batch(&self.cookie, &self.client_id, &now, &events);
        let action = format!("\"{}/ReportEventBatch\"", crate::wsus::client::REPORTING_NS);
        self.call("ReportEventBatch", REPORTING_PATH, &action, body).await?;
        self.stats.events_reported += events.len() as u64;
        Ok(())
    }

    /// Ranged GETs of 1 MiB, as Delivery Optimization fetches content.
    async fn download_files(&mut self, urls: &[String]) -> Result<(), ScanError> {
        for url in urls {
            let path = match url.find("/Content/").or_else(|| url.find("/content/")) {
                Some(i) => format!("{}{}", self.prefix, &url[i..]),
                None => continue,
            };
            // Pieces until one comes back short (or, for a size that is a multiple of the
            // piece, until the range starts past the end: 416).
            let mut offset = 0u64;
            loop {
                let range = format!("bytes={}-{}", offset, offset + CONTENT_PIECE - 1);
                let started = Instant::now();
                let r = match self
                    .http
                    .request(
                        "GET",
                        &path,
                        &[
                            ("Range", &range),
                            ("User-Agent", "Microsoft-Delivery-Optimization/10.1"),
                        ],
                        &[],
                        false,
                    )
                    .await
                {
                    Ok(r) => r,
                    Err(source) => {
                        self.stats.error("Content");
                        return Err(ScanError::Io { operation: "Content", source });
                    }
                };
                match r.status {
                    206 | 200 => {
                        self.stats.record("Content", started.elapsed());
                        self.stats.content_bytes += r.length;
                        offset += r.length;
                        if r.status == 200 || r.length < CONTENT_PIECE {
                            break;
                        }
                    }
                    416 if offset > 0 => break,
                    status => {
                        self.stats.error("Content");
                        return Err(ScanError::Status { operation: "Content", status });
                    }
                }
            }
        }
        Ok(())
    }
}
