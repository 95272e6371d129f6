//! Objects defined by OMA XML files rather than by code. Without bindings they are plain
//! storage the server creates instances in and writes to (kept across restarts in the
//! state directory); a bound resource's value comes from its backend, and a server's
//! Write or Execute of it goes there (`Action::Bound`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::codec::text;
use crate::model::{Action, BoundOp, BoundRequest, DmError, Object, ObjectDef};
use crate::objects::store::Store;
use crate::path::Path;
use crate::state::StateDir;
use crate::value::{ResourceValue, Value};

/// How a bound resource answers a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundKind {
    /// A file or a command: Write and Execute go to the backend.
    Backend,
    /// A fixed value: the server may read it, never change it.
    Constant,
    /// Owned by a local application on the bus: Write and Execute go to it.
    App,
}

pub struct Custom {
    store: Store,
    bound: BTreeMap<(u16, u16), BoundKind>,
    /// The whole object belongs to a local application: every resource of every
    /// instance is `BoundKind::App`, and the application (not the server) creates and
    /// deletes instances.
    app_object: bool,
    state: Option<StateDir>,
}

/// The persisted form: instance -> resource -> value(s) in their plain-text spelling,
/// so that a changed definition is re-checked against the types on load.
type Persisted = BTreeMap<u16, BTreeMap<u16, Stored>>;

// Resource-instance IDs are kept as strings: serde cannot read integer map keys inside
// an untagged enum.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Stored {
    Single(String),
    Multiple(BTreeMap<String, String>),
}

impl Custom {
    /// `bound` lists the bound resources; their instances exist from the start. A
    /// single-instance object always has its instance 0. Values the server wrote before
    /// are restored from `state`.
    pub fn new(
        def: &'static ObjectDef,
        bound: BTreeMap<(u16, u16), BoundKind>,
        state: Option<StateDir>,
    ) -> Custom {
        Custom::build(def, bound, false, state)
    }

    /// An object owned by a local application. The instances it had are restored from
    /// `state`, without values: the application sets them again.
    pub fn app_owned(def: &'static ObjectDef, state: Option<StateDir>) -> Custom {
        Custom::build(def, BTreeMap::new(), true, state)
    }

    fn build(
        def: &'static ObjectDef,
        bound: BTreeMap<(u16, u16), BoundKind>,
        app_object: bool,
        state: Option<StateDir>,
    ) -> Custom {
        let mut c = Custom {
            store: Store::new(def),
            bound,
            app_object,
            state,
        };
        let instances: BTreeSet<u16> = c.bound.keys().map(|(i, _)| *i).collect();
        for i in instances {
            c.store.add_instance(i);
        }
        if !def.multiple {
            c.store.add_instance(0);
        }
        c.restore();
        c
    }

    fn state_name(&self) -> String {
        format!("object-{}.json", self.store.def().id)
    }

