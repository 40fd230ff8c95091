//! Layered settings: defaults < config file < environment < flags.
//!
//! Each layer is a [`Settings`] whose fields are all optional; layers are
//! merged field by field and the result is validated once into a typed
//! [`Config`]. Nothing downstream reads flags or environment variables.
//! The environment is passed in as a function so tests need not touch the
//! process environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{GlobalArgs, ServeArgs};
use crate::limits::{Limits, LimitsFile};

mod secret;
pub use secret::{prompt_password, Secret};

/// The default broker, a Mosquitto on this machine.
pub const DEFAULT_BROKER: &str = "mqtt://localhost:1883";
/// The default topic prefix.
pub const DEFAULT_PREFIX: &str = "mqttapp";
/// The default edit file.
pub const DEFAULT_FILE: &str = "notes.txt";
/// How long `ask` waits for a reply by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the broker keeps a stopped server's session (and queues its requests).
pub const DEFAULT_SESSION_EXPIRY: Duration = Duration::from_secs(24 * 3600);
/// The same for a group member: a crashed member's session would keep
/// taking its share of the requests (Mosquitto hands them to sessions, not
/// connections) until it expires, while the other members could answer
/// them; a re-send after that second lands on a live member.
pub const DEFAULT_GROUP_SESSION_EXPIRY: Duration = Duration::from_secs(1);
/// The config file used when none is named and it exists (in a checkout).
pub const DEFAULT_CONFIG_FILE: &str = "config/mqttapp.toml";

/// The user's config file: `$XDG_CONFIG_HOME/mqttapp/config.toml`
/// (`~/.config/mqttapp/config.toml`), where an installed tool looks.
pub fn user_config_file() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("mqttapp").join("config.toml"))
}

/// The config file used when none is named: `./config/mqttapp.toml`, else
/// the user's, whichever exists first.
fn found_config_file() -> Option<PathBuf> {
    std::iter::once(PathBuf::from(DEFAULT_CONFIG_FILE))
        .chain(user_config_file())
        .find(|p| p.is_file())
}

/// Why the settings could not be resolved. All of these are usage errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source} - check the path given to --config or MQTTAPP_CONFIG")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// A setting has a value that cannot work.
    #[error("invalid {setting} {value:?}: {reason} - {}", where_set(.setting))]
    Invalid {
        /// The setting's name, as in the config file.
        setting: &'static str,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The password file could not be read.
    #[error("cannot read password file {path}: {source} - check --password-file (its first line is the password)")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--password-prompt` could not read from the terminal.
    #[error("cannot read the password from the terminal: {source} - --password-prompt needs a terminal; scripts use --password-file or MQTTAPP_PASSWORD")]
    Prompt {
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where a setting can have come from, so the user knows what to fix.
fn where_set(setting: &str) -> String {
    let flag = setting.replace('_', "-");
    let env = setting.to_ascii_uppercase();
    match setting {
        // `status --wait`/`--forget` and `bench --duration` are flags only.
        "wait" | "duration" | "forget" | "wait_for_broker" => format!("fix --{flag}"),
        "broker" => "fix --broker, MQTTAPP_BROKER (or the seed app's BROKER and PORT) or `broker` in the config file".to_string(),
        _ => format!("fix --{flag}, MQTTAPP_{env} or `{setting}` in the config file"),
    }
}

/// One layer of settings; every field optional. The TOML file has exactly
/// these keys (see `config/mqttapp.toml`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Broker URI.
    pub broker: Option<String>,
    /// Broker user name.
    pub username: Option<String>,
    /// Broker password (prefer `password_file`).
    pub password: Option<Secret>,
    /// File whose first line is the broker password.
    pub password_file: Option<PathBuf>,
    /// Topic prefix.
    pub prefix: Option<String>,
    /// Server data directory.
    pub data_dir: Option<PathBuf>,
    /// Default edit file.
    pub file: Option<String>,
    /// `ask` timeout, e.g. "5s" (or a number of seconds in TOML).
    #[serde(default, deserialize_with = "duration_text")]
    pub timeout: Option<String>,
    /// Server id.
    pub server_id: Option<String>,
    /// Shared-subscription group.
    pub group: Option<String>,
    /// Server session expiry, e.g. "24h" (or a number of seconds in TOML).
    #[serde(default, deserialize_with = "duration_text")]
    pub session_expiry: Option<String>,
    /// Topic filters a server may reply to besides `<prefix>/v1/resp/#`.
    pub reply_topics: Option<Vec<String>>,
    /// Budget for requests waiting inside the server, e.g. 16777216 or "16MiB".
    pub max_queue_bytes: Option<ByteSetting>,
    /// CA file for TLS.
    pub ca_file: Option<PathBuf>,
    /// Client certificate for TLS.
    pub cert_file: Option<PathBuf>,
    /// Client key for TLS.
    pub key_file: Option<PathBuf>,
    /// Skip TLS verification.
    pub insecure: Option<bool>,
    /// Limits, see [`Limits`].
    pub limits: Option<LimitsFile>,
}

/// A duration in the config file: `"2.5s"`, or a bare number of seconds
/// (`timeout = 2`), as on the command line.
fn duration_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Int(i64),
        Float(f64),
        Str(String),
    }
    let text = match Text::deserialize(d)? {
        Text::Int(n) => n.to_string(),
        Text::Float(x) => x.to_string(),
        Text::Str(s) => s,
    };
    Ok(Some(text))
}

