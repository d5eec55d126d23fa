//! Messages, votes and certificates, and what makes each of them valid on its own.
//!
//! The rule this module keeps: every signature covers domain-separated bytes (protocol tag,
//! chain id, message kind, view, digest), and a certificate is valid only with a quorum of
//! distinct, sorted, verified signers, checkable by an observer with nothing but the validator
//! set and a `Verifier`.

use crate::error::Error;
use crate::limits::{CATCH_UP_BLOCKS_MAX, SIGNATURE_BYTES_MAX};
use crate::types::{Anchor, Block, Digest, Hasher, Signature, ValidatorIndex, ValidatorSet, Verifier, View};

/// Protocol tag that starts every signed byte string.
const SIGNING_DOMAIN: &[u8] = b"corridor-consensus/v1";

/// The three votes of the protocol.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum VoteKind {
    /// "This block, proposed in this view, is valid and extends a justified parent."
    Notarize,
    /// "Nothing was notarized in this view in time; move on."
    Nullify,
    /// "I saw this block notarized and never voted to nullify its view."
    Finalize,
}

impl VoteKind {
    pub(crate) fn tag(self) -> u8 {
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

/// The exact bytes a validator signs. Nullify votes sign the zero digest.
pub fn signing_bytes(chain_id: &[u8], kind_tag: u8, view: View, digest: &Digest) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SIGNING_DOMAIN.len() + chain_id.len() + 48);
    bytes.extend_from_slice(SIGNING_DOMAIN);
    bytes.push(u8::try_from(chain_id.len()).unwrap_or(u8::MAX));
    bytes.extend_from_slice(chain_id);
    bytes.push(kind_tag);
    bytes.extend_from_slice(&view.to_le_bytes());
    bytes.extend_from_slice(&digest.0);
    bytes
}

/// A signed vote.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Vote {
    pub kind: VoteKind,
    pub view: View,
    /// The block voted for; the zero digest for `Nullify`.
    pub digest: Digest,
    pub signer: ValidatorIndex,
    pub signature: Signature,
}

impl Vote {
    pub fn signing_bytes(&self, chain_id: &[u8]) -> Vec<u8> {
        signing_bytes(chain_id, self.kind.tag(), self.view, &self.digest)
    }

    pub fn verify(&self, chain_id: &[u8], validators: &ValidatorSet, verifier: &dyn Verifier) -> Result<(), Error> {
        if !validators.contains(self.signer) {
            return Err(Error::UnknownValidator);
        }
        if self.kind == VoteKind::Nullify && self.digest != Digest::default() {
            return Err(Error::WrongCertificate);
        }
        if self.signature.0.len() > SIGNATURE_BYTES_MAX
            || !verifier.verify(self.signer, &self.signing_bytes(chain_id), &self.signature)
        {
            return Err(Error::BadSignature);
        }
        Ok(())
    }
}

/// A leader's signed proposal of a block for its view.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Proposal {
    pub block: Block,
    pub signature: Signature,
}

impl Proposal {
    pub fn signing_bytes(chain_id: &[u8], view: View, digest: &Digest) -> Vec<u8> {
        signing_bytes(chain_id, PROPOSAL_TAG, view, digest)
    }

    /// Checks the leader's signature; returns the block digest.
    pub fn verify(
        &self,
        chain_id: &[u8],
        validators: &ValidatorSet,
        verifier: &dyn Verifier,
        hasher: &dyn Hasher,
    ) -> Result<Digest, Error> {
        if !self.block.is_well_formed() {
            return Err(Error::MalformedBlock);
        }
        let digest = self.block.digest(hasher);
        let leader = validators.leader(self.block.view);
        let bytes = Proposal::signing_bytes(chain_id, self.block.view, &digest);
        if self.signature.0.len() > SIGNATURE_BYTES_MAX || !verifier.verify(leader, &bytes, &self.signature) {
            return Err(Error::BadSignature);
        }
        Ok(digest)
    }
}

/// A quorum of signatures of one kind on one (view, digest): a notarization, a nullification or
/// a finalization. Signers are strictly increasing, so a certificate has one encoding.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Certificate {
    pub kind: VoteKind,
    pub view: View,
    /// The certified block; the zero digest for a nullification.
    pub digest: Digest,
    pub signatures: Vec<(ValidatorIndex, Signature)>,
}

impl Certificate {
    /// Checks the certificate on its own: what an observer runs on every finalized block.
    pub fn verify(&self, chain_id: &[u8], validators: &ValidatorSet, verifier: &dyn Verifier) -> Result<(), Error> {
        if self.kind == VoteKind::Nullify && self.digest != Digest::default() {
            return Err(Error::WrongCertificate);
        }
        if self.signatures.len() < validators.quorum() {
            return Err(Error::NotQuorum);
        }
        let sorted = self.signatures.windows(2).all(|pair| pair[0].0 < pair[1].0);
        if !sorted {
            return Err(Error::NotQuorum);
        }
        let bytes = signing_bytes(chain_id, self.kind.tag(), self.view, &self.digest);
        for (signer, signature) in &self.signatures {
            if !validators.contains(*signer) {
                return Err(Error::UnknownValidator);
            }
            if signature.0.len() > SIGNATURE_BYTES_MAX || !verifier.verify(*signer, &bytes, signature) {
                return Err(Error::BadSignature);
            }
        }
        Ok(())
    }
}

/// Finalized blocks in height order with the finalization certificate of the last one. The
/// earlier blocks are final because the last one extends them by parent digest.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FinalizedChain {
    pub blocks: Vec<Block>,
    pub finalization: Certificate,
}

impl FinalizedChain {
    /// Checks that the blocks extend `after` one height at a time and that the certificate is a
    /// valid finalization of the last block. Returns the new anchor.
    pub fn verify(
        &self,
        after: &Anchor,
        chain_id: &[u8],
        validators: &ValidatorSet,
        verifier: &dyn Verifier,
        hasher: &dyn Hasher,
    ) -> Result<Anchor, Error> {
        if self.blocks.is_empty() || self.blocks.len() > CATCH_UP_BLOCKS_MAX {
            return Err(Error::LimitExceeded);
        }
        if self.finalization.kind != VoteKind::Finalize {
            return Err(Error::WrongCertificate);
        }
        let mut tip = *after;
        for block in &self.blocks {
            let linked = block.parent == tip.digest && block.parent_view == tip.view && block.height == tip.height + 1;
            if !block.is_well_formed() || !linked {
                return Err(Error::BrokenChain);
            }
            tip = Anchor {
                view: block.view,
                height: block.height,
                digest: block.digest(hasher),
            };
        }
        if tip.digest != self.finalization.digest || tip.view != self.finalization.view {
            return Err(Error::WrongCertificate);
        }
        self.finalization.verify(chain_id, validators, verifier)?;
        Ok(tip)
    }
}

/// Everything replicas say to each other.
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
    /// "Send me the block with this digest": asked when a finalized block's ancestor is missing.
    BlockRequest {
        digest: Digest,
    },
    /// A block, the answer to a `BlockRequest`; accepted only if its digest was asked for.
    Block(Block),
}
