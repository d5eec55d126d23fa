//! Stable, machine-readable error codes. A code's text never changes once released: clients
//! match on it. The HTTP API answers `{"error": {"code", "message"}}` with these.

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($($variant:ident => $code:literal, $status:literal;)*) => {
        /// Why an input was refused.
        ///
        /// Serialized as its stable text everywhere, canonical bytes included, so adding a code
        /// never changes the meaning of stored receipts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable text of the code, as it appears in JSON.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status an API answers with when it refuses input with this code.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }
        }

        impl std::str::FromStr for ErrorCode {
            type Err = ();
            fn from_str(text: &str) -> Result<Self, ()> {
                match text { $($code => Ok(ErrorCode::$variant),)* _ => Err(()) }
            }
        }
    };
}

error_codes! {
    // Encoding and transport.
    Malformed => "malformed", 400;
    TrailingBytes => "trailing_bytes", 400;
    TooLarge => "too_large", 413;
    BadHex => "bad_hex", 400;
    BadRequest => "bad_request", 400;
    NotFound => "not_found", 404;
    MethodNotAllowed => "method_not_allowed", 405;
    // Transaction envelope.
    WrongChain => "wrong_chain", 400;
    BadSignature => "bad_signature", 400;
    BadPublicKey => "bad_public_key", 400;
    KeyMismatch => "key_mismatch", 403;
    NonceTooLow => "nonce_too_low", 409;
    NonceTooHigh => "nonce_too_high", 409;
    Expired => "expired", 400;
    ExpiryTooFar => "expiry_too_far", 400;
    Duplicate => "duplicate", 409;
    MempoolFull => "mempool_full", 503;
    // Ledger rules.
    UnknownAccount => "unknown_account", 404;
    UnknownCurrency => "unknown_currency", 404;
    AccountExists => "account_exists", 409;
    BadAccountId => "bad_account_id", 400;
    NotSponsor => "not_sponsor", 403;
    NotIssuer => "not_issuer", 403;
    NotAuthorized => "not_authorized", 403;
    AmountScale => "amount_scale", 400;
    AmountNotPositive => "amount_not_positive", 400;
    AmountOverflow => "amount_overflow", 400;
    InsufficientFunds => "insufficient_funds", 409;
    Frozen => "frozen", 403;
    LimitExceeded => "limit_exceeded", 403;
    SelfTransfer => "self_transfer", 400;
    BatchTooLarge => "batch_too_large", 400;
    BatchEmpty => "batch_empty", 400;
    MemoTooLong => "memo_too_long", 400;
    KeyInUse => "key_in_use", 409;
    // Key hygiene and access (issue 9).
    KeyProofRequired => "key_proof_required", 400;
    BadKeyProof => "bad_key_proof", 400;
    BadRequestSignature => "bad_request_signature", 401;
    RequestExpired => "request_expired", 401;
    Forbidden => "forbidden", 403;
    Busy => "busy", 503;
    RateLimited => "rate_limited", 429;
    // Multi-signature accounts (ADR 0043).
    SignaturesBelowThreshold => "signatures_below_threshold", 403;
    BadSignerSet => "bad_signer_set", 400;
    ThresholdTooLow => "threshold_too_low", 403;
    MultisigRequired => "multisig_required", 403;
    // FX.
    FxRateInvalid => "fx_rate_invalid", 400;
    FxNoRate => "fx_no_rate", 409;
    FxRateBelowMin => "fx_rate_below_min", 409;
    NotRateProvider => "not_rate_provider", 403;
    NotLiquidityProvider => "not_liquidity_provider", 403;
    InsufficientLiquidity => "insufficient_liquidity", 409;
    FxLockWindow => "fx_lock_window", 400;
    FxLocksFull => "fx_locks_full", 503;
    UnknownFxLock => "unknown_fx_lock", 404;
    FxLockExpired => "fx_lock_expired", 409;
    FxLockNotOpen => "fx_lock_not_open", 409;
    NotLockPayer => "not_lock_payer", 403;
    // Contracts.
    ContractInvalid => "contract_invalid", 400;
    FuelLimit => "fuel_limit", 400;
    UnknownContract => "unknown_contract", 404;
    UnknownMethod => "unknown_method", 404;
    ContractOutOfFuel => "contract_out_of_fuel", 409;
    ContractMemoryLimit => "contract_memory_limit", 409;
    ContractStackOverflow => "contract_stack_overflow", 409;
    ContractTrap => "contract_trap", 409;
    ContractAbort => "contract_abort", 409;
    ContractLimit => "contract_limit", 409;
    // Standing orders.
    UnknownSchedule => "unknown_schedule", 404;
    SchedulesFull => "schedules_full", 503;
    // Node state.
    Unavailable => "unavailable", 503;
    Diverged => "diverged", 503;
    BadBlock => "bad_block", 400;
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|()| serde::de::Error::custom(format!("unknown error code `{text}`")))
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// An error with its stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }
}

impl From<crate::codec::CodecError> for Error {
    fn from(error: crate::codec::CodecError) -> Error {
        Error::new(error.code(), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(*code));
            let json = serde_json::to_string(code).expect("code serializes");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!((400..600).contains(&code.http_status()));
        }
    }
}
