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
        /// Lock this liquidity provider's rate for the funds until the deadline (with
        /// --fx-buy): release then pays the seller in that currency at the locked rate.
        #[arg(long, value_name = "ACCOUNT", requires = "fx_buy")]
        fx_provider: Option<AccountId>,
        /// The currency the seller is paid in on release (with --fx-provider).
        #[arg(long, value_name = "CUR", requires = "fx_provider")]
        fx_buy: Option<CurrencyCode>,
    },
    /// Pay the whole escrow to the seller (buyer or arbiter); an FX escrow pays the locked
    /// amount of its buy currency.
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
        let hash = self.sign_and_send(sender, operation).await?;
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
                fx_provider,
                fx_buy,
            } => match fx_provider.zip(fx_buy) {
                Some((provider, buy)) => {
                    let args = contract::escrow::create_fx(&seller, &arbiter, deadline_ms, &provider, &buy);
                    (target, "create_fx", args, Some((currency, amount)))
                }
                None => {
                    let args = contract::escrow::create(&seller, &arbiter, deadline_ms);
                    (target, "create", args, Some((currency, amount)))
                }
            },
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
        let label = method.starts_with("create").then_some("escrow_id");
        self.call_typed(target, method, args, funds, label).await
    }

    /// Call a shipped contract's method; with `id_label`, print the u64 it returns.
    async fn call_typed(
        &self,
        target: EscrowTarget,
        method: &str,
        args: Vec<u8>,
        funds: Option<(CurrencyCode, Amount)>,
        id_label: Option<&str>,
    ) -> Result<u8, Failure> {
        let operation = Operation::CallContract {
            contract: target.contract,
            method: method.to_owned(),
            args,
            funds,
            fuel: target.fuel,
        };
        let (code, view) = self.submit_contract(&target.sender, operation).await?;
        if let Some(label) = id_label
            && !self.json
        {
            let (_, _, data) = call_results(&view);
            // The id is the first 8 bytes (`create_fx` returns the locked terms after it).
            if let Some(id) = data.and_then(|data| <[u8; 8]>::try_from(data.get(..8)?).ok()) {
                print!("{}", output::fields(&[(label, u64::from_le_bytes(id).to_string())]));
            }
            for event in view.receipt.iter().flat_map(|receipt| &receipt.events) {
                if let Event::FxLocked {
                    lock_id,
                    buy,
                    buy_amount,
                    rate,
                    expires_at_ms,
                    ..
                } = event
                {
                    let rows = [
                        ("fx_lock", lock_id.to_string()),
                        ("locked_rate", rate.to_string()),
                        ("seller_gets", format!("{buy_amount} {buy}")),
                        ("lock_expires_at_ms", expires_at_ms.to_string()),
                    ];
                    print!("{}", output::fields(&rows));
                }
            }
        }
        Ok(code)
    }

    pub(crate) async fn scf(&self, command: ScfCommand) -> Result<u8, Failure> {
        use contract::supply_chain_finance as scf;
        match command {
            ScfCommand::Issue {
                target,
                holder,
                amount,
                currency,
                maturity_ms,
            } => {
                let minor = self.minor_units(amount, &currency).await?;
                let args = scf::issue(&holder, &currency, minor, maturity_ms);
                self.call_typed(target, "issue", args, None, Some("receivable_id"))
                    .await
            }
            ScfCommand::Transfer {
                target,
                receivable,
                to,
                amount,
                currency,
            } => {
                let minor = self.minor_units(amount, &currency).await?;
                self.call_typed(target, "transfer", scf::transfer(receivable, &to, minor), None, None)
                    .await
            }
            ScfCommand::Offer {
                target,
                receivable,
                financier,
                amount,
                currency,
                rate_bps,
            } => {
                let minor = self.minor_units(amount, &currency).await?;
                let args = scf::offer(receivable, &financier, minor, rate_bps);
                self.call_typed(target, "offer", args, None, None).await
            }
            ScfCommand::Take {
                target,
                receivable,
                holder,
                price,
                currency,
            } => {
                let args = scf::take(receivable, &holder);
                self.call_typed(target, "take", args, Some((currency, price)), None)
                    .await
            }
            ScfCommand::Settle {
                target,
                receivable,
                amount,
                currency,
            } => {
                let funds = Some((currency, amount));
                self.call_typed(target, "settle", scf::id(receivable), funds, None)
                    .await
            }
            ScfCommand::Check { target, receivable } => {
                self.call_typed(target, "check", scf::id(receivable), None, None).await
            }
        }
    }

    pub(crate) async fn pay(&self, command: PayCommand) -> Result<u8, Failure> {
        use contract::conditional_payment as pay;
        match command {
            PayCommand::Create {
                target,
                beneficiary,
                amount,
                currency,
                expiry_ms,
                attester,
                approvers,
                threshold,
                payees,
                tax_authority,
                tax_bps,
            } => {
                let conditions = pay::Conditions {
                    attester,
                    threshold,
                    approvers,
                    payees,
                    tax: tax_authority.map(|authority| (authority, tax_bps)),
                };
                let args = pay::create(&beneficiary, expiry_ms, &conditions);
                let funds = Some((currency, amount));
                self.call_typed(target, "create", args, funds, Some("payment_id")).await
            }
            PayCommand::Spend {
                target,
                payment,
                payee,
                amount,
                currency,
            } => {
                let minor = self.minor_units(amount, &currency).await?;
                self.call_typed(target, "spend", pay::spend(payment, &payee, minor), None, None)
                    .await
            }
            PayCommand::Attest { target, payment } => {
                self.call_typed(target, "attest", pay::id(payment), None, None).await
            }
            PayCommand::Approve { target, payment } => {
                self.call_typed(target, "approve", pay::id(payment), None, None).await
            }
            PayCommand::Reclaim { target, payment } => {
                self.call_typed(target, "reclaim", pay::id(payment), None, None).await
            }
        }
    }
}

