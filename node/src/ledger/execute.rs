//! Executing a finalized block: a pure function of (state, block).
//!
//! Each transaction is all-or-nothing. The envelope (chain, key, nonce, expiry, signature) is
//! checked first; a transaction whose envelope fails changes nothing. A transaction whose
//! operation fails still consumes its nonce (it was ordered, and must not be replayable later
//! when it might succeed) and changes nothing else (ADR 0004). After the block, conservation
//! is asserted for every currency it touched: supply moved exactly as much as balances did.

use super::compliance::{self, Movement, MovementKind};
use super::records::{AccountRecord, ChainConfig, CurrencyRecord, StateKey};
use corridor_sdk::api::EventRecord;
use corridor_sdk::codec;
use corridor_sdk::crypto::PublicKey;
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::limits::{BATCH_LEGS_MAX, BLOCK_TXS_MAX, STATE_VALUE_BYTES_MAX};
use corridor_sdk::proof::SignerSet;
use corridor_sdk::tx::ProvenKey;
use corridor_sdk::{
    AccountId, Amount, Block, CurrencyCode, Event, Hash, Operation, Outcome, Receipt, SignedTransaction, TransferLeg,
};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// Read access to committed state. A read that fails is a broken node, not bad input: the
/// implementation stops the process rather than execute against a partial view.
pub(crate) trait StateReader {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
}

impl StateReader for BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        BTreeMap::get(self, key).cloned()
    }
}

/// History sequence numbers: height (40 bits) ‖ transaction index (14) ‖ event index (10).
const HISTORY_TX_INDEX_BITS: u32 = 14;
const HISTORY_EVENT_INDEX_BITS: u32 = 10;
const _: () = assert!(BLOCK_TXS_MAX < 1 << HISTORY_TX_INDEX_BITS);
const _: () = assert!(BATCH_LEGS_MAX < 1 << HISTORY_EVENT_INDEX_BITS);

pub(crate) fn history_sequence(height: u64, tx_index: u32, event_index: u32) -> u64 {
    assert!(height < 1 << 40 && tx_index < 1 << HISTORY_TX_INDEX_BITS && event_index < 1 << HISTORY_EVENT_INDEX_BITS);
    (height << (HISTORY_TX_INDEX_BITS + HISTORY_EVENT_INDEX_BITS))
        | (u64::from(tx_index) << HISTORY_EVENT_INDEX_BITS)
        | u64::from(event_index)
}

/// State writes sorted by key: `Some(value)` to put, `None` to delete.
pub(crate) type StateWrites = Vec<(Vec<u8>, Option<Vec<u8>>)>;

pub(crate) struct BlockOutput {
    pub receipts: Vec<Receipt>,
    pub writes: StateWrites,
    /// (account, sequence, record) for each account an event belongs to.
    pub history: Vec<(AccountId, u64, EventRecord)>,
    /// Each sender's next nonce after the block, for the mempool.
    pub next_nonces: BTreeMap<AccountId, u64>,
}

/// State changes not yet committed: a block's, or one transaction's on top of its block's.
#[derive(Default, Clone)]
struct Changes {
    accounts: BTreeMap<AccountId, Option<AccountRecord>>,
    currencies: BTreeMap<CurrencyCode, Option<CurrencyRecord>>,
    key_owners: BTreeMap<PublicKey, Option<AccountId>>,
    /// Every other record (FX, contracts, schedules), by state key, in canonical bytes.
    records: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Changes {
    fn merge(&mut self, other: Changes) {
        self.accounts.extend(other.accounts);
        self.currencies.extend(other.currencies);
        self.key_owners.extend(other.key_owners);
        self.records.extend(other.records);
    }
}

/// Decode a stored record; stored state that does not decode is a broken node.
pub(crate) fn decode_state<T: DeserializeOwned>(bytes: &[u8]) -> T {
    match codec::decode(bytes, STATE_VALUE_BYTES_MAX) {
        Ok(record) => record,
        Err(error) => panic!("stored state does not decode: {error}"),
    }
}

fn read_record<T: DeserializeOwned>(reader: &dyn StateReader, key: &StateKey) -> Option<T> {
    let bytes = reader.get(&key.to_bytes())?;
    match codec::decode(&bytes, STATE_VALUE_BYTES_MAX) {
        Ok(record) => Some(record),
        Err(error) => panic!("stored state under {key:?} does not decode: {error}"),
    }
}

/// Committed state as of the block's start, each record decoded at most once per block.
/// Decoding an account validates its public key (a curve point), so re-reading the same
/// record for the envelope, the operation and the conservation check was most of execution.
struct Committed<'r> {
    reader: &'r dyn StateReader,
    accounts: RefCell<BTreeMap<AccountId, Option<AccountRecord>>>,
    currencies: RefCell<BTreeMap<CurrencyCode, Option<CurrencyRecord>>>,
}

impl<'r> Committed<'r> {
    fn new(reader: &'r dyn StateReader) -> Committed<'r> {
        Committed {
            reader,
            accounts: RefCell::default(),
            currencies: RefCell::default(),
        }
    }

    fn account(&self, id: &AccountId) -> Option<AccountRecord> {
        if let Some(record) = self.accounts.borrow().get(id) {
            return record.clone();
        }
        let record: Option<AccountRecord> = read_record(self.reader, &StateKey::Account(id.clone()));
        self.accounts.borrow_mut().insert(id.clone(), record.clone());
        record
    }

    fn currency(&self, code: &CurrencyCode) -> Option<CurrencyRecord> {
        if let Some(record) = self.currencies.borrow().get(code) {
            return record.clone();
        }
        let record: Option<CurrencyRecord> = read_record(self.reader, &StateKey::Currency(code.clone()));
        self.currencies.borrow_mut().insert(code.clone(), record.clone());
        record
    }

    fn key_owner(&self, key: &PublicKey) -> Option<AccountId> {
        read_record(self.reader, &StateKey::KeyOwner(key.clone()))
    }
}

/// One transaction's view: its own changes over its block's over committed state.
pub(crate) struct TxContext<'a> {
    committed: &'a Committed<'a>,
    block: &'a Changes,
    config: &'a ChainConfig,
    changes: Changes,
    pub events: Vec<Event>,
    /// The block's time: the only clock execution knows.
    pub block_time_ms: u64,
    pub height: u64,
    /// How many distinct keys signed the transaction (its envelope checked them all); zero
    /// for work the block does by itself (standing orders, expiries).
    pub signatures: usize,
}

/// Signatures a freeze of a central bank or a regulator needs: a regulator's multi-signature.
pub(crate) const FREEZE_AUTHORITY_SIGNATURES_MIN: usize = 2;

