//! Transactions: what a client signs and submits.
//!
//! The signed message is `TX_SIGNING_DOMAIN`, the chain's genesis hash and the canonical
//! encoding of `Transaction` (which names the genesis hash again), so a signature means a
//! corridor transaction and is good on one chain only: two chains with the same `chain_id` name
//! still have different genesis hashes (ADR 0042). A `SignedTransaction` carries the signer's public key,
//! so its signature can be checked once, statelessly, and cached by the transaction's hash;
//! execution then only compares that key with the sender's current key.

use crate::amount::Amount;
use crate::codec;
use crate::crypto::{PrivateKey, PublicKey, Signature};
use crate::error::{Error, ErrorCode};
use crate::fx::Rate;
use crate::hash::{Hash, HashAlgorithm};
use crate::ids::{AccountId, CurrencyCode};
use crate::limits::{
    BATCH_LEGS_MAX, CONTRACT_ARGS_BYTES_MAX, CONTRACT_FUEL_MAX, CONTRACT_METHOD_BYTES_MAX, CONTRACT_MODULE_BYTES_MAX,
    FX_LOCK_WINDOW_MS_MAX, MEMO_BYTES_MAX, SCHEDULE_PERIOD_MS_MIN, SIGNERS_MAX, TX_BYTES_MAX,
};
use serde::{Deserialize, Serialize};

/// The format version of `Transaction`; a new version is a decision with an ADR. Version 1
/// named the chain by its `chain_id` string; version 2 by its genesis hash (ADR 0042).
pub const TX_VERSION: u8 = 2;

/// Domain tag at the start of a transaction's signing bytes, so the signature can mean nothing
/// else (a key proof, a signed request, a consensus vote).
pub const TX_SIGNING_DOMAIN: &str = "corridor/tx/v2";

/// Where the genesis hash's 32 bytes sit in `Transaction::signing_bytes`: after the tag (8-byte
/// length and 14 bytes) and the hash's own 8-byte length, as the canonical encoding writes them.
pub const TX_SIGNING_GENESIS_HASH_RANGE: std::ops::Range<usize> = 30..62;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub version: u8,
    /// The hash of the chain's block-0 header (`/v1/status` `genesis_hash`): which chain the
    /// sender means. A node refuses any other with `wrong_chain`.
    pub genesis_hash: Hash,
    pub sender: AccountId,
    /// Must equal the sender's next nonce when the transaction executes.
    pub nonce: u64,
    /// Block time (ms since the Unix epoch) after which the transaction is refused.
    pub expires_at_ms: u64,
    pub operation: Operation,
}

/// One payment: to an account, in a currency, an amount, with an optional memo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferLeg {
    pub to: AccountId,
    pub currency: CurrencyCode,
    pub amount: Amount,
    pub memo: Option<String>,
}

/// The native operations. The order of variants is part of the canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// An institution registers `name@institution`; a regulator or issuer registers institutions.
    RegisterAccount {
        account: AccountId,
        public_key: PublicKey,
    },
    /// The sender replaces its own key.
    RotateKey {
        public_key: PublicKey,
    },
    /// The issuer of `currency` creates money in `to`.
    Mint {
        to: AccountId,
        currency: CurrencyCode,
        amount: Amount,
    },
    /// The issuer of `currency` destroys money from its own balance.
    Burn {
        currency: CurrencyCode,
        amount: Amount,
    },
    Transfer(TransferLeg),
    /// All legs or none.
    BatchTransfer {
        legs: Vec<TransferLeg>,
    },
    /// An issuer or regulator stops an account sending and receiving.
    Freeze {
        account: AccountId,
    },
    Unfreeze {
        account: AccountId,
    },
    /// `RegisterAccount` with a proof of possession: `proof` is the new key's signature over
    /// `key_proof_message(chain, account, public_key)` (ADR 0030). Nodes refuse the variant
    /// without a proof with `key_proof_required`.
    RegisterAccountWithProof {
        account: AccountId,
        public_key: PublicKey,
        proof: Signature,
    },
    /// `RotateKey` with the new key's proof of possession over
    /// `key_proof_message(chain, sender, public_key)`.
    RotateKeyWithProof {
        public_key: PublicKey,
        proof: Signature,
    },
    /// A rate provider named in genesis posts its rate for the directed pair: one `sell` buys
    /// `rate` of `buy`. It replaces the provider's previous post for the pair.
    FxPostRate {
        sell: CurrencyCode,
        buy: CurrencyCode,
        rate: Rate,
    },
    /// Lock a liquidity provider's client rate for selling `sell_amount` of `sell` for `buy`,
    /// for `window_ms` of block time. The provider's `buy` is reserved at once. Refused if the
    /// client rate is below `rate_min`.
    FxLock {
        provider: AccountId,
        sell: CurrencyCode,
        buy: CurrencyCode,
        sell_amount: Amount,
        window_ms: u64,
        rate_min: Option<Rate>,
    },
    /// The lock's payer settles it before expiry: its `sell_amount` goes to the provider and
    /// the reserved `buy` amount to `to`, both or neither (PvP).
    FxSettle {
        lock_id: u64,
        to: AccountId,
    },
    /// Deploy a wasm module (contracts/ABI.md); its `init` export, if any, runs with
    /// `init_args`. `fuel` pays for validation and `init`, up to `CONTRACT_FUEL_MAX`.
    DeployContract {
        code: Vec<u8>,
        init_args: Vec<u8>,
        fuel: u64,
    },
    /// Call `method` of a contract with `args`; `funds` move from the sender to the contract
    /// before the call. A trap or running out of `fuel` reverts every effect.
    CallContract {
        contract: u64,
        method: String,
        args: Vec<u8>,
        funds: Option<(CurrencyCode, Amount)>,
        fuel: u64,
    },
    /// A standing order: pay `leg` at the first block at or after `start_ms`, then every
    /// `period_ms` (0: once), `count` times (0: until cancelled).
    ScheduleCreate {
        leg: TransferLeg,
        start_ms: u64,
        period_ms: u64,
        count: u32,
    },
    /// The payer cancels its standing order.
    ScheduleCancel {
        schedule: u64,
    },
    /// The sender's keys become `keys` (the first is its `public_key`), of which `threshold`
    /// must sign each of its transactions (ADR 0043). Each key proves possession over
    /// `key_proof_message(chain, sender, key)`. Authorized by the current keys and threshold.
    SetKeys {
        keys: Vec<ProvenKey>,
        threshold: u8,
    },
}

