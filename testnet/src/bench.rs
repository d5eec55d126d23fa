//! `corridor-testnet bench`: load a running node with pre-signed transfers over HTTP.
//!
//! 1. Setup (not timed): a sponsor bank registers `--accounts` accounts with deterministic keys
//!    of `--scheme` and funds them, if that was not done before.
//! 2. Every transfer is signed before the clock starts: each account pays the next one,
//!    nonces in order, round-robin across accounts.
//! 3. Batches go to `POST /v1/transactions/batch` from `--connections` tasks, as fast as the
//!    node takes them or at `--rate` transfers/s. A watcher follows new blocks and stamps each
//!    transaction when its block is visible (committed and synced: the node only serves
//!    durable blocks).
//! 4. Report: finalized transfers/s from first submission to last finalization, and the
//!    latency from submitting a transaction's batch to seeing its block (p50, p99, max).
//!
//! Against one node (`--rpc`) or a whole network (`--dir`, the `DIR/network.json` that
//! `corridor-testnet up` wrote): with `--dir`, batch n goes to node n mod N (validators and
//! observers alike) and a watcher per node follows that node's blocks. A transfer counts as
//! finalized when its block is visible on the node it was submitted to; the report also says
//! when every node had it. Each node's `/metrics` is read before and after the run, and the
//! difference of its `corridor_stage_cpu_seconds_total` per transaction it committed is the
//! CPU cost per transaction by stage (see node/src/metrics.rs for what each stage holds).
//! While it runs, a progress line on stderr (only when stderr is a terminal) shows submitted
//! and finalized counts, the finalized rate and the elapsed time, redrawn every 250 ms.

use corridor_sdk::api::{AccountView, BatchSubmitResponse, BlockView, Status};
use corridor_sdk::{
    AccountId, Amount, CurrencyCode, Hash, Operation, PrivateKey, Scheme, SignedTransaction, Transaction, TransferLeg,
};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// The node's HTTP address (one node; see `--dir` for a network).
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    pub rpc: String,
    /// Load every node of the network `corridor-testnet up --dir DIR` started (its
    /// `network.json`), instead of `--rpc`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The dev chain's key directory (for the sponsor bank's key); default `DIR/keys`.
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// How often each node's height is polled while watching for blocks.
    #[arg(long, default_value_t = 10)]
    pub poll_ms: u64,
    /// The bank that registers and funds the bench accounts, and its currency.
    #[arg(long, default_value = "icbc-cn")]
    pub sponsor: String,
    #[arg(long, default_value = "CNY")]
    pub currency: String,
    /// Sending accounts.
    #[arg(long, default_value_t = 2_000)]
    pub accounts: usize,
    /// Transfers to submit (at most 60 per account: the mempool's nonce window is 64).
    #[arg(long, default_value_t = 100_000)]
    pub txs: usize,
    #[arg(long, default_value = "ed25519")]
    pub scheme: Scheme,
    /// Transactions per HTTP batch request.
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Concurrent submitting connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Target submission rate in transfers/s; 0 submits as fast as the node accepts.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Speak https to the node, trusting this PEM CA.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Concurrent readers doing signed `GET /v1/accounts/{id}` (as the sponsor, which may read
    /// its bench accounts) for as long as the settlement run lasts.
    #[arg(long, default_value_t = 0)]
    pub readers: usize,
}

/// The HTTP client: plain, or https trusting only `ca`.
pub(crate) fn http_client(ca: Option<&std::path::Path>) -> Result<reqwest::Client, BoxError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    corridor_sdk::client::install_tls_provider();
    let Some(ca) = ca else {
        return Ok(reqwest::Client::new());
    };
    let pem = std::fs::read(ca)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder().tls_backend_preconfigured(config).build()?)
}

/// How long the bench waits for the last transfer to finalize.
const FINALITY_TIMEOUT: Duration = Duration::from_secs(120);
const TRANSFERS_PER_ACCOUNT_MAX: usize = 60;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) struct Node {
    pub(crate) http: reqwest::Client,
    pub(crate) rpc: String,
    /// Signs reads (the sponsor, which may read its bench customers), with the chain id.
    pub(crate) reader: Option<(PrivateKey, Hash)>,
}

