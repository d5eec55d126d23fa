//! Contract operations: deploy and call (ADR 0021, contracts/ABI.md).
//!
//! Rules this module keeps:
//! - Attached funds move from the caller to the contract's balance (through the compliance
//!   hook) before the call; the call's transfers leave only the contract's own balance and
//!   pass the compliance hook when the call commits.
//! - A call's effects (storage, balances, transfers, events) are committed only if the whole
//!   call succeeds; otherwise the transaction fails with a code and nothing but the nonce moves.
//! - Contract balances are money: conservation counts them (`held`).
//! - Contracts cannot call contracts, so there is no re-entrancy.
//! - An FX host call stops the run; the ledger answers it on the transaction (a lock or a
//!   settlement happens then), and the call runs again from the start with every answer so
//!   far, until it finishes (ADR 0045). The last run's fuel is the call's.

use super::compliance::{self, Movement, MovementKind};
use super::execute::{TxContext, check_scale, credit, debit};
use super::fx::{self, LockRequest, Payer};
use super::records::StateKey;
use crate::wasm::{self, CallEnv, CallOutcome, CallResult, FxAnswer, FxRequest, HostState};
use corridor_sdk::contract::ContractView;
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::limits::STATE_VALUE_BYTES_MAX;
use corridor_sdk::{AccountId, Amount, CurrencyCode, Event, Hash, codec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::InstancePre;

/// Fuel a deploy costs per byte of code, for validation and compilation.
pub(crate) const DEPLOY_BYTE_FUEL: u64 = 50;
/// Bytes of a contract's whole storage (one state value).
pub(crate) const CONTRACT_STORAGE_BYTES_MAX: usize = STATE_VALUE_BYTES_MAX - 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContractRecord {
    pub code_hash: Hash,
    pub deployer: AccountId,
    /// Zero balances are absent.
    pub balances: BTreeMap<CurrencyCode, Amount>,
}

/// The contract counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContractBookRecord {
    pub next_contract: u64,
}

type Storage = BTreeMap<Vec<u8>, Vec<u8>>;

/// Money a contract record holds, for conservation.
pub(crate) fn held(key: &[u8], value: &[u8]) -> Vec<(CurrencyCode, Amount)> {
    if !StateKey::is_contract(key) {
        return Vec::new();
    }
    let record: ContractRecord = super::execute::decode_state(value);
    record.balances.into_iter().collect()
}

pub(crate) fn deploy(
    ctx: &mut TxContext<'_>,
    sender: &AccountId,
    code: &[u8],
    init_args: &[u8],
    fuel: u64,
) -> Result<u64, Error> {
    let deploy_fuel = DEPLOY_BYTE_FUEL * code.len() as u64;
    if deploy_fuel > fuel {
        return Err(Error::new(
            ErrorCode::ContractOutOfFuel,
            format!("deploying {} bytes needs {deploy_fuel} fuel", code.len()),
        ));
    }
    let pre = wasm::runtime().prepare(code)?;
    let code_hash = ctx.hash_algorithm().digest(code);
    let mut book: ContractBookRecord = ctx.record(&StateKey::ContractBook).unwrap_or_default();
    let contract = book.next_contract;
    book.next_contract = contract.checked_add(1).expect("contract ids do not run out");
    let record = ContractRecord {
        code_hash,
        deployer: sender.clone(),
        balances: BTreeMap::new(),
    };
    let env = call_env(ctx, contract, sender, &record, init_args.to_vec(), None, Arc::default())?;
    let outcome = run(ctx, &pre, env, "init", fuel - deploy_fuel, true)?;
    ctx.put_record(&StateKey::ContractBook, Some(&book));
    ctx.put_record(&StateKey::ContractCode(code_hash), Some(&code.to_vec()));
    ctx.events.push(Event::ContractDeployed {
        contract,
        deployer: sender.clone(),
        code_hash,
    });
    commit(
        ctx,
        contract,
        sender,
        "init",
        None,
        record,
        Arc::default(),
        outcome,
        deploy_fuel,
    )?;
    Ok(contract)
}

/// The terms of a call.
pub(crate) struct CallRequest<'a> {
    pub contract: u64,
    pub method: &'a str,
    pub args: &'a [u8],
    pub funds: Option<&'a (CurrencyCode, Amount)>,
    pub fuel: u64,
}

pub(crate) fn call(ctx: &mut TxContext<'_>, sender: &AccountId, request: &CallRequest<'_>) -> Result<(), Error> {
    let contract = request.contract;
    let mut record: ContractRecord = ctx
        .record(&StateKey::Contract(contract))
        .ok_or_else(|| Error::new(ErrorCode::UnknownContract, format!("no contract {contract}")))?;
    let pre = wasm::runtime().prepare_stored(&record.code_hash, || {
        ctx.record(&StateKey::ContractCode(record.code_hash))
            .expect("a deployed contract's code is stored")
    })?;
    if let Some((code, amount)) = request.funds {
        let currency = ctx.currency(code)?;
        check_scale(code, &currency, *amount)?;
        let mut payer = ctx.require_account(sender)?;
        compliance::check_movement(&Movement {
            kind: MovementKind::Transfer,
            from: Some((sender, &payer)),
            to: None,
            currency: (code, &currency),
            amount: *amount,
        })?;
        debit(sender, &mut payer, code, *amount)?;
        ctx.put_account(sender, payer);
        let balance = record.balances.get(code).copied().unwrap_or_default();
        let balance = balance
            .checked_add(*amount)
            .ok_or_else(|| Error::new(ErrorCode::AmountOverflow, "contract balance out of range"))?;
        record.balances.insert(code.clone(), balance);
    }
    let storage: Arc<Storage> = Arc::new(ctx.record(&StateKey::ContractStorage(contract)).unwrap_or_default());
    let attached = request.funds.cloned();
    let env = call_env(
        ctx,
        contract,
        sender,
        &record,
        request.args.to_vec(),
        attached,
        Arc::clone(&storage),
    )?;
    let outcome = run(ctx, &pre, env, request.method, request.fuel, false)?;
    commit(
        ctx,
        contract,
        sender,
        request.method,
        request.funds.cloned(),
        record,
        storage,
        outcome,
        0,
    )
}

