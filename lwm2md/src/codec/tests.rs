//! Shared test vectors and strategies, and the no-panic test over every decoder.

use proptest::prelude::*;

use super::*;
use crate::model::registry::DEVICE;

/// Bytes from hex text; spaces and newlines are ignored.
pub(crate) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// Declared types of the Device object (3) from the registry.
pub(crate) fn device_types(path: &Path) -> Option<ResourceType> {
    match path.ids() {
        [3, _, r] => DEVICE.resource(*r).map(|d| d.ty),
        _ => None,
    }
}

/// The Device object instance of the Core TS example (Read /3/0).
pub(crate) fn device_records() -> Vec<Record> {
    let s = |p: &str, v: &str| Record {
        path: p.parse().unwrap(),
        value: Value::String(v.into()),
    };
    let i = |p: &str, v: i64| Record {
        path: p.parse().unwrap(),
        value: Value::Integer(v),
    };
    vec![
        s("/3/0/0", "Open Mobile Alliance"),
        s("/3/0/1", "Lightweight M2M Client"),
        s("/3/0/2", "345000123"),
        s("/3/0/3", "1.0"),
        i("/3/0/6/0", 1),
        i("/3/0/6/1", 5),
        i("/3/0/7/0", 3800),
        i("/3/0/7/1", 5000),
        i("/3/0/8/0", 125),
        i("/3/0/8/1", 900),
        i("/3/0/9", 100),
        i("/3/0/10", 15),
        i("/3/0/11/0", 0),
        Record {
            path: "/3/0/13".parse().unwrap(),
            value: Value::Time(1367491215),
        },
        s("/3/0/14", "+02:00"),
        s("/3/0/16", "U"),
    ]
}

const TYPES: [ResourceType; 9] = [
    ResourceType::Integer,
    ResourceType::Unsigned,
    ResourceType::Float,
    ResourceType::Boolean,
    ResourceType::String,
    ResourceType::Opaque,
    ResourceType::Time,
    ResourceType::ObjLnk,
    ResourceType::CoreLnk,
];

/// The type model of the round-trip tests: a resource's type follows from its ID.
pub(crate) fn test_types(path: &Path) -> Option<ResourceType> {
    path.resource_id()
        .map(|r| TYPES[usize::from(r) % TYPES.len()])
}

/// Values of one type; floats are finite so that equality holds after a round trip.
pub(crate) fn value_of(ty: ResourceType) -> BoxedStrategy<Value> {
    match ty {
        ResourceType::Integer => any::<i64>().prop_map(Value::Integer).boxed(),
        ResourceType::Unsigned => any::<u64>().prop_map(Value::Unsigned).boxed(),
        ResourceType::Float => prop_oneof![
            any::<f64>().prop_filter("finite", |x| x.is_finite()),
            any::<f32>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(f64::from),
            (-1000i32..1000).prop_map(f64::from),
        ]
        .prop_map(Value::Float)
        .boxed(),
        ResourceType::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        ResourceType::String => ".{0,40}".prop_map(Value::String).boxed(),
        ResourceType::Opaque => proptest::collection::vec(any::<u8>(), 0..300)
            .prop_map(Value::Opaque)
            .boxed(),
        ResourceType::Time => any::<i64>().prop_map(Value::Time).boxed(),
        ResourceType::ObjLnk => (any::<u16>(), any::<u16>())
            .prop_map(|(o, i)| Value::ObjLnk(o, i))
            .boxed(),
        ResourceType::CoreLnk => "</[0-9/]{0,8}>".prop_map(Value::CoreLnk).boxed(),
        ResourceType::None => Just(Value::Boolean(false)).boxed(),
    }
}

pub(crate) fn any_value() -> impl Strategy<Value = Value> {
    proptest::sample::select(TYPES.to_vec()).prop_flat_map(value_of)
}

/// A record at `path` (a resource or resource-instance path) typed by `test_types`.
fn record_at(path: Path) -> BoxedStrategy<Record> {
    let ty = test_types(&path).unwrap_or(ResourceType::Integer);
    value_of(ty)
        .prop_map(move |value| Record { path, value })
        .boxed()
}

/// Sorted, distinct records of one object instance: single resources and
/// multiple-instance resources (with at least one instance each).
fn instance_records(o: u16, i: u16) -> BoxedStrategy<Vec<Record>> {
    let resource = (
        0u16..40,
        proptest::option::of(proptest::collection::btree_set(0u16..70, 1..4)),
    );
    proptest::collection::btree_map(0u16..40, resource.prop_map(|(_, m)| m), 0..6)
        .prop_flat_map(move |resources| {
            let paths: Vec<Path> = resources
                .into_iter()
                .flat_map(|(r, instances)| match instances {
                    None => vec![Path::resource(o, i, r)],
                    Some(set) => set
                        .into_iter()
                        .map(|ri| Path::resource_instance(o, i, r, ri))
                        .collect(),
                })
                .collect();
            paths.into_iter().map(record_at).collect::<Vec<_>>()
        })
        .boxed()
}

