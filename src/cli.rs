//! The whole command line, as clap derive definitions.
//!
//! Flags only describe what the user typed: every value is optional here so
//! that `config.rs` can layer flags over the environment, the config file
//! and the defaults. Nothing outside `config.rs` reads these structs' raw
//! settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::config::declared;
use suffix::typed;

pub mod argv;
pub mod exits;
mod help;
pub mod parse;
mod settings;
mod suffix;
pub use help::SHORT_USAGE;
use help::{ASK_HELP, COMPLETIONS_HELP, DLQ_HELP, PING_HELP, SERVE_HELP, SHELL_HELP};
use help::{CALC_HELP, ECHO_HELP, EDIT_HELP};
use help::{STATUS_HELP, TOP_HELP};

/// [`Cli`] as completion scripts and `completions --help` show it:
/// `completions` without the connection, TLS and logging flags, which it
/// has no use for. For showing only (parsing uses [`Cli`]): clap gives every
/// subcommand the global flags, so this one is rebuilt without them.
pub fn command_shown() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd.mut_subcommand("completions", |full| {
        let mut bare = CompletionsArgs::augment_args(clap::Command::new("completions"))
            .about(full.get_about().cloned().unwrap_or_default())
            .after_help(COMPLETIONS_HELP)
            .bin_name("mqttapp completions");
        bare.build();
        bare
    })
}

/// Request/response over MQTT 5: calc, echo and edit, done properly.
///
/// Settings come from flags, then MQTTAPP_* environment variables, then the
/// config file (--config, MQTTAPP_CONFIG, ./config/mqttapp.toml or
/// ~/.config/mqttapp/config.toml), then defaults. The seed app's BROKER/PORT and USERNAME/PASSWORD variables are
/// honoured as a fallback.
#[derive(Debug, Parser)]
#[command(name = "mqttapp", version = crate::version::long(), propagate_version = true)]
#[command(after_help = TOP_HELP)]
pub struct Cli {
    /// Connection and output settings shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every subcommand understands. Shown under their own headings,
/// after each command's own flags.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Connection and TLS (every command)")]
#[command(mut_args = suffix::with_source_and_default)]
pub struct GlobalArgs {
    /// Broker URI: mqtt://host:1883, mqtts://host:8883, ws://host/mqtt;
    /// several (comma-separated or repeated) are tried in turn (failover)
    #[arg(long, global = true, value_name = "URI", action = clap::ArgAction::Append)]
    pub broker: Vec<String>,

    /// User name for the broker
    #[arg(long, global = true, value_name = "NAME")]
    pub username: Option<String>,

    /// Read the broker password from this file (first line), so it never
    /// appears on a command line
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Ask for the broker password on the terminal (not echoed); overrides
    /// --password-file and MQTTAPP_PASSWORD. Needs a terminal
    #[arg(long, global = true)]
    pub password_prompt: bool,

    /// Topic prefix: requests go to <prefix>/v1/req/<op>
    #[arg(long, global = true, value_name = "PREFIX")]
    pub prefix: Option<String>,

    /// Config file (TOML); -v logs which one was read
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// CA certificate(s) (PEM) to verify an mqtts:// broker
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Client certificate (PEM) for brokers that require one
    #[arg(long, global = true, value_name = "FILE")]
    pub cert_file: Option<PathBuf>,

    /// Private key (PEM) of the client certificate
    #[arg(long, global = true, value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// Do not verify the broker's TLS certificate or host name (testing
    /// with self-signed certificates only; logged as a warning)
    #[arg(long, global = true)]
    pub insecure: bool,

    /// More log output on stderr (-v: debug, -vv: trace)
    /// [env: RUST_LOG overrides, e.g. RUST_LOG=debug] [default: info]
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = LOGGING)]
    pub verbose: u8,

    /// Quiet: logs show errors only; `ask` and `shell` print no results
    /// (the exit code tells), error messages still go to stderr
    /// [env: none] [default: off]
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = LOGGING)]
    pub quiet: bool,

    /// Colour on stderr: auto (only on a terminal, never when NO_COLOR is
    /// set), always, never [env: NO_COLOR=1 turns it off] [default: auto]
    #[arg(
        long,
        global = true,
        value_name = "WHEN",
        value_enum,
        default_value = "auto",
        hide_default_value = true,
        help_heading = LOGGING
    )]
    pub color: ColorWhen,
}

