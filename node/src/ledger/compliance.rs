//! The one compliance hook. Every movement of value (mint, burn, transfer, each batch leg)
//! passes through `check_movement` before any balance changes; a refusal carries a code.
//!
//! Today it enforces frozen accounts and the per-currency single-transfer limit from genesis.
//! A policy engine (velocity limits, sanctions lists, travel-rule data) grows here, behind the
//! same call, without the executor changing.

use super::records::{AccountRecord, CurrencyRecord};
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::{AccountId, Amount, CurrencyCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MovementKind {
    Mint,
    Burn,
    Transfer,
}

/// One movement of value, with the parties as they stand before it.
pub(crate) struct Movement<'a> {
    pub kind: MovementKind,
    pub from: Option<(&'a AccountId, &'a AccountRecord)>,
    pub to: Option<(&'a AccountId, &'a AccountRecord)>,
    pub currency: (&'a CurrencyCode, &'a CurrencyRecord),
    pub amount: Amount,
}

pub(crate) fn check_movement(movement: &Movement<'_>) -> Result<(), Error> {
    for (id, account) in [movement.from, movement.to].into_iter().flatten() {
        if account.is_frozen() {
            return Err(Error::new(ErrorCode::Frozen, format!("account {id} is frozen")));
        }
    }
    let (code, currency) = movement.currency;
    if movement.kind == MovementKind::Transfer
        && let Some(limit) = currency.transfer_limit
        && movement.amount > limit
    {
        return Err(Error::new(
            ErrorCode::LimitExceeded,
            format!(
                "{} {code} exceeds the single-transfer limit of {limit} {code}",
                movement.amount
            ),
        ));
    }
    Ok(())
}
