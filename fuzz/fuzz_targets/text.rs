#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use lwm2md::codec::text;
use lwm2md::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((model, base, payload)) = common::shape(data) else {
        return;
    };
    let ty = |p: &Path| model.ty(p);
    if let Ok(records) = text::decode(&base, payload, &ty) {
        common::check_round_trip(text::encode, text::decode, model, &base, &records);
    }
    // The value parser on its own, for every type.
    if let Ok(text) = std::str::from_utf8(data) {
        for ty in common::TYPES {
            if let Some(value) = text::parse_value(text, ty) {
                if let Ok(spelled) = text::format_value(&value) {
                    let again = text::parse_value(&spelled, ty);
                    assert!(
                        again
                            .as_ref()
                            .is_some_and(|a| common::same_value(a, &value)),
                        "{ty:?} {text:?} -> {value:?} -> {spelled:?} -> {again:?}"
                    );
                }
            }
        }
    }
});
