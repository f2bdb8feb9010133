//! `mtcall bench`: load scenarios against a real server, each printing its figures next to a
//! baseline measured in the same run (`BENCHMARKS.md` keeps the full-size results).
//!
//! Without `--server` a server is started in this process on a temporary data directory, so
//! the load generator and the server share the machine, as the figures say.

mod cgroup;
mod counts;
mod cpu;
mod echo;
mod handshake;
mod idle;
mod latency;
mod process;
mod received;
mod relay;
mod setup;
mod setup_pattern;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mtproto::crypto::rsa_key::PublicKey;

/// The scenarios.
#[derive(clap::Subcommand, Clone, Copy, Debug)]
pub enum Scenario {
    /// Auth-key creations per second against the cost of the RSA decrypt and modpows.
    Handshake,
    /// Complete call setups per second against trivial RPCs per second.
    Setup,
    /// One request in flight: RPC latency percentiles against a plain TCP echo.
    Latency,
    /// Pipelined `phone.receivedCall` on live calls against a plain tokio server's answers.
    Received,
    /// Authorised idle connections: the server's memory per connection (its own process).
    Idle,
    /// Media packets between the two ends of calls through the reflector, against a plain
    /// UDP forwarder; the reflector's memory per relayed call.
    Relay,
}

/// Options every scenario takes.
#[derive(clap::Args, Clone, Debug)]
pub struct Options {
    /// Seconds to measure.
    #[arg(long, default_value_t = 10, global = true)]
    pub seconds: u64,
    /// Seconds for each of `setup`'s baselines, trivial RPCs and the MTProto echo (default:
    /// half of `--seconds`).
    #[arg(long, global = true)]
    pub baseline_seconds: Option<u64>,
    /// Concurrent clients (or caller/callee pairs).
    #[arg(long, default_value_t = 8, global = true)]
    pub concurrency: usize,
    /// Requests in flight per connection (`received`).
    #[arg(long, default_value_t = 16, global = true)]
    pub window: usize,
    /// Idle connections to open (`idle`).
    #[arg(long, default_value_t = 1000, global = true)]
    pub connections: usize,
    /// An external server; default: one started in this process.
    #[arg(long, global = true)]
    pub server: Option<SocketAddr>,
    /// The external server's public key.
    #[arg(long, default_value = "mtcall-data/server.pub", global = true)]
    pub key: PathBuf,
    /// Run the in-process servers on PostgreSQL: a scratch database is created on the server
    /// at this URL (`postgres://user@host:port/postgres`).
    #[arg(long, global = true)]
    pub database: Option<String>,
    /// In-process nodes sharing that database; callers and callees are spread over them
    /// (each pair's caller and callee on different nodes when there are several).
    #[arg(long, default_value_t = 1, global = true)]
    pub nodes: usize,
    /// Run the nodes as `mtcall serve` processes of their own (several need `--database`;
    /// one runs on SQLite without it), so each node's CPU is its own and not the load
    /// generator's.
    #[arg(long, global = true)]
    pub node_processes: bool,
    /// Count system calls, context switches and allocations in the node processes while
    /// measuring (`perf stat`, root), printed per operation; with `--node-processes`.
    #[arg(long, global = true)]
    pub count: bool,
    /// Pin the node processes to the first core and this process (the load generator) to the
    /// others (`taskset`), so they do not compete for one core; with `--node-processes`.
    #[arg(long, global = true)]
    pub pin: bool,
    /// Cap each node process at this many cores (0.25: a quarter of one), each in a cgroup of
    /// its own (cgroup v1 `cpu`, as root), so the nodes bind rather than the database or the
    /// load generator; with `--node-processes`.
    #[arg(long, global = true)]
    pub node_cpu: Option<f64>,
    /// Run the in-process servers without recording messages for the call inspector
    /// (`[admin] record_messages = false`), to measure what recording costs.
    #[arg(long, global = true)]
    pub no_record: bool,
}

/// The server under load.
pub struct Target {
    /// Its address (the first node's).
    pub addr: SocketAddr,
    /// Every node's address.
    pub addrs: Vec<SocketAddr>,
    /// Its public key.
    pub key: PublicKey,
    /// Its private key, when the server runs in this process (for the crypto baseline).
    pub private_pem: Option<String>,
    servers: Vec<server::Server>,
    /// Nodes running as processes of their own.
    children: Vec<std::process::Child>,
    /// Their CPU caps (`--node-cpu`), removed after them.
    caps: Vec<cgroup::CpuCap>,
    dir: Option<PathBuf>,
}

