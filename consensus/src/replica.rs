//! The replica: one validator's protocol state machine for one epoch. Inputs in, effects out,
//! no I/O.
//!
//! The rules this module keeps:
//! - verify at the boundary: a peer's message is decoded, checked against the epoch and
//!   verified by `boundary::check` before any state changes; state holds `Verified` values only;
//! - persist before you speak: every signed proposal or vote is recorded in `SafetyState`,
//!   handed out as `Effect::Persist`, and leaves the replica (or counts toward its own quorums)
//!   only after `Input::Persisted` acknowledges that sequence number;
//! - a proposal is voted for only if it extends a justified parent: the finalized anchor or a
//!   notarized block, with every view in between proven nullified (`justify`); a nullification
//!   proves a range of views through its signers' claims (`Certificate::proven_since`), so the
//!   proof stays one certificate long however long the network stalled;
//! - blocks are delivered exactly once, in height order, in batches of at most
//!   `CATCH_UP_BLOCKS_MAX`, each with a proof of finality, and never a block that conflicts with
//!   the anchor; the epoch ends with the finalization of its last height;
//! - timeouts converge: a replica that nullified a view that was notarized anyway learns that
//!   its timeouts are too short and doubles them; it gives a step back only after
//!   `VIEWS_FINALIZED_BEFORE_DECAY` views in a row go well;
//! - answers to requests are rate-limited per peer and per view.

use std::collections::{BTreeMap, BTreeSet};

use crate::boundary::{self, Checked, Verified};
use crate::codec::{decode, encode};
use crate::evidence::{Evidence, votes_conflict};
use crate::limits::{
    ANSWER_BYTES_PER_PEER_PER_VIEW, ANSWERS_PER_PEER_PER_VIEW, CATCH_UP_BLOCKS_MAX, CATCH_UP_RETRY_VIEWS,
    CHAIN_ID_BYTES_MAX, EVIDENCE_MAX, HEIGHTS_PENDING_MAX, MESSAGE_BYTES_MAX, PAYLOAD_BYTES_MAX,
    REQUESTS_PER_PROPOSAL_MAX, TIMEOUT_BACKOFF_SHIFT_MAX, VIEWS_AHEAD_MAX, VIEWS_FINALIZED_BEFORE_DECAY,
    VIEWS_KEPT_MAX,
};
use crate::message::{Certificate, FinalizedChain, Message, Proposal, Vote, VoteKind};
use crate::safety::SafetyState;
use crate::types::{
    Anchor, Block, BlockHeader, Config, Digest, Epoch, Hasher, Height, Signer, ValidatorIndex, Verifier, View,
};

/// What the environment tells a replica.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Input {
    /// Sent once after construction (also after a restart).
    Start,
    /// Bytes from a peer; `from` is the transport-authenticated sender, used only for replies
    /// and per-peer answer budgets.
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
    /// Deliver `Input::Timeout { timer }` after `after_ms`. Several timers may be pending; the
    /// replica ignores those it no longer waits for.
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
    /// `Durable::blocks` on restart; it must be durable no later than the next `Persist`.
    StoreBlock(Block),
    /// Keep this verified notarization or nullification durably until its view is below the
    /// anchor, and hand it back in `Durable::certificates` on restart; it must be durable no
    /// later than the next `Persist`.
    StoreCertificate(Certificate),
    /// This replica leads `view`: build a payload on `parent` at `height`.
    RequestProposal {
        view: View,
        height: Height,
        parent: Digest,
    },
    /// Check a proposed payload on `parent` (a block this replica delivered, stored or was
    /// asked to build on); answer with `Input::Validated`.
    Validate {
        view: View,
        height: Height,
        digest: Digest,
        parent: Digest,
        payload: Vec<u8>,
    },
    /// Blocks that are final, in height order, at most `CATCH_UP_BLOCKS_MAX` per batch, each
    /// batch with its proof: execute and store them with the proof (block sync serves it).
    Finalized(FinalizedChain),
    /// A finalization is known for a block this replica lacks: fetch finalized blocks above
    /// `after_height` from a peer and hand them back with `Input::CatchUp`.
    RequestCatchUp {
        after_height: Height,
    },
    /// A validator equivocated; also kept in `Replica::evidence`.
    Evidence(Evidence),
    /// The epoch's last height is final: the replica stops. The driver starts the next epoch's
    /// replica with `Durable::epoch_start(last, finalization)` and the new validator set.
    /// `finalization` certifies `last` or an empty padding block above it (the batch that
    /// delivered `last` carries the headers between).
    EpochEnded {
        last: Anchor,
        finalization: Certificate,
    },
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
    /// The certificate of the last delivered batch, with the epoch that signed it (None at
    /// genesis). It certifies the anchor or a block above it; lagging peers are sent it so they
    /// know to catch up. At an epoch's start it is the previous epoch's handover.
    pub finalization: Option<(Epoch, Certificate)>,
}

impl Durable {
    /// A validator's first start on a chain with this genesis block digest.
    pub fn genesis(genesis: Digest) -> Durable {
        Durable {
            safety: SafetyState::genesis(),
            certificate: None,
            anchor: Anchor::genesis(genesis),
            blocks: Vec::new(),
            certificates: Vec::new(),
            finalization: None,
        }
    }

    /// The first start of epoch `epoch`, after the previous epoch finalized `last` with
    /// `finalization`.
    pub fn epoch_start(epoch: Epoch, last: Anchor, finalization: Certificate) -> Durable {
        assert!(epoch > 0, "epoch 0 starts at genesis");
        Durable {
            safety: SafetyState::epoch_start(epoch),
            certificate: None,
            anchor: last,
            blocks: Vec::new(),
            certificates: Vec::new(),
            finalization: Some((epoch - 1, finalization)),
        }
    }
}

