//! Resources of loaded objects bound to the machine by configuration (`[[resource]]`):
//! a file, a command, a constant or a local application (`app`). Most values of a Linux gateway already exist
//! somewhere, so exposing one takes a table in the configuration, not code.

pub mod reading;
mod task;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::codec::text;
use crate::config::{Config, ConfigError, ResourceConfig};
use crate::model::ddf;
use crate::model::{Object, ObjectDef, Operations, ResourceDef};
use crate::objects::custom::{BoundKind, Custom};
use crate::path::Path;
use crate::state::StateDir;
use crate::value::{ResourceType, Value};

pub use task::Bindings;

/// How often a file or command is read when the table sets no `interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// How fast observers may make a file or command be read when the table sets no
/// `min_interval`.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(1);
/// How long a command may run when the table sets no `timeout`. Shorter than a
/// server's MAX_TRANSMIT_SPAN (45 s by default), so a Write's answer still reaches it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a file or a command's stdout may hold.
pub const MAX_READING: usize = 64 * 1024;

/// Where a bound value lives.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    File(PathBuf),
    /// The argv prefix: values and Execute arguments are appended.
    Command {
        argv: Vec<String>,
        timeout: Duration,
    },
}

/// A file or command binding, resolved against its resource's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub path: Path,
    pub ty: ResourceType,
    /// Read on a schedule only when the server may read it.
    pub readable: bool,
    pub source: Source,
    pub scale: Option<f64>,
    pub offset: Option<f64>,
    pub interval: Duration,
    /// The floor observers may bring the interval down to.
    pub min_interval: Duration,
}

impl Binding {
    /// The time between two readings: `interval`, or faster while an observer wants
    /// changes sooner (`observed_pmin`), but never below `min_interval`.
    pub fn period(&self, observed_pmin: Option<Duration>) -> Duration {
        match observed_pmin {
            Some(pmin) => pmin.max(self.min_interval).min(self.interval),
            None => self.interval,
        }
    }
}

/// The loaded objects and what feeds them.
pub struct Setup {
    pub objects: Vec<Box<dyn Object>>,
    pub bindings: Vec<Binding>,
    pub constants: Vec<(Path, Value)>,
    pub apps: AppOwned,
}

