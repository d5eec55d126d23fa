//! `corridor-testnet escrow-bench`: escrow create + release contract calls against a running
//! node.
//!
//! Setup (not timed): the bench accounts of `bench` are registered and funded; the sponsor
//! deploys `--contracts` escrow instances (a contract's storage is one state value, so each
//! instance holds a few hundred open escrows at most). Then for each of `--rounds` rounds, two
//! timed phases: every account creates one escrow (attaching 0.01), then every account releases
//! the escrow it created (ids read from the create receipts). All calls are signed before a
//! phase's clock starts. Report: calls/s per phase and overall, and submit→block-visible latency.

use crate::bench::{BoxError, Node, bench_account, bench_key, http_client, now_ms, setup};
use corridor_sdk::api::{BlockView, TxStatus, TxView};
use corridor_sdk::contract::escrow;
use corridor_sdk::{AccountId, Amount, CurrencyCode, Event, Hash, Operation, PrivateKey, Transaction};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a phase may take to finalize.
const PHASE_TIMEOUT: Duration = Duration::from_secs(300);
/// Fuel each call gets.
const CALL_FUEL: u64 = 2_000_000;

#[derive(clap::Args, Debug, Clone)]
pub struct EscrowBenchArgs {
    #[command(flatten)]
    pub bench: crate::bench::BenchArgs,
    /// The built escrow contract.
    #[arg(long)]
    pub wasm: PathBuf,
    /// Escrow contract instances the accounts are spread over.
    #[arg(long, default_value_t = 10)]
    pub contracts: usize,
    /// Create-then-release rounds.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct PhaseReport {
    pub phase: String,
    pub calls: usize,
    pub failed: usize,
    pub millis: u64,
    pub calls_per_second: u64,
    pub latency_p50_ms: u64,
    pub latency_p99_ms: u64,
}

async fn wait_receipts(node: &Node, hashes: &[Hash]) -> Result<Vec<TxView>, BoxError> {
    let mut views = Vec::with_capacity(hashes.len());
    for hash in hashes {
        let deadline = Instant::now() + PHASE_TIMEOUT;
        loop {
            let view: TxView = node
                .get(&format!("/v1/transactions/{hash}?wait_ms=5000"))
                .await?
                .ok_or("transaction vanished")?;
            if view.status != TxStatus::Pending {
                views.push(view);
                break;
            }
            if Instant::now() > deadline {
                return Err("timed out".into());
            }
        }
    }
    Ok(views)
}

