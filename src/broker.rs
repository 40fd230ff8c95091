//! What the broker offers, and whether it is enough for our promises.
//!
//! MQTT 5 brokers say in their CONNACK what they do not support (shared
//! subscriptions, retained messages, QoS 1, long sessions, big packets).
//! A server that ignores it can look healthy while it serves nothing (a
//! group on a broker without `$share/` reconnects forever). This module
//! reads those properties once per connection and turns them into
//! findings; `serve` refuses to start on a fatal one, `doctor` prints them.

pub mod connack;
pub mod list;
pub mod ping;

pub use connack::{Capabilities, Finding, Needs, Severity};
