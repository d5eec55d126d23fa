//! Checking that a block is final, with nothing but the validator set's keys: what a corporate
//! or a regulator runs before it believes a header (and the state root it carries) that a node
//! served.
//!
//! The rule this module keeps: a header is final only if its block's consensus digest links,
//! through the consensus headers its `Certificate` carries, to a block that a quorum (n − f) of
//! distinct members of the given validator set signed a finalize vote for, in the set's epoch
//! and on the header's chain. Everything is recomputed here from the bytes; nothing the node
//! says about a digest, a hash or a signer is taken on its word.
//!
//! The consensus digest commits to the whole block (`payload` is the block's canonical
//! encoding, transactions included: consensus/README.md), so the block checked directly must
//! come with its transactions. An earlier header is final when a final header descends from it
//! by `parent_hash` (`FinalHeader::ancestor`), which needs headers only.
//!
//! Encoding, digests and signed bytes are corridor-consensus's own (`decode_chain`,
//! `BlockHeader::digest`, `signing_bytes`), so they cannot drift from what validators sign.
//! The checks are made one by one here rather than through `Certificate::verify` so that each
//! refusal says which rule broke and which signer broke it.

use crate::api::ValidatorEntry;
use crate::block::{Block, BlockHeader, Certificate};
use crate::codec;
use crate::crypto::{PublicKey, Signature};
use crate::hash::{Hash, HashAlgorithm};
use crate::ids::AccountId;
use crate::limits::CERTIFICATE_FINALITY_BYTES_MAX;
use corridor_consensus as consensus;
use std::collections::BTreeSet;

/// Why a header is not shown final. `code()` is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FinalityError {
    /// The validator set itself is unusable (empty, too large, a repeated id or key).
    #[error("invalid validator set: {0}")]
    InvalidValidatorSet(String),
    /// The certificate's bytes do not decode, or break the format's structural rules.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// The certificate names another block than the header given (height or header hash).
    #[error("the certificate is for block {certified_height} {certified}, not block {height} {found}")]
    WrongBlockHash {
        height: u64,
        found: Hash,
        certified_height: u64,
        certified: Hash,
    },
    /// The header belongs to another chain than the pinned one.
    #[error("the header is on chain `{found}`, not `{expected}`")]
    WrongChain { expected: String, found: String },
    /// A consensus header does not extend the one before it (digest, view or height), or an
    /// ancestor's hash is not its child's `parent_hash`.
    #[error("the chain of headers breaks at height {height}")]
    BrokenChain { height: u64 },
    /// The certificate (or a header it carries) is of another epoch than the validator set's.
    #[error("epoch {found}, but the validator set is epoch {expected}'s")]
    WrongEpoch { expected: u64, found: u64 },
    /// The certificate at the end of the chain is not a finalization.
    #[error("the certificate at the end of the chain is not a finalization")]
    NotFinalization,
    /// The finalization certifies another block than the one the chain of headers reaches.
    #[error("the finalization certifies another block than the chain of headers reaches")]
    CertifiesOtherBlock,
    #[error("signer {signer} is not in the validator set of {validators}")]
    UnknownSigner { signer: u16, validators: usize },
    #[error("signer {signer} appears twice")]
    DuplicateSigner { signer: u16 },
    #[error("{signers} distinct signers, {quorum} needed")]
    TooFewSigners { signers: usize, quorum: usize },
    /// One signer's signature does not verify under its key in the set (others do).
    #[error("the signature of signer {signer} ({id}) does not verify")]
    BadSignature { signer: u16, id: AccountId },
    /// No signature verifies under the set's keys: another set signed it (or nobody did).
    #[error("none of the {signers} signatures verifies under this validator set: it is not the set that signed")]
    NotSignedBySet { signers: usize },
}

impl FinalityError {
    pub fn code(&self) -> &'static str {
        match self {
            FinalityError::InvalidValidatorSet(_) => "invalid_validator_set",
            FinalityError::Malformed(_) => "malformed_certificate",
            FinalityError::WrongBlockHash { .. } => "wrong_block_hash",
            FinalityError::WrongChain { .. } => "wrong_chain",
            FinalityError::BrokenChain { .. } => "broken_chain",
            FinalityError::WrongEpoch { .. } => "wrong_epoch",
            FinalityError::NotFinalization => "not_finalization",
            FinalityError::CertifiesOtherBlock => "certifies_other_block",
            FinalityError::UnknownSigner { .. } => "unknown_signer",
            FinalityError::DuplicateSigner { .. } => "duplicate_signer",
            FinalityError::TooFewSigners { .. } => "too_few_signers",
            FinalityError::BadSignature { .. } => "bad_signature",
            FinalityError::NotSignedBySet { .. } => "not_signed_by_validator_set",
        }
    }
}

/// One validator: validator i of the set signs as index i.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator {
    pub id: AccountId,
    /// The consensus key (Ed25519 or SM2).
    pub public_key: PublicKey,
}

