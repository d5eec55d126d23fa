//! supply-chain-finance: an anchor enterprise's receivable, held in parts down its supply chain.
//!
//! Methods (`Args` fields; amounts in minor units):
//! - `issue(holder, currency, amount, maturity_ms)`: the caller (the anchor) owes `amount` at
//!   maturity to `holder`; returns the receivable id.
//! - `transfer(id, to, amount)`: a holder passes part of its claim down the chain.
//! - `offer(id, financier, amount, rate_bps)`: a holder offers part of its claim to a financier
//!   at a yearly discount rate.
//! - `take(id, holder)`: the financier, attaching at least the discounted price
//!   `amount − ⌊amount × rate_bps × remaining_ms / (10 000 × YEAR_MS)⌋` (the block time decides
//!   `remaining_ms`; any excess is returned), pays the holder and takes the claim.
//! - `settle(id)`: at or after maturity, the anchor attaches the whole face amount; every holder
//!   is paid its part.
//! - `check(id)`: after maturity, an unpaid receivable becomes overdue (event `overdue`).

#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use corridor_contract::{self as host, Args, ArgsWriter, abort, require};

const NEXT_ID_KEY: &[u8] = b"next";
const YEAR_MS: i128 = 365 * 24 * 60 * 60 * 1000;
const BPS_WHOLE: i128 = 10_000;
/// Holders, and open offers, per receivable.
const PARTIES_MAX: usize = 32;

struct Offer {
    holder: String,
    financier: String,
    amount: i64,
    rate_bps: u64,
}

struct Receivable {
    anchor: String,
    currency: String,
    face: i64,
    maturity_ms: u64,
    overdue: bool,
    holders: Vec<(String, i64)>,
    offers: Vec<Offer>,
}

