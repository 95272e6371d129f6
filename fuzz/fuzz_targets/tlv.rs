#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use lwm2md::codec::tlv;
use lwm2md::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((model, base, payload)) = common::shape(data) else {
        return;
    };
    let ty = |p: &Path| model.ty(p);
    if let Ok(records) = tlv::decode(&base, payload, &ty) {
        common::check_round_trip(tlv::encode, tlv::decode, model, &base, &records);
    }
    // The raw layer: re-emitting parsed TLVs parses to the same TLVs.
    if let Ok(tlvs) = tlv::parse(data) {
        let mut out = Vec::new();
        for t in &tlvs {
            tlv::emit(&mut out, t.kind, t.id, t.value).expect("a parsed TLV re-emits");
        }
        assert_eq!(tlv::parse(&out).as_deref(), Ok(&tlvs[..]));
    }
});
