//! Access control (Core TS §7.3.3): with several server accounts, each DM operation on an
//! object instance needs the right its Access Control instance (object 2) grants the
//! requesting server; Create needs the object-level instance's Create bit. A single
//! server, or no Access Control instance at all, means no checks.

use coap_lite::RequestType;

use super::bootstrap::resource_type;
use super::dm::{DmRequest, Objects};
use super::Engine;
use crate::codec::{self, ContentFormat};
use crate::model::Object;
use crate::objects::access_control::{self as ac, CREATE, DELETE, EXECUTE, READ, WRITE};
use crate::path::Path;
use crate::value::{ResourceValue, Value};

const ACCESS_CONTROL: u16 = 2;

/// Whether ACLs apply: more than one Server instance and some Access Control instance.
fn enforced(objects: &Objects) -> bool {
    let servers = objects.get(&1).map_or(0, |o| o.instances().len());
    let acls = objects
        .get(&ACCESS_CONTROL)
        .map_or(0, |o| o.instances().len());
    servers > 1 && acls > 0
}

/// Whether `ssid` holds `right` on `path` (an object, instance or deeper).
fn allowed(objects: &Objects, ssid: u16, path: &Path, right: u8) -> bool {
    let Some(o) = path.object_id() else {
        return false;
    };
    let Some(acl) = objects.get(&ACCESS_CONTROL) else {
        return true;
    };
    match o {
        // Security is closed anyway; each server manages its own Server instance.
        0 | 1 => true,
        ACCESS_CONTROL => match (right, path.instance_id()) {
            (READ, _) => true,
            // Only the owner of an Access Control instance may change it.
            (WRITE, Some(i)) => owner(acl.as_ref(), i) == Some(ssid),
            _ => false,
        },
        _ => {
            let instances = match path.instance_id() {
                Some(i) => vec![i],
                None if right == CREATE => vec![ac::OBJECT_LEVEL],
                None => objects
                    .get(&o)
                    .map(|obj| obj.instances())
                    .unwrap_or_default(),
            };
            instances.into_iter().all(|i| {
                ac::find(acl.as_ref(), o, i)
                    .is_some_and(|inst| ac::rights(acl.as_ref(), inst, ssid) & right != 0)
            })
        }
    }
}

fn owner(acl: &dyn Object, instance: u16) -> Option<u16> {
    match acl.read(instance, ac::OWNER)? {
        ResourceValue::Single(Value::Integer(n)) => u16::try_from(n).ok(),
        _ => None,
    }
}

/// The right an operation needs, and the paths it needs it on.
fn needed(objects: &Objects, req: &DmRequest<'_>) -> Vec<(Path, u8)> {
    let path = req.path;
    match req.method {
        RequestType::Get => vec![(path, READ)],
        RequestType::Put if req.content_format.is_none() && req.payload.is_empty() => {
            vec![(path, READ)]
        }
        RequestType::Put => vec![(path, WRITE)],
        RequestType::Post => match path.len() {
            1 => vec![(path, CREATE)],
            3 if objects
                .get(&path.object_id().unwrap_or_default())
                .and_then(|o| o.def().resource(path.resource_id()?))
                .is_some_and(|r| r.operations.executable()) =>
            {
                vec![(path, EXECUTE)]
            }
            _ => vec![(path, WRITE)],
        },
        RequestType::Delete => vec![(path, DELETE)],
        RequestType::Fetch | RequestType::IPatch => {
            let format = req.content_format.and_then(ContentFormat::from_code);
            let (paths, right) = match (req.method, format) {
                (RequestType::Fetch, Some(f)) => (
                    codec::composite::decode_paths(f, req.payload).unwrap_or_default(),
                    READ,
                ),
                (_, Some(f)) => {
                    let ty = |p: &Path| resource_type(objects, p);
                    let records =
                        codec::decode(f, &Path::ROOT, req.payload, &ty).unwrap_or_default();
                    (records.into_iter().map(|r| r.path).collect(), WRITE)
                }
                (_, None) => (Vec::new(), READ),
            };
            paths.into_iter().map(|p| (p, right)).collect()
        }
        _ => vec![(path, READ)],
    }
}

