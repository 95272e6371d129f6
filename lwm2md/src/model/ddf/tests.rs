use super::*;

/// The OMA registry files (`lwm2md/tests/data/oma-objects`); `LWM2MD_OMA_OBJECTS` names
/// another copy.
fn registry_dir() -> PathBuf {
    match std::env::var_os("LWM2MD_OMA_OBJECTS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/oma-objects"),
    }
}

/// The value of the first `<tag>` element in `s`, by plain string search: an extractor
/// that shares nothing with the loader, to check the loader against.
fn element<'a>(s: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = s.find(&open)? + open.len();
    let end = s[start..].find(&format!("</{tag}>"))? + start;
    Some(s[start..end].trim())
}

fn without_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("<!--") {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        rest = match rest.find("-->") {
            Some(j) => &rest[j + 3..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

struct Expected {
    id: u16,
    version: String,
    multiple: bool,
    items: Vec<(u16, String, String, bool, bool, String, String)>,
}

fn expected(text: &str) -> Expected {
    let text = without_comments(text);
    let (head, body) = text.split_once("<Resources>").unwrap();
    let mut items = Vec::new();
    for chunk in body.split("<Item ID=\"").skip(1) {
        let (id, rest) = chunk.split_once('"').unwrap();
        items.push((
            id.parse().unwrap(),
            element(rest, "Name").unwrap().to_string(),
            element(rest, "Operations").unwrap_or("").to_string(),
            element(rest, "MultipleInstances").unwrap() == "Multiple",
            element(rest, "Mandatory").unwrap() == "Mandatory",
            element(rest, "Type").unwrap_or("").to_string(),
            element(rest, "Units").unwrap_or("").to_string(),
        ));
    }
    items.sort_by_key(|i| i.0);
    Expected {
        id: element(head, "ObjectID").unwrap().parse().unwrap(),
        version: element(head, "ObjectVersion")
            .filter(|v| !v.is_empty())
            .unwrap_or("1.0")
            .to_string(),
        multiple: element(head, "MultipleInstances").unwrap() == "Multiple",
        items,
    }
}

fn type_name(ty: ResourceType) -> &'static str {
    match ty {
        ResourceType::Integer => "Integer",
        ResourceType::Unsigned => "Unsigned Integer",
        ResourceType::Float => "Float",
        ResourceType::Boolean => "Boolean",
        ResourceType::String => "String",
        ResourceType::Opaque => "Opaque",
        ResourceType::Time => "Time",
        ResourceType::ObjLnk => "Objlnk",
        ResourceType::CoreLnk => "Corelnk",
        ResourceType::None => "",
    }
}

fn ops_name(ops: Operations) -> &'static str {
    match ops {
        Operations::None => "",
        Operations::R => "R",
        Operations::W => "W",
        Operations::RW => "RW",
        Operations::E => "E",
    }
}

#[test]
fn every_registry_object_loads_as_the_file_says() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(registry_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    let mut objects = 0;
    let mut resources = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        if !text.contains("<LWM2M") {
            // The SenML units list is XML of another schema: refused as such.
            let e = load_file(file).unwrap_err();
            assert!(e.message.contains("not <LWM2M>"), "{e}");
            continue;
        }
        let defs = load_file(file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(defs.len(), 1, "{}", file.display());
        let def = &defs[0];
        let want = expected(&text);
        assert_eq!(def.id, want.id, "{}", file.display());
        assert_eq!(def.version, want.version, "{}", file.display());
        assert_eq!(def.multiple, want.multiple, "{}", file.display());
        let got: Vec<_> = def
            .resources
            .iter()
            .map(|r| {
                (
                    r.id,
                    r.name.clone(),
                    ops_name(r.operations).to_string(),
                    r.multiple,
                    r.mandatory,
                    type_name(r.ty).to_string(),
                    r.units.clone(),
                )
            })
            .collect();
        assert_eq!(got, want.items, "{}", file.display());
        objects += 1;
        resources += got.len();
    }
    assert!(objects >= 27, "{objects} objects");
    assert!(resources > 300, "{resources} resources");
}

#[test]
fn registry_spellings_of_special_types() {
    let dir = registry_dir();
    let fw = &load_file(&dir.join("5.xml")).unwrap()[0];
    let package = fw.resources.iter().find(|r| r.id == 0).unwrap();
    assert_eq!(
        (package.operations, package.ty),
        (Operations::W, ResourceType::Opaque)
    );
    let update = fw.resources.iter().find(|r| r.id == 2).unwrap();
    assert_eq!(
        (update.operations, update.ty),
        (Operations::E, ResourceType::None)
    );
    let device = &load_file(&dir.join("3.xml")).unwrap()[0];
    let current_time = device.resources.iter().find(|r| r.id == 13).unwrap();
    assert_eq!(current_time.ty, ResourceType::Time);
    let ext = device.resources.iter().find(|r| r.id == 22).unwrap();
    assert_eq!((ext.ty, ext.multiple), (ResourceType::ObjLnk, true));
    let security = &load_file(&dir.join("0.xml")).unwrap()[0];
    assert_eq!(security.resources[0].operations, Operations::None);
    let temp = &load_file(&dir.join("3303.xml")).unwrap()[0];
    assert_eq!(temp.version, "1.1");
    let units = temp.resources.iter().find(|r| r.id == 5701).unwrap();
    assert_eq!(units.ty, ResourceType::String);
}

const GOOD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<LWM2M xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Object ObjectType="MODefinition">
    <Name>Gadget</Name>
    <ObjectID>33000</ObjectID>
    <ObjectVersion>1.2</ObjectVersion>
    <MultipleInstances>Single</MultipleInstances>
    <Mandatory>Optional</Mandatory>
    <Resources>
      <Item ID="2"><Name>Level</Name><Operations>RW</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Mandatory</Mandatory>
        <Type>Unsigned Integer</Type><RangeEnumeration>0..100</RangeEnumeration><Units>%</Units></Item>
      <Item ID="1"><Name>Go</Name><Operations>E</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type></Type><RangeEnumeration/><Units/></Item>
    </Resources>
  </Object>
</LWM2M>
"#;

#[test]
fn a_small_definition_and_its_static_tables() {
    let defs = parse(GOOD).unwrap();
    let def: &'static ObjectDef = defs[0].clone().leak();
    assert_eq!(def.id, 33000);
    assert_eq!(def.version, "1.2");
    assert!(!def.multiple);
    // Resources are sorted by ID whatever the file's order.
    assert_eq!(def.resources[0].id, 1);
    let level = def.resource(2).unwrap();
    assert_eq!(level.ty, ResourceType::Unsigned);
    assert_eq!((level.range, level.units), ("0..100", "%"));
    assert!(level.mandatory);
}

fn error_of(text: &str) -> DdfError {
    parse(text).unwrap_err()
}

#[test]
fn malformed_xml_names_the_position() {
    // An unclosed <Name> on line 4.
    let broken = GOOD.replace("<Name>Gadget</Name>", "<Name>Gadget");
    let e = error_of(&broken);
    assert!(matches!(e, DdfError::Xml { .. }), "{e}");
    assert!(e.position().0 >= 4, "{e}");
    let e = error_of("");
    assert!(matches!(e, DdfError::Xml { .. }), "{e}");
    let e = error_of("<LWM2M><Object>");
    assert!(matches!(e, DdfError::Xml { .. }), "{e}");
}

#[test]
fn entity_expansion_is_refused() {
    let bomb = "<?xml version=\"1.0\"?><!DOCTYPE LWM2M [<!ENTITY a \"aaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><LWM2M>&b;</LWM2M>";
    assert!(matches!(error_of(bomb), DdfError::Xml { .. }));
}

#[test]
fn schema_errors_point_at_the_element() {
    let cases = [
        (GOOD.replace("LWM2M", "units"), "not <LWM2M>", 2),
        (GOOD.replace("33000", "65535"), "ObjectID \"65535\"", 5),
        (GOOD.replace("33000", "x"), "ObjectID \"x\"", 5),
        (
            GOOD.replace("<ObjectID>33000</ObjectID>", ""),
            "no <ObjectID>",
            3,
        ),
        (GOOD.replace("1.2", "one"), "major.minor", 6),
        (GOOD.replace(">RW<", ">RX<"), "operations \"RX\"", 10),
        (
            GOOD.replace("Unsigned Integer", "Decimal"),
            "unknown type \"Decimal\"",
            12,
        ),
        (
            GOOD.replace("<Type>Unsigned Integer</Type>", "<Type></Type>"),
            "no type",
            12,
        ),
        (
            GOOD.replace("<Type></Type>", "<Type>String</Type>"),
            "no type",
            15,
        ),
        (
            GOOD.replace("ID=\"1\"", "ID=\"2\""),
            "resource 2 is defined twice",
            13,
        ),
        (GOOD.replace("ID=\"1\"", ""), "without an ID", 13),
        (
            GOOD.replace(
                "<MultipleInstances>Single</MultipleInstances>\n    <Mandatory>",
                "<MultipleInstances>Some</MultipleInstances>\n    <Mandatory>",
            ),
            "\"Some\"",
            7,
        ),
        (
            GOOD.replace(
                "<Mandatory>Mandatory</Mandatory>",
                "<Mandatory>Yes</Mandatory>",
            ),
            "\"Yes\"",
            11,
        ),
        ("<LWM2M></LWM2M>".to_string(), "no <Object>", 1),
    ];
    for (text, wanted, line) in cases {
        let e = error_of(&text);
        assert!(matches!(e, DdfError::Schema { .. }), "{wanted}: {e}");
        assert!(e.message().contains(wanted), "{wanted}: {e}");
        assert_eq!(e.position().0, line, "{wanted}: {e}");
    }
}

#[test]
fn two_objects_in_one_file() {
    let object = GOOD
        .split_once("<Object ")
        .and_then(|(_, rest)| rest.split_once("</LWM2M>"))
        .map(|(o, _)| format!("<Object {o}"))
        .unwrap();
    let two = format!(
        "<LWM2M>{object}{}</LWM2M>",
        object.replace("33000", "33001")
    );
    let defs = parse(&two).unwrap();
    assert_eq!(
        defs.iter().map(|d| d.id).collect::<Vec<_>>(),
        [33000, 33001]
    );
    let same = format!("<LWM2M>{object}{object}</LWM2M>");
    assert!(error_of(&same).message().contains("defined twice"));
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lwm2md-ddf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn directories_load_in_order_and_conflicts_name_both_files() {
    let a = scratch("a");
    let b = scratch("b");
    std::fs::write(a.join("gadget.xml"), GOOD).unwrap();
    std::fs::write(a.join("notes.txt"), "not a definition").unwrap();
    std::fs::write(b.join("other.xml"), GOOD.replace("33000", "33001")).unwrap();
    let missing = a.join("missing");
    let loaded = load_dirs(&[a.clone(), missing, b.clone()], &[(3, "Device")]).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0].file, a.join("gadget.xml"));

    std::fs::write(b.join("again.xml"), GOOD).unwrap();
    let e = load_dirs(&[a.clone(), b.clone()], &[]).unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains(&b.join("again.xml").display().to_string()),
        "{s}"
    );
    assert!(
        s.contains(&a.join("gadget.xml").display().to_string()),
        "{s}"
    );
    std::fs::remove_file(b.join("again.xml")).unwrap();

    std::fs::write(b.join("device.xml"), GOOD.replace("33000", "3")).unwrap();
    let s = load_dirs(&[a.clone(), b.clone()], &[(3, "Device")])
        .unwrap_err()
        .to_string();
    assert!(
        s.contains("device.xml") && s.contains("built-in object 3 (Device)"),
        "{s}"
    );
    std::fs::remove_file(b.join("device.xml")).unwrap();

    std::fs::write(b.join("broken.xml"), "<LWM2M>\n  <Object>\n").unwrap();
    let e = load_dirs(std::slice::from_ref(&b), &[]).unwrap_err();
    assert_eq!(e.file, b.join("broken.xml"));
    assert!(e.position.is_some(), "{e}");
    assert!(e.message.contains("malformed XML"), "{e}");

    std::fs::write(b.join("broken.xml"), [0x3c, 0xff, 0xfe]).unwrap();
    let e = load_dirs(std::slice::from_ref(&b), &[]).unwrap_err();
    assert!(e.message.contains("UTF-8"), "{e}");
    std::fs::remove_dir_all(a).unwrap();
    std::fs::remove_dir_all(b).unwrap();
}

