//! Command-line arguments and the `serve` command. Settings come from, lowest first: built-in
//! defaults, the TOML file (`--config` / `MTCALL_CONFIG`), then flags or their environment
//! variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use server::{Config, Server};

#[derive(Parser)]
#[command(
    name = "mtcall",
    version,
    about = "Telegram-API-compatible call-signalling server"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text or as JSON objects (one per line). Which lines: RUST_LOG, e.g.
    /// `info,mtcall::rpc=debug` for one line per RPC.
    #[arg(
        long,
        env = "MTCALL_LOG_FORMAT",
        global = true,
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where `users`, `calls` and `call show` look.
#[derive(clap::Args, Clone)]
pub struct InspectArgs {
    #[command(flatten)]
    common: Common,
    /// A running server's admin address. Default: `[admin] listen` of the configuration, else
    /// http://127.0.0.1:4431. When nothing answers there, the data directory is read instead.
    #[arg(long, env = "MTCALL_ADMIN")]
    admin: Option<String>,
    /// The admin address's token (default: `[admin] token` of the configuration).
    #[arg(long, env = "MTCALL_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Print JSON (the admin API's form).
    #[arg(long)]
    json: bool,
}

impl InspectArgs {
    fn source(&self) -> Result<crate::inspect_cli::Source, String> {
        let config = load_config(&self.common)?;
        let admin = match &self.admin {
            Some(a) if a.starts_with("http://") => a.clone(),
            Some(a) => format!("http://{a}"),
            None => format!(
                "http://{}",
                config
                    .admin
                    .listen
                    .unwrap_or(server::config::DEFAULT_ADMIN_LISTEN)
            ),
        };
        let token = self.admin_token.clone().or(config.admin.token.clone());
        Ok(crate::inspect_cli::Source {
            admin,
            token,
            config,
        })
    }
}

