//! Proofs against the state root (ADR 0002), checkable by anyone holding the root — a
//! regulator verifies one account's record without trusting the node that served it.
//!
//! The state root is a sparse binary Merkle tree over `H(state key)` → `H(value)`: empty
//! subtree = 32 zero bytes; leaf = H(0x00 ‖ key hash ‖ value hash); internal =
//! H(0x01 ‖ left ‖ right); a subtree holding one key is that key's leaf at any depth.

use crate::amount::Amount;
use crate::crypto::PublicKey;
use crate::hash::{Hash, HashAlgorithm};
use crate::ids::{AccountId, CurrencyCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An account as the state stores it (canonical bytes under `account_state_key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    pub public_key: PublicKey,
    pub next_nonce: u64,
    /// The authority that froze the account; a frozen account neither sends nor receives,
    /// and only a regulator or this authority may unfreeze it.
    pub frozen_by: Option<AccountId>,
    /// Zero balances are absent, so one state has one encoding.
    pub balances: BTreeMap<CurrencyCode, Amount>,
}

impl AccountState {
    pub fn new(public_key: PublicKey) -> AccountState {
        AccountState {
            public_key,
            next_nonce: 0,
            frozen_by: None,
            balances: BTreeMap::new(),
        }
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen_by.is_some()
    }

    pub fn balance(&self, currency: &CurrencyCode) -> Amount {
        self.balances.get(currency).copied().unwrap_or(Amount::ZERO)
    }

    pub fn set_balance(&mut self, currency: &CurrencyCode, amount: Amount) {
        assert!(
            !amount.decimal().is_sign_negative() || amount.is_zero(),
            "negative balance {amount}"
        );
        if amount.is_zero() {
            self.balances.remove(currency);
        } else {
            self.balances.insert(currency.clone(), amount);
        }
    }
}

/// The keys that may sign for an account and how many of them must (ADR 0043). Stored under
/// `signers_state_key` only for an account with more than one key or a threshold above one;
/// for any other account the signer is its `AccountState::public_key` alone. The first key is
/// always the account's `public_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerSet {
    pub keys: Vec<PublicKey>,
    pub threshold: u8,
}

impl SignerSet {
    /// The set of an account without one stored: its key, alone.
    pub fn single(public_key: PublicKey) -> SignerSet {
        SignerSet {
            keys: vec![public_key],
            threshold: 1,
        }
    }

    /// Whether this set is what an account without a stored set has.
    pub fn is_single(&self) -> bool {
        self.keys.len() == 1 && self.threshold == 1
    }

    /// Do `signers` (distinct keys whose signatures verified) authorize a transaction? Every
    /// signer must be one of the keys, and at least `threshold` must have signed.
    pub fn authorize<'k>(
        &self,
        account: &AccountId,
        signers: impl IntoIterator<Item = &'k PublicKey>,
    ) -> Result<(), crate::error::Error> {
        use crate::error::{Error, ErrorCode};
        let mut count = 0usize;
        for signer in signers {
            if !self.keys.contains(signer) {
                return Err(Error::new(
                    ErrorCode::KeyMismatch,
                    format!("{signer} is not one of {account}'s keys"),
                ));
            }
            count += 1;
        }
        if count < usize::from(self.threshold) {
            return Err(Error::new(
                ErrorCode::SignaturesBelowThreshold,
                format!(
                    "{account} needs {} of its {} keys to sign; {count} signed",
                    self.threshold,
                    self.keys.len()
                ),
            ));
        }
        Ok(())
    }
}

/// The state key of an account's signer set.
pub fn signers_state_key(account: &AccountId) -> Vec<u8> {
    [b"as\0".as_slice(), account.as_str().as_bytes()].concat()
}

/// Sibling hashes from the root down to where the key's path ends, and the leaf found there:
/// the key's own (membership), another key's, or none (both prove absence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateProof {
    pub siblings: Vec<Hash>,
    pub leaf: Option<(Hash, Hash)>,
}

/// Siblings a proof may carry: one per bit of the key hash.
pub const PROOF_SIBLINGS_MAX: usize = 256;

pub fn leaf_hash(algorithm: HashAlgorithm, key: &Hash, value: &Hash) -> Hash {
    algorithm.digest_parts(&[&[0u8], &key.0, &value.0])
}

pub fn internal_hash(algorithm: HashAlgorithm, left: &Hash, right: &Hash) -> Hash {
    algorithm.digest_parts(&[&[1u8], &left.0, &right.0])
}

/// Bit `depth` of `key`, most significant first: 0 goes left, 1 goes right.
pub fn key_bit(key: &Hash, depth: usize) -> bool {
    (key.0[depth / 8] >> (7 - depth % 8)) & 1 == 1
}

/// The state key of an account record.
pub fn account_state_key(account: &AccountId) -> Vec<u8> {
    [b"a\0".as_slice(), account.as_str().as_bytes()].concat()
}

impl StateProof {
    /// Whether `key` holds `value` (with `None`: is absent) under `root`.
    pub fn verify(&self, algorithm: HashAlgorithm, root: &Hash, key: &[u8], value: Option<&[u8]>) -> bool {
        if self.siblings.len() > PROOF_SIBLINGS_MAX {
            return false;
        }
        let key = algorithm.digest(key);
        let value = value.map(|v| algorithm.digest(v));
        let bottom = match (&value, &self.leaf) {
            (Some(value), Some((leaf_key, leaf_value))) if *leaf_key == key && leaf_value == value => {
                leaf_hash(algorithm, &key, value)
            }
            (None, None) => Hash::ZERO,
            (None, Some((leaf_key, leaf_value))) if *leaf_key != key => leaf_hash(algorithm, leaf_key, leaf_value),
            _ => return false,
        };
        let mut hash = bottom;
        for (depth, sibling) in self.siblings.iter().enumerate().rev() {
            hash = if key_bit(&key, depth) {
                internal_hash(algorithm, sibling, &hash)
            } else {
                internal_hash(algorithm, &hash, sibling)
            };
        }
        &hash == root
    }
}
