//! An observer: follows the chain without a consensus key and never votes.
//!
//! The rule it keeps: nothing is executed before its finality is verified here, against the
//! genesis validator set (`FinalizedChain::verify`: the blocks extend our head one height at a
//! time, the headers link them to a block a quorum finalized, every signature checks). A batch
//! that fails is dropped and counted; the peer that served it is the transport's to punish.

use crate::chain::Chain;
use crate::driver::{CATCH_UP_BYTES_MAX, Event, NodeHasher, NodeVerifier, Transport, commit_batch, restore};
use crate::metrics::Stage;
use corridor_consensus::{self as consensus, Anchor, Message, ValidatorSet, VoteKind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// How often an observer asks a peer for blocks above its head, when no finalization it
/// hears of asks sooner.
const FOLLOW_POLL_MS: u64 = 200;

/// Why a served batch was not executed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Malformed,
    /// It does not extend our head (stale or from another chain).
    Unlinked,
    /// Its finality does not verify.
    Unproven(consensus::Error),
}

pub(crate) struct Follower<T: Transport> {
    chain: Arc<Chain>,
    transport: T,
    events: Receiver<Event>,
    verifier: NodeVerifier,
    hasher: NodeHasher,
    validators: ValidatorSet,
    anchor: Anchor,
    last_poll: Instant,
}

impl<T: Transport> Follower<T> {
    pub fn new(chain: Arc<Chain>, transport: T) -> (Follower<T>, Sender<Event>) {
        let genesis = chain.genesis();
        let hasher = NodeHasher(genesis.hash_algorithm);
        let verifier = NodeVerifier(genesis.validators.iter().map(|v| v.public_key.clone()).collect());
        let validators = ValidatorSet::new(genesis.validators.len()).expect("genesis validates the validator count");
        let (durable, _) = restore(&chain, &hasher);
        let (sender, events) = std::sync::mpsc::channel();
        let follower = Follower {
            chain,
            transport,
            events,
            verifier,
            hasher,
            validators,
            anchor: durable.anchor,
            last_poll: Instant::now() - Duration::from_millis(FOLLOW_POLL_MS),
        };
        (follower, sender)
    }

    pub fn run(mut self) {
        loop {
            if self.last_poll.elapsed() >= Duration::from_millis(FOLLOW_POLL_MS) {
                self.poll();
            }
            match self.events.recv_timeout(Duration::from_millis(FOLLOW_POLL_MS)) {
                Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Event::CatchUp { bytes, source }) => {
                    if let Err(refused) = self.follow(&bytes) {
                        tracing::warn!("a served batch was refused: {refused:?}");
                        if refused != Refused::Unlinked {
                            self.transport.refused_catch_up(source);
                        }
                        self.chain
                            .metrics
                            .consensus_messages_rejected
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                // A finalization above our head: ask now rather than at the next poll.
                Ok(Event::Message { bytes, .. }) => {
                    let finalized = matches!(
                        consensus::decode(&bytes, consensus::limits::MESSAGE_BYTES_MAX),
                        Ok((_, Message::Certificate(c))) if c.kind == VoteKind::Finalize && c.view > self.anchor.view
                    );
                    if finalized {
                        self.poll();
                    }
                }
                Ok(Event::TxsReady) | Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Ask for blocks above our head; also sweep what expired from the pool (an observer
    /// holds the transactions it forwards until a block commits them).
    fn poll(&mut self) {
        self.transport.request_catch_up(self.anchor.height);
        self.last_poll = Instant::now();
        self.chain.mempool.purge_expired(crate::chain::now_ms());
        if let Err(error) = self.chain.compact_journal() {
            panic!("{error}");
        }
    }

    /// Verify a served batch against our head and the validator set, then execute it.
    pub fn follow(&mut self, bytes: &[u8]) -> Result<(), Refused> {
        if self.chain.halted().is_some() {
            return Ok(());
        }
        let batch = {
            let _timer = self.chain.metrics.stages.time(Stage::Decode);
            consensus::decode_chain(bytes, CATCH_UP_BYTES_MAX)
        }
        .map_err(|_| Refused::Malformed)?;
        if batch
            .blocks
            .first()
            .is_none_or(|block| block.height != self.anchor.height + 1)
        {
            return Err(Refused::Unlinked);
        }
        let genesis = self.chain.genesis();
        let verifying = self.chain.metrics.stages.time(Stage::Consensus);
        let anchor = batch
            .verify(
                &self.anchor,
                genesis.chain_id.as_bytes(),
                0,
                &self.validators,
                &self.verifier,
                &self.hasher,
            )
            .map_err(Refused::Unproven)?;
        drop(verifying);
        match commit_batch(&self.chain, &self.hasher, &batch) {
            Ok(_) => self.anchor = anchor,
            Err(why) => self.chain.halt(why),
        }
        Ok(())
    }
}
