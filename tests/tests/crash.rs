//! kill -9 in the middle of a load: every transaction reported finalized is still there after
//! restart, balances are exactly what the finalized transactions say, supply is conserved,
//! and the chain goes on.

use corridor_sdk::api::TxStatus;
use corridor_sdk::{Amount, CurrencyCode, Hash, Operation, Outcome};
use corridor_tests::{DevNode, id};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// (sender, receiver, currency): pairs that pay each other back and forth.
const FLOWS: [(&str, &str, &str); 8] = [
    ("icbc-cn", "acme@icbc-cn", "CNY"),
    ("acme@icbc-cn", "icbc-cn", "CNY"),
    ("boc-hk", "harbour@boc-hk", "HKD"),
    ("harbour@boc-hk", "boc-hk", "HKD"),
    ("kbank-th", "siam-rice@kbank-th", "THB"),
    ("siam-rice@kbank-th", "kbank-th", "THB"),
    ("enbd-ae", "gulf-trade@enbd-ae", "AED"),
    ("gulf-trade@enbd-ae", "enbd-ae", "AED"),
];
/// Transactions each sender keeps in flight.
const WINDOW: u64 = 4;
/// Finalized transactions to see before the kill (bounded load).
const FINALIZED_BEFORE_KILL: usize = 1_000;
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);

struct Submitted {
    hash: Hash,
    reported_final: bool,
    /// Sent when the node died: it may or may not have been admitted (journaled) before.
    unanswered: bool,
}

