//! The typed async HTTP client of a corridor node (`/v1`, see `api`).
//!
//! The rule this module keeps: nothing that came from the network is trusted to be well formed.
//! Every answer is size-limited and decoded into the API types; anything else becomes a
//! `ClientError` with a stable code (`ClientError::code`), never a panic.
//!
//! Waiting for finality uses the node's long poll (`GET /v1/transactions/{hash}?wait_ms=N`),
//! repeated until a caller's deadline, rather than tight polling. The event stream is
//! Server-Sent Events, parsed here by `SseParser` over the response's byte stream.

use crate::api::{
    AccountProof, AccountView, BatchSubmitRequest, BatchSubmitResponse, BlockView, CurrencyView, ErrorBody,
    EventRecord, HistoryPage, KeyOwner, Status, SubmitRequest, SubmitResponse, TxStatus, TxView,
};
use crate::audit::AuditPage;
use crate::crypto::{PrivateKey, PublicKey};
use crate::error::{Error, ErrorCode};
use crate::hash::Hash;
use crate::ids::AccountId;
use crate::limits::SUBMIT_BATCH_TXS_MAX;
use crate::request_auth::{RequestToSign, sign_request};
use crate::tx::{Operation, SignedTransaction, Transaction};
use futures::Stream;
use serde::de::DeserializeOwned;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long the node may hold one long poll; it answers `pending` after this at the latest.
pub const WAIT_POLL_MS_MAX: u64 = 30_000;
/// Expiry a client gives a transaction when the caller does not choose one.
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(60 * 60);
/// Bytes of one (non-streaming) answer the client reads before giving up.
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Bytes of one line of the event stream.
pub const SSE_LINE_BYTES_MAX: usize = 1024 * 1024;
/// Time to open a TCP connection to the node.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
pub use crate::limits::POOL_IDLE_MS;
/// Time for one ordinary request (not a long poll, not the event stream).
pub const REQUEST_TIMEOUT_MS: u64 = 60_000;
/// Extra time a long poll request gets over the `wait_ms` it asks the node for.
const WAIT_SLACK_MS: u64 = 10_000;
/// Pause between retries when the node answers a long poll at once (or does not know the hash
/// yet), so a node that ignores `wait_ms` does not make the client spin.
const WAIT_RETRY_MS: u64 = 200;

/// Why a client call failed. `code()` is the stable text scripts can match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The node refused: its code and message.
    #[error("{0}")]
    Api(Error),
    /// The node could not be reached or the connection broke.
    #[error("transport: {0}")]
    Transport(String),
    /// No final answer before the deadline.
    #[error("timeout: no answer before the deadline")]
    Timeout,
    /// The node answered something that is not the API's shape.
    #[error("decode: {0}")]
    Decode(String),
}

impl ClientError {
    /// The stable code: the node's error code, or `transport`, `timeout`, `decode`.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::Api(error) => error.code.as_str(),
            ClientError::Transport(_) => "transport",
            ClientError::Timeout => "timeout",
            ClientError::Decode(_) => "decode",
        }
    }

    /// The message without the code.
    pub fn message(&self) -> String {
        match self {
            ClientError::Api(error) => error.message.clone(),
            ClientError::Transport(message) | ClientError::Decode(message) => message.clone(),
            ClientError::Timeout => "no answer before the deadline".to_owned(),
        }
    }
}

impl From<Error> for ClientError {
    fn from(error: Error) -> ClientError {
        ClientError::Api(error)
    }
}

fn transport(error: reqwest::Error) -> ClientError {
    if error.is_timeout() {
        ClientError::Timeout
    } else {
        // Include the source chain: reqwest's top-level message alone says little.
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        ClientError::Transport(message)
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A client of one node. Cheap to clone; clones share the connection pool and the cached
/// genesis hash.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `http://host:port`, without a trailing slash.
    base_url: String,
    /// The node's genesis hash (ADR 0042): what signed transactions and requests bind.
    genesis_hash: Arc<OnceLock<Hash>>,
    /// Signs every request but `status` (ADR 0031), when set.
    key: Option<Arc<PrivateKey>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("signer", &self.key.as_ref().map(|key| key.public_key()))
            .finish()
    }
}

