//! The consensus driver: runs this node's `corridor_consensus::Replica` against the chain.
//!
//! It carries out the replica's effects and keeps the driver contract of consensus/README.md:
//! - the safety state of a `Persist`, with every block and certificate stored since the last
//!   one, is written in one synced batch before `Persisted` is fed back, so no vote leaves
//!   before what it commits to is durable; a restart hands all of it back in `Durable`;
//! - finalized batches arrive verified (the replica checked their certificates at the
//!   boundary); each block is executed and stored with its own finality proof, in order;
//! - a certified block that disagrees with our state halts block production loudly (metric,
//!   log, `/v1/status`) and the node keeps serving reads.
//!
//! The driver runs on its own thread (execution and fsync block) and is generic over the
//! transport, so the same code runs one validator (`corridord dev`), an in-process cluster
//! in tests, and a libp2p network.

use crate::chain::{Application, Chain, Parent, Refusal, now_ms};
use crate::genesis::Genesis;
use crate::metrics::Stage;
use corridor_consensus::{
    self as consensus, Anchor, Config, Digest, Durable, Effect, FinalizedChain, Input, Message, Replica, SafetyState,
    Timeouts, ValidatorIndex, ValidatorSet, View,
};
use corridor_sdk::crypto::{BatchItem, PrivateKey, PublicKey, Signature as SdkSignature, verify_batch};
use corridor_sdk::{AccountId, Block, Certificate, Hash, HashAlgorithm, codec};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// Proposals waiting for our state to reach the root they name, kept at most.
const VALIDATIONS_PENDING_MAX: usize = 64;
/// How often a waiting validation or proposal is looked at again without a wake-up.
const RECHECK_MS: u64 = 50;
/// Transactions expired in the mempool are swept at most this often.
const PURGE_INTERVAL_MS: u64 = 1_000;
/// How often a validator asks a peer for finalized blocks above its head. The replica asks
/// when it sees a finalization it cannot place; this also covers a node that restarted into
/// an idle network, where no new finalization would tell it that it is behind.
const SYNC_POLL_MS: u64 = 1_000;

/// Consensus store keys (`Storage::consensus_*`).
const KEY_SAFETY: &[u8] = b"s";
const PREFIX_BLOCK: &[u8] = b"b";
const PREFIX_CERTIFICATE: &[u8] = b"c";

/// What reaches the driver from outside its thread.
#[cfg_attr(
    not(test),
    allow(dead_code, reason = "peers' events come with the network transport")
)]
pub(crate) enum Event {
    /// Consensus bytes from a validator, authenticated by the transport.
    Message {
        from: ValidatorIndex,
        bytes: Vec<u8>,
    },
    /// A finalized batch from a peer's block sync (`corridor_consensus::encode_chain`), with
    /// the transport's token for the peer that served it.
    CatchUp {
        bytes: Vec<u8>,
        source: u64,
    },
    /// Transactions became ready in the mempool.
    TxsReady,
    Stop,
}

/// How the driver reaches the other validators.
pub(crate) trait Transport: Send + 'static {
    fn send(&self, to: ValidatorIndex, bytes: Vec<u8>);
    fn broadcast(&self, bytes: Vec<u8>);
    /// Fetch finalized blocks above `after_height` from a peer; the answer comes back as
    /// `Event::CatchUp`.
    fn request_catch_up(&self, after_height: u64);
    /// The batch `source` served did not verify (the transport may drop that peer).
    fn refused_catch_up(&self, _source: u64) {}
}

/// No peers: `corridord dev` (n = 1).
pub(crate) struct Alone;

impl Transport for Alone {
    fn send(&self, _to: ValidatorIndex, _bytes: Vec<u8>) {}
    fn broadcast(&self, _bytes: Vec<u8>) {}
    fn request_catch_up(&self, _after_height: u64) {}
}

pub(crate) struct NodeSigner(pub PrivateKey);

