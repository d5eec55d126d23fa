//! The command line of `corridor`: every command, flag and default, as clap derives it.

use clap::{Args, Parser, Subcommand};
use corridor_sdk::crypto::Scheme;
use corridor_sdk::{AccountId, Amount, CurrencyCode, Hash, PublicKey};
use std::path::PathBuf;

/// corridor: submit and inspect transactions on a corridor node.
///
/// Exit codes: 0 success; 1 refused by the node or the transaction failed; 2 bad usage or
/// local input; 3 transport, timeout or an undecodable answer.
#[derive(Debug, Parser)]
#[command(name = "corridor", version)]
pub struct Cli {
    /// The node's HTTP API.
    #[arg(
        long,
        global = true,
        env = "CORRIDOR_RPC",
        default_value = "http://127.0.0.1:8545",
        value_name = "URL"
    )]
    pub rpc: String,
    /// PKCS#8 PEM private key that signs transactions and every read request (reads are
    /// scoped to that account's role).
    #[arg(long, global = true, env = "CORRIDOR_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Another key of a multi-signature sender (ADR 0043): it adds its signature to every
    /// transaction this command signs with --key. Repeat for each further signer.
    #[arg(long, global = true, value_name = "FILE")]
    pub cosign_key: Vec<PathBuf>,
    /// Trust only this PEM CA for an https node (rustls).
    #[arg(long, global = true, env = "CORRIDOR_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain for a node that requires mutual TLS (with --client-key).
    #[arg(long, global = true, value_name = "FILE", requires = "client_key", requires = "ca")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, global = true, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Machine-readable output: one JSON value per line on stdout (errors too).
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for a submitted transaction's outcome.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS")]
    pub wait_secs: u64,
    /// Seconds from now (wall clock) after which a new transaction expires.
    #[arg(long, global = true, default_value_t = 3600, value_name = "SECS")]
    pub expires_in: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a key pair and write it as PKCS#8 PEM.
    Keygen(KeygenArgs),
    /// The node's status.
    Status,
    /// An account's balances, frozen flag and next nonce.
    Balance { account: AccountId },
    /// The currencies of the chain.
    Currencies,
    /// Fetch an account's record with its proof and verify it here: the Merkle proof against
    /// the state root, that root against the header that commits to it (waiting up to
    /// --wait-secs for that block), and that header's finalization certificate against the
    /// validator set. Exit 1 if any check fails.
    ///
    /// The set is the node's own /v1/status unless pinned with --genesis or --validators (a
    /// node that lies about its blocks could lie about its validators too). The header's
    /// consensus digest covers its block's transactions, so the key must be able to read them
    /// (a regulator's reads all), or a later block it can read is checked instead.
    Proof {
        account: AccountId,
        /// Check certificates against the validator set in this file: a JSON list of
        /// {"id", "public_key"}, {"validators": [...]} (optionally "epoch", "chain_id"), or a
        /// saved `corridor --json status`.
        #[arg(long, value_name = "FILE", conflicts_with = "genesis")]
        validators: Option<PathBuf>,
        /// Check certificates against the validators, chain id and hash algorithm of this
        /// genesis file.
        #[arg(long, value_name = "FILE")]
        genesis: Option<PathBuf>,
    },
    /// Transfer money from the signer's account.
    Transfer {
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        op: TransferArgs,
    },
    /// Pay many payees from a CSV file in one transaction (all legs or none).
    Batch {
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        op: BatchArgs,
    },
    /// Account management: register, rotate-key.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Issue money (issuer only).
    Mint {
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        op: MintArgs,
    },
    /// Destroy money from the issuer's own balance.
    Burn {
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        op: BurnArgs,
    },
    /// Stop an account sending and receiving (issuer or regulator).
    Freeze {
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        op: AccountArg,
    },
    /// Lift a freeze.
    Unfreeze {
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        op: AccountArg,
    },
    /// Show a transaction (`tx HASH`), or build and submit externally signed transactions.
    Tx(TxArgs),
    /// A finalized block.
    Block { height: u64 },
    /// An account's history, newest first.
    History {
        account: AccountId,
        /// Entries to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Show entries older than this sequence number (from the previous page's `next_before`).
        #[arg(long, value_name = "SEQ")]
        before: Option<u64>,
    },
    /// The audit log of reads of customers' data by others (a regulator sees all of it, a
    /// bank what concerns itself and its customers). Checks each entry's hash and the chain
    /// between consecutive entries; a broken chain is exit 1.
    Audit {
        /// Show entries after this sequence number.
        #[arg(long, value_name = "SEQ")]
        after: Option<u64>,
        /// Entries to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Contracts: deploy, call, state.
    #[command(subcommand)]
    Contract(crate::contract::ContractCommand),
    /// The shipped escrow contract: create, release, refund, dispute, capture, decide.
    #[command(subcommand)]
    Escrow(crate::contract::EscrowCommand),
    /// The shipped supply-chain-finance contract: issue, transfer, offer, take, settle, check.
    #[command(subcommand)]
    Scf(crate::contract::ScfCommand),
    /// The shipped conditional-payment contract: create, spend, attest, approve, reclaim.
    #[command(subcommand)]
    Pay(crate::contract::PayCommand),
    /// Standing orders: create, list, show, cancel.
    #[command(subcommand)]
    Schedule(crate::schedule::ScheduleCommand),
    /// FX: rates, post, lock, settle, show.
    #[command(subcommand)]
    Fx(crate::fx::FxCommand),
    /// Follow the event stream from a height, one line per event.
    Events {
        /// First block height to replay from.
        #[arg(long = "from", default_value_t = 0, value_name = "HEIGHT")]
        from_height: u64,
        /// Stop after this many events.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    #[arg(long, default_value = "ed25519")]
    pub scheme: Scheme,
    /// Write the key here (mode 0600) instead of printing the PEM.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overwrite an existing --out file.
    #[arg(long, requires = "out")]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SenderArgs {
    /// The sending account; by default the account that holds the --key's public key.
    #[arg(long, value_name = "ACCOUNT")]
    pub from: Option<AccountId>,
}

#[derive(Debug, Clone, Args)]
pub struct TransferArgs {
    #[arg(long, value_name = "ACCOUNT")]
    pub to: AccountId,
    #[arg(long, value_name = "DEC")]
    pub amount: Amount,
    #[arg(long, value_name = "CUR")]
    pub currency: CurrencyCode,
    #[arg(long, value_name = "TEXT")]
    pub memo: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct BatchArgs {
    /// CSV with the header `payee,amount,currency,memo` (memo optional).
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    /// The new account's id (`name@institution` for a customer of the sender).
    #[arg(long, value_name = "ID")]
    pub account: AccountId,
    /// The new account's public key, `ed25519:<hex>` or `sm2:<hex>`.
    #[arg(long, value_name = "TEXT", value_parser = public_key, required_unless_present = "key_file", conflicts_with = "key_file")]
    pub public_key: Option<PublicKey>,
    /// Take the new account's public key from this PEM private key file, which also signs
    /// the proof of possession.
    #[arg(long, value_name = "PEM")]
    pub key_file: Option<PathBuf>,
    /// With --public-key: the new key's signature (raw, or DER for SM2) over its key proof
    /// message (ADR 0030), made where the key lives.
    #[arg(long, value_name = "FILE", requires = "public_key")]
    pub proof_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct RotateKeyArgs {
    /// PEM private key file whose public key replaces the account's key.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "public_key",
        conflicts_with = "public_key"
    )]
    pub new_key: Option<PathBuf>,
    /// The replacement public key as text, `ed25519:<hex>` or `sm2:<hex>`.
    #[arg(long, value_name = "TEXT", value_parser = public_key)]
    pub public_key: Option<PublicKey>,
    /// With --public-key: the new key's signature over its key proof message (ADR 0030).
    #[arg(long, value_name = "FILE", requires = "public_key")]
    pub proof_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct MintArgs {
    #[arg(long, value_name = "ACCOUNT")]
    pub to: AccountId,
    #[arg(long, value_name = "DEC")]
    pub amount: Amount,
    #[arg(long, value_name = "CUR")]
    pub currency: CurrencyCode,
}

#[derive(Debug, Clone, Args)]
pub struct BurnArgs {
    #[arg(long, value_name = "DEC")]
    pub amount: Amount,
    #[arg(long, value_name = "CUR")]
    pub currency: CurrencyCode,
}

#[derive(Debug, Clone, Args)]
pub struct AccountArg {
    pub account: AccountId,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Register an account (the sender is its sponsor).
    Register {
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        op: RegisterArgs,
    },
    /// Replace the sender's key (signed with the current --key).
    RotateKey {
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        op: RotateKeyArgs,
    },
    /// Give the sender several keys, THRESHOLD of which must sign each of its transactions
    /// (maker-checker; ADR 0043). Signed by the current keys (--key, --cosign-key).
    SetKeys {
        #[command(flatten)]
        sender: SenderArgs,
        #[command(flatten)]
        op: SetKeysArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct SetKeysArgs {
    /// PEM private key file of one new key; it signs its own proof of possession. Repeat for
    /// each key held in a file. These come first, in order: the first is the account's
    /// primary key.
    #[arg(long = "new-key", value_name = "FILE")]
    pub new_keys: Vec<PathBuf>,
    /// A new key held elsewhere (an HSM), `ed25519:<hex>` or `sm2:<hex>`; each needs a
    /// --proof-file, matched in order.
    #[arg(long = "public-key", value_name = "TEXT", value_parser = public_key)]
    pub public_keys: Vec<PublicKey>,
    /// The signature of the --public-key at the same position over its key proof message.
    #[arg(long = "proof-file", value_name = "FILE")]
    pub proof_files: Vec<PathBuf>,
    /// How many of the keys must sign each of the account's transactions.
    #[arg(long, value_name = "N")]
    pub threshold: u8,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TxArgs {
    /// The transaction hash to show.
    pub hash: Option<String>,
    /// Wait (up to --wait-secs) until the transaction is final before showing it.
    #[arg(long)]
    pub wait: bool,
    #[command(subcommand)]
    pub command: Option<TxCommand>,
}

#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Show a transaction's status and receipt.
    Show {
        hash: String,
        #[arg(long)]
        wait: bool,
    },
    /// Print the exact bytes to sign (hex) for an operation; no key needed.
    Build(BuildArgs),
    /// Sign unsigned bytes (as `tx build` prints them) with --key: prints one signature line,
    /// `<public key> <signature hex>`, for `tx submit --signatures-file`. Each officer of a
    /// multi-signature account runs it on the same bytes.
    Sign(SignArgs),
    /// Submit a transaction signed elsewhere and wait for its outcome.
    Submit(SubmitArgs),
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The unsigned transaction as printed by `tx build` (hex).
    #[arg(
        long,
        value_name = "HEX",
        required_unless_present = "unsigned_file",
        conflicts_with = "unsigned_file"
    )]
    pub unsigned: Option<String>,
    /// The unsigned transaction as a file: raw bytes, or the hex `tx build` prints.
    #[arg(long, value_name = "FILE")]
    pub unsigned_file: Option<PathBuf>,
    /// Append the signature line to this file (created if missing) instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(subcommand)]
    pub op: BuildOp,
}

/// Where a built transaction's sender, nonce and chain come from. An offline signer should
/// check the genesis hash in what it signs (bytes 30..62 of the signing bytes, `TX_SIGNING_GENESIS_HASH_RANGE`) against the one
/// it trusts for the chain.
#[derive(Debug, Clone, Args)]
pub struct BuildEnvelope {
    /// The sending account (the signer).
    #[arg(long, value_name = "ACCOUNT")]
    pub from: AccountId,
    /// Nonce to use instead of the sender's next nonce on the node.
    #[arg(long, value_name = "N")]
    pub nonce: Option<u64>,
    /// Genesis hash (hex, as `corridor status` shows it) to bind instead of the node's: the
    /// transaction is good on that chain only.
    #[arg(long, value_name = "HEX", value_parser = genesis_hash)]
    pub genesis_hash: Option<Hash>,
    /// Exact expiry (ms since the Unix epoch) instead of now + --expires-in.
    #[arg(long, value_name = "MS")]
    pub expires_at_ms: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum BuildOp {
    Transfer {
        #[command(flatten)]
        envelope: BuildEnvelope,
        #[command(flatten)]
        op: TransferArgs,
    },
    Batch {
        #[command(flatten)]
        envelope: BuildEnvelope,
        #[command(flatten)]
        op: BatchArgs,
    },
    Register {
        #[command(flatten)]
        envelope: BuildEnvelope,
        #[command(flatten)]
        op: RegisterArgs,
    },
    RotateKey {
        #[command(flatten)]
        envelope: BuildEnvelope,
        #[command(flatten)]
        op: RotateKeyArgs,
    },
    SetKeys {
        #[command(flatten)]
        envelope: BuildEnvelope,
        #[command(flatten)]
        op: SetKeysArgs,
    },
    Mint {
        #[command(flatten)]
        envelope: BuildEnvelope,
        #[command(flatten)]
        op: MintArgs,
    },
    Burn {
        #[command(flatten)]
        envelope: BuildEnvelope,
        #[command(flatten)]
        op: BurnArgs,
    },
    Freeze {
        #[command(flatten)]
        envelope: BuildEnvelope,
        #[command(flatten)]
        op: AccountArg,
    },
    Unfreeze {
        #[command(flatten)]
        envelope: BuildEnvelope,
        #[command(flatten)]
        op: AccountArg,
    },
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The unsigned transaction as printed by `tx build` (hex).
    #[arg(
        long,
        value_name = "HEX",
        required_unless_present = "unsigned_file",
        conflicts_with = "unsigned_file"
    )]
    pub unsigned: Option<String>,
    /// The unsigned transaction as a file: raw bytes, or the hex `tx build` prints.
    #[arg(long, value_name = "FILE")]
    pub unsigned_file: Option<PathBuf>,
    /// The signature in hex: Ed25519 raw 64 bytes; SM2 raw r‖s or DER.
    #[arg(
        long,
        value_name = "HEX",
        required_unless_present_any = ["signature_file", "signatures_file"],
        conflicts_with = "signature_file"
    )]
    pub signature: Option<String>,
    /// The signature as a raw binary file (as `openssl pkeyutl -sign` writes it).
    #[arg(long, value_name = "FILE")]
    pub signature_file: Option<PathBuf>,
    /// The signer's public key; by default the sender's current key on the node.
    #[arg(long, value_name = "TEXT", value_parser = public_key)]
    pub public_key: Option<PublicKey>,
    /// Signatures collected with `tx sign`, one `<public key> <signature hex>` per line, for a
    /// multi-signature sender. They follow --signature; without one, the first line signs as
    /// the primary signer.
    #[arg(long, value_name = "FILE")]
    pub signatures_file: Option<PathBuf>,
}

