//! Native FX: rate posts, the median oracle, liquidity providers' quotes, locks and PvP
//! settlement (ADR 0020).
//!
//! Rules this module keeps:
//! - Only rate providers named in genesis post; a post is fresh while block time is within
//!   `staleness_ms` of when it was posted; the oracle rate is the lower median of fresh posts.
//! - A lock reserves the provider's buy currency at once, moving it out of the provider's
//!   balance into the lock record, so settlement cannot fail for lack of liquidity. Open locks
//!   hold money: conservation counts them (`held`).
//! - Settle moves both legs or neither, through the compliance hook, before expiry only.
//! - At the first block whose time is past a lock's expiry, the reservation returns to the
//!   provider (`release_expired`, run before the block's transactions).
//! - A contract may be a lock's payer (ADR 0045): only that contract settles it, and its sell
//!   leg leaves the contract's own balance, which the call's host state holds.

use super::compliance::{self, Movement, MovementKind};
use super::execute::{TxContext, check_scale, credit, debit};
use super::records::StateKey;
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::fx::{self, LockStatus, LockView, PairView, QuoteView, Rate, RatePostView, RatesView};
use corridor_sdk::limits::FX_OPEN_LOCKS_MAX;
use corridor_sdk::{AccountId, Amount, CurrencyCode, Event, codec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Who may post and quote, from genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FxConfigRecord {
    pub rate_providers: BTreeSet<AccountId>,
    /// Liquidity provider → spread in basis points below the oracle rate.
    pub liquidity_providers: BTreeMap<AccountId, u32>,
    /// How long (block time) a post stays fresh.
    pub staleness_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RatePost {
    pub rate: Rate,
    pub posted_at_ms: u64,
}

/// The latest post of each provider for one directed pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FxPairRecord {
    pub posts: BTreeMap<AccountId, RatePost>,
}

/// The lock counter and the expiry index of open locks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FxBookRecord {
    pub next_lock_id: u64,
    /// (expires_at_ms, lock id) of every open lock.
    pub open: BTreeSet<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FxLockRecord {
    pub payer: AccountId,
    pub provider: AccountId,
    pub sell: CurrencyCode,
    pub buy: CurrencyCode,
    pub sell_amount: Amount,
    /// Reserved from the provider while the lock is open.
    pub buy_amount: Amount,
    pub rate: Rate,
    pub locked_at_ms: u64,
    pub expires_at_ms: u64,
    pub status: LockStatus,
    pub settled_to: Option<AccountId>,
    /// The contract that holds the lock (its `payer` is the account whose call made it); only
    /// that contract may settle it.
    pub contract: Option<u64>,
}

/// Who pays a lock's sell leg.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Payer<'a> {
    Account(&'a AccountId),
    /// A contract, from its own balance; `caller` is the account whose call it runs.
    Contract {
        contract: u64,
        caller: &'a AccountId,
    },
}

impl<'a> Payer<'a> {
    /// The account recorded as the lock's payer.
    fn account(self) -> &'a AccountId {
        match self {
            Payer::Account(account) | Payer::Contract { caller: account, .. } => account,
        }
    }

    fn contract(self) -> Option<u64> {
        match self {
            Payer::Account(_) => None,
            Payer::Contract { contract, .. } => Some(contract),
        }
    }
}

/// What a lock fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockTerms {
    pub id: u64,
    pub buy_amount: Amount,
    pub rate: Rate,
    pub expires_at_ms: u64,
}

impl FxLockRecord {
    pub fn view(&self, id: u64, block_time_ms: u64) -> LockView {
        LockView {
            id,
            payer: self.payer.clone(),
            provider: self.provider.clone(),
            sell: self.sell.clone(),
            buy: self.buy.clone(),
            sell_amount: self.sell_amount,
            buy_amount: self.buy_amount,
            rate: self.rate,
            locked_at_ms: self.locked_at_ms,
            expires_at_ms: self.expires_at_ms,
            status: self.status,
            expired: self.status == LockStatus::Open && block_time_ms > self.expires_at_ms,
            settled_to: self.settled_to.clone(),
            contract: self.contract,
        }
    }
}

/// Money a stored record holds outside account balances, for conservation.
pub(crate) fn held(key: &[u8], value: &[u8]) -> Option<(CurrencyCode, Amount)> {
    if !StateKey::is_fx_lock(key) {
        return None;
    }
    let lock: FxLockRecord = super::execute::decode_state(value);
    (lock.status == LockStatus::Open).then_some((lock.buy, lock.buy_amount))
}