/// Run a call to the end, answering each FX question it stops at (staging its effects on
/// `ctx`) and running it again with every answer so far.
fn run(
    ctx: &mut TxContext<'_>,
    pre: &InstancePre<HostState>,
    mut env: CallEnv,
    method: &str,
    fuel: u64,
    optional: bool,
) -> Result<CallOutcome, Error> {
    for _ in 0..=wasm::CONTRACT_FX_CALLS_MAX {
        match wasm::runtime().call(pre, env.clone(), method, fuel, optional)? {
            CallResult::Done(outcome) => return Ok(outcome),
            CallResult::NeedsFx(request) => {
                let answer = answer_fx(ctx, env.contract, &env.caller, &request)?;
                env.fx.push((request, answer));
            }
        }
    }
    unreachable!("the host refuses more than CONTRACT_FX_CALLS_MAX FX calls")
}

/// Answer a contract's FX question on the transaction: the oracle rate, or a lock or a
/// settlement with the contract as payer, through the native rules of `ledger::fx`.
fn answer_fx(
    ctx: &mut TxContext<'_>,
    contract: u64,
    caller: &AccountId,
    request: &FxRequest,
) -> Result<FxAnswer, Error> {
    let payer = Payer::Contract { contract, caller };
    match request {
        FxRequest::Rate { sell, buy } => match fx::oracle_rate(ctx, sell, buy) {
            Ok(rate) => Ok(FxAnswer::Rate(Some(rate))),
            Err(error) if error.code == ErrorCode::FxNoRate => Ok(FxAnswer::Rate(None)),
            Err(error) => Err(error),
        },
        FxRequest::Lock {
            provider,
            sell,
            buy,
            sell_amount,
            window_ms,
        } => {
            let terms = fx::lock(
                ctx,
                payer,
                &LockRequest {
                    provider,
                    sell,
                    buy,
                    sell_amount: *sell_amount,
                    window_ms: *window_ms,
                    rate_min: None,
                },
            )?;
            Ok(FxAnswer::Locked {
                lock_id: terms.id,
                buy_amount: terms.buy_amount,
                buy_scale: ctx.currency(buy)?.scale,
                rate: terms.rate,
                expires_at_ms: terms.expires_at_ms,
            })
        }
        FxRequest::Settle { lock_id, to } => {
            let (sell, sell_amount) = fx::settle(ctx, payer, *lock_id, to)?;
            Ok(FxAnswer::Settled { sell, sell_amount })
        }
    }
}

fn call_env(
    ctx: &TxContext<'_>,
    contract: u64,
    caller: &AccountId,
    record: &ContractRecord,
    args: Vec<u8>,
    attached: Option<(CurrencyCode, Amount)>,
    storage: Arc<Storage>,
) -> Result<CallEnv, Error> {
    let mut balances = BTreeMap::new();
    for (code, amount) in &record.balances {
        balances.insert(code.clone(), (*amount, ctx.currency(code)?.scale));
    }
    Ok(CallEnv {
        contract,
        caller: caller.clone(),
        height: ctx.height,
        time_ms: ctx.block_time_ms,
        args,
        attached,
        storage,
        balances,
        fx: Vec::new(),
    })
}

/// Apply a successful call's effects: storage, balances, the transfers (each through the
/// compliance hook), events.
#[allow(clippy::too_many_arguments)]
fn commit(
    ctx: &mut TxContext<'_>,
    contract: u64,
    caller: &AccountId,
    method: &str,
    funds: Option<(CurrencyCode, Amount)>,
    mut record: ContractRecord,
    storage: Arc<Storage>,
    outcome: CallOutcome,
    extra_fuel: u64,
) -> Result<(), Error> {
    if let Some(new_storage) = outcome.storage
        && *new_storage != *storage
    {
        let bytes = codec::encode(&*new_storage);
        if bytes.len() > CONTRACT_STORAGE_BYTES_MAX {
            return Err(Error::new(
                ErrorCode::ContractLimit,
                format!("storage of {} bytes is over {CONTRACT_STORAGE_BYTES_MAX}", bytes.len()),
            ));
        }
        let value = (!new_storage.is_empty()).then_some(bytes);
        ctx.put_encoded(&StateKey::ContractStorage(contract), value);
    }
    record.balances = outcome
        .balances
        .into_iter()
        .filter(|(_, (amount, _))| !amount.is_zero())
        .map(|(code, (amount, _))| (code, amount))
        .collect();
    ctx.put_record(&StateKey::Contract(contract), Some(&record));
    ctx.events.push(Event::ContractCalled {
        contract,
        caller: caller.clone(),
        method: method.to_owned(),
        funds,
        fuel_used: outcome.fuel_used + extra_fuel,
        return_data: outcome.return_data,
    });
    for (to, code, amount) in outcome.transfers {
        let currency = ctx.currency(&code)?;
        let mut receiver = ctx.require_account(&to)?;
        compliance::check_movement(&Movement {
            kind: MovementKind::Transfer,
            from: None,
            to: Some((&to, &receiver)),
            currency: (&code, &currency),
            amount,
        })?;
        credit(&mut receiver, &code, amount)?;
        ctx.put_account(&to, receiver);
        ctx.events.push(Event::ContractTransferred {
            contract,
            to,
            currency: code,
            amount,
        });
    }
    for (topic, data) in outcome.events {
        ctx.events.push(Event::ContractEvent {
            contract,
            caller: caller.clone(),
            topic,
            data,
        });
    }
    Ok(())
}