/// What local applications own (`app = true`), for the bus interface.
#[derive(Debug, Clone, Default)]
pub struct AppOwned {
    /// Single resources, with how long the application has to answer a server.
    pub resources: BTreeMap<Path, (&'static ResourceDef, Duration)>,
    /// Whole objects, whose instances the application creates and deletes.
    pub objects: BTreeMap<u16, (&'static ObjectDef, Duration)>,
}

impl AppOwned {
    /// The definition of an app-owned resource and the answer timeout; `None` when no
    /// application owns it.
    pub fn resource(&self, path: &Path) -> Option<(&'static ResourceDef, Duration)> {
        if let Some(found) = self.resources.get(path) {
            return Some(*found);
        }
        let (o, _, r) = (path.object_id()?, path.instance_id()?, path.resource_id()?);
        let (def, timeout) = self.objects.get(&o)?;
        Some((def.resource(r)?, *timeout))
    }

    /// Whether an application owns the whole object (and so its instances).
    pub fn owns_object(&self, object: u16) -> bool {
        self.objects.contains_key(&object)
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.objects.is_empty()
    }
}

/// Loads the object definitions from `config.object_dirs()` and resolves the
/// `[[resource]]` tables against them. `reserved` are the objects lwm2md implements
/// itself (ID, name): a file may not redefine them.
pub fn setup(config: &Config, reserved: &[(u16, &str)]) -> Result<Setup, ConfigError> {
    let loaded = ddf::load_dirs(&config.object_dirs(), reserved).map_err(|e| ConfigError {
        file: e.file,
        position: e.position.map(|(l, c)| (l as usize, c as usize)),
        message: e.message,
    })?;
    let defs: Vec<&'static ObjectDef> = loaded
        .into_iter()
        .map(|l| {
            tracing::info!(
                object = l.def.id,
                version = %l.def.version,
                file = %l.file.display(),
                "object definition loaded"
            );
            l.def.leak()
        })
        .collect();
    let mut bound: BTreeMap<u16, BTreeMap<(u16, u16), BoundKind>> = BTreeMap::new();
    let mut bindings = Vec::new();
    let mut constants = Vec::new();
    let mut apps = AppOwned::default();
    let app_timeout = |r: &ResourceConfig| {
        r.timeout
            .map_or(DEFAULT_TIMEOUT, |t| Duration::from_secs(t.into()))
    };
    // Whole objects first, so that a table binding one of their resources is refused
    // wherever it stands.
    for r in config.resources.iter().filter(|r| r.app) {
        let fail = |m: String| r.error(&config.source, m);
        let path: Path = r.path.get_ref().parse().map_err(|e| fail(format!("{e}")))?;
        let (Some(o), None) = (path.object_id(), path.instance_id()) else {
            continue;
        };
        let def = defs.iter().find(|d| d.id == o).ok_or_else(|| {
            fail(format!(
                "no definition of object {o} to hand to an application"
            ))
        })?;
        apps.objects.insert(o, (*def, app_timeout(r)));
    }
    for r in &config.resources {
        let fail = |m: String| r.error(&config.source, m);
        let path: Path = r.path.get_ref().parse().map_err(|e| fail(format!("{e}")))?;
        if path.instance_id().is_none() {
            continue;
        }
        if let Some(o) = path.object_id().filter(|o| apps.owns_object(*o)) {
            return Err(fail(format!(
                "object {o} belongs to an application as a whole (app = true on /{o})"
            )));
        }
        let (Some(o), Some(i), Some(rid)) =
            (path.object_id(), path.instance_id(), path.resource_id())
        else {
            return Err(fail("path must name a resource".into()));
        };
        let Some(def) = defs.iter().find(|d| d.id == o) else {
            let why = if reserved.iter().any(|(id, _)| *id == o) {
                format!("object {o} is built in; only objects defined by XML files can be bound")
            } else {
                let dirs: Vec<String> = config
                    .object_dirs()
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                format!("no definition of object {o} in {}", dirs.join(", "))
            };
            return Err(fail(why));
        };
        let rdef = def
            .resource(rid)
            .ok_or_else(|| fail(format!("object {o} ({}) has no resource {rid}", def.name)))?;
        if !def.multiple && i != 0 {
            return Err(fail(format!(
                "object {o} ({}) has a single instance, 0",
                def.name
            )));
        }
        if rdef.multiple {
            return Err(fail(format!(
                "resource {rid} ({}) has multiple instances, which cannot be bound",
                rdef.name
            )));
        }
        let entry = bound.entry(o).or_default();
        if r.app {
            entry.insert((i, rid), BoundKind::App);
            apps.resources.insert(path, (rdef, app_timeout(r)));
            continue;
        }
        let kind = resolve(r, rdef, path).map_err(fail)?;
        match kind {
            Resolved::Constant(v) => {
                entry.insert((i, rid), BoundKind::Constant);
                constants.push((path, v));
            }
            Resolved::Backend(b) => {
                entry.insert((i, rid), BoundKind::Backend);
                bindings.push(b);
            }
        }
    }
    let state = StateDir::new(&config.state_dir);
    let objects = defs
        .into_iter()
        .map(|def| {
            if apps.owns_object(def.id) {
                return Box::new(Custom::app_owned(def, Some(state.clone()))) as Box<dyn Object>;
            }
            let b = bound.remove(&def.id).unwrap_or_default();
            Box::new(Custom::new(def, b, Some(state.clone()))) as Box<dyn Object>
        })
        .collect();
    Ok(Setup {
        objects,
        bindings,
        constants,
        apps,
    })
}

enum Resolved {
    Constant(Value),
    Backend(Binding),
}

fn resolve(r: &ResourceConfig, rdef: &ResourceDef, path: Path) -> Result<Resolved, String> {
    let executable = rdef.operations == Operations::E;
    if (r.scale.is_some() || r.offset.is_some()) && !reading::scalable(rdef.ty) {
        return Err(format!(
            "scale and offset need a numeric resource; {} is {:?}",
            rdef.name, rdef.ty
        ));
    }
    if let Some(v) = &r.value {
        if executable {
            return Err(format!("{} is executable: bind it to a command", rdef.name));
        }
        return constant(v, rdef.ty).map(Resolved::Constant);
    }
    let source = match (&r.file, &r.command) {
        (Some(file), _) => {
            if executable {
                return Err(format!("{} is executable: bind it to a command", rdef.name));
            }
            Source::File(file.clone())
        }
        (None, Some(command)) => {
            let argv = if r.shell {
                // $0 names the script in messages; values and arguments arrive as $1.
                vec![
                    "/bin/sh".to_string(),
                    "-c".to_string(),
                    command.first().cloned().unwrap_or_default(),
                    "lwm2md".to_string(),
                ]
            } else {
                command.clone()
            };
            Source::Command {
                argv,
                timeout: r
                    .timeout
                    .map_or(DEFAULT_TIMEOUT, |t| Duration::from_secs(t.into())),
            }
        }
        (None, None) => return Err("needs exactly one of file, command, value, app".into()),
    };
    Ok(Resolved::Backend(Binding {
        path,
        ty: rdef.ty,
        readable: rdef.operations.readable(),
        source,
        scale: r.scale,
        offset: r.offset,
        interval: r
            .interval
            .map_or(DEFAULT_INTERVAL, |s| Duration::from_secs(s.into())),
        min_interval: r
            .min_interval
            .map_or(DEFAULT_MIN_INTERVAL, |s| Duration::from_secs(s.into())),
    }))
}

/// A TOML value as a value of the resource's type.
fn constant(v: &toml::Value, ty: ResourceType) -> Result<Value, String> {
    let text = match v {
        toml::Value::String(s) if ty == ResourceType::Opaque => {
            return Ok(Value::Opaque(s.as_bytes().to_vec()))
        }
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(b) => if *b { "1" } else { "0" }.to_string(),
        other => return Err(format!("value {other} is not a string, number or boolean")),
    };
    text::parse_value(&text, ty).ok_or_else(|| format!("value {v} is not a {ty:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<LWM2M><Object ObjectType="MODefinition">
      <Name>Box</Name><ObjectID>33002</ObjectID>
      <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
      <Resources>
        <Item ID="0"><Name>Temp</Name><Operations>R</Operations><MultipleInstances>Single</MultipleInstances>
          <Mandatory>Optional</Mandatory><Type>Float</Type></Item>
        <Item ID="1"><Name>Mode</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>
          <Mandatory>Optional</Mandatory><Type>String</Type></Item>
        <Item ID="2"><Name>Go</Name><Operations>E</Operations><MultipleInstances>Single</MultipleInstances>
          <Mandatory>Optional</Mandatory><Type></Type></Item>
        <Item ID="3"><Name>List</Name><Operations>R</Operations><MultipleInstances>Multiple</MultipleInstances>
          <Mandatory>Optional</Mandatory><Type>Integer</Type></Item>
        <Item ID="4"><Name>Owner</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>
          <Mandatory>Optional</Mandatory><Type>String</Type></Item>
      </Resources></Object></LWM2M>"#;

    fn config(dir: &std::path::Path, tables: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "object_dirs = [\"{}\"]\nstate_dir = \"{}\"\n[[server]]\nuri = \"coap://h\"\n{tables}",
            dir.display(),
            dir.join("state").display()
        );
        Config::parse(std::path::Path::new("/etc/lwm2md/lwm2md.toml"), &text)
    }

    #[test]
    fn tables_resolve_against_the_definitions() {
        let dir = std::env::temp_dir().join(format!("lwm2md-binding-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("box.xml"), XML).unwrap();
        let c = config(
            &dir,
            "[[resource]]\npath = \"/33002/0/0\"\nfile = \"/sys/t\"\nscale = 0.001\ninterval = 2\n\
             [[resource]]\npath = \"/33002/0/1\"\nvalue = \"eco\"\n\
             [[resource]]\npath = \"/33002/0/2\"\ncommand = [\"reboot-modem $1\"]\nshell = true\ntimeout = 5\n\
             [[resource]]\npath = \"/33002/0/4\"\napp = true\ntimeout = 3\n",
        )
        .unwrap();
        let s = setup(&c, &[(3, "Device")]).unwrap();
        let (rdef, timeout) = s.apps.resource(&Path::resource(33002, 0, 4)).unwrap();
        assert_eq!((rdef.name, timeout), ("Owner", Duration::from_secs(3)));
        assert!(s.apps.resource(&Path::resource(33002, 0, 1)).is_none());
        assert!(!s.apps.owns_object(33002));
        assert_eq!(s.objects.len(), 1);
        assert_eq!(s.objects[0].instances(), [0]);
        assert_eq!(
            s.constants,
            [(Path::resource(33002, 0, 1), Value::String("eco".into()))]
        );
        assert_eq!(s.bindings[0].interval, Duration::from_secs(2));
        let b = &s.bindings[0];
        assert_eq!(b.period(None), Duration::from_secs(2));
        assert_eq!(b.period(Some(Duration::ZERO)), Duration::from_secs(1));
        assert_eq!(
            b.period(Some(Duration::from_millis(1500))),
            Duration::from_millis(1500)
        );
        assert_eq!(
            b.period(Some(Duration::from_secs(60))),
            Duration::from_secs(2)
        );
        assert!(s.bindings[0].readable);
        assert!(!s.bindings[1].readable);
        assert_eq!(
            s.bindings[1].source,
            Source::Command {
                argv: ["/bin/sh", "-c", "reboot-modem $1", "lwm2md"]
                    .map(String::from)
                    .to_vec(),
                timeout: Duration::from_secs(5)
            }
        );

        let cases = [
            (
                "path = \"/33003/0/0\"\nvalue = 1",
                "no definition of object 33003",
            ),
            ("path = \"/3/0/0\"\nvalue = 1", "built in"),
            ("path = \"/33002/0/9\"\nvalue = 1", "no resource 9"),
            ("path = \"/33002/1/0\"\nvalue = 1", "single instance"),
            ("path = \"/33002/0/3\"\nvalue = 1", "multiple instances"),
            ("path = \"/33002/0/2\"\nfile = \"/f\"", "executable"),
            ("path = \"/33002/0/0\"\nvalue = \"warm\"", "not a Float"),
            (
                "path = \"/33002/0/1\"\nfile = \"/f\"\nscale = 2.0",
                "numeric",
            ),
            (
                "path = \"/33002/0/1\"\nvalue = \"x\"\n[[resource]]\npath = \"/33002\"\napp = true",
                "belongs to an application",
            ),
        ];
        // A whole object for an application: every resource, no instance of its own.
        let c = config(
            &dir,
            "[[resource]]\npath = \"/33002\"\napp = true\ntimeout = 2\n",
        )
        .unwrap();
        let s = setup(&c, &[(3, "Device")]).unwrap();
        assert!(s.apps.owns_object(33002));
        let (rdef, timeout) = s.apps.resource(&Path::resource(33002, 0, 1)).unwrap();
        assert_eq!((rdef.name, timeout), ("Mode", Duration::from_secs(2)));
        assert!(s.apps.resource(&Path::resource(33002, 0, 9)).is_none());
        assert!(s.bindings.is_empty() && s.constants.is_empty());

        for (table, wanted) in cases {
            let c = config(&dir, &format!("\n[[resource]]\n{table}\n")).unwrap();
            let e = setup(&c, &[(3, "Device")]).err().unwrap().to_string();
            assert!(e.contains(wanted), "{table}: {e}");
            assert!(
                e.starts_with("/etc/lwm2md/lwm2md.toml:7:8: "),
                "{table}: {e}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_shipped_example_loads_with_its_commented_bindings() {
        let etc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/lwm2md");
        let shipped = std::fs::read_to_string(etc.join("lwm2md.toml")).unwrap();
        let start = shipped.find("# The shipped Gateway Health object").unwrap();
        let end = shipped.find("# A thermal zone").unwrap();
        let tables: String = shipped[start..end]
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| !l.starts_with(' ') && !l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        let dir = etc.join("objects");
        let text = format!(
            "object_dirs = [\"{}\"]\n[[server]]\nuri = \"coap://h\"\n{tables}",
            dir.display()
        );
        let c = Config::parse(std::path::Path::new("lwm2md.toml"), &text).unwrap();
        assert_eq!(c.resources.len(), 10);
        let s = setup(&c, &[(3, "Device")]).unwrap();
        assert_eq!(s.objects[0].def().id, 30001);
        assert_eq!(s.objects[0].def().version, "1.1");
        assert_eq!(s.constants.len(), 2);
        assert_eq!(s.bindings.len(), 8);
    }
}
