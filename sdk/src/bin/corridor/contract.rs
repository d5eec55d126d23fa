//! `corridor contract deploy|call|state` and the typed `corridor escrow ...` commands.

use crate::args::SenderArgs;
use crate::commands::Context;
use crate::input;
use crate::output::{self, Failure};
use clap::{Args, Subcommand};
use corridor_sdk::api::TxView;
use corridor_sdk::contract::{self, ContractView};
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::limits::CONTRACT_MODULE_BYTES_MAX;
use corridor_sdk::{AccountId, Amount, CurrencyCode, Event, Operation};
use std::path::PathBuf;

/// Fuel a command gives a contract unless told otherwise.
const FUEL_DEFAULT: u64 = 10_000_000;

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    /// Deploy a wasm module; prints the contract id.
    Deploy {
        #[command(flatten)]
        sender: SenderArgs,
        #[arg(long, value_name = "FILE")]
        wasm: PathBuf,
        /// Arguments of the module's `init`, hex.
        #[arg(long, value_name = "HEX", default_value = "")]
        init_args: String,
        #[arg(long, default_value_t = FUEL_DEFAULT, value_name = "N")]
        fuel: u64,
    },
    /// Call a contract's method; prints the fuel used and the return data (hex).
    Call {
        #[command(flatten)]
        sender: SenderArgs,
        id: u64,
        method: String,
        /// Argument bytes, hex.
        #[arg(long, value_name = "HEX", default_value = "")]
        args: String,
        /// Funds to attach, `AMOUNT:CUR`.
        #[arg(long, value_name = "AMOUNT:CUR", value_parser = parse_funds)]
        funds: Option<(CurrencyCode, Amount)>,
        #[arg(long, default_value_t = FUEL_DEFAULT, value_name = "N")]
        fuel: u64,
    },
    /// A contract's code hash, balances and storage.
    State { id: u64 },
}

fn parse_funds(text: &str) -> Result<(CurrencyCode, Amount), Error> {
    let (amount, currency) = text
        .split_once(':')
        .ok_or_else(|| Error::new(ErrorCode::BadRequest, format!("funds `{text}` are not AMOUNT:CUR")))?;
    Ok((CurrencyCode::new(currency)?, Amount::parse(amount)?))
}

#[derive(Debug, Args)]
pub struct EscrowTarget {
    #[command(flatten)]
    pub sender: SenderArgs,
    /// The deployed escrow contract.
    #[arg(long, value_name = "ID")]
    pub contract: u64,
    #[arg(long, default_value_t = FUEL_DEFAULT, value_name = "N")]
    pub fuel: u64,
}

#[derive(Debug, Subcommand)]
pub enum EscrowCommand {
    /// Fund an escrow for SELLER (the signer is the buyer); prints the escrow id.
    Create {
        #[command(flatten)]
        target: EscrowTarget,
        #[arg(long, value_name = "ACCOUNT")]
        seller: AccountId,
        #[arg(long, value_name = "ACCOUNT")]
        arbiter: AccountId,
        #[arg(long, value_name = "DEC")]
        amount: Amount,
        #[arg(long, value_name = "CUR")]
        currency: CurrencyCode,
        /// Block time after which the buyer may take a refund, ms since the epoch.
        #[arg(long, value_name = "MS")]
        deadline_ms: u64,
    },
    /// Pay the whole escrow to the seller (buyer or arbiter).
    Release {
        #[command(flatten)]
        target: EscrowTarget,
        escrow: u64,
    },
    /// Refund the buyer after the deadline.
    Refund {
        #[command(flatten)]
        target: EscrowTarget,
        escrow: u64,
    },
    /// Freeze the escrow for the arbiter (buyer or seller).
    Dispute {
        #[command(flatten)]
        target: EscrowTarget,
        escrow: u64,
    },
    /// The seller captures AMOUNT; the rest returns to the buyer.
    Capture {
        #[command(flatten)]
        target: EscrowTarget,
        escrow: u64,
        #[arg(long, value_name = "DEC")]
        amount: Amount,
        #[arg(long, value_name = "CUR")]
        currency: CurrencyCode,
    },
    /// The arbiter pays TO_SELLER to the seller and the rest to the buyer.
    Decide {
        #[command(flatten)]
        target: EscrowTarget,
        escrow: u64,
        #[arg(long, value_name = "DEC")]
        to_seller: Amount,
        #[arg(long, value_name = "CUR")]
        currency: CurrencyCode,
    },
}

fn hex_arg(text: &str, what: &str) -> Result<Vec<u8>, Failure> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    input::parse_hex(text, what).map_err(Failure::input)
}

/// The first `ContractCalled` event's return data and fuel, and a deployed contract's id.
fn call_results(view: &TxView) -> (Option<u64>, Option<u64>, Option<Vec<u8>>) {
    let (mut deployed, mut fuel, mut data) = (None, None, None);
    for event in view.receipt.iter().flat_map(|receipt| &receipt.events) {
        match event {
            Event::ContractDeployed { contract, .. } => deployed = Some(*contract),
            Event::ContractCalled {
                fuel_used, return_data, ..
            } if fuel.is_none() => {
                fuel = Some(*fuel_used);
                data = Some(return_data.clone());
            }
            _ => {}
        }
    }
    (deployed, fuel, data)
}

