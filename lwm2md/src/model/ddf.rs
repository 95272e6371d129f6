//! OMA object definitions (DDF) as the registry publishes them: XML following the
//! LWM2M.xsd / LWM2M-v1_1.xsd schemas. The integrator's own objects are loaded from
//! these files at start, so exposing a new object takes a file, not code.

use std::fmt;
use std::path::{Path as FsPath, PathBuf};

use roxmltree::{Document, Node, ParsingOptions};

use super::{ObjectDef, Operations, ResourceDef};
use crate::path::MAX_ID;
use crate::value::ResourceType;

/// Largest definition file read: the registry's biggest objects are under 100 KiB.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;
/// Bounds the DOM of a hostile file well below what `MAX_FILE_SIZE` could otherwise build.
const MAX_NODES: u32 = 100_000;

/// An object definition as parsed, owning its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub id: u16,
    pub name: String,
    /// `ObjectVersion`, "1.0" when the file has none.
    pub version: String,
    pub multiple: bool,
    pub mandatory: bool,
    pub resources: Vec<ResourceDefinition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDefinition {
    pub id: u16,
    pub name: String,
    pub operations: Operations,
    pub multiple: bool,
    pub mandatory: bool,
    pub ty: ResourceType,
    pub range: String,
    pub units: String,
}

impl Definition {
    /// Turns the definition into the `&'static` tables the engine works with. Called
    /// once per definition at start: the daemon keeps every object for its whole life,
    /// so the memory would never be given back anyway, and the engine and codecs keep
    /// their borrow-free `&'static ObjectDef` everywhere.
    pub fn leak(self) -> &'static ObjectDef {
        let resources: Vec<ResourceDef> = self
            .resources
            .into_iter()
            .map(|r| ResourceDef {
                id: r.id,
                name: leak_str(r.name),
                operations: r.operations,
                multiple: r.multiple,
                mandatory: r.mandatory,
                ty: r.ty,
                range: leak_str(r.range),
                units: leak_str(r.units),
            })
            .collect();
        Box::leak(Box::new(ObjectDef {
            id: self.id,
            name: leak_str(self.name),
            version: leak_str(self.version),
            multiple: self.multiple,
            mandatory: self.mandatory,
            resources: Box::leak(resources.into_boxed_slice()),
        }))
    }
}

fn leak_str(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Why a definition file was refused. Positions are 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DdfError {
    /// Not well-formed XML (or a DTD, which is refused).
    Xml {
        line: u32,
        column: u32,
        message: String,
    },
    /// Well-formed, but not an object definition of the LWM2M schema.
    Schema {
        line: u32,
        column: u32,
        message: String,
    },
}

impl DdfError {
    pub fn position(&self) -> (u32, u32) {
        match self {
            DdfError::Xml { line, column, .. } | DdfError::Schema { line, column, .. } => {
                (*line, *column)
            }
        }
    }

    pub fn message(&self) -> &str {
        match self {
            DdfError::Xml { message, .. } | DdfError::Schema { message, .. } => message,
        }
    }
}

impl fmt::Display for DdfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, column) = self.position();
        match self {
            DdfError::Xml { message, .. } => write!(f, "{line}:{column}: malformed XML: {message}"),
            DdfError::Schema { message, .. } => write!(f, "{line}:{column}: {message}"),
        }
    }
}

impl std::error::Error for DdfError {}

