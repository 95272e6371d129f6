//! Object definitions of the OMA LwM2M registry for the objects lwm2md implements,
//! generated at build time from the registry files (OMA, BSD-3-Clause) by `build.rs`.

use super::{ObjectDef, Operations, ResourceDef};
use crate::value::ResourceType;

include!(concat!(env!("OUT_DIR"), "/registry.rs"));