impl<'a> TxContext<'a> {
    fn new(
        committed: &'a Committed<'a>,
        block: &'a Changes,
        config: &'a ChainConfig,
        block_time_ms: u64,
    ) -> TxContext<'a> {
        TxContext {
            committed,
            block,
            config,
            changes: Changes::default(),
            events: Vec::new(),
            block_time_ms,
            height: 0,
            signatures: 0,
        }
    }

    pub fn at_height(mut self, height: u64) -> TxContext<'a> {
        self.height = height;
        self
    }

    fn signed_by(mut self, signatures: usize) -> TxContext<'a> {
        self.signatures = signatures;
        self
    }

    /// The keys that may sign for `id` (whose record is `record`) and how many must.
    pub fn signers(&self, id: &AccountId, record: &AccountRecord) -> SignerSet {
        self.record(&StateKey::Signers(id.clone()))
            .unwrap_or_else(|| SignerSet::single(record.public_key.clone()))
    }

    /// Run `work`; if it fails, undo whatever it changed here.
    pub fn attempt(&mut self, work: impl FnOnce(&mut Self) -> Result<(), Error>) -> Result<(), Error> {
        let (saved, events) = (self.changes.clone(), self.events.len());
        let result = work(self);
        if result.is_err() {
            self.changes = saved;
            self.events.truncate(events);
        }
        result
    }

    pub fn hash_algorithm(&self) -> corridor_sdk::HashAlgorithm {
        self.config.hash_algorithm
    }

    /// A record other than an account, currency or key owner, as this transaction sees it.
    pub fn record<T: DeserializeOwned>(&self, key: &StateKey) -> Option<T> {
        let key = key.to_bytes();
        let bytes = match self.changes.records.get(&key).or_else(|| self.block.records.get(&key)) {
            Some(value) => value.clone(),
            None => self.committed.reader.get(&key),
        };
        bytes.map(|bytes| decode_state(&bytes))
    }

    /// Write (`Some`) or delete (`None`) a record other than an account, currency or key owner.
    pub fn put_record<T: serde::Serialize>(&mut self, key: &StateKey, value: Option<&T>) {
        self.put_encoded(key, value.map(codec::encode));
    }

    /// `put_record` of a value already in canonical bytes.
    pub fn put_encoded(&mut self, key: &StateKey, bytes: Option<Vec<u8>>) {
        assert!(
            bytes.as_ref().is_none_or(|b| b.len() <= STATE_VALUE_BYTES_MAX),
            "record {key:?} over {STATE_VALUE_BYTES_MAX} bytes"
        );
        self.changes.records.insert(key.to_bytes(), bytes);
    }

    pub fn account(&self, id: &AccountId) -> Option<AccountRecord> {
        if let Some(record) = self.changes.accounts.get(id).or_else(|| self.block.accounts.get(id)) {
            return record.clone();
        }
        self.committed.account(id)
    }

    pub fn require_account(&self, id: &AccountId) -> Result<AccountRecord, Error> {
        self.account(id)
            .ok_or_else(|| Error::new(ErrorCode::UnknownAccount, format!("no account {id}")))
    }

    pub fn put_account(&mut self, id: &AccountId, record: AccountRecord) {
        self.changes.accounts.insert(id.clone(), Some(record));
    }

    pub fn currency(&self, code: &CurrencyCode) -> Result<CurrencyRecord, Error> {
        let record = match self
            .changes
            .currencies
            .get(code)
            .or_else(|| self.block.currencies.get(code))
        {
            Some(record) => record.clone(),
            None => self.committed.currency(code),
        };
        record.ok_or_else(|| Error::new(ErrorCode::UnknownCurrency, format!("no currency {code}")))
    }

    fn put_currency(&mut self, code: &CurrencyCode, record: CurrencyRecord) {
        self.changes.currencies.insert(code.clone(), Some(record));
    }

    fn key_owner(&self, key: &PublicKey) -> Option<AccountId> {
        if let Some(owner) = self
            .changes
            .key_owners
            .get(key)
            .or_else(|| self.block.key_owners.get(key))
        {
            return owner.clone();
        }
        self.committed.key_owner(key)
    }

    fn claim_key(&mut self, key: &PublicKey, owner: &AccountId) -> Result<(), Error> {
        if let Some(holder) = self.key_owner(key) {
            return Err(Error::new(
                ErrorCode::KeyInUse,
                format!("public key already belongs to {holder}"),
            ));
        }
        self.changes.key_owners.insert(key.clone(), Some(owner.clone()));
        Ok(())
    }
}

pub(crate) fn check_scale(code: &CurrencyCode, currency: &CurrencyRecord, amount: Amount) -> Result<(), Error> {
    if !amount.fits_scale(currency.scale) {
        return Err(Error::new(
            ErrorCode::AmountScale,
            format!(
                "{amount} has more than the {} decimal places {code} allows",
                currency.scale
            ),
        ));
    }
    if !amount.is_positive() {
        return Err(Error::new(
            ErrorCode::AmountNotPositive,
            format!("amount {amount} must be positive"),
        ));
    }
    Ok(())
}

fn overflow(code: &CurrencyCode) -> Error {
    Error::new(ErrorCode::AmountOverflow, format!("{code} amount out of range"))
}

/// Take `amount` of `code` from `id`'s balance, or refuse with `insufficient_funds`.
pub(crate) fn debit(
    id: &AccountId,
    record: &mut AccountRecord,
    code: &CurrencyCode,
    amount: Amount,
) -> Result<(), Error> {
    let balance = record.balance(code);
    let remaining = balance
        .checked_sub(amount)
        .filter(|left| !left.decimal().is_sign_negative());
    let Some(remaining) = remaining else {
        return Err(Error::new(
            ErrorCode::InsufficientFunds,
            format!("{id} holds {balance} {code}, needs {amount}"),
        ));
    };
    record.set_balance(code, remaining);
    Ok(())
}

/// Add `amount` of `code` to a balance, or refuse with `amount_overflow`.
pub(crate) fn credit(record: &mut AccountRecord, code: &CurrencyCode, amount: Amount) -> Result<(), Error> {
    let balance = record.balance(code).checked_add(amount).ok_or_else(|| overflow(code))?;
    record.set_balance(code, balance);
    Ok(())
}

fn require_issuer(sender: &AccountId, code: &CurrencyCode, currency: &CurrencyRecord) -> Result<(), Error> {
    if &currency.issuer != sender {
        return Err(Error::new(
            ErrorCode::NotIssuer,
            format!("only {} may mint or burn {code}", currency.issuer),
        ));
    }
    Ok(())
}

pub(crate) fn transfer(ctx: &mut TxContext<'_>, from: &AccountId, leg: &TransferLeg) -> Result<(), Error> {
    if from == &leg.to {
        return Err(Error::new(
            ErrorCode::SelfTransfer,
            "sender and receiver are the same account",
        ));
    }
    let currency = ctx.currency(&leg.currency)?;
    check_scale(&leg.currency, &currency, leg.amount)?;
    let mut sender = ctx.require_account(from)?;
    let mut receiver = ctx.require_account(&leg.to)?;
    compliance::check_movement(&Movement {
        kind: MovementKind::Transfer,
        from: Some((from, &sender)),
        to: Some((&leg.to, &receiver)),
        currency: (&leg.currency, &currency),
        amount: leg.amount,
    })?;
    debit(from, &mut sender, &leg.currency, leg.amount)?;
    credit(&mut receiver, &leg.currency, leg.amount)?;
    ctx.put_account(from, sender);
    ctx.put_account(&leg.to, receiver);
    ctx.events.push(Event::Transferred {
        from: from.clone(),
        to: leg.to.clone(),
        currency: leg.currency.clone(),
        amount: leg.amount,
        memo: leg.memo.clone(),
    });
    Ok(())
}

fn register_account(
    ctx: &mut TxContext<'_>,
    sender: &AccountId,
    account: &AccountId,
    key: &PublicKey,
) -> Result<(), Error> {
    match account.sponsor() {
        Some(sponsor) if &sponsor != sender => {
            return Err(Error::new(
                ErrorCode::NotSponsor,
                format!("only {sponsor} may register {account}"),
            ));
        }
        None if !ctx.config.is_authority(sender) => {
            return Err(Error::new(
                ErrorCode::NotAuthorized,
                format!("only a regulator or central bank may register institution {account}"),
            ));
        }
        _ => {}
    }
    if ctx.account(account).is_some() {
        return Err(Error::new(
            ErrorCode::AccountExists,
            format!("account {account} exists"),
        ));
    }
    ctx.claim_key(key, account)?;
    ctx.put_account(account, AccountRecord::new(key.clone()));
    ctx.events.push(Event::AccountRegistered {
        account: account.clone(),
        public_key: key.clone(),
    });
    Ok(())
}

fn rotate_key(ctx: &mut TxContext<'_>, sender: &AccountId, key: &PublicKey) -> Result<(), Error> {
    replace_keys(ctx, sender, &SignerSet::single(key.clone()))?;
    ctx.events.push(Event::KeyRotated {
        account: sender.clone(),
        public_key: key.clone(),
    });
    Ok(())
}

/// `SetKeys`: the shape and every proof were checked before (`check_shape`, the envelope).
fn set_keys(ctx: &mut TxContext<'_>, sender: &AccountId, keys: &[ProvenKey], threshold: u8) -> Result<(), Error> {
    let set = SignerSet {
        keys: keys.iter().map(|key| key.public_key.clone()).collect(),
        threshold,
    };
    corridor_sdk::tx::check_signer_set(set.keys.iter(), threshold)?;
    replace_keys(ctx, sender, &set)?;
    ctx.events.push(Event::KeysSet {
        account: sender.clone(),
        keys: set.keys,
        threshold,
    });
    Ok(())
}