macro_rules! merge_fields {
    ($high:expr, $low:expr, $($field:ident),*) => {
        Settings { $($field: $high.$field.or($low.$field),)* }
    };
}

impl Settings {
    /// Fills every unset field of `self` from `lower`.
    ///
    /// `password` and `password_file` are one setting: a layer that gives
    /// either hides both of the lower layers (`--password-file` beats
    /// `MQTTAPP_PASSWORD`, which beats the config file's `password_file`).
    pub fn over(self, mut lower: Settings) -> Settings {
        if self.password.is_some() || self.password_file.is_some() {
            lower.password = None;
            lower.password_file = None;
        }
        merge_fields!(
            self,
            lower,
            broker,
            username,
            password,
            password_file,
            prefix,
            data_dir,
            file,
            timeout,
            server_id,
            group,
            session_expiry,
            reply_topics,
            max_queue_bytes,
            ca_file,
            cert_file,
            key_file,
            insecure,
            limits
        )
    }

    /// The settings given by flags.
    pub fn from_flags(global: &GlobalArgs, serve: Option<&ServeArgs>) -> Settings {
        let serve = serve.cloned().unwrap_or_default();
        Settings {
            broker: global.broker.clone(),
            username: global.username.clone(),
            password_file: global.password_file.clone(),
            prefix: global.prefix.clone(),
            ca_file: global.ca_file.clone(),
            cert_file: global.cert_file.clone(),
            key_file: global.key_file.clone(),
            insecure: global.insecure.then_some(true),
            data_dir: serve.data_dir,
            file: serve.file,
            server_id: serve.server_id,
            group: serve.group,
            session_expiry: serve.session_expiry,
            reply_topics: serve.reply_topics,
            max_queue_bytes: serve.max_queue_bytes.map(ByteSetting::Text),
            ..Settings::default()
        }
    }

    /// The settings given by the environment (`MQTTAPP_*`, then the seed
    /// app's `BROKER`/`PORT` and `USERNAME`/`PASSWORD`).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Settings {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let mut s = Settings {
            broker: var("MQTTAPP_BROKER").or_else(|| seed_broker(&var)),
            username: var("MQTTAPP_USERNAME"),
            password: var("MQTTAPP_PASSWORD").map(Secret::new),
            prefix: var("MQTTAPP_PREFIX"),
            data_dir: var("MQTTAPP_DATA_DIR").map(PathBuf::from),
            file: var("MQTTAPP_FILE"),
            timeout: var("MQTTAPP_TIMEOUT"),
            server_id: var("MQTTAPP_SERVER_ID"),
            group: var("MQTTAPP_GROUP"),
            session_expiry: var("MQTTAPP_SESSION_EXPIRY"),
            reply_topics: var("MQTTAPP_REPLY_TOPICS").map(|v| split_list(&v)),
            max_queue_bytes: var("MQTTAPP_MAX_QUEUE_BYTES").map(ByteSetting::Text),
            ca_file: var("MQTTAPP_CA_FILE").map(PathBuf::from),
            cert_file: var("MQTTAPP_CERT_FILE").map(PathBuf::from),
            key_file: var("MQTTAPP_KEY_FILE").map(PathBuf::from),
            ..Settings::default()
        };
        // The seed's USERNAME is set by some desktops on its own: only the
        // pair counts, and only when MQTTAPP_USERNAME is not set.
        if s.username.is_none() && s.password.is_none() {
            if let (Some(user), Some(pass)) = (var("USERNAME"), var("PASSWORD")) {
                s.username = Some(user);
                s.password = Some(Secret::new(pass));
            }
        }
        s
    }

    /// Reads a TOML config file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`].
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

