//! An operator sets up a network from files: `corridord keygen`, a genesis JSON, `corridord
//! init`, then `corridord run --config`. Misconfiguration is refused with a clear message.

use corridor_tests::bin;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn corridord(args: &[&str]) -> Output {
    Command::new(bin("corridord"))
        .args(args)
        .output()
        .expect("run corridord")
}

/// `corridord keygen --out FILE` writes a key and prints its public key.
fn keygen(dir: &Path, name: &str, scheme: &str) -> (String, String) {
    let path = dir.join(format!("{name}.key")).display().to_string();
    let output = corridord(&["keygen", "--scheme", scheme, "--out", &path]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    (path, String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn genesis(validators: &[(&str, &str)], accounts: &[(&str, &str, Option<&str>)]) -> serde_json::Value {
    serde_json::json!({
        "chain_id": "corridor-pilot",
        "hash_algorithm": "sm3",
        "genesis_time_ms": 1_790_000_000_000u64,
        "validators": validators.iter().map(|(id, key)| serde_json::json!({"id": id, "public_key": key})).collect::<Vec<_>>(),
        "regulators": ["regulator"],
        "currencies": [{"code": "HKD", "scale": 2, "issuer": "hkma", "transfer_limit": null}],
        "accounts": accounts.iter().map(|(id, key, hkd)| {
            let balances = hkd.map(|amount| serde_json::json!({"HKD": amount})).unwrap_or(serde_json::json!({}));
            serde_json::json!({"id": id, "public_key": key, "balances": balances})
        }).collect::<Vec<_>>(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_and_run_a_network_from_a_genesis_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (validator_key, validator_public) = keygen(dir.path(), "validator-hk", "sm2");
    let (_, hkma) = keygen(dir.path(), "hkma", "ed25519");
    let (bank_key, bank) = keygen(dir.path(), "boc-hk", "ed25519");
    let (_, regulator) = keygen(dir.path(), "regulator", "sm2");
    let (_, customer) = keygen(dir.path(), "harbour", "ed25519");
    assert!(validator_public.starts_with("sm2:"));
    // keygen never overwrites a key.
    let again = corridord(&["keygen", "--out", &validator_key]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not overwriting"));

    let accounts = [
        ("hkma", hkma.as_str(), None),
        ("boc-hk", bank.as_str(), Some("5000")),
        ("regulator", regulator.as_str(), None),
        ("harbour@boc-hk", customer.as_str(), Some("10")),
    ];
    let genesis_path = dir.path().join("genesis.json");
    std::fs::write(
        &genesis_path,
        genesis(&[("validator-hk", &validator_public)], &accounts).to_string(),
    )
    .expect("genesis");
    let data = dir.path().join("node");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let rpc_addr = format!("127.0.0.1:{port}");
    let (genesis_arg, data_arg) = (genesis_path.display().to_string(), data.display().to_string());
    let init_args = [
        "init",
        "--genesis",
        &genesis_arg,
        "--data-dir",
        &data_arg,
        "--validator-id",
        "validator-hk",
        "--validator-key",
        &validator_key,
        "--rpc-addr",
        &rpc_addr,
    ];
    let init = corridord(&init_args);
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let config = data.join("config.toml").display().to_string();
    // init refuses to overwrite a configured node.
    assert!(!corridord(&init_args).status.success());

    let mut node = Command::new(bin("corridord"))
        .args(["run", "--config", &config])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    corridor_sdk::client::install_tls_provider();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(response) = http.get(format!("http://{rpc_addr}/v1/status")).send().await {
            break response.json::<corridor_sdk::api::Status>().await.expect("status");
        }
        assert!(Instant::now() < deadline, "node did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.chain_id, "corridor-pilot");
    assert_eq!(status.hash_algorithm, corridor_sdk::HashAlgorithm::Sm3);
    // The bank pays its customer through the CLI; the SM3 chain finalizes it.
    let paid = Command::new(bin("corridor"))
        .args([
            "--rpc",
            &format!("http://{rpc_addr}"),
            "--json",
            "--key",
            &bank_key,
            "transfer",
            "--to",
            "harbour@boc-hk",
            "--amount",
            "2.50",
            "--currency",
            "HKD",
        ])
        .output()
        .expect("corridor");
    assert!(paid.status.success(), "{}", String::from_utf8_lossy(&paid.stdout));
    // The bank reads its customer's balance with a request signed by its key (SM3 chain).
    let shown = Command::new(bin("corridor"))
        .args(["--rpc", &format!("http://{rpc_addr}"), "--json", "--key", &bank_key])
        .args(["balance", "harbour@boc-hk"])
        .output()
        .expect("corridor");
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let account: corridor_sdk::api::AccountView = serde_json::from_slice(&shown.stdout).expect("json");
    assert_eq!(corridor_tests::balance(&account, "HKD"), "12.5");
    // Unsigned, the same read is refused.
    let unsigned = http
        .get(format!("http://{rpc_addr}/v1/accounts/harbour@boc-hk"))
        .send()
        .await
        .expect("get");
    assert_eq!(unsigned.status(), 403);
    node.kill().expect("stop");
    node.wait().expect("reap");

    // A genesis with peers but no network keys is refused with a message, not a crash.
    let (_, second) = keygen(dir.path(), "validator-2", "ed25519");
    let two = dir.path().join("two.json");
    std::fs::write(
        &two,
        genesis(
            &[("validator-hk", &validator_public), ("validator-2", &second)],
            &accounts,
        )
        .to_string(),
    )
    .expect("genesis");
    let other = dir.path().join("other");
    let (two_arg, other_arg) = (two.display().to_string(), other.display().to_string());
    let refused = corridord(&[
        "init",
        "--genesis",
        &two_arg,
        "--data-dir",
        &other_arg,
        "--validator-id",
        "validator-hk",
        "--validator-key",
        &validator_key,
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("network_key"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let bad_genesis = dir.path().join("bad.json");
    std::fs::write(&bad_genesis, r#"{"chain_id": "x", "regulator": []}"#).expect("write");
    let refused = corridord(&[
        "init",
        "--genesis",
        &bad_genesis.display().to_string(),
        "--data-dir",
        &dir.path().join("bad").display().to_string(),
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("genesis"));
}
