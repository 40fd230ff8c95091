use std::collections::HashMap;

use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

/// A config file from TOML text.
fn toml(text: &str) -> FileSettings {
    FileSettings::parse(Path::new("test.toml"), text).unwrap()
}

fn try_resolve(
    flags: Settings,
    env: &[(&str, &str)],
    file: FileSettings,
) -> Result<Config, ConfigError> {
    Config::from_sources(None, flags, &env_of(env), &file)
}

fn resolve(flags: Settings, env: &[(&str, &str)], file: FileSettings) -> Config {
    try_resolve(flags, env, file).unwrap()
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let c = resolve(Settings::default(), &[], FileSettings::default());
    assert_eq!(c.connection.broker, DEFAULT_BROKER);
    assert_eq!(c.prefix, "mqttapp");
    assert_eq!(c.timeout, DEFAULT_TIMEOUT);
    assert!(c.connection.username.is_none());
}

#[test]
fn flags_beat_environment_beats_file() {
    let file = toml("broker = \"mqtt://file:1\"\nprefix = \"fp\"\ntimeout = 9\n");
    let env = [("MQTTAPP_BROKER", "mqtt://env:2"), ("MQTTAPP_PREFIX", "ep")];
    let flags = Settings {
        broker: Some("mqtt://flag:3".into()),
        ..Default::default()
    };
    let c = resolve(flags, &env, file);
    assert_eq!(c.connection.broker, "mqtt://flag:3");
    assert_eq!(c.prefix, "ep");
    assert_eq!(c.timeout, Duration::from_secs(9));
}

#[test]
fn seed_broker_and_port_are_a_fallback() {
    let c = resolve(
        Settings::default(),
        &[("BROKER", "test.mosquitto.org"), ("PORT", "1884")],
        FileSettings::default(),
    );
    assert_eq!(c.connection.broker, "mqtt://test.mosquitto.org:1884");
    let c = resolve(
        Settings::default(),
        &[("BROKER", "b"), ("MQTTAPP_BROKER", "mqtt://m:1")],
        FileSettings::default(),
    );
    assert_eq!(c.connection.broker, "mqtt://m:1");
}

#[test]
fn seed_username_counts_only_with_its_password() {
    let c = resolve(
        Settings::default(),
        &[("USERNAME", "desktop-user")],
        FileSettings::default(),
    );
    assert!(c.connection.username.is_none());
    let c = resolve(
        Settings::default(),
        &[("USERNAME", "u"), ("PASSWORD", "p")],
        FileSettings::default(),
    );
    assert_eq!(c.connection.username.as_deref(), Some("u"));
    assert_eq!(
        c.connection.password.as_ref().map(Secret::expose),
        Some("p")
    );
}

#[test]
fn passwords_never_show_in_debug_output() {
    let c = resolve(
        Settings::default(),
        &[("MQTTAPP_USERNAME", "u"), ("MQTTAPP_PASSWORD", "hunter2")],
        FileSettings::default(),
    );
    let printed = format!("{c:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("***"));
}

#[test]
fn durations_accept_seconds_and_units() {
    let d = |s| parse_duration("timeout", Some(s), DEFAULT_TIMEOUT);
    assert_eq!(d("2").unwrap(), Duration::from_secs(2));
    assert_eq!(d("0.25").unwrap(), Duration::from_millis(250));
    assert_eq!(d("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(d("1m").unwrap(), Duration::from_secs(60));
    for bad in ["0", "-1", "soon", "", "NaN"] {
        assert!(d(bad).is_err(), "{bad}");
    }
}

#[test]
fn bad_prefixes_and_ids_are_refused() {
    for prefix in ["", "a/#", "+", "$SYS", "/a", "a/"] {
        let s = Settings {
            prefix: Some(prefix.into()),
            ..Default::default()
        };
        assert!(Config::from_settings(s).is_err(), "{prefix}");
    }
    for id in ["", "a/b", "#", "a+b", &"x".repeat(65)] {
        let s = Settings {
            server_id: Some(id.to_string()),
            ..Default::default()
        };
        assert!(Config::from_settings(s).is_err(), "{id}");
    }
}

#[test]
fn config_file_rejects_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "brokr = \"x\"\n").unwrap();
    let err = FileSettings::read(&path).unwrap_err().to_string();
    assert!(err.contains("brokr"), "{err}");
    std::fs::write(&path, "broker = \"mqtt://h:1\"\n[limits]\nmax_lines = 5\n").unwrap();
    let file = FileSettings::read(&path).unwrap();
    assert_eq!(
        resolve(Settings::default(), &[], file)
            .limits
            .edit
            .max_lines,
        5
    );
    std::fs::write(&path, "[limits]\nmax_line = 5\n").unwrap();
    assert!(FileSettings::read(&path).is_err());
}

#[test]
fn the_shipped_config_file_parses_and_keeps_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_FILE);
    let c = resolve(Settings::default(), &[], FileSettings::read(&path).unwrap());
    assert_eq!(c.connection.broker, DEFAULT_BROKER);
    assert_eq!(c.limits, Limits::default());
}

