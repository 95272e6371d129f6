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
/// Where object definitions (OMA XML) are looked for when `object_dirs` is not set:
/// the package's own, then the integrator's.
pub const DEFAULT_OBJECT_DIRS: [&str; 2] = ["/usr/share/lwm2md/objects", "/etc/lwm2md/objects"];

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
    #[serde(default)]
    pub observe: ObserveConfig,
    #[serde(default)]
    pub connectivity: ConnectivityConfig,
    #[serde(default, rename = "server")]
    pub servers: Vec<ServerConfig>,
    /// The bootstrap server's account: `uri` and the security keys of a `[[server]]`.
    /// Parsing appends it to `servers` with `bootstrap = true` (the same as writing such
    /// a `[[server]]` table).
    #[serde(default, rename = "bootstrap")]
    pub bootstrap_server: Option<BootstrapConfig>,
    /// Values pushed to the servers on a schedule (Send, `POST /dp`).
    #[serde(default, rename = "send")]
    pub sends: Vec<SendConfig>,
    /// Object 6; absent: no Location object.
    pub location: Option<LocationConfig>,
    /// Directories of object definitions (OMA XML); replaces the defaults when set.
    pub object_dirs: Option<Vec<PathBuf>>,
    /// Resources of loaded objects bound to a file, a command or a constant.
    #[serde(default, rename = "resource")]
    pub resources: Vec<ResourceConfig>,
    /// The file this configuration was read from, for errors found after parsing.
    #[serde(skip)]
    pub source: PathBuf,
    /// The shortest sampling interval an observer's pmin can bring a sensor down to,
    /// in seconds.
    #[serde(default = "default_sensor_interval_floor")]
    pub sensor_interval_floor: u32,
    /// I2C sensors, each shown as IPSO objects. Spanned so that errors found after
    /// parsing still name the line.
    #[serde(default, rename = "sensor")]
    pub sensors: Vec<toml::Spanned<SensorConfig>>,
    /// Firmware Update (object 5); the object exists only when this table does.
    pub firmware: Option<FirmwareConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationConfig {
    #[serde(default)]
    pub backend: LocationBackend,
    /// gpsd's `host:port`.
    #[serde(default = "default_gpsd_address")]
    pub address: String,
    /// The fixed position for `static`; with `gpsd`, reported until the first fix.
    #[serde(default, deserialize_with = "latitude")]
    pub latitude: Option<f64>,
    #[serde(default, deserialize_with = "longitude")]
    pub longitude: Option<f64>,
    /// Metres above mean sea level.
    #[serde(default, deserialize_with = "altitude")]
    pub altitude: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationBackend {
    #[default]
    Gpsd,
    Static,
    /// The GNSS receiver of the modem ModemManager manages.
    Modem,
}

fn default_gpsd_address() -> String {
    backends::location::gpsd::DEFAULT_ADDRESS.to_string()
}

/// A number in `range`, checked while parsing so that the error names its line.
fn bounded<'de, D: serde::Deserializer<'de>>(
    d: D,
    what: &str,
    range: std::ops::RangeInclusive<f64>,
) -> Result<Option<f64>, D::Error> {
    let x = f64::deserialize(d)?;
    if !x.is_finite() || !range.contains(&x) {
        return Err(serde::de::Error::custom(format!(
            "{what} {x} must be in [{}, {}]",
            range.start(),
            range.end()
        )));
    }
    Ok(Some(x))
}

fn latitude<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    bounded(d, "latitude", -90.0..=90.0)
}
fn longitude<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    bounded(d, "longitude", -180.0..=180.0)
}
fn altitude<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    // From the Dead Sea shore to above the highest airfields, with room.
    bounded(d, "altitude", -1000.0..=100_000.0)
}

/// One `[[resource]]` table: where a resource's value comes from and goes to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// `/object/instance/resource`.
    pub path: toml::Spanned<String>,
    /// Read for the value; a Write writes the value into it.
    pub file: Option<PathBuf>,
    /// argv run for the value (stdout); a Write appends the value, an Execute its arguments.
    pub command: Option<Vec<String>>,
    /// Run `command` (a single string) with `sh -c`; values and arguments come as `$1`.
    #[serde(default)]
    pub shell: bool,
    /// A fixed value.
    pub value: Option<toml::Value>,
    /// The value is owned by a local application through `org.lwm2md.Application1`;
    /// `path` may also name a whole object, whose instances the application then
    /// creates and deletes.
    #[serde(default)]
    pub app: bool,
    /// Seconds between two readings of a file or command.
    pub interval: Option<u32>,
    /// The shortest interval observers may bring readings down to, in seconds.
    pub min_interval: Option<u32>,
    /// Multiplies a numeric reading (and divides a written value).
    pub scale: Option<f64>,
    /// Added to a numeric reading after `scale` (and subtracted from a written value).
    pub offset: Option<f64>,
    /// Seconds a command may run before it is killed, or an application has to answer
    /// a server's Write or Execute.
    pub timeout: Option<u32>,
    /// 1-based line and column of the table's `path`, for errors found later.
    #[serde(skip)]
    pub position: Option<(usize, usize)>,
}

