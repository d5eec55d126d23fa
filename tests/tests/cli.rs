//! The `corridor` CLI against a running dev chain, as a bank's operator or a corporate
//! treasury developer uses it: onboarding, issuance, payments, batch payroll, both signature
//! schemes, and signatures made by the `openssl` command line.

use corridor_sdk::api::{AccountView, TxView};
use corridor_sdk::{Amount, Operation, Outcome};
use corridor_tests::{DevNode, balance, id};
use std::path::Path;
use std::process::{Command, Output};

fn ok(output: &Output) -> String {
    corridor_tests::stdout_of_success(output)
}

fn json<T: serde::de::DeserializeOwned>(output: &Output) -> T {
    serde_json::from_str(ok(output).trim()).expect("CLI JSON")
}

fn key(node: &DevNode, account: &str) -> String {
    node.key_path(account).display().to_string()
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl on PATH (scripts/setup.sh installs it)")
}

/// `corridor --json --key <sender's key> transfer ...`
fn transfer(node: &DevNode, sender: &str, to: &str, amount: &str, currency: &str) -> Output {
    let key = key(node, sender);
    node.cli(&[
        "--json",
        "--key",
        &key,
        "transfer",
        "--to",
        to,
        "--amount",
        amount,
        "--currency",
        currency,
    ])
}

