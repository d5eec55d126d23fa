//! A seeded, deterministic simulator: n replicas over a simulated network with per-link delay,
//! loss, duplication, reordering, partitions that heal, crashes with restart from persisted
//! safety state, and Byzantine validators (twins, an equivocating leader, a vote-for-everything
//! validator, a garbage sender).
//!
//! The rules this module keeps: simulated time only, one `Rng` per run, ordered collections
//! only, so a run is a pure function of its `SimConfig`; and every honest message and finalized
//! batch passes through the `Checker`.

mod byzantine;
mod checker;
pub mod crypto;
pub mod rng;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::rc::Rc;

pub use byzantine::Behaviour;
use byzantine::{Adversary, Outgoing, garbage};
use checker::Checker;
use crypto::{TestHasher, TestSigner, TestVerifier, secrets};
use rng::Rng;

use crate::codec::decode;
use crate::limits::{CATCH_UP_BLOCKS_MAX, MESSAGE_BYTES_MAX, TIMEOUT_BACKOFF_SHIFT_MAX};
use crate::message::{Certificate, FinalizedChain};
use crate::replica::{Durable, Effect, Input, Replica};
use crate::safety::SafetyState;
use crate::types::{Anchor, Block, Config, Digest, Height, ValidatorIndex, ValidatorSet};

type SimReplica = Replica<TestSigner, TestVerifier, TestHasher>;

/// Events one run may process before it is declared stuck.
const EVENTS_MAX: u64 = 20_000_000;
/// After the network heals, every honest replica must finalize past the highest height any
/// honest replica had at the heal, within this many views at the longest timeout (plus f views
/// led by faulty leaders).
pub const LIVENESS_VIEWS_MAX: u64 = 6;
/// The chain id every simulated signature is bound to.
pub const CHAIN_ID: &[u8] = b"corridor-sim";

/// Which faults a run injects.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FaultMix {
    /// Per-link delay and reordering only.
    None,
    /// Loss up to 30%, duplication, reordering.
    Lossy,
    /// Partitions that come and go, light loss.
    Partition,
    /// Crashes and restarts from persisted safety state, light loss.
    Crash,
    /// f Byzantine validators of random kinds, light loss.
    Byzantine,
    /// Everything at once: Byzantine, crashes, partitions, loss up to 30%.
    All,
}

impl FaultMix {
    pub const EVERY: [FaultMix; 6] = [
        FaultMix::None,
        FaultMix::Lossy,
        FaultMix::Partition,
        FaultMix::Crash,
        FaultMix::Byzantine,
        FaultMix::All,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultMix::None => "none",
            FaultMix::Lossy => "lossy",
            FaultMix::Partition => "partition",
            FaultMix::Crash => "crash",
            FaultMix::Byzantine => "byzantine",
            FaultMix::All => "all",
        }
    }

    pub fn parse(name: &str) -> Option<FaultMix> {
        FaultMix::EVERY.into_iter().find(|mix| mix.name() == name)
    }

    /// The mix a seed gets when the caller cycles through all of them.
    pub fn for_seed(seed: u64) -> FaultMix {
        let position = usize::try_from(seed % 6).expect("below 6");
        FaultMix::EVERY[position]
    }
}

/// One run's parameters.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    pub validators: usize,
    pub seed: u64,
    pub faults: FaultMix,
    /// Simulated time during which faults are injected; then the network heals.
    pub chaos_ms: u64,
    pub timeout_base_ms: u64,
    /// Print every input and effect to stderr (for replaying one failing seed).
    pub trace: bool,
}

impl SimConfig {
    pub fn new(validators: usize, seed: u64, faults: FaultMix) -> SimConfig {
        SimConfig {
            validators,
            seed,
            faults,
            chaos_ms: 1_500,
            timeout_base_ms: 100,
            trace: false,
        }
    }
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub config: SimConfig,
    pub violations: Vec<String>,
    /// Lowest and highest finalized height among honest replicas at the end.
    pub height_min: Height,
    pub height_max: Height,
    pub messages_delivered: u64,
    pub evidence_records: u64,
    pub messages_rejected: u64,
    pub catch_ups: u64,
    pub restarts: u64,
    pub end_ms: u64,
    pub byzantine: Vec<(ValidatorIndex, Behaviour)>,
}

/// Runs one seeded simulation.
pub fn run(config: &SimConfig) -> Outcome {
    Simulation::new(config).run()
}

