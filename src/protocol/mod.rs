//! The wire contract (protocol v1): topic names, request and reply shapes,
//! payload encodings and stable error codes.
//!
//! Only this module touches the bytes on the wire: CBOR through `ciborium`,
//! JSON through `serde_json`, and plain text. Everything above it works with
//! the typed [`Request`] and [`Reply`]. `docs/PROTOCOL.md` is the same
//! contract written for people implementing clients in other languages.

mod breakdown;
mod codec;
mod description;
mod error;
mod messages;
mod ok_value;
#[cfg(test)]
mod props;
mod stats;
mod status;
mod topics;
pub mod traceparent;
pub mod user_props;
mod wording;

pub use breakdown::{is_reserved_property, reply_properties, request_traceparent, ServerTimes};
pub use codec::{
    decode_reply, decode_request, decode_user_request, encode_reply, encode_request, from_cbor,
    to_cbor, Encoding,
};
pub use description::{
    Description, Example, Field, Limit, OpDescription, DESCRIPTION_VERSION, MAX_DESCRIPTION_BYTES,
};
pub use error::{ErrorCode, ProtocolError};
pub use messages::{
    format_float, lines, CalcRequest, EchoRequest, EditAction, EditRequest, EditResult, ErrorBody,
    OkValue, Op, Reply, Request, UserRequest,
};
pub use stats::{Handling, OpStats, ServerStats, UNKNOWN_OP};
pub use status::Status;
pub use topics::{filter_matches, validate_filter, Topics};

/// Protocol version carried in topic names (`<prefix>/v1/...`).
pub const PROTOCOL_VERSION: u32 = 1;
