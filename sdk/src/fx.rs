//! FX arithmetic and views, shared by the node (which executes locks) and clients (which show
//! quotes). Exact integer arithmetic on decimal mantissas: nothing here rounds except where a
//! function says it rounds down, and nothing is a float.
//!
//! A rate of the directed pair `SELL/BUY` says how many units of `BUY` one unit of `SELL` buys.
//! The oracle rate is the lower median of fresh posts; a liquidity provider's client rate is the
//! oracle rate less its spread, rounded down to `RATE_SCALE_MAX` places; the amount bought is
//! `sell_amount × client_rate` rounded down to the buy currency's scale, so the rounding
//! remainder stays with the provider.

use crate::amount::Amount;
use crate::error::{Error, ErrorCode};
use crate::ids::{AccountId, CurrencyCode};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Decimal places of a posted rate.
pub const RATE_SCALE_MAX: u32 = 10;
/// Basis points in one whole: a spread is a number of basis points below this.
pub const SPREAD_BPS_WHOLE: u32 = 10_000;

/// A positive exchange rate with at most `RATE_SCALE_MAX` decimal places.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rate(Amount);

impl Rate {
    pub fn new(value: Amount) -> Result<Rate, Error> {
        if !value.is_positive() || !value.fits_scale(RATE_SCALE_MAX) {
            return Err(Error::new(
                ErrorCode::FxRateInvalid,
                format!("rate {value} must be positive with at most {RATE_SCALE_MAX} decimal places"),
            ));
        }
        Ok(Rate(value))
    }

    pub fn parse(text: &str) -> Result<Rate, Error> {
        Rate::new(Amount::parse(text)?)
    }

    pub fn amount(self) -> Amount {
        self.0
    }

