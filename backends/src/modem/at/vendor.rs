//! Serving-cell reports of the common module vendors, where 27.007 has nothing as
//! complete: Quectel AT+QENG="servingcell" and AT+QCSQ, SIMCom AT+CPSI?, u-blox
//! AT+UCGED? (mode 2).

use super::fields::{after_prefix, split, Field};
use super::parse::{cesq_rsrp, cesq_rsrq, plmn, AccessTechnology};

/// Module families with serving-cell commands of their own, told apart by AT+CGMI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Quectel,
    Simcom,
    Ublox,
    /// 27.007 only.
    Other,
}

impl Vendor {
    pub fn from_manufacturer(m: &str) -> Vendor {
        let m = m.to_ascii_lowercase();
        if m.contains("quectel") {
            Vendor::Quectel
        } else if m.contains("simcom") {
            Vendor::Simcom
        } else if m.contains("u-blox") || m.contains("ublox") {
            Vendor::Ublox
        } else {
            Vendor::Other
        }
    }
}

/// What a vendor report says about the serving cell; anything may be missing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ServingCell {
    pub access_technology: Option<AccessTechnology>,
    pub mcc: Option<u16>,
    pub mnc: Option<u16>,
    /// LAC or TAC.
    pub area: Option<u32>,
    pub cell_id: Option<u64>,
    pub rsrp_dbm: Option<f64>,
    pub rsrq_db: Option<f64>,
    pub rssi_dbm: Option<f64>,
    pub snr_db: Option<f64>,
}

fn get<'a, 'b>(f: &'b [Field<'a>], i: usize) -> Option<&'b Field<'a>> {
    f.get(i).filter(|f| !f.is_empty() && f.text != "-")
}