fn config(ctx: &TxContext<'_>) -> Result<FxConfigRecord, Error> {
    ctx.record(&StateKey::FxConfig)
        .ok_or_else(|| Error::new(ErrorCode::FxNoRate, "this chain has no FX configuration"))
}

fn fresh_rates(pair: &FxPairRecord, staleness_ms: u64, block_time_ms: u64) -> Vec<Rate> {
    pair.posts
        .values()
        .filter(|post| is_fresh(post, staleness_ms, block_time_ms))
        .map(|post| post.rate)
        .collect()
}

fn is_fresh(post: &RatePost, staleness_ms: u64, block_time_ms: u64) -> bool {
    block_time_ms <= post.posted_at_ms.saturating_add(staleness_ms)
}

/// The oracle rate of `sell`/`buy` at the context's block time.
pub(crate) fn oracle_rate(ctx: &TxContext<'_>, sell: &CurrencyCode, buy: &CurrencyCode) -> Result<Rate, Error> {
    let config = config(ctx)?;
    let pair: FxPairRecord = ctx
        .record(&StateKey::FxPair(sell.clone(), buy.clone()))
        .unwrap_or_default();
    fx::lower_median(fresh_rates(&pair, config.staleness_ms, ctx.block_time_ms))
        .ok_or_else(|| Error::new(ErrorCode::FxNoRate, format!("no fresh rate for {sell}/{buy}")))
}

pub(crate) fn post_rate(
    ctx: &mut TxContext<'_>,
    sender: &AccountId,
    sell: &CurrencyCode,
    buy: &CurrencyCode,
    rate: Rate,
) -> Result<(), Error> {
    if !config(ctx)?.rate_providers.contains(sender) {
        return Err(Error::new(
            ErrorCode::NotRateProvider,
            format!("{sender} is not a rate provider"),
        ));
    }
    ctx.currency(sell)?;
    ctx.currency(buy)?;
    let key = StateKey::FxPair(sell.clone(), buy.clone());
    let mut pair: FxPairRecord = ctx.record(&key).unwrap_or_default();
    pair.posts.insert(
        sender.clone(),
        RatePost {
            rate,
            posted_at_ms: ctx.block_time_ms,
        },
    );
    ctx.put_record(&key, Some(&pair));
    ctx.events.push(Event::FxRatePosted {
        provider: sender.clone(),
        sell: sell.clone(),
        buy: buy.clone(),
        rate,
    });
    Ok(())
}

/// The terms of a lock request.
pub(crate) struct LockRequest<'a> {
    pub provider: &'a AccountId,
    pub sell: &'a CurrencyCode,
    pub buy: &'a CurrencyCode,
    pub sell_amount: Amount,
    pub window_ms: u64,
    pub rate_min: Option<Rate>,
}