    /// Whether a decoded rate keeps the rules `new` enforces (decoding does not call `new`).
    pub fn is_valid(self) -> bool {
        self.0.is_positive() && self.0.fits_scale(RATE_SCALE_MAX)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl std::fmt::Debug for Rate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl std::str::FromStr for Rate {
    type Err = Error;
    fn from_str(text: &str) -> Result<Rate, Error> {
        Rate::parse(text)
    }
}

fn overflow() -> Error {
    Error::new(ErrorCode::AmountOverflow, "FX arithmetic out of range")
}

/// `mantissa / 10^(scale - target)` rounded toward zero (values here are positive: down).
fn truncate(mantissa: i128, scale: u32, target: u32) -> Result<Decimal, Error> {
    let (mantissa, scale) = if scale > target {
        let divisor = 10i128.checked_pow(scale - target).ok_or_else(overflow)?;
        (mantissa / divisor, target)
    } else {
        (mantissa, scale)
    };
    Decimal::try_from_i128_with_scale(mantissa, scale).map_err(|_| overflow())
}

/// `a × b` rounded down to `scale` places, exactly: the product is formed on i128 mantissas and
/// then truncated, never rounded to nearest first.
pub fn multiply_down(a: Amount, b: Amount, scale: u32) -> Result<Amount, Error> {
    let (a, b) = (a.decimal(), b.decimal());
    assert!(
        !a.is_sign_negative() && !b.is_sign_negative(),
        "FX multiplies non-negative values"
    );
    let mantissa = a.mantissa().checked_mul(b.mantissa()).ok_or_else(overflow)?;
    Ok(Amount::new(truncate(mantissa, a.scale() + b.scale(), scale)?))
}

/// The rate a liquidity provider quotes: `oracle × (1 − spread_bps / 10 000)`, rounded down.
pub fn client_rate(oracle: Rate, spread_bps: u32) -> Result<Rate, Error> {
    assert!(spread_bps < SPREAD_BPS_WHOLE, "spreads are validated at genesis");
    let keep = Amount::new(Decimal::new(i64::from(SPREAD_BPS_WHOLE - spread_bps), 4));
    let rate = multiply_down(oracle.amount(), keep, RATE_SCALE_MAX)?;
    Rate::new(rate).map_err(|_| Error::new(ErrorCode::FxNoRate, format!("{oracle} less the spread rounds to zero")))
}

/// What `sell_amount` buys at `rate`, rounded down to `buy_scale` places.
pub fn convert(sell_amount: Amount, rate: Rate, buy_scale: u32) -> Result<Amount, Error> {
    multiply_down(sell_amount, rate.amount(), buy_scale)
}

/// The lower median: the middle rate of an odd count, the lower of the two middle rates of an
/// even count (no division, so no rounding). `None` for no rates.
pub fn lower_median(mut rates: Vec<Rate>) -> Option<Rate> {
    if rates.is_empty() {
        return None;
    }
    rates.sort();
    Some(rates[(rates.len() - 1) / 2])
}

/// One provider's latest post for a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatePostView {
    pub provider: AccountId,
    pub rate: Rate,
    pub posted_at_ms: u64,
    /// Posted within the staleness bound of the block time the view was taken at.
    pub fresh: bool,
}

/// A liquidity provider's quote for a pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteView {
    pub provider: AccountId,
    pub spread_bps: u32,
    pub rate: Rate,
    /// The provider's balance of the buy currency: the most one lock can reserve.
    pub inventory: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairView {
    pub sell: CurrencyCode,
    pub buy: CurrencyCode,
    /// The median of fresh posts; `None` when every post is stale.
    pub oracle_rate: Option<Rate>,
    pub posts: Vec<RatePostView>,
    pub quotes: Vec<QuoteView>,
}

/// `GET /v1/fx/rates`: every pair with posts, as of the head block's time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatesView {
    pub block_time_ms: u64,
    pub staleness_ms: u64,
    pub pairs: Vec<PairView>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockStatus {
    /// Reserved and settleable until `expires_at_ms` (block time).
    Open,
    /// Both legs moved.
    Settled,
    /// Expired; the reservation went back to the provider.
    Released,
}

/// `GET /v1/fx/locks/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockView {
    pub id: u64,
    pub payer: AccountId,
    pub provider: AccountId,
    pub sell: CurrencyCode,
    pub buy: CurrencyCode,
    pub sell_amount: Amount,
    pub buy_amount: Amount,
    pub rate: Rate,
    pub locked_at_ms: u64,
    pub expires_at_ms: u64,
    pub status: LockStatus,
    /// Open, but the head block's time is past its expiry: it can no longer settle, and the
    /// next block releases it.
    pub expired: bool,
    pub settled_to: Option<AccountId>,
    /// The contract that holds the lock (then `payer` is the account whose call made it);
    /// only that contract may settle it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        Rate::parse(text).expect("rate")
    }

    fn amount(text: &str) -> Amount {
        Amount::parse(text).expect("amount")
    }

    #[test]
    fn conversion_rounds_down_exactly() {
        // 100.01 × 4.8877500000 = 488.82387... → 488.82 at scale 2.
        assert_eq!(convert(amount("100.01"), rate("4.88775"), 2), Ok(amount("488.82")));
        // A product just under a cent boundary must not round up to it.
        assert_eq!(convert(amount("0.03"), rate("3.3333333333"), 2), Ok(amount("0.09")));
        assert_eq!(convert(amount("1"), rate("0.0000000001"), 2), Ok(Amount::ZERO));
        assert_eq!(
            convert(Amount::supply_max(2), rate("99999.9999999999"), 2).map_err(|e| e.code),
            Err(ErrorCode::AmountOverflow)
        );
    }

    #[test]
    fn spread_and_median() {
        assert_eq!(client_rate(rate("4.9"), 25), Ok(rate("4.88775")));
        assert_eq!(client_rate(rate("0.0000000003"), 5_000), Ok(rate("0.0000000001")));
        assert_eq!(
            client_rate(rate("0.0000000001"), 5_000).map_err(|e| e.code),
            Err(ErrorCode::FxNoRate)
        );
        assert_eq!(lower_median(vec![]), None);
        assert_eq!(lower_median(vec![rate("3"), rate("1"), rate("2")]), Some(rate("2")));
        assert_eq!(
            lower_median(vec![rate("4"), rate("1"), rate("3"), rate("2")]),
            Some(rate("2"))
        );
    }

    #[test]
    fn rates_are_positive_and_bounded() {
        for bad in ["0", "-1", "0.00000000001"] {
            assert_eq!(
                Rate::parse(bad).map_err(|e| e.code),
                Err(ErrorCode::FxRateInvalid),
                "{bad}"
            );
        }
        assert_eq!(serde_json::to_string(&rate("7.25")).expect("json"), "\"7.25\"");
    }
}