impl ResourceConfig {
    /// A configuration error about this table, pointing at its `path`.
    pub fn error(&self, file: &Path, message: String) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            position: self.position,
            message: format!("resource {}: {message}", self.path.get_ref()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorConfig {
    pub model: SensorModel,
    /// The bus device (`/dev/i2c-1`); only a name for the simulated model.
    pub bus: String,
    /// 7-bit I2C address (`0x76`).
    pub address: u16,
    /// Seconds between two samples.
    pub interval: u32,
    /// Instance ID of the chip in each object it feeds.
    pub instance: u16,
    /// Initial Application Type (5750), until a server writes one.
    pub application_type: Option<String>,
    /// Calibration: reported = measured * scale + offset.
    #[serde(default)]
    pub offset: f64,
    #[serde(default = "default_scale")]
    pub scale: f64,
}

/// A chip's model (`model = "bme280"`): the sensor backend's list.
pub use backends::sensor::Model as SensorModel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirmwareBackend {
    Script,
    Uboot,
    Rauc,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareConfig {
    pub backend: FirmwareBackend,
    /// Where packages are staged; `<state_dir>/firmware` when absent.
    pub staging_dir: Option<PathBuf>,
    /// Largest package accepted, in bytes (4.13 beyond it).
    #[serde(default = "default_max_package")]
    pub max_package_size: u64,
    /// Seconds the new system has, after the reboot, to register with a server before it
    /// is rolled back.
    #[serde(default = "default_commit_window")]
    pub commit_window: u32,
    /// New attempts of a package download after a lost connection (Update Result 4 then).
    #[serde(default = "default_pull_retries")]
    pub pull_retries: u32,
    /// uboot and script: a PEM public key; packages must then carry a signature trailer
    /// (see `fwsig`) made with its private key.
    pub signature_key: Option<PathBuf>,
    /// CA certificates (PEM) for https:// Package URIs; the system's trust store when absent.
    pub ca_file: Option<PathBuf>,
    /// Seconds any one backend command may run.
    #[serde(default = "default_command_timeout")]
    pub command_timeout: u32,
    /// script: argv run with the package path appended; may print name= and version=.
    pub check: Option<Vec<String>>,
    /// script: argv run with the package path appended.
    pub install: Option<Vec<String>>,
    pub commit: Option<Vec<String>>,
    pub rollback: Option<Vec<String>>,
    /// script: argv printing the running system's version.
    pub version: Option<Vec<String>>,
    /// uboot: slot name to device or file, e.g. `{ A = "/dev/mmcblk0p2", B = "/dev/mmcblk0p3" }`.
    pub slots: Option<std::collections::BTreeMap<String, PathBuf>>,
    /// uboot: the fw_env.config passed to fw_setenv/fw_printenv with -c.
    pub fw_env_config: Option<PathBuf>,
    #[serde(default = "default_fw_setenv")]
    pub fw_setenv: String,
    #[serde(default = "default_fw_printenv")]
    pub fw_printenv: String,
    /// uboot: where the running slot is read (`rauc.slot=A`).
    #[serde(default = "default_cmdline")]
    pub cmdline: PathBuf,
    #[serde(default = "default_boot_order_var")]
    pub boot_order_var: String,
    /// `{slot}` is replaced by the slot name.
    #[serde(default = "default_attempts_var")]
    pub boot_attempts_var: String,
    #[serde(default = "default_boot_attempts")]
    pub boot_attempts: u32,
}

fn default_max_package() -> u64 {
    4 << 30
}
fn default_commit_window() -> u32 {
    600
}
fn default_pull_retries() -> u32 {
    5
}
fn default_command_timeout() -> u32 {
    1800
}
fn default_fw_setenv() -> String {
    "fw_setenv".into()
}
fn default_fw_printenv() -> String {
    "fw_printenv".into()
}
fn default_cmdline() -> PathBuf {
    PathBuf::from("/proc/cmdline")
}
fn default_boot_order_var() -> String {
    "BOOT_ORDER".into()
}
fn default_attempts_var() -> String {
    "BOOT_{slot}_LEFT".into()
}
fn default_boot_attempts() -> u32 {
    3
}

impl FirmwareConfig {
    fn validate(&self) -> Result<(), String> {
        let argv_ok = |name: &str, argv: &Option<Vec<String>>| match argv {
            Some(a) if a.first().is_none_or(String::is_empty) => {
                Err(format!("firmware.{name} must name a program"))
            }
            _ => Ok(()),
        };
        for (name, argv) in [
            ("check", &self.check),
            ("install", &self.install),
            ("commit", &self.commit),
            ("rollback", &self.rollback),
            ("version", &self.version),
        ] {
            argv_ok(name, argv)?;
        }
        if self.commit_window == 0 || self.command_timeout == 0 {
            return Err(
                "firmware.commit_window and command_timeout must be at least 1 second".into(),
            );
        }
        match self.backend {
            FirmwareBackend::Script => {
                if self.install.is_none() {
                    return Err("firmware backend \"script\" needs install (an argv)".into());
                }
                if self.slots.is_some() || self.fw_env_config.is_some() {
                    return Err(
                        "firmware.slots and fw_env_config belong to backend \"uboot\"".into(),
                    );
                }
            }
            FirmwareBackend::Uboot => {
                match &self.slots {
                    Some(slots) if slots.len() == 2 => {}
                    _ => return Err("firmware backend \"uboot\" needs slots with two entries, e.g. { A = \"/dev/mmcblk0p2\", B = \"/dev/mmcblk0p3\" }".into()),
                }
                if self.install.is_some() || self.check.is_some() {
                    return Err("firmware.install and check belong to backend \"script\"".into());
                }
            }
            FirmwareBackend::Rauc => {
                if self.signature_key.is_some() {
                    return Err("firmware.signature_key is for raw images: RAUC checks bundle signatures against its own keyring".into());
                }
                if self.install.is_some() || self.check.is_some() || self.slots.is_some() {
                    return Err("firmware backend \"rauc\" takes no install, check or slots: RAUC's system.conf says them".into());
                }
            }
        }
        Ok(())
    }

    /// The staging directory.
    pub fn staging(&self, state_dir: &Path) -> PathBuf {
        self.staging_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("firmware"))
    }
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

/// Bounds on what servers can make the client keep for them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObserveConfig {
    /// Observations per server.
    pub max_per_server: usize,
    /// Notifications stored per observation while the server is unreachable.
    pub max_stored: usize,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        let limits = crate::engine::Limits::default();
        ObserveConfig {
            max_per_server: limits.observations_per_server,
            max_stored: limits.stored_per_observation,
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

/// Where objects 4, 7, 10 and 11 get their data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectivityConfig {
    pub backend: ConnectivityBackend,
    /// The uplink interface (host backend, and the statistics of every backend); default:
    /// the interface of the default route.
    pub interface: Option<String>,
    /// Seconds between two looks at the interface (host) or refreshes of the modem's
    /// signal figures (ModemManager).
    pub interval: u32,
    /// The modem's AT port and its speed (backend "at").
    pub port: Option<PathBuf>,
    pub baud: Option<u32>,
}

impl ConnectivityConfig {
    /// The AT command port (backend "at").
    pub fn at_port(&self) -> PathBuf {
        self.port
            .clone()
            .unwrap_or_else(|| PathBuf::from("/dev/ttyUSB2"))
    }

    pub fn at_baud(&self) -> u32 {
        self.baud.unwrap_or(115_200)
    }
}

impl Default for ConnectivityConfig {
    fn default() -> Self {
        ConnectivityConfig {
            backend: ConnectivityBackend::Host,
            interface: None,
            interval: 30,
            port: None,
            baud: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectivityBackend {
    /// The machine's own network interfaces (Ethernet, Wi-Fi).
    #[default]
    Host,
    /// ModemManager over the system bus.
    Modemmanager,
    /// A modem's AT port.
    At,
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
    /// "nosec" for coap:// (the default there), "psk" for coaps:// (required there).
    pub security: Option<SecurityMode>,
    /// PSK identity, sent in the clear during the handshake.
    pub psk_identity: Option<String>,
    /// File holding the pre-shared key: hex digits (whitespace allowed), else raw bytes.
    /// Must not be readable by group or others.
    pub psk_key_file: Option<PathBuf>,
    /// security = "cert": our certificate (PEM, the chain may follow, or DER).
    pub certificate_file: Option<PathBuf>,
    /// security = "cert" or "rpk": our private key (PEM or DER), private to its owner.
    pub private_key_file: Option<PathBuf>,
    /// security = "cert": the server's certificate or CA (/0/x/4), PEM or DER.
    pub server_certificate_file: Option<PathBuf>,
    /// security = "rpk": the server's public key (/0/x/4), PEM `PUBLIC KEY` or DER.
    pub server_public_key_file: Option<PathBuf>,
    /// Certificate Usage (/0/x/15): 0 CA constraint, 1 service certificate constraint,
    /// 2 trust anchor assertion, 3 domain-issued certificate (the default).
    pub certificate_usage: Option<u8>,
    /// CA certificates for PKIX validation (a PEM file or a hashed directory).
    pub trust_store: Option<PathBuf>,
    /// Server Name Indication and the name checked in the server's certificate; the
    /// URI's host by default.
    pub sni: Option<String>,
    /// This is the bootstrap server's account (Security /0/x/1): the daemon bootstraps
    /// from it when no other account is usable or registration fails for good.
    #[serde(default)]
    pub bootstrap: bool,
}

/// `[bootstrap]`: a server account without the registration settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapConfig {
    pub uri: String,
    pub security: Option<SecurityMode>,
    pub psk_identity: Option<String>,
    pub psk_key_file: Option<PathBuf>,
    pub certificate_file: Option<PathBuf>,
    pub private_key_file: Option<PathBuf>,
    pub server_certificate_file: Option<PathBuf>,
    pub server_public_key_file: Option<PathBuf>,
    pub certificate_usage: Option<u8>,
    pub trust_store: Option<PathBuf>,
    pub sni: Option<String>,
    /// Ask the bootstrap server for a Bootstrap-Pack (`GET /bspack`, LwM2M 1.2) before
    /// the Bootstrap-Request, which follows when the server has none.
    #[serde(default)]
    pub pack: bool,
}

impl BootstrapConfig {
    fn into_server(self) -> ServerConfig {
        ServerConfig {
            uri: self.uri,
            short_server_id: None,
            lifetime: default_lifetime(),
            binding: default_binding(),
            security: self.security,
            psk_identity: self.psk_identity,
            psk_key_file: self.psk_key_file,
            certificate_file: self.certificate_file,
            private_key_file: self.private_key_file,
            server_certificate_file: self.server_certificate_file,
            server_public_key_file: self.server_public_key_file,
            certificate_usage: self.certificate_usage,
            trust_store: self.trust_store,
            sni: self.sni,
            bootstrap: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    Nosec,
    Psk,
    #[serde(alias = "certificate")]
    Cert,
    Rpk,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}
fn default_sensor_interval_floor() -> u32 {
    1
}
fn default_scale() -> f64 {
    1.0
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
    pub security: AccountSecurity,
    /// The bootstrap server's account.
    pub bootstrap: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountSecurity {
    NoSec,
    /// DTLS with a pre-shared key.
    Psk(Psk),
    /// DTLS with X.509 certificates.
    Certificate(crate::dtls::Certificates),
    /// DTLS with raw public keys (RFC 7250).
    RawPublicKey(crate::dtls::RawPublicKey),
}

/// A PSK identity and key, read from the key file.
#[derive(Clone, PartialEq, Eq)]
pub struct Psk {
    pub identity: String,
    pub key: Vec<u8>,
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Psk")
            .field("identity", &self.identity)
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .finish()
    }
}

/// Longest PSK identity and key accepted (OpenSSL's limits are larger; real keys are 16
/// to 32 bytes).
const MAX_PSK_IDENTITY: usize = 128;
const MAX_PSK_KEY: usize = 64;

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
        let config = Config::parse_unchecked(path, text)?;
        config.validate().map_err(|message| ConfigError {
            file: path.to_path_buf(),
            position: None,
            message,
        })?;
        config
            .validate_sensors()
            .map_err(|(offset, message)| ConfigError {
                file: path.to_path_buf(),
                position: Some(line_col(text, offset)),
                message,
            })?;
        for (n, r) in config.resources.iter().enumerate() {
            validate_resource(r).map_err(|m| r.error(path, m))?;
            if config.resources[..n]
                .iter()
                .any(|o| o.path.get_ref() == r.path.get_ref())
            {
                return Err(r.error(path, "bound twice".into()));
            }
        }
        Ok(config)
    }

    /// Syntax, keys and types only: no value checked and no key file read (`lwm2md
    /// check` looks at those one by one).
    pub fn parse_unchecked(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let mut message = e.message().trim_end().to_string();
            if message.starts_with("unknown field `psk_key`") {
                message = "psk_key: a key is not accepted inline; put it in a file only root \
                           can read (chmod 600) and name that file with psk_key_file"
                    .into();
            }
            ConfigError {
                file: path.to_path_buf(),
                position: e.span().map(|s| line_col(text, s.start)),
                message,
            }
        })?;
        config.source = path.to_path_buf();
        if let Some(b) = config.bootstrap_server.clone() {
            config.servers.push(b.into_server());
        }
        for r in &mut config.resources {
            r.position = Some(line_col(text, r.path.span().start));
        }
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
        let o = &self.observe;
        if !(1..=65536).contains(&o.max_per_server) || !(1..=65536).contains(&o.max_stored) {
            return Err("observe.max_per_server and observe.max_stored must be 1 to 65536".into());
        }
        let n = &self.connectivity;
        if !(1..=86400).contains(&n.interval) {
            return Err(format!(
                "connectivity.interval {} must be 1 to 86400 seconds",
                n.interval
            ));
        }
        if let Some(name) = &n.interface {
            // IFNAMSIZ is 16 with the terminating NUL.
            if name.is_empty()
                || name.len() > 15
                || name.contains(['/', ' '])
                || name == "."
                || name == ".."
            {
                return Err(format!(
                    "connectivity.interface {name:?} is not an interface name"
                ));
            }
        }
        if n.backend != ConnectivityBackend::At && (n.port.is_some() || n.baud.is_some()) {
            return Err("connectivity.port and connectivity.baud need backend = \"at\"".into());
        }
        if let Some(baud) = n.baud {
            if baud == 0 || baud > 4_000_000 {
                return Err(format!("connectivity.baud {baud} must be 1 to 4000000"));
            }
        }
        if let Some(port) = &n.port {
            if !port.is_absolute() {
                return Err(format!(
                    "connectivity.port {} must be an absolute path",
                    port.display()
                ));
            }
        }
        if let Some(l) = &self.location {
            if l.latitude.is_some() != l.longitude.is_some() {
                return Err("location: latitude and longitude go together".into());
            }
            if l.backend == LocationBackend::Modem
                && self.connectivity.backend == ConnectivityBackend::Host
            {
                return Err(
                    "location: backend \"modem\" reads the modem's GNSS: it needs \
                     connectivity.backend = \"modemmanager\" or \"at\""
                        .into(),
                );
            }
            if l.backend == LocationBackend::Static && l.latitude.is_none() {
                return Err("location: backend \"static\" needs latitude and longitude".into());
            }
            if l.backend == LocationBackend::Gpsd {
                let port = l.address.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
                if !matches!(port, Some(Ok(_))) {
                    return Err(format!(
                        "location.address {:?} must be host:port (gpsd listens on 2947)",
                        l.address
                    ));
                }
            }
        }
        if let Some(fw) = &self.firmware {
            fw.validate()?;
        }
        if let Some(cmd) = &self.device.factory_reset_command {
            if cmd.is_empty() || cmd[0].is_empty() {
                return Err("device.factory_reset_command must name a program".into());
            }
        }
        Ok(())
    }

    /// Sensor checks that need more than one table: errors carry the byte offset of the
    /// offending `[[sensor]]`.
    fn validate_sensors(&self) -> Result<(), (usize, String)> {
        if self.sensor_interval_floor == 0 {
            return Err((0, "sensor_interval_floor must be at least 1 second".into()));
        }
        let mut addresses: Vec<(&str, u8)> = Vec::new();
        let mut instances: Vec<(u16, u16)> = Vec::new();
        for spanned in &self.sensors {
            let at = spanned.span().start;
            let s = spanned.get_ref();
            let model = s.model;
            let name = model.name();
            let address = model
                .check_address(s.address)
                .map_err(|e| (at, format!("sensor {name}: {e}")))?;
            if s.bus.is_empty() {
                return Err((at, format!("sensor {name}: bus is empty")));
            }
            if s.interval == 0 {
                return Err((
                    at,
                    format!("sensor {name}: interval must be at least 1 second"),
                ));
            }
            if !(s.scale.is_finite() && s.scale != 0.0 && s.offset.is_finite()) {
                return Err((
                    at,
                    format!("sensor {name}: scale must be a non-zero number and offset a number"),
                ));
            }
            if addresses.contains(&(s.bus.as_str(), address)) {
                return Err((
                    at,
                    format!(
                        "sensor {name}: another sensor is configured at {address:#04x} on {}",
                        s.bus
                    ),
                ));
            }
            addresses.push((s.bus.as_str(), address));
            let last = model
                .spans()
                .iter()
                .map(|span| crate::sensors::instance_offset(span.quantity))
                .max()
                .unwrap_or(0);
            if s.instance.checked_add(last).is_none_or(|i| i == u16::MAX) {
                return Err((
                    at,
                    format!(
                        "sensor {name}: instance must be at most {}",
                        u16::MAX - 1 - last
                    ),
                ));
            }
            for (object, instance) in crate::sensors::instances_fed(model, s.instance) {
                if instances.contains(&(object, instance)) {
                    return Err((
                        at,
                        format!(
                            "sensor {name}: instance /{object}/{instance} is fed by another sensor"
                        ),
                    ));
                }
                instances.push((object, instance));
            }
            if s.application_type.as_ref().is_some_and(|a| a.len() > 255) {
                return Err((
                    at,
                    format!("sensor {name}: application_type is over 255 bytes"),
                ));
            }
        }
        Ok(())
    }

    /// The server accounts, with URIs parsed and short server IDs assigned (1, 2, ... where not given).
    pub fn accounts(&self) -> Result<Vec<ServerAccount>, String> {
        let mut out: Vec<ServerAccount> = Vec::new();
        for (n, s) in self.servers.iter().enumerate() {
            let (scheme, host, port) = parse_server_uri(&s.uri)
                .map_err(|e| format!("server {}: uri {:?}: {e}", n + 1, s.uri))?;
            let security =
                account_security(s, scheme, &host).map_err(|e| format!("server {}: {e}", n + 1))?;
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
            if s.bootstrap && out.iter().any(|a| a.bootstrap) {
                return Err(format!(
                    "server {}: only one server may have bootstrap = true",
                    n + 1
                ));
            }
            if !s.bootstrap
                && out
                    .iter()
                    .any(|a| !a.bootstrap && a.short_server_id == ssid)
            {
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
            if !crate::objects::server::binding_supported(&s.binding) {
                return Err(format!(
                    "server {}: binding {:?} is not supported (\"U\", or \"UQ\" for queue mode)",
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
                security,
                bootstrap: s.bootstrap,
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

    /// The directories object definitions are loaded from.
    pub fn object_dirs(&self) -> Vec<PathBuf> {
        match &self.object_dirs {
            Some(dirs) => dirs.clone(),
            None => DEFAULT_OBJECT_DIRS.iter().map(PathBuf::from).collect(),
        }
    }

    pub fn limits(&self) -> crate::engine::Limits {
        crate::engine::Limits {
            observations_per_server: self.observe.max_per_server,
            stored_per_observation: self.observe.max_stored,
        }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Coap,
    Coaps,
}

/// Splits `coap://host:port` (IPv6 hosts in brackets); the port defaults to 5683.
pub fn parse_coap_uri(uri: &str) -> Result<(String, u16), String> {
    match parse_server_uri(uri)? {
        (Scheme::Coap, host, port) => Ok((host, port)),
        (Scheme::Coaps, ..) => Err("must start with coap://".into()),
    }
}

/// Splits `coap://host:port` or `coaps://host:port` (IPv6 hosts in brackets); the port
/// defaults to 5683 and 5684 (RFC 7252 6.1, 6.2).
pub fn parse_server_uri(uri: &str) -> Result<(Scheme, String, u16), String> {
    let (scheme, rest, default_port) = if let Some(rest) = uri.strip_prefix("coap://") {
        (Scheme::Coap, rest, 5683)
    } else if let Some(rest) = uri.strip_prefix("coaps://") {
        (Scheme::Coaps, rest, 5684)
    } else {
        return Err("must start with coap:// or coaps://".into());
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
        None => default_port,
    };
    Ok((scheme, host.to_string(), port))
}

fn account_security(
    s: &ServerConfig,
    scheme: Scheme,
    host: &str,
) -> Result<AccountSecurity, String> {
    let mode = s.security.unwrap_or(match scheme {
        Scheme::Coap => SecurityMode::Nosec,
        Scheme::Coaps => SecurityMode::Psk,
    });
    let psk_keys = s.psk_identity.is_some() || s.psk_key_file.is_some();
    let cert_keys = s.certificate_file.is_some()
        || (s.private_key_file.is_some() && mode != SecurityMode::Rpk)
        || s.server_certificate_file.is_some()
        || s.certificate_usage.is_some()
        || s.trust_store.is_some()
        || s.sni.is_some();
    if psk_keys && mode != SecurityMode::Psk {
        return Err(
            "psk_identity and psk_key_file need security = \"psk\" and a coaps:// uri".into(),
        );
    }
    if cert_keys && mode != SecurityMode::Cert {
        return Err(
            "certificate_file, private_key_file, server_certificate_file, \
                    certificate_usage, trust_store and sni need security = \"cert\""
                .into(),
        );
    }
    if s.server_public_key_file.is_some() && mode != SecurityMode::Rpk {
        return Err("server_public_key_file needs security = \"rpk\"".into());
    }
    match (mode, scheme) {
        (SecurityMode::Rpk, _) if !crate::dtls::RAW_PUBLIC_KEYS => Err(format!(
            "security = \"rpk\" is not available: {}",
            crate::dtls::raw_public_keys_unavailable()
        )),
        (SecurityMode::Nosec, Scheme::Coaps) => {
            Err("a coaps:// server needs security = \"psk\", \"cert\" or \"rpk\"".into())
        }
        (SecurityMode::Psk | SecurityMode::Cert | SecurityMode::Rpk, Scheme::Coap) => {
            Err("DTLS security needs a coaps:// uri".into())
        }
        (SecurityMode::Nosec, Scheme::Coap) => Ok(AccountSecurity::NoSec),
        (SecurityMode::Psk, Scheme::Coaps) => {
            let identity = s
                .psk_identity
                .clone()
                .ok_or("security = \"psk\" needs psk_identity")?;
            if identity.is_empty() || identity.len() > MAX_PSK_IDENTITY {
                return Err(format!(
                    "psk_identity must be 1 to {MAX_PSK_IDENTITY} bytes long"
                ));
            }
            let file = s
                .psk_key_file
                .as_deref()
                .ok_or("security = \"psk\" needs psk_key_file (a file holding the key)")?;
            let key = read_psk_key(file)?;
            Ok(AccountSecurity::Psk(Psk { identity, key }))
        }
        (SecurityMode::Cert, Scheme::Coaps) => {
            certificates(s, host).map(AccountSecurity::Certificate)
        }
        (SecurityMode::Rpk, Scheme::Coaps) => raw_public_key(s).map(AccountSecurity::RawPublicKey),
    }
}

/// The raw public key account's files, read into the DER the Security object holds.
fn raw_public_key(s: &ServerConfig) -> Result<crate::dtls::RawPublicKey, String> {
    let key_file = s
        .private_key_file
        .as_deref()
        .ok_or("security = \"rpk\" needs private_key_file")?;
    private_file("private_key_file", key_file)?;
    let private_key =
        crate::pem::private_key(key_file).map_err(|e| format!("private_key_file {e}"))?;
    let server_file = s
        .server_public_key_file
        .as_deref()
        .ok_or("security = \"rpk\" needs server_public_key_file (the server's public key)")?;
    let server_public_key =
        crate::pem::public_key(server_file).map_err(|e| format!("server_public_key_file {e}"))?;
    Ok(crate::dtls::RawPublicKey {
        private_key,
        server_public_key,
    })
}

/// The certificate account's files, read into the DER the Security object holds.
fn certificates(s: &ServerConfig, host: &str) -> Result<crate::dtls::Certificates, String> {
    use crate::dtls::CertificateUsage;
    let file = s
        .certificate_file
        .as_deref()
        .ok_or("security = \"cert\" needs certificate_file")?;
    let chain = crate::pem::certificates(file).map_err(|e| format!("certificate_file {e}"))?;
    let key_file = s
        .private_key_file
        .as_deref()
        .ok_or("security = \"cert\" needs private_key_file")?;
    private_file("private_key_file", key_file)?;
    let private_key =
        crate::pem::private_key(key_file).map_err(|e| format!("private_key_file {e}"))?;
    let server_certificate = s
        .server_certificate_file
        .as_deref()
        .map(|f| {
            crate::pem::certificates(f)
                .map_err(|e| format!("server_certificate_file {e}"))
                .map(|mut certs| certs.swap_remove(0))
        })
        .transpose()?;
    let usage = match s.certificate_usage {
        None => CertificateUsage::DomainIssuedCertificate,
        Some(code) => CertificateUsage::from_code(code.into())
            .ok_or_else(|| format!("certificate_usage {code}: must be 0, 1, 2 or 3"))?,
    };
    if s.certificate_usage.is_some() && server_certificate.is_none() {
        return Err("certificate_usage needs server_certificate_file".into());
    }
    if let Some(t) = &s.trust_store {
        if !t.exists() {
            return Err(format!(
                "trust_store {}: no such file or directory",
                t.display()
            ));
        }
    }
    Ok(crate::dtls::Certificates {
        chain,
        private_key,
        server_certificate,
        usage,
        trust_store: s.trust_store.clone(),
        sni: Some(
            s.sni
                .clone()
                .unwrap_or_else(|| host.trim_matches(['[', ']']).to_string()),
        ),
    })
}

/// A secret file must not be readable by group or others.
fn private_file(key: &str, file: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let name = file.display();
    let meta = std::fs::metadata(file).map_err(|e| format!("{key} {name}: {e}"))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{key} {name} is readable by group or others (mode {:03o}); run chmod 600 {name}",
            mode & 0o777
        ));
    }
    Ok(())
}

/// Reads a key file: hex digits (whitespace and newlines ignored), or else the raw bytes.
/// The file must be private: a key readable by others is a shared secret no longer.
fn read_psk_key(file: &Path) -> Result<Vec<u8>, String> {
    private_file("psk_key_file", file)?;
    let name = file.display();
    let bytes = std::fs::read(file).map_err(|e| format!("psk_key_file {name}: {e}"))?;
    let key = parse_psk_key(&bytes);
    if key.is_empty() || key.len() > MAX_PSK_KEY {
        return Err(format!(
            "psk_key_file {name}: the key must be 1 to {MAX_PSK_KEY} bytes long (it is {})",
            key.len()
        ));
    }
    Ok(key)
}

/// Hex when the whole file is hex digits and whitespace (an even number of digits),
/// else the file's bytes as they are.
fn parse_psk_key(bytes: &[u8]) -> Vec<u8> {
    let digits: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if digits.is_empty()
        || !digits.len().is_multiple_of(2)
        || !digits.iter().all(u8::is_ascii_hexdigit)
    {
        return bytes.to_vec();
    }
    digits
        .chunks_exact(2)
        .filter_map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

/// What a `[[resource]]` table must say whatever the object definitions are.
fn validate_resource(r: &ResourceConfig) -> Result<(), String> {
    let path: crate::path::Path = r.path.get_ref().parse().map_err(|e| format!("{e}"))?;
    let kinds = [
        r.file.is_some(),
        r.command.is_some(),
        r.value.is_some(),
        r.app,
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err("needs exactly one of file, command, value, app = true".into());
    }
    if path.len() != 3 && !(r.app && path.len() == 1) {
        return Err(match r.app {
            true => "path must name a resource or, with app, an object".into(),
            false => "path must name a resource: /object/instance/resource".into(),
        });
    }
    if r.app
        && (r.interval.is_some()
            || r.min_interval.is_some()
            || r.scale.is_some()
            || r.offset.is_some())
    {
        return Err("interval, min_interval, scale and offset do not apply to app".into());
    }
    if let Some(argv) = &r.command {
        if argv.first().is_none_or(String::is_empty) {
            return Err("command must name a program".into());
        }
        if r.shell && argv.len() != 1 {
            return Err("with shell = true, command is one string for sh -c".into());
        }
    } else if r.shell {
        return Err("shell only applies to command".into());
    }
    if r.value.is_some()
        && (r.interval.is_some()
            || r.min_interval.is_some()
            || r.scale.is_some()
            || r.offset.is_some())
    {
        return Err(
            "interval, min_interval, scale and offset do not apply to a constant value".into(),
        );
    }
    if r.timeout.is_some() && r.command.is_none() && !r.app {
        return Err("timeout only applies to command and app".into());
    }
    if r.interval == Some(0) || r.min_interval == Some(0) {
        return Err("interval and min_interval must be at least 1 second".into());
    }
    if r.timeout == Some(0) {
        return Err("timeout must be at least 1 second".into());
    }
    if r.scale.is_some_and(|s| !s.is_finite() || s == 0.0) {
        return Err("scale must be a finite number other than 0".into());
    }
    if r.offset.is_some_and(|o| !o.is_finite()) {
        return Err("offset must be a finite number".into());
    }
    Ok(())
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
                binding: "U".into(),
                security: AccountSecurity::NoSec,
                bootstrap: false,
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
            "[observe]\nmax_stored = 0\n[[server]]\nuri = \"coap://h\"",
            "[[server]]\nuri = \"coap://h\"\nshort_server_id = 1\n[[server]]\nuri = \"coap://g\"\nshort_server_id = 1",
        ] {
            assert!(parse(bad).is_err(), "accepted: {bad}");
        }
    }

    const SERVER: &str = "[[server]]\nuri = \"coap://h\"\n";

    #[test]
    fn sensors_parse_with_defaults() {
        let c = parse(&format!(
            "{SERVER}[[sensor]]\nmodel = \"bme280\"\nbus = \"/dev/i2c-1\"\naddress = 0x76\ninterval = 30\ninstance = 0\n\
             [[sensor]]\nmodel = \"sim\"\nbus = \"sim\"\naddress = 1\ninterval = 5\ninstance = 1\noffset = -0.5\nscale = 2.0\napplication_type = \"demo\"\n"
        ))
        .unwrap();
        assert_eq!(c.sensors.len(), 2);
        let s = c.sensors[0].get_ref();
        assert_eq!(
            (s.model, s.address, s.interval, s.instance),
            (SensorModel::Bme280, 0x76, 30, 0)
        );
        assert_eq!((s.offset, s.scale), (0.0, 1.0));
        assert_eq!(
            c.sensors[1].get_ref().application_type.as_deref(),
            Some("demo")
        );
        assert_eq!(c.sensor_interval_floor, 1);
    }

    #[test]
    fn sensor_errors_name_the_line() {
        let sensor = |model: &str, address: &str, instance: u16| {
            format!("[[sensor]]\nmodel = \"{model}\"\nbus = \"/dev/i2c-1\"\naddress = {address}\ninterval = 10\ninstance = {instance}\n")
        };
        // Lines: the server takes 2, each sensor 6.
        let cases = [
            (
                format!("{SERVER}{}", sensor("bme281", "0x76", 0)),
                "4:",
                "unknown variant",
            ),
            (
                format!(
                    "{SERVER}{}{}",
                    sensor("bme280", "0x76", 0),
                    sensor("sim", "0x76", 1)
                ),
                "9:",
                "another sensor is configured at 0x76 on /dev/i2c-1",
            ),
            (
                format!(
                    "{SERVER}{}{}",
                    sensor("bme280", "0x76", 0),
                    sensor("sht4x", "0x44", 0)
                ),
                "9:",
                "/3303/0",
            ),
            (
                format!("{SERVER}{}", sensor("bme280", "0x40", 0)),
                "3:",
                "0x76, 0x77",
            ),
            (
                format!("{SERVER}{}", sensor("sim", "0x80", 0)),
                "3:",
                "7-bit",
            ),
            (
                format!(
                    "{SERVER}{}",
                    sensor("sim", "1", 0).replace("interval = 10", "interval = 0")
                ),
                "3:",
                "interval",
            ),
            (
                format!("{SERVER}{}unit = \"C\"\n", sensor("sim", "1", 0)),
                "9:",
                "unit",
            ), // An ADC's four inputs are four instances of 3316 Voltage: 2 is taken.
            (
                format!(
                    "{SERVER}{}{}",
                    sensor("ads1115", "0x48", 0),
                    sensor("ina219", "0x40", 2)
                ),
                "9:",
                "/3316/2",
            ),
            (
                format!("{SERVER}{}", sensor("ads1015", "0x49", 65532)),
                "3:",
                "at most 65531",
            ),
        ];
        for (text, line, wanted) in cases {
            let e = parse(&text).unwrap_err().to_string();
            let prefix = format!("/etc/lwm2md/lwm2md.toml:{line}");
            assert!(e.starts_with(&prefix), "{e} (wanted line {line})\n{text}");
            assert!(e.contains(wanted), "{e}");
        }
    }

    #[test]
    fn resource_bindings_are_checked_with_their_line() {
        let base = "[[server]]\nuri = \"coap://h\"\n";
        let ok = format!(
            "object_dirs = [\"/tmp/o\"]\n{base}[[resource]]\npath = \"/33000/0/1\"\nfile = \"/sys/x\"\nscale = 0.001\n\
             [[resource]]\npath = \"/33000/0/2\"\ncommand = [\"echo 1\"]\nshell = true\ntimeout = 3\n\
             [[resource]]\npath = \"/33000/0/3\"\nvalue = 7\n\
             [[resource]]\npath = \"/33000/0/4\"\napp = true\ntimeout = 5\n\
             [[resource]]\npath = \"/33001\"\napp = true\n"
        );
        let c = parse(&ok).unwrap();
        assert_eq!(c.object_dirs(), vec![PathBuf::from("/tmp/o")]);
        assert_eq!(c.resources.len(), 5);
        assert!(c.resources[4].app);
        assert_eq!(c.resources[1].position, Some((9, 8)));
        assert_eq!(
            parse(base).unwrap().object_dirs(),
            vec![
                PathBuf::from("/usr/share/lwm2md/objects"),
                PathBuf::from("/etc/lwm2md/objects")
            ]
        );
        let cases = [
            ("path = \"/33000/0\"\nvalue = 1", "must name a resource"),
            ("path = \"/33000/x/1\"\nvalue = 1", "65534"),
            ("path = \"/33000/0/1\"", "exactly one of"),
            (
                "path = \"/33000/0/1\"\nvalue = 1\nfile = \"/f\"",
                "exactly one of",
            ),
            ("path = \"/33000/0/1\"\ncommand = []", "name a program"),
            (
                "path = \"/33000/0/1\"\ncommand = [\"a\", \"b\"]\nshell = true",
                "sh -c",
            ),
            (
                "path = \"/33000/0/1\"\nfile = \"/f\"\nshell = true",
                "only applies",
            ),
            (
                "path = \"/33000/0/1\"\nfile = \"/f\"\ntimeout = 1",
                "only applies",
            ),
            ("path = \"/33000/0/1\"\nvalue = 1\ninterval = 5", "constant"),
            (
                "path = \"/33000/0/1\"\nfile = \"/f\"\ninterval = 0",
                "at least 1",
            ),
            ("path = \"/33000/0/1\"\nfile = \"/f\"\nscale = 0.0", "scale"),
            (
                "path = \"/33000/0/1\"\napp = true\nvalue = 1",
                "exactly one of",
            ),
            ("path = \"/33000/0\"\napp = true", "or, with app, an object"),
            ("path = \"/33000/0/1\"\napp = true\ninterval = 5", "app"),
        ];
        for (table, wanted) in cases {
            let e = parse(&format!("{base}[[resource]]\n{table}\n")).unwrap_err();
            let s = e.to_string();
            assert!(s.contains(wanted), "{table}: {s}");
            assert!(s.starts_with("/etc/lwm2md/lwm2md.toml:4:"), "{table}: {s}");
        }
        let twice = format!(
            "{base}[[resource]]\npath = \"/33000/0/1\"\nvalue = 1\n[[resource]]\npath = \"/33000/0/1\"\nvalue = 2\n"
        );
        let s = parse(&twice).unwrap_err().to_string();
        assert!(s.contains(":7:") && s.contains("bound twice"), "{s}");
        let unknown = format!("{base}[[resource]]\npath = \"/33000/0/1\"\nfiel = \"/f\"\n");
        assert!(parse(&unknown).unwrap_err().to_string().contains("fiel"));
    }

    #[test]
    fn connectivity_table() {
        let base = "[[server]]\nuri = \"coap://h\"\n";
        let c = parse(base).unwrap();
        assert_eq!(c.connectivity.backend, ConnectivityBackend::Host);
        assert_eq!(c.connectivity.interface, None);
        assert_eq!(c.connectivity.interval, 30);
        let c = parse(&format!(
            "{base}[connectivity]\nbackend = \"modemmanager\"\ninterface = \"wwan0\"\ninterval = 10\n"
        ))
        .unwrap();
        assert_eq!(c.connectivity.backend, ConnectivityBackend::Modemmanager);
        assert_eq!(c.connectivity.interface.as_deref(), Some("wwan0"));
        for (bad, wanted) in [
            ("backend = \"ofono\"", "4:11"),
            ("interface = \"../etc\"", "not an interface name"),
            ("interface = \"a-very-long-name0\"", "not an interface name"),
            ("interval = 0", "1 to 86400"),
            ("port = \"/dev/ttyUSB2\"", "need backend = \"at\""),
            ("intervall = 5", "4:1"),
        ] {
            let e = parse(&format!("{base}[connectivity]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(wanted), "{bad}: {e}");
        }
    }

    #[test]
    fn location() {
        let server = "[[server]]\nuri = \"coap://h\"\n";
        let c = parse(&format!("{server}[location]\n")).unwrap();
        let l = c.location.unwrap();
        assert_eq!(l.backend, LocationBackend::Gpsd);
        assert_eq!(l.address, "127.0.0.1:2947");
        assert_eq!(l.latitude, None);
        let c = parse(&format!(
            "{server}[location]\nbackend = \"static\"\nlatitude = -43.5723\nlongitude = 153.2176\naltitude = 12\n"
        ))
        .unwrap();
        let l = c.location.unwrap();
        assert_eq!(l.backend, LocationBackend::Static);
        assert_eq!(
            (l.latitude, l.longitude, l.altitude),
            (Some(-43.5723), Some(153.2176), Some(12.0))
        );
        assert!(parse(server).unwrap().location.is_none());
        let c = parse(&format!(
            "{server}[connectivity]\nbackend = \"modemmanager\"\n[location]\nbackend = \"modem\"\n"
        ))
        .unwrap();
        assert_eq!(c.location.unwrap().backend, LocationBackend::Modem);
        let c = parse(&format!(
            "{server}[connectivity]\nbackend = \"at\"\n[location]\nbackend = \"modem\"\n"
        ))
        .unwrap();
        assert_eq!(c.location.unwrap().backend, LocationBackend::Modem);
        let e = parse(&format!("{server}[location]\nbackend = \"modem\"\n")).unwrap_err();
        assert!(e.to_string().contains("connectivity.backend"), "{e}");

        let e = parse(&format!(
            "{server}[location]\nlatitude = 91.0\nlongitude = 0.0\n"
        ))
        .unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("/etc/lwm2md/lwm2md.toml:4:12: "), "{s}");
        assert!(s.contains("latitude 91 must be in [-90, 90]"), "{s}");
        for bad in [
            "[location]\nbackend = \"static\"",
            "[location]\nbackend = \"galileo\"",
            "[location]\nlatitude = 1.0",
            "[location]\nlongitude = 181.0\nlatitude = 1.0",
            "[location]\naddress = \"localhost\"",
            "[location]\ngpsd = \"localhost:2947\"",
        ] {
            assert!(parse(&format!("{server}{bad}")).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn at_modem() {
        let server = "[[server]]\nuri = \"coap://h\"\n";
        let c = parse(&format!("{server}[connectivity]\nbackend = \"at\"\n")).unwrap();
        let n = &c.connectivity;
        assert_eq!(n.backend, ConnectivityBackend::At);
        assert_eq!(n.at_port(), PathBuf::from("/dev/ttyUSB2"));
        assert_eq!(n.at_baud(), 115_200);
        let c = parse(&format!(
            "{server}[connectivity]\nbackend = \"at\"\nport = \"/dev/serial/by-id/usb-Quectel_EC25-if02\"\nbaud = 9600\ninterval = 10\n"
        ))
        .unwrap();
        assert_eq!(
            (c.connectivity.at_baud(), c.connectivity.interval),
            (9600, 10)
        );
        for bad in [
            "[connectivity]\nbackend = \"at\"\nbaud = 0",
            "[connectivity]\nbackend = \"at\"\nport = \"ttyUSB2\"",
            "[connectivity]\nbackend = \"at\"\napn = \"internet\"",
            "[modem]\nbackend = \"at\"",
        ] {
            assert!(parse(&format!("{server}{bad}")).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn bootstrap_table_is_the_bootstrap_account() {
        let c = parse(
            "[bootstrap]\nuri = \"coap://bs.example.net:5683\"\n[[server]]\nuri = \"coap://h\"\n",
        )
        .unwrap();
        let a = c.accounts().unwrap();
        assert_eq!(a.len(), 2);
        assert!(!a[0].bootstrap && a[1].bootstrap);
        assert_eq!((a[1].host.as_str(), a[1].port), ("bs.example.net", 5683));
        assert!(!c.bootstrap_server.as_ref().is_some_and(|b| b.pack));
        // Alone it is enough: the daemon bootstraps from it.
        let c = parse("[bootstrap]\nuri = \"coap://bs\"\npack = true\n").unwrap();
        assert!(c.bootstrap_server.as_ref().is_some_and(|b| b.pack));
        for bad in [
            "[bootstrap]\nuri = \"coap://bs\"\nlifetime = 60\n",
            "[bootstrap]\nuri = \"coap://bs\"\n[[server]]\nuri = \"coap://h\"\nbootstrap = true\n",
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
        assert_eq!(
            parse_server_uri("coaps://example.net"),
            Ok((Scheme::Coaps, "example.net".into(), 5684))
        );
        assert_eq!(
            parse_server_uri("coaps://[::1]:15684"),
            Ok((Scheme::Coaps, "::1".into(), 15684))
        );
    }

    /// A key file in a fresh directory under the system temporary directory.
    fn key_file(name: &str, contents: &[u8], mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("lwm2md-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn psk_server(key_file: &Path) -> String {
        format!(
            "[[server]]\nuri = \"coaps://h\"\npsk_identity = \"gw-1\"\npsk_key_file = \"{}\"\n",
            key_file.display()
        )
    }

    #[test]
    fn coaps_defaults_to_psk_on_port_5684() {
        let f = key_file("hex", b"00112233 44556677\n8899aabbccddeeff\n", 0o600);
        let a = parse(&psk_server(&f)).unwrap().accounts().unwrap();
        assert_eq!(a[0].port, 5684);
        assert_eq!(
            a[0].security,
            AccountSecurity::Psk(Psk {
                identity: "gw-1".into(),
                key: vec![
                    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc,
                    0xdd, 0xee, 0xff
                ],
            })
        );
        // The key stays out of logs.
        assert!(!format!("{:?}", a[0]).contains("17"), "{:?}", a[0]);
        let explicit = format!("{}security = \"psk\"\n", psk_server(&f));
        assert_eq!(parse(&explicit).unwrap().accounts().unwrap(), a);
    }

    #[test]
    fn key_file_that_is_not_hex_is_raw_bytes() {
        let f = key_file("raw", b"secret key!\n", 0o400);
        let a = parse(&psk_server(&f)).unwrap().accounts().unwrap();
        let AccountSecurity::Psk(psk) = &a[0].security else {
            panic!("{a:?}")
        };
        assert_eq!(psk.key, b"secret key!\n");
        assert_eq!(parse_psk_key(b"abc"), b"abc");
        assert_eq!(parse_psk_key(b"0g"), b"0g");
        assert_eq!(parse_psk_key(b"  \n"), b"  \n");
        assert_eq!(parse_psk_key(b"DEad\tbeef"), [0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn key_file_readable_by_others_is_refused() {
        for (name, mode) in [("group", 0o640), ("world", 0o604)] {
            let f = key_file(name, b"00112233", mode);
            let e = parse(&psk_server(&f)).unwrap_err().to_string();
            assert!(e.contains(&f.display().to_string()), "{e}");
            assert!(e.contains("chmod 600"), "{e}");
        }
    }

    #[test]
    fn inline_key_is_refused_with_where_to_put_it() {
        let e =
            parse("[[server]]\nuri = \"coaps://h\"\npsk_identity = \"a\"\npsk_key = \"0011\"\n")
                .unwrap_err()
                .to_string();
        assert!(e.starts_with("/etc/lwm2md/lwm2md.toml:4:1: "), "{e}");
        assert!(e.contains("psk_key_file"), "{e}");
        assert!(e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn security_modes_are_checked_against_the_scheme() {
        let f = key_file("modes", b"0011", 0o600);
        let cases = [
            (
                "uri = \"coaps://h\"\nsecurity = \"cert\"",
                "needs certificate_file",
            ),
            (
                "uri = \"coaps://h\"\nsecurity = \"rpk\"",
                if crate::dtls::RAW_PUBLIC_KEYS {
                    "needs private_key_file"
                } else {
                    "need OpenSSL 3.2"
                },
            ),
            (
                "uri = \"coaps://h\"\nsecurity = \"cert\"\nserver_public_key_file = \"/k\"",
                "server_public_key_file needs security = \"rpk\"",
            ),
            (
                "uri = \"coaps://h\"\nsecurity = \"psk\"\nsni = \"x\"",
                "need security = \"cert\"",
            ),
            (
                "uri = \"coaps://h\"\nsecurity = \"cert\"\ncertificate_file = \"/nonexistent/c.pem\"",
                "/nonexistent/c.pem",
            ),
            (
                "uri = \"coaps://h\"\nsecurity = \"nosec\"",
                "needs security = \"psk\", \"cert\" or \"rpk\"",
            ),
            (
                "uri = \"coap://h\"\nsecurity = \"psk\"",
                "needs a coaps:// uri",
            ),
            (
                "uri = \"coap://h\"\npsk_identity = \"a\"",
                "need security = \"psk\"",
            ),
            ("uri = \"coaps://h\"", "needs psk_identity"),
            ("uri = \"coaps://h\"\npsk_identity = \"\"", "1 to 128 bytes"),
            (
                "uri = \"coaps://h\"\npsk_identity = \"a\"",
                "needs psk_key_file",
            ),
            (
                "uri = \"coaps://h\"\npsk_identity = \"a\"\npsk_key_file = \"/nonexistent/key\"",
                "/nonexistent/key",
            ),
        ];
        for (server, wanted) in cases {
            let e = parse(&format!("[[server]]\n{server}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(wanted), "{server}: {e}");
        }
        let plain = format!(
            "[[server]]\nuri = \"coap://h\"\nsecurity = \"nosec\"\n[[server]]\n{}",
            psk_server(&f).trim_start_matches("[[server]]\n")
        );
        let a = parse(&plain).unwrap().accounts().unwrap();
        assert_eq!(a[0].security, AccountSecurity::NoSec);
        assert!(matches!(a[1].security, AccountSecurity::Psk(_)));
    }

    #[cfg(ossl_rpk)]
    #[test]
    fn rpk_account_reads_its_key_files() {
        use openssl::ec::{EcGroup, EcKey};
        use openssl::pkey::PKey;
        let group = EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let ours = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let theirs = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let key = key_file("rpk-key", &ours.private_key_to_pem_pkcs8().unwrap(), 0o600);
        let server = key_file("rpk-server", &theirs.public_key_to_pem().unwrap(), 0o644);
        let text = format!(
            "[[server]]\nuri = \"coaps://h\"\nsecurity = \"rpk\"\nprivate_key_file = {key:?}\n\
             server_public_key_file = {server:?}\n"
        );
        let a = parse(&text).unwrap().accounts().unwrap();
        match &a[0].security {
            AccountSecurity::RawPublicKey(k) => {
                assert_eq!(k.server_public_key, theirs.public_key_to_der().unwrap());
                let back = PKey::private_key_from_der(&k.private_key).unwrap();
                assert!(back.public_eq(&ours));
            }
            other => panic!("{other:?}"),
        }
        let missing = format!(
            "[[server]]\nuri = \"coaps://h\"\nsecurity = \"rpk\"\nprivate_key_file = {key:?}\n"
        );
        let e = parse(&missing).unwrap_err().to_string();
        assert!(e.contains("needs server_public_key_file"), "{e}");
    }

    #[test]
    fn empty_or_oversized_keys_are_refused() {
        for (name, contents) in [("empty", &b""[..]), ("big", &[0x41u8; 65][..])] {
            let f = key_file(name, contents, 0o600);
            let e = parse(&psk_server(&f)).unwrap_err().to_string();
            assert!(e.contains("1 to 64 bytes"), "{e}");
        }
    }

    #[test]
    fn firmware_table() {
        let server = "[[server]]\nuri = \"coap://h\"\n";
        let c = parse(&format!(
            "{server}[firmware]\nbackend = \"uboot\"\nslots = {{ A = \"/dev/a\", B = \"/dev/b\" }}\nfw_env_config = \"/etc/fw_env.config\"\n"
        ))
        .unwrap();
        let fw = c.firmware.unwrap();
        assert_eq!(fw.backend, FirmwareBackend::Uboot);
        assert_eq!(fw.commit_window, 600);
        assert_eq!(
            fw.staging(Path::new("/var/lib/lwm2md")),
            Path::new("/var/lib/lwm2md/firmware")
        );
        assert!(parse(server).unwrap().firmware.is_none());
        for (table, wanted) in [
            ("backend = \"script\"\n", "needs install"),
            (
                "backend = \"uboot\"\nslots = { A = \"/dev/a\" }\n",
                "two entries",
            ),
            (
                "backend = \"script\"\ninstall = []\n",
                "must name a program",
            ),
            (
                "backend = \"rauc\"\nslots = { A = \"/a\", B = \"/b\" }\n",
                "takes no install",
            ),
            (
                "backend = \"rauc\"\nsignature_key = \"/k.pem\"\n",
                "own keyring",
            ),
            (
                "backend = \"script\"\ninstall = [\"x\"]\ncommit_window = 0\n",
                "at least 1 second",
            ),
        ] {
            let e = parse(&format!("{server}[firmware]\n{table}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(wanted), "{table}: {e}");
        }
        // Unknown keys name their line.
        let e = parse(&format!(
            "{server}[firmware]\nbackend = \"script\"\ninstal = [\"x\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("/etc/lwm2md/lwm2md.toml:5:1: "), "{e}");
    }
}