enum EventKind {
    Deliver {
        slot: usize,
        from: ValidatorIndex,
        bytes: Rc<Vec<u8>>,
    },
    Input {
        slot: usize,
        epoch: u64,
        input: Input,
    },
    Persisted {
        slot: usize,
        epoch: u64,
        sequence: u64,
        state: SafetyState,
        certificate: Option<Certificate>,
    },
    Crash {
        slot: usize,
    },
    Restart {
        slot: usize,
    },
    Partition {
        groups: Vec<u8>,
    },
    PartitionEnd,
    Heal,
}

struct Event {
    time_ms: u64,
    order: u64,
    kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Event) -> bool {
        (self.time_ms, self.order) == (other.time_ms, other.order)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Event) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Event) -> std::cmp::Ordering {
        (self.time_ms, self.order).cmp(&(other.time_ms, other.order))
    }
}

/// One running instance: an honest validator, one of a pair of twins, or an adversary.
struct Slot {
    index: ValidatorIndex,
    behaviour: Behaviour,
    replica: Option<SimReplica>,
    adversary: Option<Adversary>,
    alive: bool,
    epoch: u64,
    durable_safety: SafetyState,
    durable_certificate: Option<Certificate>,
    durable_blocks: BTreeMap<Height, Vec<Block>>,
    durable_certificates: BTreeMap<u64, Vec<Certificate>>,
    /// The durable finalized chain: `log[h - 1]` is the block at height h.
    log: Vec<Block>,
    /// Finalization certificates of batch ends, by height.
    certificates: BTreeMap<Height, Certificate>,
    tip: Anchor,
    persist_free_ms: u64,
    conflicts_reported: bool,
}

struct Network {
    delay_ms: Vec<Vec<u64>>,
    jitter_ms: u64,
    loss_percent: u64,
    duplicate_percent: u64,
    groups: Option<Vec<u8>>,
}

struct Simulation {
    config: SimConfig,
    validators: ValidatorSet,
    rng: Rng,
    now_ms: u64,
    order: u64,
    queue: BinaryHeap<Reverse<Event>>,
    slots: Vec<Slot>,
    slots_by_index: Vec<Vec<usize>>,
    secrets: Rc<Vec<u64>>,
    genesis: Digest,
    network: Network,
    checker: Checker,
    healed: bool,
    heal_height: Height,
    done: bool,
    outcome: Outcome,
}

impl Simulation {
    fn new(config: &SimConfig) -> Simulation {
        let validators = ValidatorSet::new(config.validators).expect("simulated validator count in range");
        let mut rng = Rng::new(config.seed);
        let secrets = Rc::new(secrets(config.seed, config.validators));
        let verifier = TestVerifier::new(secrets.clone());
        let network = Network::new(config, &mut rng);
        let outcome = Outcome {
            config: *config,
            violations: Vec::new(),
            height_min: 0,
            height_max: 0,
            messages_delivered: 0,
            evidence_records: 0,
            messages_rejected: 0,
            catch_ups: 0,
            restarts: 0,
            end_ms: 0,
            byzantine: Vec::new(),
        };
        let mut simulation = Simulation {
            config: *config,
            validators,
            rng,
            now_ms: 0,
            order: 0,
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            slots_by_index: vec![Vec::new(); config.validators],
            secrets,
            genesis: crypto::hash_bytes(0, b"corridor-sim genesis"),
            network,
            checker: Checker::new(CHAIN_ID.to_vec(), validators, verifier),
            healed: false,
            heal_height: 0,
            done: false,
            outcome,
        };
        simulation.create_slots();
        simulation.schedule_faults();
        simulation
    }

    fn byzantine_count(&mut self) -> usize {
        let faults_max = self.validators.faults_max();
        match self.config.faults {
            FaultMix::Byzantine => faults_max,
            FaultMix::All => usize::try_from(self.rng.range(0, faults_max as u64)).unwrap_or(0),
            _ => 0,
        }
    }