/// A public key with its holder's signature over its key proof message (ADR 0030).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenKey {
    pub public_key: PublicKey,
    pub proof: Signature,
}

impl ProvenKey {
    /// `key`'s public key with its proof for `account` on the chain `genesis_hash`.
    pub fn new(genesis_hash: &Hash, account: &AccountId, key: &PrivateKey) -> ProvenKey {
        let public_key = key.public_key();
        let proof = key.sign(&key_proof_message(genesis_hash, account, &public_key));
        ProvenKey { public_key, proof }
    }
}

/// Domain tag of a key's proof of possession, so the signature can mean nothing else.
pub const KEY_PROOF_DOMAIN: &str = "corridor/key-proof/v2";

/// What a new key signs to prove its holder asked for it to be `account`'s key on the chain
/// with `genesis_hash`: the canonical encoding of (domain, genesis hash, account, public key).
pub fn key_proof_message(genesis_hash: &Hash, account: &AccountId, public_key: &PublicKey) -> Vec<u8> {
    codec::encode(&(KEY_PROOF_DOMAIN, genesis_hash, account, public_key))
}

impl Operation {
    pub fn transfer(to: AccountId, currency: CurrencyCode, amount: Amount, memo: Option<String>) -> Operation {
        Operation::Transfer(TransferLeg {
            to,
            currency,
            amount,
            memo,
        })
    }

    pub fn batch_transfer(legs: Vec<TransferLeg>) -> Operation {
        Operation::BatchTransfer { legs }
    }

    /// The registration without a proof of possession; nodes refuse it (`key_proof_required`).
    /// Kept so old bytes still decode; use `register_account_proven`.
    pub fn register_account(account: AccountId, public_key: PublicKey) -> Operation {
        Operation::RegisterAccount { account, public_key }
    }

    /// The rotation without a proof of possession; nodes refuse it. Use `rotate_key_proven`.
    pub fn rotate_key(public_key: PublicKey) -> Operation {
        Operation::RotateKey { public_key }
    }

    /// Register `account` with `new_key`'s public key, signed by `new_key` as its proof.
    pub fn register_account_proven(genesis_hash: &Hash, account: AccountId, new_key: &PrivateKey) -> Operation {
        let public_key = new_key.public_key();
        let proof = new_key.sign(&key_proof_message(genesis_hash, &account, &public_key));
        Operation::RegisterAccountWithProof {
            account,
            public_key,
            proof,
        }
    }

    /// Rotate `sender`'s key to `new_key`, signed by `new_key` as its proof.
    pub fn rotate_key_proven(genesis_hash: &Hash, sender: &AccountId, new_key: &PrivateKey) -> Operation {
        let public_key = new_key.public_key();
        let proof = new_key.sign(&key_proof_message(genesis_hash, sender, &public_key));
        Operation::RotateKeyWithProof { public_key, proof }
    }

