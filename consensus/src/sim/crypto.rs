//! Deterministic test cryptography for the simulator: a 256-bit mixing hash and a keyed-hash
//! signature scheme.
//!
//! The rule this module keeps: it is honest within the simulation. A signature is the hash of
//! the signer's secret and the message, so nobody without the secret can produce one, and
//! verification recomputes it; a forged or altered signature fails. It is not cryptography: the
//! hash resists the accidental collisions of a test run, not an adversary with compute, and the
//! verifier knows every secret. The node uses SHA-256 or SM3 and Ed25519 or SM2 instead.

use std::rc::Rc;

use super::rng::splitmix64;
use crate::types::{Digest, Hasher, Signature, Signer, ValidatorIndex, Verifier};

/// A four-lane mix of splitmix64 rounds over 8-byte words, with the length folded in.
#[derive(Clone, Copy, Debug, Default)]
pub struct TestHasher;

fn mix(mut lane: u64, word: u64) -> u64 {
    lane ^= word;
    splitmix64(&mut lane)
}

pub(crate) fn hash_bytes(prefix: u64, bytes: &[u8]) -> Digest {
    let mut lanes = [
        0x6a09_e667_f3bc_c908 ^ prefix,
        0xbb67_ae85_84ca_a73b,
        0x3c6e_f372_fe94_f82b,
        0xa54f_f53a_5f1d_36f1,
    ];
    let length = u64::try_from(bytes.len()).expect("length fits u64");
    for (position, chunk) in bytes.chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        let lane = position % 4;
        lanes[lane] = mix(lanes[lane], u64::from_le_bytes(word));
        lanes[(lane + 1) % 4] ^= lanes[lane].rotate_left(17);
    }
    for round in 0..4 {
        for lane in 0..4 {
            let neighbour = lanes[(lane + 3) % 4];
            lanes[lane] = mix(lanes[lane], neighbour ^ length ^ round);
        }
    }
    let mut digest = [0u8; 32];
    for (lane, value) in lanes.iter().enumerate() {
        digest[lane * 8..lane * 8 + 8].copy_from_slice(&value.to_le_bytes());
    }
    Digest(digest)
}

impl Hasher for TestHasher {
    fn hash(&self, bytes: &[u8]) -> Digest {
        hash_bytes(0, bytes)
    }
}

/// Signs with a secret: signature = hash(secret, message).
#[derive(Clone, Copy, Debug)]
pub struct TestSigner {
    secret: u64,
}

impl TestSigner {
    pub fn new(secret: u64) -> TestSigner {
        TestSigner { secret }
    }
}

impl Signer for TestSigner {
    fn sign(&self, message: &[u8]) -> Signature {
        Signature(hash_bytes(self.secret, message).0.to_vec())
    }
}

/// Verifies by recomputing the keyed hash with the validator's secret.
#[derive(Clone, Debug)]
pub struct TestVerifier {
    secrets: Rc<Vec<u64>>,
}

impl TestVerifier {
    pub fn new(secrets: Rc<Vec<u64>>) -> TestVerifier {
        TestVerifier { secrets }
    }
}

impl Verifier for TestVerifier {
    fn verify(&self, validator: ValidatorIndex, message: &[u8], signature: &Signature) -> bool {
        let Some(secret) = self.secrets.get(usize::from(validator)) else {
            return false;
        };
        signature.0 == hash_bytes(*secret, message).0
    }
}

/// Per-validator secrets derived from a run's seed (never zero, so no key is the plain hash).
pub fn secrets(seed: u64, count: usize) -> Vec<u64> {
    let mut state = seed ^ 0x5eed_5eed_5eed_5eed;
    (0..count).map(|_| splitmix64(&mut state) | 1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_or_altered_signature_fails() {
        let secrets = Rc::new(secrets(1, 4));
        let verifier = TestVerifier::new(secrets.clone());
        let signature = TestSigner::new(secrets[2]).sign(b"vote");
        assert!(verifier.verify(2, b"vote", &signature));
        assert!(!verifier.verify(1, b"vote", &signature), "another validator's key");
        assert!(!verifier.verify(2, b"vote!", &signature), "another message");
        let forged = TestSigner::new(secrets[2] ^ 2).sign(b"vote");
        assert!(!verifier.verify(2, b"vote", &forged), "a guessed key");
        assert!(!verifier.verify(9, b"vote", &signature), "unknown validator");
    }

    #[test]
    fn the_hash_separates_near_inputs() {
        let hasher = TestHasher;
        assert_ne!(hasher.hash(b""), hasher.hash(&[0]));
        assert_ne!(hasher.hash(&[0; 8]), hasher.hash(&[0; 16]));
        assert_ne!(hasher.hash(b"ab"), hasher.hash(b"ba"));
    }
}
