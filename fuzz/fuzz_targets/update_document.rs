//! Full update documents (`<upd:Update>`, what GetUpdateData and bundles carry) through the
//! streaming parser that builds the model and derives the Core, Extended and Localized fragments.
//!
//! Besides "never panics", two properties the parser states:
//! - the fragments are valid UTF-8: `parse.rs` builds them from input slices with
//!   `from_utf8_unchecked`, relying on the document having been validated as a whole
//!   (`validated_str`); a `String` that is not UTF-8 is undefined behaviour later on;
//! - the spans of the model (`applicability_rules`, `handler_specific_data`,
//!   `unknown_elements`) are "byte ranges inside the document the model was parsed from"
//!   (`model.rs`): within the input, each the text of one element (`<...>`);
//! - a document stripped of the localized properties and EULAs of other languages
//!   (`strip_languages`, what bundles carry) parses again, to the same Core and Extended
//!   fragments, with no localized language it did not have.

#![no_main]

use ferry::catalog::language::strip_languages;
use ferry::catalog::{Language, MAX_DOCUMENT_BYTES, parse_update};
use libfuzzer_sys::fuzz_target;

fn check_span(document: &[u8], what: &str, span: &std::ops::Range<usize>) {
    assert!(span.start <= span.end && span.end <= document.len(), "{what}: span {span:?} is outside the {}-byte document", document.len());
    let text = &document[span.clone()];
    assert!(
        text.first() == Some(&b'<') && text.last() == Some(&b'>'),
        "{what}: span {span:?} is not an element: {:?}",
        String::from_utf8_lossy(&text[..text.len().min(40)])
    );
}

fuzz_target!(|data: &[u8]| {
    match parse_update(data) {
        Ok(parsed) => {
            assert!(data.len() <= MAX_DOCUMENT_BYTES);
            assert!(std::str::from_utf8(data).is_ok(), "a document that is not UTF-8 was accepted");
            let f = &parsed.fragments;
            assert!(std::str::from_utf8(f.core.as_bytes()).is_ok(), "the Core fragment is not UTF-8");
            assert!(std::str::from_utf8(f.extended.as_bytes()).is_ok(), "the Extended fragment is not UTF-8");
            for (language, fragment) in &f.localized {
                assert!(std::str::from_utf8(language.as_bytes()).is_ok(), "a localized language is not UTF-8");
                assert!(std::str::from_utf8(fragment.as_bytes()).is_ok(), "a Localized fragment is not UTF-8");
            }
            let u = &parsed.update;
            if let Some(span) = &u.applicability_rules {
                check_span(data, "applicability_rules", span);
            }
            if let Some(span) = &u.handler_specific_data {
                check_span(data, "handler_specific_data", span);
            }
            for (name, span) in &u.unknown_elements {
                check_span(data, name, span);
            }
            for e in &u.language_elements {
                check_span(data, "language element", &e.span);
            }
            let english = [Language::new("en").expect("a code")];
            if let Some(stripped) = strip_languages(data, u, &english) {
                let again = parse_update(&stripped).expect("a stripped document parses");
                assert_eq!(again.fragments.core, f.core, "stripping changed Core");
                assert_eq!(again.fragments.extended, f.extended, "stripping changed Extended");
                assert!(again.fragments.localized.iter().all(|(l, _)| f.localized.iter().any(|(m, _)| m == l)));
            }
            // What the CLI and the store read off the model.
            let _ = u.title();
            let _ = u.is_bundle();
            let _ = u.is_expired();
            for file in &u.files {
                let _ = file.extension();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
