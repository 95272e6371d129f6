//! The configuration file, `/etc/lwm2md/lwm2md.toml` by default.
//!
//! Unknown keys are errors, and every error names the file, line, column and key, because
//! an operator fixing a gateway over a serial console has nothing else to go on.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::codec::ContentFormat;

pub const DEFAULT_PATH: &str = "/etc/lwm2md/lwm2md.toml";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lwm2md";
pub const DEFAULT_LIFETIME: u32 = 86400;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Endpoint Client Name; derived from /etc/machine-id when absent.
    pub endpoint: Option<String>,
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// tracing filter directive ("info", "lwm2md=debug"); RUST_LOG wins when set.
    pub log_level: Option<String>,
    /// Format of multi-value responses when the server sends no Accept option.
    #[serde(default)]
    pub content_format: HierarchicalFormat,
    #[serde(default)]
    pub coap: CoapConfig,
    #[serde(default)]
    pub device: DeviceConfig,
    #[serde(default, rename = "server")]
    pub servers: Vec<ServerConfig>,
    /// Values pushed to the servers on a schedule (Send, `POST /dp`).
    #[serde(default, rename = "send")]
    pub sends: Vec<SendConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendConfig {
    /// LwM2M paths (`/3/0/10`) whose values go out together.
    pub paths: Vec<String>,
    /// Seconds between two Sends.
    pub interval: u32,
    #[serde(default)]
    pub format: SendFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SendFormat {
    /// The smallest on the wire, and the Send default of LwM2M 1.1.
    #[default]
    SenmlCbor,
    SenmlJson,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HierarchicalFormat {
    /// Understood by LwM2M 1.0, 1.1 and 1.2 servers alike.
    #[default]
    Tlv,
    SenmlJson,
    SenmlCbor,
}

impl HierarchicalFormat {
    pub fn content_format(self) -> ContentFormat {
        match self {
            HierarchicalFormat::Tlv => ContentFormat::Tlv,
            HierarchicalFormat::SenmlJson => ContentFormat::SenmlJson,
            HierarchicalFormat::SenmlCbor => ContentFormat::SenmlCbor,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoapConfig {
    /// ACK_TIMEOUT in seconds.
    pub ack_timeout: f64,
    pub ack_random_factor: f64,
    pub max_retransmit: u32,
    /// Largest block we send or ask for, in bytes: 16, 32, ..., 1024.
    pub block_size: u16,
    /// Largest Write/Create payload accepted through Block1, in bytes.
    pub max_upload: usize,
}

impl Default for CoapConfig {
    fn default() -> Self {
        CoapConfig {
            ack_timeout: 2.0,
            ack_random_factor: 1.5,
            max_retransmit: 4,
            block_size: 1024,
            max_upload: 65536,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RebootMethod {
    /// org.freedesktop.login1.Manager.Reboot over the system bus.
    #[default]
    Logind,
    /// Log the request and do nothing (development machines).
    None,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    #[serde(default)]
    pub reboot: RebootMethod,
    /// argv run on Execute /3/0/5; factory reset is refused (4.05) when absent.
    pub factory_reset_command: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub uri: String,
    pub short_server_id: Option<u16>,
    #[serde(default = "default_lifetime")]
    pub lifetime: u32,
    #[serde(default = "default_binding")]
    pub binding: String,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}
fn default_lifetime() -> u32 {
    DEFAULT_LIFETIME
}
fn default_binding() -> String {
    "U".to_string()
}

/// A configuration error, with where it was found.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, when the error points into the file.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.file.display(), self.message)
            }
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A server account after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAccount {
    pub uri: String,
    pub host: String,
    pub port: u16,
    pub short_server_id: u16,
    pub lifetime: u32,
    pub binding: String,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            position: None,
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            position: e.span().map(|s| line_col(text, s.start)),
            message: e.message().trim_end().to_string(),
        })?;
        config.validate().map_err(|message| ConfigError {
            file: path.to_path_buf(),
            position: None,
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.servers.is_empty() {
            return Err(
                "no [[server]] configured: at least one server account with a `uri` is needed"
                    .into(),
            );
        }
        self.accounts()?;
        self.send_specs()?;
        if let Some(ep) = &self.endpoint {
            if ep.is_empty() || ep.len() > 255 || ep.chars().any(|c| c.is_control()) {
                return Err(format!(
                    "endpoint {ep:?} must be 1 to 255 printable characters"
                ));
            }
        }
        if let Some(level) = &self.log_level {
            if let Err(e) = level.parse::<tracing_subscriber::filter::Targets>() {
                return Err(format!("log_level {level:?}: {e}"));
            }
        }
        let c = &self.coap;
        if !(c.ack_timeout.is_finite() && c.ack_timeout > 0.0 && c.ack_timeout <= 600.0) {
            return Err(format!(
                "coap.ack_timeout {} must be in (0, 600] seconds",
                c.ack_timeout
            ));
        }
        if !(c.ack_random_factor.is_finite() && (1.0..=10.0).contains(&c.ack_random_factor)) {
            return Err(format!(
                "coap.ack_random_factor {} must be in [1, 10]",
                c.ack_random_factor
            ));
        }
        if c.max_retransmit > 20 {
            return Err(format!(
                "coap.max_retransmit {} must be at most 20",
                c.max_retransmit
            ));
        }
        if !(16..=1024).contains(&c.block_size) || !c.block_size.is_power_of_two() {
            return Err(format!(
                "coap.block_size {} must be a power of two from 16 to 1024",
                c.block_size
            ));
        }
        if let Some(cmd) = &self.device.factory_reset_command {
            if cmd.is_empty() || cmd[0].is_empty() {
                return Err("device.factory_reset_command must name a program".into());
            }
        }
        Ok(())
    }

    /// The server accounts, with URIs parsed and short server IDs assigned (1, 2, ... where not given).
    pub fn accounts(&self) -> Result<Vec<ServerAccount>, String> {
        let mut out: Vec<ServerAccount> = Vec::new();
        for (n, s) in self.servers.iter().enumerate() {
            let (host, port) = parse_coap_uri(&s.uri)
                .map_err(|e| format!("server {}: uri {:?}: {e}", n + 1, s.uri))?;
            let ssid = match s.short_server_id {
                Some(id) => id,
                None => u16::try_from(n + 1).map_err(|_| "too many servers".to_string())?,
            };
            if ssid == 0 || ssid == 65535 {
                return Err(format!(
                    "server {}: short_server_id {ssid} must be in 1..=65534",
                    n + 1
                ));
            }
            if out.iter().any(|a| a.short_server_id == ssid) {
                return Err(format!(
                    "server {}: short_server_id {ssid} is used twice",
                    n + 1
                ));
            }
            if s.lifetime == 0 {
                return Err(format!(
                    "server {}: lifetime must be at least 1 second",
                    n + 1
                ));
            }
            if s.binding != "U" {
                return Err(format!(
                    "server {}: binding {:?} is not supported (only \"U\")",
                    n + 1,
                    s.binding
                ));
            }
            out.push(ServerAccount {
                uri: s.uri.clone(),
                host,
                port,
                short_server_id: ssid,
                lifetime: s.lifetime,
                binding: s.binding.clone(),
            });
        }
        Ok(out)
    }

    /// The scheduled Sends, with paths parsed.
    pub fn send_specs(&self) -> Result<Vec<crate::engine::SendSpec>, String> {
        let mut out = Vec::new();
        for (n, s) in self.sends.iter().enumerate() {
            if s.paths.is_empty() {
                return Err(format!("send {}: paths is empty", n + 1));
            }
            if s.interval == 0 {
                return Err(format!(
                    "send {}: interval must be at least 1 second",
                    n + 1
                ));
            }
            let mut paths = Vec::new();
            for p in &s.paths {
                let path: crate::path::Path = p
                    .parse()
                    .map_err(|e| format!("send {}: path {p:?}: {e}", n + 1))?;
                if path.is_root() || path.object_id() == Some(0) {
                    return Err(format!("send {}: path {p:?} cannot be sent", n + 1));
                }
                paths.push(path);
            }
            let format = match s.format {
                SendFormat::SenmlCbor => ContentFormat::SenmlCbor,
                SendFormat::SenmlJson => ContentFormat::SenmlJson,
            };
            out.push(crate::engine::SendSpec {
                paths,
                interval: Duration::from_secs(s.interval.into()),
                format,
            });
        }
        Ok(out)
    }

    pub fn coap_params(&self) -> crate::coap::CoapParams {
        crate::coap::CoapParams {
            ack_timeout: Duration::from_secs_f64(self.coap.ack_timeout),
            ack_random_factor: self.coap.ack_random_factor,
            max_retransmit: self.coap.max_retransmit,
            nstart: 1,
        }
    }
}

/// Splits `coap://host:port` (IPv6 hosts in brackets); the port defaults to 5683.
pub fn parse_coap_uri(uri: &str) -> Result<(String, u16), String> {
    let rest = if let Some(rest) = uri.strip_prefix("coap://") {
        rest
    } else if uri.starts_with("coaps://") {
        return Err("coaps:// (DTLS) is not supported yet; use coap://".into());
    } else {
        return Err("must start with coap://".into());
    };
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed [ in IPv6 address")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?,
        None => 5683,
    };
    Ok((host.to_string(), port))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // A span that is not on a character boundary would be a parser bug; fall back to the whole text.
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/lwm2md/lwm2md.toml"), text)
    }

    #[test]
    fn minimal_config_registers() {
        let c = parse("[[server]]\nuri = \"coap://127.0.0.1:5683\"\n").unwrap();
        let a = c.accounts().unwrap();
        assert_eq!(
            a[0],
            ServerAccount {
                uri: "coap://127.0.0.1:5683".into(),
                host: "127.0.0.1".into(),
                port: 5683,
                short_server_id: 1,
                lifetime: 86400,
                binding: "U".into()
            }
        );
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/lwm2md"));
        assert_eq!(c.content_format, HierarchicalFormat::Tlv);
    }

    #[test]
    fn unknown_key_names_line_column_and_key() {
        let e =
            parse("endpoint = \"a\"\n\n[[server]]\nuri = \"coap://h\"\nlifetim = 5\n").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("/etc/lwm2md/lwm2md.toml:5:1: "), "{s}");
        assert!(s.contains("lifetim"), "{s}");
    }

    #[test]
    fn invalid_values_are_refused() {
        for bad in [
            "",
            "[[server]]\nuri = \"http://h\"",
            "[[server]]\nuri = \"coap://h:99999\"",
            "[[server]]\nuri = \"coap://h\"\nlifetime = 0",
            "[[server]]\nuri = \"coap://h\"\nbinding = \"T\"",
            "log_level = \"lwm2md=loud\"\n[[server]]\nuri = \"coap://h\"",
            "[[server]]\nuri = \"coap://h\"\n[[send]]\npaths = [\"/3/x\"]\ninterval = 5",
            "[[server]]\nuri = \"coap://h\"\n[[send]]\npaths = [\"/0/0\"]\ninterval = 5",
            "[[server]]\nuri = \"coap://h\"\n[[send]]\npaths = [\"/3/0/10\"]\ninterval = 0",
            "[[server]]\nuri = \"coap://h\"\n[[send]]\npaths = []\ninterval = 5",
            "[coap]\nblock_size = 100\n[[server]]\nuri = \"coap://h\"",
            "[[server]]\nuri = \"coap://h\"\nshort_server_id = 1\n[[server]]\nuri = \"coap://g\"\nshort_server_id = 1",
        ] {
            assert!(parse(bad).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn uris() {
        assert_eq!(
            parse_coap_uri("coap://[::1]:7000"),
            Ok(("::1".into(), 7000))
        );
        assert_eq!(
            parse_coap_uri("coap://example.net"),
            Ok(("example.net".into(), 5683))
        );
        assert!(parse_coap_uri("coaps://example.net").is_err());
    }
}