/// `corridor scf ...`: the supply-chain-finance contract (amounts in the currency's units).
#[derive(Debug, Subcommand)]
pub enum ScfCommand {
    /// The signer (the anchor) owes AMOUNT to HOLDER at MATURITY; prints the receivable id.
    Issue {
        #[command(flatten)]
        target: EscrowTarget,
        #[arg(long, value_name = "ACCOUNT")]
        holder: AccountId,
        #[arg(long, value_name = "DEC")]
        amount: Amount,
        #[arg(long, value_name = "CUR")]
        currency: CurrencyCode,
        #[arg(long, value_name = "MS")]
        maturity_ms: u64,
    },
    /// Pass AMOUNT of the signer's claim to TO.
    Transfer {
        #[command(flatten)]
        target: EscrowTarget,
        receivable: u64,
        #[arg(long, value_name = "ACCOUNT")]
        to: AccountId,
        #[arg(long, value_name = "DEC")]
        amount: Amount,
        #[arg(long, value_name = "CUR")]
        currency: CurrencyCode,
    },
    /// Offer AMOUNT of the signer's claim to FINANCIER at RATE_BPS a year.
    Offer {
        #[command(flatten)]
        target: EscrowTarget,
        receivable: u64,
        #[arg(long, value_name = "ACCOUNT")]
        financier: AccountId,
        #[arg(long, value_name = "DEC")]
        amount: Amount,
        #[arg(long, value_name = "CUR")]
        currency: CurrencyCode,
        #[arg(long, value_name = "BPS")]
        rate_bps: u64,
    },
    /// The signer (financier) pays PRICE to HOLDER and takes the offered claim.
    Take {
        #[command(flatten)]
        target: EscrowTarget,
        receivable: u64,
        #[arg(long, value_name = "ACCOUNT")]
        holder: AccountId,
        #[arg(long, value_name = "DEC")]
        price: Amount,
        #[arg(long, value_name = "CUR")]
        currency: CurrencyCode,
    },
    /// The anchor pays the face AMOUNT at maturity; every holder receives its part.
    Settle {
        #[command(flatten)]
        target: EscrowTarget,
        receivable: u64,
        #[arg(long, value_name = "DEC")]
        amount: Amount,
        #[arg(long, value_name = "CUR")]
        currency: CurrencyCode,
    },
    /// After maturity, mark an unpaid receivable overdue.
    Check {
        #[command(flatten)]
        target: EscrowTarget,
        receivable: u64,
    },
}

/// `corridor pay ...`: the conditional-payment contract.
#[derive(Debug, Subcommand)]
pub enum PayCommand {
    /// Fund a conditional payment for BENEFICIARY; prints the payment id.
    Create {
        #[command(flatten)]
        target: EscrowTarget,
        #[arg(long, value_name = "ACCOUNT")]
        beneficiary: AccountId,
        #[arg(long, value_name = "DEC")]
        amount: Amount,
        #[arg(long, value_name = "CUR")]
        currency: CurrencyCode,
        /// After this block time the rest returns to the payer.
        #[arg(long, value_name = "MS")]
        expiry_ms: u64,
        #[arg(long, value_name = "ACCOUNT")]
        attester: Option<AccountId>,
        #[arg(long = "approver", value_name = "ACCOUNT")]
        approvers: Vec<AccountId>,
        #[arg(long, default_value_t = 0, value_name = "N")]
        threshold: u64,
        /// Whitelisted payees (none: any payee).
        #[arg(long = "payee", value_name = "ACCOUNT")]
        payees: Vec<AccountId>,
        #[arg(long, value_name = "ACCOUNT", requires = "tax_bps")]
        tax_authority: Option<AccountId>,
        #[arg(long, default_value_t = 0, value_name = "BPS")]
        tax_bps: u64,
    },
    /// The beneficiary pays AMOUNT to PAYEE (tax withheld).
    Spend {
        #[command(flatten)]
        target: EscrowTarget,
        payment: u64,
        #[arg(long, value_name = "ACCOUNT")]
        payee: AccountId,
        #[arg(long, value_name = "DEC")]
        amount: Amount,
        #[arg(long, value_name = "CUR")]
        currency: CurrencyCode,
    },
    /// The attester confirms the milestone.
    Attest {
        #[command(flatten)]
        target: EscrowTarget,
        payment: u64,
    },
    /// One approver's approval.
    Approve {
        #[command(flatten)]
        target: EscrowTarget,
        payment: u64,
    },
    /// After expiry, return the rest to the payer.
    Reclaim {
        #[command(flatten)]
        target: EscrowTarget,
        payment: u64,
    },
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
