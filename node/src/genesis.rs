//! Genesis: the chain's first state, from a JSON file, and the demo genesis of `corridord dev`.

use crate::ledger::fx::{FxConfigRecord, FxPairRecord, RatePost};
use crate::ledger::records::Validator;
use crate::ledger::{AccountRecord, ChainConfig, CurrencyRecord, StateKey, StateWrites};
use corridor_sdk::crypto::{PrivateKey, PublicKey, Scheme};
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::fx::Rate;
use corridor_sdk::{AccountId, Amount, BlockHeader, CurrencyCode, Hash, HashAlgorithm, codec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Bytes of a genesis file.
pub const GENESIS_BYTES_MAX: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisCurrency {
    pub code: CurrencyCode,
    pub scale: u32,
    pub issuer: AccountId,
    pub transfer_limit: Option<Amount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    pub id: AccountId,
    pub public_key: PublicKey,
    #[serde(default)]
    pub balances: BTreeMap<CurrencyCode, Amount>,
    /// Keys besides `public_key` that may sign for the account (ADR 0043).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_keys: Vec<PublicKey>,
    /// How many of its keys must sign each transaction.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub threshold: u8,
}

impl GenesisAccount {
    /// An account with one key and a threshold of one.
    pub fn new(id: AccountId, public_key: PublicKey, balances: BTreeMap<CurrencyCode, Amount>) -> GenesisAccount {
        GenesisAccount {
            id,
            public_key,
            balances,
            more_keys: Vec::new(),
            threshold: 1,
        }
    }

    /// Every key of the account, `public_key` first.
    pub fn keys(&self) -> impl Iterator<Item = &PublicKey> {
        std::iter::once(&self.public_key).chain(&self.more_keys)
    }

    fn signer_set(&self) -> corridor_sdk::proof::SignerSet {
        corridor_sdk::proof::SignerSet {
            keys: self.keys().cloned().collect(),
            threshold: self.threshold,
        }
    }
}

fn one() -> u8 {
    1
}

fn is_one(value: &u8) -> bool {
    *value == 1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    pub id: AccountId,
    /// The consensus key (Ed25519 or SM2).
    pub public_key: PublicKey,
    /// The node's Ed25519 network key: its libp2p identity. Needed when there are peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_key: Option<PublicKey>,
}

/// A node that follows the chain without a vote (a regulator's, say): it may connect to the
/// validators with this network key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisObserver {
    pub name: String,
    pub network_key: PublicKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub chain_id: String,
    pub hash_algorithm: HashAlgorithm,
    pub genesis_time_ms: u64,
    pub validators: Vec<GenesisValidator>,
    #[serde(default)]
    pub regulators: BTreeSet<AccountId>,
    pub currencies: Vec<GenesisCurrency>,
    pub accounts: Vec<GenesisAccount>,
    /// Each institution's jurisdiction: the central bank whose freezes reach it and its
    /// customers. An institution without one can be frozen by regulators only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub jurisdictions: BTreeMap<AccountId, AccountId>,
    /// FX rate providers, liquidity providers and initial rates; none means no FX.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fx: Option<GenesisFx>,
    /// How far ahead of a validator's clock a proposal's time may be; a proposer whose clock
    /// runs further ahead gets no votes, and the next view's leader proposes instead.
    #[serde(default = "block_time_drift_ms_max_default")]
    pub block_time_drift_ms_max: u64,
    /// Observer nodes allowed on the network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observers: Vec<GenesisObserver>,
    /// The consensus timeouts' base (leader 1x, notarization and finalization 2x), before
    /// the back-off each validator learns.
    #[serde(default = "consensus_timeout_ms_default")]
    pub consensus_timeout_ms: u64,
    /// The fewest signatures a regulator's or central bank's transaction needs (mint, burn,
    /// freeze, registrations): their accounts' thresholds start and stay at or above it, so one
    /// stolen officer key moves nothing (ADR 0043).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub authority_threshold_min: u8,
}

/// Default bound on a proposal's time ahead of a validator's clock.
pub const BLOCK_TIME_DRIFT_MS_MAX_DEFAULT: u64 = 5_000;
/// Largest base of the consensus timeouts.
pub const CONSENSUS_TIMEOUT_MS_MAX: u64 = 60_000;
/// Default base of the consensus timeouts.
pub const CONSENSUS_TIMEOUT_MS_DEFAULT: u64 = 1_000;

