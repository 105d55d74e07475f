//! The PROXY protocol (versions 1 and 2, as HAProxy's `send-proxy`/`send-proxy-v2` and nginx's
//! `proxy_protocol on` send it): behind a load balancer every connection comes from the
//! balancer, and the client's own address, which the memory budget shares are kept by, arrives
//! in a header before the first request. `ferry serve --proxy-protocol` expects it on every
//! connection and refuses a connection without one.
//!
//! The header is read with exact reads, never past its end: the bytes after it are the first
//! HTTP request (or TLS handshake) and belong to the connection.
//!
//! Invariant: a header is at most `MAX_V2_BODY` + 16 bytes (v2) or 107 bytes (v1); a
//! connection that sends more, or nothing within the client timeout, is closed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Version 2's first twelve bytes.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Version 1's longest line, CRLF included (the specification's limit).
const V1_MAX: usize = 107;
/// The v2 address block and TLVs ferry accepts: the addresses (216 bytes for UNIX sockets)
/// and a few TLVs; HAProxy sends none unless asked.
const MAX_V2_BODY: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProxyHeaderError {
    #[error(
        "the connection did not start with a PROXY protocol header (--proxy-protocol expects one from the load balancer on every connection)"
    )]
    Missing,
    #[error("the PROXY protocol header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the PROXY protocol header did not arrive within the client timeout")]
    TimedOut,
    #[error("reading the PROXY protocol header failed: {0}")]
    Io(String),
}

/// What a header says about the connection: the client's address, or none when the balancer
/// speaks for itself (v2 LOCAL, as in its health checks; v1 UNKNOWN) and the connection's own
/// address stands.
pub type Source = Option<SocketAddr>;

/// Reads the header from the start of `stream` within `timeout`.
pub async fn read_header<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
    timeout: Duration,
) -> Result<Source, ProxyHeaderError> {
    match tokio::time::timeout(timeout, read_header_now(stream)).await {
        Ok(result) => result,
        Err(_) => Err(ProxyHeaderError::TimedOut),
    }
}

async fn read_header_now<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
) -> Result<Source, ProxyHeaderError> {
    let io = |e: std::io::Error| ProxyHeaderError::Io(e.to_string());
    // 15 bytes is the shortest v1 header ("PROXY UNKNOWN\r\n") and fits in v2's 16.
    let mut start = [0u8; 15];
    stream.read_exact(&mut start).await.map_err(io)?;
    if start[..12] == V2_SIGNATURE {
        let mut head = [0u8; 16];
        head[..15].copy_from_slice(&start);
        head[15] = stream.read_u8().await.map_err(io)?;
        let length = usize::from(u16::from_be_bytes([head[14], head[15]]));
        if length > MAX_V2_BODY {
            return Err(ProxyHeaderError::Malformed("the v2 address block is too long"));
        }
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.map_err(io)?;
        return parse_v2(&head, &body);
    }
    if !start.starts_with(b"PROXY ") {
        return Err(ProxyHeaderError::Missing);
    }
    let mut line = start.to_vec();
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX {
            return Err(ProxyHeaderError::Malformed("the v1 line is longer than 107 bytes"));
        }
        line.push(stream.read_u8().await.map_err(io)?);
    }
    parse_v1(&line)
}

/// A v1 line: `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` or `PROXY UNKNOWN...\r\n`.
pub fn parse_v1(line: &[u8]) -> Result<Source, ProxyHeaderError> {
    let malformed = ProxyHeaderError::Malformed;
    let text = std::str::from_utf8(line).map_err(|_| malformed("the v1 line is not text"))?;
    let text = text.strip_suffix("\r\n").ok_or(malformed("the v1 line does not end in CRLF"))?;
    let fields: Vec<&str> = text.split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(None),
        ["PROXY", family @ ("TCP4" | "TCP6"), source, destination, port, destination_port] => {
            let ip: IpAddr = source.parse().map_err(|_| malformed("the source address"))?;
            let to: IpAddr =
                destination.parse().map_err(|_| malformed("the destination address"))?;
            if ip.is_ipv4() != (*family == "TCP4") || to.is_ipv4() != ip.is_ipv4() {
                return Err(malformed("an address is not of the family named"));
            }
            let port = parse_port(port).ok_or(malformed("the source port"))?;
            parse_port(destination_port).ok_or(malformed("the destination port"))?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(malformed("the v1 line is not PROXY TCP4|TCP6|UNKNOWN with four fields")),
    }
}

/// A port as v1 writes it: decimal, no sign, no leading zero.
fn parse_port(text: &str) -> Option<u16> {
    let canonical = !text.is_empty() && (text == "0" || !text.starts_with('0'));
    if canonical && text.bytes().all(|b| b.is_ascii_digit()) { text.parse().ok() } else { None }
}

