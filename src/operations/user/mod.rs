//! User-defined operations: a program the server's operator names
//! (`serve --exec`, `[ops.NAME]`), run for each request with the request's
//! input on stdin; its stdout is the reply.
//!
//! Independent of MQTT like the other operations: a request's input and
//! description in, one reply out. The server runs them on their own
//! threads (`serve::user`), never on the lanes that answer the built-ins.

pub mod disk;
pub mod env;
pub mod memory;
pub mod run;

use crate::config::ops::UserOp;
use crate::protocol::{ErrorCode, OkValue, Reply};
use env::RequestInfo;
use run::{Job, RunError};

/// Where `program` would be found when run: itself when it names a path
/// (relative to the server's working directory), else the first match in
/// [`env::PATH`]; `None` when there is no such file. For the start-up
/// warning only: the run itself resolves the program the same way.
pub fn find_program(program: &str) -> Option<std::path::PathBuf> {
    let found = |p: std::path::PathBuf| p.is_file().then_some(p);
    if program.contains('/') {
        return found(program.into());
    }
    env::PATH
        .split(':')
        .find_map(|dir| found(std::path::Path::new(dir).join(program)))
}

/// Runs `op`'s program for one request and turns the outcome into the
/// reply: stdout as text (invalid UTF-8 replaced) when it exits 0;
/// `failed` with the end of its stderr when it exits non-zero; `limit`
/// when it ran too long or wrote too much (it was killed); `internal`
/// when it could not be started.
pub fn answer(op: &UserOp, input: &str, info: &RequestInfo<'_>) -> Reply {
    let env = env::build(info);
    let job = Job {
        program: &op.program,
        args: &op.args,
        env: &env,
        timeout: op.timeout,
        max_output: op.max_output,
    };
    match run::run(&job, input.as_bytes().to_vec()) {
        Ok(out) => Reply::Ok(OkValue::Text(String::from_utf8_lossy(&out).into_owned())),
        Err(e) => {
            let code = match &e {
                RunError::Failed { .. } => ErrorCode::Failed,
                RunError::Timeout(_) | RunError::Output(_) => ErrorCode::Limit,
                RunError::Spawn { .. } => ErrorCode::Internal,
            };
            if code == ErrorCode::Internal {
                tracing::error!(op = %op.name, error = %e, "user-defined operation cannot start");
            }
            Reply::error(code, format!("operation {}: the program {e}", op.name))
        }
    }
}
