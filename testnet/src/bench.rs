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

use corridor_sdk::api::{AccountView, BatchSubmitResponse, BlockView, Status};
use corridor_sdk::{
    AccountId, Amount, CurrencyCode, Hash, Operation, PrivateKey, Scheme, SignedTransaction, Transaction, TransferLeg,
};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// The node's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    pub rpc: String,
    /// The dev chain's key directory (for the sponsor bank's key).
    #[arg(long)]
    pub keys: PathBuf,
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
    let sponsor_key = PrivateKey::read_file(&args.keys.join(format!("{}.key", args.sponsor)))?;
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

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub scheme: String,
    pub accounts: usize,
    pub submitted: usize,
    pub refused: usize,
    pub finalized: usize,
    pub seconds_millis: u64,
    pub finalized_per_second: u64,
    pub latency_p50_ms: u64,
    pub latency_p99_ms: u64,
    pub latency_max_ms: u64,
    pub blocks: u64,
    pub target_rate: u64,
    /// Whether the run spoke https.
    pub tls: bool,
    /// Signed account reads served while the transfers settled (`--readers`).
    pub signed_reads: u64,
    pub signed_reads_per_second: u64,
}

pub async fn run(args: BenchArgs) -> Result<(), BoxError> {
    if args.txs > args.accounts * TRANSFERS_PER_ACCOUNT_MAX {
        return Err(format!("at most {TRANSFERS_PER_ACCOUNT_MAX} transfers per account: raise --accounts").into());
    }
    let http = http_client(args.ca.as_deref())?;
    let status = Node {
        http: http.clone(),
        rpc: args.rpc.clone(),
        reader: None,
    }
    .status()
    .await?;
    let sponsor_key = PrivateKey::read_file(&args.keys.join(format!("{}.key", args.sponsor)))?;
    let node = Arc::new(Node {
        http,
        rpc: args.rpc.clone(),
        reader: Some((sponsor_key, status.genesis_hash)),
    });
    if status.hash_algorithm != corridor_sdk::HashAlgorithm::Sha256 {
        return Err("the bench computes SHA-256 transaction ids; run it on a SHA-256 chain".into());
    }
    let nonces = setup(&node, &args, status.genesis_hash).await?;
    eprintln!("signing {} {} transfers", args.txs, args.scheme);
    let signed = presign(&args, status.genesis_hash, &nonces)?;
    let start_height = node.status().await?.height;

    let submitted_at: Arc<Mutex<HashMap<Hash, Instant>>> = Arc::new(Mutex::new(HashMap::with_capacity(args.txs)));
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let batches: Vec<Vec<(Hash, String)>> = signed.chunks(args.batch).map(|c| c.to_vec()).collect();
    let batches = Arc::new(Mutex::new(
        batches
            .into_iter()
            .enumerate()
            .collect::<std::collections::VecDeque<_>>(),
    ));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..args.connections {
        let (node, batches, submitted_at, refused) = (
            Arc::clone(&node),
            Arc::clone(&batches),
            Arc::clone(&submitted_at),
            Arc::clone(&refused),
        );
        let (rate, batch_size) = (args.rate, args.batch as u64);
        senders.push(tokio::spawn(async move {
            loop {
                let Some((number, batch)) = batches.lock().await.pop_front() else {
                    return Ok::<(), String>(());
                };
                if let Some(offset_micros) = (number as u64 * batch_size * 1_000_000).checked_div(rate) {
                    tokio::time::sleep_until((started + Duration::from_micros(offset_micros)).into()).await;
                }
                let sent = Instant::now();
                {
                    let mut map = submitted_at.lock().await;
                    for (hash, _) in &batch {
                        map.insert(*hash, sent);
                    }
                }
                let hexes: Vec<String> = batch.into_iter().map(|(_, hex)| hex).collect();
                let response = node.submit(&hexes).await.map_err(|e| e.to_string())?;
                let failed = response.results.iter().filter(|r| r.error.is_some()).count();
                if failed > 0 {
                    if let Some(error) = response.results.iter().find_map(|r| r.error.as_ref()) {
                        eprintln!("refused: {error}");
                    }
                    refused.fetch_add(failed, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }

    // Signed reads alongside the settlement load, until it is done.
    let reading = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reads = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut readers = Vec::new();
    for reader in 0..args.readers {
        let (node, reading, reads, args) = (
            Arc::clone(&node),
            Arc::clone(&reading),
            Arc::clone(&reads),
            args.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut index = reader;
            while reading.load(std::sync::atomic::Ordering::Relaxed) {
                let account = bench_account(&args, index % args.accounts).map_err(|e| e.to_string())?;
                let view: Option<AccountView> = node
                    .get(&format!("/v1/accounts/{account}"))
                    .await
                    .map_err(|e| e.to_string())?;
                view.ok_or("a bench account vanished")?;
                reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                index += args.readers;
            }
            Ok::<(), String>(())
        }));
    }

    // Watch blocks until every accepted transfer is finalized.
    let mut latencies_ms: Vec<u64> = Vec::with_capacity(args.txs);
    let mut height = start_height;
    let mut last_final = started;
    let deadline = Instant::now() + FINALITY_TIMEOUT;
    loop {
        let senders_done = senders.iter().all(|s| s.is_finished());
        let expected = args.txs - refused.load(std::sync::atomic::Ordering::Relaxed);
        if senders_done && latencies_ms.len() >= expected {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {expected} transfers finalized within {FINALITY_TIMEOUT:?}",
                latencies_ms.len()
            )
            .into());
        }
        let head = node.status().await?.height;
        if head == height {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        for h in height + 1..=head {
            let block: BlockView = node.get(&format!("/v1/blocks/{h}")).await?.ok_or("block vanished")?;
            let seen = Instant::now();
            let map = submitted_at.lock().await;
            for hash in &block.tx_hashes {
                if let Some(sent) = map.get(hash) {
                    latencies_ms.push(seen.duration_since(*sent).as_millis() as u64);
                    last_final = seen;
                }
            }
        }
        height = head;
    }
    for sender in senders {
        sender.await?.map_err(|e| -> BoxError { e.into() })?;
    }
    reading.store(false, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.await?.map_err(|e| -> BoxError { e.into() })?;
    }
    latencies_ms.sort_unstable();
    let percentile = |p: usize| {
        latencies_ms
            .get((latencies_ms.len().saturating_sub(1)) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    let elapsed_ms = last_final.duration_since(started).as_millis().max(1) as u64;
    let report = Report {
        scheme: args.scheme.to_string(),
        accounts: args.accounts,
        submitted: args.txs,
        refused: refused.load(std::sync::atomic::Ordering::Relaxed),
        finalized: latencies_ms.len(),
        seconds_millis: elapsed_ms,
        finalized_per_second: latencies_ms.len() as u64 * 1000 / elapsed_ms,
        latency_p50_ms: percentile(50),
        latency_p99_ms: percentile(99),
        latency_max_ms: latencies_ms.last().copied().unwrap_or(0),
        blocks: height - start_height,
        target_rate: args.rate,
        tls: args.ca.is_some(),
        signed_reads: reads.load(std::sync::atomic::Ordering::Relaxed),
        signed_reads_per_second: reads.load(std::sync::atomic::Ordering::Relaxed) * 1000 / elapsed_ms,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} transfers ({}): {} finalized in {}.{:03} s = {} tx/s; latency p50 {} ms, p99 {} ms, max {} ms; {} blocks; {} refused",
            report.submitted,
            report.scheme,
            report.finalized,
            elapsed_ms / 1000,
            elapsed_ms % 1000,
            report.finalized_per_second,
            report.latency_p50_ms,
            report.latency_p99_ms,
            report.latency_max_ms,
            report.blocks,
            report.refused
        );
    }
    Ok(())
}
