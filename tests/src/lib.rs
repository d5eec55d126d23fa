//! Harness for end-to-end tests: start real `corridord` processes on loopback, talk to them
//! over HTTP and through the `corridor` CLI, and kill them with SIGKILL.
//!
//! The binaries are the ones `cargo build --workspace --bins` put next to the test
//! executable's directory (scripts/test.sh builds them first).

use corridor_sdk::api::{AccountView, BatchSubmitResponse, Status, TxStatus, TxView};
use corridor_sdk::error::ErrorCode;
use corridor_sdk::{AccountId, Hash, Operation, PrivateKey, SignedTransaction, Transaction};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take to start answering.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a transaction may take to finalize in tests.
pub const FINALITY_TIMEOUT: Duration = Duration::from_secs(30);

/// The directory holding the workspace's built binaries.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

pub fn id(text: &str) -> AccountId {
    AccountId::new(text).expect("valid account id")
}

/// A `corridord dev` process.
pub struct DevNode {
    child: std::sync::Mutex<Option<Child>>,
    pub data_dir: PathBuf,
    pub rpc: String,
    pub http: reqwest::Client,
    /// The chain's genesis hash from `/v1/status`: what its transactions and signed reads bind.
    pub genesis_hash: Hash,
}

impl DevNode {
    /// Start (or resume) a dev chain in `data_dir` and wait until it answers.
    pub async fn start(data_dir: &Path) -> DevNode {
        DevNode::start_with(data_dir, &[]).await
    }

