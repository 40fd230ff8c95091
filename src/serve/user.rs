//! Answering user-defined operations: each has its own queue (`lanes.rs`)
//! and `max_concurrent` worker threads of its own, so a slow program
//! holds up nothing but later requests for the same operation.
//!
//! A request goes: reply target and expiry checks (as for the built-ins),
//! size limit, decode (`text/plain` input, or a map's `input`), then, for
//! a non-idempotent operation with a replay key, the reply memory
//! (`operations::user::memory`): a re-send is answered from it, a copy
//! of a request still running waits for that run's reply, and only a new
//! request runs the program.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use super::handler::{replay_key, target_of, Incoming, Outcome, Target};
use crate::config::ops::UserOp;
use crate::datadir::DataDir;
use crate::deadletter::Reason;
use crate::operations::user::disk::Disk;
use crate::operations::user::env::RequestInfo;
use crate::operations::user::memory::{retention_secs, Begin, ReplyMemory};
use crate::operations::user::{self as op_user};
use crate::protocol::{decode_user_request, ErrorCode, ProtocolError, Reply, Topics};

/// One user-defined operation as the server runs it.
pub struct UserLane {
    /// Its configuration.
    pub op: UserOp,
    /// Replies of its non-idempotent runs, by replay key.
    memory: ReplyMemory<Target>,
}

impl UserLane {
    /// The lane of `op`; its reply memory is kept in `data_dir` too (so
    /// it survives a restart) unless that directory cannot be created.
    pub fn new(op: UserOp, data_dir: &DataDir) -> UserLane {
        let mut memory = ReplyMemory::default();
        if !op.idempotent {
            if let Some(disk) = Disk::open(data_dir.user_replies(&op.name)) {
                memory = memory.persisted(disk);
            }
        }
        UserLane { op, memory }
    }

    /// Answers one request: the outcomes to deliver (its own, and those of
    /// copies that waited for its run); none when it waits for a copy's.
    pub fn answer(
        &self,
        topics: &Topics,
        max_payload: usize,
        server_id: &str,
        msg: &Incoming,
    ) -> Vec<Outcome> {
        let target = match target_of(msg, topics) {
            Ok(target) => target,
            Err(letter) => {
                return vec![Outcome {
                    reply: None,
                    dead_letter: Some(letter),
                }]
            }
        };
        let now = |reply: Reply, letter: Option<(Reason, String)>| {
            vec![Outcome {
                reply: Some(target.outgoing(&reply)),
                dead_letter: letter,
            }]
        };
        if msg.payload.len() > max_payload {
            let e = ProtocolError::TooLarge {
                size: msg.payload.len(),
                limit: max_payload,
            };
            return now(Reply::error(e.code(), e.to_string()), None);
        }
        let request = match decode_user_request(&self.op.name, target.encoding, &msg.payload) {
            Ok(r) => r,
            Err(e) => {
                let text = e.to_string();
                return now(
                    Reply::error(e.code(), text.clone()),
                    Some((Reason::Undecodable, text)),
                );
            }
        };
        let info = RequestInfo {
            op: &self.op.name,
            correlation: msg.meta.correlation.as_deref(),
            server_id,
            user: &msg.meta.user,
        };
        let key = replay_key(&msg.meta).filter(|_| !self.op.idempotent);
        let Some(key) = key else {
            return now(self.run(&request.input, &info), None);
        };
        let target = match self
            .memory
            .begin(&key.key, request.input.as_bytes(), target)
        {
            Begin::Run(target) => target,
            Begin::Parked => return Vec::new(),
            Begin::Replay(reply, target) => {
                tracing::info!(op = %self.op.name, "re-sent request answered from the reply memory, not run again");
                return vec![answered(&target, &reply)];
            }
            Begin::Reused(target) => {
                let reply = Reply::error(ErrorCode::BadRequest, format!("correlation data already used for another request to {} (input differs); use new correlation data for a new request", self.op.name));
                return vec![answered(&target, &reply)];
            }
            Begin::Full(target) => {
                let reply = Reply::error(ErrorCode::Busy, format!("server busy: the reply memory of {} is full of replies clients may still ask for again; the request was not run - send it again after a pause", self.op.name));
                return vec![answered(&target, &reply)];
            }
        };
        let reply = self.run(&request.input, &info);
        let retain = Duration::from_secs(retention_secs(key.expiry_secs));
        let waiters = self.memory.finish(&key.key, &reply, retain);
        std::iter::once(&target)
            .chain(waiters.iter())
            .map(|t| answered(t, &reply))
            .collect()
    }

    /// Runs the program; a panic (a bug) becomes an `internal` reply.
    fn run(&self, input: &str, info: &RequestInfo<'_>) -> Reply {
        catch_unwind(AssertUnwindSafe(|| op_user::answer(&self.op, input, info))).unwrap_or_else(
            |_| {
                tracing::error!(op = %self.op.name, "user-defined operation panicked; answered internal");
                Reply::error(ErrorCode::Internal, format!("internal error in {}", self.op.name))
            },
        )
    }
}

fn answered(target: &Target, reply: &Reply) -> Outcome {
    Outcome {
        reply: Some(target.outgoing(reply)),
        dead_letter: None,
    }
}
