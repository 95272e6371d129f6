//! Power saving over AT commands: PSM (3GPP TS 27.007 AT+CPSMS) and eDRX (AT+CEDRXS,
//! AT+CEDRXRDP), with the timer and eDRX encodings of 3GPP TS 24.008 that the modem
//! speaks as bit strings ("00100001") and LwM2M object 10 asks for.

use super::fields::after_prefix;

/// The radio technologies an eDRX setting is for (27.007 `<AcT-type>`), each with its
/// own resource in object 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdrxAct {
    /// A/Gb mode (GSM; AcT-type 2).
    Gsm,
    /// Iu mode (UTRAN; AcT-type 3).
    Utran,
    /// WB-S1 mode (E-UTRAN; AcT-type 4).
    WbS1,
    /// NB-S1 mode (NB-IoT; AcT-type 5).
    NbS1,
}

impl EdrxAct {
    pub fn code(self) -> u8 {
        match self {
            EdrxAct::Gsm => 2,
            EdrxAct::Utran => 3,
            EdrxAct::WbS1 => 4,
            EdrxAct::NbS1 => 5,
        }
    }

    /// AcT-type 1 (EC-GSM-IoT) is A/Gb mode too.
    pub fn from_code(n: u32) -> Option<EdrxAct> {
        Some(match n {
            1 | 2 => EdrxAct::Gsm,
            3 => EdrxAct::Utran,
            4 => EdrxAct::WbS1,
            5 => EdrxAct::NbS1,
            _ => return None,
        })
    }
}

/// What the modem says of its power saving. Timers are in seconds, decoded from the
/// 24.008 encodings; `None` where the modem gave none or the timer is deactivated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PowerSaving {
    /// AT+CPSMS? answered.
    pub psm_supported: bool,
    pub psm_enabled: bool,
    /// Requested extended periodic TAU timer (T3412 extended), seconds.
    pub psm_timer: Option<u32>,
    /// Requested active time (T3324), seconds.
    pub active_timer: Option<u32>,
    /// AT+CEDRXS? answered.
    pub edrx_supported: bool,
    /// The enabled eDRX settings as octet 3 of the Extended DRX parameters IE (24.008
    /// 10.5.5.32): paging time window in bits 8-5, eDRX value in bits 4-1.
    pub edrx: Vec<(EdrxAct, u8)>,
}

/// A server's change to the power saving settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerSavingChange {
    /// Requested periodic TAU, seconds (object 10 resource 4).
    PsmTimer(u32),
    /// Requested active time, seconds (resource 5).
    ActiveTimer(u32),
    /// Extended DRX parameters octet for one mode (resources 7 to 10).
    Edrx { act: EdrxAct, octet: u8 },
    /// PSM and eDRX on or off (resource 13).
    Modes { psm: bool, edrx: bool },
}

/// Units of the GPRS Timer 3 IE (24.008 10.5.7.4a) in seconds, by their code in bits 8-6.
const TIMER3_UNITS: [(u8, u32); 7] = [
    (0b011, 2),
    (0b100, 30),
    (0b101, 60),
    (0b000, 600),
    (0b001, 3600),
    (0b010, 36_000),
    (0b110, 1_152_000),
];

/// Units of the GPRS Timer 2 IE (24.008 10.5.7.4, coded as 10.5.7.3).
const TIMER2_UNITS: [(u8, u32); 3] = [(0b000, 2), (0b001, 60), (0b010, 360)];

const DEACTIVATED: u8 = 0b111;

/// Seconds of an extended T3412 (GPRS Timer 3); `None` when deactivated.
pub fn t3412_ext_seconds(octet: u8) -> Option<u32> {
    let unit = octet >> 5;
    let value = u32::from(octet & 0x1F);
    TIMER3_UNITS
        .iter()
        .find(|(code, _)| *code == unit)
        .map(|(_, secs)| secs * value)
}

/// Seconds of a T3324 (GPRS Timer 2); `None` when deactivated. Unit codes 24.008 does
/// not define are read as minutes, as it asks.
pub fn t3324_seconds(octet: u8) -> Option<u32> {
    let unit = octet >> 5;
    if unit == DEACTIVATED {
        return None;
    }
    let value = u32::from(octet & 0x1F);
    let secs = TIMER2_UNITS
        .iter()
        .find(|(code, _)| *code == unit)
        .map_or(60, |(_, s)| *s);
    Some(secs * value)
}

