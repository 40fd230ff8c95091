//! `mqttapp serve` run the way servers are run: under systemd's notify
//! protocol (READY, WATCHDOG, STATUS, STOPPING, received here on a Unix
//! datagram socket the test binds, as systemd would), from the Debian
//! package (`scripts/deb.sh --dev` packages the debug binary the tests
//! already built; `dpkg -i` into a throwaway root, never the system's
//! package database), with a unit file `systemd-analyze verify` accepts.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{auth, mqttapp_std, unique_prefix, wait_output, Broker};

const PASSWORD: &str = "svc-N0tify-Pa55!";

/// The notify socket's side: every datagram the server sent, in order.
struct Manager {
    socket: UnixDatagram,
    got: Vec<String>,
}

impl Manager {
    fn bind(path: &Path) -> Manager {
        let socket = UnixDatagram::bind(path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("set a read timeout");
        Manager {
            socket,
            got: Vec::new(),
        }
    }

    /// Receives until `done` holds for what came so far (bounded).
    fn until(&mut self, what: &str, within: Duration, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        while !done(&self.got) {
            assert!(
                Instant::now() < deadline,
                "no {what} within {within:?}; got {:?}",
                self.got
            );
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                self.got.extend(text.lines().map(str::to_string));
            }
        }
    }
}

fn count(lines: &[String], line: &str) -> usize {
    lines.iter().filter(|l| *l == line).count()
}

#[test]
fn serve_tells_systemd_ready_then_pings_the_watchdog_and_says_stopping_on_sigterm() {
    let secrets = tempfile::tempdir().expect("temp dir");
    let passwd = auth::password_file(secrets.path(), &[("svc", PASSWORD)]);
    let broker = Broker::start_with(&auth::listener(&passwd, None));
    let prefix = unique_prefix("notify");
    let socket_path = secrets.path().join("notify.sock");
    let mut manager = Manager::bind(&socket_path);
    let child = mqttapp_std(&broker, &prefix)
        .args(["serve", "--server-id", &prefix])
        .arg("--data-dir")
        .arg(broker.dir().join("data"))
        .env("MQTTAPP_USERNAME", "svc")
        .env("MQTTAPP_PASSWORD", PASSWORD)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mqttapp serve");

    manager.until("READY=1", Duration::from_secs(30), |got| {
        count(got, "READY=1") == 1
    });
    manager.until("two WATCHDOG=1", Duration::from_secs(20), |got| {
        count(got, "WATCHDOG=1") >= 2
    });
    let pid = i32::try_from(child.id()).expect("pid fits");
    // SAFETY: kill(2) on our own child's pid, which has not been reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "send SIGTERM");
    manager.until("STOPPING=1", Duration::from_secs(20), |got| {
        count(got, "STOPPING=1") == 1
    });
    let out = wait_output(child, Duration::from_secs(30));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "serve failed: {log}");

    let got = &manager.got;
    let at = |line: &str| got.iter().position(|l| l == line).expect("sent");
    assert!(
        at("READY=1") < at("WATCHDOG=1"),
        "a ping before READY: {got:?}"
    );
    assert_eq!(count(got, "READY=1"), 1, "READY=1 more than once: {got:?}");
    let statuses: Vec<&String> = got.iter().filter(|l| l.starts_with("STATUS=")).collect();
    let serving = format!(
        "STATUS=answering calc, echo, edit on {} as server {prefix}",
        broker.url()
    );
    assert!(statuses.contains(&&serving), "no {serving:?} in {got:?}");
    for line in got {
        assert!(
            !line.contains(PASSWORD),
            "the password reached systemd: {line}"
        );
    }
    assert!(!log.contains(PASSWORD), "the password is in the log");
}

