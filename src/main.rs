//! The `mqttapp` binary: parse flags, start tracing, run the subcommand,
//! print results and errors, and map them to exit codes.

use std::error::Error;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mqttapp::ask;
use mqttapp::bench;
use mqttapp::cli::{
    AskArgs, AskOp, BenchArgs, Cli, ColorWhen, Command, DlqAction, DlqArgs, DlqSelection,
    RequestArgs, StatusArgs,
};
use mqttapp::config::{self, Config, Settings};
use mqttapp::exit::ExitCode;
use mqttapp::mqtt::MqttError;
use mqttapp::output::{Format, Output};
use mqttapp::{dlq, serve, shell, status};

/// Whether failures are shown as JSON on stdout (`--json` on the line).
static JSON_FAILURES: AtomicBool = AtomicBool::new(false);

fn main() {
    pin_timezone();
    let (cli, json) = mqttapp::cli::parse::from_env();
    JSON_FAILURES.store(json, Ordering::Relaxed);
    let colour = colour_on_stderr(cli.global.color);
    mqttapp::logging::init(cli.global.verbose, cli.global.quiet, colour);
    let code = match &cli.command {
        Command::Serve(args) => run_serve(&resolve(&cli, None), args.wait_for_broker.as_deref()),
        Command::Ask(args) => run_ask(&cli, args),
        Command::Shell(args) => run_shell(
            &resolve(&cli, Some(&args.request)),
            &output(&cli, &args.request),
        ),
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut mqttapp::cli::command_shown(),
                "mqttapp",
                &mut std::io::stdout(),
            );
            ExitCode::Ok
        }
        Command::Status(args) => run_status(&resolve(&cli, None), args),
        Command::Dlq(args) => run_dlq(&resolve(&cli, None), args),
        Command::Bench(args) => run_bench(&resolve(&cli, None), args),
    };
    code.exit()
}

/// Paho C asks for the local time on every message it handles; with `TZ`
/// unset, glibc then re-reads `/etc/localtime` each time (31 `stat` calls
/// per request, measured with `strace -c`). Naming the same zone file
/// explicitly keeps local time and lets glibc cache it. Runs before any
/// thread exists, as changing the environment requires.
fn pin_timezone() {
    if std::env::var_os("TZ").is_none() {
        std::env::set_var("TZ", ":/etc/localtime");
    }
}

