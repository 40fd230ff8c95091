//! The `mqttapp` binary: parse flags, start tracing, run the subcommand,
//! print results and errors, and map them to exit codes.

use std::error::Error;
use std::io::{IsTerminal, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;
use mqttapp::ask;
use mqttapp::bench;
use mqttapp::cli::{AskArgs, BenchArgs, Cli, Command};
use mqttapp::config::{Config, Settings};
use mqttapp::exit::ExitCode;
use mqttapp::protocol::{OkValue, Reply, Request};
use mqttapp::serve;

fn main() {
    pin_timezone();
    let cli = Cli::parse();
    init_tracing(cli.global.verbose, cli.global.quiet);
    let serve_args = match &cli.command {
        Command::Serve(args) => Some(args),
        _ => None,
    };
    let mut flags = Settings::from_flags(&cli.global, serve_args);
    if let Command::Ask(args) = &cli.command {
        flags.timeout = args.timeout.clone();
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
        Command::Status(_) => not_yet("status"),
        Command::Dlq(_) => not_yet("dlq"),
        Command::Bench(args) => run_bench(&config, args),
        Command::Shell(_) => not_yet("shell"),
        Command::Completions(_) => not_yet("completions"),
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
    let Some(op) = &args.op else {
        return if args.batch {
            run_batch(config, args.json)
        } else {
            not_yet("ask (interactive)")
        };
    };
    if args.batch {
        eprintln!("error: --batch reads its requests from stdin; give no operation with it");
        return ExitCode::Usage;
    }
    let result = ask::build_request(op, config.file.as_deref())
        .and_then(|request| ask::request_then_exit(config, &request).map(|reply| (request, reply)));
    match result {
        Ok((request, reply)) => print_reply(&request, &reply, args.json),
        Err(e) => {
            let code = ExitCode::of_ask(&e);
            fail(&e, code)
        }
    }
}

fn run_batch(config: &Config, json: bool) -> ExitCode {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    match ask::run_batch(config, stdin, &mut stdout, json) {
        Ok(summary) => {
            let _ = stdout.flush();
            if summary.failed == 0 {
                ExitCode::Ok
            } else {
                eprintln!("{} of {} requests failed", summary.failed, summary.total);
                ExitCode::OperationError
            }
        }
        Err(e) => {
            let _ = stdout.flush();
            let code = ExitCode::of_ask(&e);
            fail(&e, code)
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
                    "error: {} lost, {} duplicated, {} publish errors",
                    report.lost, report.duplicates, report.publish_errors
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