    fn create_slots(&mut self) {
        let count = self.validators.count();
        let byzantine = self.byzantine_count();
        let mut behaviours = vec![Behaviour::Honest; count];
        let kinds = [
            Behaviour::Twin,
            Behaviour::Equivocator,
            Behaviour::VoteAll,
            Behaviour::Garbage,
        ];
        let mut assigned = 0;
        while assigned < byzantine {
            let index = self.rng.index(count);
            if behaviours[index].is_honest() {
                behaviours[index] = kinds[self.rng.index(kinds.len())];
                assigned += 1;
            }
        }
        for (index, behaviour) in behaviours.into_iter().enumerate() {
            let index = ValidatorIndex::try_from(index).expect("at most VALIDATORS_MAX");
            if !behaviour.is_honest() {
                self.outcome.byzantine.push((index, behaviour));
            }
            let instances = if behaviour == Behaviour::Twin { 2 } else { 1 };
            for _ in 0..instances {
                self.add_slot(index, behaviour);
            }
        }
    }

    fn add_slot(&mut self, index: ValidatorIndex, behaviour: Behaviour) {
        let slot_id = self.slots.len();
        let signer = TestSigner::new(self.secrets[usize::from(index)]);
        let adversary = match behaviour {
            Behaviour::Honest | Behaviour::Twin => None,
            _ => Some(Adversary::new(index, signer, CHAIN_ID.to_vec())),
        };
        self.slots.push(Slot {
            index,
            behaviour,
            replica: None,
            adversary,
            alive: false,
            epoch: 0,
            durable_safety: SafetyState::genesis(),
            durable_certificate: None,
            durable_blocks: BTreeMap::new(),
            durable_certificates: BTreeMap::new(),
            log: Vec::new(),
            certificates: BTreeMap::new(),
            tip: Anchor::genesis(self.genesis),
            persist_free_ms: 0,
            conflicts_reported: false,
        });
        self.slots_by_index[usize::from(index)].push(slot_id);
        self.schedule(0, EventKind::Restart { slot: slot_id });
    }

    fn schedule(&mut self, delay_ms: u64, kind: EventKind) {
        self.order += 1;
        let event = Event {
            time_ms: self.now_ms + delay_ms,
            order: self.order,
            kind,
        };
        self.queue.push(Reverse(event));
    }

    fn schedule_faults(&mut self) {
        let chaos_ms = self.config.chaos_ms;
        let faults = self.config.faults;
        if matches!(faults, FaultMix::Partition | FaultMix::All) {
            let mut start_ms = self.rng.range(0, chaos_ms / 4);
            for _ in 0..self.rng.range(1, 3) {
                let end_ms = (start_ms + self.rng.range(100, chaos_ms / 2)).min(chaos_ms);
                let groups = self.random_groups();
                self.schedule(start_ms, EventKind::Partition { groups });
                self.schedule(end_ms, EventKind::PartitionEnd);
                start_ms = end_ms + self.rng.range(0, chaos_ms / 4);
                if start_ms >= chaos_ms {
                    break;
                }
            }
        }
        if matches!(faults, FaultMix::Crash | FaultMix::All) {
            let honest: Vec<usize> = (0..self.slots.len())
                .filter(|slot| self.slots[*slot].behaviour.is_honest())
                .collect();
            let crashes = self.rng.range(1, self.validators.faults_max() as u64 + 1);
            for _ in 0..crashes {
                let slot = honest[self.rng.index(honest.len())];
                let crash_ms = self.rng.range(1, chaos_ms * 3 / 4);
                let restart_ms = self.rng.range(crash_ms + 1, chaos_ms);
                self.schedule(crash_ms, EventKind::Crash { slot });
                self.schedule(restart_ms, EventKind::Restart { slot });
            }
        }
        self.schedule(chaos_ms, EventKind::Heal);
    }

    fn random_groups(&mut self) -> Vec<u8> {
        let count = self.validators.count();
        if self.rng.percent(30) {
            let isolated = self.rng.index(count);
            return (0..count).map(|index| u8::from(index == isolated)).collect();
        }
        (0..count).map(|_| u8::from(self.rng.percent(50))).collect()
    }

    fn timeout_max_ms(&self) -> u64 {
        self.config.timeout_base_ms << TIMEOUT_BACKOFF_SHIFT_MAX
    }

    fn liveness_deadline_ms(&self) -> u64 {
        let views = LIVENESS_VIEWS_MAX + self.validators.faults_max() as u64;
        self.config.chaos_ms + views * self.timeout_max_ms()
    }