/// Make `set` the sender's signer set: keys it gains must be free, keys it drops are freed,
/// and an authority's threshold stays at or above genesis's minimum.
fn replace_keys(ctx: &mut TxContext<'_>, sender: &AccountId, set: &SignerSet) -> Result<(), Error> {
    let minimum = ctx.config.threshold_min(sender);
    if set.threshold < minimum {
        return Err(Error::new(
            ErrorCode::ThresholdTooLow,
            format!(
                "{sender} is an authority: its transactions need at least {minimum} signatures, not {}",
                set.threshold
            ),
        ));
    }
    let mut record = ctx.require_account(sender)?;
    let old = ctx.signers(sender, &record);
    for key in set.keys.iter().filter(|key| !old.keys.contains(key)) {
        ctx.claim_key(key, sender)?;
    }
    for key in old.keys.iter().filter(|key| !set.keys.contains(key)) {
        ctx.changes.key_owners.insert(key.clone(), None);
    }
    record.public_key = set.keys[0].clone();
    ctx.put_account(sender, record);
    let stored = (!set.is_single()).then_some(set);
    ctx.put_record(&StateKey::Signers(sender.clone()), stored);
    Ok(())
}

fn mint(
    ctx: &mut TxContext<'_>,
    sender: &AccountId,
    to: &AccountId,
    code: &CurrencyCode,
    amount: Amount,
) -> Result<(), Error> {
    let mut currency = ctx.currency(code)?;
    require_issuer(sender, code, &currency)?;
    check_scale(code, &currency, amount)?;
    let mut receiver = ctx.require_account(to)?;
    compliance::check_movement(&Movement {
        kind: MovementKind::Mint,
        from: None,
        to: Some((to, &receiver)),
        currency: (code, &currency),
        amount,
    })?;
    currency.supply = currency.supply.checked_add(amount).ok_or_else(|| overflow(code))?;
    if currency.supply > Amount::supply_max(currency.scale) {
        return Err(Error::new(
            ErrorCode::AmountOverflow,
            format!(
                "{code} supply would exceed its cap of {}",
                Amount::supply_max(currency.scale)
            ),
        ));
    }
    credit(&mut receiver, code, amount)?;
    ctx.put_currency(code, currency);
    ctx.put_account(to, receiver);
    ctx.events.push(Event::Minted {
        to: to.clone(),
        currency: code.clone(),
        amount,
    });
    Ok(())
}

fn burn(ctx: &mut TxContext<'_>, sender: &AccountId, code: &CurrencyCode, amount: Amount) -> Result<(), Error> {
    let mut currency = ctx.currency(code)?;
    require_issuer(sender, code, &currency)?;
    check_scale(code, &currency, amount)?;
    let mut issuer = ctx.require_account(sender)?;
    compliance::check_movement(&Movement {
        kind: MovementKind::Burn,
        from: Some((sender, &issuer)),
        to: None,
        currency: (code, &currency),
        amount,
    })?;
    debit(sender, &mut issuer, code, amount)?;
    currency.supply = currency.supply.checked_sub(amount).ok_or_else(|| overflow(code))?;
    ctx.put_currency(code, currency);
    ctx.put_account(sender, issuer);
    ctx.events.push(Event::Burned {
        from: sender.clone(),
        currency: code.clone(),
        amount,
    });
    Ok(())
}

fn set_frozen(ctx: &mut TxContext<'_>, sender: &AccountId, account: &AccountId, frozen: bool) -> Result<(), Error> {
    if !ctx.config.is_authority(sender) {
        return Err(Error::new(
            ErrorCode::NotAuthorized,
            "only a regulator or central bank may freeze or unfreeze",
        ));
    }
    // Scope is checked before existence, so a refusal says nothing about the account.
    if frozen && !ctx.config.may_freeze(sender, account) {
        return Err(Error::new(
            ErrorCode::NotAuthorized,
            format!("{account} is outside {sender}'s jurisdiction; a regulator may freeze it"),
        ));
    }
    // One stolen regulator key must not silence a central bank or another regulator.
    if frozen && ctx.config.is_authority(account) && ctx.signatures < FREEZE_AUTHORITY_SIGNATURES_MIN {
        return Err(Error::new(
            ErrorCode::MultisigRequired,
            format!(
                "freezing a central bank or a regulator needs {FREEZE_AUTHORITY_SIGNATURES_MIN} of a regulator's keys; {} signed",
                ctx.signatures
            ),
        ));
    }
    let mut record = ctx.require_account(account)?;
    match (&record.frozen_by, frozen) {
        (None, true) => record.frozen_by = Some(sender.clone()),
        (Some(by), false) if by == sender || ctx.config.regulators.contains(sender) => record.frozen_by = None,
        (Some(by), false) => {
            return Err(Error::new(
                ErrorCode::NotAuthorized,
                format!("{account} was frozen by {by}; only {by} or a regulator may unfreeze it"),
            ));
        }
        // Freezing a frozen account keeps who froze it; unfreezing an open one changes
        // nothing. Neither writes or emits anything: an event means a change.
        (Some(_), true) | (None, false) => return Ok(()),
    }
    ctx.put_account(account, record);
    let (account, by) = (account.clone(), sender.clone());
    ctx.events.push(if frozen {
        Event::Frozen { account, by }
    } else {
        Event::Unfrozen { account, by }
    });
    Ok(())
}

fn apply_operation(ctx: &mut TxContext<'_>, sender: &AccountId, operation: &Operation) -> Result<(), Error> {
    // A frozen account does nothing at all: no payments, and no use of any authority it holds.
    if ctx.require_account(sender)?.is_frozen() {
        return Err(Error::new(ErrorCode::Frozen, format!("account {sender} is frozen")));
    }
    match operation {
        // Without a proof of possession a key never enters the ledger (`check_shape` refuses
        // these first; execution stays total over anything that decodes).
        Operation::RegisterAccount { .. } | Operation::RotateKey { .. } => Err(Error::new(
            ErrorCode::KeyProofRequired,
            "a new key must prove possession",
        )),
        Operation::RegisterAccountWithProof {
            account, public_key, ..
        } => register_account(ctx, sender, account, public_key),
        Operation::RotateKeyWithProof { public_key, .. } => rotate_key(ctx, sender, public_key),
        Operation::SetKeys { keys, threshold } => set_keys(ctx, sender, keys, *threshold),
        Operation::Mint { to, currency, amount } => mint(ctx, sender, to, currency, *amount),
        Operation::Burn { currency, amount } => burn(ctx, sender, currency, *amount),
        Operation::Transfer(leg) => transfer(ctx, sender, leg),
        Operation::BatchTransfer { legs } => legs.iter().enumerate().try_for_each(|(index, leg)| {
            transfer(ctx, sender, leg)
                .map_err(|error| Error::new(error.code, format!("leg {index}: {}", error.message)))
        }),
        Operation::Freeze { account } => set_frozen(ctx, sender, account, true),
        Operation::Unfreeze { account } => set_frozen(ctx, sender, account, false),
        Operation::FxPostRate { sell, buy, rate } => super::fx::post_rate(ctx, sender, sell, buy, *rate),
        Operation::FxLock {
            provider,
            sell,
            buy,
            sell_amount,
            window_ms,
            rate_min,
        } => {
            let request = super::fx::LockRequest {
                provider,
                sell,
                buy,
                sell_amount: *sell_amount,
                window_ms: *window_ms,
                rate_min: *rate_min,
            };
            super::fx::lock(ctx, super::fx::Payer::Account(sender), &request).map(|_| ())
        }
        Operation::FxSettle { lock_id, to } => {
            super::fx::settle(ctx, super::fx::Payer::Account(sender), *lock_id, to).map(|_| ())
        }
        Operation::ScheduleCreate {
            leg,
            start_ms,
            period_ms,
            count,
        } => super::schedule::create(ctx, sender, leg, *start_ms, *period_ms, *count).map(|_| ()),
        Operation::ScheduleCancel { schedule } => super::schedule::cancel(ctx, sender, *schedule),
        Operation::DeployContract { code, init_args, fuel } => {
            super::contracts::deploy(ctx, sender, code, init_args, *fuel).map(|_| ())
        }
        Operation::CallContract {
            contract,
            method,
            args,
            funds,
            fuel,
        } => {
            let request = super::contracts::CallRequest {
                contract: *contract,
                method,
                args,
                funds: funds.as_ref(),
                fuel: *fuel,
            };
            super::contracts::call(ctx, sender, &request)
        }
    }
}

