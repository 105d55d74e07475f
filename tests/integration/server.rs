//! `ferry serve` end to end: the real client's requests, the WSDL-generated client, scan
//! semantics, content, cookies, HTTPS, bad input. The server runs as a process; requests go
//! over TCP.

use crate::served::{
    self, Agent, CLIENT, CLIENT_NS, Http, REPORTING, REPORTING_NS, Reply, SIMPLE_AUTH,
    SIMPLE_AUTH_NS, Served, result,
};
use crate::util::{ferry, json_of, stdout_of, wait_until};
use ferry::wsus::agent::{self as wire, SyncRequest, UpdateInfo};
use ferry::wsus::tree::{self, Element};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// A synthetic store with a few approvals and declines.
struct Catalog {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    approved: Vec<String>,
    declined: Vec<String>,
    /// Top-level software updates that are neither (offered for checking).
    others: Vec<String>,
}

fn catalog(updates: u64) -> Catalog {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    stdout_of(ferry(&data).args([
        "dev",
        "synth",
        "--updates",
        &updates.to_string(),
        "--payload-bytes",
        "3000",
    ]));
    let list = json_of(ferry(&data).args(["updates", "list"]));
    let software: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["update_type"] == "Software" && u["publication_state"] != "Expired")
        .collect();
    // Standalone updates carry their files themselves (bundles carry them in their members).
    let approved: Vec<String> = software
        .iter()
        .filter(|u| u["is_bundle"] == false)
        .take(4)
        .map(|u| u["update_id"].as_str().unwrap().to_string())
        .collect();
    let declined: Vec<String> = software
        .iter()
        .filter(|u| !approved.iter().any(|a| a == u["update_id"].as_str().unwrap()))
        .take(3)
        .map(|u| u["update_id"].as_str().unwrap().to_string())
        .collect();
    stdout_of(ferry(&data).args(["updates", "approve"]).args(&approved));
    stdout_of(ferry(&data).args(["updates", "decline"]).args(&declined));
    let others = software
        .iter()
        .map(|u| u["update_id"].as_str().unwrap().to_string())
        .filter(|u| !approved.contains(u) && !declined.contains(u))
        .collect();
    Catalog { _dir: dir, data, approved, declined, others }
}

#[test]
fn a_scan_offers_approved_updates_for_install_the_rest_for_checking_and_no_declined_one() {
    let c = catalog(1200);
    // An approved driver too: drivers go only to the driver pass, approved or not.
    let list = json_of(ferry(&c.data).args(["updates", "list"]));
    let driver = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["update_type"] == "Driver")
        .expect("a driver in the catalog");
    stdout_of(ferry(&c.data).args(["updates", "approve", driver["update_id"].as_str().unwrap()]));
    let server = Served::start(&c.data, &[]);
    let mut agent = Agent::new(&server);
    agent.handshake();
    let pages = agent.scan();
    assert!(pages.len() > 2, "categories and detectoids come in layers over several pages");
    assert!(
        pages[..pages.len() - 1]
            .iter()
            .all(|p| p.truncated || p.new_updates.iter().any(|u| !u.is_leaf))
    );

    let all = json_of(ferry(&c.data).args(["updates", "list", "--all"]));
    let seen = agent.by_update();
    for u in all.as_array().unwrap() {
        let id = u["update_id"].as_str().unwrap();
        match u["update_type"].as_str().unwrap() {
            "Category" | "Detectoid" => {
                let got = seen
                    .get(id)
                    .unwrap_or_else(|| panic!("{} {id} was not offered", u["update_type"]));
                assert_eq!(got.action, "Evaluate", "{id}");
            }
            "Driver" => assert!(!seen.contains_key(id), "drivers come only in the driver pass"),
            _ => {}
        }
    }
    for id in &c.approved {
        assert_eq!(seen[id.as_str()].action, "Install", "approved {id}");
        assert!(seen[id.as_str()].is_leaf);
    }
    for id in &c.declined {
        assert!(!seen.contains_key(id.as_str()), "declined {id} was offered");
    }
    for id in &c.others {
        assert_eq!(
            seen.get(id.as_str()).map(|u| u.action.as_str()),
            Some("PreDeploymentCheck"),
            "{id}"
        );
    }
    // Bundle members come with their bundles.
    assert!(seen.values().any(|u| u.action == "Bundle"));
    // Revision ids are stable: the store's ids.
    let ids: HashSet<i32> =
        all.as_array().unwrap().iter().map(|u| u["revision_id"].as_i64().unwrap() as i32).collect();
    assert!(
        seen.values()
            .filter(|u| u.update_type.as_deref() != Some("Software"))
            .all(|u| ids.contains(&u.revision_id))
    );

    // The same scan again, with everything cached: nothing new.
    let again = agent.scan();
    assert_eq!(again.len(), 1);
    assert!(
        again[0].new_updates.is_empty()
            && again[0].changed_updates.is_empty()
            && again[0].out_of_scope.is_empty(),
        "{:?}",
        again[0]
    );

    // Approving one more while the server runs: the next scan carries the change.
    let next = &c.others[0];
    stdout_of(ferry(&c.data).args(["updates", "approve", next, "--deadline", "2030-01-01"]));
    let mut changed = None;
    wait_until("the approval to reach the server", || {
        let answer = agent.scan().remove(0);
        changed = answer
            .changed_updates
            .iter()
            .chain(&answer.new_updates)
            .find(|u| agent.seen[&u.revision_id].update_id.unwrap().to_string() == *next)
            .cloned();
        changed.is_some()
    });
    let changed = changed.unwrap();
    assert_eq!(
        (changed.action.as_str(), changed.deadline.as_deref()),
        ("Install", Some("2030-01-01T00:00:00Z"))
    );

    // Declining a cached update puts it out of scope.
    let victim = &c.others[1];
    let revision = agent.by_update()[victim.as_str()].revision_id;
    stdout_of(ferry(&c.data).args(["updates", "decline", victim]));
    wait_until("the decline to reach the server", || {
        agent.scan()[0].out_of_scope.contains(&revision)
    });
}

