//! Build-time facts and tables:
//! - raw public keys (RFC 7250) exist in OpenSSL from 3.2 on: the `ossl_rpk` cfg says
//!   whether the OpenSSL this build links (openssl-sys reports its version) has them;
//! - the object tables of the registry objects lwm2md implements are generated from the
//!   OMA registry files in `tests/data/oma-objects` (the runtime loader, `model::ddf`,
//!   reads the same files in a test and checks they agree).

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// OpenSSL 3.2.0 in OPENSSL_VERSION_NUMBER form.
const OPENSSL_3_2: u64 = 0x3020_0000;

fn main() {
    openssl_cfg();
    object_tables();
}

fn openssl_cfg() {
    println!("cargo::rustc-check-cfg=cfg(ossl_rpk)");
    println!("cargo::rerun-if-env-changed=DEP_OPENSSL_VERSION_NUMBER");
    println!("cargo::rerun-if-env-changed=DEP_OPENSSL_LIBRESSL_VERSION_NUMBER");
    // LibreSSL reports a version number too, but has no raw public keys.
    if env::var_os("DEP_OPENSSL_LIBRESSL_VERSION_NUMBER").is_some() {
        return;
    }
    let version = env::var("DEP_OPENSSL_VERSION_NUMBER")
        .ok()
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    if version.is_some_and(|v| v >= OPENSSL_3_2) {
        println!("cargo::rustc-cfg=ossl_rpk");
    }
}

/// One generated table: the static's name, the registry file's object, the version
/// advertised when it is not the file's (the LwM2M 1.1 enabler's), and resources of a
/// newer object version left out.
struct Table {
    name: &'static str,
    id: u16,
    version: Option<&'static str>,
    left_out: &'static [u16],
}

const fn table(name: &'static str, id: u16) -> Table {
    Table {
        name,
        id,
        version: None,
        left_out: &[],
    }
}

const fn older(
    name: &'static str,
    id: u16,
    version: &'static str,
    left_out: &'static [u16],
) -> Table {
    Table {
        name,
        id,
        version: Some(version),
        left_out,
    }
}

/// Each generated file (included by the module of the same role) and its tables.
const FILES: &[(&str, &[Table])] = &[
    (
        "registry.rs",
        &[
            older("SECURITY", 0, "1.1", &[]),
            older("SERVER", 1, "1.1", &[]),
            older("DEVICE", 3, "1.1", &[]),
            table("LOCATION", 6),
            older("FIRMWARE_UPDATE", 5, "1.1", &[14]),
        ],
    ),
    (
        "registry_connectivity.rs",
        &[
            table("CONNECTIVITY_MONITORING", 4),
            table("CONNECTIVITY_STATISTICS", 7),
            table("CELLULAR_CONNECTIVITY", 10),
            table("APN_CONNECTION_PROFILE", 11),
        ],
    ),
    ("access_control.rs", &[older("DEF", 2, "1.0", &[])]),
    (
        "ipso.rs",
        &[
            table("ILLUMINANCE", 3301),
            table("TEMPERATURE", 3303),
            table("HUMIDITY", 3304),
            table("ACCELEROMETER", 3313),
            table("BAROMETER", 3315),
            table("VOLTAGE", 3316),
            table("CURRENT", 3317),
            table("CONCENTRATION", 3325),
            table("POWER", 3328),
        ],
    ),
];

