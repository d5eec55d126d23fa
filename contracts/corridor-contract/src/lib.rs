//! corridor-contract: the guest side of the corridor contract ABI (contracts/ABI.md).
//!
//! A contract is a `cdylib` for `wasm32-unknown-unknown` that exports `memory`, optionally
//! `init`, and one export per method, each `fn()` with no parameters and no results. Everything
//! else goes through the host functions of the `corridor` import module, wrapped here:
//! arguments, storage, caller, block height and time, balances, transfers, events, abort.
//!
//! Amounts cross the boundary as `i64` minor units of the currency (its smallest unit, at the
//! currency's scale: 12.34 CNY at scale 2 is 1234). No floats anywhere.
//!
//! Each call runs in a fresh instance, so the bump allocator below never needs to free.

#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

pub mod args;
pub use args::{Args, ArgsWriter};

mod host {
    #[link(wasm_import_module = "corridor")]
    unsafe extern "C" {
        pub fn args_len() -> i32;
        pub fn args_read(ptr: i32);
        pub fn caller(ptr: i32, cap: i32) -> i32;
        pub fn contract_id() -> i64;
        pub fn block_height() -> i64;
        pub fn block_time_ms() -> i64;
        pub fn storage_get(key_ptr: i32, key_len: i32, value_ptr: i32, value_cap: i32) -> i32;
        pub fn storage_set(key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32);
        pub fn storage_remove(key_ptr: i32, key_len: i32);
        pub fn balance(currency_ptr: i32, currency_len: i32) -> i64;
        pub fn attached_currency(ptr: i32, cap: i32) -> i32;
        pub fn attached_amount() -> i64;
        pub fn transfer(to_ptr: i32, to_len: i32, currency_ptr: i32, currency_len: i32, amount: i64);
        pub fn emit(topic_ptr: i32, topic_len: i32, data_ptr: i32, data_len: i32);
        pub fn set_return(ptr: i32, len: i32);
        pub fn abort(code_ptr: i32, code_len: i32, message_ptr: i32, message_len: i32) -> !;
        pub fn fx_rate(sell_ptr: i32, sell_len: i32, buy_ptr: i32, buy_len: i32) -> i64;
        pub fn fx_lock(
            provider_ptr: i32,
            provider_len: i32,
            sell_ptr: i32,
            sell_len: i32,
            buy_ptr: i32,
            buy_len: i32,
            sell_amount: i64,
            window_ms: i64,
            out_ptr: i32,
        ) -> i64;
        pub fn fx_settle(lock_id: i64, to_ptr: i32, to_len: i32);
    }
}

fn ptr<T>(slice: &[T]) -> i32 {
    slice.as_ptr() as i32
}

fn len<T>(slice: &[T]) -> i32 {
    slice.len() as i32
}

/// Account ids are at most 64 bytes (ACCOUNT_ID_BYTES_MAX); currency codes at most 8.
const ACCOUNT_ID_BYTES_MAX: usize = 64;
const CURRENCY_CODE_BYTES_MAX: usize = 8;

/// The call's argument bytes.
pub fn args() -> Vec<u8> {
    let n = unsafe { host::args_len() } as usize;
    let mut buffer = vec![0u8; n];
    unsafe { host::args_read(ptr(&buffer)) };
    buffer.truncate(n);
    buffer
}

fn read_text(read: impl Fn(i32, i32) -> i32, cap: usize) -> String {
    let mut buffer = vec![0u8; cap];
    let n = read(ptr(&buffer), cap as i32);
    if n < 0 || n as usize > cap {
        abort("host", "text longer than its limit");
    }
    buffer.truncate(n as usize);
    String::from_utf8(buffer).unwrap_or_else(|_| abort("host", "text is not UTF-8"))
}

/// The account that signed the calling transaction.
pub fn caller() -> String {
    read_text(|p, c| unsafe { host::caller(p, c) }, ACCOUNT_ID_BYTES_MAX)
}

/// This contract's id.
pub fn contract_id() -> u64 {
    unsafe { host::contract_id() as u64 }
}

pub fn block_height() -> u64 {
    unsafe { host::block_height() as u64 }
}

/// The block's time in ms since the Unix epoch: the only clock a contract has.
pub fn block_time_ms() -> u64 {
    unsafe { host::block_time_ms() as u64 }
}

/// This contract's own storage.
pub fn storage_get(key: &[u8]) -> Option<Vec<u8>> {
    let mut buffer = vec![0u8; 256];
    loop {
        let n = unsafe { host::storage_get(ptr(key), len(key), ptr(&buffer), len(&buffer)) };
        if n < 0 {
            return None;
        }
        if n as usize <= buffer.len() {
            buffer.truncate(n as usize);
            return Some(buffer);
        }
        buffer = vec![0u8; n as usize];
    }
}

pub fn storage_set(key: &[u8], value: &[u8]) {
    unsafe { host::storage_set(ptr(key), len(key), ptr(value), len(value)) }
}

pub fn storage_remove(key: &[u8]) {
    unsafe { host::storage_remove(ptr(key), len(key)) }
}

/// This contract's balance of `currency`, in minor units.
pub fn balance(currency: &str) -> i64 {
    unsafe { host::balance(ptr(currency.as_bytes()), len(currency.as_bytes())) }
}

/// The funds the caller attached to this call (already in this contract's balance).
pub fn attached() -> Option<(String, i64)> {
    let currency = read_text(|p, c| unsafe { host::attached_currency(p, c) }, CURRENCY_CODE_BYTES_MAX);
    if currency.is_empty() {
        return None;
    }
    Some((currency, unsafe { host::attached_amount() }))
}