impl Target {
    async fn open(o: &Options) -> Result<Target, String> {
        if let Some(addr) = o.server {
            let pem =
                std::fs::read_to_string(&o.key).map_err(|e| format!("{}: {e}", o.key.display()))?;
            let key = PublicKey::from_pkcs1_pem(&pem).map_err(|e| e.to_string())?;
            return Ok(Target {
                addr,
                addrs: vec![addr],
                key,
                private_pem: None,
                servers: Vec::new(),
                children: Vec::new(),
                caps: Vec::new(),
                dir: None,
            });
        }
        let dir = std::env::temp_dir().join(format!("mtcall-bench-{}", std::process::id()));
        let database = match &o.database {
            Some(url) => Some(
                store::fresh_test_database(url)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let mut config = server::Config {
            data_dir: dir.clone(),
            listen: "127.0.0.1:0".parse().expect("address"),
            database,
            ..server::Config::default()
        };
        config.admin.record_messages = !o.no_record;
        // The relay scenario measures what relaying costs, not where its limits cut in.
        config.relay.end_packets_per_sec = 10_000_000;
        config.relay.end_bytes_per_sec = 10_000_000_000;
        config.relay.call_packets_per_sec = 10_000_000;
        config.relay.call_bytes_per_sec = 10_000_000_000;
        let mut servers = Vec::new();
        let mut children = Vec::new();
        let mut caps = Vec::new();
        let mut addrs: Vec<SocketAddr> = Vec::new();
        if o.node_cpu.is_some() && !o.node_processes {
            return Err("--node-cpu caps node processes: add --node-processes".into());
        }
        if o.pin && !o.node_processes {
            return Err("--pin places node processes: add --node-processes".into());
        }
        if o.node_processes {
            let url = config.database.clone();
            if url.is_none() && o.nodes > 1 {
                return Err(
                    "several node processes need --database (they share PostgreSQL)".into(),
                );
            }
            for _ in 0..o.nodes.max(1) {
                // One after the other: the first creates the key files the others read.
                let (child, addr) = spawn_node(&dir, url.as_deref(), o.no_record)?;
                if o.pin {
                    pin(child.id(), "0")?;
                }
                if let Some(cores) = o.node_cpu {
                    let name = format!("mtcall-bench-{}-{}", std::process::id(), children.len());
                    caps.push(cgroup::CpuCap::apply(&name, child.id(), cores)?);
                }
                children.push(child);
                addrs.push(addr);
            }
            if o.pin {
                let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
                pin(std::process::id(), &format!("1-{}", cores.max(2) - 1))?;
            }
        } else {
            for _ in 0..o.nodes.max(1) {
                servers.push(server::Server::start(config.clone()).await?);
            }
            addrs = servers.iter().map(|s| s.local_addr()).collect();
        }
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).map_err(|e| e.to_string());
        let key = PublicKey::from_pkcs1_pem(&read("server.pub")?).map_err(|e| e.to_string())?;
        Ok(Target {
            addr: addrs[0],
            addrs,
            key,
            private_pem: Some(read("server.key")?),
            servers,
            children,
            caps,
            dir: Some(dir),
        })
    }

    /// A caller and a callee logged in on their own connections (test numbers `99966` +
    /// `n`, `n + 1`), and the callee as the caller may address them.
    pub async fn pair(
        &self,
        n: usize,
    ) -> Result<(client::Client, client::Client, tl::enums::InputUser), client::ClientError> {
        use tl::{enums, functions, types};
        let (a, b) = (format!("99966{n:05}"), format!("99966{:05}", n + 1));
        let kind = mtproto::transport::Kind::Full;
        // Pairs take turns: each node holds as many callers as callees (the caller's side of a
        // setup is the heavier).
        let (caller_at, callee_at) = (
            self.addrs[(n / 2) % self.addrs.len()],
            self.addrs[(n / 2 + 1) % self.addrs.len()],
        );
        let mut caller = client::Client::connect(caller_at, &self.key, kind, false).await?;
        caller.login(&a, "Caller").await?;
        let mut callee = client::Client::connect(callee_at, &self.key, kind, false).await?;
        callee.login(&b, "Callee").await?;
        let enums::contacts::ResolvedPeer::ResolvedPeer(r) = caller
            .call(&functions::contacts::ResolvePhone { phone: b })
            .await?;
        let (user_id, access_hash) = match &r.users[0] {
            enums::User::User(u) => (u.id, u.access_hash.unwrap_or_default()),
            enums::User::Empty(u) => (u.id, 0),
        };
        Ok((
            caller,
            callee,
            types::InputUser {
                user_id,
                access_hash,
            }
            .into(),
        ))
    }

    /// The process ids of nodes running as their own processes.
    pub fn node_pids(&self) -> Vec<u32> {
        self.children.iter().map(|c| c.id()).collect()
    }

    /// How often each capped node was held back by its cap (empty when uncapped).
    pub fn throttled(&self) -> Vec<u64> {
        self.caps.iter().map(cgroup::CpuCap::throttled).collect()
    }

    async fn close(self) {
        for srv in self.servers {
            srv.shutdown().await;
        }
        for mut child in self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        drop(self.caps);
        if let Some(dir) = self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Starts `mtcall serve` on `url` with the data directory `dir`, on a free loopback port, and
/// waits for the address it prints.
/// Pins every thread of process `pid` (and those it starts later) to `cores` (`taskset`'s
/// list syntax).
pub(super) fn pin(pid: u32, cores: &str) -> Result<(), String> {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cores, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("taskset -c {cores} for {pid}: {status}"))
    }
}

fn spawn_node(
    dir: &std::path::Path,
    url: Option<&str>,
    no_record: bool,
) -> Result<(std::process::Child, SocketAddr), String> {
    use std::io::BufRead;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let config = dir.join("node.toml");
    let database = url.map_or(String::new(), |u| format!("database = {u:?}\n"));
    let toml = format!(
        "{database}[admin]\nenabled = false\nrecord_messages = {}\n[relay]\nenabled = false\n",
        !no_record
    );
    std::fs::write(&config, toml).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting a node: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut reader = std::io::BufReader::new(stdout);
    // Lines before "mtcall listening on ADDR (RSA key fingerprint …)" (who may log in) are
    // skipped.
    let mut line = String::new();
    while !line.starts_with("mtcall listening on ") {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("a node exited before it was listening".into());
        }
    }
    // Whatever else it prints is read and dropped, so it never writes to a closed pipe.
    std::thread::spawn(move || for _ in reader.lines() {});
    let addr = line
        .strip_prefix("mtcall listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("a node printed {line:?}"))?;
    Ok((child, addr))
}

/// Prints a progress line every few seconds of a long run.
pub struct Progress {
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new() -> Self {
        Progress {
            started: Instant::now(),
            last: Instant::now(),
        }
    }

