//! Object definitions of the IPSO sensor objects, generated at build time from the OMA
//! registry's 33xx.xml files (BSD-3-Clause) by `build.rs`.

use crate::model::{ObjectDef, Operations, ResourceDef};
use crate::value::ResourceType;

include!(concat!(env!("OUT_DIR"), "/ipso.rs"));
