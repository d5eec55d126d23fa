//! What each command does: read local input, talk to the node through `Client`, print.

use crate::args::{
    AccountArg, AccountCommand, BatchArgs, BuildEnvelope, BuildOp, BurnArgs, Cli, Command, KeygenArgs, MintArgs,
    RegisterArgs, RotateKeyArgs, SenderArgs, SetKeysArgs, SignArgs, SubmitArgs, TransferArgs, TxArgs, TxCommand,
};
use crate::input;
use crate::output::{self, EXIT_SUCCESS, EXIT_TRANSPORT, Failure};
use corridor_sdk::api::TxView;
use corridor_sdk::client::{Client, ClientError, expires_at_ms};
use corridor_sdk::crypto::SM2_DEFAULT_DIST_ID;
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::tx::{ProvenKey, key_proof_message};
use corridor_sdk::{
    AccountId, Hash, Operation, PrivateKey, PublicKey, Signature, SignedTransaction, Transaction, TransferLeg,
};
use futures::StreamExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What every command shares: the node, the output mode and the global options.
pub struct Context {
    pub(crate) client: Client,
    pub(crate) json: bool,
    key: Option<PathBuf>,
    /// `--cosign-key`s: the other signers of a multi-signature sender.
    cosign_keys: Vec<PrivateKey>,
    pub(crate) wait: Duration,
    pub(crate) expires_in: Duration,
}

/// Run the command; `Ok` carries the exit code of a command that printed its own result.
pub async fn run(cli: Cli) -> Result<u8, Failure> {
    let mut client = Client::new(&cli.rpc).map_err(|error| match error {
        ClientError::Api(error) => Failure::input(error),
        other => Failure::client(other),
    })?;
    if let Some(ca) = &cli.ca {
        let read = |path: &Path, what: &str| {
            input::read_file_limited(path, input::INPUT_FILE_BYTES_MAX, what).map_err(Failure::input)
        };
        let ca = read(ca, "CA certificate")?;
        let identity = match (&cli.client_cert, &cli.client_key) {
            (Some(cert), Some(key)) => Some((read(cert, "client certificate")?, read(key, "client key")?)),
            _ => None,
        };
        let identity = identity.as_ref().map(|(cert, key)| (cert.as_slice(), key.as_slice()));
        client = client.with_tls(&ca, identity).map_err(|error| match error {
            ClientError::Api(error) => Failure::input(error),
            other => Failure::client(other),
        })?;
    }
    if let Some(path) = &cli.key
        && !matches!(cli.command, Command::Keygen(_))
    {
        client = client.with_key(input::read_key(path).map_err(Failure::input)?);
    }
    let cosign_keys = cli
        .cosign_key
        .iter()
        .map(|path| input::read_key(path).map_err(Failure::input))
        .collect::<Result<Vec<_>, _>>()?;
    let context = Context {
        client,
        json: cli.json,
        key: cli.key,
        cosign_keys,
        wait: Duration::from_secs(cli.wait_secs),
        expires_in: Duration::from_secs(cli.expires_in),
    };
    context.run(cli.command).await
}

