//! conditional-payment: money that pays only under its conditions.
//!
//! `create` (with attached funds; the caller is the payer) takes, as `Args` fields:
//! beneficiary, expiry_ms, attester ("" for none), threshold (approvals needed, 0 for none),
//! tax_authority ("" for none), tax_bps, the number of whitelisted payees then each payee
//! (none: any payee), the number of approvers then each approver. Returns the payment id.
//!
//! - `spend(id, payee, amount)`: the beneficiary pays `amount` minor units to a whitelisted
//!   payee before expiry, once attested (if an attester is set) and approved by `threshold`
//!   approvers; `tax_bps` of it (rounded down) goes to the tax authority, the rest to the payee.
//! - `attest(id)`: the attester confirms the milestone.
//! - `approve(id)`: one approver's approval (each counts once).
//! - `reclaim(id)`: after expiry, what is left returns to the payer.

#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use corridor_contract::{self as host, Args, ArgsWriter, abort, require};

const NEXT_ID_KEY: &[u8] = b"next";
const BPS_WHOLE: i64 = 10_000;
/// Whitelisted payees, and approvers, per payment.
const LIST_ENTRIES_MAX: u64 = 16;

struct Payment {
    payer: String,
    beneficiary: String,
    currency: String,
    amount: i64,
    expiry_ms: u64,
    attester: String,
    attested: bool,
    threshold: u64,
    tax_authority: String,
    tax_bps: u64,
    payees: Vec<String>,
    approvers: Vec<String>,
    approved: Vec<String>,
}