/// The Access Control of a factory bootstrap with several server accounts (Core TS
/// §7.3: with more than one server every object instance needs an Access Control
/// instance): the first server owns the instances, and every configured server holds
/// Read, Write, Execute and Delete on them and Create on each multiple-instance object.
/// The owner may narrow the others' rights by writing the ACLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactoryAcl {
    pub owner: u16,
    pub servers: Vec<u16>,
}

const INSTANCE_RIGHTS: u8 = READ | WRITE | EXECUTE | DELETE;

impl FactoryAcl {
    fn entries(&self, rights: u8) -> ResourceValue {
        ResourceValue::Multiple(
            self.servers
                .iter()
                .map(|&ssid| (ssid, Value::Integer(rights.into())))
                .collect(),
        )
    }

    /// Creates the Access Control instances missing for object instances (and for
    /// multiple-instance objects' Create right). Instances that exist stay as they are.
    fn apply(&self, objects: &mut Objects) {
        let mut wanted = Vec::new();
        for (&o, obj) in objects.iter().filter(|(&o, _)| o > ACCESS_CONTROL) {
            if obj.def().multiple {
                wanted.push((o, ac::OBJECT_LEVEL, CREATE));
            }
            wanted.extend(obj.instances().into_iter().map(|i| (o, i, INSTANCE_RIGHTS)));
        }
        let Some(acl) = objects.get_mut(&ACCESS_CONTROL) else {
            return;
        };
        for (o, i, rights) in wanted {
            if ac::find(acl.as_ref(), o, i).is_some() {
                continue;
            }
            let existing = acl.instances();
            let Some(free) = (0..crate::path::MAX_ID).find(|n| !existing.contains(n)) else {
                return;
            };
            if acl.create(free).is_err() {
                return;
            }
            for (r, v) in [
                (ac::OBJECT_ID, o),
                (ac::INSTANCE_ID, i),
                (ac::OWNER, self.owner),
            ] {
                let _ = acl.write(
                    free,
                    r,
                    ResourceValue::Single(Value::Integer(v.into())),
                    false,
                );
            }
            let _ = acl.write(free, ac::ACL, self.entries(rights), false);
        }
    }
}

impl Engine {
    /// Factory bootstrap of the Access Control object: with several server accounts
    /// and no Access Control instance (accounts from the configuration, none from a
    /// bootstrap server), makes the instances of [`FactoryAcl`], and keeps making them
    /// for object instances that appear later. Returns whether it applies.
    pub fn grant_factory_access(&mut self) -> bool {
        let servers: Vec<u16> = self.sessions.iter().map(|s| s.short_server_id).collect();
        let acls = self
            .objects
            .get(&ACCESS_CONTROL)
            .map_or(0, |o| o.instances().len());
        self.bootstrap.factory_acl = match servers.first() {
            Some(&owner) if servers.len() > 1 && acls == 0 => Some(FactoryAcl { owner, servers }),
            _ => None,
        };
        self.sync_factory_access();
        self.bootstrap.factory_acl.is_some()
    }

    /// Gives object instances that appeared since (made by backends) their factory
    /// Access Control instance.
    pub(super) fn sync_factory_access(&mut self) {
        if let Some(f) = &self.bootstrap.factory_acl {
            f.apply(&mut self.objects);
        }
    }

    /// Whether the server lacks a right the request needs (then 4.01).
    pub(super) fn access_denied(&self, req: &DmRequest<'_>) -> bool {
        if !enforced(&self.objects) {
            return false;
        }
        let denied = needed(&self.objects, req)
            .iter()
            .any(|(p, right)| !allowed(&self.objects, req.server, p, *right));
        if denied {
            tracing::debug!(server = req.server, method = ?req.method, path = %req.path, "access control: denied");
        }
        denied
    }

    /// A server created `/o/i`: it owns the new instance's Access Control instance.
    pub(super) fn access_created(&mut self, ssid: u16, created: Path) {
        let (Some(o), Some(i)) = (created.object_id(), created.instance_id()) else {
            return;
        };
        if !enforced(&self.objects) || o <= ACCESS_CONTROL {
            return;
        }
        let Some(acl) = self.objects.get_mut(&ACCESS_CONTROL) else {
            return;
        };
        let existing = acl.instances();
        let Some(free) = (0..crate::path::MAX_ID).find(|n| !existing.contains(n)) else {
            return;
        };
        let _ = acl.create(free);
        for (r, v) in [(ac::OBJECT_ID, o), (ac::INSTANCE_ID, i), (ac::OWNER, ssid)] {
            let _ = acl.write(
                free,
                r,
                ResourceValue::Single(Value::Integer(v.into())),
                false,
            );
        }
    }