/// The validators of one epoch, in genesis order, and optionally the chain they run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    epoch: u64,
    chain_id: Option<String>,
    validators: Vec<Validator>,
}

impl ValidatorSet {
    /// The set of `epoch` (the node runs epoch 0): 1 to `VALIDATORS_MAX` validators, no id or
    /// key twice.
    pub fn new(epoch: u64, validators: Vec<Validator>) -> Result<ValidatorSet, FinalityError> {
        let invalid = |why: String| FinalityError::InvalidValidatorSet(why);
        if validators.is_empty() || validators.len() > consensus::limits::VALIDATORS_MAX {
            return Err(invalid(format!(
                "{} validators, 1 to {} allowed",
                validators.len(),
                consensus::limits::VALIDATORS_MAX
            )));
        }
        let mut ids = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for validator in &validators {
            if !ids.insert(&validator.id) {
                return Err(invalid(format!("validator {} is listed twice", validator.id)));
            }
            if !keys.insert(&validator.public_key) {
                return Err(invalid(format!("key {} is listed twice", validator.public_key)));
            }
        }
        Ok(ValidatorSet {
            epoch,
            chain_id: None,
            validators,
        })
    }

    /// The set as `/v1/status` (`validator_set`) or a genesis file lists it.
    pub fn from_entries(epoch: u64, entries: &[ValidatorEntry]) -> Result<ValidatorSet, FinalityError> {
        let validators = entries
            .iter()
            .map(|entry| Validator {
                id: entry.id.clone(),
                public_key: entry.public_key.clone(),
            })
            .collect();
        ValidatorSet::new(epoch, validators)
    }