impl consensus::Signer for NodeSigner {
    fn sign(&self, message: &[u8]) -> consensus::Signature {
        consensus::Signature(self.0.sign(message).as_bytes().to_vec())
    }
}

/// The validator set's keys by index; Ed25519 signatures are checked in batches (whose
/// verdict equals single verification's: see ADR 0003).
pub(crate) struct NodeVerifier(pub Vec<PublicKey>);

impl NodeVerifier {
    fn signature(
        &self,
        validator: ValidatorIndex,
        signature: &consensus::Signature,
    ) -> Option<(&PublicKey, SdkSignature)> {
        let key = self.0.get(usize::from(validator))?;
        let signature = SdkSignature::from_bytes(key.scheme(), &signature.0).ok()?;
        Some((key, signature))
    }
}

impl consensus::Verifier for NodeVerifier {
    fn verify(&self, validator: ValidatorIndex, message: &[u8], signature: &consensus::Signature) -> bool {
        self.signature(validator, signature)
            .is_some_and(|(key, signature)| key.verify(message, &signature).is_ok())
    }

    fn verify_all(&self, items: &[(ValidatorIndex, &[u8], &consensus::Signature)]) -> bool {
        let mut parsed = Vec::with_capacity(items.len());
        for (validator, message, signature) in items {
            let Some((key, signature)) = self.signature(*validator, signature) else {
                return false;
            };
            parsed.push((key, *message, signature));
        }
        let batch: Vec<BatchItem<'_>> = parsed
            .iter()
            .map(|(public_key, message, signature)| BatchItem {
                public_key,
                message,
                signature,
            })
            .collect();
        verify_batch(&batch).into_iter().all(|ok| ok)
    }
}

pub(crate) struct NodeHasher(pub HashAlgorithm);

impl consensus::Hasher for NodeHasher {
    fn hash(&self, bytes: &[u8]) -> Digest {
        Digest(self.0.digest(bytes).0)
    }
}

fn digest_of(hash: Hash) -> Digest {
    Digest(hash.0)
}

fn hash_of(digest: Digest) -> Hash {
    Hash(digest.0)
}

/// The consensus configuration of epoch 0 for validator `me` of `genesis`.
pub(crate) fn consensus_config(genesis: &Genesis, me: ValidatorIndex) -> Config {
    Config {
        chain_id: genesis.chain_id.as_bytes().to_vec(),
        epoch: 0,
        validators: ValidatorSet::new(genesis.validators.len()).expect("genesis validates the validator count"),
        me,
        last_height: u64::MAX,
        timeouts: Timeouts::from_base(genesis.consensus_timeout_ms),
    }
}

/// The consensus block a stored block was finalized as.
fn consensus_block(block: &Block, certificate: &Certificate) -> consensus::Block {
    consensus::Block {
        epoch: certificate.epoch,
        view: certificate.view,
        height: block.header.height,
        parent_view: certificate.parent_view,
        parent: digest_of(certificate.parent_digest),
        payload: codec::encode(block),
    }
}

/// A proposal we were asked for, waiting for transactions (or for its parent's header).
struct ProposalRequest {
    view: View,
    parent: Digest,
    asked: Instant,
}

struct PendingValidation {
    view: View,
    digest: Digest,
    parent: Digest,
    block: Block,
}

pub(crate) struct Driver<T: Transport> {
    chain: Arc<Chain>,
    replica: Replica<NodeSigner, NodeVerifier, NodeHasher>,
    hasher: NodeHasher,
    transport: T,
    events: Receiver<Event>,
    proposer: AccountId,
    block_interval: Duration,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    proposal: Option<ProposalRequest>,
    validations: Vec<PendingValidation>,
    /// Headers of blocks consensus may build on, by consensus digest: the head and blocks
    /// proposed or validated above it.
    parents: BTreeMap<Digest, Parent>,
    /// Blocks proposed or validated but not yet final, with their views: released to the
    /// pool if abandoned.
    in_flight: BTreeMap<Digest, (View, Block)>,
    /// Notarized blocks above the head (from the notarizations the replica stores): a later
    /// proposal may extend them, so their transactions stay held.
    notarized: std::collections::BTreeSet<Digest>,
    last_purge_ms: u64,
    last_sync_ms: u64,
    /// Added to the clock this driver reads (tests skew a validator's clock with it).
    clock_offset_ms: i64,
}

