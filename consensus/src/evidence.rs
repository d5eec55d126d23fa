//! Equivocation evidence: two conflicting messages signed by one validator.
//!
//! The rule this module keeps: a record is only created from two messages whose signatures were
//! verified and which really conflict, so governance can act on it; anyone can re-check it with
//! `Evidence::verify`. At most `EVIDENCE_MAX` records are kept, one per (validator, view).

use crate::error::Error;
use crate::message::{Proposal, Vote, VoteKind};
use crate::types::{Epoch, Hasher, ValidatorIndex, ValidatorSet, Verifier, View};

/// Two signed messages from one validator that an honest validator never both signs.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Evidence {
    /// Two different proposals for one view from its leader.
    Proposals { first: Proposal, second: Proposal },
    /// Two votes of one view: same kind for different blocks, or nullify and finalize.
    Votes { first: Vote, second: Vote },
}

/// Whether one validator signing both votes breaks the protocol.
pub(crate) fn votes_conflict(first: &Vote, second: &Vote) -> bool {
    if first.signer != second.signer || first.view != second.view {
        return false;
    }
    if first.kind == second.kind {
        return first.digest != second.digest;
    }
    let pair = (first.kind, second.kind);
    matches!(
        pair,
        (VoteKind::Nullify, VoteKind::Finalize) | (VoteKind::Finalize, VoteKind::Nullify)
    )
}

impl Evidence {
    /// The validator that equivocated.
    pub fn validator(&self, validators: &ValidatorSet) -> ValidatorIndex {
        match self {
            Evidence::Proposals { first, .. } => validators.leader(first.block.view),
            Evidence::Votes { first, .. } => first.signer,
        }
    }

    pub fn view(&self) -> View {
        match self {
            Evidence::Proposals { first, .. } => first.block.view,
            Evidence::Votes { first, .. } => first.view,
        }
    }

    /// Re-checks both signatures and the conflict.
    pub fn verify(
        &self,
        chain_id: &[u8],
        epoch: Epoch,
        validators: &ValidatorSet,
        verifier: &dyn Verifier,
        hasher: &dyn Hasher,
    ) -> Result<(), Error> {
        match self {
            Evidence::Proposals { first, second } => {
                let first_digest = first.verify(chain_id, epoch, validators, verifier, hasher)?;
                let second_digest = second.verify(chain_id, epoch, validators, verifier, hasher)?;
                let conflict = first.block.view == second.block.view && first_digest != second_digest;
                if conflict { Ok(()) } else { Err(Error::WrongCertificate) }
            }
            Evidence::Votes { first, second } => {
                first.verify(chain_id, epoch, validators, verifier)?;
                second.verify(chain_id, epoch, validators, verifier)?;
                if votes_conflict(first, second) {
                    Ok(())
                } else {
                    Err(Error::WrongCertificate)
                }
            }
        }
    }
}