impl Node {
    pub(crate) async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Option<T>, BoxError> {
        let mut request = self.http.get(format!("{}{path}", self.rpc));
        // Status and blocks are public: only scoped reads are signed.
        let scoped = path.starts_with("/v1/accounts") || path.starts_with("/v1/transactions");
        if let Some((key, genesis_hash)) = self.reader.as_ref().filter(|_| scoped) {
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            let unsigned = corridor_sdk::request_auth::RequestToSign {
                genesis_hash: *genesis_hash,
                method: "GET",
                path,
                query,
                body: b"",
                timestamp_ms: now_ms(),
            };
            for (name, value) in corridor_sdk::request_auth::sign_request(&unsigned, key) {
                request = request.header(name, value);
            }
        }
        let response = request.send().await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(format!(
                "GET {path}: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            )
            .into());
        }
        Ok(Some(response.json().await?))
    }

    pub(crate) async fn submit(&self, txs: &[String]) -> Result<BatchSubmitResponse, BoxError> {
        let body = serde_json::json!({ "txs": txs });
        let response = self
            .http
            .post(format!("{}/v1/transactions/batch", self.rpc))
            .json(&body)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!(
                "batch refused: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            )
            .into());
        }
        Ok(response.json().await?)
    }

    pub(crate) async fn status(&self) -> Result<Status, BoxError> {
        self.get("/v1/status").await?.ok_or_else(|| "no status".into())
    }

    /// Submit `txs` and wait until every one is in a block.
    pub(crate) async fn settle(&self, txs: &[SignedTransaction]) -> Result<(), BoxError> {
        let hexes: Vec<String> = txs.iter().map(|tx| hex::encode(tx.to_bytes())).collect();
        let response = self.submit(&hexes).await?;
        for result in &response.results {
            if let Some(error) = &result.error {
                return Err(format!("setup transaction refused: {error}").into());
            }
        }
        for result in response.results {
            let hash = result.tx_hash.ok_or("no hash")?;
            let deadline = Instant::now() + FINALITY_TIMEOUT;
            loop {
                let view: Option<corridor_sdk::api::TxView> =
                    self.get(&format!("/v1/transactions/{hash}?wait_ms=5000")).await?;
                let view = view.ok_or("setup transaction vanished")?;
                match view.status {
                    corridor_sdk::api::TxStatus::Finalized => {
                        let outcome = view.receipt.map(|r| r.outcome);
                        if outcome != Some(corridor_sdk::Outcome::Success) {
                            return Err(format!("setup transaction failed: {outcome:?}").into());
                        }
                        break;
                    }
                    corridor_sdk::api::TxStatus::Rejected => {
                        return Err(format!("setup rejected: {:?}", view.error).into());
                    }
                    corridor_sdk::api::TxStatus::Pending if Instant::now() > deadline => {
                        return Err("setup timed out".into());
                    }
                    corridor_sdk::api::TxStatus::Pending => {}
                }
            }
        }
        Ok(())
    }
}

impl BenchArgs {
    /// Where the sponsor's key is: `--keys`, else `DIR/keys`.
    pub fn keys_dir(&self) -> Result<PathBuf, BoxError> {
        match (&self.keys, &self.dir) {
            (Some(keys), _) => Ok(keys.clone()),
            (None, Some(dir)) => Ok(dir.join("keys")),
            (None, None) => Err("--keys DIR is needed with --rpc".into()),
        }
    }

    pub fn sponsor_key(&self) -> Result<PrivateKey, BoxError> {
        Ok(PrivateKey::read_file(
            &self.keys_dir()?.join(format!("{}.key", self.sponsor)),
        )?)
    }
}

pub(crate) fn bench_key(scheme: Scheme, index: usize) -> PrivateKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(index as u64 + 1).to_le_bytes());
    seed[8] = match scheme {
        Scheme::Ed25519 => 1,
        Scheme::Sm2 => 2,
    };
    seed[31] = 0x5a;
    PrivateKey::from_seed(scheme, seed).expect("bench seeds are valid scalars")
}

pub(crate) fn bench_account(args: &BenchArgs, index: usize) -> Result<AccountId, BoxError> {
    Ok(AccountId::new(&format!(
        "bench-{}-{index}@{}",
        args.scheme, args.sponsor
    ))?)
}