    fn run(mut self) -> Outcome {
        let deadline_ms = self.liveness_deadline_ms();
        let mut events = 0u64;
        while let Some(Reverse(event)) = self.queue.pop() {
            if event.time_ms > deadline_ms || self.done {
                break;
            }
            events += 1;
            if events > EVENTS_MAX {
                self.checker
                    .violation(format!("event budget of {EVENTS_MAX} exhausted at t={}ms", self.now_ms));
                break;
            }
            self.now_ms = event.time_ms;
            self.process(event.kind);
        }
        self.finish()
    }

    fn finish(mut self) -> Outcome {
        let honest: Vec<&Slot> = self.slots.iter().filter(|slot| slot.behaviour.is_honest()).collect();
        let heights: Vec<Height> = honest.iter().map(|slot| slot.tip.height).collect();
        self.outcome.height_min = heights.iter().copied().min().unwrap_or(0);
        self.outcome.height_max = heights.iter().copied().max().unwrap_or(0);
        if !self.done {
            let text = format!(
                "liveness: {} ms after the heal at {} ms, honest heights are {:?}, not all above {}",
                self.liveness_deadline_ms() - self.config.chaos_ms,
                self.config.chaos_ms,
                heights,
                self.heal_height
            );
            self.checker.violation(text);
        }
        for slot in &self.slots {
            if let Some(replica) = &slot.replica {
                self.outcome.messages_rejected += replica.stats().messages_rejected;
            }
        }
        self.outcome.violations = std::mem::take(&mut self.checker.violations);
        self.outcome.end_ms = self.now_ms;
        self.outcome
    }

    fn process(&mut self, kind: EventKind) {
        match kind {
            EventKind::Deliver { slot, from, bytes } => self.deliver(slot, from, &bytes),
            EventKind::Input { slot, epoch, input } => {
                if self.slots[slot].alive && self.slots[slot].epoch == epoch {
                    self.feed(slot, input);
                }
            }
            EventKind::Persisted {
                slot,
                epoch,
                sequence,
                state,
                certificate,
            } => {
                if self.slots[slot].alive && self.slots[slot].epoch == epoch {
                    self.slots[slot].durable_safety = state;
                    self.slots[slot].durable_certificate = certificate;
                    self.feed(slot, Input::Persisted { sequence });
                }
            }
            EventKind::Crash { slot } => self.crash(slot),
            EventKind::Restart { slot } => self.restart(slot),
            EventKind::Partition { groups } => self.network.groups = Some(groups),
            EventKind::PartitionEnd => self.network.groups = None,
            EventKind::Heal => self.heal(),
        }
    }

    fn crash(&mut self, slot: usize) {
        let state = &mut self.slots[slot];
        if state.alive {
            state.alive = false;
            state.replica = None;
            state.epoch += 1;
        }
    }

    fn restart(&mut self, slot: usize) {
        if self.slots[slot].alive {
            return;
        }
        let state = &mut self.slots[slot];
        state.alive = true;
        state.epoch += 1;
        if state.behaviour.is_honest() && self.now_ms > 0 {
            self.outcome.restarts += 1;
        }
        if matches!(
            state.behaviour,
            Behaviour::Honest | Behaviour::Twin | Behaviour::Equivocator
        ) {
            let config = Config {
                chain_id: CHAIN_ID.to_vec(),
                validators: self.validators,
                me: state.index,
                timeout_base_ms: self.config.timeout_base_ms,
            };
            let signer = TestSigner::new(self.secrets[usize::from(state.index)]);
            let verifier = TestVerifier::new(self.secrets.clone());
            let durable = Durable {
                safety: state.durable_safety,
                certificate: state.durable_certificate.clone(),
                anchor: state.tip,
                blocks: state.durable_blocks.values().flatten().cloned().collect(),
                certificates: state.durable_certificates.values().flatten().cloned().collect(),
                finalization: state.certificates.get(&state.tip.height).cloned(),
            };
            let replica = Replica::new(config, signer, verifier, TestHasher, durable);
            state.replica = Some(replica);
            self.feed(slot, Input::Start);
        }
    }

    fn heal(&mut self) {
        self.network.groups = None;
        self.network.loss_percent = 0;
        self.network.duplicate_percent = 0;
        for slot in 0..self.slots.len() {
            self.restart(slot);
        }
        self.healed = true;
        self.heal_height = self.honest_heights().max().unwrap_or(0);
        self.check_liveness();
    }

