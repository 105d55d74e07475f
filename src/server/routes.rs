//! Which path goes where (case-insensitively, as IIS matches them), and SOAP in and out:
//! body limits, the operation from SOAPAction or the body, faults as WSUS sends them.

use super::body::PiecesBody;
use super::budget::{BodyRefusal, Held};
use super::client_service::{self, Answer, Context};
use super::metrics;
use super::state::AppState;
use crate::wsus::client::WireCookie;
use crate::wsus::shape::{self, Cut};
use crate::wsus::soap::{self, EnvelopeStyle, ErrorCode, Fault, Piece, SoapVersion};
use crate::wsus::xpress;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use futures_util::FutureExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest SOAP request accepted. A client with 5,000 cached revisions and its device list sends
/// about 100 KB; 10,000 ids are about 200 KB.
pub const MAX_REQUEST_BYTES: usize = 8 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Client,
    SimpleAuth,
    Reporting,
    ServerSync,
    DssAuth,
}

impl Service {
    fn from_path(lower: &str) -> Option<Service> {
        match lower {
            "/clientwebservice/client.asmx" => Some(Service::Client),
            "/simpleauthwebservice/simpleauth.asmx" => Some(Service::SimpleAuth),
            "/reportingwebservice/reportingwebservice.asmx"
            | "/reportingwebservice/webservice.asmx" => Some(Service::Reporting),
            "/serversyncwebservice/serversyncwebservice.asmx" => Some(Service::ServerSync),
            "/dssauthwebservice/dssauthwebservice.asmx" => Some(Service::DssAuth),
            _ => None,
        }
    }

    fn style(self) -> EnvelopeStyle {
        match self {
            Service::Client => EnvelopeStyle::Client,
            Service::SimpleAuth | Service::Reporting | Service::ServerSync | Service::DssAuth => {
                EnvelopeStyle::Asmx
            }
        }
    }

    /// The namespace of the operation elements.
    fn namespace(self) -> &'static str {
        match self {
            Service::Client => crate::wsus::client::CLIENT_NS,
            Service::SimpleAuth => crate::wsus::client::SIMPLE_AUTH_NS,
            Service::Reporting => crate::wsus::client::REPORTING_NS,
            Service::ServerSync => crate::wsus::server_sync::SERVER_SYNC_NS,
            Service::DssAuth => crate::wsus::server_sync::DSS_AUTH_NS,
        }
    }

    /// MS-WUSP §2.1.1: the services whose answers may be xpress-compressed (as WSUS does for
    /// the client and SimpleAuth services; never content, reporting or server-to-server).
    fn may_compress(self) -> bool {
        matches!(self, Service::Client | Service::SimpleAuth)
    }

    fn name(self) -> &'static str {
        match self {
            Service::Client => "ClientWebService",
            Service::SimpleAuth => "SimpleAuthWebService",
            Service::Reporting => "ReportingWebService",
            Service::ServerSync => "ServerSyncWebService",
            Service::DssAuth => "DssAuthWebService",
        }
    }
}

/// The whole HTTP surface. `scheme` is that of the listener (`http` or `https`), for content URLs.
/// `body_timeout`: a client that has not sent its whole body by then gets 408.
pub fn app(state: Arc<AppState>, scheme: &'static str, body_timeout: Duration) -> Router {
    let api = super::api::router(state.clone(), body_timeout);
    Router::new().fallback(move |request: Request| {
        let (state, api) = (state.clone(), api.clone());
        async move {
            // A bug in one handler answers 500 and leaves the server and the connection up.
            match std::panic::AssertUnwindSafe(route(state, api, scheme, body_timeout, request))
                .catch_unwind()
                .await
            {
                Ok(response) => response,
                Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
            }
        }
    })
}

fn plain(code: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CONTENT_LENGTH, text.len())
        .body(Body::from(text.to_string()))
        .expect("static response")
}

