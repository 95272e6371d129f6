#![no_main]

use libfuzzer_sys::fuzz_target;
use lwm2md::codec::link::{encode_links, parse_links};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(links) = parse_links(text) else {
        return;
    };
    let written = encode_links(&links);
    let again = parse_links(&written);
    assert_eq!(again.as_ref(), Ok(&links), "{text:?} -> {written:?}");
});
