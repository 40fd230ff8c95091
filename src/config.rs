//! Layered settings: defaults < config file < environment < flags.
//!
//! Every setting is declared once in [`declared`] (name, flag, variable,
//! config key, typed parser, default, the commands that use it). A command
//! resolves its own settings into a [`Config`]: each from the highest
//! source that gives it (flags arrive already typed as [`Settings`]; a
//! variable or config value is parsed only when no higher source gives
//! one), then checked, else its default. Nothing downstream reads flags or
//! environment variables, and this module never sees the command line.
//! The environment is passed in as a function so tests need not touch the
//! process environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::limits::{Limits, LimitsFile};

pub mod declared;
pub mod ops;
pub mod parse;
mod secret;
pub use declared::{Cmd, Setting, Typed};
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
    match declared::named(setting) {
        Some(declared) => declared.fix_hint(),
        None => format!("fix --{}", setting.replace('_', "-")),
    }
}

/// The settings given by flags (or by a test), typed as the program uses
/// them; every field optional. Commands build it from their parsed flags
/// (`cli`); this module never sees the command line itself.
#[derive(Debug, Default, Clone)]
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
    /// How long a request waits for its reply.
    pub timeout: Option<Duration>,
    /// Server id.
    pub server_id: Option<String>,
    /// Shared-subscription group.
    pub group: Option<String>,
    /// Server session expiry.
    pub session_expiry: Option<Duration>,
    /// Serve calc and echo only, no edits (group members on other hosts).
    pub no_edit: Option<bool>,
    /// Topic filters a server may reply to besides `<prefix>/v1/resp/#`.
    pub reply_topics: Option<Vec<String>>,
    /// Budget for requests waiting inside the server, in bytes.
    pub max_queue_bytes: Option<u64>,
    /// How often the server publishes its statistics (zero: on pings only).
    pub stats_interval: Option<Duration>,
    /// Where the server serves its metrics over HTTP.
    pub metrics: Option<std::net::SocketAddr>,
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
    /// `serve --exec NAME=PROGRAM [ARGS...]` values, unparsed.
    pub exec: Option<Vec<String>>,
}

/// A config file: its top-level keys, each checked against the
/// declarations, parsed only when a command uses the setting.
#[derive(Debug, Default, Clone)]
pub struct FileSettings {
    path: PathBuf,
    table: toml::Table,
}

impl FileSettings {
    /// Reads a TOML config file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`].
    pub fn read(path: &Path) -> Result<FileSettings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        FileSettings::parse(path, &text)
    }

    /// Parses config file text; unknown keys are an error, so typos do
    /// not go unnoticed.
    ///
    /// # Errors
    /// [`ConfigError::Parse`].
    pub fn parse(path: &Path, text: &str) -> Result<FileSettings, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        // `[ops.NAME]` tables are no declared setting (`config::ops`).
        let known = || {
            declared::ALL
                .iter()
                .filter(|s| s.in_file)
                .map(|s| s.name)
                .chain([ops::TABLE])
        };
        if let Some(key) = table.keys().find(|k| !known().any(|n| n == k.as_str())) {
            let expected: Vec<String> = known().map(|n| format!("`{n}`")).collect();
            return Err(parse_error(format!(
                "unknown field `{key}`, expected one of {}",
                expected.join(", ")
            )));
        }
        let file = FileSettings {
            path: path.to_path_buf(),
            table,
        };
        // The limits are checked whichever command reads the file.
        file.limits()?;
        Ok(file)
    }

    fn limits(&self) -> Result<Option<LimitsFile>, ConfigError> {
        let Some(value) = self.table.get(declared::LIMITS.name) else {
            return Ok(None);
        };
        value
            .clone()
            .try_into()
            .map(Some)
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: self.path.clone(),
                message: format!("[limits]: {e}"),
            })
    }
}