async fn route(
    state: Arc<AppState>,
    api: Router,
    scheme: &'static str,
    body_timeout: Duration,
    request: Request,
) -> Response<Body> {
    let path = request.uri().path().to_ascii_lowercase();
    if let Some(service) = Service::from_path(&path) {
        return soap_endpoint(state, scheme, service, body_timeout, request).await;
    }
    if path.starts_with("/content/") {
        let (parts, _) = request.into_parts();
        return super::downloads::serve(state, &parts.method, &path, &parts.headers).await;
    }
    if path == "/admin" || path.starts_with("/admin/") {
        return super::console::handle(state, scheme, request, body_timeout).await;
    }
    if path == "/api" || path.starts_with("/api/") {
        use tower::ServiceExt;
        return api.oneshot(request).await.unwrap_or_else(|never| match never {});
    }
    if path.starts_with("/selfupdate/") {
        let (parts, _) = request.into_parts();
        return super::downloads::serve_selfupdate(
            state,
            &parts.method,
            parts.uri.path(),
            &parts.headers,
        )
        .await;
    }
    match path.as_str() {
        "/healthz" => health(&state).await,
        "/metrics" => metrics(&state).await,
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn health(state: &Arc<AppState>) -> Response<Body> {
    match state.health.verdict() {
        super::health::Verdict::Ok => plain(StatusCode::OK, "ok\n"),
        super::health::Verdict::Unavailable(why) => {
            plain(StatusCode::SERVICE_UNAVAILABLE, &format!("{why}\n"))
        }
    }
}

async fn metrics(state: &Arc<AppState>) -> Response<Body> {
    let s = state.clone();
    // Import results and approvals live in the store (imports run as separate commands); the
    // pool's figures are the process's own, there even when the database is not.
    let (stored, pool) = tokio::task::spawn_blocking(move || {
        let pool = s.pool.with(|store| Ok(store.pool_figures())).ok().flatten();
        let stored = s
            .pool
            .with(|store| {
                let imports = store.imports()?;
                let last = imports
                    .iter()
                    .filter_map(|i| chrono::DateTime::parse_from_rfc3339(&i.imported_at).ok())
                    .map(|t| t.timestamp().max(0) as u64)
                    .max()
                    .unwrap_or(0);
                Ok((imports.len() as u64, last, store.approvals()?.len() as u64))
            })
            .unwrap_or_default();
        (stored, pool)
    })
    .await
    .unwrap_or_default();
    let mut gauges = served_gauges(state, stored);
    gauges.extend(database_gauges(state, pool));
    let body = state.metrics.render(&gauges);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .expect("static response")
}

type Gauge = (&'static str, &'static str, u64);

/// What the server holds and serves: the catalog, the store's imports and approvals (`stored`),
/// the caches.
fn served_gauges(state: &AppState, stored: (u64, u64, u64)) -> Vec<Gauge> {
    let (imports, last_import, approvals) = stored;
    let revisions = state.catalog().revs.len() as u64;
    let computers = state.computers.read().expect("computer cache lock").len() as u64;
    use std::sync::atomic::Ordering::Relaxed;
    vec![
        ("ferry_catalog_revisions", "Revisions the server offers.", revisions),
        ("ferry_computers", "Computers known to the server.", computers),
        ("ferry_imports", "Bundles imported into the store.", imports),
        (
            "ferry_last_import_timestamp_seconds",
            "When the newest import committed (Unix time; 0: none).",
            last_import,
        ),
        ("ferry_approvals", "Approvals (update x group).", approvals),
        (
            "ferry_answer_cache_hits_total",
            "SOAP answers served from the cache of rendered answers.",
            state.answers.hits.load(Relaxed),
        ),
        (
            "ferry_answer_cache_misses_total",
            "SOAP answers rendered (not found in the answer cache).",
            state.answers.misses.load(Relaxed),
        ),
        (
            "ferry_answer_cache_evictions_total",
            "Answers dropped from the cache to stay within its limit.",
            state.answers.evictions.load(Relaxed),
        ),
        (
            "ferry_answer_cache_bytes",
            "Bytes the answer cache holds now.",
            state.answers.bytes() as u64,
        ),
        (
            "ferry_answer_cache_limit_bytes",
            "The most the answer cache may hold.",
            state.answers.limit() as u64,
        ),
        ("ferry_answer_cache_entries", "Answers in the cache now.", state.answers.entries() as u64),
        (
            "ferry_request_shape_hits_total",
            "Client requests whose parse was found by their shape (the request without its cookie).",
            state.shapes.hits.load(Relaxed),
        ),
        (
            "ferry_request_shape_misses_total",
            "Client requests of a shared operation whose shape was not kept yet (parsed, then kept).",
            state.shapes.misses.load(Relaxed),
        ),
        (
            "ferry_request_shape_bytes",
            "Bytes the kept parses of request shapes hold now.",
            state.shapes.bytes() as u64,
        ),
    ]
}

/// The database pool's figures and the change listener's, where the store has them (on
/// PostgreSQL).
fn database_gauges(state: &AppState, pool: Option<crate::store::PoolFigures>) -> Vec<Gauge> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut gauges = Vec::new();
    if let Some(p) = pool {
        gauges.extend([
            ("ferry_database_connections_max", "The most connections the pool keeps.", p.max),
            ("ferry_database_connections_in_use", "Pooled connections in use now.", p.in_use()),
            ("ferry_database_connections_idle", "Pooled connections idle now.", p.idle),
            (
                "ferry_database_connection_waits_total",
                "Times a caller found no idle pooled connection and waited for one.",
                p.waits,
            ),
            (
                "ferry_database_connection_timeouts_total",
                "Times a caller got no connection (the database unreachable, or every connection busy).",
                p.timeouts,
            ),
            (
                "ferry_database_connection_errors_total",
                "Connections that could not be made or were found broken.",
                p.errors,
            ),
        ]);
    }
    let changes = &state.changes;
    if changes.announced() {
        gauges.extend([
            (
                "ferry_change_notifications_total",
                "Changes announced to this front end (LISTEN/NOTIFY), its own among them.",
                changes.notifications.load(Relaxed),
            ),
            (
                "ferry_change_listener_connects_total",
                "Times the change listener connected (the first time, then after losing its connection).",
                changes.connects.load(Relaxed),
            ),
            (
                "ferry_change_listener_up",
                "1 while the change listener is connected.",
                u64::from(changes.listening()),
            ),
        ]);
    }
    gauges
}

/// `http://host:port` of this server as the client reached it (or as configured).
fn base_url_of(state: &AppState, scheme: &str, headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    state.public_url.clone().unwrap_or_else(|| format!("{scheme}://{host}"))
}

/// The operation a request names: SOAPAction (1.1) or the content type's `action` (1.2).
fn action_of(headers: &HeaderMap) -> Option<String> {
    if let Some(a) = headers.get("soapaction").and_then(|v| v.to_str().ok()) {
        return Some(a.to_string());
    }
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("action="))
        .map(|a| a.trim_matches('"').to_string())
}

