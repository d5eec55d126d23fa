//! Byzantine behaviours for the simulator: what a faulty validator with its own key can do.
//!
//! The rule this module keeps: an adversary signs only with keys a real faulty party could hold
//! (its own, and the keys of outsiders: nodes that are not validators of the epoch, such as a
//! removed validator colluding with it); it never reads an honest validator's secret, so every
//! attack here is one a real faulty validator could mount.

use std::collections::{BTreeMap, BTreeSet};

use super::crypto::{TestHasher, TestSigner};
use super::rng::Rng;
use crate::codec::{decode, encode};
use crate::limits::{CATCH_UP_BLOCKS_MAX, MESSAGE_BYTES_MAX};
use crate::message::{Certificate, Endorsement, FinalizedChain, Message, Proposal, Vote, VoteKind, signing_bytes};
use crate::types::{Block, Digest, Epoch, Signature, Signer, ValidatorIndex, ValidatorSet, View};

/// What a faulty validator does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Behaviour {
    Honest,
    /// Two honest instances sharing one key and index, put on opposite sides of partitions.
    Twin,
    /// Runs the protocol, but as leader sends conflicting proposals to different peers or
    /// proposes a fork off its parent's parent, and withholds its finalize votes.
    Equivocator,
    /// Signs notarize, finalize and nullify for every block and view it sees.
    VoteAll,
    /// Sends garbage and mangled copies of what it receives.
    Garbage,
    /// Runs the protocol and also crafts well-formed but invalid messages of every kind:
    /// empty, short and unsigned certificates, wrong kinds and views, outsiders' signatures,
    /// certificates for unknown blocks, replays from other views, epochs and chains, and
    /// (as leader) a proposal followed by a forged notarization of it.
    Forger,
}

impl Behaviour {
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Honest => "honest",
            Behaviour::Twin => "twins",
            Behaviour::Equivocator => "equivocator",
            Behaviour::VoteAll => "vote-all",
            Behaviour::Garbage => "garbage",
            Behaviour::Forger => "forger",
        }
    }

    pub fn is_honest(self) -> bool {
        self == Behaviour::Honest
    }

    /// Whether the slot runs a replica (honestly or as the base of its attack).
    pub(crate) fn runs_replica(self) -> bool {
        matches!(
            self,
            Behaviour::Honest | Behaviour::Twin | Behaviour::Equivocator | Behaviour::Forger
        )
    }
}

/// (recipient validator index in the sender's epoch, or None for everyone; bytes)
pub(crate) type Outgoing = Vec<(Option<ValidatorIndex>, Vec<u8>)>;

/// A faulty validator's memory and keys for the current epoch.
pub(crate) struct Adversary {
    pub(crate) index: ValidatorIndex,
    signer: TestSigner,
    /// Keys of nodes outside the epoch's validator set, by the index the verifier gives them.
    outsiders: Vec<(ValidatorIndex, TestSigner)>,
    chain_id: Vec<u8>,
    pub(crate) epoch: Epoch,
    validators: ValidatorSet,
    seen: BTreeMap<Digest, Block>,
    voted: BTreeSet<(View, Digest)>,
    nullified: BTreeSet<View>,
    /// Real messages heard, to replay and rewrite.
    heard: Vec<Message>,
    /// The conflicting proposals of its latest view as leader, to send again and again.
    versions: Vec<Vec<u8>>,
    /// Extra messages sent in the view it last acted in (forgeries, re-sent proposals).
    spent: (View, u32),
}

/// Extra messages (forgeries, re-sent proposals) an adversary sends per view, so that f of them
/// at n = 100 stay a test of the protocol rather than of the simulator's memory.
const ACTIONS_PER_VIEW_MAX: u32 = 8;

/// Messages an adversary remembers to replay.
const HEARD_KEPT_MAX: usize = 64;

