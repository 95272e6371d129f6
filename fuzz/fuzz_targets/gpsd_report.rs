#![no_main]

use backends::location::gpsd::{parse_line, Event};
use libfuzzer_sys::fuzz_target;

// A line from gpsd: a fix that comes out of it is within WGS 84's ranges.
fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(Event::Fix(fix)) = parse_line(line) {
        assert!((-90.0..=90.0).contains(&fix.latitude), "{fix:?}");
        assert!((-180.0..=180.0).contains(&fix.longitude), "{fix:?}");
        assert!(fix.speed.is_none_or(|s| s >= 0.0 && s.is_finite()), "{fix:?}");
    }
});
