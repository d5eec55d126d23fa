//! Prometheus metrics, counted with atomics and rendered as text at `GET /metrics`.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
    rejected: Mutex<BTreeMap<&'static str, u64>>,
}

/// Microseconds as seconds with six decimals, without floats.
fn seconds(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
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
