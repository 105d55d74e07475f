//! A running `ferry serve` over a store, and a plain blocking HTTP/1.1 client to talk to it
//! (written here, independent of the server's own code).

use ferry::wsus::agent::{self as wire, SyncRequest, UpdateInfo};
use ferry::wsus::client::WireCookie;
use ferry::wsus::tree::Element;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Served {
    child: Child,
    pub addr: String,
    pub https_addr: Option<String>,
    log: Arc<Mutex<String>>,
}

impl Served {
    pub fn start(data: &Path, extra: &[&str]) -> Served {
        Served::spawn(crate::util::ferry_process(data), extra)
    }

    /// A server on `data` with exactly the store options in `extra` (`--database`), not the
    /// test backend's: see [`crate::util::ferry_without_backend`].
    pub fn start_without_backend(data: &Path, extra: &[&str]) -> Served {
        Served::spawn(crate::util::ferry_process_without_backend(data), extra)
    }

    fn spawn(mut ferry: Command, extra: &[&str]) -> Served {
        let mut child = ferry
            .env("FERRY_LOG", "warn")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ferry serve starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        // Drains stderr for the whole run (a full pipe would block the server).
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut addr = None;
        let mut https_addr = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else { break };
            if let Some(rest) = line.strip_prefix("ferry serve: http://") {
                addr = rest.split('/').next().map(str::to_string);
            } else if let Some(rest) = line.strip_prefix("ferry serve: https://") {
                https_addr = rest.split('/').next().map(str::to_string);
            } else if line.contains("revisions,") {
                break;
            }
        }
        let addr =
            addr.unwrap_or_else(|| panic!("ferry serve did not start:\n{}", log.lock().unwrap()));
        Served { child, addr, https_addr, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The server's process id (for /proc/<pid>/...).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Stops the server now, as a crash or a pulled cable would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn http(&self) -> Http {
        Http::new(&self.addr)
    }

    /// `/metrics` with the `front_end` label (on every series) left out, so that a series
    /// reads `name{operation="X"} 1` and `name 1` whatever the front end is called.
    pub fn metrics(&self) -> String {
        let r = self.http().request("GET", "/metrics", &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        without_front_end(&r.text())
    }

    /// One SOAP call on a fresh connection.
    pub fn soap(&self, path: &str, action: &str, body: &str) -> Reply {
        self.http().soap(path, action, body)
    }
}

/// Metrics text without its `front_end` labels.
pub fn without_front_end(text: &str) -> String {
    text.lines()
        .map(|line| {
            let Some(start) = line.find("{front_end=\"") else { return line.to_string() };
            let value = start + "{front_end=\"".len();
            let end = value + line[value..].find('"').expect("a closed label");
            match &line[end + 1..] {
                rest if rest.starts_with(',') => format!("{}{{{}", &line[..start], &rest[1..]),
                rest => format!("{}{}", &line[..start], rest.trim_start_matches('}')),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// The `ErrorCode` of a SOAP fault.
    pub fn fault_code(&self) -> Option<String> {
        let t = self.text();
        let start = t.find("<ErrorCode>")? + "<ErrorCode>".len();
        let end = t[start..].find("</ErrorCode>")? + start;
        Some(t[start..end].to_string())
    }
}

/// One keep-alive connection.
pub struct Http {
    stream: BufReader<TcpStream>,
}

impl Http {
    pub fn new(addr: &str) -> Http {
        let stream = TcpStream::connect(addr).expect("connects");
        stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        Http { stream: BufReader::new(stream) }
    }

    /// Writes bytes; a server that answered early and closed (413) is not an error here.
    pub fn raw(&mut self, bytes: &[u8]) {
        match self.stream.get_mut().write_all(bytes) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ) => {}
            other => other.unwrap(),
        }
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test.example\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut all = head.into_bytes();
        all.extend_from_slice(body);
        self.raw(&all);
        self.read_reply(method == "HEAD")
    }

    pub fn read_reply(&mut self, head_only: bool) -> Reply {
        let mut line = String::new();
        self.stream.read_line(&mut line).unwrap();
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("no status line: {line:?}"))
            .parse()
            .unwrap();
        let mut headers = HashMap::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        assert!(
            !headers.contains_key("transfer-encoding"),
            "answers are never chunked: {headers:?}"
        );
        let length: usize = headers
            .get("content-length")
            .expect("every answer has a Content-Length")
            .parse()
            .unwrap();
        let mut body = vec![0; if head_only { 0 } else { length }];
        self.stream.read_exact(&mut body).unwrap();
        Reply { status, headers, body }
    }

    pub fn soap(&mut self, path: &str, action: &str, body: &str) -> Reply {
        let quoted = format!("\"{action}\"");
        self.request(
            "POST",
            path,
            &[("Content-Type", "text/xml; charset=utf-8"), ("SOAPAction", &quoted)],
            body.as_bytes(),
        )
    }
}

pub const CLIENT: &str = "/ClientWebService/client.asmx";
pub const CLIENT_NS: &str = "http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService";
pub const SIMPLE_AUTH: &str = "/SimpleAuthWebService/SimpleAuth.asmx";
pub const SIMPLE_AUTH_NS: &str =
    "http://www.microsoft.com/SoftwareDistribution/Server/SimpleAuthWebService";
pub const REPORTING: &str = "/ReportingWebService/ReportingWebService.asmx";
pub const REPORTING_NS: &str = "http://www.microsoft.com/SoftwareDistribution";

/// The external tools a test needs, or `None` (the test is skipped) when they are missing and
/// `FERRY_REQUIRE_TOOLS` is not set (CI sets it: there, a missing tool fails the test).
pub fn require(tools: &[&str]) -> Option<()> {
    let missing: Vec<&&str> = tools
        .iter()
        .filter(|t| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {t}"))
                .output()
                .map(|o| !o.status.success())
                .unwrap_or(true)
        })
        .collect();
    if missing.is_empty() {
        return Some(());
    }
    if std::env::var_os("FERRY_REQUIRE_TOOLS").is_some() {
        panic!("missing tools: {missing:?}");
    }
    eprintln!("skipped: missing tools {missing:?}");
    None
}

