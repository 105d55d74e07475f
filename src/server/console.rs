//! The web console, `/admin`: server-rendered pages over the same administration as the API
//! (`AdminService`). No scripts, no external resources, no build step; works offline.
//!
//! Invariant: every page needs a session made by logging in with the admin token; every form
//! post carries the session's CSRF token and is refused (403) without it. The session cookie is
//! HttpOnly and SameSite=Strict.

use super::forms::url_decode_pairs;
use super::state::AppState;
use crate::admin::{Action, AdminResult, AdminService, Approve, NewRuleRequest, TargetingChange};
use crate::compliance::StateCounts;
use crate::html::escape as esc;
use crate::store::{CleanupOptions, CleanupPlan, Store};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, Response, StatusCode, header};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COOKIE: &str = "ferry_session";
const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
const MAX_FORM: usize = 256 * 1024;

#[derive(Clone)]
struct Session {
    csrf: String,
    expires: Instant,
}

/// Console sessions, in memory: a restart logs everyone out.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session; returns its id (the cookie value).
    fn create(&self) -> String {
        let id = hex::encode(crate::random::bytes::<32>());
        let session = Session {
            csrf: hex::encode(crate::random::bytes::<16>()),
            expires: Instant::now() + SESSION_LIFETIME,
        };
        let mut map = self.map.lock().expect("sessions lock");
        map.retain(|_, s| s.expires > Instant::now());
        map.insert(id.clone(), session);
        id
    }

    fn get(&self, id: &str) -> Option<Session> {
        let map = self.map.lock().expect("sessions lock");
        map.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    fn remove(&self, id: &str) {
        self.map.lock().expect("sessions lock").remove(id);
    }
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == COOKIE).then(|| v.to_string())
        })
}

fn html_response(status: StatusCode, page: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_LENGTH, page.len())
        .header(header::CACHE_CONTROL, "no-store")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'",
        )
        .header("x-frame-options", "DENY")
        .body(Body::from(page))
        .expect("static response")
}