impl Context {
    async fn submit_contract(&self, sender: &SenderArgs, operation: Operation) -> Result<(u8, TxView), Failure> {
        let key = self.signing_key()?;
        let sender = self.sender(sender, &key).await?;
        let tx = self.client.build(&sender, operation, self.expires_in).await?;
        tx.check_shape().map_err(Failure::input)?;
        let hash = self.client.submit(&tx.sign(&key)).await?;
        let view = self.wait(&hash).await?;
        let code = self.report_outcome(&view)?;
        if !self.json {
            let (deployed, fuel, data) = call_results(&view);
            let mut rows = Vec::new();
            if let Some(contract) = deployed {
                rows.push(("contract_id", contract.to_string()));
            }
            if let Some(fuel) = fuel {
                rows.push(("fuel_used", fuel.to_string()));
            }
            if let Some(data) = data.filter(|data| !data.is_empty()) {
                rows.push(("return", hex::encode(data)));
            }
            print!("{}", output::fields(&rows));
        }
        Ok((code, view))
    }

    pub(crate) async fn contract(&self, command: ContractCommand) -> Result<u8, Failure> {
        match command {
            ContractCommand::Deploy {
                sender,
                wasm,
                init_args,
                fuel,
            } => {
                let code =
                    input::read_file_limited(&wasm, CONTRACT_MODULE_BYTES_MAX, "wasm").map_err(Failure::input)?;
                let init_args = hex_arg(&init_args, "init args")?;
                let operation = Operation::DeployContract { code, init_args, fuel };
                Ok(self.submit_contract(&sender, operation).await?.0)
            }
            ContractCommand::Call {
                sender,
                id,
                method,
                args,
                funds,
                fuel,
            } => {
                let operation = Operation::CallContract {
                    contract: id,
                    method,
                    args: hex_arg(&args, "args")?,
                    funds,
                    fuel,
                };
                Ok(self.submit_contract(&sender, operation).await?.0)
            }
            ContractCommand::State { id } => {
                let view = self.client.contract(id).await?;
                self.show(&view, contract_text)
            }
        }
    }

    /// Minor units of `amount` in `currency`, at the chain's scale for it.
    async fn minor_units(&self, amount: Amount, currency: &CurrencyCode) -> Result<i64, Failure> {
        let currencies = self.client.currencies().await?;
        let scale = currencies
            .iter()
            .find(|c| &c.code == currency)
            .map(|c| c.scale)
            .ok_or_else(|| {
                Failure::input(Error::new(
                    ErrorCode::UnknownCurrency,
                    format!("no currency {currency}"),
                ))
            })?;
        contract::to_minor_units(amount, scale).map_err(Failure::input)
    }

    pub(crate) async fn escrow(&self, command: EscrowCommand) -> Result<u8, Failure> {
        let (target, method, args, funds) = match command {
            EscrowCommand::Create {
                target,
                seller,
                arbiter,
                amount,
                currency,
                deadline_ms,
            } => {
                let args = contract::escrow::create(&seller, &arbiter, deadline_ms);
                (target, "create", args, Some((currency, amount)))
            }
            EscrowCommand::Release { target, escrow } => (target, "release", contract::escrow::id(escrow), None),
            EscrowCommand::Refund { target, escrow } => (target, "refund", contract::escrow::id(escrow), None),
            EscrowCommand::Dispute { target, escrow } => (target, "dispute", contract::escrow::id(escrow), None),
            EscrowCommand::Capture {
                target,
                escrow,
                amount,
                currency,
            } => {
                let minor = self.minor_units(amount, &currency).await?;
                (target, "capture", contract::escrow::id_amount(escrow, minor), None)
            }
            EscrowCommand::Decide {
                target,
                escrow,
                to_seller,
                currency,
            } => {
                let minor = self.minor_units(to_seller, &currency).await?;
                (target, "decide", contract::escrow::id_amount(escrow, minor), None)
            }
        };
        let is_create = method == "create";
        let operation = Operation::CallContract {
            contract: target.contract,
            method: method.to_owned(),
            args,
            funds,
            fuel: target.fuel,
        };
        let (code, view) = self.submit_contract(&target.sender, operation).await?;
        if is_create && !self.json {
            let (_, _, data) = call_results(&view);
            if let Some(id) = data.and_then(|data| <[u8; 8]>::try_from(data.as_slice()).ok()) {
                print!(
                    "{}",
                    output::fields(&[("escrow_id", u64::from_le_bytes(id).to_string())])
                );
            }
        }
        Ok(code)
    }
}

fn contract_text(view: &ContractView) -> String {
    let mut rows = vec![
        ("contract_id", view.id.to_string()),
        ("code_hash", view.code_hash.to_hex()),
        ("deployer", view.deployer.to_string()),
    ];
    for (currency, amount) in &view.balances {
        rows.push(("balance", format!("{amount} {currency}")));
    }
    for (key, value) in &view.storage {
        rows.push(("storage", format!("{key} = {value}")));
    }
    output::fields(&rows)
}
