//! Notification attributes (Core TS 1.1 §5.1.2, 1.2 §7.3.2): what Write-Attributes sets
//! on an object, instance or resource, and how the levels combine for an observation.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::DmError;
use crate::path::Path;

/// The attributes one server assigned at one path. `None`: not assigned at this level.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes {
    pub pmin: Option<u32>,
    pub pmax: Option<u32>,
    pub gt: Option<f64>,
    pub lt: Option<f64>,
    pub st: Option<f64>,
    pub epmin: Option<u32>,
    pub epmax: Option<u32>,
    /// LwM2M 1.2: notifications confirmable (true) or not.
    pub con: Option<bool>,
    /// LwM2M 1.2, boolean resources: notify only rising (true) or falling (false) edges.
    pub edge: Option<bool>,
}

impl Attributes {
    pub fn is_empty(&self) -> bool {
        *self == Attributes::default()
    }

    /// Fills what is unset here from a level further up (resource <- instance <- object).
    /// Only the period attributes are inherited: thresholds belong to one resource.
    fn inherit(&mut self, upper: &Attributes) {
        self.pmin = self.pmin.or(upper.pmin);
        self.pmax = self.pmax.or(upper.pmax);
        self.epmin = self.epmin.or(upper.epmin);
        self.epmax = self.epmax.or(upper.epmax);
        self.con = self.con.or(upper.con);
    }

    /// The `;pmin=10;pmax=60` attributes for Discover, in a stable order.
    pub fn link_attrs(&self) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        let mut push = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                out.push((name.to_string(), Some(v)));
            }
        };
        push("pmin", self.pmin.map(|v| v.to_string()));
        push("pmax", self.pmax.map(|v| v.to_string()));
        push("gt", self.gt.map(fmt_number));
        push("lt", self.lt.map(fmt_number));
        push("st", self.st.map(fmt_number));
        push("epmin", self.epmin.map(|v| v.to_string()));
        push("epmax", self.epmax.map(|v| v.to_string()));
        push("edge", self.edge.map(|v| u8::from(v).to_string()));
        push("con", self.con.map(|v| u8::from(v).to_string()));
        out
    }
}

fn fmt_number(x: f64) -> String {
    format!("{x}")
}

/// A Write-Attributes query: each attribute either set to a value or removed (a bare
/// name, `?pmin`, removes it).
#[derive(Debug, Default, PartialEq)]
pub struct AttributeUpdate {
    changes: Vec<(Name, Option<f64>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Pmin,
    Pmax,
    Gt,
    Lt,
    St,
    Epmin,
    Epmax,
    Con,
    Edge,
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Name::Pmin => "pmin",
            Name::Pmax => "pmax",
            Name::Gt => "gt",
            Name::Lt => "lt",
            Name::St => "st",
            Name::Epmin => "epmin",
            Name::Epmax => "epmax",
            Name::Con => "con",
            Name::Edge => "edge",
        })
    }
}

impl AttributeUpdate {
    /// Parses the Uri-Query options of a Write-Attributes request.
    pub fn parse(queries: &[String]) -> Result<AttributeUpdate, DmError> {
        let bad = |q: &str, why: &str| DmError::BadRequest(format!("attribute {q:?}: {why}"));
        let mut changes = Vec::new();
        for q in queries {
            let (name, value) = match q.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (q.as_str(), None),
            };
            let name = match name {
                "pmin" => Name::Pmin,
                "pmax" => Name::Pmax,
                "gt" => Name::Gt,
                "lt" => Name::Lt,
                "st" => Name::St,
                "epmin" => Name::Epmin,
                "epmax" => Name::Epmax,
                "con" => Name::Con,
                "edge" => Name::Edge,
                _ => return Err(bad(q, "unknown or unsupported attribute")),
            };
            let value = match value {
                None => None,
                Some(v) => {
                    let x: f64 = v.parse().map_err(|_| bad(q, "not a number"))?;
                    if !x.is_finite() {
                        return Err(bad(q, "not a finite number"));
                    }
                    let is_period =
                        matches!(name, Name::Pmin | Name::Pmax | Name::Epmin | Name::Epmax);
                    if is_period && (x < 0.0 || x.fract() != 0.0 || x > f64::from(u32::MAX)) {
                        return Err(bad(q, "a period is a whole number of seconds"));
                    }
                    if matches!(name, Name::Con | Name::Edge) && x != 0.0 && x != 1.0 {
                        return Err(bad(q, "0 or 1"));
                    }
                    if name == Name::St && x < 0.0 {
                        return Err(bad(q, "a step cannot be negative"));
                    }
                    Some(x)
                }
            };
            if changes.iter().any(|(n, _)| *n == name) {
                return Err(bad(q, "given twice"));
            }
            changes.push((name, value));
        }
        Ok(AttributeUpdate { changes })
    }

    pub fn has_edge(&self) -> bool {
        self.changes.iter().any(|(n, _)| *n == Name::Edge)
    }

    pub fn has_thresholds(&self) -> bool {
        self.changes
            .iter()
            .any(|(n, _)| matches!(n, Name::Gt | Name::Lt | Name::St))
    }

    /// Applies the update to what is assigned and checks the result's consistency.
    pub fn apply(&self, current: &Attributes) -> Result<Attributes, DmError> {
        let mut a = current.clone();
        for (name, v) in &self.changes {
            let secs = v.map(|x| x as u32);
            match name {
                Name::Pmin => a.pmin = secs,
                Name::Pmax => a.pmax = secs,
                Name::Gt => a.gt = *v,
                Name::Lt => a.lt = *v,
                Name::St => a.st = *v,
                Name::Epmin => a.epmin = secs,
                Name::Epmax => a.epmax = secs,
                Name::Con => a.con = v.map(|x| x == 1.0),
                Name::Edge => a.edge = v.map(|x| x == 1.0),
            }
        }
        let bad = |why: &str| Err(DmError::BadRequest(why.to_string()));
        if let (Some(min), Some(max)) = (a.pmin, a.pmax) {
            if max < min {
                return bad("pmax is less than pmin");
            }
        }
        if let (Some(min), Some(max)) = (a.epmin, a.epmax) {
            if max < min {
                return bad("epmax is less than epmin");
            }
        }
        if let (Some(lt), Some(gt)) = (a.lt, a.gt) {
            // Core TS 1.1 §5.1.2: lt < gt, and lt + 2 st < gt when st is set too.
            if lt >= gt || a.st.is_some_and(|st| lt + 2.0 * st >= gt) {
                return bad("lt must be below gt (by more than twice st)");
            }
        }
        Ok(a)
    }
}

