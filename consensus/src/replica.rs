//! The replica: one validator's protocol state machine. Inputs in, effects out, no I/O.
//!
//! The rules this module keeps:
//! - persist before you speak: every signed proposal or vote is recorded in `SafetyState`,
//!   handed out as `Effect::Persist`, and leaves the replica (or counts toward its own quorums)
//!   only after `Input::Persisted` acknowledges that sequence number;
//! - a proposal is voted for only if it extends a justified parent: the finalized anchor or a
//!   notarized block, with a nullification for every view in between (`justify`);
//! - blocks are delivered exactly once, in height order, each batch with the finalization
//!   certificate of its last block, and never a block that conflicts with the anchor.

use std::collections::BTreeMap;

use crate::codec::{decode, encode};
use crate::evidence::{Evidence, votes_conflict};
use crate::limits::{
    CATCH_UP_RETRY_VIEWS, CHAIN_ID_BYTES_MAX, EVIDENCE_MAX, MESSAGE_BYTES_MAX, PAYLOAD_BYTES_MAX,
    REQUESTS_PER_PROPOSAL_MAX, TIMEOUT_BACKOFF_SHIFT_MAX, VIEWS_AHEAD_MAX, VIEWS_KEPT_MAX,
};
use crate::message::{Certificate, FinalizedChain, Message, Proposal, Vote, VoteKind};
use crate::safety::SafetyState;
use crate::types::{Anchor, Block, Config, Digest, Hasher, Height, Signer, ValidatorIndex, Verifier, View};

/// What the environment tells a replica.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Input {
    /// Sent once after construction (also after a restart).
    Start,
    /// Bytes from a peer; `from` is the transport-authenticated sender, used only for replies.
    Message { from: ValidatorIndex, bytes: Vec<u8> },
    /// A timer scheduled by `Effect::ScheduleTimeout` fired.
    Timeout { timer: u64 },
    /// The application's payload for `Effect::RequestProposal`.
    Proposal { view: View, payload: Vec<u8> },
    /// The application's verdict for `Effect::Validate`.
    Validated { view: View, digest: Digest, valid: bool },
    /// Everything up to `sequence` from `Effect::Persist` is durable.
    Persisted { sequence: u64 },
    /// Finalized blocks fetched by the node's block sync after `Effect::RequestCatchUp`.
    CatchUp(FinalizedChain),
}

/// What a replica asks the environment to do, in order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Effect {
    Send {
        to: ValidatorIndex,
        bytes: Vec<u8>,
    },
    /// Send to every other validator (and to observers).
    Broadcast {
        bytes: Vec<u8>,
    },
    /// Deliver `Input::Timeout { timer }` after `after_ms`; only the latest timer matters.
    ScheduleTimeout {
        timer: u64,
        after_ms: u64,
    },
    /// Write `state` durably, in sequence order, then acknowledge with `Input::Persisted`.
    /// `certificate` is the certificate that opened `state.view` (liveness only: a restarted
    /// replica re-sends it so peers still in the previous view can follow); store it with
    /// `state` and hand both back through `Durable` on restart.
    Persist {
        sequence: u64,
        state: SafetyState,
        certificate: Option<Certificate>,
    },
    /// Keep this block durably until it is finalized or below the anchor, and hand it back in
    /// `Durable::blocks` on restart; it must be durable no later than the next `Persist`. A
    /// validator stores every block it votes for, so any notarized block survives crashes at
    /// at least one honest validator and peers can fetch it.
    StoreBlock(Block),
    /// Keep this notarization or nullification durably until its view is below the anchor, and
    /// hand it back in `Durable::certificates` on restart; it must be durable no later than the
    /// next `Persist`. Proposals are justified by these, so a validator that moved past a view
    /// keeps the certificate that let it.
    StoreCertificate(Certificate),
    /// This replica leads `view`: build a payload on `parent` at `height`.
    RequestProposal {
        view: View,
        height: Height,
        parent: Digest,
    },
    /// Check a proposed payload; answer with `Input::Validated`.
    Validate {
        view: View,
        height: Height,
        digest: Digest,
        payload: Vec<u8>,
    },
    /// Blocks that are final, in height order, to execute and store.
    Finalized(FinalizedChain),
    /// A finalization is known for a block this replica lacks: fetch finalized blocks above
    /// `after_height` from a peer and hand them back with `Input::CatchUp`.
    RequestCatchUp {
        after_height: Height,
    },
    /// A validator equivocated; also kept in `Replica::evidence`.
    Evidence(Evidence),
}

