//! A seeded, deterministic simulator: a pool of nodes over a simulated network with per-link
//! delay (from far below to above the timeout), loss, duplication, reordering, symmetric,
//! asymmetric and one-way partitions that heal, long stalls, crashes with restart from what was
//! durable, epochs whose validator set changes, and Byzantine validators (twins on opposite
//! sides of partitions, an equivocating leader, a vote-for-everything validator, a garbage
//! sender, a forger of every kind of message, and catch-up servers that hand out tampered
//! batches).
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
use byzantine::{Adversary, Outgoing, garbage, tampered_chain};
use checker::{Checker, EpochKeys};
use crypto::{TestHasher, TestSigner, TestVerifier, secrets};
use rng::Rng;

use crate::codec::decode;
use crate::limits::{CATCH_UP_BLOCKS_MAX, MESSAGE_BYTES_MAX, TIMEOUT_BACKOFF_SHIFT_MAX};
use crate::message::{Certificate, FinalizedChain, Message};
use crate::replica::{Durable, Effect, Input, Replica};
use crate::safety::SafetyState;
use crate::types::{
    Anchor, Block, Config, Digest, Epoch, Hasher, Height, Timeouts, ValidatorIndex, ValidatorSet, View,
};

type SimReplica = Replica<TestSigner, TestVerifier, TestHasher>;

/// Events one run may process before it is declared stuck.
const EVENTS_MAX: u64 = 40_000_000;
/// After the network heals, every honest node must finalize past the highest height any
/// honest node had at the heal, within this many views at the longest timeout (plus f views
/// led by faulty leaders, plus the views an epoch handover takes).
pub const LIVENESS_VIEWS_MAX: u64 = 8;
/// The chain id every simulated signature is bound to.
pub const CHAIN_ID: &[u8] = b"corridor-sim";
/// Views a `Stall` run keeps every proposal from arriving before it heals.
pub const STALL_VIEWS_MIN: View = 1_100;
/// Views a `Long` run lasts before it heals.
pub const LONG_VIEWS_MIN: View = 2_000;
/// Simulated time after which a run that has not healed is declared stuck.
const SIMULATED_MS_MAX: u64 = 24 * 3_600 * 1_000;
/// How often a node outside the validator set asks a peer for finalized blocks.
const FOLLOW_INTERVAL_MS: u64 = 150;

/// Which faults a run injects.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FaultMix {
    /// Per-link delay and reordering only.
    None,
    /// Loss up to 30%, duplication, reordering.
    Lossy,
    /// Symmetric, asymmetric and one-way partitions that come and go, light loss.
    Partition,
    /// Crashes and restarts from what was durable, light loss.
    Crash,
    /// f Byzantine validators of random kinds, light loss.
    Byzantine,
    /// Everything at once: Byzantine, crashes, partitions, loss up to 30%.
    All,
    /// Per-link delays from far below to well above the timeouts: views are notarized after
    /// replicas time out until they learn longer timeouts.
    Slow,
    /// No proposal arrives for at least `STALL_VIEWS_MIN` views, then the network heals.
    Stall,
    /// At least `LONG_VIEWS_MIN` views of loss, crashes and a Byzantine validator.
    Long,
}

impl FaultMix {
    pub const EVERY: [FaultMix; 9] = [
        FaultMix::None,
        FaultMix::Lossy,
        FaultMix::Partition,
        FaultMix::Crash,
        FaultMix::Byzantine,
        FaultMix::All,
        FaultMix::Slow,
        FaultMix::Stall,
        FaultMix::Long,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultMix::None => "none",
            FaultMix::Lossy => "lossy",
            FaultMix::Partition => "partition",
            FaultMix::Crash => "crash",
            FaultMix::Byzantine => "byzantine",
            FaultMix::All => "all",
            FaultMix::Slow => "slow",
            FaultMix::Stall => "stall",
            FaultMix::Long => "long",
        }
    }

    pub fn parse(name: &str) -> Option<FaultMix> {
        FaultMix::EVERY.into_iter().find(|mix| mix.name() == name)
    }

    /// The mix a seed gets when the caller cycles through all of them: the seven time-bounded
    /// mixes three times each, then `Stall` and `Long` once (they run thousands of views).
    pub fn for_seed(seed: u64) -> FaultMix {
        let cycle = 3 * 7 + 2;
        let position = usize::try_from(seed % cycle).expect("below the cycle");
        if position < 21 {
            FaultMix::EVERY[position % 7]
        } else {
            FaultMix::EVERY[position - 21 + 7]
        }
    }

    /// Views the chaos lasts, for mixes that heal after a number of views rather than a time.
    fn views_min(self) -> Option<View> {
        match self {
            FaultMix::Stall => Some(STALL_VIEWS_MIN),
            FaultMix::Long => Some(LONG_VIEWS_MIN),
            _ => None,
        }
    }
}

/// One run's parameters.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    pub validators: usize,
    pub seed: u64,
    pub faults: FaultMix,
    /// Simulated time during which faults are injected; then the network heals (`Stall` and
    /// `Long` heal after a number of views instead).
    pub chaos_ms: u64,
    pub timeout_base_ms: u64,
    /// Heights per epoch: each epoch one node of the pool (validators + 1 nodes) sits out, so
    /// the validator set changes at every epoch boundary. None: one open-ended epoch.
    pub epoch_heights: Option<u64>,
    /// Print every input and effect to stderr (for replaying one failing seed).
    pub trace: bool,
}