fn block_time_drift_ms_max_default() -> u64 {
    BLOCK_TIME_DRIFT_MS_MAX_DEFAULT
}

fn consensus_timeout_ms_default() -> u64 {
    CONSENSUS_TIMEOUT_MS_DEFAULT
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFx {
    /// Accounts that may post rates.
    pub rate_providers: BTreeSet<AccountId>,
    /// Liquidity providers and their spreads in basis points below the oracle rate.
    pub liquidity_providers: BTreeMap<AccountId, u32>,
    /// How long (block time) a post stays fresh for the oracle.
    pub staleness_ms: u64,
    /// Posts in force at genesis, as if posted at `genesis_time_ms`.
    #[serde(default)]
    pub rates: Vec<GenesisRate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisRate {
    pub provider: AccountId,
    pub sell: CurrencyCode,
    pub buy: CurrencyCode,
    pub rate: Rate,
}

fn invalid(message: String) -> Error {
    Error::new(ErrorCode::BadRequest, format!("genesis: {message}"))
}

impl Genesis {
    pub fn from_json(bytes: &[u8]) -> Result<Genesis, Error> {
        if bytes.len() > GENESIS_BYTES_MAX {
            return Err(invalid(format!("over {GENESIS_BYTES_MAX} bytes")));
        }
        let genesis: Genesis = serde_json::from_slice(bytes).map_err(|error| invalid(error.to_string()))?;
        genesis.validate()?;
        Ok(genesis)
    }

    pub fn read(path: &Path) -> Result<Genesis, Error> {
        let bytes = std::fs::read(path)
            .map_err(|error| Error::new(ErrorCode::NotFound, format!("cannot read {}: {error}", path.display())))?;
        Genesis::from_json(&bytes)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("genesis serializes")
    }

    /// Network keys are Ed25519 and unique; with more than one validator every validator has
    /// one (its peers must know whom to accept).
    fn validate_network_keys(&self) -> Result<(), Error> {
        let keys: Vec<&PublicKey> = self
            .validators
            .iter()
            .filter_map(|v| v.network_key.as_ref())
            .chain(self.observers.iter().map(|o| &o.network_key))
            .collect();
        if keys.iter().any(|key| key.scheme() != Scheme::Ed25519) {
            return Err(invalid("network keys are Ed25519 (libp2p identities)".into()));
        }
        if keys.iter().collect::<BTreeSet<_>>().len() != keys.len() {
            return Err(invalid("a network key appears twice".into()));
        }
        let networked = self.validators.len() > 1 || !self.observers.is_empty();
        if networked && self.validators.iter().any(|v| v.network_key.is_none()) {
            return Err(invalid(
                "every validator needs a network_key when there are peers".into(),
            ));
        }
        let names: BTreeSet<&String> = self.observers.iter().map(|o| &o.name).collect();
        if names.len() != self.observers.len() || names.iter().any(|name| name.is_empty() || name.len() > 64) {
            return Err(invalid("observer names are 1 to 64 bytes and unique".into()));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.chain_id.is_empty() || self.chain_id.len() > corridor_sdk::limits::CHAIN_ID_BYTES_MAX {
            return Err(invalid("chain_id is empty or too long".into()));
        }
        if self.validators.is_empty() || self.validators.len() > corridor_consensus::limits::VALIDATORS_MAX {
            return Err(invalid(format!(
                "1 to {} validators are needed",
                corridor_consensus::limits::VALIDATORS_MAX
            )));
        }
        let validator_ids: BTreeSet<&AccountId> = self.validators.iter().map(|v| &v.id).collect();
        let validator_keys: BTreeSet<&PublicKey> = self.validators.iter().map(|v| &v.public_key).collect();
        if validator_ids.len() != self.validators.len() || validator_keys.len() != self.validators.len() {
            return Err(invalid("a validator id or key appears twice".into()));
        }
        self.validate_network_keys()?;
        if self.consensus_timeout_ms == 0 || self.consensus_timeout_ms > CONSENSUS_TIMEOUT_MS_MAX {
            return Err(invalid(format!(
                "consensus_timeout_ms must be 1 to {CONSENSUS_TIMEOUT_MS_MAX}"
            )));
        }
        let ids: BTreeSet<&AccountId> = self.accounts.iter().map(|a| &a.id).collect();
        if ids.len() != self.accounts.len() {
            return Err(invalid("an account id appears twice".into()));
        }
        let keys: BTreeSet<&PublicKey> = self.accounts.iter().flat_map(GenesisAccount::keys).collect();
        if keys.len() != self.accounts.iter().map(|a| a.keys().count()).sum::<usize>() {
            return Err(invalid("a public key is listed twice or used by two accounts".into()));
        }
        for account in &self.accounts {
            corridor_sdk::tx::check_signer_set(account.keys().collect::<Vec<_>>().into_iter(), account.threshold)
                .map_err(|error| invalid(format!("{}: {}", account.id, error.message)))?;
        }
        if self.authority_threshold_min == 0
            || usize::from(self.authority_threshold_min) > corridor_sdk::limits::SIGNERS_MAX
        {
            return Err(invalid(format!(
                "authority_threshold_min must be 1 to {}",
                corridor_sdk::limits::SIGNERS_MAX
            )));
        }
        let authorities: BTreeSet<&AccountId> = self
            .regulators
            .iter()
            .chain(self.currencies.iter().map(|c| &c.issuer))
            .collect();
        for account in self.accounts.iter().filter(|a| authorities.contains(&a.id)) {
            if account.threshold < self.authority_threshold_min {
                return Err(invalid(format!(
                    "{} is an authority: its threshold {} is below authority_threshold_min {}",
                    account.id, account.threshold, self.authority_threshold_min
                )));
            }
        }
        for key in self
            .accounts
            .iter()
            .flat_map(GenesisAccount::keys)
            .chain(self.validators.iter().map(|v| &v.public_key))
        {
            key.check_torsion_free()
                .map_err(|error| invalid(format!("{key}: {}", error.message)))?;
        }
        for account in &self.accounts {
            if let Some(sponsor) = account.id.sponsor()
                && !ids.contains(&sponsor)
            {
                return Err(invalid(format!("{} has no sponsor account {sponsor}", account.id)));
            }
        }
        for regulator in &self.regulators {
            if !ids.contains(regulator) {
                return Err(invalid(format!("regulator {regulator} has no account")));
            }
        }
        let issuers: BTreeSet<&AccountId> = self.currencies.iter().map(|c| &c.issuer).collect();
        for (institution, central_bank) in &self.jurisdictions {
            if institution.sponsor().is_some() || !ids.contains(institution) {
                return Err(invalid(format!(
                    "jurisdiction of {institution}: not an institution with an account"
                )));
            }
            if !issuers.contains(central_bank) {
                return Err(invalid(format!(
                    "jurisdiction of {institution}: {central_bank} issues no currency"
                )));
            }
        }
        let mut codes = BTreeSet::new();
        for currency in &self.currencies {
            if !codes.insert(&currency.code) {
                return Err(invalid(format!("currency {} appears twice", currency.code)));
            }
            if currency.scale > corridor_sdk::limits::CURRENCY_SCALE_MAX {
                return Err(invalid(format!(
                    "{} scale over {}",
                    currency.code,
                    corridor_sdk::limits::CURRENCY_SCALE_MAX
                )));
            }
            if !ids.contains(&currency.issuer) {
                return Err(invalid(format!(
                    "issuer {} of {} has no account",
                    currency.issuer, currency.code
                )));
            }
            if let Some(limit) = currency.transfer_limit
                && (!limit.is_positive() || !limit.fits_scale(currency.scale))
            {
                return Err(invalid(format!(
                    "transfer limit of {} must be positive and fit its scale",
                    currency.code
                )));
            }
        }
        for account in &self.accounts {
            for (code, amount) in &account.balances {
                let currency = self
                    .currencies
                    .iter()
                    .find(|c| &c.code == code)
                    .ok_or_else(|| invalid(format!("{} holds unknown currency {code}", account.id)))?;
                if amount.decimal().is_sign_negative() || !amount.fits_scale(currency.scale) {
                    return Err(invalid(format!(
                        "balance {amount} {code} of {} is negative or over scale",
                        account.id
                    )));
                }
            }
        }
        if let Some(fx) = &self.fx {
            self.validate_fx(fx, &ids)?;
        }
        Ok(())
    }

    fn validate_fx(&self, fx: &GenesisFx, ids: &BTreeSet<&AccountId>) -> Result<(), Error> {
        use corridor_sdk::fx::SPREAD_BPS_WHOLE;
        use corridor_sdk::limits::FX_PROVIDERS_MAX;
        if fx.rate_providers.len() > FX_PROVIDERS_MAX || fx.liquidity_providers.len() > FX_PROVIDERS_MAX {
            return Err(invalid(format!(
                "at most {FX_PROVIDERS_MAX} rate and liquidity providers"
            )));
        }
        for provider in fx.rate_providers.iter().chain(fx.liquidity_providers.keys()) {
            if !ids.contains(provider) {
                return Err(invalid(format!("FX provider {provider} has no account")));
            }
        }
        if let Some((provider, spread)) = fx.liquidity_providers.iter().find(|(_, s)| **s >= SPREAD_BPS_WHOLE) {
            return Err(invalid(format!(
                "{provider}'s spread {spread} bps is not below {SPREAD_BPS_WHOLE}"
            )));
        }
        let known = |code: &CurrencyCode| self.currencies.iter().any(|c| &c.code == code);
        for post in &fx.rates {
            if !fx.rate_providers.contains(&post.provider) {
                return Err(invalid(format!(
                    "{} posts a rate but is not a rate provider",
                    post.provider
                )));
            }
            if !known(&post.sell) || !known(&post.buy) || post.sell == post.buy || !post.rate.is_valid() {
                return Err(invalid(format!(
                    "rate {}/{} {} is not valid",
                    post.sell, post.buy, post.rate
                )));
            }
        }
        Ok(())
    }

    /// The chain's settings, with the genesis hash.
    pub(crate) fn config(&self) -> Result<ChainConfig, Error> {
        Ok(ChainConfig {
            genesis_hash: self.hash()?,
            ..self.config_record()
        })
    }

    /// The settings as the state stores them (without the genesis hash, which commits to them).
    fn config_record(&self) -> ChainConfig {
        ChainConfig {
            chain_id: self.chain_id.clone(),
            genesis_hash: Hash::ZERO,
            hash_algorithm: self.hash_algorithm,
            validators: self
                .validators
                .iter()
                .map(|v| Validator {
                    id: v.id.clone(),
                    public_key: v.public_key.clone(),
                })
                .collect(),
            regulators: self.regulators.clone(),
            issuers: self.currencies.iter().map(|c| c.issuer.clone()).collect(),
            jurisdictions: self.jurisdictions.clone(),
            authority_threshold_min: self.authority_threshold_min,
        }
    }

    /// Block 0's header over the genesis state's root. Its hash is the genesis hash (ADR 0042):
    /// it commits to the chain id, the genesis time, the hash algorithm, the first validator
    /// and, through the root, every record genesis writes (config with the validator set,
    /// regulators and jurisdictions; accounts and their keys and balances; currencies; FX).
    pub(crate) fn header(&self, state_root: Hash) -> BlockHeader {
        BlockHeader {
            version: corridor_sdk::block::BLOCK_VERSION,
            chain_id: self.chain_id.clone(),
            height: 0,
            parent_hash: Hash::ZERO,
            timestamp_ms: self.genesis_time_ms,
            proposer: self.validators[0].id.clone(),
            tx_count: 0,
            txs_root: Hash::ZERO,
            state_root,
            state_height: 0,
        }
    }

    /// The genesis hash: the hash of block 0's header (`header`), what every transaction,
    /// key proof and signed request binds.
    pub fn hash(&self) -> Result<Hash, Error> {
        let mut tree = crate::ledger::merkle::SparseMerkleTree::new(self.hash_algorithm);
        let changes = self
            .state()?
            .iter()
            .map(|(k, v)| (tree.key_hash(k), v.as_ref().map(|v| tree.value_hash(v))))
            .collect();
        tree.update(changes);
        Ok(self.header(tree.root()).hash(self.hash_algorithm))
    }

    /// The genesis state as sorted (key, value) writes.
    pub(crate) fn state(&self) -> Result<StateWrites, Error> {
        let mut writes = BTreeMap::new();
        writes.insert(StateKey::Config.to_bytes(), codec::encode(&self.config_record()));
        let mut supplies: BTreeMap<&CurrencyCode, Amount> = BTreeMap::new();
        for account in &self.accounts {
            let mut record = AccountRecord::new(account.public_key.clone());
            for (code, amount) in &account.balances {
                record.set_balance(code, *amount);
                let supply = supplies.entry(code).or_default();
                *supply = supply
                    .checked_add(*amount)
                    .ok_or_else(|| invalid(format!("{code} supply overflows")))?;
            }
            writes.insert(StateKey::Account(account.id.clone()).to_bytes(), codec::encode(&record));
            for key in account.keys() {
                writes.insert(StateKey::KeyOwner(key.clone()).to_bytes(), codec::encode(&account.id));
            }
            let signers = account.signer_set();
            if !signers.is_single() {
                writes.insert(
                    StateKey::Signers(account.id.clone()).to_bytes(),
                    codec::encode(&signers),
                );
            }
        }
        for currency in &self.currencies {
            let record = CurrencyRecord {
                scale: currency.scale,
                issuer: currency.issuer.clone(),
                supply: supplies.get(&currency.code).copied().unwrap_or_default(),
                transfer_limit: currency.transfer_limit,
            };
            if record.supply > Amount::supply_max(record.scale) {
                let cap = Amount::supply_max(record.scale);
                return Err(invalid(format!("{} supply exceeds its cap of {cap}", currency.code)));
            }
            writes.insert(
                StateKey::Currency(currency.code.clone()).to_bytes(),
                codec::encode(&record),
            );
        }
        if let Some(fx) = &self.fx {
            let config = FxConfigRecord {
                rate_providers: fx.rate_providers.clone(),
                liquidity_providers: fx.liquidity_providers.clone(),
                staleness_ms: fx.staleness_ms,
            };
            let mut pairs: BTreeMap<(CurrencyCode, CurrencyCode), FxPairRecord> = BTreeMap::new();
            for post in &fx.rates {
                let pair = pairs.entry((post.sell.clone(), post.buy.clone())).or_default();
                let rate_post = RatePost {
                    rate: post.rate,
                    posted_at_ms: self.genesis_time_ms,
                };
                if pair.posts.insert(post.provider.clone(), rate_post).is_some() {
                    return Err(invalid(format!(
                        "{} posts {}/{} twice",
                        post.provider, post.sell, post.buy
                    )));
                }
            }
            writes.extend(crate::ledger::fx::genesis_writes(&config, &pairs));
        }
        Ok(writes.into_iter().map(|(key, value)| (key, Some(value))).collect())
    }
}

/// The dev chain's cast: (account, scheme, home currency to fund it in).
const DEV_CENTRAL_BANKS: [(&str, &str); 4] = [("pboc", "CNY"), ("hkma", "HKD"), ("bot", "THB"), ("cbuae", "AED")];
const DEV_BANKS: [(&str, &str); 4] = [
    ("icbc-cn", "CNY"),
    ("boc-hk", "HKD"),
    ("kbank-th", "THB"),
    ("enbd-ae", "AED"),
];
const DEV_CORPORATES: [(&str, &str); 4] = [
    ("acme@icbc-cn", "CNY"),
    ("harbour@boc-hk", "HKD"),
    ("siam-rice@kbank-th", "THB"),
    ("gulf-trade@enbd-ae", "AED"),
];
pub const DEV_CHAIN_ID: &str = "corridor-dev";
pub const DEV_VALIDATOR: &str = "validator-0";
const DEV_BANK_FUNDS: u64 = 1_000_000_000;
const DEV_CORPORATE_FUNDS: u64 = 1_000_000;
/// Single transfers above this are refused by the compliance hook, in every dev currency.
const DEV_TRANSFER_LIMIT: u64 = 100_000_000;

fn id(text: &str) -> AccountId {
    AccountId::new(text).expect("dev account ids are valid")
}

/// Build the demo genesis, writing each account's key to `<keys_dir>/<account>.key`.
/// `acme@icbc-cn` signs with SM2; everyone else with Ed25519.
pub fn dev_genesis(keys_dir: &Path, genesis_time_ms: u64) -> Result<Genesis, Error> {
    let mut accounts = Vec::new();
    let new_key = |account: &str| -> Result<PublicKey, Error> {
        let scheme = if account == "acme@icbc-cn" {
            Scheme::Sm2
        } else {
            Scheme::Ed25519
        };
        let key = PrivateKey::generate(scheme)?;
        let path = keys_dir.join(format!("{account}.key"));
        key.write_file(&path).map_err(|error| {
            Error::new(
                ErrorCode::Unavailable,
                format!("cannot write {}: {error}", path.display()),
            )
        })?;
        Ok(key.public_key())
    };
    let funded = |currency: &str, units: u64| {
        BTreeMap::from([(CurrencyCode::new(currency).expect("dev code"), Amount::from(units))])
    };
    for (account, _) in DEV_CENTRAL_BANKS {
        accounts.push(GenesisAccount {
            id: id(account),
            public_key: new_key(account)?,
            balances: BTreeMap::new(),
            more_keys: Vec::new(),
            threshold: 1,
        });
    }
    for (account, currency) in DEV_BANKS {
        accounts.push(GenesisAccount {
            id: id(account),
            public_key: new_key(account)?,
            balances: funded(currency, DEV_BANK_FUNDS),
            more_keys: Vec::new(),
            threshold: 1,
        });
    }
    for (account, currency) in DEV_CORPORATES {
        accounts.push(GenesisAccount {
            id: id(account),
            public_key: new_key(account)?,
            balances: funded(currency, DEV_CORPORATE_FUNDS),
            more_keys: Vec::new(),
            threshold: 1,
        });
    }
    accounts.push(GenesisAccount {
        id: id("regulator"),
        public_key: new_key("regulator")?,
        balances: BTreeMap::new(),
        more_keys: Vec::new(),
        threshold: 1,
    });
    let validator_key = new_key(DEV_VALIDATOR)?;
    let currencies = DEV_CENTRAL_BANKS
        .iter()
        .map(|(bank, code)| GenesisCurrency {
            code: CurrencyCode::new(code).expect("dev code"),
            scale: 2,
            issuer: id(bank),
            transfer_limit: Some(Amount::from(DEV_TRANSFER_LIMIT)),
        })
        .collect();
    let genesis = Genesis {
        chain_id: DEV_CHAIN_ID.into(),
        hash_algorithm: HashAlgorithm::Sha256,
        genesis_time_ms,
        validators: vec![GenesisValidator {
            id: id(DEV_VALIDATOR),
            public_key: validator_key,
            network_key: None,
        }],
        regulators: BTreeSet::from([id("regulator")]),
        block_time_drift_ms_max: BLOCK_TIME_DRIFT_MS_MAX_DEFAULT,
        observers: Vec::new(),
        consensus_timeout_ms: CONSENSUS_TIMEOUT_MS_DEFAULT,
        authority_threshold_min: 1,
        currencies,
        accounts,
        // Each commercial bank answers to the central bank of its home currency.
        jurisdictions: DEV_BANKS
            .iter()
            .zip(DEV_CENTRAL_BANKS)
            .map(|((bank, bank_currency), (central_bank, currency))| {
                assert_eq!(*bank_currency, currency, "DEV_BANKS and DEV_CENTRAL_BANKS align");
                (id(bank), id(central_bank))
            })
            .collect(),
        fx: Some(dev_fx()),
    };
    genesis.validate()?;
    Ok(genesis)
}

/// Reference rates of the dev chain, one `sell` in `buy`, posted at genesis by two providers
/// (the second a little higher, so the oracle is the first: the lower median of two).
const DEV_RATES: [(&str, &str, &str); 12] = [
    ("CNY", "HKD", "1.09"),
    ("CNY", "THB", "4.9"),
    ("CNY", "AED", "0.51"),
    ("HKD", "CNY", "0.9174"),
    ("HKD", "THB", "4.5"),
    ("HKD", "AED", "0.47"),
    ("THB", "CNY", "0.204"),
    ("THB", "HKD", "0.2222"),
    ("THB", "AED", "0.104"),
    ("AED", "CNY", "1.96"),
    ("AED", "HKD", "2.127"),
    ("AED", "THB", "9.615"),
];
/// The dev rate providers; the second posts `DEV_RATE_MARKUP` above the reference rate.
const DEV_RATE_PROVIDERS: [&str; 2] = ["icbc-cn", "boc-hk"];
const DEV_RATE_MARKUP: &str = "1.001";
/// Dev liquidity providers quote 25 basis points below the oracle rate.
const DEV_SPREAD_BPS: u32 = 25;
/// Dev posts stay fresh for a day of block time.
const DEV_RATE_STALENESS_MS: u64 = 24 * 60 * 60 * 1000;

fn dev_fx() -> GenesisFx {
    let code = |text: &str| CurrencyCode::new(text).expect("dev code");
    let rate = |text: &str| Rate::parse(text).expect("dev rate");
    let markup = Amount::parse(DEV_RATE_MARKUP).expect("dev markup");
    let mut rates = Vec::new();
    for (sell, buy, reference) in DEV_RATES {
        let reference = rate(reference);
        let higher = corridor_sdk::fx::multiply_down(reference.amount(), markup, corridor_sdk::fx::RATE_SCALE_MAX)
            .and_then(Rate::new)
            .expect("dev rates stay in range");
        for (provider, posted) in DEV_RATE_PROVIDERS.iter().zip([reference, higher]) {
            rates.push(GenesisRate {
                provider: id(provider),
                sell: code(sell),
                buy: code(buy),
                rate: posted,
            });
        }
    }
    GenesisFx {
        rate_providers: DEV_RATE_PROVIDERS.iter().map(|p| id(p)).collect(),
        liquidity_providers: DEV_BANKS.iter().map(|(bank, _)| (id(bank), DEV_SPREAD_BPS)).collect(),
        staleness_ms: DEV_RATE_STALENESS_MS,
        rates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> (tempfile::TempDir, Genesis) {
        let dir = tempfile::tempdir().expect("tempdir");
        let genesis = dev_genesis(dir.path(), 1_700_000_000_000).expect("dev genesis");
        (dir, genesis)
    }

    fn refusal(genesis: &Genesis) -> String {
        let error = genesis.validate().expect_err("refused");
        assert_eq!(error.code, ErrorCode::BadRequest);
        error.message
    }

    /// Two validators under one id, or one key behind two validators, would let one party
    /// count twice towards a quorum.
    #[test]
    fn duplicate_validator_ids_and_keys_are_refused() {
        let (_dir, genesis) = dev();
        let other = PrivateKey::from_seed(Scheme::Ed25519, [9; 32])
            .expect("seed")
            .public_key();

        let network_key = |seed: u8| {
            Some(
                PrivateKey::from_seed(Scheme::Ed25519, [seed; 32])
                    .expect("seed")
                    .public_key(),
            )
        };
        let mut genesis = genesis;
        genesis.validators[0].network_key = network_key(21);
        let mut same_id = genesis.clone();
        same_id.validators.push(GenesisValidator {
            id: genesis.validators[0].id.clone(),
            public_key: other.clone(),
            network_key: network_key(22),
        });
        assert!(refusal(&same_id).contains("validator id or key appears twice"));

        let mut same_key = genesis.clone();
        same_key.validators.push(GenesisValidator {
            id: id("validator-1"),
            public_key: genesis.validators[0].public_key.clone(),
            network_key: network_key(22),
        });
        assert!(refusal(&same_key).contains("validator id or key appears twice"));

        let mut distinct = genesis.clone();
        distinct.validators.push(GenesisValidator {
            id: id("validator-1"),
            public_key: other,
            network_key: network_key(22),
        });
        assert_eq!(distinct.validate(), Ok(()));
        // With peers, every validator needs a network key, and no two share one.
        let mut keyless = distinct.clone();
        keyless.validators[1].network_key = None;
        assert!(refusal(&keyless).contains("needs a network_key"));
        let mut shared = distinct.clone();
        shared.validators[1].network_key = network_key(21);
        assert!(refusal(&shared).contains("network key appears twice"));
    }

    /// The genesis hash is block 0's header hash, and that header carries the genesis state's
    /// root: any change to what genesis puts in the state changes the hash (ADR 0042).
    /// Adversary: a genesis that would hand one key to two accounts through a signer set,
    /// or let an authority start below the threshold genesis demands of authorities.
    #[test]
    fn signer_sets_and_authority_thresholds_are_checked() {
        let (_dir, genesis) = dev();
        let key = |seed: u8| {
            PrivateKey::from_seed(Scheme::Ed25519, [seed; 32])
                .expect("seed")
                .public_key()
        };
        let position = |genesis: &Genesis, name: &str| {
            genesis
                .accounts
                .iter()
                .position(|a| a.id == id(name))
                .expect("dev account")
        };
        let mut shared = genesis.clone();
        let pboc = position(&shared, "pboc");
        shared.accounts[pboc].more_keys = vec![shared.accounts[0].public_key.clone()];
        assert!(refusal(&shared).contains("listed twice or used by two accounts"));

        let mut impossible = genesis.clone();
        impossible.accounts[pboc].more_keys = vec![key(31)];
        impossible.accounts[pboc].threshold = 3;
        assert!(refusal(&impossible).contains("threshold must be 1 to the number of keys"));

        let mut demanding = genesis.clone();
        demanding.authority_threshold_min = 2;
        assert!(refusal(&demanding).contains("is an authority: its threshold 1 is below"));
        let authorities: Vec<AccountId> = demanding
            .regulators
            .iter()
            .cloned()
            .chain(demanding.currencies.iter().map(|c| c.issuer.clone()))
            .collect();
        for (seed, authority) in (40u8..).zip(&authorities) {
            let index = position(&demanding, authority.as_str());
            demanding.accounts[index].more_keys = vec![key(seed)];
            demanding.accounts[index].threshold = 2;
        }
        assert_eq!(demanding.validate(), Ok(()));
        // The threshold rule and each extra key are part of what the genesis hash commits to.
        assert_ne!(demanding.hash(), genesis.hash());
        let state = demanding.state().expect("state");
        let pboc = id("pboc");
        assert!(
            state
                .iter()
                .any(|(k, v)| k == &StateKey::Signers(pboc.clone()).to_bytes() && v.is_some())
        );
    }

    #[test]
    fn the_genesis_hash_commits_to_the_genesis_content() {
        let (_dir, genesis) = dev();
        let hash = genesis.hash().expect("hash");
        assert_eq!(genesis.hash(), Ok(hash), "deterministic");
        assert_eq!(genesis.config().map(|c| c.genesis_hash), Ok(hash));
        let header = genesis.header(Hash::ZERO);
        assert_ne!(
            header.hash(genesis.hash_algorithm),
            hash,
            "the state root is in the header"
        );

        let mut balance = genesis.clone();
        let acme = balance
            .accounts
            .iter_mut()
            .find(|a| a.id == id("acme@icbc-cn"))
            .expect("acme");
        let cny = CurrencyCode::new("CNY").expect("code");
        acme.balances.insert(cny, Amount::from(DEV_CORPORATE_FUNDS + 1));
        let mut regulators = genesis.clone();
        regulators.regulators.clear();
        let mut jurisdictions = genesis.clone();
        jurisdictions.jurisdictions.clear();
        let mut validator_order = genesis.clone();
        validator_order.validators.push(GenesisValidator {
            id: id("validator-1"),
            public_key: PrivateKey::from_seed(Scheme::Ed25519, [9; 32])
                .expect("seed")
                .public_key(),
            network_key: None,
        });
        let mut time = genesis.clone();
        time.genesis_time_ms += 1;
        let mut name = genesis.clone();
        name.chain_id = "corridor-dev-2".into();
        let mut algorithm = genesis.clone();
        algorithm.hash_algorithm = HashAlgorithm::Sm3;
        let changed = [
            balance,
            regulators,
            jurisdictions,
            validator_order,
            time,
            name,
            algorithm,
        ];
        let mut hashes = BTreeSet::from([hash]);
        for other in &changed {
            assert!(hashes.insert(other.hash().expect("hash")), "{other:?}");
        }

        // Another dev chain: new keys, so another hash, though the chain id is the same.
        let (_dir2, second) = dev();
        assert_eq!(second.chain_id, genesis.chain_id);
        assert_ne!(second.hash(), Ok(hash));
    }
}