#[test]
fn the_highest_layer_naming_a_password_or_password_file_wins() {
    let dir = tempfile::tempdir().unwrap();
    let flag_file = dir.path().join("flag-pw");
    let conf_file = dir.path().join("conf-pw");
    std::fs::write(&flag_file, "from-flag-file\n").unwrap();
    std::fs::write(&conf_file, "from-config-file\n").unwrap();
    let file = toml(&format!(
        "password = \"from-config\"\npassword_file = {:?}\n",
        conf_file.display().to_string()
    ));
    let flags = Settings {
        password_file: Some(flag_file),
        ..Default::default()
    };
    let env = [("MQTTAPP_PASSWORD", "from-env")];
    let pw = |c: Config| c.connection.password.map(|p| p.expose().to_string());
    assert_eq!(
        pw(resolve(flags, &env, file.clone())).as_deref(),
        Some("from-flag-file")
    );
    assert_eq!(
        pw(resolve(Settings::default(), &env, file.clone())).as_deref(),
        Some("from-env")
    );
    // Within one layer, a password beats a password file.
    assert_eq!(
        pw(resolve(Settings::default(), &[], file)).as_deref(),
        Some("from-config")
    );
    let only_file = toml(&format!(
        "password_file = {:?}\n",
        conf_file.display().to_string()
    ));
    assert_eq!(
        pw(resolve(Settings::default(), &[], only_file)).as_deref(),
        Some("from-config-file")
    );
}

#[test]
fn session_expiry_comes_from_flag_env_or_file() {
    let c = resolve(Settings::default(), &[], FileSettings::default());
    assert_eq!(c.session_expiry, DEFAULT_SESSION_EXPIRY);
    let file = toml("session_expiry = \"1h\"");
    let c = resolve(Settings::default(), &[], file.clone());
    assert_eq!(c.session_expiry, Duration::from_secs(3600));
    let env = [("MQTTAPP_SESSION_EXPIRY", "90")];
    let c = resolve(Settings::default(), &env, file.clone());
    assert_eq!(c.session_expiry, Duration::from_secs(90));
    let flags = Settings {
        session_expiry: Some(Duration::from_secs(1800)),
        ..Default::default()
    };
    let c = resolve(flags, &env, file);
    assert_eq!(c.session_expiry, Duration::from_secs(1800));
    let bad = [("MQTTAPP_SESSION_EXPIRY", "0")];
    assert!(try_resolve(Settings::default(), &bad, FileSettings::default()).is_err());
}

