//! Messages, votes and certificates, and what makes each of them valid on its own.
//!
//! The rule this module keeps: every signature covers domain-separated bytes (protocol tag,
//! chain id, epoch, message kind, view, digest, and for a nullify vote its claim), and a
//! certificate is valid only with a quorum of distinct, sorted, verified members of the epoch's
//! validator set, checkable by an observer with nothing but that set and a `Verifier`.

use crate::error::Error;
use crate::limits::{CATCH_UP_BLOCKS_MAX, PROOF_HEADERS_MAX, SIGNATURE_BYTES_MAX};
use crate::types::{
    Anchor, Block, BlockHeader, Digest, Epoch, Hasher, Signature, ValidatorIndex, ValidatorSet, Verifier, View,
};

/// Protocol tag that starts every signed byte string.
const SIGNING_DOMAIN: &[u8] = b"corridor-consensus/v2";

/// The three votes of the protocol.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum VoteKind {
    /// "This block, proposed in this view, is valid and extends a justified parent."
    Notarize,
    /// "Nothing was notarized in this view in time; move on." It also claims the views before
    /// it that the signer holds proof were nullified (`Vote::since`).
    Nullify,
    /// "I saw this block notarized and never voted to nullify its view."
    Finalize,
}

impl VoteKind {
    pub fn tag(self) -> u8 {
        match self {
            VoteKind::Notarize => 1,
            VoteKind::Nullify => 2,
            VoteKind::Finalize => 3,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Result<VoteKind, Error> {
        match tag {
            1 => Ok(VoteKind::Notarize),
            2 => Ok(VoteKind::Nullify),
            3 => Ok(VoteKind::Finalize),
            _ => Err(Error::UnknownTag),
        }
    }
}

/// Signing-kind tag of a proposal (distinct from the vote tags).
const PROPOSAL_TAG: u8 = 0;

/// The exact bytes a validator signs. Nullify votes sign the zero digest and their claim
/// `since`; other kinds sign `since` = 0.
pub fn signing_bytes(chain_id: &[u8], epoch: Epoch, kind_tag: u8, view: View, digest: &Digest, since: View) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SIGNING_DOMAIN.len() + chain_id.len() + 66);
    bytes.extend_from_slice(SIGNING_DOMAIN);
    bytes.push(u8::try_from(chain_id.len()).unwrap_or(u8::MAX));
    bytes.extend_from_slice(chain_id);
    bytes.extend_from_slice(&epoch.to_le_bytes());
    bytes.push(kind_tag);
    bytes.extend_from_slice(&view.to_le_bytes());
    bytes.extend_from_slice(&digest.0);
    bytes.extend_from_slice(&since.to_le_bytes());
    bytes
}

/// A signed vote.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Vote {
    pub kind: VoteKind,
    pub view: View,
    /// The block voted for; the zero digest for `Nullify`.
    pub digest: Digest,
    /// For `Nullify` only (0 otherwise): the signer holds proof that every view in
    /// (`since`, `view`) was nullified. `since` < `view`; `view - 1` claims nothing.
    pub since: View,
    pub signer: ValidatorIndex,
    pub signature: Signature,
}

impl Vote {
    pub fn signing_bytes(&self, chain_id: &[u8], epoch: Epoch) -> Vec<u8> {
        signing_bytes(chain_id, epoch, self.kind.tag(), self.view, &self.digest, self.since)
    }

    /// The checks that need no key: shape and membership.
    pub(crate) fn check_shape(&self, validators: &ValidatorSet) -> Result<(), Error> {
        if !validators.contains(self.signer) {
            return Err(Error::UnknownValidator);
        }
        check_claim(self.kind, self.view, &self.digest, self.since)?;
        if self.signature.0.len() > SIGNATURE_BYTES_MAX {
            return Err(Error::BadSignature);
        }
        Ok(())
    }

    pub fn verify(
        &self,
        chain_id: &[u8],
        epoch: Epoch,
        validators: &ValidatorSet,
        verifier: &dyn Verifier,
    ) -> Result<(), Error> {
        self.check_shape(validators)?;
        if !verifier.verify(self.signer, &self.signing_bytes(chain_id, epoch), &self.signature) {
            return Err(Error::BadSignature);
        }
        Ok(())
    }
}

