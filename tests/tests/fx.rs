//! FX rate locking against a running dev chain, as a corporate treasurer meets it: read the
//! rates, lock a bank's rate for a payment, settle both legs at the locked rate after the
//! market moved, and find that a lock past its window no longer settles.

use corridor_sdk::fx::{LockStatus, LockView, RatesView};
use corridor_sdk::{Amount, ErrorCode, Operation};
use corridor_tests::{DevNode, balance, error_code, id};
use std::process::Output;
use std::time::{Duration, Instant};

/// Every account of the dev genesis (all money lives in these, or in FX reservations).
const DEV_ACCOUNTS: [&str; 13] = [
    "pboc",
    "hkma",
    "bot",
    "cbuae",
    "icbc-cn",
    "boc-hk",
    "kbank-th",
    "enbd-ae",
    "acme@icbc-cn",
    "harbour@boc-hk",
    "siam-rice@kbank-th",
    "gulf-trade@enbd-ae",
    "regulator",
];

fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix(name).map(|rest| rest.trim().to_owned()))
        .unwrap_or_else(|| panic!("no `{name}` in:\n{text}"))
}

fn amount(text: &str) -> Amount {
    Amount::parse(text).expect("amount")
}

async fn balance_of(node: &DevNode, account: &str, currency: &str) -> Amount {
    amount(&balance(&node.account(account).await, currency))
}

/// For every currency: the balances of every account plus open FX reservations equal supply.
async fn assert_conservation(node: &DevNode, lock_ids: &[u64]) {
    let (status, currencies) = node.get("/v1/currencies").await;
    assert_eq!(status, 200);
    for currency in currencies.as_array().expect("currency list") {
        let code = currency["code"].as_str().expect("code");
        let mut total = Amount::ZERO;
        for account in DEV_ACCOUNTS {
            total = total.checked_add(balance_of(node, account, code).await).expect("exact");
        }
        for lock_id in lock_ids {
            let lock = lock(node, *lock_id).await;
            if lock.status == LockStatus::Open && lock.buy.as_str() == code {
                total = total.checked_add(lock.buy_amount).expect("exact");
            }
        }
        assert_eq!(total, amount(currency["supply"].as_str().expect("supply")), "{code}");
    }
}

async fn lock(node: &DevNode, lock_id: u64) -> LockView {
    let (status, body) = node.get(&format!("/v1/fx/locks/{lock_id}")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).expect("lock JSON")
}