    fn restore(&mut self) {
        let Some(state) = &self.state else {
            return;
        };
        let name = self.state_name();
        let data = match state.read(&name) {
            Ok(Some(data)) => data,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("reading {}: {e}", state.path(&name).display());
                return;
            }
        };
        let persisted: Persisted = match serde_json::from_slice(&data) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("{}: {e}; starting empty", state.path(&name).display());
                return;
            }
        };
        let def = self.store.def();
        for (i, resources) in persisted {
            if !def.multiple && i != 0 {
                continue;
            }
            self.store.add_instance(i);
            for (r, stored) in resources {
                let Some(rdef) = def.resource(r) else {
                    continue;
                };
                if self.kind(i, r).is_some() {
                    continue;
                }
                let parse = |t: &str| text::parse_value(t, rdef.ty);
                let value = match (stored, rdef.multiple) {
                    (Stored::Single(t), false) => parse(&t).map(ResourceValue::Single),
                    (Stored::Multiple(m), true) => m
                        .into_iter()
                        .map(|(ri, t)| Some((ri.parse::<u16>().ok()?, parse(&t)?)))
                        .collect::<Option<BTreeMap<u16, Value>>>()
                        .map(ResourceValue::Multiple),
                    _ => None,
                };
                match value {
                    Some(v) => {
                        let _ = self.store.set(i, r, v);
                    }
                    None => tracing::warn!(
                        "{}: {} does not fit the definition any more; dropped",
                        state.path(&name).display(),
                        Path::resource(def.id, i, r)
                    ),
                }
            }
        }
    }

    /// Saves what the server wrote (bound values come back from their backends).
    fn persist(&self) {
        let Some(state) = &self.state else {
            return;
        };
        let mut out: Persisted = BTreeMap::new();
        for i in self.store.instance_ids() {
            let entry = out.entry(i).or_default();
            for rdef in self.store.def().resources {
                if self.kind(i, rdef.id).is_some() {
                    continue;
                }
                let stored = match self.store.get(i, rdef.id) {
                    Some(ResourceValue::Single(v)) => {
                        text::format_value(v).ok().map(Stored::Single)
                    }
                    Some(ResourceValue::Multiple(m)) => m
                        .iter()
                        .map(|(ri, v)| text::format_value(v).ok().map(|t| (ri.to_string(), t)))
                        .collect::<Option<BTreeMap<String, String>>>()
                        .map(Stored::Multiple),
                    None => None,
                };
                if let Some(s) = stored {
                    entry.insert(rdef.id, s);
                }
            }
        }
        let name = self.state_name();
        let result = serde_json::to_vec(&out)
            .map_err(std::io::Error::other)
            .and_then(|data| state.write(&name, &data));
        if let Err(e) = result {
            tracing::warn!("saving {}: {e}", state.path(&name).display());
        }
    }

    fn kind(&self, instance: u16, resource: u16) -> Option<BoundKind> {
        match self.app_object {
            true => Some(BoundKind::App),
            false => self.bound.get(&(instance, resource)).copied(),
        }
    }

    fn path(&self, instance: u16, resource: u16) -> Path {
        Path::resource(self.store.def().id, instance, resource)
    }
}

impl Object for Custom {
    crate::objects::store::reads_from_store!();

    fn has_resource(&self, instance: u16, resource: u16) -> bool {
        let executable = || {
            self.store
                .def()
                .resource(resource)
                .is_some_and(|r| r.operations.executable())
        };
        self.store.get(instance, resource).is_some()
            || (self.store.has_instance(instance)
                && match self.app_object {
                    // Values come and go with the application; what it executes stays.
                    true => executable(),
                    false => self.bound.contains_key(&(instance, resource)),
                })
    }

    fn write(
        &mut self,
        instance: u16,
        resource: u16,
        value: ResourceValue,
        by_server: bool,
    ) -> Result<Vec<Action>, DmError> {
        if !by_server {
            self.store.set(instance, resource, value)?;
            return Ok(Vec::new());
        }
        match (self.kind(instance, resource), value) {
            (None, value) => {
                self.store.set(instance, resource, value)?;
                self.persist();
                Ok(Vec::new())
            }
            (Some(BoundKind::Constant), _) => Err(DmError::MethodNotAllowed),
            (Some(BoundKind::Backend | BoundKind::App), ResourceValue::Single(v)) => {
                Ok(vec![Action::Bound(BoundRequest {
                    ticket: 0,
                    path: self.path(instance, resource),
                    op: BoundOp::Write(v),
                })])
            }
            (Some(BoundKind::Backend | BoundKind::App), ResourceValue::Multiple(_)) => Err(
                DmError::BadRequest("a bound resource takes a single value".into()),
            ),
        }
    }

    fn execute(
        &mut self,
        instance: u16,
        resource: u16,
        args: &str,
    ) -> Result<Vec<Action>, DmError> {
        if !self.store.has_instance(instance) {
            return Err(DmError::NotFound);
        }
        match self.kind(instance, resource) {
            Some(BoundKind::Backend | BoundKind::App) => Ok(vec![Action::Bound(BoundRequest {
                ticket: 0,
                path: self.path(instance, resource),
                op: BoundOp::Execute(args.to_string()),
            })]),
            // Nothing would happen: saying so beats a 2.04 for a no-op.
            _ => Err(DmError::MethodNotAllowed),
        }
    }

