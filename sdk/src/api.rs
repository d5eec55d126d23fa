//! The JSON shapes of the HTTP API under `/v1`, shared by the node and the client.
//!
//! | method and path | body / query | answer |
//! |---|---|---|
//! | `GET /v1/status` | | `Status` |
//! | `POST /v1/transactions` | `SubmitRequest` | 202 `SubmitResponse` |
//! | `POST /v1/transactions/batch` | `BatchSubmitRequest` | 202 `BatchSubmitResponse` (one result per tx) |
//! | `GET /v1/transactions/{hash}` | | `TxView` |
//! | `GET /v1/accounts/{id}` | | `AccountView` |
//! | `GET /v1/accounts/{id}/history` | `?before=SEQ&limit=N` | `HistoryPage` |
//! | `GET /v1/accounts/{id}/proof` | | `AccountProof` (record + proof against the state root) |
//! | `GET /v1/keys/{scheme:hex}` | | `KeyOwner` (the account that holds a public key) |
//! | `GET /v1/currencies` | | `Vec<CurrencyView>` |
//! | `GET /v1/blocks/{height}` | | `BlockView` |
//! | `GET /v1/fx/rates` | | `fx::RatesView` (oracle rates, posts, quotes at the head's time) |
//! | `GET /v1/fx/locks/{id}` | | `fx::LockView` |
//! | `GET /v1/contracts/{id}` | | `contract::ContractView` (code hash, balances, storage) |
//! | `GET /v1/schedules/{id}` | | `schedule::ScheduleView` |
//! | `GET /v1/schedules` | `?payer=ACCOUNT` | `Vec<schedule::ScheduleView>` (the payer's active orders) |
//! | `GET /v1/events` | `?from_height=H`, or `?after=ID` / `Last-Event-ID: ID` | Server-Sent Events, each `data:` an `EventRecord`, `id:` its `EventRecord::id()` |
//! | `GET /v1/audit` | `?after=SEQ&limit=N` | `audit::AuditPage` (audited reads the caller may see) |
//! | `GET /metrics` | | Prometheus text |
//!
//! Public without a signature: status, blocks (headers, transaction hashes, certificates),
//! currencies, metrics. Every other read is signed (`request_auth`) and scoped to the caller's
//! role; a refusal is `403 forbidden` decided before any lookup (ADR 0031).
//!
//! Errors are 4xx/5xx with `ErrorBody`: `{"error": {"code", "message"}}`.

