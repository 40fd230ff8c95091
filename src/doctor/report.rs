//! The doctor's findings and how they are printed.

use std::io::Write;

use serde::Serialize;

use crate::broker::{Capabilities, Finding, Severity};

/// Whether a guarantee holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Holds {
    /// Tried, and it held.
    Yes,
    /// Tried, and it did not.
    No,
    /// Could not be tried (an earlier step failed).
    Unknown,
}

/// One guarantee and what the probe saw.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Stable name: groups, exactly_once_edits, fail_fast_status,
    /// message_expiry, queue_burst.
    pub guarantee: &'static str,
    /// The verdict.
    pub holds: Holds,
    /// What was measured, for people.
    pub detail: String,
}

impl Verdict {
    /// A verdict from a yes/no outcome.
    pub fn of(guarantee: &'static str, ok: bool, detail: String) -> Verdict {
        Verdict {
            guarantee,
            holds: if ok { Holds::Yes } else { Holds::No },
            detail,
        }
    }

    /// A guarantee that could not be tried.
    pub fn unknown(guarantee: &'static str, detail: String) -> Verdict {
        Verdict {
            guarantee,
            holds: Holds::Unknown,
            detail,
        }
    }
}

/// One broker of the list, as its CONNACK describes it.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerSeen {
    /// As the user wrote it.
    pub uri: String,
    /// Its CONNACK, when it could be reached.
    pub capabilities: Option<Capabilities>,
    /// Why it could not be reached.
    pub error: Option<String>,
    /// What its CONNACK means for mqttapp's promises.
    pub findings: Vec<Finding>,
}

/// Everything the doctor found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Each broker probed.
    pub brokers: Vec<BrokerSeen>,
    /// One verdict per guarantee.
    pub verdicts: Vec<Verdict>,
    /// True when every verdict holds.
    pub ok: bool,
}

impl Report {
    /// Builds the report; `ok` is computed from the verdicts.
    pub fn new(brokers: Vec<BrokerSeen>, verdicts: Vec<Verdict>) -> Report {
        let ok = !verdicts.is_empty() && verdicts.iter().all(|v| v.holds == Holds::Yes);
        Report {
            brokers,
            verdicts,
            ok,
        }
    }

    /// True when every guarantee holds.
    pub fn all_hold(&self) -> bool {
        self.ok
    }

    /// Prints the report on stdout.
    pub fn print(&self, json: bool) {
        let mut out = std::io::stdout().lock();
        if json {
            // Strings, numbers and booleans only: always serializes.
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string(self).expect("report is JSON")
            );
            return;
        }
        let _ = write!(out, "{}", self.text());
    }

    /// The plain-text report.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for b in &self.brokers {
            match (&b.capabilities, &b.error) {
                (Some(c), _) => s.push_str(&format!(
                    "broker {}: shared subscriptions {}, retain {}, max QoS {}, receive maximum {}, session expiry {}, max packet {}\n",
                    b.uri,
                    yes_no(c.shared_subscriptions),
                    yes_no(c.retain),
                    c.max_qos,
                    c.receive_maximum,
                    c.session_expiry.map_or("as asked".to_string(), |s| format!("capped at {s} s")),
                    c.max_packet_size.map_or("unlimited".to_string(), |m| format!("{m} bytes")),
                )),
                (None, Some(e)) => s.push_str(&format!("broker {}: unreachable ({e})\n", b.uri)),
                (None, None) => {}
            }
            for f in &b.findings {
                let level = match f.severity {
                    Severity::Fatal => "fatal",
                    Severity::Warning => "warning",
                };
                s.push_str(&format!("  {level}: {}\n", f.message));
            }
        }
        for v in &self.verdicts {
            let word = match v.holds {
                Holds::Yes => "holds",
                Holds::No => "FAILS",
                Holds::Unknown => "unknown",
            };
            s.push_str(&format!("{:<20} {:<8} {}\n", v.guarantee, word, v.detail));
        }
        s.push_str(if self.ok {
            "all guarantees hold\n"
        } else {
            "some guarantees do not hold on this broker (docs/DOCTOR.md)\n"
        });
        s
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}
