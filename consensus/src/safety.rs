//! Safety rules: the only code that decides whether this validator may sign.
//!
//! The rules this module keeps, per view:
//! - at most one proposal (as leader) and at most one notarize vote;
//! - no notarize vote after a nullify vote, no nullify vote after a finalize vote, and no
//!   finalize vote after a nullify vote (a finalize vote promises "I never nullified this view");
//! - never sign in a view below the highest view signed in (per epoch: a new epoch starts a
//!   fresh record, and every signature names its epoch, so none conflicts across epochs).
//!
//! The replica records a signature here, persists the resulting `SafetyState` and only lets the
//! signed message leave once the persistence is acknowledged, so a validator restarted from its
//! persisted state never signs a conflicting message.

use crate::codec::{Reader, Writer};
use crate::error::Error;
use crate::types::{Digest, Epoch, View};

const VERSION: u8 = 2;
/// Encoded size of a `SafetyState`.
pub const SAFETY_STATE_BYTES: usize = 1 + 8 + 8 + 1 + 3 * 32;

/// What this validator signed in the highest view it signed in. Signing in a higher view
/// replaces it: nothing is ever signed in a lower view.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SafetyState {
    pub epoch: Epoch,
    pub view: View,
    pub proposed: Option<Digest>,
    pub notarized: Option<Digest>,
    pub nullified: bool,
    pub finalized: Option<Digest>,
}

impl SafetyState {
    /// The state of a validator that never signed anything.
    pub fn genesis() -> SafetyState {
        SafetyState::default()
    }

    /// The state of a validator that has signed nothing yet in `epoch`.
    pub fn epoch_start(epoch: Epoch) -> SafetyState {
        SafetyState {
            epoch,
            ..SafetyState::default()
        }
    }

    /// The record for `view`: this one if it is that view, else a fresh one.
    fn at(&self, view: View) -> Option<SafetyState> {
        if view < self.view {
            return None;
        }
        if view > self.view {
            return Some(SafetyState {
                epoch: self.epoch,
                view,
                ..SafetyState::default()
            });
        }
        Some(*self)
    }

    pub fn may_propose(&self, view: View) -> bool {
        self.at(view).is_some_and(|state| state.proposed.is_none())
    }

    pub fn may_notarize(&self, view: View) -> bool {
        let once = |state: &SafetyState| cfg!(feature = "mutation-notarize-twice") || state.notarized.is_none();
        self.at(view).is_some_and(|state| once(&state) && !state.nullified)
    }

    pub fn may_nullify(&self, view: View) -> bool {
        self.at(view)
            .is_some_and(|state| !state.nullified && state.finalized.is_none())
    }

    pub fn may_finalize(&self, view: View) -> bool {
        let after_nullify = cfg!(feature = "mutation-finalize-after-nullify");
        let allowed = |state: SafetyState| (after_nullify || !state.nullified) && state.finalized.is_none();
        self.at(view).is_some_and(allowed)
    }

    /// Records a proposal (which is also the leader's notarize vote).
    pub(crate) fn record_proposal(&mut self, view: View, digest: Digest) {
        assert!(
            self.may_propose(view) && self.may_notarize(view),
            "safety: double proposal"
        );
        *self = self.at(view).expect("checked by may_propose");
        self.proposed = Some(digest);
        self.notarized = Some(digest);
    }

    pub(crate) fn record_notarize(&mut self, view: View, digest: Digest) {
        assert!(self.may_notarize(view), "safety: double notarize");
        *self = self.at(view).expect("checked by may_notarize");
        self.notarized = Some(digest);
    }

    pub(crate) fn record_nullify(&mut self, view: View) {
        assert!(self.may_nullify(view), "safety: nullify after finalize");
        *self = self.at(view).expect("checked by may_nullify");
        self.nullified = true;
    }

    pub(crate) fn record_finalize(&mut self, view: View, digest: Digest) {
        assert!(self.may_finalize(view), "safety: finalize after nullify");
        *self = self.at(view).expect("checked by may_finalize");
        self.finalized = Some(digest);
    }

    /// The persisted form (fixed size).
    pub fn encode(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        writer.u8(VERSION);
        writer.u64(self.epoch);
        writer.u64(self.view);
        let flags = u8::from(self.proposed.is_some())
            | u8::from(self.notarized.is_some()) << 1
            | u8::from(self.nullified) << 2
            | u8::from(self.finalized.is_some()) << 3;
        writer.u8(flags);
        for digest in [self.proposed, self.notarized, self.finalized] {
            writer.digest(&digest.unwrap_or_default());
        }
        let bytes = writer.finish();
        assert!(bytes.len() == SAFETY_STATE_BYTES, "safety state size is fixed");
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<SafetyState, Error> {
        let mut reader = Reader::new(bytes, SAFETY_STATE_BYTES)?;
        if reader.u8()? != VERSION {
            return Err(Error::UnknownTag);
        }
        let epoch = reader.u64()?;
        let view = reader.u64()?;
        let flags = reader.u8()?;
        if flags > 0b1111 {
            return Err(Error::UnknownTag);
        }
        let proposed = reader.digest()?;
        let notarized = reader.digest()?;
        let finalized = reader.digest()?;
        reader.finish()?;
        let pick = |bit: u8, digest: Digest| (flags & bit != 0).then_some(digest);
        Ok(SafetyState {
            epoch,
            view,
            proposed: pick(1, proposed),
            notarized: pick(2, notarized),
            nullified: flags & 4 != 0,
            finalized: pick(8, finalized),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nullified_view_is_never_finalized_or_notarized() {
        let mut state = SafetyState::genesis();
        state.record_nullify(3);
        assert!(!state.may_finalize(3));
        assert!(!state.may_notarize(3));
        assert!(state.may_finalize(4));
        assert!(!state.may_nullify(2), "never sign below the highest view");
    }

    #[test]
    fn one_notarize_vote_per_view() {
        let mut state = SafetyState::genesis();
        state.record_notarize(1, Digest([1; 32]));
        assert!(!state.may_notarize(1));
        assert!(state.may_finalize(1));
        state.record_finalize(1, Digest([1; 32]));
        assert!(!state.may_nullify(1));
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let mut state = SafetyState::genesis();
        state.record_proposal(9, Digest([7; 32]));
        state.record_finalize(9, Digest([7; 32]));
        assert_eq!(SafetyState::decode(&state.encode()), Ok(state));
        let mut bytes = state.encode();
        bytes.push(0);
        assert_eq!(SafetyState::decode(&bytes), Err(Error::TooLarge));
        assert_eq!(SafetyState::decode(&bytes[..10]), Err(Error::Truncated));
    }
}