use crate::amount::Amount;
use crate::block::{BlockHeader, Certificate};
use crate::crypto::PublicKey;
use crate::error::Error;
use crate::hash::{Hash, HashAlgorithm};
use crate::ids::{AccountId, CurrencyCode};
use crate::proof::{AccountState, StateProof};
use crate::receipt::{Event, Receipt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The chain's human-readable name; not unique (every dev chain is `corridor-dev`).
    pub chain_id: String,
    /// The hash of block 0's header, which commits to the whole genesis state: what
    /// transactions, key proofs and signed requests bind (ADR 0042).
    pub genesis_hash: Hash,
    pub hash_algorithm: HashAlgorithm,
    /// Height of the latest finalized and executed block.
    pub height: u64,
    pub latest_block_hash: Hash,
    pub latest_block_time_ms: u64,
    /// State root after the latest block.
    pub state_root: Hash,
    pub mempool_txs: usize,
    pub validators: Vec<AccountId>,
    pub node_version: String,
    /// Why this node stopped producing and voting for blocks, if it did (a certified block
    /// disagreed with its state); it still serves reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halted: Option<String>,
    /// `validator` or `observer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The validator set with its keys, in genesis order (validator i signs as index i).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validator_set: Vec<ValidatorEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorEntry {
    pub id: AccountId,
    /// The consensus key.
    pub public_key: crate::crypto::PublicKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_key: Option<crate::crypto::PublicKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitRequest {
    /// Hex of the canonical signed transaction bytes.
    pub tx: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResponse {
    pub tx_hash: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSubmitRequest {
    pub txs: Vec<String>,
}

/// One entry per submitted transaction, in order: its hash if accepted, its error if not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSubmitResult {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tx_hash: Option<Hash>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<Error>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSubmitResponse {
    pub results: Vec<BatchSubmitResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    /// In the mempool, not yet in a finalized block.
    Pending,
    /// In a finalized, executed block; the receipt says whether the operation succeeded.
    Finalized,
    /// Refused before ordering (for example it expired in the mempool); `error` says why.
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxView {
    pub tx_hash: Hash,
    pub status: TxStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receipt: Option<Receipt>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<Error>,
    /// Hex of the canonical signed bytes, as evidence of what the sender signed (absent once
    /// a rejected transaction is forgotten).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tx: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    pub id: AccountId,
    /// The first of `keys`.
    pub public_key: PublicKey,
    /// Every key that may sign for the account (ADR 0043), `public_key` first.
    #[serde(default)]
    pub keys: Vec<PublicKey>,
    /// How many of `keys` must sign each transaction.
    #[serde(default = "one")]
    pub threshold: u8,
    /// The nonce the account's next transaction must carry.
    pub next_nonce: u64,
    pub frozen: bool,
    /// The authority that froze the account, while it is frozen.
    #[serde(default)]
    pub frozen_by: Option<AccountId>,
    pub sponsor: Option<AccountId>,
    pub balances: BTreeMap<CurrencyCode, Amount>,
}

fn one() -> u8 {
    1
}

/// One account's record with a proof against the state root after block `height`. The root
/// is the `state_root` of the header at `height + 1` once that block exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountProof {
    pub account: AccountId,
    pub height: u64,
    pub block_hash: Hash,
    pub state_root: Hash,
    /// Hex of the record's canonical bytes (`AccountState`), absent for a missing account.
    pub record: Option<String>,
    pub proof: StateProof,
}

impl AccountProof {
    /// Check the proof against `state_root` (which the caller should get from a source it
    /// trusts, such as a certified header) and decode the proven record.
    pub fn verify(&self, algorithm: HashAlgorithm, state_root: &Hash) -> Result<Option<AccountState>, Error> {
        let bad = |why: &str| {
            Error::new(
                crate::ErrorCode::BadRequest,
                format!("proof for {}: {why}", self.account),
            )
        };
        let bytes = self
            .record
            .as_deref()
            .map(hex::decode)
            .transpose()
            .map_err(|_| bad("record is not hex"))?;
        let key = crate::proof::account_state_key(&self.account);
        if !self.proof.verify(algorithm, state_root, &key, bytes.as_deref()) {
            return Err(bad("does not verify against the state root"));
        }
        bytes
            .map(|b| {
                crate::codec::decode(&b, crate::limits::STATE_VALUE_BYTES_MAX)
                    .map_err(|_| bad("record does not decode"))
            })
            .transpose()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyOwner {
    pub account: AccountId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyView {
    pub code: CurrencyCode,
    pub scale: u32,
    pub issuer: AccountId,
    pub supply: Amount,
    pub transfer_limit: Option<Amount>,
}

/// One event with where it happened: block height, transaction index in the block, event
/// index in the transaction. `id()` is its position in the event stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub height: u64,
    pub tx_hash: Hash,
    pub tx_index: u32,
    pub event_index: u32,
    pub event: Event,
}

impl EventRecord {
    /// `height:tx_index:event_index`, the SSE `id:`; resume after it with `?after=` or the
    /// `Last-Event-ID` header.
    pub fn id(&self) -> String {
        format!("{}:{}:{}", self.height, self.tx_index, self.event_index)
    }

    /// Parse an `id()` back into (height, tx_index, event_index).
    pub fn parse_id(text: &str) -> Option<(u64, u32, u32)> {
        let mut parts = text.trim().splitn(3, ':');
        let height = parts.next()?.parse().ok()?;
        let tx_index = parts.next()?.parse().ok()?;
        let event_index = parts.next()?.parse().ok()?;
        Some((height, tx_index, event_index))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub sequence: u64,
    pub record: EventRecord,
}

/// Newest first. Pass `next_before` as `before` for the next page; `None` when done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    pub next_before: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    pub hash: Hash,
    pub header: BlockHeader,
    pub tx_hashes: Vec<Hash>,
    pub certificate: Certificate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: Error,
}

/// One node of a local network, as `corridor-testnet up` lists it in `DIR/network.json`
/// (written by `corridord plan-network`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkNode {
    pub name: String,
    /// `validator` or `observer`.
    pub role: String,
    pub rpc: String,
    pub p2p: String,
    pub config: std::path::PathBuf,
    pub log: std::path::PathBuf,
    /// Set once the process runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}
