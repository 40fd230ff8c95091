//! The `mqttapp` binary: `main -> run -> ExitCode`. `run` parses flags,
//! starts tracing and runs the subcommand; a failure travels back as a
//! [`Failure`] (the error and its exit code) to the one place that prints
//! it, and `main` exits once.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use mqttapp::ask;
use mqttapp::bench;
use mqttapp::cli::exits::Failure;
use mqttapp::cli::{
    AskArgs, AskCommand, BenchArgs, Cli, ColorWhen, Command, DescribeArgs, DlqAction, DlqArgs,
    DlqSelection, PingArgs, RequestArgs, StatusArgs,
};
use mqttapp::config::{self, Config};
use mqttapp::exit::ExitCode;
use mqttapp::mqtt::MqttError;
use mqttapp::output::{Format, Output};
use mqttapp::{dlq, gather, serve, shell, status};

fn main() {
    pin_timezone();
    run().exit()
}

/// The whole program but the exit; the only place that shows a failure:
/// its message and causes on stderr and, when the line asks for JSON
/// (`--json`), `{"err":{"code":...,"message":...}}` on stdout.
fn run() -> ExitCode {
    let (cli, json) = match mqttapp::cli::parse::from_env() {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let colour = colour_on_stderr(cli.global.color);
    mqttapp::logging::init(cli.global.verbose, cli.global.quiet, colour);
    match run_command(&cli) {
        Ok(code) => code,
        Err(Failure { error, code }) => {
            let format = if json { Format::Json } else { Format::Plain };
            Output::new(format).failure(code, &*error);
            code
        }
    }
}

/// Runs the subcommand; `Ok` holds the code of a command that ran to its
/// end (also 1 for an error reply, 6 for no server online).
fn run_command(cli: &Cli) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Serve(args) => run_serve(&resolve(cli)?, args.wait_for_broker),
        Command::Ask(args) => run_ask(cli, args),
        Command::Shell(args) => {
            let headers = ask::headers::parse_all(&args.request.header)?;
            run_shell(&resolve(cli)?, &output(cli, &args.request), headers)
        }
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut mqttapp::cli::command_shown(),
                "mqttapp",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::Ok)
        }
        Command::Status(args) => run_status(&resolve(cli)?, args),
        Command::Describe(args) => run_describe(&resolve(cli)?, args),
        Command::Ping(args) => run_ping(&resolve(cli)?, args),
        Command::Dlq(args) => run_dlq(&resolve(cli)?, args),
        Command::Bench(args) => run_bench(&resolve(cli)?, args),
        Command::Doctor(args) => Ok(mqttapp::doctor::main(&resolve(cli)?, args.json)),
    }
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

/// Flags > environment > config file > defaults, once, for the settings
/// the command uses; a bad setting is a usage error (exit 2).
fn resolve(cli: &Cli) -> Result<Config, Failure> {
    let cmd = cli
        .settings_command()
        .expect("only commands with settings resolve them");
    let env = |k: &str| std::env::var(k).ok();
    let mut config = Config::resolve(cmd, cli.settings(), cli.global.config.as_deref(), &env)?;
    // Asked last, once the user name and broker are known; beats every
    // other source of the password.
    if cli.global.password_prompt {
        let conn = &config.connection;
        let password = config::prompt_password(conn.username.as_deref(), &conn.broker)?;
        config.connection.password = Some(password);
    }
    Ok(config)
}

fn output(cli: &Cli, request: &RequestArgs) -> Output {
    Output::new(Format::from_flags(request.json, cli.global.quiet))
        .with_breakdown(cli.global.verbose > 0)
}

fn run_serve(config: &Config, wait_for_broker: Option<Duration>) -> Result<ExitCode, Failure> {
    // SIGINT and SIGTERM become a shutdown event on the server's control
    // channel (signal_hook's iterator thread does the waiting).
    let control = serve::Control::new();
    let shutdown = control.shutdown_handle();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| Failure::with_code(e, ExitCode::Failure))?;
    std::thread::spawn(move || {
        for _ in signals.forever() {
            shutdown.request();
        }
    });
    let patience = wait_for_broker.unwrap_or(Duration::ZERO);
    warn_about_neighbours(config)?;
    serve_when_the_broker_is_up(config, &control, patience)?;
    Ok(ExitCode::Ok)
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
/// broker cannot be reached, serving reports that); refuses to take a
/// group's edits from another data directory than its online members'.
fn warn_about_neighbours(config: &Config) -> Result<(), Failure> {
    let wait = std::time::Duration::from_secs(2);
    if let Ok(rows) = status::collect(config, wait) {
        for warning in status::neighbour_warnings(config, &rows) {
            tracing::warn!("{warning}");
        }
        if let Err(e) = mqttapp::serve::owner::check_owner(config, &rows) {
            return Err(Failure::with_code(e, ExitCode::Usage));
        }
    }
    Ok(())
}

