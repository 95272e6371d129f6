//! Object 10, LwM2M Cellular Connectivity: which APN profiles (object 11) have an active
//! data connection and, with the AT backend, the modem's power saving: PSM timers
//! (resources 4 and 5, seconds, 3GPP TS 24.008 timers underneath), eDRX parameters
//! (7 to 10, octet 3 of the 24.008 Extended DRX parameters IE) and the supported and
//! active modes (12, 13). Servers may write those; the modem's answer to the next poll
//! is what the resources then show. ModemManager exposes no PSM or eDRX settings, so
//! with it those resources stay absent and writes of them are refused.

use backends::modem::at::power_saving::{self, EdrxAct, PowerSaving, PowerSavingChange};

use crate::model::registry_connectivity::CELLULAR_CONNECTIVITY;
use crate::model::{Action, ConnectivityAction, DmError, Object};
use crate::objects::store::Store;
use crate::value::{ResourceValue, Value};

pub const OBJECT_ID: u16 = 10;
pub const PSM_TIMER: u16 = 4;
pub const ACTIVE_TIMER: u16 = 5;
pub const EDRX_IU: u16 = 7;
pub const EDRX_WB_S1: u16 = 8;
pub const EDRX_NB_S1: u16 = 9;
pub const EDRX_A_GB: u16 = 10;
pub const ACTIVATED_PROFILE_NAMES: u16 = 11;
pub const SUPPORTED_MODES: u16 = 12;
pub const ACTIVE_MODES: u16 = 13;

/// Bits of resources 12 and 13.
const MODE_PSM: u64 = 1 << 0;
const MODE_EDRX: u64 = 1 << 1;

const EDRX_RESOURCES: [(u16, EdrxAct); 4] = [
    (EDRX_IU, EdrxAct::Utran),
    (EDRX_WB_S1, EdrxAct::WbS1),
    (EDRX_NB_S1, EdrxAct::NbS1),
    (EDRX_A_GB, EdrxAct::Gsm),
];

pub struct Cellular {
    store: Store,
    /// The backend can change power saving (the AT backend).
    power_saving: bool,
}

/// Object 10 as the device reports it; `power_saving`: servers may write the PSM and
/// eDRX resources.
pub fn new(power_saving: bool) -> Cellular {
    let mut store = Store::new(&CELLULAR_CONNECTIVITY);
    store.add_instance(0);
    Cellular {
        store,
        power_saving,
    }
}

/// Resources 4, 5, 7 to 10, 12 and 13 from what the modem reports; `None`: absent.
pub fn power_saving_values(p: Option<&PowerSaving>) -> Vec<(u16, Option<ResourceValue>)> {
    let single = |v: Value| Some(ResourceValue::Single(v));
    let seconds = |s: Option<u32>| s.and_then(|s| single(Value::Integer(i64::from(s))));
    let psm = p.filter(|p| p.psm_supported);
    let mut out = vec![
        (PSM_TIMER, seconds(psm.and_then(|p| p.psm_timer))),
        (ACTIVE_TIMER, seconds(psm.and_then(|p| p.active_timer))),
    ];
    for (resource, act) in EDRX_RESOURCES {
        let octet = p.and_then(|p| p.edrx.iter().find(|(a, _)| *a == act));
        out.push((
            resource,
            octet.and_then(|(_, o)| single(Value::Opaque(vec![*o]))),
        ));
    }
    let modes = |psm: bool, edrx: bool| {
        single(Value::Unsigned(
            if psm { MODE_PSM } else { 0 } | if edrx { MODE_EDRX } else { 0 },
        ))
    };
    out.push((
        SUPPORTED_MODES,
        p.and_then(|p| modes(p.psm_supported, p.edrx_supported)),
    ));
    out.push((
        ACTIVE_MODES,
        p.and_then(|p| modes(p.psm_enabled, !p.edrx.is_empty())),
    ));
    out
}

impl Cellular {
    fn change(&self, resource: u16, value: &ResourceValue) -> Result<PowerSavingChange, DmError> {
        let ResourceValue::Single(value) = value else {
            return Err(DmError::BadRequest(format!("/10/0/{resource} is single")));
        };
        let bad = |what: String| Err(DmError::BadRequest(what));
        let seconds = |v: &Value| match v {
            Value::Integer(n) => u32::try_from(*n).ok(),
            _ => None,
        };
        match (resource, value) {
            (PSM_TIMER, v) => {
                match seconds(v).filter(|s| power_saving::t3412_ext_octet(*s).is_some()) {
                    Some(s) => Ok(PowerSavingChange::PsmTimer(s)),
                    None => bad(format!(
                        "PSM timer {v:?} is not 0 to {} seconds (extended T3412)",
                        31 * 1_152_000
                    )),
                }
            }
            (ACTIVE_TIMER, v) => {
                match seconds(v).filter(|s| power_saving::t3324_octet(*s).is_some()) {
                    Some(s) => Ok(PowerSavingChange::ActiveTimer(s)),
                    None => bad(format!(
                        "active timer {v:?} is not 0 to {} seconds (T3324)",
                        31 * 360
                    )),
                }
            }
            (ACTIVE_MODES, Value::Unsigned(bits)) if *bits <= 255 => Ok(PowerSavingChange::Modes {
                psm: bits & MODE_PSM != 0,
                edrx: bits & MODE_EDRX != 0,
            }),
            (ACTIVE_MODES, v) => bad(format!("active power saving modes {v:?} is not 0 to 255")),
            (r, Value::Opaque(octet)) => {
                let Some((_, act)) = EDRX_RESOURCES.iter().find(|(res, _)| *res == r) else {
                    return Err(DmError::MethodNotAllowed);
                };
                match octet.as_slice() {
                    [o] => Ok(PowerSavingChange::Edrx {
                        act: *act,
                        octet: *o,
                    }),
                    _ => bad(format!(
                        "eDRX parameters are one octet (24.008 10.5.5.32), not {}",
                        octet.len()
                    )),
                }
            }
            _ => Err(DmError::MethodNotAllowed),
        }
    }
}

