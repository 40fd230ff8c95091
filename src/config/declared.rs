//! Every setting, declared once: its name (the config file's key), flag,
//! environment variable, typed parser, what `--help` says about its source
//! and default, and which commands use it.
//!
//! The `[env: ...] [default: ...]` suffixes of `--help` are produced from
//! these declarations (`cli::suffix`), the hint of a bad value ("fix
//! --timeout, MQTTAPP_TIMEOUT or `timeout` in the config file") too, and
//! unit tests check `config/mqttapp.toml` and the tests' list of cleared
//! environment variables against them. The same parser types
//! a flag (clap's `value_parser`), a variable and a config value, and each
//! command resolves only the settings whose `commands` name it.

use std::path::PathBuf;
use std::time::Duration;

use super::parse;

/// A command that resolves settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// `mqttapp serve`.
    Serve,
    /// `mqttapp ask`.
    Ask,
    /// `mqttapp shell`.
    Shell,
    /// `mqttapp status`.
    Status,
    /// `mqttapp dlq`.
    Dlq,
    /// `mqttapp bench`.
    Bench,
    /// `mqttapp doctor`.
    Doctor,
}

/// Every command: the connection settings.
const EVERY: &[Cmd] = &[
    Cmd::Serve,
    Cmd::Ask,
    Cmd::Shell,
    Cmd::Status,
    Cmd::Dlq,
    Cmd::Bench,
    Cmd::Doctor,
];
/// Commands that send requests and wait for replies.
const REQUESTING: &[Cmd] = &[Cmd::Ask, Cmd::Shell, Cmd::Bench, Cmd::Dlq];
/// The server alone.
const SERVE: &[Cmd] = &[Cmd::Serve];

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The name in messages; the config file's key when `in_file`; the
    /// clap argument id of its flag.
    pub name: &'static str,
    /// The long flag, without `--`.
    pub flag: Option<&'static str>,
    /// The environment variable.
    pub env: Option<&'static str>,
    /// The seed app's variables that stand in for `env` when it is unset.
    pub seed: &'static [&'static str],
    /// What `[env: ...]` says when there is no variable (why not).
    pub env_note: &'static str,
    /// Whether the config file has this key.
    pub in_file: bool,
    /// The default as `--help` shows it.
    pub default: &'static str,
    /// The commands that use it.
    pub commands: &'static [Cmd],
}

/// A setting with its typed parser: text (a flag, a variable, a config
/// file value) to the value the program uses, or why it is refused.
#[derive(Debug, Clone, Copy)]
pub struct Typed<T: 'static> {
    /// The setting.
    pub setting: Setting,
    /// Its parser.
    pub parse: fn(&str) -> Result<T, String>,
}

impl<T> std::ops::Deref for Typed<T> {
    type Target = Setting;
    fn deref(&self) -> &Setting {
        &self.setting
    }
}

/// A setting with every source (flag, variable, file key).
const fn everywhere(
    name: &'static str,
    flag: &'static str,
    env: &'static str,
    default: &'static str,
    commands: &'static [Cmd],
) -> Setting {
    Setting {
        name,
        flag: Some(flag),
        env: Some(env),
        seed: &[],
        env_note: "",
        in_file: true,
        default,
        commands,
    }
}

/// A setting given by a flag only.
const fn flag_only(
    name: &'static str,
    flag: &'static str,
    env_note: &'static str,
    default: &'static str,
    commands: &'static [Cmd],
) -> Setting {
    Setting {
        name,
        flag: Some(flag),
        env: None,
        seed: &[],
        env_note,
        in_file: false,
        default,
        commands,
    }
}