#[test]
fn the_driver_pass_refresh_cache_and_the_400_id_limit_answer_as_wsus_does() {
    let c = catalog(600);
    let server = Served::start(&c.data, &[]);
    let mut agent = Agent::new(&server);
    agent.handshake();
    agent.scan();
    let installed = agent.installed.clone();
    let drivers = agent.sync(&SyncRequest {
        installed_non_leaf: &installed,
        skip_software_sync: true,
        devices: &["PCI\\VEN_0000&DEV_0000"],
        ..Default::default()
    });
    assert!(drivers.new_updates.is_empty());
    assert_eq!(drivers.driver_sync_not_needed, Some(true));

    // RefreshCache: the client names updates by identity and gets this server's revision ids
    // and deployments back (bundle members left out, as WSUS does).
    let approved = agent.by_update()[c.approved[0].as_str()].clone();
    let category =
        agent.seen.values().find(|u| u.update_type.as_deref() == Some("Category")).unwrap().clone();
    let identity = |u: &UpdateInfo| {
        format!(
            "<UpdateIdentity><UpdateID>{}</UpdateID><RevisionNumber>{}</RevisionNumber></UpdateIdentity>",
            u.update_id.unwrap(),
            between(u.xml.as_deref().unwrap(), "RevisionNumber=\"", "\"").unwrap()
        )
    };
    let cookie = wire::sync_updates(&agent.cookie, &SyncRequest::default());
    let cookie = between(&cookie, "<cookie>", "</cookie>").unwrap();
    let body = envelope(
        "RefreshCache",
        CLIENT_NS,
        &format!(
            "<cookie>{cookie}</cookie><globalIDs>{}{}<UpdateIdentity><UpdateID>{}</UpdateID><RevisionNumber>1</RevisionNumber></UpdateIdentity></globalIDs>",
            identity(&approved),
            identity(&category),
            ferry::random::guid()
        ),
    );
    let r = server.soap(CLIENT, &format!("{CLIENT_NS}/RefreshCache"), &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    // The array and its two items share a name (ArrayOfRefreshCacheResult).
    assert_eq!(
        text.matches("<RefreshCacheResult>").count(),
        3,
        "unknown identities are left out: {text}"
    );
    assert!(
        text.contains(&format!("<RevisionID>{}</RevisionID>", approved.revision_id))
            && text.contains("<Action>Install</Action>"),
        "{text}"
    );

    // WSUS's limit: 400 installed non-leaf ids pass, 401 is InvalidParameters.
    let ids: Vec<i32> = (1..=401).collect();
    let ok = wire::sync_updates(
        &agent.cookie,
        &SyncRequest { installed_non_leaf: &ids[..400], ..Default::default() },
    );
    assert_eq!(server.soap(CLIENT, &format!("{CLIENT_NS}/SyncUpdates"), &ok).status, 200);
    let over = wire::sync_updates(
        &agent.cookie,
        &SyncRequest { installed_non_leaf: &ids, ..Default::default() },
    );
    let r = server.soap(CLIENT, &format!("{CLIENT_NS}/SyncUpdates"), &over);
    assert_eq!(r.fault_code().as_deref(), Some("InvalidParameters"));
    assert!(
        r.text().contains("<Message>parameters.InstalledNonLeafUpdateIDs</Message>"),
        "{}",
        r.text()
    );
}

/// The shape of an XML document: element names and namespaces in order, repeated siblings of
/// one name folded into one (lists differ in length, not in shape).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    name: String,
    children: Vec<Shape>,
}

fn shape(e: &Element) -> Shape {
    let mut children: Vec<Shape> = Vec::new();
    for c in &e.children {
        let s = shape(c);
        match children.last_mut() {
            Some(last) if last.name == s.name => {
                // Keep the richer of the repeated siblings (a deadline on one deployment only).
                if s.children.len() > last.children.len() {
                    *last = s;
                }
            }
            _ => children.push(s),
        }
    }
    // `<int>` items are kept as numbers by the parser; they are elements of the parent's namespace.
    if !e.ints.is_empty() && children.is_empty() {
        children.push(Shape { name: format!("{{{}}}int", e.ns), children: Vec::new() });
    }
    Shape { name: format!("{{{}}}{}", e.ns, e.name), children }
}

/// Elements whose presence depends on the data (optional in the WSDL, present when non-empty).
const DATA_DEPENDENT: &[&str] = &[
    "NewUpdates",
    "ChangedUpdates",
    "OutOfScopeRevisionIDs",
    "Deadline",
    "Updates",
    "FileLocations",
    "requestedCategoryIdsInError",
    "preferredCategoryIds",
];

