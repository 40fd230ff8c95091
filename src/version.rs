//! Version strings for `--version` and the server status.

/// This program's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Eclipse Paho C release bundled by `paho-mqtt-sys` 0.11 (see its
/// `paho.mqtt.c` submodule); the bundled build pins it.
pub const PAHO_C_VERSION: &str = "1.3.16";

/// `mqttapp --version`: ours, the MQTT library's and the wire protocol's.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (protocol v1, MQTT 5, Eclipse Paho C 1.3.16)"
);