/// A client that evaluates every category and detectoid as installed (so every update whose
/// prerequisites exist applies to it), playing the native client's calls.
pub struct Agent {
    pub http: Http,
    pub id: String,
    pub cookie: WireCookie,
    pub installed: Vec<i32>,
    pub cached: Vec<i32>,
    /// Everything received, by revision id.
    pub seen: BTreeMap<i32, UpdateInfo>,
}

pub fn result<'a>(root: &'a Element, op: &str) -> &'a Element {
    wire::result_of(root, op).unwrap_or_else(|e| panic!("{op}: {e}"))
}

impl Agent {
    pub fn new(server: &Served) -> Agent {
        Agent {
            http: server.http(),
            id: ferry::random::guid().to_string(),
            cookie: WireCookie { expiration: String::new(), data: None },
            installed: Vec::new(),
            cached: Vec::new(),
            seen: BTreeMap::new(),
        }
    }

    pub fn call(&mut self, path: &str, ns: &str, op: &str, body: String) -> Element {
        let r = self.http.soap(path, &format!("{ns}/{op}"), &body);
        assert_eq!(r.status, 200, "{op}: {}", r.text());
        wire::parse(&r.body).unwrap()
    }

    pub fn handshake(&mut self) {
        self.handshake_as("test-pc.example", &[]);
    }

    /// The handshake of a computer with this name that names these groups (client-side
    /// targeting).
    pub fn handshake_as(&mut self, dns_name: &str, groups: &[&str]) {
        let root = self.call(CLIENT, CLIENT_NS, "GetConfig", wire::get_config("2.90"));
        let last_change = result(&root, "GetConfig").child_text("LastChange").unwrap().to_string();
        let root = self.call(
            SIMPLE_AUTH,
            SIMPLE_AUTH_NS,
            "GetAuthorizationCookie",
            wire::get_authorization_cookie(&self.id, dns_name, groups),
        );
        let auth = ferry::wsus::client::base64(
            result(&root, "GetAuthorizationCookie").child_text("CookieData").unwrap(),
            "x",
        )
        .unwrap();
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let root = self.call(
            CLIENT,
            CLIENT_NS,
            "GetCookie",
            wire::get_cookie(&auth, &now, &last_change, &now, "2.90"),
        );
        self.cookie = wire::read_cookie(result(&root, "GetCookie")).unwrap();
        let info = wire::ComputerInfo {
            dns_name,
            os_build: 26100,
            manufacturer: "Contoso",
            model: "Desk",
            os_description: "Windows 11",
        };
        let body = wire::register_computer(&self.cookie, &info);
        self.call(CLIENT, CLIENT_NS, "RegisterComputer", body);
    }