/// `corridor --key <acme> fx lock ...` selling CNY for THB at kbank-th; returns the lock id.
fn cli_lock(node: &DevNode, sell_amount: &str, window_ms: u64) -> (u64, String) {
    let key = node.key_path("acme@icbc-cn").display().to_string();
    let window = window_ms.to_string();
    let out = ok(&node.cli(&[
        "--key",
        &key,
        "fx",
        "lock",
        "--provider",
        "kbank-th",
        "--sell",
        "CNY",
        "--buy",
        "THB",
        "--amount",
        sell_amount,
        "--window-ms",
        &window,
    ]));
    let lock_id = field(&out, "lock_id").parse().expect("lock id");
    (lock_id, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_settle_at_the_locked_rate_and_refuse_an_expired_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let acme_key = node.key_path("acme@icbc-cn").display().to_string();

    // The dev genesis posts rates for every pair of CNY, HKD, THB and AED.
    let (status, body) = node.get("/v1/fx/rates").await;
    assert_eq!(status, 200);
    let rates: RatesView = serde_json::from_value(body).expect("rates JSON");
    assert_eq!(rates.pairs.len(), 12);
    let cny_thb = rates
        .pairs
        .iter()
        .find(|p| p.sell.as_str() == "CNY" && p.buy.as_str() == "THB")
        .expect("CNY/THB");
    assert_eq!(cny_thb.oracle_rate.map(|r| r.to_string()), Some("4.9".into()));
    assert_eq!(cny_thb.posts.len(), 2);
    let kbank = cny_thb
        .quotes
        .iter()
        .find(|q| q.provider == id("kbank-th"))
        .expect("quote");
    assert_eq!(kbank.rate.to_string(), "4.88775", "4.9 less 25 bps");
    let text = ok(&node.cli(&["fx", "rates"]));
    assert!(text.contains("CNY/THB  oracle 4.9"), "{text}");

    // acme locks kbank-th's rate for 1000 CNY; 4887.75 THB is reserved at once.
    let kbank_thb = balance_of(&node, "kbank-th", "THB").await;
    let (lock_id, out) = cli_lock(&node, "1000", 600_000);
    assert_eq!(field(&out, "buy_amount"), "4887.75 THB");
    assert_eq!(
        balance_of(&node, "kbank-th", "THB").await,
        kbank_thb.checked_sub(amount("4887.75")).expect("exact")
    );
    assert_conservation(&node, &[lock_id]).await;

    // The market moves: both providers post lower rates; the oracle follows.
    for (provider, rate) in [("icbc-cn", "4.1"), ("boc-hk", "4.2")] {
        let key = node.key_path(provider).display().to_string();
        ok(&node.cli(&[
            "--key", &key, "fx", "post", "--sell", "CNY", "--buy", "THB", "--rate", rate,
        ]));
    }
    let text = ok(&node.cli(&["fx", "rates"]));
    assert!(text.contains("CNY/THB  oracle 4.1"), "{text}");
    // A new lock gets the new rate; the first keeps its own.
    let (second_id, out) = cli_lock(&node, "10", 600_000);
    assert_eq!(field(&out, "rate"), "4.08975");

    // Settle to the Thai exporter: both legs at the locked rate.
    let acme_cny = balance_of(&node, "acme@icbc-cn", "CNY").await;
    let kbank_cny = balance_of(&node, "kbank-th", "CNY").await;
    let lock_text = lock_id.to_string();
    ok(&node.cli(&[
        "--key",
        &acme_key,
        "fx",
        "settle",
        &lock_text,
        "--to",
        "siam-rice@kbank-th",
    ]));
    assert_eq!(
        balance_of(&node, "siam-rice@kbank-th", "THB").await,
        amount("1000000").checked_add(amount("4887.75")).expect("exact")
    );
    assert_eq!(
        balance_of(&node, "acme@icbc-cn", "CNY").await,
        acme_cny.checked_sub(amount("1000")).expect("exact")
    );
    assert_eq!(
        balance_of(&node, "kbank-th", "CNY").await,
        kbank_cny.checked_add(amount("1000")).expect("exact")
    );
    let settled = lock(&node, lock_id).await;
    assert_eq!(settled.status, LockStatus::Settled);
    assert_eq!(settled.settled_to, Some(id("siam-rice@kbank-th")));
    let shown = ok(&node.cli(&["fx", "show", &lock_text]));
    assert_eq!(field(&shown, "status"), "settled");
    assert_conservation(&node, &[lock_id, second_id]).await;

    // Settling twice is refused with a code, at the CLI (exit 1) and over HTTP.
    let again = node.cli(&["--key", &acme_key, "fx", "settle", &lock_text]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("fx_lock_not_open"));

    // A short lock: once block time passes its expiry it no longer settles.
    let (short_id, _) = cli_lock(&node, "5", 200);
    let expiry = lock(&node, short_id).await.expires_at_ms;
    let deadline = Instant::now() + Duration::from_secs(10);
    while corridor_tests::far_expiry() - 3_600_000 <= expiry + 50 {
        assert!(Instant::now() < deadline, "the wall clock did not pass the expiry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let short_text = short_id.to_string();
    let refused = node.cli(&["--key", &acme_key, "fx", "settle", &short_text]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("fx_lock_expired"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let settle = node
        .sign(
            "acme@icbc-cn",
            Operation::FxSettle {
                lock_id: short_id,
                to: id("acme@icbc-cn"),
            },
        )
        .await;
    assert_eq!(node.submit(&settle).await, Err((409, ErrorCode::FxLockExpired)));
    // The next block returns the reservation to kbank-th.
    let kbank_before = balance_of(&node, "kbank-th", "THB").await;
    node.execute(
        &node
            .sign(
                "harbour@boc-hk",
                Operation::transfer(
                    id("gulf-trade@enbd-ae"),
                    "HKD".parse().expect("code"),
                    amount("1"),
                    None,
                ),
            )
            .await,
    )
    .await;
    let released = lock(&node, short_id).await;
    assert_eq!(released.status, LockStatus::Released);
    assert_eq!(
        balance_of(&node, "kbank-th", "THB").await,
        kbank_before.checked_add(released.buy_amount).expect("exact")
    );
    assert_conservation(&node, &[lock_id, second_id, short_id]).await;

    // Unknown and malformed lock ids.
    let (status, body) = node.get("/v1/fx/locks/999999").await;
    assert_eq!((status, error_code(&body)), (404, ErrorCode::UnknownFxLock));
    let (status, body) = node.get("/v1/fx/locks/x1").await;
    assert_eq!((status, error_code(&body)), (400, ErrorCode::BadRequest));

    // A restart audits the whole state, reservations included, and serves the open lock.
    node.kill9();
    let node = DevNode::start(&dir.path().join("chain")).await;
    assert_eq!(lock(&node, second_id).await.status, LockStatus::Open);
    assert_conservation(&node, &[lock_id, second_id, short_id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_rate_providers_post_and_bad_rates_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let acme = node.key_path("acme@icbc-cn").display().to_string();
    let refused = node.cli(&[
        "--key", &acme, "fx", "post", "--sell", "CNY", "--buy", "THB", "--rate", "9",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not_rate_provider"));
    let icbc = node.key_path("icbc-cn").display().to_string();
    let refused = node.cli(&[
        "--key", &icbc, "fx", "post", "--sell", "CNY", "--buy", "THB", "--rate", "0",
    ]);
    assert_eq!(refused.status.code(), Some(2), "refused locally before signing");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("fx_rate_invalid"));
    // enbd-ae is a liquidity provider but holds no THB inventory.
    let tx = node
        .sign(
            "acme@icbc-cn",
            Operation::FxLock {
                provider: id("enbd-ae"),
                sell: "CNY".parse().expect("code"),
                buy: "THB".parse().expect("code"),
                sell_amount: amount("1"),
                window_ms: 60_000,
                rate_min: None,
            },
        )
        .await;
    assert_eq!(node.submit(&tx).await, Err((409, ErrorCode::InsufficientLiquidity)));
    // kbank-th has the inventory, but not at a minimum rate above its quote.
    let tx = node
        .sign(
            "acme@icbc-cn",
            Operation::FxLock {
                provider: id("kbank-th"),
                sell: "CNY".parse().expect("code"),
                buy: "THB".parse().expect("code"),
                sell_amount: amount("1"),
                window_ms: 60_000,
                rate_min: Some("5".parse().expect("rate")),
            },
        )
        .await;
    assert_eq!(node.submit(&tx).await, Err((409, ErrorCode::FxRateBelowMin)));
}
