//! mqttapp: request/response over MQTT 5, done properly.
//!
//! A server (`serve`) answers `calc`, `echo` and `edit` requests; a client
//! (`ask`) sends them. The wire contract is in `docs/PROTOCOL.md`.
//!
//! # Layout
//! - [`cli`]: the command line (clap derive).
//! - [`config`]: layered settings resolved once into a [`config::Config`].
//! - [`limits`]: input and resource limits.
//! - [`logging`]: stderr logging that never shows paho's secret-bearing records.
//! - [`mqtt`]: connect options, broker URIs, error classification, properties.
//! - [`protocol`]: topics, request/reply types, codecs, error codes.
//! - [`operations`]: calc, echo, edit; no MQTT in there.
//! - [`serve`]: the server loop.
//! - [`ask`]: the client.
//! - [`status`]: `mqttapp status`, the servers' retained statuses.
//! - [`describe`]: servers' self-descriptions: built, published, listed.
//! - [`gather`]: `mqttapp ping` and `ask --all`, answers from every server.
//! - [`shell`]: the interactive shell over one connection.
//! - [`output`]: how results and errors are shown (plain, JSON, quiet, colour).
//! - [`bench`]: the load generator.
//! - [`deadletter`]: the persistent dead-letter store.
//! - [`dlq`]: `mqttapp dlq`, listing, replaying and purging dead letters.
//! - [`broker`]: what the broker offers (CONNACK), and `doctor`'s probes.
//! - [`doctor`]: `mqttapp doctor`, which guarantees hold on a broker.
//! - [`exit`]: exit codes.
//! - [`ids`]: random client ids and correlation data from the OS CSPRNG.

pub mod ask;
pub mod bench;
pub mod broker;
pub mod cli;
pub mod config;
pub mod datadir;
pub mod deadletter;
pub mod describe;
pub mod dlq;
pub mod doctor;
pub mod exit;
pub mod gather;
pub mod ids;
pub mod limits;
pub mod logging;
pub mod mqtt;
pub mod operations;
pub mod output;
pub mod protocol;
pub mod serve;
pub mod shell;
pub mod status;
pub mod version;
