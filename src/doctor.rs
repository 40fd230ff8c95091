//! `mqttapp doctor`: which of mqttapp's guarantees hold on this broker
//! (or on this list of brokers, e.g. the nodes of a cluster).
//!
//! Each guarantee rests on a broker feature; rather than trust a feature
//! table, the doctor tries each one with short-lived clients on topics of
//! its own (`<prefix>/v1/doctor/<random>/...`) and reports a verdict:
//!
//! - `groups`: a `$share/` subscription with one member on the first and
//!   one on the last broker gets every message exactly once.
//! - `exactly_once_edits`: a persistent session left on the first broker
//!   is resumed on the last one with its queued QoS 1 messages (a server
//!   that reconnects gets the requests sent meanwhile; its replay store
//!   does the rest).
//! - `fail_fast_status`: a retained message published on the first broker
//!   is seen by a new subscriber on every broker (how `ask` knows at once
//!   that no server is online).
//! - `message_expiry`: a queued message whose Message Expiry ran out is
//!   not delivered (stale requests are not applied late).
//! - `queue_burst`: a burst of QoS 1 messages queued for an offline
//!   session is delivered whole (no silent queue drops).
//!
//! Exit code 0 when every verdict holds, 8 when one does not, 3 when no
//! broker can be reached.

mod probes;
mod report;

pub use report::{Report, Verdict};

use crate::config::Config;
use crate::exit::ExitCode;

/// `mqttapp doctor --help`'s examples and exit codes.
pub const HELP: &str = "Examples:
  mqttapp doctor
  mqttapp doctor --broker mqtt://node1:1883,mqtt://node2:1883 --json

Uses short-lived clients on topics under <prefix>/v1/doctor/ (about 10 s).
Exit codes: 0 every guarantee holds, 8 some do not, 3 cannot connect,
4 refused.";

/// Runs every probe and prints the report (a JSON object with `json`).
pub fn main(config: &Config, json: bool) -> ExitCode {
    let report = match probes::run(config) {
        Ok(report) => report,
        Err(e) => {
            let code = ExitCode::of_mqtt(&e);
            crate::output::Output::new(if json {
                crate::output::Format::Json
            } else {
                crate::output::Format::Plain
            })
            .failure(code, &e);
            return code;
        }
    };
    report.print(json);
    if report.all_hold() {
        ExitCode::Ok
    } else {
        ExitCode::Broker
    }
}
