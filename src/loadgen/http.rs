//! A minimal HTTP/1.1 client for the load generator: one keep-alive connection, one request at
//! a time (as Windows Update Agent and Delivery Optimization use a connection), bodies with a
//! Content-Length only. Small on purpose: the load generator must cost less than what it measures.

use std::io;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The Content-Length the server sent (for bodies read and discarded, the bytes that came).
    pub length: u64,
    /// The body is xpress-compressed (`Content-Encoding: xpress`).
    pub xpress: bool,
}

pub struct HttpClient {
    /// `host:port` to connect to.
    authority: String,
    conn: Option<BufReader<TcpStream>>,
}

/// `http://host:port/prefix` → (`host:port`, `/prefix`).
pub fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(format!("{url}: no host"));
    }
    let authority =
        if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    Ok((authority, path.to_string()))
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

impl HttpClient {
    pub fn new(authority: &str) -> HttpClient {
        HttpClient { authority: authority.to_string(), conn: None }
    }

    /// The `host:port` it connects to.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Sends a request; `keep_body` false reads the body and throws it away (content downloads).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        keep_body: bool,
    ) -> io::Result<Response> {
        // A kept-alive connection the server closed fails on first use: retry once on a new one.
        let reused = self.conn.is_some();
        match self.try_request(method, path, headers, body, keep_body).await {
            Err(_) if reused => {
                self.conn = None;
                self.try_request(method, path, headers, body, keep_body).await
            }
            other => other,
        }
    }

    async fn try_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        keep_body: bool,
    ) -> io::Result<Response> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(&self.authority).await?;
            stream.set_nodelay(true)?;
            self.conn = Some(BufReader::with_capacity(64 << 10, stream));
        }
        let conn = self.conn.as_mut().expect("connected above");
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.authority);
        for (k, v) in headers {
            head.push_str(k);
            head.push_str(": ");
            head.push_str(v);
            head.push_str("\r\n");
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let result = async {
            let stream = conn.get_mut();
            if body.is_empty() {
                stream.write_all(head.as_bytes()).await?;
            } else {
                let mut all = Vec::with_capacity(head.len() + body.len());
                all.extend_from_slice(head.as_bytes());
                all.extend_from_slice(body);
                stream.write_all(&all).await?;
            }
            read_response(conn, method == "HEAD", keep_body).await
        }
        .await;
        match result {
            Ok((response, close)) => {
                if close {
                    self.conn = None;
                }
                Ok(response)
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }
}

async fn read_response(
    conn: &mut BufReader<TcpStream>,
    head_only: bool,
    keep_body: bool,
) -> io::Result<(Response, bool)> {
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
    let mut length: Option<u64> = None;
    let mut close = line.starts_with("HTTP/1.0");
    let mut xpress = false;
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Err(bad("the connection ended inside the headers"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((name, value)) = l.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse().map_err(|_| bad("bad Content-Length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && !value.eq_ignore_ascii_case("identity")
        {
            return Err(bad(format!(
                "Transfer-Encoding {value}: the answer must carry a Content-Length"
            )));
        } else if name.eq_ignore_ascii_case("content-encoding") {
            xpress = value.eq_ignore_ascii_case("xpress");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let length = if head_only || status == 204 || status == 304 {
        0
    } else {
        length.ok_or_else(|| bad("the answer has no Content-Length"))?
    };
    let mut body = Vec::new();
    if keep_body {
        body.resize(length as usize, 0);
        conn.read_exact(&mut body).await?;
    } else {
        let mut left = length;
        let mut sink = vec![0u8; 256 << 10];
        while left > 0 {
            let n = conn.read(&mut sink[..left.min(256 << 10) as usize]).await?;
            if n == 0 {
                return Err(bad("the connection ended inside the body"));
            }
            left -= n as u64;
        }
    }
    Ok((Response { status, body, length, xpress }, close))
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_split_into_authority_and_prefix() {
        assert_eq!(
            super::split_url("http://127.0.0.1:8530").unwrap(),
            ("127.0.0.1:8530".into(), "".into())
        );
        assert_eq!(
            super::split_url("http://wsus/static/").unwrap(),
            ("wsus:80".into(), "/static".into())
        );
        assert!(super::split_url("https://wsus").is_err());
    }
}