impl<T: Transport> Driver<T> {
    /// A driver for validator `me` (its index in genesis) resuming from what the chain's
    /// store holds. Returns the driver and the sender for its events.
    pub fn new(
        chain: Arc<Chain>,
        me: ValidatorIndex,
        key: PrivateKey,
        transport: T,
        block_interval: Duration,
    ) -> (Driver<T>, Sender<Event>) {
        let genesis = chain.genesis();
        let algorithm = genesis.hash_algorithm;
        let config = consensus_config(genesis, me);
        let proposer = genesis.validators[usize::from(me)].id.clone();
        let verifier = NodeVerifier(genesis.validators.iter().map(|v| v.public_key.clone()).collect());
        let (durable, head_parent) = restore(&chain, &NodeHasher(algorithm));
        let mut parents = BTreeMap::new();
        parents.insert(durable.anchor.digest, head_parent);
        let replica = Replica::new(config, NodeSigner(key), verifier, NodeHasher(algorithm), durable);
        let (sender, events) = std::sync::mpsc::channel();
        let wake = sender.clone();
        chain.wakeup.set(Box::new(move || {
            let _ = wake.send(Event::TxsReady);
        }));
        let driver = Driver {
            chain,
            replica,
            hasher: NodeHasher(algorithm),
            transport,
            events,
            proposer,
            block_interval,
            timers: BinaryHeap::new(),
            proposal: None,
            validations: Vec::new(),
            parents,
            in_flight: BTreeMap::new(),
            notarized: std::collections::BTreeSet::new(),
            last_purge_ms: 0,
            last_sync_ms: 0,
            clock_offset_ms: 0,
        };
        (driver, sender)
    }

    /// Read the clock `offset_ms` off (tests: a validator whose clock jumped).
    #[cfg(test)]
    pub fn skew_clock(&mut self, offset_ms: i64) {
        self.clock_offset_ms = offset_ms;
    }

    fn now_ms(&self) -> u64 {
        now_ms().saturating_add_signed(self.clock_offset_ms)
    }

