//! escrow: a buyer funds an escrow for a seller with an arbiter and a deadline.
//!
//! Methods (arguments as `corridor_contract::Args` fields; amounts in minor units):
//! - `create(seller, arbiter, deadline_ms)` with attached funds: the caller is the buyer;
//!   returns the escrow id (u64 little-endian).
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
}

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
            .u64(u64::from(self.disputed))
            .finish();
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

#[unsafe(no_mangle)]
pub extern "C" fn create() {
    let args = host::args();
    let mut fields = Args::new(&args);
    let (seller, arbiter, deadline_ms) = (fields.str(), fields.str(), fields.u64());
    fields.end();
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
    let id = host::storage_get(NEXT_ID_KEY).map_or(0, |bytes| {
        let mut fields = Args::new(&bytes);
        fields.u64()
    });
    host::storage_set(NEXT_ID_KEY, &ArgsWriter::new().u64(id + 1).finish());
    Escrow {
        buyer,
        seller,
        arbiter,
        currency,
        amount,
        deadline_ms,
        disputed: false,
    }
    .store(id);
    host::emit("created", &ArgsWriter::new().u64(id).i64(amount).finish());
    host::set_return(&id.to_le_bytes());
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
    let amount = escrow.amount;
    escrow.close(id, amount, "released");
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