impl Object for Cellular {
    crate::objects::store::reads_from_store!();
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
        if !self.power_saving || instance != 0 {
            return Err(DmError::MethodNotAllowed);
        }
        // The value shows once the modem reports it: a refused or rounded setting is
        // never shown as if it had taken.
        let change = self.change(resource, &value)?;
        Ok(vec![Action::Connectivity(ConnectivityAction::PowerSaving(
            change,
        ))])
    }
    fn remove_value(&mut self, instance: u16, resource: u16) -> Result<(), DmError> {
        if !self.store.has_instance(instance) {
            return Err(DmError::NotFound);
        }
        self.store.remove(instance, resource);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn int(n: i64) -> ResourceValue {
        ResourceValue::Single(Value::Integer(n))
    }

    fn power_saving(a: &[Action]) -> PowerSavingChange {
        match a {
            [Action::Connectivity(ConnectivityAction::PowerSaving(c))] => *c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_writes_become_modem_changes() {
        let mut o = new(true);
        let a = o.write(0, PSM_TIMER, int(3600), true).unwrap();
        assert_eq!(power_saving(&a), PowerSavingChange::PsmTimer(3600));
        // Not stored: the modem's report is what the resource shows.
        assert_eq!(o.read(0, PSM_TIMER), None);
        let a = o.write(0, ACTIVE_TIMER, int(60), true).unwrap();
        assert_eq!(power_saving(&a), PowerSavingChange::ActiveTimer(60));
        let octet = ResourceValue::Single(Value::Opaque(vec![0x35]));
        let a = o.write(0, EDRX_NB_S1, octet, true).unwrap();
        assert_eq!(
            power_saving(&a),
            PowerSavingChange::Edrx {
                act: EdrxAct::NbS1,
                octet: 0x35
            }
        );
        let a = o
            .write(
                0,
                ACTIVE_MODES,
                ResourceValue::Single(Value::Unsigned(1)),
                true,
            )
            .unwrap();
        assert_eq!(
            power_saving(&a),
            PowerSavingChange::Modes {
                psm: true,
                edrx: false
            }
        );
    }

    #[test]
    fn out_of_range_writes_are_refused() {
        let mut o = new(true);
        for (resource, value) in [
            (PSM_TIMER, int(-1)),
            (PSM_TIMER, int(31 * 1_152_000 + 1)),
            (ACTIVE_TIMER, int(31 * 360 + 1)),
            (EDRX_WB_S1, ResourceValue::Single(Value::Opaque(vec![]))),
            (EDRX_WB_S1, ResourceValue::Single(Value::Opaque(vec![1, 2]))),
            (ACTIVE_MODES, ResourceValue::Single(Value::Unsigned(256))),
        ] {
            assert!(
                matches!(
                    o.write(0, resource, value.clone(), true),
                    Err(DmError::BadRequest(_))
                ),
                "{resource} {value:?}"
            );
        }
        // ModemManager has no power saving settings.
        let mut mm = new(false);
        assert_eq!(
            mm.write(0, PSM_TIMER, int(3600), true),
            Err(DmError::MethodNotAllowed)
        );
    }

    #[test]
    fn values_from_the_modem() {
        let p = PowerSaving {
            psm_supported: true,
            psm_enabled: true,
            psm_timer: Some(3600),
            active_timer: Some(30),
            edrx_supported: true,
            edrx: vec![(EdrxAct::WbS1, 0x35)],
        };
        let v: BTreeMap<u16, Option<ResourceValue>> =
            power_saving_values(Some(&p)).into_iter().collect();
        assert_eq!(v[&PSM_TIMER], Some(int(3600)));
        assert_eq!(v[&ACTIVE_TIMER], Some(int(30)));
        assert_eq!(
            v[&EDRX_WB_S1],
            Some(ResourceValue::Single(Value::Opaque(vec![0x35])))
        );
        assert_eq!(v[&EDRX_NB_S1], None);
        assert_eq!(
            v[&SUPPORTED_MODES],
            Some(ResourceValue::Single(Value::Unsigned(3)))
        );
        assert_eq!(
            v[&ACTIVE_MODES],
            Some(ResourceValue::Single(Value::Unsigned(3)))
        );
        assert!(power_saving_values(None).iter().all(|(_, v)| v.is_none()));
    }
}