    /// Drive the replica until `Event::Stop` (or every sender is gone).
    pub fn run(mut self) {
        self.step(Input::Start);
        loop {
            let now = Instant::now();
            while let Some(Reverse((at, timer))) = self.timers.peek().copied()
                && at <= now
            {
                self.timers.pop();
                self.step(Input::Timeout { timer });
            }
            self.housekeeping();
            let next_timer = self.timers.peek().map(|Reverse((at, _))| *at);
            let wait = next_timer
                .map(|at| at.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_millis(RECHECK_MS))
                .min(Duration::from_millis(RECHECK_MS));
            match self.events.recv_timeout(wait) {
                Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(event) => self.on_event(event),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Message { from, bytes } => self.step(Input::Message { from, bytes }),
            Event::CatchUp { bytes, source } => match self
                .chain
                .metrics
                .stages
                .run(Stage::Decode, || consensus::decode_chain(&bytes, CATCH_UP_BYTES_MAX))
            {
                // An answer that no longer extends our anchor is stale, not hostile.
                Ok(chain)
                    if chain
                        .blocks
                        .first()
                        .is_some_and(|b| b.height == self.replica.anchor().height + 1) =>
                {
                    self.step(Input::CatchUp(chain));
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!("a peer's catch-up batch does not decode: {error}");
                    self.transport.refused_catch_up(source);
                }
            },
            Event::TxsReady => {
                self.chain.wakeup.clear();
                self.try_propose();
            }
            Event::Stop => {}
        }
    }

    /// Work that waits on time or on our state: expired transactions, the proposal we owe,
    /// validations waiting for our state to catch up.
    fn housekeeping(&mut self) {
        let now = now_ms();
        if now >= self.last_purge_ms + PURGE_INTERVAL_MS {
            self.chain.mempool.purge_expired(now);
            if let Err(error) = self.chain.compact_journal() {
                panic!("{error}");
            }
            self.last_purge_ms = now;
        }
        if now >= self.last_sync_ms + SYNC_POLL_MS {
            self.transport.request_catch_up(self.replica.anchor().height);
            self.last_sync_ms = now;
        }
        self.settle_in_flight();
        self.try_propose();
        self.retry_validations();
        let stats = self.replica.stats();
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        self.chain.metrics.view.store(self.replica.view(), relaxed);
        self.chain
            .metrics
            .consensus_messages_rejected
            .store(stats.messages_rejected, relaxed);
    }

    /// Feed one input and carry out everything it leads to.
    fn step(&mut self, input: Input) {
        let mut inputs = std::collections::VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            if self.chain.halted().is_some() {
                return;
            }
            let effects = {
                let _timer = self.chain.metrics.stages.time(Stage::Consensus);
                self.replica.handle(input)
            };
            let mut puts: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            let mut persisted = None;
            for effect in effects {
                match effect {
                    Effect::Send { to, bytes } => self.transport.send(to, bytes),
                    Effect::Broadcast { bytes } => self.transport.broadcast(bytes),
                    Effect::ScheduleTimeout { timer, after_ms } => {
                        let at = Instant::now() + Duration::from_millis(after_ms);
                        self.timers.push(Reverse((at, timer)));
                    }
                    Effect::Persist {
                        sequence,
                        state,
                        certificate,
                    } => {
                        let epoch = state.epoch;
                        let certificate = certificate.map(|c| consensus::encode(epoch, &Message::Certificate(c)));
                        puts.push((KEY_SAFETY.to_vec(), codec::encode(&(state.encode(), certificate))));
                        persisted = Some(sequence);
                    }
                    Effect::StoreBlock(block) => {
                        self.learn_parent(&block);
                        puts.push((
                            block_key(block.height, &block.digest(&self.hasher)),
                            block_bytes(&block),
                        ));
                    }
                    Effect::StoreCertificate(certificate) => {
                        if certificate.kind == consensus::VoteKind::Notarize {
                            self.notarized.insert(certificate.digest);
                        }
                        let key = certificate_key(certificate.view, certificate.kind.tag());
                        let epoch = self.replica.config().epoch;
                        puts.push((key, consensus::encode(epoch, &Message::Certificate(certificate))));
                    }
                    Effect::RequestProposal { view, parent, .. } => {
                        self.proposal = Some(ProposalRequest {
                            view,
                            parent,
                            asked: Instant::now(),
                        });
                    }
                    Effect::Validate {
                        view,
                        digest,
                        parent,
                        payload,
                        ..
                    } => match self.chain.metrics.stages.run(Stage::Decode, || {
                        codec::decode::<Block>(&payload, consensus::limits::PAYLOAD_BYTES_MAX)
                    }) {
                        Ok(block) => self.validations.push(PendingValidation {
                            view,
                            digest,
                            parent,
                            block,
                        }),
                        Err(error) => {
                            tracing::warn!("proposal in view {view} does not decode: {error}");
                            inputs.push_back(Input::Validated {
                                view,
                                digest,
                                valid: false,
                            });
                        }
                    },
                    Effect::Finalized(batch) => {
                        // What the batch's blocks were stored with must be durable first.
                        self.write(&mut puts);
                        self.execute(batch);
                    }
                    Effect::RequestCatchUp { after_height } => self.transport.request_catch_up(after_height),
                    Effect::Evidence(evidence) => {
                        tracing::warn!("a validator equivocated: {evidence:?}");
                        self.chain
                            .metrics
                            .evidence
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Effect::EpochEnded { last, .. } => {
                        tracing::info!("epoch {} ended at height {}", self.replica.config().epoch, last.height);
                    }
                }
            }
            self.write(&mut puts);
            if let Some(sequence) = persisted {
                inputs.push_back(Input::Persisted { sequence });
            }
            inputs.extend(self.answer_validations());
            inputs.extend(self.answer_proposal());
        }
    }

    fn write(&self, puts: &mut Vec<(Vec<u8>, Vec<u8>)>) {
        if !puts.is_empty() {
            let _timer = self.chain.metrics.stages.time(Stage::Consensus);
            self.chain.storage().consensus_write(puts, &[]);
            puts.clear();
        }
    }

    fn learn_parent(&mut self, block: &consensus::Block) {
        let digest = block.digest(&self.hasher);
        if self.parents.contains_key(&digest) {
            return;
        }
        let decoded = {
            let _timer = self.chain.metrics.stages.time(Stage::Decode);
            codec::decode::<Block>(&block.payload, consensus::limits::PAYLOAD_BYTES_MAX)
        };
        if let Ok(decoded) = decoded {
            self.parents
                .insert(digest, Parent::of(&decoded.header, self.chain.hash_algorithm()));
        }
    }

    /// The header a block on `digest` must follow, if we know that block.
    fn parent(&mut self, digest: &Digest) -> Option<Parent> {
        if let Some(parent) = self.parents.get(digest) {
            return Some(parent.clone());
        }
        let block = self.replica.block(digest)?.clone();
        self.learn_parent(&block);
        self.parents.get(digest).cloned()
    }

    fn try_propose(&mut self) {
        if let Some(input) = self.answer_proposal() {
            self.step(input);
        }
    }

    /// Our proposal, once transactions are ready: at once for a full block, else after the
    /// block interval (so a trickle still batches). On a parent that is notarized but not
    /// final, an empty block if nothing is ready: a notarized block whose own finalization
    /// was lost becomes final only through a descendant, and its transactions are held
    /// meanwhile, so without it nobody would ever propose again.
    fn answer_proposal(&mut self) -> Option<Input> {
        let request = self.proposal.as_ref()?;
        if request.view != self.replica.view() {
            self.proposal = None;
            return None;
        }
        let (view, parent_digest, asked) = (request.view, request.parent, request.asked);
        let ready = self.chain.mempool.ready_len();
        let full = ready >= corridor_sdk::limits::BLOCK_TXS_MAX;
        let parent = self.parent(&parent_digest)?;
        let parent_pending = parent.height > self.chain.head().height;
        if (ready == 0 && !parent_pending) || (!full && asked.elapsed() < self.block_interval) {
            return None;
        }
        let proposing = self.chain.metrics.stages.time(Stage::Consensus);
        let block = self
            .chain
            .propose(&parent, &self.proposer, self.now_ms(), parent_pending)?;
        self.proposal = None;
        let payload = codec::encode(&block);
        drop(proposing);
        let digest = self.digest_on(view, &block, &payload, parent_digest);
        self.parents
            .insert(digest, Parent::of(&block.header, self.chain.hash_algorithm()));
        Some(Input::Proposal { view, payload })
    }

    /// The consensus digest our proposal will have, to remember it as a parent and in flight.
    fn digest_on(&mut self, view: View, block: &Block, payload: &[u8], parent: Digest) -> Digest {
        let parent_view = self
            .replica
            .block(&parent)
            .map_or(self.replica.anchor().view, |block| block.view);
        let candidate = consensus::Block {
            epoch: self.replica.config().epoch,
            view,
            height: block.header.height,
            parent_view,
            parent,
            payload: payload.to_vec(),
        };
        let digest = candidate.digest(&self.hasher);
        self.in_flight.insert(digest, (view, block.clone()));
        digest
    }

    fn retry_validations(&mut self) {
        let inputs = self.answer_validations();
        for input in inputs {
            self.step(input);
        }
    }

    /// Verdicts for the proposals we can judge now; those naming a state we have not reached
    /// yet wait (up to `VALIDATIONS_PENDING_MAX`, oldest dropped).
    fn answer_validations(&mut self) -> Vec<Input> {
        let mut answers = Vec::new();
        let pending = std::mem::take(&mut self.validations);
        let view = self.replica.view();
        for validation in pending {
            if validation.view < view {
                continue; // the replica moved on
            }
            let Some(parent) = self.parent(&validation.parent) else {
                self.validations.push(validation);
                continue;
            };
            let verdict = {
                let _timer = self.chain.metrics.stages.time(Stage::Consensus);
                self.chain.verify_proposal(&validation.block, &parent, self.now_ms())
            };
            match verdict {
                Ok(()) => {
                    self.parents.insert(
                        validation.digest,
                        Parent::of(&validation.block.header, self.chain.hash_algorithm()),
                    );
                    self.in_flight
                        .insert(validation.digest, (validation.view, validation.block));
                    answers.push(Input::Validated {
                        view: validation.view,
                        digest: validation.digest,
                        valid: true,
                    });
                }
                Err(Refusal::Invalid(error)) => {
                    tracing::debug!(view = validation.view, "refused: {}", error.message);
                    answers.push(Input::Validated {
                        view: validation.view,
                        digest: validation.digest,
                        valid: false,
                    });
                }
                Err(Refusal::Behind) => self.validations.push(validation),
            }
        }
        let excess = self.validations.len().saturating_sub(VALIDATIONS_PENDING_MAX);
        self.validations.drain(..excess);
        answers
    }

    /// Execute a finalized batch (verified by the replica), then settle what was in flight.
    fn execute(&mut self, batch: FinalizedChain) {
        match commit_batch(&self.chain, &self.hasher, &batch) {
            Ok(committed) => {
                for (digest, parent) in committed {
                    self.in_flight.remove(&digest);
                    self.parents.insert(digest, parent);
                }
            }
            Err(why) => return self.chain.halt(why),
        }
        let chain = Arc::clone(&self.chain);
        let _timer = chain.metrics.stages.time(Stage::Consensus);
        self.settle_in_flight();
        self.hold_in_flight();
        self.prune();
    }

    /// Blocks in flight were abandoned if a block at their height is final, or if their view
    /// passed without a notarization (no later proposal can extend them): their transactions
    /// go back to the pool. The others stay held (a commit requeues its senders'
    /// transactions). Releasing is never unsafe: a transaction in two blocks executes once
    /// (the second is a duplicate), so this only trades block space for liveness.
    fn settle_in_flight(&mut self) {
        let head = self.chain.head().height;
        let view = self.replica.view();
        let notarized = &self.notarized;
        let (abandoned, kept): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|(digest, (block_view, block))| {
                block.header.height <= head || (*block_view < view && !notarized.contains(digest))
            });
        for (_, block) in abandoned.values() {
            self.chain.release(block);
        }
        self.notarized.retain(|digest| kept.contains_key(digest));
        self.in_flight = kept;
    }