    /// Make `keys` the sender's keys, `threshold` of them needed; each key signs its proof.
    pub fn set_keys_proven(genesis_hash: &Hash, sender: &AccountId, keys: &[PrivateKey], threshold: u8) -> Operation {
        Operation::SetKeys {
            keys: keys
                .iter()
                .map(|key| ProvenKey::new(genesis_hash, sender, key))
                .collect(),
            threshold,
        }
    }

    pub fn mint(to: AccountId, currency: CurrencyCode, amount: Amount) -> Operation {
        Operation::Mint { to, currency, amount }
    }

    pub fn burn(currency: CurrencyCode, amount: Amount) -> Operation {
        Operation::Burn { currency, amount }
    }

    pub fn freeze(account: AccountId) -> Operation {
        Operation::Freeze { account }
    }

    pub fn unfreeze(account: AccountId) -> Operation {
        Operation::Unfreeze { account }
    }

    /// The short name of the operation, as in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::RegisterAccount { .. } => "register_account",
            Operation::RotateKey { .. } => "rotate_key",
            Operation::Mint { .. } => "mint",
            Operation::Burn { .. } => "burn",
            Operation::Transfer(_) => "transfer",
            Operation::BatchTransfer { .. } => "batch_transfer",
            Operation::Freeze { .. } => "freeze",
            Operation::Unfreeze { .. } => "unfreeze",
            Operation::RegisterAccountWithProof { .. } => "register_account",
            Operation::RotateKeyWithProof { .. } => "rotate_key",
            Operation::FxPostRate { .. } => "fx_post_rate",
            Operation::FxLock { .. } => "fx_lock",
            Operation::FxSettle { .. } => "fx_settle",
            Operation::DeployContract { .. } => "deploy_contract",
            Operation::CallContract { .. } => "call_contract",
            Operation::ScheduleCreate { .. } => "schedule_create",
            Operation::ScheduleCancel { .. } => "schedule_cancel",
            Operation::SetKeys { .. } => "set_keys",
        }
    }
}

impl Transaction {
    pub fn new(
        genesis_hash: Hash,
        sender: AccountId,
        nonce: u64,
        expires_at_ms: u64,
        operation: Operation,
    ) -> Transaction {
        Transaction {
            version: TX_VERSION,
            genesis_hash,
            sender,
            nonce,
            expires_at_ms,
            operation,
        }
    }

    /// The exact bytes a signer signs: the canonical encoding of (`TX_SIGNING_DOMAIN`, genesis
    /// hash, transaction). The tag and the hash come first, at fixed offsets, so an offline
    /// signer or an HSM policy can check which chain it signs for before parsing the rest.
    pub fn signing_bytes(&self) -> Vec<u8> {
        codec::encode(&(TX_SIGNING_DOMAIN, &self.genesis_hash, self))
    }

    pub fn sign(self, key: &PrivateKey) -> SignedTransaction {
        let signature = key.sign(&self.signing_bytes());
        SignedTransaction {
            tx: self,
            public_key: key.public_key(),
            signature,
            cosignatures: Vec::new(),
        }
    }

    /// Signed by every key in `keys` (a multi-signature account's; the first signs as the
    /// primary signer). Panics on no keys.
    pub fn sign_all(self, keys: &[PrivateKey]) -> SignedTransaction {
        let (first, rest) = keys.split_first().expect("at least one key signs");
        rest.iter().fold(self.sign(first), |signed, key| signed.cosign(key))
    }

    /// Decode unsigned bytes (as printed by `corridor tx build`): the tag, the genesis hash and
    /// a transaction for that same genesis hash.
    pub fn from_signing_bytes(bytes: &[u8]) -> Result<Transaction, Error> {
        // A signed transaction is at most TX_BYTES_MAX, and its key and signature outweigh the
        // tag and the repeated hash, so its signing bytes fit the same limit.
        let (domain, genesis_hash, tx): (String, Hash, Transaction) =
            codec::decode(bytes, TX_BYTES_MAX).map_err(|error| explain_version_1(bytes, error.into()))?;
        if domain != TX_SIGNING_DOMAIN || genesis_hash != tx.genesis_hash {
            return Err(Error::new(
                ErrorCode::Malformed,
                format!("signing bytes must start with `{TX_SIGNING_DOMAIN}` and the transaction's genesis hash"),
            ));
        }
        tx.check_shape()?;
        Ok(tx)
    }