/// Parses the object definitions of one file (the schema allows several per file).
pub fn parse(text: &str) -> Result<Vec<Definition>, DdfError> {
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options).map_err(|e| {
        let pos = e.pos();
        DdfError::Xml {
            line: pos.row,
            column: pos.col,
            message: e.to_string(),
        }
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "LWM2M" {
        return Err(schema(
            root,
            format!(
                "the root element is <{}>, not <LWM2M>",
                root.tag_name().name()
            ),
        ));
    }
    let mut out: Vec<Definition> = Vec::new();
    for object in elements(root) {
        if object.tag_name().name() != "Object" {
            return Err(schema(
                object,
                format!("unexpected <{}> in <LWM2M>", object.tag_name().name()),
            ));
        }
        let def = parse_object(object)?;
        if out.iter().any(|d| d.id == def.id) {
            return Err(schema(
                object,
                format!("object {} is defined twice in this file", def.id),
            ));
        }
        out.push(def);
    }
    if out.is_empty() {
        return Err(schema(root, "no <Object> in <LWM2M>".into()));
    }
    Ok(out)
}

/// Reads and parses one file; errors carry the file name.
pub fn load_file(file: &FsPath) -> Result<Vec<Definition>, LoadError> {
    let fail = |message: String| LoadError {
        file: file.to_path_buf(),
        position: None,
        message,
    };
    let meta = std::fs::metadata(file).map_err(|e| fail(format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_SIZE {
        return Err(fail(format!(
            "larger than {MAX_FILE_SIZE} bytes: not an object definition"
        )));
    }
    let bytes = std::fs::read(file).map_err(|e| fail(format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "not UTF-8 (byte {}): malformed XML",
            e.utf8_error().valid_up_to()
        ))
    })?;
    parse(&text).map_err(|e| LoadError {
        file: file.to_path_buf(),
        position: Some(e.position()),
        message: match &e {
            DdfError::Xml { message, .. } => format!("malformed XML: {message}"),
            DdfError::Schema { message, .. } => message.clone(),
        },
    })
}

/// A definition file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: PathBuf,
    pub position: Option<(u32, u32)>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(
                f,
                "{}:{line}:{column}: {}",
                self.file.display(),
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// A loaded definition and the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub file: PathBuf,
    pub def: Definition,
}

/// Loads every `*.xml` file of the directories, in order, each directory's files sorted
/// by name. A missing directory is skipped (neither default needs to exist); the same
/// object ID in two files, or an ID in `reserved` (objects lwm2md implements itself, with
/// their names), is an error naming both.
pub fn load_dirs(dirs: &[PathBuf], reserved: &[(u16, &str)]) -> Result<Vec<Loaded>, LoadError> {
    let mut out: Vec<Loaded> = Vec::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(LoadError {
                    file: dir.clone(),
                    position: None,
                    message: format!("cannot list object definitions: {e}"),
                })
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "xml") && p.is_file())
            .collect();
        files.sort();
        for file in files {
            for def in load_file(&file)? {
                let conflict = |message: String| LoadError {
                    file: file.clone(),
                    position: None,
                    message,
                };
                if let Some((_, name)) = reserved.iter().find(|(id, _)| *id == def.id) {
                    return Err(conflict(format!(
                        "object {} ({}) conflicts with the built-in object {} ({name})",
                        def.id, def.name, def.id
                    )));
                }
                if let Some(other) = out.iter().find(|l| l.def.id == def.id) {
                    return Err(conflict(format!(
                        "object {} ({}) is already defined in {}",
                        def.id,
                        def.name,
                        other.file.display()
                    )));
                }
                out.push(Loaded {
                    file: file.clone(),
                    def,
                });
            }
        }
    }
    Ok(out)
}

fn parse_object(object: Node<'_, '_>) -> Result<Definition, DdfError> {
    let id = id_of(child(object, "ObjectID")?, "ObjectID")?;
    let name = text(child(object, "Name")?).to_string();
    let version = match optional_child(object, "ObjectVersion") {
        Some(v) if !text(v).is_empty() => {
            let t = text(v);
            if !is_version(t) {
                return Err(schema(
                    v,
                    format!("ObjectVersion {t:?} is not of the form major.minor"),
                ));
            }
            t.to_string()
        }
        _ => "1.0".to_string(),
    };
    let multiple = multiplicity(child(object, "MultipleInstances")?)?;
    let mandatory = mandatory(child(object, "Mandatory")?)?;
    let mut resources: Vec<ResourceDefinition> = Vec::new();
    if let Some(list) = optional_child(object, "Resources") {
        for item in elements(list) {
            if item.tag_name().name() != "Item" {
                return Err(schema(
                    item,
                    format!("unexpected <{}> in <Resources>", item.tag_name().name()),
                ));
            }
            let r = parse_resource(item)?;
            if resources.iter().any(|x| x.id == r.id) {
                return Err(schema(
                    item,
                    format!("resource {} is defined twice in object {id}", r.id),
                ));
            }
            resources.push(r);
        }
    }
    resources.sort_by_key(|r| r.id);
    Ok(Definition {
        id,
        name,
        version,
        multiple,
        mandatory,
        resources,
    })
}

