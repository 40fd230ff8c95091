//! Attacks on a server's identity on the broker: forged status messages,
//! another client using the server's MQTT client id, and a clean-start
//! connect with that id while the server is away. Real Mosquitto, real
//! `mqttapp serve`; every loop is bounded.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::server::server_id_for;
use common::{auth, mqttapp, unique_prefix, Broker, Server};
use mqttapp::protocol::Status;
use paho_mqtt as paho;

/// The MQTT client id a server with `prefix`'s test server id uses.
fn server_client_id(prefix: &str) -> String {
    format!("mqttapp-serve-{}", server_id_for(prefix))
}

/// A paho client connected as `id` with a clean start and the given
/// session expiry (0: the session ends with the connection).
fn connect_as(broker: &Broker, id: &str, session_expiry: u32) -> paho::AsyncClient {
    connect_with(broker, id, session_expiry, true, None)
}

/// [`connect_as`] with Clean Start and a user name and password.
fn connect_with(
    broker: &Broker,
    id: &str,
    session_expiry: u32,
    clean_start: bool,
    login: Option<(&str, &str)>,
) -> paho::AsyncClient {
    let uri = mqttapp::mqtt::BrokerUri::parse(&broker.url()).expect("broker url");
    let client = mqttapp::mqtt::create_client(&uri, id, false).expect("create paho client");
    let mut props = paho::Properties::new();
    props
        .push_u32(paho::PropertyCode::SessionExpiryInterval, session_expiry)
        .unwrap();
    let mut opts = paho::ConnectOptionsBuilder::new_v5();
    opts.clean_start(clean_start)
        .properties(props)
        .connect_timeout(Duration::from_secs(10));
    if let Some((user, password)) = login {
        opts.user_name(user).password(password);
    }
    let opts = opts.finalize();
    client
        .connect(opts)
        .wait_for(Duration::from_secs(15))
        .expect("intruder connects");
    client
}

/// Publishes an "online" status with a foreign instance on the server's
/// status topic, as any client allowed to write status topics could.
fn forge_online(broker: &Broker, prefix: &str, retained: bool) {
    let forger = connect_as(broker, &format!("{prefix}-forger"), 0);
    let status = Status {
        state: Status::ONLINE.into(),
        ops: vec!["calc".into()],
        version: "0.0.0".into(),
        since: 1,
        group: None,
        instance: Some("forged".into()),
        data_dir: None,
    };
    let msg = paho::MessageBuilder::new()
        .topic(format!("{prefix}/v1/status/{}", server_id_for(prefix)))
        .payload(status.encode())
        .qos(1)
        .retained(retained)
        .finalize();
    forger
        .publish(msg)
        .wait_for(Duration::from_secs(10))
        .expect("forged status published");
    let _ = forger.disconnect(None).wait_for(Duration::from_secs(5));
}

/// The retained status on the server's status topic, as a new subscriber
/// sees it.
fn retained_status(broker: &Broker, prefix: &str) -> Option<Status> {
    let reader = connect_as(broker, &format!("{prefix}-reader"), 0);
    let rx = reader.start_consuming();
    reader
        .subscribe(format!("{prefix}/v1/status/{}", server_id_for(prefix)), 1)
        .wait_for(Duration::from_secs(10))
        .expect("subscribe to the status topic");
    let msg = rx.recv_timeout(Duration::from_secs(5)).ok().flatten();
    let _ = reader.disconnect(None).wait_for(Duration::from_secs(5));
    msg.and_then(|m| Status::decode(m.payload()).ok())
}

/// `ask calc 2+3` answers 5.
fn answers(broker: &Broker, prefix: &str, server: &Server) {
    let out = mqttapp(broker, prefix)
        .args(["ask", "calc", "2+3"])
        .output()
        .expect("run ask");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "5\n",
        "ask failed: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
}

