//! What `corridor` prints and how it exits. Human output is aligned `key  value` lines (or one
//! line per item for lists); `--json` prints the API types as one JSON value per line.
//! Errors: human `error: <code>: <message>` on stderr; JSON `{"error": {"code", "message"}}` on
//! stdout. The exit code says which kind of failure it was (see `Failure::exit_code`).

use corridor_sdk::api::{AccountView, BlockView, CurrencyView, EventRecord, HistoryEntry, Status, TxStatus, TxView};
use corridor_sdk::client::ClientError;
use corridor_sdk::error::Error;
use corridor_sdk::{Event, Hash, HashAlgorithm, Outcome};
use serde::Serialize;
use std::io::Write as _;

pub const EXIT_SUCCESS: u8 = 0;
/// The node refused, or the transaction was ordered and failed, or was rejected.
pub const EXIT_REFUSED: u8 = 1;
/// Bad command line or local input (file, CSV, hex, key).
pub const EXIT_USAGE: u8 = 2;
/// The node could not be reached, did not answer in time, or answered garbage.
pub const EXIT_TRANSPORT: u8 = 3;

/// Why a command did not succeed, with the stable code it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
    pub exit_code: u8,
    /// The transaction concerned, when one was submitted (a timeout leaves it pending).
    pub tx_hash: Option<Hash>,
}

impl Failure {
    /// Local input that could not be used; nothing was sent.
    pub fn input(error: Error) -> Failure {
        Failure {
            code: error.code.as_str(),
            message: error.message,
            exit_code: EXIT_USAGE,
            tx_hash: None,
        }
    }

    /// A verdict the node would give too (a signature that does not verify).
    pub fn refused(error: Error) -> Failure {
        Failure {
            code: error.code.as_str(),
            message: error.message,
            exit_code: EXIT_REFUSED,
            tx_hash: None,
        }
    }

    pub fn client(error: ClientError) -> Failure {
        let exit_code = match error {
            ClientError::Api(_) => EXIT_REFUSED,
            ClientError::Transport(_) | ClientError::Timeout | ClientError::Decode(_) => EXIT_TRANSPORT,
        };
        Failure {
            code: error.code(),
            message: error.message(),
            exit_code,
            tx_hash: None,
        }
    }

    pub fn with_tx(mut self, tx_hash: Hash) -> Failure {
        self.tx_hash = Some(tx_hash);
        self
    }

    pub fn print(&self, json: bool) {
        if json {
            let mut value = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
            if let Some(hash) = &self.tx_hash {
                value["tx_hash"] = serde_json::Value::String(hash.to_hex());
            }
            println!("{value}");
        } else {
            eprintln!("error: {}: {}", self.code, self.message);
        }
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Failure {
        Failure::client(error)
    }
}

/// One JSON value on one line.
pub fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string(value).map_err(|error| Failure {
        code: "decode",
        message: format!("cannot print JSON: {error}"),
        exit_code: EXIT_TRANSPORT,
        tx_hash: None,
    })?;
    println!("{text}");
    Ok(())
}

/// Write one line to stdout, reporting a closed pipe instead of panicking (for long streams).
pub fn write_line(line: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()
}

/// Aligned `key  value` lines.
pub fn fields(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(key, value)| format!("{key:<width$}  {value}\n"))
        .collect()
}

/// The exit code for a transaction's final view: success only if it executed and succeeded.
pub fn tx_exit_code(view: &TxView) -> u8 {
    match (&view.status, &view.receipt) {
        (TxStatus::Finalized, Some(receipt)) if receipt.outcome == Outcome::Success => EXIT_SUCCESS,
        _ => EXIT_REFUSED,
    }
}

fn status_text(status: TxStatus) -> &'static str {
    match status {
        TxStatus::Pending => "pending",
        TxStatus::Finalized => "finalized",
        TxStatus::Rejected => "rejected",
    }
}

