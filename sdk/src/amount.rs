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
        let value = Decimal::from_str_exact(trimmed)
            .map_err(|error| Error::new(ErrorCode::AmountOverflow, format!("amount `{text}`: {error}")))?;
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

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount::new)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount::new)
    }
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
