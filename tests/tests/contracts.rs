//! Contracts against a running dev chain, through the `corridor` CLI as a treasury developer
//! uses it: deploy the shipped escrow, fund and release an escrow, refund one past its
//! deadline, capture part of a deposit, and watch hostile contracts fail with codes while the
//! node keeps serving.

use corridor_sdk::Amount;
use corridor_sdk::contract::ContractView;
use corridor_tests::{DevNode, balance};
use std::path::PathBuf;
use std::process::Output;

fn escrow_wasm() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../contracts/target/wasm32-unknown-unknown/release/escrow.wasm");
    assert!(
        path.exists(),
        "{} not built: scripts/test.sh builds contracts/ first",
        path.display()
    );
    path
}

fn ok(output: &Output) -> String {
    corridor_tests::stdout_of_success(output)
}

fn field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix(name).map(|rest| rest.trim().to_owned()))
        .unwrap_or_else(|| panic!("no `{name}` in:\n{text}"))
}

fn amount(text: &str) -> Amount {
    Amount::parse(text).expect("amount")
}

async fn cny(node: &DevNode, account: &str) -> Amount {
    amount(&balance(&node.account(account).await, "CNY"))
}

fn now_ms() -> u64 {
    corridor_tests::far_expiry() - 3_600_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escrow_through_the_cli_and_hostile_contracts_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let acme = node.key_path("acme@icbc-cn").display().to_string();
    let icbc = node.key_path("icbc-cn").display().to_string();
    let wasm = escrow_wasm().display().to_string();

    // The importer's bank deploys the escrow contract.
    let out = ok(&node.cli(&["--key", &icbc, "contract", "deploy", "--wasm", &wasm]));
    let contract = field(&out, "contract_id");
    assert!(field(&out, "fuel_used").parse::<u64>().expect("fuel") > 0);

    // acme funds an escrow of 2500.50 CNY for harbour, arbitrated by icbc-cn.
    let acme_before = cny(&node, "acme@icbc-cn").await;
    let deadline = (now_ms() + 3_600_000).to_string();
    let create = |amount: &str, deadline: &str| {
        node.cli(&[
            "--key",
            &acme,
            "escrow",
            "create",
            "--contract",
            &contract,
            "--seller",
            "harbour@boc-hk",
            "--arbiter",
            "icbc-cn",
            "--amount",
            amount,
            "--currency",
            "CNY",
            "--deadline-ms",
            deadline,
        ])
    };
    let out = ok(&create("2500.50", &deadline));
    let first = field(&out, "escrow_id");
    assert_eq!(first, "0");
    assert_eq!(
        cny(&node, "acme@icbc-cn").await,
        acme_before.checked_sub(amount("2500.50")).expect("exact")
    );
    let state: ContractView =
        serde_json::from_str(&ok(&node.cli(&["--json", "contract", "state", &contract]))).expect("json");
    assert_eq!(state.balances.values().next(), Some(&amount("2500.50")));

    // The seller cannot release it; the buyer can, on delivery.
    let refused = node.cli(&[
        "--key",
        &node.key_path("harbour@boc-hk").display().to_string(),
        "escrow",
        "release",
        "--contract",
        &contract,
        &first,
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("contract_abort"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    ok(&node.cli(&["--key", &acme, "escrow", "release", "--contract", &contract, &first]));
    assert_eq!(cny(&node, "harbour@boc-hk").await, amount("2500.50"));

    // An escrow past its deadline refunds the buyer.
    let short = (now_ms() + 300).to_string();
    let second = field(&ok(&create("100", &short)), "escrow_id");
    let deadline_ms: u64 = short.parse().expect("ms");
    while now_ms() <= deadline_ms + 50 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let before = cny(&node, "acme@icbc-cn").await;
    ok(&node.cli(&["--key", &acme, "escrow", "refund", "--contract", &contract, &second]));
    assert_eq!(
        cny(&node, "acme@icbc-cn").await,
        before.checked_add(amount("100")).expect("exact")
    );

    // A hotel-style deposit: the hotel captures 120.25 of 300; the rest goes back.
    let third = field(&ok(&create("300", &deadline)), "escrow_id");
    let before = cny(&node, "acme@icbc-cn").await;
    let harbour = node.key_path("harbour@boc-hk").display().to_string();
    ok(&node.cli(&[
        "--key",
        &harbour,
        "escrow",
        "capture",
        "--contract",
        &contract,
        &third,
        "--amount",
        "120.25",
        "--currency",
        "CNY",
    ]));
    assert_eq!(cny(&node, "harbour@boc-hk").await, amount("2620.75"));
    assert_eq!(
        cny(&node, "acme@icbc-cn").await,
        before.checked_add(amount("179.75")).expect("exact")
    );

    // A disputed escrow is split by the arbiter.
    let fourth = field(&ok(&create("40", &deadline)), "escrow_id");
    ok(&node.cli(&["--key", &harbour, "escrow", "dispute", "--contract", &contract, &fourth]));
    let blocked = node.cli(&["--key", &acme, "escrow", "release", "--contract", &contract, &fourth]);
    assert_eq!(blocked.status.code(), Some(1));
    ok(&node.cli(&[
        "--key",
        &icbc,
        "escrow",
        "decide",
        "--contract",
        &contract,
        &fourth,
        "--to-seller",
        "15",
        "--currency",
        "CNY",
    ]));
    assert_eq!(cny(&node, "harbour@boc-hk").await, amount("2635.75"));
    let state: ContractView =
        serde_json::from_str(&ok(&node.cli(&["--json", "contract", "state", &contract]))).expect("json");
    assert!(state.balances.is_empty(), "{state:?}");

    // Hostile contracts: each refused with its code, nothing moves, the node keeps serving.
    let hostile = [
        ("loop", r#"(func (export "run") (loop (br 0)))"#, "contract_out_of_fuel"),
        (
            "recursion",
            r#"(func $r (export "run") (call $r))"#,
            "contract_stack_overflow",
        ),
        (
            "memory",
            r#"(func (export "run") (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))))"#,
            "contract_memory_limit",
        ),
    ];
    for (name, body, code) in hostile {
        let path = dir.path().join(format!("{name}.wasm"));
        let bytes = wat::parse_str(format!(r#"(module (memory (export "memory") 1) {body})"#)).expect("wat");
        std::fs::write(&path, bytes).expect("write wasm");
        let out = ok(&node.cli(&[
            "--key",
            &icbc,
            "contract",
            "deploy",
            "--wasm",
            &path.display().to_string(),
        ]));
        let id = field(&out, "contract_id");
        let before = cny(&node, "acme@icbc-cn").await;
        let refused = node.cli(&[
            "--key", &acme, "contract", "call", &id, "run", "--funds", "7:CNY", "--fuel", "2000000",
        ]);
        assert_eq!(refused.status.code(), Some(1), "{name}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains(code),
            "{name}: {}",
            String::from_utf8_lossy(&refused.stderr)
        );
        assert_eq!(cny(&node, "acme@icbc-cn").await, before, "{name} moved money");
    }
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm\x01\0\0\0garbage").expect("write");
    let refused = node.cli(&[
        "--key",
        &icbc,
        "contract",
        "deploy",
        "--wasm",
        &garbage.display().to_string(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("contract_invalid"));
    let big = dir.path().join("big.wasm");
    std::fs::write(&big, vec![0u8; 70 * 1024]).expect("write");
    let refused = node.cli(&[
        "--key",
        &icbc,
        "contract",
        "deploy",
        "--wasm",
        &big.display().to_string(),
    ]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "refused locally: over CONTRACT_MODULE_BYTES_MAX"
    );
    assert_eq!(node.status().await.chain_id, "corridor-dev");
    let (status, body) = node.get("/v1/contracts/999").await;
    assert_eq!(
        (status, corridor_tests::error_code(&body)),
        (404, corridor_sdk::ErrorCode::UnknownContract)
    );

    // A restart rebuilds the state tree from disk and audits conservation, contract balances
    // included (the node refuses to serve otherwise); the root is unchanged.
    let root = node.status().await.state_root;
    node.kill9();
    let node = DevNode::start(&dir.path().join("chain")).await;
    assert_eq!(node.status().await.state_root, root);
}

fn shipped(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../contracts/target/wasm32-unknown-unknown/release/{name}.wasm"
    ));
    assert!(path.exists(), "{} not built", path.display());
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supply_chain_finance_and_conditional_payment_through_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let key = |account: &str| node.key_path(account).display().to_string();
    let (icbc, acme, harbour, kbank) = (
        key("icbc-cn"),
        key("acme@icbc-cn"),
        key("harbour@boc-hk"),
        key("kbank-th"),
    );
    // The financier (kbank-th) needs CNY.
    ok(&node.cli(&[
        "--key",
        &icbc,
        "transfer",
        "--to",
        "kbank-th",
        "--amount",
        "400000",
        "--currency",
        "CNY",
    ]));

    // Supply-chain finance: icbc-cn (the anchor) owes acme 1,000,000 CNY in 3 s of block time.
    let scf = field(
        &ok(&node.cli(&[
            "--key",
            &icbc,
            "contract",
            "deploy",
            "--wasm",
            &shipped("supply_chain_finance"),
        ])),
        "contract_id",
    );
    let maturity = now_ms() + 3_000;
    let maturity_text = maturity.to_string();
    let issued = ok(&node.cli(&[
        "--key",
        &icbc,
        "scf",
        "issue",
        "--contract",
        &scf,
        "--holder",
        "acme@icbc-cn",
        "--amount",
        "1000000",
        "--currency",
        "CNY",
        "--maturity-ms",
        &maturity_text,
    ]));
    let receivable = field(&issued, "receivable_id");
    ok(&node.cli(&[
        "--key",
        &acme,
        "scf",
        "transfer",
        "--contract",
        &scf,
        &receivable,
        "--to",
        "harbour@boc-hk",
        "--amount",
        "300000",
        "--currency",
        "CNY",
    ]));
    ok(&node.cli(&[
        "--key",
        &harbour,
        "scf",
        "offer",
        "--contract",
        &scf,
        &receivable,
        "--financier",
        "kbank-th",
        "--amount",
        "300000",
        "--currency",
        "CNY",
        "--rate-bps",
        "300",
    ]));
    // The financier attaches the face value as a ceiling; the contract keeps the discounted price.
    ok(&node.cli(&[
        "--key",
        &kbank,
        "scf",
        "take",
        "--contract",
        &scf,
        &receivable,
        "--holder",
        "harbour@boc-hk",
        "--price",
        "300000",
        "--currency",
        "CNY",
    ]));
    // With 3 s to maturity, 3% a year discounts 300,000 by ~0.0009: under a fen, so the price
    // rounds to the face (the discount arithmetic over 89 days is covered by the executor test).
    assert_eq!(cny(&node, "harbour@boc-hk").await, amount("300000"));
    assert_eq!(
        cny(&node, "kbank-th").await,
        amount("100000"),
        "kbank paid the price, no more"
    );
    let early = node.cli(&[
        "--key",
        &icbc,
        "scf",
        "settle",
        "--contract",
        &scf,
        &receivable,
        "--amount",
        "1000000",
        "--currency",
        "CNY",
    ]);
    assert_eq!(early.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&early.stderr).contains("not_mature"));
    while now_ms() <= maturity + 50 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let acme_before = cny(&node, "acme@icbc-cn").await;
    let kbank_before = cny(&node, "kbank-th").await;
    ok(&node.cli(&[
        "--key",
        &icbc,
        "scf",
        "settle",
        "--contract",
        &scf,
        &receivable,
        "--amount",
        "1000000",
        "--currency",
        "CNY",
    ]));
    assert_eq!(
        cny(&node, "acme@icbc-cn").await,
        acme_before.checked_add(amount("700000")).expect("exact")
    );
    assert_eq!(
        cny(&node, "kbank-th").await,
        kbank_before.checked_add(amount("300000")).expect("exact")
    );

    // Conditional payment: a subsidy for harbour spendable only at kbank-th, 6% tax to the regulator.
    let pay = field(
        &ok(&node.cli(&[
            "--key",
            &icbc,
            "contract",
            "deploy",
            "--wasm",
            &shipped("conditional_payment"),
        ])),
        "contract_id",
    );
    let expiry = (now_ms() + 3_600_000).to_string();
    let created = ok(&node.cli(&[
        "--key",
        &acme,
        "pay",
        "create",
        "--contract",
        &pay,
        "--beneficiary",
        "harbour@boc-hk",
        "--amount",
        "1000",
        "--currency",
        "CNY",
        "--expiry-ms",
        &expiry,
        "--payee",
        "kbank-th",
        "--tax-authority",
        "regulator",
        "--tax-bps",
        "600",
    ]));
    let payment = field(&created, "payment_id");
    let elsewhere = node.cli(&[
        "--key",
        &harbour,
        "pay",
        "spend",
        "--contract",
        &pay,
        &payment,
        "--payee",
        "enbd-ae",
        "--amount",
        "10",
        "--currency",
        "CNY",
    ]);
    assert_eq!(elsewhere.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("not_whitelisted"));
    let kbank_before = cny(&node, "kbank-th").await;
    ok(&node.cli(&[
        "--key",
        &harbour,
        "pay",
        "spend",
        "--contract",
        &pay,
        &payment,
        "--payee",
        "kbank-th",
        "--amount",
        "500",
        "--currency",
        "CNY",
    ]));
    assert_eq!(cny(&node, "regulator").await, amount("30"));
    assert_eq!(
        cny(&node, "kbank-th").await,
        kbank_before.checked_add(amount("470")).expect("exact")
    );
}

/// The cross-border escrow at a locked rate, as a Chinese importer and a Thai exporter use it:
/// acme funds 10,000 CNY for siam-rice with kbank-th's CNY/THB rate locked at funding (the dev
/// oracle's 4.9 less kbank-th's 25 bps: 48,877.50 THB). Both rate providers then post 5.2; on
/// delivery acme releases, and siam-rice receives exactly the locked 48,877.50 THB while
/// kbank-th receives the 10,000 CNY (both legs in one transaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_fx_escrow_pays_the_exporter_at_the_rate_locked_at_funding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let key = |account: &str| node.key_path(account).display().to_string();
    let wasm = escrow_wasm().display().to_string();
    let contract = field(
        &ok(&node.cli(&["--key", &key("icbc-cn"), "contract", "deploy", "--wasm", &wasm])),
        "contract_id",
    );
    let holding = |view: &corridor_sdk::api::AccountView, currency: &str| amount(&balance(view, currency));
    let exporter_before = holding(&node.account("siam-rice@kbank-th").await, "THB");
    let kbank_before = node.account("kbank-th").await;
    let deadline = (now_ms() + 3_600_000).to_string();
    let out = ok(&node.cli(&[
        "--key",
        &key("acme@icbc-cn"),
        "escrow",
        "create",
        "--contract",
        &contract,
        "--seller",
        "siam-rice@kbank-th",
        "--arbiter",
        "icbc-cn",
        "--amount",
        "10000",
        "--currency",
        "CNY",
        "--deadline-ms",
        &deadline,
        "--fx-provider",
        "kbank-th",
        "--fx-buy",
        "THB",
    ]));
    let escrow = field(&out, "escrow_id");
    assert_eq!(field(&out, "locked_rate"), "4.88775");
    assert_eq!(field(&out, "seller_gets"), "48877.5 THB");
    let reserved = holding(&node.account("kbank-th").await, "THB");
    assert_eq!(
        reserved,
        holding(&kbank_before, "THB")
            .checked_sub(amount("48877.5"))
            .expect("exact"),
        "kbank-th's THB is reserved at funding"
    );

    // The market moves: both rate providers post 5.2, and the oracle follows.
    for provider in ["icbc-cn", "boc-hk"] {
        ok(&node.cli(&[
            "--key",
            &key(provider),
            "fx",
            "post",
            "--sell",
            "CNY",
            "--buy",
            "THB",
            "--rate",
            "5.2",
        ]));
    }
    let rates: corridor_sdk::fx::RatesView =
        serde_json::from_str(&ok(&node.cli(&["--json", "fx", "rates"]))).expect("rates JSON");
    let pair = rates
        .pairs
        .iter()
        .find(|pair| pair.sell.as_str() == "CNY" && pair.buy.as_str() == "THB")
        .expect("CNY/THB");
    assert_eq!(pair.oracle_rate.map(|rate| rate.to_string()), Some("5.2".into()));

    // Delivery confirmed: the importer releases at the locked rate.
    ok(&node.cli(&[
        "--key",
        &key("acme@icbc-cn"),
        "escrow",
        "release",
        "--contract",
        &contract,
        &escrow,
    ]));
    let exporter = holding(&node.account("siam-rice@kbank-th").await, "THB");
    assert_eq!(exporter, exporter_before.checked_add(amount("48877.5")).expect("exact"));
    let kbank = node.account("kbank-th").await;
    assert_eq!(
        holding(&kbank, "THB"),
        reserved,
        "the reservation, not new THB, paid the exporter"
    );
    assert_eq!(
        holding(&kbank, "CNY"),
        holding(&kbank_before, "CNY")
            .checked_add(amount("10000"))
            .expect("exact")
    );
    let state: ContractView =
        serde_json::from_str(&ok(&node.cli(&["--json", "contract", "state", &contract]))).expect("json");
    assert!(
        state.balances.is_empty(),
        "the escrow holds nothing after release: {state:?}"
    );
}
