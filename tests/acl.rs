//! Authorization: Mosquitto applies the shipped ACL (config/acl.example)
//! and mqttapp reports a refusal at once (exit 4) instead of timing out;
//! config/mosquitto-secure.conf works as shipped (TLS + passwords + ACL).

mod common;

use std::path::Path;

use common::pki::Pki;
use common::{auth, mqttapp, unique_prefix, Broker, Server};
use paho_mqtt as paho;
use predicates::prelude::*;

const USERS: &[(&str, &str)] = &[
    ("mqttapp-server", "server-pw"),
    ("alice", "alice-pw"),
    ("guest", "guest-pw"),
    ("mallory", "mallory-pw"),
];

fn password(user: &str) -> &'static str {
    USERS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, p)| *p)
        .expect("a known user")
}

/// A broker with the shipped ACL and a server logged in as mqttapp-server.
fn setup(name: &str) -> (tempfile::TempDir, Broker, String, Server) {
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = unique_prefix(name);
    let passwd = auth::password_file(dir.path(), USERS);
    let acl = auth::shipped_acl(dir.path(), &prefix);
    let broker = Broker::start_with(&auth::listener(&passwd, Some(&acl)));
    let server = start_server(&broker, &prefix, dir.path(), "mqttapp-server", &[]);
    (dir, broker, prefix, server)
}

fn start_server(broker: &Broker, prefix: &str, dir: &Path, user: &str, extra: &[&str]) -> Server {
    let pw = auth::secret_file(dir, &format!("{user}.pw"), password(user));
    let pw = pw.display().to_string();
    let mut args = vec!["--username", user, "--password-file", &pw];
    args.extend_from_slice(extra);
    Server::start_with(broker, prefix, &dir.join(format!("data-{user}")), &args)
}

fn ask_as(broker: &Broker, prefix: &str, user: &str) -> assert_cmd::Command {
    let mut cmd = mqttapp(broker, prefix);
    cmd.env("MQTTAPP_USERNAME", user)
        .env("MQTTAPP_PASSWORD", password(user));
    cmd
}

#[test]
fn a_user_allowed_an_operation_gets_answers() {
    let (_dir, broker, prefix, _server) = setup("acl-ok");
    ask_as(&broker, &prefix, "alice")
        .args(["ask", "edit", "--append", "hello"])
        .assert()
        .success()
        .stdout("notes.txt: rev 1, 1 line\n");
    ask_as(&broker, &prefix, "guest")
        .args(["ask", "calc", "2+3*4"])
        .assert()
        .success()
        .stdout("14\n");
}

#[test]
fn a_client_without_permission_to_an_operation_is_refused_not_timed_out() {
    let (_dir, broker, prefix, server) = setup("acl-refused");
    // A generous timeout: exit 4 (not 5) shows the refusal was reported
    // as soon as the broker's PUBACK said "Not authorized".
    ask_as(&broker, &prefix, "guest")
        .args(["ask", "--timeout", "60", "edit", "--append", "x"])
        .assert()
        .code(4)
        .stdout("")
        .stderr(
            predicate::str::contains(format!("the broker refused access to {prefix}/v1/req/edit"))
                .and(predicate::str::contains("Not authorized")),
        );
    assert_eq!(
        std::fs::read_to_string(server.data_dir().join("notes.txt")).unwrap(),
        "",
        "the refused edit never reached the server"
    );
}

#[test]
fn a_batch_line_the_acl_refuses_fails_at_once_and_the_others_are_answered() {
    let (_dir, broker, prefix, server) = setup("acl-batch");
    // A 60 s timeout: the refused line must not wait it out.
    ask_as(&broker, &prefix, "guest")
        .args(["ask", "--timeout", "60", "--batch"])
        .write_stdin("calc 1+1\nedit --append x\necho hi\n")
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(1)
        .stdout(
            predicate::str::starts_with("2\nerror: auth: the broker refused access to ")
                .and(predicate::str::ends_with("\nhi\n")),
        );
    let notes = std::fs::read_to_string(server.data_dir().join("notes.txt")).unwrap_or_default();
    assert_eq!(notes, "", "the refused edit never reached the server");
}

