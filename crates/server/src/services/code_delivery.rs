//! How a login code reaches its phone: written to the server's log (no hook), or handed to the
//! operator's `[auth] code_command`, run through `sh -c` with `MTCALL_PHONE` (digits, no `+`)
//! and `MTCALL_CODE` in its environment, no input, and a timeout after which it is killed. A
//! command that fails, times out or cannot start fails the `auth.sendCode` that asked
//! (`500 RPC_CALL_FAIL`, which clients retry) and is logged without the code.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::auth_settings::AuthSettings;

/// Where codes go.
#[derive(Clone, Debug)]
pub enum CodeDelivery {
    /// Into the server's log (development, or an operator who reads it).
    Log,
    /// To a command.
    Command {
        /// The shell command.
        command: String,
        /// How long it may run.
        timeout: Duration,
    },
}

/// Why a code was not delivered.
#[derive(Debug, PartialEq, Eq)]
pub enum DeliveryError {
    /// `sh` could not be started.
    Spawn(String),
    /// The command exited unsuccessfully; the first bytes of what it wrote to stderr.
    Failed {
        /// Its exit status.
        status: String,
        /// Its stderr, cut short.
        stderr: String,
    },
    /// The command ran past its timeout and was killed.
    TimedOut,
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryError::Spawn(e) => write!(f, "the code command could not start: {e}"),
            DeliveryError::Failed { status, stderr } => {
                write!(f, "the code command failed ({status}): {stderr}")
            }
            DeliveryError::TimedOut => write!(f, "the code command timed out and was killed"),
        }
    }
}

/// What of a failing command's stderr goes into the log.
const STDERR_KEPT: usize = 512;

impl CodeDelivery {
    /// Where the `[auth]` settings send codes.
    pub fn of(settings: &AuthSettings) -> Self {
        match &settings.code_command {
            Some(command) => CodeDelivery::Command {
                command: command.clone(),
                timeout: Duration::from_secs(settings.code_command_timeout_secs.max(1)),
            },
            None => CodeDelivery::Log,
        }
    }

    /// Whether the code goes somewhere other than the log (then the log never shows it).
    pub fn is_hook(&self) -> bool {
        matches!(self, CodeDelivery::Command { .. })
    }

    /// Delivers `code` for `phone`.
    pub async fn deliver(&self, phone: &str, code: &str) -> Result<(), DeliveryError> {
        match self {
            CodeDelivery::Log => {
                tracing::info!(phone = %phone, code = %code, "login code sent");
                Ok(())
            }
            CodeDelivery::Command { command, timeout } => {
                let result = run(command, phone, code, *timeout).await;
                match &result {
                    Ok(()) => {
                        tracing::info!(phone = %phone, "login code handed to the code command")
                    }
                    Err(e) => {
                        tracing::warn!(phone = %phone, error = %e, "login code not delivered")
                    }
                }
                result
            }
        }
    }
}

async fn run(
    command: &str,
    phone: &str,
    code: &str,
    timeout: Duration,
) -> Result<(), DeliveryError> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("MTCALL_PHONE", phone)
        .env("MTCALL_CODE", code)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| DeliveryError::Spawn(e.to_string()))?;
    let mut stderr = child.stderr.take();
    let finished = tokio::time::timeout(timeout, async {
        let mut text = Vec::new();
        if let Some(err) = stderr.as_mut() {
            // Read at most what is kept; the rest is left to the pipe (the command is not
            // blocked by it: it is closed when `err` drops).
            let _ = err.take(STDERR_KEPT as u64).read_to_end(&mut text).await;
        }
        drop(stderr);
        (child.wait().await, text)
    })
    .await;
    match finished {
        Err(_) => Err(DeliveryError::TimedOut),
        Ok((Err(e), _)) => Err(DeliveryError::Spawn(e.to_string())),
        Ok((Ok(status), _)) if status.success() => Ok(()),
        Ok((Ok(status), text)) => Err(DeliveryError::Failed {
            status: status.to_string(),
            stderr: String::from_utf8_lossy(&text).trim().to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(text: &str, timeout_ms: u64) -> CodeDelivery {
        CodeDelivery::Command {
            command: text.into(),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[tokio::test]
    async fn the_command_gets_the_phone_and_code_and_its_failures_are_named() {
        let dir = std::env::temp_dir().join(format!("mtcall-code-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("got");
        let record = format!(
            "printf '%s %s' \"$MTCALL_PHONE\" \"$MTCALL_CODE\" > {}",
            out.display()
        );
        command(&record, 5000)
            .deliver("15550001", "12345")
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "15550001 12345");
        let failed = command("echo no route >&2; exit 3", 5000)
            .deliver("1", "2")
            .await
            .unwrap_err();
        assert!(
            matches!(&failed, DeliveryError::Failed { stderr, .. } if stderr == "no route"),
            "{failed:?}"
        );
        assert_eq!(
            command("sleep 5", 100).deliver("1", "2").await,
            Err(DeliveryError::TimedOut)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
