//! The settings a command line gives, handed to `config` as plain typed
//! values: `config` never sees the clap structs.

use crate::config::{Cmd, Settings};

use super::{Cli, Command};

impl Cli {
    /// The command whose settings are resolved (`None`: `completions`,
    /// which uses none).
    pub fn settings_command(&self) -> Option<Cmd> {
        match &self.command {
            Command::Serve(_) => Some(Cmd::Serve),
            Command::Ask(_) => Some(Cmd::Ask),
            Command::Shell(_) => Some(Cmd::Shell),
            // The same settings as `status`: the connection and the prefix.
            Command::Status(_) | Command::Describe(_) | Command::Ping(_) => Some(Cmd::Status),
            Command::Dlq(_) => Some(Cmd::Dlq),
            Command::Bench(_) => Some(Cmd::Bench),
            Command::Doctor(_) => Some(Cmd::Doctor),
            Command::Completions(_) => None,
        }
    }

    /// The settings given by flags, typed by clap.
    pub fn settings(&self) -> Settings {
        let g = &self.global;
        let mut s = Settings {
            broker: (!g.broker.is_empty()).then(|| g.broker.join(",")),
            username: g.username.clone(),
            password_file: g.password_file.clone(),
            prefix: g.prefix.clone(),
            ca_file: g.ca_file.clone(),
            cert_file: g.cert_file.clone(),
            key_file: g.key_file.clone(),
            insecure: g.insecure.then_some(true),
            ..Settings::default()
        };
        match &self.command {
            Command::Serve(serve) => {
                s.data_dir = serve.data_dir.clone();
                s.file = serve.file.clone();
                s.server_id = serve.server_id.clone();
                s.group = serve.group.clone();
                s.session_expiry = serve.session_expiry;
                s.reply_topics = serve.reply_topics.clone();
                s.max_queue_bytes = serve.max_queue_bytes;
                s.no_edit = serve.no_edit.then_some(true);
            }
            Command::Ask(ask) => s.timeout = ask.request.timeout,
            Command::Shell(shell) => s.timeout = shell.request.timeout,
            Command::Dlq(dlq) => s.data_dir = dlq.data_dir.clone(),
            Command::Status(_)
            | Command::Describe(_)
            | Command::Ping(_)
            | Command::Bench(_)
            | Command::Doctor(_)
            | Command::Completions(_) => {}
        }
        s
    }
}
