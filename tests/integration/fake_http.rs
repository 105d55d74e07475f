//! A scriptable HTTP/1.1 server for tests: each request goes to a handler that decides the
//! answer, including misbehaviour (a stall, a connection cut mid-body, a redirect loop).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// The SOAP operation (last segment of SOAPAction).
    pub fn operation(&self) -> String {
        self.header("soapaction")
            .unwrap_or_default()
            .trim_matches('"')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub enum Reply {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Headers announcing the whole body, then only the first `send` bytes, then the connection closes.
    Cut {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        send: usize,
    },
    /// Nothing for this long, then the connection closes.
    Stall(Duration),
    /// Announces a body of `declared` bytes, sends `body`, closes.
    Announce {
        status: u16,
        declared: u64,
        body: Vec<u8>,
    },
}

impl Reply {
    pub fn xml(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Content-Type".into(), "text/xml; charset=utf-8".into())],
            body: body.into(),
        }
    }
}

pub struct FakeServer {
    pub addr: String,
    stop: Arc<AtomicBool>,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

impl FakeServer {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let (stop2, requests2) = (stop.clone(), requests.clone());
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        let (handler, requests) = (handler.clone(), requests2.clone());
                        std::thread::spawn(move || serve(stream, &*handler, &requests));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeServer { addr, stop, requests }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests so far for an operation (SOAPAction) or path.
    pub fn count(&self, what: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.operation() == what || r.path == what)
            .count()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(stream: TcpStream, handler: &Handler, requests: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Request { method, path, headers, body };
        requests.lock().unwrap().push(request.clone());
        let head = |status: u16, headers: &[(String, String)], len: usize| {
            let mut h = format!("HTTP/1.1 {status} X\r\nContent-Length: {len}\r\n");
            for (k, v) in headers {
                h.push_str(&format!("{k}: {v}\r\n"));
            }
            h.push_str("\r\n");
            h
        };
        match handler(&request) {
            Reply::Full { status, headers, body } => {
                let mut out = head(status, &headers, body.len()).into_bytes();
                out.extend_from_slice(&body);
                if writer.write_all(&out).is_err() {
                    return;
                }
            }
            Reply::Cut { status, headers, body, send } => {
                let mut out = head(status, &headers, body.len()).into_bytes();
                out.extend_from_slice(&body[..send.min(body.len())]);
                let _ = writer.write_all(&out);
                return;
            }
            Reply::Stall(d) => {
                std::thread::sleep(d);
                return;
            }
            Reply::Announce { status, declared, body } => {
                let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {declared}\r\n\r\n")
                    .into_bytes();
                out.extend_from_slice(&body);
                let _ = writer.write_all(&out);
                return;
            }
        }
    }
}
