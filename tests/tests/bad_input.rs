//! Every kind of bad input the issue names is refused at the HTTP API with its code, changes
//! nothing, and leaves the node serving.

use corridor_sdk::error::ErrorCode;
use corridor_sdk::limits::{BATCH_LEGS_MAX, MEMO_BYTES_MAX, TX_BYTES_MAX};
use corridor_sdk::{Amount, CurrencyCode, Hash, Operation, PrivateKey, Scheme, Signature, Transaction, TransferLeg};
use corridor_tests::{DevNode, far_expiry, id};

fn cny(amount: &str) -> (CurrencyCode, Amount) {
    (
        CurrencyCode::new("CNY").expect("code"),
        Amount::parse(amount).expect("amount"),
    )
}

fn pay(to: &str, currency: &str, amount: &str) -> Operation {
    Operation::transfer(
        id(to),
        CurrencyCode::new(currency).expect("code"),
        Amount::parse(amount).expect("amount"),
        None,
    )
}

fn corrupt_signature(mut signed: corridor_sdk::SignedTransaction) -> corridor_sdk::SignedTransaction {
    let mut bytes = *signed.signature.as_bytes();
    bytes[10] ^= 0x01;
    signed.signature = match signed.signature {
        Signature::Ed25519(_) => Signature::Ed25519(bytes),
        Signature::Sm2(_) => Signature::Sm2(bytes),
    };
    signed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_its_code_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;

    // Setup that must succeed: a frozen account, and one transaction to replay later.
    node.execute(
        &node
            .sign("regulator", Operation::freeze(id("gulf-trade@enbd-ae")))
            .await,
    )
    .await;
    let first = node.sign("acme@icbc-cn", pay("harbour@boc-hk", "CNY", "1.50")).await;
    node.execute(&first).await;

    let before = node.status().await;
    let acme_before = node.account("acme@icbc-cn").await;
    let harbour_before = node.account("harbour@boc-hk").await;
    let acme_nonce = acme_before.next_nonce;

    let valid = node.sign_with_nonce("acme@icbc-cn", acme_nonce, pay("harbour@boc-hk", "CNY", "1"));
    let valid_bytes = valid.to_bytes();
    let mut cases: Vec<(&str, Vec<u8>, ErrorCode)> = vec![
        (
            "truncated bytes",
            valid_bytes[..valid_bytes.len() - 7].to_vec(),
            ErrorCode::Malformed,
        ),
        (
            "trailing bytes",
            [valid_bytes.as_slice(), &[0]].concat(),
            ErrorCode::TrailingBytes,
        ),
        ("garbage bytes", vec![0xff; 64], ErrorCode::Malformed),
        ("over TX_BYTES_MAX", vec![0; TX_BYTES_MAX + 1], ErrorCode::TooLarge),
    ];
    let long_memo = "m".repeat(MEMO_BYTES_MAX);
    let big_batch: Vec<TransferLeg> = (0..BATCH_LEGS_MAX)
        .map(|_| TransferLeg {
            to: id("harbour@boc-hk"),
            currency: cny("1").0,
            amount: cny("1").1,
            memo: Some(long_memo.clone()),
        })
        .collect();
    let oversized = node.sign_with_nonce("acme@icbc-cn", acme_nonce, Operation::batch_transfer(big_batch.clone()));
    let mut padded = oversized.to_bytes();
    padded.resize(TX_BYTES_MAX + 10, 0);
    cases.push(("oversized transaction", padded, ErrorCode::TooLarge));
    let mut over_limit = big_batch;
    over_limit.push(over_limit[0].clone());
    for leg in &mut over_limit {
        leg.memo = None;
    }
    let batch_over_limit = node.sign_with_nonce("acme@icbc-cn", acme_nonce, Operation::batch_transfer(over_limit));
    cases.push((
        "batch over its leg limit",
        batch_over_limit.to_bytes(),
        ErrorCode::BatchTooLarge,
    ));
    let other_chain = Transaction::new(
        Hash([0x6f; 32]),
        id("acme@icbc-cn"),
        acme_nonce,
        far_expiry(),
        pay("harbour@boc-hk", "CNY", "1"),
    )
    .sign(&node.key("acme@icbc-cn"));
    cases.push(("another genesis hash", other_chain.to_bytes(), ErrorCode::WrongChain));
    cases.push((
        "bad SM2 signature",
        corrupt_signature(valid.clone()).to_bytes(),
        ErrorCode::BadSignature,
    ));
    let harbour_tx = node.sign("harbour@boc-hk", pay("acme@icbc-cn", "HKD", "1")).await;
    cases.push((
        "bad Ed25519 signature",
        corrupt_signature(harbour_tx).to_bytes(),
        ErrorCode::BadSignature,
    ));
    cases.push(("replayed transaction", first.to_bytes(), ErrorCode::Duplicate));
    let replayed_nonce = node.sign_with_nonce("acme@icbc-cn", acme_nonce - 1, pay("harbour@boc-hk", "CNY", "2"));
    cases.push(("replayed nonce", replayed_nonce.to_bytes(), ErrorCode::NonceTooLow));
    let expired = Transaction::new(
        node.genesis_hash,
        id("acme@icbc-cn"),
        acme_nonce,
        1_000,
        pay("harbour@boc-hk", "CNY", "1"),
    )
    .sign(&node.key("acme@icbc-cn"));
    cases.push(("expired transaction", expired.to_bytes(), ErrorCode::Expired));
    let sign =
        |sender: &str, operation: Operation, nonce: u64| node.sign_with_nonce(sender, nonce, operation).to_bytes();
    cases.push((
        "too many decimal places",
        sign("acme@icbc-cn", pay("harbour@boc-hk", "CNY", "0.001"), acme_nonce),
        ErrorCode::AmountScale,
    ));
    cases.push((
        "zero amount",
        sign("acme@icbc-cn", pay("harbour@boc-hk", "CNY", "0"), acme_nonce),
        ErrorCode::AmountNotPositive,
    ));
    cases.push((
        "negative amount",
        sign("acme@icbc-cn", pay("harbour@boc-hk", "CNY", "-5"), acme_nonce),
        ErrorCode::AmountNotPositive,
    ));
    cases.push((
        "overdraft",
        sign("acme@icbc-cn", pay("harbour@boc-hk", "CNY", "5000000"), acme_nonce),
        ErrorCode::InsufficientFunds,
    ));
    cases.push((
        "over the single-transfer limit",
        sign(
            "icbc-cn",
            pay("acme@icbc-cn", "CNY", "100000000.01"),
            node.next_nonce("icbc-cn").await,
        ),
        ErrorCode::LimitExceeded,
    ));
    cases.push((
        "unknown payee",
        sign("acme@icbc-cn", pay("nobody@icbc-cn", "CNY", "1"), acme_nonce),
        ErrorCode::UnknownAccount,
    ));
    let ghost = Transaction::new(
        node.genesis_hash,
        id("ghost@icbc-cn"),
        0,
        far_expiry(),
        pay("acme@icbc-cn", "CNY", "1"),
    )
    .sign(&PrivateKey::generate(Scheme::Ed25519).expect("key"));
    cases.push(("unknown sender", ghost.to_bytes(), ErrorCode::UnknownAccount));
    cases.push((
        "unknown currency",
        sign("acme@icbc-cn", pay("harbour@boc-hk", "XYZ", "1"), acme_nonce),
        ErrorCode::UnknownCurrency,
    ));
    let icbc_nonce = node.next_nonce("icbc-cn").await;
    let mint = Operation::mint(id("acme@icbc-cn"), cny("1").0, cny("100").1);
    cases.push((
        "mint by a non-issuer",
        sign("icbc-cn", mint, icbc_nonce),
        ErrorCode::NotIssuer,
    ));
    let gulf_nonce = node.next_nonce("gulf-trade@enbd-ae").await;
    cases.push((
        "transfer from a frozen account",
        sign("gulf-trade@enbd-ae", pay("enbd-ae", "AED", "1"), gulf_nonce),
        ErrorCode::Frozen,
    ));
    cases.push((
        "transfer to a frozen account",
        sign("acme@icbc-cn", pay("gulf-trade@enbd-ae", "CNY", "1"), acme_nonce),
        ErrorCode::Frozen,
    ));
    let foreign = Operation::register_account_proven(
        &node.genesis_hash,
        id("intruder@icbc-cn"),
        &PrivateKey::generate(Scheme::Ed25519).expect("key"),
    );
    cases.push((
        "register under another bank's domain",
        sign("boc-hk", foreign, node.next_nonce("boc-hk").await),
        ErrorCode::NotSponsor,
    ));
    cases.push((
        "signed with someone else's key",
        {
            let mut stolen = valid.clone();
            stolen.public_key = node.key("harbour@boc-hk").public_key();
            stolen.signature = node.key("harbour@boc-hk").sign(&stolen.tx.signing_bytes());
            stolen.to_bytes()
        },
        ErrorCode::KeyMismatch,
    ));

    for (name, bytes, expected) in &cases {
        let refused = node.submit_bytes(bytes).await;
        assert_eq!(refused, Err((expected.http_status(), *expected)), "{name}");
    }
    // Malformed envelopes around the bytes, bad paths and queries, wrong methods.
    let refusals = [
        (
            "malformed hex",
            node.post("/v1/transactions", &serde_json::json!({ "tx": "not hex!" }))
                .await,
            400,
            ErrorCode::BadHex,
        ),
        (
            "wrong JSON shape",
            node.post("/v1/transactions", &serde_json::json!({ "transaction": "00" }))
                .await,
            400,
            ErrorCode::BadRequest,
        ),
        (
            "bad hash",
            node.get("/v1/transactions/xyz").await,
            400,
            ErrorCode::Malformed,
        ),
        (
            "bad account id",
            node.get("/v1/accounts/NOT%20AN%20ID").await,
            400,
            ErrorCode::BadAccountId,
        ),
        (
            "missing block",
            node.get("/v1/blocks/999999").await,
            404,
            ErrorCode::NotFound,
        ),
        (
            "bad query",
            node.get("/v1/accounts/acme@icbc-cn/history?limit=abc").await,
            400,
            ErrorCode::BadRequest,
        ),
        (
            "wrong method",
            node.post("/v1/status", &serde_json::json!({})).await,
            405,
            ErrorCode::MethodNotAllowed,
        ),
        (
            "oversized body",
            node.post(
                "/v1/transactions",
                &serde_json::json!({ "tx": "00".repeat(3 * TX_BYTES_MAX) }),
            )
            .await,
            413,
            ErrorCode::TooLarge,
        ),
    ];
    for (name, (status, body), expected_status, expected_code) in refusals {
        assert_eq!(
            (status, corridor_tests::error_code(&body)),
            (expected_status, expected_code),
            "{name}"
        );
    }

    // In a batch, each bad transaction gets its own code and the good one still goes through.
    let good = node.sign_with_nonce("acme@icbc-cn", acme_nonce, pay("harbour@boc-hk", "CNY", "3"));
    let response = node
        .submit_batch(&[corrupt_signature(good.clone()), good.clone()])
        .await;
    assert_eq!(
        response.results[0].error.as_ref().map(|e| e.code),
        Some(ErrorCode::BadSignature)
    );
    let good_hash = response.results[1].tx_hash.expect("the good transaction is admitted");

    // Nothing changed but what the one good transaction did; the node still serves.
    let view = node.wait(&good_hash).await;
    assert_eq!(view.receipt.map(|r| r.outcome), Some(corridor_sdk::Outcome::Success));
    let after = node.status().await;
    assert_eq!(
        after.height,
        before.height + 1,
        "exactly one block, for the good transaction"
    );
    let acme_after = node.account("acme@icbc-cn").await;
    assert_eq!(acme_after.next_nonce, acme_nonce + 1);
    assert_eq!(corridor_tests::balance(&acme_after, "CNY"), "999995.5");
    assert_eq!(
        corridor_tests::balance(&node.account("harbour@boc-hk").await, "CNY"),
        "4.5"
    );
    assert_eq!(corridor_tests::balance(&harbour_before, "CNY"), "1.5");
    let metrics = node
        .http
        .get(format!("{}/metrics", node.rpc))
        .send()
        .await
        .expect("metrics");
    let text = metrics.text().await.expect("metrics text");
    assert!(
        text.contains("corridor_txs_rejected_total{code=\"bad_signature\"} 3"),
        "{text}"
    );
}

/// The state is untouched by refusals: compare state roots around a burst of bad input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_leave_the_state_root_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let before = node.status().await;
    for amount in ["0.001", "0", "99999999"] {
        let tx = node.sign("acme@icbc-cn", pay("harbour@boc-hk", "CNY", amount)).await;
        assert!(node.submit(&tx).await.is_err(), "{amount}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let after = node.status().await;
    assert_eq!((after.height, after.state_root), (before.height, before.state_root));
    assert_eq!(after.mempool_txs, 0);
}
