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

use super::compliance::{self, Movement, MovementKind};
use super::execute::{TxContext, check_scale, credit, debit};
use super::records::StateKey;
use crate::wasm::{self, CallEnv, CallOutcome};
use corridor_sdk::contract::ContractView;
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::limits::STATE_VALUE_BYTES_MAX;
use corridor_sdk::{AccountId, Amount, CurrencyCode, Event, Hash, codec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    let env = call_env(ctx, contract, sender, &record, init_args.to_vec(), None, Storage::new())?;
    let outcome = wasm::runtime().call(&pre, env, "init", fuel - deploy_fuel, true)?;
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
        Storage::new(),
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
    let code: Vec<u8> = ctx
        .record(&StateKey::ContractCode(record.code_hash))
        .expect("a deployed contract's code is stored");
    let pre = wasm::runtime().prepare(&code)?;
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
    let storage: Storage = ctx.record(&StateKey::ContractStorage(contract)).unwrap_or_default();
    let attached = request.funds.cloned();
    let env = call_env(
        ctx,
        contract,
        sender,
        &record,
        request.args.to_vec(),
        attached,
        storage.clone(),
    )?;
    let outcome = wasm::runtime().call(&pre, env, request.method, request.fuel, false)?;
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

fn call_env(
    ctx: &TxContext<'_>,
    contract: u64,
    caller: &AccountId,
    record: &ContractRecord,
    args: Vec<u8>,
    attached: Option<(CurrencyCode, Amount)>,
    storage: Storage,
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
    storage: Storage,
    outcome: CallOutcome,
    extra_fuel: u64,
) -> Result<(), Error> {
    if let Some(new_storage) = outcome.storage
        && new_storage != storage
    {
        let bytes = codec::encode(&new_storage).len();
        if bytes > CONTRACT_STORAGE_BYTES_MAX {
            return Err(Error::new(
                ErrorCode::ContractLimit,
                format!("storage of {bytes} bytes is over {CONTRACT_STORAGE_BYTES_MAX}"),
            ));
        }
        let value = (!new_storage.is_empty()).then_some(&new_storage);
        ctx.put_record(&StateKey::ContractStorage(contract), value);
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
