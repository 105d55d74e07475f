//! A metadata member as `ferry import` reads it: `read_record` until the end, and each frame
//! through `store::decompress_document` within the size its record declares (the bomb limit).
//!
//! Besides "never panics": a record reads back to exactly the bytes it came from
//! (`write_record` writes the format `read_record` reads), a declared size never exceeds the
//! document limit, and a decompressed document is exactly its declared size.

#![no_main]

use ferry::bundle::metadata::{RECORD_HEADER, read_record, write_record};
use ferry::catalog::MAX_DOCUMENT_BYTES;
use ferry::store::decompress_document;
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let mut input = Cursor::new(data);
    loop {
        let start = input.position() as usize;
        let (frame, size) = match read_record(&mut input) {
            Ok(Some(record)) => record,
            Ok(None) => {
                assert_eq!(start, data.len(), "the records ended before the input");
                break;
            }
            Err(_) => break,
        };
        let end = input.position() as usize;
        assert_eq!(end - start, RECORD_HEADER + frame.len());
        assert!(size <= MAX_DOCUMENT_BYTES as u64 && frame.len() <= MAX_DOCUMENT_BYTES);
        let mut written = Vec::with_capacity(end - start);
        write_record(&mut written, &frame, size).unwrap();
        assert_eq!(written, &data[start..end], "a record does not write back as it was read");
        if let Ok(document) = decompress_document(&frame, size, "a fuzzed record") {
            assert_eq!(document.len() as u64, size, "decompressed beyond or short of the declared size");
        }
    }
});