fn key(id: u64) -> Vec<u8> {
    let mut key = Vec::from(&b"p/"[..]);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn read_list(fields: &mut Args<'_>) -> Vec<String> {
    let n = fields.u64();
    require(n <= LIST_ENTRIES_MAX, "bad_args", "list too long");
    (0..n).map(|_| fields.str()).collect()
}

fn write_list(mut writer: ArgsWriter, list: &[String]) -> ArgsWriter {
    writer = writer.u64(list.len() as u64);
    for entry in list {
        writer = writer.str(entry);
    }
    writer
}

impl Payment {
    fn load(id: u64) -> Payment {
        let bytes = host::storage_get(&key(id)).unwrap_or_else(|| abort("unknown_payment", "no such payment"));
        let mut fields = Args::new(&bytes);
        let payment = Payment {
            payer: fields.str(),
            beneficiary: fields.str(),
            currency: fields.str(),
            amount: fields.i64(),
            expiry_ms: fields.u64(),
            attester: fields.str(),
            attested: fields.u64() == 1,
            threshold: fields.u64(),
            tax_authority: fields.str(),
            tax_bps: fields.u64(),
            payees: read_list(&mut fields),
            approvers: read_list(&mut fields),
            approved: read_list(&mut fields),
        };
        fields.end();
        payment
    }

    fn store(&self, id: u64) {
        let mut writer = ArgsWriter::new()
            .str(&self.payer)
            .str(&self.beneficiary)
            .str(&self.currency)
            .i64(self.amount)
            .u64(self.expiry_ms)
            .str(&self.attester)
            .u64(u64::from(self.attested))
            .u64(self.threshold)
            .str(&self.tax_authority)
            .u64(self.tax_bps);
        writer = write_list(writer, &self.payees);
        writer = write_list(writer, &self.approvers);
        writer = write_list(writer, &self.approved);
        host::storage_set(&key(id), &writer.finish());
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
    let beneficiary = fields.str();
    let expiry_ms = fields.u64();
    let attester = fields.str();
    let threshold = fields.u64();
    let tax_authority = fields.str();
    let tax_bps = fields.u64();
    let payees = read_list(&mut fields);
    let approvers = read_list(&mut fields);
    fields.end();
    let Some((currency, amount)) = host::attached() else {
        abort("no_funds", "create needs attached funds");
    };
    require(expiry_ms > host::block_time_ms(), "bad_expiry", "the expiry has passed");
    require(
        threshold <= approvers.len() as u64,
        "bad_threshold",
        "more approvals than approvers",
    );
    require(tax_bps < BPS_WHOLE as u64, "bad_tax", "tax must be below 100%");
    require(
        tax_bps == 0 || !tax_authority.is_empty(),
        "bad_tax",
        "tax needs a tax authority",
    );
    let id = host::storage_get(NEXT_ID_KEY).map_or(0, |bytes| Args::new(&bytes).u64());
    host::storage_set(NEXT_ID_KEY, &ArgsWriter::new().u64(id + 1).finish());
    Payment {
        payer: host::caller(),
        beneficiary,
        currency,
        amount,
        expiry_ms,
        attester,
        attested: false,
        threshold,
        tax_authority,
        tax_bps,
        payees,
        approvers,
        approved: Vec::new(),
    }
    .store(id);
    host::emit("created", &ArgsWriter::new().u64(id).i64(amount).finish());
    host::set_return(&id.to_le_bytes());
}

#[unsafe(no_mangle)]
pub extern "C" fn spend() {
    let args = host::args();
    let mut fields = Args::new(&args);
    let (id, payee, amount) = (fields.u64(), fields.str(), fields.i64());
    fields.end();
    let mut payment = Payment::load(id);
    require(
        host::caller() == payment.beneficiary,
        "not_allowed",
        "only the beneficiary spends",
    );
    require(
        host::block_time_ms() <= payment.expiry_ms,
        "expired",
        "the payment has expired",
    );
    require(
        payment.payees.is_empty() || payment.payees.contains(&payee),
        "not_whitelisted",
        "the payee is not on the whitelist",
    );
    require(
        payment.attester.is_empty() || payment.attested,
        "not_attested",
        "the milestone is not attested",
    );
    require(
        payment.approved.len() as u64 >= payment.threshold,
        "not_approved",
        "not enough approvals",
    );
    require(
        amount > 0 && amount <= payment.amount,
        "bad_amount",
        "more than the payment holds",
    );
    // amount ≤ i64::MAX and tax_bps < 10 000: the product fits i128.
    let tax = (i128::from(amount) * i128::from(payment.tax_bps) / i128::from(BPS_WHOLE)) as i64;
    host::pay(&payment.tax_authority, &payment.currency, tax);
    host::pay(&payee, &payment.currency, amount - tax);
    payment.amount -= amount;
    payment.store(id);
    host::emit(
        "spent",
        &ArgsWriter::new()
            .u64(id)
            .str(&payee)
            .i64(amount - tax)
            .i64(tax)
            .finish(),
    );
}

#[unsafe(no_mangle)]
pub extern "C" fn attest() {
    let id = id_arg();
    let mut payment = Payment::load(id);
    require(
        !payment.attester.is_empty() && host::caller() == payment.attester,
        "not_allowed",
        "only the attester attests",
    );
    payment.attested = true;
    payment.store(id);
    host::emit("attested", &ArgsWriter::new().u64(id).finish());
}

#[unsafe(no_mangle)]
pub extern "C" fn approve() {
    let id = id_arg();
    let mut payment = Payment::load(id);
    let caller = host::caller();
    require(payment.approvers.contains(&caller), "not_allowed", "not an approver");
    require(!payment.approved.contains(&caller), "duplicate", "already approved");
    payment.approved.push(caller);
    payment.store(id);
    host::emit("approved", &ArgsWriter::new().u64(id).finish());
}

#[unsafe(no_mangle)]
pub extern "C" fn reclaim() {
    let id = id_arg();
    let payment = Payment::load(id);
    require(
        host::block_time_ms() > payment.expiry_ms,
        "not_expired",
        "the payment is still live",
    );
    host::pay(&payment.payer, &payment.currency, payment.amount);
    host::storage_remove(&key(id));
    host::emit("reclaimed", &ArgsWriter::new().u64(id).i64(payment.amount).finish());
}
