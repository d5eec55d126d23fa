//! escrow: a buyer funds an escrow for a seller with an arbiter and a deadline.
//!
//! Methods (arguments as `corridor_contract::Args` fields; amounts in minor units):
//! - `create(seller, arbiter, deadline_ms)` with attached funds: the caller is the buyer;
//!   returns the escrow id (u64 little-endian).
//! - `create_fx(seller, arbiter, deadline_ms, provider, buy_currency)` with attached funds: as
//!   `create`, and the contract locks `provider`'s rate for selling the funds for
//!   `buy_currency` until the deadline; returns the id, the amount locked to buy (minor
//!   units) and the rate (units of 10^-10), three u64/i64 little-endian. Its `release` pays
//!   the seller that amount of `buy_currency` at the locked rate however the oracle has moved
//!   since (both legs or neither); `refund`, `capture` and `decide` pay in the funded currency
//!   and leave the lock to expire at the deadline.
//! - `release(id)`: the buyer, or the arbiter, pays the whole remaining amount to the seller.
//! - `capture(id, amount)`: the seller takes `amount` (a deposit pre-authorization's capture);
//!   the rest goes back to the buyer.
//! - `refund(id)`: after the deadline, the remaining amount goes back to the buyer.
//! - `dispute(id)`: the buyer or the seller freezes the escrow for the arbiter.
//! - `decide(id, to_seller)`: the arbiter splits a disputed (or any open) escrow.
//!
//! A disputed escrow moves only by `decide`.

#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use corridor_contract::{self as host, Args, ArgsWriter, abort, require};

struct Escrow {
    buyer: String,
    seller: String,
    arbiter: String,
    currency: String,
    amount: i64,
    deadline_ms: u64,
    disputed: bool,
    /// The FX lock of a `create_fx` escrow: its id, the buy currency and amount.
    fx: Option<(u64, String, i64)>,
}

/// The stored lock id of an escrow without one.
const NO_LOCK: u64 = u64::MAX;

const NEXT_ID_KEY: &[u8] = b"next";