/// The help heading of the logging and colour flags.
const LOGGING: &str = "Logging and colour (every command)";

/// When to colour the output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// Colour when stderr is a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    /// Always colour, even into a pipe.
    Always,
    /// Never colour.
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Answer requests until Ctrl-C or SIGTERM
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Send one request and print the result on stdout (no operation: the
    /// interactive shell)
    #[command(after_help = ASK_HELP)]
    Ask(AskArgs),
    /// List the servers and their state (online/offline, operations, version)
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),
    /// List the operations the online servers offer, or describe one
    /// (fields, limits, examples, error codes), from their self-descriptions
    #[command(after_help = help::DESCRIBE_HELP)]
    Describe(DescribeArgs),
    /// A live round trip to every online server (group members too):
    /// id, instance, version, round-trip time; exit 6 when none answers
    #[command(after_help = PING_HELP)]
    Ping(PingArgs),
    /// Dead letters: requests a server could not answer (list, replay, purge)
    #[command(after_help = DLQ_HELP)]
    Dlq(DlqArgs),
    /// Measure throughput and latency against running servers
    Bench(BenchArgs),
    /// Interactive prompt over one connection (also reads commands from a pipe)
    #[command(after_help = SHELL_HELP)]
    Shell(ShellArgs),
    /// Check which guarantees hold on the broker (or list of brokers):
    /// groups, exactly-once edits, fail-fast status, Message Expiry, queue
    /// drops; exit 0 when all hold, 8 when some do not (docs/DOCTOR.md)
    #[command(after_help = crate::doctor::HELP)]
    Doctor(DoctorArgs),
    /// Print a shell completion script: bash, zsh, fish, powershell, elvish
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
}

/// `mqttapp doctor`: probes the broker(s) given by --broker.
#[derive(Debug, Args, Clone, Default)]
pub struct DoctorArgs {
    /// Print one JSON object instead of the text report
    #[arg(long)]
    pub json: bool,
}

// ---- status ----------------------------------------------------------------

/// `mqttapp status`: the retained status of every server under the prefix.
#[derive(Debug, Args, Clone, Default)]
#[command(mut_args = suffix::with_source_and_default)]
pub struct StatusArgs {
    /// Print a JSON array instead of a table
    #[arg(long)]
    pub json: bool,

    /// Wait at most this long for the statuses: 3, 500ms
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, value_parser = typed(&declared::WAIT))]
    pub wait: Option<Duration>,

    /// Remove the retained status of an offline server that is gone for
    /// good (it is listed no more); online servers are refused
    #[arg(long, value_name = "ID")]
    pub forget: Option<String>,

    /// Show each server's statistics per operation (requests, replies,
    /// busy, dead letters, handling time) instead; pings the servers for
    /// fresh figures
    #[arg(long, conflicts_with = "forget")]
    pub stats: bool,
}

// ---- describe --------------------------------------------------------------

/// `mqttapp describe [OP]`: the servers' self-descriptions.
#[derive(Debug, Args, Clone, Default)]
#[command(mut_args = suffix::with_source_and_default)]
pub struct DescribeArgs {
    /// The operation to describe in full; none lists every operation
    #[arg(value_name = "OP")]
    pub op: Option<String>,

    /// Print JSON (an array of operations, or one operation's object)
    #[arg(long)]
    pub json: bool,

    /// Wait at most this long for the descriptions: 3, 500ms
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, value_parser = typed(&declared::WAIT))]
    pub wait: Option<Duration>,
}

// ---- ping ------------------------------------------------------------------

/// `mqttapp ping`: a live round trip to every server.
#[derive(Debug, Args, Clone)]
pub struct PingArgs {
    /// Rounds to send; after more than one, a min/avg/max summary per server
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: u32,

    /// Print one JSON object per answer (and per summary) instead of text
    #[arg(long)]
    pub json: bool,

    /// How long each round waits for answers: 1s, 300ms [env: none] [default: 1s]
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, value_parser = typed(&declared::WAIT))]
    pub wait: Option<Duration>,
}

// ---- dlq -------------------------------------------------------------------

