//! `corridor proof ACCOUNT`: an account's record, proven against a state root that a finalized,
//! certified header commits to.
//!
//! The rule this command keeps: it says `verified` only after (1) the record's Merkle proof
//! verifies against the root, (2) a header commits to that root for the proof's height, and
//! (3) that header is shown final by a finalization certificate of the validator set
//! (`corridor_sdk::finality`), checked here. The set comes from a pinned file when one is given
//! (`--genesis`, `--validators`); otherwise from the node's own `/v1/status`, which the output
//! says is the node's word.

use crate::commands::Context;
use crate::input;
use crate::output::{self, EXIT_REFUSED, EXIT_SUCCESS, Failure};
use corridor_sdk::api::{BlockView, ValidatorEntry};
use corridor_sdk::client::ClientError;
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::finality::{self, FinalHeader, FinalityError, ValidatorSet};
use corridor_sdk::{AccountId, Block, BlockHeader, HashAlgorithm, SignedTransaction};
use futures::{StreamExt as _, TryStreamExt as _};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes of a `--genesis` or `--validators` file (a genesis lists every account).
const TRUST_FILE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Blocks after the proof's height looked at for the header that commits to its root.
const COMMIT_SEARCH_BLOCKS_MAX: u64 = 16;
/// Blocks from the committing one on tried as the block whose full bytes are checked against
/// the certificate (each must be one this key may read every transaction of).
const CERTIFYING_BLOCKS_TRIED_MAX: u64 = 8;
/// Transactions fetched to rebuild one block; a larger block is skipped for a later one.
const BLOCK_TXS_FETCHED_MAX: usize = 2_000;
/// Transactions fetched at once.
const TX_FETCHES_CONCURRENT: usize = 8;
/// How often the next block is asked for while waiting for it.
const BLOCK_POLL_MS: u64 = 200;

/// Where the validator set to check certificates against comes from.
pub enum Trust {
    /// The node's `/v1/status`: only as good as the node.
    Node,
    /// A genesis file: the set, the chain id and the hash algorithm.
    Genesis(PathBuf),
    /// A validator set file: a JSON list of `{id, public_key}`, an object with `validators`
    /// (and optionally `epoch`, `chain_id`), or a saved `corridor --json status`.
    Validators(PathBuf),
}