/// The broker URI.
pub const BROKER: Typed<String> = Typed {
    setting: Setting {
        seed: &["BROKER", "PORT"],
        ..everywhere(
            "broker",
            "broker",
            "MQTTAPP_BROKER",
            "mqtt://localhost:1883",
            EVERY,
        )
    },
    parse: parse::text,
};
/// The broker user name.
pub const USERNAME: Typed<String> = Typed {
    setting: Setting {
        seed: &["USERNAME", "PASSWORD"],
        ..everywhere(
            "username",
            "username",
            "MQTTAPP_USERNAME",
            "none, connect anonymously",
            EVERY,
        )
    },
    parse: parse::text,
};
/// The broker password itself: environment or config file, never a flag.
pub const PASSWORD: Typed<String> = Typed {
    setting: Setting {
        name: "password",
        flag: None,
        env: Some("MQTTAPP_PASSWORD"),
        seed: &["USERNAME", "PASSWORD"],
        env_note: "",
        in_file: true,
        default: "none",
        commands: EVERY,
    },
    parse: parse::text,
};
/// A file whose first line is the broker password.
pub const PASSWORD_FILE: Typed<PathBuf> = Typed {
    setting: Setting {
        in_file: true,
        ..flag_only(
            "password_file",
            "password-file",
            "MQTTAPP_PASSWORD holds the password itself",
            "none",
            EVERY,
        )
    },
    parse: parse::path,
};
/// Asking for the password on the terminal.
pub const PASSWORD_PROMPT: Typed<bool> = Typed {
    setting: flag_only(
        "password_prompt",
        "password-prompt",
        "none, on purpose",
        "off",
        EVERY,
    ),
    parse: parse::boolean,
};
/// The topic prefix.
pub const PREFIX: Typed<String> = Typed {
    setting: everywhere("prefix", "prefix", "MQTTAPP_PREFIX", "mqttapp", EVERY),
    parse: parse::text,
};
/// The config file itself.
pub const CONFIG: Typed<PathBuf> = Typed {
    setting: Setting {
        in_file: false,
        ..everywhere(
            "config",
            "config",
            "MQTTAPP_CONFIG",
            "./config/mqttapp.toml, else ~/.config/mqttapp/config.toml, if present",
            EVERY,
        )
    },
    parse: parse::path,
};
/// CA certificates for TLS.
pub const CA_FILE: Typed<PathBuf> = Typed {
    setting: everywhere(
        "ca_file",
        "ca-file",
        "MQTTAPP_CA_FILE",
        "the system's CA store",
        EVERY,
    ),
    parse: parse::path,
};
/// Client certificate for TLS.
pub const CERT_FILE: Typed<PathBuf> = Typed {
    setting: everywhere("cert_file", "cert-file", "MQTTAPP_CERT_FILE", "none", EVERY),
    parse: parse::path,
};
/// Client key for TLS.
pub const KEY_FILE: Typed<PathBuf> = Typed {
    setting: everywhere("key_file", "key-file", "MQTTAPP_KEY_FILE", "none", EVERY),
    parse: parse::path,
};
/// Skipping TLS verification.
pub const INSECURE: Typed<bool> = Typed {
    setting: Setting {
        in_file: true,
        ..flag_only(
            "insecure",
            "insecure",
            "none, on purpose; config: insecure = true",
            "off",
            EVERY,
        )
    },
    parse: parse::boolean,
};
/// How long a request waits for its reply.
pub const TIMEOUT: Typed<Duration> = Typed {
    setting: everywhere("timeout", "timeout", "MQTTAPP_TIMEOUT", "5s", REQUESTING),
    parse: parse::duration,
};
/// The server's data directory.
pub const DATA_DIR: Typed<PathBuf> = Typed {
    setting: everywhere(
        "data_dir",
        "data-dir",
        "MQTTAPP_DATA_DIR",
        "~/.local/share/mqttapp",
        &[Cmd::Serve, Cmd::Dlq],
    ),
    parse: parse::path,
};
/// The default edit file.
pub const FILE: Typed<String> = Typed {
    setting: everywhere(
        "file",
        "file",
        "MQTTAPP_FILE",
        "notes.txt, the server's default",
        &[Cmd::Serve, Cmd::Ask, Cmd::Shell],
    ),
    parse: parse::text,
};
/// The server id.
pub const SERVER_ID: Typed<String> = Typed {
    setting: everywhere(
        "server_id",
        "server-id",
        "MQTTAPP_SERVER_ID",
        "the host name",
        SERVE,
    ),
    parse: parse::text,
};
/// The shared-subscription group.
pub const GROUP: Typed<String> = Typed {
    setting: everywhere(
        "group",
        "group",
        "MQTTAPP_GROUP",
        "none, this server takes every request it sees",
        SERVE,
    ),
    parse: parse::text,
};
/// How long the broker keeps a stopped server's session.
pub const SESSION_EXPIRY: Typed<Duration> = Typed {
    setting: everywhere(
        "session_expiry",
        "session-expiry",
        "MQTTAPP_SESSION_EXPIRY",
        "24h; 1s with --group, so a crashed member's share goes back to the group",
        SERVE,
    ),
    parse: parse::duration,
};
/// Extra topic filters replies may go to.
pub const REPLY_TOPICS: Typed<Vec<String>> = Typed {
    setting: everywhere(
        "reply_topics",
        "reply-topics",
        "MQTTAPP_REPLY_TOPICS",
        "none",
        SERVE,
    ),
    parse: parse::list,
};
/// The server's queue budget.
pub const MAX_QUEUE_BYTES: Typed<u64> = Typed {
    setting: everywhere(
        "max_queue_bytes",
        "max-queue-bytes",
        "MQTTAPP_MAX_QUEUE_BYTES",
        "16MiB",
        SERVE,
    ),
    parse: parse::queue_bytes,
};
/// How often the server publishes its statistics.
pub const STATS_INTERVAL: Typed<Duration> = Typed {
    setting: everywhere(
        "stats_interval",
        "stats-interval",
        "MQTTAPP_STATS_INTERVAL",
        "10s; 0 publishes on a ping only",
        SERVE,
    ),
    parse: parse::interval,
};
/// Where the server serves its metrics over HTTP.
pub const METRICS: Typed<std::net::SocketAddr> = Typed {
    setting: everywhere("metrics", "metrics", "MQTTAPP_METRICS", "off", SERVE),
    parse: parse::socket_addr,
};
/// `serve --no-edit`: calc and echo only, for group members on another
/// host than the group's data directory.
pub const NO_EDIT: Typed<bool> = Typed {
    setting: Setting {
        in_file: true,
        ..flag_only(
            "no_edit",
            "no-edit",
            "none; config: no_edit = true",
            "off",
            SERVE,
        )
    },
    parse: parse::boolean,
};
/// The config file's `[limits]` table.
pub const LIMITS: Setting = Setting {
    name: "limits",
    flag: None,
    env: None,
    seed: &[],
    env_note: "none",
    in_file: true,
    default: "see config/mqttapp.toml",
    commands: SERVE,
};
/// `serve --exec NAME=PROGRAM [ARGS...]`, parsed by `config::ops`).
pub const OPS: Setting = Setting {
    name: "ops",
    flag: None,
    env: None,
    seed: &[],
    env_note: "none",
    in_file: true,
    default: "none",
    commands: SERVE,
};
/// `serve --exec NAME=PROGRAM [ARGS...]`: a user-defined operation
/// (repeatable; more settings in the config file's `[ops.NAME]`).
pub const EXEC: Setting = flag_only(
    "exec",
    "exec",
    "none; config: [ops.NAME] tables",
    "none",
    SERVE,
);
/// `serve --wait-for-broker`.
pub const WAIT_FOR_BROKER: Typed<Duration> = Typed {
    setting: flag_only(
        "wait_for_broker",
        "wait-for-broker",
        "none",
        "0, do not wait",
        SERVE,
    ),
    parse: parse::duration,
};
/// `status --wait`.
pub const WAIT: Typed<Duration> = Typed {
    setting: flag_only("wait", "wait", "none", "3s", &[Cmd::Status]),
    parse: parse::duration,
};
/// `status --forget`.
pub const FORGET: Typed<String> = Typed {
    setting: flag_only(
        "forget",
        "forget",
        "none",
        "none, list the servers",
        &[Cmd::Status],
    ),
    parse: parse::text,
};
/// `bench --duration`.
pub const DURATION: Typed<Duration> = Typed {
    setting: flag_only("duration", "duration", "none", "60s", &[Cmd::Bench]),
    parse: parse::duration,
};
/// `bench --rate`: open loop at this many requests per second.
pub const RATE: Typed<u64> = Typed {
    setting: flag_only("rate", "rate", "none", "none, closed loop", &[Cmd::Bench]),
    parse: parse::per_second,
};
/// `bench --warmup`: requests sent first and not recorded.
pub const WARMUP: Typed<Duration> = Typed {
    setting: flag_only("warmup", "warmup", "none", "none", &[Cmd::Bench]),
    parse: parse::duration,
};
/// `bench --slo`: objectives checked after the run (bench parses them).
pub const SLO: Typed<String> = Typed {
    setting: flag_only("slo", "slo", "none", "none", &[Cmd::Bench]),
    parse: parse::text,
};
/// `bench --report`: the SVG or HTML file drawn after the run.
pub const REPORT: Typed<PathBuf> = Typed {
    setting: flag_only("report", "report", "none", "none", &[Cmd::Bench]),
    parse: parse::path,
};