    fn honest_heights(&self) -> impl Iterator<Item = Height> + '_ {
        self.slots
            .iter()
            .filter(|slot| slot.behaviour.is_honest())
            .map(|slot| slot.tip.height)
    }

    fn check_liveness(&mut self) {
        if self.healed && self.honest_heights().all(|height| height > self.heal_height) {
            self.done = true;
        }
    }

    fn deliver(&mut self, slot: usize, from: ValidatorIndex, bytes: &Rc<Vec<u8>>) {
        if !self.slots[slot].alive {
            return;
        }
        self.outcome.messages_delivered += 1;
        match self.slots[slot].behaviour {
            Behaviour::Honest | Behaviour::Twin => {
                self.feed(
                    slot,
                    Input::Message {
                        from,
                        bytes: bytes.to_vec(),
                    },
                );
            }
            Behaviour::Equivocator => {
                if let Some(adversary) = self.slots[slot].adversary.as_mut() {
                    adversary.observe(bytes);
                }
                self.feed(
                    slot,
                    Input::Message {
                        from,
                        bytes: bytes.to_vec(),
                    },
                );
            }
            Behaviour::VoteAll => {
                let Some(adversary) = self.slots[slot].adversary.as_mut() else {
                    return;
                };
                let Ok(message) = decode(bytes, MESSAGE_BYTES_MAX) else {
                    return;
                };
                let outgoing = adversary.vote_all(&message);
                self.send_outgoing(slot, outgoing);
            }
            Behaviour::Garbage => {
                if self.rng.percent(30) {
                    let junk = garbage(bytes, &mut self.rng);
                    let to = self.random_peer(self.slots[slot].index);
                    self.send_outgoing(slot, vec![(Some(to), junk)]);
                }
            }
        }
    }

    fn random_peer(&mut self, me: ValidatorIndex) -> ValidatorIndex {
        let count = self.validators.count();
        loop {
            let peer = ValidatorIndex::try_from(self.rng.index(count)).expect("below the validator count");
            if peer != me || count == 1 {
                return peer;
            }
        }
    }

    fn feed(&mut self, slot: usize, input: Input) {
        let Some(replica) = self.slots[slot].replica.as_mut() else {
            return;
        };
        if self.config.trace {
            eprintln!(
                "t={} slot={slot} view={} in: {}",
                self.now_ms,
                replica.view(),
                describe_input(&input)
            );
        }
        let effects = replica.handle(input);
        if self.config.trace {
            for effect in &effects {
                eprintln!("    out: {}", describe_effect(effect));
            }
        }
        let conflicts = replica.stats().conflicting_finalizations;
        let state = &mut self.slots[slot];
        if conflicts > 0 && state.behaviour.is_honest() && !state.conflicts_reported {
            state.conflicts_reported = true;
            let text = format!(
                "t={}ms: agreement: honest validator {} saw a valid finalization conflicting with its chain",
                self.now_ms, state.index
            );
            self.checker.violation(text);
        }
        for effect in effects {
            self.apply(slot, effect);
        }
    }

    fn apply(&mut self, slot: usize, effect: Effect) {
        let epoch = self.slots[slot].epoch;
        match effect {
            Effect::Send { to, bytes } => self.send_from_replica(slot, Some(to), bytes),
            Effect::Broadcast { bytes } => self.send_from_replica(slot, None, bytes),
            Effect::ScheduleTimeout { timer, after_ms } => {
                self.schedule(
                    after_ms,
                    EventKind::Input {
                        slot,
                        epoch,
                        input: Input::Timeout { timer },
                    },
                );
            }
            Effect::Persist {
                sequence,
                state,
                certificate,
            } => {
                let ready_ms = self.slots[slot].persist_free_ms.max(self.now_ms) + self.rng.range(0, 2);
                self.slots[slot].persist_free_ms = ready_ms;
                let kind = EventKind::Persisted {
                    slot,
                    epoch,
                    sequence,
                    state,
                    certificate,
                };
                self.schedule(ready_ms - self.now_ms, kind);
            }
            Effect::RequestProposal { view, height, .. } => {
                let mut payload = view.to_le_bytes().to_vec();
                payload.extend_from_slice(&height.to_le_bytes());
                payload.extend_from_slice(&self.rng.next_u64().to_le_bytes());
                let input = Input::Proposal { view, payload };
                let delay_ms = self.rng.range(0, 2);
                self.schedule(delay_ms, EventKind::Input { slot, epoch, input });
            }
            Effect::Validate { view, digest, .. } => {
                let input = Input::Validated {
                    view,
                    digest,
                    valid: true,
                };
                let delay_ms = self.rng.range(0, 2);
                self.schedule(delay_ms, EventKind::Input { slot, epoch, input });
            }
            Effect::StoreBlock(block) => {
                self.slots[slot]
                    .durable_blocks
                    .entry(block.height)
                    .or_default()
                    .push(block);
            }
            Effect::StoreCertificate(certificate) => {
                self.slots[slot]
                    .durable_certificates
                    .entry(certificate.view)
                    .or_default()
                    .push(certificate);
            }
            Effect::Finalized(chain) => self.on_finalized(slot, chain),
            Effect::RequestCatchUp { after_height } => self.catch_up(slot, after_height),
            Effect::Evidence(_) => self.outcome.evidence_records += 1,
        }
    }

    fn on_finalized(&mut self, slot: usize, chain: FinalizedChain) {
        let state = &self.slots[slot];
        let who = format!("validator {} ({})", state.index, state.behaviour.name());
        let new_tip = if state.behaviour.is_honest() {
            self.checker.on_finalized(&who, &state.tip, &chain, self.now_ms)
        } else {
            Some(Anchor {
                view: chain.finalization.view,
                height: chain.blocks.last().map_or(state.tip.height, |block| block.height),
                digest: chain.finalization.digest,
            })
        };
        let Some(new_tip) = new_tip else {
            return;
        };
        let state = &mut self.slots[slot];
        state.log.extend(chain.blocks);
        state.certificates.insert(new_tip.height, chain.finalization);
        state.tip = new_tip;
        state.durable_blocks = state.durable_blocks.split_off(&(new_tip.height + 1));
        state.durable_certificates = state.durable_certificates.split_off(&(new_tip.view + 1));
        self.check_liveness();
    }

    /// Plays the node's block sync: a random honest peer hands over its finalized blocks.
    fn catch_up(&mut self, slot: usize, after_height: Height) {
        let honest: Vec<usize> = (0..self.slots.len())
            .filter(|peer| *peer != slot && self.slots[*peer].behaviour.is_honest())
            .collect();
        if honest.is_empty() {
            return;
        }
        let peer = honest[self.rng.index(honest.len())];
        let (from, to) = (self.slots[peer].index, self.slots[slot].index);
        if self.network.blocked(from, to) || self.rng.percent(self.network.loss_percent) {
            return;
        }
        let source = &self.slots[peer];
        let limit = after_height + CATCH_UP_BLOCKS_MAX as u64;
        let end = source.certificates.range(after_height + 1..=limit).next_back();
        let Some((end_height, finalization)) = end else {
            return;
        };
        let start = usize::try_from(after_height).expect("height fits usize");
        let end = usize::try_from(*end_height).expect("height fits usize");
        let chain = FinalizedChain {
            blocks: source.log[start..end].to_vec(),
            finalization: finalization.clone(),
        };
        self.outcome.catch_ups += 1;
        let delay_ms = 2 * self.network.delay(from, to, &mut self.rng);
        let epoch = self.slots[slot].epoch;
        self.schedule(
            delay_ms,
            EventKind::Input {
                slot,
                epoch,
                input: Input::CatchUp(chain),
            },
        );
    }

    fn send_from_replica(&mut self, slot: usize, to: Option<ValidatorIndex>, bytes: Vec<u8>) {
        let state = &self.slots[slot];
        if state.behaviour.is_honest() {
            self.checker.observe_sent(state.index, &bytes, self.now_ms);
        }
        let outgoing = if state.behaviour == Behaviour::Equivocator && to.is_none() {
            let me = state.index;
            let peers: Vec<ValidatorIndex> = self.validators.indices().filter(|peer| *peer != me).collect();
            let adversary = self.slots[slot]
                .adversary
                .as_mut()
                .expect("an equivocator has an adversary");
            adversary.equivocate(bytes, &peers, &mut self.rng)
        } else {
            vec![(to, bytes)]
        };
        self.send_outgoing(slot, outgoing);
    }

    fn send_outgoing(&mut self, slot: usize, outgoing: Outgoing) {
        let from = self.slots[slot].index;
        for (to, bytes) in outgoing {
            let bytes = Rc::new(bytes);
            match to {
                Some(to) => self.route(from, to, &bytes),
                None => {
                    for to in self.validators.indices() {
                        if to != from {
                            self.route(from, to, &bytes);
                        }
                    }
                }
            }
        }
    }

    fn route(&mut self, from: ValidatorIndex, to: ValidatorIndex, bytes: &Rc<Vec<u8>>) {
        if self.network.blocked(from, to) || self.rng.percent(self.network.loss_percent) {
            return;
        }
        let copies = if self.rng.percent(self.network.duplicate_percent) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay_ms = self.network.delay(from, to, &mut self.rng);
            for position in 0..self.slots_by_index[usize::from(to)].len() {
                let slot = self.slots_by_index[usize::from(to)][position];
                self.schedule(
                    delay_ms,
                    EventKind::Deliver {
                        slot,
                        from,
                        bytes: bytes.clone(),
                    },
                );
            }
        }
    }
}