impl Client {
    /// A client of the node at `base_url` (`http://127.0.0.1:8545`). Nothing is sent yet.
    pub fn new(base_url: &str) -> Result<Client> {
        let base_url = base_url.trim().trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ClientError::Api(Error::new(
                ErrorCode::BadRequest,
                format!("node url `{base_url}` must start with http://"),
            )));
        }
        install_tls_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
            .pool_idle_timeout(Duration::from_millis(POOL_IDLE_MS))
            .build()
            .map_err(transport)?;
        Ok(Client {
            http,
            base_url,
            genesis_hash: Arc::new(OnceLock::new()),
            key: None,
        })
    }

    /// Speak https trusting only the CA certificates in `ca_pem` (PEM), and present
    /// `identity` = (PEM certificate chain, PEM private key) when the node asks for a client
    /// certificate (mutual TLS). Made with rustls and the ring provider.
    pub fn with_tls(mut self, ca_pem: &[u8], identity: Option<(&[u8], &[u8])>) -> Result<Client> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |what: &str, error: &dyn std::fmt::Display| {
            ClientError::Api(Error::new(ErrorCode::BadRequest, format!("tls: {what}: {error}")))
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|error| bad("CA file", &error))?;
            roots.add(cert).map_err(|error| bad("CA certificate", &error))?;
        }
        if roots.is_empty() {
            return Err(bad("CA file", &"no certificate in it"));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| bad("protocol versions", &error))?
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert_pem, key_pem)) => {
                let certs = CertificateDer::pem_slice_iter(cert_pem)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|error| bad("client certificate", &error))?;
                let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|error| bad("client key", &error))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|error| bad("client certificate and key", &error))?
            }
        };
        self.http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
            .pool_idle_timeout(Duration::from_millis(POOL_IDLE_MS))
            .tls_backend_preconfigured(config)
            .build()
            .map_err(transport)?;
        Ok(self)
    }

    /// Sign every request with `key` (an account's current key): the node then answers what
    /// that account may read (`request_auth`).
    pub fn with_key(mut self, key: PrivateKey) -> Client {
        self.key = Some(Arc::new(key));
        self
    }

    /// A request to `path` (with its query), signed when the client has a key. The signature
    /// covers the path and query exactly as the URL sends them.
    async fn request(&self, method: reqwest::Method, path: &str, body: Vec<u8>) -> Result<reqwest::RequestBuilder> {
        let url = reqwest::Url::parse(&self.url(path))
            .map_err(|error| ClientError::Api(Error::new(ErrorCode::BadRequest, format!("url: {error}"))))?;
        let mut builder = self.http.request(method.clone(), url.clone());
        if let Some(key) = &self.key {
            let request = RequestToSign {
                genesis_hash: self.genesis_hash().await?,
                method: method.as_str(),
                path: url.path(),
                query: url.query().unwrap_or(""),
                body: &body,
                timestamp_ms: expires_at_ms(Duration::ZERO),
            };
            for (name, value) in sign_request(&request, key) {
                builder = builder.header(name, value);
            }
        }
        if !body.is_empty() {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        Ok(builder)
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let request = self
            .request(reqwest::Method::GET, path, Vec::new())
            .await?
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS));
        answer(request.send().await.map_err(transport)?).await
    }

    async fn post<B: serde::Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let body = serde_json::to_vec(body).map_err(|error| ClientError::Decode(error.to_string()))?;
        let request = self
            .request(reqwest::Method::POST, path, body)
            .await?
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS));
        answer(request.send().await.map_err(transport)?).await
    }

    /// The node's status (public: never signed); also caches the genesis hash.
    pub async fn status(&self) -> Result<Status> {
        let request = self
            .http
            .get(self.url("/v1/status"))
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS));
        let status: Status = answer(request.send().await.map_err(transport)?).await?;
        let _ = self.genesis_hash.set(status.genesis_hash);
        Ok(status)
    }

    /// The chain's human-readable name (not what signatures bind; see `genesis_hash`).
    pub async fn chain_id(&self) -> Result<String> {
        Ok(self.status().await?.chain_id)
    }

    /// The chain's genesis hash, asked of the node once and cached: what transactions, key
    /// proofs and signed requests bind (ADR 0042).
    pub async fn genesis_hash(&self) -> Result<Hash> {
        if let Some(genesis_hash) = self.genesis_hash.get() {
            return Ok(*genesis_hash);
        }
        Ok(self.status().await?.genesis_hash)
    }

    /// Submit one signed transaction; the node answers with its hash once it is in the mempool.
    pub async fn submit(&self, signed: &SignedTransaction) -> Result<Hash> {
        let request = SubmitRequest {
            tx: hex::encode(signed.to_bytes()),
        };
        let response: SubmitResponse = self.post("/v1/transactions", &request).await?;
        Ok(response.tx_hash)
    }

    /// Submit many transactions, in requests of at most `SUBMIT_BATCH_TXS_MAX`. One result per
    /// transaction, in order: a node's refusal of one does not stop the others.
    pub async fn submit_many(&self, signed: &[SignedTransaction]) -> Result<Vec<Result<Hash, Error>>> {
        let mut results = Vec::with_capacity(signed.len());
        for chunk in signed.chunks(SUBMIT_BATCH_TXS_MAX) {
            let request = BatchSubmitRequest {
                txs: chunk.iter().map(|tx| hex::encode(tx.to_bytes())).collect(),
            };
            let response: BatchSubmitResponse = self.post("/v1/transactions/batch", &request).await?;
            if response.results.len() != chunk.len() {
                return Err(ClientError::Decode(format!(
                    "node answered {} results for {} transactions",
                    response.results.len(),
                    chunk.len()
                )));
            }
            for result in response.results {
                results.push(match (result.tx_hash, result.error) {
                    (_, Some(error)) => Err(error),
                    (Some(hash), None) => Ok(hash),
                    (None, None) => {
                        return Err(ClientError::Decode("a batch result has neither hash nor error".into()));
                    }
                });
            }
        }
        assert_eq!(results.len(), signed.len());
        Ok(results)
    }

    /// A transaction's current status (`not_found` if the node never heard of it).
    pub async fn tx(&self, hash: &Hash) -> Result<TxView> {
        self.get(&format!("/v1/transactions/{hash}")).await
    }

    /// One long poll: the node answers when the transaction is final or after `wait_ms`.
    pub async fn tx_wait_once(&self, hash: &Hash, wait_ms: u64) -> Result<TxView> {
        let wait_ms = wait_ms.min(WAIT_POLL_MS_MAX);
        let request = self
            .request(
                reqwest::Method::GET,
                &format!("/v1/transactions/{hash}?wait_ms={wait_ms}"),
                Vec::new(),
            )
            .await?
            .timeout(Duration::from_millis(wait_ms + WAIT_SLACK_MS));
        answer(request.send().await.map_err(transport)?).await
    }

    /// Wait until the transaction is finalized or rejected, for at most `timeout`.
    /// `Timeout` if it is still pending then; `Api(not_found)` if the node never heard of it.
    pub async fn wait(&self, hash: &Hash, timeout: Duration) -> Result<TxView> {
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let wait_ms = u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX);
            let started = Instant::now();
            let last = match self.tx_wait_once(hash, wait_ms).await {
                Ok(view) if view.status != TxStatus::Pending => return Ok(view),
                Ok(_) => ClientError::Timeout,
                Err(ClientError::Api(error)) if error.code == ErrorCode::NotFound => ClientError::Api(error),
                Err(other) => return Err(other),
            };
            if Instant::now() >= deadline {
                return Err(last);
            }
            if started.elapsed() < Duration::from_millis(WAIT_RETRY_MS) {
                let pause =
                    Duration::from_millis(WAIT_RETRY_MS).min(deadline.saturating_duration_since(Instant::now()));
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// Submit, then wait for the outcome (see `wait`).
    pub async fn submit_and_wait(&self, signed: &SignedTransaction, timeout: Duration) -> Result<TxView> {
        let hash = self.submit(signed).await?;
        self.wait(&hash, timeout).await
    }

    pub async fn account(&self, id: &AccountId) -> Result<AccountView> {
        self.get(&format!("/v1/accounts/{id}")).await
    }

    /// The account's record with a proof against the state root (verify it with
    /// `AccountProof::verify`).
    pub async fn account_proof(&self, id: &AccountId) -> Result<AccountProof> {
        self.get(&format!("/v1/accounts/{id}/proof")).await
    }

    /// The nonce the account's next transaction must carry.
    pub async fn next_nonce(&self, id: &AccountId) -> Result<u64> {
        Ok(self.account(id).await?.next_nonce)
    }

    /// The account that holds `public_key` (`not_found` if none).
    pub async fn key_owner(&self, public_key: &PublicKey) -> Result<AccountId> {
        let owner: KeyOwner = self.get(&format!("/v1/keys/{}", public_key.to_text())).await?;
        Ok(owner.account)
    }

    pub async fn currencies(&self) -> Result<Vec<CurrencyView>> {
        self.get("/v1/currencies").await
    }

    /// Oracle rates, posts and quotes as of the head block.
    pub async fn fx_rates(&self) -> Result<crate::fx::RatesView> {
        self.get("/v1/fx/rates").await
    }

    pub async fn contract(&self, id: u64) -> Result<crate::contract::ContractView> {
        self.get(&format!("/v1/contracts/{id}")).await
    }

    pub async fn schedule(&self, id: u64) -> Result<crate::schedule::ScheduleView> {
        self.get(&format!("/v1/schedules/{id}")).await
    }

    pub async fn schedules(&self, payer: &AccountId) -> Result<Vec<crate::schedule::ScheduleView>> {
        self.get(&format!("/v1/schedules?payer={payer}")).await
    }

    pub async fn fx_lock(&self, id: u64) -> Result<crate::fx::LockView> {
        self.get(&format!("/v1/fx/locks/{id}")).await
    }

    pub async fn block(&self, height: u64) -> Result<BlockView> {
        self.get(&format!("/v1/blocks/{height}")).await
    }

    /// One page of an account's history, newest first; pass `next_before` as `before` for more.
    pub async fn history(&self, id: &AccountId, before: Option<u64>, limit: Option<usize>) -> Result<HistoryPage> {
        let mut query = Vec::new();
        if let Some(before) = before {
            query.push(format!("before={before}"));
        }
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{}", query.join("&"))
        };
        self.get(&format!("/v1/accounts/{id}/history{query}")).await
    }

    /// A transaction from `sender` with the genesis hash and the sender's next nonce from the node,
    /// expiring `expires_in` from now (wall clock; see `DEFAULT_EXPIRES_IN`).
    pub async fn build(&self, sender: &AccountId, operation: Operation, expires_in: Duration) -> Result<Transaction> {
        let genesis_hash = self.genesis_hash().await?;
        let nonce = self.next_nonce(sender).await?;
        Ok(Transaction::new(
            genesis_hash,
            sender.clone(),
            nonce,
            expires_at_ms(expires_in),
            operation,
        ))
    }

    /// Events from `from_height` on: the node replays what it has, then follows new blocks.
    /// The stream ends with an error if the connection breaks; resume from the last height seen
    /// (events of that height come again).
    pub fn events(&self, from_height: u64) -> impl Stream<Item = Result<EventRecord>> + Send + 'static {
        let state = EventsState::Connecting(self.clone(), format!("/v1/events?from_height={from_height}"));
        futures::stream::unfold(state, next_event)
    }

    /// One page of the audit log of reads, as this client's key may see it.
    pub async fn audit(&self, after: Option<u64>, limit: usize) -> Result<AuditPage> {
        let after = after.map(|after| format!("&after={after}")).unwrap_or_default();
        self.get(&format!("/v1/audit?limit={limit}{after}")).await
    }
}