/// Lock a rate for `payer` and reserve the provider's buy currency.
pub(crate) fn lock(ctx: &mut TxContext<'_>, payer: Payer<'_>, request: &LockRequest<'_>) -> Result<LockTerms, Error> {
    let LockRequest {
        provider,
        sell,
        buy,
        sell_amount,
        window_ms,
        rate_min,
    } = *request;
    let contract = payer.contract();
    let payer = payer.account();
    if contract.is_none() && payer == provider {
        return Err(Error::new(
            ErrorCode::SelfTransfer,
            "a provider cannot lock with itself",
        ));
    }
    let sell_currency = ctx.currency(sell)?;
    let buy_currency = ctx.currency(buy)?;
    check_scale(sell, &sell_currency, sell_amount)?;
    let Some(&spread_bps) = config(ctx)?.liquidity_providers.get(provider) else {
        return Err(Error::new(
            ErrorCode::NotLiquidityProvider,
            format!("{provider} is not a liquidity provider"),
        ));
    };
    let rate = fx::client_rate(oracle_rate(ctx, sell, buy)?, spread_bps)?;
    if let Some(rate_min) = rate_min
        && rate < rate_min
    {
        return Err(Error::new(
            ErrorCode::FxRateBelowMin,
            format!("{provider} quotes {rate} {buy} per {sell}, below the minimum {rate_min}"),
        ));
    }
    let buy_amount = fx::convert(sell_amount, rate, buy_currency.scale)?;
    if !buy_amount.is_positive() {
        return Err(Error::new(
            ErrorCode::AmountNotPositive,
            format!("{sell_amount} {sell} buys less than the smallest unit of {buy}"),
        ));
    }
    // A contract pays from its own balance: it has no account record for the hook to see.
    let payer_record = match contract {
        None => Some(ctx.require_account(payer)?),
        Some(_) => None,
    };
    let payer_side = payer_record.as_ref().map(|record| (payer, record));
    let mut provider_record = ctx.require_account(provider)?;
    compliance::check_movement(&Movement {
        kind: MovementKind::Transfer,
        from: payer_side,
        to: Some((provider, &provider_record)),
        currency: (sell, &sell_currency),
        amount: sell_amount,
    })?;
    compliance::check_movement(&Movement {
        kind: MovementKind::Transfer,
        from: Some((provider, &provider_record)),
        to: payer_side,
        currency: (buy, &buy_currency),
        amount: buy_amount,
    })?;
    debit(provider, &mut provider_record, buy, buy_amount).map_err(|error| {
        Error::new(
            ErrorCode::InsufficientLiquidity,
            format!("{provider} cannot reserve {buy_amount} {buy}: {}", error.message),
        )
    })?;
    let mut book: FxBookRecord = ctx.record(&StateKey::FxBook).unwrap_or_default();
    if book.open.len() >= FX_OPEN_LOCKS_MAX {
        return Err(Error::new(
            ErrorCode::FxLocksFull,
            format!("{FX_OPEN_LOCKS_MAX} locks are open; try after some settle or expire"),
        ));
    }
    let id = book.next_lock_id;
    let expires_at_ms = ctx.block_time_ms.saturating_add(window_ms);
    book.next_lock_id = id.checked_add(1).expect("lock ids do not run out");
    assert!(book.open.insert((expires_at_ms, id)), "lock ids are unique");
    let record = FxLockRecord {
        payer: payer.clone(),
        provider: provider.clone(),
        sell: sell.clone(),
        buy: buy.clone(),
        sell_amount,
        buy_amount,
        rate,
        locked_at_ms: ctx.block_time_ms,
        expires_at_ms,
        status: LockStatus::Open,
        settled_to: None,
        contract,
    };
    ctx.put_account(provider, provider_record);
    ctx.put_record(&StateKey::FxBook, Some(&book));
    ctx.put_record(&StateKey::FxLock(id), Some(&record));
    ctx.events.push(Event::FxLocked {
        lock_id: id,
        payer: payer.clone(),
        provider: provider.clone(),
        sell: sell.clone(),
        buy: buy.clone(),
        sell_amount,
        buy_amount,
        rate,
        expires_at_ms,
    });
    Ok(LockTerms {
        id,
        buy_amount,
        rate,
        expires_at_ms,
    })
}

