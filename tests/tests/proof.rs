//! `corridor proof` as a regulator and a corporate use it: a balance proven against a state
//! root that a finalized header commits to, the header's certificate checked on the user's side
//! against a validator set the user chose — and refused when that set is not the one that
//! signed, or when the user's key cannot read the block the certificate covers.

use corridor_sdk::{Amount, CurrencyCode, Operation, PrivateKey, Scheme};
use corridor_tests::{DevNode, bin, id};
use serde_json::Value;
use std::process::{Command, Output, Stdio};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(output)
}

fn json(output: &Output) -> Value {
    serde_json::from_str(ok(output).trim()).expect("CLI JSON")
}

/// The failure's code and message, from `--json` output; the exit code must be 1.
fn refused(output: &Output) -> (String, String) {
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
    let body: Value = serde_json::from_str(stdout(output).trim()).expect("error JSON");
    assert!(body.get("verified").is_none(), "nothing is reported verified: {body}");
    (
        body["error"]["code"].as_str().expect("code").to_string(),
        body["error"]["message"].as_str().expect("message").to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balance_is_proven_against_a_header_the_validators_certified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let status = node.status().await;
    let validator = status.validator_set[0].id.to_string();

    // A regulator, trusting the node's own word for the validator set.
    let proven = json(
        &node
            .cli_while_blocks_land(
                Some("regulator"),
                &["--json", "proof", "acme@icbc-cn"],
                "icbc-cn",
                "harbour@boc-hk",
            )
            .await,
    );
    assert_eq!(proven["verified"], true);
    assert_eq!(proven["state"]["balances"]["CNY"], "1000000");
    let height = proven["height"].as_u64().expect("height");
    let committed_by = proven["committed_by_block"].as_u64().expect("committing block");
    assert!(committed_by > height, "{proven}");
    let certificate = &proven["certificate"];
    assert_eq!(certificate["verified"], true);
    assert_eq!(certificate["validators_pinned"], false);
    assert!(
        certificate["validators_from"]
            .as_str()
            .expect("source")
            .contains("/v1/status"),
        "{certificate}"
    );
    assert_eq!(certificate["signers"], serde_json::json!([validator]));
    assert_eq!(
        (certificate["quorum"].as_u64(), certificate["validators"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(certificate["certified_height"].as_u64() >= Some(committed_by));
    // The header it names is the node's block at that height, by hash.
    let (_, block) = node.get(&format!("/v1/blocks/{committed_by}")).await;
    assert_eq!(certificate["header_hash"], block["hash"]);

    // Pinned to the genesis file, in the human form.
    let genesis = node.data_dir.join("genesis.json").display().to_string();
    let human = ok(&node
        .cli_while_blocks_land(
            Some("regulator"),
            &["proof", "acme@icbc-cn", "--genesis", &genesis],
            "icbc-cn",
            "harbour@boc-hk",
        )
        .await);
    assert!(human.contains("verified         true"), "{human}");
    assert!(
        human.contains(&format!("validators_from  genesis file {genesis}")),
        "{human}"
    );
    assert!(human.contains("final: 1 of 1 validators signed (quorum 1)"), "{human}");
    assert!(human.contains(&format!("signers          {validator}")), "{human}");

    // Pinned to a saved `corridor --json status`.
    let saved = dir.path().join("status.json");
    std::fs::write(&saved, ok(&node.cli(&["--json", "status"]))).expect("save status");
    let saved = saved.display().to_string();
    let pinned = json(
        &node
            .cli_while_blocks_land(
                Some("regulator"),
                &["--json", "proof", "acme@icbc-cn", "--validators", &saved],
                "icbc-cn",
                "harbour@boc-hk",
            )
            .await,
    );
    assert_eq!(pinned["certificate"]["validators_pinned"], true);
    assert_eq!(pinned["certificate"]["node_reports_same_set"], true);

    // A validator set that did not sign: same id, another key. Exit 1, nothing verified.
    let impostor = PrivateKey::generate(Scheme::Ed25519).expect("key").public_key();
    let others = dir.path().join("others.json");
    let listed = serde_json::json!([{ "id": validator, "public_key": impostor.to_text() }]);
    std::fs::write(&others, listed.to_string()).expect("write validators file");
    let others = others.display().to_string();
    let output = node
        .cli_while_blocks_land(
            Some("regulator"),
            &["--json", "proof", "acme@icbc-cn", "--validators", &others],
            "icbc-cn",
            "harbour@boc-hk",
        )
        .await;
    let (code, message) = refused(&output);
    assert_eq!(code, "not_signed_by_validator_set", "{message}");
    assert!(message.contains(&format!("validators file {others}")), "{message}");
    // Four validators the dev chain never had: signer 0 is theirs, and one signer is no quorum.
    let four: Vec<Value> = (0..4)
        .map(|index| {
            let key = PrivateKey::generate(Scheme::Sm2).expect("key").public_key();
            serde_json::json!({ "id": format!("validator-{index}"), "public_key": key.to_text() })
        })
        .collect();
    let set = dir.path().join("four.json");
    std::fs::write(&set, serde_json::json!({ "validators": four }).to_string()).expect("write");
    let output = node
        .cli_while_blocks_land(
            Some("regulator"),
            &[
                "--json",
                "proof",
                "acme@icbc-cn",
                "--validators",
                &set.display().to_string(),
            ],
            "icbc-cn",
            "harbour@boc-hk",
        )
        .await;
    let (code, message) = refused(&output);
    assert_eq!(code, "too_few_signers", "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corporate_proves_its_own_balance_from_blocks_it_may_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let genesis = node.data_dir.join("genesis.json").display().to_string();
    // The blocks that land are payments to acme, so its key may read every transaction in them.
    let proven = json(
        &node
            .cli_while_blocks_land(
                Some("acme@icbc-cn"),
                &["--json", "proof", "acme@icbc-cn", "--genesis", &genesis],
                "icbc-cn",
                "acme@icbc-cn",
            )
            .await,
    );
    assert_eq!(proven["verified"], true);
    assert_eq!(proven["certificate"]["verified"], true);
    assert_eq!(proven["certificate"]["validators_pinned"], true);
    // The block that commits the root is another party's payment, and so is the next; the
    // third pays acme. That one is checked against its certificate, and the committing header
    // is final because that block descends from it by parent hashes.
    let child = Command::new(bin("corridor"))
        .args([
            "--rpc",
            &node.rpc,
            "--json",
            "proof",
            "acme@icbc-cn",
            "--genesis",
            &genesis,
        ])
        .env("CORRIDOR_KEY", node.key_path("acme@icbc-cn"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run corridor");
    // Give the command time to fetch its proof before the chain moves.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let pay = |payee: &str| {
        Operation::transfer(
            id(payee),
            CurrencyCode::new("CNY").expect("code"),
            Amount::parse("0.01").expect("amount"),
            None,
        )
    };
    for payee in ["harbour@boc-hk", "harbour@boc-hk", "acme@icbc-cn"] {
        node.execute(&node.sign("icbc-cn", pay(payee)).await).await;
    }
    let proven = json(&child.wait_with_output().expect("corridor output"));
    let committed_by = proven["committed_by_block"].as_u64().expect("height");
    let checked = proven["certificate"]["checked_height"].as_u64().expect("height");
    assert!(checked > committed_by, "a later block was checked: {proven}");
    let (_, block) = node.get(&format!("/v1/blocks/{committed_by}")).await;
    assert_eq!(proven["certificate"]["header_hash"], block["hash"]);
    // Blocks of other parties' payments only: none is acme's to read: the certificate cannot be
    // checked against their contents, and the command says so instead of vouching.
    let output = node
        .cli_while_blocks_land(
            Some("acme@icbc-cn"),
            &["--json", "proof", "acme@icbc-cn", "--genesis", &genesis],
            "icbc-cn",
            "harbour@boc-hk",
        )
        .await;
    let (code, message) = refused(&output);
    assert_eq!(code, "forbidden", "{message}");
    assert!(
        message.contains("consensus digest covers its transactions"),
        "{message}"
    );
}
