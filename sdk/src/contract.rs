//! Contracts from the client's side: the argument encoding of contracts/ABI.md (the same as
//! the guest SDK's `corridor_contract::ArgsWriter`), the contract view of the HTTP API, and
//! typed argument builders for the shipped contracts, so no user writes raw bytes.

use crate::amount::Amount;
use crate::error::{Error, ErrorCode};
use crate::hash::Hash;
use crate::ids::{AccountId, CurrencyCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Arguments: a sequence of fields, each a u32 little-endian length and that many bytes.
/// Integers are 8-byte little-endian fields; text is UTF-8.
#[derive(Debug, Default, Clone)]
pub struct ArgsWriter {
    bytes: Vec<u8>,
}

impl ArgsWriter {
    pub fn new() -> ArgsWriter {
        ArgsWriter::default()
    }

    pub fn bytes(mut self, field: &[u8]) -> ArgsWriter {
        let len = u32::try_from(field.len()).expect("argument fields are far below 4 GiB");
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(field);
        self
    }

    pub fn str(self, text: &str) -> ArgsWriter {
        self.bytes(text.as_bytes())
    }

    pub fn u64(self, value: u64) -> ArgsWriter {
        self.bytes(&value.to_le_bytes())
    }

    pub fn i64(self, value: i64) -> ArgsWriter {
        self.bytes(&value.to_le_bytes())
    }

    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// An amount in minor units of a currency of `scale` (12.34 at scale 2 is 1234), as contracts
/// see amounts; refused unless it fits the scale and an i64.
pub fn to_minor_units(amount: Amount, scale: u32) -> Result<i64, Error> {
    if !amount.fits_scale(scale) {
        return Err(Error::new(
            ErrorCode::AmountScale,
            format!("{amount} has more than {scale} decimal places"),
        ));
    }
    let decimal = amount.decimal();
    let widen = 10i128
        .checked_pow(scale - decimal.scale())
        .and_then(|factor| decimal.mantissa().checked_mul(factor));
    widen.and_then(|minor| i64::try_from(minor).ok()).ok_or_else(|| {
        Error::new(
            ErrorCode::AmountOverflow,
            format!("{amount} is out of a contract's range"),
        )
    })
}

/// The inverse of `to_minor_units`.
pub fn from_minor_units(minor: i64, scale: u32) -> Amount {
    Amount::new(rust_decimal::Decimal::from_i128_with_scale(i128::from(minor), scale))
}

/// `GET /v1/contracts/{id}`: a contract's code, balances and storage (keys and values in hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractView {
    pub id: u64,
    pub code_hash: Hash,
    pub deployer: AccountId,
    pub balances: BTreeMap<CurrencyCode, Amount>,
    pub storage: BTreeMap<String, String>,
}

/// The shipped escrow contract's arguments (contracts/escrow).
pub mod escrow {
    use super::ArgsWriter;
    use crate::ids::AccountId;

    pub fn create(seller: &AccountId, arbiter: &AccountId, deadline_ms: u64) -> Vec<u8> {
        ArgsWriter::new()
            .str(seller.as_str())
            .str(arbiter.as_str())
            .u64(deadline_ms)
            .finish()
    }

    /// `create_fx`: as `create`, and the escrow locks `provider`'s rate for the attached
    /// funds in `buy` until the deadline; `release` pays the seller in `buy` at that rate.
    pub fn create_fx(
        seller: &AccountId,
        arbiter: &AccountId,
        deadline_ms: u64,
        provider: &AccountId,
        buy: &crate::ids::CurrencyCode,
    ) -> Vec<u8> {
        ArgsWriter::new()
            .str(seller.as_str())
            .str(arbiter.as_str())
            .u64(deadline_ms)
            .str(provider.as_str())
            .str(buy.as_str())
            .finish()
    }

    /// What `create_fx` returns: the escrow id, the amount locked to buy (minor units) and
    /// the rate (units of 10^-10, `RATE_SCALE_MAX`).
    pub fn created_fx(return_data: &[u8]) -> Option<(u64, i64, i64)> {
        let field = |index: usize| -> Option<[u8; 8]> { return_data.get(index * 8..index * 8 + 8)?.try_into().ok() };
        if return_data.len() != 24 {
            return None;
        }
        Some((
            u64::from_le_bytes(field(0)?),
            i64::from_le_bytes(field(1)?),
            i64::from_le_bytes(field(2)?),
        ))
    }

    /// `release`, `refund`, `dispute`.
    pub fn id(escrow: u64) -> Vec<u8> {
        ArgsWriter::new().u64(escrow).finish()
    }

    /// `capture` (seller's amount) and `decide` (the seller's share), in minor units.
    pub fn id_amount(escrow: u64, minor_units: i64) -> Vec<u8> {
        ArgsWriter::new().u64(escrow).i64(minor_units).finish()
    }
}

/// The shipped conditional-payment contract's arguments (contracts/conditional-payment).
pub mod conditional_payment {
    use super::ArgsWriter;
    use crate::ids::AccountId;

    /// The conditions of a payment; `None`/empty means the condition does not apply.
    #[derive(Debug, Clone, Default)]
    pub struct Conditions {
        pub attester: Option<AccountId>,
        /// Approvals needed from `approvers`.
        pub threshold: u64,
        pub approvers: Vec<AccountId>,
        /// Only these payees (empty: any).
        pub payees: Vec<AccountId>,
        pub tax: Option<(AccountId, u64)>,
    }

    fn list(mut writer: ArgsWriter, accounts: &[AccountId]) -> ArgsWriter {
        writer = writer.u64(accounts.len() as u64);
        for account in accounts {
            writer = writer.str(account.as_str());
        }
        writer
    }

    pub fn create(beneficiary: &AccountId, expiry_ms: u64, conditions: &Conditions) -> Vec<u8> {
        let (tax_authority, tax_bps) = conditions
            .tax
            .as_ref()
            .map_or(("", 0), |(authority, bps)| (authority.as_str(), *bps));
        let writer = ArgsWriter::new()
            .str(beneficiary.as_str())
            .u64(expiry_ms)
            .str(conditions.attester.as_ref().map_or("", AccountId::as_str))
            .u64(conditions.threshold)
            .str(tax_authority)
            .u64(tax_bps);
        let writer = list(writer, &conditions.payees);
        list(writer, &conditions.approvers).finish()
    }

    pub fn spend(payment: u64, payee: &AccountId, minor_units: i64) -> Vec<u8> {
        ArgsWriter::new()
            .u64(payment)
            .str(payee.as_str())
            .i64(minor_units)
            .finish()
    }

    /// `attest`, `approve`, `reclaim`.
    pub fn id(payment: u64) -> Vec<u8> {
        ArgsWriter::new().u64(payment).finish()
    }
}

/// The shipped supply-chain-finance contract's arguments (contracts/supply-chain-finance).
pub mod supply_chain_finance {
    use super::ArgsWriter;
    use crate::ids::{AccountId, CurrencyCode};

    pub fn issue(holder: &AccountId, currency: &CurrencyCode, minor_units: i64, maturity_ms: u64) -> Vec<u8> {
        ArgsWriter::new()
            .str(holder.as_str())
            .str(currency.as_str())
            .i64(minor_units)
            .u64(maturity_ms)
            .finish()
    }

    pub fn transfer(receivable: u64, to: &AccountId, minor_units: i64) -> Vec<u8> {
        ArgsWriter::new()
            .u64(receivable)
            .str(to.as_str())
            .i64(minor_units)
            .finish()
    }

    pub fn offer(receivable: u64, financier: &AccountId, minor_units: i64, rate_bps: u64) -> Vec<u8> {
        ArgsWriter::new()
            .u64(receivable)
            .str(financier.as_str())
            .i64(minor_units)
            .u64(rate_bps)
            .finish()
    }

    pub fn take(receivable: u64, holder: &AccountId) -> Vec<u8> {
        ArgsWriter::new().u64(receivable).str(holder.as_str()).finish()
    }

    /// `settle`, `check`.
    pub fn id(receivable: u64) -> Vec<u8> {
        ArgsWriter::new().u64(receivable).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the argument encoding of contracts/ABI.md (the guest SDK decodes the same bytes).
    #[test]
    fn fixture_bytes_are_pinned() {
        let bytes = ArgsWriter::new().str("ab").u64(7).i64(-1).bytes(&[]).finish();
        assert_eq!(
            hex::encode(bytes),
            concat!(
                "02000000",
                "6162", // "ab"
                "08000000",
                "0700000000000000", // 7
                "08000000",
                "ffffffffffffffff", // -1
                "00000000"          // empty
            )
        );
    }

    #[test]
    fn minor_units_are_exact() {
        let amount = |text: &str| Amount::parse(text).expect("amount");
        assert_eq!(to_minor_units(amount("12.34"), 2), Ok(1234));
        assert_eq!(to_minor_units(amount("12"), 2), Ok(1200));
        assert_eq!(from_minor_units(1234, 2), amount("12.34"));
        assert_eq!(
            to_minor_units(amount("0.001"), 2).map_err(|e| e.code),
            Err(ErrorCode::AmountScale)
        );
        assert_eq!(
            to_minor_units(amount("100000000000000000"), 2).map_err(|e| e.code),
            Err(ErrorCode::AmountOverflow)
        );
    }
}
