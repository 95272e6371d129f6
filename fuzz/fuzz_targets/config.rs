#![no_main]

use libfuzzer_sys::fuzz_target;
use lwm2md::config::Config;

fuzz_target!(|text: &str| {
    if let Ok(config) = Config::parse(std::path::Path::new("fuzz.toml"), text) {
        let _ = config.accounts();
        let _ = config.coap_params();
    }
});