#[test]
fn a_user_the_acl_does_not_know_cannot_even_listen_for_servers() {
    let (_dir, broker, prefix, _server) = setup("acl-unknown");
    // mallory may read replies and statuses (pattern lines) but publish nothing.
    ask_as(&broker, &prefix, "mallory")
        .args(["ask", "--timeout", "60", "calc", "1"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains(format!(
            "refused access to {prefix}/v1/req/calc"
        )));
}

#[test]
fn a_server_logged_in_as_a_client_user_cannot_serve() {
    let (dir, broker, prefix, _server) = setup("acl-server");
    let pw = auth::secret_file(dir.path(), "guest.pw", password("guest"));
    mqttapp(&broker, &prefix)
        .args([
            "--username",
            "guest",
            "--password-file",
            &pw.display().to_string(),
        ])
        .args(["serve", "--server-id", "intruder"])
        .args(["--data-dir", &dir.path().join("d").display().to_string()])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(4)
        .stderr(predicate::str::contains(format!(
            "the broker refused access to {prefix}/v1/status/"
        )));
}

#[test]
fn a_client_cannot_read_another_clients_replies() {
    let (_dir, broker, prefix, _server) = setup("acl-spy");
    let client = paho::CreateOptionsBuilder::new()
        .server_uri(format!("tcp://127.0.0.1:{}", broker.port()))
        .client_id("spy")
        .persistence(paho::PersistenceType::None)
        .mqtt_version(paho::MQTT_VERSION_5)
        .create_client()
        .expect("create client");
    let rx = client.start_consuming();
    let opts = paho::ConnectOptionsBuilder::new_v5()
        .user_name("alice")
        .password(password("alice"))
        .finalize();
    client.connect(opts).wait().expect("alice connects");
    // Mosquitto 2.0 grants the subscription but checks "read" on every
    // message it would deliver: nothing of another client's arrives.
    let spying = [format!("{prefix}/v1/resp/#"), format!("{prefix}/v1/req/+")];
    for filter in &spying {
        let _ = client.subscribe(filter, 1).wait();
    }
    ask_as(&broker, &prefix, "guest")
        .args(["ask", "calc", "2+3*4"])
        .assert()
        .success()
        .stdout("14\n");
    let leaked = rx.recv_timeout(std::time::Duration::from_secs(1));
    assert!(
        !matches!(leaked, Ok(Some(_))),
        "the spy received {:?}",
        leaked.ok().flatten().map(|m| m.topic().to_string())
    );
}

#[test]
fn the_shipped_secure_mosquitto_config_works_with_tls_passwords_and_the_acl() {
    let pki = Pki::generate();
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = unique_prefix("secure-conf");
    // The files config/mosquitto-secure.conf expects in /etc/mosquitto/mqttapp/.
    for name in ["ca.crt", "server.crt", "server.key"] {
        std::fs::copy(pki.path(name), dir.path().join(name)).expect("copy pki file");
    }
    auth::password_file(dir.path(), USERS);
    auth::shipped_acl(dir.path(), &prefix);
    let shipped = std::fs::read_to_string(auth::repo_file("config/mosquitto-secure.conf"))
        .expect("config/mosquitto-secure.conf");
    let conf = shipped
        .replace(
            "/etc/mosquitto/mqttapp/",
            &format!("{}/", dir.path().display()),
        )
        .replace("\nlistener 8883\n", "\nlistener {port} 127.0.0.1\n");
    assert!(conf.contains("listener {port} 127.0.0.1"), "{conf}");
    let broker = Broker::start_with(&conf);
    let ca = pki.arg("ca.crt");
    let tls = ["--broker", &broker.tls_url(), "--ca-file", &ca];
    let _server = start_server(&broker, &prefix, dir.path(), "mqttapp-server", &tls);
    ask_as(&broker, &prefix, "alice")
        .args(tls)
        .args(["ask", "calc", "2+3*4"])
        .assert()
        .success()
        .stdout("14\n");
    ask_as(&broker, &prefix, "guest")
        .args(tls)
        .args(["ask", "edit", "--append", "x"])
        .assert()
        .code(4);
    ask_as(&broker, &prefix, "alice")
        .env("MQTTAPP_PASSWORD", "wrong")
        .args(tls)
        .args(["ask", "calc", "1"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("authentication refused"));
    // No plain-text access at all.
    mqttapp(&broker, &prefix)
        .args(["ask", "calc", "1"])
        .assert()
        .code(3);
}
