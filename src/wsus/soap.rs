//! SOAP as WSUS speaks it: envelopes in (1.1 or 1.2, any prefix), envelopes and faults out in
//! the shapes real WSUS 2025 sends (WSUS-PROTOCOL.md §2.2, §2.5).

use super::tree::{self, Element};
use crate::catalog::xml::{push_escaped_attribute, push_escaped_text};
use std::sync::Arc;

pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SoapVersion {
    V11,
    V12,
}

impl SoapVersion {
    pub fn content_type(self) -> &'static str {
        match self {
            SoapVersion::V11 => "text/xml; charset=utf-8",
            SoapVersion::V12 => "application/soap+xml; charset=utf-8",
        }
    }
}

/// The error codes clients act on (WSUS-PROTOCOL.md §3.2, §4.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParameters,
    InvalidCookie,
    CookieExpired,
    ConfigChanged,
    ServerChanged,
    RegistrationRequired,
    InvalidAuthorizationCookie,
    IncompatibleProtocolVersion,
    FileDigestsMissing,
    InternalServerError,
    ServerBusy,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParameters => "InvalidParameters",
            ErrorCode::InvalidCookie => "InvalidCookie",
            ErrorCode::CookieExpired => "CookieExpired",
            ErrorCode::ConfigChanged => "ConfigChanged",
            ErrorCode::ServerChanged => "ServerChanged",
            ErrorCode::RegistrationRequired => "RegistrationRequired",
            ErrorCode::InvalidAuthorizationCookie => "InvalidAuthorizationCookie",
            ErrorCode::IncompatibleProtocolVersion => "IncompatibleProtocolVersion",
            ErrorCode::FileDigestsMissing => "FileDigestsMissing",
            ErrorCode::InternalServerError => "InternalServerError",
            ErrorCode::ServerBusy => "ServerBusy",
        }
    }
}

/// A SOAP fault in the WSUS shape: HTTP 500, unqualified ErrorCode / Message / ID / Method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({message})", code.as_str())]
pub struct Fault {
    pub code: ErrorCode,
    pub message: String,
}

impl Fault {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Fault {
        Fault { code, message: message.into() }
    }

    /// InvalidParameters naming the parameter, as WSUS does (`parameters.InstalledNonLeafUpdateIDs`).
    pub fn invalid(parameter: impl Into<String>) -> Fault {
        Fault::new(ErrorCode::InvalidParameters, parameter)
    }

    /// The fault document. `id` is a fresh GUID per fault; `action` the request's SOAPAction;
    /// `actor` the service URL, which ASMX services (SimpleAuth, Reporting, ServerSync, DssAuth)
    /// name in `faultactor`.
    pub fn render(
        &self,
        version: SoapVersion,
        style: EnvelopeStyle,
        id: &str,
        action: Option<&str>,
        actor: Option<&str>,
    ) -> String {
        let server = self.code == ErrorCode::InternalServerError;
        let mut detail = String::new();
        detail.push_str("<ErrorCode>");
        detail.push_str(self.code.as_str());
        detail.push_str("</ErrorCode><Message>");
        push_escaped_text(&mut detail, &self.message);
        detail.push_str("</Message><ID>");
        detail.push_str(id);
        detail.push_str("</ID>");
        if let Some(a) = action {
            detail.push_str("<Method>\"");
            push_escaped_text(&mut detail, a.trim_matches('"'));
            detail.push_str("\"</Method>");
        }
        match (version, style) {
            (SoapVersion::V11, EnvelopeStyle::Client) => format!(
                "<s:Envelope xmlns:s=\"{SOAP11}\"><s:Body><s:Fault><faultcode>s:{}</faultcode><faultstring>Fault occurred</faultstring><detail>{detail}</detail></s:Fault></s:Body></s:Envelope>",
                if server { "Server" } else { "Client" }
            ),
            (SoapVersion::V11, EnvelopeStyle::Asmx) => {
                let mut actor_xml = String::new();
                if let Some(a) = actor {
                    actor_xml.push_str("<faultactor>");
                    push_escaped_text(&mut actor_xml, a);
                    actor_xml.push_str("</faultactor>");
                }
                format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"{SOAP11}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"><soap:Body><soap:Fault><faultcode>soap:{}</faultcode><faultstring>Fault occurred</faultstring>{actor_xml}<detail>{detail}</detail></soap:Fault></soap:Body></soap:Envelope>",
                    if server { "Server" } else { "Client" }
                )
            }
            (SoapVersion::V12, _) => format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"{SOAP12}\"><soap:Body><soap:Fault><soap:Code><soap:Value>soap:{}</soap:Value></soap:Code><soap:Reason><soap:Text xml:lang=\"en\">Fault occurred</soap:Text></soap:Reason><soap:Detail>{detail}</soap:Detail></soap:Fault></soap:Body></soap:Envelope>",
                if server { "Receiver" } else { "Sender" }
            ),
        }
    }
}