/// Where one command's settings come from: flags, then the environment,
/// then the config file. A setting is read from a source only when no
/// higher one gives it, and only when the command uses it.
struct Sources<'a> {
    cmd: Option<Cmd>,
    env: &'a dyn Fn(&str) -> Option<String>,
    file: &'a FileSettings,
}

impl Sources<'_> {
    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.is_empty())
    }

    /// The setting's own variable, when set and not empty.
    fn env_of(&self, setting: &Setting) -> Option<String> {
        setting.env.and_then(|v| self.var(v))
    }

    /// The setting's value from the highest source that gives it, typed by
    /// `parse`; `None` when no source does or the command does not use it.
    fn get<T>(&self, typed: &Typed<T>, flag: Option<T>) -> Result<Option<T>, ConfigError> {
        let (setting, parse) = (&typed.setting, typed.parse);
        if !setting.used_by(self.cmd) {
            return Ok(None);
        }
        if flag.is_some() {
            return Ok(flag);
        }
        let invalid = |value: String, reason: String| ConfigError::Invalid {
            setting: setting.name,
            value,
            reason,
        };
        let env = self.env_of(setting);
        let env = match setting.name == declared::BROKER.name {
            true => env.or_else(|| seed_broker(&|k: &str| self.var(k))),
            false => env,
        };
        if let Some(text) = env {
            return parse(&text).map(Some).map_err(|r| invalid(text, r));
        }
        match self.file_text(setting)? {
            Some(text) => parse(&text).map(Some).map_err(|r| invalid(text, r)),
            None => Ok(None),
        }
    }

    /// The config file's value of `setting`, as text.
    fn file_text(&self, setting: &Setting) -> Result<Option<String>, ConfigError> {
        let Some(value) = self.file.table.get(setting.name) else {
            return Ok(None);
        };
        parse::toml_text(value)
            .map(Some)
            .ok_or_else(|| ConfigError::Parse {
                path: self.file.path.clone(),
                message: format!(
                    "`{}` must be a string, a number or a list of strings",
                    setting.name
                ),
            })
    }

    /// User name and password. `password` and `password_file` are one
    /// setting: the highest source giving either wins (`--password-file`
    /// beats `MQTTAPP_PASSWORD`, which beats the config file); within the
    /// config file a password beats a password file. The seed's
    /// `USERNAME` is set by some desktops on its own: only the pair counts,
    /// and only when neither `MQTTAPP_USERNAME` nor `MQTTAPP_PASSWORD` is set.
    fn credentials(
        &self,
        flags: &Settings,
    ) -> Result<(Option<String>, Option<Secret>), ConfigError> {
        let env_user = self.env_of(&declared::USERNAME);
        let env_pass = self.env_of(&declared::PASSWORD);
        let seed = match (&env_user, &env_pass, declared::USERNAME.seed) {
            (None, None, [user, pass]) => self.var(user).zip(self.var(pass)),
            _ => None,
        };
        let username = match flags.username.clone().or(env_user) {
            Some(user) => Some(user),
            None => match &seed {
                Some((user, _)) => Some(user.clone()),
                None => self.file_text(&declared::USERNAME)?,
            },
        };
        let from_file =
            |file: Option<PathBuf>| file.map(|p| secret::read_password_file(&p)).transpose();
        let password = if flags.password.is_some() || flags.password_file.is_some() {
            match flags.password.clone() {
                Some(p) => Some(p),
                None => from_file(flags.password_file.clone())?,
            }
        } else if let Some(p) = env_pass.or(seed.map(|(_, p)| p)) {
            Some(Secret::new(p))
        } else if let Some(p) = self.file_text(&declared::PASSWORD)? {
            Some(Secret::new(p))
        } else {
            from_file(self.file_text(&declared::PASSWORD_FILE)?.map(PathBuf::from))?
        };
        Ok((username, password))
    }
}

/// The seed app's `BROKER` (a host, `host:port` or a URI) and `PORT`
/// (used when `BROKER` names no port). Validated with every other address
/// in [`Config::from_sources`].
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

