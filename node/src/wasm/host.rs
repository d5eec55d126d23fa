//! The host functions of the contract ABI (contracts/ABI.md), module `corridor`, and the state
//! a call accumulates. Every host function charges fuel before it works; every length the guest
//! passes is bounded by a named limit; a refusal traps with a ledger error code.

use super::{CONTRACT_MEMORY_BYTES_MAX, CONTRACT_TABLE_ELEMENTS_MAX};
use corridor_sdk::contract::{from_minor_units, to_minor_units};
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::fx::{RATE_SCALE_MAX, Rate};
use corridor_sdk::limits::FX_LOCK_WINDOW_MS_MAX;
use corridor_sdk::{AccountId, Amount, CurrencyCode};
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::{Caller, Extern, Linker, ResourceLimiter, Trap};

/// Fuel every host call costs before its work.
pub(crate) const HOST_CALL_FUEL: u64 = 200;
/// Fuel per byte a host call copies in or out of wasm memory.
pub(crate) const HOST_BYTE_FUEL: u64 = 2;
/// Fuel per byte written to storage (state that every node keeps).
pub(crate) const STORAGE_WRITE_BYTE_FUEL: u64 = 20;
/// Fuel of a transfer (a ledger movement with its compliance check).
pub(crate) const TRANSFER_FUEL: u64 = 5_000;
/// Bytes of a storage key.
pub(crate) const CONTRACT_STORAGE_KEY_BYTES_MAX: usize = 256;
/// Bytes of one storage value.
pub(crate) const CONTRACT_STORAGE_VALUE_BYTES_MAX: usize = 8 * 1024;
/// Bytes of an event topic, and of its data.
pub(crate) const CONTRACT_EVENT_TOPIC_BYTES_MAX: usize = 64;
pub(crate) const CONTRACT_EVENT_DATA_BYTES_MAX: usize = 1024;
/// Events, and transfers, one call may make.
pub(crate) const CONTRACT_EVENTS_MAX: usize = 64;
pub(crate) const CONTRACT_TRANSFERS_MAX: usize = 64;
/// Bytes of a call's return data.
pub(crate) const CONTRACT_RETURN_BYTES_MAX: usize = 1024;
/// Bytes of an abort's code and message.
const CONTRACT_ABORT_BYTES_MAX: usize = 256;
/// Fuel of an FX host call, on top of `HOST_CALL_FUEL`: the ledger's work, and the re-run of
/// the call it costs (ADR 0045).
pub(crate) const FX_CALL_FUEL: u64 = 20_000;
/// FX host calls one contract call may make; so a call runs at most one more time than this.
pub(crate) const CONTRACT_FX_CALLS_MAX: usize = 4;
/// Bytes `fx_lock` writes at its `out` pointer: the amount bought (minor units), the rate
/// (units of 10^-`RATE_SCALE_MAX`) and the expiry (ms), each an `i64` little-endian.
pub(crate) const FX_LOCK_OUT_BYTES: usize = 24;

/// An FX question a call asks the ledger, which only the ledger can answer (ADR 0045).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FxRequest {
    /// The oracle rate of the pair at the block's time.
    Rate { sell: CurrencyCode, buy: CurrencyCode },
    /// Lock the provider's client rate for the contract selling `sell_amount`.
    Lock {
        provider: AccountId,
        sell: CurrencyCode,
        buy: CurrencyCode,
        sell_amount: Amount,
        window_ms: u64,
    },
    /// Settle the contract's lock, paying the bought amount to `to`.
    Settle { lock_id: u64, to: AccountId },
}

/// The ledger's answer to an `FxRequest`, given (and its effects staged on the transaction)
/// before the call runs again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FxAnswer {
    /// `None`: no fresh rate.
    Rate(Option<Rate>),
    Locked {
        lock_id: u64,
        buy_amount: Amount,
        buy_scale: u32,
        rate: Rate,
        expires_at_ms: u64,
    },
    /// The sell leg, which leaves the contract's balance.
    Settled { sell: CurrencyCode, sell_amount: Amount },
}

/// What a call may read about its context.
#[derive(Clone)]
pub(crate) struct CallEnv {
    pub contract: u64,
    pub caller: AccountId,
    pub height: u64,
    pub time_ms: u64,
    pub args: Vec<u8>,
    /// Attached funds, already in `balances`.
    pub attached: Option<(CurrencyCode, Amount)>,
    /// The contract's storage before the call (shared: a call copies it only when it writes).
    pub storage: Arc<BTreeMap<Vec<u8>, Vec<u8>>>,
    /// The contract's balances (attached funds included) with each currency's scale.
    pub balances: BTreeMap<CurrencyCode, (Amount, u32)>,
    /// The FX questions earlier runs of this call asked, in order, with the ledger's answers.
    pub fx: Vec<(FxRequest, FxAnswer)>,
}