#[derive(Deserialize)]
struct GenesisFile {
    chain_id: String,
    hash_algorithm: HashAlgorithm,
    validators: Vec<ValidatorEntry>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ValidatorsFile {
    List(Vec<ValidatorEntry>),
    Set {
        #[serde(default)]
        epoch: u64,
        #[serde(default)]
        chain_id: Option<String>,
        validators: Vec<ValidatorEntry>,
    },
    Status {
        chain_id: String,
        validator_set: Vec<ValidatorEntry>,
    },
}

/// The set to check against, the hash algorithm, and how to describe where they came from.
struct Pinned {
    set: ValidatorSet,
    algorithm: HashAlgorithm,
    source: String,
    /// Whether the set is the node's own word.
    from_node: bool,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str, shapes: &str) -> Result<T, Failure> {
    let bytes = input::read_file_limited(path, TRUST_FILE_BYTES_MAX, what).map_err(Failure::input)?;
    serde_json::from_slice(&bytes).map_err(|error| {
        Failure::input(Error::new(
            ErrorCode::BadRequest,
            format!("{what} file {}: {error} (expected {shapes})", path.display()),
        ))
    })
}

fn set_failure(error: FinalityError) -> Failure {
    Failure::input(Error::new(ErrorCode::BadRequest, error.to_string()))
}

fn pinned(trust: &Trust, status: &corridor_sdk::api::Status) -> Result<Pinned, Failure> {
    match trust {
        Trust::Node => {
            if status.validator_set.is_empty() {
                return Err(Failure::refused(Error::new(
                    ErrorCode::BadRequest,
                    "the node's /v1/status lists no validator keys; pass --genesis FILE or --validators FILE",
                )));
            }
            Ok(Pinned {
                set: ValidatorSet::from_entries(0, &status.validator_set).map_err(set_failure)?,
                algorithm: status.hash_algorithm,
                source: "the node's /v1/status (its own word; pin the set with --genesis or --validators)".into(),
                from_node: true,
            })
        }
        Trust::Genesis(path) => {
            let genesis: GenesisFile = read_json(path, "genesis", "a corridor genesis JSON")?;
            let set = ValidatorSet::from_entries(0, &genesis.validators)
                .map_err(set_failure)?
                .with_chain_id(&genesis.chain_id);
            Ok(Pinned {
                set,
                algorithm: genesis.hash_algorithm,
                source: format!("genesis file {}", path.display()),
                from_node: false,
            })
        }
        Trust::Validators(path) => {
            let shapes = "a list of {id, public_key}, {\"validators\": [...]}, or a saved `corridor --json status`";
            let (epoch, chain_id, entries) = match read_json(path, "validators", shapes)? {
                ValidatorsFile::List(entries) => (0, None, entries),
                ValidatorsFile::Set {
                    epoch,
                    chain_id,
                    validators,
                } => (epoch, chain_id, validators),
                ValidatorsFile::Status {
                    chain_id,
                    validator_set,
                } => (0, Some(chain_id), validator_set),
            };
            let mut set = ValidatorSet::from_entries(epoch, &entries).map_err(set_failure)?;
            if let Some(chain_id) = chain_id {
                set = set.with_chain_id(&chain_id);
            }
            Ok(Pinned {
                set,
                algorithm: status.hash_algorithm,
                source: format!("validators file {}", path.display()),
                from_node: false,
            })
        }
    }
}

/// A certificate check that failed: exit 1 with the verifier's code and why.
fn certificate_failure(height: u64, source: &str, error: &FinalityError) -> Failure {
    Failure {
        code: error.code(),
        message: format!(
            "block {height}'s certificate does not verify against the validator set from {source}: {error}"
        ),
        exit_code: EXIT_REFUSED,
        tx_hash: None,
    }
}

fn refused(code: ErrorCode, message: String) -> Failure {
    Failure::refused(Error::new(code, message))
}

impl Context {
    /// Verify an account's proof here, against a root a certified header commits to; exit 1
    /// if any step fails.
    pub(crate) async fn proof(&self, account: &AccountId, trust: &Trust) -> Result<u8, Failure> {
        let status = self.client.status().await?;
        let pinned = pinned(trust, &status)?;
        let algorithm = pinned.algorithm;
        let proof = self.client.account_proof(account).await?;
        let state = proof.verify(algorithm, &proof.state_root).map_err(Failure::refused)?;
        let deadline = Instant::now() + self.wait;
        let committing = self
            .committing_header(proof.height, &proof.state_root, deadline)
            .await?;
        let committed_by = committing.header.height;
        let shown = self.certify(&pinned, committing, deadline).await?;
        assert_eq!(
            shown.header.state_root, proof.state_root,
            "the certified header is the committing one"
        );
        let node_set_matches = ValidatorSet::from_entries(pinned.set.epoch(), &status.validator_set)
            .is_ok_and(|node_set| node_set.validators() == pinned.set.validators());
        let certificate = serde_json::json!({
            "verified": true,
            "validators_from": pinned.source,
            "validators_pinned": !pinned.from_node,
            "node_reports_same_set": node_set_matches,
            "header_hash": shown.hash,
            "epoch": shown.epoch,
            "view": shown.view,
            "certified_height": shown.certified_height,
            "checked_height": shown.checked_height,
            "signers": shown.signers,
            "quorum": shown.quorum,
            "validators": shown.validators,
        });
        if self.json {
            output::print_json(&serde_json::json!({
                "account": account,
                "verified": true,
                "height": proof.height,
                "state_root": proof.state_root,
                "committed_by_block": committed_by,
                "state": state,
                "certificate": certificate,
            }))?;
            return Ok(EXIT_SUCCESS);
        }
        let mut rows = vec![
            ("account", account.to_string()),
            ("verified", "true".to_string()),
            ("height", proof.height.to_string()),
            ("state_root", proof.state_root.to_string()),
            ("committed_by", format!("block {committed_by} header {}", shown.hash)),
            (
                "certificate",
                format!(
                    "final: {} of {} validators signed (quorum {}), epoch {} view {}, block {}",
                    shown.signers.len(),
                    shown.validators,
                    shown.quorum,
                    shown.epoch,
                    shown.view,
                    shown.certified_height
                ),
            ),
            (
                "signers",
                shown
                    .signers
                    .iter()
                    .map(AccountId::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("validators_from", pinned.source.clone()),
        ];
        if !pinned.from_node && !node_set_matches {
            rows.push(("note", "the node's /v1/status lists another validator set".to_string()));
        }
        match &state {
            None => rows.push(("record", "absent (proven)".to_string())),
            Some(state) => {
                rows.push(("frozen", state.is_frozen().to_string()));
                rows.push(("next_nonce", state.next_nonce.to_string()));
                for (currency, amount) in &state.balances {
                    rows.push(("balance", format!("{amount} {currency}")));
                }
            }
        }
        print!("{}", output::fields(&rows));
        Ok(EXIT_SUCCESS)
    }

    /// Block `height`, waiting for it (until `deadline`) if it is not final yet.
    async fn block_waiting(&self, height: u64, deadline: Instant) -> Result<Option<BlockView>, Failure> {
        loop {
            match self.client.block(height).await {
                Ok(view) => return Ok(Some(view)),
                Err(ClientError::Api(error)) if error.code == ErrorCode::NotFound => {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                    tokio::time::sleep(Duration::from_millis(BLOCK_POLL_MS)).await;
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// The header that commits to the state after block `height`: the first one after it
    /// whose `state_height` is `height`.
    async fn committing_header(
        &self,
        height: u64,
        state_root: &corridor_sdk::Hash,
        deadline: Instant,
    ) -> Result<BlockView, Failure> {
        let wait = self.wait.as_secs();
        for candidate in height + 1..=height + COMMIT_SEARCH_BLOCKS_MAX {
            let Some(view) = self.block_waiting(candidate, deadline).await? else {
                return Err(refused(
                    ErrorCode::NotFound,
                    format!(
                        "the state root after block {height} is not yet committed by a final header: no block \
                         {candidate} within {wait} s (--wait-secs); retry once the chain has moved on"
                    ),
                ));
            };
            let header = &view.header;
            if header.state_height < height {
                continue;
            }
            if header.state_height > height {
                return Err(refused(
                    ErrorCode::BadRequest,
                    format!(
                        "no header commits the state after block {height}: block {candidate} names the state \
                         after block {}; ask for a fresh proof",
                        header.state_height
                    ),
                ));
            }
            if header.state_root != *state_root {
                return Err(refused(
                    ErrorCode::BadRequest,
                    format!(
                        "block {candidate} commits state root {} for block {height}, not the proof's {state_root}",
                        header.state_root
                    ),
                ));
            }
            return Ok(view);
        }
        Err(refused(
            ErrorCode::BadRequest,
            format!(
                "none of the {COMMIT_SEARCH_BLOCKS_MAX} blocks after block {height} commits its state; ask for a fresh proof"
            ),
        ))
    }

    /// Show `committing`'s header final. Its consensus digest covers the whole block, so the
    /// block checked against its certificate must be rebuilt with every transaction: the
    /// committing block itself if this key may read all of them, or a later final block this
    /// key may read, from which the committing header is final by its descendants' parent
    /// hashes. A certificate that fails is the answer; only an unreadable block is skipped.
    async fn certify(&self, pinned: &Pinned, committing: BlockView, deadline: Instant) -> Result<FinalHeader, Failure> {
        let start = committing.header.height;
        // The headers from the committing one up to (not including) the block being tried.
        let mut between: Vec<BlockView> = Vec::new();
        let mut current = committing;
        let mut unreadable = Vec::new();
        for offset in 0..CERTIFYING_BLOCKS_TRIED_MAX {
            if offset > 0 {
                let height = start + offset;
                let Some(next) = self.block_waiting(height, deadline).await? else {
                    break;
                };
                between.push(std::mem::replace(&mut current, next));
            }
            let block = match self.rebuild(&current).await? {
                Ok(block) => block,
                Err(why) => {
                    unreadable.push(format!("block {}: {why}", current.header.height));
                    continue;
                }
            };
            let height = current.header.height;
            let shown = finality::verify_block(&pinned.set, pinned.algorithm, &block, &current.certificate)
                .map_err(|error| certificate_failure(height, &pinned.source, &error))?;
            // `between` holds the committing header and those after it, up to this block.
            let headers: Vec<BlockHeader> = between.iter().map(|view| view.header.clone()).collect();
            let shown = shown
                .ancestor(pinned.algorithm, &headers)
                .map_err(|error| certificate_failure(start, &pinned.source, &error))?;
            assert_eq!(shown.header.height, start, "the walk ends at the committing header");
            return Ok(shown);
        }
        Err(refused(
            ErrorCode::Forbidden,
            format!(
                "cannot check the certificate of block {start}: a block's consensus digest covers its \
                 transactions, and no block from {start} on (at most {CERTIFYING_BLOCKS_TRIED_MAX}, waiting \
                 up to {} s) could be rebuilt with this key ({}); sign with a key that may read them (a \
                 regulator's) or retry once such a block is final",
                self.wait.as_secs(),
                unreadable.join("; ")
            ),
        ))
    }

    /// The block with its transactions, fetched one by one (each read scoped to this key);
    /// `Err` says why this key cannot rebuild it.
    async fn rebuild(&self, view: &BlockView) -> Result<Result<Block, String>, Failure> {
        if view.tx_hashes.len() > BLOCK_TXS_FETCHED_MAX {
            return Ok(Err(format!(
                "{} transactions, over the {BLOCK_TXS_FETCHED_MAX} fetched per block",
                view.tx_hashes.len()
            )));
        }
        let fetched: Result<Vec<_>, Failure> = futures::stream::iter(view.tx_hashes.iter())
            .map(|hash| async move {
                match self.client.tx(hash).await {
                    Ok(tx) => Ok(Ok(tx)),
                    Err(ClientError::Api(error))
                        if matches!(error.code, ErrorCode::Forbidden | ErrorCode::NotFound) =>
                    {
                        Ok(Err(format!("transaction {hash}: {}", error.code.as_str())))
                    }
                    Err(other) => Err(Failure::from(other)),
                }
            })
            .buffered(TX_FETCHES_CONCURRENT)
            .try_collect()
            .await;
        let mut txs = Vec::with_capacity(view.tx_hashes.len());
        for answer in fetched? {
            let tx = match answer {
                Ok(tx) => tx,
                Err(why) => return Ok(Err(why)),
            };
            let Some(bytes) = tx.tx.as_deref() else {
                return Ok(Err(format!("transaction {}: the node sent no bytes", tx.tx_hash)));
            };
            let bytes = hex::decode(bytes).map_err(|_| {
                refused(
                    ErrorCode::BadHex,
                    format!("transaction {}: the node sent bytes that are not hex", tx.tx_hash),
                )
            })?;
            let signed = SignedTransaction::from_bytes(&bytes).map_err(Failure::refused)?;
            txs.push(signed);
        }
        Ok(Ok(Block {
            header: view.header.clone(),
            txs,
        }))
    }
}
