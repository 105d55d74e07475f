//! The admin API, `/api/v1/...`: everything the administration commands do, as JSON, behind the
//! bearer token of `ferry admin token`.
//!
//! Invariant: no admin route runs before the token matched; without a token in the store the API
//! answers 401 to everyone. The client web services stay open, as on WSUS.
//! Errors: 401 no token, 403 wrong token, 404 unknown thing, 422 a change the rules refuse or a
//! body that does not say what to do, 400 a body that is not JSON.

use super::forms::{path_decode, url_decode_pairs};
use super::state::AppState;
use crate::admin::{
    Action, AdminError, AdminService, Approve, ErrorKind, NewRuleRequest, TargetingChange,
};
use crate::store::{CleanupOptions, Store, StoreError, UpdateFilter};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, Response, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

const KNOWN_METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// Admin requests are small; a larger body is refused before it is read.
const MAX_BODY: usize = 1 << 20;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> ApiError {
        let status = match e.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Refused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Failed => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let status = match &e {
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let body = serde_json::to_string_pretty(value).expect("JSON values serialize") + "\n";
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(body))
        .expect("static response")
}

fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.status, &json!({ "error": e.message }));
    if e.status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"ferry\""),
        );
    }
    r
}

/// The token a request presents (`Authorization: Bearer ...`).
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// Checks a token against the store: 401 without one, 403 with a wrong one.
pub fn authorize(store: &Store, token: Option<&str>) -> Result<(), ApiError> {
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

/// `body_timeout`: a request body not received by then is refused.
pub async fn handle(
    state: Arc<AppState>,
    request: Request,
    body_timeout: std::time::Duration,
) -> Response<Body> {
    use super::budget::BodyRefusal;
    let peer = super::routes::peer_of(&request);
    let (parts, body) = request.into_parts();
    if parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
        > MAX_BODY
    {
        return error_response(&ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "admin requests are at most 1 MiB",
        ));
    }
    let (body, _held) = match state.budget.read_body(body, MAX_BODY, body_timeout, peer).await {
        Ok(read) => read,
        Err(BodyRefusal::TooLarge) => {
            return error_response(&ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "admin requests are at most 1 MiB",
            ));
        }
        Err(BodyRefusal::TimedOut) => {
            return error_response(&ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            ));
        }
        Err(BodyRefusal::Busy) => {
            return error_response(&ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is busy; try again",
            ));
        }
        Err(BodyRefusal::Broken) => {
            return error_response(&ApiError::new(
                StatusCode::BAD_REQUEST,
                "could not read the request body",
            ));
        }
    };
    let token = bearer(&parts.headers);
    let path = parts.uri.path().to_string();
    let query: HashMap<String, String> =
        parts.uri.query().map(|q| url_decode_pairs(q).collect()).unwrap_or_default();
    let method = parts.method.clone();
    // A fixed set of labels: paths come from anyone, before the token is checked.
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
    let first = path.split('/').nth(3).unwrap_or("");
    let route = ROUTES.iter().copied().find(|r| *r == first).unwrap_or("other");
    let label = KNOWN_METHODS
        .iter()
        .copied()
        .find(|m| *m == method.as_str())
        .map(|m| super::metrics::Label::admin(m, route));
    let started = std::time::Instant::now();
    let s = state.clone();
    let result = tokio::task::spawn_blocking(move || {
        s.pool
            .with(|store| {
                Ok(authorize(store, token.as_deref())
                    .and_then(|()| dispatch(store, &method, &path, &query, &body)))
            })
            .map_err(ApiError::from)?
    })
    .await;
    let response = match result {
        Ok(Ok((status, value))) => json_response(status, &value),
        Ok(Err(e)) => error_response(&e),
        Err(e) => error_response(&ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request failed: {e}"),
        )),
    };
    if let Some(label) = label
        .filter(|_| !matches!(response.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN))
    {
        state.metrics.observe(
            label,
            started.elapsed(),
            response.status().is_client_error() || response.status().is_server_error(),
        );
    }
    response
}