/// The seed app's `BROKER` (a host, `host:port` or a URI) and `PORT`
/// (used when `BROKER` names no port). Validated with every other address
/// in [`Config::from_settings`].
fn seed_broker(var: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let host = var("BROKER")?;
    if host.contains("://") || crate::mqtt::split_port(&host).1.is_some() {
        return Some(host);
    }
    let port = var("PORT").unwrap_or_else(|| "1883".to_string());
    Some(format!("mqtt://{host}:{port}"))
}

/// TLS settings for `mqtts://` and `wss://` brokers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Client certificate.
    pub cert_file: Option<PathBuf>,
    /// Client private key.
    pub key_file: Option<PathBuf>,
    /// Skip certificate and host-name verification.
    pub insecure: bool,
}

/// Everything needed to reach the broker.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Broker URI as given (mqtt://, mqtts://, ws://, wss://).
    pub broker: String,
    /// User name, if any.
    pub username: Option<String>,
    /// Password, if any; never printed.
    pub password: Option<Secret>,
    /// TLS settings.
    pub tls: Tls,
}

/// The validated settings every subcommand runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// How to reach the broker.
    pub connection: Connection,
    /// Topic prefix.
    pub prefix: String,
    /// Server data directory.
    pub data_dir: PathBuf,
    /// Default edit file (serve) or the file `ask edit` names by default.
    pub file: Option<String>,
    /// `ask` timeout.
    pub timeout: Duration,
    /// Server id (status topic, client id).
    pub server_id: String,
    /// Shared-subscription group, if any.
    pub group: Option<String>,
    /// How long the broker keeps the server's session.
    pub session_expiry: Duration,
    /// Topic filters replies may go to besides `<prefix>/v1/resp/#`
    /// (empty by default: a request cannot aim a reply elsewhere).
    pub reply_topics: Vec<String>,
    /// Input and resource limits.
    pub limits: Limits,
}

impl Config {
    /// Resolves flags, environment, config file and defaults.
    ///
    /// # Errors
    /// [`ConfigError`] for unreadable files and invalid values.
    pub fn resolve(
        flags: Settings,
        config_flag: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let env_settings = Settings::from_env(env);
        let named = config_flag.map(Path::to_path_buf).or_else(|| {
            env("MQTTAPP_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let file = match named.or_else(found_config_file) {
            Some(path) => {
                tracing::debug!("using config file {}", path.display());
                Settings::from_file(&path)?
            }
            None => {
                tracing::debug!(
                    "no config file (looked for {DEFAULT_CONFIG_FILE} and {})",
                    user_config_file().map_or_else(
                        || "~/.config/mqttapp/config.toml".to_string(),
                        |p| p.display().to_string()
                    )
                );
                Settings::default()
            }
        };
        Config::from_settings(flags.over(env_settings).over(file))
    }

    /// Validates merged settings and fills in the defaults.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad setting.
    pub fn from_settings(s: Settings) -> Result<Config, ConfigError> {
        let password = match (s.password, &s.password_file) {
            (Some(p), _) => Some(p),
            (None, Some(path)) => Some(secret::read_password_file(path)?),
            (None, None) => None,
        };
        let prefix = s.prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_string());
        validate_prefix(&prefix)?;
        let server_id = s.server_id.unwrap_or_else(default_server_id);
        validate_id("server_id", &server_id)?;
        if let Some(group) = &s.group {
            validate_id("group", group)?;
        }
        let broker = s.broker.unwrap_or_else(|| DEFAULT_BROKER.to_string());
        if let Err(crate::mqtt::MqttError::BadUri { reason, .. }) =
            crate::mqtt::BrokerUri::parse(&broker)
        {
            return Err(ConfigError::Invalid {
                setting: "broker",
                value: broker,
                reason,
            });
        }
        let session_expiry = parse_duration(
            "session_expiry",
            s.session_expiry.as_deref(),
            if s.group.is_some() {
                DEFAULT_GROUP_SESSION_EXPIRY
            } else {
                DEFAULT_SESSION_EXPIRY
            },
        )?;
        let reply_topics = s.reply_topics.unwrap_or_default();
        for filter in &reply_topics {
            crate::protocol::validate_filter(filter).map_err(|reason| ConfigError::Invalid {
                setting: "reply_topics",
                value: filter.clone(),
                reason: reason.to_string(),
            })?;
        }
        Ok(Config {
            connection: Connection {
                broker,
                username: s.username,
                password,
                tls: Tls {
                    ca_file: s.ca_file,
                    cert_file: s.cert_file,
                    key_file: s.key_file,
                    insecure: s.insecure.unwrap_or(false),
                },
            },
            prefix,
            data_dir: s.data_dir.unwrap_or_else(default_data_dir),
            file: s.file,
            timeout: parse_duration("timeout", s.timeout.as_deref(), DEFAULT_TIMEOUT)?,
            server_id,
            group: s.group,
            session_expiry,
            reply_topics,
            limits: Limits {
                max_queue_bytes: parse_bytes(
                    "max_queue_bytes",
                    s.max_queue_bytes.as_ref(),
                    crate::limits::DEFAULT_MAX_QUEUE_BYTES,
                    crate::limits::MIN_QUEUE_BYTES,
                )?,
                ..Limits::from_file(s.limits.unwrap_or_default())
            },
        })
    }
}

/// What a duration may look like, for every message about a bad one.
pub const DURATION_FORMS: &str =
    "use a positive number of seconds (5, 2.5) or a number and a unit (500ms, 10s, 2m, 1h)";

/// A comma-separated list (`MQTTAPP_REPLY_TOPICS`), blanks dropped.
fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .collect()
}

