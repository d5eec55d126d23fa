//! `corridor-testnet chaos`: faults under load against a network `up` started, then a check
//! that every node agrees.
//!
//! For `--seconds`, transfers circulate among the dev chain's corporates (each sender's nonces
//! in order, sent to a random running node), while on a seeded schedule validators are killed
//! (SIGKILL), paused (SIGSTOP), resumed (SIGCONT) and restarted, never more than f of them
//! faulty at once. Then every validator is brought back and the run checks: every transfer a
//! node acknowledged (202) is finalized on every node; every node has the same block hash and
//! state root at every height up to the lowest head; the corporates' CNY adds up to what it did
//! before (transfers among them move value, they create or destroy none).

use crate::network::{NodeEntry, read_network, sibling};
use corridor_sdk::api::{AccountView, Status};
use corridor_sdk::{AccountId, Amount, CurrencyCode, Hash, Operation, PrivateKey, Transaction, TransferLeg};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The dev chain's corporates and their home currencies: each pays the next in its own.
const SENDERS: [&str; 4] = [
    "acme@icbc-cn",
    "harbour@boc-hk",
    "siam-rice@kbank-th",
    "gulf-trade@enbd-ae",
];
const CURRENCIES: [&str; 4] = ["CNY", "HKD", "THB", "AED"];
/// How long the network may take to agree once every validator is back.
const SETTLE_MS_MAX: u64 = 120_000;

#[derive(clap::Args)]
pub struct ChaosArgs {
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
    /// How long faults are injected.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Seed of the fault schedule.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time between fault actions.
    #[arg(long, default_value_t = 2_000)]
    pub interval_ms: u64,
    /// Transfers per second offered (spread over the senders).
    #[arg(long, default_value_t = 40)]
    pub rate: u64,
    /// The `corridord` binary (default: the one beside this program).
    #[arg(long)]
    pub corridord: Option<PathBuf>,
}

/// What chaos did to one validator.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Running,
    Killed,
    Paused,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

struct Validator {
    node: NodeEntry,
    state: State,
    pid: u32,
}