impl Context {
    async fn run(&self, command: Command) -> Result<u8, Failure> {
        match command {
            Command::Keygen(args) => self.keygen(&args),
            Command::Status => {
                let status = self.client.status().await?;
                self.show(&status, output::status_text_block)
            }
            Command::Balance { account } => {
                let view = self.client.account(&account).await?;
                self.show(&view, output::account_text)
            }
            Command::Currencies => {
                let currencies = self.client.currencies().await?;
                self.show(&currencies, |list| {
                    list.iter().map(|c| output::currency_line(c) + "\n").collect()
                })
            }
            Command::Proof {
                account,
                validators,
                genesis,
            } => {
                let trust = match (validators, genesis) {
                    (Some(path), _) => crate::proof::Trust::Validators(path),
                    (None, Some(path)) => crate::proof::Trust::Genesis(path),
                    (None, None) => crate::proof::Trust::Node,
                };
                self.proof(&account, &trust).await
            }
            Command::Transfer { sender, op } => self.sign_and_submit(&sender, transfer_operation(&op)).await,
            Command::Batch { sender, op } => {
                let operation = self.batch_operation(&op, true).await?;
                self.sign_and_submit(&sender, operation).await
            }
            Command::Account(AccountCommand::Register { sender, op }) => {
                let genesis_hash = self.client.genesis_hash().await?;
                self.sign_and_submit(&sender, register_operation(&op, &genesis_hash)?)
                    .await
            }
            Command::Account(AccountCommand::RotateKey { sender, op }) => {
                let genesis_hash = self.client.genesis_hash().await?;
                let account = self.sender(&sender, &self.signing_key()?).await?;
                self.sign_and_submit(&sender, rotate_key_operation(&op, &genesis_hash, &account)?)
                    .await
            }
            Command::Account(AccountCommand::SetKeys { sender, op }) => {
                let genesis_hash = self.client.genesis_hash().await?;
                let account = self.sender(&sender, &self.signing_key()?).await?;
                self.sign_and_submit(&sender, set_keys_operation(&op, &genesis_hash, &account)?)
                    .await
            }
            Command::Mint { sender, op } => self.sign_and_submit(&sender, mint_operation(&op)).await,
            Command::Burn { sender, op } => self.sign_and_submit(&sender, burn_operation(&op)).await,
            Command::Freeze { sender, op } => self.sign_and_submit(&sender, freeze_operation(&op)).await,
            Command::Unfreeze { sender, op } => self.sign_and_submit(&sender, unfreeze_operation(&op)).await,
            Command::Tx(args) => self.tx(args).await,
            Command::Block { height } => {
                let block = self.client.block(height).await?;
                self.show(&block, output::block_text)
            }
            Command::History { account, limit, before } => {
                let page = self.client.history(&account, before, Some(limit)).await?;
                self.show(&page, |page| {
                    let mut text: String = page
                        .entries
                        .iter()
                        .map(|entry| output::history_entry_text(entry) + "\n")
                        .collect();
                    if let Some(before) = page.next_before {
                        text.push_str(&format!("more: --before {before}\n"));
                    }
                    text
                })
            }
            Command::Events { from_height, count } => self.events(from_height, count).await,
            Command::Audit { after, limit } => self.audit(after, limit).await,
            Command::Fx(command) => self.fx(command).await,
            Command::Contract(command) => self.contract(command).await,
            Command::Escrow(command) => self.escrow(command).await,
            Command::Scf(command) => self.scf(command).await,
            Command::Pay(command) => self.pay(command).await,
            Command::Schedule(command) => self.schedule(command).await,
        }
    }

    /// Print `value` as JSON or through `human`, and succeed.
    pub(crate) fn show<T: serde::Serialize>(&self, value: &T, human: impl Fn(&T) -> String) -> Result<u8, Failure> {
        if self.json {
            output::print_json(value)?;
        } else {
            print!("{}", human(value));
        }
        Ok(EXIT_SUCCESS)
    }

    fn keygen(&self, args: &KeygenArgs) -> Result<u8, Failure> {
        let key = PrivateKey::generate(args.scheme).map_err(Failure::refused)?;
        let public_key = key.public_key().to_text();
        match &args.out {
            Some(path) => {
                if path.exists() && !args.force {
                    return Err(Failure::input(Error::new(
                        ErrorCode::BadRequest,
                        format!("{} exists; pass --force to overwrite it", path.display()),
                    )));
                }
                if args.force && path.exists() {
                    std::fs::remove_file(path).map_err(|error| {
                        Failure::input(Error::new(
                            ErrorCode::BadRequest,
                            format!("cannot replace {}: {error}", path.display()),
                        ))
                    })?;
                }
                key.write_file(path).map_err(|error| {
                    Failure::input(Error::new(
                        ErrorCode::BadRequest,
                        format!("cannot write {}: {error}", path.display()),
                    ))
                })?;
                if self.json {
                    output::print_json(&serde_json::json!({
                        "public_key": public_key,
                        "scheme": args.scheme.to_string(),
                        "out": path.display().to_string(),
                    }))?;
                } else {
                    println!("{public_key}");
                }
            }
            None => {
                let pem = key.to_pem().map_err(Failure::refused)?;
                if self.json {
                    output::print_json(&serde_json::json!({
                        "public_key": public_key,
                        "scheme": args.scheme.to_string(),
                        "pem": pem,
                    }))?;
                } else {
                    print!("{pem}");
                    eprintln!("public_key {public_key}");
                }
            }
        }
        Ok(EXIT_SUCCESS)
    }