    /// Stateless checks: everything that can be judged from the transaction alone.
    pub fn check_shape(&self) -> Result<(), Error> {
        if self.version != TX_VERSION {
            return Err(Error::new(
                ErrorCode::Malformed,
                format!("unknown transaction version {}", self.version),
            ));
        }
        let check_leg = |leg: &TransferLeg| -> Result<(), Error> {
            if leg.memo.as_ref().is_some_and(|memo| memo.len() > MEMO_BYTES_MAX) {
                return Err(Error::new(
                    ErrorCode::MemoTooLong,
                    format!("memo over {MEMO_BYTES_MAX} bytes"),
                ));
            }
            check_positive(leg.amount)
        };
        match &self.operation {
            Operation::Transfer(leg) => check_leg(leg),
            Operation::BatchTransfer { legs } => {
                if legs.is_empty() {
                    return Err(Error::new(ErrorCode::BatchEmpty, "a batch needs at least one leg"));
                }
                if legs.len() > BATCH_LEGS_MAX {
                    return Err(Error::new(
                        ErrorCode::BatchTooLarge,
                        format!("{} legs exceed the limit of {BATCH_LEGS_MAX}", legs.len()),
                    ));
                }
                legs.iter().try_for_each(check_leg)
            }
            Operation::Mint { amount, .. } | Operation::Burn { amount, .. } => check_positive(*amount),
            Operation::RegisterAccount { .. } | Operation::RotateKey { .. } => Err(Error::new(
                ErrorCode::KeyProofRequired,
                "a new key must prove possession: use register_account / rotate_key with a proof",
            )),
            Operation::RegisterAccountWithProof { public_key, .. }
            | Operation::RotateKeyWithProof { public_key, .. } => public_key.check_torsion_free(),
            Operation::Freeze { .. } | Operation::Unfreeze { .. } => Ok(()),
            Operation::FxPostRate { sell, buy, rate } => {
                check_pair(sell, buy)?;
                if !rate.is_valid() {
                    return Err(Error::new(
                        ErrorCode::FxRateInvalid,
                        format!("rate {rate} is out of range"),
                    ));
                }
                Ok(())
            }
            Operation::FxLock {
                sell,
                buy,
                sell_amount,
                window_ms,
                rate_min,
                ..
            } => {
                check_pair(sell, buy)?;
                check_positive(*sell_amount)?;
                if *window_ms == 0 || *window_ms > FX_LOCK_WINDOW_MS_MAX {
                    return Err(Error::new(
                        ErrorCode::FxLockWindow,
                        format!("a lock window is 1 to {FX_LOCK_WINDOW_MS_MAX} ms"),
                    ));
                }
                if rate_min.is_some_and(|rate| !rate.is_valid()) {
                    return Err(Error::new(ErrorCode::FxRateInvalid, "rate_min is out of range"));
                }
                Ok(())
            }
            Operation::DeployContract { code, init_args, fuel } => {
                if code.len() > CONTRACT_MODULE_BYTES_MAX {
                    return Err(Error::new(
                        ErrorCode::TooLarge,
                        format!("a module is at most {CONTRACT_MODULE_BYTES_MAX} bytes"),
                    ));
                }
                check_call(init_args, *fuel)
            }
            Operation::CallContract {
                method,
                args,
                funds,
                fuel,
                ..
            } => {
                if method.is_empty() || method.len() > CONTRACT_METHOD_BYTES_MAX || method == "init" {
                    return Err(Error::new(
                        ErrorCode::UnknownMethod,
                        format!("a method name is 1 to {CONTRACT_METHOD_BYTES_MAX} bytes and not `init`"),
                    ));
                }
                if let Some((_, amount)) = funds {
                    check_positive(*amount)?;
                }
                check_call(args, *fuel)
            }
            Operation::FxSettle { .. } | Operation::ScheduleCancel { .. } => Ok(()),
            Operation::SetKeys { keys, threshold } => {
                check_signer_set(keys.iter().map(|key| &key.public_key), *threshold)?;
                keys.iter().try_for_each(|key| key.public_key.check_torsion_free())
            }
            Operation::ScheduleCreate { leg, period_ms, .. } => {
                if *period_ms != 0 && *period_ms < SCHEDULE_PERIOD_MS_MIN {
                    return Err(Error::new(
                        ErrorCode::BadRequest,
                        format!("a period is 0 (once) or at least {SCHEDULE_PERIOD_MS_MIN} ms"),
                    ));
                }
                check_leg(leg)
            }
        }
    }

    /// The new key's proof of possession, where the operation brings in a key: `Ok` for
    /// operations without one. Part of `SignedTransaction::verify_signature`.
    pub fn verify_key_proof(&self) -> Result<(), Error> {
        if let Operation::SetKeys { keys, .. } = &self.operation {
            return keys
                .iter()
                .try_for_each(|key| check_key_proof(&self.genesis_hash, &self.sender, &key.public_key, &key.proof));
        }
        let (account, public_key, proof) = match &self.operation {
            Operation::RegisterAccountWithProof {
                account,
                public_key,
                proof,
            } => (account, public_key, proof),
            Operation::RotateKeyWithProof { public_key, proof } => (&self.sender, public_key, proof),
            _ => return Ok(()),
        };
        check_key_proof(&self.genesis_hash, account, public_key, proof)
    }