#[derive(Default)]
struct Load {
    acknowledged: Vec<Hash>,
    /// What acknowledged each: (node, HTTP status, sender, nonce), for the report of a loss.
    acknowledged_by: BTreeMap<Hash, (String, u16, &'static str, u64)>,
    refused: u64,
}

async fn get<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Option<T> {
    let response = http.get(url).timeout(Duration::from_secs(5)).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// Reads scoped to an account are signed; the regulator may read every account.
async fn account(
    http: &reqwest::Client,
    rpc: &str,
    genesis_hash: Hash,
    reader: &PrivateKey,
    id: &str,
) -> Option<AccountView> {
    signed_get(http, rpc, genesis_hash, reader, &format!("/v1/accounts/{id}")).await
}

async fn totals(
    http: &reqwest::Client,
    rpc: &str,
    genesis_hash: Hash,
    reader: &PrivateKey,
) -> Option<BTreeMap<CurrencyCode, rust_decimal::Decimal>> {
    let mut totals = BTreeMap::new();
    for sender in SENDERS {
        let view = account(http, rpc, genesis_hash, reader, sender).await?;
        for (code, amount) in view.balances {
            *totals.entry(code).or_default() += amount.decimal();
        }
    }
    Some(totals)
}

/// Offer transfers until `stop`: each sender pays the next one 0.01 CNY, nonces in order, to a
/// random node of `rpcs`; a refused or unanswered submission is tried again on another node.
/// Where the load goes and how fast.
struct LoadPlan {
    http: reqwest::Client,
    rpcs: Vec<String>,
    keys: PathBuf,
    genesis_hash: Hash,
    rate: u64,
    nonces: BTreeMap<&'static str, u64>,
}

async fn offer_load(
    plan: LoadPlan,
    stop: Arc<std::sync::atomic::AtomicBool>,
    load: Arc<Mutex<Load>>,
) -> Result<(), String> {
    let LoadPlan {
        http,
        rpcs,
        keys,
        genesis_hash,
        rate,
        mut nonces,
    } = plan;
    let mut senders = Vec::new();
    for sender in SENDERS {
        let key = PrivateKey::read_file(&keys.join(format!("{sender}.key"))).map_err(|e| e.message)?;
        senders.push((sender, key));
    }
    let pause = Duration::from_micros(1_000_000 / rate.max(1));
    let mut unanswered: BTreeMap<&str, corridor_sdk::SignedTransaction> = BTreeMap::new();
    let mut turn = 0usize;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let slot = turn % senders.len();
        let to = SENDERS[(slot + 1) % SENDERS.len()];
        turn += 1;
        let (sender, key) = &senders[slot];
        let nonce = nonces[sender];
        // A submission that got no 202 is sent again as the same bytes, never re-signed: a
        // node may have admitted it without answering, and two different transactions with
        // one nonce would leave one of them (maybe the acknowledged one) never final.
        let tx = match unanswered.get(sender) {
            Some(tx) => tx.clone(),
            None => Transaction::new(
                genesis_hash,
                AccountId::new(sender).expect("dev id"),
                nonce,
                crate::bench::now_ms() + 600_000,
                Operation::Transfer(TransferLeg {
                    to: AccountId::new(to).expect("dev id"),
                    currency: CurrencyCode::new(CURRENCIES[slot]).expect("code"),
                    amount: Amount::parse("0.01").expect("amount"),
                    memo: None,
                }),
            )
            .sign(key),
        };
        let body = serde_json::json!({ "tx": hex::encode(tx.to_bytes()) });
        let rpc = &rpcs[rng.below(rpcs.len())];
        let answer = http
            .post(format!("{rpc}/v1/transactions"))
            .json(&body)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        let status = answer.as_ref().map(|response| response.status().as_u16()).unwrap_or(0);
        let code = match answer {
            Ok(response) if status != 202 => response
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|body| body["error"]["code"].as_str().map(str::to_string)),
            _ => None,
        };
        // 202: admitted; `duplicate` or `nonce_too_low` for bytes sent before: an earlier try
        // got in (this generator signs one transaction per nonce).
        let known = matches!(code.as_deref(), Some("duplicate" | "nonce_too_low")) && unanswered.contains_key(sender);
        if status == 202 || known {
            let hash = tx.hash(corridor_sdk::HashAlgorithm::Sha256);
            let mut load = load.lock().await;
            load.acknowledged.push(hash);
            load.acknowledged_by.insert(hash, (rpc.clone(), status, sender, nonce));
            nonces.insert(sender, nonce + 1);
            unanswered.remove(sender);
        } else {
            load.lock().await.refused += 1;
            unanswered.insert(sender, tx);
        }
        tokio::time::sleep(pause).await;
    }
    Ok(())
}