    pub(crate) fn signing_key(&self) -> Result<PrivateKey, Failure> {
        let Some(path) = &self.key else {
            return Err(Failure::input(Error::new(
                ErrorCode::BadRequest,
                "this command signs: pass --key FILE or set CORRIDOR_KEY",
            )));
        };
        input::read_key(path).map_err(Failure::input)
    }

    /// The sender: `--from`, or the account that holds the key's public key.
    pub(crate) async fn sender(&self, sender: &SenderArgs, key: &PrivateKey) -> Result<AccountId, Failure> {
        if let Some(from) = &sender.from {
            return Ok(from.clone());
        }
        let public_key = key.public_key();
        self.client.key_owner(&public_key).await.map_err(|error| match error {
            ClientError::Api(error) if error.code == ErrorCode::NotFound => {
                Failure::client(ClientError::Api(Error::new(
                    ErrorCode::NotFound,
                    format!("no account holds the key {public_key}; pass --from ACCOUNT"),
                )))
            }
            other => Failure::client(other),
        })
    }

    /// Build `operation` for the sender, sign it with `--key` and every `--cosign-key`, and
    /// submit it: the transaction's hash.
    pub(crate) async fn sign_and_send(&self, sender: &SenderArgs, operation: Operation) -> Result<Hash, Failure> {
        let key = self.signing_key()?;
        let sender = self.sender(sender, &key).await?;
        let tx = self.client.build(&sender, operation, self.expires_in).await?;
        tx.check_shape().map_err(Failure::input)?;
        let signed = self
            .cosign_keys
            .iter()
            .fold(tx.sign(&key), |signed, cosigner| signed.cosign(cosigner));
        Ok(self.client.submit(&signed).await?)
    }

    /// `sign_and_send`, then wait for the outcome and report it.
    pub(crate) async fn sign_and_submit(&self, sender: &SenderArgs, operation: Operation) -> Result<u8, Failure> {
        let hash = self.sign_and_send(sender, operation).await?;
        let view = self.wait(&hash).await?;
        self.report_outcome(&view)
    }

    /// Submit, wait up to `--wait-secs`, print the outcome; exit 0 only on success.
    async fn submit_and_report(&self, signed: &SignedTransaction) -> Result<u8, Failure> {
        let hash = self.client.submit(signed).await?;
        if self.key.is_none() {
            // Following a transaction is a scoped read, and this client has no key to sign it
            // (the transaction was signed elsewhere): say it was accepted, and how to follow it.
            if self.json {
                output::print_json(&serde_json::json!({ "tx_hash": hash, "status": "accepted" }))?;
            } else {
                println!("accepted {hash}");
                eprintln!("follow it with: corridor --key FILE tx show {hash} --wait");
            }
            return Ok(EXIT_SUCCESS);
        }
        let view = self.wait(&hash).await?;
        self.report_outcome(&view)
    }

    pub(crate) async fn wait(&self, hash: &Hash) -> Result<TxView, Failure> {
        self.client.wait(hash, self.wait).await.map_err(|error| match error {
            ClientError::Timeout => Failure {
                code: "timeout",
                message: format!("tx {hash} still pending after {}s", self.wait.as_secs()),
                exit_code: EXIT_TRANSPORT,
                tx_hash: Some(*hash),
            },
            other => Failure::client(other).with_tx(*hash),
        })
    }

    pub(crate) fn report_outcome(&self, view: &TxView) -> Result<u8, Failure> {
        if self.json {
            output::print_json(view)?;
        } else {
            print!("{}", output::outcome_text(view));
            if let Some((code, message)) = output::tx_error(view) {
                eprintln!("error: {code}: {message}");
            }
        }
        Ok(output::tx_exit_code(view))
    }

    /// The batch transfer of a CSV file; with `check_currencies`, also against the chain's
    /// currencies (existence and scale), still before anything is signed.
    async fn batch_operation(&self, args: &BatchArgs, check_currencies: bool) -> Result<Operation, Failure> {
        let name = args.csv.display().to_string();
        let bytes = input::read_file_limited(&args.csv, input::BATCH_CSV_BYTES_MAX, "csv").map_err(Failure::input)?;
        // Best effort: if the node cannot say, the rows are still checked locally, and the
        // node's own refusal follows when the transaction is built or submitted.
        let currencies = if check_currencies {
            self.client.currencies().await.ok()
        } else {
            None
        };
        let legs = input::parse_batch_csv(bytes.as_slice(), &name, currencies.as_deref()).map_err(Failure::input)?;
        let legs: Vec<TransferLeg> = legs.into_iter().map(|csv_leg| csv_leg.leg).collect();
        Ok(Operation::batch_transfer(legs))
    }

