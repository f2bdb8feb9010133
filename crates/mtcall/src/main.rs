//! The `mtcall` command: `serve` runs the server; `code`, `bot`, `users`, `key`, `backup` and
//! `restore` administer its data directory; `login`, `call` and `answer` are a client on the
//! same protocol crates. See the README for connecting other clients.

mod admin;
mod backup_cli;
mod bench;
mod cli;
mod client_cli;
mod inspect_cli;
mod key_cli;
mod signals;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| cli.default_log_level().into());
    // Colour codes only for a terminal: a file or a pipe gets plain text.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        cli::LogFormat::Text => logs.init(),
        cli::LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mtcall: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mtcall: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
