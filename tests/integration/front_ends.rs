//! Several `ferry serve` front ends on one PostgreSQL database and one content directory behave
//! as one WSUS: a change made through one reaches the others within a second (LISTEN/NOTIFY),
//! a client registered on one scans on another with its cookie, load spread over them loses no
//! reported event, an import is served by all, a front end older than the schema refuses to
//! start, and a database lost while they serve is answered with faults and 503s and recovered
//! from without a restart. Skipped without `FERRY_TEST_POSTGRES_URL`, as `postgres.rs` is.

use crate::bundles::Fixture;
use crate::postgres::TestDatabase;
use crate::served::{Agent, CLIENT, CLIENT_NS, REPORTING, REPORTING_NS, Served};
use crate::util::{json_of, stdout_of};
use ferry::wsus::agent::{self as wire, SyncRequest};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A store on a test database: its URL (as given to `--database`) and the content directory
/// every front end shares.
struct Site {
    _db: Option<TestDatabase>,
    _dir: tempfile::TempDir,
    data: PathBuf,
    url: String,
}

impl Site {
    /// An empty store on a fresh database of the test cluster.
    fn empty() -> Option<Site> {
        let db = TestDatabase::new()?;
        let admin = std::env::var("FERRY_TEST_POSTGRES_URL").expect("TestDatabase read it");
        let url = format!("{}/{}", admin.rsplit_once('/').unwrap().0, db.name);
        Some(Site::at(url, Some(db)))
    }

    fn at(url: String, db: Option<TestDatabase>) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        Site { _db: db, _dir: dir, data, url }
    }

    /// A store holding a generated catalog of `updates` revisions.
    fn with_catalog(updates: u64) -> Option<Site> {
        let site = Site::empty()?;
        site.synth(updates);
        Some(site)
    }

    fn synth(&self, updates: u64) {
        let updates = updates.to_string();
        stdout_of(self.ferry().args([
            "dev",
            "synth",
            "--updates",
            &updates,
            "--payload-bytes",
            "3000",
        ]));
    }

    /// `ferry --data DATA --database URL`.
    fn ferry(&self) -> assert_cmd::Command {
        let mut c = crate::util::ferry_without_backend(&self.data);
        c.env_remove("FERRY_DATABASE_URL").arg("--database").arg(&self.url);
        c
    }

    /// A front end on the store, named `name` in its metrics.
    fn serve(&self, name: &str) -> Served {
        Served::start_without_backend(&self.data, &["--database", &self.url, "--name", name])
    }

    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }

    fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).unwrap().get(0)
    }
}