/// Settle an open lock: both legs or neither. Only the payer may settle: the account, or for
/// a contract's lock that contract. Returns the sell leg; a contract's is for its caller to
/// take from the contract's balance (an account's has left its balance here).
pub(crate) fn settle(
    ctx: &mut TxContext<'_>,
    sender: Payer<'_>,
    lock_id: u64,
    to: &AccountId,
) -> Result<(CurrencyCode, Amount), Error> {
    let key = StateKey::FxLock(lock_id);
    let mut lock: FxLockRecord = ctx
        .record(&key)
        .ok_or_else(|| Error::new(ErrorCode::UnknownFxLock, format!("no FX lock {lock_id}")))?;
    let allowed = match (sender, lock.contract) {
        (Payer::Account(account), None) => account == &lock.payer,
        (Payer::Contract { contract, .. }, Some(holder)) => contract == holder,
        _ => false,
    };
    if !allowed {
        let holder = lock
            .contract
            .map_or_else(|| lock.payer.to_string(), |contract| format!("contract {contract}"));
        return Err(Error::new(
            ErrorCode::NotLockPayer,
            format!("only {holder} may settle lock {lock_id}"),
        ));
    }
    if lock.status == LockStatus::Settled {
        return Err(Error::new(
            ErrorCode::FxLockNotOpen,
            format!("lock {lock_id} is settled"),
        ));
    }
    // Released means it expired and a block has since returned the reservation.
    if lock.status == LockStatus::Released || ctx.block_time_ms > lock.expires_at_ms {
        return Err(Error::new(
            ErrorCode::FxLockExpired,
            format!("lock {lock_id} expired at {} ms", lock.expires_at_ms),
        ));
    }
    let sell_currency = ctx.currency(&lock.sell)?;
    let buy_currency = ctx.currency(&lock.buy)?;
    let mut provider = ctx.require_account(&lock.provider)?;
    // Sell leg: payer → provider. A contract's leaves its balance in the call's host state.
    match lock.contract {
        None => {
            let mut payer = ctx.require_account(&lock.payer)?;
            compliance::check_movement(&Movement {
                kind: MovementKind::Transfer,
                from: Some((&lock.payer, &payer)),
                to: Some((&lock.provider, &provider)),
                currency: (&lock.sell, &sell_currency),
                amount: lock.sell_amount,
            })?;
            debit(&lock.payer, &mut payer, &lock.sell, lock.sell_amount)?;
            ctx.put_account(&lock.payer, payer);
        }
        Some(_) => compliance::check_movement(&Movement {
            kind: MovementKind::Transfer,
            from: None,
            to: Some((&lock.provider, &provider)),
            currency: (&lock.sell, &sell_currency),
            amount: lock.sell_amount,
        })?,
    }
    credit(&mut provider, &lock.sell, lock.sell_amount)?;
    ctx.put_account(&lock.provider, provider.clone());
    // Buy leg: the reservation → `to` (which may be the payer, now updated above).
    let mut receiver = ctx.require_account(to)?;
    compliance::check_movement(&Movement {
        kind: MovementKind::Transfer,
        from: Some((&lock.provider, &provider)),
        to: Some((to, &receiver)),
        currency: (&lock.buy, &buy_currency),
        amount: lock.buy_amount,
    })?;
    credit(&mut receiver, &lock.buy, lock.buy_amount)?;
    ctx.put_account(to, receiver);
    let mut book: FxBookRecord = ctx.record(&StateKey::FxBook).unwrap_or_default();
    assert!(
        book.open.remove(&(lock.expires_at_ms, lock_id)),
        "an open lock is indexed"
    );
    ctx.put_record(&StateKey::FxBook, Some(&book));
    lock.status = LockStatus::Settled;
    lock.settled_to = Some(to.clone());
    ctx.put_record(&key, Some(&lock));
    ctx.events.push(Event::FxSettled {
        lock_id,
        payer: lock.payer.clone(),
        provider: lock.provider.clone(),
        to: to.clone(),
        sell: lock.sell.clone(),
        sell_amount: lock.sell_amount,
        buy: lock.buy.clone(),
        buy_amount: lock.buy_amount,
    });
    Ok((lock.sell, lock.sell_amount))
}

/// Return the reservation of every lock that expired before the context's block time to its
/// provider. Runs before a block's transactions; a release is not a transfer (the money never
/// left the provider's ownership), so it passes no compliance check and cannot fail.
pub(crate) fn release_expired(ctx: &mut TxContext<'_>) {
    let Some(mut book) = ctx.record::<FxBookRecord>(&StateKey::FxBook) else {
        return;
    };
    let expired: Vec<(u64, u64)> = book
        .open
        .iter()
        .take_while(|(expires_at_ms, _)| *expires_at_ms < ctx.block_time_ms)
        .copied()
        .collect();
    if expired.is_empty() {
        return;
    }
    for entry in expired {
        let key = StateKey::FxLock(entry.1);
        let mut lock: FxLockRecord = ctx.record(&key).expect("an indexed lock exists");
        assert_eq!(lock.status, LockStatus::Open, "only open locks are indexed");
        let mut provider = ctx
            .require_account(&lock.provider)
            .expect("providers are never deleted");
        credit(&mut provider, &lock.buy, lock.buy_amount).expect("a reservation fits back where it came from");
        ctx.put_account(&lock.provider, provider);
        lock.status = LockStatus::Released;
        ctx.put_record(&key, Some(&lock));
        book.open.remove(&entry);
    }
    ctx.put_record(&StateKey::FxBook, Some(&book));
}