#[derive(clap::Args, Clone)]
pub struct Common {
    /// TOML configuration file.
    #[arg(long, env = "MTCALL_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Data directory (RSA key, secret, database). Default: ./mtcall-data.
    #[arg(long, env = "MTCALL_DATA", global = true)]
    data: Option<PathBuf>,
    /// A PostgreSQL database shared by several nodes (`postgres://user@host:port/db`).
    /// Default: SQLite in the data directory.
    #[arg(long, env = "MTCALL_DATABASE", global = true)]
    database: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Listen address. Default: 127.0.0.1:4430.
        #[arg(long, env = "MTCALL_LISTEN")]
        listen: Option<SocketAddr>,
        /// Address announced to clients in help.getConfig. Default: the listen address.
        #[arg(long, env = "MTCALL_PUBLIC_ADDRESS")]
        public_address: Option<SocketAddr>,
        /// Accept this login code for every number (development only).
        #[arg(long, env = "MTCALL_FIXED_LOGIN_CODE")]
        fixed_login_code: Option<String>,
        /// Whether test numbers (99966XYYYY, code XXXXX) log in. Default: only when the listen
        /// address is a loopback address.
        #[arg(long, env = "MTCALL_TEST_NUMBERS", action = clap::ArgAction::Set)]
        test_numbers: Option<bool>,
        /// The admin address: call inspector, its API, /metrics. Default: 127.0.0.1:4431.
        #[arg(long, env = "MTCALL_ADMIN_LISTEN")]
        admin_listen: Option<SocketAddr>,
        /// A token for the admin address (needed when it is not a loopback address).
        #[arg(long, env = "MTCALL_ADMIN_TOKEN")]
        admin_token: Option<String>,
        /// Serve no admin address.
        #[arg(long, conflicts_with_all = ["admin_listen", "admin_token"])]
        no_admin: bool,
        /// The reflector's UDP address. Default: the listen address with port + 2.
        #[arg(long, env = "MTCALL_RELAY_LISTEN")]
        relay_listen: Option<SocketAddr>,
        /// Run no reflector (calls are offered only the relays of the configuration).
        #[arg(long, conflicts_with = "relay_listen")]
        no_relay: bool,
    },
    /// Users, with their sessions and who is busy (asks a running server; else reads the data);
    /// `users add|remove|allowed` manage the sign-up allowlist.
    #[command(args_conflicts_with_subcommands = true)]
    Users {
        #[command(subcommand)]
        action: Option<UsersAction>,
        #[command(flatten)]
        inspect: InspectArgs,
    },
    /// Live and recent calls (asks a running server; else reads the data).
    Calls {
        #[command(flatten)]
        inspect: InspectArgs,
    },
    /// Prints the last login code sent to a phone number.
    Code {
        #[command(flatten)]
        common: Common,
        /// The phone number.
        phone: String,
    },
    /// Bot accounts.
    Bot {
        #[command(subcommand)]
        action: BotAction,
    },
    /// Writes a consistent copy of the SQLite database to PATH while servers run.
    Backup {
        #[command(flatten)]
        common: Common,
        /// The copy (a new file).
        path: PathBuf,
    },
    /// Replaces the SQLite database with the backup PATH (no server may be running; the
    /// database replaced is kept as mtcall.db.before-restore-TIME).
    Restore {
        #[command(flatten)]
        common: Common,
        /// The backup.
        path: PathBuf,
    },
    /// The data directory's RSA keys: `key add` creates the next, `key retire FP` stops
    /// accepting one, `key list` prints them. Running servers read them again on SIGHUP.
    Key {
        #[command(subcommand)]
        action: KeyAction,
        #[command(flatten)]
        common: Common,
    },
    /// Logs in to a server as a client and saves the session file.
    Login {
        /// The server's address.
        #[arg(long, default_value = "127.0.0.1:4430")]
        server: SocketAddr,
        /// The server's public key (PKCS#1 PEM).
        #[arg(long, default_value = "mtcall-data/server.pub")]
        key: PathBuf,
        /// The phone number.
        #[arg(
            long,
            required_unless_present = "bot_token",
            conflicts_with = "bot_token"
        )]
        phone: Option<String>,
        /// Log in as a bot with its token `ID:SECRET` (from `mtcall bot create`).
        #[arg(long)]
        bot_token: Option<String>,
        /// The login code (asked for when not given).
        #[arg(long)]
        code: Option<String>,
        /// The name to sign up with, for a new number.
        #[arg(long, default_value = "mtcall user")]
        name: String,
        /// The session file to write.
        #[arg(long, default_value = "mtcall.session")]
        session: PathBuf,
    },
    /// Calls a user (`@username` or a phone number); Ctrl-C hangs up. `call show ID` prints a
    /// call's timeline instead.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Call {
        #[command(subcommand)]
        action: Option<CallAction>,
        /// Who to call.
        #[arg(required = true)]
        user: Option<String>,
        /// A video call.
        #[arg(long)]
        video: bool,
        /// The session file from `mtcall login`.
        #[arg(long, default_value = "mtcall.session")]
        session: PathBuf,
    },
    /// Invokes any request as JSON, e.g. '{"_": "contacts.resolveUsername", "username": "bob"}'.
    Invoke {
        /// The request.
        request: String,
        /// The session file from `mtcall login`.
        #[arg(long, default_value = "mtcall.session")]
        session: PathBuf,
    },
    /// Load scenarios against a server, each next to a baseline from the same run.
    Bench {
        #[command(subcommand)]
        scenario: crate::bench::Scenario,
        #[command(flatten)]
        options: crate::bench::Options,
    },
    /// The plain tokio server `mtcall bench idle` compares against (run by it).
    #[command(hide = true)]
    BenchEchoServer {
        /// Port on 127.0.0.1.
        #[arg(long)]
        port: u16,
    },
    /// The MTProto echo `mtcall bench received|setup` compare against (run by them beside
    /// node processes).
    #[command(hide = true)]
    BenchMtprotoEcho {
        /// Port on 127.0.0.1.
        #[arg(long)]
        port: u16,
        /// The auth keys it knows: one `HEX_KEY SALT` a line.
        #[arg(long)]
        keys: PathBuf,
    },
    /// Waits for a call, acknowledges and accepts it; Ctrl-C hangs up.
    Answer {
        /// The session file from `mtcall login`.
        #[arg(long, default_value = "mtcall.session")]
        session: PathBuf,
    },
}

