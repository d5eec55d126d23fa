//! What the state holds, and under which keys. Every record is stored in canonical bytes and
//! committed to by the state root.

use corridor_sdk::crypto::PublicKey;
use corridor_sdk::{AccountId, Amount, CurrencyCode, Hash, HashAlgorithm};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Accounts are stored in the SDK's `AccountState` form, so clients can decode proven records.
pub(crate) use corridor_sdk::proof::AccountState as AccountRecord;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CurrencyRecord {
    pub scale: u32,
    pub issuer: AccountId,
    /// Issued and not burned: always the sum of every balance in this currency.
    pub supply: Amount,
    /// The largest single movement the compliance hook lets through.
    pub transfer_limit: Option<Amount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Validator {
    pub id: AccountId,
    pub public_key: PublicKey,
}

/// Chain-wide settings fixed at genesis (governance may change some later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChainConfig {
    /// The chain's name, for people; not unique, so signatures bind `genesis_hash` instead.
    pub chain_id: String,
    /// Block 0's header hash (ADR 0042), which every transaction names. Not part of the stored
    /// record: the header commits to the state root, which commits to this record.
    #[serde(skip)]
    pub genesis_hash: Hash,
    pub hash_algorithm: HashAlgorithm,
    pub validators: Vec<Validator>,
    pub regulators: BTreeSet<AccountId>,
    /// Accounts that issue at least one currency (central banks).
    pub issuers: BTreeSet<AccountId>,
    /// Institution → the central bank whose jurisdiction it is in.
    pub jurisdictions: BTreeMap<AccountId, AccountId>,
    /// The fewest signatures any transaction of a regulator or central bank needs: their
    /// threshold may not go below it (ADR 0043).
    pub authority_threshold_min: u8,
}

impl ChainConfig {
    /// Regulators and central banks may freeze accounts and register institutions.
    pub fn is_authority(&self, account: &AccountId) -> bool {
        self.regulators.contains(account) || self.issuers.contains(account)
    }

    /// May `authority` freeze `target`? A regulator may freeze anyone but another regulator's
    /// freeze needs a regulator too; a central bank only accounts in its jurisdiction (the
    /// institutions assigned to it and their customers, and its own customers), never a
    /// central bank or a regulator.
    /// The lowest threshold `account` may set for itself.
    pub fn threshold_min(&self, account: &AccountId) -> u8 {
        if self.is_authority(account) {
            self.authority_threshold_min.max(1)
        } else {
            1
        }
    }

    pub fn may_freeze(&self, authority: &AccountId, target: &AccountId) -> bool {
        if self.regulators.contains(authority) {
            return true;
        }
        if !self.issuers.contains(authority) || self.is_authority(target) {
            return false;
        }
        let institution = target.sponsor().unwrap_or_else(|| target.clone());
        &institution == authority || self.jurisdictions.get(&institution) == Some(authority)
    }
}

/// The keys of the state. Account ids and currency codes never contain 0x00, so the prefixes
/// cannot collide.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum StateKey {
    Config,
    Account(AccountId),
    Currency(CurrencyCode),
    /// Which account holds a public key (for the CLI's "who am I" lookup).
    KeyOwner(PublicKey),
    /// A multi-signature account's keys and threshold (ADR 0043).
    Signers(AccountId),
    /// FX: who may post and quote (`ledger::fx`).
    FxConfig,
    /// FX: the posts for the directed pair (sell, buy).
    FxPair(CurrencyCode, CurrencyCode),
    /// FX: the lock counter and the expiry index of open locks.
    FxBook,
    FxLock(u64),
    /// Contracts: the id counter, each contract's record, its storage, and code by hash.
    ContractBook,
    Contract(u64),
    ContractStorage(u64),
    ContractCode(corridor_sdk::Hash),
    /// Standing orders: the id counter with the due index, and each order.
    ScheduleBook,
    Schedule(u64),
}

impl StateKey {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            StateKey::Config => b"g".to_vec(),
            StateKey::Account(id) => corridor_sdk::proof::account_state_key(id),
            StateKey::Currency(code) => [b"c\0", code.as_str().as_bytes()].concat(),
            StateKey::Signers(id) => corridor_sdk::proof::signers_state_key(id),
            StateKey::KeyOwner(key) => [b"k\0".as_slice(), &corridor_sdk::codec::encode(key)].concat(),
            StateKey::FxConfig => b"fc".to_vec(),
            StateKey::FxPair(sell, buy) => [b"fp\0", sell.as_str().as_bytes(), b"\0", buy.as_str().as_bytes()].concat(),
            StateKey::FxBook => b"fb".to_vec(),
            StateKey::FxLock(id) => [b"fl\0".as_slice(), &id.to_be_bytes()].concat(),
            StateKey::ContractBook => b"wb".to_vec(),
            StateKey::Contract(id) => [b"wc\0".as_slice(), &id.to_be_bytes()].concat(),
            StateKey::ContractStorage(id) => [b"ws\0".as_slice(), &id.to_be_bytes()].concat(),
            StateKey::ContractCode(hash) => [b"wm\0".as_slice(), &hash.0].concat(),
            StateKey::ScheduleBook => b"sb".to_vec(),
            StateKey::Schedule(id) => [b"so\0".as_slice(), &id.to_be_bytes()].concat(),
        }
    }

    pub fn is_contract(key: &[u8]) -> bool {
        key.starts_with(b"wc\0")
    }

    pub fn is_fx_lock(key: &[u8]) -> bool {
        key.starts_with(b"fl\0")
    }
}