    /// After a commit (which requeues its senders' transactions), hold those of the blocks
    /// still in flight again.
    fn hold_in_flight(&self) {
        let algorithm = self.chain.hash_algorithm();
        for (_, block) in self.in_flight.values() {
            let hashes: Vec<Hash> = block.txs.iter().map(|tx| tx.hash(algorithm)).collect();
            self.chain.mempool.hold(&hashes);
        }
    }

    /// Forget what the replica no longer needs: stored blocks at or below the anchor,
    /// certificates at or below its view, parents below the head.
    fn prune(&mut self) {
        let anchor = self.replica.anchor();
        let storage = self.chain.storage();
        let mut deletes: Vec<Vec<u8>> = storage
            .consensus_scan(PREFIX_BLOCK)
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| key_number(key) <= anchor.height)
            .collect();
        deletes.extend(
            storage
                .consensus_scan(PREFIX_CERTIFICATE)
                .into_iter()
                .map(|(key, _)| key)
                .filter(|key| key_number(key) <= anchor.view),
        );
        if !deletes.is_empty() {
            storage.consensus_write(&[], &deletes);
        }
        let head = self.chain.head().height;
        self.parents
            .retain(|digest, parent| parent.height >= head || *digest == anchor.digest);
    }
}

/// Execute a batch whose finality the caller verified, each block stored with its own
/// finality proof (the consensus headers after it and the batch's finalization). Blocks at
/// or below the head (executed before a restart) are skipped. Returns the committed blocks'
/// consensus digests with their headers as parents; `Err` says why the chain must halt.
pub(crate) fn commit_batch(
    chain: &Chain,
    hasher: &NodeHasher,
    batch: &FinalizedChain,
) -> Result<Vec<(Digest, Parent)>, String> {
    let algorithm = chain.hash_algorithm();
    let headers: Vec<consensus::BlockHeader> = batch.blocks.iter().map(|b| b.header(hasher)).collect();
    let mut committed = Vec::new();
    for (position, block) in batch.blocks.iter().enumerate() {
        if block.height <= chain.head().height {
            continue;
        }
        let sdk_block = {
            let _timer = chain.metrics.stages.time(Stage::Decode);
            codec::decode::<Block>(&block.payload, consensus::limits::PAYLOAD_BYTES_MAX)
        }
        .map_err(|error| format!("finalized block {} does not decode: {error}", block.height))?;
        let mut proof_headers = headers[position + 1..].to_vec();
        proof_headers.extend_from_slice(&batch.headers);
        // A block deep in a long batch keeps no proof of its own; the batch's last does.
        let finality = if proof_headers.len() <= consensus::limits::PROOF_HEADERS_MAX {
            consensus::encode_chain(&FinalizedChain {
                blocks: Vec::new(),
                headers: proof_headers,
                finalization: batch.finalization.clone(),
            })
        } else {
            Vec::new()
        };
        let certificate = Certificate {
            height: block.height,
            block_hash: sdk_block.header.hash(algorithm),
            epoch: block.epoch,
            view: block.view,
            parent_view: block.parent_view,
            parent_digest: hash_of(block.parent),
            finality,
        };
        let parent = Parent::of(&sdk_block.header, algorithm);
        chain.finalize(sdk_block, certificate).map_err(|error| error.message)?;
        committed.push((headers[position].digest(hasher), parent));
    }
    Ok(committed)
}