/// Every declared setting.
pub const ALL: &[&Setting] = &[
    &BROKER.setting,
    &USERNAME.setting,
    &PASSWORD.setting,
    &PASSWORD_FILE.setting,
    &PASSWORD_PROMPT.setting,
    &PREFIX.setting,
    &CONFIG.setting,
    &CA_FILE.setting,
    &CERT_FILE.setting,
    &KEY_FILE.setting,
    &INSECURE.setting,
    &TIMEOUT.setting,
    &DATA_DIR.setting,
    &FILE.setting,
    &SERVER_ID.setting,
    &GROUP.setting,
    &SESSION_EXPIRY.setting,
    &REPLY_TOPICS.setting,
    &MAX_QUEUE_BYTES.setting,
    &STATS_INTERVAL.setting,
    &METRICS.setting,
    &NO_EDIT.setting,
    &LIMITS,
    &EXEC,
    &WAIT_FOR_BROKER.setting,
    &WAIT.setting,
    &FORGET.setting,
    &DURATION.setting,
    &RATE.setting,
    &WARMUP.setting,
    &SLO.setting,
    &REPORT.setting,
];

/// The setting called `name`.
pub fn named(name: &str) -> Option<&'static Setting> {
    ALL.iter().copied().find(|s| s.name == name)
}

