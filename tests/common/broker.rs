//! A Mosquitto broker on a free loopback port, with its own directory.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Mosquitto, killed when dropped.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    extra: String,
    logging: &'static str,
}

/// Tests: every packet logged (what a failing test needs to show), the
/// database saved every second (broker-restart tests).
const TEST_LOGGING: &str = "autosave_interval 1\nlog_type all\n";
/// As `config/mosquitto.conf` ships.
const SHIPPED_LOGGING: &str =
    "autosave_interval 30\nlog_type error\nlog_type warning\nlog_type notice\n";

/// The mosquitto executable: on PATH or in /usr/sbin (Debian).
pub fn mosquitto_path() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("mosquitto"))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    on_path
        .or_else(|| Some(PathBuf::from("/usr/sbin/mosquitto")).filter(|p| p.is_file()))
        .expect("mosquitto is not installed: run `make setup` (apt-get install mosquitto)")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local address").port()
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Broker {
    /// Starts a broker with the project's settings on a free port.
    pub fn start() -> Broker {
        Broker::start_with("listener {port} 127.0.0.1\nallow_anonymous true\n")
    }

    /// Starts a broker whose listener section is `listeners` (`{port}` and
    /// `{dir}` are replaced); the common settings are added.
    pub fn start_with(listeners: &str) -> Broker {
        Broker::start_logging(listeners, TEST_LOGGING)
    }

    /// Starts a broker that logs and saves like `config/mosquitto.conf`
    /// (benchmarks: logging every packet, as tests do, costs the broker
    /// more than routing it).
    #[allow(dead_code)]
    pub fn start_quiet() -> Broker {
        Broker::start_logging(
            "listener {port} 127.0.0.1\nallow_anonymous true\n",
            SHIPPED_LOGGING,
        )
    }

    fn start_logging(listeners: &str, logging: &'static str) -> Broker {
        let dir = tempfile::tempdir().expect("broker temp dir");
        let mut broker = Broker {
            child: None,
            port: free_port(),
            dir,
            extra: listeners.to_string(),
            logging,
        };
        broker.launch();
        broker
    }

    fn config(&self) -> String {
        let dir = self.dir.path().display();
        let listeners = self
            .extra
            .replace("{port}", &self.port.to_string())
            .replace("{dir}", &dir.to_string());
        format!(
            "{listeners}\nset_tcp_nodelay true\npersistence true\npersistence_location {dir}/\n\
             max_inflight_messages 1000\nmax_queued_messages 200000\n\
             max_queued_bytes 0\nuser {}\nlog_dest file {dir}/mosquitto.log\n{}",
            current_user(),
            self.logging,
        )
    }

    fn launch(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(&conf, self.config()).expect("write mosquitto.conf");
        let child = Command::new(mosquitto_path())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        self.wait_listening();
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    panic!("mosquitto exited ({status}): {err}\n{}", self.log());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "mosquitto did not listen on port {} within 10 s\n{}",
            self.port,
            self.log()
        );
    }

    /// `mqtt://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// `mqtts://127.0.0.1:<port>`, for a TLS listener.
    pub fn tls_url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.port)
    }

    /// A Mosquitto command-line tool (`mosquitto_rr`, `mosquitto_sub`,
    /// `mosquitto_pub`) pointed at this broker, speaking MQTT 5.
    pub fn mqtt5_tool(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        cmd.args(["-h", "127.0.0.1", "-p", &self.port().to_string(), "-V", "5"]);
        cmd
    }

    /// `mosquitto_rr` sending the calc `expr` to `<prefix>/v1/req/calc` and
    /// waiting up to `wait_secs` for the answer on `<prefix>/v1/resp/rr`.
    #[allow(dead_code)]
    pub fn mosquitto_rr_calc(&self, prefix: &str, expr: &str, wait_secs: u32) -> Command {
        let mut cmd = self.mqtt5_tool("mosquitto_rr");
        cmd.args(["-W", &wait_secs.to_string()]).args([
            "-t",
            &format!("{prefix}/v1/req/calc"),
            "-e",
            &format!("{prefix}/v1/resp/rr"),
            "-m",
            expr,
        ]);
        cmd
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's own directory (config, persistence, log); tests may put
    /// files here too.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The broker's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// kill -9: no goodbye, no final save beyond the last autosave.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same persistence.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Starts it again on the same port with its persistence deleted: every
    /// session, subscription and retained message is gone.
    pub fn restart_empty(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(self.dir.path().join("mosquitto.db"));
        self.launch();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}