/// Memory and table limits, remembering whether a limit was hit.
pub(crate) struct Limits {
    pub memory_hit: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > CONTRACT_MEMORY_BYTES_MAX {
            self.memory_hit = true;
            return Err(wasmtime::Error::msg("contract memory limit"));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > CONTRACT_TABLE_ELEMENTS_MAX {
            self.memory_hit = true;
            return Err(wasmtime::Error::msg("contract table limit"));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}

pub(crate) struct HostState {
    env: CallEnv,
    pub limits: Limits,
    storage: Arc<BTreeMap<Vec<u8>, Vec<u8>>>,
    storage_written: bool,
    transfers: Vec<(AccountId, CurrencyCode, Amount)>,
    events: Vec<(String, Vec<u8>)>,
    return_data: Vec<u8>,
    /// Why the host stopped the call, if it did.
    refusal: Option<Error>,
    /// FX answers used so far in this run.
    fx_used: usize,
    /// The FX question this run stopped at, for the ledger to answer before the next run.
    pub fx_needed: Option<FxRequest>,
}

/// The effects of a call that succeeded, for the ledger to commit.
pub(crate) struct CallOutcome {
    /// `Some` when the call wrote storage: the whole new storage.
    pub storage: Option<Arc<BTreeMap<Vec<u8>, Vec<u8>>>>,
    pub balances: BTreeMap<CurrencyCode, (Amount, u32)>,
    pub transfers: Vec<(AccountId, CurrencyCode, Amount)>,
    pub events: Vec<(String, Vec<u8>)>,
    pub return_data: Vec<u8>,
    pub fuel_used: u64,
}

impl HostState {
    pub fn new(env: CallEnv) -> HostState {
        HostState {
            storage: Arc::clone(&env.storage),
            env,
            limits: Limits { memory_hit: false },
            storage_written: false,
            transfers: Vec::new(),
            events: Vec::new(),
            return_data: Vec::new(),
            refusal: None,
            fx_used: 0,
            fx_needed: None,
        }
    }

    pub fn finish(self, fuel_used: u64) -> CallOutcome {
        CallOutcome {
            storage: self.storage_written.then_some(self.storage),
            balances: self.env.balances,
            transfers: self.transfers,
            events: self.events,
            return_data: self.return_data,
            fuel_used,
        }
    }
}

/// The ledger error for a failed call.
pub(crate) fn classify(state: &HostState, error: &wasmtime::Error) -> Error {
    if let Some(refusal) = &state.refusal {
        return refusal.clone();
    }
    if state.limits.memory_hit {
        return Error::new(
            ErrorCode::ContractMemoryLimit,
            format!(
                "memory over {CONTRACT_MEMORY_BYTES_MAX} bytes or a table over {CONTRACT_TABLE_ELEMENTS_MAX} elements"
            ),
        );
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Error::new(ErrorCode::ContractOutOfFuel, "the call ran out of fuel"),
        Some(Trap::StackOverflow) => Error::new(
            ErrorCode::ContractStackOverflow,
            format!(
                "the call used more than {} bytes of stack",
                super::CONTRACT_STACK_BYTES_MAX
            ),
        ),
        Some(trap) => Error::new(ErrorCode::ContractTrap, format!("trap: {trap}")),
        None => Error::new(ErrorCode::ContractTrap, format!("{error:#}")),
    }
}

type Ctx<'a> = Caller<'a, HostState>;

/// Stop the call with a ledger error.
fn refuse(caller: &mut Ctx<'_>, code: ErrorCode, message: impl Into<String>) -> wasmtime::Error {
    let error = Error::new(code, message);
    let text = error.to_string();
    caller.data_mut().refusal = Some(error);
    wasmtime::Error::msg(text)
}

fn charge(caller: &mut Ctx<'_>, fuel: u64) -> wasmtime::Result<()> {
    let left = caller.get_fuel()?;
    if left < fuel {
        caller.set_fuel(0)?;
        return Err(wasmtime::Error::new(Trap::OutOfFuel));
    }
    caller.set_fuel(left - fuel)
}

fn memory(caller: &mut Ctx<'_>) -> wasmtime::Result<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(refuse(caller, ErrorCode::ContractInvalid, "no exported memory")),
    }
}

/// Copy `len` bytes at `ptr` out of wasm memory, at most `limit`, charging per byte.
fn read(caller: &mut Ctx<'_>, ptr: i32, len: i32, limit: usize, what: &str) -> wasmtime::Result<Vec<u8>> {
    let len =
        usize::try_from(len).map_err(|_| refuse(caller, ErrorCode::ContractTrap, format!("negative {what} length")))?;
    if len > limit {
        return Err(refuse(
            caller,
            ErrorCode::ContractLimit,
            format!("{what} of {len} bytes is over {limit}"),
        ));
    }
    charge(caller, HOST_BYTE_FUEL * len as u64)?;
    let memory = memory(caller)?;
    let mut buffer = vec![0; len];
    let offset = ptr as u32 as usize;
    if memory.read(&*caller, offset, &mut buffer).is_err() {
        return Err(refuse(
            caller,
            ErrorCode::ContractTrap,
            format!("{what} is outside memory"),
        ));
    }
    Ok(buffer)
}

fn read_text(caller: &mut Ctx<'_>, ptr: i32, len: i32, limit: usize, what: &str) -> wasmtime::Result<String> {
    let bytes = read(caller, ptr, len, limit, what)?;
    String::from_utf8(bytes).map_err(|_| refuse(caller, ErrorCode::ContractTrap, format!("{what} is not UTF-8")))
}

/// Copy `bytes` to `ptr` if they fit `cap`; returns their length either way.
fn write(caller: &mut Ctx<'_>, ptr: i32, cap: i32, bytes: &[u8]) -> wasmtime::Result<i32> {
    let len = i32::try_from(bytes.len()).expect("host values are far below 2 GiB");
    if len <= cap {
        charge(caller, HOST_BYTE_FUEL * bytes.len() as u64)?;
        let memory = memory(caller)?;
        if memory.write(&mut *caller, ptr as u32 as usize, bytes).is_err() {
            return Err(refuse(caller, ErrorCode::ContractTrap, "output is outside memory"));
        }
    }
    Ok(len)
}

fn currency(caller: &mut Ctx<'_>, ptr: i32, len: i32) -> wasmtime::Result<CurrencyCode> {
    let text = read_text(
        caller,
        ptr,
        len,
        corridor_sdk::limits::CURRENCY_CODE_BYTES_MAX,
        "currency",
    )?;
    CurrencyCode::new(&text).map_err(|error| refuse(caller, error.code, error.message))
}

/// The answer to the call's next FX question: the recorded one on a re-run, or else stop the
/// run so the ledger answers it (`fx_needed`).
fn fx_answer(caller: &mut Ctx<'_>, request: FxRequest) -> wasmtime::Result<FxAnswer> {
    let index = caller.data().fx_used;
    if index >= CONTRACT_FX_CALLS_MAX {
        return Err(refuse(
            caller,
            ErrorCode::ContractLimit,
            format!("more than {CONTRACT_FX_CALLS_MAX} FX calls"),
        ));
    }
    let recorded = caller.data().env.fx.get(index).cloned();
    match recorded {
        Some((asked, answer)) if asked == request => {
            caller.data_mut().fx_used += 1;
            Ok(answer)
        }
        // A run is a pure function of its inputs, so a re-run asks what the first run asked.
        Some(_) => Err(refuse(
            caller,
            ErrorCode::ContractTrap,
            "the call asked another FX question when run again",
        )),
        None => {
            caller.data_mut().fx_needed = Some(request);
            Err(wasmtime::Error::msg(
                "the ledger answers an FX question before the call runs again",
            ))
        }
    }
}

fn account(caller: &mut Ctx<'_>, ptr: i32, len: i32) -> wasmtime::Result<AccountId> {
    let text = read_text(
        caller,
        ptr,
        len,
        corridor_sdk::limits::ACCOUNT_ID_BYTES_MAX,
        "account id",
    )?;
    AccountId::new(&text).map_err(|error| refuse(caller, error.code, error.message))
}

fn rate_units(caller: &mut Ctx<'_>, rate: Rate) -> wasmtime::Result<i64> {
    to_minor_units(rate.amount(), RATE_SCALE_MAX).map_err(|error| refuse(caller, error.code, error.message))
}

/// The FX host functions: `fx_rate`, `fx_lock`, `fx_settle` (contracts/ABI.md).
fn define_fx(linker: &mut Linker<HostState>, module: &str) -> wasmtime::Result<()> {
    linker.func_wrap(
        module,
        "fx_rate",
        |mut caller: Ctx<'_>, sell_ptr: i32, sell_len: i32, buy_ptr: i32, buy_len: i32| -> wasmtime::Result<i64> {
            charge(&mut caller, HOST_CALL_FUEL + FX_CALL_FUEL)?;
            let sell = currency(&mut caller, sell_ptr, sell_len)?;
            let buy = currency(&mut caller, buy_ptr, buy_len)?;
            match fx_answer(&mut caller, FxRequest::Rate { sell, buy })? {
                FxAnswer::Rate(Some(rate)) => rate_units(&mut caller, rate),
                FxAnswer::Rate(None) => Ok(-1),
                other => unreachable!("a rate question gets a rate answer, not {other:?}"),
            }
        },
    )?;
    linker.func_wrap(
        module,
        "fx_lock",
        |mut caller: Ctx<'_>,
         provider_ptr: i32,
         provider_len: i32,
         sell_ptr: i32,
         sell_len: i32,
         buy_ptr: i32,
         buy_len: i32,
         sell_minor: i64,
         window_ms: i64,
         out_ptr: i32|
         -> wasmtime::Result<i64> {
            charge(&mut caller, HOST_CALL_FUEL + FX_CALL_FUEL)?;
            let provider = account(&mut caller, provider_ptr, provider_len)?;
            let sell = currency(&mut caller, sell_ptr, sell_len)?;
            let buy = currency(&mut caller, buy_ptr, buy_len)?;
            if sell_minor <= 0 {
                return Err(refuse(
                    &mut caller,
                    ErrorCode::AmountNotPositive,
                    format!("a lock of {sell_minor} minor units"),
                ));
            }
            let window_ms = u64::try_from(window_ms)
                .ok()
                .filter(|window| (1..=FX_LOCK_WINDOW_MS_MAX).contains(window))
                .ok_or_else(|| {
                    refuse(
                        &mut caller,
                        ErrorCode::FxLockWindow,
                        format!("a lock window is 1 to {FX_LOCK_WINDOW_MS_MAX} ms"),
                    )
                })?;
            // The contract locks money it holds: its balance names the currency's scale.
            let Some((_, sell_scale)) = caller.data().env.balances.get(&sell).copied() else {
                return Err(refuse(
                    &mut caller,
                    ErrorCode::InsufficientFunds,
                    format!("the contract holds no {sell} to lock"),
                ));
            };
            let sell_amount = from_minor_units(sell_minor, sell_scale);
            let request = FxRequest::Lock {
                provider,
                sell,
                buy,
                sell_amount,
                window_ms,
            };
            let FxAnswer::Locked {
                lock_id,
                buy_amount,
                buy_scale,
                rate,
                expires_at_ms,
            } = fx_answer(&mut caller, request)?
            else {
                unreachable!("a lock question gets a lock answer");
            };
            let buy_minor = to_minor_units(buy_amount, buy_scale)
                .map_err(|error| refuse(&mut caller, error.code, error.message))?;
            let rate = rate_units(&mut caller, rate)?;
            let mut out = Vec::with_capacity(FX_LOCK_OUT_BYTES);
            for field in [buy_minor, rate, expires_at_ms as i64] {
                out.extend_from_slice(&field.to_le_bytes());
            }
            write(&mut caller, out_ptr, FX_LOCK_OUT_BYTES as i32, &out)?;
            Ok(lock_id as i64)
        },
    )?;
    linker.func_wrap(
        module,
        "fx_settle",
        |mut caller: Ctx<'_>, lock_id: i64, to_ptr: i32, to_len: i32| -> wasmtime::Result<()> {
            charge(&mut caller, HOST_CALL_FUEL + FX_CALL_FUEL + 2 * TRANSFER_FUEL)?;
            let to = account(&mut caller, to_ptr, to_len)?;
            let lock_id = u64::try_from(lock_id)
                .map_err(|_| refuse(&mut caller, ErrorCode::UnknownFxLock, format!("no FX lock {lock_id}")))?;
            let FxAnswer::Settled { sell, sell_amount } = fx_answer(&mut caller, FxRequest::Settle { lock_id, to })?
            else {
                unreachable!("a settle question gets a settle answer");
            };
            // The sell leg leaves the contract's balance as a transfer does.
            let balance = caller.data().env.balances.get(&sell).copied();
            let left = balance.and_then(|(balance, scale)| {
                balance
                    .checked_sub(sell_amount)
                    .filter(|left| !left.decimal().is_sign_negative())
                    .map(|left| (left, scale))
            });
            let Some(left) = left else {
                return Err(refuse(
                    &mut caller,
                    ErrorCode::InsufficientFunds,
                    format!("the contract holds less than the {sell_amount} {sell} the lock sells"),
                ));
            };
            caller.data_mut().env.balances.insert(sell, left);
            Ok(())
        },
    )?;
    Ok(())
}