fn finalized_ok(view: &TxView) {
    assert_eq!(
        view.receipt.as_ref().map(|r| &r.outcome),
        Some(&Outcome::Success),
        "{view:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboard_issue_pay_and_batch_payroll() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let newco_key = dir.path().join("newco.key");
    let newco_key_text = newco_key.display().to_string();

    // A corporate makes its key; OpenSSL reads it.
    let public_key = ok(&node.cli(&["keygen", "--scheme", "ed25519", "--out", &newco_key_text]));
    assert!(public_key.trim().starts_with("ed25519:"), "{public_key}");
    assert!(openssl(&["pkey", "-in", &newco_key_text, "-noout"]).status.success());
    // Its bank registers it under its own domain; the central bank issues CNY to it.
    let view: TxView = json(&node.cli(&[
        "--json",
        "--key",
        &key(&node, "icbc-cn"),
        "account",
        "register",
        "--account",
        "newco@icbc-cn",
        "--key-file",
        &newco_key_text,
    ]));
    finalized_ok(&view);
    finalized_ok(&json(&node.cli(&[
        "--json",
        "--key",
        &key(&node, "pboc"),
        "mint",
        "--to",
        "newco@icbc-cn",
        "--amount",
        "5000",
        "--currency",
        "CNY",
    ])));
    // It pays, signing with its key; the CLI finds its account from the key.
    let paid = node.cli(&[
        "--key",
        &newco_key_text,
        "transfer",
        "--to",
        "harbour@boc-hk",
        "--amount",
        "1250.50",
        "--currency",
        "CNY",
        "--memo",
        "invoice 42",
    ]);
    let human = ok(&paid);
    assert!(human.contains("success"), "{human}");
    let newco: AccountView = json(&node.cli(&["--json", "balance", "newco@icbc-cn"]));
    assert_eq!(balance(&newco, "CNY"), "3749.5");
    assert_eq!(newco.sponsor, Some(id("icbc-cn")));
    // Another bank may not register under icbc-cn's domain.
    let intruder = node.cli(&[
        "--json",
        "--key",
        &key(&node, "boc-hk"),
        "account",
        "register",
        "--account",
        "x@icbc-cn",
        "--key-file",
        &newco_key_text,
    ]);
    assert_eq!(intruder.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&intruder.stdout).contains("not_sponsor"));

    // Payroll: 100 payees registered by the bank, paid in one all-or-nothing batch.
    let keys: Vec<corridor_sdk::PrivateKey> = (0..100)
        .map(|_| corridor_sdk::PrivateKey::generate(corridor_sdk::Scheme::Ed25519).expect("key"))
        .collect();
    let mut nonce = node.next_nonce("icbc-cn").await;
    let mut registrations = Vec::new();
    for (i, payee_key) in keys.iter().enumerate() {
        let op = Operation::register_account_proven(&node.genesis_hash, id(&format!("staff-{i}@icbc-cn")), payee_key);
        registrations.push(node.sign_with_nonce("icbc-cn", nonce, op));
        nonce += 1;
    }
    for chunk in registrations.chunks(50) {
        let response = node.submit_batch(chunk).await;
        for result in response.results {
            let hash = result
                .tx_hash
                .unwrap_or_else(|| panic!("registration refused: {:?}", result.error));
            finalized_ok(&node.wait(&hash).await);
        }
    }
    let bank_before = balance(&node.account("icbc-cn").await, "CNY")
        .parse::<rust_decimal::Decimal>()
        .expect("decimal");
    let mut csv = String::from("payee,amount,currency,memo\n");
    let mut total = rust_decimal::Decimal::ZERO;
    for i in 0..100 {
        let amount = Amount::parse(&format!("{}.{:02}", 100 + i, i)).expect("amount");
        total += amount.decimal();
        csv.push_str(&format!("staff-{i}@icbc-cn,{amount},CNY,salary {i}\n"));
    }
    let payroll = dir.path().join("payroll.csv");
    std::fs::write(&payroll, &csv).expect("csv");
    let view: TxView = json(&node.cli(&[
        "--json",
        "--key",
        &key(&node, "icbc-cn"),
        "batch",
        "--csv",
        &payroll.display().to_string(),
    ]));
    finalized_ok(&view);
    assert_eq!(view.receipt.as_ref().map(|r| r.events.len()), Some(100));
    for i in [0usize, 42, 99] {
        let payee = node.account(&format!("staff-{i}@icbc-cn")).await;
        assert_eq!(
            balance(&payee, "CNY"),
            format!("{}.{:02}", 100 + i, i)
                .trim_end_matches('0')
                .trim_end_matches('.')
        );
    }
    let bank_after = balance(&node.account("icbc-cn").await, "CNY")
        .parse::<rust_decimal::Decimal>()
        .expect("decimal");
    assert_eq!(bank_before - bank_after, total);

    // One bad leg (an account that does not exist) fails the whole batch: nothing moves.
    let bad = dir.path().join("bad.csv");
    let lines: Vec<&str> = csv.lines().take(51).collect();
    std::fs::write(&bad, format!("{}\nnobody@icbc-cn,1.00,CNY,\n", lines.join("\n"))).expect("csv");
    let refused = node.cli(&[
        "--json",
        "--key",
        &key(&node, "icbc-cn"),
        "batch",
        "--csv",
        &bad.display().to_string(),
    ]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&refused.stdout)
    );
    assert!(String::from_utf8_lossy(&refused.stdout).contains("unknown_account"));
    assert_eq!(balance(&node.account("staff-0@icbc-cn").await, "CNY"), "100");
    assert_eq!(
        balance(&node.account("icbc-cn").await, "CNY")
            .parse::<rust_decimal::Decimal>()
            .expect("decimal"),
        bank_after
    );

    // Reading back: the transaction, its block, the history and the event stream.
    let hash = view.tx_hash.to_string();
    let shown: TxView = json(&node.cli(&["--json", "tx", &hash]));
    assert_eq!(shown.tx_hash, view.tx_hash);
    let height = shown.receipt.as_ref().expect("receipt").height.to_string();
    let block: corridor_sdk::api::BlockView = json(&node.cli(&["--json", "block", &height]));
    assert!(block.tx_hashes.contains(&view.tx_hash));
    assert_eq!(block.certificate.block_hash, block.hash);
    assert!(
        !block.certificate.finality.is_empty(),
        "a finalized block carries its finality proof"
    );
    let history = ok(&node.cli(&["history", "staff-7@icbc-cn"]));
    assert!(
        history.contains("transferred 107.07 CNY icbc-cn -> staff-7@icbc-cn"),
        "{history}"
    );
    let events = ok(&node.cli(&["--json", "events", "--from", "0", "--count", "3"]));
    assert_eq!(events.lines().count(), 3);

    // A regulator checks a balance with a proof, verified on its side of the wire against a
    // certified header (the command waits for the block that commits to the proof's root).
    let proven: serde_json::Value = json(
        &node
            .cli_while_blocks_land(
                Some("regulator"),
                &["--json", "proof", "staff-7@icbc-cn"],
                "icbc-cn",
                "harbour@boc-hk",
            )
            .await,
    );
    assert_eq!(proven["verified"], true);
    assert_eq!(proven["certificate"]["verified"], true);
    assert_eq!(proven["state"]["balances"]["CNY"], "107.07");
    let human = ok(&node
        .cli_while_blocks_land(
            Some("regulator"),
            &["proof", "nobody@icbc-cn"],
            "icbc-cn",
            "harbour@boc-hk",
        )
        .await);
    assert!(human.contains("absent (proven)"), "{human}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sm2_and_ed25519_corporates_pay_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    // acme@icbc-cn holds an SM2 key, harbour@boc-hk an Ed25519 key.
    assert!(
        node.account("acme@icbc-cn")
            .await
            .public_key
            .to_text()
            .starts_with("sm2:")
    );
    assert!(
        node.account("harbour@boc-hk")
            .await
            .public_key
            .to_text()
            .starts_with("ed25519:")
    );
    finalized_ok(&json(&transfer(
        &node,
        "acme@icbc-cn",
        "harbour@boc-hk",
        "300.25",
        "CNY",
    )));
    finalized_ok(&json(&transfer(
        &node,
        "harbour@boc-hk",
        "acme@icbc-cn",
        "100.25",
        "CNY",
    )));
    finalized_ok(&json(&transfer(&node, "harbour@boc-hk", "acme@icbc-cn", "88", "HKD")));
    assert_eq!(balance(&node.account("acme@icbc-cn").await, "CNY"), "999800");
    assert_eq!(balance(&node.account("harbour@boc-hk").await, "CNY"), "200");
    assert_eq!(balance(&node.account("acme@icbc-cn").await, "HKD"), "88");
    // Over the balance: refused with its code, exit 1.
    let overdraft = transfer(&node, "harbour@boc-hk", "acme@icbc-cn", "201", "CNY");
    assert_eq!(overdraft.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&overdraft.stdout).contains("insufficient_funds"));
}