fn key(id: u64) -> Vec<u8> {
    let mut key = Vec::from(&b"e/"[..]);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

impl Escrow {
    fn load(id: u64) -> Escrow {
        let bytes = host::storage_get(&key(id)).unwrap_or_else(|| abort("unknown_escrow", "no such escrow"));
        let mut fields = Args::new(&bytes);
        let escrow = Escrow {
            buyer: fields.str(),
            seller: fields.str(),
            arbiter: fields.str(),
            currency: fields.str(),
            amount: fields.i64(),
            deadline_ms: fields.u64(),
            disputed: fields.u64() == 1,
            fx: {
                let (lock, currency, amount) = (fields.u64(), fields.str(), fields.i64());
                (lock != NO_LOCK).then_some((lock, currency, amount))
            },
        };
        fields.end();
        escrow
    }

    fn store(&self, id: u64) {
        let bytes = ArgsWriter::new()
            .str(&self.buyer)
            .str(&self.seller)
            .str(&self.arbiter)
            .str(&self.currency)
            .i64(self.amount)
            .u64(self.deadline_ms)
            .u64(u64::from(self.disputed));
        let (lock, currency, amount) = match &self.fx {
            Some((lock, currency, amount)) => (*lock, currency.as_str(), *amount),
            None => (NO_LOCK, "", 0),
        };
        let bytes = bytes.u64(lock).str(currency).i64(amount).finish();
        host::storage_set(&key(id), &bytes);
    }

    /// Pay `to_seller` to the seller and the rest to the buyer, and close the escrow.
    fn close(self, id: u64, to_seller: i64, topic: &str) {
        require(
            (0..=self.amount).contains(&to_seller),
            "bad_amount",
            "more than the escrow holds",
        );
        host::pay(&self.seller, &self.currency, to_seller);
        host::pay(&self.buyer, &self.currency, self.amount - to_seller);
        host::storage_remove(&key(id));
        host::emit(
            topic,
            &ArgsWriter::new()
                .u64(id)
                .i64(to_seller)
                .i64(self.amount - to_seller)
                .finish(),
        );
    }
}

fn id_arg() -> u64 {
    let args = host::args();
    let mut fields = Args::new(&args);
    let id = fields.u64();
    fields.end();
    id
}

/// The escrow `create` and `create_fx` open: the caller's attached funds for `seller`.
fn open(seller: String, arbiter: String, deadline_ms: u64) -> Escrow {
    let Some((currency, amount)) = host::attached() else {
        abort("no_funds", "create needs attached funds");
    };
    let buyer = host::caller();
    require(seller != buyer, "bad_party", "the buyer cannot be the seller");
    require(
        deadline_ms > host::block_time_ms(),
        "bad_deadline",
        "the deadline has passed",
    );
    Escrow {
        buyer,
        seller,
        arbiter,
        currency,
        amount,
        deadline_ms,
        disputed: false,
        fx: None,
    }
}

/// Store a new escrow under the next id and say so.
fn register(escrow: &Escrow) -> u64 {
    let id = host::storage_get(NEXT_ID_KEY).map_or(0, |bytes| {
        let mut fields = Args::new(&bytes);
        fields.u64()
    });
    host::storage_set(NEXT_ID_KEY, &ArgsWriter::new().u64(id + 1).finish());
    escrow.store(id);
    host::emit("created", &ArgsWriter::new().u64(id).i64(escrow.amount).finish());
    id
}

#[unsafe(no_mangle)]
pub extern "C" fn create() {
    let args = host::args();
    let mut fields = Args::new(&args);
    let (seller, arbiter, deadline_ms) = (fields.str(), fields.str(), fields.u64());
    fields.end();
    let id = register(&open(seller, arbiter, deadline_ms));
    host::set_return(&id.to_le_bytes());
}

#[unsafe(no_mangle)]
pub extern "C" fn create_fx() {
    let args = host::args();
    let mut fields = Args::new(&args);
    let (seller, arbiter, deadline_ms) = (fields.str(), fields.str(), fields.u64());
    let (provider, buy_currency) = (fields.str(), fields.str());
    fields.end();
    let mut escrow = open(seller, arbiter, deadline_ms);
    let window_ms = deadline_ms - host::block_time_ms();
    let lock = host::fx_lock(&provider, &escrow.currency, &buy_currency, escrow.amount, window_ms);
    escrow.fx = Some((lock.id, buy_currency, lock.buy_amount));
    let id = register(&escrow);
    host::emit(
        "fx_locked",
        &ArgsWriter::new()
            .u64(id)
            .u64(lock.id)
            .i64(lock.buy_amount)
            .i64(lock.rate)
            .finish(),
    );
    let mut out = [0u8; 24];
    out[..8].copy_from_slice(&id.to_le_bytes());
    out[8..16].copy_from_slice(&lock.buy_amount.to_le_bytes());
    out[16..].copy_from_slice(&lock.rate.to_le_bytes());
    host::set_return(&out);
}

#[unsafe(no_mangle)]
pub extern "C" fn release() {
    let id = id_arg();
    let escrow = Escrow::load(id);
    let caller = host::caller();
    require(
        !escrow.disputed,
        "disputed",
        "a disputed escrow is decided by the arbiter",
    );
    require(
        caller == escrow.buyer || caller == escrow.arbiter,
        "not_allowed",
        "only the buyer or the arbiter releases",
    );
    match &escrow.fx {
        // Both legs or neither: the funds to the provider, the locked amount to the seller.
        Some((lock, currency, bought)) => {
            host::fx_settle(*lock, &escrow.seller);
            host::storage_remove(&key(id));
            host::emit(
                "released",
                &ArgsWriter::new()
                    .u64(id)
                    .i64(escrow.amount)
                    .str(currency)
                    .i64(*bought)
                    .finish(),
            );
        }
        None => {
            let amount = escrow.amount;
            escrow.close(id, amount, "released");
        }
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn capture() {
    let args = host::args();
    let mut fields = Args::new(&args);
    let (id, amount) = (fields.u64(), fields.i64());
    fields.end();
    let escrow = Escrow::load(id);
    require(
        !escrow.disputed,
        "disputed",
        "a disputed escrow is decided by the arbiter",
    );
    require(
        host::caller() == escrow.seller,
        "not_allowed",
        "only the seller captures",
    );
    escrow.close(id, amount, "captured");
}

#[unsafe(no_mangle)]
pub extern "C" fn refund() {
    let id = id_arg();
    let escrow = Escrow::load(id);
    require(
        !escrow.disputed,
        "disputed",
        "a disputed escrow is decided by the arbiter",
    );
    require(
        host::block_time_ms() > escrow.deadline_ms,
        "before_deadline",
        "refunds open after the deadline",
    );
    escrow.close(id, 0, "refunded");
}

#[unsafe(no_mangle)]
pub extern "C" fn dispute() {
    let id = id_arg();
    let mut escrow = Escrow::load(id);
    let caller = host::caller();
    require(
        caller == escrow.buyer || caller == escrow.seller,
        "not_allowed",
        "only the buyer or the seller disputes",
    );
    escrow.disputed = true;
    escrow.store(id);
    host::emit("disputed", &ArgsWriter::new().u64(id).finish());
}

#[unsafe(no_mangle)]
pub extern "C" fn decide() {
    let args = host::args();
    let mut fields = Args::new(&args);
    let (id, to_seller) = (fields.u64(), fields.i64());
    fields.end();
    let escrow = Escrow::load(id);
    require(
        host::caller() == escrow.arbiter,
        "not_allowed",
        "only the arbiter decides",
    );
    escrow.close(id, to_seller, "decided");
}
