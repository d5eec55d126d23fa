//! The one canonical encoding of corridor: every byte that is signed, hashed, stored or sent
//! goes through `encode` and comes back through `decode`.
//!
//! It is bincode 2.0.1 (pinned exactly; the project has ended) in one fixed configuration:
//! little-endian, fixed-width integers. No other module names bincode, so the format can move to
//! a compatible implementation without touching callers. Decoding takes a byte limit, rejects
//! input over it before reading, and rejects trailing bytes, so one value has one encoding.

use serde::{Serialize, de::DeserializeOwned};

/// Why bytes did not decode. `code()` is the stable machine-readable name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("{len} bytes exceed the limit of {limit_bytes}")]
    TooLarge { len: usize, limit_bytes: usize },
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    #[error("malformed bytes: {0}")]
    Malformed(String),
}

impl CodecError {
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            CodecError::TooLarge { .. } => crate::ErrorCode::TooLarge,
            CodecError::TrailingBytes(_) => crate::ErrorCode::TrailingBytes,
            CodecError::Malformed(_) => crate::ErrorCode::Malformed,
        }
    }
}

/// The decoder also caps what a length prefix may claim, so hostile prefixes cannot make it
/// allocate; the caller's `limit_bytes` is checked first against the whole input.
const DECODE_CLAIM_BYTES_MAX: usize = crate::limits::BLOCK_BYTES_MAX;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<DECODE_CLAIM_BYTES_MAX>()
}

/// Canonical bytes of `value`.
///
/// Encoding a well-formed in-memory value cannot fail; if it does, a type broke the codec's
/// rules (for example a map that is not a `BTreeMap`), which is a bug worth stopping for.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    match bincode::serde::encode_to_vec(value, config()) {
        Ok(bytes) => bytes,
        Err(error) => panic!("canonical encoding failed: {error}"),
    }
}

/// Decode exactly one `T` from `bytes`, which must be at most `limit_bytes` long and hold
/// nothing after the value.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit_bytes: usize) -> Result<T, CodecError> {
    if bytes.len() > limit_bytes {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit_bytes,
        });
    }
    let (value, read) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|error| CodecError::Malformed(error.to_string()))?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - read));
    }
    Ok(value)
}

/// Serde helpers for fixed-size byte arrays: raw bytes in the canonical encoding, hex in JSON.
pub(crate) mod fixed_bytes {
    use serde::{Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&hex::encode(bytes))
        } else {
            serializer.serialize_bytes(bytes)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(deserializer: D) -> Result<[u8; N], D::Error> {
        let bytes: Vec<u8> = if deserializer.is_human_readable() {
            let text: String = serde::Deserialize::deserialize(deserializer)?;
            hex::decode(text).map_err(D::Error::custom)?
        } else {
            serde_bytes_vec(deserializer)?
        };
        bytes
            .try_into()
            .map_err(|bytes: Vec<u8>| D::Error::invalid_length(bytes.len(), &"a fixed-size byte array"))
    }

    pub(super) fn serde_bytes_vec<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Vec<u8>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("bytes")
            }
            fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
                Ok(bytes.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(bytes)
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

/// Serde helpers for byte strings: raw bytes in the canonical encoding, hex in JSON.
pub(crate) mod var_bytes {
    use serde::{Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&hex::encode(bytes))
        } else {
            serializer.serialize_bytes(bytes)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        if deserializer.is_human_readable() {
            let text: String = serde::Deserialize::deserialize(deserializer)?;
            hex::decode(text).map_err(D::Error::custom)
        } else {
            super::fixed_bytes::serde_bytes_vec(deserializer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let value: (u64, String, Vec<u8>) = (7, "cny".into(), vec![1, 2, 3]);
        let bytes = encode(&value);
        assert_eq!(decode::<(u64, String, Vec<u8>)>(&bytes, 1024), Ok(value));
        assert!(matches!(
            decode::<(u64, String, Vec<u8>)>(&bytes, bytes.len() - 1),
            Err(CodecError::TooLarge { .. })
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            decode::<(u64, String, Vec<u8>)>(&trailing, 1024),
            Err(CodecError::TrailingBytes(1))
        );
        assert!(matches!(
            decode::<(u64, String, Vec<u8>)>(&bytes[..bytes.len() - 1], 1024),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn hostile_length_prefix_is_rejected_without_allocating() {
        // A Vec<u8> whose prefix claims 2^62 bytes.
        let mut bytes = (1u64 << 62).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        assert!(matches!(decode::<Vec<u8>>(&bytes, 1024), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn fixed_configuration_is_pinned() {
        // Little-endian, fixed-width integers, u64 length prefixes.
        assert_eq!(encode(&1u32), vec![1, 0, 0, 0]);
        assert_eq!(encode(&"ab"), vec![2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b']);
        assert_eq!(encode(&Some(1u8)), vec![1, 1]);
    }
}