/// Register and fund the bench accounts that do not exist yet. Returns each account's next nonce.
pub(crate) async fn setup(node: &Node, args: &BenchArgs, genesis_hash: Hash) -> Result<Vec<u64>, BoxError> {
    let sponsor_id = AccountId::new(&args.sponsor)?;
    let sponsor_key = args.sponsor_key()?;
    let currency = CurrencyCode::new(&args.currency)?;
    let mut nonces = Vec::with_capacity(args.accounts);
    let mut missing = Vec::new();
    for index in 0..args.accounts {
        let account = bench_account(args, index)?;
        let view: Option<AccountView> = node.get(&format!("/v1/accounts/{account}")).await?;
        match view {
            Some(view) => nonces.push(view.next_nonce),
            None => {
                nonces.push(0);
                missing.push(index);
            }
        }
    }
    if missing.is_empty() {
        return Ok(nonces);
    }
    eprintln!("setup: registering and funding {} accounts", missing.len());
    let sponsor_view: AccountView = node
        .get(&format!("/v1/accounts/{}", args.sponsor))
        .await?
        .ok_or("no sponsor account")?;
    let mut nonce = sponsor_view.next_nonce;
    let expiry = now_ms() + 3_600_000;
    for chunk in missing.chunks(corridor_sdk::limits::NONCE_WINDOW_MAX as usize / 2) {
        let mut txs = Vec::new();
        for &index in chunk {
            let op = Operation::register_account_proven(
                &genesis_hash,
                bench_account(args, index)?,
                &bench_key(args.scheme, index),
            );
            txs.push(Transaction::new(genesis_hash, sponsor_id.clone(), nonce, expiry, op).sign(&sponsor_key));
            nonce += 1;
        }
        node.settle(&txs).await?;
    }
    let legs: Vec<TransferLeg> = missing
        .iter()
        .map(|&index| -> Result<TransferLeg, BoxError> {
            Ok(TransferLeg {
                to: bench_account(args, index)?,
                currency: currency.clone(),
                amount: Amount::from(1_000),
                memo: None,
            })
        })
        .collect::<Result<_, _>>()?;
    for chunk in legs.chunks(corridor_sdk::limits::BATCH_LEGS_MAX) {
        let tx = Transaction::new(
            genesis_hash,
            sponsor_id.clone(),
            nonce,
            expiry,
            Operation::batch_transfer(chunk.to_vec()),
        );
        node.settle(&[tx.sign(&sponsor_key)]).await?;
        nonce += 1;
    }
    Ok(nonces)
}

/// Sign every transfer up front: round r, account i pays account i+1 with nonce base[i] + r.
fn presign(args: &BenchArgs, genesis_hash: Hash, nonces: &[u64]) -> Result<Vec<(Hash, String)>, BoxError> {
    let currency = CurrencyCode::new(&args.currency)?;
    let accounts: Vec<AccountId> = (0..args.accounts)
        .map(|i| bench_account(args, i))
        .collect::<Result<_, _>>()?;
    let keys: Vec<PrivateKey> = (0..args.accounts)
        .into_par_iter()
        .map(|i| bench_key(args.scheme, i))
        .collect();
    let expiry = now_ms() + 3_600_000;
    let amount = Amount::parse("0.01")?;
    let hash_algorithm = corridor_sdk::HashAlgorithm::Sha256;
    Ok((0..args.txs)
        .into_par_iter()
        .map(|n| {
            let (round, index) = (n / args.accounts, n % args.accounts);
            let op = Operation::transfer(
                accounts[(index + 1) % args.accounts].clone(),
                currency.clone(),
                amount,
                None,
            );
            let tx = Transaction::new(
                genesis_hash,
                accounts[index].clone(),
                nonces[index] + round as u64,
                expiry,
                op,
            );
            let signed = tx.sign(&keys[index]);
            let bytes = signed.to_bytes();
            (hash_algorithm.digest(&bytes), hex::encode(bytes))
        })
        .collect())
}