    /// `start` with extra `corridord dev` arguments.
    pub async fn start_with(data_dir: &Path, extra: &[&str]) -> DevNode {
        let port = free_port();
        let log = std::fs::File::create(data_dir.with_extension(format!("{port}.log"))).expect("log file");
        let child = Command::new(bin("corridord"))
            .args(["dev", "--data-dir"])
            .arg(data_dir)
            .args(["--rpc-addr", &format!("127.0.0.1:{port}"), "--block-interval-ms", "10"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start corridord");
        let mut node = DevNode {
            child: std::sync::Mutex::new(Some(child)),
            data_dir: data_dir.to_path_buf(),
            rpc: format!("http://127.0.0.1:{port}"),
            http: {
                corridor_sdk::client::install_tls_provider();
                http_client()
            },
            genesis_hash: Hash::ZERO,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(response) = node.http.get(format!("{}/v1/status", node.rpc)).send().await
                && response.status().is_success()
            {
                let status: Status = response.json().await.expect("status JSON");
                node.genesis_hash = status.genesis_hash;
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "corridord did not answer within {START_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A handle on a node some other process started (a network node of `corridor-testnet
    /// up`), whose account keys are in `keys_parent/keys`.
    pub fn attach(keys_parent: &Path, rpc: &str, genesis_hash: Hash) -> DevNode {
        corridor_sdk::client::install_tls_provider();
        DevNode {
            genesis_hash,
            child: std::sync::Mutex::new(None),
            data_dir: keys_parent.to_path_buf(),
            rpc: rpc.to_string(),
            http: http_client(),
        }
    }

    /// SIGTERM, then wait (bounded) for the process to exit; returns how long it took.
    pub fn terminate(&self) -> Duration {
        let taken = self.child.lock().map(|mut child| child.take()).unwrap_or(None);
        let Some(mut child) = taken else {
            return Duration::ZERO;
        };
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "SIGTERM corridord");
        let deadline = started + Duration::from_secs(30);
        loop {
            if child.try_wait().expect("poll corridord").is_some() {
                return started.elapsed();
            }
            if Instant::now() > deadline {
                child.kill().expect("SIGKILL corridord");
                child.wait().expect("reap corridord");
                panic!("corridord did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill9(&self) {
        let taken = self.child.lock().map(|mut child| child.take()).unwrap_or(None);
        if let Some(mut child) = taken {
            child.kill().expect("SIGKILL corridord");
            child.wait().expect("reap corridord");
        }
    }

    pub fn key_path(&self, account: &str) -> PathBuf {
        self.data_dir.join("keys").join(format!("{account}.key"))
    }

    pub fn key(&self, account: &str) -> PrivateKey {
        PrivateKey::read_file(&self.key_path(account)).expect("dev key")
    }

    /// GET signed by the regulator (who may read everything), so tests about other things
    /// see all; `get_as` reads as a given account, or anonymously.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(Some("regulator"), path).await
    }

    /// GET signed with `signer`'s dev key (`None`: unsigned).
    pub async fn get_as(&self, signer: Option<&str>, path: &str) -> (u16, Value) {
        match signer {
            Some(signer) => self.get_signed(&self.key(signer), path).await,
            None => {
                let response = self.http.get(format!("{}{path}", self.rpc)).send().await.expect("GET");
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or(Value::Null))
            }
        }
    }

    /// A GET request builder signed by `signer`'s dev key, for streams and custom headers.
    pub fn signed_get(&self, signer: &str, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.get(format!("{}{path}", self.rpc));
        for (name, value) in signed_headers(self.genesis_hash, &self.key(signer), "GET", path, b"", now_ms()) {
            request = request.header(name, value);
        }
        request
    }

    /// GET signed with `key` (see `corridor_sdk::request_auth`).
    pub async fn get_signed(&self, key: &PrivateKey, path: &str) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.rpc));
        for (name, value) in signed_headers(self.genesis_hash, key, "GET", path, b"", now_ms()) {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.rpc))
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn status(&self) -> Status {
        let (code, body) = self.get("/v1/status").await;
        assert_eq!(code, 200);
        serde_json::from_value(body).expect("status JSON")
    }

    pub async fn account(&self, account: &str) -> AccountView {
        let (code, body) = self.get(&format!("/v1/accounts/{account}")).await;
        assert_eq!(code, 200, "account {account}: {body}");
        serde_json::from_value(body).expect("account JSON")
    }

    pub async fn next_nonce(&self, account: &str) -> u64 {
        self.account(account).await.next_nonce
    }

    /// Build and sign a transaction from `sender` with its next nonce (or `nonce`).
    pub async fn sign(&self, sender: &str, operation: Operation) -> SignedTransaction {
        let nonce = self.next_nonce(sender).await;
        self.sign_with_nonce(sender, nonce, operation)
    }

    pub fn sign_with_nonce(&self, sender: &str, nonce: u64, operation: Operation) -> SignedTransaction {
        Transaction::new(self.genesis_hash, id(sender), nonce, far_expiry(), operation).sign(&self.key(sender))
    }

    /// POST one transaction's bytes; `Ok(hash)` on 202, `Err((status, code))` otherwise.
    /// A transport failure (the node is gone) is `Err((0, ErrorCode::Unavailable))`.
    pub async fn submit_bytes(&self, bytes: &[u8]) -> Result<Hash, (u16, ErrorCode)> {
        let request = self
            .http
            .post(format!("{}/v1/transactions", self.rpc))
            .json(&serde_json::json!({ "tx": hex::encode(bytes) }));
        let Ok(response) = request.send().await else {
            return Err((0, ErrorCode::Unavailable));
        };
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == 202 {
            return Ok(Hash::from_hex(body["tx_hash"].as_str().expect("tx_hash")).expect("hash"));
        }
        Err((status, error_code(&body)))
    }

    pub async fn submit(&self, signed: &SignedTransaction) -> Result<Hash, (u16, ErrorCode)> {
        self.submit_bytes(&signed.to_bytes()).await
    }

    pub async fn submit_batch(&self, txs: &[SignedTransaction]) -> BatchSubmitResponse {
        let hexes: Vec<String> = txs.iter().map(|tx| hex::encode(tx.to_bytes())).collect();
        let (status, body) = self
            .post("/v1/transactions/batch", &serde_json::json!({ "txs": hexes }))
            .await;
        assert_eq!(status, 202, "batch refused: {body}");
        serde_json::from_value(body).expect("batch JSON")
    }

    /// Long-poll until the transaction is finalized or rejected.
    pub async fn wait(&self, hash: &Hash) -> TxView {
        let deadline = Instant::now() + FINALITY_TIMEOUT;
        loop {
            let (status, body) = self.get(&format!("/v1/transactions/{hash}?wait_ms=5000")).await;
            assert_eq!(status, 200, "tx {hash}: {body}");
            let view: TxView = serde_json::from_value(body).expect("tx JSON");
            if view.status != TxStatus::Pending {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "tx {hash} not final within {FINALITY_TIMEOUT:?}"
            );
        }
    }

    /// Submit and wait; panics unless it finalized successfully.
    pub async fn execute(&self, signed: &SignedTransaction) -> TxView {
        let hash = self.submit(signed).await.unwrap_or_else(|e| panic!("refused: {e:?}"));
        let view = self.wait(&hash).await;
        let receipt = view.receipt.as_ref().expect("finalized transactions have receipts");
        assert_eq!(
            receipt.outcome,
            corridor_sdk::Outcome::Success,
            "{:?} failed",
            signed.tx.operation
        );
        view
    }

    /// Run the `corridor` CLI against this node. Its reads are signed with the regulator's
    /// key (`CORRIDOR_KEY`) unless the arguments pass another `--key`.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_as(Some("regulator"), args)
    }

    /// Run the CLI with `CORRIDOR_KEY` set to `signer`'s dev key, or unset.
    pub fn cli_as(&self, signer: Option<&str>, args: &[&str]) -> Output {
        let mut command = Command::new(bin("corridor"));
        command
            .arg("--rpc")
            .arg(&self.rpc)
            .args(args)
            .env_remove("CORRIDOR_KEY");
        if let Some(signer) = signer {
            command.env("CORRIDOR_KEY", self.key_path(signer));
        }
        command.output().expect("run corridor")
    }

    /// Run the CLI as `cli_as` does while 0.01 CNY payments from `payer` to `payee` keep
    /// blocks coming, one finalized payment at a time, until the command exits: for commands
    /// that wait for a later block (`corridor proof` waits for the header that commits to its
    /// root).
    pub async fn cli_while_blocks_land(&self, signer: Option<&str>, args: &[&str], payer: &str, payee: &str) -> Output {
        self.cli_while_paying_through(self, signer, args, payer, payee).await
    }

    /// `cli_while_blocks_land` with the payments submitted to (and awaited on) `payments`:
    /// another node of the same network, say a validator when this one is an observer.
    pub async fn cli_while_paying_through(
        &self,
        payments: &DevNode,
        signer: Option<&str>,
        args: &[&str],
        payer: &str,
        payee: &str,
    ) -> Output {
        let mut command = Command::new(bin("corridor"));
        command
            .arg("--rpc")
            .arg(&self.rpc)
            .args(args)
            .env_remove("CORRIDOR_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(signer) = signer {
            command.env("CORRIDOR_KEY", self.key_path(signer));
        }
        let mut child = command.spawn().expect("run corridor");
        let deadline = Instant::now() + 2 * FINALITY_TIMEOUT;
        while child.try_wait().expect("poll corridor").is_none() {
            assert!(Instant::now() < deadline, "corridor {args:?} did not exit");
            let payment = Operation::transfer(
                id(payee),
                corridor_sdk::CurrencyCode::new("CNY").expect("code"),
                corridor_sdk::Amount::parse("0.01").expect("amount"),
                None,
            );
            let signed = payments.sign(payer, payment).await;
            payments.execute(&signed).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child.wait_with_output().expect("corridor output")
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The request-signature headers for `method path` (path with its query) on the chain with
/// `genesis_hash`.
pub fn signed_headers(
    genesis_hash: Hash,
    key: &PrivateKey,
    method: &str,
    path: &str,
    body: &[u8],
    timestamp_ms: u64,
) -> [(&'static str, String); 3] {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let request = corridor_sdk::request_auth::RequestToSign {
        genesis_hash,
        method,
        path,
        query,
        body,
        timestamp_ms,
    };
    corridor_sdk::request_auth::sign_request(&request, key)
}

/// The harness's HTTP client: pooled connections dropped before the node's idle close.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_millis(corridor_sdk::client::POOL_IDLE_MS))
        .build()
        .expect("client")
}

pub fn now_ms() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    now.as_millis() as u64
}

/// An hour from now, in ms since the epoch.
pub fn far_expiry() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    now.as_millis() as u64 + 3_600_000
}

pub fn error_code(body: &Value) -> ErrorCode {
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"));
    code.parse().unwrap_or_else(|()| panic!("unknown error code {code}"))
}

/// Balance of `currency` in a view, as a string ("0" when absent).
pub fn balance(view: &AccountView, currency: &str) -> String {
    view.balances
        .iter()
        .find(|(code, _)| code.as_str() == currency)
        .map(|(_, amount)| amount.to_string())
        .unwrap_or_else(|| "0".into())
}

/// A CLI run's stdout, after asserting it exited 0 (the panic shows both streams).
pub fn stdout_of_success(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
