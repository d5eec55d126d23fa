//! The boundary where a peer's bytes become something the replica may act on.
//!
//! The rule this module keeps: every signature, vote and certificate is verified here, once,
//! before any state changes; the replica's state holds only `Verified` values, and only this
//! module can make one (from a check, or from votes that were each verified here). Call sites
//! inside the replica never verify and never need to, so none can forget to.

use crate::error::Error;
use crate::message::{Certificate, Endorsement, FinalizedChain, Message, Proposal, Vote, VoteKind};
use crate::types::{Anchor, Block, Config, Digest, Hasher, Verifier, View};

/// A value that passed verification at the boundary. It cannot be built anywhere else.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Verified<T>(T);

impl<T> Verified<T> {
    pub(crate) fn get(&self) -> &T {
        &self.0
    }

    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// A peer's message after verification.
pub(crate) enum Checked {
    /// A proposal signed by its view's leader, with the block's digest.
    Proposal(Verified<Proposal>, Digest),
    Vote(Verified<Vote>),
    Certificate(Verified<Certificate>),
    Request(View),
    /// A block and a valid notarization of exactly that block.
    Notarized(Block, Digest, Verified<Certificate>),
    BlockRequest(Digest),
    /// A well-formed block of this epoch and its digest; accepted only if asked for.
    Block(Block, Digest),
}

/// Verifies one decoded message of this replica's epoch.
pub(crate) fn check(
    config: &Config,
    verifier: &dyn Verifier,
    hasher: &dyn Hasher,
    message: Message,
) -> Result<Checked, Error> {
    let (chain_id, epoch, validators) = (&config.chain_id, config.epoch, &config.validators);
    match message {
        Message::Proposal(proposal) => {
            let digest = proposal.verify(chain_id, epoch, validators, verifier, hasher)?;
            Ok(Checked::Proposal(Verified(proposal), digest))
        }
        Message::Vote(vote) => {
            vote.verify(chain_id, epoch, validators, verifier)?;
            Ok(Checked::Vote(Verified(vote)))
        }
        Message::Certificate(certificate) => Ok(Checked::Certificate(certificate_of(config, verifier, certificate)?)),
        Message::Request { view } => Ok(Checked::Request(view)),
        Message::Notarized { block, notarization } => {
            let fits = notarization.kind == VoteKind::Notarize
                && notarization.view == block.view
                && block.epoch == epoch
                && block.is_well_formed();
            if !fits {
                return Err(Error::WrongCertificate);
            }
            let digest = block.digest(hasher);
            if digest != notarization.digest {
                return Err(Error::WrongCertificate);
            }
            let notarization = certificate_of(config, verifier, notarization)?;
            Ok(Checked::Notarized(block, digest, notarization))
        }
        Message::BlockRequest { digest } => Ok(Checked::BlockRequest(digest)),
        Message::Block(block) => {
            if !block.is_well_formed() || block.epoch != epoch {
                return Err(Error::MalformedBlock);
            }
            let digest = block.digest(hasher);
            Ok(Checked::Block(block, digest))
        }
    }
}

/// Verifies a certificate of this replica's epoch (from a peer, or from storage on restart).
pub(crate) fn certificate_of(
    config: &Config,
    verifier: &dyn Verifier,
    certificate: Certificate,
) -> Result<Verified<Certificate>, Error> {
    certificate.verify(&config.chain_id, config.epoch, &config.validators, verifier)?;
    Ok(Verified(certificate))
}

/// Verifies a finalized batch from block sync against the replica's anchor.
pub(crate) fn chain_of(
    config: &Config,
    verifier: &dyn Verifier,
    hasher: &dyn Hasher,
    anchor: &Anchor,
    chain: FinalizedChain,
) -> Result<(Verified<FinalizedChain>, Anchor), Error> {
    let end = chain.verify(
        anchor,
        &config.chain_id,
        config.epoch,
        &config.validators,
        verifier,
        hasher,
    )?;
    if chain
        .blocks
        .last()
        .is_some_and(|block| block.height > config.last_height)
    {
        return Err(Error::BrokenChain);
    }
    Ok((Verified(chain), end))
}

/// A certificate assembled from votes that were each verified here: valid by construction.
pub(crate) fn assemble(kind: VoteKind, view: View, digest: Digest, votes: &[&Verified<Vote>]) -> Verified<Certificate> {
    assert!(
        votes.windows(2).all(|pair| pair[0].signer < pair[1].signer),
        "votes assembled in signer order"
    );
    let endorsements = votes
        .iter()
        .map(|vote| {
            assert!(
                vote.kind == kind && vote.view == view && vote.digest == digest,
                "a vote of another certificate"
            );
            Endorsement {
                signer: vote.signer,
                since: vote.since,
                signature: vote.signature.clone(),
            }
        })
        .collect();
    Verified(Certificate {
        kind,
        view,
        digest,
        endorsements,
    })
}

/// This replica's own signed message: verified by construction.
pub(crate) fn own<T>(value: T) -> Verified<T> {
    Verified(value)
}

/// A finalized batch this replica assembled from verified blocks and a verified certificate.
pub(crate) fn own_chain(chain: FinalizedChain) -> Verified<FinalizedChain> {
    Verified(chain)
}
