//! The `corridord` command line: `dev`, `keygen`, `init`, `run`.

use crate::bounds::{Bounds, CappedListener, Caps};
use crate::chain::{Chain, now_ms};
use crate::config::{BLOCK_INTERVAL_MS_DEFAULT, Config, RPC_ADDR_DEFAULT};
use crate::driver::{Alone, Driver, Event};
use crate::genesis::{DEV_VALIDATOR, Genesis, dev_genesis};
use crate::tls::{TlsFiles, TlsListener};
use clap::{Parser, Subcommand};
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::{AccountId, PrivateKey, Scheme};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "corridord", version, about = "corridor ledger node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a one-validator chain with the demo genesis; keys go to <data-dir>/keys.
    /// Running it again on the same data dir resumes the chain.
    Dev {
        #[arg(long, default_value = "corridor-dev")]
        data_dir: PathBuf,
        #[arg(long, default_value = RPC_ADDR_DEFAULT)]
        rpc_addr: SocketAddr,
        #[arg(long, default_value_t = BLOCK_INTERVAL_MS_DEFAULT)]
        block_interval_ms: u64,
        /// Serve https with this PEM certificate chain (with --tls-key); plain HTTP without.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Require client certificates signed by this PEM CA (mutual TLS).
        #[arg(long, requires = "tls_cert")]
        tls_client_ca: Option<PathBuf>,
        /// Lower the cap on open connections (tests).
        #[arg(long, hide = true, default_value_t = crate::bounds::CONNECTIONS_MAX)]
        connections_max: usize,
        /// Lower the cap on open event streams (tests).
        #[arg(long, hide = true, default_value_t = crate::bounds::EVENT_SUBSCRIBERS_MAX)]
        event_subscribers_max: usize,
        /// Lower the cap on held long polls (tests).
        #[arg(long, hide = true, default_value_t = crate::bounds::LONG_POLLS_MAX)]
        long_polls_max: usize,
        /// Lower the signed requests one account may make per second (tests).
        #[arg(long, hide = true, default_value_t = crate::bounds::ACCOUNT_REQUESTS_PER_SECOND)]
        account_requests_per_second: u64,
        /// Lower how long a connection may stay idle before it is closed, in ms (tests).
        #[arg(long, hide = true, default_value_t = crate::bounds::CONNECTION_IDLE_MS_MAX)]
        connection_idle_ms: u64,
        /// Lower how long a request's head may take to arrive, in ms (tests).
        #[arg(long, hide = true, default_value_t = crate::bounds::HEADER_READ_MS_MAX)]
        header_read_ms: u64,
    },
    /// Write a new PKCS#8 PEM key and print its public key.
    Keygen {
        #[arg(long, default_value = "ed25519")]
        scheme: Scheme,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Prepare a data directory for `run` from a genesis file; writes <data-dir>/config.toml.
    Init {
        #[arg(long)]
        genesis: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        validator_id: Option<String>,
        #[arg(long)]
        validator_key: Option<PathBuf>,
        #[arg(long, default_value = RPC_ADDR_DEFAULT)]
        rpc_addr: SocketAddr,
    },
    /// Run a node from a TOML config (see `init`).
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Write keys, genesis and configs of a local network into --dir and print its nodes as
    /// JSON (what `corridor-testnet up` starts).
    PlanNetwork {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 4)]
        validators: usize,
        #[arg(long, default_value_t = 0)]
        observers: usize,
        /// The validators' consensus key scheme.
        #[arg(long, default_value = "ed25519")]
        scheme: Scheme,
    },
}

pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev {
            data_dir,
            rpc_addr,
            block_interval_ms,
            tls_cert,
            tls_key,
            tls_client_ca,
            connections_max,
            event_subscribers_max,
            long_polls_max,
            account_requests_per_second,
            connection_idle_ms,
            header_read_ms,
        } => {
            let tls = tls_cert.zip(tls_key).map(|(cert, key)| TlsFiles {
                cert,
                key,
                client_ca: tls_client_ca,
            });
            let caps = Caps {
                connections: connections_max.max(1),
                subscribers: event_subscribers_max,
                long_polls: long_polls_max,
                account_requests_per_second,
                connection_idle_ms,
                header_read_ms,
            };
            dev(&data_dir, rpc_addr, block_interval_ms, tls, caps)
        }
        Command::Keygen { scheme, out } => keygen(scheme, out.as_deref()),
        Command::Init {
            genesis,
            data_dir,
            validator_id,
            validator_key,
            rpc_addr,
        } => init(&genesis, &data_dir, validator_id, validator_key, rpc_addr),
        Command::Run { config } => run(&config),
        Command::PlanNetwork {
            dir,
            validators,
            observers,
            scheme,
        } => crate::testnet::plan(&dir, validators, observers, scheme).map(|nodes| {
            println!("{}", serde_json::to_string_pretty(&nodes).expect("nodes serialize"));
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}: {}", error.code, error.message);
            ExitCode::FAILURE
        }
    }
}

fn io_error(what: &str, path: &Path, error: std::io::Error) -> Error {
    Error::new(ErrorCode::Unavailable, format!("{what} {}: {error}", path.display()))
}

fn keygen(scheme: Scheme, out: Option<&Path>) -> Result<(), Error> {
    let key = PrivateKey::generate(scheme)?;
    match out {
        Some(path) => {
            if path.exists() {
                return Err(Error::new(
                    ErrorCode::BadRequest,
                    format!("{} exists; not overwriting a key", path.display()),
                ));
            }
            key.write_file(path)
                .map_err(|error| io_error("cannot write", path, error))?;
        }
        None => print!("{}", key.to_pem()?),
    }
    println!("{}", key.public_key());
    if let Ok(secret) = crate::network::network_secret(&key) {
        // An Ed25519 key may serve as a network key: its libp2p identity. On stderr, so stdout
        // stays the public key alone for scripts.
        eprintln!("peer id (as a network key): {}", crate::p2p::peer_id_of(&secret));
    }
    Ok(())
}

fn dev(
    data_dir: &Path,
    rpc_addr: SocketAddr,
    block_interval_ms: u64,
    tls: Option<TlsFiles>,
    caps: Caps,
) -> Result<(), Error> {
    let keys_dir = data_dir.join("keys");
    let genesis_path = data_dir.join("genesis.json");
    let genesis = if genesis_path.exists() {
        Genesis::read(&genesis_path)?
    } else if data_dir.join("db").exists() || keys_dir.exists() {
        // A chain or keys without their genesis: never generate new keys over them.
        return Err(Error::new(
            ErrorCode::BadRequest,
            format!(
                "{} has a chain or keys but no genesis.json; restore it or use a new --data-dir",
                data_dir.display()
            ),
        ));
    } else {
        std::fs::create_dir_all(&keys_dir).map_err(|error| io_error("cannot create", &keys_dir, error))?;
        let genesis = dev_genesis(&keys_dir, now_ms())?;
        write_atomically(&genesis_path, &genesis.to_json())?;
        genesis
    };
    let validator_key = PrivateKey::read_file(&keys_dir.join(format!("{DEV_VALIDATOR}.key")))?;
    let validator = AccountId::new(DEV_VALIDATOR)?;
    println!("corridor dev chain `{}`", genesis.chain_id);
    println!("  genesis hash: {} (what signatures bind)", genesis.hash()?);
    println!("  data:  {}", data_dir.display());
    println!(
        "  keys:  {} (acme@icbc-cn signs with SM2, the others with Ed25519)",
        keys_dir.display()
    );
    match &tls {
        Some(files) => println!("  rpc:   https://{rpc_addr} (certificate {})", files.cert.display()),
        None => println!("  rpc:   http://{rpc_addr} (plain HTTP: a dev chain, meant for loopback only)"),
    }
    println!("  reads: sign with --key; reads are scoped to that account's role (docs/security.md)");
    println!(
        "  try:   corridor --rpc {}://{rpc_addr}{} --key {}/acme@icbc-cn.key transfer --to harbour@boc-hk --amount 100.00 --currency CNY",
        if tls.is_some() { "https" } else { "http" },
        if tls.is_some() { " --ca CA.pem" } else { "" },
        keys_dir.display()
    );
    let role = Role::validator(&genesis, &validator, validator_key)?;
    serve(
        &data_dir.join("db"),
        genesis,
        rpc_addr,
        role,
        None,
        block_interval_ms,
        ApiOptions { tls, caps },
    )
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let temporary = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        // The rename is durable once the directory is.
        let directory = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::File::open(directory)?.sync_all()
    };
    write().map_err(|error| io_error("cannot write", path, error))
}