impl Adversary {
    pub(crate) fn new(
        index: ValidatorIndex,
        signer: TestSigner,
        outsiders: Vec<(ValidatorIndex, TestSigner)>,
        chain_id: Vec<u8>,
        epoch: Epoch,
        validators: ValidatorSet,
    ) -> Adversary {
        Adversary {
            index,
            signer,
            outsiders,
            chain_id,
            epoch,
            validators,
            seen: BTreeMap::new(),
            voted: BTreeSet::new(),
            nullified: BTreeSet::new(),
            heard: Vec::new(),
            versions: Vec::new(),
            spent: (0, 0),
        }
    }

    fn sign_as(&self, signer: &TestSigner, kind: VoteKind, view: View, digest: Digest, since: View) -> Signature {
        signer.sign(&signing_bytes(
            &self.chain_id,
            self.epoch,
            kind.tag(),
            view,
            &digest,
            since,
        ))
    }

    fn vote(&self, kind: VoteKind, view: View, digest: Digest) -> Vec<u8> {
        let since = if kind == VoteKind::Nullify { view - 1 } else { 0 };
        let vote = Vote {
            kind,
            view,
            digest,
            since,
            signer: self.index,
            signature: self.sign_as(&self.signer, kind, view, digest, since),
        };
        encode(self.epoch, &Message::Vote(vote))
    }

    fn propose(&self, block: Block) -> (Digest, Vec<u8>) {
        let digest = block.digest(&TestHasher);
        let bytes = Proposal::signing_bytes(&self.chain_id, self.epoch, block.view, &digest);
        let proposal = Proposal {
            block,
            signature: self.signer.sign(&bytes),
        };
        (digest, encode(self.epoch, &Message::Proposal(proposal)))
    }

    /// Remembers blocks and messages it hears about, to build forks and forgeries from.
    pub(crate) fn observe(&mut self, bytes: &[u8]) -> Option<Message> {
        let (epoch, message) = decode(bytes, MESSAGE_BYTES_MAX).ok()?;
        if epoch != self.epoch {
            return None;
        }
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
        if self.heard.len() >= HEARD_KEPT_MAX {
            self.heard.remove(0);
        }
        self.heard.push(message.clone());
        Some(message)
    }

