#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use lwm2md::codec::{self, ContentFormat};
use lwm2md::path::Path;

const FORMATS: [ContentFormat; 8] = [
    ContentFormat::Text,
    ContentFormat::LinkFormat,
    ContentFormat::Opaque,
    ContentFormat::SenmlJson,
    ContentFormat::SenmlCbor,
    ContentFormat::Tlv,
    ContentFormat::LwM2mJson,
    ContentFormat::LwM2mCbor,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let Some(format) = FORMATS.get(usize::from(pick) % FORMATS.len()).copied() else {
        return;
    };
    let Some((model, base, payload)) = common::shape(data) else {
        return;
    };
    let ty = |p: &Path| model.ty(p);
    let Ok(records) = codec::decode(format, &base, payload, &ty) else {
        return;
    };
    for r in &records {
        assert!(base.contains(&r.path), "{} outside {base}", r.path);
        let &[o, i, res, ..] = r.path.ids() else {
            panic!("record at {}", r.path);
        };
        assert!(r.path.len() <= 4, "record at {}", r.path);
        assert_eq!(
            Some(r.value.resource_type()),
            model.ty(&Path::resource(o, i, res)),
            "value at {} not of the declared type",
            r.path
        );
    }
    assert!(
        records
            .windows(2)
            .all(|w| w[0].path.ids() < w[1].path.ids()),
        "records not sorted or repeated: {records:?}"
    );
    common::check_round_trip(
        |b, r| codec::encode(format, b, r),
        |b, p, t| codec::decode(format, b, p, t),
        model,
        &base,
        &records,
    );
});