impl Setting {
    /// Whether `cmd` uses this setting (`None`: every command, for tests).
    pub fn used_by(&self, cmd: Option<Cmd>) -> bool {
        cmd.is_none_or(|c| self.commands.contains(&c))
    }

    /// What `--help` appends to the flag's text:
    /// `[env: MQTTAPP_TIMEOUT] [default: 5s]`.
    pub fn help_suffix(&self) -> String {
        let mut env = match (self.env, self.env_note) {
            (_, note) if !note.is_empty() => note.to_string(),
            (Some(var), _) => var.to_string(),
            (None, _) => "none".to_string(),
        };
        if let [a, b] = self.seed {
            env.push_str(&format!(", or the seed app's {a} + {b}"));
        }
        format!("[env: {env}] [default: {}]", self.default)
    }

    /// Where a bad value can have come from, so the user knows what to fix.
    pub fn fix_hint(&self) -> String {
        let mut places: Vec<String> = Vec::new();
        if let Some(flag) = self.flag {
            places.push(format!("--{flag}"));
        }
        if let Some(env) = self.env {
            let mut env = env.to_string();
            if let [a, b] = self.seed {
                env.push_str(&format!(" (or the seed app's {a} and {b})"));
            }
            places.push(env);
        }
        let file = format!("`{}` in the config file", self.name);
        match (places.is_empty(), self.in_file) {
            (true, _) => format!("fix {file}"),
            (false, false) => format!("fix {}", places.join(", ")),
            (false, true) => format!("fix {} or {file}", places.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests;