    /// Whether the operation carries a key proof (checked apart from batched signatures).
    pub fn has_key_proof(&self) -> bool {
        matches!(
            self.operation,
            Operation::RegisterAccountWithProof { .. }
                | Operation::RotateKeyWithProof { .. }
                | Operation::SetKeys { .. }
        )
    }
}

fn check_key_proof(
    genesis_hash: &Hash,
    account: &AccountId,
    public_key: &PublicKey,
    proof: &Signature,
) -> Result<(), Error> {
    public_key
        .verify(&key_proof_message(genesis_hash, account, public_key), proof)
        .map_err(|_| {
            Error::new(
                ErrorCode::BadKeyProof,
                format!("the new key {public_key} did not sign its key proof for {account}"),
            )
        })
}

/// A signer set's shape: 1 to `SIGNERS_MAX` distinct keys, a threshold from 1 to their count.
pub fn check_signer_set<'k>(keys: impl ExactSizeIterator<Item = &'k PublicKey>, threshold: u8) -> Result<(), Error> {
    let count = keys.len();
    let mut seen = std::collections::BTreeSet::new();
    for key in keys {
        if !seen.insert(key) {
            return Err(Error::new(ErrorCode::BadSignerSet, format!("{key} is listed twice")));
        }
    }
    if count == 0 || count > SIGNERS_MAX {
        return Err(Error::new(
            ErrorCode::BadSignerSet,
            format!("an account holds 1 to {SIGNERS_MAX} keys, not {count}"),
        ));
    }
    if threshold == 0 || usize::from(threshold) > count {
        return Err(Error::new(
            ErrorCode::BadSignerSet,
            format!("the threshold must be 1 to the number of keys ({count}), not {threshold}"),
        ));
    }
    Ok(())
}

/// Version 1 bytes (bound to a chain id only; ADR 0042) start with the version byte 1, which
/// neither v2 signed bytes (version 2) nor v2 signing bytes (the tag's length, 14) do; they fail
/// to decode as v2, and the error says why.
fn explain_version_1(bytes: &[u8], error: Error) -> Error {
    if bytes.first() == Some(&1) && error.code != ErrorCode::TooLarge {
        return Error::new(
            ErrorCode::Malformed,
            "transaction format 1 (bound to a chain id, not a genesis hash) is no longer accepted; build and sign it again",
        );
    }
    error
}

fn check_pair(sell: &CurrencyCode, buy: &CurrencyCode) -> Result<(), Error> {
    if sell == buy {
        return Err(Error::new(
            ErrorCode::FxRateInvalid,
            format!("{sell}/{buy} is not a currency pair"),
        ));
    }
    Ok(())
}

fn check_call(args: &[u8], fuel: u64) -> Result<(), Error> {
    if args.len() > CONTRACT_ARGS_BYTES_MAX {
        return Err(Error::new(
            ErrorCode::TooLarge,
            format!("contract arguments are at most {CONTRACT_ARGS_BYTES_MAX} bytes"),
        ));
    }
    if fuel == 0 || fuel > CONTRACT_FUEL_MAX {
        return Err(Error::new(
            ErrorCode::FuelLimit,
            format!("fuel must be 1 to {CONTRACT_FUEL_MAX}"),
        ));
    }
    Ok(())
}

fn check_positive(amount: Amount) -> Result<(), Error> {
    if amount.is_positive() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::AmountNotPositive,
            format!("amount {amount} must be positive"),
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTransaction {
    pub tx: Transaction,
    /// The primary signer: for a one-key account, its key.
    pub public_key: PublicKey,
    pub signature: Signature,
    /// Further signatures over the same signing bytes by other keys of a multi-signature
    /// account (ADR 0043); empty for a one-key account.
    pub cosignatures: Vec<Cosignature>,
}

/// One more signer's signature over a transaction's signing bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cosignature {
    pub public_key: PublicKey,
    pub signature: Signature,
}

impl SignedTransaction {
    /// Attach a signature made elsewhere (an HSM, OpenSSL, GmSSL).
    pub fn from_parts(tx: Transaction, public_key: PublicKey, signature: Signature) -> SignedTransaction {
        SignedTransaction {
            tx,
            public_key,
            signature,
            cosignatures: Vec::new(),
        }
    }

    /// Add `key`'s signature (an officer's approval of a maker's transaction).
    pub fn cosign(mut self, key: &PrivateKey) -> SignedTransaction {
        let signature = key.sign(&self.tx.signing_bytes());
        self.cosignatures.push(Cosignature {
            public_key: key.public_key(),
            signature,
        });
        self
    }