/// The checks that decide whether the sender authorized this transaction, here and now.
fn check_envelope(
    ctx: &TxContext<'_>,
    block_time_ms: u64,
    signed: &SignedTransaction,
    precheck: Precheck,
) -> Result<AccountRecord, Error> {
    if precheck.duplicate {
        return Err(Error::new(ErrorCode::Duplicate, "transaction was already committed"));
    }
    let tx = &signed.tx;
    // Proposals are checked, but execution must be total over anything that decodes.
    tx.check_shape()?;
    signed.check_signers_shape()?;
    if tx.genesis_hash != ctx.config.genesis_hash {
        return Err(Error::new(
            ErrorCode::WrongChain,
            format!("transaction is for the chain with genesis hash {}", tx.genesis_hash),
        ));
    }
    let sender = ctx.require_account(&tx.sender)?;
    ctx.signers(&tx.sender, &sender)
        .authorize(&tx.sender, signed.signers())?;
    if tx.nonce < sender.next_nonce {
        return Err(Error::new(
            ErrorCode::NonceTooLow,
            format!("nonce {} is used; next is {}", tx.nonce, sender.next_nonce),
        ));
    }
    if tx.nonce > sender.next_nonce {
        return Err(Error::new(
            ErrorCode::NonceTooHigh,
            format!("nonce {} is ahead of {}", tx.nonce, sender.next_nonce),
        ));
    }
    if block_time_ms > tx.expires_at_ms {
        return Err(Error::new(
            ErrorCode::Expired,
            format!("expired at {} ms", tx.expires_at_ms),
        ));
    }
    if !precheck.signature_verified {
        signed.verify_signature()?;
    }
    Ok(sender)
}

/// Would `signed` succeed as the sender's next transaction on committed state at
/// `block_time_ms`? The mempool asks this so that bad input is refused at submission with its
/// code, instead of being ordered only to fail. The signature is checked by the caller.
pub(crate) fn check_transaction(
    reader: &dyn StateReader,
    config: &ChainConfig,
    signed: &SignedTransaction,
    block_time_ms: u64,
) -> Result<(), Error> {
    let changes = Changes::default();
    let committed = Committed::new(reader);
    let mut ctx = TxContext::new(&committed, &changes, config, block_time_ms).signed_by(signed.cosignatures.len() + 1);
    check_envelope(
        &ctx,
        block_time_ms,
        signed,
        Precheck {
            signature_verified: true,
            duplicate: false,
        },
    )?;
    apply_operation(&mut ctx, &signed.tx.sender, &signed.tx.operation)
}

/// What the caller knows of a transaction before execution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Precheck {
    /// Its signature was verified (the cache); otherwise it is verified here.
    pub signature_verified: bool,
    /// Its hash was committed before, or appears earlier in this block: it fails with
    /// `duplicate` and changes nothing.
    pub duplicate: bool,
}

/// Execute `block`. `tx_hashes[i]` is the hash of `block.txs[i]`, `prechecks[i]` what is
/// known of it.
pub(crate) fn execute_block(
    reader: &dyn StateReader,
    config: &ChainConfig,
    block: &Block,
    tx_hashes: &[Hash],
    prechecks: &[Precheck],
) -> BlockOutput {
    assert_eq!(block.txs.len(), tx_hashes.len());
    assert_eq!(block.txs.len(), prechecks.len());
    assert!(block.txs.len() <= BLOCK_TXS_MAX);
    let height = block.header.height;
    let committed = Committed::new(reader);
    let mut changes = Changes::default();
    let block_time_ms = block.header.timestamp_ms;
    // Work the block does before its transactions, by block time alone.
    let scheduled = {
        let mut ctx = TxContext::new(&committed, &changes, config, block_time_ms);
        super::fx::release_expired(&mut ctx);
        ctx.changes
    };
    changes.merge(scheduled);
    // Standing orders due by this block's time, each atomic on its own.
    let due = super::schedule::due(&TxContext::new(&committed, &changes, config, block_time_ms));
    for schedule in due {
        let run = {
            let mut ctx = TxContext::new(&committed, &changes, config, block_time_ms).at_height(height);
            super::schedule::run(&mut ctx, schedule);
            ctx.changes
        };
        changes.merge(run);
    }
    let mut receipts = Vec::with_capacity(block.txs.len());
    let mut history = Vec::new();
    for (index, signed) in block.txs.iter().enumerate() {
        let index = u32::try_from(index).expect("BLOCK_TXS_MAX fits u32");
        let sender = &signed.tx.sender;
        let ctx = TxContext::new(&committed, &changes, config, block_time_ms)
            .at_height(height)
            .signed_by(signed.cosignatures.len() + 1);
        let (outcome, tx_changes, events, consumes_nonce) =
            match check_envelope(&ctx, block.header.timestamp_ms, signed, prechecks[index as usize]) {
                Err(error) => (
                    Outcome::Failed {
                        code: error.code,
                        message: error.message,
                    },
                    Changes::default(),
                    vec![],
                    false,
                ),
                Ok(_) => {
                    let mut ctx = ctx;
                    match apply_operation(&mut ctx, sender, &signed.tx.operation) {
                        Ok(()) => (Outcome::Success, ctx.changes, ctx.events, true),
                        // The sender signed it (the envelope passed): its history says it failed.
                        Err(error) => (
                            Outcome::Failed {
                                code: error.code,
                                message: error.message,
                            },
                            Changes::default(),
                            vec![Event::Failed {
                                account: sender.clone(),
                                code: error.code,
                            }],
                            true,
                        ),
                    }
                }
            };
        changes.merge(tx_changes);
        if consumes_nonce {
            let ctx = TxContext::new(&committed, &changes, config, block_time_ms);
            let mut record = ctx.require_account(sender).expect("the envelope found the sender");
            assert_eq!(record.next_nonce, signed.tx.nonce, "nonce checked in the envelope");
            record.next_nonce += 1;
            changes.accounts.insert(sender.clone(), Some(record));
        }
        let tx_hash = tx_hashes[index as usize];
        for (event_index, event) in events.iter().enumerate() {
            let event_index = u32::try_from(event_index).expect("events per transaction are bounded");
            let sequence = history_sequence(height, index, event_index);
            let record = EventRecord {
                height,
                tx_hash,
                tx_index: index,
                event_index,
                event: event.clone(),
            };
            let accounts: BTreeSet<&AccountId> = event.accounts().into_iter().collect();
            for account in accounts {
                history.push((account.clone(), sequence, record.clone()));
            }
        }
        receipts.push(Receipt {
            tx_hash,
            height,
            index,
            sender: sender.clone(),
            outcome,
            events,
        });
    }
    assert_conservation(&committed, &changes);
    let mut next_nonces = BTreeMap::new();
    for signed in &block.txs {
        let sender = &signed.tx.sender;
        if !next_nonces.contains_key(sender) {
            let record = changes
                .accounts
                .get(sender)
                .cloned()
                .flatten()
                .or_else(|| committed.account(sender));
            if let Some(record) = record {
                next_nonces.insert(sender.clone(), record.next_nonce);
            }
        }
    }
    BlockOutput {
        receipts,
        writes: encode_writes(changes),
        history,
        next_nonces,
    }
}