fn key(id: u64) -> Vec<u8> {
    let mut key = Vec::from(&b"r/"[..]);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

impl Receivable {
    fn load(id: u64) -> Receivable {
        let bytes = host::storage_get(&key(id)).unwrap_or_else(|| abort("unknown_receivable", "no such receivable"));
        let mut fields = Args::new(&bytes);
        let anchor = fields.str();
        let currency = fields.str();
        let face = fields.i64();
        let maturity_ms = fields.u64();
        let overdue = fields.u64() == 1;
        let holders = (0..fields.u64()).map(|_| (fields.str(), fields.i64())).collect();
        let offers = (0..fields.u64())
            .map(|_| Offer {
                holder: fields.str(),
                financier: fields.str(),
                amount: fields.i64(),
                rate_bps: fields.u64(),
            })
            .collect();
        fields.end();
        Receivable {
            anchor,
            currency,
            face,
            maturity_ms,
            overdue,
            holders,
            offers,
        }
    }

    fn store(&self, id: u64) {
        require(
            self.holders.len() <= PARTIES_MAX && self.offers.len() <= PARTIES_MAX,
            "too_many_parties",
            "too many holders or offers",
        );
        let mut writer = ArgsWriter::new()
            .str(&self.anchor)
            .str(&self.currency)
            .i64(self.face)
            .u64(self.maturity_ms)
            .u64(u64::from(self.overdue))
            .u64(self.holders.len() as u64);
        for (holder, amount) in &self.holders {
            writer = writer.str(holder).i64(*amount);
        }
        writer = writer.u64(self.offers.len() as u64);
        for offer in &self.offers {
            writer = writer
                .str(&offer.holder)
                .str(&offer.financier)
                .i64(offer.amount)
                .u64(offer.rate_bps);
        }
        host::storage_set(&key(id), &writer.finish());
    }

    /// Move `amount` of `from`'s claim to `to`.
    fn move_claim(&mut self, from: &str, to: &str, amount: i64) {
        let Some(index) = self.holders.iter().position(|(holder, _)| holder == from) else {
            abort("not_holder", "the sender holds no part of this receivable");
        };
        require(
            amount > 0 && amount <= self.holders[index].1,
            "bad_amount",
            "more than the holder's part",
        );
        self.holders[index].1 -= amount;
        if self.holders[index].1 == 0 {
            self.holders.remove(index);
        }
        match self.holders.iter_mut().find(|(holder, _)| holder == to) {
            Some((_, held)) => *held += amount,
            None => self.holders.push((String::from(to), amount)),
        }
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
pub extern "C" fn issue() {
    let args = host::args();
    let mut fields = Args::new(&args);
    let (holder, currency, face, maturity_ms) = (fields.str(), fields.str(), fields.i64(), fields.u64());
    fields.end();
    require(face > 0, "bad_amount", "a receivable needs a positive amount");
    require(
        maturity_ms > host::block_time_ms(),
        "bad_maturity",
        "the maturity has passed",
    );
    let id = host::storage_get(NEXT_ID_KEY).map_or(0, |bytes| Args::new(&bytes).u64());
    host::storage_set(NEXT_ID_KEY, &ArgsWriter::new().u64(id + 1).finish());
    let holders = alloc::vec![(holder, face)];
    Receivable {
        anchor: host::caller(),
        currency,
        face,
        maturity_ms,
        overdue: false,
        holders,
        offers: Vec::new(),
    }
    .store(id);
    host::emit("issued", &ArgsWriter::new().u64(id).i64(face).u64(maturity_ms).finish());
    host::set_return(&id.to_le_bytes());
}

#[unsafe(no_mangle)]
pub extern "C" fn transfer() {
    let args = host::args();
    let mut fields = Args::new(&args);
    let (id, to, amount) = (fields.u64(), fields.str(), fields.i64());
    fields.end();
    let mut receivable = Receivable::load(id);
    receivable.move_claim(&host::caller(), &to, amount);
    receivable.store(id);
    host::emit("transferred", &ArgsWriter::new().u64(id).str(&to).i64(amount).finish());
}

#[unsafe(no_mangle)]
pub extern "C" fn offer() {
    let args = host::args();
    let mut fields = Args::new(&args);
    let (id, financier, amount, rate_bps) = (fields.u64(), fields.str(), fields.i64(), fields.u64());
    fields.end();
    let mut receivable = Receivable::load(id);
    let holder = host::caller();
    let held = receivable
        .holders
        .iter()
        .find(|(h, _)| *h == holder)
        .map_or(0, |(_, a)| *a);
    require(
        amount > 0 && amount <= held,
        "bad_amount",
        "more than the holder's part",
    );
    require((rate_bps as i128) < BPS_WHOLE, "bad_rate", "a rate below 100% a year");
    receivable
        .offers
        .retain(|o| !(o.holder == holder && o.financier == financier));
    receivable.offers.push(Offer {
        holder,
        financier,
        amount,
        rate_bps,
    });
    receivable.store(id);
}

#[unsafe(no_mangle)]
pub extern "C" fn take() {
    let args = host::args();
    let mut fields = Args::new(&args);
    let (id, holder) = (fields.u64(), fields.str());
    fields.end();
    let mut receivable = Receivable::load(id);
    let financier = host::caller();
    let Some(index) = receivable
        .offers
        .iter()
        .position(|o| o.holder == holder && o.financier == financier)
    else {
        abort("no_offer", "no offer from this holder to the caller");
    };
    let offer = receivable.offers.remove(index);
    let now = host::block_time_ms();
    require(
        now < receivable.maturity_ms,
        "matured",
        "a matured receivable is not discounted",
    );
    let remaining = i128::from(receivable.maturity_ms - now);
    let discount = i128::from(offer.amount) * i128::from(offer.rate_bps) * remaining / (BPS_WHOLE * YEAR_MS);
    let price = offer.amount - discount as i64;
    let paid = host::attached()
        .filter(|(currency, _)| *currency == receivable.currency)
        .map_or(0, |(_, amount)| amount);
    require(paid >= price, "bad_price", "attach at least the discounted price");
    receivable.move_claim(&holder, &financier, offer.amount);
    host::pay(&holder, &receivable.currency, price);
    host::pay(&financier, &receivable.currency, paid - price);
    receivable.store(id);
    host::emit(
        "discounted",
        &ArgsWriter::new()
            .u64(id)
            .str(&holder)
            .i64(offer.amount)
            .i64(price)
            .finish(),
    );
}

#[unsafe(no_mangle)]
pub extern "C" fn settle() {
    let id = id_arg();
    let receivable = Receivable::load(id);
    require(
        host::caller() == receivable.anchor,
        "not_allowed",
        "only the anchor settles",
    );
    require(
        host::block_time_ms() >= receivable.maturity_ms,
        "not_mature",
        "settles at maturity",
    );
    let paid = host::attached().filter(|(currency, _)| *currency == receivable.currency);
    require(
        paid.map(|(_, amount)| amount) == Some(receivable.face),
        "bad_amount",
        "attach the face amount",
    );
    for (holder, amount) in &receivable.holders {
        host::pay(holder, &receivable.currency, *amount);
    }
    host::storage_remove(&key(id));
    host::emit("settled", &ArgsWriter::new().u64(id).i64(receivable.face).finish());
}

#[unsafe(no_mangle)]
pub extern "C" fn check() {
    let id = id_arg();
    let mut receivable = Receivable::load(id);
    require(
        host::block_time_ms() > receivable.maturity_ms,
        "not_mature",
        "not yet due",
    );
    if !receivable.overdue {
        receivable.overdue = true;
        receivable.store(id);
        host::emit("overdue", &ArgsWriter::new().u64(id).i64(receivable.face).finish());
    }
}
