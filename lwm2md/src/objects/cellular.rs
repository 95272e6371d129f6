//! Object 10, LwM2M Cellular Connectivity: which APN profiles (object 11) have an active
//! data connection. ModemManager exposes no PSM or eDRX timers, so those resources stay
//! absent and servers cannot set them.

use crate::model::registry_connectivity::CELLULAR_CONNECTIVITY;
use crate::objects::reported::Reported;

pub const OBJECT_ID: u16 = 10;
pub const ACTIVATED_PROFILE_NAMES: u16 = 11;

/// Object 10 as the device reports it.
pub fn new() -> Reported {
    Reported::new(&CELLULAR_CONNECTIVITY)
}