/// One node's share of a run.
#[derive(Debug, serde::Serialize)]
pub struct NodeReport {
    pub name: String,
    pub role: String,
    pub rpc: String,
    /// Transfers submitted to this node.
    pub submitted: usize,
    /// Bench transfers (submitted to any node) whose block this node showed.
    pub finalized: usize,
    /// From submitting a transfer (to whichever node) to seeing its block on this one.
    pub latency_p50_ms: u64,
    pub latency_p99_ms: u64,
    pub latency_max_ms: u64,
    pub blocks: u64,
    /// Transactions this node committed during the run (`corridor_txs_finalized_total`).
    pub txs_committed: u64,
    /// CPU nanoseconds per committed transaction, by stage (`corridor_stage_cpu_seconds_total`).
    pub stage_cpu_ns_per_tx: BTreeMap<String, u64>,
    /// Wall nanoseconds per committed transaction, by stage (waits for a core included).
    pub stage_wall_ns_per_tx: BTreeMap<String, u64>,
    /// The whole process's CPU nanoseconds per committed transaction; what the stages do not
    /// cover is HTTP and JSON handling, reads the bench made, and untimed helpers.
    pub process_cpu_ns_per_tx: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub scheme: String,
    pub accounts: usize,
    pub submitted: usize,
    pub refused: usize,
    /// Transfers whose block was visible on the node they were submitted to.
    pub finalized: usize,
    pub seconds_millis: u64,
    pub finalized_per_second: u64,
    pub latency_p50_ms: u64,
    pub latency_p99_ms: u64,
    pub latency_max_ms: u64,
    /// Blocks on the first node during the run.
    pub blocks: u64,
    pub target_rate: u64,
    /// Whether the run spoke https.
    pub tls: bool,
    /// Signed account reads served while the transfers settled (`--readers`).
    pub signed_reads: u64,
    pub signed_reads_per_second: u64,
    /// Transfers visible on every node, and when the last of them was (from the first
    /// submission), and the latency until the last node showed each.
    pub all_nodes_finalized: usize,
    pub all_nodes_seconds_millis: u64,
    pub all_nodes_latency_p50_ms: u64,
    pub all_nodes_latency_p99_ms: u64,
    pub all_nodes_latency_max_ms: u64,
    pub nodes: Vec<NodeReport>,
}

/// The counters of one node's `/metrics` that the report uses.
#[derive(Debug, Default, Clone)]
struct Scrape {
    txs_finalized: u64,
    process_cpu_ns: u64,
    stage_cpu_ns: BTreeMap<String, u64>,
    stage_wall_ns: BTreeMap<String, u64>,
}

/// "12.000345678" seconds as nanoseconds, without floats (decimals past nine are dropped).
fn seconds_to_nanos(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut digits: String = fraction.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    Some(whole.parse::<u64>().ok()?.checked_mul(1_000_000_000)? + digits.parse::<u64>().ok()?)
}

fn parse_scrape(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let stage = |metric: &str| {
            name.strip_prefix(metric)
                .and_then(|rest| rest.strip_prefix("{stage=\""))
                .and_then(|rest| rest.strip_suffix("\"}"))
                .map(str::to_owned)
        };
        if name == "corridor_txs_finalized_total" {
            scrape.txs_finalized = value.parse().unwrap_or(0);
        } else if name == "corridor_process_cpu_seconds_total" {
            scrape.process_cpu_ns = seconds_to_nanos(value).unwrap_or(0);
        } else if let Some(stage) = stage("corridor_stage_cpu_seconds_total") {
            scrape.stage_cpu_ns.insert(stage, seconds_to_nanos(value).unwrap_or(0));
        } else if let Some(stage) = stage("corridor_stage_wall_seconds_total") {
            scrape.stage_wall_ns.insert(stage, seconds_to_nanos(value).unwrap_or(0));
        }
    }
    scrape
}

async fn scrape(node: &Node) -> Result<Scrape, BoxError> {
    let response = node.http.get(format!("{}/metrics", node.rpc)).send().await?;
    if !response.status().is_success() {
        return Err(format!("GET {}/metrics: {}", node.rpc, response.status()).into());
    }
    Ok(parse_scrape(&response.text().await?))
}

/// The nodes to load: every node of `--dir`'s network, or the one `--rpc` names.
fn targets(args: &BenchArgs) -> Result<Vec<(String, String, String)>, BoxError> {
    match &args.dir {
        Some(dir) => {
            let nodes = crate::network::read_network(dir)?;
            if nodes.is_empty() {
                return Err(format!("{} lists no nodes", dir.join("network.json").display()).into());
            }
            Ok(nodes.into_iter().map(|n| (n.name, n.role, n.rpc)).collect())
        }
        None => Ok(vec![("node".into(), "node".into(), args.rpc.clone())]),
    }
}

fn percentile(sorted: &[u64], p: usize) -> u64 {
    sorted
        .get(sorted.len().saturating_sub(1) * p / 100)
        .copied()
        .unwrap_or(0)
}

/// Shared counts for the progress line.
#[derive(Default)]
struct Progress {
    submitted: AtomicUsize,
    /// Finalized on the node each was submitted to.
    finalized: AtomicUsize,
}

