//! Each layer's error to the exit code it stands for, at the command edge:
//! `exit.rs` knows the codes and no feature module; the features know
//! their errors and no exit codes; this file, in the command layer, joins
//! them. [`Failure`] carries an error to the one place that prints it
//! (`main`).

use std::error::Error;

use crate::ask::AskError;
use crate::bench::BenchError;
use crate::config::ConfigError;
use crate::describe::DescribeError;
use crate::dlq::DlqError;
use crate::exit::ExitCode;
use crate::gather::GatherError;
use crate::mqtt::MqttError;
use crate::serve::ServeError;
use crate::status::ForgetError;

impl From<&MqttError> for ExitCode {
    fn from(e: &MqttError) -> ExitCode {
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
}

impl From<&AskError> for ExitCode {
    fn from(e: &AskError) -> ExitCode {
        match e {
            AskError::Mqtt(m) => m.into(),
            AskError::NoServer { .. } => ExitCode::NoServer,
            AskError::Timeout(_) | AskError::Busy { .. } => ExitCode::Timeout,
            AskError::Usage(_) => ExitCode::Usage,
            AskError::Cancelled => ExitCode::Failure,
        }
    }
}

impl From<&GatherError> for ExitCode {
    fn from(e: &GatherError) -> ExitCode {
        match e {
            GatherError::Mqtt(m) => m.into(),
            GatherError::NoServer { .. } => ExitCode::NoServer,
            GatherError::Usage(_) => ExitCode::Usage,
        }
    }
}

impl From<&DlqError> for ExitCode {
    fn from(e: &DlqError) -> ExitCode {
        match e {
            DlqError::Mqtt(m) => m.into(),
            DlqError::UnknownIds(_) | DlqError::NoDataDir(_) => ExitCode::Usage,
            DlqError::NoServer(_) => ExitCode::NoServer,
            DlqError::Store(_) | DlqError::NotReplayed { .. } => ExitCode::Failure,
        }
    }
}

impl From<&ServeError> for ExitCode {
    fn from(e: &ServeError) -> ExitCode {
        match e {
            ServeError::Mqtt(m) => m.into(),
            _ => ExitCode::Failure,
        }
    }
}

impl From<&ForgetError> for ExitCode {
    fn from(e: &ForgetError) -> ExitCode {
        match e {
            ForgetError::Mqtt(m) => m.into(),
            _ => ExitCode::Usage,
        }
    }
}

impl From<&DescribeError> for ExitCode {
    fn from(e: &DescribeError) -> ExitCode {
        match e {
            DescribeError::Mqtt(m) => m.into(),
            DescribeError::NoServer { .. } => ExitCode::NoServer,
            DescribeError::Unknown { .. } => ExitCode::Usage,
        }
    }
}

impl From<&BenchError> for ExitCode {
    fn from(e: &BenchError) -> ExitCode {
        match e {
            BenchError::Usage(_) => ExitCode::Usage,
            BenchError::Ask(a) => a.into(),
        }
    }
}

/// Every bad setting is a usage error.
impl From<&ConfigError> for ExitCode {
    fn from(_: &ConfigError) -> ExitCode {
        ExitCode::Usage
    }
}

/// The names callers used before the conversions moved here.
impl ExitCode {
    /// The code for a connection-level error.
    pub fn of_mqtt(e: &MqttError) -> ExitCode {
        e.into()
    }

    /// The code for a failed request.
    pub fn of_ask(e: &AskError) -> ExitCode {
        e.into()
    }

    /// The code for a failed `dlq` command.
    pub fn of_dlq(e: &DlqError) -> ExitCode {
        e.into()
    }
}

/// A command that failed: the error, and the exit code it stands for.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong, with its chain of causes.
    pub error: Box<dyn Error>,
    /// How the process ends.
    pub code: ExitCode,
}

impl Failure {
    /// `error` ending the process with `code`, whatever its type says.
    pub fn with_code(error: impl Error + 'static, code: ExitCode) -> Failure {
        Failure {
            error: Box::new(error),
            code,
        }
    }
}

impl<E> From<E> for Failure
where
    E: Error + 'static,
    for<'a> &'a E: Into<ExitCode>,
{
    fn from(error: E) -> Failure {
        let code = (&error).into();
        Failure::with_code(error, code)
    }
}