    fn create(&mut self, instance: u16) -> Result<(), DmError> {
        if !self.store.def().multiple || self.app_object {
            return Err(DmError::MethodNotAllowed);
        }
        self.store.add_instance(instance);
        self.persist();
        Ok(())
    }

    fn delete(&mut self, instance: u16) -> Result<(), DmError> {
        // Bindings name their instances: without it they would have nowhere to go.
        if self.app_object || self.bound.keys().any(|(i, _)| *i == instance) {
            return Err(DmError::MethodNotAllowed);
        }
        self.store.remove_instance(instance)?;
        self.persist();
        Ok(())
    }

    fn create_local(&mut self, instance: u16) -> Result<(), DmError> {
        if !self.app_object || !self.store.def().multiple {
            return Err(DmError::MethodNotAllowed);
        }
        if self.store.has_instance(instance) {
            return Err(DmError::BadRequest(format!(
                "{} exists",
                Path::instance(self.store.def().id, instance)
            )));
        }
        self.store.add_instance(instance);
        self.persist();
        Ok(())
    }

    fn delete_local(&mut self, instance: u16) -> Result<(), DmError> {
        if !self.app_object || !self.store.def().multiple {
            return Err(DmError::MethodNotAllowed);
        }
        self.store.remove_instance(instance)?;
        self.persist();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ddf;

    const XML: &str = r#"<LWM2M><Object ObjectType="MODefinition">
      <Name>Thing</Name><ObjectID>33001</ObjectID><ObjectVersion>1.1</ObjectVersion>
      <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>
      <Resources>
        <Item ID="0"><Name>Label</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>
          <Mandatory>Optional</Mandatory><Type>String</Type></Item>
        <Item ID="1"><Name>Tags</Name><Operations>RW</Operations><MultipleInstances>Multiple</MultipleInstances>
          <Mandatory>Optional</Mandatory><Type>Integer</Type></Item>
        <Item ID="2"><Name>Go</Name><Operations>E</Operations><MultipleInstances>Single</MultipleInstances>
          <Mandatory>Optional</Mandatory><Type></Type></Item>
        <Item ID="3"><Name>Level</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>
          <Mandatory>Optional</Mandatory><Type>Float</Type></Item>
      </Resources></Object></LWM2M>"#;

    fn def() -> &'static ObjectDef {
        ddf::parse(XML).unwrap().remove(0).leak()
    }