/// Make rustls with the ring provider the process's TLS provider, once. reqwest is built
/// without a provider of its own, so a process must call this (or build clients through
/// `Client::new`) before it builds any `reqwest::Client`.
pub fn install_tls_provider() {
    // An error means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Milliseconds since the Unix epoch, `after` from now, by the wall clock.
pub fn expires_at_ms(after: Duration) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    u64::try_from(now.saturating_add(after).as_millis()).unwrap_or(u64::MAX)
}

/// Read a whole answer (at most `RESPONSE_BYTES_MAX`) and decode it, or the node's error.
async fn answer<T: DeserializeOwned>(mut response: reqwest::Response) -> Result<T> {
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > RESPONSE_BYTES_MAX {
            return Err(ClientError::Decode(format!(
                "answer exceeds {RESPONSE_BYTES_MAX} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_success() {
        serde_json::from_slice(&body).map_err(|error| ClientError::Decode(format!("{error} (HTTP {status})")))
    } else {
        Err(ClientError::Api(error_from_body(status.as_u16(), &body)))
    }
}

/// The node's `{"error": {"code", "message"}}`; for an unknown code or another body (a proxy's
/// page), a code chosen by HTTP status with the original text in the message.
pub fn error_from_body(status: u16, body: &[u8]) -> Error {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        return parsed.error;
    }
    let code = match status {
        404 => ErrorCode::NotFound,
        413 => ErrorCode::TooLarge,
        400..=499 => ErrorCode::BadRequest,
        _ => ErrorCode::Unavailable,
    };
    let loose = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| {
            let error = value.get("error")?;
            Some(format!(
                "{}: {}",
                error.get("code")?.as_str()?,
                error.get("message").and_then(|m| m.as_str()).unwrap_or_default()
            ))
        });
    let text = loose.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text: String = text.chars().take(200).collect();
        text.trim().to_owned()
    });
    Error::new(code, format!("HTTP {status}: {text}"))
}