    /// `/o/i` was deleted: its Access Control instance goes with it.
    pub(super) fn access_deleted(&mut self, deleted: Path) {
        let (Some(o), Some(i)) = (deleted.object_id(), deleted.instance_id()) else {
            return;
        };
        if o <= ACCESS_CONTROL {
            return;
        }
        if let Some(acl) = self.objects.get_mut(&ACCESS_CONTROL) {
            if let Some(inst) = ac::find(acl.as_ref(), o, i) {
                let _ = acl.delete(inst);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::access_control::AccessControl;
    use crate::objects::server::Server;

    fn objects(create_for: Option<i64>) -> Objects {
        let mut srv = Server::new();
        srv.add_account(0, 7, 60, "U");
        srv.add_account(1, 8, 60, "U");
        let mut acl = AccessControl::new();
        acl.create(0).unwrap();
        let set = |acl: &mut AccessControl, r, v: i64| {
            acl.write(0, r, ResourceValue::Single(Value::Integer(v)), false)
                .unwrap();
        };
        set(&mut acl, ac::OBJECT_ID, 3303);
        set(&mut acl, ac::INSTANCE_ID, ac::OBJECT_LEVEL.into());
        set(&mut acl, ac::OWNER, 65535);
        if let Some(ssid) = create_for {
            let map = [(u16::try_from(ssid).unwrap(), Value::Integer(CREATE.into()))]
                .into_iter()
                .collect();
            acl.write(0, ac::ACL, ResourceValue::Multiple(map), false)
                .unwrap();
        }
        let mut objects: Objects = Objects::new();
        objects.insert(1, Box::new(srv));
        objects.insert(ACCESS_CONTROL, Box::new(acl));
        objects
    }

    #[test]
    fn factory_acl_covers_objects_and_instances_that_appear_later() {
        let mut o = objects(None);
        // Start from no Access Control instance at all.
        let acl = o.get_mut(&ACCESS_CONTROL).unwrap();
        for i in acl.instances() {
            acl.delete(i).unwrap();
        }
        o.insert(11, Box::new(crate::objects::apn::ApnProfiles::new()));
        let factory = FactoryAcl {
            owner: 7,
            servers: vec![7, 8],
        };
        factory.apply(&mut o);
        assert!(enforced(&o));
        // Create on the multiple-instance object, for both servers.
        assert!(allowed(&o, 8, &Path::object(11), CREATE));
        assert!(allowed(&o, 7, &Path::object(11), CREATE));
        // An instance made later (by a backend) gets its own on the next pass.
        o.get_mut(&11).unwrap().create(3).unwrap();
        assert!(!allowed(&o, 8, &Path::instance(11, 3), WRITE));
        factory.apply(&mut o);
        for right in [READ, WRITE, EXECUTE, DELETE] {
            assert!(allowed(&o, 8, &Path::instance(11, 3), right));
        }
        let acl = o.get(&ACCESS_CONTROL).unwrap();
        let inst = ac::find(acl.as_ref(), 11, 3).unwrap();
        assert_eq!(owner(acl.as_ref(), inst), Some(7));
        // Applying again makes nothing twice.
        let count = acl.instances().len();
        factory.apply(&mut o);
        assert_eq!(o.get(&ACCESS_CONTROL).unwrap().instances().len(), count);
    }

    #[test]
    fn create_needs_the_object_level_instance() {
        let o = objects(Some(8));
        assert!(enforced(&o));
        assert!(allowed(&o, 8, &Path::object(3303), CREATE));
        assert!(!allowed(&o, 7, &Path::object(3303), CREATE));
        // No object-level instance for this object: nobody creates.
        assert!(!allowed(&o, 8, &Path::object(3304), CREATE));
        let o = objects(None);
        assert!(!allowed(&o, 8, &Path::object(3303), CREATE));
    }
}