/// `ed25519:<hex>` or `sm2:<hex>`.
fn public_key(text: &str) -> Result<PublicKey, corridor_sdk::error::Error> {
    PublicKey::from_text(text)
}

fn genesis_hash(text: &str) -> Result<Hash, corridor_sdk::error::Error> {
    Hash::from_hex(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("corridor").chain(args.iter().copied()))
    }

    #[test]
    fn tx_hash_or_subcommand() {
        let cli = parse(&["tx", "abcd"]).expect("parses");
        let Command::Tx(TxArgs {
            hash: Some(hash),
            command: None,
            ..
        }) = cli.command
        else {
            panic!("tx hash")
        };
        assert_eq!(hash, "abcd");
        let cli = parse(&[
            "--json",
            "tx",
            "build",
            "transfer",
            "--from",
            "a@b",
            "--to",
            "c",
            "--amount",
            "1.5",
            "--currency",
            "CNY",
        ])
        .expect("parses");
        assert!(cli.json);
        assert!(matches!(
            cli.command,
            Command::Tx(TxArgs {
                command: Some(TxCommand::Build(_)),
                ..
            })
        ));
    }

    #[test]
    fn globals_after_the_command_and_typed_values() {
        let cli = parse(&[
            "transfer",
            "--to",
            "bob@x",
            "--amount",
            "2",
            "--currency",
            "HKD",
            "--json",
            "--wait-secs",
            "5",
        ])
        .expect("parses");
        assert!(cli.json);
        assert_eq!(cli.wait_secs, 5);
        let error = parse(&["transfer", "--to", "Bob", "--amount", "2", "--currency", "HKD"]).expect_err("bad id");
        assert!(error.to_string().contains("bad_account_id"));
        assert_eq!(error.exit_code(), 2);
        assert!(parse(&["transfer", "--to", "bob", "--amount", "1e5", "--currency", "HKD"]).is_err());
    }

    #[test]
    fn register_needs_exactly_one_key_source() {
        assert!(parse(&["account", "register", "--account", "a@b"]).is_err());
        assert!(parse(&["account", "register", "--account", "a@b", "--key-file", "k.pem"]).is_ok());
        assert!(parse(&["tx", "submit", "--unsigned", "00"]).is_err());
        assert!(parse(&["tx", "submit", "--unsigned", "00", "--signature", "11"]).is_ok());
        assert!(
            parse(&[
                "tx",
                "submit",
                "--unsigned-file",
                "t",
                "--unsigned",
                "00",
                "--signature",
                "11"
            ])
            .is_err()
        );
    }

    #[test]
    fn proof_pins_the_validator_set_from_one_file_at_most() {
        let cli = parse(&["proof", "acme@icbc-cn", "--genesis", "genesis.json"]).expect("parses");
        assert!(matches!(
            cli.command,
            Command::Proof {
                genesis: Some(_),
                validators: None,
                ..
            }
        ));
        let cli = parse(&["proof", "acme@icbc-cn"]).expect("parses");
        assert!(matches!(
            cli.command,
            Command::Proof {
                genesis: None,
                validators: None,
                ..
            }
        ));
        let both = parse(&["proof", "a@b", "--genesis", "g.json", "--validators", "v.json"]).expect_err("conflict");
        assert_eq!(both.exit_code(), 2);
    }
}
