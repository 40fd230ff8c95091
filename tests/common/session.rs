//! A long-running `mqttapp` child fed line by line, for the interactive
//! shell: through a pipe, or through a pseudo-terminal made by `script`
//! (util-linux) so that the prompt, line editing and history are real.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Broker, CLEARED_ENV};

/// A running child whose stdout and stderr are collected as they come.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

/// `mqttapp <args>` set up like [`super::mqttapp`], as a std Command.
pub fn command(broker: &Broker, prefix: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqttapp"));
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd.args(args)
        .env("MQTTAPP_BROKER", broker.url())
        .env("MQTTAPP_PREFIX", prefix)
        .env("MQTTAPP_TIMEOUT", "10")
        .env("NO_COLOR", "1")
        .current_dir(broker.dir());
    cmd
}

/// The same command run inside a pseudo-terminal by `script -qfec`, so
/// that the program sees a terminal on stdin, stdout and stderr.
pub fn in_terminal(cmd: &Command) -> Command {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    // `exec`: the program replaces the shell `script` starts, so that a
    // Ctrl-C typed in the terminal reaches the program alone. Without it
    // a shell that does not exec its last command (dash, `/bin/sh` when
    // SHELL is unset as in CI) dies of the SIGINT and `script` exits 130.
    let line = format!("exec {}", shell_words::join(words));
    let mut script = Command::new("script");
    script.args(["-qfec", &line, "/dev/null"]);
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => script.env(key, v),
            None => script.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        script.current_dir(dir);
    }
    script
}

/// Output of a child, collected as it comes (a reader thread per stream).
pub fn collect(mut from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let sink = Arc::new(Mutex::new(String::new()));
    let into = sink.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    sink
}

impl Session {
    /// Starts `cmd` with piped stdin, stdout and stderr.
    pub fn start(mut cmd: Command) -> Session {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the session");
        let stdin = child.stdin.take();
        let stdout = collect(child.stdout.take().expect("piped stdout"));
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        Session {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// Types one line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("write to the session");
        stdin.flush().expect("flush the session's stdin");
    }

    /// Everything on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Everything on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stdout contains `needle` at least `times` times.
    pub fn wait_for(&self, needle: &str, times: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.stdout().matches(needle).count() >= times {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no {times}x {needle:?} on stdout within {within:?}\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
    }

    /// Closes stdin (end of input) and waits for the exit code.
    pub fn finish(mut self, within: Duration) -> (Option<i32>, String, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader threads take the last bytes.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.stdout(), self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!(
            "the session did not end within {within:?}\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
