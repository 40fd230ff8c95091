//! `mqttapp serve` as a child process, with its log captured.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Broker, CLEARED_ENV};

/// A running server, killed when dropped.
pub struct Server {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    data_dir: PathBuf,
    args: Vec<String>,
    broker_url: String,
    prefix: String,
    /// Where the current run's part of the log starts.
    run_start: usize,
}

impl Server {
    /// Starts a server with its own data directory under the broker's dir.
    pub fn start(broker: &Broker, prefix: &str) -> Server {
        Server::start_with(
            broker,
            prefix,
            &broker.dir().join(format!("data-{prefix}")),
            &[],
        )
    }

    /// Starts a server with a given data directory and extra `serve` flags.
    pub fn start_with(broker: &Broker, prefix: &str, data_dir: &Path, args: &[&str]) -> Server {
        let mut server = Server {
            child: None,
            log: Arc::default(),
            data_dir: data_dir.to_path_buf(),
            args: args.iter().map(|s| s.to_string()).collect(),
            broker_url: broker.url(),
            prefix: prefix.to_string(),
            run_start: 0,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqttapp"));
        for var in CLEARED_ENV {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .arg("serve")
            .args(&self.args)
            .env("MQTTAPP_BROKER", &self.broker_url)
            .env("MQTTAPP_PREFIX", &self.prefix)
            .env("MQTTAPP_DATA_DIR", &self.data_dir)
            // One session per test prefix: servers of different tests (or
            // benchmark phases) on one broker must not resume each other's
            // sessions. A --server-id flag in `args` still wins.
            .env("MQTTAPP_SERVER_ID", server_id_for(&self.prefix))
            .env("NO_COLOR", "1")
            .current_dir(self.data_dir.parent().unwrap_or(Path::new("/")))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mqttapp serve");
        let stderr = child.stderr.take().expect("piped stderr");
        // Keep the earlier runs' log: restarts are what these tests are about.
        let log = Arc::new(Mutex::new(self.log()));
        self.run_start = log.lock().unwrap().len();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        self.log = log;
        self.child = Some(child);
        self.wait_for_log("serving", Duration::from_secs(15));
    }

    /// Waits until the current run's log contains `needle`; panics with the
    /// log otherwise.
    pub fn wait_for_log(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log()[self.run_start..].contains(needle) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "mqttapp serve exited ({status}) before logging {needle:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "mqttapp serve did not log {needle:?} within {within:?}:\n{}",
            self.log()
        );
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// kill -9: the server gets no chance to finish anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        self.child.as_ref()?;
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(20))
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`) without waiting.
    pub fn signal(&self, name: &str) {
        let pid = self.pid();
        assert!(pid != 0, "the server is not running");
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// Waits for the process to end by itself; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        panic!(
            "mqttapp serve did not exit within {within:?}:\n{}",
            self.log()
        );
    }

    /// Starts it again with the same settings and data directory (kill -9
    /// first if it still runs). The log keeps the earlier runs.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

/// A valid server id derived from a test prefix.
pub fn server_id_for(prefix: &str) -> String {
    mqttapp::config::server_id_from(prefix)
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