    fn tick(&mut self, what: &str, count: u64) {
        if self.last.elapsed() >= Duration::from_secs(5) {
            self.last = Instant::now();
            eprintln!(
                "  … {:.0} s: {count} {what}",
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

/// Runs one scenario.
pub async fn run(scenario: Scenario, o: Options) -> Result<(), String> {
    if let Scenario::Idle = scenario {
        println!(
            "mtcall bench idle: {} connections, server in its own process",
            o.connections
        );
        return idle::run(&o).await;
    }
    let target = Target::open(&o).await?;
    println!(
        "mtcall bench {scenario:?}: {} s, concurrency {}, server {}",
        o.seconds,
        o.concurrency,
        match (target.servers.len() + target.children.len(), &o.database) {
            (0, _) => "external".to_owned(),
            (n, db) if o.node_processes => {
                let store = if db.is_some() { "PostgreSQL" } else { "SQLite" };
                let cap = o
                    .node_cpu
                    .map_or(String::new(), |c| format!(", each capped at {c} cores"));
                let pinned = if o.pin {
                    ", pinned to core 0; the load generator to the other cores"
                } else {
                    ""
                };
                format!("{n} node process(es) on {store}{cap}{pinned}")
            }
            (1, None) => "in this process (SQLite)".to_owned(),
            (n, _) => format!("{n} node(s) in this process on PostgreSQL"),
        }
    );
    let result = match scenario {
        Scenario::Handshake => handshake::run(&target, &o).await,
        Scenario::Setup => setup::run(&target, &o).await,
        Scenario::Latency => latency::run(&target, &o).await,
        Scenario::Received => received::run(&target, &o).await,
        Scenario::Relay => relay::run(&target, &o).await,
        Scenario::Idle => unreachable!("handled above"),
    };
    target.close().await;
    result
}

/// The MTProto echo in a process of its own (a hidden command, run by `received` and `setup`
/// beside node processes).
pub async fn mtproto_echo_server(port: u16, keys: PathBuf) -> Result<(), String> {
    echo::serve_file(port, &keys).await
}

/// The baseline server of the `idle` scenario (a hidden command).
pub async fn echo_server(port: u16) -> Result<(), String> {
    idle::echo_server(port).await
}