/// The validated settings a subcommand runs with. Settings the command
/// does not use (see [`declared`]) hold their defaults and were read from
/// no source; `server_id` is then empty.
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
    /// Server id (status topic, client id); empty outside `serve`.
    pub server_id: String,
    /// Shared-subscription group, if any.
    pub group: Option<String>,
    /// How long the broker keeps the server's session.
    pub session_expiry: Duration,
    /// Serve calc and echo only (`--no-edit`).
    pub no_edit: bool,
    /// Topic filters replies may go to besides `<prefix>/v1/resp/#`
    /// (empty by default: a request cannot aim a reply elsewhere).
    pub reply_topics: Vec<String>,
    /// Input and resource limits.
    pub limits: Limits,
    /// How often the server publishes its statistics; zero: only when
    /// pinged.
    pub stats_interval: Duration,
    /// Where `serve` answers `GET /metrics` (off when `None`).
    pub metrics: Option<std::net::SocketAddr>,
    /// User-defined operations (`--exec`, `[ops.NAME]`): programs run
    /// for requests on `<prefix>/v1/req/NAME`.
    pub user_ops: Vec<ops::UserOp>,
}

/// How often a server publishes its statistics unless told otherwise.
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(10);

impl Config {
    /// Resolves flags, environment, config file and defaults for `cmd`:
    /// only the settings `cmd` uses are read and checked (the others keep
    /// their defaults; `server_id` stays empty outside `serve`).
    ///
    /// # Errors
    /// [`ConfigError`] for unreadable files and invalid values.
    pub fn resolve(
        cmd: Cmd,
        flags: Settings,
        config_flag: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let named = config_flag.map(Path::to_path_buf).or_else(|| {
            env(declared::CONFIG.env.unwrap_or_default())
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let file = match named.or_else(found_config_file) {
            Some(path) => {
                tracing::debug!("using config file {}", path.display());
                FileSettings::read(&path)?
            }
            None => {
                tracing::debug!(
                    "no config file (looked for {DEFAULT_CONFIG_FILE} and {})",
                    user_config_file().map_or_else(
                        || "~/.config/mqttapp/config.toml".to_string(),
                        |p| p.display().to_string()
                    )
                );
                FileSettings::default()
            }
        };
        Config::from_sources(Some(cmd), flags, env, &file)
    }

    /// Validates flag-like settings alone (no environment, no file) for
    /// every command, filling in the defaults.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad setting.
    pub fn from_settings(s: Settings) -> Result<Config, ConfigError> {
        Config::from_sources(None, s, &|_| None, &FileSettings::default())
    }

    /// Each setting from the highest source that gives it, checked, else
    /// its default; `cmd` `None` reads every setting.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad setting.
    pub fn from_sources(
        cmd: Option<Cmd>,
        flags: Settings,
        env: &dyn Fn(&str) -> Option<String>,
        file: &FileSettings,
    ) -> Result<Config, ConfigError> {
        use declared as d;
        let src = Sources { cmd, env, file };
        let (username, password) = src.credentials(&flags)?;
        let prefix = src
            .get(&d::PREFIX, flags.prefix)?
            .unwrap_or_else(|| DEFAULT_PREFIX.to_string());
        validate_prefix(&prefix)?;
        let server_id = match src.get(&d::SERVER_ID, flags.server_id)? {
            Some(id) => id,
            None if d::SERVER_ID.used_by(cmd) => default_server_id(),
            None => String::new(),
        };
        if d::SERVER_ID.used_by(cmd) {
            validate_id("server_id", &server_id)?;
        }
        let group = src.get(&d::GROUP, flags.group)?;
        if let Some(group) = &group {
            validate_id("group", group)?;
        }
        let broker = src
            .get(&d::BROKER, flags.broker)?
            .unwrap_or_else(|| DEFAULT_BROKER.to_string());
        if let Err(crate::mqtt::MqttError::BadUri { reason, .. }) =
            crate::mqtt::BrokerUri::parse(&broker)
        {
            return Err(ConfigError::Invalid {
                setting: "broker",
                value: broker,
                reason,
            });
        }
        // A group member's session outlives a crash by a second only, so
        // the broker stops handing it the group's share (docs/SCALING.md).
        let session_expiry = src
            .get(&d::SESSION_EXPIRY, flags.session_expiry)?
            .unwrap_or(if group.is_some() {
                DEFAULT_GROUP_SESSION_EXPIRY
            } else {
                DEFAULT_SESSION_EXPIRY
            });
        let reply_topics = src
            .get(&d::REPLY_TOPICS, flags.reply_topics)?
            .unwrap_or_default();
        for filter in &reply_topics {
            crate::protocol::validate_filter(filter).map_err(|reason| ConfigError::Invalid {
                setting: "reply_topics",
                value: filter.clone(),
                reason: reason.to_string(),
            })?;
        }
        let limits = match flags.limits {
            Some(limits) => Some(limits),
            None if d::LIMITS.used_by(cmd) => file.limits()?,
            None => None,
        };
        let user_ops = match d::EXEC.used_by(cmd) {
            true => {
                let from_file = match file.table.get(ops::TABLE) {
                    Some(table) => {
                        ops::from_table(table).map_err(|message| ConfigError::Parse {
                            path: file.path.clone(),
                            message,
                        })?
                    }
                    None => Vec::new(),
                };
                let from_flags = flags
                    .exec
                    .iter()
                    .flatten()
                    .map(|spec| ops::parse_exec(spec))
                    .collect::<Result<Vec<_>, _>>()?;
                ops::merge(from_file, from_flags)?
            }
            false => Vec::new(),
        };
        Ok(Config {
            user_ops,
            connection: Connection {
                broker,
                username,
                password,
                tls: Tls {
                    ca_file: src.get(&d::CA_FILE, flags.ca_file)?,
                    cert_file: src.get(&d::CERT_FILE, flags.cert_file)?,
                    key_file: src.get(&d::KEY_FILE, flags.key_file)?,
                    insecure: src.get(&d::INSECURE, flags.insecure)?.unwrap_or(false),
                },
            },
            prefix,
            data_dir: src
                .get(&d::DATA_DIR, flags.data_dir)?
                .unwrap_or_else(default_data_dir),
            file: src.get(&d::FILE, flags.file)?,
            timeout: src
                .get(&d::TIMEOUT, flags.timeout)?
                .unwrap_or(DEFAULT_TIMEOUT),
            server_id,
            group,
            session_expiry,
            no_edit: src.get(&d::NO_EDIT, flags.no_edit)?.unwrap_or(false),
            reply_topics,
            limits: Limits {
                max_queue_bytes: src
                    .get(&d::MAX_QUEUE_BYTES, flags.max_queue_bytes)?
                    .unwrap_or(crate::limits::DEFAULT_MAX_QUEUE_BYTES),
                ..Limits::from_file(limits.unwrap_or_default())
            },
            stats_interval: src
                .get(&d::STATS_INTERVAL, flags.stats_interval)?
                .unwrap_or(DEFAULT_STATS_INTERVAL),
            metrics: src.get(&d::METRICS, flags.metrics)?,
        })
    }
}

pub use parse::DURATION_FORMS;

/// Parses a duration setting's text ("5", "2.5", "500ms", "1m");
/// `default` when unset. Kept for callers that hold text; flags are typed
/// by clap with [`parse::duration`].
///
/// # Errors
/// [`ConfigError::Invalid`] for unparsable or zero durations.
pub fn parse_duration(
    setting: &'static str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(text) => parse::duration(text).map_err(|reason| ConfigError::Invalid {
            setting,
            value: text.to_string(),
            reason,
        }),
    }
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
