//! The signals `mtcall serve` answers: Ctrl-C and SIGTERM stop it (the server drains), SIGHUP
//! makes it read its RSA keys again. They are registered before the server says it is up, so a
//! SIGHUP sent as soon as the "listening on" line appears never meets the default action, which
//! would end the process.

/// What a signal asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Signal {
    /// Stop serving.
    Stop,
    /// Read the keys again.
    Reload,
}

/// The registered signals.
pub struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Registers the handlers; one that cannot be registered is logged and not waited for.
    pub fn register() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let register = |kind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, signal = name, "signal handler not registered");
                    None
                }
            };
            Signals {
                term: register(SignalKind::terminate(), "SIGTERM"),
                hangup: register(SignalKind::hangup(), "SIGHUP"),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal.
    pub async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            let Signals { term, hangup } = self;
            let term = async {
                match term {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            let hangup = async {
                match hangup {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => Signal::Stop,
                _ = term => Signal::Stop,
                _ = hangup => Signal::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop
        }
    }
}