/// For each currency: the change in supply equals the change in the sum of all balances.
/// Balances only change through accounts in `changes`, so this is O(changed accounts).
fn assert_conservation(committed: &Committed<'_>, changes: &Changes) {
    let mut balance_delta: BTreeMap<CurrencyCode, Decimal> = BTreeMap::new();
    for (id, record) in &changes.accounts {
        let before = committed.account(id);
        let mut add = |balances: &BTreeMap<CurrencyCode, Amount>, sign: Decimal| {
            for (code, amount) in balances {
                assert!(
                    !amount.decimal().is_sign_negative(),
                    "negative balance of {code} in {id}"
                );
                let entry = balance_delta.entry(code.clone()).or_default();
                *entry = corridor_sdk::amount::exact_add(*entry, amount.decimal() * sign)
                    .expect("balance deltas stay exact under the supply cap");
            }
        };
        if let Some(before) = &before {
            add(&before.balances, Decimal::NEGATIVE_ONE);
        }
        if let Some(after) = record {
            add(&after.balances, Decimal::ONE);
        }
    }
    // Money held outside balances (FX reservations, contracts) counts as balances.
    for (key, after) in &changes.records {
        let before = committed.reader.get(key);
        let held = |value: &Option<Vec<u8>>| {
            value
                .as_deref()
                .map(|bytes| super::held(key, bytes))
                .unwrap_or_default()
        };
        for (holdings, sign) in [(held(&before), Decimal::NEGATIVE_ONE), (held(after), Decimal::ONE)] {
            for (code, amount) in holdings {
                assert!(!amount.decimal().is_sign_negative(), "negative holding of {code}");
                let entry = balance_delta.entry(code).or_default();
                *entry = corridor_sdk::amount::exact_add(*entry, amount.decimal() * sign)
                    .expect("balance deltas stay exact under the supply cap");
            }
        }
    }
    let mut supply_delta: BTreeMap<CurrencyCode, Decimal> = BTreeMap::new();
    for (code, record) in &changes.currencies {
        let before = committed.currency(code);
        let before = before.map(|c| c.supply.decimal()).unwrap_or_default();
        let after = record.as_ref().map(|c| c.supply.decimal()).unwrap_or_default();
        let delta = corridor_sdk::amount::exact_add(after, -before).expect("supplies stay exact under the cap");
        supply_delta.insert(code.clone(), delta);
    }
    let currencies: BTreeSet<&CurrencyCode> = balance_delta.keys().chain(supply_delta.keys()).collect();
    for code in currencies {
        let balances = balance_delta.get(code).copied().unwrap_or_default();
        let supply = supply_delta.get(code).copied().unwrap_or_default();
        assert_eq!(
            balances, supply,
            "conservation broken for {code}: balances moved {balances}, supply {supply}"
        );
    }
}