impl Network {
    fn new(config: &SimConfig, rng: &mut Rng) -> Network {
        let count = config.validators;
        let delay_ms = (0..count)
            .map(|_| (0..count).map(|_| rng.range(1, 20)).collect())
            .collect();
        let (loss_percent, duplicate_percent) = match config.faults {
            FaultMix::None => (0, 0),
            FaultMix::Lossy | FaultMix::All => (rng.range(0, 30), rng.range(0, 10)),
            _ => (rng.range(0, 5), rng.range(0, 5)),
        };
        Network {
            delay_ms,
            jitter_ms: 10,
            loss_percent,
            duplicate_percent,
            groups: None,
        }
    }

    fn blocked(&self, from: ValidatorIndex, to: ValidatorIndex) -> bool {
        self.groups
            .as_ref()
            .is_some_and(|groups| groups[usize::from(from)] != groups[usize::from(to)])
    }

    fn delay(&self, from: ValidatorIndex, to: ValidatorIndex, rng: &mut Rng) -> u64 {
        self.delay_ms[usize::from(from)][usize::from(to)] + rng.range(0, self.jitter_ms)
    }
}

/// The command that replays one run.
pub fn replay_command(config: &SimConfig) -> String {
    let features = if cfg!(feature = "mutation-skip-nullification-check") {
        " --features mutation-skip-nullification-check"
    } else {
        ""
    };
    format!(
        "cargo run -p corridor-consensus --release{features} --example sim -- --seeds 1 --seed-start {} --validators {} --faults {}",
        config.seed,
        config.validators,
        config.faults.name()
    )
}

