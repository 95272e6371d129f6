//! One command's exchange, sans I/O: lines in, an answer or an error out.
//!
//! What comes back after a command is its echo (unless `ATE0` took), information lines,
//! and a final result code (V.250 5.7.1, 3GPP TS 27.007 9.2, TS 27.005 3.2.5). Unsolicited
//! result codes can arrive at any point in between; they are recognised by their prefix
//! and set aside, never taken as the answer.

use std::fmt;

/// A final result code other than OK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// Plain `ERROR` (also what a modem says to a command it does not know).
    Error,
    /// `+CME ERROR: <err>`: numeric with `AT+CMEE=1`, text with `AT+CMEE=2`.
    Cme(ErrorCode),
    /// `+CMS ERROR: <err>` (SMS commands).
    Cms(ErrorCode),
    /// `NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE`.
    Call(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    Numeric(u16),
    Text(String),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Error => write!(f, "ERROR"),
            CommandError::Cme(ErrorCode::Numeric(n)) => match cme_meaning(*n) {
                Some(m) => write!(f, "+CME ERROR: {n} ({m})"),
                None => write!(f, "+CME ERROR: {n}"),
            },
            CommandError::Cms(ErrorCode::Numeric(n)) => match cms_meaning(*n) {
                Some(m) => write!(f, "+CMS ERROR: {n} ({m})"),
                None => write!(f, "+CMS ERROR: {n}"),
            },
            CommandError::Cme(ErrorCode::Text(t)) => write!(f, "+CME ERROR: {t}"),
            CommandError::Cms(ErrorCode::Text(t)) => write!(f, "+CMS ERROR: {t}"),
            CommandError::Call(t) => write!(f, "{t}"),
        }
    }
}

impl std::error::Error for CommandError {}

/// Mobile termination error codes, 3GPP TS 27.007 clause 9.2.
pub fn cme_meaning(code: u16) -> Option<&'static str> {
    Some(match code {
        0 => "phone failure",
        1 => "no connection to phone",
        2 => "phone-adaptor link reserved",
        3 => "operation not allowed",
        4 => "operation not supported",
        5 => "PH-SIM PIN required",
        6 => "PH-FSIM PIN required",
        7 => "PH-FSIM PUK required",
        10 => "SIM not inserted",
        11 => "SIM PIN required",
        12 => "SIM PUK required",
        13 => "SIM failure",
        14 => "SIM busy",
        15 => "SIM wrong",
        16 => "incorrect password",
        17 => "SIM PIN2 required",
        18 => "SIM PUK2 required",
        20 => "memory full",
        21 => "invalid index",
        22 => "not found",
        23 => "memory failure",
        24 => "text string too long",
        25 => "invalid characters in text string",
        26 => "dial string too long",
        27 => "invalid characters in dial string",
        30 => "no network service",
        31 => "network timeout",
        32 => "network not allowed - emergency calls only",
        40 => "network personalization PIN required",
        41 => "network personalization PUK required",
        42 => "network subset personalization PIN required",
        43 => "network subset personalization PUK required",
        44 => "service provider personalization PIN required",
        45 => "service provider personalization PUK required",
        46 => "corporate personalization PIN required",
        47 => "corporate personalization PUK required",
        48 => "hidden key required",
        49 => "EAP method not supported",
        50 => "incorrect parameters",
        51 => "command implemented but currently disabled",
        52 => "command aborted by user",
        53 => "not attached to network due to MT functionality restrictions",
        54 => "modem not allowed - MT restricted to emergency calls only",
        55 => "operation not allowed because of MT functionality restrictions",
        56 => "fixed dial number only allowed",
        57 => "temporarily out of service due to other MT usage",
        58 => "language/alphabet not supported",
        59 => "unexpected data value",
        60 => "system failure",
        61 => "data missing",
        62 => "call barred",
        63 => "message waiting indication subscription failure",
        100 => "unknown",
        103 => "illegal MS",
        106 => "illegal ME",
        107 => "GPRS services not allowed",
        108 => "GPRS services and non-GPRS services not allowed",
        111 => "PLMN not allowed",
        112 => "location area not allowed",
        113 => "roaming not allowed in this location area",
        114 => "GPRS services not allowed in this PLMN",
        115 => "no suitable cells in location area",
        122 => "congestion",
        // 102 to 134: the 24.008 cause plus 100.
        125 => "not authorized for this CSG",
        126 => "insufficient resources",
        127 => "missing or unknown APN",
        128 => "unknown PDP address or PDP type",
        129 => "user authentication failed",
        130 => "activation rejected by GGSN, Serving GW or PDN GW",
        131 => "activation rejected, unspecified",
        132 => "service option not supported",
        133 => "requested service option not subscribed",
        134 => "service option temporarily out of order",
        148 => "unspecified GPRS error",
        149 => "PDP authentication failure",
        150 => "invalid mobile class",
        _ => return None,
    })
}

