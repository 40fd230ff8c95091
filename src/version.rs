//! Version strings for `--version` and the server status.

/// This program's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Eclipse Paho C release bundled by `paho-mqtt-sys` 0.11 (see its
/// `paho.mqtt.c` submodule); the bundled build pins it.
pub const PAHO_C_VERSION: &str = "1.3.16";

/// `mqttapp --version`: ours, the wire protocol's, the MQTT library's and
/// the OpenSSL release compiled into the binary (its fixes arrive only with
/// a rebuild, so whoever deploys needs to see which one it is).
pub fn long() -> &'static str {
    static LONG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LONG.get_or_init(|| {
        format!(
            "{VERSION} (protocol v1, MQTT 5, Eclipse Paho C {PAHO_C_VERSION}, {})",
            openssl_release()
        )
    })
}

/// "OpenSSL 3.6.3" out of OpenSSL's own version text (which adds a date).
fn openssl_release() -> String {
    openssl::version::version()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}