    fn scratch(tag: &str) -> StateDir {
        let dir = std::env::temp_dir().join(format!("lwm2md-custom-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        StateDir::new(dir)
    }

    fn single(v: Value) -> ResourceValue {
        ResourceValue::Single(v)
    }

    #[test]
    fn server_values_survive_a_restart() {
        let state = scratch("persist");
        let def = def();
        let mut c = Custom::new(def, BTreeMap::new(), Some(state.clone()));
        assert!(c.instances().is_empty());
        c.create(4).unwrap();
        c.write(4, 0, single(Value::String("hall\nway".into())), true)
            .unwrap();
        let tags =
            ResourceValue::Multiple([(0, Value::Integer(-3)), (7, Value::Integer(9))].into());
        c.write(4, 1, tags.clone(), true).unwrap();
        c.create(5).unwrap();
        assert_eq!(c.execute(4, 2, ""), Err(DmError::MethodNotAllowed));

        let again = Custom::new(def, BTreeMap::new(), Some(state.clone()));
        assert_eq!(again.instances(), [4, 5]);
        assert_eq!(
            again.read(4, 0),
            Some(single(Value::String("hall\nway".into())))
        );
        assert_eq!(again.read(4, 1), Some(tags));
        let mut again = again;
        again.delete(5).unwrap();
        assert_eq!(
            Custom::new(def, BTreeMap::new(), Some(state.clone())).instances(),
            [4]
        );

        // A damaged state file costs the values, not the start.
        state.write("object-33001.json", b"{\"4\": [").unwrap();
        assert!(Custom::new(def, BTreeMap::new(), Some(state.clone()))
            .instances()
            .is_empty());
        std::fs::remove_dir_all(state.root()).unwrap();
    }

    #[test]
    fn bound_resources_hand_writes_and_executes_over() {
        let def = def();
        let bound = [
            ((0, 2), BoundKind::Backend),
            ((0, 3), BoundKind::Backend),
            ((0, 0), BoundKind::Constant),
        ]
        .into();
        let mut c = Custom::new(def, bound, None);
        assert_eq!(c.instances(), [0]);
        // The device side fills bound values in.
        c.write(0, 0, single(Value::String("fixed".into())), false)
            .unwrap();
        c.write(0, 3, single(Value::Float(1.5)), false).unwrap();
        assert_eq!(c.read(0, 3), Some(single(Value::Float(1.5))));
        assert!(c.has_resource(0, 2));

        let actions = c.write(0, 3, single(Value::Float(2.5)), true).unwrap();
        assert_eq!(
            actions,
            [Action::Bound(BoundRequest {
                ticket: 0,
                path: Path::resource(33001, 0, 3),
                op: BoundOp::Write(Value::Float(2.5)),
            })]
        );
        // The cached value changes when the backend reports it, not before.
        assert_eq!(c.read(0, 3), Some(single(Value::Float(1.5))));
        let actions = c.execute(0, 2, "1='x'").unwrap();
        assert!(
            matches!(&actions[..], [Action::Bound(BoundRequest { op: BoundOp::Execute(a), .. })] if a == "1='x'")
        );
        assert_eq!(
            c.write(0, 0, single(Value::String("other".into())), true),
            Err(DmError::MethodNotAllowed)
        );
        assert_eq!(c.delete(0), Err(DmError::MethodNotAllowed));
        assert_eq!(c.execute(1, 2, ""), Err(DmError::NotFound));
    }

    #[test]
    fn an_app_owned_object_is_the_applications_to_shape() {
        let state = scratch("app");
        let def = def();
        let mut c = Custom::app_owned(def, Some(state.clone()));
        assert!(c.instances().is_empty());
        // The server may neither create nor delete: the application does.
        assert_eq!(c.create(1), Err(DmError::MethodNotAllowed));
        c.create_local(1).unwrap();
        assert!(matches!(c.create_local(1), Err(DmError::BadRequest(_))));
        c.write(1, 0, single(Value::String("from app".into())), false)
            .unwrap();
        assert!(c.has_resource(1, 2));
        assert!(!c.has_resource(1, 3));
        let actions = c.write(1, 3, single(Value::Float(2.0)), true).unwrap();
        assert!(matches!(
            &actions[..],
            [Action::Bound(BoundRequest {
                op: BoundOp::Write(Value::Float(_)),
                ..
            })]
        ));
        assert!(matches!(
            &c.execute(1, 2, "").unwrap()[..],
            [Action::Bound(_)]
        ));
        assert_eq!(c.delete(1), Err(DmError::MethodNotAllowed));

        // The instance list survives a restart; the values are the application's to set.
        let mut again = Custom::app_owned(def, Some(state.clone()));
        assert_eq!(again.instances(), [1]);
        assert_eq!(again.read(1, 0), None);
        again.delete_local(1).unwrap();
        assert_eq!(again.delete_local(1), Err(DmError::NotFound));
        assert!(Custom::app_owned(def, Some(state.clone()))
            .instances()
            .is_empty());
        // Objects without an application keep refusing local shaping.
        assert_eq!(
            Custom::new(def, BTreeMap::new(), None).create_local(2),
            Err(DmError::MethodNotAllowed)
        );
        std::fs::remove_dir_all(state.root()).unwrap();
    }
}
