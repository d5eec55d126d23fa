//! The wasm runtime: wasmtime, pinned to one exact release (its fuel semantics are consensus
//! critical) and configured for determinism in `engine_config`, the one place (ADR 0021).
//!
//! Rules it keeps:
//! - A call is a pure function of (module, host state, fuel): no clock, no randomness, no
//!   threads, canonical NaNs, fixed memory, table and stack limits.
//! - Host functions charge fuel for the work they do, on top of wasmtime's per-operator fuel.
//! - Compiled modules are cached by (code hash, `RUNTIME_FINGERPRINT`); the cache only saves
//!   compile time, it never changes a result.
//! - A call's effects live in `HostState` until the caller (ledger::contracts) commits them;
//!   a trap, running out of fuel or a host refusal leaves nothing behind.

mod host;

pub(crate) use host::{CONTRACT_FX_CALLS_MAX, CallEnv, CallOutcome, FxAnswer, FxRequest, HostState};

/// How a run of a call ended without a failure.
pub(crate) enum CallResult {
    Done(CallOutcome),
    /// It stopped at an FX question: the ledger answers it, then runs the call again.
    NeedsFx(FxRequest),
}

use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::{Hash, HashAlgorithm};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use wasmtime::{Config, Engine, InstancePre, Linker, Module, OptLevel, Store, WasmFeatures};

/// Linear memory one instance may have.
pub(crate) const CONTRACT_MEMORY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Elements of one table.
pub(crate) const CONTRACT_TABLE_ELEMENTS_MAX: usize = 10_000;
/// Native stack wasm may use; deep recursion traps with `contract_stack_overflow`.
pub(crate) const CONTRACT_STACK_BYTES_MAX: usize = 512 * 1024;
/// Compiled modules kept in memory.
const CONTRACT_MODULES_CACHED_MAX: usize = 256;
/// What the compiled-module cache key includes besides the code hash. Changing wasmtime or
/// `engine_config` changes fuel use, so it is a decision with an ADR.
pub(crate) const RUNTIME_FINGERPRINT: &str = "wasmtime=48.0.8;corridor-wasm-config=1";

/// The one deterministic configuration (every feature's setting is listed in ADR 0021).
fn engine_config() -> Config {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(false)
        .cranelift_nan_canonicalization(true)
        .cranelift_opt_level(OptLevel::Speed)
        .max_wasm_stack(CONTRACT_STACK_BYTES_MAX)
        // What rustc's wasm32-unknown-unknown output uses stays on.
        .wasm_multi_value(true)
        .wasm_bulk_memory(true)
        .wasm_features(WasmFeatures::REFERENCE_TYPES, true)
        // Everything else is off.
        .wasm_simd(false)
        .wasm_relaxed_simd(false)
        .wasm_multi_memory(false)
        .wasm_memory64(false)
        .wasm_shared_everything_threads(false)
        .wasm_tail_call(false)
        .wasm_extended_const(false)
        .wasm_gc(false)
        .wasm_wide_arithmetic(false)
        .wasm_custom_page_sizes(false)
        .wasm_stack_switching(false)
        .wasm_branch_hinting(false)
        .wasm_backtrace_max_frames(None)
        // Compiled out of this build (crate features off), and off here as well.
        .wasm_features(WasmFeatures::THREADS, false)
        .wasm_features(WasmFeatures::FUNCTION_REFERENCES, false)
        .wasm_features(WasmFeatures::EXCEPTIONS, false)
        .wasm_features(WasmFeatures::LEGACY_EXCEPTIONS, false)
        .wasm_features(WasmFeatures::COMPONENT_MODEL, false);
    config
}

pub(crate) struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Mutex<BTreeMap<Hash, Arc<InstancePre<HostState>>>>,
}

/// The node's one runtime (an `Engine` is meant to be shared).
pub(crate) fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let engine = Engine::new(&engine_config()).expect("the contract engine configuration is valid");
        let mut linker = Linker::new(&engine);
        host::define(&mut linker).expect("host functions link");
        Runtime {
            engine,
            linker,
            cache: Mutex::new(BTreeMap::new()),
        }
    })
}

