//! A real network: `corridor-testnet up` with 4 validators and 1 observer, each a `corridord`
//! process on loopback; validators killed with SIGKILL and restarted from their disks.

use corridor_sdk::{Amount, CurrencyCode, Hash, Operation, TransferLeg};
use corridor_tests::{DevNode, bin, id};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the network may take to come up.
const UP_TIMEOUT: Duration = Duration::from_secs(90);

struct Network {
    up: Child,
    dir: tempfile::TempDir,
    nodes: Vec<Value>,
    genesis_hash: Hash,
    /// Nodes this test restarted itself (not `up`'s children).
    restarted: Vec<Child>,
}

impl Network {
    async fn up(validators: usize, observers: usize) -> Network {
        Network::up_with(validators, observers, "ed25519").await
    }

    async fn up_with(validators: usize, observers: usize, scheme: &str) -> Network {
        let dir = tempfile::tempdir().expect("temp dir");
        let up = Command::new(bin("corridor-testnet"))
            .args(["up", "--validators", &validators.to_string()])
            .args(["--observers", &observers.to_string()])
            .args(["--scheme", scheme])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start corridor-testnet up");
        let mut network = Network {
            up,
            dir,
            nodes: Vec::new(),
            genesis_hash: Hash::ZERO,
            restarted: Vec::new(),
        };
        let deadline = Instant::now() + UP_TIMEOUT;
        loop {
            let listed = std::fs::read_to_string(network.dir.path().join("network.json")).ok();
            if let Some(nodes) = listed.and_then(|text| serde_json::from_str::<Vec<Value>>(&text).ok())
                && nodes.len() == validators + observers
                && nodes.iter().all(|node| node["pid"].is_u64())
            {
                network.nodes = nodes;
                let mut ready = true;
                for node in 0..network.nodes.len() {
                    ready &= network
                        .node(node)
                        .http
                        .get(network.url(node, "/v1/status"))
                        .send()
                        .await
                        .is_ok();
                }
                if ready {
                    let status: corridor_sdk::api::Status = network
                        .node(0)
                        .http
                        .get(network.url(0, "/v1/status"))
                        .send()
                        .await
                        .expect("status")
                        .json()
                        .await
                        .expect("status JSON");
                    network.genesis_hash = status.genesis_hash;
                    return network;
                }
            }
            assert!(Instant::now() < deadline, "the network did not come up");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn url(&self, node: usize, path: &str) -> String {
        format!("{}{path}", self.nodes[node]["rpc"].as_str().expect("rpc"))
    }

    fn node(&self, node: usize) -> DevNode {
        DevNode::attach(
            self.dir.path(),
            self.nodes[node]["rpc"].as_str().expect("rpc"),
            self.genesis_hash,
        )
    }

    fn config(&self, node: usize) -> PathBuf {
        PathBuf::from(self.nodes[node]["config"].as_str().expect("config"))
    }

    fn kill9(&self, node: usize) {
        let pid = self.nodes[node]["pid"].as_u64().expect("pid");
        let killed = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
    }

    /// Start node `node` again from its config and disk, and wait until it answers.
    async fn restart(&mut self, node: usize) {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.path().join(format!("restart-{node}.log")))
            .expect("log");
        let child = Command::new(bin("corridord"))
            .arg("run")
            .arg("--config")
            .arg(self.config(node))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("restart corridord");
        self.nodes[node]["pid"] = Value::from(child.id());
        self.restarted.push(child);
        let handle = self.node(node);
        let deadline = Instant::now() + UP_TIMEOUT;
        while handle.http.get(self.url(node, "/v1/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "node {node} did not restart");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn height(&self, node: usize) -> u64 {
        self.node(node).status().await.height
    }

    /// Wait until `hash` is final on every node in `nodes` (a node that has not heard of it
    /// yet answers 404 until gossip or its block reaches it).
    async fn wait_everywhere(&self, hash: &Hash, nodes: &[usize]) {
        let deadline = Instant::now() + corridor_tests::FINALITY_TIMEOUT;
        for node in nodes {
            let handle = self.node(*node);
            loop {
                let (code, body) = handle.get(&format!("/v1/transactions/{hash}?wait_ms=2000")).await;
                if code == 200 && body["status"] == "finalized" {
                    break;
                }
                assert!(code == 200 || code == 404, "node {node} answered {code}: {body}");
                assert_ne!(body["status"], "rejected", "node {node} rejected {hash}: {body}");
                assert!(Instant::now() < deadline, "{hash} not final on node {node}: {body}");
                if code == 404 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Every node in `nodes` has the same block and state root at every height up to `height`.
    async fn assert_agree(&self, nodes: &[usize], height: u64) {
        for h in 1..=height {
            let mut seen = std::collections::BTreeSet::new();
            for node in nodes {
                let (status, body) = self.node(*node).get(&format!("/v1/blocks/{h}")).await;
                assert_eq!(status, 200, "node {node} lacks block {h}: {body}");
                seen.insert((body["hash"].to_string(), body["header"]["state_root"].to_string()));
            }
            assert_eq!(seen.len(), 1, "nodes disagree at height {h}: {seen:?}");
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for child in &mut self.restarted {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("kill").arg(self.up.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && matches!(self.up.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.up.kill();
        let _ = self.up.wait();
    }
}

fn transfer(amount: &str) -> Operation {
    Operation::Transfer(TransferLeg {
        to: id("harbour@boc-hk"),
        currency: CurrencyCode::new("CNY").expect("code"),
        amount: Amount::parse(amount).expect("amount"),
        memo: None,
    })
}

/// Sign a transfer from acme@icbc-cn with an explicit nonce (nodes may lag in reads).
fn signed(network: &Network, nonce: u64, amount: &str) -> corridor_sdk::SignedTransaction {
    network.node(0).sign_with_nonce("acme@icbc-cn", nonce, transfer(amount))
}

fn keys(dir: &Path) -> bool {
    dir.join("keys").join("acme@icbc-cn.key").exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_and_an_observer_survive_crashes_and_agree() {
    let mut network = Network::up(4, 1).await;
    assert!(keys(network.dir.path()), "up wrote the dev accounts' keys");
    let everyone = [0, 1, 2, 3, 4];

    // Transfers submitted to any node, the observer included, are finalized everywhere.
    let mut nonce = 0;
    for node in everyone {
        let tx = signed(&network, nonce, "1.00");
        nonce += 1;
        let hash = network.node(node).submit(&tx).await.expect("admitted");
        network.wait_everywhere(&hash, &everyone).await;
    }
    let status = network.node(4).status().await;
    assert_eq!(status.role.as_deref(), Some("observer"));
    assert_eq!(
        status.validator_set.len(),
        4,
        "the observer shows the validator set with keys"
    );

    // One validator killed: finality goes on.
    network.kill9(3);
    let live = [0, 1, 2, 4];
    let tx = signed(&network, nonce, "2.00");
    nonce += 1;
    let hash = network.node(0).submit(&tx).await.expect("admitted");
    network.wait_everywhere(&hash, &live).await;

    // Restarted, it catches up ...
    network.restart(3).await;
    let target = network.height(0).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while network.height(3).await < target {
        assert!(Instant::now() < deadline, "the restarted validator did not catch up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ... and votes again: with another validator down, finality needs it.
    network.kill9(0);
    let live = [1, 2, 3, 4];
    let tx = signed(&network, nonce, "3.00");
    nonce += 1;
    let hash = network.node(1).submit(&tx).await.expect("admitted");
    network.wait_everywhere(&hash, &live).await;

    // Two of four down: nothing is finalized ...
    network.kill9(1);
    let tx = signed(&network, nonce, "4.00");
    let stuck = network.node(2).submit(&tx).await.expect("admitted (acknowledged)");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, body) = network.node(2).get(&format!("/v1/transactions/{stuck}")).await;
    assert_eq!(body["status"], "pending", "two of four validators finalized something");

    // ... and after restart finality resumes with the acknowledged transaction.
    network.restart(0).await;
    network.restart(1).await;
    network.wait_everywhere(&stuck, &everyone).await;

    // A transaction acknowledged while no validator could hear it is not lost: every
    // validator down, the observer admits a transfer (its gossip reaches nobody); once the
    // validators are back, the observer offers them its pool and the transfer is finalized.
    for validator in 0..4 {
        network.kill9(validator);
    }
    nonce += 1;
    let tx = signed(&network, nonce, "5.00");
    let unheard = network.node(4).submit(&tx).await.expect("the observer acknowledges it");
    for validator in 0..4 {
        network.restart(validator).await;
    }
    network.wait_everywhere(&unheard, &everyone).await;

    // The observer's state root and blocks equal the validators' at every height.
    let mut height = u64::MAX;
    for node in everyone {
        height = height.min(network.height(node).await);
    }
    network.assert_agree(&everyone, height).await;
    let mut balances = std::collections::BTreeSet::new();
    for node in everyone {
        balances.insert(corridor_tests::balance(
            &network.node(node).account("harbour@boc-hk").await,
            "CNY",
        ));
    }
    assert_eq!(balances.len(), 1, "balances differ: {balances:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sm2_validators_finalize_and_agree() {
    let network = Network::up_with(4, 0, "sm2").await;
    let status = network.node(0).status().await;
    assert!(
        status
            .validator_set
            .iter()
            .all(|validator| validator.public_key.scheme() == corridor_sdk::Scheme::Sm2),
        "the validators sign with SM2"
    );
    for nonce in 0..3 {
        let tx = signed(&network, nonce, "1.00");
        let hash = network
            .node(usize::try_from(nonce).expect("small"))
            .submit(&tx)
            .await
            .expect("admitted");
        network.wait_everywhere(&hash, &[0, 1, 2, 3]).await;
    }
    let mut height = u64::MAX;
    for node in 0..4 {
        height = height.min(network.height(node).await);
    }
    network.assert_agree(&[0, 1, 2, 3], height).await;
}

/// The escrow contract as `scripts/test.sh` built it.
fn escrow_wasm() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../contracts/target/wasm32-unknown-unknown/release/escrow.wasm");
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}; build contracts/ first", path.display()))
}

fn deployed_id(view: &corridor_sdk::api::TxView) -> u64 {
    let receipt = view.receipt.as_ref().expect("receipt");
    receipt
        .events
        .iter()
        .find_map(|event| match event {
            corridor_sdk::Event::ContractDeployed { contract, .. } => Some(*contract),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no deploy in {receipt:?}"))
}

fn call(contract: u64, method: &str, args: Vec<u8>, funds: Option<&str>, fuel: u64) -> Operation {
    Operation::CallContract {
        contract,
        method: method.to_owned(),
        args,
        funds: funds.map(|amount| {
            (
                CurrencyCode::new("CNY").expect("code"),
                Amount::parse(amount).expect("amount"),
            )
        }),
        fuel,
    }
}

fn deploy(code: Vec<u8>) -> Operation {
    Operation::DeployContract {
        code,
        init_args: Vec::new(),
        fuel: 50_000_000,
    }
}

impl Network {
    /// Sign with an explicit nonce, submit to `node`, wait until final everywhere.
    async fn submit_final(&self, node: usize, sender: &str, nonce: u64, operation: Operation) -> Hash {
        let tx = self.node(0).sign_with_nonce(sender, nonce, operation);
        let hash = self.node(node).submit(&tx).await.expect("admitted");
        self.wait_everywhere(&hash, &[0, 1, 2, 3, 4]).await;
        hash
    }

    /// Each transaction's receipt as JSON, asserting every node in `nodes` has the same one.
    async fn same_receipts(&self, nodes: &[usize], hashes: &[Hash]) -> Vec<String> {
        let mut receipts = Vec::new();
        for hash in hashes {
            let mut distinct = std::collections::BTreeSet::new();
            for node in nodes {
                let view = self.node(*node).wait(hash).await;
                distinct.insert(serde_json::to_string(&view.receipt).expect("json"));
            }
            assert_eq!(distinct.len(), 1, "nodes disagree on {hash}: {distinct:?}");
            receipts.extend(distinct);
        }
        receipts
    }

    async fn contract(&self, node: usize, contract: u64) -> corridor_sdk::contract::ContractView {
        let (status, body) = self.node(node).get(&format!("/v1/contracts/{contract}")).await;
        assert_eq!(status, 200, "node {node}: {body}");
        serde_json::from_value(body).expect("contract JSON")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracts_run_alike_on_every_node_and_a_fresh_observer_replays_them() {
    use corridor_sdk::contract::escrow;
    let mut network = Network::up(4, 1).await;
    let everyone = [0, 1, 2, 3, 4];

    // The bank deploys the shipped escrow and a hostile loop; the importer funds two escrows,
    // releases one and disputes the other. Each is submitted to a different node, the
    // observer included.
    let bank = network.node(0).next_nonce("icbc-cn").await;
    let escrow_deploy = network.submit_final(0, "icbc-cn", bank, deploy(escrow_wasm())).await;
    let contract = deployed_id(&network.node(0).wait(&escrow_deploy).await);
    let looping =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "run") (loop (br 0))))"#).expect("wat");
    let loop_deploy = network.submit_final(1, "icbc-cn", bank + 1, deploy(looping)).await;
    let looping = deployed_id(&network.node(0).wait(&loop_deploy).await);
    let deadline = corridor_tests::now_ms() + 3_600_000;
    let create = escrow::create(&id("harbour@boc-hk"), &id("icbc-cn"), deadline);
    let calls = [
        (2, call(contract, "create", create.clone(), Some("120.25"), 5_000_000)),
        (3, call(contract, "create", create, Some("80.00"), 5_000_000)),
        (4, call(contract, "release", escrow::id(0), None, 5_000_000)),
        (0, call(contract, "dispute", escrow::id(1), None, 5_000_000)),
    ];
    let mut hashes = vec![escrow_deploy, loop_deploy];
    let acme = network.node(0).next_nonce("acme@icbc-cn").await;
    for (nonce, (node, operation)) in (acme..).zip(calls) {
        hashes.push(network.submit_final(node, "acme@icbc-cn", nonce, operation).await);
    }

    // The loop runs out of fuel in the admission dry run and is refused with its code.
    let tx = network.node(0).sign_with_nonce(
        "acme@icbc-cn",
        acme + 4,
        call(looping, "run", Vec::new(), Some("7.00"), 2_000_000),
    );
    assert_eq!(
        network.node(1).submit(&tx).await,
        Err((409, corridor_sdk::ErrorCode::ContractOutOfFuel))
    );

    // Every node executed every call alike: the same receipt, fuel used included.
    let receipts = network.same_receipts(&everyone, &hashes).await;
    assert!(
        receipts[2].contains("fuel_used"),
        "a call's receipt records its fuel: {}",
        receipts[2]
    );
    let escrow_state = network.contract(0, contract).await;
    assert_eq!(
        escrow_state.balances.get(&CurrencyCode::new("CNY").expect("code")),
        Some(&Amount::parse("80.00").expect("amount")),
        "the disputed escrow still holds its funds: {escrow_state:?}"
    );
    assert_eq!(
        network.contract(0, looping).await.balances.len(),
        0,
        "the failed call kept nothing"
    );

    // A fresh observer: its disk wiped, it replays the chain from genesis and reaches the
    // same blocks, state roots, receipts and contract state.
    let height = network.height(0).await;
    network.kill9(4);
    let data = network.config(4).parent().expect("config dir").join("db");
    std::fs::remove_dir_all(&data).unwrap_or_else(|error| panic!("{}: {error}", data.display()));
    network.restart(4).await;
    let replay_deadline = Instant::now() + Duration::from_secs(60);
    while network.height(4).await < height {
        assert!(
            Instant::now() < replay_deadline,
            "the fresh observer did not replay the chain"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    network.assert_agree(&everyone, height).await;
    assert_eq!(
        network.same_receipts(&[4], &hashes).await,
        receipts,
        "replayed receipts differ"
    );
    assert_eq!(network.contract(4, contract).await, escrow_state);
}

/// A regulator asks its own observer for a balance proof and checks it against the genesis
/// file it holds: the header that commits to the root is final under a quorum (3 of 4) of the
/// genesis validators' signatures. Pointed at a validator set that did not sign, the same
/// command refuses with exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regulator_checks_a_proof_from_its_observer_against_the_genesis_validators() {
    let network = Network::up(4, 1).await;
    let (validator, observer) = (network.node(0), network.node(4));
    let genesis = network.dir.path().join("genesis.json").display().to_string();
    let output = observer
        .cli_while_paying_through(
            &validator,
            Some("regulator"),
            &["--json", "proof", "acme@icbc-cn", "--genesis", &genesis],
            "icbc-cn",
            "harbour@boc-hk",
        )
        .await;
    assert!(
        output.status.success(),
        "exit {:?}: {} {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let proven: Value = serde_json::from_slice(&output.stdout).expect("CLI JSON");
    assert_eq!(proven["verified"], true);
    let certificate = &proven["certificate"];
    assert_eq!(certificate["validators_pinned"], true);
    assert_eq!(
        (certificate["quorum"].as_u64(), certificate["validators"].as_u64()),
        (Some(3), Some(4))
    );
    let signers = certificate["signers"].as_array().expect("signers");
    assert!(signers.len() >= 3, "{certificate}");
    // The validators' own nodes hold the same header the observer served.
    let committed_by = proven["committed_by_block"].as_u64().expect("height");
    let (_, block) = validator.get(&format!("/v1/blocks/{committed_by}")).await;
    assert_eq!(certificate["header_hash"], block["hash"]);

    // Four other keys under the validators' names: no signature verifies. Exit 1.
    let others: Vec<Value> = (0..4)
        .map(|index| {
            let key = corridor_sdk::PrivateKey::generate(corridor_sdk::Scheme::Ed25519)
                .expect("key")
                .public_key();
            serde_json::json!({ "id": format!("validator-{index}"), "public_key": key.to_text() })
        })
        .collect();
    let file = network.dir.path().join("other-validators.json");
    std::fs::write(&file, serde_json::json!({ "validators": others }).to_string()).expect("write");
    let output = observer
        .cli_while_paying_through(
            &validator,
            Some("regulator"),
            &[
                "--json",
                "proof",
                "acme@icbc-cn",
                "--validators",
                &file.display().to_string(),
            ],
            "icbc-cn",
            "harbour@boc-hk",
        )
        .await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let refused: Value = serde_json::from_slice(&output.stdout).expect("error JSON");
    assert_eq!(refused["error"]["code"], "not_signed_by_validator_set", "{refused}");
}

/// An operator benchmarks the whole network: `corridor-testnet bench --dir` spreads a few
/// hundred transfers over every node, and its report says each was finalized on the node it
/// went to and on every other, with each node's CPU by stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_against_the_whole_network_finalizes_everything_everywhere_and_counts_stages() {
    let network = Network::up(4, 1).await;
    let output = tokio::task::spawn_blocking({
        let dir = network.dir.path().to_path_buf();
        move || {
            Command::new(bin("corridor-testnet"))
                .args(["bench", "--dir"])
                .arg(&dir)
                .args(["--accounts", "50", "--txs", "300", "--batch", "50", "--json"])
                .output()
                .expect("run corridor-testnet bench")
        }
    })
    .await
    .expect("bench task");
    assert!(
        output.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("the report is JSON");
    assert_eq!(report["submitted"], 300);
    assert_eq!(report["refused"], 0);
    assert_eq!(report["finalized"], 300, "{report}");
    assert_eq!(report["all_nodes_finalized"], 300, "{report}");
    let nodes = report["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 5);
    // Six batches of 50, round-robin over five nodes: the first node gets two.
    let submitted: Vec<u64> = nodes.iter().map(|n| n["submitted"].as_u64().expect("count")).collect();
    assert_eq!(submitted, [100, 50, 50, 50, 50]);
    for node in nodes {
        assert_eq!(node["finalized"], 300, "{node}");
        assert!(node["txs_committed"].as_u64().expect("committed") >= 300, "{node}");
        let cpu = &node["stage_cpu_ns_per_tx"];
        for stage in ["decode", "verify", "pool", "execute", "root", "write", "network"] {
            assert!(
                cpu[stage].as_u64().expect("a stage figure") > 0,
                "{stage} did not move: {node}"
            );
        }
        let staged: u64 = cpu
            .as_object()
            .expect("stages")
            .values()
            .filter_map(Value::as_u64)
            .sum();
        assert!(
            staged <= node["process_cpu_ns_per_tx"].as_u64().expect("process"),
            "{node}"
        );
    }
    // Validators run consensus; the observer only verifies what they finalized.
    assert!(
        nodes[0]["stage_cpu_ns_per_tx"]["consensus"]
            .as_u64()
            .expect("consensus")
            > 0
    );
}