fn redirect(to: &str, cookie: Option<String>) -> Response<Body> {
    // Targets are built here from checked parts; anything a header cannot carry goes home.
    let to = if header::HeaderValue::from_str(to).is_ok() { to } else { "/admin" };
    let mut r = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .header(header::CONTENT_LENGTH, 0);
    if let Some(c) = cookie {
        r = r.header(header::SET_COOKIE, c);
    }
    r.body(Body::empty()).expect("static response")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222}header{background:#1d3557;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center}\
header a{color:#fff;text-decoration:none}header form{margin-left:auto}main{padding:1rem 1.2rem}table{border-collapse:collapse;margin:.6rem 0}\
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f2f2f2}.n{text-align:right}.bad{color:#a00;font-weight:bold}\
.msg{background:#e7f5e7;border:1px solid #8c8;padding:.4rem .8rem}.err{background:#fbeaea;border:1px solid #c88;padding:.4rem .8rem}\
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #ccc;border-radius:6px;padding:.6rem 1rem;min-width:12rem}.big{font-size:1.8rem}";

fn page(title: &str, csrf: Option<&str>, body: &str) -> String {
    let nav = match csrf {
        Some(csrf) => format!(
            "<header><strong>Ferry</strong><a href=\"/admin\">Dashboard</a><a href=\"/admin/updates?approval=unapproved\">Updates</a>\
             <a href=\"/admin/computers\">Computers</a><a href=\"/admin/rules\">Rules</a>\
             <a href=\"/admin/cleanup\">Cleanup</a><a href=\"/admin/imports\">Imports</a>\
             <form method=\"post\" action=\"/admin/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Log out</button></form></header>",
            esc(csrf)
        ),
        None => "<header><strong>Ferry</strong></header>".to_string(),
    };
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · Ferry</title><style>{STYLE}</style></head><body>{nav}<main>{body}</main></body></html>\n",
        esc(title)
    )
}

/// `scheme`: that of the listener; sessions made over HTTPS get Secure cookies.
/// `body_timeout`: a form not received by then is refused.
pub async fn handle(
    state: Arc<AppState>,
    scheme: &'static str,
    request: Request,
    body_timeout: std::time::Duration,
) -> Response<Body> {
    let peer = super::routes::peer_of(&request);
    let (parts, body) = request.into_parts();
    let form = match read_form(&state, &parts.method, body, body_timeout, peer).await {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let path = parts.uri.path().trim_end_matches('/').to_string();
    let query: HashMap<String, String> =
        parts.uri.query().map(|q| url_decode_pairs(q).collect()).unwrap_or_default();
    let secure = scheme == "https";

    if path == "/admin/login" {
        return match parts.method {
            Method::POST => log_in(&state, &form, secure).await,
            _ => html_response(StatusCode::OK, login_page(None)),
        };
    }
    let Some((sid, session)) =
        session_id(&parts.headers).and_then(|id| state.console.get(&id).map(|s| (id, s)))
    else {
        return redirect("/admin/login", None);
    };
    if parts.method == Method::POST {
        let csrf_ok = form.iter().any(|(k, v)| k == "csrf" && *v == session.csrf);
        if !csrf_ok {
            return html_response(
                StatusCode::FORBIDDEN,
                page(
                    "Refused",
                    Some(&session.csrf),
                    "<p class=\"err\">This form did not come from this console (CSRF check failed); nothing was changed.</p>",
                ),
            );
        }
        if path == "/admin/logout" {
            state.console.remove(&sid);
            return redirect(
                "/admin/login",
                Some(format!("{COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0")),
            );
        }
    }
    let method = parts.method.clone();
    let csrf = session.csrf.clone();
    let s = state.clone();
    let result = tokio::task::spawn_blocking(move || {
        s.pool
            .with(|store| Ok(render(store, &method, &path, &query, &form, &csrf)))
            .map_err(|e| e.to_string())?
    })
    .await;
    answer(result, &session.csrf)
}

/// A POST's form fields (none for other methods); a form too large or that did not arrive is
/// answered right away.
async fn read_form(
    state: &AppState,
    method: &Method,
    body: Body,
    body_timeout: std::time::Duration,
    peer: Option<std::net::IpAddr>,
) -> Result<Vec<(String, String)>, Response<Body>> {
    if method != Method::POST {
        return Ok(Vec::new());
    }
    match state.budget.read_body(body, MAX_FORM, body_timeout, peer).await {
        Ok((b, _held)) => Ok(url_decode_pairs(&String::from_utf8_lossy(&b)).collect()),
        Err(super::budget::BodyRefusal::TooLarge) => Err(html_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            page("Too large", None, "<p>The form is too large.</p>"),
        )),
        Err(_) => Err(html_response(
            StatusCode::SERVICE_UNAVAILABLE,
            page("Try again", None, "<p>The form did not arrive; send it again.</p>"),
        )),
    }
}

/// Checks the admin token a login form carries; a session cookie when it matches.
async fn log_in(state: &Arc<AppState>, form: &[(String, String)], secure: bool) -> Response<Body> {
    let token = form.iter().find(|(k, _)| k == "token").map(|(_, v)| v.clone()).unwrap_or_default();
    let s = state.clone();
    let valid =
        tokio::task::spawn_blocking(move || s.pool.with(|store| store.admin_token_matches(&token)))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
    if !valid {
        return html_response(
            StatusCode::FORBIDDEN,
            login_page(Some("That is not the admin token.")),
        );
    }
    let id = state.console.create();
    let cookie = format!(
        "{COOKIE}={id}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    redirect("/admin", Some(cookie))
}

/// The page for what `render` made of a request.
fn answer(
    result: Result<Result<Rendered, String>, tokio::task::JoinError>,
    csrf: &str,
) -> Response<Body> {
    match result {
        Ok(Ok(Rendered::Page(title, body))) => {
            html_response(StatusCode::OK, page(&title, Some(csrf), &body))
        }
        Ok(Ok(Rendered::Raw(html))) => html_response(StatusCode::OK, html),
        Ok(Ok(Rendered::Redirect(to))) => redirect(&to, None),
        Ok(Ok(Rendered::NotFound)) => html_response(
            StatusCode::NOT_FOUND,
            page("Not found", Some(csrf), "<p>No such page.</p>"),
        ),
        Ok(Err(e)) => html_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            page("Error", Some(csrf), &format!("<p class=\"err\">{}</p>", esc(&e))),
        ),
        Err(e) => html_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            page("Error", None, &format!("<p class=\"err\">{}</p>", esc(&e.to_string()))),
        ),
    }
}

fn login_page(error: Option<&str>) -> String {
    let error = error.map(|e| format!("<p class=\"err\">{}</p>", esc(e))).unwrap_or_default();
    page(
        "Log in",
        None,
        &format!(
            "<h1>Log in</h1>{error}<p>Paste the admin token (<code>ferry admin token</code> on the server).</p>\
             <form method=\"post\" action=\"/admin/login\"><input type=\"password\" name=\"token\" size=\"72\" autofocus \
             autocomplete=\"off\"> <button>Log in</button></form>"
        ),
    )
}

enum Rendered {
    Page(String, String),
    Raw(String),
    Redirect(String),
    NotFound,
}

fn render(
    store: &mut Store,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    form: &[(String, String)],
    csrf: &str,
) -> Result<Rendered, String> {
    let e = |e: crate::store::StoreError| e.to_string();
    match (method.as_str(), path) {
        ("GET", "/admin") => dashboard(store).map_err(e),
        ("GET", "/admin/updates") => updates(store, query, csrf).map_err(e),
        ("POST", "/admin/updates") => post_updates(store, form),
        ("GET", "/admin/computers") => computers(store, query, csrf).map_err(e),
        ("POST", "/admin/computers") => post_computers(store, form),
        ("GET", p) if p.starts_with("/admin/computers/") => {
            computer(store, &p["/admin/computers/".len()..]).map_err(e)
        }
        ("GET", "/admin/rules") => rules(store, query, csrf).map_err(e),
        ("POST", "/admin/rules") => post_rules(store, form),
        ("GET", "/admin/cleanup") => Ok(cleanup_page(csrf, None, query)),
        ("POST", "/admin/cleanup") => post_cleanup(store, form, csrf, query),
        ("GET", "/admin/imports") => imports(store).map_err(e),
        ("GET", p) if p.starts_with("/admin/imports/") => {
            imported_bundle(store, &p["/admin/imports/".len()..])
        }
        _ => Ok(Rendered::NotFound),
    }
}

/// Approve, unapprove, decline or undecline the updates ticked on the updates page.
fn post_updates(store: &mut Store, form: &[(String, String)]) -> Result<Rendered, String> {
    let ids: Vec<String> = form.iter().filter(|(k, _)| k == "id").map(|(_, v)| v.clone()).collect();
    let field = |k: &str| {
        form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
    };
    let verb = field("action").unwrap_or_else(|| "approve".into());
    let group = field("group").unwrap_or_else(|| "All Computers".into());
    let mut admin = AdminService::new(store);
    let message = match verb.as_str() {
        "approve" => outcome(
            admin.approve(&Approve {
                updates: &ids,
                group: &group,
                action: Action::Install,
                deadline: field("deadline").as_deref(),
                admin: Some("console"),
                with_prerequisites: true,
            }),
            |a| format!("approved {} update(s) for {}", a.requested.len(), a.group.name),
        ),
        "unapprove" => {
            outcome(admin.unapprove(&ids, &group), |(_, n)| format!("removed {n} approval(s)"))
        }
        "decline" => {
            outcome(admin.decline(&ids, Some("console")), |n| format!("declined {n} update(s)"))
        }
        _ => outcome(admin.undecline(&ids), |n| format!("{n} update(s) approvable again")),
    };
    let back = field("back")
        .filter(|b| b.starts_with("/admin/updates") && b.bytes().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "/admin/updates".into());
    let sep = if back.contains('?') { '&' } else { '?' };
    Ok(Rendered::Redirect(format!("{back}{sep}message={}", url_encode(&message))))
}

/// Add a group, change targeting or move a computer (the computers page).
fn post_computers(store: &mut Store, form: &[(String, String)]) -> Result<Rendered, String> {
    let field =
        |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let mut admin = AdminService::new(store);
    let message = match field("action").as_str() {
        "add-group" => {
            let parent = Some(field("parent")).filter(|p| !p.is_empty());
            outcome(admin.create_group(&field("name"), parent.as_deref()), done)
        }
        "targeting" => {
            let mode = field("mode");
            let change = TargetingChange { mode: Some(&mode), ..Default::default() };
            outcome(admin.set_targeting(&change), done)
        }
        _ => outcome(admin.move_computers(&[field("computer")], &field("group"), false), done),
    };
    Ok(Rendered::Redirect(format!("/admin/computers?message={}", url_encode(&message))))
}

/// Add, enable, disable, remove or run the automatic approval rules.
fn post_rules(store: &mut Store, form: &[(String, String)]) -> Result<Rendered, String> {
    let field = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let list = |k: &str| {
        field(k)
            .map(|v| {
                v.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let rule = field("rule").unwrap_or_default();
    let mut admin = AdminService::new(store);
    let message = match field("action").as_deref() {
        Some("add") => {
            let (classifications, products) = (list("classifications"), list("products"));
            let group = field("group").unwrap_or_default();
            let add = |admin: &mut AdminService<'_>| {
                let action = Action::approvable(field("approval").as_deref())?;
                admin.add_rule(&NewRuleRequest {
                    name: None,
                    classifications: &classifications,
                    products: &products,
                    group: &group,
                    action,
                    deadline_days: field("deadline_days").and_then(|d| d.parse::<u32>().ok()),
                })
            };
            outcome(add(&mut admin), done)
        }
        Some(verb @ ("enable" | "disable")) => {
            outcome(admin.set_rule_enabled(&rule, verb == "enable"), done)
        }
        Some("remove") => outcome(admin.remove_rule(&rule), done),
        _ => outcome(admin.apply_approval_rules(), |outcomes| {
            let approved: usize = outcomes.iter().map(|o| o.approved.len()).sum();
            format!("the rules approved {approved} update(s)")
        }),
    };
    Ok(Rendered::Redirect(format!("/admin/rules?message={}", url_encode(&message))))
}

/// Preview or run a cleanup.
fn post_cleanup(
    store: &mut Store,
    form: &[(String, String)],
    csrf: &str,
    query: &HashMap<String, String>,
) -> Result<Rendered, String> {
    let on = |k: &str| form.iter().any(|(n, v)| n == k && v == "on");
    let days = form
        .iter()
        .find(|(n, _)| n == "obsolete_computers")
        .and_then(|(_, v)| v.trim().parse::<u32>().ok());
    let run = form.iter().any(|(n, v)| n == "run" && v == "yes");
    let options = CleanupOptions {
        decline_superseded: on("decline_superseded"),
        decline_expired: on("decline_expired"),
        unneeded_content: on("unneeded_content"),
        obsolete_computers_days: days,
    };
    match AdminService::new(store).cleanup(&options, run) {
        Ok(plan) => Ok(cleanup_page(csrf, Some((&plan, run)), query)),
        Err(err) => Ok(Rendered::Redirect(format!(
            "/admin/cleanup?message={}",
            url_encode(&format!("error: {err}"))
        ))),
    }
}

/// An imported bundle, shown as `ferry inspect` shows it, from the manifest kept at import.
fn imported_bundle(store: &Store, id: &str) -> Result<Rendered, String> {
    let Some(manifest) = store.import_manifest(id).map_err(|e| e.to_string())? else {
        return Ok(Rendered::NotFound);
    };
    let manifest = crate::bundle::manifest::Manifest::from_stored(&manifest)?;
    let signer = manifest.signer_key_id.clone();
    let inspection = crate::bundle::inspect::inspection_of(
        std::path::PathBuf::from(format!("imported bundle {id}")),
        Some(signer),
        manifest,
    );
    Ok(Rendered::Raw(crate::bundle::inspect::html(&inspection)))
}

/// The group tree as `<option>`s, indented by depth.
fn group_options(tree: &[crate::store::GroupInTree]) -> String {
    tree.iter()
        .map(|g| {
            let name = esc(&g.group.name);
            format!("<option value=\"{name}\">{}{name}</option>", "&nbsp;&nbsp;".repeat(g.depth))
        })
        .collect()
}

/// What a change that needs no more words says when it worked.
fn done<T>(_: T) -> String {
    "done".to_string()
}

/// The message an administration change leaves on the page it returns to.
fn outcome<T>(result: AdminResult<T>, ok: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(done) => format!("ok: {}", ok(done)),
        Err(e) => format!("error: {e}"),
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn message(query: &HashMap<String, String>) -> String {
    match query.get("message") {
        Some(m) if m.starts_with("error:") => {
            format!("<p class=\"err\" role=\"alert\">{}</p>", esc(m))
        }
        Some(m) => format!("<p class=\"msg\" role=\"status\">{}</p>", esc(m)),
        None => String::new(),
    }
}

fn counts_cells(c: &StateCounts) -> String {
    let bad = |n: u64| if n > 0 { " class=\"n bad\"" } else { " class=\"n\"" };
    format!(
        "<td class=\"n\">{}</td><td class=\"n\">{}</td><td{}>{}</td><td{}>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
        c.installed,
        c.installed_pending_reboot,
        bad(c.needed),
        c.needed,
        bad(c.failed),
        c.failed,
        c.not_applicable,
        c.unknown
    )
}

const COUNT_HEADERS: &str = "<th>Installed</th><th>Pending reboot</th><th>Needed</th><th>Failed</th><th>Not applicable</th><th>Unknown</th>";

fn dashboard(store: &Store) -> crate::store::StoreResult<Rendered> {
    let unapproved = store.list_updates(&crate::store::UpdateFilter {
        approval: Some(crate::store::ApprovalState::Unapproved),
        ..Default::default()
    })?;
    let status = store.catalog_status()?;
    let computers = store.computers()?;
    let report = crate::admin::compliance_report(store, computers.clone(), None)?;
    let tree = crate::admin::group_tree(store)?;
    let mut b = String::from("<h1>Dashboard</h1><div class=\"cards\">");
    let _ = write!(
        b,
        "<div class=\"card\"><div class=\"big\" id=\"needing-approval\">{}</div><a href=\"/admin/updates?approval=unapproved\">updates need approval</a></div>\
         <div class=\"card\"><div class=\"big\">{}</div>computers</div>\
         <div class=\"card\"><div class=\"big\">{}</div>content ({} files of {})</div></div>",
        unapproved.len(),
        computers.len(),
        crate::units::format_size(status.present_bytes),
        status.files_present,
        status.files
    );
    b.push_str("<h2>Compliance by group</h2><table><tr><th>Group</th><th>Computers</th>");
    b.push_str(COUNT_HEADERS);
    b.push_str("</tr>");
    // Each computer counts in its groups and every group above them.
    let parents: HashMap<&str, &str> = tree
        .iter()
        .filter_map(|g| g.group.parent_id.as_deref().map(|p| (g.group.group_id.as_str(), p)))
        .collect();
    let groups_of: HashMap<&str, &Vec<crate::ids::GroupId>> =
        computers.iter().map(|c| (c.computer_id.as_str(), &c.groups)).collect();
    let mut totals: HashMap<&str, (usize, StateCounts)> = HashMap::new();
    for c in &report.computers {
        let mut seen: Vec<&str> = vec![crate::store::ALL_COMPUTERS];
        for g in groups_of.get(c.computer_id.as_str()).map(|v| v.as_slice()).unwrap_or_default() {
            let mut id = g.as_str();
            while !seen.contains(&id) && seen.len() <= tree.len() {
                seen.push(id);
                match parents.get(id) {
                    Some(p) => id = p,
                    None => break,
                }
            }
        }
        for id in seen {
            let (n, total) = totals.entry(id).or_default();
            *n += 1;
            total.installed += c.counts.installed;
            total.installed_pending_reboot += c.counts.installed_pending_reboot;
            total.needed += c.counts.needed;
            total.failed += c.counts.failed;
            total.not_applicable += c.counts.not_applicable;
            total.unknown += c.counts.unknown;
        }
    }
    let none = (0, StateCounts::default());
    for g in &tree {
        let (members, total) = totals.get(g.group.group_id.as_str()).unwrap_or(&none);
        let _ = write!(
            b,
            "<tr><td>{}{}</td><td class=\"n\">{}</td>{}</tr>",
            "&nbsp;&nbsp;".repeat(g.depth),
            esc(&g.group.name),
            members,
            counts_cells(total)
        );
    }
    b.push_str("</table><h2>Last imports</h2><table><tr><th>Imported</th><th>Channel</th><th>Sequence</th><th>Signer key</th><th>Revisions</th><th>Files</th></tr>");
    for i in store.imports()?.iter().rev().take(5) {
        let _ = write!(
            b,
            "<tr><td>{}</td><td><a href=\"/admin/imports/{}\">{}</a></td><td class=\"n\">{}</td><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&i.imported_at),
            esc(&i.bundle_id),
            esc(&i.channel),
            i.sequence,
            esc(&i.signer_key_id),
            i.revisions_added,
            i.files_added
        );
    }
    b.push_str("</table>");
    Ok(Rendered::Page("Dashboard".into(), b))
}

fn updates(
    store: &Store,
    query: &HashMap<String, String>,
    csrf: &str,
) -> crate::store::StoreResult<Rendered> {
    let q = |k: &str| query.get(k).filter(|v| !v.is_empty()).cloned();
    let approval = match q("approval").as_deref() {
        Some("approved") => Some(crate::store::ApprovalState::Approved),
        Some("declined") => Some(crate::store::ApprovalState::Declined),
        Some("any") => None,
        Some("unapproved") => Some(crate::store::ApprovalState::Unapproved),
        _ => Some(crate::store::ApprovalState::AnyExceptDeclined),
    };
    let list = store.list_updates(&crate::store::UpdateFilter {
        text: q("search"),
        classification: q("classification"),
        product: q("product"),
        approval,
        ..Default::default()
    })?;
    let shown = &list[..list.len().min(500)];
    let published = crate::admin::published_by(store)?;
    let groups = crate::admin::group_tree(store)?;
    let back = format!(
        "/admin/updates?approval={}&classification={}&product={}&search={}",
        url_encode(&q("approval").unwrap_or_default()),
        url_encode(&q("classification").unwrap_or_default()),
        url_encode(&q("product").unwrap_or_default()),
        url_encode(&q("search").unwrap_or_default())
    );
    let mut b = format!("<h1>Updates</h1>{}", message(query));
    let selected =
        |v: &str| if q("approval").as_deref().unwrap_or("") == v { " selected" } else { "" };
    let _ = write!(
        b,
        "<form method=\"get\" action=\"/admin/updates\">Approval <select name=\"approval\">\
         <option value=\"\"{}>any except declined</option><option value=\"unapproved\"{}>unapproved</option>\
         <option value=\"approved\"{}>approved</option><option value=\"declined\"{}>declined</option><option value=\"any\"{}>any</option></select> \
         Classification <input name=\"classification\" value=\"{}\" size=\"14\"> Product <input name=\"product\" value=\"{}\" size=\"14\"> \
         Search <input name=\"search\" value=\"{}\" size=\"16\"> <button>Filter</button></form>",
        selected(""),
        selected("unapproved"),
        selected("approved"),
        selected("declined"),
        selected("any"),
        esc(&q("classification").unwrap_or_default()),
        esc(&q("product").unwrap_or_default()),
        esc(&q("search").unwrap_or_default())
    );
    let _ = write!(
        b,
        "<form method=\"post\" action=\"/admin/updates\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"back\" value=\"{}\"><p><select name=\"action\"><option value=\"approve\">Approve for install</option>\
         <option value=\"unapprove\">Remove approval</option><option value=\"decline\">Decline</option><option value=\"undecline\">Undecline</option></select> for \
         <select name=\"group\">",
        esc(csrf),
        esc(&back)
    );
    for g in &groups {
        let _ = write!(
            b,
            "<option value=\"{}\">{}{}</option>",
            esc(&g.group.name),
            "&nbsp;&nbsp;".repeat(g.depth),
            esc(&g.group.name)
        );
    }
    let _ = write!(
        b,
        "</select> deadline <input name=\"deadline\" placeholder=\"2026-12-31\" size=\"11\"> <button id=\"apply\">Apply to selected</button></p>\
         <p>{} update(s){}</p><table><tr><th></th><th>KB</th><th>Title</th><th>Product</th><th>Classification</th><th>Approval</th><th>Update ID</th></tr>",
        list.len(),
        if list.len() > shown.len() {
            format!(", the first {} shown: narrow the filter", shown.len())
        } else {
            String::new()
        }
    );
    for u in shown {
        // An update published here by its vendor and product; any other by its products.
        let product = published
            .get(u.update_id.as_str())
            .map_or_else(|| u.products.join(", "), crate::store::PublishedBy::label);
        let _ = write!(
            b,
            "<tr><td><input type=\"checkbox\" name=\"id\" value=\"{}\"></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(&u.update_id),
            u.kb_article.as_ref().map(|k| format!("KB{}", esc(k))).unwrap_or_default(),
            esc(u.title.as_deref().unwrap_or("")),
            esc(&product),
            esc(u.classification.as_deref().unwrap_or("")),
            u.approval,
            esc(&u.update_id)
        );
    }
    b.push_str("</table></form>");
    Ok(Rendered::Page("Updates".into(), b))
}

fn computers(
    store: &Store,
    query: &HashMap<String, String>,
    csrf: &str,
) -> crate::store::StoreResult<Rendered> {
    let report = crate::admin::compliance_report(store, store.computers()?, None)?;
    let tree = crate::admin::group_tree(store)?;
    let mut b = format!(
        "<h1>Computers</h1>{}<table><tr><th>Computer</th><th>Groups</th><th>Last contact</th><th>Last report</th>",
        message(query)
    );
    b.push_str(COUNT_HEADERS);
    b.push_str("</tr>");
    for c in &report.computers {
        let _ = write!(
            b,
            "<tr><td><a href=\"/admin/computers/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
            esc(&c.computer_id),
            esc(&c.name),
            esc(&c.groups.join(", ")),
            esc(&c.last_contact_at),
            esc(c.last_report_at.as_deref().unwrap_or("never")),
            counts_cells(&c.counts)
        );
    }
    let options = group_options(&tree);
    let _ = write!(
        b,
        "</table><h2>Move a computer</h2><form method=\"post\" action=\"/admin/computers\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"action\" value=\"move\">Computer <input name=\"computer\" size=\"24\"> to <select name=\"group\">{options}</select> \
         <button>Move</button></form><h2>Groups</h2><ul>",
        csrf = esc(csrf)
    );
    for g in &tree {
        let _ =
            write!(b, "<li style=\"margin-left:{}em\">{}</li>", g.depth * 2, esc(&g.group.name));
    }
    let _ = write!(
        b,
        "</ul><form method=\"post\" action=\"/admin/computers\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"action\" value=\"add-group\">New group <input name=\"name\" size=\"20\"> under <select name=\"parent\">{options}</select> \
         <button>Add</button></form>",
        esc(csrf)
    );
    let targeting = store.targeting()?;
    let _ = write!(
        b,
        "<h2>Targeting</h2><form method=\"post\" action=\"/admin/computers\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"action\" value=\"targeting\"><label><input type=\"radio\" name=\"mode\" value=\"client\"{}> \
         client-side (the group names clients send decide)</label> <label><input type=\"radio\" name=\"mode\" value=\"server\"{}> \
         server-side (placed here)</label> <button>Save</button></form>",
        esc(csrf),
        if targeting.mode == crate::store::TargetingMode::Client { " checked" } else { "" },
        if targeting.mode == crate::store::TargetingMode::Server { " checked" } else { "" }
    );
    Ok(Rendered::Page("Computers".into(), b))
}

fn imports(store: &Store) -> crate::store::StoreResult<Rendered> {
    let mut b = String::from(
        "<h1>Import history</h1><table><tr><th>Imported</th><th>Channel</th><th>Sequence</th><th>Base</th><th>Signer key</th><th>Created</th><th>Revisions</th><th>Files</th><th>Report</th></tr>",
    );
    for i in store.imports()?.iter().rev() {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><a href=\"/admin/imports/{}\">bundle report</a></td></tr>",
            esc(&i.imported_at),
            esc(&i.channel),
            i.sequence,
            i.base_sequence.map(|s| s.to_string()).unwrap_or_else(|| "full".into()),
            esc(&i.signer_key_id),
            esc(&i.created),
            i.revisions_added,
            i.files_added,
            esc(&i.bundle_id)
        );
    }
    b.push_str("</table>");
    Ok(Rendered::Page("Imports".into(), b))
}

fn rules(
    store: &Store,
    query: &HashMap<String, String>,
    csrf: &str,
) -> crate::store::StoreResult<Rendered> {
    let tree = crate::admin::group_tree(store)?;
    let mut b = format!(
        "<h1>Automatic approval rules</h1>{}<p>Applied after every import; a rule never touches a declined, expired or superseded \
         update, nor one already approved for its group.</p><table><tr><th>Rule</th><th>Classifications</th><th>Products</th><th>Group</th>\
         <th>Action</th><th>Deadline</th><th>State</th><th></th></tr>",
        message(query)
    );
    let any = |v: &[String]| if v.is_empty() { "any".to_string() } else { v.join(", ") };
    for r in store.approval_rules()? {
        let button = |action: &str, label: &str| {
            format!(
                "<form method=\"post\" action=\"/admin/rules\" style=\"display:inline\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <input type=\"hidden\" name=\"rule\" value=\"{}\"><input type=\"hidden\" name=\"action\" value=\"{action}\"><button>{label}</button></form>",
                esc(csrf),
                r.rule_id
            )
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td></tr>",
            esc(&r.name),
            esc(&any(&r.classifications)),
            esc(&any(&r.products)),
            esc(&r.group_name),
            esc(r.action.as_str()),
            r.deadline_days.map(|d| format!("{d} days")).unwrap_or_else(|| "none".into()),
            if r.enabled { "on" } else { "off" },
            if r.enabled { button("disable", "Turn off") } else { button("enable", "Turn on") },
            button("remove", "Remove")
        );
    }
    let options = group_options(&tree);
    let _ = write!(
        b,
        "</table><h2>New rule</h2><form method=\"post\" action=\"/admin/rules\"><input type=\"hidden\" name=\"csrf\" value=\"{c}\">\
         <input type=\"hidden\" name=\"action\" value=\"add\">Classifications <input name=\"classifications\" placeholder=\"Security Updates, Critical Updates\" size=\"30\"> \
         Products <input name=\"products\" placeholder=\"Windows 11\" size=\"20\"> for <select name=\"group\">{options}</select> \
         <select name=\"approval\"><option value=\"install\">install</option><option value=\"uninstall\">uninstall</option></select> \
         deadline after <input name=\"deadline_days\" size=\"3\"> days <button>Add and apply</button></form>\
         <form method=\"post\" action=\"/admin/rules\"><input type=\"hidden\" name=\"csrf\" value=\"{c}\"><input type=\"hidden\" name=\"action\" value=\"apply\">\
         <p><button>Run the rules now</button></p></form>",
        c = esc(csrf)
    );
    Ok(Rendered::Page("Rules".into(), b))
}

/// The cleanup form, and what a preview or a run did.
/// `result`: the plan, and whether it was carried out (or only previewed).
fn cleanup_page(
    csrf: &str,
    result: Option<(&CleanupPlan, bool)>,
    query: &HashMap<String, String>,
) -> Rendered {
    let mut b = format!(
        "<h1>Server cleanup</h1>{}<form method=\"post\" action=\"/admin/cleanup\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <p><label><input type=\"checkbox\" name=\"decline_superseded\" checked> Decline superseded updates (superseded by an approved update, \
         not approved in 30 days, needed by no computer)</label><br><label><input type=\"checkbox\" name=\"decline_expired\" checked> \
         Decline expired updates nobody approved</label><br><label><input type=\"checkbox\" name=\"unneeded_content\" checked> Delete content \
         files no update needs</label><br>Forget computers silent for <input name=\"obsolete_computers\" size=\"4\" placeholder=\"30\"> days</p>\
         <button name=\"run\" value=\"no\">Preview</button> <button name=\"run\" value=\"yes\">Clean up</button></form>",
        message(query),
        esc(csrf)
    );
    if let Some((plan, ran)) = result {
        let _ = write!(
            b,
            "<p class=\"msg\" role=\"status\">{}: {} update(s) declined, {} file(s) deleted ({}), {} computer(s) removed</p><table><tr><th>Update</th><th>Title</th><th>Reason</th></tr>",
            if ran { "done" } else { "preview (nothing changed)" },
            plan.declines.len(),
            plan.files.len(),
            crate::units::format_size(plan.bytes_freed),
            plan.computers.len()
        );
        for d in plan.declines.iter().take(500) {
            let _ = write!(
                b,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(&d.update_id),
                esc(d.title.as_deref().unwrap_or("")),
                esc(&d.reason.to_string())
            );
        }
        b.push_str("</table>");
    }
    Rendered::Page("Cleanup".into(), b)
}

/// One computer: its groups, contact times, and the updates it needs or failed to install.
fn computer(store: &Store, id: &str) -> crate::store::StoreResult<Rendered> {
    let Some(record) = store.computer(&id.to_ascii_lowercase())? else {
        return Ok(Rendered::NotFound);
    };
    let name = record.dns_name.clone();
    let report = crate::admin::compliance_report(store, vec![record], None)?;
    let Some(c) = report.computers.first() else { return Ok(Rendered::NotFound) };
    let titles: HashMap<&str, (&Option<String>, String, &str)> = report
        .updates
        .iter()
        .map(|u| (u.update_id.as_str(), (&u.kb_article, u.shown_title(), u.approval.as_str())))
        .collect();
    let mut b = format!(
        "<h1>{}</h1><table><tr><th>SusClientId</th><td><code>{}</code></td></tr><tr><th>Groups</th><td>{}</td></tr>\
         <tr><th>Last contact</th><td>{}</td></tr><tr><th>Last scan</th><td>{}</td></tr><tr><th>Last report</th><td>{}</td></tr></table>\
         <table><tr>{COUNT_HEADERS}</tr><tr>{}</tr></table>",
        esc(&name),
        esc(&c.computer_id),
        esc(&c.groups.join(", ")),
        esc(&c.last_contact_at),
        esc(c.last_sync_at.as_deref().unwrap_or("never")),
        esc(c.last_report_at.as_deref().unwrap_or("never")),
        counts_cells(&c.counts)
    );
    for (heading, ids) in [("Failed", &c.failed), ("Needed", &c.needed)] {
        let _ = write!(
            b,
            "<h2>{heading} ({})</h2><table><tr><th>KB</th><th>Title</th><th>Approval</th><th>Update ID</th></tr>",
            ids.len()
        );
        for id in ids.iter().take(500) {
            let (kb, title, approval) =
                titles.get(id.as_str()).cloned().unwrap_or((&None, String::new(), ""));
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                kb.as_ref().map(|k| format!("KB{}", esc(k))).unwrap_or_default(),
                esc(&title),
                approval,
                esc(id)
            );
        }
        b.push_str("</table>");
    }
    Ok(Rendered::Page(name, b))
}
