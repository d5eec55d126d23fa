//! `corridor-testnet up | down`: a local network of `corridord` processes on loopback.
//!
//! `up` plans the network with `corridord plan-network` (keys, genesis, configs) unless `DIR`
//! already holds one, starts every node, writes `DIR/network.json` (name, role, rpc URL, p2p
//! address, pid), prints the URLs, and stops everything on Ctrl-C or SIGTERM. `down` stops
//! the processes `network.json` lists.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long `up` waits for every node to answer `/v1/status`.
const START_WAIT_MS: u64 = 60_000;

#[derive(clap::Args)]
pub struct UpArgs {
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    #[arg(long, default_value_t = 1)]
    pub observers: usize,
    /// The validators' consensus key scheme: ed25519 or sm2.
    #[arg(long, default_value = "ed25519")]
    pub scheme: String,
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
    /// The `corridord` binary (default: the one beside this program).
    #[arg(long)]
    pub corridord: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct DownArgs {
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
}

pub use corridor_sdk::api::NetworkNode as NodeEntry;

/// A program installed beside this one (`corridord`).
pub(crate) fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

pub fn read_network(dir: &Path) -> Result<Vec<NodeEntry>, String> {
    let path = dir.join("network.json");
    let text = std::fs::read_to_string(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
}

fn write_network(dir: &Path, nodes: &[NodeEntry]) -> Result<(), String> {
    let path = dir.join("network.json");
    let text = serde_json::to_string_pretty(nodes).map_err(|error| error.to_string())?;
    std::fs::write(&path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn plan(args: &UpArgs, corridord: &Path) -> Result<Vec<NodeEntry>, String> {
    let output = Command::new(corridord)
        .arg("plan-network")
        .arg("--dir")
        .arg(&args.dir)
        .args(["--validators", &args.validators.to_string()])
        .args(["--observers", &args.observers.to_string()])
        .args(["--scheme", &args.scheme])
        .output()
        .map_err(|error| format!("cannot run {}: {error}", corridord.display()))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    serde_json::from_slice(&output.stdout).map_err(|error| format!("plan-network printed no network: {error}"))
}

fn start_node(corridord: &Path, node: &NodeEntry) -> Result<Child, String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&node.log)
        .map_err(|error| format!("cannot open {}: {error}", node.log.display()))?;
    Command::new(corridord)
        .arg("run")
        .arg("--config")
        .arg(&node.config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", node.name))
}

async fn wait_ready(nodes: &[NodeEntry]) -> Result<(), String> {
    corridor_sdk::client::install_tls_provider();
    let client = reqwest::Client::new();
    let started = Instant::now();
    for node in nodes {
        loop {
            let url = format!("{}/v1/status", node.rpc);
            if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if started.elapsed() > Duration::from_millis(START_WAIT_MS) {
                return Err(format!(
                    "{} did not answer at {} (see {})",
                    node.name,
                    node.rpc,
                    node.log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

fn stop(children: &mut [Child]) {
    for child in children.iter_mut() {
        // SIGTERM first: a node stops cleanly on it.
        let _ = Command::new("kill").arg(child.id().to_string()).status();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for child in children.iter_mut() {
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

pub async fn up(args: UpArgs) -> Result<(), String> {
    let corridord = args.corridord.clone().unwrap_or_else(|| sibling("corridord"));
    std::fs::create_dir_all(&args.dir).map_err(|error| format!("cannot create {}: {error}", args.dir.display()))?;
    let mut nodes = match args.dir.join("network.json").exists() {
        true => read_network(&args.dir)?,
        false => plan(&args, &corridord)?,
    };
    let mut children = Vec::new();
    for node in nodes.iter_mut() {
        let child = match start_node(&corridord, node) {
            Ok(child) => child,
            Err(error) => {
                stop(&mut children);
                return Err(error);
            }
        };
        node.pid = Some(child.id());
        children.push(child);
    }
    write_network(&args.dir, &nodes)?;
    if let Err(error) = wait_ready(&nodes).await {
        stop(&mut children);
        return Err(error);
    }
    println!("corridor network in {} ({} nodes)", args.dir.display(), nodes.len());
    for node in &nodes {
        println!("  {:<14} {:<9} {}  p2p {}", node.name, node.role, node.rpc, node.p2p);
    }
    println!("  keys:     {}/keys (the dev chain's accounts)", args.dir.display());
    println!(
        "  stop:     Ctrl-C, or corridor-testnet down --dir {}",
        args.dir.display()
    );
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|error| error.to_string())?;
    // Also return when every node has exited (e.g. `down` from another shell).
    let all_exited = async {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if nodes.iter().all(|node| node.pid.is_none_or(|pid| !alive(pid))) {
                return;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        _ = all_exited => {}
    }
    stop(&mut children);
    println!("stopped");
    Ok(())
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

pub fn down(args: DownArgs) -> Result<(), String> {
    let nodes = read_network(&args.dir)?;
    for node in &nodes {
        if let Some(pid) = node.pid.filter(|pid| alive(*pid)) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            println!("stopped {} (pid {pid})", node.name);
        }
    }
    Ok(())
}