/// Redraw the progress line on stderr every 250 ms until `done`.
async fn show_progress(progress: Arc<Progress>, total: usize, started: Instant, done: Arc<AtomicBool>) {
    use std::io::Write as _;
    while !done.load(Relaxed) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let elapsed_ms = started.elapsed().as_millis().max(1) as u64;
        let finalized = progress.finalized.load(Relaxed);
        let line = format!(
            "\r\x1b[Ksubmitted {}/{total}  finalized {finalized}  {}/s  {}.{} s",
            progress.submitted.load(Relaxed),
            finalized as u64 * 1000 / elapsed_ms,
            elapsed_ms / 1000,
            elapsed_ms % 1000 / 100,
        );
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(line.as_bytes());
        let _ = stderr.flush();
    }
    eprint!("\r\x1b[K");
}

/// Follow one node's blocks from `start_height`, stamping each bench transfer when it shows
/// up, until `expected()` of them have or the deadline passes.
/// The node a watcher follows: its place in the list, its height when the run started, and
/// how often its height is polled.
struct Watched {
    node: Arc<Node>,
    index: usize,
    start_height: u64,
    poll: Duration,
}

async fn watch(
    watched: Watched,
    ours: Arc<HashMap<Hash, usize>>,
    submitted_to: Arc<Vec<AtomicUsize>>,
    progress: Arc<Progress>,
    expected: impl Fn() -> Option<usize>,
) -> Result<(HashMap<Hash, Instant>, u64), BoxError> {
    let Watched {
        node,
        index,
        start_height,
        poll,
    } = watched;
    let mut seen: HashMap<Hash, Instant> = HashMap::with_capacity(ours.len());
    let mut height = start_height;
    let deadline = Instant::now() + FINALITY_TIMEOUT;
    loop {
        if expected().is_some_and(|expected| seen.len() >= expected) {
            return Ok((seen, height - start_height));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{}: only {} of the transfers finalized within {FINALITY_TIMEOUT:?}",
                node.rpc,
                seen.len()
            )
            .into());
        }
        let head = node.status().await?.height;
        if head == height {
            tokio::time::sleep(poll).await;
            continue;
        }
        for h in height + 1..=head {
            let block: BlockView = node.get(&format!("/v1/blocks/{h}")).await?.ok_or("block vanished")?;
            let at = Instant::now();
            for hash in &block.tx_hashes {
                if let Some(&position) = ours.get(hash)
                    && seen.insert(*hash, at).is_none()
                    && submitted_to[position].load(Relaxed) == index
                {
                    progress.finalized.fetch_add(1, Relaxed);
                }
            }
        }
        height = head;
    }
}

/// Nobody was sent this transfer (yet).
const UNSENT: usize = usize::MAX;

