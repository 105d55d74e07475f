//! The load-balancer example (`manifests/haproxy.cfg`) run for real with HAProxy in front of two
//! `ferry serve --proxy-protocol` front ends: it spreads clients over both, its `/healthz` checks
//! take a stopped front end out, and a front end refuses connections that skip the balancer.
//! The front ends keep stores of their own here; what they share on PostgreSQL is tested in the
//! PostgreSQL tests.

use crate::served::{CLIENT, CLIENT_NS, Http, Served, require, without_front_end};
use crate::util::wait_until;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// HAProxy on the example configuration: its listening port and its two servers replaced, its
/// check interval and connection limit lowered, a stats socket added; the HTTPS half (which needs certificates) cut.
struct Balancer {
    child: Child,
    addr: String,
    socket: std::path::PathBuf,
}

impl Balancer {
    fn start(dir: &Path, front_ends: [&str; 2]) -> Balancer {
        let example = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/haproxy.cfg"),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let socket = dir.join("haproxy.sock");
        let https = example.find("frontend wsus_https").expect("the example has an HTTPS frontend");
        let http_backend = example.find("\nbackend ferry_http\n").unwrap();
        let https_backend = example.find("\nbackend ferry_https\n").unwrap();
        let config = [&example[..https], &example[http_backend..https_backend]].concat();
        let config = replace_once(&config, "bind :8530", &format!("bind 127.0.0.1:{port}"));
        let config = replace_once(&config, "10.0.0.11:8530", front_ends[0]);
        let config = replace_once(&config, "10.0.0.12:8530", front_ends[1]);
        let config = replace_once(&config, "inter 2s fall 3 rise 2", "inter 100ms fall 2 rise 1");
        let config = replace_once(
            &config,
            "maxconn 20000",
            // The example's 20,000 connections need more descriptors than a test may raise.
            &format!("maxconn 1000\n    stats socket {} mode 600 level admin", socket.display()),
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy starts");
        Balancer { child, addr: format!("127.0.0.1:{port}"), socket }
    }

    /// Each server of the HTTP backend with its check status (`UP`, `DOWN`, ...).
    fn servers(&self) -> Vec<(String, String)> {
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(&self.socket) else {
            return Vec::new();
        };
        s.write_all(b"show stat\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > 17 && f[0] == "ferry_http" && f[1].starts_with("ferry"))
            .map(|f| (f[1].to_string(), f[17].to_string()))
            .collect()
    }

    fn all(&self, status: &str) -> bool {
        let servers = self.servers();
        servers.len() == 2 && servers.iter().all(|(_, s)| s == status)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "the example holds {from:?} once");
    text.replacen(from, to, 1)
}

fn get_config(addr: &str) -> u16 {
    let body = ferry::wsus::agent::get_config("2.90");
    Http::new(addr).soap(CLIENT, &format!("{CLIENT_NS}/GetConfig"), &body).status
}

/// How many GetConfig requests a front end answered, asked directly with a PROXY header.
fn get_configs_served(front_end: &str) -> u64 {
    let mut http = Http::new(front_end);
    http.raw(b"PROXY TCP4 192.0.2.9 127.0.0.1 40000 8530\r\n");
    let text = without_front_end(&http.request("GET", "/metrics", &[], b"").text());
    text.lines()
        .find_map(|l| l.strip_prefix("ferry_requests_total{operation=\"GetConfig\"} "))
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn the_balancer_example_spreads_clients_and_takes_a_stopped_front_end_out() {
    let Some(()) = require(&["haproxy"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let a = Served::start(&a_dir, &["--proxy-protocol"]);
    let mut b = Served::start(&b_dir, &["--proxy-protocol"]);

    // Past the balancer, a connection without the header gets no answer.
    let mut direct = TcpStream::connect(&a.addr).unwrap();
    direct.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    direct.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = direct.read_to_end(&mut answer);
    assert!(answer.is_empty(), "answered without a PROXY header: {answer:?}");

    let balancer = Balancer::start(dir.path(), [&a.addr, &b.addr]);
    wait_until("HAProxy's checks find both front ends up", || balancer.all("UP"));
    for _ in 0..20 {
        assert_eq!(get_config(&balancer.addr), 200);
    }
    let (on_a, on_b) = (get_configs_served(&a.addr), get_configs_served(&b.addr));
    assert_eq!(on_a + on_b, 20, "each request answered once");
    assert!(on_a > 0 && on_b > 0, "both front ends served: {on_a} and {on_b}");

    b.kill();
    wait_until("HAProxy takes the stopped front end out", || {
        balancer.servers().iter().any(|(name, status)| name == "ferry2" && status == "DOWN")
    });
    for _ in 0..10 {
        assert_eq!(get_config(&balancer.addr), 200, "the remaining front end answers");
    }
    assert_eq!(get_configs_served(&a.addr), on_a + 10);
    assert!(!a.log().contains("panicked"), "{}", a.log());
}