enum EventsState {
    /// The client and the path to open.
    Connecting(Client, String),
    Reading {
        body: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
        parser: SseParser,
    },
    Done,
}

async fn next_event(mut state: EventsState) -> Option<(Result<EventRecord>, EventsState)> {
    use futures::StreamExt as _;
    loop {
        state = match state {
            EventsState::Done => return None,
            EventsState::Connecting(client, path) => {
                let request = match client.request(reqwest::Method::GET, &path, Vec::new()).await {
                    Ok(request) => request.header(reqwest::header::ACCEPT, "text/event-stream"),
                    Err(error) => return Some((Err(error), EventsState::Done)),
                };
                let response = match request.send().await {
                    Ok(response) => response,
                    Err(error) => return Some((Err(transport(error)), EventsState::Done)),
                };
                if !response.status().is_success() {
                    let result: Result<EventRecord> = answer::<serde_json::Value>(response).await.and_then(|_| {
                        Err(ClientError::Decode(
                            "event stream answered a success without events".into(),
                        ))
                    });
                    return Some((result, EventsState::Done));
                }
                let body = response
                    .bytes_stream()
                    .map(|chunk| chunk.map(|bytes| bytes.to_vec()))
                    .boxed();
                EventsState::Reading {
                    body,
                    parser: SseParser::default(),
                }
            }
            EventsState::Reading { mut body, mut parser } => {
                match parser.next_event() {
                    Ok(Some(event)) => {
                        let record = serde_json::from_str::<EventRecord>(&event.data)
                            .map_err(|error| ClientError::Decode(format!("event record: {error}")));
                        return Some((record, EventsState::Reading { body, parser }));
                    }
                    Ok(None) => {}
                    Err(error) => return Some((Err(error), EventsState::Done)),
                }
                match body.next().await {
                    Some(Ok(chunk)) => {
                        parser.push(&chunk);
                        EventsState::Reading { body, parser }
                    }
                    Some(Err(error)) => return Some((Err(transport(error)), EventsState::Done)),
                    None => {
                        let closed = ClientError::Transport("the node closed the event stream".into());
                        return Some((Err(closed), EventsState::Done));
                    }
                }
            }
        };
    }
}

