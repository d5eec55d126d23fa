//! Money: exact decimal amounts. Never floats.
//!
//! An `Amount` is always normalized (no trailing zeros), so one value has one canonical
//! encoding. Whether an amount fits a currency is `fits_scale`: an amount with more decimal
//! places than the currency allows is rejected, never rounded. Arithmetic is checked.

use crate::error::{Error, ErrorCode};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(Decimal);

impl Amount {
    pub const ZERO: Amount = Amount(Decimal::ZERO);

    pub fn new(value: Decimal) -> Amount {
        Amount(value.normalize())
    }

    /// Parse a plain decimal string (`"1250.50"`); no exponents, no separators.
    pub fn parse(text: &str) -> Result<Amount, Error> {
        let trimmed = text.trim();
        let plain = !trimmed.is_empty()
            && trimmed
                .bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_digit() || b == b'.' || (i == 0 && b == b'-'));
        if !plain {
            return Err(Error::new(
                ErrorCode::Malformed,
                format!("amount `{text}` is not a decimal number"),
            ));
        }
        let value = Decimal::from_str_exact(trimmed).map_err(|error| {
            let code = match error {
                rust_decimal::Error::ExceedsMaximumPossibleValue
                | rust_decimal::Error::LessThanMinimumPossibleValue
                | rust_decimal::Error::Underflow
                | rust_decimal::Error::ScaleExceedsMaximumPrecision(_) => ErrorCode::AmountOverflow,
                _ => ErrorCode::Malformed,
            };
            Error::new(code, format!("amount `{text}`: {error}"))
        })?;
        Ok(Amount::new(value))
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }

    pub fn is_positive(self) -> bool {
        self.0 > Decimal::ZERO
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Decimal places after normalization.
    pub fn scale(self) -> u32 {
        self.0.scale()
    }

    pub fn fits_scale(self, scale: u32) -> bool {
        self.0.scale() <= scale
    }

    /// Exact addition, or `None`. (`Decimal` would round a result that needs more than 96
    /// bits of mantissa; money must not.)
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        exact_add(self.0, other.0).map(Amount::new)
    }

    /// Exact subtraction, or `None`.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        exact_add(self.0, -other.0).map(Amount::new)
    }

    /// The largest supply a currency of `scale` may reach. Every balance, and every sum of
    /// balances and differences the ledger forms (with headroom of 4x), then stays exact.
    pub fn supply_max(scale: u32) -> Amount {
        assert!(scale <= crate::limits::CURRENCY_SCALE_MAX);
        let mantissa_max: u128 = (1u128 << 96) - 1;
        let units = mantissa_max / 10u128.pow(scale) / 4;
        Amount(Decimal::from_i128_with_scale(units as i128, 0))
    }
}

/// `a + b` computed exactly on i128 mantissas at the larger scale, or `None` when the result
/// (or an intermediate) leaves `Decimal`'s range. `Decimal::checked_add` instead rounds a result
/// that needs more than 96 bits of mantissa, which money must never do.
pub fn exact_add(a: Decimal, b: Decimal) -> Option<Decimal> {
    let scale = a.scale().max(b.scale());
    let widen = |d: Decimal| d.mantissa().checked_mul(10i128.checked_pow(scale - d.scale())?);
    let mantissa = widen(a)?.checked_add(widen(b)?)?;
    Decimal::try_from_i128_with_scale(mantissa, scale).ok()
}

impl From<u64> for Amount {
    fn from(units: u64) -> Amount {
        Amount(Decimal::from(units))
    }
}