/// Message service failure codes, 3GPP TS 27.005 clause 3.2.5.
pub fn cms_meaning(code: u16) -> Option<&'static str> {
    Some(match code {
        300 => "ME failure",
        301 => "SMS service of ME reserved",
        302 => "operation not allowed",
        303 => "operation not supported",
        304 => "invalid PDU mode parameter",
        305 => "invalid text mode parameter",
        310 => "(U)SIM not inserted",
        311 => "(U)SIM PIN required",
        312 => "PH-(U)SIM PIN required",
        313 => "(U)SIM failure",
        314 => "(U)SIM busy",
        315 => "(U)SIM wrong",
        316 => "(U)SIM PUK required",
        317 => "(U)SIM PIN2 required",
        318 => "(U)SIM PUK2 required",
        320 => "memory failure",
        321 => "invalid memory index",
        322 => "memory full",
        330 => "SMSC address unknown",
        331 => "no network service",
        332 => "network timeout",
        340 => "no +CNMA acknowledgement expected",
        500 => "unknown error",
        _ => return None,
    })
}

/// A final result code, if `line` is one.
pub fn final_result(line: &str) -> Option<Result<(), CommandError>> {
    let line = line.trim();
    let code = |rest: &str| {
        let rest = rest.trim();
        match rest.parse::<u16>() {
            Ok(n) => ErrorCode::Numeric(n),
            Err(_) => ErrorCode::Text(rest.chars().take(128).collect()),
        }
    };
    if line == "OK" {
        return Some(Ok(()));
    }
    if line == "ERROR" {
        return Some(Err(CommandError::Error));
    }
    if let Some(rest) = line.strip_prefix("+CME ERROR:") {
        return Some(Err(CommandError::Cme(code(rest))));
    }
    if let Some(rest) = line.strip_prefix("+CMS ERROR:") {
        return Some(Err(CommandError::Cms(code(rest))));
    }
    if matches!(line, "NO CARRIER" | "BUSY" | "NO ANSWER" | "NO DIALTONE") {
        return Some(Err(CommandError::Call(line.to_string())));
    }
    None
}

/// Prefixes of unsolicited result codes from 27.007, 27.005 and the common vendors'
/// manuals. Lines with a `+` prefix other than the command's are taken as unsolicited
/// anyway; this list matters for the bare ones and for documentation.
const BARE_URCS: &[&str] = &[
    "RING",
    "RDY",
    "SMS DONE",
    "PB DONE",
    "POWERED DOWN",
    "NORMAL POWER DOWN",
    "Call Ready",
    "SMS Ready",
];

/// Commands whose answer is a bare line rather than `+NAME: ...` (V.250 and 27.007
/// identification commands).
fn answers_bare(command: &str) -> bool {
    let c = command.trim().to_ascii_uppercase();
    [
        "AT+CGMI",
        "AT+CGMM",
        "AT+CGMR",
        "AT+CGSN",
        "AT+CIMI",
        "AT+CCID",
        "AT+GMI",
        "AT+GMM",
        "AT+GMR",
        "AT+GSN",
        "ATI",
        "AT+UCGED?",
    ]
    .iter()
    .any(|b| c == *b)
}