/// The GPRS Timer 3 octet for `seconds`: exact where a unit allows, else the nearest
/// value above (the device then asks for a little more than was written). `None`
/// beyond 31 × 320 h.
pub fn t3412_ext_octet(seconds: u32) -> Option<u8> {
    timer_octet(seconds, &TIMER3_UNITS)
}

/// The GPRS Timer 2 octet for `seconds`, as [`t3412_ext_octet`]; `None` beyond 31 × 6 min.
pub fn t3324_octet(seconds: u32) -> Option<u8> {
    timer_octet(seconds, &TIMER2_UNITS)
}

fn timer_octet(seconds: u32, units: &[(u8, u32)]) -> Option<u8> {
    let octet = |code: u8, value: u32| Some((code << 5) | u8::try_from(value).ok()?);
    let mut ascending = units.to_vec();
    ascending.sort_by_key(|(_, s)| *s);
    if let Some((code, secs)) = ascending
        .iter()
        .find(|(_, secs)| seconds.is_multiple_of(*secs) && seconds / secs <= 31)
    {
        return octet(*code, seconds / secs);
    }
    ascending
        .iter()
        .find(|(_, secs)| seconds.div_ceil(*secs) <= 31)
        .and_then(|(code, secs)| octet(*code, seconds.div_ceil(*secs)))
}

/// An 8-bit (or 4-bit) string as the modem writes it, `"00100001"`.
pub fn bits_of(text: &str, width: usize) -> Option<u8> {
    if text.len() != width || !text.bytes().all(|b| b == b'0' || b == b'1') {
        return None;
    }
    u8::from_str_radix(text, 2).ok()
}

/// `+CPSMS: <mode>,[<RAU>],[<GPRS-READY>],[<TAU>],[<Active-Time>]`: (enabled, TAU octet,
/// active time octet).
pub fn cpsms(lines: &[String]) -> Option<(bool, Option<u8>, Option<u8>)> {
    lines.iter().find_map(|l| {
        let f = after_prefix(l, "+CPSMS")?;
        let enabled = match f.first()?.uint()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let octet = |i: usize| f.get(i).and_then(|x| bits_of(x.text, 8));
        Some((enabled, octet(3), octet(4)))
    })
}

/// `+CEDRXS: <AcT-type>,<Requested_eDRX_value>` per enabled technology: the 4-bit value.
pub fn cedrxs(lines: &[String]) -> Vec<(EdrxAct, u8)> {
    lines
        .iter()
        .filter_map(|l| {
            let f = after_prefix(l, "+CEDRXS")?;
            let act = EdrxAct::from_code(f.first()?.uint()?)?;
            Some((act, bits_of(f.get(1)?.text, 4)?))
        })
        .collect()
}

/// `+CEDRXRDP: <AcT-type>[,<Requested>[,<NW-provided>[,<Paging_time_window>]]]`: the
/// paging time window the network gave, per technology.
pub fn cedrxrdp_ptw(lines: &[String]) -> Vec<(EdrxAct, u8)> {
    lines
        .iter()
        .filter_map(|l| {
            let f = after_prefix(l, "+CEDRXRDP")?;
            let act = EdrxAct::from_code(f.first()?.uint()?)?;
            Some((act, bits_of(f.get(3)?.text, 4)?))
        })
        .collect()
}

/// `AT+CPSMS=<mode>,,,"<TAU>","<Active-Time>"`, the timers omitted when unknown.
pub fn cpsms_command(enabled: bool, tau: Option<u8>, active: Option<u8>) -> String {
    let bits = |o: Option<u8>| o.map(|o| format!("\"{o:08b}\"")).unwrap_or_default();
    format!(
        "AT+CPSMS={},,,{},{}",
        u8::from(enabled),
        bits(tau),
        bits(active)
    )
}

/// Enables eDRX for `act` with the eDRX value of `octet` (bits 4-1). The paging time
/// window (bits 8-5) has no 27.007 command: the network chooses it.
pub fn cedrxs_command(act: EdrxAct, octet: u8) -> String {
    format!("AT+CEDRXS=1,{},\"{:04b}\"", act.code(), octet & 0x0F)
}