    /// Rewrites an equivocator's outgoing broadcast.
    pub(crate) fn equivocate(&mut self, bytes: Vec<u8>, peers: &[ValidatorIndex], rng: &mut Rng) -> Outgoing {
        let Ok((_, message)) = decode(&bytes, MESSAGE_BYTES_MAX) else {
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
                epoch: self.epoch,
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
        self.versions = vec![original.clone(), bytes.clone()];
        // Then each side is sent the other side's proposal too, arriving later.
        for (position, peer) in peers.iter().enumerate() {
            let late = if position % 2 == 0 { &bytes } else { &original };
            outgoing.push((Some(*peer), late.clone()));
        }
        outgoing
    }

    /// Outsiders' votes for everything in a proposal it hears (notarize, finalize and nullify,
    /// signed with keys of nodes outside the validator set), and its own finalize vote for it.
    pub(crate) fn outsider_votes(&self, message: &Message) -> Outgoing {
        let Message::Proposal(proposal) = message else {
            return Vec::new();
        };
        let (view, digest) = (proposal.block.view, proposal.block.digest(&TestHasher));
        let mut outgoing = Outgoing::new();
        let own = (self.index, &self.signer);
        let keys = self.outsiders.iter().map(|(index, key)| (*index, key)).chain([own]);
        for (index, key) in keys {
            let own_key = index == self.index;
            for (kind, digest, since) in [
                (VoteKind::Notarize, digest, 0),
                (VoteKind::Finalize, digest, 0),
                (VoteKind::Nullify, Digest::default(), view - 1),
            ] {
                if own_key && kind != VoteKind::Finalize {
                    continue;
                }
                let vote = Vote {
                    kind,
                    view,
                    digest,
                    since,
                    signer: index,
                    signature: self.sign_as(key, kind, view, digest, since),
                };
                outgoing.push((None, encode(self.epoch, &Message::Vote(vote))));
            }
        }
        outgoing
    }

    /// One of its conflicting proposals again, to a random peer: a replica that crashed after
    /// voting for one of them and lost its memory may now see the other.
    pub(crate) fn resend(&mut self, view: View, peers: &[ValidatorIndex], rng: &mut Rng) -> Outgoing {
        if self.versions.is_empty() || peers.is_empty() || !self.may_act(view) {
            return Vec::new();
        }
        let version = self.versions[rng.index(self.versions.len())].clone();
        vec![(Some(peers[rng.index(peers.len())]), version)]
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
        if view > 0 && self.nullified.insert(view) {
            outgoing.push((None, self.vote(VoteKind::Nullify, view, Digest::default())));
        }
        if digest != Digest::default() && self.voted.insert((view, digest)) {
            outgoing.push((None, self.vote(VoteKind::Notarize, view, digest)));
            outgoing.push((None, self.vote(VoteKind::Finalize, view, digest)));
        }
        outgoing
    }

    /// A certificate whose every endorsement is signed by whoever this adversary can sign as
    /// (itself and outsiders), padded to a quorum with garbage signatures of members.
    fn forged_certificate(&self, kind: VoteKind, view: View, digest: Digest, rng: &mut Rng) -> Certificate {
        let since = 0;
        let mut endorsements: BTreeMap<ValidatorIndex, Signature> = BTreeMap::new();
        endorsements.insert(self.index, self.sign_as(&self.signer, kind, view, digest, since));
        for (index, signer) in &self.outsiders {
            endorsements.insert(*index, self.sign_as(signer, kind, view, digest, since));
        }
        let mut member = 0;
        while endorsements.len() < self.validators.quorum() && (member as usize) < self.validators.count() {
            endorsements
                .entry(member)
                .or_insert_with(|| Signature(rng.next_u64().to_le_bytes().repeat(4)));
            member += 1;
        }
        Certificate {
            kind,
            view,
            digest,
            endorsements: endorsements
                .into_iter()
                .map(|(signer, signature)| Endorsement {
                    signer,
                    since,
                    signature,
                })
                .collect(),
        }
    }

    /// A certificate signed only by outsiders (non-members of the epoch) and this adversary.
    fn outsider_certificate(&self, kind: VoteKind, view: View, digest: Digest) -> Option<Certificate> {
        let mut signers: Vec<(ValidatorIndex, &TestSigner)> =
            self.outsiders.iter().map(|(index, signer)| (*index, signer)).collect();
        signers.push((self.index, &self.signer));
        signers.sort_by_key(|(index, _)| *index);
        let endorsements: Vec<Endorsement> = signers
            .into_iter()
            .map(|(signer, key)| Endorsement {
                signer,
                since: 0,
                signature: self.sign_as(key, kind, view, digest, 0),
            })
            .collect();
        (endorsements.len() >= self.validators.quorum()).then_some(Certificate {
            kind,
            view,
            digest,
            endorsements,
        })
    }

    /// Whether it may send one more extra message in `view`.
    pub(crate) fn may_act(&mut self, view: View) -> bool {
        if self.spent.0 != view {
            self.spent = (view, 0);
        }
        self.spent.1 += 1;
        self.spent.1 <= ACTIONS_PER_VIEW_MAX
    }

    /// Forged messages crafted from a message it heard: every one well-formed, none valid.
    pub(crate) fn forgeries(&mut self, current_view: View, rng: &mut Rng) -> Outgoing {
        let mut outgoing = Outgoing::new();
        if !self.may_act(current_view) {
            return outgoing;
        }
        let view = current_view.max(1);
        let digest = self
            .seen
            .keys()
            .next_back()
            .copied()
            .unwrap_or(Digest([rng.next_u64().to_le_bytes()[0]; 32]));
        let unknown = Digest(crate::sim::crypto::hash_bytes(rng.next_u64(), b"unknown").0);
        let epoch = self.epoch;
        let push =
            |outgoing: &mut Outgoing, epoch: Epoch, message: Message| outgoing.push((None, encode(epoch, &message)));
        match rng.below(12) {
            0 => {
                let kind = [VoteKind::Notarize, VoteKind::Nullify, VoteKind::Finalize][rng.index(3)];
                let digest = if kind == VoteKind::Nullify {
                    Digest::default()
                } else {
                    digest
                };
                push(
                    &mut outgoing,
                    epoch,
                    Message::Certificate(Certificate {
                        kind,
                        view,
                        digest,
                        endorsements: Vec::new(),
                    }),
                );
            }
            1 => {
                let mut short = self.forged_certificate(VoteKind::Finalize, view, digest, rng);
                short.endorsements.truncate(self.validators.quorum().saturating_sub(1));
                push(&mut outgoing, epoch, Message::Certificate(short));
            }
            2 => {
                let kind = [VoteKind::Notarize, VoteKind::Finalize][rng.index(2)];
                push(
                    &mut outgoing,
                    epoch,
                    Message::Certificate(self.forged_certificate(kind, view, digest, rng)),
                );
            }
            3 => {
                if let Some(certificate) = self.outsider_certificate(VoteKind::Finalize, view, unknown) {
                    push(&mut outgoing, epoch, Message::Certificate(certificate));
                }
                if let Some(certificate) = self.outsider_certificate(VoteKind::Notarize, view, digest) {
                    push(&mut outgoing, epoch, Message::Certificate(certificate));
                }
            }
            4 => {
                // A real certificate relabelled: another kind, or another view.
                let real = self.heard.iter().rev().find_map(|message| match message {
                    Message::Certificate(certificate) => Some(certificate.clone()),
                    Message::Notarized { notarization, .. } => Some(notarization.clone()),
                    _ => None,
                });
                if let Some(mut certificate) = real {
                    if rng.percent(50) && certificate.kind != VoteKind::Nullify {
                        certificate.kind = match certificate.kind {
                            VoteKind::Notarize => VoteKind::Finalize,
                            _ => VoteKind::Notarize,
                        };
                    } else {
                        certificate.view += 1 + rng.below(3);
                    }
                    push(&mut outgoing, epoch, Message::Certificate(certificate));
                }
            }
            5 => {
                // Notarized with a certificate for an unknown block, or with no signatures.
                if let Some(block) = self.seen.values().next_back().cloned() {
                    let mut notarization = self.forged_certificate(VoteKind::Notarize, block.view, unknown, rng);
                    if rng.percent(50) {
                        notarization.digest = block.digest(&TestHasher);
                        notarization.endorsements.clear();
                    }
                    push(&mut outgoing, epoch, Message::Notarized { block, notarization });
                }
            }
            6 => {
                // A replay: a real vote moved to another view (its signature no longer fits).
                let real = self.heard.iter().rev().find_map(|message| match message {
                    Message::Vote(vote) => Some(vote.clone()),
                    _ => None,
                });
                if let Some(mut vote) = real {
                    vote.view += 1 + rng.below(5);
                    push(&mut outgoing, epoch, Message::Vote(vote));
                }
            }
            7 => {
                // A real message replayed as it was: harmless, and must stay harmless.
                if !self.heard.is_empty() {
                    let message = self.heard[rng.index(self.heard.len())].clone();
                    push(&mut outgoing, epoch, message);
                }
            }
            8 => {
                // Own valid-looking votes in another epoch or for another chain.
                let mut vote_bytes = self.vote(VoteKind::Notarize, view, digest);
                if rng.percent(50) {
                    let other = epoch + 1 + rng.below(2);
                    vote_bytes[1..9].copy_from_slice(&other.to_le_bytes());
                    outgoing.push((None, vote_bytes));
                } else {
                    let signature = self
                        .signer
                        .sign(&signing_bytes(b"another-chain", epoch, 1, view, &digest, 0));
                    let vote = Vote {
                        kind: VoteKind::Notarize,
                        view,
                        digest,
                        since: 0,
                        signer: self.index,
                        signature,
                    };
                    push(&mut outgoing, epoch, Message::Vote(vote));
                }
            }
            9 => {
                // A vote signed as another member (a signature that cannot verify) or as an
                // outsider.
                let (signer, key) = match self.outsiders.first() {
                    Some((index, key)) if rng.percent(50) => (*index, *key),
                    _ => ((self.index + 1) % self.validators.count() as u16, self.signer),
                };
                let signature = self.sign_as(&key, VoteKind::Finalize, view, digest, 0);
                let vote = Vote {
                    kind: VoteKind::Finalize,
                    view,
                    digest,
                    since: 0,
                    signer,
                    signature,
                };
                push(&mut outgoing, epoch, Message::Vote(vote));
            }
            10 => {
                // A nullify vote whose claim reaches further back than any proof, and a
                // nullification whose claims lie.
                let since = 0;
                let vote = Vote {
                    kind: VoteKind::Nullify,
                    view,
                    digest: Digest::default(),
                    since,
                    signer: self.index,
                    signature: self.sign_as(&self.signer, VoteKind::Nullify, view, Digest::default(), since),
                };
                push(&mut outgoing, epoch, Message::Vote(vote));
                let mut nullification = self.forged_certificate(VoteKind::Nullify, view, Digest::default(), rng);
                for endorsement in &mut nullification.endorsements {
                    endorsement.since = 0;
                }
                push(&mut outgoing, epoch, Message::Certificate(nullification));
            }
            _ => {
                // Unasked blocks and far-ahead requests.
                if let Some(block) = self.seen.values().next().cloned() {
                    push(&mut outgoing, epoch, Message::Block(block));
                }
                push(&mut outgoing, epoch, Message::Request { view: view + 1_000 });
            }
        }
        outgoing
    }

    /// As the leader of `view` with a real proposal in hand, forges its notarization (the
    /// attack that made honest replicas sign finalize on a forged certificate).
    pub(crate) fn forged_notarization(&self, proposal: &Proposal, rng: &mut Rng) -> Vec<u8> {
        let block = proposal.block.clone();
        let digest = block.digest(&TestHasher);
        let notarization = if rng.percent(50) {
            Certificate {
                kind: VoteKind::Notarize,
                view: block.view,
                digest,
                endorsements: Vec::new(),
            }
        } else {
            self.forged_certificate(VoteKind::Notarize, block.view, digest, rng)
        };
        encode(self.epoch, &Message::Notarized { block, notarization })
    }
}

/// What a Byzantine peer serves when asked for catch-up: a tampered copy of a real batch.
pub(crate) fn tampered_chain(real: &FinalizedChain, rng: &mut Rng) -> FinalizedChain {
    let mut chain = real.clone();
    match rng.below(5) {
        0 => {
            let position = rng.index(chain.blocks.len());
            chain.blocks[position].payload.push(0xee);
        }
        1 => chain.finalization.endorsements.truncate(1),
        2 => {
            for endorsement in &mut chain.finalization.endorsements {
                endorsement.signature = Signature(vec![0; 32]);
            }
        }
        3 => {
            let length = chain.blocks.len();
            chain.blocks.truncate(length.saturating_sub(1).max(1));
            if length == 1 {
                chain.blocks[0].height += 1;
            }
        }
        _ => {
            let first = chain.blocks[0].clone();
            chain.blocks = vec![first; CATCH_UP_BLOCKS_MAX + 1];
        }
    }
    chain
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
            let tag = rng.next_u64().to_le_bytes()[0] % 8;
            let mut huge = vec![2, 0, 0, 0, 0, 0, 0, 0, 0, tag];
            huge.extend_from_slice(&[0xff; 64]);
            huge
        }
    }
}