/// Counters for operators and tests.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Messages that failed decoding or verification, or did not fit the protocol.
    pub messages_rejected: u64,
    /// Valid finalizations seen for blocks that conflict with this replica's chain. Nonzero only
    /// if more than f validators are faulty (or a safety rule is broken).
    pub conflicting_finalizations: u64,
    /// Answers to `Request`/`BlockRequest` withheld because the asking peer's budget was spent.
    pub answers_withheld: u64,
    /// Catch-up requests made.
    pub catch_up_requests: u64,
    /// Back-off steps learned from views nullified here but notarized anyway.
    pub timeouts_learned: u64,
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
    /// Views whose notarized block or nullification this replica lacks.
    Missing(Vec<View>),
    Invalid,
}

#[derive(Default)]
struct ViewState {
    proposal: Option<(Digest, Verified<Proposal>)>,
    validation: Validation,
    /// Views asked of the leader for this view's proposal (since the last timeout).
    requested: BTreeSet<View>,
    notarize: BTreeMap<ValidatorIndex, Verified<Vote>>,
    nullify: BTreeMap<ValidatorIndex, Verified<Vote>>,
    finalize: BTreeMap<ValidatorIndex, Verified<Vote>>,
    notarization: Option<Verified<Certificate>>,
    nullification: Option<Verified<Certificate>>,
    finalization: Option<Verified<Certificate>>,
}

impl ViewState {
    fn certificate(&self, kind: VoteKind) -> Option<&Verified<Certificate>> {
        match kind {
            VoteKind::Notarize => self.notarization.as_ref(),
            VoteKind::Nullify => self.nullification.as_ref(),
            VoteKind::Finalize => self.finalization.as_ref(),
        }
    }

    fn votes(&mut self, kind: VoteKind) -> &mut BTreeMap<ValidatorIndex, Verified<Vote>> {
        match kind {
            VoteKind::Notarize => &mut self.notarize,
            VoteKind::Nullify => &mut self.nullify,
            VoteKind::Finalize => &mut self.finalize,
        }
    }

    /// Keeps only the certificates: what an old view still needs.
    fn certificates_only(self) -> ViewState {
        ViewState {
            notarization: self.notarization,
            nullification: self.nullification,
            finalization: self.finalization,
            ..ViewState::default()
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

/// Which deadline the view timer stands for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Deadline {
    /// The leader's proposal must have arrived.
    Leader,
    /// The view's notarization must have arrived.
    Notarization,
}

/// How much a peer has been answered in the current view.
#[derive(Clone, Copy, Default)]
struct Budget {
    answers: u32,
    bytes: usize,
}

/// One validator's consensus state machine for one epoch.
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
    /// Back-off steps learned from views this replica nullified that were notarized anyway.
    backoff_learned: u32,
    /// Views in a row this replica saw notarized in time, toward giving back a learned step.
    views_in_time: u32,
    /// Nullified views in a row (reset by a notarization).
    failed_views: u32,
    timeouts_in_view: u32,
    timer_next: u64,
    view_timer: (u64, Deadline),
    /// The finalization timer: (timer, view whose finalization is awaited).
    finalization_timer: Option<(u64, View)>,
    anchor: Anchor,
    /// The certificate of the last delivered batch (or the previous epoch's handover).
    anchor_finalization: Option<(Epoch, Certificate)>,
    /// The certificate that ended the previous view.
    entry_certificate: Option<Verified<Certificate>>,
    blocks: BTreeMap<Digest, Block>,
    views: BTreeMap<View, ViewState>,
    pending_finalization: Option<Verified<Certificate>>,
    /// The view whose evidence last triggered a catch-up request.
    catch_up_requested: Option<View>,
    /// Signers seen voting more than `VIEWS_AHEAD_MAX` views ahead, with the highest such view.
    ahead: BTreeMap<ValidatorIndex, View>,
    /// Blocks peers were asked for: for a pending finalization or a justified parent.
    wanted_blocks: BTreeSet<Digest>,
    /// Views whose certificates this replica (as leader) asked every peer for.
    leader_requested: Option<View>,
    proposal_request: Option<ProposalRequest>,
    budgets: BTreeMap<ValidatorIndex, Budget>,
    ended: bool,
    evidence: Vec<Evidence>,
    stats: Stats,
    effects: Vec<Effect>,
}

impl<S: Signer, V: Verifier, H: Hasher> Replica<S, V, H> {
    /// A replica that resumes from what was made durable (`Durable::genesis` on first start,
    /// `Durable::epoch_start` on an epoch's first start). Restored certificates are verified
    /// again: storage is outside the boundary too.
    pub fn new(config: Config, signer: S, verifier: V, hasher: H, durable: Durable) -> Replica<S, V, H> {
        assert!(
            config.validators.contains(config.me) && usize::from(config.me) < config.validators.count(),
            "own index outside the validator set"
        );
        assert!(config.chain_id.len() <= CHAIN_ID_BYTES_MAX, "chain id over the limit");
        let timeouts = config.timeouts;
        assert!(
            timeouts.leader_ms > 0 && timeouts.notarization_ms >= timeouts.leader_ms && timeouts.finalization_ms > 0,
            "timeouts must be positive and the notarization deadline no earlier than the leader's"
        );
        let Durable {
            safety,
            certificate,
            anchor,
            blocks,
            certificates,
            finalization,
        } = durable;
        assert!(safety.epoch <= config.epoch, "safety state from a later epoch");
        let safety = if safety.epoch < config.epoch {
            SafetyState::epoch_start(config.epoch)
        } else {
            safety
        };
        let mut replica = Replica {
            safety,
            durable: safety,
            persist_sequence: 0,
            persisted_sequence: 0,
            held: Vec::new(),
            view: anchor.view + 1,
            backoff_learned: 0,
            views_in_time: 0,
            failed_views: 0,
            timeouts_in_view: 0,
            timer_next: 0,
            view_timer: (0, Deadline::Leader),
            finalization_timer: None,
            anchor,
            anchor_finalization: None,
            entry_certificate: None,
            blocks: BTreeMap::new(),
            views: BTreeMap::new(),
            pending_finalization: None,
            catch_up_requested: None,
            ahead: BTreeMap::new(),
            wanted_blocks: BTreeSet::new(),
            leader_requested: None,
            proposal_request: None,
            budgets: BTreeMap::new(),
            ended: false,
            evidence: Vec::new(),
            stats: Stats::default(),
            effects: Vec::new(),
            config,
            signer,
            verifier,
            hasher,
        };
        replica.restore(blocks, certificates, certificate, finalization);
        replica
    }