/// One Server-Sent Event: its `id:` (the height, for corridor) and its `data:` lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub data: String,
}

/// An incremental Server-Sent Events parser: feed bytes with `push`, take events with
/// `next_event`. Lines end in `\n`, `\r\n` or `\r`; a blank line ends an event; `:` comments
/// (keep-alives), `event:` and `retry:` lines and unknown fields are ignored. A line longer than
/// `SSE_LINE_BYTES_MAX` is an error, so a hostile stream cannot grow the buffer without bound.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    /// Bytes of `buffer` already scanned for a line end.
    scanned: usize,
    id: Option<String>,
    data: Option<String>,
    /// The previous line ended in `\r`; a `\n` right after it belongs to the same line end.
    after_cr: bool,
}

impl SseParser {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete event in what was pushed, if any.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>> {
        while let Some(line) = self.next_line()? {
            if let Some(event) = self.take_line(&line) {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }

    fn next_line(&mut self) -> Result<Option<String>> {
        if self.after_cr && self.buffer.first() == Some(&b'\n') {
            self.buffer.remove(0);
            self.scanned = 0;
        }
        if self.after_cr && !self.buffer.is_empty() {
            self.after_cr = false;
        }
        let found = self.buffer[self.scanned..]
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r');
        let Some(offset) = found else {
            self.scanned = self.buffer.len();
            if self.buffer.len() > SSE_LINE_BYTES_MAX {
                return Err(ClientError::Decode(format!(
                    "event stream line over {SSE_LINE_BYTES_MAX} bytes"
                )));
            }
            return Ok(None);
        };
        let end = self.scanned + offset;
        let terminator = self.buffer[end];
        let mut consumed = end + 1;
        if terminator == b'\r' {
            if self.buffer.get(end + 1) == Some(&b'\n') {
                consumed += 1;
            } else if end + 1 == self.buffer.len() {
                // The `\n` of a `\r\n` may still be on its way.
                self.after_cr = true;
            }
        }
        let line = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
        self.buffer.drain(..consumed);
        self.scanned = 0;
        Ok(Some(line))
    }

    /// Apply one line; a blank line dispatches the event gathered so far.
    fn take_line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let data = self.data.take()?;
            return Some(SseEvent {
                id: self.id.clone(),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk);
            while let Some(event) = parser.next_event().expect("parses") {
                out.push(event);
            }
        }
        out
    }

