//! Prometheus metrics, counted with atomics and rendered as text at `GET /metrics`.
//!
//! Besides the counters, the node accounts where its CPU goes by `Stage` of a transaction's
//! way through it. A `StageTimer` reads the calling thread's CPU clock
//! (`CLOCK_THREAD_CPUTIME_ID`) and the monotonic clock when it starts and when it drops, and
//! adds both differences to its stage: CPU time because five nodes and a load generator share
//! two cores in the benchmarks, where wall time would count the time a thread waited for a
//! core; wall time beside it to show that wait. Timers go around batches, blocks, chunks of a
//! parallel iteration (one per rayon job, on the worker that ran it) and polls of the network
//! tasks, never around single transactions, so they cost a few clock reads per batch.
//! Work outside every timer (HTTP and JSON handling, untimed helpers) is the difference
//! between `corridor_process_cpu_seconds_total` and the sum of the stages.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A stage of a transaction's way through a node, for the CPU accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Hex and canonical decoding of submitted and gossiped transactions; decoding of
    /// proposals, finalized blocks and sync batches from consensus payloads.
    Decode,
    /// Transaction signatures: admission batches and proposals' unverified transactions.
    Verify,
    /// The mempool: admission checks other than signatures (chain, duplicate, expiry,
    /// nonce, dry run), insertion, the journal append, expiry sweeps, and the pool's
    /// update after a commit.
    Pool,
    /// The consensus driver: the replica's state machine (vote and certificate
    /// verification included), its synced safety writes, building and checking proposals
    /// (their transaction signatures counted in `Verify`), an observer's batch verification.
    Consensus,
    /// Executing a finalized block: transaction hashes, prechecks, `execute_block`.
    Execute,
    /// The state root: hashing the changed keys and values, updating the tree.
    Root,
    /// The block's one synced RocksDB batch and the head's move.
    Write,
    /// The libp2p swarm and its connection tasks (TCP, noise, yamux, framing), and the
    /// node's gossip, re-gossip, inbound dispatch and block-sync answers.
    Network,
}

impl Stage {
    pub const ALL: [Stage; 8] = [
        Stage::Decode,
        Stage::Verify,
        Stage::Pool,
        Stage::Consensus,
        Stage::Execute,
        Stage::Root,
        Stage::Write,
        Stage::Network,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Verify => "verify",
            Stage::Pool => "pool",
            Stage::Consensus => "consensus",
            Stage::Execute => "execute",
            Stage::Root => "root",
            Stage::Write => "write",
            Stage::Network => "network",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// CPU and wall nanoseconds spent per stage.
#[derive(Default)]
pub(crate) struct Stages {
    cpu_nanos: [AtomicU64; Stage::ALL.len()],
    wall_nanos: [AtomicU64; Stage::ALL.len()],
}

/// This thread's CPU time so far (zero if the clock cannot be read: the stage then shows
/// none, it does not fail).
fn thread_cpu() -> Duration {
    nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID
        .now()
        .map(Duration::from)
        .unwrap_or_default()
}

/// The whole process's CPU time so far, every thread.
fn process_cpu() -> Duration {
    nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID
        .now()
        .map(Duration::from)
        .unwrap_or_default()
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Stages {
    /// Time `stage` on this thread until the timer drops.
    pub fn time(&self, stage: Stage) -> StageTimer<'_> {
        StageTimer {
            stages: self,
            stage,
            cpu: thread_cpu(),
            wall: Instant::now(),
        }
    }

    /// Run `work`, timed as `stage`.
    pub fn run<T>(&self, stage: Stage, work: impl FnOnce() -> T) -> T {
        let _timer = self.time(stage);
        work()
    }

    fn add(&self, stage: Stage, cpu: Duration, wall: Duration) {
        self.cpu_nanos[stage.index()].fetch_add(nanos(cpu), Relaxed);
        self.wall_nanos[stage.index()].fetch_add(nanos(wall), Relaxed);
    }

    /// (CPU, wall) spent in `stage` so far.
    pub fn spent(&self, stage: Stage) -> (Duration, Duration) {
        (
            Duration::from_nanos(self.cpu_nanos[stage.index()].load(Relaxed)),
            Duration::from_nanos(self.wall_nanos[stage.index()].load(Relaxed)),
        )
    }
}

/// Adds the CPU and wall time since it started to its stage when it drops.
pub(crate) struct StageTimer<'a> {
    stages: &'a Stages,
    stage: Stage,
    cpu: Duration,
    wall: Instant,
}

impl Drop for StageTimer<'_> {
    fn drop(&mut self) {
        let cpu = thread_cpu().saturating_sub(self.cpu);
        self.stages.add(self.stage, cpu, self.wall.elapsed());
    }
}

/// `future`, each poll of it timed as `stage` (for tasks that live on the async runtime).
pub(crate) fn timed<F: Future>(stages: Arc<Stages>, stage: Stage, future: F) -> impl Future<Output = F::Output> {
    let mut future = Box::pin(future);
    std::future::poll_fn(move |context| {
        let _timer = stages.time(stage);
        future.as_mut().poll(context)
    })
}