fn soap_response(code: StatusCode, version: SoapVersion, xml: String) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, HeaderValue::from_static(version.content_type()))
        .header(header::CONTENT_LENGTH, xml.len())
        .header(header::CACHE_CONTROL, "private")
        .body(Body::from(xml))
        .expect("static response")
}

fn fault_response(
    fault: &Fault,
    version: SoapVersion,
    style: EnvelopeStyle,
    action: Option<&str>,
    actor: Option<&str>,
) -> Response<Body> {
    let id = crate::random::guid().to_string();
    soap_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        version,
        fault.render(version, style, &id, action, actor),
    )
}

/// Bodies up to this size are parsed where they arrive: with the tree's limits (attributes,
/// namespace declarations, elements) that takes well under a millisecond, less than handing the
/// work to another thread and back (a third of the rate of repeat scans).
const PARSE_IN_PLACE: usize = 64 << 10;

/// Parses a SOAP body. Parsing is CPU work that grows with the body: larger bodies go to the
/// blocking pool, never holding up the threads that answer everyone else, and one at a time per
/// core, so parsing never takes every blocking thread from the store work.
/// With the approximate size of the tree (walking a large one is work too).
async fn parse_bytes(
    state: &AppState,
    bytes: bytes::Bytes,
) -> (Result<soap::Request, Fault>, usize) {
    fn parsed(bytes: &[u8]) -> (Result<soap::Request, Fault>, usize) {
        let request = soap::parse_request(bytes);
        let tree_bytes = request.as_ref().map_or(0, |r| r.operation.approximate_bytes());
        (request, tree_bytes)
    }
    if bytes.len() <= PARSE_IN_PLACE {
        return parsed(&bytes);
    }
    let failed = || (Err(Fault::new(ErrorCode::InternalServerError, "")), 0);
    let Ok(_parser) = state.parsers.acquire().await else {
        return failed();
    };
    tokio::task::spawn_blocking(move || parsed(&bytes)).await.unwrap_or_else(|_| failed())
}

