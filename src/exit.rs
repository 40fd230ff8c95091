//! Exit codes: the contract with shell scripts (documented in the README).

use crate::ask::AskError;
use crate::dlq::DlqError;
use crate::mqtt::MqttError;

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
            ExitCode::Failure => "failure",
        }
    }

    /// The code for a connection-level error.
    pub fn of_mqtt(e: &MqttError) -> ExitCode {
        match e {
            MqttError::BadUri { .. } => ExitCode::Usage,
            MqttError::Unreachable { .. } | MqttError::NotMqtt { .. } | MqttError::Client(_) => {
                ExitCode::Connect
            }
            MqttError::AuthRefused { .. } | MqttError::NotAuthorized { .. } => ExitCode::Auth,
            MqttError::Tls { .. } | MqttError::TlsFile { .. } => ExitCode::Tls,
            MqttError::Refused { .. } => ExitCode::Failure,
            MqttError::Unsupported { .. } => ExitCode::Broker,
        }
    }

    /// The code for a failed request.
    pub fn of_ask(e: &AskError) -> ExitCode {
        match e {
            AskError::Mqtt(m) => ExitCode::of_mqtt(m),
            AskError::NoServer { .. } => ExitCode::NoServer,
            AskError::Timeout(_) | AskError::Busy { .. } => ExitCode::Timeout,
            AskError::Usage(_) => ExitCode::Usage,
            AskError::Cancelled => ExitCode::Failure,
        }
    }

    /// The code for a failed `dlq` command.
    pub fn of_dlq(e: &DlqError) -> ExitCode {
        match e {
            DlqError::Mqtt(m) => ExitCode::of_mqtt(m),
            DlqError::UnknownIds(_) | DlqError::NoDataDir(_) => ExitCode::Usage,
            DlqError::NoServer(_) => ExitCode::NoServer,
            DlqError::Store(_) | DlqError::NotReplayed { .. } => ExitCode::Failure,
        }
    }
}