/// Pay `amount` minor units of `currency` from this contract's own balance to `to`. A payment
/// the contract cannot make (more than it holds, a bad account id or amount) stops the call
/// with the ledger's code; the compliance hook checks the receiver when the call commits, and
/// a refusal there fails the whole call too.
pub fn transfer(to: &str, currency: &str, amount: i64) {
    let (to, currency) = (to.as_bytes(), currency.as_bytes());
    unsafe { host::transfer(ptr(to), len(to), ptr(currency), len(currency), amount) };
}

/// `transfer` when `amount` is positive; nothing for zero.
pub fn pay(to: &str, currency: &str, amount: i64) {
    if amount > 0 {
        transfer(to, currency, amount);
    }
}

/// An event in the transaction's receipt: a topic and bytes.
pub fn emit(topic: &str, data: &[u8]) {
    unsafe { host::emit(ptr(topic.as_bytes()), len(topic.as_bytes()), ptr(data), len(data)) }
}

/// The call's return data, recorded in the receipt.
pub fn set_return(data: &[u8]) {
    unsafe { host::set_return(ptr(data), len(data)) }
}

/// Stop the call: every effect is reverted and the transaction fails with `contract_abort`,
/// carrying `code` and `message`.
pub fn abort(code: &str, message: &str) -> ! {
    unsafe {
        host::abort(
            ptr(code.as_bytes()),
            len(code.as_bytes()),
            ptr(message.as_bytes()),
            len(message.as_bytes()),
        )
    }
}

/// Rates cross the boundary as `i64` units of 10^-10 (`RATE_SCALE`): 4.9 THB per CNY is
/// 49_000_000_000.
pub const RATE_SCALE: u32 = 10;

/// The oracle rate of `sell`/`buy` now (the median of fresh posts, in units of 10^-10), or
/// `None` if no provider posted one recently enough.
pub fn fx_rate(sell: &str, buy: &str) -> Option<i64> {
    let (sell, buy) = (sell.as_bytes(), buy.as_bytes());
    let rate = unsafe { host::fx_rate(ptr(sell), len(sell), ptr(buy), len(buy)) };
    (rate >= 0).then_some(rate)
}

/// A lock this contract holds: `buy_amount` of the buy currency (minor units) reserved for it
/// at `rate` (units of 10^-10) until `expires_at_ms`.
pub struct FxLock {
    pub id: u64,
    pub buy_amount: i64,
    pub rate: i64,
    pub expires_at_ms: u64,
}

/// Lock `provider`'s client rate for this contract selling `sell_amount` minor units of
/// `sell` (a currency it holds) for `buy`, for `window_ms` of block time; the provider's buy
/// currency is reserved at once. A lock the ledger refuses (no rate, not a liquidity provider,
/// too little liquidity) stops the call with its code.
pub fn fx_lock(provider: &str, sell: &str, buy: &str, sell_amount: i64, window_ms: u64) -> FxLock {
    let (provider, sell, buy) = (provider.as_bytes(), sell.as_bytes(), buy.as_bytes());
    let mut out = [0u8; 24];
    let id = unsafe {
        host::fx_lock(
            ptr(provider),
            len(provider),
            ptr(sell),
            len(sell),
            ptr(buy),
            len(buy),
            sell_amount,
            window_ms as i64,
            out.as_mut_ptr() as i32,
        )
    };
    let field = |index: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&out[index * 8..index * 8 + 8]);
        i64::from_le_bytes(bytes)
    };
    FxLock {
        id: id as u64,
        buy_amount: field(0),
        rate: field(1),
        expires_at_ms: field(2) as u64,
    }
}

/// Settle this contract's lock before it expires: the lock's sell amount leaves this
/// contract's balance for the provider, and the reserved buy amount goes to `to`, both or
/// neither (PvP). A refusal (expired, not this contract's) stops the call with its code.
pub fn fx_settle(lock_id: u64, to: &str) {
    let to = to.as_bytes();
    unsafe { host::fx_settle(lock_id as i64, ptr(to), len(to)) }
}

/// `abort` unless `condition`.
pub fn require(condition: bool, code: &str, message: &str) {
    if !condition {
        abort(code, message);
    }
}

#[cfg(target_arch = "wasm32")]
mod runtime {
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;

    const PAGE_BYTES: usize = 65_536;

    /// A bump allocator: each call gets a fresh instance, so nothing needs to be freed.
    struct Bump {
        next: UnsafeCell<usize>,
    }

    unsafe impl Sync for Bump {}

    unsafe impl GlobalAlloc for Bump {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let next = unsafe { &mut *self.next.get() };
            if *next == 0 {
                *next = core::arch::wasm32::memory_size(0) * PAGE_BYTES;
            }
            let start = (*next + layout.align() - 1) & !(layout.align() - 1);
            let end = start + layout.size();
            let have = core::arch::wasm32::memory_size(0) * PAGE_BYTES;
            if end > have {
                let pages = (end - have).div_ceil(PAGE_BYTES);
                if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                    return core::ptr::null_mut();
                }
            }
            *next = end;
            start as *mut u8
        }

        unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
    }

    #[global_allocator]
    static ALLOCATOR: Bump = Bump {
        next: UnsafeCell::new(0),
    };

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
        super::abort("panic", "the contract panicked")
    }
}