/// A parsed request with the client cookie it carries (the client and reporting services read
/// the cookie from here, never from the tree: a shape's tree holds markers in its place).
struct Incoming {
    request: Arc<soap::Request>,
    cookie: Result<Option<WireCookie>, Fault>,
    /// Parsed as a shape not kept yet: kept once the request is answered (its cookie accepted),
    /// so requests with a forged cookie cannot push out what a fleet shares.
    new_shape: bool,
}

/// Parses a SOAP body, with the size of its tree (to hold in the budget; 0 when the tree is
/// kept by its shape). A client-service request whose shape was parsed before is not parsed
/// again (`shapes.rs`); one whose shape is new is parsed as its shape (see [`keep_shape`]).
async fn parse(
    state: &AppState,
    service: Service,
    bytes: bytes::Bytes,
) -> (Result<Incoming, Fault>, usize) {
    if service == Service::Client
        && bytes.len() <= LARGEST_CUT
        && let Some(cut) = Cut::of(&bytes)
    {
        let cookie = cut.cookie().map(Some);
        if let Some(request) = state.shapes.get(&cut) {
            return (Ok(Incoming { request, cookie, new_shape: false }), 0);
        }
        match parse_bytes(state, cut.marked().into()).await {
            (Ok(request), tree_bytes) if shape::marks_hold(&request) => {
                let request = Arc::new(request);
                return (Ok(Incoming { request, cookie, new_shape: true }), tree_bytes);
            }
            // The cut landed outside the cookie (or the body does not parse): parsed whole.
            (Ok(request), tree_bytes) => drop_off_the_loop(Arc::new(request), tree_bytes),
            (Err(_), _) => {}
        }
    }
    let (parsed, tree_bytes) = parse_bytes(state, bytes).await;
    let incoming = parsed.map(|request| Incoming {
        cookie: crate::wsus::client::cookie(&request.operation, "cookie"),
        request: Arc::new(request),
        new_shape: false,
    });
    (incoming, tree_bytes)
}

/// Bodies larger than this are not cut: their shapes would be too large to keep
/// (`shapes::LARGEST_SHAPE`, with room for the cookie's texts).
const LARGEST_CUT: usize = super::shapes::LARGEST_SHAPE + 8192;

/// Keeps the parse of an answered request whose shape was new.
fn keep_shape(state: &AppState, body: &[u8], request: &Arc<soap::Request>, tree_bytes: usize) {
    if let Some(cut) = Cut::of(body) {
        state.shapes.keep(&cut, request, tree_bytes);
    }
}

