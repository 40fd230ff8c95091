//! TLS against a real Mosquitto TLS listener, with certificates made at
//! test time: verified connections work, wrong CAs and host names fail
//! clearly with exit code 7, client certificates authenticate, and
//! --insecure works but says so loudly.

mod common;

use common::pki::Pki;
use common::{mqttapp, unique_prefix, Broker, Server};
use predicates::prelude::*;

/// A TLS broker serving `cert`, and a server connected to it with our CA
/// (and the client certificate when the broker requires one).
fn tls_setup(name: &str, cert: &str, client_cert: bool) -> (Pki, Broker, String, Server) {
    let pki = Pki::generate();
    let broker = Broker::start_with(&pki.listener(cert, client_cert));
    let prefix = unique_prefix(name);
    let mut args = vec![
        "--broker".to_string(),
        broker.tls_url(),
        "--ca-file".to_string(),
        pki.arg("ca.crt"),
    ];
    if cert != "server" {
        args.push("--insecure".into());
    }
    if client_cert {
        args.extend([
            "--cert-file".to_string(),
            pki.arg("client.crt"),
            "--key-file".to_string(),
            pki.arg("client.key"),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let data = broker.dir().join("data");
    let server = Server::start_with(&broker, &prefix, &data, &args);
    (pki, broker, prefix, server)
}

fn ask_tls(broker: &Broker, prefix: &str) -> assert_cmd::Command {
    let mut cmd = mqttapp(broker, prefix);
    cmd.env("MQTTAPP_BROKER", broker.tls_url());
    cmd
}

#[test]
fn calc_through_tls_with_the_ca_file_answers() {
    let (pki, broker, prefix, _server) = tls_setup("tls-ok", "server", false);
    ask_tls(&broker, &prefix)
        .args(["--ca-file", &pki.arg("ca.crt"), "ask", "calc", "2+3*4"])
        .assert()
        .success()
        .stdout("14\n")
        .stderr("");
    // The CA can also come from the environment, and localhost is a name
    // the certificate lists too.
    ask_tls(&broker, &prefix)
        .env("MQTTAPP_CA_FILE", pki.arg("ca.crt"))
        .env(
            "MQTTAPP_BROKER",
            format!("mqtts://localhost:{}", broker.port()),
        )
        .args(["ask", "echo", "über TLS"])
        .assert()
        .success()
        .stdout("über TLS\n");
}

#[test]
fn without_a_ca_file_the_system_trust_from_ssl_cert_file_is_used() {
    // OpenSSL is compiled in: the system's CA certificates are found as
    // other OpenSSL tools find them, SSL_CERT_FILE first.
    let (pki, broker, prefix, _server) = tls_setup("tls-system-ca", "server", false);
    ask_tls(&broker, &prefix)
        .env("SSL_CERT_FILE", pki.arg("ca.crt"))
        .args(["ask", "calc", "6*7"])
        .assert()
        .success()
        .stdout("42\n")
        .stderr("");
}

#[test]
fn a_wrong_ca_fails_with_exit_7_and_says_the_certificate_is_not_trusted() {
    let (pki, broker, prefix, _server) = tls_setup("tls-wrong-ca", "server", false);
    for ca in [Some("rogue-ca.crt"), None] {
        let mut cmd = ask_tls(&broker, &prefix);
        if let Some(ca) = ca {
            cmd.args(["--ca-file", &pki.arg(ca)]);
        }
        cmd.args(["ask", "calc", "1"])
            .assert()
            .code(7)
            .stdout("")
            .stderr(
                predicate::str::contains("TLS handshake with mqtts://127.0.0.1")
                    .and(predicate::str::contains("certificate is not trusted"))
                    .and(predicate::str::contains("--ca-file")),
            );
    }
}

#[test]
fn a_certificate_for_another_host_is_refused_unless_insecure() {
    let (pki, broker, prefix, _server) = tls_setup("tls-host", "elsewhere", false);
    ask_tls(&broker, &prefix)
        .args(["--ca-file", &pki.arg("ca.crt"), "ask", "calc", "1"])
        .assert()
        .code(7)
        .stderr(
            predicate::str::contains("IP address mismatch")
                .and(predicate::str::contains("not issued for \"127.0.0.1\"")),
        );
    // Self-signed/mismatched testing setup: --insecure connects, loudly.
    ask_tls(&broker, &prefix)
        .args(["--insecure", "ask", "calc", "6*7"])
        .assert()
        .success()
        .stdout("42\n")
        .stderr(
            predicate::str::contains("WARN").and(predicate::str::contains(
                "INSECURE: TLS certificate and host-name verification are OFF",
            )),
        );
}

#[test]
fn insecure_connects_to_a_self_signed_broker_and_says_so_loudly() {
    let (pki, broker, prefix, server) = tls_setup("tls-self", "selfsigned", false);
    assert!(server.log().contains("WARN INSECURE"), "{}", server.log());
    ask_tls(&broker, &prefix)
        .args(["--ca-file", &pki.arg("ca.crt"), "ask", "calc", "1"])
        .assert()
        .code(7)
        .stderr(predicate::str::contains("self-signed certificate"));
    ask_tls(&broker, &prefix)
        .args(["--insecure", "ask", "calc", "2+3*4"])
        .assert()
        .success()
        .stdout("14\n")
        .stderr(predicate::str::contains("INSECURE"));
}

#[test]
fn a_client_certificate_authenticates_when_the_broker_requires_one() {
    let (pki, broker, prefix, _server) = tls_setup("tls-client", "server", true);
    let ca = pki.arg("ca.crt");
    ask_tls(&broker, &prefix)
        .args(["--ca-file", &ca, "--cert-file", &pki.arg("client.crt")])
        .args(["--key-file", &pki.arg("client.key"), "ask", "calc", "2+3*4"])
        .assert()
        .success()
        .stdout("14\n");
    ask_tls(&broker, &prefix)
        .args(["--ca-file", &ca, "ask", "calc", "1"])
        .assert()
        .code(7)
        .stderr(predicate::str::contains(
            "may require a client certificate: give --cert-file and --key-file",
        ));
    ask_tls(&broker, &prefix)
        .args([
            "--ca-file",
            &ca,
            "--cert-file",
            &pki.arg("rogue-client.crt"),
        ])
        .args([
            "--key-file",
            &pki.arg("rogue-client.key"),
            "ask",
            "calc",
            "1",
        ])
        .assert()
        .code(7)
        .stderr(predicate::str::contains("refused the client certificate"));
    // A key that does not belong to the certificate is named as such.
    ask_tls(&broker, &prefix)
        .args(["--ca-file", &ca, "--cert-file", &pki.arg("client.crt")])
        .args(["--key-file", &pki.arg("server.key"), "ask", "calc", "1"])
        .assert()
        .code(7)
        .stderr(predicate::str::contains("key values mismatch"));
}

#[test]
fn missing_tls_files_and_plain_mqtt_to_a_tls_port_are_told_apart() {
    let (pki, broker, prefix, _server) = tls_setup("tls-misc", "server", false);
    ask_tls(&broker, &prefix)
        .args(["--ca-file", "/nonexistent/ca.crt", "ask", "calc", "1"])
        .assert()
        .code(7)
        .stderr(predicate::str::contains(
            "cannot use TLS file /nonexistent/ca.crt: no such file",
        ));
    mqttapp(&broker, &prefix)
        .args(["--ca-file", &pki.arg("ca.crt"), "ask", "calc", "1"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "if it is a TLS port, use mqtts://",
        ));
}