    pub fn sync(&mut self, request: &SyncRequest<'_>) -> wire::SyncAnswer {
        let body = wire::sync_updates(&self.cookie, request);
        let r = self.http.soap(CLIENT, &format!("{CLIENT_NS}/SyncUpdates"), &body);
        assert_eq!(r.status, 200, "SyncUpdates: {}", r.text());
        let answer = wire::read_sync(&r.body).unwrap();
        if let Some(c) = &answer.new_cookie {
            self.cookie = c.clone();
        }
        answer
    }

    /// The software pass until done; returns the answers.
    pub fn scan(&mut self) -> Vec<wire::SyncAnswer> {
        let mut answers = Vec::new();
        for _ in 0..200 {
            let (installed, cached) = (self.installed.clone(), self.cached.clone());
            let answer = self.sync(&SyncRequest {
                installed_non_leaf: &installed,
                other_cached: &cached,
                ..Default::default()
            });
            assert!(answer.new_updates.len() <= 30, "pages hold at most 30 updates");
            self.installed.retain(|i| !answer.out_of_scope.contains(i));
            self.cached.retain(|i| !answer.out_of_scope.contains(i));
            let mut non_leaf = false;
            assert!(
                self.installed.len() <= 400,
                "the test catalog is small enough for WSUS's limit of 400 installed non-leaf ids"
            );
            for u in &answer.new_updates {
                assert!(u.xml.is_some(), "NewUpdates carry their Core fragment");
                if u.is_leaf {
                    self.cached.push(u.revision_id);
                } else {
                    non_leaf = true;
                    self.installed.push(u.revision_id);
                }
                self.seen.insert(u.revision_id, u.clone());
            }
            for u in &answer.changed_updates {
                let mut merged = self.seen[&u.revision_id].clone();
                merged.action = u.action.clone();
                merged.deployment_id = u.deployment_id;
                self.seen.insert(u.revision_id, merged);
            }
            let done = !answer.truncated && !non_leaf;
            answers.push(answer);
            if done {
                return answers;
            }
        }
        panic!("the scan did not end within 200 calls");
    }

    pub fn by_update(&self) -> HashMap<String, &UpdateInfo> {
        self.seen.values().map(|u| (u.update_id.unwrap().to_string(), u)).collect()
    }

    /// The file locations of revisions (GetExtendedUpdateInfo in batches of 50).
    pub fn file_locations(&mut self, revision_ids: &[i32]) -> Vec<(Vec<u8>, String)> {
        let mut out = Vec::new();
        for batch in revision_ids.chunks(50) {
            let body = wire::get_extended_update_info(&self.cookie, batch, &["en"]);
            let root = self.call(CLIENT, CLIENT_NS, "GetExtendedUpdateInfo", body);
            out.extend(wire::read_file_locations(result(&root, "GetExtendedUpdateInfo")));
        }
        out
    }
}

/// Every payload of a store as (`/Content/XX/NAME` path, size), largest first.
pub fn payloads(data: &Path) -> Vec<(String, u64)> {
    let content = data.join("content");
    let mut out = Vec::new();
    for folder in std::fs::read_dir(&content).unwrap() {
        let folder = folder.unwrap().path();
        if !folder.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&folder).unwrap() {
            let f = f.unwrap().path();
            let rel = f.strip_prefix(&content).unwrap().to_string_lossy().to_string();
            out.push((format!("/Content/{rel}"), std::fs::metadata(&f).unwrap().len()));
        }
    }
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}
