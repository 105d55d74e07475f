//! A session with an upstream's ServerSync service: authorization, the cookie, and every call
//! re-authorizing once when the upstream says the cookie is no longer good.

use super::UpstreamError;
use super::transport::Transport;
use crate::catalog::Guid;
use crate::wsus::client::WireCookie;
use crate::wsus::downstream::{self as wire, AnswerError, FileUrl, Filter, UpdateData};
use crate::wsus::server_sync::ConfigData;
use std::sync::Mutex;

/// Small answers (handshake, configuration) never come close to this.
const SMALL_ANSWER: u64 = 16 << 20;
/// Revision lists run to megabytes (24,509 ids are 3 MB).
const LIST_ANSWER: u64 = 512 << 20;
/// A batch of full documents (the largest real one is 46 MB).
const DATA_ANSWER: u64 = 2 << 30;

/// What one GetUpdateData call brought: documents and file locations.
pub type Fetched = (Vec<UpdateData>, Vec<FileUrl>);

pub struct Session {
    transport: Transport,
    /// `.../ServerSyncWebService/ServerSyncWebService.asmx`.
    url: String,
    account_name: String,
    account_guid: Guid,
    cookie: Mutex<Option<WireCookie>>,
    log: Mutex<Vec<String>>,
}

/// The service root of a ServerSync URL (`https://host/` for DssAuth's relative URL).
fn service_root(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    match lower.find("/serversyncwebservice/") {
        Some(i) => url[..i + 1].to_string(),
        None => format!("{}/", url.trim_end_matches('/')),
    }
}

/// A ServerSync URL from what a user may give: the full URL, or a server's base URL.
pub fn server_sync_url(upstream: &str) -> String {
    let u = upstream.trim().trim_end_matches('/');
    if u.to_ascii_lowercase().ends_with(".asmx") {
        u.to_string()
    } else {
        format!("{u}/ServerSyncWebService/ServerSyncWebService.asmx")
    }
}

/// Faults that mean "authorize again and repeat the call".
fn needs_reauthorization(e: &AnswerError) -> bool {
    matches!(
        e.fault_code(),
        Some("InvalidCookie" | "CookieExpired" | "InvalidAuthorizationCookie" | "ServerChanged")
    )
}