/// The `session_resumed=` value of the latest "serving" line.
fn last_session_resumed(server: &Server) -> String {
    let log = server.log();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains(" serving "))
        .unwrap_or_else(|| panic!("no serving line:\n{log}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("session_resumed="))
        .unwrap_or_else(|| panic!("no session_resumed in {line:?}"))
        .to_string()
}

#[test]
fn forged_online_statuses_do_not_stop_the_server() {
    let broker = Broker::start();
    let prefix = unique_prefix("forge");
    let server = Server::start(&broker, &prefix);
    // Let the server see its own "online" come back (it only then watches
    // for other instances).
    thread::sleep(Duration::from_millis(500));
    forge_online(&broker, &prefix, false);
    thread::sleep(Duration::from_millis(1500));
    answers(&broker, &prefix, &server);

    forge_online(&broker, &prefix, true);
    thread::sleep(Duration::from_millis(1500));
    answers(&broker, &prefix, &server);
    // The forged retained status was replaced by the server's own.
    let status = retained_status(&broker, &prefix).expect("a retained status");
    assert!(status.is_online(), "{status:?}");
    assert_ne!(
        status.instance.as_deref(),
        Some("forged"),
        "{}",
        server.log()
    );
    assert!(
        !server.log().contains("took over"),
        "the server stopped:\n{}",
        server.log()
    );
}

#[test]
fn a_client_using_the_server_client_id_is_reported_and_the_server_keeps_serving() {
    let broker = Broker::start();
    let prefix = unique_prefix("intrude");
    let mut server = Server::start(&broker, &prefix);
    let id = server_client_id(&prefix);
    // Six takeovers, 800 ms apart: each one closes the server's connection
    // soon after it reconnected.
    let mut intruders = Vec::new();
    for _ in 0..6 {
        intruders.push(connect_as(&broker, &id, 0));
        thread::sleep(Duration::from_millis(800));
    }
    server.wait_for_log(
        "client id in use by another client",
        Duration::from_secs(15),
    );
    drop(intruders);
    // The server takes its id back after its longest backoff (5 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    let back = |log: &str| {
        let conflict = log.rfind("client id in use").unwrap_or(0);
        log[conflict..].contains("reconnected")
    };
    while !back(&server.log()) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    answers(&broker, &prefix, &server);
}

#[test]
fn a_clean_start_with_the_server_id_while_it_is_down_is_not_a_resumed_session() {
    let broker = Broker::start();
    let prefix = unique_prefix("wipe");
    let mut server = Server::start(&broker, &prefix);
    // Control: a plain restart resumes the session.
    assert_eq!(server.terminate(), Some(0));
    server.restart();
    assert_eq!(last_session_resumed(&server), "true", "{}", server.log());

    // An intruder replaces the session with an empty one of its own and
    // leaves; the broker keeps that one (session expiry 300 s).
    assert_eq!(server.terminate(), Some(0));
    let intruder = connect_as(&broker, &server_client_id(&prefix), 300);
    intruder
        .disconnect(None)
        .wait_for(Duration::from_secs(5))
        .expect("intruder disconnects");
    server.restart();
    assert_eq!(last_session_resumed(&server), "false", "{}", server.log());

    // The same while the intruder is still connected.
    assert_eq!(server.terminate(), Some(0));
    let _intruder = connect_as(&broker, &server_client_id(&prefix), 300);
    server.restart();
    assert_eq!(last_session_resumed(&server), "false", "{}", server.log());
    answers(&broker, &prefix, &server);
}

#[test]
fn under_the_shipped_acl_a_client_with_the_server_id_reads_no_requests_and_forges_no_status() {
    let users = [("mqttapp-server", "server-pw"), ("alice", "alice-pw")];
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = unique_prefix("aclid");
    let passwd = auth::password_file(dir.path(), &users);
    let acl = auth::shipped_acl(dir.path(), &prefix);
    let broker = Broker::start_with(&auth::listener(&passwd, Some(&acl)));
    let pw = auth::secret_file(dir.path(), "server.pw", "server-pw");
    let pw = pw.display().to_string();
    let args = ["--username", "mqttapp-server", "--password-file", &pw];
    let mut server = Server::start_with(&broker, &prefix, &dir.path().join("data"), &args);
    assert_eq!(server.terminate(), Some(0));
    // alice resumes the stopped server's session, subscriptions and all.
    let alice = Some(("alice", "alice-pw"));
    let intruder = connect_with(&broker, &server_client_id(&prefix), 300, false, alice);
    let stolen = intruder.start_consuming();
    let sender = connect_with(&broker, &format!("{prefix}-sender"), 0, true, alice);
    for i in 0..5 {
        let msg = paho::MessageBuilder::new()
            .topic(format!("{prefix}/v1/req/calc"))
            .payload(format!("{i}+1"))
            .qos(1)
            .finalize();
        sender
            .publish(msg)
            .wait_for(Duration::from_secs(10))
            .expect("alice may send calc requests");
    }
    let forged = paho::MessageBuilder::new()
        .topic(format!("{prefix}/v1/status/{}", server_id_for(&prefix)))
        .payload(b"forged".to_vec())
        .qos(1)
        .retained(true)
        .finalize();
    assert!(
        sender
            .publish(forged)
            .wait_for(Duration::from_secs(10))
            .is_err(),
        "the ACL let a client publish a status"
    );
    let mut received = 0;
    while let Ok(Some(_)) = stolen.recv_timeout(Duration::from_secs(2)) {
        received += 1;
    }
    assert_eq!(
        received, 0,
        "the intruder read requests meant for the server"
    );
}