/// The information-line prefix of a command's answer: `AT+COPS?` -> `+COPS`.
fn answer_prefix(command: &str) -> Option<String> {
    let c = command.trim();
    let body = c.get(2..)?;
    if !body.starts_with(['+', '^', '$', '#', '*']) {
        return None;
    }
    let end = body.find(['=', '?']).unwrap_or(body.len());
    Some(body.get(..end)?.to_ascii_uppercase())
}

/// Other prefixes some modules answer a command with.
fn extra_prefixes(prefix: &str) -> &'static [&'static str] {
    match prefix {
        "+CCID" => &["+ICCID", "+QCCID"],
        "+UCGED" => &["+RAT"],
        _ => &[],
    }
}

/// Registration queries answer with the same prefix their unsolicited codes use.
fn is_registration(prefix: &str) -> bool {
    matches!(prefix, "+CREG" | "+CGREG" | "+CEREG" | "+C5GREG")
}

/// What a line turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Echo,
    Answer,
    Unsolicited,
    /// Noise: a bare line where a prefixed answer was due, or the remains of an answer
    /// that timed out earlier.
    Ignored,
    Final(Result<(), CommandError>),
}

/// The state of one command's exchange.
#[derive(Debug)]
pub struct Exchange {
    command: String,
    prefix: Option<String>,
    bare: bool,
    answered: bool,
    lines: Vec<String>,
    unsolicited: Vec<String>,
}

impl Exchange {
    pub fn new(command: &str) -> Exchange {
        Exchange {
            command: command.trim().to_string(),
            prefix: answer_prefix(command),
            bare: answers_bare(command),
            answered: false,
            lines: Vec::new(),
            unsolicited: Vec::new(),
        }
    }

    /// Classifies one received line (without its line ending) and keeps it where it
    /// belongs.
    pub fn line(&mut self, line: &str) -> Line {
        let line = line.trim();
        if line.is_empty() {
            return Line::Ignored;
        }
        let kind = self.classify(line);
        match &kind {
            Line::Answer => {
                self.answered = true;
                self.lines.push(line.to_string());
            }
            Line::Unsolicited => self.unsolicited.push(line.to_string()),
            _ => {}
        }
        kind
    }

    fn classify(&self, line: &str) -> Line {
        if let Some(result) = final_result(line) {
            return Line::Final(result);
        }
        if !self.answered && line.eq_ignore_ascii_case(&self.command) {
            return Line::Echo;
        }
        if BARE_URCS.iter().any(|u| line.starts_with(u)) {
            return Line::Unsolicited;
        }
        let prefixed = line.starts_with(['+', '^', '$', '#', '*']);
        if let Some(prefix) = &self.prefix {
            let ours = |p: &str| super::fields::after_prefix(line, p).is_some();
            if ours(prefix) {
                if is_registration(prefix) && !self.is_registration_answer(line, prefix) {
                    return Line::Unsolicited;
                }
                return Line::Answer;
            }
            if extra_prefixes(prefix).iter().any(|p| ours(p)) {
                return Line::Answer;
            }
        }
        if prefixed {
            return Line::Unsolicited;
        }
        if self.bare {
            Line::Answer
        } else {
            Line::Ignored
        }
    }

    /// `+CREG: <n>,<stat>[,...]` answers a query; the unsolicited `+CREG: <stat>[,"lac",...]`
    /// has one field or a quoted second one.
    fn is_registration_answer(&self, line: &str, prefix: &str) -> bool {
        if !self.command.ends_with('?') {
            return false;
        }
        match super::fields::after_prefix(line, prefix) {
            Some(f) => f.len() >= 2 && f.get(1).is_some_and(|s| !s.quoted && !s.is_empty()),
            None => false,
        }
    }

    pub fn answer(&self) -> &[String] {
        &self.lines
    }