/// Trees larger than this are freed on the blocking pool: freeing 100,000 elements takes long
/// enough to hold up the other connections of the thread that would do it.
const DROP_IN_PLACE: usize = 1 << 20;

fn drop_off_the_loop(request: Arc<soap::Request>, tree_bytes: usize) {
    if tree_bytes > DROP_IN_PLACE {
        tokio::task::spawn_blocking(move || drop(request));
    }
}

/// Answers up to this size are compressed where they are built: at the compressor's 350-500
/// MB/s that is under 100 µs, and a typical page of 30 updates (about 27 KB) stays here.
/// Larger ones (up to tens of megabytes, for pages with big fragments) go to the blocking pool,
/// like large request bodies, one per core at a time.
const COMPRESS_IN_PLACE: usize = 32 << 10;

/// Whether the request accepts an xpress-compressed answer (`Accept-Encoding`, MS-WUSP §2.1.1).
fn accepts_xpress(headers: &HeaderMap) -> bool {
    crate::wsus::xpress::accepts_xpress(
        headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()),
    )
}

/// The answer as an xpress stream, counted in the budget: room for the largest stream is taken
/// before it is built (beside the answer's own bytes, `held`), and what it did not need is given
/// back once it is; the uncompressed answer is dropped then. `None`: no room (`ServerBusy`).
async fn compress(
    state: &AppState,
    body: PiecesBody,
    held: Held,
    peer: Option<std::net::IpAddr>,
) -> Option<PiecesBody> {
    let length = body.content_length() as usize;
    let mut room = state.budget.hold(xpress::frame_capacity(length), peer).await.ok()?;
    let framed = if length <= COMPRESS_IN_PLACE {
        let framed = xpress::Encoder::new().frame(body.chunks());
        drop(body);
        framed
    } else {
        let _cpu = state.parsers.acquire().await.ok()?;
        // A panic there is one in the handler: `app` answers 500.
        tokio::task::spawn_blocking(move || xpress::Encoder::new().frame(body.chunks()))
            .await
            .expect("the compressor does not panic")
    };
    drop(held);
    room.shrink_to(framed.capacity());
    state.metrics.count_xpress(length, framed.len() as u64);
    Some(PiecesBody::owned(framed).holding(room))
}

/// A successful SOAP answer: its length up front (never chunked), `Vary` where it may be
/// compressed.
fn answer_response(
    version: SoapVersion,
    service: Service,
    xpress: bool,
    body: PiecesBody,
) -> Response<Body> {
    let mut answer = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, HeaderValue::from_static(version.content_type()))
        .header(header::CACHE_CONTROL, "private")
        .header(header::CONTENT_LENGTH, body.content_length());
    if service.may_compress() {
        answer = answer.header(header::VARY, "Accept-Encoding");
    }
    if xpress {
        answer = answer.header(header::CONTENT_ENCODING, "xpress");
    }
    answer.body(Body::new(body)).expect("static response")
}

/// The address a request came from, which the listener records (absent when `app` is called
/// without a socket).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::IpAddr);

pub(super) fn peer_of(request: &Request) -> Option<std::net::IpAddr> {
    request.extensions().get::<Peer>().map(|p| p.0)
}

/// The memory budget is spent (`budget.rs`): a ServerBusy fault, which clients answer by trying
/// again later.
fn busy(state: &AppState, service: Service, version: SoapVersion) -> Response<Body> {
    state.metrics.busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    fault_response(
        &Fault::new(ErrorCode::ServerBusy, "the server is busy; try again later"),
        version,
        service.style(),
        None,
        None,
    )
}

/// SOAP 1.2 when the request says so in its content type, else 1.1 (for faults about bodies
/// that could not be parsed).
fn version_from_headers(headers: &HeaderMap) -> SoapVersion {
    match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) if ct.to_ascii_lowercase().starts_with("application/soap+xml") => SoapVersion::V12,
        _ => SoapVersion::V11,
    }
}

