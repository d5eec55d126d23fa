//! Block production for a single validator (`corridord dev`, n = 1).
//!
//! It stands where BFT consensus will stand: it asks the `Application` for a proposal, checks
//! it as any validator would, signs the block hash as the (sole) quorum, and hands the block
//! with its certificate back to be finalized. A block is cut every `interval`, or at once when
//! a full block's worth of transactions is ready.

use crate::chain::{Application, Chain, now_ms};
use corridor_sdk::block::CertificateSignature;
use corridor_sdk::{AccountId, Certificate, HashAlgorithm, PrivateKey};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub(crate) struct DevProducer {
    pub validator: AccountId,
    pub key: PrivateKey,
    pub chain_id: String,
    pub hash_algorithm: HashAlgorithm,
    pub interval: Duration,
}

/// Transactions expired in the mempool are swept at most this often.
const PURGE_INTERVAL_MS: u64 = 1_000;

impl DevProducer {
    /// Produce blocks until `stop` is set. Runs on its own thread: execution and fsync block.
    pub fn run(self, chain: Arc<Chain>, stop: Arc<AtomicBool>) {
        let app: &dyn Application = chain.as_ref();
        let mut last_purge_ms = 0;
        while !stop.load(Ordering::Relaxed) {
            let now = now_ms();
            if now >= last_purge_ms + PURGE_INTERVAL_MS {
                chain.mempool.purge_expired(now);
                if let Err(error) = chain.compact_journal() {
                    panic!("{error}");
                }
                last_purge_ms = now;
            }
            match app.propose(&self.validator, now) {
                Some(block) => {
                    // Our own proposal, from verified mempool transactions: checking it again
                    // re-hashes every transaction, so release builds skip it; tests keep it.
                    if cfg!(debug_assertions)
                        && let Err(error) = app.verify_proposal(&block, now_ms())
                    {
                        panic!("the dev producer built an invalid block: {error}");
                    }
                    let block_hash = block.header.hash(self.hash_algorithm);
                    let message = Certificate::signing_bytes(&self.chain_id, block.header.height, &block_hash);
                    let certificate = Certificate {
                        height: block.header.height,
                        block_hash,
                        signatures: vec![CertificateSignature {
                            validator: self.validator.clone(),
                            signature: self.key.sign(&message),
                        }],
                    };
                    if let Err(error) = app.finalize(block, certificate) {
                        panic!("finalizing our own block failed: {error}");
                    }
                    chain.wakeup.wait(self.interval);
                }
                None => chain.wakeup.wait(self.interval),
            }
        }
    }
}