/// Compares ours with the real one: same order and namespaces; an element on one side only is
/// allowed only when its presence depends on data.
fn compare(real: &Shape, ours: &Shape, path: &str, problems: &mut Vec<String>) {
    let local = |s: &Shape| s.name.rsplit('}').next().unwrap().to_string();
    let (mut i, mut j) = (0, 0);
    while i < real.children.len() || j < ours.children.len() {
        match (real.children.get(i), ours.children.get(j)) {
            (Some(r), Some(o)) if r.name == o.name => {
                compare(r, o, &format!("{path}/{}", local(r)), problems);
                i += 1;
                j += 1;
            }
            (Some(r), _)
                if DATA_DEPENDENT.contains(&local(r).as_str())
                    && !ours.children[j..].iter().any(|o| o.name == r.name) =>
            {
                i += 1
            }
            (_, Some(o))
                if DATA_DEPENDENT.contains(&local(o).as_str())
                    && !real.children[i..].iter().any(|r| r.name == o.name) =>
            {
                j += 1
            }
            (r, o) => {
                problems.push(format!(
                    "{path}: real has {:?}, ours has {:?}",
                    r.map(|r| &r.name),
                    o.map(|o| &o.name)
                ));
                return;
            }
        }
    }
}

fn replace_ints(body: &str, element: &str, ids: &[i32]) -> String {
    let open = format!("<{element}>");
    let close = format!("</{element}>");
    let (Some(a), Some(b)) = (body.find(&open), body.find(&close)) else { return body.to_string() };
    let ints: String = ids.iter().map(|i| format!("<int>{i}</int>")).collect();
    format!("{}{open}{ints}{}", &body[..a], &body[b..])
}

fn between<'t>(text: &'t str, open: &str, close: &str) -> Option<&'t str> {
    let a = text.find(open)? + open.len();
    let b = text[a..].find(close)? + a;
    Some(&text[a..b])
}

/// Every element name and namespace in the real requests (Windows clients, a WSUS server) is
/// one of `wsus::names::KNOWN`, so the requests of a scan parse without allocating names.
#[test]
fn real_requests_name_only_known_elements() {
    fn unknown(e: &Element, out: &mut Vec<String>) {
        for n in [&e.name, &e.ns] {
            if !matches!(n, tree::Name::Known(_)) {
                out.push(format!("{{{}}}{}", e.ns, e.name));
            }
        }
        e.children.iter().for_each(|c| unknown(c, out));
    }
    let conformance = crate::conformance_or_skip!();
    let mut missing = Vec::new();
    for body in &real_request_bodies(&conformance) {
        let root = tree::parse(&std::fs::read(body).unwrap()).unwrap();
        unknown(&root, &mut missing);
    }
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "add to wsus/names.rs KNOWN: {missing:?}");
}

/// The request bodies of the real captures: Windows clients and a WSUS server.
fn real_request_bodies(conformance: &Path) -> Vec<std::path::PathBuf> {
    let mut bodies = Vec::new();
    for group in ["wua-native/scan", "wua-native/flow", "wsus-lab", "wsusss/exchanges"] {
        for entry in std::fs::read_dir(conformance.join(group)).unwrap() {
            let body = entry.unwrap().path().join("request.body");
            if body.is_file() {
                bodies.push(body);
            }
        }
    }
    assert!(bodies.len() >= 40, "the real requests: {}", bodies.len());
    bodies
}

/// `wsus/shape.rs`'s invariant on real requests: every real request with a cookie is cut, its
/// shape's parse holds the markers, and with any other cookie texts the whole request parses to
/// the shape's tree with those texts in the markers' place, and to the cut's cookie.
#[test]
fn shaped_requests_parse_as_themselves() {
    use ferry::wsus::client::cookie;
    use ferry::wsus::shape::{Cut, marks_hold};
    use ferry::wsus::soap::parse_request;
    fn set_cookie_texts(request: &mut ferry::wsus::soap::Request, expiration: &str, data: &str) {
        let c = request.operation.children.iter_mut().find(|c| &*c.name == "cookie").unwrap();
        for child in &mut c.children {
            match &*child.name {
                "Expiration" => child.text = expiration.to_string(),
                "EncryptedData" => child.text = data.to_string(),
                _ => {}
            }
        }
    }
    let conformance = crate::conformance_or_skip!();
    let texts = [
        ("2026-12-04T21:06:34.0000000Z", "AAAA"),
        ("9999-01-01T00:00:00Z", "DEx7LyL9ACHo+/UkSQ=="),
        ("x", "not-base64:.="),
    ];
    let mut shaped = 0;
    for path in real_request_bodies(&conformance) {
        let body = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        let Some(cut) = Cut::of(body.as_bytes()) else {
            // Driver scans escape `&` in hardware ids: those are parsed whole.
            let why = !body.contains("<cookie><Expiration>") || body.contains('&');
            assert!(why, "{} is not cut", path.display());
            continue;
        };
        let marked = parse_request(&cut.marked()).unwrap();
        assert!(marks_hold(&marked), "{}", path.display());
        shaped += 1;
        for (expiration, data) in texts {
            let [before, between, after] = cut.segments.map(|s| std::str::from_utf8(s).unwrap());
            let other = format!("{before}{expiration}{between}{data}{after}");
            let other_cut = Cut::of(other.as_bytes()).unwrap();
            let mut whole = parse_request(other.as_bytes()).unwrap();
            assert_eq!(
                other_cut.cookie().map(Some),
                cookie(&whole.operation, "cookie"),
                "{}",
                path.display()
            );
            set_cookie_texts(&mut whole, "~", "~~");
            assert_eq!(whole.operation, marked.operation, "{}", path.display());
        }
    }
    assert!(shaped >= 20, "real requests cut at their cookie: {shaped}");
}