    async fn tx(&self, args: TxArgs) -> Result<u8, Failure> {
        match (args.command, args.hash) {
            (Some(TxCommand::Show { hash, wait }), _) => self.tx_show(&hash, wait || args.wait).await,
            (Some(TxCommand::Build(build)), _) => self.tx_build(build.op).await,
            (Some(TxCommand::Sign(sign)), _) => self.tx_sign(&sign),
            (Some(TxCommand::Submit(submit)), _) => self.tx_submit(&submit).await,
            (None, Some(hash)) => self.tx_show(&hash, args.wait).await,
            (None, None) => Err(Failure::input(Error::new(
                ErrorCode::BadRequest,
                "usage: corridor tx HASH | tx show HASH | tx build <op> ... | tx sign ... | tx submit ...",
            ))),
        }
    }

    async fn tx_show(&self, hash: &str, wait: bool) -> Result<u8, Failure> {
        let hash = Hash::from_hex(hash).map_err(Failure::input)?;
        let view = if wait {
            self.wait(&hash).await?
        } else {
            self.client.tx(&hash).await?
        };
        self.show(&view, output::tx_text)
    }

    async fn tx_build(&self, op: BuildOp) -> Result<u8, Failure> {
        let (envelope, operation) = match op {
            BuildOp::Transfer { envelope, op } => (envelope, transfer_operation(&op)),
            BuildOp::Batch { envelope, op } => (envelope, self.batch_operation(&op, false).await?),
            BuildOp::Register { envelope, op } => {
                let genesis_hash = self.envelope_genesis_hash(&envelope).await?;
                (envelope, register_operation(&op, &genesis_hash)?)
            }
            BuildOp::RotateKey { envelope, op } => {
                let genesis_hash = self.envelope_genesis_hash(&envelope).await?;
                let operation = rotate_key_operation(&op, &genesis_hash, &envelope.from)?;
                (envelope, operation)
            }
            BuildOp::SetKeys { envelope, op } => {
                let genesis_hash = self.envelope_genesis_hash(&envelope).await?;
                let operation = set_keys_operation(&op, &genesis_hash, &envelope.from)?;
                (envelope, operation)
            }
            BuildOp::Mint { envelope, op } => (envelope, mint_operation(&op)),
            BuildOp::Burn { envelope, op } => (envelope, burn_operation(&op)),
            BuildOp::Freeze { envelope, op } => (envelope, freeze_operation(&op)),
            BuildOp::Unfreeze { envelope, op } => (envelope, unfreeze_operation(&op)),
        };
        let tx = self.envelope(envelope, operation).await?;
        tx.check_shape().map_err(Failure::input)?;
        let unsigned = hex::encode(tx.signing_bytes());
        if self.json {
            output::print_json(&serde_json::json!({
                "unsigned": unsigned,
                "genesis_hash": tx.genesis_hash,
                "sender": tx.sender,
                "nonce": tx.nonce,
                "expires_at_ms": tx.expires_at_ms,
                "transaction": tx,
            }))?;
        } else {
            println!("{unsigned}");
        }
        Ok(EXIT_SUCCESS)
    }

    async fn envelope_genesis_hash(&self, envelope: &BuildEnvelope) -> Result<Hash, Failure> {
        Ok(match envelope.genesis_hash {
            Some(genesis_hash) => genesis_hash,
            None => self.client.genesis_hash().await?,
        })
    }

    /// A transaction around `operation`: genesis hash and nonce from the node unless given.
    async fn envelope(&self, envelope: BuildEnvelope, operation: Operation) -> Result<Transaction, Failure> {
        let genesis_hash = self.envelope_genesis_hash(&envelope).await?;
        let nonce = match envelope.nonce {
            Some(nonce) => nonce,
            None => self.client.next_nonce(&envelope.from).await?,
        };
        let expires = envelope.expires_at_ms.unwrap_or_else(|| expires_at_ms(self.expires_in));
        Ok(Transaction::new(genesis_hash, envelope.from, nonce, expires, operation))
    }