    /// Pin the chain: a header of any other chain is refused (`WrongChain`).
    pub fn with_chain_id(mut self, chain_id: &str) -> ValidatorSet {
        self.chain_id = Some(chain_id.to_string());
        self
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn chain_id(&self) -> Option<&str> {
        self.chain_id.as_deref()
    }

    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Signatures a finalization needs: n − f, where f is the largest with 3f + 1 <= n (the
    /// consensus crate's rule; 2f + 1 when n = 3f + 1).
    pub fn quorum(&self) -> usize {
        let count = self.validators.len();
        assert!(
            (1..=consensus::limits::VALIDATORS_MAX).contains(&count),
            "a validator set is checked on construction"
        );
        count - (count - 1) / 3
    }
}

/// A header shown final, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalHeader {
    pub header: BlockHeader,
    /// The header's hash under the chain's algorithm.
    pub hash: Hash,
    /// The block whose finalization certificate the proof ends at (this block or a descendant).
    pub certified_height: u64,
    /// The block whose full bytes were checked against their consensus digest; headers below it
    /// are final through `parent_hash` (equal to `header.height` when checked directly).
    pub checked_height: u64,
    pub epoch: u64,
    /// The view the finalization was signed in.
    pub view: u64,
    /// The validators whose finalize signatures verified, in index order.
    pub signers: Vec<AccountId>,
    /// Signatures the finalization needed.
    pub quorum: usize,
    /// Validators in the set.
    pub validators: usize,
}

impl FinalHeader {
    /// The ancestor at the start of `headers`: `headers` are consecutive, ascending, and end at
    /// this header's parent. An ancestor of a final block is final, so no certificate is needed
    /// for it, only the hashes linking it to this header.
    pub fn ancestor(&self, algorithm: HashAlgorithm, headers: &[BlockHeader]) -> Result<FinalHeader, FinalityError> {
        let Some(first) = headers.first() else {
            return Ok(self.clone());
        };
        let mut child = &self.header;
        for header in headers.iter().rev() {
            let linked = header.height.checked_add(1) == Some(child.height)
                && header.hash(algorithm) == child.parent_hash
                && header.chain_id == child.chain_id;
            if !linked {
                return Err(FinalityError::BrokenChain { height: header.height });
            }
            child = header;
        }
        Ok(FinalHeader {
            header: first.clone(),
            hash: first.hash(algorithm),
            ..self.clone()
        })
    }
}

/// The chain's hash as consensus digests use it.
struct ChainHasher(HashAlgorithm);

impl consensus::Hasher for ChainHasher {
    fn hash(&self, bytes: &[u8]) -> consensus::Digest {
        consensus::Digest(self.0.digest(bytes).0)
    }
}

fn malformed(why: impl std::fmt::Display) -> FinalityError {
    FinalityError::Malformed(why.to_string())
}

/// Check that `block` is final under `validators`: its header is the one `certificate` names,
/// its consensus digest (over its whole canonical encoding) links through the carried consensus
/// headers to a block with a finalization signed by a quorum of distinct members of the set,
/// all in the set's epoch.
pub fn verify_block(
    validators: &ValidatorSet,
    algorithm: HashAlgorithm,
    block: &Block,
    certificate: &Certificate,
) -> Result<FinalHeader, FinalityError> {
    // A build with a consensus mutation switched on (a test of the simulator) must not vouch
    // for anything: its quorum and membership rules are deliberately broken.
    assert!(
        consensus::mutation_features().is_empty(),
        "corridor-consensus was built with test mutations {:?}",
        consensus::mutation_features()
    );
    let header = &block.header;
    if let Some(expected) = validators.chain_id()
        && header.chain_id != expected
    {
        return Err(FinalityError::WrongChain {
            expected: expected.to_string(),
            found: header.chain_id.clone(),
        });
    }
    if header.height == 0 {
        return Err(malformed(
            "block 0 has no finalization; genesis is pinned by its hash, not by signatures",
        ));
    }
    let hash = header.hash(algorithm);
    if certificate.height != header.height || certificate.block_hash != hash {
        return Err(FinalityError::WrongBlockHash {
            height: header.height,
            found: hash,
            certified_height: certificate.height,
            certified: certificate.block_hash,
        });
    }
    if certificate.epoch != validators.epoch {
        return Err(FinalityError::WrongEpoch {
            expected: validators.epoch,
            found: certificate.epoch,
        });
    }
    let payload = codec::encode(block);
    if payload.len() > consensus::limits::PAYLOAD_BYTES_MAX {
        return Err(malformed(format!(
            "the block is {} bytes, over the {} a consensus payload may be",
            payload.len(),
            consensus::limits::PAYLOAD_BYTES_MAX
        )));
    }
    if certificate.parent_view >= certificate.view {
        return Err(malformed(format!(
            "parent view {} is not below view {}",
            certificate.parent_view, certificate.view
        )));
    }
    let proof = consensus::decode_chain(&certificate.finality, CERTIFICATE_FINALITY_BYTES_MAX)
        .map_err(|error| malformed(format!("finality bytes: {error}")))?;
    if !proof.blocks.is_empty() {
        return Err(malformed(
            "finality bytes carry blocks; a certificate carries headers only",
        ));
    }
    let hasher = ChainHasher(algorithm);
    let own = consensus::BlockHeader {
        epoch: certificate.epoch,
        view: certificate.view,
        height: header.height,
        parent_view: certificate.parent_view,
        parent: consensus::Digest(certificate.parent_digest.0),
        payload_digest: consensus::Hasher::hash(&hasher, &payload),
    };
    let tip = certified_tip(validators.epoch, &hasher, own, &proof.headers)?;
    let finalization = &proof.finalization;
    if finalization.kind != consensus::VoteKind::Finalize {
        return Err(FinalityError::NotFinalization);
    }
    if finalization.digest != tip.digest || finalization.view != tip.view {
        return Err(FinalityError::CertifiesOtherBlock);
    }
    let signers = check_signatures(validators, header.chain_id.as_bytes(), finalization)?;
    Ok(FinalHeader {
        header: header.clone(),
        hash,
        certified_height: tip.height,
        checked_height: header.height,
        epoch: validators.epoch,
        view: finalization.view,
        signers,
        quorum: validators.quorum(),
        validators: validators.validators.len(),
    })
}

/// Walk from `own` through `headers`, each extending the one before in `epoch`; the block the
/// walk ends at is the one the finalization must certify.
fn certified_tip(
    epoch: u64,
    hasher: &ChainHasher,
    own: consensus::BlockHeader,
    headers: &[consensus::BlockHeader],
) -> Result<consensus::Anchor, FinalityError> {
    let mut tip = consensus::Anchor {
        view: own.view,
        height: own.height,
        digest: own.digest(hasher),
    };
    for header in headers {
        if header.epoch != epoch {
            return Err(FinalityError::WrongEpoch {
                expected: epoch,
                found: header.epoch,
            });
        }
        let linked = header.parent == tip.digest
            && header.parent_view == tip.view
            && header.parent_view < header.view
            && tip.height.checked_add(1) == Some(header.height);
        if !linked {
            return Err(FinalityError::BrokenChain { height: header.height });
        }
        tip = consensus::Anchor {
            view: header.view,
            height: header.height,
            digest: header.digest(hasher),
        };
    }
    Ok(tip)
}

/// Membership, distinctness, order and count of the signers, then every signature under its
/// validator's key. Returns the signers' ids.
fn check_signatures(
    validators: &ValidatorSet,
    chain_id: &[u8],
    finalization: &consensus::Certificate,
) -> Result<Vec<AccountId>, FinalityError> {
    let members = &validators.validators;
    let mut seen = BTreeSet::new();
    for endorsement in &finalization.endorsements {
        let signer = endorsement.signer;
        if usize::from(signer) >= members.len() {
            return Err(FinalityError::UnknownSigner {
                signer,
                validators: members.len(),
            });
        }
        if !seen.insert(signer) {
            return Err(FinalityError::DuplicateSigner { signer });
        }
        if endorsement.since != 0 {
            return Err(malformed(format!("signer {signer} carries a nullify claim")));
        }
    }
    let increasing = finalization
        .endorsements
        .windows(2)
        .all(|pair| pair[0].signer < pair[1].signer);
    if !increasing {
        return Err(malformed("signers are not in increasing order"));
    }
    if seen.len() < validators.quorum() {
        return Err(FinalityError::TooFewSigners {
            signers: seen.len(),
            quorum: validators.quorum(),
        });
    }
    let message = consensus::signing_bytes(
        chain_id,
        validators.epoch,
        consensus::VoteKind::Finalize.tag(),
        finalization.view,
        &finalization.digest,
        0,
    );
    let mut refused = Vec::new();
    for endorsement in &finalization.endorsements {
        let member = &members[usize::from(endorsement.signer)];
        let verified = Signature::from_bytes(member.public_key.scheme(), &endorsement.signature.0)
            .is_ok_and(|signature| member.public_key.verify(&message, &signature).is_ok());
        if !verified {
            refused.push(endorsement.signer);
        }
    }
    match refused.first() {
        None => Ok(finalization
            .endorsements
            .iter()
            .map(|endorsement| members[usize::from(endorsement.signer)].id.clone())
            .collect()),
        Some(_) if refused.len() == finalization.endorsements.len() => {
            Err(FinalityError::NotSignedBySet { signers: refused.len() })
        }
        Some(&signer) => Err(FinalityError::BadSignature {
            signer,
            id: members[usize::from(signer)].id.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    //! Certificates made the way validators make them: finalize votes over the consensus
    //! crate's signed bytes, Ed25519 and SM2 keys, the finality proof encoded as the node
    //! stores it (`encode_chain` with the headers after the block). Each adversary breaks one
    //! rule and is refused with its own error; the consensus crate's own verification agrees.
    use super::*;
    use crate::amount::Amount;
    use crate::crypto::{PrivateKey, Scheme};
    use crate::ids::CurrencyCode;
    use crate::tx::{Operation, Transaction};

    const CHAIN: &str = "fixture-chain";
    /// Consensus views of the fixture's blocks 5, 6 and 7; view 12 was nullified.
    const VIEWS: [u64; 3] = [10, 11, 13];

    fn id(text: &str) -> AccountId {
        AccountId::new(text).expect("valid id")
    }

    fn key(index: u8, scheme: Scheme) -> PrivateKey {
        PrivateKey::from_seed(scheme, [index + 1; 32]).expect("seeded key")
    }

    /// Validators 0 and 2 hold Ed25519 keys, 1 and 3 SM2 keys (a mixed set, as genesis allows).
    fn validator_keys() -> Vec<PrivateKey> {
        (0..4u8)
            .map(|index| key(index, if index % 2 == 0 { Scheme::Ed25519 } else { Scheme::Sm2 }))
            .collect()
    }

    fn set_of(keys: &[PrivateKey]) -> ValidatorSet {
        let validators = keys
            .iter()
            .enumerate()
            .map(|(index, key)| Validator {
                id: id(&format!("validator-{index}")),
                public_key: key.public_key(),
            })
            .collect();
        ValidatorSet::new(0, validators).expect("a valid set")
    }

    struct Fixture {
        algorithm: HashAlgorithm,
        keys: Vec<PrivateKey>,
        set: ValidatorSet,
        /// Blocks 5, 6 and 7; block 7 is the one the finalization signs.
        blocks: Vec<Block>,
        certificates: Vec<Certificate>,
        headers: Vec<consensus::BlockHeader>,
        finalization: consensus::Certificate,
    }

    fn header(
        algorithm: HashAlgorithm,
        height: u64,
        parent_hash: Hash,
        txs: &[crate::SignedTransaction],
    ) -> BlockHeader {
        let hashes: Vec<Hash> = txs.iter().map(|tx| tx.hash(algorithm)).collect();
        BlockHeader {
            version: crate::block::BLOCK_VERSION,
            chain_id: CHAIN.to_string(),
            height,
            parent_hash,
            timestamp_ms: 1_700_000_000_000 + height,
            proposer: id("validator-0"),
            tx_count: u32::try_from(txs.len()).expect("few"),
            txs_root: crate::block::merkle_root(algorithm, &hashes),
            state_root: algorithm.digest(format!("state after {}", height - 1).as_bytes()),
            state_height: height - 1,
        }
    }

    fn transfer(algorithm: HashAlgorithm) -> crate::SignedTransaction {
        let sender = key(9, Scheme::Sm2);
        Transaction {
            version: crate::tx::TX_VERSION,
            genesis_hash: algorithm.digest(b"genesis"),
            sender: id("acme@icbc-cn"),
            nonce: 0,
            expires_at_ms: 1_800_000_000_000,
            operation: Operation::transfer(
                id("harbour@boc-hk"),
                CurrencyCode::new("CNY").expect("code"),
                Amount::parse("107.07").expect("amount"),
                None,
            ),
        }
        .sign(&sender)
    }

    fn sign(
        keys: &[PrivateKey],
        signers: &[u16],
        kind: consensus::VoteKind,
        view: u64,
        digest: consensus::Digest,
    ) -> consensus::Certificate {
        let message = consensus::signing_bytes(CHAIN.as_bytes(), 0, kind.tag(), view, &digest, 0);
        consensus::Certificate {
            kind,
            view,
            digest,
            endorsements: signers
                .iter()
                .map(|&signer| consensus::Endorsement {
                    signer,
                    since: 0,
                    signature: consensus::Signature(keys[usize::from(signer)].sign(&message).as_bytes().to_vec()),
                })
                .collect(),
        }
    }

    impl Fixture {
        fn new(algorithm: HashAlgorithm) -> Fixture {
            let keys = validator_keys();
            let hasher = ChainHasher(algorithm);
            let txs = vec![transfer(algorithm)];
            let first = header(algorithm, 5, algorithm.digest(b"block 4"), &txs);
            let second = header(algorithm, 6, first.hash(algorithm), &[]);
            let third = header(algorithm, 7, second.hash(algorithm), &[]);
            let blocks = vec![
                Block { header: first, txs },
                Block {
                    header: second,
                    txs: Vec::new(),
                },
                Block {
                    header: third,
                    txs: Vec::new(),
                },
            ];
            let mut parent = (9, consensus::Digest(algorithm.digest(b"consensus block 4").0));
            let mut parents = Vec::new();
            let mut headers = Vec::new();
            for (block, view) in blocks.iter().zip(VIEWS) {
                let consensus_block = consensus::Block {
                    epoch: 0,
                    view,
                    height: block.header.height,
                    parent_view: parent.0,
                    parent: parent.1,
                    payload: codec::encode(block),
                };
                parents.push(parent);
                headers.push(consensus_block.header(&hasher));
                parent = (view, consensus_block.digest(&hasher));
            }
            let finalization = sign(&keys, &[0, 1, 3], consensus::VoteKind::Finalize, parent.0, parent.1);
            let certificates = blocks
                .iter()
                .enumerate()
                .map(|(position, block)| Certificate {
                    height: block.header.height,
                    block_hash: block.header.hash(algorithm),
                    epoch: 0,
                    view: VIEWS[position],
                    parent_view: parents[position].0,
                    parent_digest: Hash(parents[position].1.0),
                    finality: consensus::encode_chain(&consensus::FinalizedChain {
                        blocks: Vec::new(),
                        headers: headers[position + 1..].to_vec(),
                        finalization: finalization.clone(),
                    }),
                })
                .collect();
            Fixture {
                algorithm,
                set: set_of(&keys),
                keys,
                blocks,
                certificates,
                headers,
                finalization,
            }
        }

        fn verify(&self, position: usize) -> Result<FinalHeader, FinalityError> {
            verify_block(
                &self.set,
                self.algorithm,
                &self.blocks[position],
                &self.certificates[position],
            )
        }

        /// Block `position`'s certificate with another finalization (and the same headers).
        fn with_finalization(&self, position: usize, finalization: consensus::Certificate) -> Certificate {
            Certificate {
                finality: consensus::encode_chain(&consensus::FinalizedChain {
                    blocks: Vec::new(),
                    headers: self.headers[position + 1..].to_vec(),
                    finalization,
                }),
                ..self.certificates[position].clone()
            }
        }

        fn endorsed_by(&self, signers: &[u16]) -> consensus::Certificate {
            sign(
                &self.keys,
                signers,
                consensus::VoteKind::Finalize,
                self.finalization.view,
                self.finalization.digest,
            )
        }

        /// What the consensus crate's own observer check says of `block` with `certificate`.
        fn consensus_verdict(&self, block: &Block, certificate: &Certificate) -> Result<(), consensus::Error> {
            let proof = consensus::decode_chain(&certificate.finality, CERTIFICATE_FINALITY_BYTES_MAX)?;
            let batch = consensus::FinalizedChain {
                blocks: vec![consensus::Block {
                    epoch: certificate.epoch,
                    view: certificate.view,
                    height: block.header.height,
                    parent_view: certificate.parent_view,
                    parent: consensus::Digest(certificate.parent_digest.0),
                    payload: codec::encode(block),
                }],
                headers: proof.headers,
                finalization: proof.finalization,
            };
            let after = consensus::Anchor {
                view: certificate.parent_view,
                height: block.header.height - 1,
                digest: consensus::Digest(certificate.parent_digest.0),
            };
            let verifier = Keys(self.set.validators.iter().map(|v| v.public_key.clone()).collect());
            let validators = consensus::ValidatorSet::new(self.set.validators.len())?;
            batch
                .verify(
                    &after,
                    CHAIN.as_bytes(),
                    self.set.epoch,
                    &validators,
                    &verifier,
                    &ChainHasher(self.algorithm),
                )
                .map(|_| ())
        }
    }

    /// The consensus crate's `Verifier` over the set's keys, as the node implements it.
    struct Keys(Vec<PublicKey>);

    impl consensus::Verifier for Keys {
        fn verify(&self, validator: u16, message: &[u8], signature: &consensus::Signature) -> bool {
            self.0.get(usize::from(validator)).is_some_and(|key| {
                Signature::from_bytes(key.scheme(), &signature.0).is_ok_and(|s| key.verify(message, &s).is_ok())
            })
        }
    }

    fn refused(result: Result<FinalHeader, FinalityError>) -> FinalityError {
        match result {
            Ok(shown) => panic!("accepted: {shown:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn headers_certified_by_a_quorum_are_final_under_both_hashes() {
        for algorithm in [HashAlgorithm::Sha256, HashAlgorithm::Sm3] {
            let fixture = Fixture::new(algorithm);
            for position in 0..fixture.blocks.len() {
                let shown = fixture.verify(position).expect("a real certificate verifies");
                assert_eq!(shown.header, fixture.blocks[position].header);
                assert_eq!(shown.hash, fixture.blocks[position].header.hash(algorithm));
                assert_eq!(shown.certified_height, 7);
                assert_eq!(shown.checked_height, shown.header.height);
                assert_eq!((shown.epoch, shown.view, shown.quorum, shown.validators), (0, 13, 3, 4));
                assert_eq!(
                    shown.signers,
                    vec![id("validator-0"), id("validator-1"), id("validator-3")]
                );
                let certificate = &fixture.certificates[position];
                assert_eq!(
                    fixture.consensus_verdict(&fixture.blocks[position], certificate),
                    Ok(())
                );
            }
        }
    }

    #[test]
    fn a_forged_signature_is_refused_naming_its_signer() {
        let fixture = Fixture::new(HashAlgorithm::Sm3);
        for signer_position in 0..3 {
            let mut forged = fixture.finalization.clone();
            forged.endorsements[signer_position].signature.0[7] ^= 0x40;
            let certificate = fixture.with_finalization(0, forged.clone());
            let signer = forged.endorsements[signer_position].signer;
            assert_eq!(
                refused(verify_block(
                    &fixture.set,
                    fixture.algorithm,
                    &fixture.blocks[0],
                    &certificate
                )),
                FinalityError::BadSignature {
                    signer,
                    id: id(&format!("validator-{signer}"))
                }
            );
            assert_eq!(
                fixture.consensus_verdict(&fixture.blocks[0], &certificate),
                Err(consensus::Error::BadSignature)
            );
        }
        // Validator 2's place taken by a signature of a key outside the set.
        let mut outsider = fixture.finalization.clone();
        let borrowed = sign(
            &[
                key(50, Scheme::Ed25519),
                key(51, Scheme::Ed25519),
                key(52, Scheme::Ed25519),
            ],
            &[2],
            consensus::VoteKind::Finalize,
            outsider.view,
            outsider.digest,
        );
        outsider.endorsements[2] = borrowed.endorsements[0].clone();
        let certificate = fixture.with_finalization(0, outsider);
        assert_eq!(
            refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &fixture.blocks[0],
                &certificate
            ))
            .code(),
            "bad_signature"
        );
    }

    #[test]
    fn a_signer_outside_the_set_is_refused() {
        let fixture = Fixture::new(HashAlgorithm::Sha256);
        // A fifth key signs, numbered past the end of the four-validator set.
        let mut keys = validator_keys();
        keys.push(key(4, Scheme::Ed25519));
        let certificate = fixture.with_finalization(
            1,
            sign(
                &keys,
                &[0, 1, 4],
                consensus::VoteKind::Finalize,
                fixture.finalization.view,
                fixture.finalization.digest,
            ),
        );
        assert_eq!(
            refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &fixture.blocks[1],
                &certificate
            )),
            FinalityError::UnknownSigner {
                signer: 4,
                validators: 4
            }
        );
        assert_eq!(
            fixture.consensus_verdict(&fixture.blocks[1], &certificate),
            Err(consensus::Error::UnknownValidator)
        );
    }

    #[test]
    fn the_same_signer_twice_does_not_make_a_quorum() {
        let fixture = Fixture::new(HashAlgorithm::Sha256);
        let certificate = fixture.with_finalization(0, fixture.endorsed_by(&[0, 1, 1]));
        assert_eq!(
            refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &fixture.blocks[0],
                &certificate
            )),
            FinalityError::DuplicateSigner { signer: 1 }
        );
        assert!(fixture.consensus_verdict(&fixture.blocks[0], &certificate).is_err());
        // Distinct and valid but out of order: the format has one encoding per signer set.
        let certificate = fixture.with_finalization(0, fixture.endorsed_by(&[1, 0, 3]));
        assert_eq!(
            refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &fixture.blocks[0],
                &certificate
            ))
            .code(),
            "malformed_certificate"
        );
        assert!(fixture.consensus_verdict(&fixture.blocks[0], &certificate).is_err());
    }

    #[test]
    fn fewer_than_a_quorum_of_signers_is_refused() {
        let fixture = Fixture::new(HashAlgorithm::Sm3);
        for signers in [&[][..], &[0], &[1, 3]] {
            let certificate = fixture.with_finalization(2, fixture.endorsed_by(signers));
            assert_eq!(
                refused(verify_block(
                    &fixture.set,
                    fixture.algorithm,
                    &fixture.blocks[2],
                    &certificate
                )),
                FinalityError::TooFewSigners {
                    signers: signers.len(),
                    quorum: 3
                }
            );
            assert_eq!(
                fixture.consensus_verdict(&fixture.blocks[2], &certificate),
                Err(consensus::Error::NotQuorum)
            );
        }
        // All four sign: more than a quorum is fine.
        let certificate = fixture.with_finalization(2, fixture.endorsed_by(&[0, 1, 2, 3]));
        let shown = verify_block(&fixture.set, fixture.algorithm, &fixture.blocks[2], &certificate)
            .expect("four of four verify");
        assert_eq!(shown.signers.len(), 4);
    }

    #[test]
    fn a_header_whose_state_root_was_changed_is_refused() {
        let fixture = Fixture::new(HashAlgorithm::Sha256);
        let lie = fixture.algorithm.digest(b"a richer state");
        for position in 0..fixture.blocks.len() {
            let mut block = fixture.blocks[position].clone();
            block.header.state_root = lie;
            // Under the real certificate: it names the real header's hash.
            let error = refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &block,
                &fixture.certificates[position],
            ));
            assert_eq!(error.code(), "wrong_block_hash", "{error}");
            // With the certificate's hash changed to match: the consensus digest moves.
            let mut certificate = fixture.certificates[position].clone();
            certificate.block_hash = block.header.hash(fixture.algorithm);
            let error = refused(verify_block(&fixture.set, fixture.algorithm, &block, &certificate));
            let expected = match position {
                2 => FinalityError::CertifiesOtherBlock,
                _ => FinalityError::BrokenChain {
                    height: block.header.height + 1,
                },
            };
            assert_eq!(error, expected);
            assert!(fixture.consensus_verdict(&block, &certificate).is_err());
        }
    }

    #[test]
    fn transactions_are_covered_by_the_digest() {
        let fixture = Fixture::new(HashAlgorithm::Sm3);
        // The same header without its transaction (or with another) is not the certified block.
        let mut block = fixture.blocks[0].clone();
        block.txs.clear();
        assert_eq!(
            refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &block,
                &fixture.certificates[0]
            )),
            FinalityError::BrokenChain { height: 6 }
        );
    }

    #[test]
    fn a_certificate_for_a_different_block_is_refused() {
        let fixture = Fixture::new(HashAlgorithm::Sha256);
        for (block, certificate) in [(0, 1), (1, 0), (2, 0), (0, 2)] {
            let error = refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &fixture.blocks[block],
                &fixture.certificates[certificate],
            ));
            assert_eq!(error.code(), "wrong_block_hash", "{error}");
        }
        // Block 6's proof under block 5's name: the headers do not start at block 5.
        let certificate = Certificate {
            finality: fixture.certificates[1].finality.clone(),
            ..fixture.certificates[0].clone()
        };
        assert_eq!(
            refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &fixture.blocks[0],
                &certificate
            )),
            FinalityError::BrokenChain { height: 7 }
        );
        // A finalization of another block (block 6's digest) at the end of block 7's proof.
        let other = sign(
            &fixture.keys,
            &[0, 1, 2],
            consensus::VoteKind::Finalize,
            VIEWS[1],
            fixture.headers[1].digest(&ChainHasher(fixture.algorithm)),
        );
        let certificate = fixture.with_finalization(2, other);
        assert_eq!(
            refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &fixture.blocks[2],
                &certificate
            )),
            FinalityError::CertifiesOtherBlock
        );
        assert_eq!(
            fixture.consensus_verdict(&fixture.blocks[2], &certificate),
            Err(consensus::Error::WrongCertificate)
        );
        // A quorum of notarize votes is not a finalization.
        let notarization = sign(
            &fixture.keys,
            &[0, 1, 2],
            consensus::VoteKind::Notarize,
            fixture.finalization.view,
            fixture.finalization.digest,
        );
        let certificate = fixture.with_finalization(2, notarization);
        assert_eq!(
            refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &fixture.blocks[2],
                &certificate
            )),
            FinalityError::NotFinalization
        );
        assert!(fixture.consensus_verdict(&fixture.blocks[2], &certificate).is_err());
    }

    #[test]
    fn malformed_finality_bytes_are_refused() {
        let fixture = Fixture::new(HashAlgorithm::Sha256);
        let real = fixture.certificates[0].finality.clone();
        let mut trailing = real.clone();
        trailing.push(0);
        let mut version = real.clone();
        version[0] = 1;
        for finality in [
            Vec::new(),
            vec![2, 0xff],
            real[..real.len() - 1].to_vec(),
            trailing,
            version,
        ] {
            let certificate = Certificate {
                finality,
                ..fixture.certificates[0].clone()
            };
            let error = refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &fixture.blocks[0],
                &certificate,
            ));
            assert_eq!(error.code(), "malformed_certificate", "{error}");
        }
        // A parent view at or above the block's view cannot be.
        let mut certificate = fixture.certificates[0].clone();
        certificate.parent_view = certificate.view;
        assert_eq!(
            refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &fixture.blocks[0],
                &certificate
            ))
            .code(),
            "malformed_certificate"
        );
        // Genesis has no signatures to check.
        let mut genesis = fixture.blocks[0].clone();
        genesis.header.height = 0;
        assert_eq!(
            refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &genesis,
                &fixture.certificates[0]
            ))
            .code(),
            "malformed_certificate"
        );
    }

    #[test]
    fn another_epoch_or_validator_set_is_refused() {
        let fixture = Fixture::new(HashAlgorithm::Sm3);
        // The set of epoch 1 does not vouch for epoch 0's certificates, nor the reverse.
        let later = ValidatorSet::new(1, fixture.set.validators.clone()).expect("set");
        assert_eq!(
            refused(verify_block(
                &later,
                fixture.algorithm,
                &fixture.blocks[0],
                &fixture.certificates[0]
            )),
            FinalityError::WrongEpoch { expected: 1, found: 0 }
        );
        let mut certificate = fixture.certificates[0].clone();
        certificate.epoch = 1;
        assert_eq!(
            refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &fixture.blocks[0],
                &certificate
            )),
            FinalityError::WrongEpoch { expected: 0, found: 1 }
        );
        // A carried header of another epoch.
        let mut headers = fixture.headers.clone();
        headers[2].epoch = 1;
        let certificate = Certificate {
            finality: consensus::encode_chain(&consensus::FinalizedChain {
                blocks: Vec::new(),
                headers: headers[1..].to_vec(),
                finalization: fixture.finalization.clone(),
            }),
            ..fixture.certificates[0].clone()
        };
        assert_eq!(
            refused(verify_block(
                &fixture.set,
                fixture.algorithm,
                &fixture.blocks[0],
                &certificate
            )),
            FinalityError::WrongEpoch { expected: 0, found: 1 }
        );
        // Four other keys, same ids: nothing verifies, so it is not the set that signed.
        let others: Vec<PrivateKey> = (20..24u8).map(|index| key(index, Scheme::Ed25519)).collect();
        let impostors = set_of(&others);
        assert_eq!(
            refused(verify_block(
                &impostors,
                fixture.algorithm,
                &fixture.blocks[1],
                &fixture.certificates[1]
            )),
            FinalityError::NotSignedBySet { signers: 3 }
        );
        // A pinned chain id that is not the header's.
        let pinned = fixture.set.clone().with_chain_id("another-chain");
        assert_eq!(
            refused(verify_block(
                &pinned,
                fixture.algorithm,
                &fixture.blocks[1],
                &fixture.certificates[1]
            ))
            .code(),
            "wrong_chain"
        );
        let pinned = fixture.set.clone().with_chain_id(CHAIN);
        verify_block(&pinned, fixture.algorithm, &fixture.blocks[1], &fixture.certificates[1])
            .expect("the right chain verifies");
    }

    #[test]
    fn ancestors_of_a_final_header_are_final_by_their_hashes() {
        let fixture = Fixture::new(HashAlgorithm::Sha256);
        let last = fixture.verify(2).expect("final");
        let below: Vec<BlockHeader> = fixture.blocks[..2].iter().map(|b| b.header.clone()).collect();
        let first = last
            .ancestor(fixture.algorithm, &below)
            .expect("linked by parent hashes");
        assert_eq!(first.header, fixture.blocks[0].header);
        assert_eq!((first.checked_height, first.certified_height), (7, 7));
        assert_eq!(first.hash, fixture.blocks[0].header.hash(fixture.algorithm));
        let mut changed = below.clone();
        changed[0].state_root = fixture.algorithm.digest(b"a richer state");
        assert_eq!(
            last.ancestor(fixture.algorithm, &changed),
            Err(FinalityError::BrokenChain { height: 5 })
        );
        // A gap (block 6 left out) breaks the chain too.
        assert_eq!(
            last.ancestor(fixture.algorithm, &below[..1]),
            Err(FinalityError::BrokenChain { height: 5 })
        );
    }

    #[test]
    fn quorum_is_the_consensus_crates_and_sets_are_checked() {
        let keys: Vec<PrivateKey> = (0..100u8).map(|index| key(index, Scheme::Ed25519)).collect();
        for count in 1..=100 {
            let set = set_of(&keys[..count]);
            let consensus_set = consensus::ValidatorSet::new(count).expect("count");
            assert_eq!(set.quorum(), consensus_set.quorum(), "n = {count}");
        }
        assert_eq!(
            ValidatorSet::new(0, Vec::new()).map(|_| ()).map_err(|e| e.code()),
            Err("invalid_validator_set")
        );
        let twice = vec![
            Validator {
                id: id("validator-0"),
                public_key: keys[0].public_key(),
            },
            Validator {
                id: id("validator-1"),
                public_key: keys[0].public_key(),
            },
        ];
        assert_eq!(
            ValidatorSet::new(0, twice).map(|_| ()).map_err(|e| e.code()),
            Err("invalid_validator_set")
        );
    }
}
