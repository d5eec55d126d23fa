//! The simulator's invariant checks, applied to every message an honest replica sends and every
//! batch it finalizes.
//!
//! The rules this module checks:
//! - agreement: no two honest replicas finalize different blocks at one height;
//! - no revert: each replica's finalized chain only grows, each batch linking to the last;
//! - every finalized batch carries a proof of finality that verifies on its own, with the
//!   validator set of the batch's epoch (what an observer holding only genesis runs);
//! - no honest double-sign: an honest validator never signs two proposals or two votes of one
//!   kind in a view of an epoch for different blocks, nor both nullify and finalize in a view.

use std::collections::BTreeMap;

use super::crypto::{TestHasher, TestVerifier};
use crate::codec::decode;
use crate::limits::MESSAGE_BYTES_MAX;
use crate::message::{FinalizedChain, Message, VoteKind};
use crate::types::{Anchor, Digest, Epoch, Height, ValidatorSet, View};

/// Reported violations are capped so a broken run stays readable.
const VIOLATIONS_KEPT_MAX: usize = 16;

/// One epoch's validator set as an observer knows it.
#[derive(Clone)]
pub(crate) struct EpochKeys {
    pub(crate) validators: ValidatorSet,
    pub(crate) verifier: TestVerifier,
}

pub(crate) struct Checker {
    chain_id: Vec<u8>,
    finalized: BTreeMap<Height, Digest>,
    /// (node, epoch, view, kind tag) -> digest signed
    signed: BTreeMap<(usize, Epoch, View, u8), Digest>,
    pub(crate) violations: Vec<String>,
}

impl Checker {
    pub(crate) fn new(chain_id: Vec<u8>) -> Checker {
        Checker {
            chain_id,
            finalized: BTreeMap::new(),
            signed: BTreeMap::new(),
            violations: Vec::new(),
        }
    }

    pub(crate) fn violation(&mut self, text: String) {
        if self.violations.len() < VIOLATIONS_KEPT_MAX {
            self.violations.push(text);
        }
    }

    /// Records what an honest node signed in a message it sent.
    pub(crate) fn observe_sent(&mut self, node: usize, index: u16, bytes: &[u8], now_ms: u64) {
        let Ok((epoch, message)) = decode(bytes, MESSAGE_BYTES_MAX) else {
            return self.violation(format!("t={now_ms}ms: honest node {node} sent undecodable bytes"));
        };
        let hasher = TestHasher;
        let (view, tag, digest) = match message {
            Message::Proposal(proposal) => (proposal.block.view, 0, proposal.block.digest(&hasher)),
            Message::Vote(vote) if vote.signer == index => (vote.view, vote.kind.tag(), vote.digest),
            _ => return,
        };
        self.record_signed(node, epoch, view, tag, digest, now_ms);
        let opposite = match tag {
            2 => Some(VoteKind::Finalize.tag()),
            3 => Some(VoteKind::Nullify.tag()),
            _ => None,
        };
        if opposite.is_some_and(|opposite| self.signed.contains_key(&(node, epoch, view, opposite))) {
            self.violation(format!(
                "t={now_ms}ms: honest node {node} signed both nullify and finalize in epoch {epoch} view {view}"
            ));
        }
    }

    fn record_signed(&mut self, node: usize, epoch: Epoch, view: View, tag: u8, digest: Digest, now_ms: u64) {
        match self.signed.get(&(node, epoch, view, tag)) {
            Some(known) if *known != digest => self.violation(format!(
                "t={now_ms}ms: honest node {node} double-signed kind {tag} in epoch {epoch} view {view}: {known:?} and {digest:?}"
            )),
            Some(_) => {}
            None => {
                self.signed.insert((node, epoch, view, tag), digest);
            }
        }
    }

    /// Checks one finalized batch of an honest node whose chain ended at `tip`, with the keys of
    /// the batch's epoch; returns the new tip.
    pub(crate) fn on_finalized(
        &mut self,
        who: &str,
        tip: &Anchor,
        chain: &FinalizedChain,
        epoch: Epoch,
        keys: &EpochKeys,
        now_ms: u64,
    ) -> Option<Anchor> {
        let verified = chain.verify(
            tip,
            &self.chain_id,
            epoch,
            &keys.validators,
            &keys.verifier,
            &TestHasher,
        );
        let new_tip = match verified {
            Ok(new_tip) => new_tip,
            Err(error) => {
                self.violation(format!(
                    "t={now_ms}ms: {who} finalized a batch that fails verification ({error}) after height {}",
                    tip.height
                ));
                return None;
            }
        };
        for block in &chain.blocks {
            let digest = block.digest(&TestHasher);
            match self.finalized.get(&block.height) {
                Some(known) if *known != digest => self.violation(format!(
                    "t={now_ms}ms: agreement: {who} finalized {digest:?} at height {} where another honest replica finalized {known:?}",
                    block.height
                )),
                Some(_) => {}
                None => {
                    self.finalized.insert(block.height, digest);
                }
            }
        }
        Some(new_tip)
    }
}