async fn soap_endpoint(
    state: Arc<AppState>,
    scheme: &'static str,
    service: Service,
    body_timeout: Duration,
    request: Request,
) -> Response<Body> {
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    if let Some(refused) = not_a_post(service, &parts.method) {
        return refused;
    }
    let (bytes, _body_held) =
        match read_request_body(&state, service, &parts, body, body_timeout, peer).await {
            Ok(read) => read,
            Err(refused) => return refused,
        };
    let started = Instant::now();
    // The tree is larger than its body (an empty element is 4 bytes of XML and about 160 in the
    // tree), and lives while the request is handled: counted too.
    let (parsed, tree_bytes) = parse(&state, service, bytes.clone()).await;
    let Ok(_tree_held) = state.budget.hold(tree_bytes, peer).await else {
        return busy(&state, service, version_from_headers(&parts.headers));
    };
    let xpress = service.may_compress() && accepts_xpress(&parts.headers);
    let call = Call { state: &state, scheme, service, parts: &parts, peer, xpress };
    let (label, result, version) = match parsed {
        Err(fault) => (metrics::Label::UNPARSED, Err(fault), version_from_headers(&parts.headers)),
        Ok(incoming) => call.handle(incoming, &bytes, tree_bytes).await,
    };
    state.metrics.observe(label, started.elapsed(), result.is_err());
    call.respond(label, result, version).await
}

/// What a browser (GET, HEAD) or another method gets from a SOAP endpoint; `None` for a POST.
fn not_a_post(service: Service, method: &Method) -> Option<Response<Body>> {
    if method == Method::GET || method == Method::HEAD {
        // What IIS shows a browser: the service exists and takes SOAP posts.
        let page = format!(
            "<html><body><h1>{}</h1><p>This is a SOAP endpoint of a WSUS-compatible server (ferry). POST SOAP requests to it.</p></body></html>\n",
            service.name()
        );
        let mut r = plain(StatusCode::OK, &page);
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        if method == Method::HEAD {
            *r.body_mut() = Body::empty();
        }
        return Some(r);
    }
    if method != Method::POST {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only POST is accepted here\n");
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
        return Some(r);
    }
    None
}

/// The whole request body, held in the memory budget; or the answer that refuses it.
async fn read_request_body(
    state: &AppState,
    service: Service,
    parts: &axum::http::request::Parts,
    body: Body,
    body_timeout: Duration,
    peer: Option<std::net::IpAddr>,
) -> Result<(bytes::Bytes, Held), Response<Body>> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        return Err(plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n"));
    }
    state.budget.read_body(body, MAX_REQUEST_BYTES, body_timeout, peer).await.map_err(|refusal| {
        match refusal {
            BodyRefusal::TooLarge => {
                plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
            }
            BodyRefusal::TimedOut => {
                plain(StatusCode::REQUEST_TIMEOUT, "request body not received in time\n")
            }
            BodyRefusal::Busy => busy(state, service, version_from_headers(&parts.headers)),
            BodyRefusal::Broken => {
                plain(StatusCode::BAD_REQUEST, "could not read the request body\n")
            }
        }
    })
}

/// One SOAP call being answered: where it came in and from whom.
struct Call<'a> {
    state: &'a Arc<AppState>,
    scheme: &'static str,
    service: Service,
    parts: &'a axum::http::request::Parts,
    peer: Option<std::net::IpAddr>,
    /// The request accepts an xpress-compressed answer and the service may send one.
    xpress: bool,
}

