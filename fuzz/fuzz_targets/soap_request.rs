//! SOAP request bodies as `ferry serve` reads them: the envelope, then every request decoder of
//! both protocols (MS-WUSP client requests, MS-WSUSSS server-sync requests) on the operation
//! element, whatever its name. None of them may panic, and a refused request must still render
//! as a fault. A body read through its shape (`wsus/shape.rs`) must read as the whole body.

#![no_main]

use ferry::wsus::shape::{self, Cut};
use ferry::wsus::soap::{self, EnvelopeStyle, SoapVersion};
use ferry::wsus::tree::Element;
use ferry::wsus::{client, server_sync};
use libfuzzer_sys::fuzz_target;

/// `wsus/shape.rs`'s invariant: when a body's shape holds its markers, the whole body parses,
/// to the shape's tree with the cookie's texts in the markers' place, and to the cut's cookie.
fn shape_reads_as_the_body(data: &[u8]) {
    let Some(cut) = Cut::of(data) else { return };
    let Ok(marked) = soap::parse_request(&cut.marked()) else { return };
    if !shape::marks_hold(&marked) {
        return;
    }
    let mut whole = soap::parse_request(data).expect("a body whose shape holds parses whole");
    assert_eq!(cut.cookie().map(Some), client::cookie(&whole.operation, "cookie"));
    let cookie = first_child(&mut whole.operation, "cookie");
    first_child(cookie, "Expiration").text = "~".into();
    first_child(cookie, "EncryptedData").text = "~~".into();
    assert_eq!(whole.operation, marked.operation, "the shape's tree is the body's");
}

/// The first child of that name that is not `xsi:nil` (as `Element::child` with the nil filter).
fn first_child<'e>(parent: &'e mut Element, name: &str) -> &'e mut Element {
    parent
        .children
        .iter_mut()
        .find(|c| &*c.name == name)
        .filter(|c| !c.is_nil())
        .expect("the marks hold, so the element is there")
}

fuzz_target!(|data: &[u8]| {
    shape_reads_as_the_body(data);
    let request = match soap::parse_request(data) {
        Ok(r) => r,
        Err(fault) => {
            // The fault message quotes parts of the input; it is escaped into the answer.
            let _ = fault.render(SoapVersion::V11, EnvelopeStyle::Client, "00000000-0000-0000-0000-000000000000", Some("\"x/Op\""), None);
            let _ = fault.render(SoapVersion::V12, EnvelopeStyle::Asmx, "00000000-0000-0000-0000-000000000000", None, Some("actor"));
            return;
        }
    };
    let _ = request.name();
    let op = &request.operation;

    // ClientWebService, SimpleAuth and Reporting.
    let _ = client::authorization_request(op);
    let _ = client::get_cookie_request(op);
    let _ = client::computer_info(op);
    let _ = client::start_category_scan_request(op);
    let _ = client::sync_parameters(op);
    let _ = client::refresh_cache_request(op);
    let _ = client::extended_info_request(op);
    let _ = client::file_locations_request(op);
    let _ = client::report_event_batch_request(op);
    let _ = client::cookie(op, "cookie");
    let _ = client::cookie(op, "oldCookie");

    // ServerSync and DssAuth.
    let _ = server_sync::dss_auth_request(op);
    let _ = server_sync::config_data_request(op);
    let _ = server_sync::revision_id_list_request(op);
    let _ = server_sync::update_data_request(op, 100);
    let _ = server_sync::deployments_request(op);
    let _ = server_sync::download_files_request(op);
    let _ = server_sync::cookie(op);
    let _ = server_sync::update_identities(op.child("updateIds"), "updateIds");
});
