//! An operator sets up a network from files: `corridord keygen`, a genesis JSON, `corridord
//! init`, then `corridord run --config`. Misconfiguration is refused with a clear message.

use corridor_tests::bin;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
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

/// `corridord init` of validator-hk from `genesis` into `data` fails, saying `why` on stderr.
fn init_is_refused(genesis: &Path, data: &Path, validator_key: &str, why: &str) {
    let refused = corridord(&[
        "init",
        "--genesis",
        &genesis.display().to_string(),
        "--data-dir",
        &data.display().to_string(),
        "--validator-id",
        "validator-hk",
        "--validator-key",
        validator_key,
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(why), "expected `{why}`: {stderr}");
}

/// `corridord init` a one-validator node from `genesis` in `dir/node` (init refuses to
/// overwrite it a second time), `corridord run` it on a free loopback port, and wait until it
/// answers: the process, its address and its first status.
async fn init_and_run(
    dir: &Path,
    genesis: &serde_json::Value,
    (validator, validator_key): (&str, &str),
) -> (Child, String, corridor_sdk::api::Status) {
    let genesis_path = dir.join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_string()).expect("genesis");
    let data = dir.join("node");
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
        validator,
        "--validator-key",
        validator_key,
        "--rpc-addr",
        &rpc_addr,
    ];
    let init = corridord(&init_args);
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let config = data.join("config.toml").display().to_string();
    assert!(
        !corridord(&init_args).status.success(),
        "init overwrote a configured node"
    );

    let node = Command::new(bin("corridord"))
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
    (node, rpc_addr, status)
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
    let pilot = genesis(&[("validator-hk", &validator_public)], &accounts);
    let (mut node, rpc_addr, status) = init_and_run(dir.path(), &pilot, ("validator-hk", &validator_key)).await;
    let http = reqwest::Client::new();
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
    init_is_refused(&two, &dir.path().join("other"), &validator_key, "network_key");
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

/// `corridor --rpc URL ARGS...`
fn cli(rpc_addr: &str, args: &[&str]) -> Output {
    Command::new(bin("corridor"))
        .args(["--rpc", &format!("http://{rpc_addr}"), "--json"])
        .args(args)
        .output()
        .expect("corridor")
}

fn refused_with(output: &Output, code: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains(code), "expected {code}: {stdout}");
}

fn succeeded(output: &Output) {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Adversary: one stolen officer key of the central bank or the regulator. Genesis demands
/// two signatures of every authority: one key alone mints nothing and freezes nothing, the
/// authority cannot lower its own bar, and two officers together act.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genesis_authority_thresholds_stop_one_stolen_officer_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (validator_key, validator_public) = keygen(dir.path(), "validator-hk", "ed25519");
    let (hkma_1, hkma_1_public) = keygen(dir.path(), "hkma-1", "ed25519");
    let (hkma_2, hkma_2_public) = keygen(dir.path(), "hkma-2", "sm2");
    let (hkma_3, hkma_3_public) = keygen(dir.path(), "hkma-3", "ed25519");
    let (regulator_1, regulator_1_public) = keygen(dir.path(), "regulator-1", "sm2");
    let (regulator_2, regulator_2_public) = keygen(dir.path(), "regulator-2", "ed25519");
    let (_, bank) = keygen(dir.path(), "boc-hk", "ed25519");
    let mut genesis = genesis(
        &[("validator-hk", &validator_public)],
        &[
            ("hkma", hkma_1_public.as_str(), None),
            ("boc-hk", bank.as_str(), Some("5000")),
            ("regulator", regulator_1_public.as_str(), None),
        ],
    );
    genesis["authority_threshold_min"] = 2.into();
    // An authority with one key is refused at init, with the reason.
    let lone = dir.path().join("lone");
    std::fs::create_dir(&lone).expect("dir");
    std::fs::write(lone.join("genesis.json"), genesis.to_string()).expect("genesis");
    init_is_refused(
        &lone.join("genesis.json"),
        &lone.join("node"),
        &validator_key,
        "hkma is an authority: its threshold 1 is below",
    );
    genesis["accounts"][0]["more_keys"] = serde_json::json!([hkma_2_public, hkma_3_public]);
    genesis["accounts"][0]["threshold"] = 2.into();
    genesis["accounts"][2]["more_keys"] = serde_json::json!([regulator_2_public]);
    genesis["accounts"][2]["threshold"] = 2.into();
    let (mut node, rpc, _) = init_and_run(dir.path(), &genesis, ("validator-hk", &validator_key)).await;

    let mint = ["mint", "--to", "boc-hk", "--amount", "100", "--currency", "HKD"];
    refused_with(
        &cli(&rpc, &[&["--key", &hkma_1][..], &mint].concat()),
        "signatures_below_threshold",
    );
    succeeded(&cli(
        &rpc,
        &[&["--key", &hkma_1, "--cosign-key", &hkma_2][..], &mint].concat(),
    ));
    // The central bank cannot drop to one signature, even with two of its keys.
    let hkma_3_alone = ["account", "set-keys", "--new-key", &hkma_3, "--threshold", "1"];
    refused_with(
        &cli(
            &rpc,
            &[&["--key", &hkma_1, "--cosign-key", &hkma_3][..], &hkma_3_alone].concat(),
        ),
        "threshold_too_low",
    );
    // A read signed by any of its keys is the central bank's; it shows the signer set.
    let shown = cli(&rpc, &["--key", &hkma_3, "balance", "hkma"]);
    succeeded(&shown);
    let view: corridor_sdk::api::AccountView = serde_json::from_slice(&shown.stdout).expect("account JSON");
    assert_eq!((view.keys.len(), view.threshold), (3, 2));
    assert_eq!(view.keys[0].to_string(), hkma_1_public);
    // One regulator officer cannot freeze the central bank; two can.
    let freeze = ["freeze", "hkma"];
    refused_with(
        &cli(&rpc, &[&["--key", &regulator_2][..], &freeze].concat()),
        "signatures_below_threshold",
    );
    succeeded(&cli(
        &rpc,
        &[&["--key", &regulator_2, "--cosign-key", &regulator_1][..], &freeze].concat(),
    ));
    let frozen = cli(&rpc, &["--key", &hkma_2, "balance", "hkma"]);
    let view: corridor_sdk::api::AccountView = serde_json::from_slice(&frozen.stdout).expect("account JSON");
    assert_eq!(view.frozen_by, Some(corridor_tests::id("regulator")));
    let boc: corridor_sdk::api::AccountView =
        serde_json::from_slice(&cli(&rpc, &["--key", &hkma_1, "balance", "boc-hk"]).stdout).expect("account JSON");
    assert_eq!(
        corridor_tests::balance(&boc, "HKD"),
        "5100",
        "minted once, by two officers"
    );
    node.kill().expect("stop");
    node.wait().expect("reap");
}
