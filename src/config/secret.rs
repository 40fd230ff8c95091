//! A password that cannot be printed by accident, and the ways to get one
//! without putting it on a command line: a file or a terminal prompt.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::ConfigError;

/// Holds a secret; `Debug` and `Display` print `***`, so a secret inside a
/// logged or printed `Config` stays hidden.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it (the MQTT connect).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Reads the password from the first line of `path`. Warns when others
/// may read the file, as ssh does for keys.
///
/// # Errors
/// [`ConfigError::PasswordFile`] when unreadable, [`ConfigError::Invalid`]
/// when its first line is empty.
pub(super) fn read_password_file(path: &Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::PasswordFile {
        path: path.to_path_buf(),
        source,
    })?;
    warn_if_shared(path);
    let first = text.lines().next().unwrap_or("");
    if first.is_empty() {
        return Err(ConfigError::Invalid {
            setting: "password_file",
            value: path.display().to_string(),
            reason: "its first line (the password) is empty".to_string(),
        });
    }
    Ok(Secret::new(first))
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::metadata(path) {
        let mode = md.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{mode:o}"),
                "the password file can be read by other users: chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

/// Asks for the password on the terminal without echoing it
/// (`--password-prompt`), so it is in no file, no environment and no
/// command line.
///
/// # Errors
/// [`ConfigError::Prompt`] when there is no terminal to ask on.
pub fn prompt_password(username: Option<&str>, broker: &str) -> Result<Secret, ConfigError> {
    let who = username.map(|u| format!("{u} at ")).unwrap_or_default();
    let text = rpassword::prompt_password(format!("Password for {who}{broker}: "))
        .map_err(|source| ConfigError::Prompt { source })?;
    Ok(Secret::new(text))
}