/// The code and message of a transaction that did not succeed, if it did not.
pub fn tx_error(view: &TxView) -> Option<(String, String)> {
    if let Some(error) = &view.error {
        return Some((error.code.to_string(), error.message.clone()));
    }
    match view.receipt.as_ref().map(|receipt| &receipt.outcome) {
        Some(Outcome::Failed { code, message }) => Some((code.to_string(), message.clone())),
        _ => None,
    }
}

/// The outcome of a submitted transaction, as `transfer` and friends print it.
pub fn outcome_text(view: &TxView) -> String {
    let outcome = match (&view.status, tx_error(view)) {
        (TxStatus::Finalized, None) => "success",
        (TxStatus::Finalized, Some(_)) => "failed",
        (status, _) => status_text(*status),
    };
    let mut rows = vec![("outcome", outcome.to_owned()), ("tx_hash", view.tx_hash.to_hex())];
    if let Some(receipt) = &view.receipt {
        rows.push(("height", receipt.height.to_string()));
    }
    if let Some((code, message)) = tx_error(view) {
        rows.push(("code", code));
        rows.push(("message", message));
    }
    fields(&rows)
}

/// A transaction with its receipt, as `tx HASH` prints it.
pub fn tx_text(view: &TxView) -> String {
    let mut rows = vec![
        ("tx_hash", view.tx_hash.to_hex()),
        ("status", status_text(view.status).to_owned()),
    ];
    if let Some(receipt) = &view.receipt {
        rows.push(("height", receipt.height.to_string()));
        rows.push(("index", receipt.index.to_string()));
        rows.push(("sender", receipt.sender.to_string()));
        rows.push((
            "outcome",
            match &receipt.outcome {
                Outcome::Success => "success".to_owned(),
                Outcome::Failed { .. } => "failed".to_owned(),
            },
        ));
    }
    if let Some((code, message)) = tx_error(view) {
        rows.push(("code", code));
        rows.push(("message", message));
    }
    for event in view.receipt.iter().flat_map(|receipt| &receipt.events) {
        rows.push(("event", event_text(event)));
    }
    fields(&rows)
}

/// One event on one line: `<kind> <details>`.
pub fn event_text(event: &Event) -> String {
    match event {
        Event::AccountRegistered { account, public_key } => format!("account_registered {account} {public_key}"),
        Event::KeyRotated { account, public_key } => format!("key_rotated {account} {public_key}"),
        Event::Minted { to, currency, amount } => format!("minted {amount} {currency} to {to}"),
        Event::Burned { from, currency, amount } => format!("burned {amount} {currency} from {from}"),
        Event::Transferred {
            from,
            to,
            currency,
            amount,
            memo,
        } => {
            let memo = memo.as_ref().map(|memo| format!(" memo {memo:?}")).unwrap_or_default();
            format!("transferred {amount} {currency} {from} -> {to}{memo}")
        }
        Event::Frozen { account, by } => format!("frozen {account} by {by}"),
        Event::Unfrozen { account, by } => format!("unfrozen {account} by {by}"),
        Event::Failed { account, code } => format!("failed {account} {code}"),
        Event::KeysSet {
            account,
            keys,
            threshold,
        } => {
            let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
            format!("keys_set {account} {threshold} of {}", keys.join(","))
        }
        Event::FxRatePosted {
            provider,
            sell,
            buy,
            rate,
        } => format!("fx_rate_posted {sell}/{buy} {rate} by {provider}"),
        Event::FxLocked {
            lock_id,
            payer,
            provider,
            sell,
            buy,
            sell_amount,
            buy_amount,
            rate,
            expires_at_ms,
        } => format!(
            "fx_locked {lock_id} {payer} sells {sell_amount} {sell} to {provider} for {buy_amount} {buy} at {rate} until {expires_at_ms}"
        ),
        Event::FxSettled {
            lock_id,
            payer,
            provider,
            to,
            sell,
            sell_amount,
            buy,
            buy_amount,
        } => format!(
            "fx_settled {lock_id} {sell_amount} {sell} {payer} -> {provider}, {buy_amount} {buy} {provider} -> {to}"
        ),
        Event::ContractDeployed {
            contract,
            deployer,
            code_hash,
        } => format!("contract_deployed {contract} by {deployer} code {code_hash}"),
        Event::ContractCalled {
            contract,
            caller,
            method,
            fuel_used,
            ..
        } => format!("contract_called {contract}.{method} by {caller} fuel {fuel_used}"),
        Event::ContractEvent {
            contract, topic, data, ..
        } => format!("contract_event {contract} {topic} {}", hex::encode(data)),
        Event::ContractTransferred {
            contract,
            to,
            currency,
            amount,
        } => format!("contract_transferred {amount} {currency} contract {contract} -> {to}"),
        Event::ScheduleCreated { schedule, payer } => format!("schedule_created {schedule} by {payer}"),
        Event::ScheduleCancelled { schedule, payer } => format!("schedule_cancelled {schedule} by {payer}"),
    }
}