    pub fn into_parts(self) -> (Vec<String>, Vec<String>) {
        (self.lines, self.unsolicited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(command: &str, lines: &[&str]) -> (Vec<String>, Vec<String>, Line) {
        let mut e = Exchange::new(command);
        let mut last = Line::Ignored;
        for l in lines {
            last = e.line(l);
            if matches!(last, Line::Final(_)) {
                break;
            }
        }
        let (a, u) = e.into_parts();
        (a, u, last)
    }

    #[test]
    fn echo_answer_and_ok() {
        let (a, u, f) = run("AT+CSQ", &["AT+CSQ", "", "+CSQ: 17,99", "", "OK"]);
        assert_eq!(a, vec!["+CSQ: 17,99"]);
        assert!(u.is_empty());
        assert_eq!(f, Line::Final(Ok(())));
    }

    #[test]
    fn unsolicited_codes_between_answer_lines() {
        let (a, u, _) = run(
            "AT+CGDCONT?",
            &[
                "+CGDCONT: 1,\"IP\",\"internet\",\"0.0.0.0\",0,0",
                "+CEREG: 1,\"3193\",\"08F381C5\",7",
                "RING",
                "+CGDCONT: 2,\"IPV4V6\",\"ims\",\"\",0,0",
                "+QIND: \"csq\",20,99",
                "OK",
            ],
        );
        assert_eq!(a.len(), 2);
        assert_eq!(u.len(), 3);
    }

    #[test]
    fn registration_query_and_its_urc() {
        let (a, u, _) = run(
            "AT+CEREG?",
            &[
                "+CEREG: 5",
                "+CEREG: 2,1,\"3193\",\"08F381C5\",7",
                "+CEREG: 1,\"3193\",\"08F381C5\",7",
                "OK",
            ],
        );
        assert_eq!(a, vec!["+CEREG: 2,1,\"3193\",\"08F381C5\",7"]);
        assert_eq!(u.len(), 2);
        // Setting the mode is not a query: every +CEREG line is unsolicited.
        let (a, _, _) = run("AT+CEREG=2", &["+CEREG: 2,1", "OK"]);
        assert!(a.is_empty());
    }

    #[test]
    fn bare_answers() {
        let (a, u, _) = run("AT+CGSN", &["AT+CGSN", "RDY", "490154203237518", "OK"]);
        assert_eq!(a, vec!["490154203237518"]);
        assert_eq!(u, vec!["RDY"]);
        let (a, _, _) = run("AT+CCID", &["+ICCID: 89860318760240144236", "OK"]);
        assert_eq!(a.len(), 1);
        // A bare line where +CSQ: was due is noise, not the answer.
        let (a, _, _) = run("AT+CSQ", &["garbage", "+CSQ: 3,4", "OK"]);
        assert_eq!(a, vec!["+CSQ: 3,4"]);
    }

    #[test]
    fn error_codes() {
        assert_eq!(
            final_result("+CME ERROR: 10"),
            Some(Err(CommandError::Cme(ErrorCode::Numeric(10))))
        );
        assert_eq!(
            final_result("+CME ERROR: SIM not inserted"),
            Some(Err(CommandError::Cme(ErrorCode::Text(
                "SIM not inserted".into()
            ))))
        );
        assert_eq!(
            CommandError::Cme(ErrorCode::Numeric(10)).to_string(),
            "+CME ERROR: 10 (SIM not inserted)"
        );
        assert_eq!(
            CommandError::Cms(ErrorCode::Numeric(310)).to_string(),
            "+CMS ERROR: 310 ((U)SIM not inserted)"
        );
        assert_eq!(
            CommandError::Cme(ErrorCode::Numeric(999)).to_string(),
            "+CME ERROR: 999"
        );
        assert_eq!(
            final_result("NO CARRIER"),
            Some(Err(CommandError::Call("NO CARRIER".into())))
        );
        assert_eq!(final_result("OKAY"), None);
        assert_eq!(
            final_result("+CME ERROR: 99999"),
            Some(Err(CommandError::Cme(ErrorCode::Text("99999".into()))))
        );
    }

    #[test]
    fn prefixes() {
        assert_eq!(answer_prefix("AT+COPS?").as_deref(), Some("+COPS"));
        assert_eq!(
            answer_prefix("AT+QENG=\"servingcell\"").as_deref(),
            Some("+QENG")
        );
        assert_eq!(answer_prefix("ATE0"), None);
        assert_eq!(answer_prefix("A"), None);
        assert_eq!(answer_prefix("AT"), None);
    }
}
