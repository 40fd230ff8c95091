//! The whole command line, as clap derive definitions.
//!
//! Flags only describe what the user typed: every value is optional here so
//! that `config.rs` can layer flags over the environment, the config file
//! and the defaults. Nothing outside `config.rs` reads these structs' raw
//! settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Request/response over MQTT 5: calc, echo and edit, done properly.
///
/// Settings come from flags, then MQTTAPP_* environment variables, then the
/// config file (--config, MQTTAPP_CONFIG, or ./config/mqttapp.toml), then
/// defaults. The seed app's BROKER/PORT and USERNAME/PASSWORD variables are
/// honoured as a fallback.
#[derive(Debug, Parser)]
#[command(name = "mqttapp", version = crate::version::LONG, propagate_version = true)]
#[command(
    after_help = "Examples:\n  mqttapp serve\n  mqttapp ask calc \"2+3*4\"\n  mqttapp ask echo hello\n  mqttapp ask edit --line 3 \"text\"\n  mqttapp ask edit --show"
)]
pub struct Cli {
    /// Connection and output settings shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every subcommand understands.
#[derive(Debug, Args, Default, Clone)]
pub struct GlobalArgs {
    /// Broker URI: mqtt://host:1883, mqtts://host:8883, ws://host/mqtt
    /// [env: MQTTAPP_BROKER] [default: mqtt://localhost:1883]
    #[arg(long, global = true, value_name = "URI")]
    pub broker: Option<String>,

    /// User name for the broker [env: MQTTAPP_USERNAME]
    #[arg(long, global = true, value_name = "NAME")]
    pub username: Option<String>,

    /// Read the broker password from this file (first line), so it never
    /// appears on a command line [env: MQTTAPP_PASSWORD holds the password itself]
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Topic prefix: requests go to <prefix>/v1/req/<op>
    /// [env: MQTTAPP_PREFIX] [default: mqttapp]
    #[arg(long, global = true, value_name = "PREFIX")]
    pub prefix: Option<String>,

    /// Config file (TOML) [env: MQTTAPP_CONFIG] [default: config/mqttapp.toml if present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// CA certificate(s) (PEM) to verify an mqtts:// broker [env: MQTTAPP_CA_FILE]
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Client certificate (PEM) for brokers that require one [env: MQTTAPP_CERT_FILE]
    #[arg(long, global = true, value_name = "FILE")]
    pub cert_file: Option<PathBuf>,

    /// Private key (PEM) of the client certificate [env: MQTTAPP_KEY_FILE]
    #[arg(long, global = true, value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// Do not verify the broker's TLS certificate or host name (testing
    /// with self-signed certificates only; logged as a warning)
    #[arg(long, global = true)]
    pub insecure: bool,

    /// More log output on stderr (-v: debug, -vv: trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Answer requests until Ctrl-C or SIGTERM
    #[command(
        after_help = "Examples:\n  mqttapp serve\n  mqttapp serve --data-dir /var/lib/mqttapp --group workers"
    )]
    Serve(ServeArgs),
    /// Send one request and print the result on stdout
    #[command(after_help = ASK_HELP)]
    Ask(AskArgs),
    /// List the servers and their state (online/offline, operations, version)
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),
    /// Dead letters: requests a server could not answer (list, replay, purge)
    #[command(after_help = DLQ_HELP)]
    Dlq(DlqArgs),
    /// Measure throughput and latency against running servers
    Bench(BenchArgs),
    /// Interactive prompt over one connection (also reads commands from a pipe)
    Shell(ShellArgs),
    /// Print a shell completion script: bash, zsh, fish, powershell, elvish
    Completions(CompletionsArgs),
}

// ---- status (issue 4) ------------------------------------------------------

/// `mqttapp status`: the retained status of every server under the prefix.
#[derive(Debug, Args, Clone, Default)]
pub struct StatusArgs {
    /// Print a JSON array instead of a table
    #[arg(long)]
    pub json: bool,

    /// Wait at most this long for the statuses: 3, 500ms [default: 3s]
    #[arg(long, value_name = "DURATION")]
    pub wait: Option<String>,
}

// ---- dlq (issue 4) ---------------------------------------------------------

/// `mqttapp dlq`: the dead letters in a server's data directory. Runs on
/// the server's host (it reads and rewrites the local store).
#[derive(Debug, Args, Clone)]
pub struct DlqArgs {
    /// The server's data directory [env: MQTTAPP_DATA_DIR] [default: ~/.local/share/mqttapp]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// What to do with the dead letters.
    #[command(subcommand)]
    pub action: DlqAction,
}

/// The `dlq` actions.
#[derive(Debug, Subcommand, Clone)]
pub enum DlqAction {
    /// List the dead letters, oldest first
    List {
        /// Print a JSON array of the stored records instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Publish dead letters again to their original topic with their
    /// original properties; each is removed once the broker acknowledged it
    Replay(DlqSelection),
    /// Delete dead letters for good
    Purge(DlqSelection),
}

/// Which dead letters: the named ones, or all.
#[derive(Debug, Args, Clone)]
#[group(required = true, multiple = false)]
pub struct DlqSelection {
    /// Ids as shown by `mqttapp dlq list`
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,

