//! Typed errors for bad input, each with a stable machine-readable code.
//!
//! The rule this module keeps: anything that came from outside the replica (bytes, certificates,
//! catch-up batches) fails with one of these, never with a panic.

/// Why an input was rejected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error {
    /// The validator set is empty or larger than `VALIDATORS_MAX`.
    ValidatorCount,
    /// The input is larger than the limit the decoder was given.
    TooLarge,
    /// The input ended inside a field.
    Truncated,
    /// Bytes were left after the message.
    TrailingBytes,
    /// An unknown version, message tag or vote kind.
    UnknownTag,
    /// A length or count field exceeds its named limit.
    LimitExceeded,
    /// A signature did not verify.
    BadSignature,
    /// A validator index outside the validator set.
    UnknownValidator,
    /// A certificate with fewer than a quorum of distinct signers, or unsorted signers.
    NotQuorum,
    /// A certificate of the wrong kind, or for another block than claimed.
    WrongCertificate,
    /// Blocks that do not link to each other or to the replica's finalized chain.
    BrokenChain,
    /// A block whose fields break the protocol's structural rules.
    MalformedBlock,
}

impl Error {
    /// A stable code for logs, metrics and APIs.
    pub fn code(&self) -> &'static str {
        match self {
            Error::ValidatorCount => "validator_count",
            Error::TooLarge => "too_large",
            Error::Truncated => "truncated",
            Error::TrailingBytes => "trailing_bytes",
            Error::UnknownTag => "unknown_tag",
            Error::LimitExceeded => "limit_exceeded",
            Error::BadSignature => "bad_signature",
            Error::UnknownValidator => "unknown_validator",
            Error::NotQuorum => "not_quorum",
            Error::WrongCertificate => "wrong_certificate",
            Error::BrokenChain => "broken_chain",
            Error::MalformedBlock => "malformed_block",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str(self.code())
    }
}

impl std::error::Error for Error {}