fn init(
    genesis_path: &Path,
    data_dir: &Path,
    validator_id: Option<String>,
    validator_key: Option<PathBuf>,
    rpc_addr: SocketAddr,
) -> Result<(), Error> {
    let genesis = Genesis::read(genesis_path)?;
    std::fs::create_dir_all(data_dir).map_err(|error| io_error("cannot create", data_dir, error))?;
    let config_path = data_dir.join("config.toml");
    if config_path.exists() {
        return Err(Error::new(
            ErrorCode::BadRequest,
            format!("{} exists; not overwriting", config_path.display()),
        ));
    }
    write_atomically(&data_dir.join("genesis.json"), &genesis.to_json())?;
    let validator_key_file = validator_key
        .map(|path| std::path::absolute(&path).map_err(|error| io_error("cannot resolve", &path, error)))
        .transpose()?;
    let config = Config {
        data_dir: PathBuf::from("db"),
        genesis_file: PathBuf::from("genesis.json"),
        rpc_addr,
        validator_id,
        validator_key_file,
        block_interval_ms: BLOCK_INTERVAL_MS_DEFAULT,
        tls_cert_file: None,
        tls_key_file: None,
        tls_client_ca_file: None,
        network_key_file: None,
        p2p_listen: None,
        peers: Vec::new(),
    };
    write_atomically(&config_path, config.to_toml().as_bytes())?;
    // Write the genesis state now, so a bad genesis fails here and not at first start.
    drop(Chain::open(&data_dir.join("db"), genesis, true)?);
    println!(
        "initialized {}; start with: corridord run --config {}",
        data_dir.display(),
        config_path.display()
    );
    Ok(())
}

fn run(config_path: &Path) -> Result<(), Error> {
    let config = Config::read(config_path)?;
    let genesis = Genesis::read(&config.genesis_file)?;
    let networked = genesis.validators.len() > 1 || !genesis.observers.is_empty();
    let role = match (&config.validator_id, &config.validator_key_file) {
        (Some(validator_id), Some(key_file)) => {
            let validator = AccountId::new(validator_id)?;
            let key = PrivateKey::read_file(key_file)?;
            Role::validator(&genesis, &validator, key)?
        }
        (None, None) if networked => Role::Observer,
        (None, None) => {
            return Err(Error::new(
                ErrorCode::BadRequest,
                "an observer follows validators over the network, and this genesis lists no peers",
            ));
        }
        _ => {
            return Err(Error::new(
                ErrorCode::BadRequest,
                "validator_id and validator_key_file go together (an observer sets neither)",
            ));
        }
    };
    let network = if networked { Some(network_setup(&config)?) } else { None };
    let tls = config.tls_files()?;
    serve(
        &config.data_dir,
        genesis,
        config.rpc_addr,
        role,
        network,
        config.block_interval_ms,
        ApiOptions {
            tls,
            caps: Caps::default(),
        },
    )
}

