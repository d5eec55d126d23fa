//! Flow control: per-peer token buckets, redial back-off, and the bounded queue to the driver.
//!
//! The rule this module keeps: nothing here grows without bound or waits on the driver; when
//! the driver falls behind, transaction messages are dropped first and every drop is reported.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Channel, Inbound};

/// Thousandths of a token: integer arithmetic keeps fractional refills exact.
const MILLITOKENS_PER_TOKEN: u64 = 1_000;

/// A token bucket: `per_second` tokens a second, at most `burst` saved up.
pub(super) struct TokenBucket {
    millitokens: u64,
    millitokens_max: u64,
    per_second: u64,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(super) fn new(per_second: u64, burst: u64, now: Instant) -> TokenBucket {
        assert!(per_second > 0 && burst > 0, "a rate limit lets something through");
        let millitokens_max = burst.saturating_mul(MILLITOKENS_PER_TOKEN);
        TokenBucket {
            millitokens: millitokens_max,
            millitokens_max,
            per_second,
            refilled_at: now,
        }
    }

    /// Takes one token if there is one.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.millitokens < MILLITOKENS_PER_TOKEN {
            return false;
        }
        self.millitokens -= MILLITOKENS_PER_TOKEN;
        true
    }

    fn refill(&mut self, now: Instant) {
        let elapsed_ms = u64::try_from(now.saturating_duration_since(self.refilled_at).as_millis()).unwrap_or(u64::MAX);
        // `per_second` tokens a second is `per_second` millitokens a millisecond. Only whole
        // milliseconds are consumed, so frequent calls lose nothing to rounding.
        let refill = elapsed_ms.saturating_mul(self.per_second);
        self.millitokens = self.millitokens.saturating_add(refill).min(self.millitokens_max);
        self.refilled_at += Duration::from_millis(elapsed_ms);
    }
}

/// Delay before the next dial after `failures` failed dials or drops in a row: doubling from
/// `delay_ms_min`, capped at `delay_ms_max`.
pub(super) fn redial_delay(failures: u32, delay_ms_min: u64, delay_ms_max: u64) -> Duration {
    let doublings = failures.min(u64::BITS - 1);
    let delay_ms = delay_ms_min.checked_shl(doublings).unwrap_or(u64::MAX);
    let delay_ms = if delay_ms >> doublings == delay_ms_min {
        delay_ms
    } else {
        u64::MAX
    };
    Duration::from_millis(delay_ms.min(delay_ms_max))
}

/// What became of an item offered to the driver.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Delivery {
    /// In the driver's channel, or waiting in the overflow for room in it.
    Queued,
    /// Dropped: the driver is too far behind (or gone).
    Dropped,
}

/// The driver's bounded channel, plus a bounded overflow for the items that must not be dropped
/// lightly (consensus messages, requests, connection events). Transaction messages never wait
/// in the overflow and are refused while less than `reserved_items` of the channel is free, so
/// a flood of transactions cannot crowd out consensus.
pub(super) struct InboundQueue {
    pub(super) sender: mpsc::Sender<Inbound>,
    pub(super) overflow: VecDeque<Inbound>,
    reserved_items: usize,
    overflow_items_max: usize,
}

impl InboundQueue {
    pub(super) fn new(sender: mpsc::Sender<Inbound>, reserved_items: usize, overflow_items_max: usize) -> InboundQueue {
        assert!(
            reserved_items < sender.max_capacity(),
            "transactions get some of the channel"
        );
        InboundQueue {
            sender,
            overflow: VecDeque::new(),
            reserved_items,
            overflow_items_max,
        }
    }

    pub(super) fn deliver(&mut self, item: Inbound) -> Delivery {
        let is_transactions = matches!(
            item,
            Inbound::Message {
                channel: Channel::Transactions,
                ..
            }
        );
        if is_transactions {
            if !self.overflow.is_empty() || self.sender.capacity() <= self.reserved_items {
                return Delivery::Dropped;
            }
            return match self.sender.try_send(item) {
                Ok(()) => Delivery::Queued,
                Err(_) => Delivery::Dropped,
            };
        }
        if self.overflow.is_empty() {
            return match self.sender.try_send(item) {
                Ok(()) => Delivery::Queued,
                Err(mpsc::error::TrySendError::Full(item)) => self.push_overflow(item),
                Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Dropped,
            };
        }
        self.push_overflow(item)
    }

    fn push_overflow(&mut self, item: Inbound) -> Delivery {
        if self.overflow.len() >= self.overflow_items_max {
            return Delivery::Dropped;
        }
        self.overflow.push_back(item);
        Delivery::Queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::PeerId;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 3, start);
        assert_eq!((0..5).filter(|_| bucket.take(start)).count(), 3);
        // 10 a second is one per 100 ms, refilled in whole milliseconds without loss.
        let mut at = start;
        for _ in 0..99 {
            at += Duration::from_millis(1);
            assert!(!bucket.take(at));
        }
        assert!(bucket.take(at + Duration::from_millis(1)));
        assert_eq!((0..5).filter(|_| bucket.take(at + Duration::from_secs(60))).count(), 3);
    }

    #[test]
    fn redial_back_off_doubles_and_is_capped() {
        let delays: Vec<u64> = (0..6)
            .map(|failures| redial_delay(failures, 100, 1_000).as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(redial_delay(u32::MAX, 100, 30_000), Duration::from_millis(30_000));
        assert_eq!(redial_delay(63, 3, 30_000), Duration::from_millis(30_000));
    }

    fn message(channel: Channel) -> Inbound {
        Inbound::Message {
            from: PeerId::random(),
            channel,
            bytes: vec![1],
        }
    }

    #[test]
    fn a_full_driver_queue_drops_transactions_first() {
        let (sender, mut receiver) = mpsc::channel(4);
        let mut queue = InboundQueue::new(sender, 2, 1);
        assert_eq!(queue.deliver(message(Channel::Transactions)), Delivery::Queued);
        assert_eq!(queue.deliver(message(Channel::Transactions)), Delivery::Queued);
        // Two free: both kept for consensus.
        assert_eq!(queue.deliver(message(Channel::Transactions)), Delivery::Dropped);
        assert_eq!(queue.deliver(message(Channel::Consensus)), Delivery::Queued);
        assert_eq!(queue.deliver(message(Channel::Consensus)), Delivery::Queued);
        // Channel full: one consensus message waits in the overflow, the next is dropped.
        assert_eq!(queue.deliver(message(Channel::Consensus)), Delivery::Queued);
        assert_eq!(queue.overflow.len(), 1);
        assert_eq!(queue.deliver(message(Channel::Consensus)), Delivery::Dropped);
        assert!(receiver.try_recv().is_ok());
        // Room again, but the overflow goes first: transactions still wait their turn.
        assert_eq!(queue.deliver(message(Channel::Transactions)), Delivery::Dropped);
    }
}