/// One request, the interactive shell (no operation), or a batch.
fn run_ask(cli: &Cli, args: &AskArgs) -> Result<ExitCode, Failure> {
    let headers = ask::headers::parse_all(&args.request.header)?;
    let config = resolve(cli)?;
    let output = output(cli, &args.request);
    if args.all {
        return run_all(&config, args, &output, headers);
    }
    match (&args.op, args.batch) {
        (Some(op), false) => run_one(&config, op, &output, headers),
        (None, false) => run_shell(&config, &output, headers),
        (None, true) => run_batch(&config, &output, args.request.json, &headers),
        (Some(_), true) => Err(ask::AskError::Usage(
            "--batch reads its requests from stdin; give no operation with it".into(),
        )
        .into()),
    }
}

/// `ask --all OP ...`: one request to every online server, one line each.
fn run_all(
    config: &Config,
    args: &AskArgs,
    output: &Output,
    headers: Vec<(String, String)>,
) -> Result<ExitCode, Failure> {
    let Some(op) = &args.op else {
        return Err(gather::GatherError::Usage(
            "--all sends one request to every server: give an operation, e.g. ask --all calc 1+1"
                .into(),
        )
        .into());
    };
    let request = request_of(config, op)?;
    let options = gather::all::AllOptions {
        replies: (args.replies > 0).then_some(args.replies),
        wait: args.wait.unwrap_or(config.timeout),
        format: output.format(),
        headers,
    };
    let mut out = std::io::stdout().lock();
    Ok(gather::all::run(config, &request, &options, &mut out)?)
}

/// `mqttapp ping`: exit 0 when some server answered, 6 when none did.
fn run_ping(config: &Config, args: &PingArgs) -> Result<ExitCode, Failure> {
    let options = gather::ping::PingOptions {
        count: args.count,
        wait: args.wait.unwrap_or(gather::ping::DEFAULT_WAIT),
        json: args.json,
    };
    let verdict = gather::ping::run(config, &options, &mut std::io::stdout().lock())?;
    if verdict == gather::Verdict::None {
        let wait = humantime::format_duration(options.wait);
        eprintln!(
            "no server answered a ping on {}/v1/ping within {wait} (`mqttapp status` shows the retained statuses)",
            config.prefix
        );
        return Ok(ExitCode::NoServer);
    }
    Ok(ExitCode::Ok)
}

/// The request an `ask` command line names: a built-in operation, or a
/// user-defined one by name.
fn request_of(config: &Config, op: &AskCommand) -> Result<mqttapp::protocol::Request, Failure> {
    Ok(match op {
        AskCommand::Op(op) => ask::build_request(op, config.file.as_deref())?,
        AskCommand::User(words) => mqttapp::protocol::Request::User(ask::user_request(words)?),
    })
}

fn run_one(
    config: &Config,
    op: &AskCommand,
    output: &Output,
    headers: Vec<(String, String)>,
) -> Result<ExitCode, Failure> {
    let request = request_of(config, op)?;
    let answer = ask::request_then_exit_traced(config, &request, headers)?;
    Ok(output.reply_with(&request, &answer.reply, Some(&answer.breakdown)))
}

/// `--quiet` batches write their result lines nowhere.
fn run_batch(
    config: &Config,
    output: &Output,
    json: bool,
    headers: &[(String, String)],
) -> Result<ExitCode, Failure> {
    let stdin = std::io::stdin().lock();
    let sink: Box<dyn Write> = if output.format() == Format::Quiet {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stdout().lock())
    };
    let mut stdout = std::io::BufWriter::new(sink);
    let outcome = shell::run_batch(config, stdin, &mut stdout, json, headers);
    let _ = stdout.flush();
    let summary = outcome?;
    if summary.failed == 0 {
        Ok(ExitCode::Ok)
    } else {
        let (failed, total) = (summary.failed, summary.total);
        output.error(&format!("{failed} of {total} requests failed"));
        Ok(ExitCode::OperationError)
    }
}

