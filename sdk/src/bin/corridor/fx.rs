//! `corridor fx ...`: rates, post, lock, settle, show.

use crate::args::SenderArgs;
use crate::commands::Context;
use crate::output::{self, Failure};
use clap::Subcommand;
use corridor_sdk::fx::{LockView, Rate, RatesView};
use corridor_sdk::{AccountId, Amount, CurrencyCode, Event, Operation};

#[derive(Debug, Subcommand)]
pub enum FxCommand {
    /// Oracle rates (median of fresh posts), posts, and liquidity providers' quotes.
    Rates,
    /// Post a rate (rate providers only): one SELL buys RATE of BUY.
    Post {
        #[command(flatten)]
        sender: SenderArgs,
        #[arg(long, value_name = "CUR")]
        sell: CurrencyCode,
        #[arg(long, value_name = "CUR")]
        buy: CurrencyCode,
        #[arg(long, value_name = "DEC")]
        rate: Rate,
    },
    /// Lock PROVIDER's rate for selling AMOUNT of SELL for BUY; reserves the BUY amount and
    /// prints the lock id.
    Lock {
        #[command(flatten)]
        sender: SenderArgs,
        #[arg(long, value_name = "ACCOUNT")]
        provider: AccountId,
        #[arg(long, value_name = "CUR")]
        sell: CurrencyCode,
        #[arg(long, value_name = "CUR")]
        buy: CurrencyCode,
        /// How much SELL the payer will pay.
        #[arg(long, value_name = "DEC")]
        amount: Amount,
        /// How long (block time) the lock stays settleable.
        #[arg(long, default_value_t = 600_000, value_name = "MS")]
        window_ms: u64,
        /// Refuse the lock if the provider's rate is below this.
        #[arg(long, value_name = "DEC")]
        rate_min: Option<Rate>,
    },
    /// Settle a lock before it expires: pay its SELL amount, receive its BUY amount (PvP).
    Settle {
        #[command(flatten)]
        sender: SenderArgs,
        lock_id: u64,
        /// Who receives the BUY leg; the payer by default.
        #[arg(long, value_name = "ACCOUNT")]
        to: Option<AccountId>,
    },
    /// A lock's terms and status.
    Show { lock_id: u64 },
}

impl Context {
    pub(crate) async fn fx(&self, command: FxCommand) -> Result<u8, Failure> {
        match command {
            FxCommand::Rates => {
                let rates = self.client.fx_rates().await?;
                self.show(&rates, rates_text)
            }
            FxCommand::Post {
                sender,
                sell,
                buy,
                rate,
            } => {
                self.sign_and_submit(&sender, Operation::FxPostRate { sell, buy, rate })
                    .await
            }
            FxCommand::Lock {
                sender,
                provider,
                sell,
                buy,
                amount,
                window_ms,
                rate_min,
            } => {
                let operation = Operation::FxLock {
                    provider,
                    sell,
                    buy,
                    sell_amount: amount,
                    window_ms,
                    rate_min,
                };
                self.lock(&sender, operation).await
            }
            FxCommand::Settle { sender, lock_id, to } => {
                let key = self.signing_key()?;
                let payer = self.sender(&sender, &key).await?;
                let to = to.unwrap_or_else(|| payer.clone());
                let operation = Operation::FxSettle { lock_id, to };
                self.sign_and_submit(&SenderArgs { from: Some(payer) }, operation).await
            }
            FxCommand::Show { lock_id } => {
                let lock = self.client.fx_lock(lock_id).await?;
                self.show(&lock, lock_text)
            }
        }
    }

    /// Submit a lock; in text mode also print the lock id and terms from its event.
    async fn lock(&self, sender: &SenderArgs, operation: Operation) -> Result<u8, Failure> {
        let hash = self.sign_and_send(sender, operation).await?;
        let view = self.wait(&hash).await?;
        let code = self.report_outcome(&view)?;
        if !self.json {
            for event in view.receipt.iter().flat_map(|receipt| &receipt.events) {
                if let Event::FxLocked {
                    lock_id,
                    buy_amount,
                    buy,
                    rate,
                    expires_at_ms,
                    ..
                } = event
                {
                    print!(
                        "{}",
                        output::fields(&[
                            ("lock_id", lock_id.to_string()),
                            ("rate", rate.to_string()),
                            ("buy_amount", format!("{buy_amount} {buy}")),
                            ("expires_at_ms", expires_at_ms.to_string()),
                        ])
                    );
                }
            }
        }
        Ok(code)
    }
}

fn rates_text(rates: &RatesView) -> String {
    let mut text = format!(
        "block_time_ms {}  staleness_ms {}\n",
        rates.block_time_ms, rates.staleness_ms
    );
    for pair in &rates.pairs {
        let oracle = pair
            .oracle_rate
            .map_or_else(|| "stale".to_owned(), |rate| rate.to_string());
        text += &format!("{}/{}  oracle {oracle}\n", pair.sell, pair.buy);
        for quote in &pair.quotes {
            text += &format!(
                "  quote {} {} ({} bps, inventory {} {})\n",
                quote.provider, quote.rate, quote.spread_bps, quote.inventory, pair.buy
            );
        }
    }
    text
}

fn lock_text(lock: &LockView) -> String {
    let status = if lock.expired {
        "expired".to_owned()
    } else {
        serde_json::to_value(lock.status)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let mut rows = vec![
        ("lock_id", lock.id.to_string()),
        ("status", status),
        ("payer", lock.payer.to_string()),
        ("provider", lock.provider.to_string()),
        ("sell", format!("{} {}", lock.sell_amount, lock.sell)),
        ("buy", format!("{} {}", lock.buy_amount, lock.buy)),
        ("rate", lock.rate.to_string()),
        ("expires_at_ms", lock.expires_at_ms.to_string()),
    ];
    if let Some(to) = &lock.settled_to {
        rows.push(("settled_to", to.to_string()));
    }
    output::fields(&rows)
}
