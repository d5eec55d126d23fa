//! Every size and count that input can drive, as a named constant with its unit last.
//! A limit that the chain's validity depends on must not change without an ADR.

/// Canonical bytes of one signed transaction. A full batch (`BATCH_LEGS_MAX` legs with
/// `MEMO_BYTES_MAX` memos and the longest ids) fits with room to spare.
pub const TX_BYTES_MAX: usize = 128 * 1024;
/// Transactions in one block.
pub const BLOCK_TXS_MAX: usize = 10_000;
/// Canonical bytes of one block with its transactions.
pub const BLOCK_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Legs of one batch transfer.
pub const BATCH_LEGS_MAX: usize = 256;
/// Transactions in one `POST /v1/transactions/batch` request.
pub const SUBMIT_BATCH_TXS_MAX: usize = 5_000;
/// Bytes of one HTTP request body (hex doubles the size of what it carries).
pub const HTTP_BODY_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Bytes of a memo on a transfer.
pub const MEMO_BYTES_MAX: usize = 140;
/// Bytes of an account id (`name@sponsor`).
pub const ACCOUNT_ID_BYTES_MAX: usize = 64;
/// Bytes of one label of an account id (the part before or after `@`).
pub const ACCOUNT_LABEL_BYTES_MAX: usize = 31;
/// Bytes of a chain id.
pub const CHAIN_ID_BYTES_MAX: usize = 64;
/// Letters of a currency code.
pub const CURRENCY_CODE_BYTES_MAX: usize = 8;
/// Decimal places a currency may have.
pub const CURRENCY_SCALE_MAX: u32 = 18;
/// Keys one account may hold, and so signatures one transaction may carry (ADR 0043).
pub const SIGNERS_MAX: usize = 16;
/// How long a client keeps an unused pooled connection to a node: below the node's closes of
/// idle connections (40 s waiting for a request head, 60 s without a byte), so the client never
/// reuses a connection the node is closing.
pub const POOL_IDLE_MS: u64 = 30_000;
/// How far ahead of an account's next nonce the mempool accepts a transaction.
pub const NONCE_WINDOW_MAX: u64 = 64;
/// How far into the future (past the latest block time) a transaction's expiry may lie.
pub const TX_EXPIRY_AHEAD_MS_MAX: u64 = 24 * 60 * 60 * 1000;
/// Entries returned by one history query.
pub const HISTORY_PAGE_ENTRIES_MAX: usize = 1_000;
/// Block time an FX lock may stay open.
pub const FX_LOCK_WINDOW_MS_MAX: u64 = 30 * 24 * 60 * 60 * 1000;
/// FX locks open at once across the chain (their expiry index is one state record).
pub const FX_OPEN_LOCKS_MAX: usize = 2_048;
/// Rate providers, and liquidity providers, named in genesis.
pub const FX_PROVIDERS_MAX: usize = 64;

/// Bytes of a contract's wasm module (it is stored as one state value).
pub const CONTRACT_MODULE_BYTES_MAX: usize = 60 * 1024;
/// Argument bytes of one contract call (or deploy's `init`).
pub const CONTRACT_ARGS_BYTES_MAX: usize = 16 * 1024;
/// Bytes of a contract method name.
pub const CONTRACT_METHOD_BYTES_MAX: usize = 64;
/// Fuel one transaction may give a contract: the network maximum.
pub const CONTRACT_FUEL_MAX: u64 = 100_000_000;

/// Standing orders active at once across the chain (their due index is one state record).
pub const SCHEDULES_ACTIVE_MAX: usize = 2_048;
/// The shortest period of a recurring standing order.
pub const SCHEDULE_PERIOD_MS_MIN: u64 = 1_000;

/// Bytes of a stored state value (an account record, a currency).
pub const STATE_VALUE_BYTES_MAX: usize = 64 * 1024;

/// Bytes of one encoded consensus header in a finality proof (four u64s and two digests).
pub const CONSENSUS_HEADER_BYTES: usize = 4 * 8 + 2 * 32;
/// Bytes of a block certificate's `finality`: the proof's envelope (version, block count,
/// header count), at most `PROOF_HEADERS_MAX` consensus headers and one finalization.
pub const CERTIFICATE_FINALITY_BYTES_MAX: usize = 1
    + 2
    + 4
    + corridor_consensus::limits::PROOF_HEADERS_MAX * CONSENSUS_HEADER_BYTES
    + corridor_consensus::limits::CERTIFICATE_BYTES_MAX;

/// The largest batch transfer must fit in one transaction.
const _: () = assert!(BATCH_LEGS_MAX * (MEMO_BYTES_MAX + 2 * ACCOUNT_ID_BYTES_MAX + 64) < TX_BYTES_MAX);
/// A transaction, hex-encoded in JSON, must fit in a request.
const _: () = assert!(4 * TX_BYTES_MAX < HTTP_BODY_BYTES_MAX);