    /// Add a signature made elsewhere, unchecked (`verify_signature` checks every one).
    pub fn with_cosignature(mut self, public_key: PublicKey, signature: Signature) -> SignedTransaction {
        self.cosignatures.push(Cosignature { public_key, signature });
        self
    }

    /// Every signer's key and signature, the primary first.
    pub fn signatures(&self) -> impl Iterator<Item = (&PublicKey, &Signature)> {
        std::iter::once((&self.public_key, &self.signature))
            .chain(self.cosignatures.iter().map(|c| (&c.public_key, &c.signature)))
    }

    /// The signing keys, the primary first.
    pub fn signers(&self) -> impl Iterator<Item = &PublicKey> {
        self.signatures().map(|(key, _)| key)
    }

    /// At most `SIGNERS_MAX` signatures, each by a different key.
    pub fn check_signers_shape(&self) -> Result<(), Error> {
        if self.cosignatures.len() >= SIGNERS_MAX {
            return Err(Error::new(
                ErrorCode::Malformed,
                format!("a transaction carries at most {SIGNERS_MAX} signatures"),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        match self.signers().find(|key| !seen.insert(*key)) {
            Some(key) => Err(Error::new(ErrorCode::Malformed, format!("{key} signed twice"))),
            None => Ok(()),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decode submitted bytes: size limit, no trailing bytes, stateless shape checks.
    /// The signature is not checked here (see `verify_signature`).
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedTransaction, Error> {
        let signed: SignedTransaction =
            codec::decode(bytes, TX_BYTES_MAX).map_err(|error| explain_version_1(bytes, error.into()))?;
        signed.tx.check_shape()?;
        signed.check_signers_shape()?;
        Ok(signed)
    }

    /// The transaction's id: the chain hash of its canonical signed bytes.
    pub fn hash(&self, algorithm: HashAlgorithm) -> Hash {
        algorithm.digest(&self.to_bytes())
    }

    /// The sender's signature and, for an operation that brings in a key, the key's proof of
    /// possession. Batched paths check `tx.verify_key_proof()` beside the batch.
    pub fn verify_signature(&self) -> Result<(), Error> {
        let message = self.tx.signing_bytes();
        for (public_key, signature) in self.signatures() {
            public_key.verify(&message, signature)?;
        }
        self.tx.verify_key_proof()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Scheme;

    fn id(text: &str) -> AccountId {
        AccountId::new(text).expect("valid id")
    }

    /// A genesis hash for the fixtures.
    const GENESIS: Hash = Hash([0x6e; 32]);

    fn fixture_tx() -> Transaction {
        Transaction::new(
            GENESIS,
            id("acme@icbc-cn"),
            3,
            1_700_000_000_000,
            Operation::transfer(
                id("harbour@boc-hk"),
                CurrencyCode::new("CNY").expect("code"),
                Amount::parse("1250.5").expect("amount"),
                Some("invoice 42".into()),
            ),
        )
    }

    /// Pins the canonical transaction format: if this fails, old signatures no longer verify.
    #[test]
    fn fixture_bytes_are_pinned() {
        let bytes = fixture_tx().signing_bytes();
        let genesis_hex = "6e".repeat(32);
        assert_eq!(
            hex::encode(&bytes),
            [
                "0e00000000000000",
                "636f727269646f722f74782f7632", // "corridor/tx/v2"
                "2000000000000000",
                &genesis_hex, // genesis hash
                "02",         // version
                "2000000000000000",
                &genesis_hex, // genesis hash again
                "0c00000000000000",
                "61636d6540696362632d636e", // sender
                "0300000000000000",         // nonce
                "0068e5cf8b010000",         // expires_at_ms = 1_700_000_000_000
                "04000000",                 // Operation::Transfer
                "0e00000000000000",
                "686172626f757240626f632d686b", // to
                "0300000000000000",
                "434e59",                                   // currency
                "d930000000000000000000000000000001000000", // amount: mantissa 12505 (i128), scale 1 (u32)
                "01",
                "0a00000000000000",
                "696e766f696365203432" // memo
            ]
            .concat()
        );
        assert_eq!(Transaction::from_signing_bytes(&bytes), Ok(fixture_tx()));
    }

    /// What an offline signer can check before parsing anything else: the bytes it is asked to
    /// sign start with the transaction tag and the genesis hash of the chain it means.
    #[test]
    fn signing_bytes_start_with_the_tag_and_the_genesis_hash() {
        let bytes = fixture_tx().signing_bytes();
        let tag = codec::encode(&TX_SIGNING_DOMAIN);
        assert_eq!(&bytes[..tag.len()], tag.as_slice());
        let hash = codec::encode(&GENESIS);
        assert_eq!(hash.len(), TX_SIGNING_GENESIS_HASH_RANGE.end - tag.len());
        assert_eq!(&bytes[tag.len()..TX_SIGNING_GENESIS_HASH_RANGE.end], hash.as_slice());
        assert_eq!(&bytes[TX_SIGNING_GENESIS_HASH_RANGE], GENESIS.0.as_slice());
        // The rest is the transaction's canonical encoding, as carried in `SignedTransaction`.
        assert_eq!(
            &bytes[TX_SIGNING_GENESIS_HASH_RANGE.end..],
            codec::encode(&fixture_tx()).as_slice()
        );

        // A signature for one genesis is no signature for another, though nothing else differs.
        let key = PrivateKey::from_seed(Scheme::Ed25519, [4; 32]).expect("seed");
        let mut replayed = fixture_tx().sign(&key);
        replayed.tx.genesis_hash = Hash([0x6f; 32]);
        assert_eq!(
            replayed.verify_signature().map_err(|e| e.code),
            Err(ErrorCode::BadSignature)
        );

        // Unsigned bytes whose prefix names another genesis than their transaction, or that
        // lack the tag, do not decode.
        let mut mismatched = bytes.clone();
        mismatched[TX_SIGNING_GENESIS_HASH_RANGE.start] ^= 1;
        assert_eq!(
            Transaction::from_signing_bytes(&mismatched).map_err(|e| e.code),
            Err(ErrorCode::Malformed)
        );
        let untagged = codec::encode(&("corridor/tx/v9", GENESIS, fixture_tx()));
        assert_eq!(
            Transaction::from_signing_bytes(&untagged).map_err(|e| e.code),
            Err(ErrorCode::Malformed)
        );
    }

    /// Bytes of the old format (version 1, a chain id string) get a message saying so.
    #[test]
    fn version_1_bytes_are_refused_with_a_reason() {
        let old = hex::decode(concat!(
            "01",
            "0c00000000000000",
            "636f727269646f722d646576", // chain id "corridor-dev"
            "0c00000000000000",
            "61636d6540696362632d636e",
        ))
        .expect("hex");
        for error in [
            SignedTransaction::from_bytes(&old).map(|_| ()),
            Transaction::from_signing_bytes(&old).map(|_| ()),
        ] {
            let error = error.expect_err("refused");
            assert_eq!(error.code, ErrorCode::Malformed);
            assert!(error.message.contains("format 1"), "{}", error.message);
        }
    }

    #[test]
    fn signed_round_trip_and_signature() {
        for scheme in [Scheme::Ed25519, Scheme::Sm2] {
            let key = PrivateKey::from_seed(scheme, [4; 32]).expect("seed");
            let signed = fixture_tx().sign(&key);
            let bytes = signed.to_bytes();
            let back = SignedTransaction::from_bytes(&bytes).expect("decodes");
            assert_eq!(back, signed);
            assert!(back.verify_signature().is_ok());
            let mut tampered = back.clone();
            tampered.tx.nonce += 1;
            assert_eq!(
                tampered.verify_signature().map_err(|e| e.code),
                Err(ErrorCode::BadSignature)
            );
            assert_ne!(signed.hash(HashAlgorithm::Sha256), signed.hash(HashAlgorithm::Sm3));
        }
    }

    #[test]
    fn shape_checks() {
        let mut tx = fixture_tx();
        tx.operation = Operation::transfer(id("a@b"), CurrencyCode::new("CNY").expect("c"), Amount::ZERO, None);
        assert_eq!(tx.check_shape().map_err(|e| e.code), Err(ErrorCode::AmountNotPositive));
        let leg = TransferLeg {
            to: id("a@b"),
            currency: CurrencyCode::new("CNY").expect("c"),
            amount: Amount::from(1),
            memo: None,
        };
        tx.operation = Operation::batch_transfer(vec![leg.clone(); BATCH_LEGS_MAX + 1]);
        assert_eq!(tx.check_shape().map_err(|e| e.code), Err(ErrorCode::BatchTooLarge));
        tx.operation = Operation::batch_transfer(vec![]);
        assert_eq!(tx.check_shape().map_err(|e| e.code), Err(ErrorCode::BatchEmpty));
        tx.operation = Operation::transfer(
            id("a@b"),
            CurrencyCode::new("CNY").expect("c"),
            Amount::from(1),
            Some("x".repeat(MEMO_BYTES_MAX + 1)),
        );
        assert_eq!(tx.check_shape().map_err(|e| e.code), Err(ErrorCode::MemoTooLong));
    }

    /// Adversary tests for proof of possession: someone else's key, a proof for another
    /// account or chain, a missing proof, a torsioned key.
    #[test]
    fn key_proofs_bind_key_account_and_chain() {
        use curve25519_dalek::edwards::CompressedEdwardsY;
        for scheme in [Scheme::Ed25519, Scheme::Sm2] {
            let bank = PrivateKey::from_seed(scheme, [4; 32]).expect("seed");
            let newcomer = PrivateKey::from_seed(scheme, [5; 32]).expect("seed");
            let victim = PrivateKey::from_seed(scheme, [6; 32]).expect("seed");
            let register = |operation: Operation| Transaction::new(GENESIS, id("icbc-cn"), 0, 1, operation).sign(&bank);
            let honest = register(Operation::register_account_proven(
                &GENESIS,
                id("newco@icbc-cn"),
                &newcomer,
            ));
            assert_eq!(honest.tx.check_shape(), Ok(()));
            assert_eq!(honest.verify_signature(), Ok(()));
            // Someone else's public key, "proven" by the registrant's own key.
            let stolen = register(Operation::RegisterAccountWithProof {
                account: id("newco@icbc-cn"),
                public_key: victim.public_key(),
                proof: newcomer.sign(&key_proof_message(&GENESIS, &id("newco@icbc-cn"), &victim.public_key())),
            });
            // A genuine proof of the victim's key, but for another account or chain.
            let replayed = |chain: Hash, account: &str| {
                register(Operation::RegisterAccountWithProof {
                    account: id("newco@icbc-cn"),
                    public_key: victim.public_key(),
                    proof: victim.sign(&key_proof_message(&chain, &id(account), &victim.public_key())),
                })
            };
            for forged in [
                stolen,
                replayed(GENESIS, "other@icbc-cn"),
                replayed(Hash([0x6f; 32]), "newco@icbc-cn"),
            ] {
                assert_eq!(
                    forged.verify_signature().map_err(|e| e.code),
                    Err(ErrorCode::BadKeyProof)
                );
            }
            let rotate = Transaction::new(
                GENESIS,
                id("acme@icbc-cn"),
                0,
                1,
                Operation::rotate_key_proven(&GENESIS, &id("acme@icbc-cn"), &newcomer),
            )
            .sign(&victim);
            assert_eq!(rotate.verify_signature(), Ok(()));
            let mut wrong_sender = rotate.tx.clone();
            wrong_sender.sender = id("harbour@boc-hk");
            assert_eq!(
                wrong_sender.verify_key_proof().map_err(|e| e.code),
                Err(ErrorCode::BadKeyProof)
            );
            // No proof at all.
            for legacy in [
                Operation::register_account(id("newco@icbc-cn"), newcomer.public_key()),
                Operation::rotate_key(newcomer.public_key()),
            ] {
                let bytes = register(legacy).to_bytes();
                assert_eq!(
                    SignedTransaction::from_bytes(&bytes).map(|_| ()).map_err(|e| e.code),
                    Err(ErrorCode::KeyProofRequired)
                );
            }
        }
        // A torsioned twin of an honest Ed25519 key is refused even with a valid proof.
        let honest = PrivateKey::from_seed(Scheme::Ed25519, [5; 32]).expect("seed");
        let a = CompressedEdwardsY(honest.public_key().as_bytes().try_into().expect("32"))
            .decompress()
            .expect("point");
        let twin_bytes = (a + curve25519_dalek::constants::EIGHT_TORSION[3])
            .compress()
            .to_bytes();
        let twin = PublicKey::from_bytes(Scheme::Ed25519, &twin_bytes).expect("parses");
        let tx = Transaction::new(
            GENESIS,
            id("icbc-cn"),
            0,
            1,
            Operation::RegisterAccountWithProof {
                account: id("twin@icbc-cn"),
                public_key: twin.clone(),
                proof: honest.sign(b"whatever"),
            },
        );
        assert_eq!(tx.check_shape().map_err(|e| e.code), Err(ErrorCode::BadPublicKey));
    }

    #[test]
    fn bad_bytes_get_codes() {
        let key = PrivateKey::from_seed(Scheme::Ed25519, [4; 32]).expect("seed");
        let bytes = fixture_tx().sign(&key).to_bytes();
        let code = |b: &[u8]| SignedTransaction::from_bytes(b).map(|_| ()).map_err(|e| e.code);
        assert_eq!(code(&bytes[..bytes.len() - 3]), Err(ErrorCode::Malformed));
        let mut trailing = bytes.clone();
        trailing.push(7);
        assert_eq!(code(&trailing), Err(ErrorCode::TrailingBytes));
        assert_eq!(code(&vec![0; TX_BYTES_MAX + 1]), Err(ErrorCode::TooLarge));
        assert_eq!(code(&[0xff; 40]), Err(ErrorCode::Malformed));
    }
}
