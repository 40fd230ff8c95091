//! Running one program for one request, within its limits: no shell, a
//! cleared environment, stdin fed and stdout/stderr drained by their own
//! threads (so a program that never reads its stdin, or fills its stderr,
//! cannot deadlock the server), and the whole process group killed when
//! the time or output limit is passed.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Most bytes of the end of a failed program's stderr quoted in its reply.
pub const STDERR_TAIL: usize = 1024;
/// Size of the reads from the program's pipes.
const CHUNK: usize = 16 * 1024;
/// How long to wait, after a kill, for the process to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(5);

/// What to run, and its limits.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// The program (a path, or a name found in `PATH` of `env`).
    pub program: &'a str,
    /// Its arguments.
    pub args: &'a [String],
    /// Its whole environment (see `env::build`).
    pub env: &'a [(String, String)],
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Most bytes of stdout.
    pub max_output: usize,
}

/// Why a run gave no output.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program could not be started.
    #[error("could not be started ({program}: {source})")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It ran past its time limit and was killed.
    #[error("ran past its time limit of {} and was killed", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// It wrote more than its output limit and was killed.
    #[error("wrote more than its output limit of {0} bytes and was killed")]
    Output(usize),
    /// It exited non-zero or was killed by a signal.
    #[error("{status}; the end of its stderr: {}", stderr_text(.stderr))]
    Failed {
        /// "exited with status 3", "was killed by signal 9".
        status: String,
        /// The last [`STDERR_TAIL`] bytes of its stderr, as UTF-8 (lossy).
        stderr: String,
    },
}

/// What the pipe threads and the reaper report.
enum Event {
    Stdout(Result<Vec<u8>, ()>),
    Stderr(Vec<u8>),
    Exited(std::io::Result<ExitStatus>),
}

/// Runs `job` with `input` on its stdin; its stdout when it exits 0.
///
/// # Errors
/// [`RunError`]: not started, past a limit (killed), or failed.
pub fn run(job: &Job<'_>, input: Vec<u8>) -> Result<Vec<u8>, RunError> {
    let mut child = Command::new(job.program)
        .args(job.args)
        .env_clear()
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a kill reaches what it started too.
        .process_group(0)
        .spawn()
        .map_err(|source| RunError::Spawn {
            program: job.program.to_string(),
            source,
        })?;
    let deadline = Instant::now() + job.timeout;
    let group = child.id() as i32;
    // Taken right after spawning with all three piped: present.
    let (stdin, stdout, stderr) =
        match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(i), Some(o), Some(e)) => (i, o, e),
            _ => {
                kill_group(group);
                let _ = child.wait();
                return Err(RunError::Spawn {
                    program: job.program.to_string(),
                    source: std::io::Error::other("no pipes"),
                });
            }
        };
    let events = match watch(child, stdin, stdout, stderr, input, job.max_output) {
        Ok(events) => events,
        Err(source) => {
            kill_group(group);
            return Err(RunError::Spawn {
                program: job.program.to_string(),
                source,
            });
        }
    };
    let (mut out, mut err, mut status) = (None, None, None);
    let (out, err, status) = loop {
        if let (Some(o), Some(e), Some(s)) = (&mut out, &mut err, &mut status) {
            break (std::mem::take(o), std::mem::take(e), *s);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::Stdout(Ok(bytes))) => out = Some(bytes),
            Ok(Event::Stdout(Err(()))) => {
                kill_group(group);
                reap(&events, status.is_some());
                return Err(RunError::Output(job.max_output));
            }
            Ok(Event::Stderr(tail)) => err = Some(tail),
            Ok(Event::Exited(result)) => {
                status = Some(result.map_err(|source| RunError::Spawn {
                    program: job.program.to_string(),
                    source,
                })?)
            }
            Err(_) => {
                // Past the deadline (or, impossibly, every thread gone).
                kill_group(group);
                reap(&events, status.is_some());
                return Err(RunError::Timeout(job.timeout));
            }
        }
    };
    if status.success() {
        return Ok(out);
    }
    Err(RunError::Failed {
        status: describe(status),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

/// The stderr tail as quoted in a message: trimmed, "(empty)" when empty.
fn stderr_text(stderr: &str) -> &str {
    match stderr.trim() {
        "" => "(empty)",
        text => text,
    }
}

/// Starts the threads that feed `input` to the program's stdin, read its
/// stdout (at most `max_output` bytes) and stderr (its tail), and reap it;
/// their reports come on the returned channel. The threads end when the
/// program's pipes close, which a kill of its process group forces.
///
/// # Errors
/// A thread could not be started (the caller kills the program).
fn watch(
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: ChildStderr,
    input: Vec<u8>,
    max_output: usize,
) -> std::io::Result<mpsc::Receiver<Event>> {
    let (tx, events) = mpsc::channel();
    let helper = |name: &str| {
        thread::Builder::new()
            .name(name.to_string())
            .stack_size(64 * 1024)
    };
    // Reaper first: if it cannot start, the child is dropped unreaped
    // but killed by the caller.
    let reaper_tx = tx.clone();
    let mut child = child;
    helper("op-reap").spawn(move || {
        let _ = reaper_tx.send(Event::Exited(child.wait()));
    })?;
    // A write to a program that exited or closed its stdin fails with
    // EPIPE (Rust ignores SIGPIPE): the input is then simply not read.
    helper("op-stdin").spawn(move || {
        let mut stdin = stdin;
        let _ = stdin.write_all(&input);
    })?;
    let out_tx = tx.clone();
    helper("op-stdout").spawn(move || {
        let _ = out_tx.send(Event::Stdout(read_capped(stdout, max_output)));
    })?;
    helper("op-stderr").spawn(move || {
        let _ = tx.send(Event::Stderr(read_tail(stderr, STDERR_TAIL)));
    })?;
    Ok(events)
}

/// "exited with status 3" or "was killed by signal 9".
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "failed".to_string(),
    }
}

