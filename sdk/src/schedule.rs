//! Standing orders (scheduled and recurring payments) as the HTTP API shows them.

use crate::error::ErrorCode;
use crate::ids::AccountId;
use crate::tx::TransferLeg;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleStatus {
    Active,
    /// Ran its `count` times (or once, without a period).
    Done,
    Cancelled,
}

/// `GET /v1/schedules/{id}` and the entries of `GET /v1/schedules?payer=ACCOUNT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleView {
    pub id: u64,
    pub payer: AccountId,
    pub leg: TransferLeg,
    /// 0: once.
    pub period_ms: u64,
    /// Runs left; `None`: until cancelled.
    pub remaining: Option<u32>,
    /// Block time at or after which it runs next (while active).
    pub next_due_ms: u64,
    pub runs_succeeded: u32,
    pub runs_failed: u32,
    /// The latest failed run: (block time, code).
    pub last_failure: Option<(u64, ErrorCode)>,
    pub status: ScheduleStatus,
}
