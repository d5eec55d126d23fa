//! The simulator's invariant checks, applied to every message an honest replica sends and every
//! batch it finalizes.
//!
//! The rules this module checks:
//! - agreement: no two honest replicas finalize different blocks at one height;
//! - no revert: each replica's finalized chain only grows, each batch linking to the last;
//! - every finalized batch carries a finalization certificate valid on its own;
//! - no honest double-sign: an honest validator never signs two proposals or two votes of one
//!   kind in a view for different blocks, nor both nullify and finalize in a view.

use std::collections::BTreeMap;

use super::crypto::{TestHasher, TestVerifier};
use crate::codec::decode;
use crate::limits::MESSAGE_BYTES_MAX;
use crate::message::{FinalizedChain, Message, VoteKind};
use crate::types::{Anchor, Digest, Height, ValidatorIndex, ValidatorSet, View};

/// Reported violations are capped so a broken run stays readable.
const VIOLATIONS_KEPT_MAX: usize = 16;

pub(crate) struct Checker {
    chain_id: Vec<u8>,
    validators: ValidatorSet,
    verifier: TestVerifier,
    finalized: BTreeMap<Height, Digest>,
    signed: BTreeMap<(ValidatorIndex, View, u8), Digest>,
    pub(crate) violations: Vec<String>,
}

impl Checker {
    pub(crate) fn new(chain_id: Vec<u8>, validators: ValidatorSet, verifier: TestVerifier) -> Checker {
        Checker {
            chain_id,
            validators,
            verifier,
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

    /// Records what an honest validator signed in a message it sent.
    pub(crate) fn observe_sent(&mut self, sender: ValidatorIndex, bytes: &[u8], now_ms: u64) {
        let Ok(message) = decode(bytes, MESSAGE_BYTES_MAX) else {
            return self.violation(format!("t={now_ms}ms: honest {sender} sent undecodable bytes"));
        };
        let hasher = TestHasher;
        let (view, tag, digest) = match message {
            Message::Proposal(proposal) => (proposal.block.view, 0, proposal.block.digest(&hasher)),
            Message::Vote(vote) if vote.signer == sender => (vote.view, vote.kind.tag(), vote.digest),
            _ => return,
        };
        self.record_signed(sender, view, tag, digest, now_ms);
        let opposite = match tag {
            2 => Some(VoteKind::Finalize.tag()),
            3 => Some(VoteKind::Nullify.tag()),
            _ => None,
        };
        if opposite.is_some_and(|opposite| self.signed.contains_key(&(sender, view, opposite))) {
            self.violation(format!(
                "t={now_ms}ms: honest validator {sender} signed both nullify and finalize in view {view}"
            ));
        }
    }

    fn record_signed(&mut self, sender: ValidatorIndex, view: View, tag: u8, digest: Digest, now_ms: u64) {
        match self.signed.get(&(sender, view, tag)) {
            Some(known) if *known != digest => self.violation(format!(
                "t={now_ms}ms: honest validator {sender} double-signed kind {tag} in view {view}: {known:?} and {digest:?}"
            )),
            Some(_) => {}
            None => {
                self.signed.insert((sender, view, tag), digest);
            }
        }
    }

    /// Checks one finalized batch of an honest replica whose chain ended at `tip`; returns the
    /// new tip.
    pub(crate) fn on_finalized(
        &mut self,
        who: &str,
        tip: &Anchor,
        chain: &FinalizedChain,
        now_ms: u64,
    ) -> Option<Anchor> {
        let verified = chain.verify(tip, &self.chain_id, &self.validators, &self.verifier, &TestHasher);
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