/// A nullify vote signs the zero digest and claims a view below its own; other votes claim 0.
fn check_claim(kind: VoteKind, view: View, digest: &Digest, since: View) -> Result<(), Error> {
    let fits = match kind {
        VoteKind::Nullify => *digest == Digest::default() && since < view,
        VoteKind::Notarize | VoteKind::Finalize => since == 0,
    };
    if fits { Ok(()) } else { Err(Error::WrongCertificate) }
}

/// A leader's signed proposal of a block for its view.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Proposal {
    pub block: Block,
    pub signature: Signature,
}

impl Proposal {
    pub fn signing_bytes(chain_id: &[u8], epoch: Epoch, view: View, digest: &Digest) -> Vec<u8> {
        signing_bytes(chain_id, epoch, PROPOSAL_TAG, view, digest, 0)
    }

    /// Checks the shape and the leader's signature; returns the block digest.
    pub fn verify(
        &self,
        chain_id: &[u8],
        epoch: Epoch,
        validators: &ValidatorSet,
        verifier: &dyn Verifier,
        hasher: &dyn Hasher,
    ) -> Result<Digest, Error> {
        if !self.block.is_well_formed() || self.block.epoch != epoch {
            return Err(Error::MalformedBlock);
        }
        let digest = self.block.digest(hasher);
        let leader = validators.leader(self.block.view);
        let bytes = Proposal::signing_bytes(chain_id, epoch, self.block.view, &digest);
        if self.signature.0.len() > SIGNATURE_BYTES_MAX || !verifier.verify(leader, &bytes, &self.signature) {
            return Err(Error::BadSignature);
        }
        Ok(digest)
    }
}

/// One validator's signature in a certificate, with its nullify claim (0 for other kinds).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Endorsement {
    pub signer: ValidatorIndex,
    pub since: View,
    pub signature: Signature,
}

/// A quorum of signatures of one kind on one (view, digest): a notarization, a nullification or
/// a finalization. Signers are strictly increasing, so a certificate's signer set has one
/// encoding.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Certificate {
    pub kind: VoteKind,
    pub view: View,
    /// The certified block; the zero digest for a nullification.
    pub digest: Digest,
    pub endorsements: Vec<Endorsement>,
}

