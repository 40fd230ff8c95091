//! Broker-side authentication and authorization files: a Mosquitto
//! password file made with `mosquitto_passwd`, and ACL files.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes `dir/passwd` with these users and passwords and returns its path.
pub fn password_file(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("passwd");
    for (i, (user, password)) in users.iter().enumerate() {
        let mut cmd = Command::new("mosquitto_passwd");
        cmd.arg("-b");
        if i == 0 {
            cmd.arg("-c");
        }
        let status = cmd
            .arg(&path)
            .arg(user)
            .arg(password)
            .status()
            .expect("mosquitto_passwd is installed by `make setup` (package mosquitto)");
        assert!(status.success(), "mosquitto_passwd failed for {user}");
    }
    path
}

/// Writes a file holding `password` on its first line, mode 0600, the way
/// `--password-file` wants it, and returns its path.
pub fn secret_file(dir: &Path, name: &str, password: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{password}\n")).expect("write password file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
    }
    path
}

/// A loopback listener that wants a user name and password and applies
/// `acl` (a path), for [`super::Broker::start_with`].
pub fn listener(passwd: &Path, acl: Option<&Path>) -> String {
    let mut conf = format!(
        "listener {{port}} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
        passwd.display()
    );
    if let Some(acl) = acl {
        conf.push_str(&format!("acl_file {}\n", acl.display()));
    }
    conf
}

/// The shipped `config/acl.example`, with its `mqttapp` prefix replaced by
/// `prefix`, written to `dir/acl`.
pub fn shipped_acl(dir: &Path, prefix: &str) -> PathBuf {
    let text =
        std::fs::read_to_string(repo_file("config/acl.example")).expect("config/acl.example");
    let path = dir.join("acl");
    std::fs::write(&path, text.replace("mqttapp/v1/", &format!("{prefix}/v1/")))
        .expect("write acl");
    path
}

/// A file of the repository.
pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}