    fn events_of(bytes: &[u8]) -> Vec<SseEvent> {
        events(&[bytes])
    }

    fn event(id: &str, data: &str) -> SseEvent {
        SseEvent {
            id: Some(id.into()),
            data: data.into(),
        }
    }

    #[test]
    fn sse_events_ids_comments_and_keep_alives() {
        let stream = b": keep-alive\n\nid: 3\nevent: record\ndata: {\"a\":1}\n\n:ping\nid:4\ndata:x\ndata: y\n\n";
        assert_eq!(events_of(stream), vec![event("3", "{\"a\":1}"), event("4", "x\ny")]);
    }

    #[test]
    fn sse_events_split_anywhere_and_crlf() {
        let stream: &[u8] = b"id: 7\r\ndata: one\r\n\r\nid: 8\rdata: two\r\r";
        let whole = events_of(stream);
        assert_eq!(whole, vec![event("7", "one"), event("8", "two")]);
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(events(&[a, b]), whole, "split at {split}");
        }
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(events(&bytewise), whole);
    }

    #[test]
    fn sse_event_waits_for_blank_line_and_skips_empty() {
        assert_eq!(events_of(b"id: 1\ndata: x\n"), vec![]);
        assert_eq!(events_of(b"id: 1\n\n\n"), vec![]);
        // The id carries over to later events, as SSE's last-event-id does.
        assert_eq!(
            events_of(b"id: 1\ndata: a\n\ndata: b\n\n"),
            vec![event("1", "a"), event("1", "b")]
        );
    }

    #[test]
    fn sse_line_limit() {
        let mut parser = SseParser::default();
        parser.push(&vec![b'a'; SSE_LINE_BYTES_MAX + 1]);
        assert_eq!(parser.next_event().map_err(|e| e.code()), Err("decode"));
    }

    #[test]
    fn event_record_decodes_from_data() {
        let data = r#"{"height":5,"tx_hash":"0000000000000000000000000000000000000000000000000000000000000000","tx_index":0,"event_index":0,"event":{"minted":{"to":"acme@icbc-cn","currency":"CNY","amount":"10.5"}}}"#;
        let record: EventRecord = serde_json::from_str(data).expect("decodes");
        assert_eq!(record.height, 5);
    }

    #[test]
    fn error_bodies() {
        let body = br#"{"error":{"code":"insufficient_funds","message":"balance 1 CNY"}}"#;
        assert_eq!(
            error_from_body(409, body),
            Error::new(ErrorCode::InsufficientFunds, "balance 1 CNY")
        );
        let unknown = br#"{"error":{"code":"brand_new","message":"m"}}"#;
        let error = error_from_body(403, unknown);
        assert_eq!(error.code, ErrorCode::BadRequest);
        assert!(error.message.contains("brand_new: m"));
        assert_eq!(error_from_body(404, b"<html>nope</html>").code, ErrorCode::NotFound);
        assert_eq!(error_from_body(502, b"").code, ErrorCode::Unavailable);
    }

