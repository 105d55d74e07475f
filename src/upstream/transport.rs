//! HTTP to an upstream: TLS with the system's roots (plus `--ca-cert`), proxies (`--proxy` or
//! the usual environment variables), retries with backoff for what is worth retrying, and
//! limits on how much an answer may hold.

use super::UpstreamError;
use std::path::Path;
use std::time::Duration;
use ureq::Agent;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// How a transport is set up.
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// Extra trusted root certificates (PEM), beside the system's.
    pub ca_cert: Option<std::path::PathBuf>,
    /// `http://proxy:3128`; without it, `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` apply.
    pub proxy: Option<String>,
    /// No answer within this time (connect, headers, or a stalled body): retried.
    pub timeout: Option<Duration>,
    /// Attempts per call (retries on 5xx, timeouts and connection errors).
    pub attempts: Option<u32>,
}

#[derive(Clone)]
pub struct Transport {
    agent: Agent,
    attempts: u32,
}

/// What was retried, for the caller's log.
pub type RetryLog<'a> = dyn FnMut(&str) + 'a;

fn root_certs(extra: Option<&Path>) -> Result<RootCerts, UpstreamError> {
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        certs.push(Certificate::from_der(c.as_ref()).to_owned());
    }
    if let Some(path) = extra {
        let pem = std::fs::read(path)
            .map_err(|e| UpstreamError::Config(format!("--ca-cert {}: {e}", path.display())))?;
        let before = certs.len();
        for item in ureq::tls::parse_pem(&pem) {
            if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                certs.push(c);
            }
        }
        if certs.len() == before {
            return Err(UpstreamError::Config(format!(
                "--ca-cert {}: no PEM certificate in it",
                path.display()
            )));
        }
    }
    if certs.is_empty() {
        // No system store (a minimal container): Mozilla's roots as bundled with the TLS stack.
        return Ok(RootCerts::WebPki);
    }
    Ok(RootCerts::new_with_certs(&certs))
}

impl Transport {
    pub fn new(options: &TransportOptions) -> Result<Transport, UpstreamError> {
        let timeout = options.timeout.unwrap_or(Duration::from_secs(120));
        let proxy = match &options.proxy {
            Some(p) => Some(
                ureq::Proxy::new(p)
                    .map_err(|e| UpstreamError::Config(format!("--proxy {p}: {e}")))?,
            ),
            None => ureq::Proxy::try_from_env(),
        };
        let config = Agent::config_builder()
            .tls_config(
                TlsConfig::builder().root_certs(root_certs(options.ca_cert.as_deref())?).build(),
            )
            .proxy(proxy)
            .http_status_as_error(false)
            .max_redirects(5)
            .timeout_connect(Some(timeout.min(Duration::from_secs(30))))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Transport {
            agent: Agent::new_with_config(config),
            attempts: options.attempts.unwrap_or(5).max(1),
        })
    }

    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// Posts a SOAP request; returns the status and body (at most `limit` bytes). Connection
    /// errors, timeouts and 502/503/504 are retried with backoff; a 500 is a SOAP fault and
    /// goes back to the caller.
    pub fn soap(
        &self,
        url: &str,
        action: &str,
        body: &str,
        limit: u64,
        operation: &str,
        log: &mut RetryLog<'_>,
    ) -> Result<(u16, Vec<u8>), UpstreamError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .agent
                .post(url)
                .header("Content-Type", "text/xml; charset=utf-8")
                .header("SOAPAction", action)
                .send(body)
                .map_err(|e| match e {
                    ureq::Error::TooManyRedirects => UpstreamError::Config(format!(
                        "{operation} at {url}: too many redirects (a redirect loop?)"
                    )),
                    e => UpstreamError::Http {
                        operation: operation.to_string(),
                        url: url.to_string(),
                        message: e.to_string(),
                    },
                })
                .and_then(|mut r| {
                    let status = r.status().as_u16();
                    // An answer that says up front it is too large is refused before it is read.
                    let declared = r
                        .headers()
                        .get("content-length")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    if declared.is_some_and(|n| n > limit) {
                        return Err(UpstreamError::TooLarge {
                            operation: operation.to_string(),
                            limit,
                        });
                    }
                    let bytes = r.body_mut().with_config().limit(limit).read_to_vec().map_err(
                        |e| match e {
                            ureq::Error::BodyExceedsLimit(_) => {
                                UpstreamError::TooLarge { operation: operation.to_string(), limit }
                            }
                            other => UpstreamError::Http {
                                operation: operation.to_string(),
                                url: url.to_string(),
                                message: other.to_string(),
                            },
                        },
                    )?;
                    Ok((status, bytes))
                });
            let retry = match &result {
                // A 500 with a SOAP fault is an answer; one without (a proxy's or IIS's error
                // page) is a server having trouble.
                Ok((500, bytes)) => memchr::memmem::find(bytes, b"Fault").is_none(),
                Ok((status, _)) => matches!(status, 502..=504 | 408 | 429),
                Err(UpstreamError::Http { .. }) => true,
                Err(_) => false,
            };
            if !retry || attempt >= self.attempts {
                return match result {
                    Ok((status, _)) if retry => Err(UpstreamError::Status {
                        operation: operation.to_string(),
                        url: url.to_string(),
                        status,
                    }),
                    other => other,
                };
            }
            let wait = backoff(attempt);
            let why = match &result {
                Ok((status, _)) => format!("HTTP {status}"),
                Err(e) => e.to_string(),
            };
            log(&format!(
                "{operation}: {why}; retrying in {:.1} s (attempt {} of {})",
                wait.as_secs_f64(),
                attempt + 1,
                self.attempts
            ));
            std::thread::sleep(wait);
        }
    }

    /// GET with optional headers; the response for the caller to stream.
    pub fn get(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let mut request = self.agent.get(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.call()
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// 0.5 s, 1 s, 2 s, ... up to 16 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64 << attempt.saturating_sub(1).min(5))
}