/// A parsed request: its SOAP version and the operation element (the first child of Body).
#[derive(Debug, Clone)]
pub struct Request {
    pub version: SoapVersion,
    pub operation: Element,
}

impl Request {
    pub fn name(&self) -> &str {
        &self.operation.name
    }
}

/// Parses a SOAP envelope. Anything else (not XML, a DTD, no Body, an unknown envelope
/// namespace) is a client fault.
pub fn parse_request(body: &[u8]) -> Result<Request, Fault> {
    let root = tree::parse(body).map_err(|e| Fault::invalid(format!("request: {e}")))?;
    let version = match (&*root.name, &*root.ns) {
        ("Envelope", SOAP11) => SoapVersion::V11,
        ("Envelope", SOAP12) => SoapVersion::V12,
        (name, ns) => {
            return Err(Fault::invalid(format!(
                "request: expected a SOAP Envelope, found {{{ns}}}{name}"
            )));
        }
    };
    let body = root
        .children
        .into_iter()
        .find(|c| &*c.name == "Body")
        .ok_or_else(|| Fault::invalid("request: the envelope has no Body"))?;
    let operation = body
        .children
        .into_iter()
        .next()
        .ok_or_else(|| Fault::invalid("request: the Body is empty"))?;
    Ok(Request { version, operation })
}

/// The operation named by a SOAPAction header (`"http://.../ClientWebService/SyncUpdates"`)
/// or by the SOAP 1.2 content type's `action` parameter.
pub fn action_operation(action: &str) -> &str {
    action.trim().trim_matches('"').rsplit('/').next().unwrap_or("")
}

/// The envelope styles real WSUS uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnvelopeStyle {
    /// ClientWebService (WCF-like): no declaration, `s:` prefix, xsi/xsd on Body.
    Client,
    /// SimpleAuth, Reporting, ServerSync (ASMX): declaration, `soap:` prefix, xsi/xsd on Envelope.
    Asmx,
}

/// The text before and after the content of an envelope.
pub fn envelope_parts(version: SoapVersion, style: EnvelopeStyle) -> (String, &'static str) {
    let whole = envelope(version, style, "\u{0}");
    let (before, _) = whole.split_once('\u{0}').expect("the marker is in the envelope");
    let after = match (version, style) {
        (SoapVersion::V11, EnvelopeStyle::Client) => "</s:Body></s:Envelope>",
        _ => "</soap:Body></soap:Envelope>",
    };
    (before.to_string(), after)
}

/// Wraps `content` (the `<OpResponse xmlns=...>...</OpResponse>` element) in an envelope.
pub fn envelope(version: SoapVersion, style: EnvelopeStyle, content: &str) -> String {
    const XSI_XSD: &str = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"";
    match (version, style) {
        (SoapVersion::V11, EnvelopeStyle::Client) => {
            format!(
                "<s:Envelope xmlns:s=\"{SOAP11}\"><s:Body {XSI_XSD}>{content}</s:Body></s:Envelope>"
            )
        }
        (SoapVersion::V11, EnvelopeStyle::Asmx) => {
            format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"{SOAP11}\" {XSI_XSD}><soap:Body>{content}</soap:Body></soap:Envelope>"
            )
        }
        (SoapVersion::V12, _) => {
            format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"{SOAP12}\" {XSI_XSD}><soap:Body>{content}</soap:Body></soap:Envelope>"
            )
        }
    }
}

/// Part of a response: text written for it, or text shared with other responses (a large
/// Core fragment is sent to many clients without being copied into each answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Shared(Arc<str>),
}

impl Piece {
    pub fn len(&self) -> usize {
        match self {
            Piece::Text(t) => t.len(),
            Piece::Shared(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Piece::Text(t) => t.as_bytes(),
            Piece::Shared(s) => s.as_bytes(),
        }
    }
}

/// A tiny XML writer for response bodies.
#[derive(Debug, Default)]
pub struct Writer {
    pub out: String,
    /// Pieces before `out`, when shared text was written.
    done: Vec<Piece>,
}

impl Writer {
    /// Appends shared text (already escaped for where it goes) without copying it.
    pub fn shared(&mut self, text: Arc<str>) -> &mut Self {
        if !self.out.is_empty() {
            self.done.push(Piece::Text(std::mem::take(&mut self.out)));
        }
        self.done.push(Piece::Shared(text));
        self
    }

    /// Everything written, in order.
    pub fn into_pieces(mut self) -> Vec<Piece> {
        if !self.out.is_empty() {
            self.done.push(Piece::Text(self.out));
        }
        self.done
    }