/// `mqttapp dlq`: the dead letters in a server's data directory. Runs on
/// the server's host (it reads and rewrites the local store).
#[derive(Debug, Args, Clone)]
#[command(mut_args = suffix::with_source_and_default)]
pub struct DlqArgs {
    /// The server's data directory
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
    /// original properties; each is removed once the broker acknowledged it.
    /// Letters that would fail again at once (unknown_op, undecodable,
    /// no_response_topic) are skipped unless --force
    Replay(DlqReplay),
    /// Delete dead letters for good
    Purge(DlqSelection),
}

/// `dlq replay`: which letters, and whether to replay hopeless ones too.
#[derive(Debug, Args, Clone)]
pub struct DlqReplay {
    /// Which dead letters.
    #[command(flatten)]
    pub selection: DlqSelection,

    /// Replay letters whose reason cannot succeed as they are
    /// (unknown_op, undecodable, no_response_topic), e.g. after deploying
    /// a server that offers the operation
    #[arg(long)]
    pub force: bool,
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

// ---- bench -----------------------------------------------------------------

/// `mqttapp bench`: a bounded load against running servers.
#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Examples:\n  mqttapp bench                                   20000 calc requests over 4 connections\n  mqttapp bench --ops calc=8,echo=1,edit=1 --count 50000 --json\n  mqttapp bench --connections 100 --window 1000 --count 100000\n  mqttapp bench --rate 2000 --warmup 2s --duration 30s --slo 'p99<20ms,p99.9<50ms' --report bench.html\n\nClosed loop by default: each connection sends its next request when a reply frees a slot of its window, and latency runs from the send. With --rate the run is open loop: requests leave on a fixed schedule whether or not replies came, and latency runs from each request's intended send time, so a stall is counted for every request it delayed, not only for the one that was waiting (corrected for coordinated omission, as wrk2 does). --window still bounds the requests in flight per connection; when it is full, sending falls behind the schedule and the delay counts in the latency.\n\nLost replies and duplicates must be 0; the exit code is 1 when they are not. With --slo, each objective is printed with its measured value and PASS or MISS; lost=0 and duplicates=0 are always checked too, and the exit code is 11 when any is missed."
)]
#[command(mut_args = suffix::with_source_and_default)]
pub struct BenchArgs {
    /// Client connections, each with its own MQTT session and response topic
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = whole::<usize>)]
    pub connections: usize,

    /// Requests in flight per connection (pipelining window)
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = whole::<usize>)]
    pub window: usize,

    /// Total requests to send (split over the connections)
    #[arg(long, default_value_t = 20_000, value_name = "N", value_parser = whole::<u64>)]
    pub count: u64,

    /// Stop sending after this long (after the warm-up) even if --count is
    /// not reached: 10s, 1m
    #[arg(
        long,
        default_value = "60s",
        value_name = "DURATION",
        allow_negative_numbers = true,
        value_parser = typed(&declared::DURATION)
    )]
    pub duration: Duration,

    /// Operation mix with weights: calc, or calc=8,echo=1,edit=1
    #[arg(long, default_value = "calc", value_name = "MIX")]
    pub ops: String,

    /// Size of echo texts in bytes
    #[arg(long, default_value_t = 16, value_name = "BYTES", value_parser = whole::<usize>)]
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
    /// Open loop: send this many requests per second in total on a fixed
    /// schedule, whether or not replies came; latency is measured from each
    /// request's intended send time (corrected for coordinated omission)
    #[arg(long, value_name = "PER_SECOND", value_parser = typed(&declared::RATE))]
    pub rate: Option<u64>,

    /// Send requests for this long first without recording them (connections,
    /// caches and the server warm up): 2s
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, value_parser = typed(&declared::WARMUP))]
    pub warmup: Option<Duration>,

    /// Objective checked after the run, repeatable or comma-separated:
    /// p50<5ms, p99<=20ms, p99.9<50ms, max<1s, lost=0; a miss exits 11
    #[arg(long, value_name = "SPEC", value_parser = typed(&declared::SLO))]
    pub slo: Vec<String>,

    /// Draw the latency by percentile and the requests completed per second
    /// into this file: .svg, or .html (the SVG and a table of the figures)
    #[arg(long, value_name = "FILE", value_parser = typed(&declared::REPORT))]
    pub report: Option<PathBuf>,
}