/// What a validator must keep across restarts: the safety state and entry certificate of its
/// last acknowledged `Effect::Persist`, and its last finalized block.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Durable {
    pub safety: SafetyState,
    pub certificate: Option<Certificate>,
    pub anchor: Anchor,
    /// Blocks from `Effect::StoreBlock` above the anchor.
    pub blocks: Vec<Block>,
    /// Certificates from `Effect::StoreCertificate` above the anchor's view.
    pub certificates: Vec<Certificate>,
    /// The finalization certificate delivered with the anchor block (None at genesis); lagging
    /// peers are sent it so they know to catch up.
    pub finalization: Option<Certificate>,
}

impl Durable {
    /// A validator's first start on a chain with this genesis block digest.
    pub fn genesis(genesis: Digest) -> Durable {
        let anchor = Anchor::genesis(genesis);
        Durable {
            safety: SafetyState::genesis(),
            certificate: None,
            anchor,
            blocks: Vec::new(),
            certificates: Vec::new(),
            finalization: None,
        }
    }
}

/// Counters for operators and tests.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Stats {
    pub messages_rejected: u64,
    /// Valid finalizations seen for blocks that conflict with this replica's chain. Nonzero only
    /// if more than f validators are faulty (or a safety rule is broken).
    pub conflicting_finalizations: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum Validation {
    #[default]
    NotAsked,
    Asked,
    Valid,
    Invalid,
}

/// Whether a proposal extends a justified parent.
enum Justification {
    Ready,
    Missing(Vec<View>),
    Invalid,
}

#[derive(Default)]
struct ViewState {
    proposal: Option<(Digest, Proposal)>,
    validation: Validation,
    requested: bool,
    notarize: BTreeMap<ValidatorIndex, Vote>,
    nullify: BTreeMap<ValidatorIndex, Vote>,
    finalize: BTreeMap<ValidatorIndex, Vote>,
    notarization: Option<Certificate>,
    nullification: Option<Certificate>,
    finalization: Option<Certificate>,
}

impl ViewState {
    fn certificate(&self, kind: VoteKind) -> Option<&Certificate> {
        match kind {
            VoteKind::Notarize => self.notarization.as_ref(),
            VoteKind::Nullify => self.nullification.as_ref(),
            VoteKind::Finalize => self.finalization.as_ref(),
        }
    }

    fn votes(&mut self, kind: VoteKind) -> &mut BTreeMap<ValidatorIndex, Vote> {
        match kind {
            VoteKind::Notarize => &mut self.notarize,
            VoteKind::Nullify => &mut self.nullify,
            VoteKind::Finalize => &mut self.finalize,
        }
    }
}

/// A signed message waiting for its safety state to be durable.
enum Held {
    Proposal(Proposal),
    Vote(Vote),
}

struct ProposalRequest {
    view: View,
    height: Height,
    parent_view: View,
    parent: Digest,
}

/// One validator's consensus state machine.
pub struct Replica<S: Signer, V: Verifier, H: Hasher> {
    config: Config,
    signer: S,
    verifier: V,
    hasher: H,
    safety: SafetyState,
    /// The safety state as last acknowledged durable.
    durable: SafetyState,
    persist_sequence: u64,
    persisted_sequence: u64,
    /// Signed messages waiting for persistence: (sequence, state that records them, message).
    held: Vec<(u64, SafetyState, Held)>,
    view: View,
    failed_views: u32,
    timeouts_in_view: u32,
    timer: u64,
    anchor: Anchor,
    anchor_finalization: Option<Certificate>,
    /// The certificate that ended the previous view.
    entry_certificate: Option<Certificate>,
    blocks: BTreeMap<Digest, Block>,
    views: BTreeMap<View, ViewState>,
    pending_finalization: Option<Certificate>,
    /// The view whose evidence last triggered a catch-up request.
    catch_up_requested: Option<View>,
    /// A block a pending finalization needs and peers were asked for.
    wanted_block: Option<Digest>,
    proposal_request: Option<ProposalRequest>,
    evidence: Vec<Evidence>,
    stats: Stats,
    effects: Vec<Effect>,
}

