//! Exit codes: the contract with shell scripts (documented in the README).
//!
//! This module imports no feature module: each layer's error is turned
//! into a code at the command edge (`cli::exits`).

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// The request succeeded.
    Ok = 0,
    /// The server answered with an error reply.
    OperationError = 1,
    /// Bad command line or configuration.
    Usage = 2,
    /// The broker cannot be reached.
    Connect = 3,
    /// The broker refused the credentials or an ACL refused access.
    Auth = 4,
    /// No reply within the timeout.
    Timeout = 5,
    /// No server online for the operation.
    NoServer = 6,
    /// TLS handshake or TLS files failed.
    Tls = 7,
    /// The broker lacks a feature the command relies on (CONNACK), or
    /// `doctor` found a guarantee that does not hold on it.
    Broker = 8,
    /// `ask --all`, `ping`: some servers answered, not all of them.
    Partial = 9,
    /// Anything else (I/O on the server's data directory, internal).
    Failure = 10,
}

impl ExitCode {
    /// Ends the process with this code.
    pub fn exit(self) -> ! {
        std::process::exit(self as i32)
    }

    /// A stable name for `--json` output of failures that got no reply
    /// (`{"err":{"code":"timeout",...}}`); distinct from the wire's
    /// error codes (`parse`, `math`, ...), which come from the server.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitCode::Ok => "ok",
            ExitCode::OperationError => "operation",
            ExitCode::Usage => "usage",
            ExitCode::Connect => "connect",
            ExitCode::Auth => "auth",
            ExitCode::Timeout => "timeout",
            ExitCode::NoServer => "no_server",
            ExitCode::Tls => "tls",
            ExitCode::Broker => "broker",
            ExitCode::Partial => "partial",
            ExitCode::Failure => "failure",
        }
    }
}
