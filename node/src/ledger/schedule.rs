//! Standing orders: scheduled and recurring payments, run by the block executor.
//!
//! Rules this module keeps:
//! - An order runs at the first block whose time is at or after its due time, before the
//!   block's transactions, in (due time, id) order, each run atomic on its own, through the
//!   same transfer path (and compliance hook) as a native transfer.
//! - A failed run (insufficient funds, frozen, a limit) is recorded with its code and is not
//!   retried until the next period. Missed periods are not caught up: the next due time is the
//!   first period boundary after the block's time.
//! - Runs happen outside any transaction, so they emit no events; the order's record counts
//!   them.

use super::execute::{TxContext, transfer};
use super::records::StateKey;
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::limits::SCHEDULES_ACTIVE_MAX;
use corridor_sdk::schedule::{ScheduleStatus, ScheduleView};
use corridor_sdk::{AccountId, TransferLeg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The id counter and the due index of active orders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScheduleBookRecord {
    pub next_id: u64,
    /// (next due ms, id) of every active order.
    pub due: BTreeSet<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScheduleRecord {
    pub payer: AccountId,
    pub leg: TransferLeg,
    pub period_ms: u64,
    pub remaining: Option<u32>,
    pub next_due_ms: u64,
    pub runs_succeeded: u32,
    pub runs_failed: u32,
    pub last_failure: Option<(u64, ErrorCode)>,
    pub status: ScheduleStatus,
}

impl ScheduleRecord {
    fn view(&self, id: u64) -> ScheduleView {
        ScheduleView {
            id,
            payer: self.payer.clone(),
            leg: self.leg.clone(),
            period_ms: self.period_ms,
            remaining: self.remaining,
            next_due_ms: self.next_due_ms,
            runs_succeeded: self.runs_succeeded,
            runs_failed: self.runs_failed,
            last_failure: self.last_failure,
            status: self.status,
        }
    }
}

pub(crate) fn create(
    ctx: &mut TxContext<'_>,
    payer: &AccountId,
    leg: &TransferLeg,
    start_ms: u64,
    period_ms: u64,
    count: u32,
) -> Result<u64, Error> {
    // Refuse what could never run: unknown receiver or currency, a bad scale, paying oneself.
    if payer == &leg.to {
        return Err(Error::new(ErrorCode::SelfTransfer, "a standing order to oneself"));
    }
    let currency = ctx.currency(&leg.currency)?;
    super::execute::check_scale(&leg.currency, &currency, leg.amount)?;
    ctx.require_account(&leg.to)?;
    let mut book: ScheduleBookRecord = ctx.record(&StateKey::ScheduleBook).unwrap_or_default();
    if book.due.len() >= SCHEDULES_ACTIVE_MAX {
        return Err(Error::new(
            ErrorCode::SchedulesFull,
            format!("{SCHEDULES_ACTIVE_MAX} standing orders are active"),
        ));
    }
    let id = book.next_id;
    book.next_id = id.checked_add(1).expect("schedule ids do not run out");
    let next_due_ms = start_ms.max(ctx.block_time_ms);
    book.due.insert((next_due_ms, id));
    let record = ScheduleRecord {
        payer: payer.clone(),
        leg: leg.clone(),
        period_ms,
        remaining: (count > 0).then_some(count),
        next_due_ms,
        runs_succeeded: 0,
        runs_failed: 0,
        last_failure: None,
        status: ScheduleStatus::Active,
    };
    ctx.put_record(&StateKey::ScheduleBook, Some(&book));
    ctx.put_record(&StateKey::Schedule(id), Some(&record));
    ctx.events.push(corridor_sdk::Event::ScheduleCreated {
        schedule: id,
        payer: payer.clone(),
    });
    Ok(id)
}

pub(crate) fn cancel(ctx: &mut TxContext<'_>, sender: &AccountId, id: u64) -> Result<(), Error> {
    let mut record: ScheduleRecord = ctx
        .record(&StateKey::Schedule(id))
        .ok_or_else(|| Error::new(ErrorCode::UnknownSchedule, format!("no standing order {id}")))?;
    if &record.payer != sender {
        return Err(Error::new(
            ErrorCode::NotAuthorized,
            format!("only {} may cancel standing order {id}", record.payer),
        ));
    }
    if record.status != ScheduleStatus::Active {
        return Err(Error::new(
            ErrorCode::UnknownSchedule,
            format!("standing order {id} is not active"),
        ));
    }
    let mut book: ScheduleBookRecord = ctx.record(&StateKey::ScheduleBook).unwrap_or_default();
    assert!(book.due.remove(&(record.next_due_ms, id)), "an active order is indexed");
    record.status = ScheduleStatus::Cancelled;
    ctx.put_record(&StateKey::ScheduleBook, Some(&book));
    ctx.put_record(&StateKey::Schedule(id), Some(&record));
    ctx.events.push(corridor_sdk::Event::ScheduleCancelled {
        schedule: id,
        payer: sender.clone(),
    });
    Ok(())
}

/// The orders due at the context's block time, in run order.
pub(crate) fn due(ctx: &TxContext<'_>) -> Vec<u64> {
    let Some(book) = ctx.record::<ScheduleBookRecord>(&StateKey::ScheduleBook) else {
        return Vec::new();
    };
    book.due
        .iter()
        .take_while(|(due_ms, _)| *due_ms <= ctx.block_time_ms)
        .map(|(_, id)| *id)
        .collect()
}

/// Run one due order: pay, or record why not; then advance or finish it.
pub(crate) fn run(ctx: &mut TxContext<'_>, id: u64) {
    let mut record: ScheduleRecord = ctx.record(&StateKey::Schedule(id)).expect("a due order exists");
    assert_eq!(record.status, ScheduleStatus::Active, "only active orders are due");
    assert!(record.next_due_ms <= ctx.block_time_ms, "only due orders run");
    // The payment is atomic on its own: a failure leaves no trace but the record's.
    let paid = {
        let payer_frozen = ctx.require_account(&record.payer).map(|a| a.is_frozen());
        match payer_frozen {
            Ok(true) => Err(Error::new(
                ErrorCode::Frozen,
                format!("account {} is frozen", record.payer),
            )),
            Ok(false) => ctx.attempt(|ctx| transfer(ctx, &record.payer, &record.leg)),
            Err(error) => Err(error),
        }
    };
    match paid {
        Ok(()) => record.runs_succeeded += 1,
        Err(error) => {
            record.runs_failed += 1;
            record.last_failure = Some((ctx.block_time_ms, error.code));
        }
    }
    let mut book: ScheduleBookRecord = ctx.record(&StateKey::ScheduleBook).expect("a due order is indexed");
    assert!(book.due.remove(&(record.next_due_ms, id)), "a due order is indexed");
    record.remaining = record.remaining.map(|left| left - 1);
    if record.period_ms == 0 || record.remaining == Some(0) {
        record.status = ScheduleStatus::Done;
    } else {
        // The first period boundary after this block: missed periods are not caught up.
        let behind = ctx.block_time_ms - record.next_due_ms;
        let periods = behind / record.period_ms + 1;
        record.next_due_ms = record
            .next_due_ms
            .saturating_add(periods.saturating_mul(record.period_ms));
        book.due.insert((record.next_due_ms, id));
    }
    ctx.events.clear();
    ctx.put_record(&StateKey::ScheduleBook, Some(&book));
    ctx.put_record(&StateKey::Schedule(id), Some(&record));
}

/// `GET /v1/schedules/{id}`.
pub(crate) fn view(reader: &dyn super::StateReader, id: u64) -> Option<ScheduleView> {
    let bytes = reader.get(&StateKey::Schedule(id).to_bytes())?;
    Some(super::execute::decode_state::<ScheduleRecord>(&bytes).view(id))
}

/// `GET /v1/schedules?payer=ACCOUNT`: the payer's active orders.
pub(crate) fn active_of(reader: &dyn super::StateReader, payer: &AccountId) -> Vec<ScheduleView> {
    let Some(bytes) = reader.get(&StateKey::ScheduleBook.to_bytes()) else {
        return Vec::new();
    };
    let book: ScheduleBookRecord = super::execute::decode_state(&bytes);
    let mut ids: Vec<u64> = book.due.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    ids.into_iter()
        .filter_map(|id| view(reader, id))
        .filter(|view| &view.payer == payer)
        .collect()
}