#[test]
fn native_client_requests_get_answers_shaped_like_real_wsus() {
    let conformance = crate::conformance_or_skip!();
    let c = catalog(1200);
    let server = Served::start(&c.data, &[]);
    let mut http = server.http();
    let native = conformance.join("wua-native");
    let (mut last_change, mut auth, mut cookie) = (None::<String>, None::<String>, None::<String>);
    let (mut installed, mut leafs, mut approved_leafs): (Vec<i32>, Vec<i32>, Vec<i32>) =
        Default::default();
    let mut problems = Vec::new();
    let mut exchanges = 0;
    for group in ["scan", "flow"] {
        let mut dirs: Vec<_> = std::fs::read_dir(native.join(group))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let headers =
                String::from_utf8(crate::conformance::read(&dir.join("request.headers"))).unwrap();
            let path =
                headers.lines().next().unwrap().split_whitespace().nth(1).unwrap().to_string();
            let action = headers
                .lines()
                .find_map(|l| l.strip_prefix("SOAPAction: "))
                .unwrap()
                .trim()
                .trim_matches('"')
                .to_string();
            let op = action.rsplit('/').next().unwrap().to_string();
            let mut body =
                String::from_utf8(crate::conformance::read(&dir.join("request.body"))).unwrap();
            // Live values in place of the captured ones: our config time and cookies, and
            // revision ids this server sent (the client caches ids of its own server).
            if let Some(l) = &last_change {
                body = body
                    .replace(between(&body, "<lastChange>", "</lastChange>").unwrap_or("\u{0}"), l);
            }
            if let (Some(a), Some(old)) =
                (&auth, between(&body, "<CookieData>", "</CookieData>").map(str::to_string))
            {
                body = body.replace(&old, a);
            }
            if let (Some(ck), Some(old)) =
                (&cookie, between(&body, "<cookie>", "</cookie>").map(str::to_string))
            {
                body = body.replace(&old, ck);
            }
            body = replace_ints(
                &body,
                "InstalledNonLeafUpdateIDs",
                &installed[..installed.len().min(400)],
            );
            body = replace_ints(&body, "OtherCachedUpdateIDs", &leafs);
            if op == "GetExtendedUpdateInfo" {
                let ids: Vec<i32> = approved_leafs.iter().chain(&leafs).take(50).copied().collect();
                body = replace_ints(&body, "revisionIDs", &ids);
            }
            let r = http.soap(&path, &action, &body);
            exchanges += 1;
            assert_eq!(r.status, 200, "{}: {op}: {}", dir.display(), r.text());
            let text = r.text();
            match op.as_str() {
                "GetConfig" => {
                    last_change =
                        between(&text, "<LastChange>", "</LastChange>").map(str::to_string)
                }
                "GetAuthorizationCookie" => {
                    auth = between(&text, "<CookieData>", "</CookieData>").map(str::to_string)
                }
                "GetCookie" => {
                    cookie = between(&text, "<GetCookieResult>", "</GetCookieResult>")
                        .map(str::to_string)
                }
                "SyncUpdates" => {
                    let answer = wire::read_sync(&r.body).unwrap();
                    for u in answer.new_updates {
                        match (u.is_leaf, u.action.as_str()) {
                            (false, _) => installed.push(u.revision_id),
                            (true, "Install") => approved_leafs.push(u.revision_id),
                            (true, _) => leafs.push(u.revision_id),
                        }
                    }
                    if let Some(c) = answer.new_cookie {
                        let data = c
                            .data
                            .map(|d| {
                                base64::Engine::encode(
                                    &base64::engine::general_purpose::STANDARD,
                                    d,
                                )
                            })
                            .unwrap_or_default();
                        cookie = Some(format!(
                            "<Expiration>{}</Expiration><EncryptedData>{data}</EncryptedData>",
                            c.expiration
                        ));
                    }
                }
                _ => {}
            }
            let real = tree::parse(&crate::conformance::read(&dir.join("response.body"))).unwrap();
            let ours = tree::parse(&r.body)
                .unwrap_or_else(|e| panic!("{}: our answer is not XML: {e}", dir.display()));
            let before = problems.len();
            compare(
                &shape(&real),
                &shape(&ours),
                &format!("{} {op}", dir.display()),
                &mut problems,
            );
            if problems.len() > before {
                problems.push(format!("ours: {}", &text[..text.len().min(600)]));
            }
        }
    }
    assert!(exchanges >= 19, "every native exchange was replayed ({exchanges})");
    assert!(
        problems.is_empty(),
        "answers differ in shape from real WSUS:\n{}",
        problems.join("\n")
    );
}