pub async fn run(args: ChaosArgs) -> Result<(), String> {
    corridor_sdk::client::install_tls_provider();
    let corridord = args.corridord.clone().unwrap_or_else(|| sibling("corridord"));
    let nodes = read_network(&args.dir)?;
    let http = reqwest::Client::new();
    let status: Status = get(&http, &format!("{}/v1/status", nodes[0].rpc))
        .await
        .ok_or("the network does not answer; start it with `corridor-testnet up`")?;
    let genesis_hash = status.genesis_hash;
    let keys = args.dir.join("keys");
    let reader = PrivateKey::read_file(&keys.join("regulator.key")).map_err(|e| e.message)?;
    let total_before = totals(&http, &nodes[0].rpc, genesis_hash, &reader)
        .await
        .ok_or("cannot read the corporates' balances")?;
    let mut nonces = BTreeMap::new();
    for sender in SENDERS {
        let view = account(&http, &nodes[0].rpc, genesis_hash, &reader, sender)
            .await
            .ok_or("cannot read the corporates' nonces")?;
        nonces.insert(sender, view.next_nonce);
    }
    let mut validators: Vec<Validator> = nodes
        .iter()
        .filter(|node| node.role == "validator")
        .map(|node| Validator {
            node: node.clone(),
            state: State::Running,
            pid: node.pid.unwrap_or(0),
        })
        .collect();
    let faults_max = (validators.len() - 1) / 3;
    println!(
        "chaos: {} validators (at most {faults_max} faulty at once), {} s, seed {}",
        validators.len(),
        args.seconds,
        args.seed
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = Arc::new(Mutex::new(Load::default()));
    let rpcs: Vec<String> = nodes.iter().map(|node| node.rpc.clone()).collect();
    let plan = LoadPlan {
        http: http.clone(),
        rpcs,
        keys: keys.clone(),
        genesis_hash,
        rate: args.rate,
        nonces,
    };
    let offered = tokio::spawn(offer_load(plan, Arc::clone(&stop), Arc::clone(&load)));
    let mut rng = Rng(args.seed.max(1));
    let mut restarted: Vec<Child> = Vec::new();
    let mut actions: BTreeMap<&'static str, u64> = BTreeMap::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(args.seconds) {
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
        let faulty: Vec<usize> = (0..validators.len())
            .filter(|i| validators[*i].state != State::Running)
            .collect();
        let heal = !faulty.is_empty() && (faulty.len() >= faults_max || rng.below(2) == 0);
        let name = if heal {
            let index = faulty[rng.below(faulty.len())];
            recover(&mut validators[index], &corridord, &mut restarted)?
        } else if faults_max > 0 {
            let running: Vec<usize> = (0..validators.len()).filter(|i| !faulty.contains(i)).collect();
            let validator = &mut validators[running[rng.below(running.len())]];
            if rng.below(2) == 0 {
                signal(validator.pid, "KILL");
                validator.state = State::Killed;
                "kill"
            } else {
                signal(validator.pid, "STOP");
                validator.state = State::Paused;
                "pause"
            }
        } else {
            continue;
        };
        *actions.entry(name).or_default() += 1;
        let load = load.lock().await;
        println!(
            "  {:>5.1} s  {name:<7} acknowledged {} refused {}",
            started.elapsed().as_secs_f64(),
            load.acknowledged.len(),
            load.refused
        );
    }
    for validator in validators.iter_mut().filter(|v| v.state != State::Running) {
        let name = recover(validator, &corridord, &mut restarted)?;
        *actions.entry(name).or_default() += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    offered.await.map_err(|error| error.to_string())??;
    let acknowledged = std::mem::take(&mut load.lock().await.acknowledged);
    let verdict = check(&http, &nodes, &acknowledged, genesis_hash, &reader, total_before).await;
    if let Err(why) = &verdict
        && let Some(hash) = why.split_whitespace().next().and_then(|text| Hash::from_hex(text).ok())
    {
        println!("acknowledged by {:?}", load.lock().await.acknowledged_by.get(&hash));
    }
    // The validators chaos restarted are its children: hand them back to the network by
    // recording their pids, so `down` stops them.
    let mut listed = read_network(&args.dir)?;
    for validator in &validators {
        if let Some(entry) = listed.iter_mut().find(|n| n.name == validator.node.name) {
            entry.pid = Some(validator.pid);
        }
    }
    let text = serde_json::to_string_pretty(&listed).map_err(|e| e.to_string())?;
    std::fs::write(args.dir.join("network.json"), text).map_err(|e| e.to_string())?;
    println!("actions: {actions:?}");
    for child in restarted {
        // Left running as part of the network; not waited for.
        std::mem::forget(child);
    }
    verdict
}

fn recover(validator: &mut Validator, corridord: &Path, restarted: &mut Vec<Child>) -> Result<&'static str, String> {
    match validator.state {
        State::Paused => {
            signal(validator.pid, "CONT");
            validator.state = State::Running;
            Ok("resume")
        }
        State::Killed => {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&validator.node.log)
                .map_err(|e| e.to_string())?;
            let child = Command::new(corridord)
                .arg("run")
                .arg("--config")
                .arg(&validator.node.config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|error| format!("cannot restart {}: {error}", validator.node.name))?;
            validator.pid = child.id();
            validator.state = State::Running;
            restarted.push(child);
            Ok("restart")
        }
        State::Running => Ok("none"),
    }
}