fn parse_resource(item: Node<'_, '_>) -> Result<ResourceDefinition, DdfError> {
    let id_text = item
        .attribute("ID")
        .ok_or_else(|| schema(item, "<Item> without an ID attribute".into()))?;
    let id = parse_id(id_text).ok_or_else(|| {
        schema(
            item,
            format!("resource ID {id_text:?} is not a number in 0..={MAX_ID}"),
        )
    })?;
    let ops_node = child(item, "Operations")?;
    let operations = match text(ops_node) {
        "" | "NONE" | "None" => Operations::None,
        "R" => Operations::R,
        "W" => Operations::W,
        "RW" => Operations::RW,
        "E" => Operations::E,
        other => {
            return Err(schema(
                ops_node,
                format!("resource {id}: operations {other:?} are not R, W, RW, E or empty"),
            ))
        }
    };
    let type_node = child(item, "Type")?;
    let ty = match text(type_node) {
        "Integer" => ResourceType::Integer,
        "Unsigned Integer" => ResourceType::Unsigned,
        "Float" => ResourceType::Float,
        "Boolean" => ResourceType::Boolean,
        "String" => ResourceType::String,
        "Opaque" => ResourceType::Opaque,
        "Time" => ResourceType::Time,
        "Objlnk" => ResourceType::ObjLnk,
        "Corelnk" => ResourceType::CoreLnk,
        "" if operations == Operations::E => ResourceType::None,
        "" => {
            return Err(schema(
                type_node,
                format!("resource {id}: only executable resources may have no type"),
            ))
        }
        other => {
            return Err(schema(
                type_node,
                format!("resource {id}: unknown type {other:?}"),
            ))
        }
    };
    if operations == Operations::E && ty != ResourceType::None {
        return Err(schema(
            type_node,
            format!("resource {id}: an executable resource has no type"),
        ));
    }
    Ok(ResourceDefinition {
        id,
        name: text(child(item, "Name")?).to_string(),
        operations,
        multiple: multiplicity(child(item, "MultipleInstances")?)?,
        mandatory: mandatory(child(item, "Mandatory")?)?,
        ty,
        range: optional_child(item, "RangeEnumeration")
            .map(|n| text(n).to_string())
            .unwrap_or_default(),
        units: optional_child(item, "Units")
            .map(|n| text(n).to_string())
            .unwrap_or_default(),
    })
}

fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(Node::is_element)
}

fn optional_child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    elements(node).find(|n| n.tag_name().name() == name)
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Result<Node<'a, 'i>, DdfError> {
    optional_child(node, name).ok_or_else(|| {
        schema(
            node,
            format!("<{}> has no <{name}>", node.tag_name().name()),
        )
    })
}

/// An element's text, trimmed; empty for an empty element.
fn text<'a>(node: Node<'a, '_>) -> &'a str {
    node.text().map_or("", str::trim)
}

fn id_of(node: Node<'_, '_>, what: &str) -> Result<u16, DdfError> {
    let t = text(node);
    parse_id(t).ok_or_else(|| {
        schema(
            node,
            format!("{what} {t:?} is not a number in 0..={MAX_ID}"),
        )
    })
}

fn parse_id(t: &str) -> Option<u16> {
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<u16>().ok().filter(|id| *id <= MAX_ID)
}

fn multiplicity(node: Node<'_, '_>) -> Result<bool, DdfError> {
    match text(node) {
        "Multiple" => Ok(true),
        "Single" => Ok(false),
        other => Err(schema(
            node,
            format!("MultipleInstances {other:?} is not Multiple or Single"),
        )),
    }
}

fn mandatory(node: Node<'_, '_>) -> Result<bool, DdfError> {
    match text(node) {
        "Mandatory" => Ok(true),
        "Optional" => Ok(false),
        other => Err(schema(
            node,
            format!("Mandatory {other:?} is not Mandatory or Optional"),
        )),
    }
}

fn is_version(t: &str) -> bool {
    match t.split_once('.') {
        Some((major, minor)) => [major, minor]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

fn schema(node: Node<'_, '_>, message: String) -> DdfError {
    let pos = node.document().text_pos_at(node.range().start);
    DdfError::Schema {
        line: pos.row,
        column: pos.col,
        message,
    }
}

#[cfg(test)]
mod tests;