fn encode_writes(changes: Changes) -> StateWrites {
    let mut writes = StateWrites::new();
    for (id, record) in changes.accounts {
        writes.push((StateKey::Account(id).to_bytes(), record.map(|r| codec::encode(&r))));
    }
    for (code, record) in changes.currencies {
        writes.push((StateKey::Currency(code).to_bytes(), record.map(|r| codec::encode(&r))));
    }
    for (key, owner) in changes.key_owners {
        writes.push((StateKey::KeyOwner(key).to_bytes(), owner.map(|o| codec::encode(&o))));
    }
    writes.extend(changes.records);
    writes.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, value) in &writes {
        assert!(
            value.as_ref().is_none_or(|v| v.len() <= STATE_VALUE_BYTES_MAX),
            "state value over its limit"
        );
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::{Genesis, GenesisAccount, GenesisCurrency, GenesisValidator};
    use corridor_sdk::{HashAlgorithm, PrivateKey, Scheme, Transaction};

    const CHAIN: &str = "test-chain";
    /// Execution takes the genesis hash from the config; the tests' config carries this one.
    const GENESIS_HASH: Hash = Hash([0x11; 32]);
    const BLOCK_TIME_MS: u64 = 1_000;

    fn id(text: &str) -> AccountId {
        AccountId::new(text).expect("valid id")
    }

    fn key(name: &str) -> PrivateKey {
        let mut seed = [7u8; 32];
        seed[..name.len().min(32)].copy_from_slice(&name.as_bytes()[..name.len().min(32)]);
        PrivateKey::from_seed(Scheme::Ed25519, seed).expect("seed")
    }

    fn cny() -> CurrencyCode {
        CurrencyCode::new("CNY").expect("code")
    }

    /// pboc issues CNY; bank-a holds 100; alice@bank-a holds 10; bob@bank-a holds nothing.
    fn state() -> (BTreeMap<Vec<u8>, Vec<u8>>, ChainConfig) {
        state_with(|_| {})
    }

    /// `state()` from a genesis that `change` edited first.
    fn state_with(change: impl FnOnce(&mut Genesis)) -> (BTreeMap<Vec<u8>, Vec<u8>>, ChainConfig) {
        let account = |name: &str, cny_units: u64| GenesisAccount {
            id: id(name),
            public_key: key(name).public_key(),
            balances: if cny_units > 0 {
                BTreeMap::from([(cny(), Amount::from(cny_units))])
            } else {
                BTreeMap::new()
            },
            more_keys: Vec::new(),
            threshold: 1,
        };
        let mut genesis = Genesis {
            block_time_drift_ms_max: crate::genesis::BLOCK_TIME_DRIFT_MS_MAX_DEFAULT,
            consensus_timeout_ms: crate::genesis::CONSENSUS_TIMEOUT_MS_DEFAULT,
            authority_threshold_min: 1,
            observers: Vec::new(),
            chain_id: CHAIN.into(),
            hash_algorithm: HashAlgorithm::Sha256,
            genesis_time_ms: 0,
            validators: vec![GenesisValidator {
                id: id("v"),
                public_key: key("v").public_key(),
                network_key: None,
            }],
            regulators: BTreeSet::from([id("regulator")]),
            currencies: vec![
                GenesisCurrency {
                    code: cny(),
                    scale: 2,
                    issuer: id("pboc"),
                    transfer_limit: None,
                },
                GenesisCurrency {
                    code: CurrencyCode::new("HKD").expect("code"),
                    scale: 2,
                    issuer: id("hkma"),
                    transfer_limit: None,
                },
            ],
            accounts: vec![
                account("pboc", 0),
                account("hkma", 0),
                account("bank-a", 100),
                account("bank-b", 0),
                account("alice@bank-a", 10),
                account("bob@bank-a", 0),
                account("carol@bank-b", 0),
                account("regulator", 0),
            ],
            jurisdictions: BTreeMap::from([(id("bank-a"), id("pboc")), (id("bank-b"), id("hkma"))]),
            fx: None,
        };
        change(&mut genesis);
        genesis.validate().expect("valid genesis");
        let writes = genesis.state().expect("state");
        (
            writes
                .into_iter()
                .map(|(k, v)| (k, v.expect("genesis writes values")))
                .collect(),
            ChainConfig {
                genesis_hash: GENESIS_HASH,
                ..genesis.config().expect("config")
            },
        )
    }

    fn tx(sender: &str, nonce: u64, operation: Operation) -> SignedTransaction {
        Transaction::new(GENESIS_HASH, id(sender), nonce, 10_000, operation).sign(&key(sender))
    }

    /// A transaction of `sender` signed by each of `signers` (key names), the first as primary.
    fn tx_by(sender: &str, nonce: u64, operation: Operation, signers: &[&str]) -> SignedTransaction {
        let keys: Vec<PrivateKey> = signers.iter().map(|name| key(name)).collect();
        Transaction::new(GENESIS_HASH, id(sender), nonce, 10_000, operation).sign_all(&keys)
    }

    fn set_keys(sender: &str, keys: &[&str], threshold: u8) -> Operation {
        let keys: Vec<PrivateKey> = keys.iter().map(|name| key(name)).collect();
        Operation::set_keys_proven(&GENESIS_HASH, &id(sender), &keys, threshold)
    }

    fn pay(to: &str, amount: &str) -> TransferLeg {
        TransferLeg {
            to: id(to),
            currency: cny(),
            amount: Amount::parse(amount).expect("amount"),
            memo: None,
        }
    }

    /// Execute `txs` as one block and apply its writes to `state`.
    fn run(state: &mut BTreeMap<Vec<u8>, Vec<u8>>, config: &ChainConfig, txs: Vec<SignedTransaction>) -> Vec<Outcome> {
        run_receipts(state, config, txs)
            .into_iter()
            .map(|r| r.outcome)
            .collect()
    }

    fn run_receipts(
        state: &mut BTreeMap<Vec<u8>, Vec<u8>>,
        config: &ChainConfig,
        txs: Vec<SignedTransaction>,
    ) -> Vec<Receipt> {
        let hashes: Vec<Hash> = txs.iter().map(|t| t.hash(HashAlgorithm::Sha256)).collect();
        let block = crate::ledger::test_block(CHAIN, 1, BLOCK_TIME_MS, txs);
        let output = execute_block(state, config, &block, &hashes, &vec![Precheck::default(); hashes.len()]);
        for (key, value) in output.writes {
            match value {
                Some(value) => state.insert(key, value),
                None => state.remove(&key),
            };
        }
        output.receipts
    }

    fn account(state: &BTreeMap<Vec<u8>, Vec<u8>>, name: &str) -> AccountRecord {
        read_record(state, &StateKey::Account(id(name))).expect("account exists")
    }

    fn code(outcome: &Outcome) -> Option<ErrorCode> {
        match outcome {
            Outcome::Success => None,
            Outcome::Failed { code, .. } => Some(*code),
        }
    }

    #[test]
    fn a_batch_whose_later_leg_fails_at_execution_moves_nothing_but_uses_its_nonce() {
        let (mut state, config) = state();
        // The first transaction drains bank-a below what the batch's second leg needs.
        let outcomes = run(
            &mut state,
            &config,
            vec![
                tx(
                    "bank-a",
                    0,
                    Operation::transfer(id("bob@bank-a"), cny(), Amount::from(95), None),
                ),
                tx(
                    "bank-a",
                    1,
                    Operation::batch_transfer(vec![pay("alice@bank-a", "1"), pay("bob@bank-a", "10")]),
                ),
            ],
        );
        assert_eq!(code(&outcomes[0]), None);
        assert_eq!(code(&outcomes[1]), Some(ErrorCode::InsufficientFunds));
        let bank = account(&state, "bank-a");
        assert_eq!(bank.balance(&cny()), Amount::from(5), "the first leg did not stick");
        assert_eq!(account(&state, "alice@bank-a").balance(&cny()), Amount::from(10));
        assert_eq!(bank.next_nonce, 2, "the failed batch consumed its nonce");
    }

    /// A failed operation leaves one `Failed` event, in the sender's history only; an
    /// envelope failure (which the sender may not have signed) leaves none.
    #[test]
    fn failed_operations_appear_in_the_senders_history() {
        let (state, config) = state();
        let txs = vec![
            tx("bob@bank-a", 0, Operation::Transfer(pay("alice@bank-a", "1"))),
            tx("alice@bank-a", 7, Operation::Transfer(pay("bob@bank-a", "1"))),
        ];
        let hashes: Vec<Hash> = txs.iter().map(|t| t.hash(HashAlgorithm::Sha256)).collect();
        let block = crate::ledger::test_block(CHAIN, 1, BLOCK_TIME_MS, txs);
        let output = execute_block(&state, &config, &block, &hashes, &[Precheck::default(); 2]);
        assert_eq!(
            output.receipts[0].events,
            vec![Event::Failed {
                account: id("bob@bank-a"),
                code: ErrorCode::InsufficientFunds
            }]
        );
        assert_eq!(output.receipts[1].events, vec![], "nonce_too_high: an envelope failure");
        let owners: Vec<&AccountId> = output.history.iter().map(|(account, _, _)| account).collect();
        assert_eq!(owners, vec![&id("bob@bank-a")]);
    }

    #[test]
    fn envelope_failures_change_nothing_at_all() {
        let (mut state, config) = state();
        let before = state.clone();
        let mut forged = tx("alice@bank-a", 0, Operation::Transfer(pay("bob@bank-a", "1")));
        forged.tx.nonce = 0;
        forged.signature = key("bob@bank-a").sign(&forged.tx.signing_bytes());
        let mut expired = tx("alice@bank-a", 0, Operation::Transfer(pay("bob@bank-a", "1")));
        expired.tx.expires_at_ms = BLOCK_TIME_MS - 1;
        expired.signature = key("alice@bank-a").sign(&expired.tx.signing_bytes());
        let outcomes = run(
            &mut state,
            &config,
            vec![
                forged,
                expired,
                tx("alice@bank-a", 5, Operation::Transfer(pay("bob@bank-a", "1"))),
                Transaction::new(
                    Hash([0x22; 32]),
                    id("alice@bank-a"),
                    0,
                    10_000,
                    Operation::Transfer(pay("bob@bank-a", "1")),
                )
                .sign(&key("alice@bank-a")),
            ],
        );
        let codes: Vec<_> = outcomes.iter().map(code).collect();
        assert_eq!(
            codes,
            vec![
                Some(ErrorCode::BadSignature),
                Some(ErrorCode::Expired),
                Some(ErrorCode::NonceTooHigh),
                Some(ErrorCode::WrongChain)
            ]
        );
        assert_eq!(state, before);
    }

    /// Regression (found by the benchmark, which aborted the node): the conservation check's
    /// running sum reached 0.00 (scale 2), and `Decimal` returns `0.00 + -5` as `-5` at scale
    /// 0, which a scale-based exactness test mistook for rounding.
    #[test]
    fn a_running_sum_through_scaled_zero_conserves() {
        let (mut state, config) = state();
        let first = run(
            &mut state,
            &config,
            vec![
                tx("bank-a", 0, Operation::Transfer(pay("bob@bank-a", "5"))),
                tx("alice@bank-a", 0, Operation::Transfer(pay("bank-a", "0.01"))),
            ],
        );
        // Accounts in key order: alice (+0.01), bank-a (-0.01: the sum passes 0.00), bob (-1).
        let second = run(
            &mut state,
            &config,
            vec![
                tx("bank-a", 1, Operation::Transfer(pay("alice@bank-a", "0.01"))),
                tx("bob@bank-a", 0, Operation::Transfer(pay("regulator", "1"))),
            ],
        );
        assert!(
            first.iter().chain(&second).all(|o| *o == Outcome::Success),
            "{second:?}"
        );
        assert_eq!(account(&state, "alice@bank-a").balance(&cny()), Amount::from(10));
        assert_eq!(account(&state, "bob@bank-a").balance(&cny()), Amount::from(4));
    }

    #[test]
    fn replay_in_the_same_block_fails_and_transfers_once() {
        let (mut state, config) = state();
        let payment = tx("alice@bank-a", 0, Operation::Transfer(pay("bob@bank-a", "2.5")));
        let outcomes = run(&mut state, &config, vec![payment.clone(), payment]);
        assert_eq!(code(&outcomes[1]), Some(ErrorCode::NonceTooLow));
        assert_eq!(
            account(&state, "bob@bank-a").balance(&cny()),
            Amount::parse("2.5").expect("amount")
        );
    }

    #[test]
    fn mint_burn_freeze_and_registration_rules() {
        let (mut state, config) = state();
        let outcomes = run(
            &mut state,
            &config,
            vec![
                tx("pboc", 0, Operation::mint(id("alice@bank-a"), cny(), Amount::from(40))),
                tx("bank-a", 0, Operation::mint(id("alice@bank-a"), cny(), Amount::from(1))),
                tx("pboc", 1, Operation::burn(cny(), Amount::from(1))),
                tx("regulator", 0, Operation::freeze(id("bob@bank-a"))),
                tx("alice@bank-a", 0, Operation::Transfer(pay("bob@bank-a", "1"))),
                tx(
                    "bank-a",
                    1,
                    Operation::register_account_proven(&GENESIS_HASH, id("carol@bank-a"), &key("carol@bank-a")),
                ),
                tx(
                    "regulator",
                    1,
                    Operation::register_account_proven(&GENESIS_HASH, id("dave@bank-a"), &key("dave@bank-a")),
                ),
                tx(
                    "bank-a",
                    2,
                    Operation::register_account_proven(&GENESIS_HASH, id("erin@bank-a"), &key("carol@bank-a")),
                ),
                tx("regulator", 2, Operation::unfreeze(id("bob@bank-a"))),
                tx("alice@bank-a", 1, Operation::Transfer(pay("bob@bank-a", "1"))),
            ],
        );
        let codes: Vec<_> = outcomes.iter().map(code).collect();
        assert_eq!(
            codes,
            vec![
                None,
                Some(ErrorCode::NotIssuer),
                Some(ErrorCode::InsufficientFunds), // pboc holds no CNY to burn
                None,
                Some(ErrorCode::Frozen),
                None,
                Some(ErrorCode::NotSponsor),
                Some(ErrorCode::KeyInUse),
                None,
                None,
            ]
        );
        let supply: CurrencyRecord = read_record(&state, &StateKey::Currency(cny())).expect("currency");
        assert_eq!(supply.supply, Amount::from(150));
        assert_eq!(account(&state, "alice@bank-a").balance(&cny()), Amount::from(49));
    }

    #[test]
    fn frozen_accounts_use_no_authority_and_only_the_freezer_or_a_regulator_unfreezes() {
        let (mut state, config) = state_with(|genesis| {
            let regulator = genesis
                .accounts
                .iter_mut()
                .find(|a| a.id == id("regulator"))
                .expect("regulator");
            regulator.more_keys.push(key("regulator-2").public_key());
        });
        let outcomes = run(
            &mut state,
            &config,
            vec![
                tx_by(
                    "regulator",
                    0,
                    Operation::freeze(id("pboc")),
                    &["regulator", "regulator-2"],
                ),
                tx("pboc", 0, Operation::unfreeze(id("pboc"))),
                tx("pboc", 1, Operation::mint(id("alice@bank-a"), cny(), Amount::from(1))),
                tx("bank-a", 0, Operation::freeze(id("alice@bank-a"))),
                tx("regulator", 1, Operation::unfreeze(id("pboc"))),
                tx("pboc", 2, Operation::freeze(id("alice@bank-a"))),
                tx("pboc", 3, Operation::unfreeze(id("alice@bank-a"))),
            ],
        );
        let codes: Vec<_> = outcomes.iter().map(code).collect();
        assert_eq!(
            codes,
            vec![
                None,
                Some(ErrorCode::Frozen),        // a frozen central bank cannot unfreeze itself
                Some(ErrorCode::Frozen),        // nor issue money
                Some(ErrorCode::NotAuthorized), // a commercial bank is not an authority
                None,
                None,
                None, // the authority that froze it may unfreeze it
            ]
        );
        let outcomes = run(
            &mut state,
            &config,
            vec![
                tx("regulator", 2, Operation::freeze(id("bob@bank-a"))),
                tx("pboc", 4, Operation::unfreeze(id("bob@bank-a"))),
            ],
        );
        assert_eq!(
            code(&outcomes[1]),
            Some(ErrorCode::NotAuthorized),
            "pboc did not freeze bob"
        );
        assert_eq!(account(&state, "bob@bank-a").frozen_by, Some(id("regulator")));
    }

    /// An event means a change: freezing a frozen account, or unfreezing an open one, writes
    /// nothing and emits nothing (it used to emit a false `Frozen`).
    #[test]
    fn operations_that_change_nothing_emit_no_event() {
        let (mut state, config) = state();
        let receipts = run_receipts(
            &mut state,
            &config,
            vec![
                tx("regulator", 0, Operation::freeze(id("bob@bank-a"))),
                tx("pboc", 0, Operation::freeze(id("bob@bank-a"))),
                tx("regulator", 1, Operation::unfreeze(id("alice@bank-a"))),
            ],
        );
        assert!(receipts.iter().all(|r| r.outcome == Outcome::Success));
        assert_eq!(receipts[0].events.len(), 1);
        assert_eq!(receipts[1].events, vec![], "bob was frozen already");
        assert_eq!(receipts[2].events, vec![], "alice was not frozen");
        assert_eq!(account(&state, "bob@bank-a").frozen_by, Some(id("regulator")));
    }

    fn signers(state: &BTreeMap<Vec<u8>, Vec<u8>>, name: &str) -> Option<SignerSet> {
        read_record(state, &StateKey::Signers(id(name)))
    }

    /// Adversary: one stolen key of a 2-of-3 account, alone, with a key that is not the
    /// account's, twice over, or with a forged second signature. Each is refused in the envelope
    /// and changes nothing, the nonce included; two of its keys move the money.
    #[test]
    fn a_threshold_account_moves_nothing_with_one_signature() {
        let (mut state, config) = state();
        let alice_keys = ["alice@bank-a", "alice-2", "alice-3"];
        let outcomes = run(
            &mut state,
            &config,
            vec![tx("alice@bank-a", 0, set_keys("alice@bank-a", &alice_keys, 2))],
        );
        assert_eq!(outcomes, vec![Outcome::Success]);
        assert_eq!(
            signers(&state, "alice@bank-a"),
            Some(SignerSet {
                keys: alice_keys.iter().map(|name| key(name).public_key()).collect(),
                threshold: 2,
            })
        );
        for name in alice_keys {
            assert_eq!(
                read_record::<AccountId>(&state, &StateKey::KeyOwner(key(name).public_key())),
                Some(id("alice@bank-a")),
                "{name} is alice's"
            );
        }
        let before = state.clone();
        let transfer = || Operation::Transfer(pay("bob@bank-a", "3"));
        let mut forged = tx_by("alice@bank-a", 1, transfer(), &["alice-2"]);
        forged = forged.with_cosignature(
            key("alice-3").public_key(),
            key("alice-3").sign(b"some other message entirely"),
        );
        let outcomes = run(
            &mut state,
            &config,
            vec![
                tx_by("alice@bank-a", 1, transfer(), &["alice-2"]),
                tx_by("alice@bank-a", 1, transfer(), &["alice-2", "mallory"]),
                tx_by("alice@bank-a", 1, transfer(), &["alice-2", "alice-2"]),
                forged,
            ],
        );
        assert_eq!(
            outcomes.iter().map(code).collect::<Vec<_>>(),
            vec![
                Some(ErrorCode::SignaturesBelowThreshold),
                Some(ErrorCode::KeyMismatch),
                Some(ErrorCode::Malformed),
                Some(ErrorCode::BadSignature),
            ]
        );
        assert_eq!(state, before, "a refused envelope changes nothing");
        let outcomes = run(
            &mut state,
            &config,
            vec![tx_by("alice@bank-a", 1, transfer(), &["alice-3", "alice-2"])],
        );
        assert_eq!(outcomes, vec![Outcome::Success]);
        assert_eq!(account(&state, "bob@bank-a").balance(&cny()), Amount::from(3));

        // Back to one key: it takes the threshold, and frees the keys it drops.
        let outcomes = run(
            &mut state,
            &config,
            vec![
                tx_by(
                    "alice@bank-a",
                    2,
                    Operation::rotate_key_proven(&GENESIS_HASH, &id("alice@bank-a"), &key("alice-4")),
                    &["alice-3"],
                ),
                tx_by(
                    "alice@bank-a",
                    2,
                    Operation::rotate_key_proven(&GENESIS_HASH, &id("alice@bank-a"), &key("alice-4")),
                    &["alice@bank-a", "alice-3"],
                ),
                tx_by("alice@bank-a", 3, transfer(), &["alice-4"]),
            ],
        );
        assert_eq!(
            outcomes.iter().map(code).collect::<Vec<_>>(),
            vec![Some(ErrorCode::SignaturesBelowThreshold), None, None]
        );
        assert_eq!(
            signers(&state, "alice@bank-a"),
            None,
            "one key, threshold one: no set stored"
        );
        assert_eq!(
            read_record::<AccountId>(&state, &StateKey::KeyOwner(key("alice-2").public_key())),
            None
        );
        assert_eq!(account(&state, "bob@bank-a").balance(&cny()), Amount::from(6));
    }

    /// Adversary: a signer set that would take someone else's key, carry a key whose holder
    /// did not sign its proof, list a key twice, or need no or impossible signatures.
    #[test]
    fn bad_signer_sets_are_refused_and_change_nothing_but_the_nonce() {
        let (mut state, config) = state();
        let mut unproven = set_keys("alice@bank-a", &["alice@bank-a", "alice-2"], 2);
        if let Operation::SetKeys { keys, .. } = &mut unproven {
            keys[1].proof = key("mallory").sign(&corridor_sdk::tx::key_proof_message(
                &GENESIS_HASH,
                &id("alice@bank-a"),
                &key("alice-2").public_key(),
            ));
        }
        let mut twice = set_keys("alice@bank-a", &["alice@bank-a", "alice-2"], 1);
        if let Operation::SetKeys { keys, .. } = &mut twice {
            keys[1] = keys[0].clone();
        }
        let outcomes = run(
            &mut state,
            &config,
            vec![
                tx(
                    "alice@bank-a",
                    0,
                    set_keys("alice@bank-a", &["alice@bank-a", "bob@bank-a"], 2),
                ),
                tx("alice@bank-a", 1, unproven),
                tx("alice@bank-a", 1, twice),
                tx(
                    "alice@bank-a",
                    1,
                    set_keys("alice@bank-a", &["alice@bank-a", "alice-2"], 0),
                ),
                tx(
                    "alice@bank-a",
                    1,
                    set_keys("alice@bank-a", &["alice@bank-a", "alice-2"], 3),
                ),
            ],
        );
        assert_eq!(
            outcomes.iter().map(code).collect::<Vec<_>>(),
            vec![
                Some(ErrorCode::KeyInUse),
                Some(ErrorCode::BadKeyProof),
                Some(ErrorCode::BadSignerSet),
                Some(ErrorCode::BadSignerSet),
                Some(ErrorCode::BadSignerSet),
            ]
        );
        assert_eq!(signers(&state, "alice@bank-a"), None);
        assert_eq!(
            account(&state, "alice@bank-a").next_nonce,
            1,
            "the first failed in its operation (its nonce is spent); the rest in the envelope"
        );
    }

    /// Genesis requires two signatures of every authority: one stolen officer key of the
    /// central bank mints nothing, and the bank cannot lower its own bar. A regulator's single
    /// key freezes no central bank or regulator, though it still freezes a customer.
    #[test]
    fn authority_thresholds_from_genesis_hold() {
        let (mut state, config) = state_with(|genesis| {
            genesis.authority_threshold_min = 2;
            for account in genesis.accounts.iter_mut() {
                if ["pboc", "hkma", "regulator"].contains(&account.id.as_str()) {
                    account.more_keys = vec![
                        key(&format!("{}-2", account.id)).public_key(),
                        key(&format!("{}-3", account.id)).public_key(),
                    ];
                    account.threshold = 2;
                }
            }
        });
        let mint = || Operation::mint(id("alice@bank-a"), cny(), Amount::from(5));
        let outcomes = run(
            &mut state,
            &config,
            vec![
                tx("pboc", 0, mint()),
                tx_by("pboc", 0, mint(), &["pboc-2", "pboc-3"]),
                tx_by("pboc", 1, set_keys("pboc", &["pboc", "pboc-2"], 1), &["pboc", "pboc-2"]),
                tx_by(
                    "pboc",
                    2,
                    Operation::rotate_key_proven(&GENESIS_HASH, &id("pboc"), &key("pboc-4")),
                    &["pboc", "pboc-2"],
                ),
                tx_by("pboc", 3, set_keys("pboc", &["pboc", "pboc-4"], 2), &["pboc", "pboc-3"]),
            ],
        );
        assert_eq!(
            outcomes.iter().map(code).collect::<Vec<_>>(),
            vec![
                Some(ErrorCode::SignaturesBelowThreshold),
                None,
                Some(ErrorCode::ThresholdTooLow),
                Some(ErrorCode::ThresholdTooLow),
                None,
            ]
        );
        assert_eq!(account(&state, "alice@bank-a").balance(&cny()), Amount::from(15));
        assert_eq!(signers(&state, "pboc").map(|set| set.threshold), Some(2));

        // A regulator whose threshold were one (genesis below forbids it; here the rule is
        // checked on the signatures carried): two of its keys freeze a central bank.
        let (mut state, config) = state_with(|genesis| {
            let regulator = genesis
                .accounts
                .iter_mut()
                .find(|a| a.id == id("regulator"))
                .expect("regulator");
            regulator.more_keys = vec![key("regulator-2").public_key()];
        });
        let outcomes = run(
            &mut state,
            &config,
            vec![
                tx("regulator", 0, Operation::freeze(id("pboc"))),
                tx("regulator", 1, Operation::freeze(id("bob@bank-a"))),
                tx_by(
                    "regulator",
                    2,
                    Operation::freeze(id("hkma")),
                    &["regulator", "regulator-2"],
                ),
            ],
        );
        assert_eq!(
            outcomes.iter().map(code).collect::<Vec<_>>(),
            vec![Some(ErrorCode::MultisigRequired), None, None]
        );
        assert_eq!(account(&state, "pboc").frozen_by, None);
        assert_eq!(account(&state, "hkma").frozen_by, Some(id("regulator")));
    }

    /// Adversary: a registration or rotation that does not prove possession of the new key
    /// (no proof, someone else's key, a forged proof) is refused at execution too, and
    /// changes nothing, not even the nonce.
    #[test]
    fn keys_without_proof_of_possession_never_enter_the_ledger() {
        let (mut state, config) = state();
        let before = state.clone();
        let victim = key("alice@bank-a");
        let outcomes = run(
            &mut state,
            &config,
            vec![
                tx(
                    "bank-a",
                    0,
                    Operation::register_account(id("mallory@bank-a"), key("m").public_key()),
                ),
                tx(
                    "bank-a",
                    0,
                    Operation::RegisterAccountWithProof {
                        account: id("mallory@bank-a"),
                        public_key: victim.public_key(),
                        proof: key("m").sign(&corridor_sdk::tx::key_proof_message(
                            &GENESIS_HASH,
                            &id("mallory@bank-a"),
                            &victim.public_key(),
                        )),
                    },
                ),
                tx("bob@bank-a", 0, Operation::rotate_key(key("m").public_key())),
            ],
        );
        let codes: Vec<_> = outcomes.iter().map(code).collect();
        assert_eq!(
            codes,
            vec![
                Some(ErrorCode::KeyProofRequired),
                Some(ErrorCode::BadKeyProof),
                Some(ErrorCode::KeyProofRequired)
            ]
        );
        assert_eq!(state, before);
        let outcomes = run(
            &mut state,
            &config,
            vec![tx(
                "bob@bank-a",
                0,
                Operation::rotate_key_proven(&GENESIS_HASH, &id("bob@bank-a"), &key("m")),
            )],
        );
        assert_eq!(code(&outcomes[0]), None);
        assert_eq!(account(&state, "bob@bank-a").public_key, key("m").public_key());
    }

    /// Adversary: a central bank reaching outside its jurisdiction, or at another authority.
    /// Refused `not_authorized` before existence is looked at; a regulator reaches everyone.
    #[test]
    fn a_central_bank_freezes_only_within_its_jurisdiction() {
        let (mut state, config) = state_with(|genesis| {
            let regulator = genesis
                .accounts
                .iter_mut()
                .find(|a| a.id == id("regulator"))
                .expect("regulator");
            regulator.more_keys.push(key("regulator-2").public_key());
        });
        let outcomes = run(
            &mut state,
            &config,
            vec![
                tx("hkma", 0, Operation::freeze(id("alice@bank-a"))),
                tx("hkma", 1, Operation::freeze(id("bank-a"))),
                tx("hkma", 2, Operation::freeze(id("ghost@bank-a"))),
                tx("pboc", 0, Operation::freeze(id("hkma"))),
                tx("pboc", 1, Operation::freeze(id("regulator"))),
                tx("pboc", 2, Operation::freeze(id("carol@bank-b"))),
                tx("hkma", 3, Operation::freeze(id("carol@bank-b"))),
                tx("pboc", 3, Operation::freeze(id("alice@bank-a"))),
                tx("pboc", 4, Operation::freeze(id("ghost@bank-a"))),
                tx_by(
                    "regulator",
                    0,
                    Operation::freeze(id("hkma")),
                    &["regulator", "regulator-2"],
                ),
            ],
        );
        let codes: Vec<_> = outcomes.iter().map(code).collect();
        let refused = Some(ErrorCode::NotAuthorized);
        assert_eq!(
            codes,
            vec![
                refused,
                refused,
                refused, // not unknown_account: existence is not revealed
                refused,
                refused,
                refused,
                None,
                None,
                Some(ErrorCode::UnknownAccount), // within its jurisdiction, it may know
                None,
            ]
        );
        assert!(account(&state, "alice@bank-a").is_frozen());
        assert!(account(&state, "hkma").is_frozen());
        assert_eq!(account(&state, "carol@bank-b").frozen_by, Some(id("hkma")));
    }

    #[test]
    fn supply_cap_keeps_arithmetic_exact() {
        let (mut state, config) = state();
        let cap = Amount::supply_max(2);
        let outcomes = run(
            &mut state,
            &config,
            vec![tx("pboc", 0, Operation::mint(id("alice@bank-a"), cny(), cap))],
        );
        assert_eq!(
            code(&outcomes[0]),
            Some(ErrorCode::AmountOverflow),
            "genesis supply plus the cap is over it"
        );
        let room = cap.checked_sub(Amount::from(110)).expect("exact");
        let outcomes = run(
            &mut state,
            &config,
            vec![tx("pboc", 1, Operation::mint(id("alice@bank-a"), cny(), room))],
        );
        assert_eq!(code(&outcomes[0]), None);
    }

    #[test]
    #[should_panic(expected = "conservation broken")]
    fn conservation_is_asserted() {
        let (state, _) = state();
        let mut changes = Changes::default();
        let mut alice = account(&state, "alice@bank-a");
        alice.set_balance(&cny(), Amount::from(11)); // one unit from nowhere
        changes.accounts.insert(id("alice@bank-a"), Some(alice));
        assert_conservation(&Committed::new(&state), &changes);
    }
}