impl<S: Signer, V: Verifier, H: Hasher> Replica<S, V, H> {
    /// A replica that resumes from what was made durable (`Durable::genesis` on first start).
    pub fn new(config: Config, signer: S, verifier: V, hasher: H, durable: Durable) -> Replica<S, V, H> {
        let Durable {
            safety,
            certificate,
            anchor,
            blocks,
            certificates,
            finalization,
        } = durable;
        let anchor_finalization = finalization
            .filter(|finalization| finalization.view == anchor.view && finalization.digest == anchor.digest);
        let blocks = Self::restored_blocks(blocks, &anchor, &hasher);
        let views = Self::restored_views(certificates, &anchor);
        let (resume_view, entry_certificate) = Self::resume_point(&views, &safety, certificate);
        assert!(
            config.validators.contains(config.me),
            "own index outside the validator set"
        );
        assert!(config.chain_id.len() <= CHAIN_ID_BYTES_MAX, "chain id over the limit");
        assert!(config.timeout_base_ms > 0, "a zero timeout never lets a view end");
        Replica {
            config,
            signer,
            verifier,
            hasher,
            safety,
            durable: safety,
            persist_sequence: 0,
            persisted_sequence: 0,
            held: Vec::new(),
            view: resume_view.max(anchor.view + 1),
            failed_views: 0,
            timeouts_in_view: 0,
            timer: 0,
            anchor,
            anchor_finalization,
            entry_certificate,
            blocks,
            views,
            pending_finalization: None,
            catch_up_requested: None,
            wanted_block: None,
            proposal_request: None,
            evidence: Vec::new(),
            stats: Stats::default(),
            effects: Vec::new(),
        }
    }

    fn restored_blocks(blocks: Vec<Block>, anchor: &Anchor, hasher: &H) -> BTreeMap<Digest, Block> {
        let above = |block: &Block| block.height > anchor.height && block.is_well_formed();
        blocks
            .into_iter()
            .filter(above)
            .map(|block| (block.digest(hasher), block))
            .collect()
    }

    /// Where a restarted replica resumes: past the highest view a stored certificate ended, or
    /// in the view it last signed in; with the certificate that ended the view before.
    fn resume_point(
        views: &BTreeMap<View, ViewState>,
        safety: &SafetyState,
        persisted: Option<Certificate>,
    ) -> (View, Option<Certificate>) {
        let latest = views.values().rev().find_map(|state| {
            [VoteKind::Finalize, VoteKind::Notarize, VoteKind::Nullify]
                .into_iter()
                .find_map(|kind| state.certificate(kind).cloned())
        });
        match latest {
            Some(certificate) if certificate.view + 1 >= safety.view => (certificate.view + 1, Some(certificate)),
            _ => {
                let entry = persisted.filter(|certificate| certificate.view + 1 == safety.view);
                (safety.view, entry)
            }
        }
    }

    fn restored_views(certificates: Vec<Certificate>, anchor: &Anchor) -> BTreeMap<View, ViewState> {
        let mut views: BTreeMap<View, ViewState> = BTreeMap::new();
        for certificate in certificates
            .into_iter()
            .filter(|certificate| certificate.view > anchor.view)
        {
            let state = views.entry(certificate.view).or_default();
            match certificate.kind {
                VoteKind::Notarize => state.notarization = Some(certificate),
                VoteKind::Nullify => state.nullification = Some(certificate),
                VoteKind::Finalize => state.finalization = Some(certificate),
            }
        }
        views
    }