/// Sets anstream's global choice (used by every coloured message) and
/// returns whether stderr gets colour, for the log lines.
fn colour_on_stderr(when: ColorWhen) -> bool {
    let choice = match when {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// Flags > environment > config file > defaults, once; a bad setting ends
/// the process with exit code 2.
fn resolve(cli: &Cli, request: Option<&RequestArgs>) -> Config {
    let serve_args = match &cli.command {
        Command::Serve(args) => Some(args),
        _ => None,
    };
    let mut flags = Settings::from_flags(&cli.global, serve_args);
    flags.timeout = request.and_then(|r| r.timeout.clone());
    if let Command::Dlq(args) = &cli.command {
        flags.data_dir = args.data_dir.clone();
    }
    let env = |k: &str| std::env::var(k).ok();
    let mut config = match Config::resolve(flags, cli.global.config.as_deref(), &env) {
        Ok(config) => config,
        Err(e) => fail(&e, ExitCode::Usage),
    };
    // Asked last, once the user name and broker are known; beats every
    // other source of the password.
    if cli.global.password_prompt {
        let conn = &config.connection;
        match config::prompt_password(conn.username.as_deref(), &conn.broker) {
            Ok(password) => config.connection.password = Some(password),
            Err(e) => fail(&e, ExitCode::Usage),
        }
    }
    config
}

fn output(cli: &Cli, request: &RequestArgs) -> Output {
    Output::new(Format::from_flags(request.json, cli.global.quiet))
}

fn run_serve(config: &Config, wait_for_broker: Option<&str>) -> ExitCode {
    // SIGINT and SIGTERM become a shutdown event on the server's control
    // channel (signal_hook's iterator thread does the waiting).
    let control = serve::Control::new();
    let shutdown = control.shutdown_handle();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .unwrap_or_else(|e| fail(&e, ExitCode::Failure));
    std::thread::spawn(move || {
        for _ in signals.forever() {
            shutdown.request();
        }
    });
    let patience = match wait_for_broker {
        Some(text) => config::parse_duration("wait_for_broker", Some(text), Duration::ZERO)
            .unwrap_or_else(|e| fail(&e, ExitCode::Usage)),
        None => Duration::ZERO,
    };
    match serve_when_the_broker_is_up(config, &control, patience) {
        Ok(()) => ExitCode::Ok,
        Err(serve::ServeError::Mqtt(e)) => {
            let code = ExitCode::of_mqtt(&e);
            fail(&e, code)
        }
        Err(e) => fail(&e, ExitCode::Failure),
    }
}

/// [`serve::run`], retried while the broker cannot be reached for up to
/// `patience` (`--wait-for-broker`): a service manager may start the
/// server before the broker.
fn serve_when_the_broker_is_up(
    config: &Config,
    control: &serve::Control,
    patience: Duration,
) -> Result<(), serve::ServeError> {
    let deadline = Instant::now() + patience;
    let mut told = false;
    warn_about_neighbours(config);
    loop {
        match serve::run(config, control) {
            Err(serve::ServeError::Mqtt(e @ MqttError::Unreachable { .. }))
                if Instant::now() < deadline && !control.shutdown_requested() =>
            {
                if !told {
                    let left = humantime::format_duration(Duration::from_secs(
                        deadline.saturating_duration_since(Instant::now()).as_secs(),
                    ));
                    tracing::warn!("{e}; trying again every second for {left} (--wait-for-broker)");
                    told = true;
                }
                control.wait_for_shutdown(Duration::from_secs(1));
            }
            outcome => return outcome,
        }
    }
}

/// Before serving: warns about servers already online under the prefix
/// that this one would answer alongside or displace (best effort: when the
/// broker cannot be reached, serving reports that).
fn warn_about_neighbours(config: &Config) {
    let wait = std::time::Duration::from_secs(2);
    if let Ok(rows) = status::collect(config, wait) {
        for warning in status::neighbour_warnings(config, &rows) {
            tracing::warn!("{warning}");
        }
    }
}

/// One request, the interactive shell (no operation), or a batch.
fn run_ask(cli: &Cli, args: &AskArgs) -> ExitCode {
    let config = resolve(cli, Some(&args.request));
    let output = output(cli, &args.request);
    match (&args.op, args.batch) {
        (Some(op), false) => run_one(&config, op, &output),
        (None, false) => run_shell(&config, &output),
        (None, true) => run_batch(&config, &output, args.request.json),
        (Some(_), true) => {
            output.error("--batch reads its requests from stdin; give no operation with it");
            ExitCode::Usage
        }
    }
}

fn run_one(config: &Config, op: &AskOp, output: &Output) -> ExitCode {
    let result = ask::build_request(op, config.file.as_deref())
        .and_then(|request| ask::request_then_exit(config, &request).map(|reply| (request, reply)));
    match result {
        Ok((request, reply)) => output.reply(&request, &reply),
        Err(e) => {
            let code = ExitCode::of_ask(&e);
            output.failure(code, &e);
            code
        }
    }
}

/// `--quiet` batches write their result lines nowhere.
fn run_batch(config: &Config, output: &Output, json: bool) -> ExitCode {
    let stdin = std::io::stdin().lock();
    let sink: Box<dyn Write> = if output.format() == Format::Quiet {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stdout().lock())
    };
    let mut stdout = std::io::BufWriter::new(sink);
    match shell::run_batch(config, stdin, &mut stdout, json) {
        Ok(summary) => {
            let _ = stdout.flush();
            if summary.failed == 0 {
                ExitCode::Ok
            } else {
                let (failed, total) = (summary.failed, summary.total);
                output.error(&format!("{failed} of {total} requests failed"));
                ExitCode::OperationError
            }
        }
        Err(e) => {
            let _ = stdout.flush();
            let code = ExitCode::of_ask(&e);
            output.failure(code, &e);
            code
        }
    }
}

fn run_bench(config: &Config, args: &BenchArgs) -> ExitCode {
    match bench::run(config, args) {
        Ok(report) => {
            if args.json {
                // Plain numbers and strings: serializing cannot fail.
                println!(
                    "{}",
                    serde_json::to_string(&report).expect("report serializes")
                );
            } else {
                print!("{}", bench::table(&report));
            }
            if report.is_clean() {
                ExitCode::Ok
            } else {
                eprintln!(
                    "error: {} lost, {} duplicated, {} publish errors, {} still busy at the timeout",
                    report.counts.lost,
                    report.counts.duplicates,
                    report.counts.publish_errors,
                    report.counts.busy_gave_up
                );
                ExitCode::OperationError
            }
        }
        Err(bench::BenchError::Usage(e)) => fail(&bench::BenchError::Usage(e), ExitCode::Usage),
        Err(bench::BenchError::Ask(e)) => {
            let code = ExitCode::of_ask(&e);
            fail(&e, code)
        }
    }
}

/// Prints the servers' statuses (table or JSON); exit 0 when one is
/// online, else 6.
fn run_status(config: &Config, args: &StatusArgs) -> ExitCode {
    let wait = mqttapp::config::parse_duration("wait", args.wait.as_deref(), status::DEFAULT_WAIT)
        .unwrap_or_else(|e| fail(&e, ExitCode::Usage));
    if let Some(id) = &args.forget {
        return forget_server(config, id, wait);
    }
    let rows = status::collect(config, wait).unwrap_or_else(|e| fail(&e, ExitCode::of_mqtt(&e)));
    let mut out = std::io::stdout().lock();
    let _ = match args.json {
        // Plain rows of strings and numbers always serialize.
        true => writeln!(
            out,
            "{}",
            serde_json::to_string(&rows).expect("rows are JSON")
        ),
        false => write!(out, "{}", status::table(&rows)),
    };
    if rows.iter().any(|r| r.is_online()) {
        return ExitCode::Ok;
    }
    let (prefix, known) = (&config.prefix, rows.len());
    eprintln!("no server online under {prefix}/v1/status/ ({known} known)");
    ExitCode::NoServer
}

/// `status --forget ID`: removes an offline server's retained status.
fn forget_server(config: &Config, id: &str, wait: std::time::Duration) -> ExitCode {
    if let Err(e) = config::validate_id("forget", id) {
        fail(&e, ExitCode::Usage);
    }
    match status::forget(config, id, wait) {
        Ok(()) => {
            eprintln!("forgot server {id}");
            ExitCode::Ok
        }
        Err(status::ForgetError::Mqtt(e)) => {
            let code = ExitCode::of_mqtt(&e);
            fail(&e, code)
        }
        Err(e) => fail(&e, ExitCode::Usage),
    }
}

/// Runs a `dlq` action on the local store; counts go to stderr.
fn run_dlq(config: &Config, args: &DlqArgs) -> ExitCode {
    let ids = |w: &DlqSelection| (!w.all).then_some(w.ids.clone());
    let result = match &args.action {
        DlqAction::List { json } => dlq::write_list(config, *json, &mut std::io::stdout().lock())
            .map(|l| {
                print_listing_notes(l, *json, &config.data_dir);
            }),
        DlqAction::Replay(r) => dlq::replay(config, ids(&r.selection).as_deref(), r.force)
            .map(|done| {
                eprintln!("replayed {} dead letter(s)", done.replayed);
                if done.skipped > 0 {
                    eprintln!(
                        "skipped {} dead letter(s) that would fail again as they are ({}): they stay; `mqttapp dlq replay --force` replays them, `mqttapp dlq purge` removes them",
                        done.skipped,
                        dlq::HOPELESS.join(", ")
                    );
                }
            }),
        DlqAction::Purge(w) => {
            dlq::purge(config, ids(w).as_deref()).map(|n| eprintln!("purged {n} dead letter(s)"))
        }
    };
    match result {
        Ok(()) => ExitCode::Ok,
        Err(e) => fail(&e, ExitCode::of_dlq(&e)),
    }
}

/// The counts of a listing, on stderr (stdout holds the letters).
fn print_listing_notes(listing: dlq::Listing, json: bool, data_dir: &std::path::Path) {
    let dir = data_dir.display();
    match listing.listed {
        0 if !json => eprintln!("no dead letters in {dir}"),
        n => eprintln!("{n} dead letter(s) in {dir}"),
    }
    if listing.dropped > 0 {
        eprintln!(
            "dropped {} dead letter(s) not in this list: the store was at max_deadletter_bytes (`mqttapp dlq purge --all` resets the count)",
            listing.dropped
        );
    }
}

/// A failed first connection ends the session with its own exit code
/// (3, 4, 7, ...); after that, 0 when every command succeeded, else 1.
fn run_shell(config: &Config, output: &Output) -> ExitCode {
    match shell::run(config, output) {
        Ok(summary) => summary.exit_code(),
        Err(e) => {
            let code = ExitCode::of_ask(&e);
            output.failure(code, &e);
            code
        }
    }
}

/// Prints an error with its chain of causes and exits; under `--json`
/// also as `{"err":{"code":...,"message":...}}` on stdout.
fn fail(e: &dyn Error, code: ExitCode) -> ! {
    let format = match JSON_FAILURES.load(Ordering::Relaxed) {
        true => Format::Json,
        false => Format::Plain,
    };
    Output::new(format).failure(code, e);
    code.exit()
}