impl SimConfig {
    /// Half the seeds (alternating by cycle of mixes) run with epochs of 5 to 36 heights.
    pub fn new(validators: usize, seed: u64, faults: FaultMix) -> SimConfig {
        let epoch_heights = (seed / 23 % 2 == 1).then_some(5 + seed % 32);
        SimConfig {
            validators,
            seed,
            faults,
            chaos_ms: 1_500,
            timeout_base_ms: 100,
            epoch_heights,
            trace: false,
        }
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts::from_base(self.timeout_base_ms)
    }
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub config: SimConfig,
    pub violations: Vec<String>,
    /// Lowest and highest finalized height among honest nodes at the end.
    pub height_min: Height,
    pub height_max: Height,
    /// Highest view an honest replica reached, and the highest epoch an honest node reached.
    pub view_max: View,
    pub epoch_max: Epoch,
    /// Views between the stall's start and the heal (Stall runs).
    pub stall_views: View,
    pub messages_delivered: u64,
    pub evidence_records: u64,
    pub messages_rejected: u64,
    pub catch_ups: u64,
    pub tampered_catch_ups: u64,
    pub restarts: u64,
    pub timeouts_learned: u64,
    pub end_ms: u64,
    pub byzantine: Vec<(usize, Behaviour)>,
}

/// Runs one seeded simulation.
pub fn run(config: &SimConfig) -> Outcome {
    Simulation::new(config).run()
}

/// Something a replica asked to keep, durable only once the next `Persist` completes.
enum Stored {
    Block(Block),
    Certificate(Certificate),
}

/// What one `Persist` wrote: the safety state, its entry certificate, and the blocks and
/// certificates stored since the previous one.
struct Written {
    state: SafetyState,
    certificate: Option<Certificate>,
    stored: Vec<Stored>,
}

