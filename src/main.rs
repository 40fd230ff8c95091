//! The `mqttapp` binary: parse flags, start tracing, run the subcommand,
//! print results and errors, and map them to exit codes.

use std::error::Error;
use std::io::{IsTerminal, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;
use mqttapp::ask;
use mqttapp::cli::{AskArgs, Cli, Command, DlqAction, DlqArgs, StatusArgs};
use mqttapp::config::{Config, Settings};
use mqttapp::exit::ExitCode;
use mqttapp::protocol::{OkValue, Reply, Request};
use mqttapp::{dlq, serve, status};

fn main() {
    let cli = Cli::parse();
    init_tracing(cli.global.verbose, cli.global.quiet);
    let serve_args = match &cli.command {
        Command::Serve(args) => Some(args),
        _ => None,
    };
    let mut flags = Settings::from_flags(&cli.global, serve_args);
    match &cli.command {
        Command::Ask(args) => flags.timeout = args.timeout.clone(),
        Command::Dlq(args) => flags.data_dir = args.data_dir.clone(),
        _ => {}
    }
    let config = match Config::resolve(flags, cli.global.config.as_deref(), &|k| {
        std::env::var(k).ok()
    }) {
        Ok(c) => c,
        Err(e) => fail(&e, ExitCode::Usage),
    };
    let code = match &cli.command {
        Command::Serve(_) => run_serve(&config),
        Command::Ask(args) => run_ask(&config, args),
        Command::Status(args) => run_status(&config, args),
        Command::Dlq(args) => run_dlq(&config, args),
        Command::Bench(_) => not_yet("bench"),
        Command::Shell(_) => not_yet("shell"),
        Command::Completions(_) => not_yet("completions"),
    };
    code.exit()
}

fn init_tracing(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "info",
        (_, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();
}

fn run_serve(config: &Config) -> ExitCode {
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, shutdown.clone()) {
            fail(&e, ExitCode::Failure);
        }
    }
    match serve::run(config, &shutdown) {
        Ok(()) => ExitCode::Ok,
        Err(serve::ServeError::Mqtt(e)) => {
            let code = ExitCode::of_mqtt(&e);
            fail(&e, code)
        }
        Err(e) => fail(&e, ExitCode::Failure),
    }
}

fn run_ask(config: &Config, args: &AskArgs) -> ExitCode {
    let result = ask::build_request(&args.op, config.file.as_deref())
        .and_then(|request| ask::request(config, &request).map(|reply| (request, reply)));
    match result {
        Ok((request, reply)) => print_reply(&request, &reply, args.json),
        Err(e) => {
            let code = ExitCode::of_ask(&e);
            fail(&e, code)
        }
    }
}

/// Prints the servers' statuses; exit 0 when one is online, else 6.
fn run_status(config: &Config, args: &StatusArgs) -> ExitCode {
    let wait =
        match mqttapp::config::parse_duration("wait", args.wait.as_deref(), status::DEFAULT_WAIT) {
            Ok(w) => w,
            Err(e) => fail(&e, ExitCode::Usage),
        };
    let rows = match status::collect(config, wait) {
        Ok(rows) => rows,
        Err(e) => {
            let code = ExitCode::of_mqtt(&e);
            fail(&e, code)
        }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        // Plain rows of strings and numbers always serialize.
        let text = serde_json::to_string(&rows).expect("status rows serialize to JSON");
        let _ = writeln!(out, "{text}");
    } else if !rows.is_empty() {
        let _ = write!(out, "{}", status::table(&rows));
    }
    if rows.iter().any(|r| r.is_online()) {
        return ExitCode::Ok;
    }
    eprintln!(
        "no server online under {}/v1/status/ ({} known)",
        config.prefix,
        rows.len()
    );
    ExitCode::NoServer
}

/// Runs a `dlq` action on the local store.
fn run_dlq(config: &Config, args: &DlqArgs) -> ExitCode {
    let result = match &args.action {
        DlqAction::List { json } => dlq::list(config).map(|letters| {
            let mut out = std::io::stdout().lock();
            if *json {
                // Records of strings and numbers always serialize.
                let text = serde_json::to_string(&letters).expect("dead letters serialize");
                let _ = writeln!(out, "{text}");
            } else if letters.is_empty() {
                eprintln!("no dead letters in {}", config.data_dir.display());
            } else {
                let _ = write!(out, "{}", dlq::table(&letters));
            }
        }),
        DlqAction::Replay(which) => {
            let ids = (!which.all).then_some(which.ids.as_slice());
            dlq::replay(config, ids).map(|n| eprintln!("replayed {n} dead letter(s)"))
        }
        DlqAction::Purge(which) => {
            let ids = (!which.all).then_some(which.ids.as_slice());
            dlq::purge(config, ids).map(|n| eprintln!("purged {n} dead letter(s)"))
        }
    };
    match result {
        Ok(()) => ExitCode::Ok,
        Err(e) => {
            let code = ExitCode::of_dlq(&e);
            fail(&e, code)
        }
    }
}

/// Prints the result alone on stdout (or the whole reply as JSON); error
/// replies go to stderr with exit code 1.
fn print_reply(request: &Request, reply: &Reply, json: bool) -> ExitCode {
    let mut out = std::io::stdout().lock();
    if json {
        // A reply is plain data; serializing it to JSON cannot fail.
        let text = serde_json::to_string(reply).expect("reply serializes to JSON");
        let _ = writeln!(out, "{text}");
        return if matches!(reply, Reply::Ok(_)) {
            ExitCode::Ok
        } else {
            ExitCode::OperationError
        };
    }
    match reply {
        Reply::Ok(value) => {
            if let OkValue::Edit(e) = value {
                if e.content.is_some() {
                    eprintln!("{}: rev {}, {} lines", e.file, e.rev, e.lines);
                }
            }
            let _ = writeln!(out, "{value}");
            ExitCode::Ok
        }
        Reply::Err(err) => {
            eprintln!("error: {err}");
            // A caret under the offending character, for expressions that fit a line.
            if let (Request::Calc(calc), Some(at)) = (request, err.at) {
                if calc.expr.len() > 120 || calc.expr.contains('\n') {
                    return ExitCode::OperationError;
                }
                eprintln!("  {}\n  {}^", calc.expr, " ".repeat(at as usize));
            }
            ExitCode::OperationError
        }
    }
}

/// Placeholder while a subcommand is being built on its own branch.
fn not_yet(name: &str) -> ExitCode {
    eprintln!("error: `mqttapp {name}` is not available in this build");
    ExitCode::Failure
}

/// Prints an error with its chain of causes and exits.
fn fail(e: &dyn Error, code: ExitCode) -> ! {
    let mut message = format!("error: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    eprintln!("{message}");
    code.exit()
}