/// Register every host function of the ABI on `linker`.
pub(crate) fn define(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    const MODULE: &str = "corridor";
    linker.func_wrap(MODULE, "args_len", |mut caller: Ctx<'_>| -> wasmtime::Result<i32> {
        charge(&mut caller, HOST_CALL_FUEL)?;
        Ok(i32::try_from(caller.data().env.args.len()).expect("args are bounded"))
    })?;
    linker.func_wrap(
        MODULE,
        "args_read",
        |mut caller: Ctx<'_>, ptr: i32| -> wasmtime::Result<()> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let args = caller.data().env.args.clone();
            write(&mut caller, ptr, i32::MAX, &args).map(|_| ())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "caller",
        |mut caller: Ctx<'_>, ptr: i32, cap: i32| -> wasmtime::Result<i32> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let id = caller.data().env.caller.as_str().as_bytes().to_vec();
            write(&mut caller, ptr, cap, &id)
        },
    )?;
    linker.func_wrap(MODULE, "contract_id", |mut caller: Ctx<'_>| -> wasmtime::Result<i64> {
        charge(&mut caller, HOST_CALL_FUEL)?;
        Ok(caller.data().env.contract as i64)
    })?;
    linker.func_wrap(MODULE, "block_height", |mut caller: Ctx<'_>| -> wasmtime::Result<i64> {
        charge(&mut caller, HOST_CALL_FUEL)?;
        Ok(caller.data().env.height as i64)
    })?;
    linker.func_wrap(
        MODULE,
        "block_time_ms",
        |mut caller: Ctx<'_>| -> wasmtime::Result<i64> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            Ok(caller.data().env.time_ms as i64)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "storage_get",
        |mut caller: Ctx<'_>, key_ptr: i32, key_len: i32, value_ptr: i32, value_cap: i32| -> wasmtime::Result<i32> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let key = read(
                &mut caller,
                key_ptr,
                key_len,
                CONTRACT_STORAGE_KEY_BYTES_MAX,
                "storage key",
            )?;
            match caller.data().storage.get(&key).cloned() {
                Some(value) => write(&mut caller, value_ptr, value_cap, &value),
                None => Ok(-1),
            }
        },
    )?;
    linker.func_wrap(
        MODULE,
        "storage_set",
        |mut caller: Ctx<'_>, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32| -> wasmtime::Result<()> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let key = read(
                &mut caller,
                key_ptr,
                key_len,
                CONTRACT_STORAGE_KEY_BYTES_MAX,
                "storage key",
            )?;
            let value = read(
                &mut caller,
                value_ptr,
                value_len,
                CONTRACT_STORAGE_VALUE_BYTES_MAX,
                "storage value",
            )?;
            charge(&mut caller, STORAGE_WRITE_BYTE_FUEL * (key.len() + value.len()) as u64)?;
            let state = caller.data_mut();
            Arc::make_mut(&mut state.storage).insert(key, value);
            state.storage_written = true;
            Ok(())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "storage_remove",
        |mut caller: Ctx<'_>, key_ptr: i32, key_len: i32| -> wasmtime::Result<()> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let key = read(
                &mut caller,
                key_ptr,
                key_len,
                CONTRACT_STORAGE_KEY_BYTES_MAX,
                "storage key",
            )?;
            let state = caller.data_mut();
            if state.storage.contains_key(&key) {
                Arc::make_mut(&mut state.storage).remove(&key);
                state.storage_written = true;
            }
            Ok(())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "balance",
        |mut caller: Ctx<'_>, ptr: i32, len: i32| -> wasmtime::Result<i64> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let code = currency(&mut caller, ptr, len)?;
            match caller.data().env.balances.get(&code).copied() {
                Some((amount, scale)) => {
                    to_minor_units(amount, scale).map_err(|error| refuse(&mut caller, error.code, error.message))
                }
                None => Ok(0),
            }
        },
    )?;
    linker.func_wrap(
        MODULE,
        "attached_currency",
        |mut caller: Ctx<'_>, ptr: i32, cap: i32| -> wasmtime::Result<i32> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let code = caller
                .data()
                .env
                .attached
                .as_ref()
                .map(|(code, _)| code.as_str().as_bytes().to_vec());
            write(&mut caller, ptr, cap, &code.unwrap_or_default())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "attached_amount",
        |mut caller: Ctx<'_>| -> wasmtime::Result<i64> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let attached = caller.data().env.attached.clone();
            let Some((code, amount)) = attached else {
                return Ok(0);
            };
            let scale = caller
                .data()
                .env
                .balances
                .get(&code)
                .map(|(_, scale)| *scale)
                .unwrap_or(0);
            to_minor_units(amount, scale).map_err(|error| refuse(&mut caller, error.code, error.message))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "transfer",
        |mut caller: Ctx<'_>,
         to_ptr: i32,
         to_len: i32,
         currency_ptr: i32,
         currency_len: i32,
         minor: i64|
         -> wasmtime::Result<()> {
            charge(&mut caller, HOST_CALL_FUEL + TRANSFER_FUEL)?;
            let to = read_text(
                &mut caller,
                to_ptr,
                to_len,
                corridor_sdk::limits::ACCOUNT_ID_BYTES_MAX,
                "account id",
            )?;
            let to = AccountId::new(&to).map_err(|error| refuse(&mut caller, error.code, error.message))?;
            let code = currency(&mut caller, currency_ptr, currency_len)?;
            if caller.data().transfers.len() >= CONTRACT_TRANSFERS_MAX {
                return Err(refuse(
                    &mut caller,
                    ErrorCode::ContractLimit,
                    format!("more than {CONTRACT_TRANSFERS_MAX} transfers"),
                ));
            }
            if minor <= 0 {
                return Err(refuse(
                    &mut caller,
                    ErrorCode::AmountNotPositive,
                    format!("transfer of {minor} minor units"),
                ));
            }
            let Some((balance, scale)) = caller.data().env.balances.get(&code).copied() else {
                return Err(refuse(
                    &mut caller,
                    ErrorCode::InsufficientFunds,
                    format!("the contract holds no {code}"),
                ));
            };
            let amount = from_minor_units(minor, scale);
            let left = balance
                .checked_sub(amount)
                .filter(|left| !left.decimal().is_sign_negative());
            let Some(left) = left else {
                return Err(refuse(
                    &mut caller,
                    ErrorCode::InsufficientFunds,
                    format!("the contract holds {balance} {code}, not {amount}"),
                ));
            };
            let state = caller.data_mut();
            state.env.balances.insert(code.clone(), (left, scale));
            state.transfers.push((to, code, amount));
            Ok(())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "emit",
        |mut caller: Ctx<'_>, topic_ptr: i32, topic_len: i32, data_ptr: i32, data_len: i32| -> wasmtime::Result<()> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            if caller.data().events.len() >= CONTRACT_EVENTS_MAX {
                return Err(refuse(
                    &mut caller,
                    ErrorCode::ContractLimit,
                    format!("more than {CONTRACT_EVENTS_MAX} events"),
                ));
            }
            let topic = read_text(
                &mut caller,
                topic_ptr,
                topic_len,
                CONTRACT_EVENT_TOPIC_BYTES_MAX,
                "event topic",
            )?;
            let data = read(
                &mut caller,
                data_ptr,
                data_len,
                CONTRACT_EVENT_DATA_BYTES_MAX,
                "event data",
            )?;
            caller.data_mut().events.push((topic, data));
            Ok(())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "set_return",
        |mut caller: Ctx<'_>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let data = read(&mut caller, ptr, len, CONTRACT_RETURN_BYTES_MAX, "return data")?;
            caller.data_mut().return_data = data;
            Ok(())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "abort",
        |mut caller: Ctx<'_>,
         code_ptr: i32,
         code_len: i32,
         message_ptr: i32,
         message_len: i32|
         -> wasmtime::Result<()> {
            charge(&mut caller, HOST_CALL_FUEL)?;
            let code = read_text(&mut caller, code_ptr, code_len, CONTRACT_ABORT_BYTES_MAX, "abort code")?;
            let message = read_text(
                &mut caller,
                message_ptr,
                message_len,
                CONTRACT_ABORT_BYTES_MAX,
                "abort message",
            )?;
            Err(refuse(
                &mut caller,
                ErrorCode::ContractAbort,
                format!("{code}: {message}"),
            ))
        },
    )?;
    define_fx(linker, MODULE)
}