#[derive(Default)]
pub(crate) struct Metrics {
    pub txs_admitted: AtomicU64,
    pub blocks_committed: AtomicU64,
    pub txs_finalized: AtomicU64,
    pub txs_failed: AtomicU64,
    pub block_commit_micros: AtomicU64,
    /// Proposals this node refused to vote for.
    pub proposals_refused: AtomicU64,
    /// Consensus messages that failed decoding or verification (the replica's count).
    pub consensus_messages_rejected: AtomicU64,
    /// Equivocations seen.
    pub evidence: AtomicU64,
    /// The consensus view this node is in.
    pub view: AtomicU64,
    /// 1 once a certified block disagreed with our state and block production stopped.
    pub halted: AtomicU64,
    /// CPU and wall time by stage (shared with the network tasks).
    pub stages: Arc<Stages>,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
}

/// Microseconds as seconds with six decimals, without floats.
fn seconds(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// A duration as seconds with nine decimals, without floats.
fn seconds_exact(duration: Duration) -> String {
    format!("{}.{:09}", duration.as_secs(), duration.subsec_nanos())
}

impl Metrics {
    pub fn rejected(&self, code: corridor_sdk::ErrorCode) {
        *self.rejected.lock().entry(code.as_str()).or_default() += 1;
    }

    pub fn render(&self, height: u64, mempool_txs: usize) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        counter(
            "corridor_txs_admitted_total",
            "Transactions admitted to the mempool.",
            self.txs_admitted.load(Relaxed),
        );
        counter(
            "corridor_blocks_committed_total",
            "Blocks finalized, executed and persisted.",
            self.blocks_committed.load(Relaxed),
        );
        counter(
            "corridor_txs_finalized_total",
            "Transactions in committed blocks.",
            self.txs_finalized.load(Relaxed),
        );
        counter(
            "corridor_txs_failed_total",
            "Committed transactions whose operation failed.",
            self.txs_failed.load(Relaxed),
        );
        counter(
            "corridor_proposals_refused_total",
            "Proposals this node did not vote for (bad time, root, nonce, signature or shape).",
            self.proposals_refused.load(Relaxed),
        );
        counter(
            "corridor_consensus_messages_rejected_total",
            "Consensus messages that failed decoding or verification.",
            self.consensus_messages_rejected.load(Relaxed),
        );
        counter(
            "corridor_consensus_evidence_total",
            "Validator equivocations seen.",
            self.evidence.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP corridor_consensus_view The consensus view this node is in.\n# TYPE corridor_consensus_view gauge\ncorridor_consensus_view {}\n# HELP corridor_halted 1 if block production stopped because a certified block disagreed with our state.\n# TYPE corridor_halted gauge\ncorridor_halted {}",
            self.view.load(Relaxed),
            self.halted.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP corridor_block_commit_seconds_total Time spent executing and persisting blocks.\n# TYPE corridor_block_commit_seconds_total counter\ncorridor_block_commit_seconds_total {}",
            seconds(self.block_commit_micros.load(Relaxed))
        );
        let _ = writeln!(
            out,
            "# HELP corridor_stage_cpu_seconds_total CPU time of the threads doing each stage of a transaction's way (thread CPU clock).\n# TYPE corridor_stage_cpu_seconds_total counter"
        );
        for stage in Stage::ALL {
            let (cpu, _) = self.stages.spent(stage);
            let _ = writeln!(
                out,
                "corridor_stage_cpu_seconds_total{{stage=\"{}\"}} {}",
                stage.name(),
                seconds_exact(cpu)
            );
        }
        let _ = writeln!(
            out,
            "# HELP corridor_stage_wall_seconds_total Elapsed time of each stage on the threads doing it, waits for a core included.\n# TYPE corridor_stage_wall_seconds_total counter"
        );
        for stage in Stage::ALL {
            let (_, wall) = self.stages.spent(stage);
            let _ = writeln!(
                out,
                "corridor_stage_wall_seconds_total{{stage=\"{}\"}} {}",
                stage.name(),
                seconds_exact(wall)
            );
        }
        let _ = writeln!(
            out,
            "# HELP corridor_process_cpu_seconds_total CPU time of the whole node process, every thread.\n# TYPE corridor_process_cpu_seconds_total counter\ncorridor_process_cpu_seconds_total {}",
            seconds_exact(process_cpu())
        );
        let _ = writeln!(
            out,
            "# HELP corridor_txs_rejected_total Submissions refused, by error code.\n# TYPE corridor_txs_rejected_total counter"
        );
        for (code, count) in self.rejected.lock().iter() {
            let _ = writeln!(out, "corridor_txs_rejected_total{{code=\"{code}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP corridor_height Height of the latest committed block.\n# TYPE corridor_height gauge\ncorridor_height {height}"
        );
        let _ = writeln!(
            out,
            "# HELP corridor_mempool_txs Transactions in the mempool.\n# TYPE corridor_mempool_txs gauge\ncorridor_mempool_txs {mempool_txs}"
        );
        out
    }
}