#[derive(Subcommand)]
enum CallAction {
    /// A call's timeline: each RPC and push between caller, server and callee devices (asks a
    /// running server; else prints the stored call).
    Show {
        /// The call id.
        id: i64,
        #[command(flatten)]
        inspect: InspectArgs,
    },
}

#[derive(Subcommand)]
enum UsersAction {
    /// Allows phone numbers to sign up (when `[auth] signup = "allowlist"`).
    Add {
        /// The numbers.
        #[arg(required = true)]
        phones: Vec<String>,
    },
    /// Takes phone numbers off the allowlist (accounts they made stay).
    Remove {
        /// The numbers.
        #[arg(required = true)]
        phones: Vec<String>,
    },
    /// Prints the allowlist.
    Allowed,
}

#[derive(Subcommand)]
enum KeyAction {
    /// Creates the next key (`keys/N.key`, `keys/N.pub`); servers offer it besides the others.
    Add,
    /// Moves a key to `keys/retired/`: clients that pinned only it can no longer connect.
    Retire {
        /// Its fingerprint, as the startup line or `key list` prints it (decimal or 0x hex).
        #[arg(allow_negative_numbers = true)]
        fingerprint: String,
    },
    /// Prints the active keys: fingerprint, in hex, public key file.
    List,
}

#[derive(Subcommand)]
enum BotAction {
    /// Creates a bot and prints its token `ID:SECRET`.
    Create {
        #[command(flatten)]
        common: Common,
        /// The bot's username (must end in "bot").
        #[arg(long)]
        username: String,
        /// Its display name (default: the username).
        #[arg(long)]
        name: Option<String>,
    },
}

impl Cli {
    /// The log level when `RUST_LOG` is not set: quiet for benchmarks and client commands.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Serve { .. } | Command::Code { .. } | Command::Bot { .. } => "info",
            Command::Users { .. } | Command::Calls { .. } => "warn",
            _ => "warn",
        }
    }
}

/// The configuration from defaults, file and the common flags.
pub fn load_config(common: &Common) -> Result<Config, String> {
    let mut config = match &common.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            Config::from_toml(&text)?
        }
        None => Config::default(),
    };
    if let Some(data) = &common.data {
        config.data_dir = data.clone();
    }
    if let Some(database) = &common.database {
        config.database = Some(database.clone());
    }
    Ok(config)
}

