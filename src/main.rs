//! The `mqttapp` binary: parse flags, start tracing, run the subcommand,
//! print results and errors, and map them to exit codes.

use std::error::Error;
use std::io::IsTerminal;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
use mqttapp::ask;
use mqttapp::cli::{AskOp, Cli, ColorWhen, Command, RequestArgs};
use mqttapp::config::{Config, Settings};
use mqttapp::exit::ExitCode;
use mqttapp::output::{Format, Output};
use mqttapp::{serve, shell};

fn main() {
    let cli = Cli::parse();
    let colour = colour_on_stderr(cli.global.color);
    init_tracing(cli.global.verbose, cli.global.quiet, colour);
    let code = match &cli.command {
        Command::Serve(_) => run_serve(&resolve(&cli, None)),
        Command::Ask(args) => {
            let config = resolve(&cli, Some(&args.request));
            let output = output(&cli, &args.request);
            match &args.op {
                Some(op) => run_ask(&config, op, &output),
                None => run_shell(&config, &output),
            }
        }
        Command::Shell(args) => run_shell(
            &resolve(&cli, Some(&args.request)),
            &output(&cli, &args.request),
        ),
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "mqttapp",
                &mut std::io::stdout(),
            );
            ExitCode::Ok
        }
        Command::Status(_) => not_yet("status"),
        Command::Dlq(_) => not_yet("dlq"),
        Command::Bench(_) => not_yet("bench"),
    };
    code.exit()
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

fn init_tracing(verbose: u8, quiet: bool, colour: bool) {
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
        .with_ansi(colour)
        .init();
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
    let env = |k: &str| std::env::var(k).ok();
    match Config::resolve(flags, cli.global.config.as_deref(), &env) {
        Ok(config) => config,
        Err(e) => fail(&e, ExitCode::Usage),
    }
}

fn output(cli: &Cli, request: &RequestArgs) -> Output {
    Output::new(Format::from_flags(request.json, cli.global.quiet))
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

fn run_ask(config: &Config, op: &AskOp, output: &Output) -> ExitCode {
    let result = ask::build_request(op, config.file.as_deref())
        .and_then(|request| ask::request(config, &request).map(|reply| (request, reply)));
    match result {
        Ok((request, reply)) => output.reply(&request, &reply),
        Err(e) => {
            let code = ExitCode::of_ask(&e);
            output.failure(code, &e);
            code
        }
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

/// Placeholder while a subcommand is being built on its own branch.
fn not_yet(name: &str) -> ExitCode {
    eprintln!("error: `mqttapp {name}` is not available in this build");
    ExitCode::Failure
}

/// Prints an error with its chain of causes and exits.
fn fail(e: &dyn Error, code: ExitCode) -> ! {
    Output::new(Format::Plain).error(&mqttapp::output::chain(e));
    code.exit()
}
