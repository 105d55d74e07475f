//! The admin API, `/api/v1/...`: everything the administration commands do, as JSON, behind the
//! bearer token of `ferry admin token`. Typed routes (`handlers.rs`) over `AdminService`; the
//! JSON shapes live in `dto.rs` alone.
//!
//! Invariant: no admin route runs, and no request body is read, before the token matched;
//! without a token in the store the API answers 401 to everyone. The client web services stay
//! open, as on WSUS.
//! Errors: 401 no token, 403 wrong token, 404 unknown thing, 405 a method the path does not
//! take, 422 a change the rules refuse or a body that does not say what to do, 400 a body that
//! is not JSON, 413 a body over 1 MiB.

mod dto;
mod handlers;

use super::state::AppState;
use crate::admin::{AdminError, ErrorKind};
use crate::store::{Store, StoreError};
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderMap, Response, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// Admin requests are small; a larger body is refused before it is read.
const MAX_BODY: usize = 1 << 20;

/// What every route of the API gets.
#[derive(Clone)]
pub struct ApiState {
    app: Arc<AppState>,
    /// A request body not received by then is refused.
    body_timeout: Duration,
}

/// `/api` and everything under it, behind the token.
pub fn router(app: Arc<AppState>, body_timeout: Duration) -> Router {
    let state = ApiState { app, body_timeout };
    handlers::routes()
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no admin route there") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "that path does not take this method")
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    fn refused(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> ApiError {
        let status = match e.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Refused => StatusCode::UNPROCESSABLE_ENTITY,
            // The database cannot be reached: try again later.
            ErrorKind::Failed if matches!(&e, AdminError::Store(s) if s.is_unavailable()) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorKind::Failed => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        AdminError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response<Body> {
        let mut r = json_response(self.status, &serde_json::json!({ "error": self.message }));
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"ferry\""),
            );
        }
        r
    }
}

/// An answer: a status and a JSON document.
pub struct Reply(StatusCode, serde_json::Value);

impl Reply {
    fn ok(value: &impl serde::Serialize) -> Result<Reply, ApiError> {
        Reply::with(StatusCode::OK, value)
    }

    fn created(value: &impl serde::Serialize) -> Result<Reply, ApiError> {
        Reply::with(StatusCode::CREATED, value)
    }

    fn with(status: StatusCode, value: &impl serde::Serialize) -> Result<Reply, ApiError> {
        serde_json::to_value(value)
            .map(|v| Reply(status, v))
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response<Body> {
        json_response(self.0, &self.1)
    }
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let body = serde_json::to_string_pretty(value).expect("JSON values serialize") + "\n";
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(body))
        .expect("static response")
}

/// Runs `f` with a store on the blocking pool.
async fn with_store<T: Send + 'static>(
    state: &ApiState,
    f: impl FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = state.app.clone();
    let run = move || app.pool.with(|store| Ok(f(store))).map_err(ApiError::from)?;
    tokio::task::spawn_blocking(run).await.map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("the request failed: {e}"))
    })?
}

/// The token a request presents (`Authorization: Bearer ...`).
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// Checks a token against the store: 401 without one, 403 with a wrong one.
fn authorize(store: &Store, token: Option<&str>) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "send the admin token: Authorization: Bearer <token> (see `ferry admin token`)",
        ));
    };
    // The common case reads the setting once; a mismatch then tells "none yet" from "wrong".
    if store.admin_token_matches(token)? {
        return Ok(());
    }
    if !store.has_admin_token()? {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "no admin token exists yet: run `ferry admin token` on the server",
        ));
    }
    Err(ApiError::new(StatusCode::FORBIDDEN, "the admin token does not match"))
}

const KNOWN_METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// A fixed set of metric labels: paths come from anyone, before the token is checked.
const ROUTES: [&str; 14] = [
    "status",
    "updates",
    "groups",
    "computers",
    "rules",
    "report",
    "cleanup",
    "imports",
    "targeting",
    "classifications",
    "products",
    "trust",
    "",
    "other",
];

/// Every request: the token first, then the route; authorized requests are measured.
async fn guard(State(state): State<ApiState>, request: Request, next: Next) -> Response<Body> {
    let first = request.uri().path().split('/').nth(3).unwrap_or("");
    let route = ROUTES.iter().copied().find(|r| *r == first).unwrap_or("other");
    let label = KNOWN_METHODS
        .iter()
        .copied()
        .find(|m| *m == request.method().as_str())
        .map(|m| super::metrics::Label::admin(m, route));
    let started = std::time::Instant::now();
    let token = bearer(request.headers());
    let response = match with_store(&state, move |store| authorize(store, token.as_deref())).await {
        Ok(()) => next.run(request).await,
        Err(refused) => return refused.into_response(),
    };
    if let Some(label) = label {
        let status = response.status();
        let failed = status.is_client_error() || status.is_server_error();
        state.app.metrics.observe(label, started.elapsed(), failed);
    }
    response
}

/// A JSON request body, read within the memory budget and the client timeout. Syntax errors
/// are 400, a body that does not say what to do 422.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ApiState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, ApiError> {
        use super::budget::BodyRefusal;
        let too_large =
            || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "admin requests are at most 1 MiB");
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_BODY) {
            return Err(too_large());
        }
        let peer = super::routes::peer_of(&request);
        let read =
            state.app.budget.read_body(request.into_body(), MAX_BODY, state.body_timeout, peer);
        let (bytes, _held) = read.await.map_err(|refusal| match refusal {
            BodyRefusal::TooLarge => too_large(),
            BodyRefusal::TimedOut => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            ),
            BodyRefusal::Busy => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is busy; try again")
            }
            BodyRefusal::Broken => {
                ApiError::new(StatusCode::BAD_REQUEST, "could not read the request body")
            }
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            let status = if e.is_syntax() || e.is_eof() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            ApiError::new(status, format!("the request body: {e}"))
        })
    }
}

/// The longest path segment a route takes: longer than any group, computer, rule or update name.
const MAX_SEGMENT: usize = 256;

/// The one named segment of a route (`/groups/{name}`), percent-decoded. Bytes that do not
/// decode to UTF-8 are 400; a segment longer than any name is 404 without repeating it.
pub struct Segment(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Segment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(segment) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the path: {e}")))?;
        if segment.len() > MAX_SEGMENT {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "nothing has a name of {} bytes (names are at most {MAX_SEGMENT})",
                    segment.len()
                ),
            ));
        }
        Ok(Segment(segment))
    }
}

/// A query string (percent- and plus-decoded); a value that does not fit is 422.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|e| ApiError::refused(format!("the query: {e}")))
    }
}