impl Session {
    pub fn new(
        transport: Transport,
        upstream: &str,
        account_name: &str,
        account_guid: Guid,
    ) -> Session {
        Session {
            transport,
            url: server_sync_url(upstream),
            account_name: account_name.to_string(),
            account_guid,
            cookie: Mutex::new(None),
            log: Mutex::new(Vec::new()),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// `scheme://host:port` of an upstream's ServerSync URL (content URLs of a WSUS upstream
    /// hang off it).
    pub fn base_url_of(server_sync_url: &str) -> String {
        service_root(server_sync_url).trim_end_matches('/').to_string()
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// What was retried or renewed so far (for the caller to show).
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().expect("log lock"))
    }

    fn post(
        &self,
        url: &str,
        action: &str,
        body: &str,
        limit: u64,
        operation: &str,
    ) -> Result<Vec<u8>, UpstreamError> {
        let mut log = |m: &str| self.log.lock().expect("log lock").push(m.to_string());
        let (status, bytes) = self.transport.soap(url, action, body, limit, operation, &mut log)?;
        match status {
            200 | 500 => Ok(bytes),
            other => Err(UpstreamError::Status {
                operation: operation.to_string(),
                url: url.to_string(),
                status: other,
            }),
        }
    }

    fn answer<T>(operation: &str, r: Result<T, AnswerError>) -> Result<T, UpstreamError> {
        r.map_err(|e| UpstreamError::Answer {
            operation: operation.to_string(),
            message: e.to_string(),
            fault: e.fault_code().map(str::to_string),
        })
    }

    /// GetAuthConfig, DssAuth GetAuthorizationCookie, GetCookie.
    pub fn authorize(&self) -> Result<WireCookie, UpstreamError> {
        let bytes = self.post(
            &self.url,
            &wire::action("GetAuthConfig"),
            &wire::get_auth_config(),
            SMALL_ANSWER,
            "GetAuthConfig",
        )?;
        let auth_path = Self::answer("GetAuthConfig", wire::read_auth_config(&bytes))?;
        let auth_url = if auth_path.starts_with("http://") || auth_path.starts_with("https://") {
            auth_path
        } else {
            format!("{}{}", service_root(&self.url), auth_path.trim_start_matches('/'))
        };
        let body = wire::get_authorization_cookie(&self.account_name, &self.account_guid);
        let bytes = self.post(
            &auth_url,
            &wire::dss_auth_action(),
            &body,
            SMALL_ANSWER,
            "GetAuthorizationCookie",
        )?;
        let auth = Self::answer("GetAuthorizationCookie", wire::read_authorization_cookie(&bytes))?;
        let old = self.cookie.lock().expect("cookie lock").clone();
        let body = wire::get_cookie(&auth, old.as_ref());
        let bytes =
            self.post(&self.url, &wire::action("GetCookie"), &body, SMALL_ANSWER, "GetCookie")?;
        let cookie = Self::answer("GetCookie", wire::read_cookie(&bytes))?;
        *self.cookie.lock().expect("cookie lock") = Some(cookie.clone());
        Ok(cookie)
    }

    fn cookie(&self) -> Result<WireCookie, UpstreamError> {
        let current = self.cookie.lock().expect("cookie lock").clone();
        match current {
            Some(c) => Ok(c),
            None => self.authorize(),
        }
    }

    /// One call with the cookie; on a cookie fault, authorize again and repeat it once.
    fn call<T>(
        &self,
        operation: &str,
        limit: u64,
        body: impl Fn(&WireCookie) -> String,
        read: impl Fn(&[u8]) -> Result<T, AnswerError>,
    ) -> Result<T, UpstreamError> {
        let mut cookie = self.cookie()?;
        for attempt in 0..2 {
            let bytes =
                self.post(&self.url, &wire::action(operation), &body(&cookie), limit, operation)?;
            match read(&bytes) {
                Err(e) if attempt == 0 && needs_reauthorization(&e) => {
                    self.log
                        .lock()
                        .expect("log lock")
                        .push(format!("{operation}: {e}; authorizing again"));
                    cookie = self.authorize()?;
                }
                other => return Self::answer(operation, other),
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    pub fn config_data(&self, anchor: Option<&str>) -> Result<ConfigData, UpstreamError> {
        self.call(
            "GetConfigData",
            SMALL_ANSWER,
            |c| wire::get_config_data(c, anchor),
            wire::read_config_data,
        )
    }

    pub fn revision_ids(
        &self,
        filter: &Filter<'_>,
    ) -> Result<(String, Vec<(Guid, i32)>), UpstreamError> {
        self.call(
            "GetRevisionIdList",
            LIST_ANSWER,
            |c| wire::get_revision_id_list(c, filter),
            wire::read_revision_id_list,
        )
    }

    pub fn update_data(&self, ids: &[(Guid, i32)]) -> Result<Fetched, UpstreamError> {
        self.call(
            "GetUpdateData",
            DATA_ANSWER,
            |c| wire::get_update_data(c, ids),
            wire::read_update_data,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_accept_a_base_or_the_service() {
        assert_eq!(
            server_sync_url("http://wsus:8530/"),
            "http://wsus:8530/ServerSyncWebService/ServerSyncWebService.asmx"
        );
        let mu = "https://sws.update.microsoft.com/ServerSyncWebService/ServerSyncWebService.asmx";
        assert_eq!(server_sync_url(mu), mu);
        assert_eq!(service_root(mu), "https://sws.update.microsoft.com/");
        assert_eq!(
            service_root("http://wsus:8530/serversyncwebservice/serversyncwebservice.asmx"),
            "http://wsus:8530/"
        );
    }
}