/// A v2 header: the 16 fixed bytes and the address block with any TLVs after it.
pub fn parse_v2(head: &[u8; 16], body: &[u8]) -> Result<Source, ProxyHeaderError> {
    let malformed = ProxyHeaderError::Malformed;
    if head[..12] != V2_SIGNATURE {
        return Err(ProxyHeaderError::Missing);
    }
    if head[12] >> 4 != 2 {
        return Err(malformed("the v2 version is not 2"));
    }
    match head[12] & 0x0f {
        0 => return Ok(None), // LOCAL: the balancer itself, e.g. a health check
        1 => {}
        _ => return Err(malformed("the v2 command is neither LOCAL nor PROXY")),
    }
    match head[13] >> 4 {
        1 if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            Ok(Some(SocketAddr::new(ip.into(), u16::from_be_bytes([body[8], body[9]]))))
        }
        2 if body.len() >= 36 => {
            let octets: [u8; 16] = body[..16].try_into().expect("16 bytes");
            let port = u16::from_be_bytes([body[32], body[33]]);
            Ok(Some(SocketAddr::new(Ipv6Addr::from(octets).into(), port)))
        }
        1 | 2 => Err(malformed("the v2 address block is shorter than its family needs")),
        // UNSPEC or a UNIX socket: no network address, the connection's own stands.
        0 | 3 => Ok(None),
        _ => Err(malformed("the v2 address family is unknown")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, body: &[u8]) -> ([u8; 16], Vec<u8>) {
        let mut head = [0u8; 16];
        head[..12].copy_from_slice(&V2_SIGNATURE);
        head[12] = 0x20 | command;
        head[13] = family;
        head[14..].copy_from_slice(&(body.len() as u16).to_be_bytes());
        (head, body.to_vec())
    }

    #[test]
    fn version_1_lines() {
        let cases: &[(&str, Result<Source, ProxyHeaderError>)] = &[
            (
                "PROXY TCP4 192.0.2.7 198.51.100.1 50123 8530\r\n",
                Ok(Some("192.0.2.7:50123".parse().unwrap())),
            ),
            (
                "PROXY TCP6 2001:db8::7 2001:db8::1 4000 8530\r\n",
                Ok(Some("[2001:db8::7]:4000".parse().unwrap())),
            ),
            ("PROXY UNKNOWN\r\n", Ok(None)),
            ("PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n", Ok(None)),
            (
                "PROXY TCP4 2001:db8::7 192.0.2.1 1 2\r\n",
                Err(ProxyHeaderError::Malformed("an address is not of the family named")),
            ),
            (
                "PROXY TCP4 192.0.2.7 198.51.100.1 050123 8530\r\n",
                Err(ProxyHeaderError::Malformed("the source port")),
            ),
            (
                "PROXY TCP4 192.0.2.7 198.51.100.1 70000 8530\r\n",
                Err(ProxyHeaderError::Malformed("the source port")),
            ),
            (
                "PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n",
                Err(ProxyHeaderError::Malformed("the v1 line does not end in CRLF")),
            ),
            (
                "PROXY TCP4 192.0.2.7  1 2\r\n",
                Err(ProxyHeaderError::Malformed("the destination address")),
            ),
            (
                "PROXY TCP5 a b 1 2\r\n",
                Err(ProxyHeaderError::Malformed(
                    "the v1 line is not PROXY TCP4|TCP6|UNKNOWN with four fields",
                )),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(&parse_v1(line.as_bytes()), expected, "{line:?}");
        }
    }

    #[test]
    fn version_2_headers() {
        let ipv4 = [192, 0, 2, 7, 198, 51, 100, 1, 0xc3, 0xcb, 0x21, 0x52];
        let (head, body) = v2(1, 0x11, &ipv4);
        assert_eq!(parse_v2(&head, &body), Ok(Some("192.0.2.7:50123".parse().unwrap())));
        let (head, body) = v2(0, 0x00, &[]);
        assert_eq!(parse_v2(&head, &body), Ok(None), "LOCAL: a health check");
        let mut ipv6 = vec![0u8; 36];
        ipv6[..16].copy_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        ipv6[32..34].copy_from_slice(&4000u16.to_be_bytes());
        let (head, body) = v2(1, 0x21, &ipv6);
        assert_eq!(parse_v2(&head, &body), Ok(Some("[2001:db8::7]:4000".parse().unwrap())));
        let (head, body) = v2(1, 0x11, &ipv4[..8]);
        assert!(matches!(parse_v2(&head, &body), Err(ProxyHeaderError::Malformed(_))));
        let (head, body) = v2(2, 0x11, &ipv4);
        assert!(matches!(parse_v2(&head, &body), Err(ProxyHeaderError::Malformed(_))));
        let (mut head, body) = v2(1, 0x11, &ipv4);
        head[12] = 0x11;
        assert!(matches!(parse_v2(&head, &body), Err(ProxyHeaderError::Malformed(_))));
    }

    /// The header is read to its end and not one byte further: the request after it is intact.
    #[tokio::test]
    async fn reading_stops_at_the_end_of_the_header() {
        let request = b"POST /ClientWebService/client.asmx HTTP/1.1\r\n";
        let ipv4 = [192, 0, 2, 7, 198, 51, 100, 1, 0xc3, 0xcb, 0x21, 0x52];
        let (head, body) = v2(1, 0x11, &ipv4);
        let client: Source = Some("192.0.2.7:50123".parse().unwrap());
        let cases: [(Vec<u8>, Source); 3] = [
            ([head.as_slice(), &body].concat(), client),
            (b"PROXY TCP4 192.0.2.7 198.51.100.1 50123 8530\r\n".to_vec(), client),
            (b"PROXY UNKNOWN\r\n".to_vec(), None),
        ];
        for (header, expected) in cases {
            let bytes = [header.as_slice(), request].concat();
            let mut reader = bytes.as_slice();
            let source = read_header(&mut reader, Duration::from_secs(1)).await.unwrap();
            assert_eq!(source, expected);
            assert_eq!(reader, request, "the request after the header is untouched");
        }
        let mut plain = &request[..];
        assert_eq!(
            read_header(&mut plain, Duration::from_secs(1)).await,
            Err(ProxyHeaderError::Missing)
        );
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
        assert!(matches!(
            read_header(&mut &long[..], Duration::from_secs(1)).await,
            Err(ProxyHeaderError::Malformed(_))
        ));
        let mut huge = v2(1, 0x11, &[]).0;
        huge[14..].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(
            read_header(&mut &huge[..], Duration::from_secs(1)).await,
            Err(ProxyHeaderError::Malformed(_))
        ));
    }
}