    pub fn with_capacity(n: usize) -> Writer {
        Writer { out: String::with_capacity(n), done: Vec::new() }
    }
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }
    pub fn open_ns(&mut self, name: &str, ns: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        push_escaped_attribute(&mut self.out, ns);
        self.out.push_str("\">");
        self
    }
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }
    pub fn empty(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str("/>");
        self
    }
    pub fn empty_ns(&mut self, name: &str, ns: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        push_escaped_attribute(&mut self.out, ns);
        self.out.push_str("\"/>");
        self
    }
    /// `<name>escaped text</name>`.
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.open(name);
        push_escaped_text(&mut self.out, value);
        self.close(name)
    }
    /// `<name>text</name>` for text known to need no escaping (numbers, GUIDs, base64).
    pub fn raw(&mut self, name: &str, value: &str) -> &mut Self {
        self.open(name);
        self.out.push_str(value);
        self.close(name)
    }
    pub fn bool(&mut self, name: &str, value: bool) -> &mut Self {
        self.raw(name, if value { "true" } else { "false" })
    }
    pub fn int(&mut self, name: &str, value: i64) -> &mut Self {
        self.raw(name, &value.to_string())
    }
    pub fn push_raw(&mut self, xml: &str) -> &mut Self {
        self.out.push_str(xml);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_has_the_wsus_shape() {
        let f = Fault::invalid("parameters.InstalledNonLeafUpdateIDs").render(
            SoapVersion::V11,
            EnvelopeStyle::Client,
            "81418b4e-82c1-48d0-9504-da01db6148ae",
            Some("\"http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService/SyncUpdates\""),
            None,
        );
        // Byte for byte the fault a real WSUS 2025 sent (conformance/samples/wusp-realwsus-fault-InvalidParameters).
        assert_eq!(
            f,
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>Fault occurred</faultstring><detail><ErrorCode>InvalidParameters</ErrorCode><Message>parameters.InstalledNonLeafUpdateIDs</Message><ID>81418b4e-82c1-48d0-9504-da01db6148ae</ID><Method>\"http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService/SyncUpdates\"</Method></detail></s:Fault></s:Body></s:Envelope>"
        );
    }

    #[test]
    fn asmx_faults_have_the_wsus_shape() {
        let f = Fault::invalid("filter").render(
            SoapVersion::V11,
            EnvelopeStyle::Asmx,
            "94327110-fc7e-4c3c-878d-186ab273d9fd",
            Some("\"http://www.microsoft.com/SoftwareDistribution/GetRevisionIdList\""),
            Some("http://127.0.0.1:8530/ServerSyncWebService/ServerSyncWebService.asmx"),
        );
        // Byte for byte what a real WSUS 2025 upstream sent (conformance/wsusss/exchanges/000018).
        assert_eq!(
            f,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>Fault occurred</faultstring><faultactor>http://127.0.0.1:8530/ServerSyncWebService/ServerSyncWebService.asmx</faultactor><detail><ErrorCode>InvalidParameters</ErrorCode><Message>filter</Message><ID>94327110-fc7e-4c3c-878d-186ab273d9fd</ID><Method>\"http://www.microsoft.com/SoftwareDistribution/GetRevisionIdList\"</Method></detail></soap:Fault></soap:Body></soap:Envelope>"
        );
    }

    #[test]
    fn envelope_parts_surround_the_content() {
        for version in [SoapVersion::V11, SoapVersion::V12] {
            for style in [EnvelopeStyle::Client, EnvelopeStyle::Asmx] {
                let (before, after) = envelope_parts(version, style);
                assert_eq!(format!("{before}<x/>{after}"), envelope(version, style, "<x/>"));
            }
        }
    }

    #[test]
    fn shared_pieces_keep_their_place() {
        let mut w = Writer::default();
        w.open("a").shared(Arc::from("<big/>")).close("a");
        assert_eq!(
            w.into_pieces(),
            vec![
                Piece::Text("<a>".into()),
                Piece::Shared(Arc::from("<big/>")),
                Piece::Text("</a>".into())
            ]
        );
    }

    #[test]
    fn envelopes_of_both_versions_parse() {
        let r = parse_request(b"<soap12:Envelope xmlns:soap12=\"http://www.w3.org/2003/05/soap-envelope\"><soap12:Body><GetAuthConfig xmlns=\"http://www.microsoft.com/SoftwareDistribution\"/></soap12:Body></soap12:Envelope>").unwrap();
        assert_eq!((r.version, r.name()), (SoapVersion::V12, "GetAuthConfig"));
        assert!(parse_request(b"<x/>").is_err());
        assert_eq!(
            action_operation(
                "\"http://www.microsoft.com/SoftwareDistribution/Server/ClientWebService/GetConfig\""
            ),
            "GetConfig"
        );
    }
}
