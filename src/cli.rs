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
    Status(StatusArgs),
    /// Dead letters: requests a server could not answer (list, replay, purge)
    Dlq(DlqArgs),
    /// Measure throughput and latency against running servers
    Bench(BenchArgs),
    /// Interactive prompt over one connection (also reads commands from a pipe)
    Shell(ShellArgs),
    /// Print a shell completion script: bash, zsh, fish, powershell, elvish
    Completions(CompletionsArgs),
}

// ---- status (issue 4) ------------------------------------------------------

/// `mqttapp status`
#[derive(Debug, Args, Clone, Default)]
pub struct StatusArgs {}

// ---- dlq (issue 4) ---------------------------------------------------------

/// `mqttapp dlq`
#[derive(Debug, Args, Clone, Default)]
pub struct DlqArgs {}

// ---- bench (issue 5) -------------------------------------------------------

/// `mqttapp bench`: a bounded load against running servers.
#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Examples:\n  mqttapp bench                                   20000 calc requests over 4 connections\n  mqttapp bench --ops calc=8,echo=1,edit=1 --count 50000 --json\n  mqttapp bench --connections 100 --window 1000 --count 100000\n\nLost replies and duplicates must be 0; the exit code is 1 when they are not."
)]
pub struct BenchArgs {
    /// Client connections, each with its own MQTT session and response topic
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub connections: usize,

    /// Requests in flight per connection (pipelining window)
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub window: usize,

    /// Total requests to send (split over the connections)
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub count: u64,

    /// Stop sending after this long even if --count is not reached: 10s, 1m
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub duration: String,

    /// Operation mix with weights: calc, or calc=8,echo=1,edit=1
    #[arg(long, default_value = "calc", value_name = "MIX")]
    pub ops: String,

    /// Size of echo texts in bytes
    #[arg(long, default_value_t = 16, value_name = "BYTES")]
    pub payload_size: usize,

    /// QoS of the requests (0 or 1; replies come at the server's QoS 1)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(0..=1))]
    pub qos: i32,

    /// Print the results as one JSON object
    #[arg(long)]
    pub json: bool,

    /// Do not wait for a server's online status (e.g. against a bare responder)
    #[arg(long)]
    pub no_status_check: bool,
}

// ---- shell (issue 7) -------------------------------------------------------

/// `mqttapp shell`
#[derive(Debug, Args, Clone, Default)]
pub struct ShellArgs {}

// ---- completions (issue 7) -------------------------------------------------

/// `mqttapp completions`
#[derive(Debug, Args, Clone, Default)]
pub struct CompletionsArgs {}

const ASK_HELP: &str = "Examples:
  mqttapp ask calc \"2+3*4\"             prints 14
  mqttapp ask echo hello world         prints hello world
  mqttapp ask edit --line 3 \"text\"     line 3 of the server's file becomes \"text\"
  mqttapp ask edit --append \"last\"     adds a line at the end
  mqttapp ask edit --show              prints the file
  mqttapp ask --json calc 7/2          prints {\"ok\":3.5}
  printf 'calc 1+2\\necho hi\\n' | mqttapp ask --batch   prints 3 and hi

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

    /// Read one request per line from stdin ("calc 1+2", "echo hi",
    /// "edit --line 2 x"), send them pipelined over one connection, print
    /// one result line per request in input order
    #[arg(long)]
    pub batch: bool,

    /// The operation and its arguments.
    #[command(subcommand)]
    pub op: Option<AskOp>,
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
