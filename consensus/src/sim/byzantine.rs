//! Byzantine behaviours for the simulator: what a faulty validator with its own key can do.
//!
//! The rule this module keeps: an adversary only signs with its own key; it never reads another
//! validator's secret, so every attack here is one a real faulty validator could mount.

use std::collections::{BTreeMap, BTreeSet};

use super::crypto::{TestHasher, TestSigner};
use super::rng::Rng;
use crate::codec::{decode, encode};
use crate::limits::MESSAGE_BYTES_MAX;
use crate::message::{Message, Proposal, Vote, VoteKind, signing_bytes};
use crate::types::{Block, Digest, Signer, ValidatorIndex, View};

/// What a faulty validator does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Behaviour {
    Honest,
    /// Two honest instances sharing one key and index.
    Twin,
    /// Runs the protocol, but as leader sends conflicting proposals to different peers or
    /// proposes a fork off its parent's parent, and withholds its finalize votes.
    Equivocator,
    /// Signs notarize, finalize and nullify for every block and view it sees.
    VoteAll,
    /// Sends garbage and mangled copies of what it receives.
    Garbage,
}

impl Behaviour {
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Honest => "honest",
            Behaviour::Twin => "twins",
            Behaviour::Equivocator => "equivocator",
            Behaviour::VoteAll => "vote-all",
            Behaviour::Garbage => "garbage",
        }
    }

    pub fn is_honest(self) -> bool {
        self == Behaviour::Honest
    }
}

/// A faulty validator's memory and key.
pub(crate) struct Adversary {
    pub(crate) index: ValidatorIndex,
    signer: TestSigner,
    chain_id: Vec<u8>,
    seen: BTreeMap<Digest, Block>,
    voted: BTreeSet<(View, Digest)>,
    nullified: BTreeSet<View>,
}

/// (recipient or None for everyone, bytes)
pub(crate) type Outgoing = Vec<(Option<ValidatorIndex>, Vec<u8>)>;

impl Adversary {
    pub(crate) fn new(index: ValidatorIndex, signer: TestSigner, chain_id: Vec<u8>) -> Adversary {
        Adversary {
            index,
            signer,
            chain_id,
            seen: BTreeMap::new(),
            voted: BTreeSet::new(),
            nullified: BTreeSet::new(),
        }
    }

    fn vote(&self, kind: VoteKind, view: View, digest: Digest) -> Vec<u8> {
        let bytes = signing_bytes(&self.chain_id, kind.tag(), view, &digest);
        let vote = Vote {
            kind,
            view,
            digest,
            signer: self.index,
            signature: self.signer.sign(&bytes),
        };
        encode(&Message::Vote(vote))
    }

    fn propose(&self, block: Block) -> (Digest, Vec<u8>) {
        let digest = block.digest(&TestHasher);
        let bytes = Proposal::signing_bytes(&self.chain_id, block.view, &digest);
        let proposal = Proposal {
            block,
            signature: self.signer.sign(&bytes),
        };
        (digest, encode(&Message::Proposal(proposal)))
    }

    /// Remembers blocks it hears about, to build forks from.
    pub(crate) fn observe(&mut self, bytes: &[u8]) -> Option<Message> {
        let message = decode(bytes, MESSAGE_BYTES_MAX).ok()?;
        match &message {
            Message::Proposal(proposal) => {
                let block = proposal.block.clone();
                self.seen.insert(block.digest(&TestHasher), block);
            }
            Message::Notarized { block, .. } => {
                self.seen.insert(block.digest(&TestHasher), block.clone());
            }
            _ => {}
        }
        Some(message)
    }

    /// Rewrites an equivocator's outgoing broadcast.
    pub(crate) fn equivocate(&mut self, bytes: Vec<u8>, peers: &[ValidatorIndex], rng: &mut Rng) -> Outgoing {
        let Ok(message) = decode(&bytes, MESSAGE_BYTES_MAX) else {
            return vec![(None, bytes)];
        };
        match message {
            Message::Vote(vote) if vote.kind == VoteKind::Finalize => Vec::new(),
            Message::Proposal(proposal) => self.conflicting_proposals(proposal, bytes, peers, rng),
            _ => vec![(None, bytes)],
        }
    }

    fn conflicting_proposals(
        &mut self,
        proposal: Proposal,
        original: Vec<u8>,
        peers: &[ValidatorIndex],
        rng: &mut Rng,
    ) -> Outgoing {
        let block = proposal.block;
        let view = block.view;
        let mut payload = block.payload.clone();
        payload.extend_from_slice(&rng.next_u64().to_le_bytes());
        let parent = self.seen.get(&block.parent).cloned();
        if let Some(parent) = parent.filter(|_| rng.percent(50)) {
            let fork = Block {
                view,
                height: parent.height,
                parent_view: parent.parent_view,
                parent: parent.parent,
                payload,
            };
            let (digest, bytes) = self.propose(fork);
            return vec![(None, bytes), (None, self.vote(VoteKind::Notarize, view, digest))];
        }
        let other = Block { payload, ..block };
        let (digest, bytes) = self.propose(other);
        let vote = self.vote(VoteKind::Notarize, view, digest);
        let mut outgoing = Outgoing::new();
        for (position, peer) in peers.iter().enumerate() {
            if position % 2 == 0 {
                outgoing.push((Some(*peer), original.clone()));
            } else {
                outgoing.push((Some(*peer), bytes.clone()));
                outgoing.push((Some(*peer), vote.clone()));
            }
        }
        outgoing
    }

    /// A vote-for-everything validator's answer to what it hears.
    pub(crate) fn vote_all(&mut self, message: &Message) -> Outgoing {
        let (view, digest) = match message {
            Message::Proposal(proposal) => (proposal.block.view, proposal.block.digest(&TestHasher)),
            Message::Vote(vote) if vote.kind != VoteKind::Nullify => (vote.view, vote.digest),
            Message::Vote(vote) => (vote.view, Digest::default()),
            _ => return Vec::new(),
        };
        let mut outgoing = Outgoing::new();
        if self.nullified.insert(view) {
            outgoing.push((None, self.vote(VoteKind::Nullify, view, Digest::default())));
        }
        if digest != Digest::default() && self.voted.insert((view, digest)) {
            outgoing.push((None, self.vote(VoteKind::Notarize, view, digest)));
            outgoing.push((None, self.vote(VoteKind::Finalize, view, digest)));
        }
        outgoing
    }
}

/// Garbage bytes: random, or a mangled copy of a real message.
pub(crate) fn garbage(received: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = received.to_vec();
    match rng.below(5) {
        0 => {
            let length = rng.below(300);
            (0..length).map(|_| rng.next_u64().to_le_bytes()[0]).collect()
        }
        1 => {
            for _ in 0..rng.range(1, 4) {
                if !bytes.is_empty() {
                    let position = rng.index(bytes.len());
                    bytes[position] ^= rng.next_u64().to_le_bytes()[0] | 1;
                }
            }
            bytes
        }
        2 => {
            let keep = if bytes.is_empty() { 0 } else { rng.index(bytes.len()) };
            bytes.truncate(keep);
            bytes
        }
        3 => {
            bytes.extend_from_slice(&rng.next_u64().to_le_bytes()[..rng.index(8) + 1]);
            bytes
        }
        _ => {
            let tag = rng.next_u64().to_le_bytes()[0] % 7;
            let mut huge = vec![1, tag];
            huge.extend_from_slice(&[0xff; 64]);
            huge
        }
    }
}