fn float(f: &[Field<'_>], i: usize) -> Option<f64> {
    get(f, i).and_then(Field::float)
}

fn u16_of(f: &[Field<'_>], i: usize) -> Option<u16> {
    get(f, i).and_then(|f| f.text.trim().parse().ok())
}

fn area(f: &[Field<'_>], i: usize) -> Option<u32> {
    get(f, i)
        .and_then(Field::hex)
        .and_then(|a| u32::try_from(a).ok())
}

fn cell_hex(f: &[Field<'_>], i: usize) -> Option<u64> {
    get(f, i).and_then(Field::hex).filter(|c| *c < 1 << 36)
}

/// A value only when it lies in the range the quantity can physically have; modules
/// report out-of-range sentinels (0, 255, -32768) for "unknown".
fn within(x: Option<f64>, lo: f64, hi: f64) -> Option<f64> {
    x.filter(|v| (lo..=hi).contains(v))
}

/// Quectel AT+QENG="servingcell" (EC2x, EG2x, BG9x, RM5xx): one line per RAT; LTE,
/// NR5G-SA, WCDMA and GSM layouts, and the EN-DC form with separate "LTE" and
/// "NR5G-NSA" lines. SINR is in dB there (unlike AT+QCSQ).
pub fn quectel_qeng(lines: &[String]) -> Option<ServingCell> {
    let mut out = ServingCell::default();
    let mut seen = false;
    for line in lines {
        let Some(f) = after_prefix(line, "+QENG") else {
            continue;
        };
        seen = true;
        let first = f.first().map(|f| f.text).unwrap_or("");
        let (rat, base) = if first.eq_ignore_ascii_case("servingcell") {
            (f.get(2).map(|f| f.text).unwrap_or(""), 3)
        } else {
            (first, 1)
        };
        match rat {
            "LTE" | "CAT-M" | "eMTC" | "CAT-NB" | "NBIoT" => {
                // <is_tdd>,<MCC>,<MNC>,<cellID>,<PCID>,<earfcn>,<band>,<ul_bw>,<dl_bw>,
                // <TAC>,<RSRP>,<RSRQ>,<RSSI>,<SINR>
                let at = |i: usize| base + i;
                if out.access_technology.is_none() {
                    out.access_technology = Some(match rat {
                        "CAT-M" | "eMTC" => AccessTechnology::EutranCatM,
                        "CAT-NB" | "NBIoT" => AccessTechnology::EutranNbIot,
                        _ => AccessTechnology::Eutran,
                    });
                }
                out.mcc = u16_of(&f, at(1));
                out.mnc = u16_of(&f, at(2));
                out.cell_id = cell_hex(&f, at(3));
                out.area = area(&f, at(9));
                out.rsrp_dbm = within(float(&f, at(10)), -156.0, -31.0);
                out.rsrq_db = within(float(&f, at(11)), -43.0, 20.0);
                out.rssi_dbm = within(float(&f, at(12)), -140.0, -10.0);
                out.snr_db = within(float(&f, at(13)), -30.0, 50.0);
            }
            "NR5G-SA" => {
                // <duplex>,<MCC>,<MNC>,<cellID>,<PCID>,<TAC>,<ARFCN>,<band>,<bw>,<RSRP>,<RSRQ>,<SINR>
                let at = |i: usize| base + i;
                out.access_technology = Some(AccessTechnology::Nr5gcn);
                out.mcc = u16_of(&f, at(1));
                out.mnc = u16_of(&f, at(2));
                out.cell_id = cell_hex(&f, at(3));
                out.area = area(&f, at(5));
                out.rsrp_dbm = within(float(&f, at(9)), -156.0, -31.0);
                out.rsrq_db = within(float(&f, at(10)), -43.0, 20.0);
                out.snr_db = within(float(&f, at(11)), -30.0, 50.0);
            }
            "NR5G-NSA" => {
                // The LTE anchor's line carries the identities; NSA only adds NR radio.
                out.access_technology = Some(AccessTechnology::EutraNrDual);
            }
            "WCDMA" => {
                // <MCC>,<MNC>,<LAC>,<cellID>,<uarfcn>,<PSC>,<RAC>,<RSCP>,<ecio>
                let at = |i: usize| base + i - 1;
                out.access_technology = Some(AccessTechnology::Utran);
                out.mcc = u16_of(&f, at(1));
                out.mnc = u16_of(&f, at(2));
                out.area = area(&f, at(3));
                out.cell_id = cell_hex(&f, at(4));
            }
            "GSM" => {
                // <mcc>,<mnc>,<lac>,<cellid>,<bsic>,<arfcn>,<band>,<rxlev>
                let at = |i: usize| base + i - 1;
                out.access_technology = Some(AccessTechnology::Gsm);
                out.mcc = u16_of(&f, at(1));
                out.mnc = u16_of(&f, at(2));
                out.area = area(&f, at(3));
                out.cell_id = cell_hex(&f, at(4));
                out.rssi_dbm = within(float(&f, at(8)), -140.0, -10.0);
            }
            _ => {}
        }
    }
    seen.then_some(out)
}

/// Quectel AT+QCSQ: `+QCSQ: "LTE",<rssi>,<rsrp>,<sinr>,<rsrq>`, where the SINR is
/// reported as 0..250 for -20..+30 dB (dB = n / 5 - 20); `"NR5G",<rsrp>,<sinr>,<rsrq>`;
/// `"WCDMA",<rssi>,<rscp>,<ecio>`; `"GSM",<rssi>`; `"NOSERVICE"`.
pub fn quectel_qcsq(lines: &[String]) -> Option<ServingCell> {
    let f = lines.iter().find_map(|l| after_prefix(l, "+QCSQ"))?;
    let mut out = ServingCell::default();
    match f.first().map(|f| f.text)? {
        "LTE" | "CAT-M" | "CAT-NB" | "eMTC" | "NBIoT" => {
            out.rssi_dbm = within(float(&f, 1), -140.0, -10.0);
            out.rsrp_dbm = within(float(&f, 2), -156.0, -31.0);
            out.snr_db = within(float(&f, 3), 0.0, 250.0).map(|n| n / 5.0 - 20.0);
            out.rsrq_db = within(float(&f, 4), -43.0, 20.0);
        }
        "NR5G" => {
            out.rsrp_dbm = within(float(&f, 1), -156.0, -31.0);
            out.rsrq_db = within(float(&f, 3), -43.0, 20.0);
        }
        "WCDMA" | "GSM" => out.rssi_dbm = within(float(&f, 1), -140.0, -10.0),
        _ => {}
    }
    Some(out)
}

/// SIMCom AT+CPSI? (SIM7xxx, SIM8xxx): `+CPSI: <system mode>,<operation mode>,
/// <MCC>-<MNC>,<LAC|TAC>,<cell ID>,...`. On LTE the tail is `<RSRQ>,<RSRP>,<RSSI>,<RSSNR>`
/// with RSRQ, RSRP and RSSI in tenths of a dB(m); on NR5G_SA `<RSRP>,<RSRQ>,<SNR>`, all
/// in tenths. Cell IDs are decimal, LAC/TAC hexadecimal.
pub fn simcom_cpsi(lines: &[String]) -> Option<ServingCell> {
    let f = lines.iter().find_map(|l| after_prefix(l, "+CPSI"))?;
    let mut out = ServingCell::default();
    let mode = f.first().map(|f| f.text)?;
    if let Some((mcc, mnc, _)) = get(&f, 2).and_then(|p| plmn(p.text)) {
        out.mcc = Some(mcc);
        out.mnc = Some(mnc);
    }
    out.area = area(&f, 3).filter(|a| *a != 0);
    out.cell_id = get(&f, 4)
        .and_then(|c| c.text.trim().parse::<u64>().ok())
        .filter(|c| *c < 1 << 36 && *c != 0);
    let tenths = |i: usize| float(&f, i).map(|x| x / 10.0);
    match mode {
        "LTE" | "LTE CAT-M1" | "LTE NB-IOT" | "CAT-M1" | "NB-IOT" => {
            out.access_technology = Some(match mode {
                "LTE CAT-M1" | "CAT-M1" => AccessTechnology::EutranCatM,
                "LTE NB-IOT" | "NB-IOT" => AccessTechnology::EutranNbIot,
                _ => AccessTechnology::Eutran,
            });
            out.rsrq_db = within(tenths(10), -43.0, 20.0);
            out.rsrp_dbm = within(tenths(11), -156.0, -31.0);
            out.rssi_dbm = within(tenths(12), -140.0, -10.0);
            out.snr_db = within(float(&f, 13), -30.0, 50.0);
        }
        "NR5G_SA" => {
            out.access_technology = Some(AccessTechnology::Nr5gcn);
            out.rsrp_dbm = within(tenths(8), -156.0, -31.0);
            out.rsrq_db = within(tenths(9), -43.0, 20.0);
            out.snr_db = within(tenths(10), -30.0, 50.0);
        }
        "GSM" | "EDGE" | "GPRS" => {
            out.access_technology = Some(AccessTechnology::Gsm);
            out.rssi_dbm = within(float(&f, 6), -140.0, -10.0);
        }
        "WCDMA" | "HSDPA" | "HSUPA" | "HSPA+" => {
            out.access_technology = Some(AccessTechnology::Utran);
        }
        // "NO SERVICE" and unknown modes: nothing to report but the PLMN, if any.
        _ => {}
    }
    Some(out)
}

/// u-blox AT+UCGED? in mode 2 (SARA-R4/R5, LARA-R2/R6):
///
/// ```text
/// +UCGED: 2
/// <rat>,<svc>,<MCC>,<MNC>
/// <earfcn>,<Lband>,<ul_BW>,<dl_BW>,<tac>,<LcellId>,<P-CID>,<mTmsi>,<mmeGrId>,<mmeCode>,
///   <rsrp>,<rsrq>,<Lsinr>,...
/// ```
///
/// RSRP and RSRQ are the 3GPP indexes (as in AT+CESQ), Lsinr in dB; `fff`/`255` mean
/// unknown. Only the LTE radio line is decoded.
pub fn ublox_ucged(lines: &[String]) -> Option<ServingCell> {
    let mut it = lines
        .iter()
        .map(|l| l.trim())
        .skip_while(|l| after_prefix(l, "+UCGED").is_none());
    let mode = after_prefix(it.next()?, "+UCGED")?;
    if mode.first().and_then(Field::int) != Some(2) {
        return None;
    }
    let mut out = ServingCell::default();
    let head = split(it.next()?);
    let rat = get(&head, 0).and_then(Field::int);
    out.access_technology = match rat {
        Some(2) => Some(AccessTechnology::Gsm),
        Some(3) => Some(AccessTechnology::Utran),
        Some(4) => Some(AccessTechnology::Eutran),
        Some(6) => Some(AccessTechnology::EutranCatM),
        Some(7) => Some(AccessTechnology::EutranNbIot),
        _ => None,
    };
    out.mcc = u16_of(&head, 1 + 1).filter(|m| *m <= 999);
    out.mnc = u16_of(&head, 3).filter(|m| *m <= 999);
    if !matches!(rat, Some(4 | 6 | 7)) {
        return Some(out);
    }
    let Some(radio) = it.next() else {
        return Some(out);
    };
    let radio = after_prefix(radio, "+RAT").unwrap_or_else(|| split(radio));
    out.area = area(&radio, 4).filter(|a| *a != 0xffff && *a != 0xfffe);
    out.cell_id = cell_hex(&radio, 5).filter(|c| *c != 0 && *c != 0xfff_ffff);
    out.rsrp_dbm = get(&radio, 10).and_then(Field::int).and_then(cesq_rsrp);
    out.rsrq_db = get(&radio, 11).and_then(Field::int).and_then(cesq_rsrq);
    out.snr_db = within(float(&radio, 12), -30.0, 50.0);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn vendors_by_manufacturer() {
        assert_eq!(Vendor::from_manufacturer("Quectel"), Vendor::Quectel);
        assert_eq!(
            Vendor::from_manufacturer("SIMCOM INCORPORATED"),
            Vendor::Simcom
        );
        assert_eq!(Vendor::from_manufacturer("u-blox"), Vendor::Ublox);
        assert_eq!(
            Vendor::from_manufacturer("Sierra Wireless, Incorporated"),
            Vendor::Other
        );
    }

    #[test]
    fn qeng_lte_from_an_ec25() {
        // Logged from a module next to +CEREG: 2,1,"3193","08F381C5",7 and +COPS: 0,2,"46000",7.
        let c = quectel_qeng(&l(&[
            "+QENG: \"servingcell\",\"NOCONN\",\"LTE\",\"FDD\",460,00,8F381C5,107,1300,3,5,5,3193,-98,-13,-70,-3,0,0,21",
        ]))
        .unwrap();
        assert_eq!(c.access_technology, Some(AccessTechnology::Eutran));
        assert_eq!((c.mcc, c.mnc), (Some(460), Some(0)));
        assert_eq!(c.cell_id, Some(0x8f3_81c5));
        assert_eq!(c.area, Some(0x3193));
        assert_eq!(c.rsrp_dbm, Some(-98.0));
        assert_eq!(c.rsrq_db, Some(-13.0));
        assert_eq!(c.rssi_dbm, Some(-70.0));
        assert_eq!(c.snr_db, Some(-3.0));
    }

    #[test]
    fn qeng_other_layouts() {
        let c = quectel_qeng(&l(&[
            "+QENG: \"servingcell\",\"NOCONN\",\"NR5G-SA\",\"TDD\",262,01,1A2B3C4D5,123,00A1B2,643296,78,12,-85,-11,15,1,-",
        ]))
        .unwrap();
        assert_eq!(c.access_technology, Some(AccessTechnology::Nr5gcn));
        assert_eq!(c.cell_id, Some(0x1_a2b3_c4d5));
        assert_eq!(c.area, Some(0xa1b2));
        assert_eq!(
            (c.rsrp_dbm, c.rsrq_db, c.snr_db),
            (Some(-85.0), Some(-11.0), Some(15.0))
        );

        let c = quectel_qeng(&l(&[
            "+QENG: \"servingcell\",\"NOCONN\"",
            "+QENG: \"LTE\",\"FDD\",262,01,25A5507,212,500,1,5,5,67BD,-93,-7,-65,15,28,-,-",
            "+QENG:\"NR5G-NSA\",262,01,747,-90,20,-11,627264,78,12,1",
        ]))
        .unwrap();
        assert_eq!(c.access_technology, Some(AccessTechnology::EutraNrDual));
        assert_eq!(c.cell_id, Some(0x25a_5507));
        assert_eq!(c.area, Some(0x67bd));
        assert_eq!(c.rsrp_dbm, Some(-93.0));

        let c = quectel_qeng(&l(&[
            "+QENG: \"servingcell\",\"NOCONN\",\"WCDMA\",262,02,DB8,2E3F0F1,10638,33,1,-81,-3,-,-,-,-,-",
        ]))
        .unwrap();
        assert_eq!(c.access_technology, Some(AccessTechnology::Utran));
        assert_eq!((c.area, c.cell_id), (Some(0xdb8), Some(0x2e3_f0f1)));

        let c = quectel_qeng(&l(&["+QENG: \"servingcell\",\"SEARCH\""])).unwrap();
        assert_eq!(c, ServingCell::default());
        assert_eq!(quectel_qeng(&l(&["+QCSQ: \"LTE\""])), None);
    }

    #[test]
    fn qcsq() {
        let c = quectel_qcsq(&l(&["+QCSQ: \"LTE\",-66,-94,142,-9"])).unwrap();
        assert_eq!(c.rssi_dbm, Some(-66.0));
        assert_eq!(c.rsrp_dbm, Some(-94.0));
        assert!((c.snr_db.unwrap() - 8.4).abs() < 1e-9);
        assert_eq!(c.rsrq_db, Some(-9.0));
        assert_eq!(
            quectel_qcsq(&l(&["+QCSQ: \"NOSERVICE\""])),
            Some(ServingCell::default())
        );
    }

    #[test]
    fn cpsi() {
        let c = simcom_cpsi(&l(&[
            "+CPSI: LTE,Online,404-45,0x21F9,322642,453,EUTRAN-BAND40,39275,4,4,-168,-1126,-773,7",
        ]))
        .unwrap();
        assert_eq!(c.access_technology, Some(AccessTechnology::Eutran));
        assert_eq!((c.mcc, c.mnc), (Some(404), Some(45)));
        assert_eq!(c.area, Some(0x21f9));
        assert_eq!(c.cell_id, Some(322_642));
        assert_eq!(c.rsrq_db, Some(-16.8));
        assert_eq!(c.rsrp_dbm, Some(-112.6));
        assert_eq!(c.rssi_dbm, Some(-77.3));
        assert_eq!(c.snr_db, Some(7.0));

        let c = simcom_cpsi(&l(&[
            "+CPSI: NR5G_SA,Online,460-11,0x6F4700,29869309958,201,NR5G_BAND78,627264,-740,-110,190",
        ]))
        .unwrap();
        assert_eq!(c.access_technology, Some(AccessTechnology::Nr5gcn));
        assert_eq!(c.cell_id, Some(29_869_309_958));
        assert_eq!(
            (c.rsrp_dbm, c.rsrq_db, c.snr_db),
            (Some(-74.0), Some(-11.0), Some(19.0))
        );

        let c = simcom_cpsi(&l(&[
            "+CPSI: GSM,Online,460-00,0x182d,12401,27 EGSM 900,-64,2110,42-42",
        ]))
        .unwrap();
        assert_eq!(
            (c.area, c.cell_id, c.rssi_dbm),
            (Some(0x182d), Some(12401), Some(-64.0))
        );
        let c = simcom_cpsi(&l(&["+CPSI: NO SERVICE,Online"])).unwrap();
        assert_eq!(c, ServingCell::default());
    }

    #[test]
    fn ucged_from_a_sara_r4() {
        let c = ublox_ucged(&l(&[
            "+UCGED: 2",
            "6,4,001,01",
            "2525,5,25,50,2b67,69f6bc7,111,00000000,ffff,ff,67,19,0.00,255,255,255,67,11,255,0,255,255,0,0,0",
        ]))
        .unwrap();
        assert_eq!(c.access_technology, Some(AccessTechnology::EutranCatM));
        assert_eq!((c.mcc, c.mnc), (Some(1), Some(1)));
        assert_eq!(c.area, Some(0x2b67));
        assert_eq!(c.cell_id, Some(0x69f_6bc7));
        assert_eq!(c.rsrp_dbm, Some(-74.0));
        assert_eq!(c.rsrq_db, Some(-10.5));
        assert_eq!(c.snr_db, Some(0.0));

        // Not registered: unknown PLMN and cell.
        let c = ublox_ucged(&l(&[
            "+UCGED: 2",
            "6,4,fff,fff",
            "5110,13,50,50,ffff,0000000,254,d0fafd59,ff49,b1,27,15,0.50,1,255,255,28,255,255,0,255,255,0",
        ]))
        .unwrap();
        assert_eq!((c.mcc, c.mnc, c.area, c.cell_id), (None, None, None, None));
        assert_eq!(c.rsrp_dbm, Some(-114.0));
        assert_eq!(ublox_ucged(&l(&["+UCGED: 5"])), None);
        assert_eq!(ublox_ucged(&l(&["+UCGED: 2"])), None);
    }
}