/// The `target` directory and profile directory of the binary under test.
fn built_binary() -> (PathBuf, PathBuf) {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_mqttapp"));
    let profile_dir = bin.parent().expect("profile dir").to_path_buf();
    let target = profile_dir.parent().expect("target dir").to_path_buf();
    (target, profile_dir)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Packages the binary the tests use, the cheap way: the debug build,
/// stripped (`scripts/deb.sh --dev`), no release build.
fn build_package() -> PathBuf {
    let has_cargo_deb = Command::new("cargo-deb").arg("--version").output();
    assert!(
        has_cargo_deb.is_ok_and(|o| o.status.success()),
        "cargo-deb is not installed: run `make deb-tools` (`make test` does)"
    );
    let (target, profile_dir) = built_binary();
    let mut script = Command::new(common::auth::repo_file("scripts/deb.sh"));
    if profile_dir.ends_with("debug") {
        script.arg("--dev");
    }
    let out = run(script.env("CARGO_TARGET_DIR", &target));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let deb = stdout.lines().last().expect("cargo deb prints the package");
    PathBuf::from(deb.trim())
}

/// An empty root dpkg can install into and run maintainer scripts in
/// (chrooted): an admin directory, /bin/sh with its libraries, /dev/null.
fn throwaway_root(root: &Path) {
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "bin", "dev"] {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").expect("status file");
    // A plain file: the scripts only write to it.
    std::fs::write(root.join("dev/null"), "").expect("dev/null");
    let ldd = run(Command::new("ldd").arg("/bin/sh"));
    let libs = String::from_utf8_lossy(&ldd.stdout);
    let files = libs
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from);
    for file in files.chain([PathBuf::from("/bin/sh")]) {
        let to = root.join(file.strip_prefix("/").expect("absolute"));
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&file, &to).expect("copy /bin/sh and its libraries");
    }
}

#[test]
fn the_debian_package_holds_the_service_and_installs_into_a_throwaway_root() {
    let deb = build_package();
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    let contents = String::from_utf8_lossy(&contents.stdout);
    for file in [
        "./usr/bin/mqttapp",
        "./usr/share/man/man1/mqttapp.1",
        "./usr/share/man/man1/mqttapp-serve.1",
        "./usr/share/bash-completion/completions/mqttapp",
        "./usr/share/zsh/vendor-completions/_mqttapp",
        "./usr/share/fish/vendor_completions.d/mqttapp.fish",
        "./usr/lib/systemd/system/mqttapp.service",
        "./etc/mqttapp/mqttapp.toml",
        "./usr/share/doc/mqttapp/README.md",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(&format!(" {file}"))),
            "{file} is not in the package:\n{contents}"
        );
    }
    let conffiles = run(Command::new("dpkg-deb")
        .args(["--info"])
        .arg(&deb)
        .arg("conffiles"));
    assert_eq!(
        String::from_utf8_lossy(&conffiles.stdout).trim(),
        "/etc/mqttapp/mqttapp.toml"
    );

    // dpkg chroots into the root to run the maintainer scripts: root only.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping dpkg -i: it chroots into the throwaway root, which needs root (CI runs as root)");
        return;
    }
    let root = tempfile::tempdir().expect("temp dir");
    throwaway_root(root.path());
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.path().display()))
        .arg(format!("--log={}", root.path().join("dpkg.log").display()))
        // The root has no libc6 package, only the files the scripts need.
        .args(["--force-not-root", "--force-depends", "--install"])
        .arg(&deb));
    let status = run(Command::new("dpkg")
        .arg(format!("--root={}", root.path().display()))
        .args(["--status", "mqttapp"]));
    assert!(String::from_utf8_lossy(&status.stdout).contains("Status: install ok installed"));
    let version = run(Command::new(root.path().join("usr/bin/mqttapp")).arg("--version"));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("mqttapp 0.1"));
    let installed = |rel: &str| std::fs::read(root.path().join(rel)).expect("installed file");
    let shipped = |rel: &str| std::fs::read(common::auth::repo_file(rel)).expect("repo file");
    assert_eq!(
        installed("etc/mqttapp/mqttapp.toml"),
        shipped("config/mqttapp.toml")
    );
    assert_eq!(
        installed("usr/lib/systemd/system/mqttapp.service"),
        shipped("config/mqttapp.service")
    );
}

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: systemd-analyze is not installed (package systemd)");
        return;
    }
    // The unit as shipped, but starting the binary under test: verify
    // checks that ExecStart is executable. Its man page is checked in the
    // package test (Documentation=man:mqttapp-serve(1)).
    let unit = std::fs::read_to_string(common::auth::repo_file("config/mqttapp.service"))
        .expect("config/mqttapp.service");
    assert!(unit.contains("ExecStart=/usr/bin/mqttapp serve\n"));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mqttapp.service");
    let bin = env!("CARGO_BIN_EXE_mqttapp");
    std::fs::write(&path, unit.replace("/usr/bin/mqttapp", bin)).expect("write the unit");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{said}"
    );
    // Unknown or misspelt keys are only warnings, naming the file.
    let about_ours: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("mqttapp.service"))
        .collect();
    assert!(
        about_ours.is_empty(),
        "systemd-analyze verify: {about_ours:?}"
    );
}