/// Parses "5", "2.5" (seconds) or humantime forms such as "500ms", "1m".
///
/// # Errors
/// [`ConfigError::Invalid`] for unparsable or zero durations.
pub fn parse_duration(
    setting: &'static str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(text) = value else {
        return Ok(default);
    };
    // One message for every way a duration can be wrong ("5x", "-1", "0").
    let invalid = || ConfigError::Invalid {
        setting,
        value: text.to_string(),
        reason: DURATION_FORMS.to_string(),
    };
    let parsed = match text.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => Duration::from_secs_f64(secs),
        Ok(_) => return Err(invalid()),
        Err(_) => humantime::parse_duration(text.trim()).map_err(|_| invalid())?,
    };
    if parsed.is_zero() {
        return Err(invalid());
    }
    Ok(parsed)
}

/// A size in bytes as written in a setting: a TOML integer, or text
/// (flags, environment, TOML strings) such as "16777216" or "16MiB".
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ByteSetting {
    /// A plain number of bytes.
    Number(u64),
    /// Digits with an optional KiB, MiB or GiB suffix.
    Text(String),
}

/// Parses a [`ByteSetting`]; `default` when unset.
///
/// # Errors
/// [`ConfigError::Invalid`] for unparsable values or values below `min`.
pub fn parse_bytes(
    setting: &'static str,
    value: Option<&ByteSetting>,
    default: u64,
    min: u64,
) -> Result<u64, ConfigError> {
    let (bytes, shown) = match value {
        None => return Ok(default),
        Some(ByteSetting::Number(n)) => (Some(*n), n.to_string()),
        Some(ByteSetting::Text(text)) => (bytes_of_text(text), text.clone()),
    };
    let invalid = |reason: String| ConfigError::Invalid {
        setting,
        value: shown.clone(),
        reason,
    };
    match bytes {
        None => Err(invalid(
            "must be a number of bytes, optionally with KiB, MiB or GiB".to_string(),
        )),
        Some(n) if n < min => Err(invalid(format!("must be at least {min} bytes"))),
        Some(n) => Ok(n),
    }
}

/// "123", "64KiB", "16 MiB", "1GiB" (case-insensitive) in bytes.
fn bytes_of_text(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// Topic prefixes: non-empty, no wildcards, no leading `$` or `/`.
fn validate_prefix(prefix: &str) -> Result<(), ConfigError> {
    let reason = if prefix.is_empty() {
        Some("must not be empty")
    } else if prefix.contains(['#', '+', '\0']) {
        Some("must not contain MQTT wildcards '#' or '+'")
    } else if prefix.starts_with(['$', '/']) || prefix.ends_with('/') {
        Some("must not start with '$' or '/' or end with '/'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ConfigError::Invalid {
            setting: "prefix",
            value: prefix.to_string(),
            reason: reason.to_string(),
        }),
        None => Ok(()),
    }
}

/// Ids become topic levels and client ids: letters, digits, `-`, `_`, `.`,
/// at most 64 characters. This also shuts out `#`/`+` ids that once let
/// clients bypass Mosquitto's `%c` pattern ACLs.
pub fn validate_id(setting: &'static str, id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            setting,
            value: id.to_string(),
            reason: "use 1-64 letters, digits, '-', '_' or '.'".to_string(),
        })
    }
}

/// The host name, reduced to the characters ids allow.
fn default_server_id() -> String {
    let id = server_id_from(&gethostname::gethostname().to_string_lossy());
    if id.is_empty() {
        "server".to_string()
    } else {
        id
    }
}

/// `text` as a server id: characters ids do not allow become `-`, at most
/// 64 of them (may be empty).
pub fn server_id_from(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("mqttapp"))
        .unwrap_or_else(|| PathBuf::from(".mqttapp-data"))
}

#[cfg(test)]
mod tests;
