//! Readable identifiers. An institution is `icbc-cn`; its customer is `acme@icbc-cn`, and only
//! `icbc-cn` (the sponsor, answerable for the customer's KYC) may register it.
//! Ids are validated on construction and on decoding, so a held `AccountId` is always valid.

use crate::error::{Error, ErrorCode};
use crate::limits::{ACCOUNT_ID_BYTES_MAX, ACCOUNT_LABEL_BYTES_MAX, CURRENCY_CODE_BYTES_MAX};
use serde::{Deserialize, Serialize};

/// An account id: `label` (an institution) or `label@institution` (a sponsored customer).
/// A label is 1 to 31 characters of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct AccountId(String);

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= ACCOUNT_LABEL_BYTES_MAX
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && label.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
}

impl AccountId {
    pub fn new(text: &str) -> Result<AccountId, Error> {
        let bad = |why: &str| Error::new(ErrorCode::BadAccountId, format!("account id `{text}`: {why}"));
        if text.len() > ACCOUNT_ID_BYTES_MAX {
            return Err(bad("too long"));
        }
        let valid = match text.split_once('@') {
            None => valid_label(text),
            Some((name, sponsor)) => valid_label(name) && valid_label(sponsor),
        };
        if !valid {
            return Err(bad("expected `name` or `name@institution`, each of a-z 0-9 - _"));
        }
        Ok(AccountId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The institution that sponsors this account, or `None` for an institution itself.
    pub fn sponsor(&self) -> Option<AccountId> {
        self.0.split_once('@').map(|(_, sponsor)| AccountId(sponsor.to_owned()))
    }

    pub fn is_institution(&self) -> bool {
        !self.0.contains('@')
    }
}

impl std::str::FromStr for AccountId {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self, Error> {
        AccountId::new(text)
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::fmt::Debug for AccountId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        AccountId::new(&text).map_err(serde::de::Error::custom)
    }
}

/// A currency code: 3 to 8 characters of `A-Z` and `0-9`, starting with a letter (`CNY`, `EURC`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CurrencyCode(String);

impl CurrencyCode {
    pub fn new(text: &str) -> Result<CurrencyCode, Error> {
        let valid = (3..=CURRENCY_CODE_BYTES_MAX).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && text.bytes().next().is_some_and(|b| b.is_ascii_uppercase());
        if !valid {
            return Err(Error::new(
                ErrorCode::UnknownCurrency,
                format!("currency code `{text}`: expected 3 to 8 of A-Z 0-9"),
            ));
        }
        Ok(CurrencyCode(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for CurrencyCode {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self, Error> {
        CurrencyCode::new(text)
    }
}

impl std::fmt::Display for CurrencyCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::fmt::Debug for CurrencyCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CurrencyCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CurrencyCode::new(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        let acme = AccountId::new("acme@icbc-cn").expect("valid");
        assert_eq!(acme.sponsor(), Some(AccountId::new("icbc-cn").expect("valid")));
        assert!(!acme.is_institution());
        assert!(AccountId::new("pboc").expect("valid").is_institution());
        for bad in ["", "Acme", "a@b@c", "@icbc", "acme@", "-x", "a b", &"x".repeat(32), "é"] {
            assert_eq!(
                AccountId::new(bad).map_err(|e| e.code),
                Err(ErrorCode::BadAccountId),
                "{bad}"
            );
        }
        let decoded: Result<AccountId, _> = serde_json::from_str("\"UPPER\"");
        assert!(decoded.is_err());
    }

    #[test]
    fn currency_codes() {
        assert!(CurrencyCode::new("CNY").is_ok());
        assert!(CurrencyCode::new("EURC2").is_ok());
        for bad in ["cny", "CN", "TOOLONGXX", "1CNY"] {
            assert!(CurrencyCode::new(bad).is_err(), "{bad}");
        }
    }
}
