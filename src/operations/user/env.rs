//! The environment a user-defined operation's program runs with: nothing
//! of the server's own (its variables may hold a broker password), only a
//! fixed minimum and what describes the request.

/// The fixed search path for a program named without a `/`.
pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// A UTF-8 locale that exists without locale packages.
pub const LANG: &str = "C.UTF-8";
/// Most of a client's user properties passed on; the rest are skipped.
pub const MAX_PROPS: usize = 16;
/// Longest user-property name passed on (before the `MQTTAPP_PROP_` prefix).
pub const MAX_PROP_KEY: usize = 64;
/// Longest user-property value passed on.
pub const MAX_PROP_VALUE: usize = 1024;
/// Longest correlation data passed on (as hex, twice as many characters);
/// longer correlation data leaves `MQTTAPP_CORRELATION` unset.
pub const MAX_CORRELATION: usize = 1024;

/// What describes one request to its program.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The operation's name.
    pub op: &'a str,
    /// The request's correlation data, if any.
    pub correlation: Option<&'a [u8]>,
    /// The answering server's id.
    pub server_id: &'a str,
    /// The client's MQTT 5 user properties, in order.
    pub user: &'a [(String, String)],
}

/// The whole environment of a run: `PATH`, `LANG`, `MQTTAPP_OP`,
/// `MQTTAPP_CORRELATION` (hex), `MQTTAPP_SERVER_ID`, and each user property
/// as `MQTTAPP_PROP_<KEY>` ([`prop_var`]), bounded by [`MAX_PROPS`],
/// [`MAX_PROP_KEY`] and [`MAX_PROP_VALUE`]; a property that does not fit,
/// holds a NUL, or whose variable name is already taken is skipped.
pub fn build(info: &RequestInfo<'_>) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_string(), PATH.to_string()),
        ("LANG".to_string(), LANG.to_string()),
        ("MQTTAPP_OP".to_string(), info.op.to_string()),
        ("MQTTAPP_SERVER_ID".to_string(), info.server_id.to_string()),
    ];
    if let Some(c) = info.correlation.filter(|c| c.len() <= MAX_CORRELATION) {
        env.push(("MQTTAPP_CORRELATION".to_string(), hex::encode(c)));
    }
    let mut taken = 0;
    for (key, value) in info.user {
        if taken == MAX_PROPS {
            break;
        }
        if key.len() > MAX_PROP_KEY || value.len() > MAX_PROP_VALUE || value.contains('\0') {
            continue;
        }
        let Some(var) = prop_var(key) else { continue };
        if env.iter().any(|(k, _)| *k == var) {
            continue;
        }
        env.push((var, value.clone()));
        taken += 1;
    }
    env
}

/// `MQTTAPP_PROP_<KEY>`: the key upper-cased, every character outside
/// `[A-Z0-9_]` replaced by `_`; `None` for an empty key.
pub fn prop_var(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let name: String = key
        .chars()
        .map(|c| match c.to_ascii_uppercase() {
            u @ ('A'..='Z' | '0'..='9' | '_') => u,
            _ => '_',
        })
        .collect();
    Some(format!("MQTTAPP_PROP_{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_environment_is_the_fixed_minimum_and_the_request() {
        let user = props(&[("trace-id", "abc"), ("x.y z", "1")]);
        let env = build(&RequestInfo {
            op: "upper",
            correlation: Some(&[0xde, 0xad]),
            server_id: "s1",
            user: &user,
        });
        assert_eq!(get(&env, "PATH"), Some(PATH));
        assert_eq!(get(&env, "LANG"), Some("C.UTF-8"));
        assert_eq!(get(&env, "MQTTAPP_OP"), Some("upper"));
        assert_eq!(get(&env, "MQTTAPP_CORRELATION"), Some("dead"));
        assert_eq!(get(&env, "MQTTAPP_SERVER_ID"), Some("s1"));
        assert_eq!(get(&env, "MQTTAPP_PROP_TRACE_ID"), Some("abc"));
        assert_eq!(get(&env, "MQTTAPP_PROP_X_Y_Z"), Some("1"));
        assert_eq!(env.len(), 7, "nothing else: {env:?}");
    }

    #[test]
    fn user_properties_are_bounded_in_count_and_size() {
        let mut user: Vec<(String, String)> =
            (0..40).map(|i| (format!("k{i}"), "v".into())).collect();
        user.insert(0, ("big".into(), "x".repeat(MAX_PROP_VALUE + 1)));
        user.insert(0, ("k".repeat(MAX_PROP_KEY + 1), "v".into()));
        user.insert(0, ("nul".into(), "a\0b".into()));
        user.insert(0, ("".into(), "empty key".into()));
        user.insert(0, ("K0".into(), "first wins".into()));
        let env = build(&RequestInfo {
            op: "o",
            correlation: Some(&[1; MAX_CORRELATION + 1]),
            server_id: "s",
            user: &user,
        });
        let passed: Vec<_> = env
            .iter()
            .filter(|(k, _)| k.starts_with("MQTTAPP_PROP_"))
            .collect();
        assert_eq!(passed.len(), MAX_PROPS);
        assert_eq!(get(&env, "MQTTAPP_PROP_K0"), Some("first wins"));
        assert_eq!(get(&env, "MQTTAPP_PROP_BIG"), None);
        assert_eq!(get(&env, "MQTTAPP_PROP_NUL"), None);
        assert_eq!(
            get(&env, "MQTTAPP_CORRELATION"),
            None,
            "too long to pass on"
        );
    }

    #[test]
    fn property_names_become_safe_variable_names() {
        assert_eq!(prop_var("a-b.c").as_deref(), Some("MQTTAPP_PROP_A_B_C"));
        assert_eq!(prop_var("é=x").as_deref(), Some("MQTTAPP_PROP___X"));
        assert_eq!(prop_var(""), None);
    }
}