// ---- shell -----------------------------------------------------------------

/// `mqttapp shell`: the same settings as `ask`, many requests.
#[derive(Debug, Args, Clone, Default)]
pub struct ShellArgs {
    /// Timeout and output format of each request.
    #[command(flatten)]
    pub request: RequestArgs,
}

// ---- completions -----------------------------------------------------------

/// `mqttapp completions`
#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Settings of every command that sends requests (`ask`, `shell`).
#[derive(Debug, Args, Clone, Default)]
#[command(mut_args = suffix::with_source_and_default)]
pub struct RequestArgs {
    /// Give up after this long without a reply: 5, 2.5, 500ms, 1m
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, value_parser = typed(&declared::TIMEOUT))]
    pub timeout: Option<Duration>,

    /// Print each reply as one JSON object on one line: {"ok":...} or
    /// {"err":{"code":...,"message":...}}, also for client-side failures
    /// such as "timeout" [env: none] [default: plain text]
    #[arg(long)]
    pub json: bool,

    /// Send an MQTT 5 user property with each request: -H
    /// traceparent=00-...-01; repeatable. Names starting with mqttapp- are
    /// the protocol's own and refused. With -v, each reply's server and
    /// time breakdown is printed on stderr (and added to --json's line)
    /// [env: none] [default: none]
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    pub header: Vec<String>,
}

/// `mqttapp serve`
#[derive(Debug, Args, Default, Clone)]
#[command(mut_args = suffix::with_source_and_default)]
pub struct ServeArgs {
    /// Directory holding the edited files, dead letters and reply memory
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Default file for edit requests that name none
    #[arg(long, value_name = "NAME")]
    pub file: Option<String>,

    /// This server's id, in its status topic and MQTT client id
    #[arg(long, value_name = "ID")]
    pub server_id: Option<String>,

    /// Share the load with other servers of this group (MQTT 5 shared
    /// subscription $share/<group>/...)
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,

    /// How long the broker keeps this server's session (and queues requests)
    /// while it is stopped: 24h, 30m, 90
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, value_parser = typed(&declared::SESSION_EXPIRY))]
    pub session_expiry: Option<Duration>,

    /// Answer calc and echo only, not edit: for group members on another
    /// host than the group's data directory (docs/EDITS_ACROSS_HOSTS.md)
    #[arg(long)]
    pub no_edit: bool,

    /// When the broker cannot be reached at start, try again every second
    /// for this long instead of exiting 3 at once (for service managers
    /// that may start the server first): 30s, 5m
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, value_parser = typed(&declared::WAIT_FOR_BROKER))]
    pub wait_for_broker: Option<Duration>,

    /// Topic filters (+ and # allowed, comma-separated) replies may go to
    /// besides <prefix>/v1/resp/#; a request naming any other Response
    /// Topic gets no reply and becomes a dead letter
    #[arg(long, value_name = "FILTERS", value_delimiter = ',')]
    pub reply_topics: Option<Vec<String>>,
    /// Memory for requests waiting inside the server (topic, properties,
    /// payload), in bytes: 16777216, 64MiB; past it requests are refused
    /// with error busy
    #[arg(long, value_name = "BYTES", value_parser = typed(&declared::MAX_QUEUE_BYTES))]
    pub max_queue_bytes: Option<u64>,

    /// Publish this server's statistics on <prefix>/v1/stats/<server-id>
    /// this often (and when a client pings): 10s, 1m; 0 publishes on
    /// pings only
    #[arg(long, value_name = "DURATION", value_parser = typed(&declared::STATS_INTERVAL))]
    pub stats_interval: Option<Duration>,

    /// Serve the statistics as Prometheus/OpenMetrics text on
    /// http://ADDR/metrics, without authentication: 127.0.0.1:9464
    #[arg(long, value_name = "ADDR", value_parser = typed(&declared::METRICS))]
    pub metrics: Option<std::net::SocketAddr>,

    /// Offer a user-defined operation NAME on <prefix>/v1/req/NAME: each
    /// request's text goes to PROGRAM's stdin, its stdout is the reply.
    /// One quoted value, split like a shell splits words but run without
    /// one: --exec 'upper=tr a-z A-Z'. Repeatable; more settings (limits,
    /// idempotent) in the config file's [ops.NAME] tables
    #[arg(long, value_name = "NAME=PROGRAM [ARGS...]")]
    pub exec: Vec<String>,
}

