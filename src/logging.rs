//! Log output on stderr, with one rule no filter setting can lift: the
//! paho crates never log below WARN.
//!
//! Why: paho-mqtt logs its whole `ConnectOptions` with `{:?}` at DEBUG
//! level when connecting, and that derived `Debug` prints the password as
//! a byte array (`password: Some([104, 117, ...])`). The `log` records of
//! paho reach us through tracing-subscriber's `log` bridge, so `-v`,
//! `-vv` or `RUST_LOG=debug` would otherwise write the broker password to
//! stderr. The same check also keeps paho C's own trace switched off: paho
//! turns it on only when its `paho_mqtt_c` target is enabled.

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Targets whose records may carry connection secrets: the transport's
/// (`mqtt::SECRET_BEARING_LOG_TARGET`).
const SECRET_BEARING_TARGET: &str = crate::mqtt::SECRET_BEARING_LOG_TARGET;

/// Starts logging to stderr (in colour when `colour`): `quiet` shows
/// errors only, `verbose` 0/1/2+ shows info/debug/trace; `RUST_LOG`
/// overrides both, except that paho's records below WARN are always
/// dropped (see the module docs).
pub fn init(verbose: u8, quiet: bool, colour: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "info",
        (_, 1) => "debug",
        _ => "trace",
    };
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour)
        // One filter, not two nested ones: with a second `with_filter`
        // every DEBUG event counted as enabled (the outer filter said
        // yes), so its fields were computed on each request and dropped
        // by the inner filter only afterwards (14% of a debug server's
        // CPU per calc request, in `shorten`).
        .with_filter(env.and(filter_fn(allowed)).and(NoPointers));
    // A second init (only possible in tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(layer).try_init();
    // Only paho logs through the `log` crate, and its records below WARN
    // are dropped anyway: stopping them at the macro spares paho's hot
    // paths (a record per acknowledged publish) the trip through the bridge.
    log::set_max_level(log::LevelFilter::Warn);
}

/// At most `max` characters of `text`, control characters (from hostile
/// requests) as spaces, and when cut an ellipsis and the full length: for
/// every client-supplied string that reaches a log line or a table, so a
/// 64 KiB topic costs a log line ~`max` characters, not 64 KiB.
pub fn shorten(text: &str, max: usize) -> String {
    let clean = |c: char| if c.is_control() { ' ' } else { c };
    if text.chars().nth(max).is_none() {
        return text.chars().map(clean).collect();
    }
    let mut cut: String = text
        .chars()
        .take(max.saturating_sub(1))
        .map(clean)
        .collect();
    cut.push('…');
    if max >= 40 {
        cut.push_str(&format!(" ({} bytes)", text.len()));
    }
    cut
}

/// Drops paho's "Connection lost. Client: 0x55e9..." warning: a memory
/// address means nothing to a user, and `serve` and `ask` say in their own
/// words that the connection was lost.
struct NoPointers;

impl<S> tracing_subscriber::layer::Filter<S> for NoPointers {
    fn enabled(&self, _: &Metadata<'_>, _: &tracing_subscriber::layer::Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        let mut message = MessageText(String::new());
        event.record(&mut message);
        !is_pointer_text(&message.0)
    }
}

/// Paho's connection-lost text with its client pointer.
fn is_pointer_text(message: &str) -> bool {
    message.contains("Connection lost. Client: 0x")
}

/// The `message` field of an event, as text.
struct MessageText(String);

impl tracing::field::Visit for MessageText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// False for records that may carry secrets: paho's, below WARN.
fn allowed(meta: &Metadata<'_>) -> bool {
    allowed_at(meta.target(), *meta.level())
}

fn allowed_at(target: &str, level: Level) -> bool {
    !(target.starts_with(SECRET_BEARING_TARGET) && level > Level::WARN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_cuts_long_strings_and_removes_control_characters() {
        assert_eq!(shorten("a\nb", 10), "a b");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abcd", 4), "abcd");
        let long = shorten(&"é".repeat(70_000), 120);
        assert!(long.ends_with("… (140000 bytes)"), "{long}");
        assert!(long.chars().count() < 140);
    }

    #[test]
    fn paho_records_below_warn_are_dropped_whatever_the_filter() {
        // The transport checks that its target is the paho crate's name.
        let t = SECRET_BEARING_TARGET;
        for target in [
            t.to_string(),
            format!("{t}::async_client"),
            format!("{t}_c"),
        ] {
            for level in [Level::TRACE, Level::DEBUG, Level::INFO] {
                assert!(!allowed_at(&target, level), "{target} {level}");
            }
            assert!(allowed_at(&target, Level::WARN), "{target}");
            assert!(allowed_at(&target, Level::ERROR), "{target}");
        }
        assert!(allowed_at("mqttapp::serve", Level::TRACE));
    }

    #[test]
    fn pahos_connection_lost_pointer_is_recognised() {
        assert!(is_pointer_text("Connection lost. Client: 0x55de5bee38d0"));
        assert!(!is_pointer_text("connection lost; reconnecting"));
    }
}