/// A call to the admin API with the bearer token: status and JSON.
fn admin(server: &Served, token: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let auth = format!("Bearer {token}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let r = server.http().request(method, path, &headers, body.as_bytes());
    (r.status, r.text())
}

/// A gauge or counter of a front end's `/metrics` (without labels besides `front_end`).
fn metric(server: &Served, name: &str) -> u64 {
    let text = server.metrics();
    let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
    let line = line.unwrap_or_else(|| panic!("{name} in /metrics:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Polls `f` every 20 ms until it holds or `within` passes; returns how long it took.
fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// A leaf software update the agent was offered for checking only (nobody approved it).
fn unapproved_leaf(agent: &Agent) -> (String, i32) {
    agent
        .seen
        .values()
        .find(|u| {
            u.is_leaf
                && u.action == "PreDeploymentCheck"
                && u.update_type.as_deref() == Some("Software")
        })
        .map(|u| (u.update_id.unwrap().to_string(), u.revision_id))
        .expect("an unapproved software update was offered")
}

/// Invariant: an approval made through one front end reaches the clients of every other within
/// a second (the approving transaction notifies; the others' listeners wake their refresh).
/// A client registered on one front end scans on another with the cookie the first gave it.
#[test]
fn an_approval_on_one_front_end_reaches_the_others_clients_within_a_second() {
    let Some(site) = Site::with_catalog(300) else { return };
    let token = stdout_of(site.ferry().args(["admin", "token"])).trim().to_string();
    let (a, b) = (site.serve("front-a"), site.serve("front-b"));
    let mut agent = Agent::new(&a);
    agent.handshake();
    agent.http = b.http();
    agent.scan();
    let (update_id, revision_id) = unapproved_leaf(&agent);
    let notified = metric(&b, "ferry_change_notifications_total");

    let (status, body) = admin(
        &a,
        &token,
        "POST",
        "/api/v1/updates/approve",
        &format!(r#"{{"ids":["{update_id}"]}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let (installed, cached) = (agent.installed.clone(), agent.cached.clone());
    let request =
        SyncRequest { installed_non_leaf: &installed, other_cached: &cached, ..Default::default() };
    let took = wait_for(
        "front end B offers the approved update for install",
        Duration::from_secs(1),
        || {
            let answer = agent.sync(&request);
            let offered = answer.changed_updates.iter().chain(&answer.new_updates);
            offered.filter(|u| u.revision_id == revision_id).any(|u| u.action == "Install")
        },
    );
    eprintln!("approved on A, offered for install on B after {} ms", took.as_millis());
    assert!(metric(&b, "ferry_change_notifications_total") > notified, "B heard of it");

    // Each front end labels its series, and tells of its pool and its listener.
    let raw = b.http().request("GET", "/metrics", &[], b"").text();
    let series: Vec<&str> = raw.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        !series.is_empty() && series.iter().all(|l| l.contains("{front_end=\"front-b\"")),
        "{raw}"
    );
    assert_eq!(metric(&b, "ferry_change_listener_up"), 1);
    assert_eq!(metric(&b, "ferry_database_connections_max"), 16);
    assert!(b.metrics().contains("ferry_database_connections_in_use "), "{raw}");
}

/// Invariant: a computer that names its groups to one front end (client-side targeting) is
/// offered those groups' approvals by every other within a second: the batch that changed its
/// memberships names it to every listener, which reads it again.
#[test]
fn groups_a_client_names_on_one_front_end_hold_on_the_others_within_a_second() {
    let Some(site) = Site::with_catalog(300) else { return };
    stdout_of(site.ferry().args(["groups", "add", "Lab"]));
    let (a, b) = (site.serve("front-a"), site.serve("front-b"));
    let mut agent = Agent::new(&a);
    agent.handshake_as("pc01.lab.example", &[]);
    agent.http = b.http();
    agent.scan();
    let (update_id, revision_id) = unapproved_leaf(&agent);
    let notified = metric(&b, "ferry_change_notifications_total");
    stdout_of(site.ferry().args(["updates", "approve", &update_id, "--group", "Lab"]));
    let (installed, cached) = (agent.installed.clone(), agent.cached.clone());
    let request =
        SyncRequest { installed_non_leaf: &installed, other_cached: &cached, ..Default::default() };
    let offered = |agent: &mut Agent| {
        let answer = agent.sync(&request);
        let offered = answer.changed_updates.iter().chain(&answer.new_updates);
        offered.filter(|u| u.revision_id == revision_id).map(|u| u.action.clone()).next_back()
    };
    wait_for("B hears of the approval", Duration::from_secs(5), || {
        metric(&b, "ferry_change_notifications_total") > notified
    });
    assert_ne!(offered(&mut agent).as_deref(), Some("Install"), "pc01 is not in Lab yet");

    agent.http = a.http();
    agent.handshake_as("pc01.lab.example", &["Lab"]);
    agent.http = b.http();
    let took = wait_for("B offers Lab's approval to pc01", Duration::from_secs(1), || {
        offered(&mut agent).as_deref() == Some("Install")
    });
    eprintln!("pc01 named Lab on A, offered Lab's approval on B after {} ms", took.as_millis());
}

/// Invariant: client activity written by several front ends at once is all kept: every event
/// a front end accepted (answered) is in the database once, and every client registered once.
#[test]
fn load_spread_over_two_front_ends_loses_no_reported_event() {
    let Some(site) = Site::with_catalog(300) else { return };
    let (a, b) = (site.serve("front-a"), site.serve("front-b"));
    let clients = 6;
    let report = json_of(site.ferry().args([
        "dev",
        "loadgen",
        "--url",
        &a.url(),
        "--url",
        &b.url(),
        "--clients",
        &clients.to_string(),
        "--duration",
        "3",
        "--mode",
        "repeat",
        "--no-download",
    ]));
    assert_eq!(
        (report["errors"].as_u64(), report["failed_scans"].as_u64()),
        (Some(0), Some(0)),
        "{report}"
    );
    let sent = report["events_reported"].as_i64().unwrap();
    assert!(sent >= 2 * clients, "{report}");
    // Events are answered before they are written (the writers batch them): wait for them.
    let mut stored = 0;
    let took = wait_for("the front ends wrote every event", Duration::from_secs(120), || {
        stored = site.count("SELECT count(*) FROM events");
        stored >= sent
    });
    std::thread::sleep(Duration::from_millis(500));
    stored = site.count("SELECT count(*) FROM events");
    eprintln!(
        "loadgen over two front ends: {} scans, {sent} events reported, {stored} stored ({} ms after the load ended)",
        report["scans"],
        took.as_millis()
    );
    assert_eq!(stored, sent, "every event accepted is kept, once");
    assert_eq!(site.count("SELECT count(*) FROM computers"), clients, "each client once");
    assert_eq!(site.count("SELECT count(*) FROM computers WHERE registered_at IS NULL"), 0);
}

/// An import committed while two front ends serve is served by both: their catalogs follow it,
/// and its payloads, in the one content directory, come from either.
#[test]
fn an_import_while_two_front_ends_serve_is_served_by_both() {
    let Some(site) = Site::empty() else { return };
    let fixture = Fixture::new(300, "3000");
    let bundle = fixture.export(&[]);
    let (a, b) = (site.serve("front-a"), site.serve("front-b"));
    assert_eq!(metric(&a, "ferry_catalog_revisions"), 0);
    let out = site
        .ferry()
        .arg("import")
        .arg(&bundle)
        .arg("--trust")
        .arg(&fixture.public)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let imported = Instant::now();
    let offered = |s: &Served| metric(s, "ferry_catalog_revisions");
    wait_for("both front ends serve the import", Duration::from_secs(2), || {
        offered(&a) > 0 && offered(&a) == offered(&b)
    });
    eprintln!(
        "an import served by both front ends {} ms after it committed",
        imported.elapsed().as_millis()
    );
    let mut agent = Agent::new(&a);
    agent.handshake();
    agent.http = b.http();
    let answers = agent.scan();
    assert!(answers.iter().map(|s| s.new_updates.len()).sum::<usize>() > 10);
    let payloads = crate::served::payloads(&site.data);
    let (path, size) = payloads.first().expect("the import brought payloads");
    for server in [&a, &b] {
        let r = server.http().request("GET", path, &[], b"");
        assert_eq!((r.status, r.body.len() as u64), (200, *size), "{path}");
    }
}

/// A front end whose ferry knows an older schema than the database has refuses to start, and
/// says both versions (the database is left alone).
#[test]
fn a_front_end_older_than_the_schema_refuses_to_start() {
    let Some(site) = Site::empty() else { return };
    stdout_of(site.ferry().args(["status"]));
    let known = ferry::store::postgres::PostgresStore::known_schema_version() as i32;
    site.client().execute("UPDATE schema_version SET version = $1", &[&(known + 1)]).unwrap();
    let out = site
        .ferry()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("schema version {}", known + 1)), "{stderr}");
    assert!(stderr.contains(&format!("({known})")), "{stderr}");
    assert!(!stderr.contains("ferry serve: http://"), "it never listened: {stderr}");
}

/// A PostgreSQL cluster of the test's own (`.ci/postgres.sh`), to stop and start again on its
/// port while front ends serve; removed with the value.
struct OwnCluster {
    dir: String,
    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/` (trust: the password is never checked,
    /// only never shown).
    base: String,
}

impl OwnCluster {
    fn start() -> Option<OwnCluster> {
        std::env::var_os("FERRY_TEST_POSTGRES_URL")?;
        let out = Self::script(&["start"]);
        let (dir, url) = out.trim().split_once(' ').expect("DIR URL");
        let base = url.rsplit_once('/').unwrap().0.replace("postgres@", "postgres:s3cret-pw@");
        Some(OwnCluster { dir: dir.to_string(), base: format!("{base}/") })
    }

    fn script(args: &[&str]) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres.sh");
        let out = std::process::Command::new(script).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "postgres.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn pause(&self) {
        Self::script(&["pause", &self.dir]);
    }

    fn resume(&self) {
        Self::script(&["resume", &self.dir]);
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres.sh");
        let _ = std::process::Command::new(script).args(["stop", &self.dir]).output();
    }
}

/// One SOAP call during the outage: answered, and within `ANSWERED_WITHIN`. Returns the status
/// and the fault's code.
fn answered(server: &Served, path: &str, ns: &str, op: &str, body: &str) -> (u16, Option<String>) {
    const ANSWERED_WITHIN: Duration = Duration::from_secs(7);
    let started = Instant::now();
    let r = server.soap(path, &format!("{ns}/{op}"), body);
    assert!(started.elapsed() < ANSWERED_WITHIN, "{op} took {:?}", started.elapsed());
    (r.status, r.fault_code())
}

/// Reports one event of `agent`'s computer with a fresh instance id; returns it and whether the
/// server took the report (else it said ServerBusy: the client reports again later).
fn report(server: &Served, agent: &Agent) -> (String, bool) {
    let instance = ferry::random::guid();
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let event = wire::Event {
        instance_id: instance,
        event_id: 147,
        update_id: ferry::catalog::Guid::from_bytes([0; 16]),
        revision_number: 0,
        hresult: 0,
        time: &now,
        misc: Vec::new(),
    };
    let body = wire::report_event_batch(&agent.cookie, &agent.id, &now, &[event]);
    match answered(server, REPORTING, REPORTING_NS, "ReportEventBatch", &body) {
        (200, _) => (instance.to_string(), true),
        (500, Some(code)) if code == "ServerBusy" => (instance.to_string(), false),
        other => panic!("ReportEventBatch during the outage: {other:?}"),
    }
}

/// The database lost while two front ends serve: `/healthz` answers 503 naming the database
/// (never its password), clients get answers or faults and never wait long, the admin API 503;
/// started again on its port, the front ends recover without a restart, and the client writes
/// they took meanwhile are written.
#[test]
fn a_database_lost_while_serving_is_survived() {
    let Some(cluster) = OwnCluster::start() else { return };
    let superuser = cluster.base.replace(":s3cret-pw", "");
    let mut client = postgres::Client::connect(&superuser, postgres::NoTls).unwrap();
    client.batch_execute("CREATE DATABASE plant").unwrap();
    drop(client);
    let site = Site::at(format!("{}plant", cluster.base), None);
    site.synth(200);
    let token = stdout_of(site.ferry().args(["admin", "token"])).trim().to_string();
    let (mut a, mut b) = (site.serve("front-a"), site.serve("front-b"));
    let mut agent = Agent::new(&a);
    agent.handshake();
    agent.scan();
    // The sync time the scan left waiting is written within a second: then nothing writes.
    std::thread::sleep(Duration::from_millis(1500));

    cluster.pause();
    // The first write after the loss is queued (the writer has not failed yet): it must be
    // written once the database is back.
    let mut reports = vec![report(&a, &agent)];
    assert!(reports[0].1, "the first report is queued");
    wait_for("/healthz says the database is gone", Duration::from_secs(8), || {
        a.http().request("GET", "/healthz", &[], b"").status == 503
    });
    let health = a.http().request("GET", "/healthz", &[], b"").text();
    let port = site.url.rsplit_once(':').unwrap().1.split('/').next().unwrap();
    assert!(health.contains(&format!("127.0.0.1:{port}/plant")), "{health}");
    assert!(!health.contains("s3cret"), "{health}");
    reports.extend(outage_calls(&a, &b, &mut agent, &token));
    assert!(reports.iter().any(|r| !r.1), "later reports are refused meanwhile: {reports:?}");
    assert!(a.alive() && b.alive(), "{}\n{}", a.log(), b.log());

    cluster.resume();
    let took = wait_for("both front ends are healthy again", Duration::from_secs(20), || {
        [&a, &b].iter().all(|s| s.http().request("GET", "/healthz", &[], b"").status == 200)
    });
    eprintln!("healthy again {} ms after the database came back", took.as_millis());
    recovered(&site, &a, &b, &agent, reports);
    assert!(
        !a.log().contains("panicked") && !b.log().contains("panicked"),
        "{}\n{}",
        a.log(),
        b.log()
    );
}

/// After the outage: a new client registers and scans, both front ends take reports again, and
/// every report taken during the outage was written.
fn recovered(site: &Site, a: &Served, b: &Served, agent: &Agent, reports: Vec<(String, bool)>) {
    // B's writer takes contacts again once it wrote what waited.
    wait_for("B takes a client's contact again", Duration::from_secs(15), || {
        let body = wire::get_authorization_cookie(&ferry::random::guid().to_string(), "pc", &[]);
        let path = crate::served::SIMPLE_AUTH;
        let ns = crate::served::SIMPLE_AUTH_NS;
        answered(b, path, ns, "GetAuthorizationCookie", &body).0 == 200
    });
    let mut after = Agent::new(b);
    after.handshake();
    after.http = a.http();
    after.scan();
    let mut accepted: Vec<String> = reports.into_iter().filter(|r| r.1).map(|r| r.0).collect();
    for server in [a, b] {
        wait_for("reports are taken again", Duration::from_secs(15), || {
            let (id, taken) = report(server, agent);
            accepted.extend(taken.then_some(id));
            taken
        });
    }
    wait_for("the reports taken are written", Duration::from_secs(30), || {
        let stored: i64 = site
            .client()
            .query_one(
                "SELECT count(*) FROM events WHERE event_instance_id = ANY($1)",
                &[&accepted],
            )
            .unwrap()
            .get(0);
        stored == accepted.len() as i64
    });
}

/// What clients and the admin API get while the database is down; returns the events reported
/// and whether each was taken.
fn outage_calls(a: &Served, b: &Served, agent: &mut Agent, token: &str) -> Vec<(String, bool)> {
    let started = Instant::now();
    // A scan is answered from memory by the front end that knows the computer. The other
    // answers from memory too if it has read the computer since (a front end reads every
    // computer when its listener connects, and those a notification names), else it would
    // have to read the store: ServerBusy, never an internal error.
    let installed = agent.installed.clone();
    agent.sync(&SyncRequest { installed_non_leaf: &installed, ..Default::default() });
    let body = wire::sync_updates(
        &agent.cookie,
        &SyncRequest { installed_non_leaf: &installed, ..Default::default() },
    );
    let (status, fault) = answered(b, CLIENT, CLIENT_NS, "SyncUpdates", &body);
    assert!(status == 200 || fault.as_deref() == Some("ServerBusy"), "{status} {fault:?}");
    let mut reports = Vec::new();
    for server in [a, b, a, b] {
        reports.push(report(server, agent));
    }
    let stranger = ferry::random::guid().to_string();
    let (status, fault) = answered(
        a,
        crate::served::SIMPLE_AUTH,
        crate::served::SIMPLE_AUTH_NS,
        "GetAuthorizationCookie",
        &wire::get_authorization_cookie(&stranger, "new-pc.example", &[]),
    );
    assert!(status == 200 || fault.as_deref() == Some("ServerBusy"), "{status} {fault:?}");
    let (status, _) = answered(a, CLIENT, CLIENT_NS, "GetConfig", &wire::get_config("2.90"));
    assert_eq!(status, 200);
    let (status, body) = admin(a, token, "GET", "/api/v1/status", "");
    assert_eq!(status, 503, "{body}");
    assert!(!body.contains("s3cret"), "{body}");
    eprintln!(
        "during the outage ({} ms): {} of {} reports taken, the rest ServerBusy",
        started.elapsed().as_millis(),
        reports.iter().filter(|r| r.1).count(),
        reports.len()
    );
    reports
}