/// `<height>  <tx_hash>  <event>`, as `events` prints each record.
pub fn event_record_text(record: &EventRecord) -> String {
    format!(
        "{:>8}  {}  {}",
        record.height,
        record.tx_hash,
        event_text(&record.event)
    )
}

/// `<sequence>  <height>  <tx_hash>  <event>`, as `history` prints each entry.
pub fn history_entry_text(entry: &HistoryEntry) -> String {
    format!("{:>8}  {}", entry.sequence, event_record_text(&entry.record))
}

pub fn status_text_block(status: &Status) -> String {
    let validators: Vec<String> = status.validators.iter().map(ToString::to_string).collect();
    fields(&[
        ("chain_id", status.chain_id.clone()),
        ("genesis_hash", status.genesis_hash.to_hex()),
        (
            "hash_algorithm",
            match status.hash_algorithm {
                HashAlgorithm::Sha256 => "sha256".to_owned(),
                HashAlgorithm::Sm3 => "sm3".to_owned(),
            },
        ),
        ("height", status.height.to_string()),
        ("latest_block_hash", status.latest_block_hash.to_hex()),
        ("latest_block_time_ms", status.latest_block_time_ms.to_string()),
        ("state_root", status.state_root.to_hex()),
        ("mempool_txs", status.mempool_txs.to_string()),
        ("validators", validators.join(",")),
        ("node_version", status.node_version.clone()),
    ])
}

pub fn account_text(account: &AccountView) -> String {
    let mut rows = vec![
        ("account", account.id.to_string()),
        (
            "sponsor",
            account
                .sponsor
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string),
        ),
        ("public_key", account.public_key.to_text()),
    ];
    if account.keys.len() > 1 || account.threshold > 1 {
        rows.push(("signers", format!("{} of {}", account.threshold, account.keys.len())));
        rows.extend(account.keys.iter().map(|key| ("key", key.to_text())));
    }
    rows.extend([
        ("frozen", account.frozen.to_string()),
        ("next_nonce", account.next_nonce.to_string()),
    ]);
    for (currency, amount) in &account.balances {
        rows.push(("balance", format!("{amount} {currency}")));
    }
    fields(&rows)
}

pub fn currency_line(currency: &CurrencyView) -> String {
    let limit = currency
        .transfer_limit
        .map_or_else(|| "none".to_owned(), |limit| format!("{limit} {}", currency.code));
    format!(
        "{:<8}  scale {:<2}  issuer {}  supply {} {}  transfer_limit {}",
        currency.code.as_str(),
        currency.scale,
        currency.issuer,
        currency.supply,
        currency.code,
        limit
    )
}

