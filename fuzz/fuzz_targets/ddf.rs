#![no_main]

use libfuzzer_sys::fuzz_target;
use lwm2md::model::ddf;

fuzz_target!(|text: &str| {
    if let Ok(defs) = ddf::parse(text) {
        for def in defs {
            // Every accepted definition is internally consistent.
            assert!(def.resources.windows(2).all(|w| w[0].id < w[1].id));
        }
    }
});