enum EventKind {
    Deliver {
        slot: usize,
        from_node: usize,
        bytes: Rc<Vec<u8>>,
    },
    Input {
        slot: usize,
        generation: u64,
        input: Box<Input>,
    },
    Persisted {
        slot: usize,
        generation: u64,
        sequence: u64,
        written: Box<Written>,
    },
    /// A batch for a node outside the validator set (an observer).
    Follow {
        slot: usize,
        generation: u64,
        chain: Option<FinalizedChain>,
    },
    Crash {
        slot: usize,
    },
    Restart {
        slot: usize,
    },
    Partition {
        groups: Vec<u8>,
        one_way: bool,
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

/// A finalized batch end a node can serve: the batch's epoch, its certificate, and the height
/// of the block the certificate names.
struct Finality {
    epoch: Epoch,
    certificate: Certificate,
    /// Headers from the batch end to the certified block (padding above an epoch's last
    /// height is not in the log).
    headers: Vec<crate::types::BlockHeader>,
}

/// One running instance of a node: an honest validator, one of a pair of twins, or an
/// adversary.
struct Slot {
    node: usize,
    behaviour: Behaviour,
    replica: Option<SimReplica>,
    adversary: Option<Adversary>,
    alive: bool,
    /// Bumped on every crash and restart, so events of a dead incarnation are dropped.
    generation: u64,
    /// The epoch the node's chain is in: the epoch of the height after its tip.
    epoch: Epoch,
    durable_safety: SafetyState,
    durable_certificate: Option<Certificate>,
    durable_blocks: BTreeMap<Height, Vec<Block>>,
    durable_certificates: BTreeMap<View, Vec<Certificate>>,
    staged: Vec<Stored>,
    /// The durable finalized chain: `log[h - 1]` is the block at height h.
    log: Vec<Block>,
    /// By batch end height.
    finality: BTreeMap<Height, Finality>,
    tip: Anchor,
    last_certificate: Option<(Epoch, Certificate)>,
    persist_free_ms: u64,
    conflicts_reported: bool,
}

struct Network {
    delay_ms: Vec<Vec<u64>>,
    jitter_ms: u64,
    loss_percent: u64,
    duplicate_percent: u64,
    /// Per slot; a message between slots of different groups is dropped (one way only: from
    /// group 0 to group 1).
    groups: Option<(Vec<u8>, bool)>,
    /// Drop every proposal (the stall).
    drop_proposals: bool,
}

struct Simulation {
    config: SimConfig,
    validators: ValidatorSet,
    pool: usize,
    rng: Rng,
    now_ms: u64,
    order: u64,
    queue: BinaryHeap<Reverse<Event>>,
    slots: Vec<Slot>,
    slots_by_node: Vec<Vec<usize>>,
    secrets: Rc<Vec<u64>>,
    genesis: Digest,
    network: Network,
    checker: Checker,
    healed: bool,
    heal_ms: u64,
    heal_height: Height,
    stall_start_view: Option<View>,
    done: bool,
    outcome: Outcome,
}

impl Simulation {
    fn new(config: &SimConfig) -> Simulation {
        let validators = ValidatorSet::new(config.validators).expect("simulated validator count in range");
        let pool = config.validators + 1;
        let mut rng = Rng::new(config.seed);
        let secrets = Rc::new(secrets(config.seed, pool));
        let network = Network::new(config, pool, &mut rng);
        let outcome = Outcome {
            config: *config,
            violations: Vec::new(),
            height_min: 0,
            height_max: 0,
            view_max: 0,
            epoch_max: 0,
            stall_views: 0,
            messages_delivered: 0,
            evidence_records: 0,
            messages_rejected: 0,
            catch_ups: 0,
            tampered_catch_ups: 0,
            restarts: 0,
            timeouts_learned: 0,
            end_ms: 0,
            byzantine: Vec::new(),
        };
        let mut simulation = Simulation {
            config: *config,
            validators,
            pool,
            rng,
            now_ms: 0,
            order: 0,
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            slots_by_node: vec![Vec::new(); pool],
            secrets,
            genesis: crypto::hash_bytes(0, b"corridor-sim genesis"),
            network,
            checker: Checker::new(CHAIN_ID.to_vec()),
            healed: false,
            heal_ms: 0,
            heal_height: 0,
            stall_start_view: None,
            done: false,
            outcome,
        };
        simulation.create_slots();
        simulation.schedule_faults();
        simulation
    }

    // ---- epochs and membership ----

    fn last_height(&self, epoch: Epoch) -> Height {
        match self.config.epoch_heights {
            Some(length) => (epoch + 1) * length,
            None => Height::MAX,
        }
    }

    fn epoch_of_height(&self, height: Height) -> Epoch {
        match self.config.epoch_heights {
            Some(length) => (height.max(1) - 1) / length,
            None => 0,
        }
    }

    /// The node that sits out `epoch`: the extra pool node at first, then a rotating one.
    fn excluded(&self, epoch: Epoch) -> usize {
        let pool = self.pool as u64;
        match self.config.epoch_heights {
            Some(_) if epoch > 0 => {
                usize::try_from((self.config.seed.wrapping_add(epoch * 7)) % pool).expect("below pool")
            }
            _ => self.config.validators,
        }
    }

    /// Nodes by validator index in `epoch`: the members first, then the outsider (whose index
    /// a verifier knows but the validator set does not contain).
    fn roster(&self, epoch: Epoch) -> Vec<usize> {
        (0..self.pool).map(|index| self.node_of(epoch, index)).collect()
    }

    fn node_of(&self, epoch: Epoch, index: usize) -> usize {
        let excluded = self.excluded(epoch);
        if index == self.config.validators {
            excluded
        } else if index < excluded {
            index
        } else {
            index + 1
        }
    }

    fn index_of(&self, epoch: Epoch, node: usize) -> ValidatorIndex {
        let excluded = self.excluded(epoch);
        let index = match node.cmp(&excluded) {
            std::cmp::Ordering::Equal => self.config.validators,
            std::cmp::Ordering::Less => node,
            std::cmp::Ordering::Greater => node - 1,
        };
        ValidatorIndex::try_from(index).expect("pool fits u16")
    }

    fn is_member(&self, epoch: Epoch, node: usize) -> bool {
        usize::from(self.index_of(epoch, node)) < self.config.validators
    }

    fn keys(&self, epoch: Epoch) -> EpochKeys {
        let table: Vec<u64> = self.roster(epoch).iter().map(|node| self.secrets[*node]).collect();
        EpochKeys {
            validators: self.validators,
            verifier: TestVerifier::new(Rc::new(table)),
        }
    }

    // ---- setup ----

    fn byzantine_count(&mut self) -> usize {
        let faults_max = self.validators.faults_max();
        match self.config.faults {
            FaultMix::Byzantine => faults_max,
            FaultMix::All => usize::try_from(self.rng.range(0, faults_max as u64)).unwrap_or(0),
            FaultMix::Long => faults_max.min(1),
            _ => 0,
        }
    }

    fn create_slots(&mut self) {
        let byzantine = self.byzantine_count();
        let mut behaviours = vec![Behaviour::Honest; self.pool];
        let kinds = [
            Behaviour::Twin,
            Behaviour::Equivocator,
            Behaviour::VoteAll,
            Behaviour::Garbage,
            Behaviour::Forger,
        ];
        let mut assigned = 0;
        while assigned < byzantine {
            let node = self.rng.index(self.pool);
            if behaviours[node].is_honest() {
                behaviours[node] = kinds[self.rng.index(kinds.len())];
                assigned += 1;
            }
        }
        for (node, behaviour) in behaviours.into_iter().enumerate() {
            if !behaviour.is_honest() {
                self.outcome.byzantine.push((node, behaviour));
            }
            let instances = if behaviour == Behaviour::Twin { 2 } else { 1 };
            for _ in 0..instances {
                self.add_slot(node, behaviour);
            }
        }
    }

    fn add_slot(&mut self, node: usize, behaviour: Behaviour) {
        let slot = self.slots.len();
        self.slots.push(Slot {
            node,
            behaviour,
            replica: None,
            adversary: None,
            alive: false,
            generation: 0,
            epoch: 0,
            durable_safety: SafetyState::genesis(),
            durable_certificate: None,
            durable_blocks: BTreeMap::new(),
            durable_certificates: BTreeMap::new(),
            staged: Vec::new(),
            log: Vec::new(),
            finality: BTreeMap::new(),
            tip: Anchor::genesis(self.genesis),
            last_certificate: None,
            persist_free_ms: 0,
            conflicts_reported: false,
        });
        self.slots_by_node[node].push(slot);
        self.schedule(0, EventKind::Restart { slot });
    }

    fn schedule(&mut self, delay_ms: u64, kind: EventKind) {
        self.order += 1;
        let event = Event {
            time_ms: self.now_ms.saturating_add(delay_ms),
            order: self.order,
            kind,
        };
        self.queue.push(Reverse(event));
    }

    fn schedule_faults(&mut self) {
        let faults = self.config.faults;
        let chaos_ms = match faults {
            FaultMix::Long => 60_000,
            _ => self.config.chaos_ms,
        };
        if matches!(faults, FaultMix::Partition | FaultMix::All) {
            let mut start_ms = self.rng.range(0, chaos_ms / 4);
            for _ in 0..self.rng.range(1, 3) {
                let end_ms = (start_ms + self.rng.range(100, chaos_ms / 2)).min(chaos_ms);
                let groups = self.random_groups();
                let one_way = self.rng.percent(30);
                self.schedule(start_ms, EventKind::Partition { groups, one_way });
                self.schedule(end_ms, EventKind::PartitionEnd);
                start_ms = end_ms + self.rng.range(0, chaos_ms / 4);
                if start_ms >= chaos_ms {
                    break;
                }
            }
        }
        if matches!(faults, FaultMix::Crash | FaultMix::All | FaultMix::Long) {
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
        if faults.views_min().is_none() {
            self.schedule(chaos_ms, EventKind::Heal);
        }
    }

    /// Random halves, or one node isolated; twins always land on opposite sides.
    fn random_groups(&mut self) -> Vec<u8> {
        let count = self.slots.len();
        let mut groups: Vec<u8> = if self.rng.percent(30) {
            let isolated = self.rng.index(count);
            (0..count).map(|slot| u8::from(slot == isolated)).collect()
        } else {
            (0..count).map(|_| u8::from(self.rng.percent(50))).collect()
        };
        for slots in &self.slots_by_node {
            if let [first, second] = slots[..] {
                groups[second] = 1 - groups[first];
            }
        }
        groups
    }

    fn timeout_max_ms(&self) -> u64 {
        self.config.timeouts().notarization_ms << TIMEOUT_BACKOFF_SHIFT_MAX
    }

    fn liveness_window_ms(&self) -> u64 {
        let epochs = u64::from(self.config.epoch_heights.is_some()) * 2;
        let views = LIVENESS_VIEWS_MAX + self.validators.faults_max() as u64 + epochs;
        views * self.timeout_max_ms()
    }

    fn deadline_ms(&self) -> u64 {
        if self.healed {
            self.heal_ms + self.liveness_window_ms()
        } else {
            SIMULATED_MS_MAX
        }
    }

    fn run(mut self) -> Outcome {
        let mut events = 0u64;
        while let Some(Reverse(event)) = self.queue.pop() {
            if event.time_ms > self.deadline_ms() || self.done {
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
        self.outcome.epoch_max = honest.iter().map(|slot| slot.epoch).max().unwrap_or(0);
        if !self.done {
            let nodes: Vec<String> = self
                .slots
                .iter()
                .filter(|slot| slot.behaviour.is_honest())
                .map(|slot| {
                    let view = slot.replica.as_ref().map(|replica| replica.view());
                    format!(
                        "node {} epoch {} height {} view {view:?}",
                        slot.node, slot.epoch, slot.tip.height
                    )
                })
                .collect();
            let text = format!(
                "liveness: {} ms after the heal at {} ms, honest heights are {:?}, not all above {} ({})",
                self.liveness_window_ms(),
                self.heal_ms,
                heights,
                self.heal_height,
                nodes.join("; ")
            );
            self.checker.violation(text);
        }
        for slot in &self.slots {
            if let Some(replica) = &slot.replica {
                self.outcome.messages_rejected += replica.stats().messages_rejected;
                self.outcome.timeouts_learned += replica.stats().timeouts_learned;
            }
        }
        self.outcome.violations = std::mem::take(&mut self.checker.violations);
        self.outcome.end_ms = self.now_ms;
        self.outcome
    }

    fn process(&mut self, kind: EventKind) {
        match kind {
            EventKind::Deliver { slot, from_node, bytes } => self.deliver(slot, from_node, &bytes),
            EventKind::Input {
                slot,
                generation,
                input,
            } => {
                if self.slots[slot].alive && self.slots[slot].generation == generation {
                    let timeout = matches!(*input, Input::Timeout { .. });
                    self.feed(slot, *input);
                    if timeout {
                        self.check_view_target();
                    }
                }
            }
            EventKind::Persisted {
                slot,
                generation,
                sequence,
                written,
            } => {
                let Written {
                    state,
                    certificate,
                    stored,
                } = *written;
                if self.slots[slot].alive && self.slots[slot].generation == generation {
                    let worst_moment = state.notarized.is_some() && !state.nullified && state.finalized.is_none();
                    let crash_now = worst_moment && self.crash_at_worst_moment(slot);
                    let target = &mut self.slots[slot];
                    target.durable_safety = state;
                    target.durable_certificate = certificate;
                    for item in stored {
                        match item {
                            Stored::Block(block) => target.durable_blocks.entry(block.height).or_default().push(block),
                            Stored::Certificate(certificate) => target
                                .durable_certificates
                                .entry(certificate.view)
                                .or_default()
                                .push(certificate),
                        }
                    }
                    if crash_now {
                        // Everything this Persist wrote is durable, but the vote never left:
                        // the restarted replica must not sign a conflicting one (persist
                        // before you speak).
                        self.crash(slot);
                        let delay_ms = self.rng.range(1, 30);
                        return self.schedule(delay_ms, EventKind::Restart { slot });
                    }
                    self.feed(slot, Input::Persisted { sequence });
                }
            }
            EventKind::Follow {
                slot,
                generation,
                chain,
            } => {
                if self.slots[slot].alive && self.slots[slot].generation == generation {
                    self.follow(slot, chain);
                }
            }
            EventKind::Crash { slot } => self.crash(slot),
            EventKind::Restart { slot } => self.restart(slot),
            EventKind::Partition { groups, one_way } => self.network.groups = Some((groups, one_way)),
            EventKind::PartitionEnd => self.network.groups = None,
            EventKind::Heal => self.heal(),
        }
    }

    /// In `Crash`, `Byzantine` and `All` runs, an honest replica sometimes crashes the moment its notarize
    /// vote is durable (before the vote leaves), the worst moment for persist-before-speak.
    fn crash_at_worst_moment(&mut self, slot: usize) -> bool {
        let faulty = matches!(
            self.config.faults,
            FaultMix::Crash | FaultMix::Byzantine | FaultMix::All
        );
        !self.healed && faulty && self.slots[slot].behaviour.is_honest() && self.rng.percent(10)
    }

    /// `Stall` and `Long` runs heal once every honest replica is far enough in views.
    fn check_view_target(&mut self) {
        let Some(views) = self.config.faults.views_min() else {
            return;
        };
        if self.healed {
            return;
        }
        let honest_views: Vec<View> = self
            .slots
            .iter()
            .filter(|slot| slot.behaviour.is_honest())
            .filter_map(|slot| slot.replica.as_ref().map(|replica| replica.view()))
            .collect();
        let Some(lowest) = honest_views.iter().copied().min() else {
            return;
        };
        let start = match self.config.faults {
            FaultMix::Stall => {
                if self.stall_start_view.is_none() && self.now_ms >= 300 {
                    self.stall_start_view = honest_views.iter().copied().max();
                    self.network.drop_proposals = true;
                }
                match self.stall_start_view {
                    Some(start) => start,
                    None => return,
                }
            }
            _ => 0,
        };
        if lowest >= start + views {
            self.outcome.stall_views = lowest - start;
            self.heal();
        }
    }

    fn crash(&mut self, slot: usize) {
        let state = &mut self.slots[slot];
        if state.alive {
            state.alive = false;
            state.replica = None;
            state.staged.clear();
            state.generation += 1;
        }
    }

    fn restart(&mut self, slot: usize) {
        if self.slots[slot].alive {
            return;
        }
        let state = &mut self.slots[slot];
        state.alive = true;
        state.generation += 1;
        if state.behaviour.is_honest() && self.now_ms > 0 {
            self.outcome.restarts += 1;
        }
        let durable = Durable {
            safety: state.durable_safety,
            certificate: state.durable_certificate.clone(),
            anchor: state.tip,
            blocks: state.durable_blocks.values().flatten().cloned().collect(),
            certificates: state.durable_certificates.values().flatten().cloned().collect(),
            finalization: state.last_certificate.clone(),
        };
        self.start_epoch(slot, durable);
    }

    /// Starts the slot in its current epoch: a replica if it is a member (and runs one), or
    /// observer-style following otherwise.
    fn start_epoch(&mut self, slot: usize, durable: Durable) {
        let (node, behaviour, epoch) = {
            let state = &self.slots[slot];
            (state.node, state.behaviour, state.epoch)
        };
        let member = self.is_member(epoch, node);
        let index = self.index_of(epoch, node);
        let outsiders: Vec<(ValidatorIndex, TestSigner)> = self
            .roster(epoch)
            .iter()
            .enumerate()
            .skip(self.config.validators)
            // Keys outside the set are not trusted by the protocol; the adversary may hold them.
            .filter(|(_, outsider)| **outsider != node)
            .map(|(position, outsider)| {
                let position = ValidatorIndex::try_from(position).expect("pool fits u16");
                (position, TestSigner::new(self.secrets[*outsider]))
            })
            .collect();
        let signer = TestSigner::new(self.secrets[node]);
        let adversary = (!behaviour.is_honest() && behaviour != Behaviour::Twin)
            .then(|| Adversary::new(index, signer, outsiders, CHAIN_ID.to_vec(), epoch, self.validators));
        self.slots[slot].adversary = adversary;
        if member && behaviour.runs_replica() {
            let config = Config {
                chain_id: CHAIN_ID.to_vec(),
                epoch,
                validators: self.validators,
                me: index,
                last_height: self.last_height(epoch),
                timeouts: self.config.timeouts(),
            };
            let verifier = self.keys(epoch).verifier;
            let replica = Replica::new(config, signer, verifier, TestHasher, durable);
            self.slots[slot].replica = Some(replica);
            self.feed(slot, Input::Start);
        } else {
            self.slots[slot].replica = None;
            if behaviour.is_honest() {
                self.schedule_follow(slot, None);
            }
        }
    }

    fn heal(&mut self) {
        if self.healed {
            return;
        }
        self.network.groups = None;
        self.network.loss_percent = 0;
        self.network.duplicate_percent = 0;
        self.network.drop_proposals = false;
        for slot in 0..self.slots.len() {
            self.restart(slot);
        }
        self.healed = true;
        self.heal_ms = self.now_ms;
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

    // ---- messages ----

    fn deliver(&mut self, slot: usize, from_node: usize, bytes: &Rc<Vec<u8>>) {
        if !self.slots[slot].alive {
            return;
        }
        self.outcome.messages_delivered += 1;
        let epoch = self.slots[slot].epoch;
        let from = self.index_of(epoch, from_node);
        let input = || Input::Message {
            from,
            bytes: bytes.to_vec(),
        };
        match self.slots[slot].behaviour {
            Behaviour::Honest | Behaviour::Twin => self.feed(slot, input()),
            Behaviour::Equivocator => {
                if let Some(adversary) = self.slots[slot].adversary.as_mut() {
                    adversary.observe(bytes);
                }
                self.feed(slot, input());
                self.resend_versions(slot);
            }
            Behaviour::Forger => {
                let heard = self.slots[slot]
                    .adversary
                    .as_mut()
                    .and_then(|adversary| adversary.observe(bytes));
                let outsiders = match (&heard, self.slots[slot].adversary.as_ref()) {
                    (Some(message), Some(adversary)) => adversary.outsider_votes(message),
                    _ => Vec::new(),
                };
                self.send_outgoing(slot, outsiders);
                self.feed(slot, input());
                self.resend_versions(slot);
                if self.rng.percent(20) {
                    let view = self.slots[slot].replica.as_ref().map_or(1, |replica| replica.view());
                    let Some(adversary) = self.slots[slot].adversary.as_mut() else {
                        return;
                    };
                    let forged = adversary.forgeries(view, &mut self.rng);
                    self.send_outgoing(slot, forged);
                }
            }
            Behaviour::VoteAll => {
                self.refresh_adversary_epoch(slot);
                let Some(adversary) = self.slots[slot].adversary.as_mut() else {
                    return;
                };
                let Some(message) = adversary.observe(bytes) else {
                    return;
                };
                let outgoing = adversary.vote_all(&message);
                self.send_outgoing(slot, outgoing);
            }
            Behaviour::Garbage => {
                if self.rng.percent(30) {
                    let junk = garbage(bytes, &mut self.rng);
                    let to = ValidatorIndex::try_from(self.rng.index(self.config.validators)).expect("fits u16");
                    self.send_outgoing(slot, vec![(Some(to), junk)]);
                }
            }
        }
    }

    /// An equivocating leader keeps re-sending its conflicting proposals.
    fn resend_versions(&mut self, slot: usize) {
        if !self.rng.percent(30) {
            return;
        }
        let me = self.index_of(self.slots[slot].epoch, self.slots[slot].node);
        let peers: Vec<ValidatorIndex> = self.validators.indices().filter(|peer| *peer != me).collect();
        let view = self.slots[slot].replica.as_ref().map_or(0, |replica| replica.view());
        let Some(adversary) = self.slots[slot].adversary.as_mut() else {
            return;
        };
        let outgoing = adversary.resend(view, &peers, &mut self.rng);
        self.send_outgoing(slot, outgoing);
    }

    /// Adversaries without a replica follow the honest chain's epoch.
    fn refresh_adversary_epoch(&mut self, slot: usize) {
        let height = self.honest_heights().max().unwrap_or(0);
        let epoch = self.epoch_of_height(height + 1);
        if self.slots[slot].epoch != epoch {
            self.slots[slot].epoch = epoch;
            let durable = Durable::genesis(self.genesis);
            self.start_epoch(slot, durable);
        }
    }

    fn feed(&mut self, slot: usize, input: Input) {
        let node = self.slots[slot].node;
        let Some(replica) = self.slots[slot].replica.as_mut() else {
            return;
        };
        if self.config.trace {
            eprintln!(
                "t={} slot={slot} node={node} view={} in: {}",
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
        let view = replica.view();
        let conflicts = replica.stats().conflicting_finalizations;
        let state = &mut self.slots[slot];
        if state.behaviour.is_honest() {
            self.outcome.view_max = self.outcome.view_max.max(view);
        }
        if conflicts > 0 && state.behaviour.is_honest() && !state.conflicts_reported {
            state.conflicts_reported = true;
            let text = format!(
                "t={}ms: agreement: honest node {} saw a valid finalization conflicting with its chain",
                self.now_ms, state.node
            );
            self.checker.violation(text);
        }
        let generation = self.slots[slot].generation;
        for effect in effects {
            if self.slots[slot].generation != generation {
                break;
            }
            self.apply(slot, effect);
        }
    }

    fn apply(&mut self, slot: usize, effect: Effect) {
        let generation = self.slots[slot].generation;
        match effect {
            Effect::Send { to, bytes } => self.send_from_replica(slot, Some(to), bytes),
            Effect::Broadcast { bytes } => self.send_from_replica(slot, None, bytes),
            Effect::ScheduleTimeout { timer, after_ms } => {
                let input = Input::Timeout { timer };
                self.schedule(
                    after_ms,
                    EventKind::Input {
                        slot,
                        generation,
                        input: Box::new(input),
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
                let stored = std::mem::take(&mut self.slots[slot].staged);
                let kind = EventKind::Persisted {
                    slot,
                    generation,
                    sequence,
                    written: Box::new(Written {
                        state,
                        certificate,
                        stored,
                    }),
                };
                self.schedule(ready_ms - self.now_ms, kind);
            }
            Effect::RequestProposal { view, height, .. } => {
                let mut payload = view.to_le_bytes().to_vec();
                payload.extend_from_slice(&height.to_le_bytes());
                payload.extend_from_slice(&self.rng.next_u64().to_le_bytes());
                self.answer_soon(slot, generation, Input::Proposal { view, payload });
            }
            Effect::Validate {
                view, digest, payload, ..
            } => {
                let valid = application_accepts(&payload);
                self.answer_soon(slot, generation, Input::Validated { view, digest, valid });
            }
            Effect::StoreBlock(block) => self.slots[slot].staged.push(Stored::Block(block)),
            Effect::StoreCertificate(certificate) => self.slots[slot].staged.push(Stored::Certificate(certificate)),
            Effect::Finalized(chain) => self.on_finalized(slot, chain),
            Effect::RequestCatchUp { after_height } => self.catch_up(slot, after_height, false),
            Effect::Evidence(_) => self.outcome.evidence_records += 1,
            Effect::EpochEnded { last, finalization } => {
                let state = &mut self.slots[slot];
                assert!(state.tip == last, "the epoch ends at the node's tip");
                let next = state.epoch + 1;
                state.durable_blocks.clear();
                state.durable_certificates.clear();
                state.durable_certificate = None;
                state.staged.clear();
                let durable = Durable::epoch_start(next, last, finalization);
                self.enter_next_epoch(slot, durable);
            }
        }
    }

    /// The simulated application answers within 0–2 ms.
    fn answer_soon(&mut self, slot: usize, generation: u64, input: Input) {
        let delay_ms = self.rng.range(0, 2);
        let input = Box::new(input);
        self.schedule(
            delay_ms,
            EventKind::Input {
                slot,
                generation,
                input,
            },
        );
    }

    fn enter_next_epoch(&mut self, slot: usize, durable: Durable) {
        // A new incarnation: what the previous epoch's replica had in flight is dropped.
        self.slots[slot].generation += 1;
        self.slots[slot].epoch += 1;
        self.slots[slot].durable_safety = durable.safety;
        self.start_epoch(slot, durable);
    }

    fn on_finalized(&mut self, slot: usize, chain: FinalizedChain) {
        let epoch = chain.blocks[0].epoch;
        let keys = self.keys(epoch);
        let state = &self.slots[slot];
        let who = format!("node {} ({})", state.node, state.behaviour.name());
        let new_tip = if state.behaviour.is_honest() {
            self.checker
                .on_finalized(&who, &state.tip, &chain, epoch, &keys, self.now_ms)
        } else {
            let last = chain.blocks.last().expect("a batch has blocks");
            Some(Anchor {
                view: last.view,
                height: last.height,
                digest: last.digest(&TestHasher),
            })
        };
        let Some(new_tip) = new_tip else {
            return;
        };
        let state = &mut self.slots[slot];
        state.finality.insert(
            new_tip.height,
            Finality {
                epoch,
                certificate: chain.finalization.clone(),
                headers: chain.headers.clone(),
            },
        );
        state.last_certificate = Some((epoch, chain.finalization));
        state.log.extend(chain.blocks);
        state.tip = new_tip;
        state.durable_blocks = state.durable_blocks.split_off(&(new_tip.height + 1));
        state.durable_certificates = state.durable_certificates.split_off(&(new_tip.view + 1));
        self.check_liveness();
        self.check_view_target();
    }

    /// Plays the node's block sync: a random peer hands over one batch of finalized blocks. A
    /// Byzantine peer hands over a tampered copy of a real batch.
    fn catch_up(&mut self, slot: usize, after_height: Height, follower: bool) {
        let peers: Vec<usize> = (0..self.slots.len())
            .filter(|peer| *peer != slot && self.slots[*peer].alive && self.slots[*peer].node != self.slots[slot].node)
            .collect();
        if peers.is_empty() {
            return;
        }
        let peer = peers[self.rng.index(peers.len())];
        let (from, to) = (peer, slot);
        if self.network.blocked(from, to) || self.rng.percent(self.network.loss_percent) {
            return;
        }
        let honest_source = if self.slots[peer].behaviour.is_honest() {
            Some(peer)
        } else {
            (0..self.slots.len()).find(|source| self.slots[*source].behaviour.is_honest() && *source != slot)
        };
        let Some(source) = honest_source else {
            return;
        };
        let Some(mut chain) = self.serve(source, after_height) else {
            return;
        };
        if !self.slots[peer].behaviour.is_honest() {
            chain = tampered_chain(&chain, &mut self.rng);
            self.outcome.tampered_catch_ups += 1;
        }
        self.outcome.catch_ups += 1;
        let delay_ms = 2 * self
            .network
            .delay(self.slots[from].node, self.slots[to].node, &mut self.rng);
        let generation = self.slots[slot].generation;
        let kind = if follower {
            EventKind::Follow {
                slot,
                generation,
                chain: Some(chain),
            }
        } else {
            EventKind::Input {
                slot,
                generation,
                input: Box::new(Input::CatchUp(chain)),
            }
        };
        self.schedule(delay_ms, kind);
    }

    /// The batch after `after_height` a node serves: up to `CATCH_UP_BLOCKS_MAX` blocks of one
    /// epoch ending at the highest batch end it can reach, with that batch's proof; or, when
    /// the first batch end is further, the first blocks with headers up to it and its proof.
    fn serve(&self, source: usize, after_height: Height) -> Option<FinalizedChain> {
        let state = &self.slots[source];
        let limit = after_height + CATCH_UP_BLOCKS_MAX as u64;
        let epoch = self.epoch_of_height(after_height + 1);
        let reachable = state
            .finality
            .range(after_height + 1..=limit)
            .rev()
            .find(|(_, finality)| finality.epoch == epoch);
        let (end, finality) = match reachable {
            Some(found) => found,
            None => state.finality.range(after_height + 1..).next()?,
        };
        let start = usize::try_from(after_height).ok()?;
        let end = usize::try_from(*end).ok()?;
        let stop = end.min(start + CATCH_UP_BLOCKS_MAX);
        if end > state.log.len() || start >= stop {
            return None;
        }
        let blocks = state.log[start..stop].to_vec();
        let headers = state.log[stop..end]
            .iter()
            .map(|block| block.header(&TestHasher))
            .chain(finality.headers.iter().copied())
            .collect();
        assert!(
            blocks.iter().all(|block| block.epoch == finality.epoch),
            "a served batch stays in one epoch"
        );
        Some(FinalizedChain {
            blocks,
            headers,
            finalization: finality.certificate.clone(),
        })
    }

    fn schedule_follow(&mut self, slot: usize, chain: Option<FinalizedChain>) {
        let generation = self.slots[slot].generation;
        self.schedule(
            FOLLOW_INTERVAL_MS,
            EventKind::Follow {
                slot,
                generation,
                chain,
            },
        );
    }

    /// A node outside the validator set: verifies and applies a batch (as an observer does),
    /// or asks for the next one.
    fn follow(&mut self, slot: usize, chain: Option<FinalizedChain>) {
        if self.slots[slot].replica.is_some() {
            return;
        }
        let Some(chain) = chain else {
            let after = self.slots[slot].tip.height;
            self.catch_up(slot, after, true);
            return self.schedule_follow(slot, None);
        };
        let epoch = self.slots[slot].epoch;
        let keys = self.keys(epoch);
        let tip = self.slots[slot].tip;
        let verified = chain.verify(&tip, CHAIN_ID, epoch, &keys.validators, &keys.verifier, &TestHasher);
        if self.config.trace {
            eprintln!(
                "t={} follow slot={slot} tip={} batch {}..+{} headers {}: {:?}",
                self.now_ms,
                tip.height,
                chain.blocks[0].height,
                chain.blocks.len(),
                chain.headers.len(),
                verified.as_ref().err()
            );
        }
        if verified.is_err() {
            return;
        }
        self.on_finalized(slot, chain.clone());
        let state = &self.slots[slot];
        if state.tip.height == self.last_height(state.epoch) {
            let durable = Durable::epoch_start(state.epoch + 1, state.tip, chain.finalization);
            self.enter_next_epoch(slot, durable);
        }
        if self.slots[slot].replica.is_none() {
            // Keep going while batches come: a follower asks again at once.
            let after = self.slots[slot].tip.height;
            self.catch_up(slot, after, true);
        }
    }

    fn send_from_replica(&mut self, slot: usize, to: Option<ValidatorIndex>, bytes: Vec<u8>) {
        let state = &self.slots[slot];
        if state.behaviour.is_honest() {
            let index = self.index_of(state.epoch, state.node);
            self.checker.observe_sent(state.node, index, &bytes, self.now_ms);
        }
        let behaviour = state.behaviour;
        let epoch = state.epoch;
        let outgoing = if behaviour == Behaviour::Equivocator && to.is_none() {
            let me = self.index_of(epoch, state.node);
            let peers: Vec<ValidatorIndex> = self.validators.indices().filter(|peer| *peer != me).collect();
            let adversary = self.slots[slot]
                .adversary
                .as_mut()
                .expect("an equivocator has an adversary");
            adversary.equivocate(bytes, &peers, &mut self.rng)
        } else if behaviour == Behaviour::Forger && to.is_none() {
            let me = self.index_of(epoch, state.node);
            let peers: Vec<ValidatorIndex> = self.validators.indices().filter(|peer| *peer != me).collect();
            let proposal = match decode(&bytes, MESSAGE_BYTES_MAX) {
                Ok((_, Message::Proposal(proposal))) => Some(proposal),
                _ => None,
            };
            let adversary = self.slots[slot].adversary.as_mut().expect("a forger has an adversary");
            let mut outgoing = adversary.equivocate(bytes, &peers, &mut self.rng);
            if let Some(proposal) = proposal {
                outgoing.push((None, adversary.forged_notarization(&proposal, &mut self.rng)));
            }
            let proposals: Vec<Message> = outgoing
                .iter()
                .filter_map(|(_, bytes)| match decode(bytes, MESSAGE_BYTES_MAX) {
                    Ok((_, message @ Message::Proposal(_))) => Some(message),
                    _ => None,
                })
                .collect();
            for message in &proposals {
                outgoing.extend(adversary.outsider_votes(message));
            }
            outgoing
        } else {
            vec![(to, bytes)]
        };
        self.send_outgoing(slot, outgoing);
    }

    fn send_outgoing(&mut self, slot: usize, outgoing: Outgoing) {
        let epoch = self.slots[slot].epoch;
        let from_node = self.slots[slot].node;
        for (to, bytes) in outgoing {
            let bytes = Rc::new(bytes);
            match to {
                Some(to) => {
                    if usize::from(to) < self.pool {
                        let node = self.node_of(epoch, usize::from(to));
                        self.route(slot, node, &bytes);
                    }
                }
                None => {
                    for node in 0..self.pool {
                        if node != from_node {
                            self.route(slot, node, &bytes);
                        }
                    }
                }
            }
        }
    }

    fn route(&mut self, from_slot: usize, to_node: usize, bytes: &Rc<Vec<u8>>) {
        if self.network.drop_proposals && is_proposal(bytes) {
            return;
        }
        let from_node = self.slots[from_slot].node;
        for position in 0..self.slots_by_node[to_node].len() {
            let to_slot = self.slots_by_node[to_node][position];
            if self.network.blocked(from_slot, to_slot) || self.rng.percent(self.network.loss_percent) {
                continue;
            }
            let copies = if self.rng.percent(self.network.duplicate_percent) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let delay_ms = self.network.delay(from_node, to_node, &mut self.rng);
                self.schedule(
                    delay_ms,
                    EventKind::Deliver {
                        slot: to_slot,
                        from_node,
                        bytes: bytes.clone(),
                    },
                );
            }
        }
    }
}

/// The simulated application: a payload is invalid when its hash starts with a small byte
/// (about 6% of payloads), the same verdict on every node.
fn application_accepts(payload: &[u8]) -> bool {
    TestHasher.hash(payload).0[0] >= 16
}

fn is_proposal(bytes: &[u8]) -> bool {
    matches!(
        decode(bytes, MESSAGE_BYTES_MAX),
        Ok((_, Message::Proposal(_) | Message::Notarized { .. }))
    )
}

impl Network {
    fn new(config: &SimConfig, pool: usize, rng: &mut Rng) -> Network {
        let slow = config.faults == FaultMix::Slow;
        let base = config.timeout_base_ms;
        let delay_ms = (0..pool)
            .map(|_| {
                (0..pool)
                    .map(|_| if slow { rng.range(1, base * 3) } else { rng.range(1, 20) })
                    .collect()
            })
            .collect();
        let (loss_percent, duplicate_percent) = match config.faults {
            FaultMix::None | FaultMix::Slow | FaultMix::Stall => (0, 0),
            FaultMix::Lossy | FaultMix::All => (rng.range(0, 30), rng.range(0, 10)),
            _ => (rng.range(0, 5), rng.range(0, 5)),
        };
        Network {
            delay_ms,
            jitter_ms: 10,
            loss_percent,
            duplicate_percent,
            groups: None,
            drop_proposals: false,
        }
    }

    fn blocked(&self, from_slot: usize, to_slot: usize) -> bool {
        let Some((groups, one_way)) = &self.groups else {
            return false;
        };
        let (from, to) = (groups[from_slot], groups[to_slot]);
        if *one_way { from == 0 && to == 1 } else { from != to }
    }

    fn delay(&self, from: usize, to: usize, rng: &mut Rng) -> u64 {
        self.delay_ms[from][to] + rng.range(0, self.jitter_ms)
    }
}

/// The command that replays one run.
pub fn replay_command(config: &SimConfig) -> String {
    let features = crate::mutation_features();
    let features = if features.is_empty() {
        String::new()
    } else {
        format!(" --features {}", features.join(","))
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
        Ok((epoch, Message::Proposal(proposal))) => format!(
            "e{epoch} Proposal(v{} h{} parent v{} {:?} -> {:?})",
            proposal.block.view,
            proposal.block.height,
            proposal.block.parent_view,
            proposal.block.parent,
            proposal.block.digest(&TestHasher)
        ),
        Ok((epoch, Message::Vote(vote))) => {
            format!(
                "e{epoch} Vote({:?} v{} {:?} since {} by {})",
                vote.kind, vote.view, vote.digest, vote.since, vote.signer
            )
        }
        Ok((epoch, Message::Certificate(certificate))) => {
            format!(
                "e{epoch} Cert({:?} v{} {:?} by {:?})",
                certificate.kind,
                certificate.view,
                certificate.digest,
                certificate.signers()
            )
        }
        Ok(other) => format!("{other:?}").chars().take(120).collect(),
        Err(error) => format!("garbage ({error})"),
    }
}

fn describe_input(input: &Input) -> String {
    match input {
        Input::Message { from, bytes } => format!("from {from}: {}", describe_bytes(bytes)),
        Input::CatchUp(chain) => format!(
            "CatchUp({} blocks + {} headers to v{})",
            chain.blocks.len(),
            chain.headers.len(),
            chain.finalization.view
        ),
        other => format!("{other:?}").chars().take(160).collect(),
    }
}

fn describe_effect(effect: &Effect) -> String {
    match effect {
        Effect::Send { to, bytes } => format!("Send to {to}: {}", describe_bytes(bytes)),
        Effect::Broadcast { bytes } => format!("Broadcast: {}", describe_bytes(bytes)),
        Effect::Finalized(chain) => {
            format!(
                "Finalized({} blocks, {} headers, to v{} {:?})",
                chain.blocks.len(),
                chain.headers.len(),
                chain.finalization.view,
                chain.finalization.digest
            )
        }
        other => format!("{other:?}").chars().take(160).collect(),
    }
}