/// `GET /v1/contracts/{id}` from committed state.
pub(crate) fn view(reader: &dyn super::StateReader, contract: u64) -> Option<ContractView> {
    let bytes = reader.get(&StateKey::Contract(contract).to_bytes())?;
    let record: ContractRecord = super::execute::decode_state(&bytes);
    let storage: Storage = reader
        .get(&StateKey::ContractStorage(contract).to_bytes())
        .map(|bytes| super::execute::decode_state(&bytes))
        .unwrap_or_default();
    Some(ContractView {
        id: contract,
        code_hash: record.code_hash,
        deployer: record.deployer,
        balances: record.balances,
        storage: storage
            .into_iter()
            .map(|(key, value)| (hex::encode(key), hex::encode(value)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::{Genesis, GenesisAccount, GenesisCurrency, GenesisFx, GenesisRate, GenesisValidator};
    use crate::ledger::{ChainConfig, Precheck, execute_block};
    use corridor_sdk::contract::escrow;
    use corridor_sdk::{
        HashAlgorithm, Operation, Outcome, PrivateKey, Receipt, Scheme, SignedTransaction, Transaction,
    };
    use std::collections::BTreeSet;

    const CHAIN: &str = "contract-test";
    const FUEL: u64 = 5_000_000;

    fn id(text: &str) -> AccountId {
        AccountId::new(text).expect("id")
    }

    fn cny() -> CurrencyCode {
        CurrencyCode::new("CNY").expect("code")
    }

    fn thb() -> CurrencyCode {
        CurrencyCode::new("THB").expect("code")
    }

    fn key(name: &str) -> PrivateKey {
        let mut seed = [5u8; 32];
        seed[..name.len().min(32)].copy_from_slice(&name.as_bytes()[..name.len().min(32)]);
        PrivateKey::from_seed(Scheme::Ed25519, seed).expect("seed")
    }

    /// The escrow contract as contracts/ built it (scripts/test.sh builds it first).
    fn shipped(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../contracts/target/wasm32-unknown-unknown/release/{name}.wasm",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}; build contracts/ first"))
    }

    fn escrow_wasm() -> Vec<u8> {
        shipped("escrow")
    }

    struct Ledger {
        state: BTreeMap<Vec<u8>, Vec<u8>>,
        config: ChainConfig,
        height: u64,
        nonces: BTreeMap<String, u64>,
    }

    fn ledger() -> Ledger {
        let account = |name: &str, units: u64| GenesisAccount {
            id: id(name),
            public_key: key(name).public_key(),
            balances: if units > 0 {
                BTreeMap::from([(cny(), Amount::from(units))])
            } else {
                BTreeMap::new()
            },
            more_keys: Vec::new(),
            threshold: 1,
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
            currencies: vec![
                GenesisCurrency {
                    code: cny(),
                    scale: 2,
                    issuer: id("pboc"),
                    transfer_limit: None,
                },
                GenesisCurrency {
                    code: thb(),
                    scale: 2,
                    issuer: id("bot"),
                    transfer_limit: None,
                },
            ],
            accounts: vec![
                account("pboc", 0),
                account("regulator", 0),
                account("buyer", 1_000),
                account("seller", 0),
                account("arbiter", 0),
                account("merchant-a", 0),
                account("merchant-b", 0),
                account("elsewhere", 0),
                account("tax-bureau", 0),
                account("attester", 0),
                account("approver-1", 0),
                account("approver-2", 0),
                account("approver-3", 0),
                account("anchor", 2_000_000),
                account("poor-anchor", 10),
                account("tier-1", 0),
                account("tier-2", 0),
                account("bank", 1_000_000),
                account("bot", 0),
                account("oracle", 0),
                GenesisAccount {
                    balances: BTreeMap::from([(thb(), Amount::from(1_000_000))]),
                    ..account("kbank", 0)
                },
            ],
            // kbank quotes CNY/THB 50 bps below the oracle's 4.9.
            fx: Some(GenesisFx {
                rate_providers: BTreeSet::from([id("oracle")]),
                liquidity_providers: BTreeMap::from([(id("kbank"), 50)]),
                staleness_ms: 1_000_000,
                rates: vec![GenesisRate {
                    provider: id("oracle"),
                    sell: cny(),
                    buy: thb(),
                    rate: corridor_sdk::fx::Rate::parse("4.9").expect("rate"),
                }],
            }),
        };
        let state = genesis
            .state()
            .expect("state")
            .into_iter()
            .map(|(k, v)| (k, v.expect("value")))
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

        fn run(&mut self, time_ms: u64, sender: &str, operation: Operation) -> Receipt {
            let tx = self.tx(sender, operation);
            self.height += 1;
            let hashes = vec![tx.hash(HashAlgorithm::Sha256)];
            let block = crate::ledger::test_block(CHAIN, self.height, time_ms, vec![tx]);
            let output = execute_block(&self.state, &self.config, &block, &hashes, &[Precheck::default()]);
            for (key, value) in output.writes {
                match value {
                    Some(value) => self.state.insert(key, value),
                    None => self.state.remove(&key),
                };
            }
            output.receipts.into_iter().next().expect("one receipt")
        }

        fn deploy(&mut self, code: Vec<u8>) -> Result<u64, ErrorCode> {
            let receipt = self.run(
                1,
                "buyer",
                Operation::DeployContract {
                    code,
                    init_args: vec![],
                    fuel: FUEL,
                },
            );
            match (&receipt.outcome, receipt.events.first()) {
                (Outcome::Success, Some(Event::ContractDeployed { contract, .. })) => Ok(*contract),
                (Outcome::Failed { code, .. }, _) => Err(*code),
                other => panic!("{other:?}"),
            }
        }

        fn call(
            &mut self,
            time_ms: u64,
            sender: &str,
            contract: u64,
            method: &str,
            args: Vec<u8>,
            funds: Option<u64>,
        ) -> Receipt {
            let funds = funds.map(|units| (cny(), Amount::from(units)));
            let operation = Operation::CallContract {
                contract,
                method: method.into(),
                args,
                funds,
                fuel: FUEL,
            };
            self.run(time_ms, sender, operation)
        }

        fn balance(&self, account: &str) -> Amount {
            self.balance_in(account, &cny())
        }

        fn balance_in(&self, account: &str, currency: &CurrencyCode) -> Amount {
            let bytes = &self.state[&StateKey::Account(id(account)).to_bytes()];
            super::super::execute::decode_state::<super::super::AccountRecord>(bytes).balance(currency)
        }

        fn lock(&self, lock_id: u64) -> Option<fx::FxLockRecord> {
            self.state
                .get(&StateKey::FxLock(lock_id).to_bytes())
                .map(|bytes| super::super::execute::decode_state(bytes))
        }

        /// Everything but the nonces of the accounts.
        fn without_nonces(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
            self.state
                .iter()
                .map(|(k, v)| {
                    if k.starts_with(b"a\0") {
                        let mut record: super::super::AccountRecord = super::super::execute::decode_state(v);
                        record.next_nonce = 0;
                        (k.clone(), codec::encode(&record))
                    } else {
                        (k.clone(), v.clone())
                    }
                })
                .collect()
        }
    }

    fn failed(receipt: &Receipt) -> Option<ErrorCode> {
        match &receipt.outcome {
            Outcome::Success => None,
            Outcome::Failed { code, .. } => Some(*code),
        }
    }

    fn fuel_used(receipt: &Receipt) -> u64 {
        receipt
            .events
            .iter()
            .find_map(|event| match event {
                Event::ContractCalled { fuel_used, .. } => Some(*fuel_used),
                _ => None,
            })
            .expect("a contract_called event")
    }

    fn module(body: &str) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(module
                (import "corridor" "transfer" (func $transfer (param i32 i32 i32 i32 i64)))
                (import "corridor" "storage_set" (func $set (param i32 i32 i32 i32)))
                (import "corridor" "storage_get" (func $get (param i32 i32 i32 i32) (result i32)))
                (memory (export "memory") 1)
                (data (i32.const 0) "seller")
                (data (i32.const 16) "CNY")
                (data (i32.const 32) "key")
                {body})"#
        ))
        .expect("valid wat")
    }

    #[test]
    fn escrow_release_refund_dispute_and_capture_move_exactly_the_escrowed_money() {
        let mut ledger = ledger();
        let contract = ledger.deploy(escrow_wasm()).expect("escrow deploys");
        let create = escrow::create(&id("seller"), &id("arbiter"), 1_000);
        let receipt = ledger.call(10, "buyer", contract, "create", create.clone(), Some(100));
        assert_eq!(failed(&receipt), None, "{receipt:?}");
        assert_eq!(ledger.balance("buyer"), Amount::from(900));
        let release = ledger.call(20, "buyer", contract, "release", escrow::id(0), None);
        assert_eq!(failed(&release), None, "{release:?}");
        assert_eq!(ledger.balance("seller"), Amount::from(100));
        // A second escrow: the seller cannot release it; after the deadline the buyer is refunded.
        ledger.call(30, "buyer", contract, "create", create.clone(), Some(50));
        let refused = ledger.call(40, "seller", contract, "release", escrow::id(1), None);
        assert_eq!(failed(&refused), Some(ErrorCode::ContractAbort));
        let early = ledger.call(40, "buyer", contract, "refund", escrow::id(1), None);
        assert_eq!(failed(&early), Some(ErrorCode::ContractAbort));
        assert_eq!(
            failed(&ledger.call(1_001, "buyer", contract, "refund", escrow::id(1), None)),
            None
        );
        assert_eq!(ledger.balance("buyer"), Amount::from(900));
        // A deposit: the seller captures 30.25 of 80, the rest returns.
        let create = escrow::create(&id("seller"), &id("arbiter"), 5_000);
        ledger.call(1_100, "buyer", contract, "create", create.clone(), Some(80));
        let capture = ledger.call(1_200, "seller", contract, "capture", escrow::id_amount(2, 3_025), None);
        assert_eq!(failed(&capture), None, "{capture:?}");
        assert_eq!(ledger.balance("seller"), Amount::parse("130.25").expect("a"));
        assert_eq!(ledger.balance("buyer"), Amount::parse("869.75").expect("a"));
        // A dispute, split by the arbiter.
        ledger.call(1_300, "buyer", contract, "create", create, Some(10));
        assert_eq!(
            failed(&ledger.call(1_400, "seller", contract, "dispute", escrow::id(3), None)),
            None
        );
        assert_eq!(
            failed(&ledger.call(1_500, "buyer", contract, "release", escrow::id(3), None)),
            Some(ErrorCode::ContractAbort)
        );
        assert_eq!(
            failed(&ledger.call(1_600, "arbiter", contract, "decide", escrow::id_amount(3, 400), None)),
            None
        );
        assert_eq!(ledger.balance("seller"), Amount::parse("134.25").expect("a"));
        assert_eq!(ledger.balance("buyer"), Amount::parse("865.75").expect("a"));
        let view = view(&ledger.state, contract).expect("contract");
        assert!(view.balances.is_empty(), "every escrow closed: {view:?}");
    }

    /// Cross-border escrow at a locked rate: the importer funds 100 CNY for a Thai exporter and
    /// the contract locks kbank's CNY/THB rate (4.9 less 50 bps = 4.8755: 487.55 THB) until the
    /// deadline. The oracle then moves to 5.5; release still pays exactly 487.55 THB, and kbank
    /// receives the 100 CNY. Adversaries: the importer settling the contract's lock natively, a
    /// release after the lock expired, a lock beyond kbank's liquidity.
    #[test]
    fn an_fx_escrow_pays_the_rate_locked_at_funding_however_the_oracle_moves() {
        let mut ledger = ledger();
        let contract = ledger.deploy(escrow_wasm()).expect("escrow deploys");
        let create = escrow::create_fx(&id("seller"), &id("arbiter"), 1_000, &id("kbank"), &thb());
        let receipt = ledger.call(10, "buyer", contract, "create_fx", create.clone(), Some(100));
        assert_eq!(failed(&receipt), None, "{receipt:?}");
        let Some(Event::ContractCalled { return_data, .. }) = receipt
            .events
            .iter()
            .find(|e| matches!(e, Event::ContractCalled { .. }))
        else {
            panic!("no contract_called event: {receipt:?}");
        };
        let (escrow_id, bought, rate) = escrow::created_fx(return_data).expect("create_fx returns three fields");
        assert_eq!((escrow_id, bought, rate), (0, 48_755, 48_755_000_000));
        let lock = ledger.lock(0).expect("the contract's lock");
        assert_eq!(
            (lock.contract, &lock.payer, lock.buy_amount),
            (Some(contract), &id("buyer"), Amount::parse("487.55").expect("amount"))
        );
        assert_eq!(lock.expires_at_ms, 1_000, "the lock lasts until the escrow's deadline");
        assert_eq!(
            ledger.balance_in("kbank", &thb()),
            Amount::parse("999512.45").expect("amount"),
            "reserved"
        );

        // The importer signed the call, but the lock is the contract's.
        let native = ledger.run(
            20,
            "buyer",
            Operation::FxSettle {
                lock_id: 0,
                to: id("buyer"),
            },
        );
        assert_eq!(failed(&native), Some(ErrorCode::NotLockPayer));
        let moved = ledger.run(
            30,
            "oracle",
            Operation::FxPostRate {
                sell: cny(),
                buy: thb(),
                rate: corridor_sdk::fx::Rate::parse("5.5").expect("rate"),
            },
        );
        assert_eq!(failed(&moved), None);
        let release = ledger.call(40, "buyer", contract, "release", escrow::id(0), None);
        assert_eq!(failed(&release), None, "{release:?}");
        assert_eq!(
            ledger.balance_in("seller", &thb()),
            Amount::parse("487.55").expect("amount")
        );
        assert_eq!(ledger.balance_in("kbank", &cny()), Amount::from(100));
        assert_eq!(
            ledger.balance_in("kbank", &thb()),
            Amount::parse("999512.45").expect("amount")
        );
        assert_eq!(ledger.balance("buyer"), Amount::from(900));
        assert_eq!(
            ledger.lock(0).map(|lock| lock.status),
            Some(corridor_sdk::fx::LockStatus::Settled)
        );

        // Past the deadline the lock has expired: release fails and changes nothing; the
        // importer's refund pays back its CNY, and kbank has its reservation back.
        let receipt = ledger.call(50, "buyer", contract, "create_fx", create, Some(100));
        assert_eq!(failed(&receipt), None);
        let before = ledger.without_nonces();
        let late = ledger.call(1_001, "buyer", contract, "release", escrow::id(1), None);
        assert_eq!(failed(&late), Some(ErrorCode::FxLockExpired));
        assert_eq!(
            ledger.balance_in("kbank", &thb()),
            Amount::parse("999512.45").expect("amount"),
            "the block at 1,001 ms released the reservation before the failed call"
        );
        let released = ledger.lock(1).expect("lock 1");
        assert_eq!(released.status, corridor_sdk::fx::LockStatus::Released);
        assert_ne!(ledger.without_nonces(), before, "only the release of the expired lock");
        let refund = ledger.call(1_002, "buyer", contract, "refund", escrow::id(1), None);
        assert_eq!(failed(&refund), None, "{refund:?}");
        assert_eq!(ledger.balance("buyer"), Amount::from(900));

        // More than kbank holds: the lock, and so the whole call, is refused.
        let huge = escrow::create_fx(&id("seller"), &id("arbiter"), 5_000, &id("kbank"), &thb());
        let before = ledger.without_nonces();
        let receipt = ledger.call(1_003, "anchor", contract, "create_fx", huge, Some(1_000_000));
        assert_eq!(failed(&receipt), Some(ErrorCode::InsufficientLiquidity));
        assert_eq!(ledger.without_nonces(), before, "the attached funds went back");
    }

    /// Adversary contracts on the FX host functions: settling a lock another contract holds,
    /// asking more FX questions than a call may, and trapping after a lock (which must undo it).
    #[test]
    fn hostile_fx_calls_fail_with_codes_and_undo_every_lock() {
        let mut ledger = ledger();
        let escrow_contract = ledger.deploy(escrow_wasm()).expect("escrow deploys");
        let create = escrow::create_fx(&id("seller"), &id("arbiter"), 1_000, &id("kbank"), &thb());
        assert_eq!(
            failed(&ledger.call(10, "buyer", escrow_contract, "create_fx", create, Some(100))),
            None
        );
        let fx_module = |body: &str| {
            wat::parse_str(format!(
                r#"(module
                    (import "corridor" "fx_rate" (func $rate (param i32 i32 i32 i32) (result i64)))
                    (import "corridor" "fx_lock" (func $lock (param i32 i32 i32 i32 i32 i32 i64 i64 i32) (result i64)))
                    (import "corridor" "fx_settle" (func $settle (param i64 i32 i32)))
                    (memory (export "memory") 1)
                    (data (i32.const 0) "seller")
                    (data (i32.const 16) "CNY")
                    (data (i32.const 24) "THB")
                    (data (i32.const 32) "kbank")
                    {body})"#
            ))
            .expect("valid wat")
        };
        let lock_call = "(drop (call $lock (i32.const 32) (i32.const 5) (i32.const 16) (i32.const 3) (i32.const 24) (i32.const 3) (i64.const 500) (i64.const 100) (i32.const 64)))";
        let rate_call = "(drop (call $rate (i32.const 16) (i32.const 3) (i32.const 24) (i32.const 3)))";
        let cases = [
            (
                "settling the escrow's lock",
                fx_module(r#"(func (export "run") (call $settle (i64.const 0) (i32.const 0) (i32.const 6)))"#),
                ErrorCode::NotLockPayer,
            ),
            (
                "five FX questions",
                fx_module(&format!(
                    r#"(func (export "run") {rate_call} {rate_call} {rate_call} {rate_call} {rate_call})"#
                )),
                ErrorCode::ContractLimit,
            ),
            (
                "a trap after a lock",
                fx_module(&format!(r#"(func (export "run") {lock_call} unreachable)"#)),
                ErrorCode::ContractTrap,
            ),
            (
                "a lock of money it does not hold",
                fx_module(&format!(r#"(func (export "run") {lock_call})"#)),
                ErrorCode::InsufficientFunds,
            ),
        ];
        for (index, (name, code, expected)) in cases.into_iter().enumerate() {
            let contract = ledger
                .deploy(code)
                .unwrap_or_else(|code| panic!("{name} deploys: {code}"));
            let before = ledger.without_nonces();
            // The trap case holds CNY (attached), so its lock goes through before the trap.
            let funds = (index == 2).then_some(5);
            let receipt = ledger.call(20, "buyer", contract, "run", vec![], funds);
            assert_eq!(failed(&receipt), Some(expected), "{name}: {receipt:?}");
            assert_eq!(ledger.without_nonces(), before, "{name} changed state");
        }
        assert!(ledger.lock(1).is_none(), "the trapped call's lock was undone");
        // Four rate questions are allowed, and each answer is the oracle's 4.9.
        let four = ledger
            .deploy(fx_module(&format!(
                r#"(func (export "run") {rate_call} {rate_call} {rate_call}
                    (i64.store (i32.const 64) (call $rate (i32.const 16) (i32.const 3) (i32.const 24) (i32.const 3))))"#
            )))
            .expect("deploys");
        let receipt = ledger.call(30, "buyer", four, "run", vec![], None);
        assert_eq!(failed(&receipt), None, "{receipt:?}");
    }

    #[test]
    fn the_same_call_uses_the_same_fuel_every_time() {
        let mut first = ledger();
        let mut second = ledger();
        let mut fuels = Vec::new();
        for ledger in [&mut first, &mut second] {
            let contract = ledger.deploy(escrow_wasm()).expect("deploys");
            let create = escrow::create(&id("seller"), &id("arbiter"), 1_000);
            let receipt = ledger.call(10, "buyer", contract, "create", create, Some(100));
            fuels.push(fuel_used(&receipt));
            let receipt = ledger.call(20, "buyer", contract, "release", escrow::id(0), None);
            fuels.push(fuel_used(&receipt));
        }
        assert_eq!(fuels[..2], fuels[2..]);
        assert!(fuels[0] > 0 && fuels[1] > 0);
        assert_eq!(first.state, second.state);
    }

    #[test]
    fn hostile_contracts_fail_with_codes_and_change_nothing() {
        let mut ledger = ledger();
        let cases: Vec<(&str, Vec<u8>, ErrorCode)> = vec![
            (
                "infinite loop",
                module(r#"(func (export "run") (loop (br 0)))"#),
                ErrorCode::ContractOutOfFuel,
            ),
            (
                "memory growth",
                module(
                    r#"(func (export "run") (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable)"#,
                ),
                ErrorCode::ContractMemoryLimit,
            ),
            (
                "recursion",
                module(r#"(func $r (export "run") (call $r))"#),
                ErrorCode::ContractStackOverflow,
            ),
            (
                "moving funds it does not own",
                module(
                    r#"(func (export "run") (call $transfer (i32.const 0) (i32.const 6) (i32.const 16) (i32.const 3) (i64.const 100000)))"#,
                ),
                ErrorCode::InsufficientFunds,
            ),
            (
                "trap",
                module(r#"(func (export "run") unreachable)"#),
                ErrorCode::ContractTrap,
            ),
            (
                "pointer outside memory",
                module(
                    r#"(func (export "run") (call $set (i32.const 70000) (i32.const 3) (i32.const 0) (i32.const 1)))"#,
                ),
                ErrorCode::ContractTrap,
            ),
        ];
        for (name, code, expected) in cases {
            let contract = ledger
                .deploy(code)
                .unwrap_or_else(|code| panic!("{name} deploys: {code}"));
            let before = ledger.without_nonces();
            let receipt = ledger.call(10, "buyer", contract, "run", vec![], Some(5));
            assert_eq!(failed(&receipt), Some(expected), "{name}: {receipt:?}");
            // Only the sender's record of its failed transaction; nothing the contract did.
            let only_failure = receipt
                .events
                .iter()
                .all(|event| matches!(event, corridor_sdk::Event::Failed { .. }));
            assert!(only_failure, "{name}: {:?}", receipt.events);
            assert_eq!(ledger.without_nonces(), before, "{name} changed state");
        }
        // Refused at deploy.
        let oversized = vec![0u8; corridor_sdk::limits::CONTRACT_MODULE_BYTES_MAX + 1];
        let tx = Transaction::new(
            ledger.config.genesis_hash,
            id("buyer"),
            0,
            u64::MAX,
            Operation::DeployContract {
                code: oversized,
                init_args: vec![],
                fuel: FUEL,
            },
        );
        assert_eq!(tx.check_shape().map_err(|e| e.code), Err(ErrorCode::TooLarge));
        assert_eq!(
            ledger.deploy(b"\0asm garbage".to_vec()),
            Err(ErrorCode::ContractInvalid)
        );
        let foreign_import =
            wat::parse_str(r#"(module (import "env" "clock" (func)) (memory (export "memory") 1))"#).expect("wat");
        assert_eq!(ledger.deploy(foreign_import), Err(ErrorCode::ContractInvalid));
        let no_memory = wat::parse_str(r#"(module (func (export "run")))"#).expect("wat");
        assert_eq!(ledger.deploy(no_memory), Err(ErrorCode::ContractInvalid));
        let simd = wat::parse_str(
            r#"(module (memory (export "memory") 1) (func (export "run") (drop (v128.const i64x2 0 0))))"#,
        )
        .expect("wat");
        assert_eq!(ledger.deploy(simd), Err(ErrorCode::ContractInvalid));
        let huge_memory = wat::parse_str(r#"(module (memory (export "memory") 1000))"#).expect("wat");
        assert_eq!(
            ledger.deploy(huge_memory),
            Err(ErrorCode::ContractMemoryLimit),
            "init instantiates"
        );
    }

    #[test]
    fn a_contract_sees_only_its_own_storage() {
        let mut ledger = ledger();
        // Writes "key" = "seller" into its own storage.
        let writer =
            module(r#"(func (export "run") (call $set (i32.const 32) (i32.const 3) (i32.const 0) (i32.const 6)))"#);
        // Traps unless its own "key" is absent.
        let reader = module(
            r#"(func (export "run") (if (i32.ne (call $get (i32.const 32) (i32.const 3) (i32.const 64) (i32.const 16)) (i32.const -1)) (then unreachable)))"#,
        );
        let a = ledger.deploy(writer).expect("deploys");
        let b = ledger.deploy(reader).expect("deploys");
        assert_eq!(failed(&ledger.call(10, "buyer", a, "run", vec![], None)), None);
        assert_eq!(
            failed(&ledger.call(20, "buyer", b, "run", vec![], None)),
            None,
            "b cannot see a's key"
        );
        let stored = view(&ledger.state, a).expect("a").storage;
        assert_eq!(stored.get(&hex::encode("key")), Some(&hex::encode("seller")));
        assert!(view(&ledger.state, b).expect("b").storage.is_empty());
    }

    fn abort_code(receipt: &Receipt) -> String {
        match &receipt.outcome {
            Outcome::Failed {
                code: ErrorCode::ContractAbort,
                message,
            } => message.split(':').next().unwrap_or("").to_owned(),
            other => panic!("expected an abort: {other:?}"),
        }
    }

    #[test]
    fn conditional_payments_pay_only_under_their_conditions() {
        use corridor_sdk::contract::conditional_payment::{Conditions, create, id as payment, spend};
        let mut ledger = ledger();
        let contract = ledger.deploy(shipped("conditional_payment")).expect("deploys");
        // A subsidy for seller, spendable only at merchant-a and merchant-b until t = 1 000.
        let subsidy = Conditions {
            payees: vec![id("merchant-a"), id("merchant-b")],
            ..Conditions::default()
        };
        let receipt = ledger.call(
            10,
            "buyer",
            contract,
            "create",
            create(&id("seller"), 1_000, &subsidy),
            Some(100),
        );
        assert_eq!(failed(&receipt), None, "{receipt:?}");
        let elsewhere = ledger.call(20, "seller", contract, "spend", spend(0, &id("elsewhere"), 1_000), None);
        assert_eq!(abort_code(&elsewhere), "not_whitelisted");
        assert_eq!(
            failed(&ledger.call(
                30,
                "seller",
                contract,
                "spend",
                spend(0, &id("merchant-a"), 2_550),
                None
            )),
            None
        );
        assert_eq!(ledger.balance("merchant-a"), Amount::parse("25.5").expect("a"));
        assert_eq!(
            abort_code(&ledger.call(40, "buyer", contract, "reclaim", payment(0), None)),
            "not_expired"
        );
        // After expiry nothing more is spendable and the rest returns to the payer.
        assert_eq!(
            abort_code(&ledger.call(1_001, "seller", contract, "spend", spend(0, &id("merchant-b"), 1), None)),
            "expired"
        );
        assert_eq!(
            failed(&ledger.call(1_002, "buyer", contract, "reclaim", payment(0), None)),
            None
        );
        assert_eq!(ledger.balance("buyer"), Amount::parse("974.5").expect("a"));

        // A milestone payment: released only once the attester attests.
        let milestone = Conditions {
            attester: Some(id("attester")),
            ..Conditions::default()
        };
        ledger.call(
            2_000,
            "buyer",
            contract,
            "create",
            create(&id("seller"), 9_000, &milestone),
            Some(50),
        );
        assert_eq!(
            abort_code(&ledger.call(2_010, "seller", contract, "spend", spend(1, &id("seller"), 5_000), None)),
            "not_attested"
        );
        assert_eq!(
            abort_code(&ledger.call(2_020, "seller", contract, "attest", payment(1), None)),
            "not_allowed"
        );
        assert_eq!(
            failed(&ledger.call(2_030, "attester", contract, "attest", payment(1), None)),
            None
        );
        assert_eq!(
            failed(&ledger.call(2_040, "seller", contract, "spend", spend(1, &id("seller"), 5_000), None)),
            None
        );
        assert_eq!(ledger.balance("seller"), Amount::from(50));

        // 2-of-3 approval with 6% tax withheld for the tax bureau.
        let approved = Conditions {
            threshold: 2,
            approvers: vec![id("approver-1"), id("approver-2"), id("approver-3")],
            tax: Some((id("tax-bureau"), 600)),
            ..Conditions::default()
        };
        ledger.call(
            3_000,
            "buyer",
            contract,
            "create",
            create(&id("seller"), 9_000, &approved),
            Some(200),
        );
        assert_eq!(
            failed(&ledger.call(3_010, "approver-1", contract, "approve", payment(2), None)),
            None
        );
        assert_eq!(
            abort_code(&ledger.call(3_020, "approver-1", contract, "approve", payment(2), None)),
            "duplicate"
        );
        assert_eq!(
            abort_code(&ledger.call(
                3_030,
                "seller",
                contract,
                "spend",
                spend(2, &id("merchant-b"), 100),
                None
            )),
            "not_approved"
        );
        assert_eq!(
            failed(&ledger.call(3_040, "approver-3", contract, "approve", payment(2), None)),
            None
        );
        let paid = ledger.call(
            3_050,
            "seller",
            contract,
            "spend",
            spend(2, &id("merchant-b"), 12_345),
            None,
        );
        assert_eq!(failed(&paid), None, "{paid:?}");
        // 6% of 123.45 is 7.407, rounded down to 7.40; the merchant gets 116.05.
        assert_eq!(ledger.balance("tax-bureau"), Amount::parse("7.4").expect("a"));
        assert_eq!(ledger.balance("merchant-b"), Amount::parse("116.05").expect("a"));
        let held = view(&ledger.state, contract).expect("contract").balances;
        assert_eq!(held.get(&cny()), Some(&Amount::parse("76.55").expect("a")));
    }

    #[test]
    fn a_receivable_travels_down_the_chain_is_discounted_and_paid_at_maturity() {
        use corridor_sdk::contract::supply_chain_finance::{id as receivable, issue, offer, take, transfer};
        const DAY_MS: u64 = 24 * 60 * 60 * 1000;
        let mut ledger = ledger();
        let contract = ledger.deploy(shipped("supply_chain_finance")).expect("deploys");
        // The anchor issues 1,000,000 CNY due in 90 days to its tier-1 supplier.
        let maturity = 90 * DAY_MS;
        let issued = ledger.call(
            0,
            "anchor",
            contract,
            "issue",
            issue(&id("tier-1"), &cny(), 100_000_000, maturity),
            None,
        );
        assert_eq!(failed(&issued), None, "{issued:?}");
        // Tier-1 passes 300,000 to tier-2; tier-2 discounts it with the bank at 3% a year.
        assert_eq!(
            failed(&ledger.call(
                DAY_MS,
                "tier-1",
                contract,
                "transfer",
                transfer(0, &id("tier-2"), 30_000_000),
                None
            )),
            None
        );
        assert_eq!(
            failed(&ledger.call(
                DAY_MS,
                "tier-2",
                contract,
                "offer",
                offer(0, &id("bank"), 30_000_000, 300),
                None
            )),
            None
        );
        // 89 days remain: 300,000 × 3% × 89/365 = 2,194.520547… → 2,194.52 discount.
        let wrong = ledger.call(DAY_MS, "bank", contract, "take", take(0, &id("tier-2")), Some(297_000));
        assert_eq!(abort_code(&wrong), "bad_price");
        let price = Amount::parse("297805.48").expect("price");
        let operation = Operation::CallContract {
            contract,
            method: "take".into(),
            args: take(0, &id("tier-2")),
            funds: Some((cny(), price)),
            fuel: FUEL,
        };
        let taken = ledger.run(DAY_MS, "bank", operation);
        assert_eq!(failed(&taken), None, "{taken:?}");
        assert_eq!(ledger.balance("tier-2"), price);
        // Not before maturity; at maturity the anchor pays and the holders receive exactly.
        let early = Operation::CallContract {
            contract,
            method: "settle".into(),
            args: receivable(0),
            funds: Some((cny(), Amount::from(1_000_000))),
            fuel: FUEL,
        };
        assert_eq!(
            abort_code(&ledger.run(maturity - 1, "anchor", early.clone())),
            "not_mature"
        );
        assert_eq!(failed(&ledger.run(maturity, "anchor", early)), None);
        assert_eq!(ledger.balance("tier-1"), Amount::from(700_000));
        assert_eq!(
            ledger.balance("bank"),
            Amount::parse("1002194.52").expect("a"),
            "the discount is the bank's yield"
        );
        assert_eq!(ledger.balance("anchor"), Amount::from(1_000_000));

        // An underfunded anchor cannot settle; after maturity the receivable turns overdue.
        ledger.call(
            maturity,
            "poor-anchor",
            contract,
            "issue",
            issue(&id("tier-1"), &cny(), 5_000_000, maturity + DAY_MS),
            None,
        );
        let short = Operation::CallContract {
            contract,
            method: "settle".into(),
            args: receivable(1),
            funds: Some((cny(), Amount::from(50_000))),
            fuel: FUEL,
        };
        assert_eq!(
            failed(&ledger.run(maturity + DAY_MS, "poor-anchor", short)),
            Some(ErrorCode::InsufficientFunds)
        );
        let checked = ledger.call(maturity + DAY_MS + 1, "tier-1", contract, "check", receivable(1), None);
        assert_eq!(failed(&checked), None);
        assert!(
            checked
                .events
                .iter()
                .any(|e| matches!(e, Event::ContractEvent { topic, .. } if topic == "overdue")),
            "{checked:?}"
        );
    }
}