    /// Sign unsigned bytes with --key, offline: print (or append to --out) one signature line,
    /// after saying on stderr what is being signed.
    fn tx_sign(&self, args: &SignArgs) -> Result<u8, Failure> {
        let tx = read_unsigned(args.unsigned.as_deref(), args.unsigned_file.as_deref())?;
        let key = self.signing_key()?;
        let public_key = key.public_key();
        let signature = key.sign(&tx.signing_bytes());
        let line = signature_line(&public_key, &signature);
        let operation = serde_json::to_string(&tx.operation)
            .map_err(|error| Failure::client(ClientError::Decode(error.to_string())))?;
        eprintln!(
            "signing for {} (nonce {}, expires at {} ms, chain {}): {operation}",
            tx.sender, tx.nonce, tx.expires_at_ms, tx.genesis_hash
        );
        if let Some(path) = &args.out {
            use std::io::Write as _;
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut file| writeln!(file, "{line}"));
            appended.map_err(|error| {
                Failure::input(Error::new(
                    ErrorCode::BadRequest,
                    format!("cannot append to {}: {error}", path.display()),
                ))
            })?;
            eprintln!("appended the signature of {public_key} to {}", path.display());
        }
        if self.json {
            output::print_json(&serde_json::json!({
                "public_key": public_key,
                "signature": hex::encode(signature.as_bytes()),
                "line": line,
            }))?;
        } else if args.out.is_none() {
            println!("{line}");
        }
        Ok(EXIT_SUCCESS)
    }

    async fn tx_submit(&self, args: &SubmitArgs) -> Result<u8, Failure> {
        let tx = read_unsigned(args.unsigned.as_deref(), args.unsigned_file.as_deref())?;
        let mut signatures = Vec::new();
        let primary = match (&args.signature, &args.signature_file) {
            (Some(text), _) => Some(input::parse_hex(text, "signature")),
            (None, Some(path)) => Some(input::read_file_limited(path, input::INPUT_FILE_BYTES_MAX, "signature")),
            (None, None) => None,
        };
        if let Some(bytes) = primary {
            let bytes = bytes.map_err(Failure::input)?;
            let public_key = match &args.public_key {
                Some(public_key) => public_key.clone(),
                None => self.client.account(&tx.sender).await?.public_key,
            };
            signatures.push((public_key, bytes));
        }
        if let Some(path) = &args.signatures_file {
            let text =
                input::read_file_limited(path, input::INPUT_FILE_BYTES_MAX, "signatures").map_err(Failure::input)?;
            signatures.extend(parse_signature_lines(&String::from_utf8_lossy(&text)).map_err(Failure::input)?);
        }
        let mut signatures = signatures.into_iter();
        let Some((public_key, bytes)) = signatures.next() else {
            return Err(Failure::input(Error::new(
                ErrorCode::BadRequest,
                "pass --signature HEX, --signature-file FILE or a non-empty --signatures-file FILE",
            )));
        };
        let mut signed = attach_signature(tx, public_key, &bytes).map_err(Failure::refused)?;
        for (public_key, bytes) in signatures {
            let signature = check_signature(&signed.tx, &public_key, &bytes).map_err(Failure::refused)?;
            signed = signed.with_cosignature(public_key, signature);
        }
        signed.check_signers_shape().map_err(Failure::input)?;
        self.submit_and_report(&signed).await
    }

    async fn audit(&self, after: Option<u64>, limit: usize) -> Result<u8, Failure> {
        let page = self.client.audit(after, limit).await?;
        // Entries with consecutive numbers must chain; every entry must match its hash.
        let mut broken = None;
        for run in page.entries.chunk_by(|a, b| b.seq == a.seq + 1) {
            if let Err(why) = corridor_sdk::audit::verify_chain(run) {
                broken = Some(why);
                break;
            }
        }
        if self.json {
            output::print_json(&serde_json::json!({
                "entries": page.entries,
                "next_after": page.next_after,
                "verified": broken.is_none(),
            }))?;
        } else {
            for entry in &page.entries {
                println!(
                    "{} {} {} read {}: {} ({})",
                    entry.seq, entry.time_ms, entry.reader, entry.subject, entry.request, entry.hash
                );
            }
            if let Some(after) = page.next_after {
                println!("more: --after {after}");
            }
        }
        match broken {
            None => Ok(EXIT_SUCCESS),
            Some(why) => Err(Failure::refused(Error::new(
                ErrorCode::BadRequest,
                format!("audit chain does not verify: {why}"),
            ))),
        }
    }

    async fn events(&self, from_height: u64, count: Option<u64>) -> Result<u8, Failure> {
        if count == Some(0) {
            return Ok(EXIT_SUCCESS);
        }
        let mut stream = std::pin::pin!(self.client.events(from_height));
        let mut seen = 0u64;
        while let Some(record) = stream.next().await {
            let record = record?;
            let line = if self.json {
                serde_json::to_string(&record)
                    .map_err(|error| Failure::client(ClientError::Decode(error.to_string())))?
            } else {
                output::event_record_text(&record)
            };
            if output::write_line(&line).is_err() {
                // The reader went away (`| head`): nothing more to say to it.
                return Ok(EXIT_SUCCESS);
            }
            seen += 1;
            if count.is_some_and(|count| seen >= count) {
                return Ok(EXIT_SUCCESS);
            }
        }
        Err(Failure::client(ClientError::Transport("the event stream ended".into())))
    }
}

