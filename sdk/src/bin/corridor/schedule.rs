//! `corridor schedule create|list|show|cancel`: standing orders.

use crate::args::{SenderArgs, TransferArgs};
use crate::commands::Context;
use crate::output::{self, Failure};
use clap::Subcommand;
use corridor_sdk::schedule::ScheduleView;
use corridor_sdk::{AccountId, Event, Operation, TransferLeg};

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Pay at the first block at or after START_MS, then every PERIOD_MS, COUNT times.
    Create {
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        leg: TransferArgs,
        /// Block time of the first run, ms since the epoch (default: the next block).
        #[arg(long, default_value_t = 0, value_name = "MS")]
        start_ms: u64,
        /// 0: once.
        #[arg(long, default_value_t = 0, value_name = "MS")]
        period_ms: u64,
        /// Runs in all; 0: until cancelled.
        #[arg(long, default_value_t = 0, value_name = "N")]
        count: u32,
    },
    /// The active standing orders of an account.
    List { payer: AccountId },
    /// One standing order, with its runs and latest failure.
    Show { schedule: u64 },
    /// Cancel one of the signer's standing orders.
    Cancel {
        #[command(flatten)]
        sender: SenderArgs,
        schedule: u64,
    },
}

impl Context {
    pub(crate) async fn schedule(&self, command: ScheduleCommand) -> Result<u8, Failure> {
        match command {
            ScheduleCommand::Create {
                sender,
                leg,
                start_ms,
                period_ms,
                count,
            } => {
                let leg = TransferLeg {
                    to: leg.to,
                    currency: leg.currency,
                    amount: leg.amount,
                    memo: leg.memo,
                };
                let operation = Operation::ScheduleCreate {
                    leg,
                    start_ms,
                    period_ms,
                    count,
                };
                let hash = self.sign_and_send(&sender, operation).await?;
                let view = self.wait(&hash).await?;
                let code = self.report_outcome(&view)?;
                if !self.json {
                    for event in view.receipt.iter().flat_map(|receipt| &receipt.events) {
                        if let Event::ScheduleCreated { schedule, .. } = event {
                            print!("{}", output::fields(&[("schedule_id", schedule.to_string())]));
                        }
                    }
                }
                Ok(code)
            }
            ScheduleCommand::List { payer } => {
                let list = self.client.schedules(&payer).await?;
                self.show(&list, |list| {
                    list.iter().map(|view| schedule_line(view) + "\n").collect()
                })
            }
            ScheduleCommand::Show { schedule } => {
                let view = self.client.schedule(schedule).await?;
                self.show(&view, |view| schedule_line(view) + "\n")
            }
            ScheduleCommand::Cancel { sender, schedule } => {
                self.sign_and_submit(&sender, Operation::ScheduleCancel { schedule })
                    .await
            }
        }
    }
}

fn schedule_line(view: &ScheduleView) -> String {
    let status = serde_json::to_value(view.status)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    let failure = view
        .last_failure
        .map(|(at, code)| format!(" last_failure {code} at {at}"))
        .unwrap_or_default();
    format!(
        "{} {status} {} {} -> {} every {} ms next {} ok {} failed {}{failure}",
        view.id,
        view.leg.amount,
        view.leg.currency,
        view.leg.to,
        view.period_ms,
        view.next_due_ms,
        view.runs_succeeded,
        view.runs_failed
    )
}