pub async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve {
            common,
            listen,
            public_address,
            fixed_login_code,
            test_numbers,
            admin_listen,
            admin_token,
            no_admin,
            relay_listen,
            no_relay,
        } => {
            let mut config = load_config(&common)?;
            if let Some(l) = listen {
                config.listen = l;
            }
            if public_address.is_some() {
                config.public_address = public_address;
            }
            if fixed_login_code.is_some() {
                config.fixed_login_code = fixed_login_code;
            }
            if test_numbers.is_some() {
                config.auth.test_numbers = test_numbers;
            }
            if admin_listen.is_some() {
                config.admin.listen = admin_listen;
            }
            if admin_token.is_some() {
                config.admin.token = admin_token;
            }
            if no_admin {
                config.admin.enabled = false;
            }
            if relay_listen.is_some() {
                config.relay.listen = relay_listen;
            }
            if no_relay {
                config.relay.enabled = false;
            }
            serve(config).await
        }
        Command::Code { common, phone } => {
            crate::admin::print_code(&load_config(&common)?, &phone).await
        }
        Command::Bot {
            action:
                BotAction::Create {
                    common,
                    username,
                    name,
                },
        } => crate::admin::create_bot(&load_config(&common)?, &username, name.as_deref()).await,
        Command::Backup { common, path } => {
            crate::backup_cli::backup(&load_config(&common)?, &path)
        }
        Command::Restore { common, path } => {
            crate::backup_cli::restore(&load_config(&common)?, &path)
        }
        Command::Key { action, common } => {
            let data = load_config(&common)?.data_dir;
            match action {
                KeyAction::Add => crate::key_cli::add(&data),
                KeyAction::Retire { fingerprint } => crate::key_cli::retire(&data, &fingerprint),
                KeyAction::List => crate::key_cli::list(&data),
            }
        }
        Command::Login {
            server,
            key,
            phone,
            bot_token,
            code,
            name,
            session,
        } => {
            let credentials = match (bot_token, phone) {
                (Some(token), _) => crate::client_cli::Credentials::Bot { token },
                (None, Some(phone)) => crate::client_cli::Credentials::User { phone, code, name },
                (None, None) => return Err("give --phone or --bot-token".into()),
            };
            crate::client_cli::login(server, &key, credentials, &session).await
        }
        Command::Users {
            action: None,
            inspect,
        } => crate::inspect_cli::users(&inspect.source()?, inspect.json).await,
        Command::Users {
            action: Some(action),
            inspect,
        } => {
            let config = load_config(&inspect.common)?;
            match action {
                UsersAction::Add { phones } => crate::admin::allow(&config, &phones, true).await,
                UsersAction::Remove { phones } => {
                    crate::admin::allow(&config, &phones, false).await
                }
                UsersAction::Allowed => crate::admin::print_allowed(&config).await,
            }
        }
        Command::Calls { inspect } => {
            crate::inspect_cli::calls(&inspect.source()?, inspect.json).await
        }
        Command::Call {
            action: Some(CallAction::Show { id, inspect }),
            ..
        } => crate::inspect_cli::show_call(&inspect.source()?, id, inspect.json).await,
        Command::Call {
            action: None,
            user,
            video,
            session,
        } => {
            let user = user.ok_or("give the user to call")?;
            crate::client_cli::call(&session, &user, video).await
        }
        Command::Answer { session } => crate::client_cli::answer(&session).await,
        Command::Bench { scenario, options } => crate::bench::run(scenario, options).await,
        Command::BenchEchoServer { port } => crate::bench::echo_server(port).await,
        Command::BenchMtprotoEcho { port, keys } => {
            crate::bench::mtproto_echo_server(port, keys).await
        }
        Command::Invoke { request, session } => crate::client_cli::invoke(&session, &request).await,
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let logins = config.auth.summary(config.listen.ip());
    let mut signals = crate::signals::Signals::register();
    let server = Server::start(config).await?;
    let keys = key_summary(&server.keys());
    tracing::info!(
        listen = %server.local_addr(),
        keys = %keys,
        "mtcall is serving; add a public key to your client as the README's \"Connect your client\" shows"
    );
    // Before the "listening on" line, which tells scripts the server is up.
    tracing::info!(logins = %logins, "who may log in");
    println!("logins: {logins}");
    println!("mtcall listening on {} ({keys})", server.local_addr());
    if let Some(admin) = server.admin_addr() {
        tracing::info!(admin = %admin, "call inspector and /metrics on the admin address");
        println!("inspector on http://{admin}/");
    }
    if let Some(relay) = server.relay_addr() {
        println!("reflector on udp {relay}");
    }
    while signals.next().await == crate::signals::Signal::Reload {
        match server.reload_keys() {
            Ok(keys) => {
                let keys = key_summary(&keys);
                tracing::info!(keys = %keys, "RSA keys read again");
                println!("keys reloaded: {keys}");
            }
            Err(e) => tracing::error!(error = %e, "RSA keys not reloaded"),
        }
    }
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// The keys on offer as the startup line states them: each fingerprint and its public file.
fn key_summary(keys: &[server::key_ring::KeyInfo]) -> String {
    let each: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "RSA key fingerprint {}, public key {}",
                k.fingerprint,
                k.public_path.display()
            )
        })
        .collect();
    each.join("; ")
}