/// The unsigned transaction of `--unsigned HEX` or `--unsigned-file FILE`, in canonical form.
fn read_unsigned(hex_text: Option<&str>, file: Option<&Path>) -> Result<Transaction, Failure> {
    let unsigned = match (hex_text, file) {
        (Some(text), _) => input::parse_hex(text, "unsigned transaction"),
        (None, Some(path)) => input::read_file_limited(path, input::INPUT_FILE_BYTES_MAX, "unsigned transaction")
            .and_then(|bytes| input::unsigned_from_file_bytes(&bytes)),
        (None, None) => Err(Error::new(
            ErrorCode::BadRequest,
            "pass --unsigned HEX or --unsigned-file FILE",
        )),
    }
    .map_err(Failure::input)?;
    let tx = Transaction::from_signing_bytes(&unsigned).map_err(Failure::input)?;
    if tx.signing_bytes() != unsigned {
        // For example an SM2 key in compressed form: the node checks the canonical bytes.
        return Err(Failure::input(Error::new(
            ErrorCode::Malformed,
            "the unsigned bytes are not in canonical form; sign what `corridor tx build` prints",
        )));
    }
    Ok(tx)
}

/// One line of a signatures file: `<public key> <signature hex>`.
pub fn signature_line(public_key: &PublicKey, signature: &Signature) -> String {
    format!("{public_key} {}", hex::encode(signature.as_bytes()))
}

/// The lines of a signatures file; blank lines and `#` comments are skipped.
pub fn parse_signature_lines(text: &str) -> Result<Vec<(PublicKey, Vec<u8>)>, Error> {
    let mut signatures = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: String| Error::new(ErrorCode::BadRequest, format!("signatures line {}: {why}", number + 1));
        let mut fields = line.split_whitespace();
        let (Some(key), Some(signature), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(bad("expected `<public key> <signature hex>`".into()));
        };
        let public_key = PublicKey::from_text(key).map_err(|error| bad(error.message))?;
        let signature = input::parse_hex(signature, "signature").map_err(|error| bad(error.message))?;
        signatures.push((public_key, signature));
    }
    Ok(signatures)
}

/// Attach a signature made elsewhere and check it locally, as the node will.
pub fn attach_signature(
    tx: Transaction,
    public_key: PublicKey,
    signature_bytes: &[u8],
) -> Result<SignedTransaction, Error> {
    let signature = check_signature(&tx, &public_key, signature_bytes)?;
    Ok(SignedTransaction::from_parts(tx, public_key, signature))
}

/// Decode a signature made elsewhere and check it over `tx`'s signing bytes, as the node will.
fn check_signature(tx: &Transaction, public_key: &PublicKey, signature_bytes: &[u8]) -> Result<Signature, Error> {
    let signature = Signature::from_bytes(public_key.scheme(), signature_bytes)?;
    let message = tx.signing_bytes();
    public_key.verify(&message, &signature).map_err(|error| {
        let mut text = format!(
            "{} (checked against {public_key} over the unsigned bytes)",
            error.message
        );
        if sm2_verifies_with_empty_id(public_key, &message, &signature) {
            text.push_str(&format!(
                "; it verifies with an empty SM2 id: sign with the default id {SM2_DEFAULT_DIST_ID} \
                 (openssl pkeyutl ... -pkeyopt distid:{SM2_DEFAULT_DIST_ID})"
            ));
        }
        Error::new(ErrorCode::BadSignature, text)
    })?;
    Ok(signature)
}