    /// Every dead letter in the store
    #[arg(long)]
    pub all: bool,
}

// ---- bench (issue 5) -------------------------------------------------------

/// `mqttapp bench`
#[derive(Debug, Args, Clone, Default)]
pub struct BenchArgs {}

// ---- shell (issue 7) -------------------------------------------------------

/// `mqttapp shell`
#[derive(Debug, Args, Clone, Default)]
pub struct ShellArgs {}

// ---- completions (issue 7) -------------------------------------------------

/// `mqttapp completions`
#[derive(Debug, Args, Clone, Default)]
pub struct CompletionsArgs {}

const STATUS_HELP: &str = "Examples:
  mqttapp status
  mqttapp status --json

Exit codes: 0 at least one server is online, 6 none is, 3 cannot connect,
4 refused. A server that crashed shows \"offline\" (its MQTT will).";

const DLQ_HELP: &str = "Examples (on the server's host, with its data directory):
  mqttapp dlq list
  mqttapp dlq --data-dir /var/lib/mqttapp list --json
  mqttapp dlq replay srv1-1714550000000-0
  mqttapp dlq replay --all
  mqttapp dlq purge --all

Exit codes: 0 done, 2 unknown id, 3 cannot connect, 6 no server online
(replay), 10 the store cannot be read or written.";

const ASK_HELP: &str = "Examples:
  mqttapp ask calc \"2+3*4\"             prints 14
  mqttapp ask echo hello world         prints hello world
  mqttapp ask edit --line 3 \"text\"     line 3 of the server's file becomes \"text\"
  mqttapp ask edit --append \"last\"     adds a line at the end
  mqttapp ask edit --show              prints the file
  mqttapp ask --json calc 7/2          prints {\"ok\":3.5}

Exit codes: 0 ok, 1 the server answered with an error, 2 usage or
configuration, 3 cannot connect, 4 authentication or authorization refused,
5 timeout, 6 no server online, 7 TLS failure.";

/// `mqttapp serve`
#[derive(Debug, Args, Default, Clone)]
pub struct ServeArgs {
    /// Directory holding the edited files, dead letters and reply memory
    /// [env: MQTTAPP_DATA_DIR] [default: ~/.local/share/mqttapp]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Default file for edit requests that name none [env: MQTTAPP_FILE] [default: notes.txt]
    #[arg(long, value_name = "NAME")]
    pub file: Option<String>,

    /// This server's id, in its status topic and MQTT client id
    /// [env: MQTTAPP_SERVER_ID] [default: the host name]
    #[arg(long, value_name = "ID")]
    pub server_id: Option<String>,

    /// Share the load with other servers of this group (MQTT 5 shared
    /// subscription $share/<group>/...) [env: MQTTAPP_GROUP]
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,

    /// How long the broker keeps this server's session (and queues requests)
    /// while it is stopped: 24h, 30m, 90 [env: MQTTAPP_SESSION_EXPIRY] [default: 24h]
    #[arg(long, value_name = "DURATION")]
    pub session_expiry: Option<String>,
}

/// `mqttapp ask`
#[derive(Debug, Args)]
pub struct AskArgs {
    /// Give up after this long without a reply: 5, 2.5, 500ms, 1m
    /// [env: MQTTAPP_TIMEOUT] [default: 5s]
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Print the whole reply as one JSON object ({"ok":...} or {"err":{...}})
    #[arg(long)]
    pub json: bool,

    /// The operation and its arguments.
    #[command(subcommand)]
    pub op: AskOp,
}

/// The operations `ask` can send.
#[derive(Debug, Subcommand)]
pub enum AskOp {
    /// Evaluate an expression: + - * / % ^, parentheses, sqrt abs ln log10
    /// log2 exp sin cos tan floor ceil round min max, pi, e
    Calc {
        /// The expression; several words are joined with spaces
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true, value_name = "EXPR")]
        expr: Vec<String>,
    },
    /// Send text and get it back unchanged
    Echo {
        /// The text; several words are joined with spaces
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true, value_name = "TEXT")]
        text: Vec<String>,
    },
    /// Change or show a text file in the server's data directory
    Edit(EditArgs),
}

/// `mqttapp ask edit`: replace (default), insert, append, delete or show.
#[derive(Debug, Args, Clone, Default)]
pub struct EditArgs {
    /// 1-based line number (replace, insert, delete)
    #[arg(long, value_name = "N")]
    pub line: Option<u64>,

    /// Insert TEXT before line N instead of replacing it
    #[arg(long, group = "action", requires = "line")]
    pub insert: bool,

    /// Add TEXT as the last line
    #[arg(long, group = "action", conflicts_with = "line")]
    pub append: bool,

    /// Delete line N
    #[arg(long, group = "action", requires = "line")]
    pub delete: bool,

    /// Print the file and its revision
    #[arg(long, group = "action", conflicts_with = "line")]
    pub show: bool,

    /// File to edit instead of the server's default [env: MQTTAPP_FILE]
    #[arg(long, value_name = "NAME")]
    pub file: Option<String>,

    /// Refuse the change (exit 1, code conflict) unless the file is at this revision
    #[arg(long, value_name = "REV")]
    pub expect_rev: Option<u64>,

    /// The line's new text; several words are joined with spaces
    #[arg(num_args = 0.., allow_hyphen_values = true, value_name = "TEXT")]
    pub text: Vec<String>,
}