    /// Feeds one input; returns the effects to carry out, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Effect> {
        match input {
            Input::Start => self.enter_view(),
            Input::Message { from, bytes } => match decode(&bytes, MESSAGE_BYTES_MAX) {
                Ok(message) => self.on_message(from, message),
                Err(_) => self.stats.messages_rejected += 1,
            },
            Input::Timeout { timer } => {
                if timer == self.timer {
                    self.on_timeout();
                }
            }
            Input::Proposal { view, payload } => self.on_payload(view, payload),
            Input::Validated { view, digest, valid } => self.on_validated(view, digest, valid),
            Input::Persisted { sequence } => self.on_persisted(sequence),
            Input::CatchUp(chain) => self.on_catch_up(chain),
        }
        std::mem::take(&mut self.effects)
    }

    pub fn view(&self) -> View {
        self.view
    }

    pub fn anchor(&self) -> Anchor {
        self.anchor
    }

    pub fn safety(&self) -> SafetyState {
        self.safety
    }

    pub fn evidence(&self) -> &[Evidence] {
        &self.evidence
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    // ---- views and timeouts ----

    /// Enters `certificate.view + 1` if that is ahead of the current view.
    fn advance_past(&mut self, certificate: &Certificate) {
        let view = certificate.view + 1;
        if view <= self.view {
            return;
        }
        self.entry_certificate = Some(certificate.clone());
        self.view = view;
        self.timeouts_in_view = 0;
        self.prune();
        self.enter_view();
    }

    fn enter_view(&mut self) {
        self.schedule_timeout();
        self.try_propose();
        self.try_notarize();
    }

    fn schedule_timeout(&mut self) {
        self.timer += 1;
        let shift = (self.failed_views + self.timeouts_in_view).min(TIMEOUT_BACKOFF_SHIFT_MAX);
        let after_ms = self.config.timeout_base_ms << shift;
        self.effects.push(Effect::ScheduleTimeout {
            timer: self.timer,
            after_ms,
        });
    }

    fn on_timeout(&mut self) {
        self.timeouts_in_view = self.timeouts_in_view.saturating_add(1);
        let view = self.view;
        if self.safety.may_nullify(view) {
            let vote = self.sign_vote(VoteKind::Nullify, view, Digest::default());
            self.safety.record_nullify(view);
            self.persist_then(Held::Vote(vote));
        } else if let Some(vote) = self.own_vote(VoteKind::Nullify, view) {
            self.broadcast(&Message::Vote(vote));
        } else if self.durable.view == view && self.durable.nullified {
            // Restarted after a durable nullify vote whose message was lost with the process:
            // signing the identical vote again conflicts with nothing.
            let vote = self.sign_vote(VoteKind::Nullify, view, Digest::default());
            self.broadcast(&Message::Vote(vote.clone()));
            self.on_vote(vote);
        }
        self.rebroadcast_entry_certificate();
        if let Some(state) = self.views.get_mut(&view) {
            state.requested = false;
        }
        self.catch_up_requested = None;
        self.wanted_block = None;
        self.schedule_timeout();
        self.try_notarize();
        self.try_deliver();
    }

    /// Re-sends the certificate that ended the previous view, for peers that missed it.
    fn rebroadcast_entry_certificate(&mut self) {
        let entry = self.entry_certificate.clone();
        if let Some(certificate) = entry.filter(|certificate| certificate.view + 1 == self.view) {
            self.broadcast(&Message::Certificate(certificate));
        }
    }

    fn own_vote(&self, kind: VoteKind, view: View) -> Option<Vote> {
        let state = self.views.get(&view)?;
        let votes = match kind {
            VoteKind::Notarize => &state.notarize,
            VoteKind::Nullify => &state.nullify,
            VoteKind::Finalize => &state.finalize,
        };
        votes.get(&self.config.me).cloned()
    }

    /// Drops state for views that can no longer matter.
    fn prune(&mut self) {
        let floor = self.anchor.view.max(self.view.saturating_sub(VIEWS_KEPT_MAX));
        self.views = self.views.split_off(&floor);
        let anchor_height = self.anchor.height;
        self.blocks
            .retain(|_, block| block.height > anchor_height && block.view >= floor);
    }

    fn view_state(&mut self, view: View) -> &mut ViewState {
        self.views.entry(view).or_default()
    }

    // ---- persistence ----

    fn persist_then(&mut self, held: Held) {
        self.persist_sequence += 1;
        let sequence = self.persist_sequence;
        let certificate = self.entry_certificate.clone();
        self.effects.push(Effect::Persist {
            sequence,
            state: self.safety,
            certificate,
        });
        self.held.push((sequence, self.safety, held));
    }

    fn on_persisted(&mut self, sequence: u64) {
        assert!(
            sequence <= self.persist_sequence,
            "acknowledged a persist never requested"
        );
        self.persisted_sequence = self.persisted_sequence.max(sequence);
        let durable = self.persisted_sequence;
        let split = self.held.partition_point(|(sequence, _, _)| *sequence <= durable);
        let released: Vec<_> = self.held.drain(..split).collect();
        for (_, state, held) in released {
            self.durable = state;
            match held {
                Held::Proposal(proposal) => self.broadcast(&Message::Proposal(proposal)),
                Held::Vote(vote) => {
                    self.broadcast(&Message::Vote(vote.clone()));
                    if vote.view > self.anchor.view {
                        self.on_vote(vote);
                    }
                }
            }
        }
    }

    // ---- messages ----

    fn broadcast(&mut self, message: &Message) {
        self.effects.push(Effect::Broadcast { bytes: encode(message) });
    }

    fn send(&mut self, to: ValidatorIndex, message: &Message) {
        if to != self.config.me && self.config.validators.contains(to) {
            self.effects.push(Effect::Send {
                to,
                bytes: encode(message),
            });
        }
    }

    fn reject(&mut self) {
        self.stats.messages_rejected += 1;
    }

    fn on_message(&mut self, from: ValidatorIndex, message: Message) {
        match message {
            Message::Proposal(proposal) => self.on_proposal(proposal),
            Message::Vote(vote) => {
                let checked = vote.verify(&self.config.chain_id, &self.config.validators, &self.verifier);
                if checked.is_err() {
                    return self.reject();
                }
                if vote.view > self.view.saturating_add(VIEWS_AHEAD_MAX) {
                    // Validators are voting far ahead: this replica fell behind.
                    return self.request_catch_up(vote.view);
                }
                if vote.view > self.anchor.view {
                    self.on_vote(vote);
                }
            }
            Message::Certificate(certificate) => self.on_certificate_message(certificate),
            Message::Request { view } => self.on_request(from, view),
            Message::Notarized { block, notarization } => {
                self.on_notarized(from, block, notarization);
            }
            Message::BlockRequest { digest } => {
                if let Some(block) = self.blocks.get(&digest) {
                    let message = Message::Block(block.clone());
                    self.send(from, &message);
                }
            }
            Message::Block(block) => self.on_block(block),
        }
    }

    fn on_proposal(&mut self, proposal: Proposal) {
        let view = proposal.block.view;
        if view <= self.anchor.view || proposal.block.height <= self.anchor.height {
            return;
        }
        let config = &self.config;
        let verified = proposal.verify(&config.chain_id, &config.validators, &self.verifier, &self.hasher);
        let Ok(digest) = verified else {
            return self.reject();
        };
        if view > self.view.saturating_add(VIEWS_AHEAD_MAX) {
            return self.request_catch_up(view);
        }
        let state = self.view_state(view);
        if let Some((known, first)) = &state.proposal {
            if *known != digest {
                let first = first.clone();
                self.record_evidence(Evidence::Proposals {
                    first,
                    second: proposal,
                });
            }
            return;
        }
        self.blocks.insert(digest, proposal.block.clone());
        self.view_state(view).proposal = Some((digest, proposal));
        self.try_notarize();
        self.try_deliver();
    }

    fn on_vote(&mut self, vote: Vote) {
        let state = self.view_state(vote.view);
        let existing = state.votes(vote.kind).get(&vote.signer).cloned();
        if let Some(first) = existing {
            if votes_conflict(&first, &vote) {
                self.record_evidence(Evidence::Votes { first, second: vote });
            }
            return;
        }
        let opposite = match vote.kind {
            VoteKind::Nullify => Some(VoteKind::Finalize),
            VoteKind::Finalize => Some(VoteKind::Nullify),
            VoteKind::Notarize => None,
        };
        let conflicting = opposite.and_then(|kind| state.votes(kind).get(&vote.signer).cloned());
        if let Some(first) = conflicting {
            self.record_evidence(Evidence::Votes {
                first,
                second: vote.clone(),
            });
        }
        let state = self.view_state(vote.view);
        if state.certificate(vote.kind).is_some() {
            state.votes(vote.kind).insert(vote.signer, vote);
            return;
        }
        let (kind, view, digest) = (vote.kind, vote.view, vote.digest);
        state.votes(kind).insert(vote.signer, vote);
        let signatures: Vec<_> = state
            .votes(kind)
            .values()
            .filter(|vote| vote.digest == digest)
            .map(|vote| (vote.signer, vote.signature.clone()))
            .collect();
        if signatures.len() >= self.config.validators.quorum() {
            self.on_certificate(Certificate {
                kind,
                view,
                digest,
                signatures,
            });
        }
    }

    fn on_certificate_message(&mut self, certificate: Certificate) {
        if certificate.view <= self.anchor.view {
            return;
        }
        let known = self
            .views
            .get(&certificate.view)
            .is_some_and(|state| state.certificate(certificate.kind).is_some());
        if known {
            return;
        }
        let config = &self.config;
        if certificate
            .verify(&config.chain_id, &config.validators, &self.verifier)
            .is_err()
        {
            return self.reject();
        }
        self.on_certificate(certificate);
    }

    /// Acts on a verified certificate this replica did not hold yet.
    fn on_certificate(&mut self, certificate: Certificate) {
        let (kind, view, digest) = (certificate.kind, certificate.view, certificate.digest);
        if kind != VoteKind::Finalize {
            self.effects.push(Effect::StoreCertificate(certificate.clone()));
        }
        let state = self.view_state(view);
        assert!(state.certificate(kind).is_none(), "certificate processed twice");
        match kind {
            VoteKind::Notarize => {
                state.notarization = Some(certificate.clone());
                if view >= self.view {
                    if self.safety.may_finalize(view) {
                        let vote = self.sign_vote(VoteKind::Finalize, view, digest);
                        self.safety.record_finalize(view, digest);
                        self.persist_then(Held::Vote(vote));
                    }
                    self.failed_views = 0;
                    self.advance_past(&certificate);
                }
            }
            VoteKind::Nullify => {
                state.nullification = Some(certificate.clone());
                if view >= self.view {
                    self.failed_views = self.failed_views.saturating_add(1);
                    self.advance_past(&certificate);
                }
            }
            VoteKind::Finalize => {
                state.finalization = Some(certificate.clone());
                let newer = self
                    .pending_finalization
                    .as_ref()
                    .is_none_or(|pending| pending.view < view);
                if newer {
                    self.pending_finalization = Some(certificate.clone());
                }
                self.failed_views = 0;
                self.advance_past(&certificate);
                self.try_deliver();
            }
        }
        self.try_propose();
        self.try_notarize();
    }

    fn on_request(&mut self, from: ValidatorIndex, view: View) {
        if view <= self.anchor.view {
            if let Some(finalization) = self.anchor_finalization.clone() {
                self.send(from, &Message::Certificate(finalization));
            }
            return;
        }
        let Some(state) = self.views.get(&view) else {
            return;
        };
        let notarized = state.notarization.as_ref().and_then(|notarization| {
            let block = self.blocks.get(&notarization.digest)?;
            Some(Message::Notarized {
                block: block.clone(),
                notarization: notarization.clone(),
            })
        });
        let nullification = state.nullification.clone().map(Message::Certificate);
        for message in [notarized, nullification].into_iter().flatten() {
            self.send(from, &message);
        }
    }

    fn on_notarized(&mut self, from: ValidatorIndex, block: Block, notarization: Certificate) {
        let fits = notarization.kind == VoteKind::Notarize
            && notarization.view == block.view
            && block.view > self.anchor.view
            && block.height > self.anchor.height
            && block.is_well_formed();
        if !fits || block.digest(&self.hasher) != notarization.digest {
            return self.reject();
        }
        let digest = notarization.digest;
        if !self.blocks.contains_key(&digest) {
            let config = &self.config;
            if notarization
                .verify(&config.chain_id, &config.validators, &self.verifier)
                .is_err()
            {
                return self.reject();
            }
            let parent_known = block.parent == self.anchor.digest || self.blocks.contains_key(&block.parent);
            if !parent_known && block.parent_view > self.anchor.view {
                self.send(
                    from,
                    &Message::Request {
                        view: block.parent_view,
                    },
                );
            }
            self.blocks.insert(digest, block);
        }
        let known = self
            .views
            .get(&notarization.view)
            .is_some_and(|state| state.notarization.is_some());
        if !known {
            self.on_certificate(notarization);
        }
        self.try_notarize();
        self.try_deliver();
    }

    // ---- proposing and voting ----

    fn sign_vote(&self, kind: VoteKind, view: View, digest: Digest) -> Vote {
        let bytes = crate::message::signing_bytes(&self.config.chain_id, kind.tag(), view, &digest);
        let signature = self.signer.sign(&bytes);
        Vote {
            kind,
            view,
            digest,
            signer: self.config.me,
            signature,
        }
    }

    fn try_propose(&mut self) {
        let view = self.view;
        let asked = self
            .proposal_request
            .as_ref()
            .is_some_and(|request| request.view == view);
        let may_sign = self.safety.may_propose(view) && self.safety.may_notarize(view);
        if self.config.validators.leader(view) != self.config.me || asked || !may_sign {
            return;
        }
        let Some((parent_view, parent, parent_height)) = self.justified_parent(view) else {
            return;
        };
        let height = parent_height + 1;
        self.proposal_request = Some(ProposalRequest {
            view,
            height,
            parent_view,
            parent,
        });
        self.effects.push(Effect::RequestProposal { view, height, parent });
    }

    /// The parent a proposal in `view` must extend: the notarized block of the highest view
    /// before it, with every view in between nullified (or the anchor).
    fn justified_parent(&self, view: View) -> Option<(View, Digest, Height)> {
        if view - self.anchor.view > VIEWS_KEPT_MAX {
            return None;
        }
        let mut candidate = view - 1;
        while candidate > self.anchor.view {
            let state = self.views.get(&candidate)?;
            if let Some(notarization) = &state.notarization {
                let block = self.blocks.get(&notarization.digest)?;
                return Some((candidate, notarization.digest, block.height));
            }
            state.nullification.as_ref()?;
            candidate -= 1;
        }
        Some((self.anchor.view, self.anchor.digest, self.anchor.height))
    }

    fn on_payload(&mut self, view: View, payload: Vec<u8>) {
        let Some(request) = self.proposal_request.take_if(|request| request.view == view) else {
            return;
        };
        let may_sign = self.safety.may_propose(view) && self.safety.may_notarize(view);
        if view != self.view || !may_sign || payload.len() > PAYLOAD_BYTES_MAX {
            return;
        }
        let block = Block {
            view,
            height: request.height,
            parent_view: request.parent_view,
            parent: request.parent,
            payload,
        };
        let digest = block.digest(&self.hasher);
        let bytes = Proposal::signing_bytes(&self.config.chain_id, view, &digest);
        let proposal = Proposal {
            block: block.clone(),
            signature: self.signer.sign(&bytes),
        };
        let vote = self.sign_vote(VoteKind::Notarize, view, digest);
        self.safety.record_proposal(view, digest);
        self.effects.push(Effect::StoreBlock(block.clone()));
        self.blocks.insert(digest, block);
        let state = self.view_state(view);
        state.proposal = Some((digest, proposal.clone()));
        state.validation = Validation::Valid;
        self.persist_then(Held::Proposal(proposal));
        self.held.push((self.persist_sequence, self.safety, Held::Vote(vote)));
    }

    fn on_validated(&mut self, view: View, digest: Digest, valid: bool) {
        let Some(state) = self.views.get_mut(&view) else {
            return;
        };
        let asked = state.validation == Validation::Asked;
        if asked && state.proposal.as_ref().is_some_and(|(known, _)| *known == digest) {
            state.validation = if valid { Validation::Valid } else { Validation::Invalid };
            self.try_notarize();
        }
    }

    /// Votes to notarize the current view's proposal once it is justified and valid.
    fn try_notarize(&mut self) {
        let view = self.view;
        if !self.safety.may_notarize(view) {
            return;
        }
        let Some((digest, block)) = self
            .views
            .get(&view)
            .and_then(|state| state.proposal.as_ref())
            .map(|(digest, proposal)| (*digest, proposal.block.clone()))
        else {
            return;
        };
        match self.justify(&block) {
            Justification::Ready => {}
            Justification::Invalid => return,
            Justification::Missing(views) => return self.request_missing(view, &views),
        }
        let state = self.view_state(view);
        match state.validation {
            Validation::NotAsked => {
                state.validation = Validation::Asked;
                let (height, payload) = (block.height, block.payload);
                self.effects.push(Effect::Validate {
                    view,
                    height,
                    digest,
                    payload,
                });
            }
            Validation::Asked | Validation::Invalid => {}
            Validation::Valid => {
                self.effects.push(Effect::StoreBlock(block));
                let vote = self.sign_vote(VoteKind::Notarize, view, digest);
                self.safety.record_notarize(view, digest);
                self.persist_then(Held::Vote(vote));
            }
        }
    }

    fn request_missing(&mut self, view: View, missing: &[View]) {
        let state = self.view_state(view);
        if state.requested {
            return;
        }
        state.requested = true;
        let leader = self.config.validators.leader(view);
        for missing_view in missing.iter().take(REQUESTS_PER_PROPOSAL_MAX) {
            self.send(leader, &Message::Request { view: *missing_view });
        }
    }

    /// Checks that `block` extends a justified parent. This is the rule that carries safety
    /// across views: a block finalized in view p can never be nullified, so every later
    /// justified proposal extends it.
    fn justify(&self, block: &Block) -> Justification {
        let (view, parent_view) = (block.view, block.parent_view);
        if parent_view < self.anchor.view || view - parent_view > VIEWS_KEPT_MAX {
            return Justification::Invalid;
        }
        let mut missing = Vec::new();
        if parent_view == self.anchor.view {
            let extends = block.parent == self.anchor.digest && block.height == self.anchor.height + 1;
            if !extends {
                return Justification::Invalid;
            }
        } else {
            let notarization = self
                .views
                .get(&parent_view)
                .and_then(|state| state.notarization.as_ref());
            match (notarization, self.blocks.get(&block.parent)) {
                (Some(notarization), _) if notarization.digest != block.parent => {
                    return Justification::Invalid;
                }
                (Some(_), Some(parent)) => {
                    if parent.height + 1 != block.height || parent.view != parent_view {
                        return Justification::Invalid;
                    }
                }
                _ => missing.push(parent_view),
            }
        }
        if cfg!(not(feature = "mutation-skip-nullification-check")) {
            for between in parent_view + 1..view {
                let nullified = self
                    .views
                    .get(&between)
                    .is_some_and(|state| state.nullification.is_some());
                if !nullified {
                    missing.push(between);
                }
            }
        }
        if missing.is_empty() {
            Justification::Ready
        } else {
            Justification::Missing(missing)
        }
    }

    // ---- finalization and catch-up ----

    /// Delivers the pending finalization if every block down to the anchor is known.
    fn try_deliver(&mut self) {
        let Some(finalization) = self.pending_finalization.clone() else {
            return;
        };
        if finalization.view <= self.anchor.view {
            self.pending_finalization = None;
            return;
        }
        let mut chain = Vec::new();
        let mut digest = finalization.digest;
        while digest != self.anchor.digest {
            let Some(block) = self.blocks.get(&digest) else {
                self.request_block(digest);
                return self.request_catch_up(finalization.view);
            };
            if block.height <= self.anchor.height {
                self.stats.conflicting_finalizations += 1;
                self.pending_finalization = None;
                return;
            }
            chain.push(block.clone());
            digest = block.parent;
        }
        chain.reverse();
        self.pending_finalization = None;
        self.deliver(FinalizedChain {
            blocks: chain,
            finalization,
        });
    }

    fn on_block(&mut self, block: Block) {
        let Some(wanted) = self.wanted_block else {
            return;
        };
        let fits = block.height > self.anchor.height && block.is_well_formed();
        if !fits || block.digest(&self.hasher) != wanted {
            return self.reject();
        }
        self.wanted_block = None;
        self.blocks.insert(wanted, block);
        self.try_deliver();
        self.try_notarize();
    }

    /// Asks peers for a block a finalization needs; again only after a timeout.
    fn request_block(&mut self, digest: Digest) {
        if self.wanted_block != Some(digest) {
            self.wanted_block = Some(digest);
            self.broadcast(&Message::BlockRequest { digest });
        }
    }

    /// Asks the node's block sync for finalized blocks, at most once per
    /// `CATCH_UP_RETRY_VIEWS` views of evidence that this replica is behind (and per timeout).
    fn request_catch_up(&mut self, seen_view: View) {
        let retry = self
            .catch_up_requested
            .is_none_or(|asked_view| seen_view >= asked_view.saturating_add(CATCH_UP_RETRY_VIEWS));
        if retry {
            self.catch_up_requested = Some(seen_view);
            self.effects.push(Effect::RequestCatchUp {
                after_height: self.anchor.height,
            });
        }
    }

    fn deliver(&mut self, chain: FinalizedChain) {
        let last = chain.blocks.last().expect("a delivered chain is never empty");
        assert!(
            chain.blocks[0].height == self.anchor.height + 1,
            "delivery skips a height"
        );
        assert!(last.view == chain.finalization.view, "finalization names another view");
        self.anchor = Anchor {
            view: last.view,
            height: last.height,
            digest: chain.finalization.digest,
        };
        let finalization = chain.finalization.clone();
        self.anchor_finalization = Some(finalization.clone());
        self.catch_up_requested = None;
        self.effects.push(Effect::Finalized(chain));
        self.prune();
        self.advance_past(&finalization);
        self.try_propose();
        self.try_notarize();
    }

    fn on_catch_up(&mut self, chain: FinalizedChain) {
        let config = &self.config;
        let verified = chain.verify(
            &self.anchor,
            &config.chain_id,
            &config.validators,
            &self.verifier,
            &self.hasher,
        );
        if verified.is_err() {
            return self.reject();
        }
        if self
            .pending_finalization
            .as_ref()
            .is_some_and(|pending| pending.view <= chain.finalization.view)
        {
            self.pending_finalization = None;
        }
        self.deliver(chain);
        self.try_deliver();
    }

    fn record_evidence(&mut self, evidence: Evidence) {
        let validator = evidence.validator(&self.config.validators);
        let view = evidence.view();
        let known = self
            .evidence
            .iter()
            .any(|record| record.view() == view && record.validator(&self.config.validators) == validator);
        if known || self.evidence.len() >= EVIDENCE_MAX {
            return;
        }
        self.evidence.push(evidence.clone());
        self.effects.push(Effect::Evidence(evidence));
    }
}