fn run_bench(config: &Config, args: &BenchArgs) -> Result<ExitCode, Failure> {
    let report = bench::run(config, args)?;
    if args.json {
        // Plain numbers and strings: serializing cannot fail.
        println!(
            "{}",
            serde_json::to_string(&report).expect("report serializes")
        );
    } else {
        print!("{}", bench::table(&report));
    }
    if let Some(path) = &args.report {
        bench::write_report(path, &report)?;
    }
    if report.slo_missed() {
        let missed = report.slo.iter().filter(|v| !v.pass).count();
        eprintln!(
            "error: {missed} of {} objectives (--slo) missed",
            report.slo.len()
        );
        return Ok(ExitCode::SloMissed);
    }
    if report.is_clean() {
        return Ok(ExitCode::Ok);
    }
    eprintln!(
        "error: {} lost, {} duplicated, {} publish errors, {} still busy at the timeout",
        report.counts.lost,
        report.counts.duplicates,
        report.counts.publish_errors,
        report.counts.busy_gave_up
    );
    Ok(ExitCode::OperationError)
}

/// Prints the servers' statuses (table or JSON); exit 0 when one is
/// online, else 6.
fn run_status(config: &Config, args: &StatusArgs) -> Result<ExitCode, Failure> {
    let wait = args.wait.unwrap_or(status::DEFAULT_WAIT);
    if let Some(id) = &args.forget {
        return forget_server(config, id, wait);
    }
    if args.stats {
        return show_stats(config, args.json, wait);
    }
    let rows = status::collect(config, wait)?;
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
        return Ok(ExitCode::Ok);
    }
    let (prefix, known) = (&config.prefix, rows.len());
    eprintln!("no server online under {prefix}/v1/status/ ({known} known)");
    Ok(ExitCode::NoServer)
}

/// Lists the operations the online servers offer, or describes one;
/// exit 6 when no server is online, 2 when none offers the operation.
fn run_describe(config: &Config, args: &DescribeArgs) -> Result<ExitCode, Failure> {
    use mqttapp::describe::{self, render};
    let catalog = describe::collect(config, args.wait.unwrap_or(describe::DEFAULT_WAIT))?;
    let text = match &args.op {
        None => {
            catalog.require_online(&config.prefix)?;
            match args.json {
                true => render::list_json(&catalog).to_string() + "\n",
                false => render::list(&catalog),
            }
        }
        Some(op) => {
            let offer = describe::find(&catalog, op, &config.prefix)?;
            match args.json {
                true => render::one_json(offer).to_string() + "\n",
                false => render::one(offer),
            }
        }
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(ExitCode::Ok)
}

/// `status --stats`: every server's statistics (table or JSON); exit 0
/// when some server sent them, else 6.
fn show_stats(config: &Config, json: bool, wait: Duration) -> Result<ExitCode, Failure> {
    let servers = status::stats::collect(config, wait)?;
    let mut out = std::io::stdout().lock();
    let _ = match json {
        // Maps of strings and numbers always serialize.
        true => writeln!(
            out,
            "{}",
            serde_json::to_string(&servers).expect("statistics are JSON")
        ),
        false => write!(out, "{}", status::stats::table(&servers)),
    };
    if !servers.is_empty() {
        return Ok(ExitCode::Ok);
    }
    let prefix = &config.prefix;
    eprintln!("no server sent statistics under {prefix}/v1/stats/ (none online, or a broker ACL refuses the ping)");
    Ok(ExitCode::NoServer)
}

/// `status --forget ID`: removes an offline server's retained status.
fn forget_server(config: &Config, id: &str, wait: Duration) -> Result<ExitCode, Failure> {
    config::validate_id("forget", id)?;
    status::forget(config, id, wait)?;
    eprintln!("forgot server {id}");
    Ok(ExitCode::Ok)
}

/// Runs a `dlq` action on the local store; counts go to stderr.
fn run_dlq(config: &Config, args: &DlqArgs) -> Result<ExitCode, Failure> {
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
    result?;
    Ok(ExitCode::Ok)
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
fn run_shell(
    config: &Config,
    output: &Output,
    headers: Vec<(String, String)>,
) -> Result<ExitCode, Failure> {
    Ok(shell::run(config, output, headers)?.exit_code())
}