/// Submit pre-signed transactions in batches, watch blocks until all are in, report.
async fn phase(
    node: &Node,
    name: &str,
    txs: Vec<(Hash, String)>,
    batch: usize,
) -> Result<(PhaseReport, Vec<Hash>), BoxError> {
    let start_height = node.status().await?.height;
    let hashes: Vec<Hash> = txs.iter().map(|(hash, _)| *hash).collect();
    let mut sent_at: BTreeMap<Hash, Instant> = BTreeMap::new();
    let started = Instant::now();
    let mut refused = 0;
    for chunk in txs.chunks(batch) {
        let now = Instant::now();
        chunk.iter().for_each(|(hash, _)| {
            sent_at.insert(*hash, now);
        });
        let response = node
            .submit(&chunk.iter().map(|(_, hex)| hex.clone()).collect::<Vec<_>>())
            .await?;
        for result in &response.results {
            if let Some(error) = &result.error {
                refused += 1;
                eprintln!("refused: {error}");
            }
        }
    }
    let mut latencies = Vec::with_capacity(txs.len());
    let mut height = start_height;
    let mut last = started;
    let deadline = Instant::now() + PHASE_TIMEOUT;
    while latencies.len() + refused < txs.len() {
        if Instant::now() > deadline {
            return Err(format!("{name}: only {} of {} in blocks", latencies.len(), txs.len()).into());
        }
        let head = node.status().await?.height;
        if head == height {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        for h in height + 1..=head {
            let block: BlockView = node.get(&format!("/v1/blocks/{h}")).await?.ok_or("block vanished")?;
            let seen = Instant::now();
            for hash in &block.tx_hashes {
                if let Some(sent) = sent_at.get(hash) {
                    latencies.push(seen.duration_since(*sent).as_millis() as u64);
                    last = seen;
                }
            }
        }
        height = head;
    }
    latencies.sort_unstable();
    let percentile = |p: usize| {
        latencies
            .get(latencies.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    let millis = last.duration_since(started).as_millis().max(1) as u64;
    let views = wait_receipts(node, &hashes).await?;
    let failed = views
        .iter()
        .filter(|v| v.receipt.as_ref().map(|r| &r.outcome) != Some(&corridor_sdk::Outcome::Success))
        .count();
    let report = PhaseReport {
        phase: name.to_owned(),
        calls: txs.len(),
        failed: failed + refused,
        millis,
        calls_per_second: latencies.len() as u64 * 1000 / millis,
        latency_p50_ms: percentile(50),
        latency_p99_ms: percentile(99),
    };
    Ok((report, hashes))
}

fn return_id(view: &TxView) -> Option<u64> {
    view.receipt.as_ref()?.events.iter().find_map(|event| match event {
        Event::ContractCalled { return_data, .. } => {
            <[u8; 8]>::try_from(return_data.as_slice()).ok().map(u64::from_le_bytes)
        }
        _ => None,
    })
}

pub async fn run(args: EscrowBenchArgs) -> Result<(), BoxError> {
    let bench = &args.bench;
    let http = http_client(bench.ca.as_deref())?;
    let status = Node {
        http: http.clone(),
        rpc: bench.rpc.clone(),
        reader: None,
    }
    .status()
    .await?;
    let genesis_hash = status.genesis_hash;
    // Scoped reads (accounts, transactions) are signed by the sponsor, as `bench` does.
    let reader_key = bench.sponsor_key()?;
    let node = Node {
        http,
        rpc: bench.rpc.clone(),
        reader: Some((reader_key, genesis_hash)),
    };
    let mut nonces = setup(&node, bench, genesis_hash).await?;
    // Deploy the escrow instances.
    let sponsor = AccountId::new(&bench.sponsor)?;
    let sponsor_key = bench.sponsor_key()?;
    let code = std::fs::read(&args.wasm)?;
    let sponsor_view: corridor_sdk::api::AccountView = node
        .get(&format!("/v1/accounts/{sponsor}"))
        .await?
        .ok_or("no sponsor")?;
    let expiry = now_ms() + 3_600_000;
    let deploys: Vec<_> = (0..args.contracts)
        .map(|i| {
            let op = Operation::DeployContract {
                code: code.clone(),
                init_args: vec![],
                fuel: 10_000_000,
            };
            Transaction::new(
                genesis_hash,
                sponsor.clone(),
                sponsor_view.next_nonce + i as u64,
                expiry,
                op,
            )
            .sign(&sponsor_key)
        })
        .collect();
    let hexes: Vec<String> = deploys.iter().map(|tx| hex::encode(tx.to_bytes())).collect();
    let response = node.submit(&hexes).await?;
    let hashes: Vec<Hash> = response
        .results
        .iter()
        .map(|r| r.tx_hash.ok_or("deploy refused"))
        .collect::<Result<_, _>>()?;
    let contracts: Vec<u64> = wait_receipts(&node, &hashes)
        .await?
        .iter()
        .map(|view| {
            view.receipt.as_ref().and_then(|r| {
                r.events.iter().find_map(|e| match e {
                    Event::ContractDeployed { contract, .. } => Some(*contract),
                    _ => None,
                })
            })
        })
        .collect::<Option<_>>()
        .ok_or("a deploy failed")?;
    let accounts: Vec<AccountId> = (0..bench.accounts)
        .map(|i| bench_account(bench, i))
        .collect::<Result<_, _>>()?;
    let keys: Vec<PrivateKey> = (0..bench.accounts)
        .into_par_iter()
        .map(|i| bench_key(bench.scheme, i))
        .collect();
    let currency = CurrencyCode::new(&bench.currency)?;
    let funds = Amount::parse("0.01")?;
    let algorithm = status.hash_algorithm;
    let mut reports = Vec::new();
    let mut total_calls = 0u64;
    let mut total_millis = 0u64;
    for round in 0..args.rounds {
        let deadline = now_ms() + 3_600_000;
        let sign = |index: usize, nonce: u64, op: Operation| {
            let bytes = Transaction::new(genesis_hash, accounts[index].clone(), nonce, deadline, op)
                .sign(&keys[index])
                .to_bytes();
            (algorithm.digest(&bytes), hex::encode(bytes))
        };
        let creates: Vec<(Hash, String)> = (0..bench.accounts)
            .into_par_iter()
            .map(|i| {
                let args = escrow::create(&accounts[(i + 1) % accounts.len()], &sponsor, deadline);
                let op = Operation::CallContract {
                    contract: contracts[i % contracts.len()],
                    method: "create".into(),
                    args,
                    funds: Some((currency.clone(), funds)),
                    fuel: CALL_FUEL,
                };
                sign(i, nonces[i], op)
            })
            .collect();
        let (report, hashes) = phase(&node, &format!("create#{round}"), creates, bench.batch).await?;
        let ids: Vec<u64> = wait_receipts(&node, &hashes)
            .await?
            .iter()
            .map(return_id)
            .collect::<Option<_>>()
            .ok_or("a create failed")?;
        total_calls += report.calls as u64;
        total_millis += report.millis;
        reports.push(report);
        let releases: Vec<(Hash, String)> = (0..bench.accounts)
            .into_par_iter()
            .map(|i| {
                let op = Operation::CallContract {
                    contract: contracts[i % contracts.len()],
                    method: "release".into(),
                    args: escrow::id(ids[i]),
                    funds: None,
                    fuel: CALL_FUEL,
                };
                sign(i, nonces[i] + 1, op)
            })
            .collect();
        let (report, _) = phase(&node, &format!("release#{round}"), releases, bench.batch).await?;
        total_calls += report.calls as u64;
        total_millis += report.millis;
        reports.push(report);
        nonces.iter_mut().for_each(|nonce| *nonce += 2);
    }
    for report in &reports {
        println!("{}", serde_json::to_string(report)?);
    }
    println!(
        "{{\"total_calls\":{total_calls},\"millis\":{total_millis},\"calls_per_second\":{}}}",
        total_calls * 1000 / total_millis.max(1)
    );
    Ok(())
}