async fn check(
    http: &reqwest::Client,
    nodes: &[NodeEntry],
    acknowledged: &[Hash],
    genesis_hash: Hash,
    reader: &PrivateKey,
    total_before: BTreeMap<CurrencyCode, rust_decimal::Decimal>,
) -> Result<(), String> {
    let settle = Instant::now();
    // Every acknowledged transfer final everywhere.
    for node in nodes {
        for hash in acknowledged {
            loop {
                let view: Option<corridor_sdk::api::TxView> = signed_get(
                    http,
                    &node.rpc,
                    genesis_hash,
                    reader,
                    &format!("/v1/transactions/{hash}"),
                )
                .await;
                if view.is_some_and(|v| v.status == corridor_sdk::api::TxStatus::Finalized) {
                    break;
                }
                if settle.elapsed() > Duration::from_millis(SETTLE_MS_MAX) {
                    let diagnosis = diagnose(http, nodes, hash, genesis_hash, reader).await;
                    return Err(format!(
                        "{hash} (acknowledged) is not final on {}; each node's view: {diagnosis}",
                        node.name
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let mut heights = Vec::new();
    for node in nodes {
        let status: Status = get(http, &format!("{}/v1/status", node.rpc))
            .await
            .ok_or_else(|| format!("{} does not answer", node.name))?;
        heights.push(status.height);
    }
    let height = heights.iter().copied().min().unwrap_or(0);
    for h in 1..=height {
        let mut seen = BTreeSet::new();
        for node in nodes {
            let block: serde_json::Value = get(http, &format!("{}/v1/blocks/{h}", node.rpc))
                .await
                .ok_or_else(|| format!("{} lacks block {h}", node.name))?;
            seen.insert((block["hash"].to_string(), block["header"]["state_root"].to_string()));
        }
        if seen.len() != 1 {
            return Err(format!("nodes disagree at height {h}: {seen:?}"));
        }
    }
    let mut seen_totals = BTreeSet::new();
    for node in nodes {
        let total = totals(http, &node.rpc, genesis_hash, reader)
            .await
            .ok_or_else(|| format!("cannot read balances on {}", node.name))?;
        seen_totals.insert(total);
    }
    if seen_totals.len() != 1 || !seen_totals.contains(&total_before) {
        return Err(format!(
            "the corporates' holdings were {total_before:?}, now {seen_totals:?}"
        ));
    }
    println!(
        "agreed: {} acknowledged transfers final on all {} nodes; identical blocks and state roots at heights 1..={height} (heads {heights:?}); the corporates' holdings unchanged: {total_before:?}",
        acknowledged.len(),
        nodes.len()
    );
    Ok(())
}

/// Each node's view of a transaction that did not finalize, and its sender's next nonce
/// there (a nonce below the transaction's says it waits behind a gap; equal, that no proposer
/// took it).
async fn diagnose(
    http: &reqwest::Client,
    nodes: &[NodeEntry],
    hash: &Hash,
    genesis_hash: Hash,
    reader: &PrivateKey,
) -> String {
    let mut views = Vec::new();
    for node in nodes {
        let path = format!("/v1/transactions/{hash}");
        let view: Option<corridor_sdk::api::TxView> = signed_get(http, &node.rpc, genesis_hash, reader, &path).await;
        let signed = view
            .as_ref()
            .and_then(|view| view.tx.as_deref())
            .and_then(|text| hex::decode(text).ok())
            .and_then(|bytes| corridor_sdk::SignedTransaction::from_bytes(&bytes).ok());
        let sender = match &signed {
            Some(signed) => {
                let path = format!("/v1/accounts/{}", signed.tx.sender);
                let account: Option<corridor_sdk::api::AccountView> =
                    signed_get(http, &node.rpc, genesis_hash, reader, &path).await;
                format!(
                    "{} nonce {} (next there {:?})",
                    signed.tx.sender,
                    signed.tx.nonce,
                    account.map(|a| a.next_nonce)
                )
            }
            None => "unknown sender".into(),
        };
        let state = view.map_or("unknown".into(), |view| {
            format!("{:?} {:?}", view.status, view.error.map(|e| e.code))
        });
        views.push(format!("{}: {state}, {sender}", node.name));
    }
    views.join("; ")
}

async fn signed_get<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    rpc: &str,
    genesis_hash: Hash,
    reader: &PrivateKey,
    path: &str,
) -> Option<T> {
    let unsigned = corridor_sdk::request_auth::RequestToSign {
        genesis_hash,
        method: "GET",
        path,
        query: "",
        body: b"",
        timestamp_ms: crate::bench::now_ms(),
    };
    let mut request = http.get(format!("{rpc}{path}")).timeout(Duration::from_secs(5));
    for (name, value) in corridor_sdk::request_auth::sign_request(&unsigned, reader) {
        request = request.header(name, value);
    }
    let response = request.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}