/// SIGKILL to the run's process group (the program and what it started
/// in its group).
fn kill_group(group: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; it
    // touches no memory of ours.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

/// After a kill: waits (bounded) until the reaper thread has reaped the
/// program, so no zombie is left behind by the common case.
fn reap(events: &mpsc::Receiver<Event>, reaped: bool) {
    if reaped {
        return;
    }
    let until = Instant::now() + REAP_WAIT;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(Event::Exited(_)) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Everything `r` gives, or `Err` as soon as it is more than `max` bytes
/// (then the pipe is closed: the program gets EPIPE or SIGPIPE).
fn read_capped(mut r: impl Read, max: usize) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) if out.len() + n > max => return Err(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(out),
        }
    }
}

/// The last `keep` bytes of everything `r` gives (read to the end, so the
/// program never blocks on a full stderr pipe).
fn read_tail(mut r: impl Read, keep: usize) -> Vec<u8> {
    let mut tail = Vec::with_capacity(2 * keep);
    let mut buf = vec![0u8; CHUNK];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return tail,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > keep {
                    tail.drain(..tail.len() - keep);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return tail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job<'a>(program: &'a str, args: &'a [String], max_output: usize) -> Job<'a> {
        Job {
            program,
            args,
            env: &[],
            timeout: Duration::from_secs(20),
            max_output,
        }
    }

    #[test]
    fn output_past_the_cap_is_refused_and_stderr_keeps_its_tail() {
        assert_eq!(read_capped(&b"abcd"[..], 4), Ok(b"abcd".to_vec()));
        assert_eq!(read_capped(&b"abcde"[..], 4), Err(()));
        let long: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(read_tail(&long[..], 100), long[4900..].to_vec());
        assert_eq!(read_tail(&b"short"[..], 100), b"short".to_vec());
    }

    #[test]
    fn a_program_reads_stdin_and_its_stdout_is_the_answer() {
        let args = ["a-z".to_string(), "A-Z".to_string()];
        let out = run(&job("/usr/bin/tr", &args, 100), b"hello".to_vec()).unwrap();
        assert_eq!(out, b"HELLO");
    }

    #[test]
    fn a_failing_program_reports_its_status_and_stderr() {
        let args = ["-c".to_string(), "echo oops >&2; exit 3".to_string()];
        match run(&job("/bin/sh", &args, 100), Vec::new()) {
            Err(RunError::Failed { status, stderr }) => {
                assert_eq!(status, "exited with status 3");
                assert_eq!(stderr, "oops\n");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_program_that_ignores_a_large_stdin_does_not_hang() {
        let args = ["-c".to_string(), "exec 0<&-; echo done".to_string()];
        let out = run(&job("/bin/sh", &args, 100), vec![b'x'; 4 << 20]).unwrap();
        assert_eq!(out, b"done\n");
    }

    #[test]
    fn too_much_output_kills_the_program() {
        let args = ["/dev/zero".to_string()];
        assert!(matches!(
            run(&job("/bin/cat", &args, 1000), Vec::new()),
            Err(RunError::Output(1000))
        ));
    }

    #[test]
    fn past_its_time_the_program_and_its_children_are_killed() {
        let args = ["-c".to_string(), "sleep 30 & sleep 30".to_string()];
        let j = Job {
            timeout: Duration::from_millis(200),
            ..job("/bin/sh", &args, 100)
        };
        assert!(matches!(run(&j, Vec::new()), Err(RunError::Timeout(_))));
    }
}