/// Disables eDRX for `act`.
pub fn cedrxs_off_command(act: EdrxAct) -> String {
    format!("AT+CEDRXS=0,{}", act.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn timers_per_24_008() {
        // 24.008 10.5.7.4a: "00100001" is 1 × 1 h; "01000011" 3 × 10 h.
        assert_eq!(t3412_ext_seconds(0b001_00001), Some(3600));
        assert_eq!(t3412_ext_seconds(0b010_00011), Some(108_000));
        assert_eq!(t3412_ext_seconds(0b110_11111), Some(31 * 1_152_000));
        assert_eq!(t3412_ext_seconds(0b111_00001), None);
        // 10.5.7.3: "00001111" is 15 × 2 s; "00100010" 2 min; "01000001" 6 min.
        assert_eq!(t3324_seconds(0b000_01111), Some(30));
        assert_eq!(t3324_seconds(0b001_00010), Some(120));
        assert_eq!(t3324_seconds(0b010_00001), Some(360));
        assert_eq!(t3324_seconds(0b111_00000), None);
        assert_eq!(
            t3324_seconds(0b011_00011),
            Some(180),
            "other units are minutes"
        );

        // The smallest unit that holds the value exactly.
        assert_eq!(t3412_ext_octet(3600), Some(0b000_00110), "6 × 10 min");
        assert_eq!(t3412_ext_octet(60), Some(0b011_11110), "30 × 2 s");
        assert_eq!(t3412_ext_octet(0), Some(0b011_00000));
        assert_eq!(t3412_ext_octet(86_400), Some(0b001_11000), "24 h");
        // Not representable: the next value up.
        assert_eq!(t3412_ext_octet(61), Some(0b011_11111), "62 s");
        assert_eq!(t3412_ext_octet(3601), Some(0b000_00111), "70 min");
        assert_eq!(t3412_ext_octet(31 * 1_152_000), Some(0b110_11111));
        assert_eq!(t3412_ext_octet(31 * 1_152_000 + 1), None);
        assert_eq!(t3324_octet(30), Some(0b000_01111));
        assert_eq!(t3324_octet(180), Some(0b001_00011));
        assert_eq!(t3324_octet(31 * 360), Some(0b010_11111));
        assert_eq!(t3324_octet(31 * 360 + 1), None);
        for secs in [0, 2, 62, 600, 3600, 7200, 36_000, 1_152_000] {
            assert_eq!(
                t3412_ext_seconds(t3412_ext_octet(secs).unwrap()),
                Some(secs)
            );
        }
    }

    #[test]
    fn cpsms_and_cedrxs_answers() {
        let psm = cpsms(&lines(&[r#"+CPSMS: 1,,,"00100001","00000101""#, "OK"]));
        assert_eq!(psm, Some((true, Some(0b0010_0001), Some(0b0000_0101))));
        assert_eq!(cpsms(&lines(&["+CPSMS: 0,,,,"])), Some((false, None, None)));
        assert_eq!(
            cpsms(&lines(&[r#"+CPSMS: 1,,,"0010001","x""#])),
            Some((true, None, None))
        );
        assert_eq!(cpsms(&lines(&["+CPSMS: 7"])), None);
        assert_eq!(cpsms(&lines(&["OK"])), None);

        let edrx = cedrxs(&lines(&[
            r#"+CEDRXS: 4,"0101""#,
            r#"+CEDRXS: 5,"1001""#,
            r#"+CEDRXS: 9,"0101""#,
            r#"+CEDRXS: 4,"012""#,
        ]));
        assert_eq!(edrx, vec![(EdrxAct::WbS1, 0b0101), (EdrxAct::NbS1, 0b1001)]);
        let ptw = cedrxrdp_ptw(&lines(&[
            r#"+CEDRXRDP: 4,"0101","0101","0011""#,
            "+CEDRXRDP: 0",
        ]));
        assert_eq!(ptw, vec![(EdrxAct::WbS1, 0b0011)]);
    }

    #[test]
    fn commands() {
        assert_eq!(
            cpsms_command(true, Some(0b0010_0001), Some(0b0000_0101)),
            r#"AT+CPSMS=1,,,"00100001","00000101""#
        );
        assert_eq!(cpsms_command(false, None, None), "AT+CPSMS=0,,,,");
        assert_eq!(
            cedrxs_command(EdrxAct::WbS1, 0x35),
            r#"AT+CEDRXS=1,4,"0101""#
        );
        assert_eq!(cedrxs_off_command(EdrxAct::NbS1), "AT+CEDRXS=0,5");
    }
}