impl Call<'_> {
    /// Runs the operation a parsed request names, with the metrics label and SOAP version of
    /// its answer.
    async fn handle(
        &self,
        incoming: Incoming,
        body: &[u8],
        tree_bytes: usize,
    ) -> (metrics::Label, Result<Answer, Fault>, SoapVersion) {
        let (state, service) = (self.state, self.service);
        let Incoming { request, cookie, new_shape } = incoming;
        let result = if &*request.operation.ns != service.namespace() {
            Err(Fault::invalid(format!(
                "request: {{{}}}{} is not an operation of {}",
                request.operation.ns,
                request.name(),
                service.name()
            )))
        } else {
            let headers = &self.parts.headers;
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
            let ctx = Context {
                base_url: base_url_of(state, self.scheme, headers),
                host: host.unwrap_or("localhost").to_string(),
                peer: self.peer,
                xpress: self.xpress,
                cookie,
            };
            let result = self.operation(&ctx, &request).await;
            if new_shape && result.is_ok() {
                keep_shape(state, body, &request, tree_bytes);
            }
            result
        };
        let outcome = (metrics::Label::soap(request.name()), result, request.version);
        drop_off_the_loop(request, tree_bytes);
        outcome
    }

    async fn operation(&self, ctx: &Context, request: &soap::Request) -> Result<Answer, Fault> {
        let state = self.state;
        let text = |t: String| Answer::Fresh(vec![Piece::Text(t)]);
        match self.service {
            Service::Client => client_service::client_web_service(state, ctx, request).await,
            Service::SimpleAuth => client_service::simple_auth(state, request).await.map(text),
            Service::Reporting => client_service::reporting(state, ctx, request).await.map(text),
            Service::ServerSync => {
                super::server_sync_service::server_sync(state, ctx, request).await.map(text)
            }
            Service::DssAuth => {
                super::server_sync_service::dss_auth(state, request).await.map(text)
            }
        }
    }

    /// The HTTP answer: a shared or fresh answer (compressed when asked), or the fault.
    async fn respond(
        &self,
        label: metrics::Label,
        result: Result<Answer, Fault>,
        version: SoapVersion,
    ) -> Response<Body> {
        let (state, service, peer) = (self.state, self.service, self.peer);
        match result {
            Ok(Answer::Shared { rendered, client_part }) => {
                let (body, plain_len) = rendered.body(&client_part);
                // The whole answer is held, as any other: an answer dropped from the cache lives
                // on until this client has read it.
                let Ok(held) = state.budget.hold(body.content_length() as usize, peer).await else {
                    return busy(state, service, version);
                };
                if rendered.xpress() {
                    state.metrics.count_xpress(plain_len, body.content_length());
                }
                answer_response(version, service, rendered.xpress(), body.holding(held))
            }
            Ok(Answer::Fresh(content)) => {
                let (before, after) = soap::envelope_parts(version, service.style());
                let pieces = std::iter::once(Piece::Text(before))
                    .chain(content)
                    .chain(std::iter::once(Piece::Text(after.to_string())));
                let body = PiecesBody::new(pieces);
                // Held until the client has read it all (or gone): unread answers cannot pile up.
                let Ok(held) = state.budget.hold(body.owned_bytes(), peer).await else {
                    return busy(state, service, version);
                };
                if !self.xpress {
                    return answer_response(version, service, false, body.holding(held));
                }
                match compress(state, body, held, peer).await {
                    Some(framed) => answer_response(version, service, true, framed),
                    None => busy(state, service, version),
                }
            }
            Err(f) => self.fault(label, &f, version),
        }
    }

    fn fault(&self, label: metrics::Label, f: &Fault, version: SoapVersion) -> Response<Body> {
        if f.code == ErrorCode::InternalServerError {
            tracing::error!(operation = %label, "internal error answered as a fault");
        } else {
            tracing::debug!(operation = %label, "fault: {f}");
        }
        let service = self.service;
        let method = action_of(&self.parts.headers)
            .unwrap_or_else(|| format!("{}/{label}", service.namespace()));
        let actor = (service.style() == EnvelopeStyle::Asmx).then(|| {
            let base = base_url_of(self.state, self.scheme, &self.parts.headers);
            format!("{base}{}", self.parts.uri.path())
        });
        fault_response(f, version, service.style(), Some(&method), actor.as_deref())
    }
}
