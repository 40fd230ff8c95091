//! The declarations against the files that repeat them.

use super::*;

/// The keys `config/mqttapp.toml` documents (`# key = ...` lines and tables).
fn documented_keys() -> Vec<String> {
    let text = include_str!("../../../config/mqttapp.toml");
    let mut keys = Vec::new();
    for line in text.lines() {
        if let Some(table) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            keys.push(table.to_string());
            // Keys below a table belong to it (`[limits]`).
            break;
        }
        let Some(rest) = line.strip_prefix("# ") else {
            continue;
        };
        if let Some((key, _)) = rest.split_once(" = ") {
            if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                keys.push(key.to_string());
            }
        }
    }
    keys
}

/// The variables the integration tests clear (`tests/common/mod.rs`).
fn cleared_env() -> Vec<String> {
    let text = include_str!("../../../tests/common/mod.rs");
    let start = text.find("CLEARED_ENV: &[&str] = &[").expect("CLEARED_ENV");
    let list = &text[start..];
    let list = &list[..list.find("];").expect("end of CLEARED_ENV")];
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

#[test]
fn the_config_file_documents_exactly_the_declared_keys() {
    let mut documented = documented_keys();
    documented.sort();
    documented.dedup();
    let mut declared: Vec<String> = ALL
        .iter()
        .filter(|s| s.in_file)
        .map(|s| s.name.to_string())
        .collect();
    declared.sort();
    assert_eq!(documented, declared);
}

#[test]
fn the_config_file_names_the_flag_and_variable_of_each_key() {
    let text = include_str!("../../../config/mqttapp.toml");
    for setting in ALL.iter().filter(|s| s.in_file) {
        if let Some(var) = setting.env {
            assert!(
                text.contains(var),
                "config/mqttapp.toml does not name {var}"
            );
        }
        if let Some(flag) = setting.flag {
            let flag = format!("--{flag}");
            assert!(
                text.contains(&flag),
                "config/mqttapp.toml does not name {flag}"
            );
        }
    }
}

#[test]
fn the_tests_clear_every_declared_variable() {
    let cleared = cleared_env();
    for setting in ALL {
        for var in setting.env.iter().chain(setting.seed) {
            assert!(
                cleared.iter().any(|c| c == var),
                "{var} is not in CLEARED_ENV"
            );
        }
    }
    for var in cleared.iter().filter(|v| v.starts_with("MQTTAPP_")) {
        assert!(
            ALL.iter().any(|s| s.env == Some(var.as_str())),
            "{var} in CLEARED_ENV is declared nowhere"
        );
    }
}

#[test]
fn names_flags_and_variables_are_unique_and_spelled_alike() {
    for (i, a) in ALL.iter().enumerate() {
        for b in &ALL[i + 1..] {
            assert_ne!(a.name, b.name);
            assert!(a.env.is_none() || a.env != b.env, "{}", a.name);
        }
        if let Some(flag) = a.flag {
            assert_eq!(flag.replace('-', "_"), a.name);
        }
        if let Some(env) = a.env {
            assert_eq!(env, format!("MQTTAPP_{}", a.name.to_ascii_uppercase()));
        }
    }
}

#[test]
fn hints_name_every_source_of_a_setting() {
    assert_eq!(
        BROKER.fix_hint(),
        "fix --broker, MQTTAPP_BROKER (or the seed app's BROKER and PORT) or `broker` in the config file"
    );
    assert_eq!(
        TIMEOUT.fix_hint(),
        "fix --timeout, MQTTAPP_TIMEOUT or `timeout` in the config file"
    );
    assert_eq!(WAIT.fix_hint(), "fix --wait");
    assert_eq!(
        TIMEOUT.help_suffix(),
        "[env: MQTTAPP_TIMEOUT] [default: 5s]"
    );
}