/// A request path and the records a Read of it could produce.
pub(crate) fn records_strategy() -> impl Strategy<Value = (Path, Vec<Record>)> {
    prop_oneof![
        // /o: several instances.
        proptest::collection::btree_set(0u16..5, 0..3).prop_flat_map(|instances| {
            instances
                .into_iter()
                .map(|i| instance_records(7, i))
                .collect::<Vec<_>>()
                .prop_map(|groups| (Path::object(7), groups.concat()))
        }),
        // /o/i
        instance_records(7, 1).prop_map(|r| (Path::instance(7, 1), r)),
        // /o/i/r, a single resource
        (0u16..40).prop_flat_map(|r| {
            record_at(Path::resource(7, 1, r))
                .prop_map(move |rec| (Path::resource(7, 1, r), vec![rec]))
        }),
        // /o/i/r, a multiple-instance resource (possibly empty)
        (0u16..40, proptest::collection::btree_set(0u16..70, 0..4)).prop_flat_map(|(r, set)| {
            set.into_iter()
                .map(|ri| record_at(Path::resource_instance(7, 1, r, ri)))
                .collect::<Vec<_>>()
                .prop_map(move |recs| (Path::resource(7, 1, r), recs))
        }),
        // /o/i/r/ri
        (0u16..40, 0u16..70).prop_flat_map(|(r, ri)| {
            let p = Path::resource_instance(7, 1, r, ri);
            record_at(p).prop_map(move |rec| (p, vec![rec]))
        }),
    ]
}

/// Every decoder, on bytes it was never meant to see, returns an error or records but
/// never panics.
fn feed_all(bytes: &[u8]) {
    let bases = [
        Path::ROOT,
        Path::object(3),
        Path::instance(3, 0),
        Path::resource(3, 0, 6),
        Path::resource_instance(3, 0, 6, 1),
        Path::resource(3, 0, 0),
    ];
    for base in &bases {
        for format in [
            ContentFormat::Text,
            ContentFormat::Opaque,
            ContentFormat::Tlv,
            ContentFormat::SenmlJson,
            ContentFormat::SenmlCbor,
            ContentFormat::LinkFormat,
            ContentFormat::LwM2mJson,
            ContentFormat::LwM2mCbor,
        ] {
            let _ = decode(format, base, bytes, &device_types);
            let _ = decode(format, base, bytes, &test_types);
        }
    }
    for ty in TYPES {
        let _ = text::parse_value(&String::from_utf8_lossy(bytes), ty);
        let _ = tlv::parse_value(bytes, ty);
    }
    let _ = link::parse_links(&String::from_utf8_lossy(bytes));
}

/// Byte strings that look a little like each format, so that the fuzzing reaches past the
/// first check.
fn fuzz_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        // TLV-ish: resource and container type bytes with small lengths.
        proptest::collection::vec(
            prop_oneof![
                Just(0x08u8),
                Just(0x86),
                Just(0x88),
                Just(0xC1),
                Just(0xC8),
                Just(0x41),
                any::<u8>()
            ],
            0..48
        ),
        // CBOR-ish: arrays, maps, labels, path keys, strings, tags.
        proptest::collection::vec(
            prop_oneof![
                Just(0x81u8),
                Just(0x83),
                Just(0xA1),
                Just(0xC1),
                Just(0x03),
                Just(0x9F),
                Just(0xA2),
                Just(0xBF),
                Just(0xFF),
                Just(0x00),
                Just(0x02),
                Just(0x21),
                Just(0x66),
                Just(0xF9),
                any::<u8>()
            ],
            0..48
        ),
        // JSON-ish.
        "[\\[\\]{}\",:0-9a-z/. vnbs-]{0,64}".prop_map(String::into_bytes),
        // LwM2M JSON-ish.
        "\\{\"(bn|e)\":[\\[\\]{}\",:0-9/ vnsbo-]{0,60}".prop_map(String::into_bytes),
        // Link-ish.
        "[<>;=\", /a-z0-9\\\\]{0,64}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]
    #[test]
    fn decoders_never_panic(bytes in fuzz_input()) {
        feed_all(&bytes);
    }
}

#[test]
fn unsupported_formats() {
    let base = Path::instance(3, 0);
    assert_eq!(
        encode(ContentFormat::LwM2mJson, &base, &device_records()),
        Err(CodecError::Unsupported(ContentFormat::LwM2mJson))
    );
    assert_eq!(
        decode(ContentFormat::LinkFormat, &base, b"</3/0>", &device_types),
        Err(CodecError::Unsupported(ContentFormat::LinkFormat))
    );
    assert_eq!(
        encode(
            ContentFormat::Text,
            &Path::resource(3, 0, 9),
            &device_records()
        ),
        Err(CodecError::OutsideBase(Path::resource(3, 0, 0)))
    );
}

proptest! {
    /// The same records read in any hierarchical format decode to themselves.
    #[test]
    fn formats_agree((base, records) in records_strategy()) {
        for format in [
            ContentFormat::Tlv,
            ContentFormat::SenmlJson,
            ContentFormat::SenmlCbor,
            ContentFormat::LwM2mCbor,
        ] {
            let bytes = encode(format, &base, &records).unwrap();
            prop_assert_eq!(&decode(format, &base, &bytes, &test_types).unwrap(), &records);
        }
    }
}