/// Build with the CLI, sign with `openssl pkeyutl`, submit with the CLI.
/// The sender pays 1.25 of `currency` to `to`.
fn openssl_round_trip(
    node: &DevNode,
    dir: &Path,
    sender: &str,
    key_file: &str,
    sign_args: &[&str],
    (to, currency): (&str, &str),
) -> Output {
    let unsigned = ok(&node.cli(&[
        "tx",
        "build",
        "transfer",
        "--from",
        sender,
        "--to",
        to,
        "--amount",
        "1.25",
        "--currency",
        currency,
    ]));
    let bytes = hex::decode(unsigned.trim()).expect("tx build prints hex");
    // What an offline signer checks first: the tag, then the genesis hash of the chain it means.
    let tag = corridor_sdk::codec::encode(&corridor_sdk::tx::TX_SIGNING_DOMAIN);
    assert_eq!(&bytes[..tag.len()], tag.as_slice());
    assert_eq!(
        &bytes[corridor_sdk::tx::TX_SIGNING_GENESIS_HASH_RANGE],
        node.genesis_hash.0.as_slice()
    );
    let (tx_file, sig_file) = (dir.join(format!("{sender}.bin")), dir.join(format!("{sender}.sig")));
    std::fs::write(&tx_file, bytes).expect("write tx");
    let (tx_text, sig_text) = (tx_file.display().to_string(), sig_file.display().to_string());
    let mut args = vec![
        "pkeyutl", "-sign", "-rawin", "-inkey", key_file, "-in", &tx_text, "-out", &sig_text,
    ];
    args.extend_from_slice(sign_args);
    let signed = openssl(&args);
    assert!(
        signed.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&signed.stderr)
    );
    node.cli(&[
        "--json",
        "tx",
        "submit",
        "--unsigned-file",
        &tx_text,
        "--signature-file",
        &sig_text,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_signed_by_the_openssl_command_line_are_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    for account in ["acme@icbc-cn", "harbour@boc-hk"] {
        assert!(
            openssl(&["pkey", "-in", &key(&node, account), "-noout"])
                .status
                .success(),
            "{account}"
        );
    }
    let sm2_id = ["-digest", "sm3", "-pkeyopt", "distid:1234567812345678"];
    // SM2 (our key file) and Ed25519 (our key file), signed by OpenSSL.
    finalized_ok(&json(&openssl_round_trip(
        &node,
        dir.path(),
        "acme@icbc-cn",
        &key(&node, "acme@icbc-cn"),
        &sm2_id,
        ("icbc-cn", "CNY"),
    )));
    finalized_ok(&json(&openssl_round_trip(
        &node,
        dir.path(),
        "harbour@boc-hk",
        &key(&node, "harbour@boc-hk"),
        &[],
        ("boc-hk", "HKD"),
    )));
    assert_eq!(balance(&node.account("acme@icbc-cn").await, "CNY"), "999998.75");

    // `corridor status` shows what signatures bind.
    let status = ok(&node.cli(&["status"]));
    assert!(
        status.contains("genesis_hash") && status.contains(&node.genesis_hash.to_hex()),
        "{status}"
    );

    // An envelope bound to another chain's genesis hash, signed offline, is refused here.
    let elsewhere = corridor_sdk::Hash([0x6f; 32]);
    let unsigned = ok(&node.cli(&[
        "tx",
        "build",
        "transfer",
        "--from",
        "harbour@boc-hk",
        "--genesis-hash",
        &elsewhere.to_hex(),
        "--to",
        "boc-hk",
        "--amount",
        "1",
        "--currency",
        "HKD",
    ]));
    let bytes = hex::decode(unsigned.trim()).expect("tx build prints hex");
    assert_eq!(
        &bytes[corridor_sdk::tx::TX_SIGNING_GENESIS_HASH_RANGE],
        elsewhere.0.as_slice()
    );
    let signature = node.key("harbour@boc-hk").sign(&bytes);
    let refused = node.cli(&[
        "--json",
        "tx",
        "submit",
        "--unsigned",
        unsigned.trim(),
        "--signature",
        &hex::encode(signature.as_bytes()),
    ]);
    assert!(!refused.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(said.contains("wrong_chain"), "{said}");

    // Keys generated by OpenSSL work as account keys.
    for (scheme, sender, sign_args) in [("SM2", "osm2@boc-hk", &sm2_id[..]), ("ED25519", "oed@boc-hk", &[][..])] {
        let key_file = dir.path().join(format!("{sender}.pem")).display().to_string();
        assert!(
            openssl(&["genpkey", "-algorithm", scheme, "-out", &key_file])
                .status
                .success()
        );
        finalized_ok(&json(&node.cli(&[
            "--json",
            "--key",
            &key(&node, "boc-hk"),
            "account",
            "register",
            "--account",
            sender,
            "--key-file",
            &key_file,
        ])));
        finalized_ok(&json(&node.cli(&[
            "--json",
            "--key",
            &key(&node, "hkma"),
            "mint",
            "--to",
            sender,
            "--amount",
            "10",
            "--currency",
            "HKD",
        ])));
        finalized_ok(&json(&openssl_round_trip(
            &node,
            dir.path(),
            sender,
            &key_file,
            sign_args,
            ("boc-hk", "HKD"),
        )));
        assert_eq!(balance(&node.account(sender).await, "HKD"), "8.75");
    }

    // OpenSSL 3.0's default SM2 id is empty: such a signature is refused, nothing changes.
    let before = node.account("osm2@boc-hk").await;
    let osm2_key = dir.path().join("osm2@boc-hk.pem").display().to_string();
    let wrong_id = openssl_round_trip(
        &node,
        dir.path(),
        "osm2@boc-hk",
        &osm2_key,
        &["-digest", "sm3"],
        ("boc-hk", "HKD"),
    );
    assert_eq!(wrong_id.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong_id.stdout).contains("bad_signature"));
    assert_eq!(node.account("osm2@boc-hk").await, before);
}
