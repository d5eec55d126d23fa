//! The chain's hash: SHA-256 or SM3, fixed in genesis for the life of the chain.

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// Which hash function a chain uses for block ids, transaction ids and the state root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    Sha256,
    Sm3,
}

impl HashAlgorithm {
    pub fn digest(self, bytes: &[u8]) -> Hash {
        self.digest_parts(&[bytes])
    }

    /// The hash of the concatenation of `parts`.
    pub fn digest_parts(self, parts: &[&[u8]]) -> Hash {
        match self {
            HashAlgorithm::Sha256 => {
                let mut hasher = sha2::Sha256::new();
                for part in parts {
                    hasher.update(part);
                }
                Hash(hasher.finalize().into())
            }
            HashAlgorithm::Sm3 => {
                let mut hasher = sm3::Sm3::new();
                for part in parts {
                    hasher.update(part);
                }
                Hash(hasher.finalize().into())
            }
        }
    }
}

impl std::str::FromStr for HashAlgorithm {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "sha256" => Ok(HashAlgorithm::Sha256),
            "sm3" => Ok(HashAlgorithm::Sm3),
            other => Err(format!("unknown hash algorithm `{other}` (sha256 or sm3)")),
        }
    }
}

/// A 32-byte digest; hex in JSON and in text.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub const ZERO: Hash = Hash([0; 32]);

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<Hash, crate::error::Error> {
        let bytes = hex::decode(text.trim()).map_err(|error| {
            crate::error::Error::new(crate::ErrorCode::Malformed, format!("hash is not hex: {error}"))
        })?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| crate::error::Error::new(crate::ErrorCode::Malformed, "a hash is 32 bytes (64 hex digits)"))?;
        Ok(Hash(bytes))
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Hash({})", &self.to_hex()[..16])
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::codec::fixed_bytes::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::codec::fixed_bytes::deserialize(deserializer).map(Hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // SHA-256("abc") and SM3("abc") (GB/T 32905 example 1).
        assert_eq!(
            HashAlgorithm::Sha256.digest(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            HashAlgorithm::Sm3.digest(b"abc").to_hex(),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            HashAlgorithm::Sm3.digest_parts(&[b"a", b"bc"]),
            HashAlgorithm::Sm3.digest(b"abc")
        );
    }
}
