//! Input and resource limits, enforced before any work is done.
//!
//! Every limit has a documented default (`config/mqttapp.toml`,
//! `docs/SECURITY.md`) and can be changed in the `[limits]` table of the
//! config file. A violation is answered with error code `limit`.
//!
//! A leaf: the operations (calc, edit) take their limits from here, and
//! this module imports none of them.

use serde::Deserialize;

/// Deepest calc nesting a config file may ask for: each level costs stack
/// (up to ~2 KiB), and the server's main thread has 8 MiB.
pub const MAX_CALC_DEPTH: usize = 512;

/// Most decimal digits an exact calc integer may have (its magnitude stays
/// below 10^10000), for literals, results and every intermediate value.
/// Fixed, not configurable: it bounds the work of one request (a product
/// of two such numbers, or formatting one, takes well under a millisecond)
/// and every size check is decided from bit lengths before computing.
pub const MAX_INT_DIGITS: u32 = 10_000;

/// Most big-integer work one calc expression may do, in 64-bit limb
/// operations (a product of an m-limb and an n-limb number counts m * n;
/// a power its result's limbs squared; a sum m + n). About 15 products of
/// two 10,000-digit numbers, a few milliseconds: without it a 4 KiB
/// expression of a few hundred near-limit powers could keep a server busy
/// for 0.1 s. Integers that fit in 64 bits cost nothing.
pub const MAX_INT_WORK: u64 = 4_000_000;

/// Default largest request payload the server decodes, in bytes.
pub const DEFAULT_MAX_PAYLOAD: usize = 256 * 1024;

/// Default size the dead-letter store never grows past (64 MiB).
pub const DEFAULT_MAX_DEADLETTER_BYTES: u64 = 64 * 1024 * 1024;

/// Default budget for the requests waiting inside a server, in bytes
/// (16 MiB); see [`Limits::max_queue_bytes`].
pub const DEFAULT_MAX_QUEUE_BYTES: u64 = 16 * 1024 * 1024;

/// Smallest `max_queue_bytes` accepted (1 MiB): each lane must hold at
/// least a few requests of the default maximum payload.
pub const MIN_QUEUE_BYTES: u64 = 1024 * 1024;

/// All limits of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request payload decoded, in bytes.
    pub max_payload: usize,
    /// Size the dead-letter store never grows past: near it a new dead
    /// letter keeps only its metadata, at it letters are dropped and
    /// counted, so a flood of bad requests cannot fill the disk.
    pub max_deadletter_bytes: u64,
    /// Bytes of requests (topic, all properties, payload, 512 bytes of
    /// bookkeeping each) that may wait inside the server: paho acknowledges
    /// a request before it is run, so without this bound a flood grows the
    /// server's memory without limit. Half for edits, a quarter for calc
    /// and echo, a quarter for refusals; past it requests are refused
    /// `busy` at once. Set by `max_queue_bytes` (flag, environment or the
    /// config file's top level), not in `[limits]`.
    pub max_queue_bytes: u64,
    /// Limits of calc.
    pub calc: CalcLimits,
    /// Limits of edit.
    pub edit: EditLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_deadletter_bytes: DEFAULT_MAX_DEADLETTER_BYTES,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            calc: CalcLimits::default(),
            edit: EditLimits::default(),
        }
    }
}

/// The `[limits]` table of the config file; unset keys keep their defaults.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// See [`Limits::max_payload`].
    pub max_payload_bytes: Option<usize>,
    /// See [`Limits::max_deadletter_bytes`].
    pub max_deadletter_bytes: Option<u64>,
    /// Longest calc expression, in bytes.
    pub max_expr_bytes: Option<usize>,
    /// Deepest nesting of a calc expression.
    pub max_depth: Option<usize>,
    /// Largest edited file, in bytes.
    pub max_file_bytes: Option<u64>,
    /// Most lines in an edited file.
    pub max_lines: Option<u64>,
    /// Longest line, in bytes.
    pub max_line_bytes: Option<usize>,
    /// Most files in the data directory.
    pub max_files: Option<usize>,
}

impl Limits {
    /// Applies the config file's overrides to the defaults.
    pub fn from_file(file: LimitsFile) -> Limits {
        let d = Limits::default();
        Limits {
            max_payload: file.max_payload_bytes.unwrap_or(d.max_payload),
            max_deadletter_bytes: file.max_deadletter_bytes.unwrap_or(d.max_deadletter_bytes),
            max_queue_bytes: d.max_queue_bytes,
            calc: CalcLimits {
                max_len: file.max_expr_bytes.unwrap_or(d.calc.max_len),
                max_depth: file
                    .max_depth
                    .unwrap_or(d.calc.max_depth)
                    .min(MAX_CALC_DEPTH),
            },
            edit: EditLimits {
                max_file_bytes: file.max_file_bytes.unwrap_or(d.edit.max_file_bytes),
                max_lines: file.max_lines.unwrap_or(d.edit.max_lines),
                max_line_bytes: file.max_line_bytes.unwrap_or(d.edit.max_line_bytes),
                max_files: file.max_files.unwrap_or(d.edit.max_files),
            },
        }
    }
}

/// Limits checked before (length) and during (depth) evaluation, so that a
/// hostile request costs bounded time, memory and stack.
///
/// Each level of `max_depth` costs a few stack frames (roughly 0.5-2 KiB,
/// more in debug builds), so the depth limit is what keeps the stack safe:
/// on a 2 MiB thread stack keep `max_depth` well below 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalcLimits {
    /// Longest accepted expression, in bytes (default 4096).
    pub max_len: usize,
    /// Deepest accepted nesting of parentheses, unary signs, function calls
    /// and `^` chains (default 64).
    pub max_depth: usize,
}

impl Default for CalcLimits {
    /// Limits suited to interactive requests: 4096 bytes, depth 64.
    fn default() -> Self {
        CalcLimits {
            max_len: 4096,
            max_depth: 64,
        }
    }
}

/// Bounds that protect the server from requests (or hand-placed files) that
/// would make it allocate or write without limit. Every limit is checked
/// before the corresponding memory is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EditLimits {
    /// Largest file, in bytes, the store will read or write (default 1 MiB).
    pub max_file_bytes: u64,
    /// Largest line number a request may name and largest line count a
    /// change may produce (default 100 000).
    pub max_lines: u64,
    /// Longest text, in bytes, a single line in a request may carry
    /// (default 64 KiB).
    pub max_line_bytes: usize,
    /// Most data files the directory may hold before creating another one is
    /// refused (default 1000).
    pub max_files: usize,
}

impl Default for EditLimits {
    /// Limits suited to small configuration/notes files edited over MQTT.
    fn default() -> Self {
        EditLimits {
            max_file_bytes: 1024 * 1024,
            max_lines: 100_000,
            max_line_bytes: 64 * 1024,
            max_files: 1000,
        }
    }
}