/// Room kept for the finality proof when a served batch is cut to a byte limit.
const SERVED_PROOF_BYTES_RESERVED: usize = 2 * 1024 * 1024;

/// Bytes of a catch-up batch from a peer.
pub(crate) const CATCH_UP_BYTES_MAX: usize =
    consensus::limits::CATCH_UP_BLOCKS_MAX * consensus::limits::BLOCK_BYTES_MAX + 64 * 1024 * 1024;

#[cfg_attr(
    not(test),
    allow(dead_code, reason = "block sync serves it with the network transport")
)]
/// Finalized blocks above `after_height`, as block sync serves them: at most
/// `CATCH_UP_BLOCKS_MAX`, ending at a block whose own finality proof covers them all. `None`
/// when there is nothing above `after_height`.
pub(crate) fn finalized_after(chain: &Chain, after_height: u64, bytes_max: usize) -> Option<FinalizedChain> {
    let head = chain.head().height;
    if after_height >= head {
        return None;
    }
    let last = head.min(after_height + consensus::limits::CATCH_UP_BLOCKS_MAX as u64);
    let storage = chain.storage();
    let mut stored = Vec::new();
    let mut bytes = SERVED_PROOF_BYTES_RESERVED;
    for height in after_height + 1..=last {
        let block = storage.block(height)?;
        bytes += codec::encode(&block.block).len() + 128;
        if bytes > bytes_max && !stored.is_empty() {
            break;
        }
        stored.push(block);
    }
    // Normally the last block's proof; a block deep in a long batch has none of its own.
    while stored.last().is_some_and(|block| block.certificate.finality.is_empty()) {
        stored.pop();
    }
    let proof = consensus::decode_chain(&stored.last()?.certificate.finality, CATCH_UP_BYTES_MAX).ok()?;
    Some(FinalizedChain {
        blocks: stored
            .iter()
            .map(|block| consensus_block(&block.block, &block.certificate))
            .collect(),
        headers: proof.headers,
        finalization: proof.finalization,
    })
}