    fn restore(
        &mut self,
        blocks: Vec<Block>,
        certificates: Vec<Certificate>,
        entry: Option<Certificate>,
        finalization: Option<(Epoch, Certificate)>,
    ) {
        let anchor = self.anchor;
        for block in blocks {
            if block.height > anchor.height && block.is_well_formed() && block.epoch == self.config.epoch {
                self.blocks.insert(block.digest(&self.hasher), block);
            }
        }
        for certificate in certificates
            .into_iter()
            .filter(|certificate| certificate.view > anchor.view)
        {
            let Ok(certificate) = boundary::certificate_of(&self.config, &self.verifier, certificate) else {
                self.stats.messages_rejected += 1;
                continue;
            };
            let state = self.views.entry(certificate.view).or_default();
            match certificate.kind {
                VoteKind::Notarize => state.notarization = Some(certificate),
                VoteKind::Nullify => state.nullification = Some(certificate),
                VoteKind::Finalize => state.finalization = Some(certificate),
            }
        }
        self.anchor_finalization = finalization.filter(|(epoch, certificate)| {
            let previous = *epoch + 1 == self.config.epoch;
            let own = *epoch == self.config.epoch
                && certificate.view >= anchor.view
                && boundary::certificate_of(&self.config, &self.verifier, certificate.clone()).is_ok();
            certificate.kind == VoteKind::Finalize && (previous || own)
        });
        // Resume past the highest view a stored certificate ended, or in the view last signed in.
        let latest = self.views.iter().rev().find_map(|(view, state)| {
            [VoteKind::Finalize, VoteKind::Notarize, VoteKind::Nullify]
                .into_iter()
                .find_map(|kind| state.certificate(kind).cloned())
                .map(|certificate| (*view, certificate))
        });
        let signed_view = if self.safety.epoch == self.config.epoch {
            self.safety.view
        } else {
            0
        };
        match latest {
            Some((view, certificate)) if view + 1 >= signed_view => {
                self.view = self.view.max(view + 1);
                self.entry_certificate = Some(certificate);
            }
            _ => {
                self.view = self.view.max(signed_view);
                let entry = entry
                    .filter(|certificate| certificate.view + 1 == signed_view)
                    .and_then(|certificate| boundary::certificate_of(&self.config, &self.verifier, certificate).ok());
                self.entry_certificate = entry;
            }
        }
    }