/// Whether an SM2 signature was made with an empty distinguishing id, as OpenSSL 3.0's
/// `pkeyutl -rawin` does unless told `-pkeyopt distid:...`: worth a hint, never accepted.
fn sm2_verifies_with_empty_id(public_key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
    use sm2::dsa::signature::Verifier as _;
    let (PublicKey::Sm2(key), Signature::Sm2(raw)) = (public_key, signature) else {
        return false;
    };
    let Ok(key) = sm2::dsa::VerifyingKey::from_sec1_bytes("", key) else {
        return false;
    };
    let Ok(signature) = sm2::dsa::Signature::from_slice(raw) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

fn transfer_operation(args: &TransferArgs) -> Operation {
    Operation::transfer(args.to.clone(), args.currency.clone(), args.amount, args.memo.clone())
}

/// A new key proves possession by signing `key_proof_message(genesis_hash, account, key)`
/// (ADR 0030, ADR 0042):
/// here with its PEM file, or elsewhere (an HSM) and passed as `--proof-file`.
fn proven_key(
    key_file: Option<&Path>,
    public_key: Option<&PublicKey>,
    proof_file: Option<&Path>,
    genesis_hash: &Hash,
    account: &AccountId,
) -> Result<(PublicKey, Signature), Failure> {
    match (key_file, public_key, proof_file) {
        (Some(path), _, _) => {
            let key = input::read_key(path).map_err(Failure::input)?;
            let public_key = key.public_key();
            let proof = key.sign(&key_proof_message(genesis_hash, account, &public_key));
            Ok((public_key, proof))
        }
        (None, Some(public_key), Some(path)) => {
            let bytes =
                input::read_file_limited(path, input::INPUT_FILE_BYTES_MAX, "key proof").map_err(Failure::input)?;
            let proof = Signature::from_bytes(public_key.scheme(), &bytes).map_err(Failure::input)?;
            public_key
                .verify(&key_proof_message(genesis_hash, account, public_key), &proof)
                .map_err(|_| {
                    Failure::input(Error::new(
                        ErrorCode::BadKeyProof,
                        format!("the proof file is not {public_key}'s signature of the key proof for {account}"),
                    ))
                })?;
            Ok((public_key.clone(), proof))
        }
        _ => Err(Failure::input(Error::new(
            ErrorCode::KeyProofRequired,
            "a new key must prove possession: pass its PEM file, or --public-key with --proof-file",
        ))),
    }
}

fn register_operation(args: &RegisterArgs, genesis_hash: &Hash) -> Result<Operation, Failure> {
    let (public_key, proof) = proven_key(
        args.key_file.as_deref(),
        args.public_key.as_ref(),
        args.proof_file.as_deref(),
        genesis_hash,
        &args.account,
    )?;
    Ok(Operation::RegisterAccountWithProof {
        account: args.account.clone(),
        public_key,
        proof,
    })
}

fn rotate_key_operation(args: &RotateKeyArgs, genesis_hash: &Hash, sender: &AccountId) -> Result<Operation, Failure> {
    let (public_key, proof) = proven_key(
        args.new_key.as_deref(),
        args.public_key.as_ref(),
        args.proof_file.as_deref(),
        genesis_hash,
        sender,
    )?;
    Ok(Operation::RotateKeyWithProof { public_key, proof })
}

/// The keys of `account set-keys` / `tx build set-keys`, each with its proof of possession:
/// the --new-key files first, then each --public-key with its --proof-file.
fn set_keys_operation(args: &SetKeysArgs, genesis_hash: &Hash, sender: &AccountId) -> Result<Operation, Failure> {
    if args.public_keys.len() != args.proof_files.len() {
        return Err(Failure::input(Error::new(
            ErrorCode::KeyProofRequired,
            format!(
                "each --public-key needs its --proof-file: {} keys, {} proofs",
                args.public_keys.len(),
                args.proof_files.len()
            ),
        )));
    }
    let files = args
        .new_keys
        .iter()
        .map(|path| proven_key(Some(path), None, None, genesis_hash, sender));
    let held_elsewhere = args
        .public_keys
        .iter()
        .zip(&args.proof_files)
        .map(|(public_key, path)| proven_key(None, Some(public_key), Some(path), genesis_hash, sender));
    let keys = files
        .chain(held_elsewhere)
        .map(|proven| proven.map(|(public_key, proof)| ProvenKey { public_key, proof }))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Operation::SetKeys {
        keys,
        threshold: args.threshold,
    })
}