fn block_key(height: u64, digest: &Digest) -> Vec<u8> {
    [PREFIX_BLOCK, &height.to_be_bytes(), &digest.0].concat()
}

fn certificate_key(view: View, kind: u8) -> Vec<u8> {
    [PREFIX_CERTIFICATE, &view.to_be_bytes(), &[kind]].concat()
}

/// The height or view in a block or certificate key.
fn key_number(key: &[u8]) -> u64 {
    let bytes: [u8; 8] = key
        .get(1..9)
        .and_then(|bytes| bytes.try_into().ok())
        .expect("consensus keys carry a u64 after the prefix");
    u64::from_be_bytes(bytes)
}

fn block_bytes(block: &consensus::Block) -> Vec<u8> {
    consensus::encode(block.epoch, &Message::Block(block.clone()))
}

/// What the replica must resume from, read back from the chain's store, and the head as a
/// parent. Stored consensus records are verified again by the replica (storage is outside
/// the boundary too); records that do not decode mean a corrupt database, which stops us.
pub(crate) fn restore(chain: &Chain, hasher: &NodeHasher) -> (Durable, Parent) {
    let algorithm = chain.hash_algorithm();
    let head = chain.head();
    let stored = chain.storage().block(head.height).expect("the head block is stored");
    let parent = Parent::of(&stored.block.header, algorithm);
    let mut durable = if head.height == 0 {
        Durable::genesis(digest_of(head.block_hash))
    } else {
        let certificate = &stored.certificate;
        let block = consensus_block(&stored.block, certificate);
        let anchor = Anchor {
            view: certificate.view,
            height: head.height,
            digest: block.digest(hasher),
        };
        let finalization = match consensus::decode_chain(&certificate.finality, CATCH_UP_BYTES_MAX) {
            Ok(proof) => Some((certificate.epoch, proof.finalization)),
            Err(_) => None,
        };
        let mut durable = Durable::genesis(anchor.digest);
        durable.anchor = anchor;
        durable.finalization = finalization;
        durable
    };
    let storage = chain.storage();
    if let Some(bytes) = storage.consensus_get(KEY_SAFETY) {
        let (safety, certificate): (Vec<u8>, Option<Vec<u8>>) =
            codec::decode(&bytes, 1024 * 1024).expect("stored safety state decodes");
        durable.safety = SafetyState::decode(&safety).expect("stored safety state decodes");
        durable.certificate =
            certificate.map(
                |bytes| match consensus::decode(&bytes, consensus::limits::MESSAGE_BYTES_MAX) {
                    Ok((_, Message::Certificate(certificate))) => certificate,
                    _ => panic!("the stored entry certificate does not decode; the database is corrupt"),
                },
            );
    }
    for (key, bytes) in storage.consensus_scan(PREFIX_BLOCK) {
        if key_number(&key) <= durable.anchor.height {
            continue;
        }
        match consensus::decode(&bytes, consensus::limits::MESSAGE_BYTES_MAX) {
            Ok((_, Message::Block(block))) => durable.blocks.push(block),
            _ => panic!("a stored consensus block does not decode; the database is corrupt"),
        }
    }
    for (key, bytes) in storage.consensus_scan(PREFIX_CERTIFICATE) {
        if key_number(&key) <= durable.anchor.view {
            continue;
        }
        match consensus::decode(&bytes, consensus::limits::MESSAGE_BYTES_MAX) {
            Ok((_, Message::Certificate(certificate))) => durable.certificates.push(certificate),
            _ => panic!("a stored consensus certificate does not decode; the database is corrupt"),
        }
    }
    (durable, parent)
}