    /// Feeds one input; returns the effects to carry out, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Effect> {
        if self.ended {
            if let Input::Message { from, bytes } = input {
                self.answer_after_end(from, &bytes);
            }
            return std::mem::take(&mut self.effects);
        }
        match input {
            Input::Start => self.enter_view(),
            Input::Message { from, bytes } => self.on_bytes(from, &bytes),
            Input::Timeout { timer } => self.on_timer(timer),
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

    /// A block this replica holds above its anchor (proposed, validated, fetched or restored).
    pub fn block(&self, digest: &Digest) -> Option<&Block> {
        self.blocks.get(digest)
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

    /// Whether the epoch's last height is final and this replica has stopped.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The current back-off shift (timeouts are their configured value times 2^shift).
    pub fn backoff(&self) -> u32 {
        self.backoff_shift()
    }

    // ---- views and timeouts ----

    /// Enters `certificate.view + 1` if that is ahead of the current view.
    fn advance_past(&mut self, certificate: &Verified<Certificate>) {
        let view = certificate.view + 1;
        if view <= self.view {
            return;
        }
        self.entry_certificate = Some(certificate.clone());
        self.view = view;
        self.timeouts_in_view = 0;
        self.budgets.clear();
        self.prune();
        self.enter_view();
    }

    fn enter_view(&mut self) {
        if self.ended {
            return;
        }
        self.schedule_view_timer(Deadline::Leader, self.config.timeouts.leader_ms);
        self.try_propose();
        self.try_notarize();
    }

    fn backoff_shift(&self) -> u32 {
        let steps = self
            .backoff_learned
            .saturating_add(self.failed_views)
            .saturating_add(self.timeouts_in_view);
        steps.min(TIMEOUT_BACKOFF_SHIFT_MAX)
    }

    fn next_timer(&mut self, after_ms: u64) -> u64 {
        self.timer_next += 1;
        let timer = self.timer_next;
        let after_ms = after_ms.saturating_mul(1 << self.backoff_shift());
        self.effects.push(Effect::ScheduleTimeout { timer, after_ms });
        timer
    }

    fn schedule_view_timer(&mut self, deadline: Deadline, after_ms: u64) {
        let timer = self.next_timer(after_ms);
        self.view_timer = (timer, deadline);
    }

    fn on_timer(&mut self, timer: u64) {
        if self.finalization_timer.is_some_and(|(awaited, _)| awaited == timer) {
            return self.on_finalization_timeout();
        }
        let (current, deadline) = self.view_timer;
        if timer != current {
            return;
        }
        let proposed = self.views.get(&self.view).is_some_and(|state| state.proposal.is_some());
        if deadline == Deadline::Leader && proposed {
            let timeouts = self.config.timeouts;
            let rest_ms = timeouts.notarization_ms - timeouts.leader_ms;
            return self.schedule_view_timer(Deadline::Notarization, rest_ms.max(1));
        }
        self.on_timeout();
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
            // signing the identical vote again conflicts with nothing (its claim may be weaker,
            // which only proves less).
            let vote = self.sign_vote(VoteKind::Nullify, view, Digest::default());
            self.broadcast(&Message::Vote(vote.clone()));
            self.on_vote(boundary::own(vote));
        }
        self.rebroadcast_entry_certificate();
        if let Some(state) = self.views.get_mut(&view) {
            state.requested.clear();
        }
        self.catch_up_requested = None;
        self.wanted_blocks.clear();
        self.leader_requested = None;
        self.schedule_view_timer(Deadline::Notarization, self.config.timeouts.notarization_ms);
        self.try_propose();
        self.try_notarize();
        self.try_deliver();
    }

    /// The view this replica voted finalize in has not been finalized in time: re-send the
    /// vote and the notarization for peers that missed them.
    fn on_finalization_timeout(&mut self) {
        let Some((_, view)) = self.finalization_timer.take() else {
            return;
        };
        let finalized =
            view <= self.anchor.view || self.views.get(&view).is_some_and(|state| state.finalization.is_some());
        if finalized {
            return;
        }
        let notarization = self.views.get(&view).and_then(|state| state.notarization.clone());
        if let Some(vote) = self.own_vote(VoteKind::Finalize, view) {
            self.broadcast(&Message::Vote(vote));
        }
        if let Some(notarization) = notarization {
            self.broadcast(&Message::Certificate(notarization.into_inner()));
        }
        let timer = self.next_timer(self.config.timeouts.finalization_ms);
        self.finalization_timer = Some((timer, view));
    }

    /// Re-sends the certificate that ended the previous view, for peers that missed it.
    fn rebroadcast_entry_certificate(&mut self) {
        let entry = self.entry_certificate.clone();
        if let Some(certificate) = entry.filter(|certificate| certificate.view + 1 == self.view) {
            self.broadcast(&Message::Certificate(certificate.into_inner()));
        }
    }

    fn own_vote(&self, kind: VoteKind, view: View) -> Option<Vote> {
        let state = self.views.get(&view)?;
        let votes = match kind {
            VoteKind::Notarize => &state.notarize,
            VoteKind::Nullify => &state.nullify,
            VoteKind::Finalize => &state.finalize,
        };
        votes.get(&self.config.me).map(|vote| vote.get().clone())
    }

    /// Drops state for views that can no longer matter. Kept: every view in the window of
    /// `VIEWS_KEPT_MAX` behind the current one; below it, the notarized views above the anchor
    /// (certificates only, the highest `VIEWS_KEPT_MAX`) and the nullifications that prove the
    /// current view's justification.
    fn prune(&mut self) {
        let floor = self.anchor.view.max(self.view.saturating_sub(VIEWS_KEPT_MAX)) + 1;
        let proof: BTreeSet<View> = self.proof_views(self.view - 1).into_iter().collect();
        let window = self.views.split_off(&floor);
        let old = std::mem::replace(&mut self.views, window);
        let mut notarized_kept = 0;
        for (view, state) in old.into_iter().rev() {
            if view <= self.anchor.view {
                break;
            }
            let notarized = state.notarization.is_some() && notarized_kept < VIEWS_KEPT_MAX;
            if notarized || proof.contains(&view) {
                notarized_kept += u64::from(notarized);
                let mut kept = state.certificates_only();
                if !proof.contains(&view) {
                    kept.nullification = None;
                }
                self.views.insert(view, kept);
            }
        }
        let anchor_height = self.anchor.height;
        let views = &self.views;
        self.blocks.retain(|digest, block| {
            let kept_view = block.view >= floor
                || views
                    .get(&block.view)
                    .and_then(|state| state.notarization.as_ref())
                    .is_some_and(|notarization| notarization.digest == *digest);
            block.height > anchor_height && kept_view
        });
    }

    fn view_state(&mut self, view: View) -> &mut ViewState {
        self.views.entry(view).or_default()
    }

    // ---- nullified ranges ----

    /// The lowest s such that every view in (s, `view`] is proven nullified by certificates this
    /// replica holds; `view` itself when it holds no nullification of `view`.
    fn nullified_since(&self, view: View) -> View {
        let mut since = view;
        let mut hops = 0;
        while since > self.anchor.view && hops < VIEWS_KEPT_MAX {
            let Some(nullification) = self.views.get(&since).and_then(|state| state.nullification.as_ref()) else {
                break;
            };
            since = nullification.proven_since(&self.config.validators);
            hops += 1;
        }
        since
    }

    /// The views whose nullifications `nullified_since(view)` walks through.
    fn proof_views(&self, view: View) -> Vec<View> {
        let mut views = Vec::new();
        let mut since = view;
        while since > self.anchor.view && (views.len() as u64) < VIEWS_KEPT_MAX {
            let Some(nullification) = self.views.get(&since).and_then(|state| state.nullification.as_ref()) else {
                break;
            };
            views.push(since);
            since = nullification.proven_since(&self.config.validators);
        }
        views
    }

    // ---- persistence ----

    fn persist_then(&mut self, held: Held) {
        self.persist_sequence += 1;
        let sequence = self.persist_sequence;
        let certificate = self
            .entry_certificate
            .as_ref()
            .map(|certificate| certificate.get().clone());
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
                    if vote.kind == VoteKind::Finalize {
                        let timer = self.next_timer(self.config.timeouts.finalization_ms);
                        self.finalization_timer = Some((timer, vote.view));
                    }
                    if vote.view > self.anchor.view {
                        self.on_vote(boundary::own(vote));
                    }
                }
            }
        }
    }

    // ---- messages ----

    fn broadcast(&mut self, message: &Message) {
        self.effects.push(Effect::Broadcast {
            bytes: encode(self.config.epoch, message),
        });
    }

    fn send(&mut self, to: ValidatorIndex, message: &Message) {
        if to != self.config.me && usize::from(to) < self.config.validators.count() {
            self.effects.push(Effect::Send {
                to,
                bytes: encode(self.config.epoch, message),
            });
        }
    }

    /// Sends an answer to a peer's request if the peer's budget for this view allows it.
    fn answer(&mut self, to: ValidatorIndex, epoch: Epoch, message: &Message) {
        if to == self.config.me {
            return;
        }
        let bytes = encode(epoch, message);
        let budget = self.budgets.entry(to).or_default();
        if budget.answers >= ANSWERS_PER_PEER_PER_VIEW || budget.bytes + bytes.len() > ANSWER_BYTES_PER_PEER_PER_VIEW {
            self.stats.answers_withheld += 1;
            return;
        }
        budget.answers += 1;
        budget.bytes += bytes.len();
        self.effects.push(Effect::Send { to, bytes });
    }

    fn reject(&mut self) {
        self.stats.messages_rejected += 1;
    }

    fn on_bytes(&mut self, from: ValidatorIndex, bytes: &[u8]) {
        let Ok((epoch, message)) = decode(bytes, MESSAGE_BYTES_MAX) else {
            return self.reject();
        };
        if epoch != self.config.epoch {
            return self.on_other_epoch(from, epoch);
        }
        if !self.worth_checking(&message) {
            return;
        }
        match boundary::check(&self.config, &self.verifier, &self.hasher, message) {
            Ok(checked) => self.on_checked(from, checked),
            Err(_) => self.reject(),
        }
    }

    /// A message of another epoch: a peer ahead means this replica fell behind; a peer behind
    /// is sent the certificate that ends its epoch's story here.
    fn on_other_epoch(&mut self, from: ValidatorIndex, epoch: Epoch) {
        if epoch > self.config.epoch {
            return self.request_catch_up(self.view.saturating_add(CATCH_UP_RETRY_VIEWS));
        }
        let handover = self
            .anchor_finalization
            .clone()
            .filter(|(signed_in, _)| *signed_in == epoch);
        if let Some((signed_in, certificate)) = handover {
            self.answer(from, signed_in, &Message::Certificate(certificate));
        }
    }

    /// After the epoch ended, a peer still in it is sent the epoch's last finalization.
    fn answer_after_end(&mut self, from: ValidatorIndex, bytes: &[u8]) {
        let same_epoch = decode(bytes, MESSAGE_BYTES_MAX).is_ok_and(|(epoch, _)| epoch == self.config.epoch);
        let last = self.anchor_finalization.clone();
        if let Some((epoch, certificate)) = last.filter(|_| same_epoch) {
            self.answer(from, epoch, &Message::Certificate(certificate));
        }
    }

    /// Cheap filters before any signature is checked: nothing here changes state.
    fn worth_checking(&self, message: &Message) -> bool {
        match message {
            Message::Proposal(proposal) => {
                let block = &proposal.block;
                block.view > self.anchor.view
                    && block.height > self.anchor.height
                    && self
                        .views
                        .get(&block.view)
                        .is_none_or(|state| state.proposal.as_ref().is_none_or(|(_, known)| known.get() != proposal))
            }
            Message::Vote(vote) => {
                let far = vote.view > self.view.saturating_add(VIEWS_AHEAD_MAX);
                let seen_ahead = far && self.ahead.get(&vote.signer).is_some_and(|view| *view >= vote.view);
                let known = self.views.get(&vote.view).is_some_and(|state| {
                    let votes = match vote.kind {
                        VoteKind::Notarize => &state.notarize,
                        VoteKind::Nullify => &state.nullify,
                        VoteKind::Finalize => &state.finalize,
                    };
                    votes.get(&vote.signer).is_some_and(|known| known.get() == vote)
                });
                vote.view > self.anchor.view && !seen_ahead && !known
            }
            Message::Certificate(certificate) => certificate.view > self.anchor.view && !self.holds(certificate),
            Message::Notarized { block, notarization } => {
                block.view > self.anchor.view
                    && block.height > self.anchor.height
                    && !(self.holds(notarization) && self.blocks.contains_key(&notarization.digest))
            }
            // Unasked blocks are refused (and counted) by `on_block`; hashing one is cheap.
            Message::Block(_) => true,
            Message::Request { .. } | Message::BlockRequest { .. } => true,
        }
    }

    /// Whether this replica already holds this certificate or one at least as strong.
    fn holds(&self, certificate: &Certificate) -> bool {
        let Some(known) = self
            .views
            .get(&certificate.view)
            .and_then(|state| state.certificate(certificate.kind))
        else {
            return false;
        };
        if certificate.kind != VoteKind::Nullify {
            return true;
        }
        // A nullification that proves a longer range is worth having.
        let validators = &self.config.validators;
        let offered = proven_since_unchecked(certificate, validators);
        offered >= known.proven_since(validators)
    }

    fn on_checked(&mut self, from: ValidatorIndex, checked: Checked) {
        match checked {
            Checked::Proposal(proposal, digest) => self.on_proposal(proposal, digest),
            Checked::Vote(vote) => {
                if vote.view > self.view.saturating_add(VIEWS_AHEAD_MAX) {
                    return self.on_far_vote(vote.signer, vote.view);
                }
                self.on_vote(vote);
            }
            Checked::Certificate(certificate) => self.on_certificate(certificate),
            Checked::Request(view) => self.on_request(from, view),
            Checked::Notarized(block, digest, notarization) => self.on_notarized(block, digest, notarization),
            Checked::BlockRequest(digest) => {
                if let Some(block) = self.blocks.get(&digest).cloned() {
                    self.answer(from, self.config.epoch, &Message::Block(block));
                }
            }
            Checked::Block(block, digest) => self.on_block(block, digest),
        }
    }

    /// A verified vote far ahead of this replica. One signer can sign any view, so only f + 1
    /// distinct signers ahead (one of them honest) are taken as a sign of being behind.
    fn on_far_vote(&mut self, signer: ValidatorIndex, view: View) {
        let seen = self.ahead.entry(signer).or_insert(view);
        *seen = (*seen).max(view);
        let threshold = self.view.saturating_add(VIEWS_AHEAD_MAX);
        let mut views: Vec<View> = self.ahead.values().copied().filter(|view| *view > threshold).collect();
        let witnesses = self.config.validators.honest_witnesses();
        if views.len() >= witnesses {
            views.sort_unstable_by(|a, b| b.cmp(a));
            self.request_catch_up(views[witnesses - 1]);
        }
    }

    fn on_request(&mut self, from: ValidatorIndex, view: View) {
        if view <= self.anchor.view {
            if let Some((epoch, finalization)) = self.anchor_finalization.clone() {
                self.answer(from, epoch, &Message::Certificate(finalization));
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
                notarization: notarization.get().clone(),
            })
        });
        let notarized = notarized.or_else(|| {
            state
                .notarization
                .as_ref()
                .map(|notarization| Message::Certificate(notarization.get().clone()))
        });
        let nullification = state
            .nullification
            .as_ref()
            .map(|nullification| Message::Certificate(nullification.get().clone()));
        for message in [notarized, nullification].into_iter().flatten() {
            self.answer(from, self.config.epoch, &message);
        }
    }

    fn on_notarized(&mut self, block: Block, digest: Digest, notarization: Verified<Certificate>) {
        if block.view <= self.anchor.view || block.height <= self.anchor.height {
            return;
        }
        self.wanted_blocks.remove(&digest);
        self.blocks.entry(digest).or_insert(block);
        if !self.holds(notarization.get()) {
            self.on_certificate(notarization);
        }
        self.try_propose();
        self.try_notarize();
        self.try_deliver();
    }

    // ---- proposing and voting ----

    fn sign_vote(&self, kind: VoteKind, view: View, digest: Digest) -> Vote {
        let since = if kind == VoteKind::Nullify {
            self.nullified_since(view - 1).min(view - 1)
        } else {
            0
        };
        let bytes = crate::message::signing_bytes(
            &self.config.chain_id,
            self.config.epoch,
            kind.tag(),
            view,
            &digest,
            since,
        );
        let signature = self.signer.sign(&bytes);
        Vote {
            kind,
            view,
            digest,
            since,
            signer: self.config.me,
            signature,
        }
    }

    fn try_propose(&mut self) {
        if self.ended {
            return;
        }
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
        if height > self.anchor.height + HEIGHTS_PENDING_MAX {
            return;
        }
        self.proposal_request = Some(ProposalRequest {
            view,
            height,
            parent_view,
            parent,
        });
        if height > self.config.last_height {
            // Past the epoch's last height only empty padding is proposed: it exists to
            // finalize the last block when the view that notarized it could not.
            return self.on_payload(view, Vec::new());
        }
        self.effects.push(Effect::RequestProposal { view, height, parent });
    }

    /// The parent a proposal in `view` must extend: the notarized block of the highest view p
    /// such that every view in (p, `view`) is proven nullified, or the anchor. Missing blocks
    /// and certificates are asked of every peer (once per view).
    fn justified_parent(&mut self, view: View) -> Option<(View, Digest, Height)> {
        let since = self.nullified_since(view - 1);
        let lowest = since.max(self.anchor.view + 1);
        let notarized = self.views.range(lowest..view).rev().find_map(|(candidate, state)| {
            state
                .notarization
                .as_ref()
                .map(|notarization| (*candidate, notarization.digest))
        });
        if let Some((candidate, digest)) = notarized {
            let Some(block) = self.blocks.get(&digest) else {
                self.want_block(digest);
                return None;
            };
            return Some((candidate, digest, block.height));
        }
        if since <= self.anchor.view {
            return Some((self.anchor.view, self.anchor.digest, self.anchor.height));
        }
        if self.leader_requested != Some(since) {
            self.leader_requested = Some(since);
            self.broadcast(&Message::Request { view: since });
        }
        None
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
            epoch: self.config.epoch,
            view,
            height: request.height,
            parent_view: request.parent_view,
            parent: request.parent,
            payload,
        };
        let digest = block.digest(&self.hasher);
        let bytes = Proposal::signing_bytes(&self.config.chain_id, self.config.epoch, view, &digest);
        let proposal = Proposal {
            block: block.clone(),
            signature: self.signer.sign(&bytes),
        };
        let vote = self.sign_vote(VoteKind::Notarize, view, digest);
        self.safety.record_proposal(view, digest);
        self.effects.push(Effect::StoreBlock(block.clone()));
        self.blocks.insert(digest, block);
        let state = self.view_state(view);
        state.proposal = Some((digest, boundary::own(proposal.clone())));
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
        if self.ended {
            return;
        }
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
        let padding = block.height > self.config.last_height;
        let state = self.view_state(view);
        if padding && state.validation == Validation::NotAsked {
            // Empty padding past the epoch's last height carries nothing to validate.
            state.validation = Validation::Valid;
        }
        match state.validation {
            Validation::NotAsked => {
                state.validation = Validation::Asked;
                let (height, parent, payload) = (block.height, block.parent, block.payload);
                self.effects.push(Effect::Validate {
                    view,
                    height,
                    digest,
                    parent,
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
        let leader = self.config.validators.leader(view);
        let mut asks = Vec::new();
        let state = self.view_state(view);
        for missing_view in missing {
            if state.requested.len() >= REQUESTS_PER_PROPOSAL_MAX {
                break;
            }
            if state.requested.insert(*missing_view) {
                asks.push(*missing_view);
            }
        }
        for missing_view in asks {
            self.send(leader, &Message::Request { view: missing_view });
        }
    }

    /// Checks that `block` extends a justified parent. This is the rule that carries safety
    /// across views: a block finalized in view p can never be nullified, so every later
    /// justified proposal extends it.
    fn justify(&self, block: &Block) -> Justification {
        let (view, parent_view) = (block.view, block.parent_view);
        let in_epoch =
            block.epoch == self.config.epoch && (block.height <= self.config.last_height || block.payload.is_empty());
        let pending_ok = block.height <= self.anchor.height + HEIGHTS_PENDING_MAX;
        if parent_view < self.anchor.view || !in_epoch || !pending_ok {
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
        let check_nullifications = cfg!(not(feature = "mutation-skip-nullification-check"));
        if check_nullifications && view > parent_view + 1 {
            let since = self.nullified_since(view - 1);
            if since > parent_view {
                missing.push(since);
            }
        }
        if missing.is_empty() {
            Justification::Ready
        } else {
            Justification::Missing(missing)
        }
    }

    fn on_proposal(&mut self, proposal: Verified<Proposal>, digest: Digest) {
        let view = proposal.block.view;
        if view > self.view.saturating_add(VIEWS_AHEAD_MAX) {
            return self.on_far_vote(self.config.validators.leader(view), view);
        }
        let state = self.view_state(view);
        if let Some((known, first)) = &state.proposal {
            if *known != digest {
                let first = first.get().clone();
                self.record_evidence(Evidence::Proposals {
                    first,
                    second: proposal.into_inner(),
                });
            }
            return;
        }
        self.wanted_blocks.remove(&digest);
        self.blocks.insert(digest, proposal.block.clone());
        self.view_state(view).proposal = Some((digest, proposal));
        self.try_notarize();
        self.try_deliver();
    }

    fn on_vote(&mut self, vote: Verified<Vote>) {
        let state = self.view_state(vote.view);
        let existing = state.votes(vote.kind).get(&vote.signer).cloned();
        if let Some(first) = existing {
            if votes_conflict(first.get(), vote.get()) {
                self.record_evidence(Evidence::Votes {
                    first: first.into_inner(),
                    second: vote.into_inner(),
                });
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
                first: first.into_inner(),
                second: vote.get().clone(),
            });
        }
        let quorum = self.config.validators.quorum();
        let state = self.view_state(vote.view);
        let (kind, view, digest) = (vote.kind, vote.view, vote.digest);
        let had_certificate = state.certificate(kind).is_some();
        state.votes(kind).insert(vote.signer, vote);
        if had_certificate {
            return;
        }
        let mut matching: Vec<&Verified<Vote>> = state
            .votes(kind)
            .values()
            .filter(|vote| vote.digest == digest)
            .collect();
        if matching.len() < quorum {
            return;
        }
        if kind == VoteKind::Nullify {
            // The quorum whose claims prove the longest range of nullified views.
            matching.sort_by_key(|vote| (vote.since, vote.signer));
            matching.truncate(quorum);
            matching.sort_by_key(|vote| vote.signer);
        }
        let certificate = boundary::assemble(kind, view, digest, &matching);
        self.on_certificate(certificate);
    }

    /// Acts on a verified certificate this replica did not hold (or a stronger nullification).
    fn on_certificate(&mut self, certificate: Verified<Certificate>) {
        let (kind, view, digest) = (certificate.kind, certificate.view, certificate.digest);
        if view <= self.anchor.view || self.holds(certificate.get()) {
            return;
        }
        if kind != VoteKind::Finalize {
            // Before any vote it leads to is persisted: a replica that finalized a view must
            // restart with the notarization that let it, or nobody may ever end that view.
            self.effects.push(Effect::StoreCertificate(certificate.get().clone()));
        }
        let nullified_here = self.own_vote(VoteKind::Nullify, view).is_some();
        let state = self.view_state(view);
        match kind {
            VoteKind::Notarize => {
                state.notarization = Some(certificate.clone());
                if nullified_here {
                    // Notarized although this replica timed out first: its timeouts are
                    // shorter than the network needs.
                    self.backoff_learned = (self.backoff_learned + 1).min(TIMEOUT_BACKOFF_SHIFT_MAX);
                    self.views_in_time = 0;
                    self.stats.timeouts_learned += 1;
                }
                if view >= self.view && self.safety.may_finalize(view) {
                    let vote = self.sign_vote(VoteKind::Finalize, view, digest);
                    self.safety.record_finalize(view, digest);
                    self.persist_then(Held::Vote(vote));
                    self.on_view_in_time();
                }
                if view >= self.view {
                    self.failed_views = 0;
                    self.advance_past(&certificate);
                }
            }
            VoteKind::Nullify => {
                let replaced = state.nullification.replace(certificate.clone()).is_some();
                if view >= self.view && !replaced {
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

    /// The current view was notarized before this replica timed out.
    fn on_view_in_time(&mut self) {
        self.views_in_time += 1;
        if self.views_in_time >= VIEWS_FINALIZED_BEFORE_DECAY {
            self.views_in_time = 0;
            self.backoff_learned = self.backoff_learned.saturating_sub(1);
        }
    }

    // ---- finalization and catch-up ----

    /// Delivers the pending finalization if every block down to the anchor is known, in
    /// batches of at most `CATCH_UP_BLOCKS_MAX` blocks, each with the headers that link it to
    /// the certified block.
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
                self.want_block(digest);
                return self.request_catch_up(finalization.view);
            };
            if block.height <= self.anchor.height {
                self.stats.conflicting_finalizations += 1;
                self.pending_finalization = None;
                return;
            }
            if chain.len() as u64 >= HEIGHTS_PENDING_MAX {
                // Too far ahead to assemble from memory: block sync brings it in batches.
                return self.request_catch_up(finalization.view);
            }
            chain.push(block.clone());
            digest = block.parent;
        }
        chain.reverse();
        self.pending_finalization = None;
        // Padding past the epoch's last height proves finality but is never delivered.
        let deliverable = chain
            .iter()
            .take_while(|block| block.height <= self.config.last_height)
            .count();
        // Headers only for the blocks that prove a batch's finality: those after its end.
        let first_end = deliverable.min(CATCH_UP_BLOCKS_MAX);
        let headers: Vec<BlockHeader> = chain[first_end..]
            .iter()
            .map(|block| block.header(&self.hasher))
            .collect();
        let mut start = 0;
        while start < deliverable {
            let end = (start + CATCH_UP_BLOCKS_MAX).min(deliverable);
            let batch = FinalizedChain {
                blocks: chain[start..end].to_vec(),
                headers: headers[end - first_end..].to_vec(),
                finalization: finalization.get().clone(),
            };
            self.deliver(boundary::own_chain(batch));
            start = end;
        }
        self.advance_past(&finalization);
        self.end_epoch_if_final();
    }

    fn on_block(&mut self, block: Block, digest: Digest) {
        if !self.wanted_blocks.remove(&digest) {
            return self.reject();
        }
        self.blocks.insert(digest, block);
        self.try_deliver();
        self.try_propose();
        self.try_notarize();
    }

    /// Asks peers for a block a finalization or a justified parent needs; again only after a
    /// timeout.
    fn want_block(&mut self, digest: Digest) {
        if self.wanted_blocks.insert(digest) {
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
            self.stats.catch_up_requests += 1;
            self.effects.push(Effect::RequestCatchUp {
                after_height: self.anchor.height,
            });
        }
    }

    /// Hands one verified batch to the node and moves the anchor to its last block.
    fn deliver(&mut self, chain: Verified<FinalizedChain>) {
        let chain = chain.into_inner();
        let first = chain.blocks.first().expect("a delivered chain is never empty");
        let last = chain.blocks.last().expect("a delivered chain is never empty");
        assert!(first.height == self.anchor.height + 1, "delivery skips a height");
        assert!(last.height <= self.config.last_height, "delivery past the epoch's end");
        let digest = match chain.headers.first() {
            None => chain.finalization.digest,
            Some(next) => next.parent,
        };
        self.anchor = Anchor {
            view: last.view,
            height: last.height,
            digest,
        };
        self.anchor_finalization = Some((self.config.epoch, chain.finalization.clone()));
        self.catch_up_requested = None;
        self.ahead.clear();
        self.effects.push(Effect::Finalized(chain));
        self.prune();
    }

    fn end_epoch_if_final(&mut self) {
        if self.anchor.height != self.config.last_height || self.ended {
            return;
        }
        let Some((_, finalization)) = self.anchor_finalization.clone() else {
            return;
        };
        self.ended = true;
        self.held.clear();
        self.effects.push(Effect::EpochEnded {
            last: self.anchor,
            finalization,
        });
    }

    fn on_catch_up(&mut self, chain: FinalizedChain) {
        let anchor = self.anchor;
        let checked = boundary::chain_of(&self.config, &self.verifier, &self.hasher, &anchor, chain);
        let Ok((chain, _)) = checked else {
            return self.reject();
        };
        let finalization = boundary::certificate_of(&self.config, &self.verifier, chain.finalization.clone())
            .expect("verified with its chain");
        self.deliver(chain);
        if finalization.view > self.anchor.view {
            // The certified block is further up: the rest comes from memory or the next batch.
            let newer = self
                .pending_finalization
                .as_ref()
                .is_none_or(|pending| pending.view < finalization.view);
            if newer {
                self.pending_finalization = Some(finalization.clone());
            }
        }
        self.advance_past(&finalization);
        self.try_deliver();
        self.end_epoch_if_final();
        self.try_propose();
        self.try_notarize();
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

/// `Certificate::proven_since` for a certificate not yet verified: only used to decide whether
/// it is worth verifying.
fn proven_since_unchecked(certificate: &Certificate, validators: &crate::types::ValidatorSet) -> View {
    if certificate.view == 0 {
        return 0;
    }
    certificate.proven_since(validators)
}