/// The object tables `build.rs` generates from the registry files must say what the
/// runtime loader reads in the same files, resource by resource (two independent readings
/// of the XML). The deliberate differences: the version a few objects advertise (the
/// enabler version lwm2md implements) and the newer resources left out with it.
#[test]
fn built_in_tables_are_what_the_registry_files_say() {
    use crate::model::{registry, registry_connectivity as conn};
    use crate::objects::ipso::defs as ipso;
    let built_in: [&ObjectDef; 19] = [
        &registry::SECURITY,
        &registry::SERVER,
        &crate::objects::access_control::DEF,
        &registry::DEVICE,
        &conn::CONNECTIVITY_MONITORING,
        &registry::FIRMWARE_UPDATE,
        &registry::LOCATION,
        &conn::CONNECTIVITY_STATISTICS,
        &conn::CELLULAR_CONNECTIVITY,
        &conn::APN_CONNECTION_PROFILE,
        &ipso::ILLUMINANCE,
        &ipso::TEMPERATURE,
        &ipso::HUMIDITY,
        &ipso::ACCELEROMETER,
        &ipso::BAROMETER,
        &ipso::VOLTAGE,
        &ipso::CURRENT,
        &ipso::CONCENTRATION,
        &ipso::POWER,
    ];
    // Objects advertised at the version of the LwM2M 1.1 enabler lwm2md registers with,
    // older than the file's, and the newer resources left out (the core objects keep
    // theirs in the tables: a 1.2 server may use them).
    let older: [(u16, &str, &[u16]); 5] = [
        (0, "1.1", &[]),
        (1, "1.1", &[]),
        (2, "1.0", &[]),
        (3, "1.1", &[]),
        (5, "1.1", &[14]),
    ];
    let mut differences = Vec::new();
    for def in built_in {
        let file = registry_dir().join(format!("{}.xml", def.id));
        let loaded = load_file(&file).unwrap_or_else(|e| panic!("{e}"));
        let Some(from_file) = loaded.iter().find(|d| d.id == def.id) else {
            differences.push(format!("{}: not in {}", def.id, file.display()));
            continue;
        };
        let mut differ = |what: &str, ours: String, theirs: String| {
            if ours != theirs {
                differences.push(format!(
                    "/{} {what}: {ours:?} here, {theirs:?} in the file",
                    def.id
                ));
            }
        };
        let (version, left_out) = older
            .iter()
            .find(|(id, ..)| *id == def.id)
            .map_or((from_file.version.as_str(), &[][..]), |(_, v, left)| {
                (*v, *left)
            });
        differ("name", def.name.into(), from_file.name.clone());
        differ("version", def.version.into(), version.into());
        differ(
            "multiple",
            def.multiple.to_string(),
            from_file.multiple.to_string(),
        );
        differ(
            "mandatory",
            def.mandatory.to_string(),
            from_file.mandatory.to_string(),
        );
        let ids = |mut ids: Vec<u16>| {
            ids.sort_unstable();
            format!("{ids:?}")
        };
        differ(
            "resources",
            ids(def.resources.iter().map(|r| r.id).collect()),
            ids(from_file
                .resources
                .iter()
                .map(|r| r.id)
                .filter(|id| !left_out.contains(id))
                .collect()),
        );
        for r in def.resources {
            let Some(f) = from_file.resources.iter().find(|f| f.id == r.id) else {
                continue;
            };
            let at = format!("resource {}", r.id);
            differ(&format!("{at} name"), r.name.into(), f.name.clone());
            differ(
                &format!("{at} operations"),
                format!("{:?}", r.operations),
                format!("{:?}", f.operations),
            );
            differ(
                &format!("{at} multiple"),
                r.multiple.to_string(),
                f.multiple.to_string(),
            );
            differ(
                &format!("{at} mandatory"),
                r.mandatory.to_string(),
                f.mandatory.to_string(),
            );
            differ(
                &format!("{at} type"),
                format!("{:?}", r.ty),
                format!("{:?}", f.ty),
            );
            differ(&format!("{at} range"), r.range.into(), f.range.clone());
            differ(&format!("{at} units"), r.units.into(), f.units.clone());
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