/// `GET /v1/fx/rates` from committed state at `block_time_ms`.
pub(crate) fn rates_view(
    reader: &dyn super::StateReader,
    pairs: &[(CurrencyCode, CurrencyCode)],
    block_time_ms: u64,
) -> RatesView {
    let read = |key: &StateKey| reader.get(&key.to_bytes());
    let Some(config) = read(&StateKey::FxConfig).map(|bytes| super::execute::decode_state::<FxConfigRecord>(&bytes))
    else {
        return RatesView {
            block_time_ms,
            staleness_ms: 0,
            pairs: vec![],
        };
    };
    let mut views = Vec::new();
    for (sell, buy) in pairs {
        let Some(bytes) = read(&StateKey::FxPair(sell.clone(), buy.clone())) else {
            continue;
        };
        let pair: FxPairRecord = super::execute::decode_state(&bytes);
        let oracle_rate = fx::lower_median(fresh_rates(&pair, config.staleness_ms, block_time_ms));
        let mut quotes = Vec::new();
        if let Some(oracle) = oracle_rate {
            for (provider, spread_bps) in &config.liquidity_providers {
                let inventory = read(&StateKey::Account(provider.clone()))
                    .map(|bytes| super::execute::decode_state::<super::AccountRecord>(&bytes).balance(buy))
                    .unwrap_or_default();
                if let Ok(rate) = fx::client_rate(oracle, *spread_bps) {
                    quotes.push(QuoteView {
                        provider: provider.clone(),
                        spread_bps: *spread_bps,
                        rate,
                        inventory,
                    });
                }
            }
        }
        views.push(PairView {
            sell: sell.clone(),
            buy: buy.clone(),
            oracle_rate,
            posts: pair
                .posts
                .iter()
                .map(|(provider, post)| RatePostView {
                    provider: provider.clone(),
                    rate: post.rate,
                    posted_at_ms: post.posted_at_ms,
                    fresh: is_fresh(post, config.staleness_ms, block_time_ms),
                })
                .collect(),
            quotes,
        });
    }
    RatesView {
        block_time_ms,
        staleness_ms: config.staleness_ms,
        pairs: views,
    }
}

/// `GET /v1/fx/locks/{id}` from committed state.
pub(crate) fn lock_view(reader: &dyn super::StateReader, id: u64, block_time_ms: u64) -> Option<LockView> {
    let bytes = reader.get(&StateKey::FxLock(id).to_bytes())?;
    let lock: FxLockRecord = super::execute::decode_state(&bytes);
    Some(lock.view(id, block_time_ms))
}

