//! The data connection over AT: a PDP context defined with AT+CGDCONT, its
//! authentication set with AT+CGAUTH and (re)activated with AT+CGACT, 3GPP TS 27.007
//! 10.1.1, 10.1.31 and 10.1.10.

use std::fmt;

use super::response::{CommandError, ErrorCode};
use crate::modem::{ApnAuth, ApnSettings};

/// A server's change to the data connection, carried out between two polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataChange {
    /// Define the data context with these settings and activate it again. `id` comes back
    /// with the outcome.
    Connect { id: u16, settings: ApnSettings },
    /// Deactivate the data context.
    Disconnect,
}

/// Why a connection with new settings was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// A value 27.007 cannot carry in a quoted string (a `"`, a control character or a
    /// character outside the modem's IRA alphabet); nothing was sent.
    Unsendable { field: &'static str },
    /// The modem refused a command (for AT+CGACT, the network's rejection).
    Refused {
        command: String,
        error: CommandError,
    },
    /// The port failed or the modem did not answer.
    Port(String),
}

impl ConnectError {
    /// The 3GPP TS 24.008 / 24.301 session management cause behind the error, where
    /// the modem gave one.
    pub fn reject_cause(&self) -> Option<u8> {
        match self {
            ConnectError::Refused { error, .. } => reject_cause(error),
            _ => None,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Unsendable { field } => {
                write!(f, "the {field} cannot be sent in an AT command")
            }
            // The command carries no secret: AT+CGAUTH failures are reported without it.
            ConnectError::Refused { command, error } => write!(f, "{command}: {error}"),
            ConnectError::Port(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// The outcome of a [`DataChange::Connect`], handed back with the poll that follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOutcome {
    pub id: u16,
    pub result: Result<(), ConnectError>,
}

/// A string for a quoted 27.007 parameter: printable ASCII without `"` (the default
/// character set, IRA, has no escape for it).
fn quotable<'a>(text: &'a str, field: &'static str) -> Result<&'a str, ConnectError> {
    if text.bytes().all(|b| (0x20..0x7F).contains(&b) && b != b'"') {
        Ok(text)
    } else {
        Err(ConnectError::Unsendable { field })
    }
}

/// `AT+CGDCONT=<cid>,"<PDP_type>","<APN>"`; an empty APN lets the network choose.
pub fn cgdcont_command(cid: u32, pdp_type: &str, apn: &str) -> Result<String, ConnectError> {
    let pdp_type = quotable(pdp_type, "PDP type")?;
    let apn = quotable(apn, "APN")?;
    Ok(format!("AT+CGDCONT={cid},\"{pdp_type}\",\"{apn}\""))
}

/// 27.007 `<auth_prot>`: 0 none, 1 PAP, 2 CHAP. It has no "either": CHAP, the one that
/// does not send the secret in clear, is asked for.
pub fn auth_protocol(auth: ApnAuth) -> u8 {
    match auth {
        ApnAuth::None => 0,
        ApnAuth::Pap => 1,
        ApnAuth::Chap | ApnAuth::PapOrChap => 2,
    }
}

/// `AT+CGAUTH=<cid>,<auth_prot>[,"<userid>","<password>"]`. The result holds the secret:
/// it goes to the port and nowhere else.
pub fn cgauth_command(cid: u32, settings: &ApnSettings) -> Result<String, ConnectError> {
    let protocol = auth_protocol(settings.auth);
    if protocol == 0 {
        return Ok(format!("AT+CGAUTH={cid},0"));
    }
    let user = quotable(settings.user.as_deref().unwrap_or(""), "user name")?;
    let password = quotable(settings.password.as_deref().unwrap_or(""), "secret")?;
    Ok(format!(
        "AT+CGAUTH={cid},{protocol},\"{user}\",\"{password}\""
    ))
}

/// `text` for logs and errors: an AT+CGAUTH command (or its echo) loses its quoted
/// user name and secret.
pub fn redacted(text: &str) -> std::borrow::Cow<'_, str> {
    let is_auth = text
        .get(..9)
        .is_some_and(|p| p.eq_ignore_ascii_case("AT+CGAUTH"));
    match text.find('"') {
        Some(i) if is_auth => format!("{}...", text.get(..i).unwrap_or("AT+CGAUTH")).into(),
        _ => text.into(),
    }
}

/// `AT+CGACT=<state>,<cid>`.
pub fn cgact_command(cid: u32, active: bool) -> String {
    format!("AT+CGACT={},{cid}", u8::from(active))
}

/// The PDP type for new settings: the context's own when it names one 27.007 knows,
/// else dual stack.
pub fn pdp_type_for(previous: Option<&str>) -> &'static str {
    match previous.map(str::to_ascii_uppercase).as_deref() {
        Some("IP") => "IP",
        Some("IPV6") => "IPV6",
        _ => "IPV4V6",
    }
}

/// The session management cause of a `+CME ERROR` from AT+CGACT (27.007 9.2.2: codes
/// 102 to 150 are the 24.008 GMM/SM causes plus 100, 171 to 180 the 24.301 ESM causes),
/// within object 11's range 0..111.
pub fn reject_cause(error: &CommandError) -> Option<u8> {
    let CommandError::Cme(ErrorCode::Numeric(code)) = error else {
        return None;
    };
    let cause = match *code {
        // 148 is "unspecified GPRS error", 150 "invalid mobile class": no cause.
        102..=134 => code - 100,
        149 => 29,
        171 => 49,
        172 => 95,
        173 => 96,
        174 => 99,
        175 => 100,
        176 => 111,
        177 => 8,
        178 => 65,
        179 => 66,
        180 => 48,
        _ => return None,
    };
    u8::try_from(cause).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(auth: ApnAuth, user: Option<&str>, password: Option<&str>) -> ApnSettings {
        ApnSettings {
            apn: "iot.example".into(),
            auth,
            user: user.map(Into::into),
            password: password.map(Into::into),
        }
    }

    #[test]
    fn commands_per_27_007() {
        assert_eq!(
            cgdcont_command(1, "IPV4V6", "iot.example").unwrap(),
            r#"AT+CGDCONT=1,"IPV4V6","iot.example""#
        );
        assert_eq!(
            cgdcont_command(3, "IP", "").unwrap(),
            r#"AT+CGDCONT=3,"IP","""#
        );
        assert_eq!(
            cgauth_command(1, &settings(ApnAuth::Pap, Some("gw"), Some("pw"))).unwrap(),
            r#"AT+CGAUTH=1,1,"gw","pw""#
        );
        assert_eq!(
            cgauth_command(1, &settings(ApnAuth::Chap, Some("gw"), None)).unwrap(),
            r#"AT+CGAUTH=1,2,"gw","""#
        );
        assert_eq!(
            cgauth_command(2, &settings(ApnAuth::PapOrChap, Some("gw"), Some("pw"))).unwrap(),
            r#"AT+CGAUTH=2,2,"gw","pw""#
        );
        // No authentication: user and secret are not sent at all.
        assert_eq!(
            cgauth_command(1, &settings(ApnAuth::None, Some("gw"), Some("pw"))).unwrap(),
            "AT+CGAUTH=1,0"
        );
        assert_eq!(redacted(r#"AT+CGAUTH=1,1,"gw","pw""#), "AT+CGAUTH=1,1,...");
        assert_eq!(redacted(r#"at+cgauth=1,2,"gw","pw""#), "at+cgauth=1,2,...");
        assert_eq!(redacted("AT+CGAUTH=1,0"), "AT+CGAUTH=1,0");
        assert_eq!(
            redacted(r#"AT+CGDCONT=1,"IP","x""#),
            r#"AT+CGDCONT=1,"IP","x""#
        );
        assert_eq!(cgact_command(1, false), "AT+CGACT=0,1");
        assert_eq!(cgact_command(4, true), "AT+CGACT=1,4");
    }

    #[test]
    fn values_a_command_cannot_carry_are_refused() {
        for apn in ["a\"b", "a\rb", "a\nAT+CFUN=0", "ä.example", "a\u{7f}"] {
            assert_eq!(
                cgdcont_command(1, "IP", apn),
                Err(ConnectError::Unsendable { field: "APN" }),
                "{apn:?}"
            );
        }
        let e = cgauth_command(1, &settings(ApnAuth::Pap, Some("gw"), Some("p\"w"))).unwrap_err();
        assert_eq!(e, ConnectError::Unsendable { field: "secret" });
        assert!(!e.to_string().contains("p\"w"), "the secret is not shown");
        assert_eq!(
            cgauth_command(1, &settings(ApnAuth::Chap, Some("g\r"), Some("pw"))),
            Err(ConnectError::Unsendable { field: "user name" })
        );
    }

    #[test]
    fn pdp_type_follows_the_context() {
        assert_eq!(pdp_type_for(Some("IP")), "IP");
        assert_eq!(pdp_type_for(Some("ipv6")), "IPV6");
        assert_eq!(pdp_type_for(Some("IPV4V6")), "IPV4V6");
        assert_eq!(pdp_type_for(Some("PPP")), "IPV4V6");
        assert_eq!(pdp_type_for(None), "IPV4V6");
    }

    #[test]
    fn cme_errors_become_reject_causes() {
        let cme = |n| CommandError::Cme(ErrorCode::Numeric(n));
        // 27.007 9.2.2 with the 24.008 cause in brackets.
        assert_eq!(reject_cause(&cme(127)), Some(27), "missing or unknown APN");
        assert_eq!(
            reject_cause(&cme(129)),
            Some(29),
            "user authentication failed"
        );
        assert_eq!(reject_cause(&cme(133)), Some(33), "option not subscribed");
        assert_eq!(
            reject_cause(&cme(149)),
            Some(29),
            "PDP authentication failure"
        );
        assert_eq!(reject_cause(&cme(103)), Some(3), "illegal MS");
        assert_eq!(
            reject_cause(&cme(177)),
            Some(8),
            "operator determined barring"
        );
        assert_eq!(
            reject_cause(&cme(176)),
            Some(111),
            "protocol error, unspecified"
        );
        assert_eq!(reject_cause(&cme(148)), None);
        assert_eq!(reject_cause(&cme(3)), None);
        assert_eq!(reject_cause(&CommandError::Error), None);
        assert_eq!(
            reject_cause(&CommandError::Cme(ErrorCode::Text(
                "missing or unknown APN".into()
            ))),
            None
        );
        let refused = ConnectError::Refused {
            command: "AT+CGACT=1,1".into(),
            error: cme(133),
        };
        assert_eq!(refused.reject_cause(), Some(33));
        assert_eq!(ConnectError::Port("gone".into()).reject_cause(), None);
    }
}