impl Certificate {
    /// Checks the certificate on its own: what an observer runs on every finalized block.
    /// Every signature is checked in one `Verifier::verify_all` call (a batch in the node).
    pub fn verify(
        &self,
        chain_id: &[u8],
        epoch: Epoch,
        validators: &ValidatorSet,
        verifier: &dyn Verifier,
    ) -> Result<(), Error> {
        if self.kind == VoteKind::Nullify && self.digest != Digest::default() {
            return Err(Error::WrongCertificate);
        }
        if self.endorsements.len() < validators.quorum() {
            return Err(Error::NotQuorum);
        }
        let sorted = self.endorsements.windows(2).all(|pair| pair[0].signer < pair[1].signer);
        if !sorted {
            return Err(Error::NotQuorum);
        }
        for endorsement in &self.endorsements {
            if !validators.contains(endorsement.signer) {
                return Err(Error::UnknownValidator);
            }
            check_claim(self.kind, self.view, &self.digest, endorsement.since)?;
            if endorsement.signature.0.len() > SIGNATURE_BYTES_MAX {
                return Err(Error::BadSignature);
            }
        }
        if cfg!(feature = "mutation-skip-certificate-verification") {
            return Ok(());
        }
        // Every signer signs the same bytes, except the claims of a nullification.
        let shared = signing_bytes(chain_id, epoch, self.kind.tag(), self.view, &self.digest, 0);
        let claims: Vec<Vec<u8>> = if self.kind == VoteKind::Nullify {
            self.endorsements
                .iter()
                .map(|endorsement| {
                    signing_bytes(
                        chain_id,
                        epoch,
                        self.kind.tag(),
                        self.view,
                        &self.digest,
                        endorsement.since,
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let items: Vec<(ValidatorIndex, &[u8], &Signature)> = self
            .endorsements
            .iter()
            .enumerate()
            .map(|(position, endorsement)| {
                let message = claims.get(position).unwrap_or(&shared);
                (endorsement.signer, message.as_slice(), &endorsement.signature)
            })
            .collect();
        if verifier.verify_all(&items) {
            Ok(())
        } else {
            Err(Error::BadSignature)
        }
    }

    /// For a nullification of view v: the lowest s such that the certificate proves every view
    /// in (s, v] nullified. At least f + 1 of its signers claim `since` <= s, so one honest
    /// signer holds proof of (s, v); the certificate itself nullifies v. A nullification whose
    /// claims prove nothing more gives v - 1.
    pub fn proven_since(&self, validators: &ValidatorSet) -> View {
        assert!(self.kind == VoteKind::Nullify, "only nullifications prove ranges");
        let mut claims: Vec<View> = self.endorsements.iter().map(|endorsement| endorsement.since).collect();
        claims.sort_unstable();
        let witnesses = validators.honest_witnesses();
        let proven = claims.get(witnesses - 1).copied().unwrap_or(self.view - 1);
        proven.min(self.view - 1)
    }

    /// The signers, for tests and logs.
    pub fn signers(&self) -> Vec<ValidatorIndex> {
        self.endorsements.iter().map(|endorsement| endorsement.signer).collect()
    }
}

/// Finalized blocks in height order, and the proof that the last one is final: the headers
/// from it up to a block with a finalization certificate, and that certificate. Every block of
/// the batch is final because the certified block extends it by parent digest.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FinalizedChain {
    pub blocks: Vec<Block>,
    /// Headers of the blocks after the last one, up to the certified block (empty when the last
    /// block is the certified one).
    pub headers: Vec<BlockHeader>,
    pub finalization: Certificate,
}

impl FinalizedChain {
    /// Checks that the blocks extend `after` one height at a time, that the headers extend the
    /// last block, all in `epoch`, and that the certificate is a valid finalization of the last
    /// header (or block). Returns the new anchor: the last block.
    pub fn verify(
        &self,
        after: &Anchor,
        chain_id: &[u8],
        epoch: Epoch,
        validators: &ValidatorSet,
        verifier: &dyn Verifier,
        hasher: &dyn Hasher,
    ) -> Result<Anchor, Error> {
        if self.blocks.is_empty() || self.blocks.len() > CATCH_UP_BLOCKS_MAX || self.headers.len() > PROOF_HEADERS_MAX {
            return Err(Error::LimitExceeded);
        }
        if self.finalization.kind != VoteKind::Finalize {
            return Err(Error::WrongCertificate);
        }
        let mut tip = *after;
        let mut headers = self
            .blocks
            .iter()
            .map(|block| (block.is_well_formed(), block.header(hasher)));
        let proof = self.headers.iter().map(|header| (header.is_well_formed(), *header));
        let mut end = None;
        for (position, (well_formed, header)) in headers.by_ref().chain(proof).enumerate() {
            let linked = header.parent == tip.digest
                && header.parent_view == tip.view
                && header.height == tip.height + 1
                && header.epoch == epoch;
            if !well_formed || !linked {
                return Err(Error::BrokenChain);
            }
            tip = Anchor {
                view: header.view,
                height: header.height,
                digest: header.digest(hasher),
            };
            if position + 1 == self.blocks.len() {
                end = Some(tip);
            }
        }
        if tip.digest != self.finalization.digest || tip.view != self.finalization.view {
            return Err(Error::WrongCertificate);
        }
        self.finalization.verify(chain_id, epoch, validators, verifier)?;
        Ok(end.expect("the batch has at least one block"))
    }
}

/// Everything replicas say to each other. On the wire each message carries the sender's epoch.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    Proposal(Proposal),
    Vote(Vote),
    Certificate(Certificate),
    /// "Send me what you hold for this view": its notarized block or its nullification.
    Request {
        view: View,
    },
    /// A block with its notarization: the answer to a `Request`.
    Notarized {
        block: Block,
        notarization: Certificate,
    },
    /// "Send me the block with this digest": asked when a finalized block's ancestor or a
    /// justified parent is missing.
    BlockRequest {
        digest: Digest,
    },
    /// A block, the answer to a `BlockRequest`; accepted only if its digest was asked for.
    Block(Block),
}