impl std::str::FromStr for Amount {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self, Error> {
        Amount::parse(text)
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl std::fmt::Debug for Amount {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

/// In JSON an amount is a decimal string; in canonical bytes it is (mantissa: i128, scale: u32)
/// of the normalized value, and decoding refuses a non-normalized or out-of-range pair.
impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.0.to_string())
        } else {
            (self.0.mantissa(), self.0.scale()).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Amount::parse(&text).map_err(D::Error::custom)
        } else {
            let (mantissa, scale) = <(i128, u32)>::deserialize(deserializer)?;
            let value = Decimal::try_from_i128_with_scale(mantissa, scale).map_err(D::Error::custom)?;
            let amount = Amount::new(value);
            if amount.0.mantissa() != mantissa || amount.0.scale() != scale {
                return Err(D::Error::custom("amount is not in normalized form"));
            }
            Ok(amount)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_normalizes_and_checks_scale() {
        let amount = Amount::parse("1250.500").expect("valid");
        assert_eq!(amount.to_string(), "1250.5");
        assert!(amount.fits_scale(2));
        assert!(!Amount::parse("0.001").expect("valid").fits_scale(2));
        for bad in ["", "1e5", "1,000", "abc", "+1", "--1"] {
            assert!(Amount::parse(bad).is_err(), "{bad}");
        }
        assert!(!Amount::parse("-1").expect("valid").is_positive());
    }

    #[test]
    fn exact_add_is_exact_including_zero_and_sign_changes() {
        let d = |text: &str| Decimal::from_str_exact(text).expect("decimal");
        assert_eq!(exact_add(d("0.01"), d("-0.01")), Some(Decimal::ZERO));
        // Decimal returns the other operand unchanged when one is zero, whatever the scales.
        let scaled_zero = d("0.00");
        assert_eq!(scaled_zero.scale(), 2);
        assert_eq!(exact_add(scaled_zero, d("-5")), Some(d("-5")));
        assert_eq!(exact_add(d("999.99"), d("-1000")), Some(d("-0.01")));
        assert_eq!(exact_add(d("1.5"), d("2.25")), Some(d("3.75")));
        assert_eq!(exact_add(Decimal::MAX, d("1")), None);
        assert_eq!(exact_add(Decimal::MAX, d("-1")), Some(Decimal::MAX - Decimal::ONE));
    }

    #[test]
    fn arithmetic_never_rounds() {
        // 1e11 at scale 18 needs more than 96 bits: Decimal rounds 1e11 - 1e-18 back to 1e11.
        let whale = Amount::parse("100000000000").expect("valid");
        let dust = Amount::parse("0.000000000000000001").expect("valid");
        assert_eq!(
            whale.decimal().checked_sub(dust.decimal()),
            Some(whale.decimal()),
            "Decimal rounds"
        );
        assert_eq!(whale.checked_sub(dust), None, "Amount refuses instead");
        assert_eq!(whale.checked_add(dust), None);
        for bad in ["1.2.3", "."] {
            assert_eq!(
                Amount::parse(bad).map_err(|e| e.code),
                Err(ErrorCode::Malformed),
                "{bad}"
            );
        }
        // At the supply cap, sums of balances stay exact.
        let cap = Amount::supply_max(18);
        let smallest = Amount::parse("0.000000000000000001").expect("valid");
        let almost = cap.checked_sub(smallest).expect("exact below the cap");
        assert_eq!(almost.checked_add(smallest), Some(cap));
        assert_eq!(
            cap.checked_add(cap)
                .and_then(|twice| twice.checked_sub(smallest))
                .map(|x| x.scale()),
            Some(18)
        );
    }

    #[test]
    fn checked_arithmetic() {
        let max = Amount::new(Decimal::MAX);
        assert_eq!(max.checked_add(Amount::from(1)), None);
        assert_eq!(
            Amount::parse("0.1")
                .expect("valid")
                .checked_add(Amount::parse("0.2").expect("valid")),
            Some(Amount::parse("0.3").expect("valid"))
        );
    }

    #[test]
    fn canonical_bytes_are_unique() {
        let amount = Amount::parse("12.5").expect("valid");
        let bytes = crate::codec::encode(&amount);
        assert_eq!(crate::codec::decode::<Amount>(&bytes, 64), Ok(amount));
        // 12.50 as (1250, 2) is the same value in a second form: refused.
        let other = crate::codec::encode(&(1250i128, 2u32));
        assert!(crate::codec::decode::<Amount>(&other, 64).is_err());
        // Scale beyond Decimal's range.
        let huge = crate::codec::encode(&(1i128, 29u32));
        assert!(crate::codec::decode::<Amount>(&huge, 64).is_err());
        assert_eq!(serde_json::to_string(&amount).expect("json"), "\"12.5\"");
    }
}