/// The attributes every server assigned, by (short server ID, path).
#[derive(Debug, Default)]
pub struct AttributeStore {
    assigned: BTreeMap<(u16, Path), Attributes>,
    /// Bumped by every change, so that users of `effective` know when to look again.
    version: u64,
}

impl AttributeStore {
    pub fn get(&self, server: u16, path: &Path) -> Option<&Attributes> {
        self.assigned.get(&(server, *path))
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn set(&mut self, server: u16, path: Path, attrs: Attributes) {
        self.version += 1;
        if attrs.is_empty() {
            self.assigned.remove(&(server, path));
        } else {
            self.assigned.insert((server, path), attrs);
        }
    }

    /// The attributes in effect at `path` for `server`: the deepest level's own, then
    /// the periods inherited from the levels above, then the server's defaults
    /// (/1/x/2 and /1/x/3).
    pub fn effective(
        &self,
        server: u16,
        path: &Path,
        default_pmin: Option<u32>,
        default_pmax: Option<u32>,
    ) -> Attributes {
        let mut a = Attributes::default();
        let mut p = *path;
        loop {
            if let Some(level) = self.get(server, &p) {
                if p == *path {
                    a = level.clone();
                } else {
                    a.inherit(level);
                }
            }
            if p.len() <= 1 {
                break;
            }
            p = p.parent();
        }
        a.inherit(&Attributes {
            pmin: default_pmin,
            pmax: default_pmax,
            ..Attributes::default()
        });
        a
    }

    /// What `server` assigned, path by path.
    pub fn of_server(&self, server: u16) -> impl Iterator<Item = (&Path, &Attributes)> {
        self.assigned
            .iter()
            .filter(move |((s, _), _)| *s == server)
            .map(|((_, p), a)| (p, a))
    }

    /// Forgets what a server assigned (it registered anew or was removed).
    pub fn clear_server(&mut self, server: u16) {
        self.version += 1;
        self.assigned.retain(|(s, _), _| *s != server);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parse_apply_and_validate() {
        let a = AttributeUpdate::parse(&q(&["pmin=10", "pmax=60"]))
            .unwrap()
            .apply(&Attributes::default())
            .unwrap();
        assert_eq!((a.pmin, a.pmax), (Some(10), Some(60)));
        let a = AttributeUpdate::parse(&q(&["pmin"]))
            .unwrap()
            .apply(&a)
            .unwrap();
        assert_eq!((a.pmin, a.pmax), (None, Some(60)));
        let a = AttributeUpdate::parse(&q(&["con=1", "edge=0"]))
            .unwrap()
            .apply(&Attributes::default())
            .unwrap();
        assert_eq!((a.con, a.edge), (Some(true), Some(false)));
        assert!(AttributeUpdate::parse(&q(&["con=2"])).is_err());
        for bad in [
            &["pmin=x"][..],
            &["foo=1"],
            &["pmin=-1"],
            &["pmin=1.5"],
            &["st=-2"],
            &["pmin=1", "pmin=2"],
            &["gt=nan"],
        ] {
            assert!(AttributeUpdate::parse(&q(bad)).is_err(), "{bad:?}");
        }
        for bad in [
            &["pmin=60", "pmax=10"][..],
            &["lt=5", "gt=5"],
            &["lt=1", "gt=5", "st=2"],
            &["epmin=9", "epmax=3"],
        ] {
            let u = AttributeUpdate::parse(&q(bad)).unwrap();
            assert!(u.apply(&Attributes::default()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn inheritance() {
        let mut store = AttributeStore::default();
        store.set(
            1,
            Path::object(3),
            Attributes {
                pmin: Some(5),
                pmax: Some(100),
                ..Default::default()
            },
        );
        store.set(
            1,
            Path::instance(3, 0),
            Attributes {
                pmax: Some(50),
                ..Default::default()
            },
        );
        store.set(
            1,
            Path::resource(3, 0, 10),
            Attributes {
                gt: Some(1.0),
                ..Default::default()
            },
        );
        let e = store.effective(1, &Path::resource(3, 0, 10), Some(1), Some(300));
        assert_eq!((e.pmin, e.pmax, e.gt), (Some(5), Some(50), Some(1.0)));
        // Another server sees only the defaults.
        let e = store.effective(2, &Path::resource(3, 0, 10), Some(1), None);
        assert_eq!((e.pmin, e.pmax, e.gt), (Some(1), None, None));
        // Thresholds on the instance do not reach the resource.
        store.set(
            1,
            Path::instance(3, 0),
            Attributes {
                st: Some(2.0),
                ..Default::default()
            },
        );
        assert_eq!(
            store.effective(1, &Path::resource(3, 0, 10), None, None).st,
            None
        );
    }
}