fn describe_bytes(bytes: &[u8]) -> String {
    match decode(bytes, MESSAGE_BYTES_MAX) {
        Ok(crate::message::Message::Proposal(proposal)) => format!(
            "Proposal(v{} h{} parent v{} {:?} -> {:?})",
            proposal.block.view,
            proposal.block.height,
            proposal.block.parent_view,
            proposal.block.parent,
            proposal.block.digest(&TestHasher)
        ),
        Ok(crate::message::Message::Vote(vote)) => {
            format!(
                "Vote({:?} v{} {:?} by {})",
                vote.kind, vote.view, vote.digest, vote.signer
            )
        }
        Ok(crate::message::Message::Certificate(certificate)) => {
            format!(
                "Cert({:?} v{} {:?})",
                certificate.kind, certificate.view, certificate.digest
            )
        }
        Ok(other) => format!("{other:?}").chars().take(120).collect(),
        Err(error) => format!("garbage ({error})"),
    }
}

fn describe_input(input: &Input) -> String {
    match input {
        Input::Message { from, bytes } => format!("from {from}: {}", describe_bytes(bytes)),
        Input::CatchUp(chain) => format!("CatchUp({} blocks to v{})", chain.blocks.len(), chain.finalization.view),
        other => format!("{other:?}").chars().take(160).collect(),
    }
}

fn describe_effect(effect: &Effect) -> String {
    match effect {
        Effect::Send { to, bytes } => format!("Send to {to}: {}", describe_bytes(bytes)),
        Effect::Broadcast { bytes } => format!("Broadcast: {}", describe_bytes(bytes)),
        Effect::Finalized(chain) => {
            format!(
                "Finalized({} blocks, to v{} {:?})",
                chain.blocks.len(),
                chain.finalization.view,
                chain.finalization.digest
            )
        }
        other => format!("{other:?}").chars().take(160).collect(),
    }
}