fn mint_operation(args: &MintArgs) -> Operation {
    Operation::mint(args.to.clone(), args.currency.clone(), args.amount)
}

fn burn_operation(args: &BurnArgs) -> Operation {
    Operation::burn(args.currency.clone(), args.amount)
}

fn freeze_operation(args: &AccountArg) -> Operation {
    Operation::freeze(args.account.clone())
}

fn unfreeze_operation(args: &AccountArg) -> Operation {
    Operation::unfreeze(args.account.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use corridor_sdk::crypto::Scheme;
    use corridor_sdk::{Amount, CurrencyCode};

    fn unsigned() -> Transaction {
        let id = |text: &str| AccountId::new(text).expect("id");
        Transaction::new(
            Hash([0x6e; 32]),
            id("acme@icbc-cn"),
            0,
            1_700_000_000_000,
            Operation::transfer(id("bob"), CurrencyCode::new("CNY").expect("c"), Amount::from(5), None),
        )
    }

    #[test]
    fn external_signatures_in_every_form() {
        for scheme in [Scheme::Ed25519, Scheme::Sm2] {
            let key = PrivateKey::from_seed(scheme, [3; 32]).expect("seed");
            let tx = unsigned();
            let signature = key.sign(&tx.signing_bytes());
            let signed = attach_signature(tx.clone(), key.public_key(), signature.as_bytes()).expect("raw");
            assert!(signed.verify_signature().is_ok());
            let other = PrivateKey::from_seed(scheme, [4; 32]).expect("seed").public_key();
            let refused = attach_signature(tx.clone(), other, signature.as_bytes()).map_err(|e| e.code);
            assert_eq!(refused, Err(ErrorCode::BadSignature));
            let short = attach_signature(tx, key.public_key(), &[1, 2, 3]).map_err(|e| e.code);
            assert_eq!(short, Err(ErrorCode::BadSignature));
        }
        // SM2 in DER, as `openssl pkeyutl -sign` writes it.
        let key = PrivateKey::from_seed(Scheme::Sm2, [5; 32]).expect("seed");
        let tx = unsigned();
        let Signature::Sm2(raw) = key.sign(&tx.signing_bytes()) else {
            panic!("sm2")
        };
        let der = raw_to_der(&raw);
        assert!(attach_signature(tx, key.public_key(), &der).is_ok());
    }

    #[test]
    fn sm2_signature_with_an_empty_id_gets_a_hint() {
        use sm2::dsa::signature::Signer as _;
        let seed = [6u8; 32];
        let public_key = PrivateKey::from_seed(Scheme::Sm2, seed).expect("seed").public_key();
        let tx = unsigned();
        let signing = sm2::dsa::SigningKey::from_slice("", &seed).expect("sm2 key");
        let signature: sm2::dsa::Signature = signing.sign(&tx.signing_bytes());
        let error = attach_signature(tx, public_key, &signature.to_bytes()).expect_err("empty id refused");
        assert_eq!(error.code, ErrorCode::BadSignature);
        assert!(error.message.contains("distid:1234567812345678"), "{}", error.message);
    }

    /// DER `SEQUENCE { INTEGER r, INTEGER s }` of a raw `r ‖ s`.
    fn raw_to_der(raw: &[u8; 64]) -> Vec<u8> {
        let integer = |bytes: &[u8]| {
            let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
            let mut value = if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
                vec![0]
            } else {
                vec![]
            };
            value.extend(trimmed);
            let mut out = vec![0x02, u8::try_from(value.len()).expect("short")];
            out.extend(value);
            out
        };
        let body = [integer(&raw[..32]), integer(&raw[32..])].concat();
        let mut der = vec![0x30, u8::try_from(body.len()).expect("short")];
        der.extend(body);
        der
    }
}