/// The network key, listen address and peers of a node on a chain with peers.
fn network_setup(config: &Config) -> Result<crate::network::Setup, Error> {
    let missing = |what: &str| Error::new(ErrorCode::BadRequest, format!("this genesis has peers: set {what}"));
    let key_file = config
        .network_key_file
        .as_ref()
        .ok_or_else(|| missing("network_key_file"))?;
    let listen = config.p2p_listen.as_ref().ok_or_else(|| missing("p2p_listen"))?;
    let secret_key = crate::network::network_secret(&PrivateKey::read_file(key_file)?)?;
    let listen = listen
        .parse()
        .map_err(|error| Error::new(ErrorCode::BadRequest, format!("p2p_listen {listen}: {error}")))?;
    let peers = config
        .peers
        .iter()
        .map(|peer| crate::network::parse_peer(peer))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(crate::network::Setup {
        secret_key,
        listen,
        peers,
    })
}

/// This node's part in consensus.
enum Role {
    /// Validator `me` of genesis, signing with `key`.
    Validator { me: u16, key: Box<PrivateKey> },
    /// Follows and verifies, never votes.
    Observer,
}

impl Role {
    fn validator(genesis: &Genesis, validator: &AccountId, key: PrivateKey) -> Result<Role, Error> {
        let me = genesis
            .validators
            .iter()
            .position(|v| &v.id == validator && v.public_key == key.public_key())
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::KeyMismatch,
                    format!("{validator} with this key is not a genesis validator"),
                )
            })?;
        let me = u16::try_from(me).expect("genesis bounds the validator count");
        Ok(Role::Validator { me, key: Box::new(key) })
    }
}

/// Start the consensus driver (a validator) or the follower (an observer) on its own thread.
fn start_consensus<T: crate::driver::Transport>(
    chain: &Arc<Chain>,
    role: Role,
    transport: T,
    interval: Duration,
) -> Result<(std::thread::JoinHandle<()>, std::sync::mpsc::Sender<Event>), Error> {
    let name = match role {
        Role::Validator { .. } => "validator",
        Role::Observer => "observer",
    };
    *chain.role.lock() = Some(name.into());
    let spawned = match role {
        Role::Validator { me, key } => {
            let (driver, events) = Driver::new(Arc::clone(chain), me, *key, transport, interval);
            std::thread::Builder::new()
                .name("consensus".into())
                .spawn(move || driver.run())
                .map(|thread| (thread, events))
        }
        Role::Observer => {
            let (follower, events) = crate::follower::Follower::new(Arc::clone(chain), transport);
            std::thread::Builder::new()
                .name("follower".into())
                .spawn(move || follower.run())
                .map(|thread| (thread, events))
        }
    };
    spawned.map_err(|error| Error::new(ErrorCode::Unavailable, format!("cannot start consensus: {error}")))
}

/// How the HTTP API is served: TLS or not, and its resource caps.
struct ApiOptions {
    tls: Option<TlsFiles>,
    caps: Caps,
}

/// How long a stopping node lets open requests finish before it closes them.
const SHUTDOWN_GRACE_MS: u64 = 500;