fn object_tables() {
    let registry =
        Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("tests/data/oma-objects");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    for (file, tables) in FILES {
        let mut code = String::new();
        for t in *tables {
            let path = registry.join(format!("{}.xml", t.id));
            println!("cargo::rerun-if-changed={}", path.display());
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            generate(&mut code, t, &text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        std::fs::write(out.join(file), code).unwrap();
    }
}

/// Appends `pub static NAME: ObjectDef = ...;` for the object of `text`. The files are
/// the registry's own and part of the source: anything unexpected stops the build.
fn generate(code: &mut String, t: &Table, text: &str) -> Result<(), String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    let object = doc
        .descendants()
        .find(|n| n.has_tag_name("Object"))
        .ok_or("no <Object>")?;
    let id: u16 = field(object, "ObjectID")?
        .parse()
        .map_err(|_| "bad ObjectID")?;
    if id != t.id {
        return Err(format!("object {id}, not {}", t.id));
    }
    let version = t
        .version
        .unwrap_or_else(|| match field(object, "ObjectVersion") {
            Ok(v) if !v.is_empty() => v,
            _ => "1.0",
        });
    writeln!(
        code,
        "/// {} (object {id}, version {version}), from the OMA registry.",
        field(object, "Name")?
    )
    .unwrap();
    writeln!(code, "pub static {}: ObjectDef = ObjectDef {{", t.name).unwrap();
    writeln!(code, "    id: {id},").unwrap();
    writeln!(code, "    name: {:?},", field(object, "Name")?).unwrap();
    writeln!(code, "    version: {version:?},").unwrap();
    writeln!(
        code,
        "    multiple: {},",
        field(object, "MultipleInstances")? == "Multiple"
    )
    .unwrap();
    writeln!(
        code,
        "    mandatory: {},",
        field(object, "Mandatory")? == "Mandatory"
    )
    .unwrap();
    writeln!(code, "    resources: &[").unwrap();
    let resources = object
        .children()
        .find(|n| n.has_tag_name("Resources"))
        .ok_or("no <Resources>")?;
    for item in resources.children().filter(|n| n.has_tag_name("Item")) {
        let rid: u16 = item
            .attribute("ID")
            .and_then(|i| i.trim().parse().ok())
            .ok_or("an <Item> without a numeric ID")?;
        if t.left_out.contains(&rid) {
            continue;
        }
        let operations = match field(item, "Operations")? {
            "" | "NONE" | "None" => "None",
            ops @ ("R" | "W" | "RW" | "E") => ops,
            other => return Err(format!("resource {rid}: operations {other:?}")),
        };
        let ty = match field(item, "Type")? {
            "Integer" => "Integer",
            "Unsigned Integer" => "Unsigned",
            "Float" => "Float",
            "Boolean" => "Boolean",
            "String" => "String",
            "Opaque" => "Opaque",
            "Time" => "Time",
            "Objlnk" => "ObjLnk",
            "Corelnk" => "CoreLnk",
            "" if operations == "E" => "None",
            other => return Err(format!("resource {rid}: type {other:?}")),
        };
        writeln!(code, "        ResourceDef {{").unwrap();
        writeln!(code, "            id: {rid},").unwrap();
        writeln!(code, "            name: {:?},", field(item, "Name")?).unwrap();
        writeln!(code, "            operations: Operations::{operations},").unwrap();
        writeln!(
            code,
            "            multiple: {},",
            field(item, "MultipleInstances")? == "Multiple"
        )
        .unwrap();
        writeln!(
            code,
            "            mandatory: {},",
            field(item, "Mandatory")? == "Mandatory"
        )
        .unwrap();
        writeln!(code, "            ty: ResourceType::{ty},").unwrap();
        writeln!(
            code,
            "            range: {:?},",
            optional(item, "RangeEnumeration")
        )
        .unwrap();
        writeln!(code, "            units: {:?},", optional(item, "Units")).unwrap();
        writeln!(code, "        }},").unwrap();
    }
    writeln!(code, "    ],\n}};\n").unwrap();
    Ok(())
}

/// A child element's text, trimmed (empty for an empty element).
fn field<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Result<&'a str, String> {
    node.children()
        .find(|n| n.has_tag_name(name))
        .map(|n| n.text().map_or("", str::trim))
        .ok_or_else(|| format!("<{}> has no <{name}>", node.tag_name().name()))
}

fn optional<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> &'a str {
    field(node, name).unwrap_or("")
}