/// The genesis records of FX: its configuration and the initial posts.
pub(crate) fn genesis_writes(
    config: &FxConfigRecord,
    posts: &BTreeMap<(CurrencyCode, CurrencyCode), FxPairRecord>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut writes = vec![(StateKey::FxConfig.to_bytes(), codec::encode(config))];
    for ((sell, buy), pair) in posts {
        writes.push((
            StateKey::FxPair(sell.clone(), buy.clone()).to_bytes(),
            codec::encode(pair),
        ));
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::{Genesis, GenesisAccount, GenesisCurrency, GenesisFx, GenesisRate, GenesisValidator};
    use crate::ledger::{ChainConfig, Precheck, execute_block};
    use corridor_sdk::error::ErrorCode;
    use corridor_sdk::{Hash, HashAlgorithm, Operation, Outcome, PrivateKey, Scheme, SignedTransaction, Transaction};

    const CHAIN: &str = "fx-test";
    const STALENESS_MS: u64 = 10_000;

    fn id(text: &str) -> AccountId {
        AccountId::new(text).expect("id")
    }

    fn code(text: &str) -> CurrencyCode {
        CurrencyCode::new(text).expect("code")
    }

    fn amount(text: &str) -> Amount {
        Amount::parse(text).expect("amount")
    }

    fn key(name: &str) -> PrivateKey {
        let mut seed = [3u8; 32];
        seed[..name.len().min(32)].copy_from_slice(&name.as_bytes()[..name.len().min(32)]);
        PrivateKey::from_seed(Scheme::Ed25519, seed).expect("seed")
    }

    struct Ledger {
        state: BTreeMap<Vec<u8>, Vec<u8>>,
        config: ChainConfig,
        height: u64,
        nonces: BTreeMap<String, u64>,
    }

    /// CNY (scale 2) and THB (scale 2); importer@bank-cn holds 1000 CNY; bank-th provides THB
    /// liquidity at 25 bps; oracles post CNY/THB at time 0.
    fn ledger() -> Ledger {
        let account = |name: &str, balances: &[(&str, &str)]| GenesisAccount {
            id: id(name),
            public_key: key(name).public_key(),
            balances: balances.iter().map(|(c, a)| (code(c), amount(a))).collect(),
            more_keys: Vec::new(),
            threshold: 1,
        };
        let currency = |c: &str, issuer: &str| GenesisCurrency {
            code: code(c),
            scale: 2,
            issuer: id(issuer),
            transfer_limit: None,
        };
        let post = |provider: &str, rate: &str| GenesisRate {
            provider: id(provider),
            sell: code("CNY"),
            buy: code("THB"),
            rate: Rate::parse(rate).expect("rate"),
        };
        let genesis = Genesis {
            block_time_drift_ms_max: crate::genesis::BLOCK_TIME_DRIFT_MS_MAX_DEFAULT,
            consensus_timeout_ms: crate::genesis::CONSENSUS_TIMEOUT_MS_DEFAULT,
            authority_threshold_min: 1,
            observers: Vec::new(),
            jurisdictions: Default::default(),
            chain_id: CHAIN.into(),
            hash_algorithm: HashAlgorithm::Sha256,
            genesis_time_ms: 0,
            validators: vec![GenesisValidator {
                id: id("v"),
                public_key: key("v").public_key(),
                network_key: None,
            }],
            regulators: BTreeSet::from([id("regulator")]),
            currencies: vec![currency("CNY", "pboc"), currency("THB", "bot")],
            accounts: vec![
                account("pboc", &[]),
                account("bot", &[]),
                account("regulator", &[]),
                account("oracle-a", &[]),
                account("oracle-b", &[]),
                account("oracle-c", &[]),
                account("bank-th", &[("THB", "10000")]),
                account("bank-cn", &[("CNY", "50")]),
                account("importer@bank-cn", &[("CNY", "1000")]),
                account("exporter@bank-th", &[]),
            ],
            fx: Some(GenesisFx {
                rate_providers: ["oracle-a", "oracle-b", "oracle-c"].into_iter().map(id).collect(),
                liquidity_providers: BTreeMap::from([(id("bank-th"), 25), (id("bank-cn"), 25)]),
                staleness_ms: STALENESS_MS,
                rates: vec![
                    post("oracle-a", "4.9"),
                    post("oracle-b", "5.1"),
                    post("oracle-c", "4.95"),
                ],
            }),
        };
        genesis.validate().expect("valid genesis");
        let state = genesis
            .state()
            .expect("state")
            .into_iter()
            .map(|(k, v)| (k, v.expect("genesis writes values")))
            .collect();
        Ledger {
            state,
            config: genesis.config().expect("config"),
            height: 0,
            nonces: BTreeMap::new(),
        }
    }

    impl Ledger {
        fn tx(&mut self, sender: &str, operation: Operation) -> SignedTransaction {
            let nonce = self.nonces.entry(sender.to_owned()).or_default();
            let tx =
                Transaction::new(self.config.genesis_hash, id(sender), *nonce, u64::MAX, operation).sign(&key(sender));
            *nonce += 1;
            tx
        }

        /// One block at `time_ms`; returns each transaction's outcome and events.
        fn block(&mut self, time_ms: u64, txs: Vec<SignedTransaction>) -> Vec<(Option<ErrorCode>, Vec<Event>)> {
            self.height += 1;
            let hashes: Vec<Hash> = txs.iter().map(|t| t.hash(HashAlgorithm::Sha256)).collect();
            let block = crate::ledger::test_block(CHAIN, self.height, time_ms, txs);
            let output = execute_block(
                &self.state,
                &self.config,
                &block,
                &hashes,
                &vec![Precheck::default(); hashes.len()],
            );
            for (key, value) in output.writes {
                match value {
                    Some(value) => self.state.insert(key, value),
                    None => self.state.remove(&key),
                };
            }
            self.assert_whole_state_conserves();
            output
                .receipts
                .into_iter()
                .map(|r| match r.outcome {
                    Outcome::Success => (None, r.events),
                    Outcome::Failed { code, .. } => (Some(code), r.events),
                })
                .collect()
        }

        fn balance(&self, account: &str, currency: &str) -> Amount {
            let bytes = self
                .state
                .get(&StateKey::Account(id(account)).to_bytes())
                .expect("account");
            super::super::execute::decode_state::<super::super::AccountRecord>(bytes).balance(&code(currency))
        }

        fn lock(&self, lock_id: u64) -> FxLockRecord {
            let bytes = self.state.get(&StateKey::FxLock(lock_id).to_bytes()).expect("lock");
            super::super::execute::decode_state(bytes)
        }

        /// Balances plus FX reservations equal supply, currency by currency, over the whole state.
        fn assert_whole_state_conserves(&self) {
            let mut totals: BTreeMap<CurrencyCode, Amount> = BTreeMap::new();
            let mut supplies: BTreeMap<CurrencyCode, Amount> = BTreeMap::new();
            for (key, value) in &self.state {
                let mut add = |code: CurrencyCode, amount: Amount| {
                    let total = totals.entry(code).or_default();
                    *total = total.checked_add(amount).expect("exact");
                };
                if key.starts_with(b"a\0") {
                    let record: super::super::AccountRecord = super::super::execute::decode_state(value);
                    record.balances.into_iter().for_each(|(c, a)| add(c, a));
                } else if key.starts_with(b"c\0") {
                    let record: super::super::CurrencyRecord = super::super::execute::decode_state(value);
                    supplies.insert(
                        CurrencyCode::new(std::str::from_utf8(&key[2..]).expect("utf8")).expect("code"),
                        record.supply,
                    );
                }
                super::super::held(key, value).into_iter().for_each(|(c, a)| add(c, a));
            }
            for (currency, supply) in supplies {
                assert_eq!(totals.get(&currency).copied().unwrap_or_default(), supply, "{currency}");
            }
        }
    }

    fn lock_op(sell_amount: &str, window_ms: u64) -> Operation {
        lock_with("bank-th", "CNY", "THB", sell_amount, window_ms, None)
    }

    fn lock_with(
        provider: &str,
        sell: &str,
        buy: &str,
        sell_amount: &str,
        window_ms: u64,
        rate_min: Option<&str>,
    ) -> Operation {
        Operation::FxLock {
            provider: id(provider),
            sell: code(sell),
            buy: code(buy),
            sell_amount: amount(sell_amount),
            window_ms,
            rate_min: rate_min.map(|r| Rate::parse(r).expect("rate")),
        }
    }

    fn locked_id(events: &[Event]) -> u64 {
        match events.first() {
            Some(Event::FxLocked { lock_id, .. }) => *lock_id,
            other => panic!("no lock event: {other:?}"),
        }
    }

    #[test]
    fn lock_then_settle_moves_both_legs_at_the_locked_rate_even_after_the_oracle_moves() {
        let mut ledger = ledger();
        let lock = ledger.tx("importer@bank-cn", lock_op("100.01", 5_000));
        let result = ledger.block(1_000, vec![lock]);
        assert_eq!(result[0].0, None);
        let lock_id = locked_id(&result[0].1);
        // Median of 4.9, 4.95, 5.1 is 4.95; less 25 bps = 4.937625; 100.01 × that = 493.8168...
        let record = ledger.lock(lock_id);
        assert_eq!(record.rate, Rate::parse("4.937625").expect("rate"));
        assert_eq!(record.buy_amount, amount("493.81"));
        assert_eq!(ledger.balance("bank-th", "THB"), amount("9506.19"), "reserved at once");
        // The oracle moves: two providers post far lower rates.
        let posts = vec![
            ledger.tx(
                "oracle-a",
                Operation::FxPostRate {
                    sell: code("CNY"),
                    buy: code("THB"),
                    rate: Rate::parse("3").expect("r"),
                },
            ),
            ledger.tx(
                "oracle-b",
                Operation::FxPostRate {
                    sell: code("CNY"),
                    buy: code("THB"),
                    rate: Rate::parse("3.1").expect("r"),
                },
            ),
        ];
        assert!(ledger.block(2_000, posts).iter().all(|(code, _)| code.is_none()));
        let settle = ledger.tx(
            "importer@bank-cn",
            Operation::FxSettle {
                lock_id,
                to: id("exporter@bank-th"),
            },
        );
        let result = ledger.block(6_000, vec![settle]);
        assert_eq!(result[0].0, None, "settles at the expiry instant");
        assert_eq!(ledger.balance("exporter@bank-th", "THB"), amount("493.81"));
        assert_eq!(ledger.balance("importer@bank-cn", "CNY"), amount("899.99"));
        assert_eq!(ledger.balance("bank-th", "CNY"), amount("100.01"));
        assert_eq!(
            ledger.balance("bank-th", "THB"),
            amount("9506.19"),
            "the rounding remainder stays"
        );
        assert_eq!(ledger.lock(lock_id).status, LockStatus::Settled);
        let again = ledger.tx(
            "importer@bank-cn",
            Operation::FxSettle {
                lock_id,
                to: id("exporter@bank-th"),
            },
        );
        assert_eq!(ledger.block(6_500, vec![again])[0].0, Some(ErrorCode::FxLockNotOpen));
    }

    #[test]
    fn an_expired_lock_cannot_settle_and_its_reservation_returns() {
        let mut ledger = ledger();
        let lock = ledger.tx("importer@bank-cn", lock_op("10", 1_000));
        let lock_id = locked_id(&ledger.block(1_000, vec![lock])[0].1);
        assert_eq!(ledger.balance("bank-th", "THB"), amount("9950.63"));
        // The block at 2_001 first releases the lock, then refuses the settle.
        let settle = ledger.tx(
            "importer@bank-cn",
            Operation::FxSettle {
                lock_id,
                to: id("importer@bank-cn"),
            },
        );
        let result = ledger.block(2_001, vec![settle]);
        assert_eq!(result[0].0, Some(ErrorCode::FxLockExpired));
        assert_eq!(ledger.lock(lock_id).status, LockStatus::Released);
        assert_eq!(ledger.balance("bank-th", "THB"), amount("10000"));
        assert_eq!(ledger.balance("importer@bank-cn", "CNY"), amount("1000"));
    }

    #[test]
    fn refusals_have_codes_and_change_nothing() {
        let mut ledger = ledger();
        let before = ledger.state.clone();
        let txs = vec![
            ledger.tx(
                "importer@bank-cn",
                Operation::FxPostRate {
                    sell: code("CNY"),
                    buy: code("THB"),
                    rate: Rate::parse("1").expect("r"),
                },
            ),
            ledger.tx("importer@bank-cn", lock_op("1000000", 1_000)),
            ledger.tx(
                "importer@bank-cn",
                lock_with("exporter@bank-th", "CNY", "THB", "1", 1_000, None),
            ),
            ledger.tx("importer@bank-cn", lock_with("bank-cn", "THB", "CNY", "1", 1_000, None)),
            ledger.tx(
                "importer@bank-cn",
                lock_with("bank-th", "CNY", "THB", "1", 1_000, Some("5")),
            ),
            ledger.tx("importer@bank-cn", lock_op("0.001", 1_000)),
            ledger.tx(
                "importer@bank-cn",
                Operation::FxSettle {
                    lock_id: 99,
                    to: id("importer@bank-cn"),
                },
            ),
        ];
        let codes: Vec<_> = ledger.block(1_000, txs).into_iter().map(|(code, _)| code).collect();
        assert_eq!(
            codes,
            vec![
                Some(ErrorCode::NotRateProvider),
                Some(ErrorCode::InsufficientLiquidity),
                Some(ErrorCode::NotLiquidityProvider),
                Some(ErrorCode::FxNoRate), // no THB/CNY posts at all
                Some(ErrorCode::FxRateBelowMin),
                Some(ErrorCode::AmountScale),
                Some(ErrorCode::UnknownFxLock),
            ]
        );
        let mut after = ledger.state.clone();
        // Only the importer's nonce moved.
        let importer = StateKey::Account(id("importer@bank-cn")).to_bytes();
        after.insert(importer.clone(), before[&importer].clone());
        assert_eq!(after, before);
    }

    #[test]
    fn stale_posts_leave_the_median_and_then_the_pair_has_no_rate() {
        let mut ledger = ledger();
        let post = ledger.tx(
            "oracle-a",
            Operation::FxPostRate {
                sell: code("CNY"),
                buy: code("THB"),
                rate: Rate::parse("6").expect("r"),
            },
        );
        assert_eq!(ledger.block(STALENESS_MS - 1, vec![post])[0].0, None);
        // At STALENESS_MS + 1 only oracle-a's new post (6) is fresh: the quote is 6 less 25 bps.
        let lock = ledger.tx("importer@bank-cn", lock_op("1", 1_000));
        let result = ledger.block(STALENESS_MS + 1, vec![lock]);
        assert_eq!(
            ledger.lock(locked_id(&result[0].1)).rate,
            Rate::parse("5.985").expect("r")
        );
        let late = ledger.tx("importer@bank-cn", lock_op("1", 1_000));
        assert_eq!(
            ledger.block(2 * STALENESS_MS, vec![late])[0].0,
            Some(ErrorCode::FxNoRate)
        );
    }

    #[test]
    fn settle_needs_the_payer_and_the_payers_funds() {
        let mut ledger = ledger();
        let lock = ledger.tx("importer@bank-cn", lock_op("1000", 5_000));
        let lock_id = locked_id(&ledger.block(1_000, vec![lock])[0].1);
        let drain = ledger.tx(
            "importer@bank-cn",
            Operation::transfer(id("bank-cn"), code("CNY"), amount("1"), None),
        );
        let stranger = ledger.tx(
            "bank-cn",
            Operation::FxSettle {
                lock_id,
                to: id("bank-cn"),
            },
        );
        let broke = ledger.tx(
            "importer@bank-cn",
            Operation::FxSettle {
                lock_id,
                to: id("importer@bank-cn"),
            },
        );
        let codes: Vec<_> = ledger
            .block(2_000, vec![drain, stranger, broke])
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(
            codes,
            vec![None, Some(ErrorCode::NotLockPayer), Some(ErrorCode::InsufficientFunds)]
        );
        assert_eq!(
            ledger.lock(lock_id).status,
            LockStatus::Open,
            "still settleable until expiry"
        );
    }
}