#[test]
fn reply_topics_come_from_flag_env_or_file_and_are_checked() {
    let c = resolve(Settings::default(), &[], FileSettings::default());
    assert!(c.reply_topics.is_empty());
    let file = toml(r#"reply_topics = ["home/+/cmd", "a/#"]"#);
    let c = resolve(Settings::default(), &[], file.clone());
    assert_eq!(c.reply_topics, ["home/+/cmd", "a/#"]);
    let env = [("MQTTAPP_REPLY_TOPICS", "x/+, y/#")];
    let c = resolve(Settings::default(), &env, file.clone());
    assert_eq!(c.reply_topics, ["x/+", "y/#"]);
    let flags = Settings {
        reply_topics: Some(vec!["f".into()]),
        ..Default::default()
    };
    assert_eq!(resolve(flags, &env, file).reply_topics, ["f"]);
    let bad = Settings {
        reply_topics: Some(vec!["a/#/b".into()]),
        ..Default::default()
    };
    let e = Config::from_settings(bad).unwrap_err().to_string();
    assert!(e.contains("--reply-topics, MQTTAPP_REPLY_TOPICS"), "{e}");
}

#[test]
fn max_queue_bytes_comes_from_flag_env_or_file_in_bytes_or_binary_units() {
    let c = resolve(Settings::default(), &[], FileSettings::default());
    assert_eq!(
        c.limits.max_queue_bytes,
        crate::limits::DEFAULT_MAX_QUEUE_BYTES
    );
    let file = toml("max_queue_bytes = 2097152");
    let c = resolve(Settings::default(), &[], file.clone());
    assert_eq!(c.limits.max_queue_bytes, 2 << 20);
    let env = [("MQTTAPP_MAX_QUEUE_BYTES", "64MiB")];
    let c = resolve(Settings::default(), &env, file.clone());
    assert_eq!(c.limits.max_queue_bytes, 64 << 20);
    let flags = Settings {
        max_queue_bytes: Some(parse::queue_bytes("3 mib").unwrap()),
        ..Default::default()
    };
    assert_eq!(resolve(flags, &env, file).limits.max_queue_bytes, 3 << 20);
    for bad in [" ", "12x", "1KiB", "-5", "99999999999999999999GiB"] {
        let env = [("MQTTAPP_MAX_QUEUE_BYTES", bad)];
        let e = try_resolve(Settings::default(), &env, FileSettings::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--max-queue-bytes, MQTTAPP_MAX_QUEUE_BYTES"),
            "{e}"
        );
    }
}

#[test]
fn each_command_reads_only_its_own_settings() {
    let env = env_of(&[
        ("MQTTAPP_SERVER_ID", "bad/id"),
        ("MQTTAPP_SESSION_EXPIRY", "soon"),
    ]);
    let file = FileSettings::default();
    let ask = Config::from_sources(Some(Cmd::Ask), Settings::default(), &env, &file).unwrap();
    assert_eq!(ask.server_id, "", "ask resolves no server id");
    let serve = Config::from_sources(Some(Cmd::Serve), Settings::default(), &env, &file);
    assert!(serve.unwrap_err().to_string().contains("server_id"));
    let env = env_of(&[("MQTTAPP_TIMEOUT", "soon")]);
    assert!(Config::from_sources(Some(Cmd::Serve), Settings::default(), &env, &file).is_ok());
    assert!(Config::from_sources(Some(Cmd::Ask), Settings::default(), &env, &file).is_err());
}

#[test]
fn a_bad_value_below_a_good_one_is_not_read() {
    let env = [("MQTTAPP_TIMEOUT", "soon")];
    let flags = Settings {
        timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    assert_eq!(
        resolve(flags, &env, toml("timeout = \"x\"")).timeout,
        Duration::from_secs(2)
    );
}

#[test]
fn a_group_member_defaults_to_a_short_session_expiry_unless_one_is_set() {
    let member = |expiry: Option<&str>| {
        Config::from_settings(Settings {
            group: Some("workers".into()),
            session_expiry: expiry.map(|e| humantime::parse_duration(e).unwrap()),
            ..Default::default()
        })
        .unwrap()
        .session_expiry
    };
    assert_eq!(member(None), DEFAULT_GROUP_SESSION_EXPIRY);
    assert_eq!(member(Some("1h")), Duration::from_secs(3600));
    let lone = Config::from_settings(Settings::default()).unwrap();
    assert_eq!(lone.session_expiry, DEFAULT_SESSION_EXPIRY);
}