fn body_of<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let status = if e.is_syntax() || e.is_eof() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        ApiError::new(status, format!("the request body: {e}"))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ids {
    ids: Vec<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    deadline: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    name: String,
    #[serde(default)]
    parent: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveGroup {
    parent: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveComputers {
    computers: Vec<String>,
    group: String,
    #[serde(default)]
    keep: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    classifications: Vec<String>,
    #[serde(default)]
    products: Vec<String>,
    group: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    deadline_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Targeting {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    create_missing_groups: Option<bool>,
    #[serde(default)]
    max_client_groups: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cleanup {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    decline_superseded: bool,
    #[serde(default)]
    decline_expired: bool,
    #[serde(default)]
    unneeded_content: bool,
    #[serde(default)]
    obsolete_computers: Option<u32>,
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("store types serialize")
}

/// One admin operation. Also what the web console calls, so both behave alike.
pub fn dispatch(
    store: &mut Store,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    body: &[u8],
) -> Result<(StatusCode, Value), ApiError> {
    let rest = path.strip_prefix("/api/v1/").unwrap_or("");
    let segments: Vec<String> =
        rest.split('/').filter(|s| !s.is_empty()).map(path_decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let q = |k: &str| query.get(k).filter(|v| !v.is_empty()).cloned();
    let ok = |v: Value| Ok((StatusCode::OK, v));
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["status"]) => {
            let catalog = store.catalog_status()?;
            ok(json!({
                "catalog": catalog,
                "computers": store.computers()?.len(),
                "groups": store.groups()?.len(),
                "approvals": store.approvals()?.len(),
                "imports": store.imports()?.len(),
                "targeting": store.targeting()?,
            }))
        }
        ("GET", ["updates"]) => {
            let approval = match q("approval").as_deref() {
                None => None,
                Some("approved") => Some(crate::store::ApprovalState::Approved),
                Some("unapproved") => Some(crate::store::ApprovalState::Unapproved),
                Some("declined") => Some(crate::store::ApprovalState::Declined),
                Some("any-except-declined") => Some(crate::store::ApprovalState::AnyExceptDeclined),
                Some(other) => {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!(
                            "approval={other}: use approved, unapproved, declined or any-except-declined"
                        ),
                    ));
                }
            };
            let filter = UpdateFilter {
                text: q("search"),
                classification: q("classification"),
                product: q("product"),
                approval,
                ..Default::default()
            };
            ok(to_json(&store.list_updates(&filter)?))
        }
        ("GET", ["updates", id]) => {
            let revisions = store.resolve_update(id)?;
            ok(to_json(&store.update_detail(revisions[0])?))
        }
        ("POST", ["updates", verb @ ("approve" | "unapprove" | "decline" | "undecline")]) => {
            let request: Ids = body_of(body)?;
            let mut admin = AdminService::new(store);
            let group = request.group.as_deref().unwrap_or("All Computers");
            match *verb {
                "approve" => {
                    let approved = admin.approve(&Approve {
                        updates: &request.ids,
                        group,
                        action: Action::approvable(request.action.as_deref())
                            .map_err(AdminError::from)?,
                        deadline: request.deadline.as_deref(),
                        admin: Some("api"),
                        with_prerequisites: true,
                    })?;
                    ok(json!({
                        "approved": approved.requested.len(),
                        "prerequisites": approved.prerequisites,
                        "group": approved.group.name,
                        "approvals": approved.approvals,
                    }))
                }
                "unapprove" => {
                    let (group, removed) = admin.unapprove(&request.ids, group)?;
                    ok(json!({ "removed": removed, "group": group.name }))
                }
                "decline" => ok(json!({ "declined": admin.decline(&request.ids, Some("api"))? })),
                _ => ok(json!({ "undeclined": admin.undecline(&request.ids)? })),
            }
        }
        ("GET", ["groups"]) => ok(to_json(&store.group_tree()?)),
        ("POST", ["groups"]) => {
            let request: NewGroup = body_of(body)?;
            let group =
                AdminService::new(store).create_group(&request.name, request.parent.as_deref())?;
            Ok((StatusCode::CREATED, to_json(&group)))
        }
        ("POST", ["groups", name, "move"]) => {
            let request: MoveGroup = body_of(body)?;
            ok(to_json(&AdminService::new(store).move_group(name, &request.parent)?))
        }
        ("DELETE", ["groups", name]) => ok(to_json(&AdminService::new(store).remove_group(name)?)),
        ("GET", ["computers"]) => {
            let mut computers = store
                .computers_in_group(q("group").as_deref().unwrap_or(crate::store::ALL_COMPUTERS))?;
            if let Some(name) = q("name") {
                let name = name.to_lowercase();
                computers.retain(|c| c.dns_name.to_lowercase().contains(&name));
            }
            ok(to_json(&computers))
        }
        ("POST", ["computers", "move"]) => {
            let request: MoveComputers = body_of(body)?;
            let (group, moved) = AdminService::new(store).move_computers(
                &request.computers,
                &request.group,
                request.keep,
            )?;
            ok(json!({ "moved": moved, "group": group.name }))
        }
        ("DELETE", ["computers", name]) => {
            let removed = AdminService::new(store).remove_computers(&[name.to_string()])?;
            ok(json!({ "removed": removed }))
        }
        ("GET", ["targeting"]) => ok(to_json(&store.targeting()?)),
        ("PUT", ["targeting"]) => {
            let request: Targeting = body_of(body)?;
            let change = TargetingChange {
                mode: request.mode.as_deref(),
                create_missing_groups: request.create_missing_groups,
                max_client_groups: request.max_client_groups,
            };
            ok(to_json(&AdminService::new(store).set_targeting(&change)?))
        }
        ("GET", ["classifications" | "products"]) => {
            let kind = if segments[0] == "products" { "Product" } else { "UpdateClassification" };
            let index = store.category_index()?;
            let mut list: Vec<Value> = index
                .by_id
                .iter()
                .filter(|(_, (k, _))| k == kind)
                .map(|(id, (_, title))| json!({ "id": id, "title": title }))
                .collect();
            list.sort_by_key(|v| v["title"].as_str().unwrap_or("").to_lowercase());
            ok(Value::Array(list))
        }
        ("GET", ["trust"]) => ok(to_json(&store.trusted_keys()?)),
        ("POST", ["rules", rule, verb @ ("enable" | "disable")]) => {
            ok(to_json(&AdminService::new(store).set_rule_enabled(rule, *verb == "enable")?))
        }
        ("GET", ["rules"]) => ok(to_json(&store.approval_rules()?)),
        ("POST", ["rules"]) => {
            let request: Rule = body_of(body)?;
            let rule = AdminService::new(store).add_rule(&NewRuleRequest {
                name: request.name.as_deref(),
                classifications: &request.classifications,
                products: &request.products,
                group: &request.group,
                action: Action::approvable(request.action.as_deref()).map_err(AdminError::from)?,
                deadline_days: request.deadline_days,
            })?;
            Ok((StatusCode::CREATED, to_json(&rule)))
        }
        ("DELETE", ["rules", rule]) => ok(to_json(&AdminService::new(store).remove_rule(rule)?)),
        ("POST", ["rules", "apply"]) => {
            ok(to_json(&AdminService::new(store).apply_approval_rules()?))
        }
        ("GET", ["report"]) => {
            let computers = store
                .computers_in_group(q("group").as_deref().unwrap_or(crate::store::ALL_COMPUTERS))?;
            ok(to_json(&store.compliance_report(computers, q("group"))?))
        }
        ("POST", ["cleanup"]) => {
            let request: Cleanup = body_of(body)?;
            let options = CleanupOptions {
                decline_superseded: request.decline_superseded,
                decline_expired: request.decline_expired,
                unneeded_content: request.unneeded_content,
                obsolete_computers_days: request.obsolete_computers,
            };
            let plan = AdminService::new(store).cleanup(&options, !request.dry_run)?;
            ok(json!({ "dry_run": request.dry_run, "plan": plan }))
        }
        ("GET", ["imports"]) => ok(to_json(&store.imports()?)),
        (_, []) => ok(json!({ "api": "ferry admin API v1", "see": "README.md, Administration" })),
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no admin route {method} {path}"))),
    }
}