async fn load(node: Arc<DevNode>, flow: usize, stop: Arc<AtomicBool>, finalized: Arc<AtomicUsize>) -> Vec<Submitted> {
    let (sender, receiver, currency) = FLOWS[flow];
    let mut nonce = node.next_nonce(sender).await;
    let mut submitted: Vec<Submitted> = Vec::new();
    let mut in_flight = std::collections::VecDeque::new();
    while !stop.load(Ordering::Relaxed) {
        while (in_flight.len() as u64) < WINDOW {
            let amount = Amount::parse(&format!("0.{:02}", 1 + nonce % 99)).expect("amount");
            let op = Operation::transfer(id(receiver), CurrencyCode::new(currency).expect("code"), amount, None);
            let signed = node.sign_with_nonce(sender, nonce, op);
            match node.submit(&signed).await {
                Ok(hash) => {
                    in_flight.push_back(submitted.len());
                    submitted.push(Submitted {
                        hash,
                        reported_final: false,
                        unanswered: false,
                    });
                    nonce += 1;
                }
                Err(_) => {
                    // The node is gone; it may have journaled this one before dying.
                    submitted.push(Submitted {
                        hash: signed.hash(corridor_sdk::HashAlgorithm::Sha256),
                        reported_final: false,
                        unanswered: true,
                    });
                    return submitted;
                }
            }
        }
        let Some(oldest) = in_flight.pop_front() else { break };
        let hash = submitted[oldest].hash;
        let path = format!("/v1/transactions/{hash}?wait_ms=2000");
        let Ok(response) = node.signed_get("regulator", &path).send().await else {
            return submitted;
        };
        let Ok(view) = response.json::<corridor_sdk::api::TxView>().await else {
            return submitted;
        };
        if view.status == TxStatus::Finalized {
            submitted[oldest].reported_final = true;
            finalized.fetch_add(1, Ordering::Relaxed);
        } else {
            in_flight.push_front(oldest);
        }
    }
    submitted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_finalized_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("chain");
    let node = Arc::new(DevNode::start(&data_dir).await);
    let mut before: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for (sender, _, currency) in FLOWS {
        let view = node.account(sender).await;
        before.insert(
            (sender.to_string(), currency.to_string()),
            view.balances
                .get(&CurrencyCode::new(currency).expect("code"))
                .map(|a| a.decimal())
                .unwrap_or_default(),
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    let finalized = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..FLOWS.len())
        .map(|flow| tokio::spawn(load(Arc::clone(&node), flow, Arc::clone(&stop), Arc::clone(&finalized))))
        .collect();
    let started = Instant::now();
    while finalized.load(Ordering::Relaxed) < FINALIZED_BEFORE_KILL {
        assert!(
            started.elapsed() < LOAD_TIMEOUT,
            "load did not finalize {FINALIZED_BEFORE_KILL} transactions"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SIGKILL while the load is still submitting and waiting.
    let height_before_kill = node.status().await.height;
    node.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut submitted = Vec::new();
    for task in tasks {
        submitted.push(task.await.expect("load task"));
    }
    let reported: usize = submitted.iter().flatten().filter(|s| s.reported_final).count();
    assert!(reported >= FINALIZED_BEFORE_KILL);

    let node = DevNode::start(&data_dir).await;
    let status = node.status().await;
    assert!(
        status.height >= height_before_kill,
        "height went back from {height_before_kill} to {}",
        status.height
    );

    // Every transaction reported finalized is finalized, with its receipt; the others were
    // admitted (the pool journal brings them back, and they finalize) or never answered 202,
    // and nothing is half-applied.
    let mut delta: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for (flow, list) in submitted.iter().enumerate() {
        let (sender, receiver, currency) = FLOWS[flow];
        for entry in list {
            let (code, body) = node.get(&format!("/v1/transactions/{}", entry.hash)).await;
            if entry.unanswered && code == 404 {
                continue; // never admitted: it was never answered 202 either
            }
            assert_eq!(
                code, 200,
                "transaction {} was answered 202 and is forgotten: {body}",
                entry.hash
            );
            let view = node.wait(&entry.hash).await;
            assert_eq!(view.status, TxStatus::Finalized, "{}", entry.hash);
            let receipt = view.receipt.expect("receipt");
            assert_eq!(receipt.outcome, Outcome::Success);
            let Some(corridor_sdk::Event::Transferred { amount, .. }) = receipt.events.first() else {
                panic!("a transfer receipt carries its event")
            };
            *delta.entry((sender.to_string(), currency.to_string())).or_default() -= amount.decimal();
            *delta.entry((receiver.to_string(), currency.to_string())).or_default() += amount.decimal();
        }
    }
    for ((account, currency), start) in &before {
        let view = node.account(account).await;
        let now = view
            .balances
            .get(&CurrencyCode::new(currency).expect("code"))
            .map(|a| a.decimal())
            .unwrap_or_default();
        let expected = start
            + delta
                .get(&(account.clone(), currency.clone()))
                .copied()
                .unwrap_or_default();
        assert_eq!(now, expected, "{account} {currency}");
    }

    // Conservation: the genesis accounts are all the accounts; their balances add up to supply.
    let genesis: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data_dir.join("genesis.json")).expect("genesis")).expect("genesis JSON");
    let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
    for account in genesis["accounts"].as_array().expect("accounts") {
        let view = node.account(account["id"].as_str().expect("id")).await;
        for (code, amount) in view.balances {
            *totals.entry(code.to_string()).or_default() += amount.decimal();
        }
    }
    let (_, currencies) = node.get("/v1/currencies").await;
    for currency in currencies.as_array().expect("currencies") {
        let code = currency["code"].as_str().expect("code");
        let supply: Decimal = currency["supply"].as_str().expect("supply").parse().expect("decimal");
        assert_eq!(
            totals.get(code).copied().unwrap_or_default(),
            supply,
            "{code} is not conserved"
        );
    }

    // The chain goes on from where it was.
    let nonce = node.next_nonce("acme@icbc-cn").await;
    let op = Operation::transfer(
        id("icbc-cn"),
        CurrencyCode::new("CNY").expect("code"),
        Amount::from(1),
        None,
    );
    let view = node.execute(&node.sign_with_nonce("acme@icbc-cn", nonce, op)).await;
    assert!(view.receipt.expect("receipt").height > status.height.saturating_sub(1));
}

/// Nothing answered 202 is forgotten: a transaction parked behind a nonce gap survives
/// SIGKILL and a restart, and finalizes once the gap is filled.
#[tokio::test]
async fn an_admitted_transaction_survives_kill_9_and_restart() {
    use corridor_sdk::api::TxStatus;
    use corridor_sdk::{Amount, CurrencyCode, Operation};
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("chain");
    let node = DevNode::start(&data_dir).await;
    let pay = |amount: u64| {
        Operation::transfer(
            id("harbour@boc-hk"),
            CurrencyCode::new("CNY").expect("code"),
            Amount::from(amount),
            None,
        )
    };
    let nonce = node.next_nonce("acme@icbc-cn").await;
    let parked = node.sign_with_nonce("acme@icbc-cn", nonce + 1, pay(2));
    let hash = node.submit(&parked).await.expect("202: admitted, parked behind nonce");
    node.kill9();
    let node = DevNode::start(&data_dir).await;
    let (status, body) = node.get(&format!("/v1/transactions/{hash}")).await;
    assert_eq!(status, 200, "the restarted node still knows it: {body}");
    assert_eq!(body["status"], "pending");
    node.execute(&node.sign_with_nonce("acme@icbc-cn", nonce, pay(1))).await;
    let view = node.wait(&hash).await;
    assert_eq!(view.status, TxStatus::Finalized);
    assert_eq!(view.receipt.map(|r| r.outcome), Some(corridor_sdk::Outcome::Success));
}
