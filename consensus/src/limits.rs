//! Every size and count that input can drive, as a named constant with its unit last.
//!
//! The rule this module keeps: nothing a peer sends can make a replica hold more than these
//! bounds, and every decoder is handed one of them.

/// Largest validator set the protocol is tested and sized for.
pub const VALIDATORS_MAX: usize = 100;
/// Largest application payload carried by one block.
pub const PAYLOAD_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest signature a `Verifier` may be asked about (Ed25519 is 64, SM2 DER is at most 72).
pub const SIGNATURE_BYTES_MAX: usize = 128;
/// Largest chain id that domain-separates signatures.
pub const CHAIN_ID_BYTES_MAX: usize = 64;
/// Largest encoded certificate: header plus one signature (and nullify claim) per validator.
pub const CERTIFICATE_BYTES_MAX: usize = 64 + VALIDATORS_MAX * (2 + 8 + 2 + SIGNATURE_BYTES_MAX);
/// Largest encoded block.
pub const BLOCK_BYTES_MAX: usize = 72 + PAYLOAD_BYTES_MAX;
/// Largest encoded consensus message (a notarized block with its certificate).
pub const MESSAGE_BYTES_MAX: usize = 16 + BLOCK_BYTES_MAX + CERTIFICATE_BYTES_MAX;
/// Views above the current one for which votes and proposals are buffered.
pub const VIEWS_AHEAD_MAX: u64 = 64;
/// Views kept in memory behind the current one (votes, certificates, blocks). Older views are
/// dropped except the notarized ones above the anchor and the nullifications that prove the
/// current view's justification (at most this many of each).
pub const VIEWS_KEPT_MAX: u64 = 1024;
/// Heights above its finalized anchor at which a replica proposes or votes. It bounds the
/// blocks a replica holds and the headers of a finality proof (`PROOF_HEADERS_MAX`).
pub const HEIGHTS_PENDING_MAX: u64 = 16_384;
/// Headers in one finality proof: from a delivered batch's last block to the certified block.
pub const PROOF_HEADERS_MAX: usize = 16_384;
/// Equivocation evidence records kept for governance.
pub const EVIDENCE_MAX: usize = 1024;
/// Blocks in one finalized batch: delivered to the node, or handed over by catch-up.
pub const CATCH_UP_BLOCKS_MAX: usize = 256;
/// Answers (to `Request` and `BlockRequest`) one peer gets per view this replica is in.
pub const ANSWERS_PER_PEER_PER_VIEW: u32 = 32;
/// Bytes of answers one peer gets per view this replica is in (a block is at most 4 MiB).
pub const ANSWER_BYTES_PER_PEER_PER_VIEW: usize = 2 * BLOCK_BYTES_MAX;
/// Missing views a replica asks a proposer about for one proposal.
pub const REQUESTS_PER_PROPOSAL_MAX: usize = 16;
/// Timeouts double per back-off step up to this many doublings.
pub const TIMEOUT_BACKOFF_SHIFT_MAX: u32 = 6;
/// Views in a row finalized with this replica's vote before one learned back-off step is
/// given back.
pub const VIEWS_FINALIZED_BEFORE_DECAY: u32 = 16;
/// A replica that keeps seeing evidence of being behind asks for catch-up again after this many
/// views (and after every timeout).
pub const CATCH_UP_RETRY_VIEWS: u64 = 8;