pub fn block_text(block: &BlockView) -> String {
    let header = &block.header;
    let mut rows = vec![
        ("height", header.height.to_string()),
        ("hash", block.hash.to_hex()),
        ("parent_hash", header.parent_hash.to_hex()),
        ("timestamp_ms", header.timestamp_ms.to_string()),
        ("proposer", header.proposer.to_string()),
        ("state_root", header.state_root.to_hex()),
        ("state_height", header.state_height.to_string()),
        ("txs_root", header.txs_root.to_hex()),
        ("tx_count", header.tx_count.to_string()),
        ("view", block.certificate.view.to_string()),
        ("finality_bytes", block.certificate.finality.len().to_string()),
    ];
    for hash in &block.tx_hashes {
        rows.push(("tx", hash.to_hex()));
    }
    fields(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use corridor_sdk::error::ErrorCode;
    use corridor_sdk::{AccountId, Amount, CurrencyCode, Receipt};

    fn view(status: TxStatus, outcome: Option<Outcome>, error: Option<Error>) -> TxView {
        let receipt = outcome.map(|outcome| Receipt {
            tx_hash: Hash::ZERO,
            height: 9,
            index: 0,
            sender: AccountId::new("acme@icbc-cn").expect("id"),
            outcome,
            events: vec![Event::Transferred {
                from: AccountId::new("acme@icbc-cn").expect("id"),
                to: AccountId::new("bob").expect("id"),
                currency: CurrencyCode::new("CNY").expect("code"),
                amount: Amount::parse("10.5").expect("amount"),
                memo: Some("inv 1".into()),
            }],
        });
        TxView {
            tx_hash: Hash::ZERO,
            status,
            receipt,
            error,
            tx: None,
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            tx_exit_code(&view(TxStatus::Finalized, Some(Outcome::Success), None)),
            EXIT_SUCCESS
        );
        let failed = Outcome::Failed {
            code: ErrorCode::InsufficientFunds,
            message: "short".into(),
        };
        assert_eq!(
            tx_exit_code(&view(TxStatus::Finalized, Some(failed), None)),
            EXIT_REFUSED
        );
        let rejected = Error::new(ErrorCode::Expired, "expired in the mempool");
        assert_eq!(
            tx_exit_code(&view(TxStatus::Rejected, None, Some(rejected))),
            EXIT_REFUSED
        );
        assert_eq!(tx_exit_code(&view(TxStatus::Pending, None, None)), EXIT_REFUSED);

        let api = ClientError::Api(Error::new(ErrorCode::NonceTooLow, "n"));
        assert_eq!(Failure::client(api).exit_code, EXIT_REFUSED);
        assert_eq!(Failure::client(ClientError::Timeout).exit_code, EXIT_TRANSPORT);
        assert_eq!(
            Failure::client(ClientError::Transport("refused".into())).exit_code,
            EXIT_TRANSPORT
        );
        assert_eq!(
            Failure::client(ClientError::Decode("x".into())).exit_code,
            EXIT_TRANSPORT
        );
        assert_eq!(Failure::input(Error::new(ErrorCode::BadHex, "x")).exit_code, EXIT_USAGE);
        assert_eq!(
            Failure::refused(Error::new(ErrorCode::BadSignature, "x")).code,
            "bad_signature"
        );
    }

    #[test]
    fn outcome_lines() {
        let success = outcome_text(&view(TxStatus::Finalized, Some(Outcome::Success), None));
        assert!(success.starts_with("outcome  success\n"), "{success}");
        assert!(success.contains("height   9\n"), "{success}");
        let failed = Outcome::Failed {
            code: ErrorCode::InsufficientFunds,
            message: "short".into(),
        };
        let text = outcome_text(&view(TxStatus::Finalized, Some(failed), None));
        assert!(
            text.contains("outcome  failed\n") && text.contains("code     insufficient_funds\n"),
            "{text}"
        );
        let shown = tx_text(&view(TxStatus::Finalized, Some(Outcome::Success), None));
        assert!(
            shown.contains("event    transferred 10.5 CNY acme@icbc-cn -> bob memo \"inv 1\""),
            "{shown}"
        );
    }
}