pub async fn run(args: BenchArgs) -> Result<(), BoxError> {
    if args.txs > args.accounts * TRANSFERS_PER_ACCOUNT_MAX {
        return Err(format!("at most {TRANSFERS_PER_ACCOUNT_MAX} transfers per account: raise --accounts").into());
    }
    let http = http_client(args.ca.as_deref())?;
    let targets = targets(&args)?;
    let first = Node {
        http: http.clone(),
        rpc: targets[0].2.clone(),
        reader: None,
    };
    let status = first.status().await?;
    if status.hash_algorithm != corridor_sdk::HashAlgorithm::Sha256 {
        return Err("the bench computes SHA-256 transaction ids; run it on a SHA-256 chain".into());
    }
    let nodes: Vec<Arc<Node>> = targets
        .iter()
        .map(|(_, _, rpc)| {
            Ok(Arc::new(Node {
                http: http.clone(),
                rpc: rpc.clone(),
                reader: Some((args.sponsor_key()?, status.genesis_hash)),
            }))
        })
        .collect::<Result<_, BoxError>>()?;
    let nonces = setup(&nodes[0], &args, status.genesis_hash).await?;
    // Every node must hold the funded accounts before it is sent their transfers.
    let setup_height = nodes[0].status().await?.height;
    for node in &nodes {
        let deadline = Instant::now() + FINALITY_TIMEOUT;
        while node.status().await?.height < setup_height {
            if Instant::now() > deadline {
                return Err(format!("{} did not reach height {setup_height}", node.rpc).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    eprintln!(
        "signing {} {} transfers for {} node(s)",
        args.txs,
        args.scheme,
        nodes.len()
    );
    let signed = presign(&args, status.genesis_hash, &nonces)?;
    let ours: Arc<HashMap<Hash, usize>> = Arc::new(
        signed
            .iter()
            .enumerate()
            .map(|(position, (hash, _))| (*hash, position))
            .collect(),
    );
    let mut start_heights = Vec::with_capacity(nodes.len());
    let mut before = Vec::with_capacity(nodes.len());
    for node in &nodes {
        start_heights.push(node.status().await?.height);
        before.push(scrape(node).await?);
    }

    // When each transfer's batch was sent, and to which node.
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; args.txs]));
    let submitted_to: Arc<Vec<AtomicUsize>> = Arc::new((0..args.txs).map(|_| AtomicUsize::new(UNSENT)).collect());
    let refused = Arc::new(AtomicUsize::new(0));
    let senders_done = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Progress::default());
    let batches: std::collections::VecDeque<(usize, Vec<(Hash, String)>)> =
        signed.chunks(args.batch).map(|c| c.to_vec()).enumerate().collect();
    let batches = Arc::new(Mutex::new(batches));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..args.connections {
        let (nodes, batches, sent_at, submitted_to, refused, done, progress) = (
            nodes.clone(),
            Arc::clone(&batches),
            Arc::clone(&sent_at),
            Arc::clone(&submitted_to),
            Arc::clone(&refused),
            Arc::clone(&senders_done),
            Arc::clone(&progress),
        );
        let (rate, batch_size) = (args.rate, args.batch);
        senders.push(tokio::spawn(async move {
            let result = async {
                loop {
                    let Some((number, batch)) = batches.lock().await.pop_front() else {
                        return Ok::<(), String>(());
                    };
                    if let Some(offset_micros) = (number as u64 * batch_size as u64 * 1_000_000).checked_div(rate) {
                        tokio::time::sleep_until((started + Duration::from_micros(offset_micros)).into()).await;
                    }
                    let target = number % nodes.len();
                    let first_position = number * batch_size;
                    let sent = Instant::now();
                    {
                        let mut times = sent_at.lock().await;
                        for position in first_position..first_position + batch.len() {
                            times[position] = Some(sent);
                            submitted_to[position].store(target, Relaxed);
                        }
                    }
                    let hexes: Vec<String> = batch.into_iter().map(|(_, hex)| hex).collect();
                    let count = hexes.len();
                    let response = nodes[target].submit(&hexes).await.map_err(|e| e.to_string())?;
                    let failed = response.results.iter().filter(|r| r.error.is_some()).count();
                    if failed > 0 {
                        if let Some(error) = response.results.iter().find_map(|r| r.error.as_ref()) {
                            eprintln!("refused by {}: {error}", nodes[target].rpc);
                        }
                        refused.fetch_add(failed, Relaxed);
                        // A refused transfer is never finalized: forget where it went.
                        for (offset, result) in response.results.iter().enumerate() {
                            if result.error.is_some() {
                                submitted_to[first_position + offset].store(UNSENT, Relaxed);
                            }
                        }
                    }
                    progress.submitted.fetch_add(count - failed, Relaxed);
                }
            }
            .await;
            done.fetch_add(1, Relaxed);
            result
        }));
    }

    let showing = Arc::new(AtomicBool::new(true));
    let progress_line = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        tokio::spawn(show_progress(
            Arc::clone(&progress),
            args.txs,
            started,
            Arc::clone(&showing),
        ))
    });

    // Signed reads alongside the settlement load, until it is done.
    let reading = Arc::new(AtomicBool::new(true));
    let reads = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut readers = Vec::new();
    for reader in 0..args.readers {
        let (node, reading, reads, args) = (
            Arc::clone(&nodes[0]),
            Arc::clone(&reading),
            Arc::clone(&reads),
            args.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut index = reader;
            while reading.load(Relaxed) {
                let account = bench_account(&args, index % args.accounts).map_err(|e| e.to_string())?;
                let view: Option<AccountView> = node
                    .get(&format!("/v1/accounts/{account}"))
                    .await
                    .map_err(|e| e.to_string())?;
                view.ok_or("a bench account vanished")?;
                reads.fetch_add(1, Relaxed);
                index += args.readers;
            }
            Ok::<(), String>(())
        }));
    }

    // A watcher per node until it has seen every accepted transfer.
    let mut watchers = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        let (senders_done, refused, connections, txs) = (
            Arc::clone(&senders_done),
            Arc::clone(&refused),
            args.connections,
            args.txs,
        );
        let expected = move || (senders_done.load(Relaxed) == connections).then(|| txs - refused.load(Relaxed));
        watchers.push(tokio::spawn(watch(
            Watched {
                node: Arc::clone(node),
                index,
                start_height: start_heights[index],
                poll: Duration::from_millis(args.poll_ms.max(1)),
            },
            Arc::clone(&ours),
            Arc::clone(&submitted_to),
            Arc::clone(&progress),
            expected,
        )));
    }
    let mut seen_by = Vec::with_capacity(nodes.len());
    let mut blocks_by = Vec::with_capacity(nodes.len());
    for watcher in watchers {
        let (seen, blocks) = watcher.await??;
        seen_by.push(seen);
        blocks_by.push(blocks);
    }
    for sender in senders {
        sender.await?.map_err(|e| -> BoxError { e.into() })?;
    }
    reading.store(false, Relaxed);
    for reader in readers {
        reader.await?.map_err(|e| -> BoxError { e.into() })?;
    }
    showing.store(false, Relaxed);
    if let Some(line) = progress_line {
        line.await?;
    }
    let mut after = Vec::with_capacity(nodes.len());
    for node in &nodes {
        after.push(scrape(node).await?);
    }

    // Latencies: to the node each transfer was submitted to, and to the last node.
    let sent_at = sent_at.lock().await;
    let mut latencies_ms = Vec::with_capacity(args.txs);
    let mut all_latencies_ms = Vec::with_capacity(args.txs);
    let mut per_node_ms: Vec<Vec<u64>> = vec![Vec::new(); nodes.len()];
    let (mut last_final, mut last_all) = (started, started);
    let mut submitted_per_node = vec![0usize; nodes.len()];
    for (position, (hash, _)) in signed.iter().enumerate() {
        let target = submitted_to[position].load(Relaxed);
        let Some(sent) = sent_at[position].filter(|_| target != UNSENT) else {
            continue;
        };
        submitted_per_node[target] += 1;
        for (index, seen) in seen_by.iter().enumerate() {
            if let Some(at) = seen.get(hash) {
                per_node_ms[index].push(at.duration_since(sent).as_millis() as u64);
            }
        }
        if let Some(at) = seen_by[target].get(hash) {
            latencies_ms.push(at.duration_since(sent).as_millis() as u64);
            last_final = last_final.max(*at);
        }
        let everywhere: Option<Vec<&Instant>> = seen_by.iter().map(|seen| seen.get(hash)).collect();
        if let Some(last) = everywhere.and_then(|times| times.into_iter().max().copied()) {
            all_latencies_ms.push(last.duration_since(sent).as_millis() as u64);
            last_all = last_all.max(last);
        }
    }
    latencies_ms.sort_unstable();
    all_latencies_ms.sort_unstable();
    let elapsed_ms = last_final.duration_since(started).as_millis().max(1) as u64;
    let all_elapsed_ms = last_all.duration_since(started).as_millis().max(1) as u64;
    let node_reports: Vec<NodeReport> = targets
        .iter()
        .enumerate()
        .map(|(index, (name, role, rpc))| {
            let (before, after) = (&before[index], &after[index]);
            let committed = after.txs_finalized.saturating_sub(before.txs_finalized);
            let per_tx = |after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>| {
                after
                    .iter()
                    .map(|(stage, ns)| {
                        let spent = ns.saturating_sub(before.get(stage).copied().unwrap_or(0));
                        (stage.clone(), spent.checked_div(committed).unwrap_or(0))
                    })
                    .collect()
            };
            let latencies = &mut per_node_ms[index];
            latencies.sort_unstable();
            NodeReport {
                name: name.clone(),
                role: role.clone(),
                rpc: rpc.clone(),
                submitted: submitted_per_node[index],
                finalized: seen_by[index].len(),
                latency_p50_ms: percentile(latencies, 50),
                latency_p99_ms: percentile(latencies, 99),
                latency_max_ms: latencies.last().copied().unwrap_or(0),
                blocks: blocks_by[index],
                txs_committed: committed,
                stage_cpu_ns_per_tx: per_tx(&after.stage_cpu_ns, &before.stage_cpu_ns),
                stage_wall_ns_per_tx: per_tx(&after.stage_wall_ns, &before.stage_wall_ns),
                process_cpu_ns_per_tx: after
                    .process_cpu_ns
                    .saturating_sub(before.process_cpu_ns)
                    .checked_div(committed)
                    .unwrap_or(0),
            }
        })
        .collect();
    let reads = reads.load(Relaxed);
    let report = Report {
        scheme: args.scheme.to_string(),
        accounts: args.accounts,
        submitted: args.txs,
        refused: refused.load(Relaxed),
        finalized: latencies_ms.len(),
        seconds_millis: elapsed_ms,
        finalized_per_second: latencies_ms.len() as u64 * 1000 / elapsed_ms,
        latency_p50_ms: percentile(&latencies_ms, 50),
        latency_p99_ms: percentile(&latencies_ms, 99),
        latency_max_ms: latencies_ms.last().copied().unwrap_or(0),
        blocks: blocks_by[0],
        target_rate: args.rate,
        tls: args.ca.is_some(),
        signed_reads: reads,
        signed_reads_per_second: reads * 1000 / elapsed_ms,
        all_nodes_finalized: all_latencies_ms.len(),
        all_nodes_seconds_millis: all_elapsed_ms,
        all_nodes_latency_p50_ms: percentile(&all_latencies_ms, 50),
        all_nodes_latency_p99_ms: percentile(&all_latencies_ms, 99),
        all_nodes_latency_max_ms: all_latencies_ms.last().copied().unwrap_or(0),
        nodes: node_reports,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Nanoseconds as microseconds with one decimal, without floats.
fn micros(ns: u64) -> String {
    format!("{}.{}", ns / 1000, ns % 1000 / 100)
}

fn print_report(report: &Report) {
    println!(
        "{} transfers ({}): {} finalized in {}.{:03} s = {} tx/s; latency p50 {} ms, p99 {} ms, max {} ms; {} blocks; {} refused",
        report.submitted,
        report.scheme,
        report.finalized,
        report.seconds_millis / 1000,
        report.seconds_millis % 1000,
        report.finalized_per_second,
        report.latency_p50_ms,
        report.latency_p99_ms,
        report.latency_max_ms,
        report.blocks,
        report.refused
    );
    if report.nodes.len() > 1 {
        println!(
            "on every node: {} in {}.{:03} s; latency p50 {} ms, p99 {} ms, max {} ms",
            report.all_nodes_finalized,
            report.all_nodes_seconds_millis / 1000,
            report.all_nodes_seconds_millis % 1000,
            report.all_nodes_latency_p50_ms,
            report.all_nodes_latency_p99_ms,
            report.all_nodes_latency_max_ms
        );
    }
    let stages: Vec<&String> = report
        .nodes
        .first()
        .map(|node| node.stage_cpu_ns_per_tx.keys().collect())
        .unwrap_or_default();
    println!("CPU µs per committed transaction, by stage (thread CPU time; process = whole node):");
    let mut header = format!("{:<14} {:>9} {:>9}", "node", "submitted", "committed");
    for stage in &stages {
        header.push_str(&format!(" {stage:>9}"));
    }
    println!("{header} {:>9} {:>9}", "staged", "process");
    for node in &report.nodes {
        let mut line = format!("{:<14} {:>9} {:>9}", node.name, node.submitted, node.txs_committed);
        let mut staged = 0;
        for stage in &stages {
            let ns = node.stage_cpu_ns_per_tx.get(*stage).copied().unwrap_or(0);
            staged += ns;
            line.push_str(&format!(" {:>9}", micros(ns)));
        }
        println!("{line} {:>9} {:>9}", micros(staged), micros(node.process_cpu_ns_per_tx));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metrics_page_gives_each_stage_in_nanoseconds() {
        let text = "# HELP corridor_stage_cpu_seconds_total x\n\
            corridor_txs_finalized_total 1200\n\
            corridor_stage_cpu_seconds_total{stage=\"verify\"} 1.000000250\n\
            corridor_stage_wall_seconds_total{stage=\"verify\"} 2.5\n\
            corridor_process_cpu_seconds_total 12.000001\n\
            corridor_block_commit_seconds_total 0.1\n";
        let scrape = parse_scrape(text);
        assert_eq!(scrape.txs_finalized, 1200);
        assert_eq!(scrape.stage_cpu_ns["verify"], 1_000_000_250);
        assert_eq!(scrape.stage_wall_ns["verify"], 2_500_000_000);
        assert_eq!(scrape.process_cpu_ns, 12_000_001_000);
        assert_eq!(seconds_to_nanos("x"), None);
        assert_eq!(micros(12_345), "12.3");
    }
}