    #[test]
    fn client_error_codes() {
        assert_eq!(ClientError::Api(Error::new(ErrorCode::Frozen, "x")).code(), "frozen");
        assert_eq!(ClientError::Transport("x".into()).code(), "transport");
        assert_eq!(ClientError::Timeout.code(), "timeout");
        assert_eq!(ClientError::Decode("x".into()).code(), "decode");
        assert!(Client::new("localhost:8545").is_err());
        assert_eq!(
            Client::new("http://127.0.0.1:8545/").map(|c| c.base_url().to_owned()),
            Ok("http://127.0.0.1:8545".into())
        );
    }

    /// A one-shot HTTP server: answers the n-th connection with `responses[n]` (written in the
    /// given pieces) and closes it. Returns its base URL and the request lines it saw.
    async fn serve(responses: Vec<Vec<&'static [u8]>>) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (seen, requests) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for pieces in responses {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = seen.send(line);
                for piece in pieces {
                    if socket.write_all(piece).await.is_err() {
                        break;
                    }
                    let _ = socket.flush().await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        (url, requests)
    }

    const RECORD: &str = r#"{"height":5,"tx_hash":"0101010101010101010101010101010101010101010101010101010101010101","tx_index":2,"event_index":1,"event":{"frozen":{"account":"acme@icbc-cn","by":"pboc"}}}"#;

    #[tokio::test]
    async fn events_stream_over_http() {
        use futures::StreamExt as _;
        let head: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
        let event = format!("id: 5\ndata: {RECORD}\n\n");
        let event: &'static [u8] = Box::leak(event.into_bytes().into_boxed_slice());
        let (first, rest) = event.split_at(20);
        let (url, mut requests) = serve(vec![vec![head, b": keep-alive\n\n", first, rest, event]]).await;
        let client = Client::new(&url).expect("client");
        let items: Vec<Result<EventRecord>> = client.events(4).collect().await;
        assert_eq!(
            requests.recv().await.as_deref(),
            Some("GET /v1/events?from_height=4 HTTP/1.1")
        );
        assert_eq!(items.len(), 3, "{items:?}");
        let record = items[0].as_ref().expect("first record");
        assert_eq!((record.height, record.tx_index), (5, 2));
        assert_eq!(items[1].as_ref().map(|r| r.height), Ok(5));
        assert_eq!(items[2].as_ref().map_err(ClientError::code), Err("transport"));
    }

    #[tokio::test]
    async fn refusals_and_long_polls() {
        let refused: &[u8] = b"HTTP/1.1 409 Conflict\r\ncontent-type: application/json\r\ncontent-length: 65\r\nconnection: close\r\n\r\n{\"error\":{\"code\":\"nonce_too_low\",\"message\":\"nonce 3, next is 4\"}}";
        let pending: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 97\r\nconnection: close\r\n\r\n{\"tx_hash\":\"0101010101010101010101010101010101010101010101010101010101010101\",\"status\":\"pending\"}";
        let rejected: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 145\r\nconnection: close\r\n\r\n{\"tx_hash\":\"0101010101010101010101010101010101010101010101010101010101010101\",\"status\":\"rejected\",\"error\":{\"code\":\"expired\",\"message\":\"expired\"}}";
        let garbage: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]";
        let (url, mut requests) = serve(vec![vec![refused], vec![pending], vec![rejected], vec![garbage]]).await;
        let client = Client::new(&url).expect("client");
        let error = client
            .account(&AccountId::new("acme").expect("id"))
            .await
            .expect_err("refused");
        assert_eq!(
            error,
            ClientError::Api(Error::new(ErrorCode::NonceTooLow, "nonce 3, next is 4"))
        );
        let hash = Hash([1; 32]);
        let view = client.wait(&hash, Duration::from_secs(10)).await.expect("final");
        assert_eq!(view.status, TxStatus::Rejected);
        assert_eq!(requests.recv().await.as_deref(), Some("GET /v1/accounts/acme HTTP/1.1"));
        let poll = requests.recv().await.unwrap_or_default();
        assert!(
            poll.starts_with(&format!("GET /v1/transactions/{hash}?wait_ms=")),
            "{poll}"
        );
        assert_eq!(client.status().await.map_err(|e| e.code()), Err("decode"));
    }

    #[test]
    fn expiry_is_in_the_future() {
        let now = expires_at_ms(Duration::ZERO);
        assert!(expires_at_ms(DEFAULT_EXPIRES_IN) >= now + 3_600_000);
    }
}
