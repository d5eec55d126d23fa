//! Counters of what the transport carried and what it refused, per lane.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Lane;

/// What one lane (consensus messages, transaction messages, sync requests) carried and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LaneStats {
    /// Messages (or requests) from peers handed to the driver.
    pub messages_in: u64,
    /// Messages (or requests) this node sent that the peer acknowledged (or answered).
    pub messages_out: u64,
    /// Sends refused because the peer's outbound queue was full.
    pub dropped_queue_full: u64,
    /// Inbound messages dropped because the peer went over its rate.
    pub dropped_rate_limited: u64,
    /// Frames over the size limit, refused in either direction.
    pub dropped_oversized: u64,
    /// Inbound messages dropped because the driver's queue was full.
    pub dropped_inbound_full: u64,
    /// Outbound messages that were queued but not acknowledged (disconnect, timeout, refusal).
    pub undelivered: u64,
}

/// A snapshot of the transport's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NetworkStats {
    pub consensus: LaneStats,
    pub transactions: LaneStats,
    /// Requests (block sync, validator proof): `messages_in` counts requests handed to the
    /// driver, `messages_out` answers received.
    pub sync: LaneStats,
    /// Connections refused by the allow list, the ban list or the connection limits.
    pub connections_refused: u64,
    /// Connected and Disconnected events dropped because the driver's queue was full.
    pub dropped_events: u64,
}

#[derive(Default)]
pub(super) struct LaneCounters {
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_rate_limited: AtomicU64,
    dropped_oversized: AtomicU64,
    dropped_inbound_full: AtomicU64,
    undelivered: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl LaneCounters {
    pub(super) fn count_in(&self) {
        bump(&self.messages_in);
    }
    pub(super) fn count_out(&self) {
        bump(&self.messages_out);
    }
    pub(super) fn count_queue_full(&self) {
        bump(&self.dropped_queue_full);
    }
    pub(super) fn count_rate_limited(&self) {
        bump(&self.dropped_rate_limited);
    }
    pub(super) fn count_oversized(&self) {
        bump(&self.dropped_oversized);
    }
    pub(super) fn count_inbound_full(&self) {
        bump(&self.dropped_inbound_full);
    }
    pub(super) fn count_undelivered(&self) {
        bump(&self.undelivered);
    }

    fn snapshot(&self) -> LaneStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        LaneStats {
            messages_in: read(&self.messages_in),
            messages_out: read(&self.messages_out),
            dropped_queue_full: read(&self.dropped_queue_full),
            dropped_rate_limited: read(&self.dropped_rate_limited),
            dropped_oversized: read(&self.dropped_oversized),
            dropped_inbound_full: read(&self.dropped_inbound_full),
            undelivered: read(&self.undelivered),
        }
    }
}

/// The live counters, shared by the handle, the swarm task and the codecs.
#[derive(Default)]
pub(super) struct Counters {
    consensus: LaneCounters,
    transactions: LaneCounters,
    sync: LaneCounters,
    connections_refused: AtomicU64,
    dropped_events: AtomicU64,
}

impl Counters {
    pub(super) fn lane(&self, lane: Lane) -> &LaneCounters {
        match lane {
            Lane::Consensus => &self.consensus,
            Lane::Transactions => &self.transactions,
            Lane::Sync => &self.sync,
        }
    }

    pub(super) fn count_refused_connection(&self) {
        bump(&self.connections_refused);
    }

    pub(super) fn count_dropped_event(&self) {
        bump(&self.dropped_events);
    }

    pub(super) fn snapshot(&self) -> NetworkStats {
        NetworkStats {
            consensus: self.consensus.snapshot(),
            transactions: self.transactions.snapshot(),
            sync: self.sync.snapshot(),
            connections_refused: self.connections_refused.load(Ordering::Relaxed),
            dropped_events: self.dropped_events.load(Ordering::Relaxed),
        }
    }
}