/// `mqttapp ask`
#[derive(Debug, Args)]
pub struct AskArgs {
    /// Timeout and output format.
    #[command(flatten)]
    pub request: RequestArgs,

    /// Read one request per line from stdin ("calc 1+2", "echo hi",
    /// "edit --line 2 x"), send them pipelined over one connection, print
    /// one result line per request in input order
    #[arg(long)]
    pub batch: bool,

    /// Send the request to every online server, group members included
    /// (PREFIX/v1/all/req/OP), and print one line per server:
    /// `<server-id> <result>`; exit 0 all answered, 9 some, 6 none
    #[arg(long, conflicts_with = "batch")]
    pub all: bool,

    /// With --all: stop after N distinct servers answered (0: wait for
    /// every server online) [env: none] [default: every server online]
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true, value_parser = whole::<usize>, requires = "all")]
    pub replies: usize,

    /// With --all: how long to gather answers at most: 2s, 500ms
    /// [env: none] [default: the timeout]
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, value_parser = typed(&declared::WAIT), requires = "all")]
    pub wait: Option<Duration>,

    /// The operation and its arguments; none opens the interactive shell
    /// (or, with --batch, reads requests from stdin).
    #[command(subcommand)]
    pub op: Option<AskCommand>,
}

/// The operations `ask` can send.
#[derive(Debug, Subcommand)]
pub enum AskOp {
    /// Evaluate an expression: + - * / % ^, parentheses, sqrt abs ln log10
    /// log2 exp sin cos tan floor ceil round min max, pi, e
    #[command(after_help = CALC_HELP)]
    Calc {
        /// The expression; several words are joined with spaces. Flags may
        /// follow it; a word that is a flag's name goes after `--`
        #[arg(required = true, num_args = 1.., value_name = "EXPR")]
        expr: Vec<String>,
    },
    /// Send text and get it back unchanged
    #[command(after_help = ECHO_HELP)]
    Echo {
        /// The text; several words are joined with spaces. Flags may follow
        /// it; text starting with `--` goes after `--`
        #[arg(required = true, num_args = 1.., value_name = "TEXT")]
        text: Vec<String>,
    },
    /// Change or show a text file in the server's data directory
    #[command(after_help = EDIT_HELP)]
    Edit(EditArgs),
}

/// What `ask` sends: a built-in operation, or a user-defined one by name.
#[derive(Debug, Subcommand)]
pub enum AskCommand {
    /// A built-in operation.
    #[command(flatten)]
    Op(AskOp),
    /// A user-defined operation offered by a server (`serve --exec`):
    /// `mqttapp ask NAME INPUT...`, the words joined with spaces are the
    /// program's stdin; a server that does not offer NAME answers
    /// unknown_op. (Last: it takes every name the built-ins do not.)
    #[command(external_subcommand)]
    User(Vec<String>),
}

/// `mqttapp ask edit`: replace (default), insert, append, delete or show.
///
/// Besides `--file`, these flags are fields of one request, not settings:
/// they have no environment variables and default to "not given".
#[derive(Debug, Args, Clone, Default)]
#[command(mut_args = suffix::with_source_and_default)]
pub struct EditArgs {
    /// 1-based line number (replace, insert, delete)
    #[arg(long, value_name = "N", value_parser = whole::<u64>, allow_negative_numbers = true)]
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

    /// File to edit instead of the server's default
    #[arg(long, value_name = "NAME")]
    pub file: Option<String>,

    /// Refuse the change (exit 1, code conflict) unless the file is at this revision
    #[arg(long, value_name = "REV", value_parser = whole::<u64>, allow_negative_numbers = true)]
    pub expect_rev: Option<u64>,

    /// The line's new text; several words are joined with spaces. Flags
    /// may follow it; text starting with `--` goes after `--`
    #[arg(num_args = 0.., value_name = "TEXT")]
    pub text: Vec<String>,
}

/// A whole number flag (`--line 3`), refused in words rather than with
/// Rust's "invalid digit found in string".
fn whole<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| "use a whole number: 0, 1, 2, ... (no sign, no decimals)".to_string())
}

#[cfg(test)]
mod tests;
