#![no_main]

use backends::modem::at::response::{Exchange, Line};
use backends::modem::at::{parse, vendor};
use libfuzzer_sys::fuzz_target;

// Whatever a modem sends after a command: classified line by line, then every parser
// on the answer lines. Nothing may panic.
fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<String> = text
        .split(['\r', '\n'])
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    for command in [
        "AT+CSQ",
        "AT+CEREG?",
        "AT+CGSN",
        "AT+CCID",
        "AT+UCGED?",
        "AT+QENG=\"servingcell\"",
    ] {
        let mut exchange = Exchange::new(command);
        for l in &lines {
            if let Line::Final(_) = exchange.line(l) {
                break;
            }
        }
        let (answer, _) = exchange.into_parts();
        let _ = parse::csq(&answer);
        let _ = parse::cesq(&answer);
        let _ = parse::cops(&answer);
        for p in ["+CREG", "+CGREG", "+CEREG", "+C5GREG"] {
            let _ = parse::registration(&answer, p);
        }
        let _ = parse::cgdcont(&answer);
        let _ = parse::cgpaddr(&answer);
        let _ = parse::cgcontrdp(&answer);
        let _ = parse::imei(&answer);
        let _ = parse::imsi(&answer);
        let _ = parse::iccid(&answer);
        let _ = parse::manufacturer(&answer);
        let _ = vendor::quectel_qeng(&answer);
        let _ = vendor::quectel_qcsq(&answer);
        let _ = vendor::simcom_cpsi(&answer);
        let _ = vendor::ublox_ucged(&answer);
    }
});
