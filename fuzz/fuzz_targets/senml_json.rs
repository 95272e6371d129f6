#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use lwm2md::codec::senml::json;
use lwm2md::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((model, base, payload)) = common::shape(data) else {
        return;
    };
    let ty = |p: &Path| model.ty(p);
    if let Ok(records) = json::decode(&base, payload, &ty) {
        common::check_round_trip(json::encode, json::decode, model, &base, &records);
    }
    // The raw layer: an emitted pack parses back to the same records.
    if let Ok(raw) = json::parse(data) {
        if let Ok(bytes) = json::emit(&raw) {
            let again = json::parse(&bytes);
            assert!(
                again.as_ref().is_ok_and(|a| common::same_raw(a, &raw)),
                "{raw:?} -> {bytes:02x?} -> {again:?}"
            );
        }
    }
});
