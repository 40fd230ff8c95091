//! Names of the MQTT 5 user properties the protocol defines
//! (docs/PROTOCOL.md, "User properties"). Clients in other languages match
//! them byte for byte, so they live here once and are never spelled at a
//! call site.
//!
//! Every name the protocol owns starts with `mqttapp-`; a client's own
//! user properties (`ask -H key=value`) may use any other name, and a
//! server never copies a client's `mqttapp-` properties into a reply.

/// On every reply: the id of the server that answered (the same id as in
/// its status topic), so a client can tell group members apart and count
/// each server once when gathering answers from all of them.
pub const SERVER_ID: &str = "mqttapp-server-id";

/// On every reply: microseconds the request waited inside the server, from
/// its arrival to the start of its work (decimal digits).
pub const QUEUED_US: &str = "mqttapp-queued-us";

/// On every reply: microseconds the operation itself took (decimal digits).
pub const WORK_US: &str = "mqttapp-work-us";

/// W3C Trace Context: taken from the request into the server's tracing
/// span, and returned on the reply.
pub const TRACEPARENT: &str = "traceparent";

/// The prefix reserved for the protocol's own user properties.
pub const RESERVED_PREFIX: &str = "mqttapp-";