/// Open the chain, start block production and the API, and run until SIGINT or SIGTERM.
fn serve(
    db: &Path,
    genesis: Genesis,
    rpc_addr: SocketAddr,
    role: Role,
    network: Option<crate::network::Setup>,
    block_interval_ms: u64,
    api: ApiOptions,
) -> Result<(), Error> {
    let ApiOptions { tls, caps } = api;
    // A bad certificate or key stops the node before anything else starts.
    let tls = tls.as_ref().map(crate::tls::server_config).transpose()?;
    let chain = Chain::open(db, genesis, true)?;
    // A full walk of the state; a node whose stored balances do not add up must not serve.
    if let Err(broken) = chain.audit_conservation() {
        return Err(Error::new(
            ErrorCode::Unavailable,
            format!("conservation audit failed: {broken}"),
        ));
    }
    tracing::info!(height = chain.head().height, state_root = %chain.head().state_root, "chain open");
    // Nothing answered 202 before a restart is forgotten: admit the journal again.
    let (readmitted, dropped) = chain.replay_journal()?;
    if readmitted + dropped > 0 {
        tracing::info!(readmitted, dropped, "pool journal replayed");
    }
    // The audit log of reads lives beside the database; one that does not verify stops us.
    let audit = Arc::new(crate::audit::AuditLog::open(&db.with_file_name("audit.log"))?);
    let interval = Duration::from_millis(block_interval_ms.max(1));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Error::new(ErrorCode::Unavailable, format!("cannot start the runtime: {error}")))?;
    let (driver_thread, events, _network) = match network {
        None => {
            let (thread, events) = start_consensus(&chain, role, Alone, interval)?;
            (thread, events, None)
        }
        Some(setup) => {
            let network = runtime.block_on(crate::network::Network::start(setup, &chain))?;
            tracing::info!(
                peer_id = %network.handle.local_peer_id(),
                listening = ?network.handle.listen_addrs(),
                "joined the network"
            );
            let transport = runtime.block_on(async { network.transport() });
            let (thread, events) = start_consensus(&chain, role, transport, interval)?;
            network.connect(events.clone());
            (thread, events, Some(network))
        }
    };
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(rpc_addr)
            .await
            .map_err(|error| Error::new(ErrorCode::Unavailable, format!("cannot listen on {rpc_addr}: {error}")))?;
        let router = crate::api::router(Arc::clone(&chain), audit, Bounds::new(caps));
        match tls {
            None => {
                tracing::info!("listening on http://{rpc_addr}");
                serve_until_stopped(CappedListener::new(listener, &caps), router, &caps).await
            }
            Some(config) => {
                tracing::info!("listening on https://{rpc_addr}");
                let listener = TlsListener::new(listener, config)
                    .map_err(|error| Error::new(ErrorCode::Unavailable, format!("cannot listen: {error}")))?;
                serve_until_stopped(CappedListener::new(listener, &caps), router, &caps).await
            }
        }
    });
    // Blocking API work still queued must not hold the process.
    runtime.shutdown_timeout(Duration::from_millis(SHUTDOWN_GRACE_MS));
    let _ = events.send(Event::Stop);
    if driver_thread.join().is_err() {
        return Err(Error::new(
            ErrorCode::Unavailable,
            "the consensus driver stopped on a broken invariant",
        ));
    }
    tracing::info!(height = chain.head().height, "stopped");
    served
}

/// Serve HTTP/1 until SIGTERM or SIGINT: stop accepting, let requests in flight finish, and
/// after `SHUTDOWN_GRACE_MS` drop what is still open (event streams and long polls never end
/// by themselves), so the node stops promptly. Each connection is hyper's HTTP/1 with a timer,
/// so a request's head must arrive within `caps.header_read_ms` (axum's `serve` sets no timer
/// and so no such deadline).
async fn serve_until_stopped<L>(mut listener: L, router: axum::Router, caps: &Caps) -> Result<(), Error>
where
    L: axum::serve::Listener,
{
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stopping.send(true);
    });
    let header_read = Duration::from_millis(caps.header_read_ms.max(1));
    let mut connections = tokio::task::JoinSet::new();
    let mut stop = stopped.clone();
    loop {
        let (io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        while connections.try_join_next().is_some() {}
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let mut stop = stopped.clone();
        connections.spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_read)
                .serve_connection(hyper_util::rt::TokioIo::new(io), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stop.wait_for(|stop| *stop) => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    let drained = tokio::time::timeout(Duration::from_millis(SHUTDOWN_GRACE_MS), async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tracing::info!("closing connections still open after {SHUTDOWN_GRACE_MS} ms");
    }
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
    }
}