/// Runs a conformance tool against a server; returns its output.
fn python_tool(conformance: &Path, tool: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .arg(conformance.join("tools").join(tool))
        .args(args)
        .output()
        .expect("python3 runs");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

fn zeep_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import zeep"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("FERRY_REQUIRE_TOOLS").is_none(),
            "python3 with zeep is required (pip install -r ../shared/conformance/tools/requirements.txt)"
        );
        eprintln!("skipped: python3 with zeep is not installed");
    }
    ok
}

#[test]
fn the_wsdl_generated_clients_of_both_protocols_and_the_native_replay_pass_over_soap_11_and_12() {
    let conformance = crate::conformance_or_skip!();
    if !zeep_available() {
        return;
    }
    let c = catalog(800);
    let server = Served::start(&c.data, &[]);
    let url = server.url();
    let replay = python_tool(&conformance, "replay_native.py", &[&url, "--no-xpress"]);
    assert!(replay.trim_end().ends_with("0 failed"), "{replay}");
    // Again asking for xpress as the real client does. The tool does not decode xpress itself
    // (it skips such answers and so loses the cookies it chains), so `xpress_tool.py` runs it
    // with every compressed answer decoded by dissect.util first.
    if crate::xpress::dissect_available() {
        let tool = conformance.join("tools").join("replay_native.py");
        let out = std::process::Command::new("python3")
            .arg(crate::xpress::xpress_tool())
            .arg("replay")
            .arg(&tool)
            .arg(&url)
            .output()
            .expect("python3 runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains("\n0 failed\n"),
            "replay with xpress:\n{text}"
        );
        assert!(
            text.contains("xpress: decoded 7 answers"),
            "every client and SimpleAuth answer came compressed:\n{text}"
        );
    }
    for service in ["--wusp", "--wsusss"] {
        for extra in [&[][..], &["--soap12"][..]] {
            let mut args = vec![url.as_str(), service];
            args.extend_from_slice(extra);
            let out = python_tool(&conformance, "zeep_wsus_client.py", &args);
            assert!(out.trim_end().ends_with("0 failed"), "{service} {extra:?}: {out}");
        }
    }
}

fn envelope(op: &str, ns: &str, inner: &str) -> String {
    format!(
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><{op} xmlns=\"{ns}\">{inner}</{op}></s:Body></s:Envelope>"
    )
}

