//! What executing a transaction produced: its outcome and its events.

use crate::amount::Amount;
use crate::crypto::PublicKey;
use crate::error::ErrorCode;
use crate::fx::Rate;
use crate::hash::Hash;
use crate::ids::{AccountId, CurrencyCode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// The transaction was ordered but its operation was refused; nothing but the sender's
    /// nonce changed.
    Failed {
        code: ErrorCode,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub tx_hash: Hash,
    pub height: u64,
    pub index: u32,
    pub sender: AccountId,
    pub outcome: Outcome,
    pub events: Vec<Event>,
}

/// A change a user may want to hear about. The order of variants is part of the stored format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    AccountRegistered {
        account: AccountId,
        public_key: PublicKey,
    },
    KeyRotated {
        account: AccountId,
        public_key: PublicKey,
    },
    Minted {
        to: AccountId,
        currency: CurrencyCode,
        amount: Amount,
    },
    Burned {
        from: AccountId,
        currency: CurrencyCode,
        amount: Amount,
    },
    Transferred {
        from: AccountId,
        to: AccountId,
        currency: CurrencyCode,
        amount: Amount,
        memo: Option<String>,
    },
    Frozen {
        account: AccountId,
        by: AccountId,
    },
    Unfrozen {
        account: AccountId,
        by: AccountId,
    },
    FxRatePosted {
        provider: AccountId,
        sell: CurrencyCode,
        buy: CurrencyCode,
        rate: Rate,
    },
    FxLocked {
        lock_id: u64,
        payer: AccountId,
        provider: AccountId,
        sell: CurrencyCode,
        buy: CurrencyCode,
        sell_amount: Amount,
        buy_amount: Amount,
        rate: Rate,
        expires_at_ms: u64,
    },
    /// Both legs of a lock moved: `sell_amount` payer → provider, `buy_amount` reservation → `to`.
    FxSettled {
        lock_id: u64,
        payer: AccountId,
        provider: AccountId,
        to: AccountId,
        sell: CurrencyCode,
        sell_amount: Amount,
        buy: CurrencyCode,
        buy_amount: Amount,
    },
    ContractDeployed {
        contract: u64,
        deployer: AccountId,
        code_hash: Hash,
    },
    /// A contract call (or deploy's `init`) that succeeded: its fuel use and return data.
    ContractCalled {
        contract: u64,
        caller: AccountId,
        method: String,
        funds: Option<(CurrencyCode, Amount)>,
        fuel_used: u64,
        return_data: Vec<u8>,
    },
    /// An event a contract emitted during a call by `caller`.
    ContractEvent {
        contract: u64,
        caller: AccountId,
        topic: String,
        data: Vec<u8>,
    },
    /// A contract paid from its own balance.
    ContractTransferred {
        contract: u64,
        to: AccountId,
        currency: CurrencyCode,
        amount: Amount,
    },
    ScheduleCreated {
        schedule: u64,
        payer: AccountId,
    },
    ScheduleCancelled {
        schedule: u64,
        payer: AccountId,
    },
    /// The sender's transaction was ordered but its operation was refused with `code`; only
    /// its nonce moved. In the sender's history and event stream, so nothing accepted is
    /// silently forgotten.
    Failed {
        account: AccountId,
        code: ErrorCode,
    },
    /// The account's keys and threshold were replaced (ADR 0043).
    KeysSet {
        account: AccountId,
        keys: Vec<PublicKey>,
        threshold: u8,
    },
}

impl Event {
    /// The accounts whose history this event belongs to.
    pub fn accounts(&self) -> Vec<&AccountId> {
        match self {
            Event::AccountRegistered { account, .. }
            | Event::KeyRotated { account, .. }
            | Event::Minted { to: account, .. }
            | Event::Burned { from: account, .. } => vec![account],
            Event::Transferred { from, to, .. } => vec![from, to],
            Event::Frozen { account, by } | Event::Unfrozen { account, by } => vec![account, by],
            Event::Failed { account, .. } | Event::KeysSet { account, .. } => vec![account],
            Event::FxRatePosted { provider, .. } => vec![provider],
            Event::FxLocked { payer, provider, .. } => vec![payer, provider],
            Event::FxSettled {
                payer, provider, to, ..
            } => vec![payer, provider, to],
            Event::ContractDeployed { deployer, .. } => vec![deployer],
            Event::ContractCalled { caller, .. } | Event::ContractEvent { caller, .. } => vec![caller],
            Event::ContractTransferred { to, .. } => vec![to],
            Event::ScheduleCreated { payer, .. } | Event::ScheduleCancelled { payer, .. } => vec![payer],
        }
    }
}