fn invalid(message: String) -> Error {
    Error::new(ErrorCode::ContractInvalid, message)
}

impl Runtime {
    /// Validate, compile and link `code` (or take it from the cache). Refuses modules that
    /// are not binary wasm, use a disabled feature, import anything the ABI does not define,
    /// or do not export their memory as `memory`.
    pub fn prepare(&self, code: &[u8]) -> Result<Arc<InstancePre<HostState>>, Error> {
        let key = HashAlgorithm::Sha256.digest_parts(&[RUNTIME_FINGERPRINT.as_bytes(), code]);
        self.prepare_keyed(key, || Ok(code.to_vec()))
    }

    /// `prepare` for deployed code, cached by the hash the chain stored it under, so a cached
    /// module costs neither reading its code from state nor hashing it again; `code` is
    /// called only on a cache miss.
    pub fn prepare_stored(
        &self,
        code_hash: &Hash,
        code: impl FnOnce() -> Vec<u8>,
    ) -> Result<Arc<InstancePre<HostState>>, Error> {
        let key = HashAlgorithm::Sha256.digest_parts(&[RUNTIME_FINGERPRINT.as_bytes(), b"stored", &code_hash.0]);
        self.prepare_keyed(key, || Ok(code()))
    }

    fn prepare_keyed(
        &self,
        key: Hash,
        code: impl FnOnce() -> Result<Vec<u8>, Error>,
    ) -> Result<Arc<InstancePre<HostState>>, Error> {
        if let Some(pre) = self.cache.lock().get(&key) {
            return Ok(Arc::clone(pre));
        }
        let code = code()?;
        let code = code.as_slice();
        let module = Module::from_binary(&self.engine, code).map_err(|error| invalid(format!("{error:#}")))?;
        let exports_memory = module
            .exports()
            .any(|export| export.name() == "memory" && export.ty().memory().is_some());
        if !exports_memory {
            return Err(invalid("the module does not export its memory as `memory`".into()));
        }
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|error| invalid(format!("{error:#}")))?;
        let pre = Arc::new(pre);
        let mut cache = self.cache.lock();
        if cache.len() >= CONTRACT_MODULES_CACHED_MAX {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&pre));
        Ok(pre)
    }

    /// Run `method` (an export `fn()`) in a fresh instance with `fuel`. `Ok(Done)` carries
    /// the state with every effect the call asked for; `Ok(NeedsFx)` an FX question to answer
    /// before running it again; `Err` means none of its effects may happen.
    pub fn call(
        &self,
        pre: &InstancePre<HostState>,
        env: CallEnv,
        method: &str,
        fuel: u64,
        optional: bool,
    ) -> Result<CallResult, Error> {
        let mut store = Store::new(&self.engine, HostState::new(env));
        store.limiter(|state| &mut state.limits);
        store.set_fuel(fuel).expect("fuel is enabled");
        let result = (|| -> Result<bool, wasmtime::Error> {
            let instance = pre.instantiate(&mut store)?;
            let Some(func) = instance.get_func(&mut store, method) else {
                return Ok(false);
            };
            let func = func.typed::<(), ()>(&store)?;
            func.call(&mut store, ())?;
            Ok(true)
        })();
        let fuel_used = fuel - store.get_fuel().expect("fuel is enabled");
        let mut state = store.into_data();
        if let Some(request) = state.fx_needed.take() {
            return Ok(CallResult::NeedsFx(request));
        }
        match result {
            Ok(true) => Ok(CallResult::Done(state.finish(fuel_used))),
            Ok(false) if optional => Ok(CallResult::Done(state.finish(fuel_used))),
            Ok(false) => Err(Error::new(
                ErrorCode::UnknownMethod,
                format!("the contract has no method `{method}`"),
            )),
            Err(error) => Err(host::classify(&state, &error)),
        }
    }
}