#[test]
fn bad_requests_get_faults_or_4xx_the_server_stays_up_and_nothing_stored_changes() {
    let c = catalog(300);
    let mut server = Served::start(&c.data, &[]);
    let mut agent = Agent::new(&server);
    agent.handshake();
    let cookie = wire::sync_updates(&agent.cookie, &SyncRequest::default());
    let cookie_xml = between(&cookie, "<cookie>", "</cookie>").unwrap().to_string();
    std::thread::sleep(Duration::from_millis(700));
    let before = crate::util::snapshot(&c.data);

    let action = |op: &str| format!("{CLIENT_NS}/{op}");
    let fault = |r: &Reply, code: &str, what: &str| {
        assert_eq!(r.status, 500, "{what}: {}", r.text());
        assert_eq!(r.fault_code().as_deref(), Some(code), "{what}: {}", r.text());
        assert!(r.text().contains("<Message>"), "{what}: the fault says what was wrong");
    };
    let ten_thousand: String = (0..10_000).map(|i| format!("<int>{i}</int>")).collect();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "truncated XML",
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><GetConfig"
                .into(),
            "InvalidParameters",
        ),
        (
            "wrong envelope namespace",
            "<s:Envelope xmlns:s=\"urn:wrong\"><s:Body/></s:Envelope>".into(),
            "InvalidParameters",
        ),
        (
            "wrong operation namespace",
            envelope("GetConfig", "urn:wrong", "<protocolVersion>2.90</protocolVersion>"),
            "InvalidParameters",
        ),
        (
            "entity declarations",
            format!(
                "<!DOCTYPE s [<!ENTITY x \"{}\">]>{}",
                "y".repeat(100),
                envelope("GetConfig", CLIENT_NS, "<protocolVersion>&x;</protocolVersion>")
            ),
            "InvalidParameters",
        ),
        ("unknown operation", envelope("GetTimestamps", CLIENT_NS, ""), "InvalidParameters"),
        (
            "missing cookie",
            envelope(
                "SyncUpdates",
                CLIENT_NS,
                "<parameters><SkipSoftwareSync>false</SkipSoftwareSync></parameters>",
            ),
            "InvalidCookie",
        ),
        (
            "forged cookie",
            envelope(
                "SyncUpdates",
                CLIENT_NS,
                "<cookie><Expiration>2030-01-01T00:00:00Z</Expiration><EncryptedData>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA</EncryptedData></cookie><parameters/>",
            ),
            "InvalidCookie",
        ),
        (
            "cookie data that is not base64 (read from the request's shape)",
            envelope(
                "SyncUpdates",
                CLIENT_NS,
                "<cookie><Expiration>2030-01-01T00:00:00Z</Expiration><EncryptedData>AAA:</EncryptedData></cookie><parameters/>",
            ),
            "InvalidParameters",
        ),
        (
            "10,000 installed non-leaf ids",
            envelope(
                "SyncUpdates",
                CLIENT_NS,
                &format!(
                    "<cookie>{cookie_xml}</cookie><parameters><InstalledNonLeafUpdateIDs>{ten_thousand}</InstalledNonLeafUpdateIDs><SkipSoftwareSync>false</SkipSoftwareSync></parameters>"
                ),
            ),
            "InvalidParameters",
        ),
        (
            "51 extended revisions",
            envelope(
                "GetExtendedUpdateInfo",
                CLIENT_NS,
                &format!(
                    "<cookie>{cookie_xml}</cookie><revisionIDs>{}</revisionIDs>",
                    (0..51).map(|i| format!("<int>{i}</int>")).collect::<String>()
                ),
            ),
            "InvalidParameters",
        ),
        (
            "bad protocol version",
            envelope("GetConfig", CLIENT_NS, "<protocolVersion>two</protocolVersion>"),
            "InvalidParameters",
        ),
    ];
    let mut http = server.http();
    for (what, body, code) in &cases {
        let op = between(body, "<s:Body><", " ").unwrap_or("GetConfig");
        let r = http.soap(CLIENT, &action(op), body);
        fault(&r, code, what);
    }
    // Not UTF-8.
    let mut latin1 =
        envelope("GetConfig", CLIENT_NS, "<protocolVersion>2.90</protocolVersion>").into_bytes();
    latin1.insert(60, 0xe9);
    let r = http.request(
        "POST",
        CLIENT,
        &[("Content-Type", "text/xml"), ("SOAPAction", "\"x\"")],
        &latin1,
    );
    fault(&r, "InvalidParameters", "not UTF-8");
    // SOAP 1.2 faults come in SOAP 1.2.
    let r = http.request(
        "POST",
        CLIENT,
        &[("Content-Type", "application/soap+xml; charset=utf-8")],
        b"<x/>",
    );
    assert_eq!(r.status, 500);
    assert!(r.text().contains("http://www.w3.org/2003/05/soap-envelope"), "{}", r.text());
    // Too large a body: 413 before it is read.
    let big = vec![b' '; ferry::server::MAX_REQUEST_BYTES + 1];
    let r = Http::new(&server.addr).request("POST", CLIENT, &[("Content-Type", "text/xml")], &big);
    assert_eq!(r.status, 413);
    // Wrong method, unknown path.
    assert_eq!(Http::new(&server.addr).request("PUT", CLIENT, &[], b"x").status, 405);
    assert_eq!(Http::new(&server.addr).request("GET", "/nothing/here", &[], b"").status, 404);
    // Reporting and SimpleAuth refuse what they do not offer.
    let r = server.soap(
        REPORTING,
        &format!("{REPORTING_NS}/ReportInventory"),
        &envelope("ReportInventory", REPORTING_NS, ""),
    );
    fault(&r, "InvalidParameters", "ReportInventory");
    let r = server.soap(
        SIMPLE_AUTH,
        &format!("{SIMPLE_AUTH_NS}/GetAuthorizationCookie"),
        &envelope("GetAuthorizationCookie", SIMPLE_AUTH_NS, "<clientId></clientId>"),
    );
    fault(&r, "InvalidParameters", "empty clientId");

    assert!(server.alive(), "the server survived:\n{}", server.log());
    let health = Http::new(&server.addr).request("GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200);
    assert_eq!(before, crate::util::snapshot(&c.data), "bad requests changed the store");

    // 10,000 cached ids are fine: unknown ones come back out of scope.
    let body = envelope(
        "SyncUpdates",
        CLIENT_NS,
        &format!(
            "<cookie>{cookie_xml}</cookie><parameters><OtherCachedUpdateIDs>{}</OtherCachedUpdateIDs><SkipSoftwareSync>false</SkipSoftwareSync></parameters>",
            (900_000..910_000).map(|i| format!("<int>{i}</int>")).collect::<String>()
        ),
    );
    let r = http.soap(CLIENT, &action("SyncUpdates"), &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(wire::read_sync(&r.body).unwrap().out_of_scope.len(), 10_000);
}

#[test]
fn slow_clients_are_cut_off_and_the_server_carries_on() {
    let c = catalog(100);
    let server = Served::start(&c.data, &["--client-timeout", "1"]);
    let started = Instant::now();
    let mut idle = std::net::TcpStream::connect(&server.addr).unwrap();
    use std::io::{Read, Write};
    idle.write_all(b"POST /ClientWebService/client.asmx HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut buf = [0u8; 256];
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let n = idle.read(&mut buf).unwrap_or(0);
    assert!(
        n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    // A body that never finishes: 408.
    let mut slow = Http::new(&server.addr);
    slow.raw(b"POST /ClientWebService/client.asmx HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n<s:Env");
    assert_eq!(slow.read_reply(false).status, 408);
    assert_eq!(Http::new(&server.addr).request("GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn cookies_survive_a_restart_and_foreign_ones_are_refused() {
    let c = catalog(200);
    let other = catalog(100);
    let first = Served::start(&c.data, &[]);
    let mut agent = Agent::new(&first);
    agent.handshake();
    let cookie = agent.cookie.clone();
    drop(agent);
    drop(first);
    let server = Served::start(&c.data, &[]);
    let body = wire::sync_updates(&cookie, &SyncRequest::default());
    let r = server.soap(CLIENT, &format!("{CLIENT_NS}/SyncUpdates"), &body);
    assert_eq!(r.status, 200, "a cookie from before the restart: {}", r.text());
    let stranger = Served::start(&other.data, &[]);
    let r = stranger.soap(CLIENT, &format!("{CLIENT_NS}/SyncUpdates"), &body);
    assert_eq!(r.fault_code().as_deref(), Some("InvalidCookie"), "another server's cookie");
    // An unregistered client with a valid cookie must register first.
    let mut fresh = Agent::new(&stranger);
    let root = fresh.call(
        SIMPLE_AUTH,
        SIMPLE_AUTH_NS,
        "GetAuthorizationCookie",
        wire::get_authorization_cookie(&fresh.id.clone(), "pc", &[]),
    );
    let auth = ferry::wsus::client::base64(
        result(&root, "GetAuthorizationCookie").child_text("CookieData").unwrap(),
        "x",
    )
    .unwrap();
    let root = fresh.call(CLIENT, CLIENT_NS, "GetConfig", wire::get_config("2.90"));
    let last = result(&root, "GetConfig").child_text("LastChange").unwrap().to_string();
    let root = fresh.call(
        CLIENT,
        CLIENT_NS,
        "GetCookie",
        wire::get_cookie(&auth, &last, &last, &last, "2.90"),
    );
    let cookie = wire::read_cookie(result(&root, "GetCookie")).unwrap();
    let r = stranger.soap(
        CLIENT,
        &format!("{CLIENT_NS}/SyncUpdates"),
        &wire::sync_updates(&cookie, &SyncRequest::default()),
    );
    assert_eq!(r.fault_code().as_deref(), Some("RegistrationRequired"));
    // A stale configuration time: ConfigChanged, so the client calls GetConfig again.
    let r = stranger.soap(
        CLIENT,
        &format!("{CLIENT_NS}/GetCookie"),
        &wire::get_cookie(&auth, &last, "2020-01-01T00:00:00Z", &last, "2.90"),
    );
    assert_eq!(r.fault_code().as_deref(), Some("ConfigChanged"));
}

/// The first present payload file of a store, as (URL path, bytes).
fn some_payload(data: &Path, min_size: usize) -> (String, Vec<u8>) {
    let (path, _) = served::payloads(data)
        .into_iter()
        .rev()
        .find(|(_, size)| *size >= min_size as u64)
        .expect("a payload that large");
    let bytes =
        std::fs::read(data.join("content").join(path.trim_start_matches("/Content/"))).unwrap();
    (path, bytes)
}

#[test]
fn content_is_served_with_ranges_as_iis_serves_it() {
    let c = catalog(300);
    let server = Served::start(&c.data, &[]);
    let (path, bytes) = some_payload(&c.data, 3000);
    let size = bytes.len();
    let mut http = server.http();
    // Several requests on one kept-alive connection.
    let whole = http.request("GET", &path, &[], b"");
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, bytes);
    assert_eq!(whole.header("content-type"), Some("application/octet-stream"));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    let etag = whole.header("etag").expect("an ETag").to_string();
    assert!(whole.header("last-modified").is_some());
    let r = http.request("GET", &path, &[("Range", "bytes=0-99")], b"");
    assert_eq!((r.status, r.body.as_slice()), (206, &bytes[..100]));
    assert_eq!(r.header("content-range"), Some(format!("bytes 0-99/{size}").as_str()));
    let r = http.request("GET", &path, &[("Range", "bytes=-10")], b"");
    assert_eq!((r.status, r.body.as_slice()), (206, &bytes[size - 10..]));
    let r = http.request("GET", &path, &[("Range", "bytes=100-")], b"");
    assert_eq!((r.status, r.body.as_slice()), (206, &bytes[100..]));
    let r = http.request("GET", &path, &[("Range", &format!("bytes={size}-"))], b"");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some(format!("bytes */{size}").as_str()));
    // Two ranges: multipart/byteranges with both parts.
    let r = http.request("GET", &path, &[("Range", "bytes=0-9,20-29")], b"");
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap().to_string();
    let boundary = ct.strip_prefix("multipart/byteranges; boundary=").expect("multipart");
    let body = r.text();
    assert!(body.contains(&format!("--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-9/{size}\r\n\r\n")));
    assert!(body.contains(&format!("Content-Range: bytes 20-29/{size}")));
    assert!(body.ends_with(&format!("--{boundary}--\r\n")));
    // If-Range with another entity: the whole file.
    let r = http.request("GET", &path, &[("Range", "bytes=0-9"), ("If-Range", "\"other:0\"")], b"");
    assert_eq!((r.status, r.body.len()), (200, size));
    let r = http.request("GET", &path, &[("Range", "bytes=0-9"), ("If-Range", &etag)], b"");
    assert_eq!(r.status, 206);
    // HEAD: the length, no body; with a Range, 416 as IIS answers.
    let r = http.request("HEAD", &path, &[], b"");
    assert_eq!((r.status, r.header("content-length")), (200, Some(size.to_string().as_str())));
    let r = http.request("HEAD", &path, &[("Range", "bytes=0-9")], b"");
    assert_eq!(r.status, 416);
    // Any case; a missing extension is 403, a wrong folder or digest 404.
    assert_eq!(http.request("GET", &path.to_ascii_lowercase(), &[], b"").status, 200);
    let (stem, _) = path.rsplit_once('.').unwrap();
    assert_eq!(http.request("GET", stem, &[], b"").status, 403);
    let wrong_folder = format!("/Content/ZZ/{}", path.rsplit('/').next().unwrap());
    assert_eq!(http.request("GET", &wrong_folder, &[], b"").status, 404);
    assert_eq!(
        http.request("GET", "/Content/00/0000000000000000000000000000000000000000.cab", &[], b"")
            .status,
        404
    );
    assert_eq!(http.request("POST", &path, &[], b"x").status, 405);
}

#[test]
fn selfupdate_files_health_and_metrics_are_served() {
    let c = catalog(100);
    std::fs::create_dir_all(c.data.join("selfupdate/x64")).unwrap();
    std::fs::write(c.data.join("selfupdate/wuident.cab"), b"MSCF signed by Microsoft").unwrap();
    std::fs::write(c.data.join("selfupdate/x64/wusetup.exe"), b"MZ").unwrap();
    let server = Served::start(&c.data, &[]);
    let mut http = server.http();
    let r = http.request("GET", "/selfupdate/wuident.cab", &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"MSCF signed by Microsoft"[..]));
    assert_eq!(
        http.request("GET", "/SelfUpdate/X64/WUSETUP.EXE", &[], b"").status,
        200,
        "any case, as IIS"
    );
    assert_eq!(http.request("GET", "/selfupdate/missing.cab", &[], b"").status, 404);
    assert_eq!(
        http.request("GET", "/selfupdate/../ferry.db", &[], b"").status,
        404,
        "no way out of the folder"
    );
    assert_eq!(http.request("GET", "/selfupdate/%2e%2e/ferry.db", &[], b"").status, 404);
    let r = http.request("GET", "/healthz", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let mut agent = Agent::new(&server);
    agent.handshake();
    let text = server.metrics();
    assert!(text.contains("ferry_requests_total{operation=\"GetConfig\"} 1"), "{text}");
    assert!(text.contains("ferry_computers 1"), "{text}");
}

#[test]
fn https_serves_the_same_endpoints_beside_http() {
    if served::require(&["openssl", "curl"]).is_none() {
        return;
    }
    let c = catalog(100);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let server = Served::start(
        &c.data,
        &[
            "--https-listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let https = server.https_addr.clone().expect("an HTTPS address");
    let out = std::process::Command::new("curl")
        .args(["-sS", "-k", "-H", "Content-Type: text/xml; charset=utf-8", "-H"])
        .arg(format!("SOAPAction: \"{CLIENT_NS}/GetConfig\""))
        .arg("--data-binary")
        .arg(wire::get_config("2.90"))
        .arg(format!("https://{https}{CLIENT}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("<ProtocolVersion>") || text.contains("<Name>ProtocolVersion</Name>"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.http().request("GET", "/healthz", &[], b"").status, 200);
    // A key that is not PEM: a clear error naming the file.
    std::fs::write(&key, "not a key").unwrap();
    let out = ferry(&c.data)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--https-listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("key.pem"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A catalog with every approvable update approved for all computers.
fn approved_catalog(updates: u64) -> Catalog {
    let c = catalog(updates);
    let ids =
        stdout_of(ferry(&c.data).args(["updates", "list", "--approval", "unapproved", "--ids"]));
    stdout_of(ferry(&c.data).args(["updates", "approve", "-"]).write_stdin(ids));
    c
}

/// `--event-loops`: the same scans, served by loops that take connections from one queue.
#[test]
fn event_loops_serve_full_scans() {
    let c = approved_catalog(300);
    let server = Served::start(&c.data, &["--event-loops", "2"]);
    let url = server.url();
    let args = ["dev", "loadgen", "--url", &url, "--clients", "6", "--duration", "2"];
    let report = json_of(ferry(&c.data).args(args));
    assert!(report["scans"].as_u64().unwrap() > 6, "{report}");
    assert_eq!(report["errors"].as_u64(), Some(0), "{report}");
    assert_eq!(report["failed_scans"].as_u64(), Some(0), "{report}");
    // Two loops, each a thread of its own.
    let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).unwrap();
    let loops = tasks
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .filter(|name| name.starts_with("ferry-loop-"))
        .count();
    assert_eq!(loops, 2);
}

#[test]
fn loadgen_runs_full_scans_against_the_server() {
    let c = approved_catalog(400);
    let server = Served::start(&c.data, &[]);
    let report = json_of(ferry(&c.data).args([
        "dev",
        "loadgen",
        "--url",
        &server.url(),
        "--clients",
        "4",
        "--duration",
        "2",
    ]));
    assert!(report["scans"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["errors"].as_u64(), Some(0), "{report}");
    assert_eq!(report["failed_scans"].as_u64(), Some(0), "{report}");
    let ops: Vec<&str> = report["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["operation"].as_str().unwrap())
        .collect();
    for op in [
        "GetConfig",
        "GetAuthorizationCookie",
        "GetCookie",
        "RegisterComputer",
        "SyncUpdates",
        "GetExtendedUpdateInfo",
        "ReportEventBatch",
        "Content",
    ] {
        assert!(ops.contains(&op), "{op} missing from {ops:?}");
    }
    // The simulated agents' status reports make them compliance data like real ones.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let compliance = json_of(ferry(&c.data).args(["report"]));
        let computers = compliance["computers"].as_array().unwrap();
        if !computers.is_empty() && computers.iter().all(|c| c["counts"]["unknown"] == 0) {
            assert!(
                computers.iter().any(|c| c["counts"]["needed"].as_u64() > Some(0)),
                "{compliance}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no status reports arrived: {compliance}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
