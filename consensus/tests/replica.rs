//! Scenario tests of one replica driven by hand: persist before you speak, restart safety, the
//! one-validator dev chain, catch-up, epochs, evidence, certificates, the wire format, and one
//! regression test for each finding of the hostile review (forged notarization, timeouts that
//! never converge, the permanent halt after a long stall, oversized finalized batches, a leader
//! that never asks for a missing block, unmetered answers, far-ahead votes).

use std::cell::Cell;
use std::rc::Rc;

use corridor_consensus::sim::crypto::{TestHasher, TestSigner, TestVerifier, secrets};
use corridor_consensus::sim::rng::Rng;
use corridor_consensus::{
    Anchor, Block, Certificate, Config, Digest, Durable, Effect, Endorsement, Error, Evidence, FinalizedChain, Input,
    Message, Proposal, Replica, Signature, Signer, Timeouts, ValidatorIndex, ValidatorSet, Verifier, Vote, VoteKind,
    decode, decode_chain, encode, encode_chain, limits, signing_bytes,
};

const CHAIN: &[u8] = b"corridor-test";
type TestReplica = Replica<TestSigner, TestVerifier, TestHasher>;

struct Keys {
    secrets: Rc<Vec<u64>>,
    validators: ValidatorSet,
}

impl Keys {
    /// `count` validators plus one outsider key (index `count`) the verifier knows.
    fn new(count: usize) -> Keys {
        Keys {
            secrets: Rc::new(secrets(9, count + 1)),
            validators: ValidatorSet::new(count).expect("count in range"),
        }
    }

    fn signer(&self, index: u16) -> TestSigner {
        TestSigner::new(self.secrets[usize::from(index)])
    }

    fn verifier(&self) -> TestVerifier {
        TestVerifier::new(self.secrets.clone())
    }

    fn config(&self, me: u16, epoch: u64, last_height: u64) -> Config {
        Config {
            chain_id: CHAIN.to_vec(),
            epoch,
            validators: self.validators,
            me,
            last_height,
            timeouts: Timeouts::from_base(100),
        }
    }

    fn replica(&self, me: u16, durable: Durable) -> TestReplica {
        Replica::new(
            self.config(me, 0, u64::MAX),
            self.signer(me),
            self.verifier(),
            TestHasher,
            durable,
        )
    }

    fn block(&self, view: u64, height: u64, parent_view: u64, parent: Digest, payload: &[u8]) -> Block {
        Block {
            epoch: 0,
            view,
            height,
            parent_view,
            parent,
            payload: payload.to_vec(),
        }
    }

    fn propose(&self, block: Block) -> (Digest, Vec<u8>) {
        let digest = block.digest(&TestHasher);
        let leader = self.validators.leader(block.view);
        let signature = self
            .signer(leader)
            .sign(&Proposal::signing_bytes(CHAIN, block.epoch, block.view, &digest));
        (
            digest,
            encode(block.epoch, &Message::Proposal(Proposal { block, signature })),
        )
    }

    fn proposal(&self, view: u64, payload: &[u8]) -> (Digest, Vec<u8>) {
        self.propose(self.block(view, 1, 0, genesis(), payload))
    }

    fn vote_since(&self, kind: VoteKind, view: u64, digest: Digest, since: u64, signer: u16) -> Vote {
        let signature = self
            .signer(signer)
            .sign(&signing_bytes(CHAIN, 0, tag(kind), view, &digest, since));
        Vote {
            kind,
            view,
            digest,
            since,
            signer,
            signature,
        }
    }

    fn vote(&self, kind: VoteKind, view: u64, digest: Digest, signer: u16) -> Vote {
        let since = if kind == VoteKind::Nullify { view - 1 } else { 0 };
        self.vote_since(kind, view, digest, since, signer)
    }

    /// A certificate signed by `signers`, each nullify claim `since`.
    fn certificate_since(&self, kind: VoteKind, view: u64, digest: Digest, since: u64, signers: &[u16]) -> Certificate {
        Certificate {
            kind,
            view,
            digest,
            endorsements: signers
                .iter()
                .map(|signer| Endorsement {
                    signer: *signer,
                    since,
                    signature: self.vote_since(kind, view, digest, since, *signer).signature,
                })
                .collect(),
        }
    }

    fn certificate(&self, kind: VoteKind, view: u64, digest: Digest, signers: &[u16]) -> Certificate {
        let since = if kind == VoteKind::Nullify { view - 1 } else { 0 };
        self.certificate_since(kind, view, digest, since, signers)
    }
}

fn tag(kind: VoteKind) -> u8 {
    match kind {
        VoteKind::Notarize => 1,
        VoteKind::Nullify => 2,
        VoteKind::Finalize => 3,
    }
}

fn genesis() -> Digest {
    Digest([7; 32])
}

fn message(bytes: &[u8]) -> Option<Message> {
    decode(bytes, limits::MESSAGE_BYTES_MAX)
        .ok()
        .map(|(_, message)| message)
}

fn broadcasts(effects: &[Effect]) -> Vec<Message> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Broadcast { bytes } => message(bytes),
            _ => None,
        })
        .collect()
}

fn sends(effects: &[Effect]) -> Vec<(u16, Message)> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Send { to, bytes } => message(bytes).map(|message| (*to, message)),
            _ => None,
        })
        .collect()
}

fn persisted(effects: &[Effect]) -> Option<(u64, Durable)> {
    effects.iter().rev().find_map(|effect| match effect {
        Effect::Persist {
            sequence,
            state,
            certificate,
        } => Some((
            *sequence,
            Durable {
                safety: *state,
                certificate: certificate.clone(),
                ..Durable::genesis(genesis())
            },
        )),
        _ => None,
    })
}

fn signs_finalize(effects: &[Effect]) -> bool {
    effects
        .iter()
        .any(|effect| matches!(effect, Effect::Persist { state, .. } if state.finalized.is_some()))
}

fn send_message<V: Verifier>(
    replica: &mut Replica<TestSigner, V, TestHasher>,
    from: u16,
    message: &Message,
) -> Vec<Effect> {
    replica.handle(Input::Message {
        from,
        bytes: encode(0, message),
    })
}

/// Acknowledges every persist in `effects` (and what that releases), returning all effects.
fn acknowledge(replica: &mut TestReplica, effects: Vec<Effect>) -> Vec<Effect> {
    let mut all = effects.clone();
    let mut pending: Vec<u64> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Persist { sequence, .. } => Some(*sequence),
            _ => None,
        })
        .collect();
    while let Some(sequence) = pending.pop() {
        let more = replica.handle(Input::Persisted { sequence });
        pending.extend(more.iter().filter_map(|effect| match effect {
            Effect::Persist { sequence, .. } => Some(*sequence),
            _ => None,
        }));
        all.extend(more);
    }
    all
}

/// Feeds a proposal to validator 0 of 4 and answers its validation request.
fn receive_and_validate(replica: &mut TestReplica, view: u64, digest: Digest, bytes: Vec<u8>) -> Vec<Effect> {
    let effects = replica.handle(Input::Message { from: 1, bytes });
    assert!(
        effects.iter().any(|effect| matches!(effect, Effect::Validate { .. })),
        "{effects:?}"
    );
    replica.handle(Input::Validated {
        view,
        digest,
        valid: true,
    })
}

#[test]
fn a_vote_leaves_only_after_its_persistence_is_acknowledged() {
    let keys = Keys::new(4);
    let mut replica = keys.replica(0, Durable::genesis(genesis()));
    replica.handle(Input::Start);
    let (digest, bytes) = keys.proposal(1, b"payments");
    let effects = receive_and_validate(&mut replica, 1, digest, bytes);
    assert!(
        broadcasts(&effects).is_empty(),
        "a vote left before persistence: {effects:?}"
    );
    assert!(effects.iter().any(|effect| matches!(effect, Effect::StoreBlock(_))));
    let (sequence, durable) = persisted(&effects).expect("the vote is persisted first");
    assert_eq!(durable.safety.notarized, Some(digest));
    let effects = replica.handle(Input::Persisted { sequence });
    let sent = broadcasts(&effects);
    assert!(matches!(&sent[..], [Message::Vote(vote)] if vote.kind == VoteKind::Notarize && vote.digest == digest));
}

#[test]
fn a_restarted_validator_never_signs_a_conflicting_vote() {
    let keys = Keys::new(4);
    let mut replica = keys.replica(0, Durable::genesis(genesis()));
    replica.handle(Input::Start);
    let (digest, bytes) = keys.proposal(1, b"first");
    let effects = receive_and_validate(&mut replica, 1, digest, bytes);
    let (sequence, durable) = persisted(&effects).expect("persisted");
    replica.handle(Input::Persisted { sequence });
    drop(replica);

    // The leader equivocates; the restarted validator sees only the second proposal.
    let mut restarted = keys.replica(0, durable);
    restarted.handle(Input::Start);
    let (other, bytes) = keys.proposal(1, b"second");
    assert_ne!(digest, other);
    let mut effects = restarted.handle(Input::Message { from: 1, bytes });
    effects.extend(restarted.handle(Input::Validated {
        view: 1,
        digest: other,
        valid: true,
    }));
    let signed_other = effects
        .iter()
        .any(|effect| matches!(effect, Effect::Persist { state, .. } if state.notarized == Some(other)));
    assert!(
        !signed_other,
        "restarted validator signed a conflicting notarize vote: {effects:?}"
    );
    assert!(broadcasts(&effects).is_empty());
}

// ---- regression 1: a forged notarization is acted on ----

/// The hostile review's attack: a Byzantine leader sends its proposal, then `Notarized` for the
/// same block with a certificate of zero signatures (or a quorum of garbage ones, or outsiders'
/// signatures). Before the fix the certificate was verified only when the block was not held,
/// so the honest replica signed finalize for a block nobody notarized.
#[test]
fn a_forged_notarization_of_a_held_block_is_refused_and_never_stored() {
    let keys = Keys::new(4);
    let (digest, proposal_bytes) = keys.proposal(1, b"held block");
    let block = keys.block(1, 1, 0, genesis(), b"held block");
    let garbage = |signers: &[u16]| Certificate {
        kind: VoteKind::Notarize,
        view: 1,
        digest,
        endorsements: signers
            .iter()
            .map(|signer| Endorsement {
                signer: *signer,
                since: 0,
                signature: Signature(vec![0xab; 32]),
            })
            .collect(),
    };
    // (certificate, whether it is invalid on its own as well as attached to this block)
    let forgeries = [
        (garbage(&[]), true),
        (garbage(&[0, 1, 2]), true),
        // Signed for real, but by one member and the outsider only.
        (keys.certificate(VoteKind::Notarize, 1, digest, &[1, 4]), true),
        // A real quorum for another block, attached to this one.
        (
            keys.certificate(VoteKind::Notarize, 1, Digest([3; 32]), &[1, 2, 3]),
            false,
        ),
    ];
    for (forged, invalid_alone) in forgeries {
        let mut replica = keys.replica(0, Durable::genesis(genesis()));
        replica.handle(Input::Start);
        let effects = replica.handle(Input::Message {
            from: 1,
            bytes: proposal_bytes.clone(),
        });
        assert!(effects.iter().any(|effect| matches!(effect, Effect::Validate { .. })));
        let rejected_before = replica.stats().messages_rejected;
        let effects = send_message(
            &mut replica,
            1,
            &Message::Notarized {
                block: block.clone(),
                notarization: forged.clone(),
            },
        );
        assert!(
            !signs_finalize(&effects),
            "signed finalize on a forged notarization: {effects:?}"
        );
        assert!(
            !effects
                .iter()
                .any(|effect| matches!(effect, Effect::StoreCertificate(_))),
            "a forged certificate was stored"
        );
        assert_eq!(replica.view(), 1, "a forged certificate moved the view");
        assert_eq!(replica.stats().messages_rejected, rejected_before + 1);
        if invalid_alone {
            // The same forgery as a bare certificate, too.
            let effects = send_message(&mut replica, 1, &Message::Certificate(forged));
            assert!(!signs_finalize(&effects));
            assert_eq!(replica.view(), 1);
        }
    }
    // The real notarization is acted on: the replica signs finalize and moves on.
    let mut replica = keys.replica(0, Durable::genesis(genesis()));
    replica.handle(Input::Start);
    replica.handle(Input::Message {
        from: 1,
        bytes: proposal_bytes,
    });
    let real = keys.certificate(VoteKind::Notarize, 1, digest, &[1, 2, 3]);
    let effects = send_message(
        &mut replica,
        1,
        &Message::Notarized {
            block,
            notarization: real,
        },
    );
    assert!(signs_finalize(&effects));
    assert_eq!(replica.view(), 2);
}

#[test]
fn a_forged_certificate_in_storage_is_not_reloaded() {
    let keys = Keys::new(4);
    let forged = Certificate {
        kind: VoteKind::Notarize,
        view: 1,
        digest: Digest([1; 32]),
        endorsements: Vec::new(),
    };
    let durable = Durable {
        certificates: vec![forged],
        ..Durable::genesis(genesis())
    };
    let replica = keys.replica(0, durable);
    assert_eq!(replica.view(), 1, "a forged stored certificate must not move the view");
    assert_eq!(replica.stats().messages_rejected, 1);
}

/// A verifier that counts calls, to show that certificates are checked in one batch call.
struct CountingVerifier {
    inner: TestVerifier,
    single: Rc<Cell<u32>>,
    batches: Rc<Cell<u32>>,
}

impl Verifier for CountingVerifier {
    fn verify(&self, validator: ValidatorIndex, message: &[u8], signature: &Signature) -> bool {
        self.single.set(self.single.get() + 1);
        self.inner.verify(validator, message, signature)
    }

    fn verify_all(&self, items: &[(ValidatorIndex, &[u8], &Signature)]) -> bool {
        self.batches.set(self.batches.get() + 1);
        items
            .iter()
            .all(|(validator, message, signature)| self.inner.verify(*validator, message, signature))
    }
}

#[test]
fn certificates_are_verified_in_one_batch_and_once() {
    let keys = Keys::new(4);
    let (single, batches) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let verifier = CountingVerifier {
        inner: keys.verifier(),
        single: single.clone(),
        batches: batches.clone(),
    };
    let mut replica = Replica::new(
        keys.config(0, 0, u64::MAX),
        keys.signer(0),
        verifier,
        TestHasher,
        Durable::genesis(genesis()),
    );
    replica.handle(Input::Start);
    let nullification = keys.certificate(VoteKind::Nullify, 1, Digest::default(), &[1, 2, 3]);
    send_message(&mut replica, 2, &Message::Certificate(nullification.clone()));
    assert_eq!(
        (single.get(), batches.get()),
        (0, 1),
        "one batch call for the whole certificate"
    );
    // The same certificate again is recognised before any signature is checked.
    send_message(&mut replica, 3, &Message::Certificate(nullification));
    assert_eq!(
        (single.get(), batches.get()),
        (0, 1),
        "a held certificate is not verified twice"
    );
}

// ---- regression 2: notarized but never finalized ----

/// Before the fix, timeouts grew only on nullifications and were reset by any notarization, so
/// with one-way delays between half the timeout and the timeout every replica nullified before
/// the notarization arrived and nothing was ever finalized. Now a replica that nullified a view
/// that was notarized anyway doubles its timeouts, and keeps that until views go well.
#[test]
fn a_view_notarized_after_this_replica_nullified_it_lengthens_its_timeouts() {
    let keys = Keys::new(4);
    let mut replica = keys.replica(0, Durable::genesis(genesis()));
    let effects = replica.handle(Input::Start);
    let timer = |effects: &[Effect]| {
        effects.iter().rev().find_map(|effect| match effect {
            Effect::ScheduleTimeout { timer, after_ms } => Some((*timer, *after_ms)),
            _ => None,
        })
    };
    let (leader_timer, leader_ms) = timer(&effects).expect("a leader timer");
    assert_eq!(leader_ms, 100);
    // No proposal in time: the leader deadline passes and the replica nullifies view 1.
    let effects = replica.handle(Input::Timeout { timer: leader_timer });
    let effects = acknowledge(&mut replica, effects);
    assert!(
        broadcasts(&effects)
            .iter()
            .any(|message| matches!(message, Message::Vote(vote) if vote.kind == VoteKind::Nullify))
    );
    assert_eq!(replica.backoff(), 1, "one timeout in the view");
    // The notarization of view 1 arrives anyway.
    let block = keys.block(1, 1, 0, genesis(), b"late");
    let digest = block.digest(&TestHasher);
    let notarization = keys.certificate(VoteKind::Notarize, 1, digest, &[1, 2, 3]);
    let effects = send_message(&mut replica, 1, &Message::Notarized { block, notarization });
    assert!(!signs_finalize(&effects), "no finalize after nullify");
    assert_eq!(replica.view(), 2);
    assert_eq!(
        replica.backoff(),
        1,
        "learned: the network needs longer than the timeout"
    );
    assert_eq!(replica.stats().timeouts_learned, 1);
    let (_, next_ms) = timer(&effects).expect("the next view's timer");
    assert_eq!(next_ms, 200, "view 2 waits twice as long for its leader");
}

#[test]
fn slow_networks_converge_in_the_simulator() {
    use corridor_consensus::sim::{FaultMix, SimConfig, run};
    let mut learned = 0;
    for seed in 0..12 {
        let mut config = SimConfig::new(4, seed, FaultMix::Slow);
        config.epoch_heights = None;
        let outcome = run(&config);
        assert!(outcome.violations.is_empty(), "seed {seed}: {:?}", outcome.violations);
        assert!(outcome.height_min > 0);
        learned += outcome.timeouts_learned;
    }
    assert!(learned > 0, "slow runs must exercise learned timeouts");
}

// ---- regression 3: a long stall is a permanent halt ----

/// Nullifications of `views` built the way honest replicas build them: every signer claims the
/// whole range since the anchor.
fn stall(keys: &Keys, views: std::ops::RangeInclusive<u64>) -> Vec<Certificate> {
    views
        .map(|view| keys.certificate_since(VoteKind::Nullify, view, Digest::default(), 0, &[1, 2, 3]))
        .collect()
}

/// Before the fix no justified parent was found once the view was more than 1,024 views past
/// the anchor, so no honest leader proposed again. A nullification now proves the range its
/// signers claim, so one certificate justifies a proposal after a stall of any length.
#[test]
fn after_a_stall_of_two_thousand_views_the_leader_proposes_on_the_anchor() {
    let keys = Keys::new(4);
    let me = 2;
    let mut replica = keys.replica(me, Durable::genesis(genesis()));
    replica.handle(Input::Start);
    // The replica was cut off and only sees the nullification that ended view 2001 (2002 is
    // led by validator 2).
    let last = stall(&keys, 2001..=2001).remove(0);
    let effects = send_message(&mut replica, 1, &Message::Certificate(last));
    assert_eq!(replica.view(), 2002);
    let asked = effects
        .iter()
        .find_map(|effect| match effect {
            Effect::RequestProposal { view, height, parent } => Some((*view, *height, *parent)),
            _ => None,
        })
        .expect("the leader proposes after the stall");
    assert_eq!(asked, (2002, 1, genesis()));

    // A follower accepts that proposal from the same single certificate.
    let mut follower = keys.replica(0, Durable::genesis(genesis()));
    follower.handle(Input::Start);
    send_message(
        &mut follower,
        1,
        &Message::Certificate(stall(&keys, 2001..=2001).remove(0)),
    );
    let block = keys.block(2002, 1, 0, genesis(), b"after the stall");
    let (digest, bytes) = keys.propose(block);
    let effects = follower.handle(Input::Message { from: 2, bytes });
    assert!(
        effects
            .iter()
            .any(|effect| matches!(effect, Effect::Validate { digest: asked, .. } if *asked == digest)),
        "the follower must check and vote: {effects:?}"
    );
}

#[test]
fn a_nullification_whose_claims_come_from_f_signers_proves_nothing_more() {
    let keys = Keys::new(4);
    let mut replica = keys.replica(0, Durable::genesis(genesis()));
    replica.handle(Input::Start);
    // Only validator 1 (at most f = 1 liars) claims the whole range; 2 and 3 claim nothing.
    let mut endorsements = Vec::new();
    for (signer, since) in [(1u16, 0u64), (2, 99), (3, 99)] {
        endorsements.push(Endorsement {
            signer,
            since,
            signature: keys
                .vote_since(VoteKind::Nullify, 100, Digest::default(), since, signer)
                .signature,
        });
    }
    let weak = Certificate {
        kind: VoteKind::Nullify,
        view: 100,
        digest: Digest::default(),
        endorsements,
    };
    assert_eq!(weak.proven_since(&keys.validators), 99);
    send_message(&mut replica, 1, &Message::Certificate(weak));
    assert_eq!(replica.view(), 101);
    // A proposal in 101 on the anchor would need views 1..=99 nullified: not proven.
    let block = keys.block(101, 1, 0, genesis(), b"unjustified");
    let (_, bytes) = keys.propose(block);
    let effects = replica.handle(Input::Message { from: 1, bytes });
    assert!(!effects.iter().any(|effect| matches!(effect, Effect::Validate { .. })));
    assert!(
        sends(&effects)
            .iter()
            .any(|(_, message)| matches!(message, Message::Request { view: 99 })),
        "the replica asks the leader for the missing range: {effects:?}"
    );
}

#[test]
fn long_stalls_heal_in_the_simulator() {
    use corridor_consensus::sim::{FaultMix, STALL_VIEWS_MIN, SimConfig, run};
    for seed in [7, 16] {
        let outcome = run(&SimConfig::new(4, seed, FaultMix::Stall));
        assert!(outcome.violations.is_empty(), "seed {seed}: {:?}", outcome.violations);
        assert!(outcome.stall_views >= STALL_VIEWS_MIN);
        assert!(outcome.view_max > STALL_VIEWS_MIN);
    }
}

// ---- regression 4: oversized finalized batches ----

/// Before the fix one finalization that finalized more than 256 blocks was delivered as one
/// batch, which `FinalizedChain::verify` (and so every observer and catch-up) refused. Now it
/// is delivered in batches of at most `CATCH_UP_BLOCKS_MAX`, each proven by headers up to the
/// certified block.
#[test]
fn a_finalization_of_three_hundred_blocks_is_delivered_in_bounded_verifiable_batches() {
    let keys = Keys::new(4);
    let mut replica = keys.replica(0, Durable::genesis(genesis()));
    replica.handle(Input::Start);
    let mut parent = (0, genesis());
    let blocks: Vec<Block> = (1..=300)
        .map(|height| {
            let block = keys.block(height, height, parent.0, parent.1, &height.to_le_bytes());
            parent = (height, block.digest(&TestHasher));
            block
        })
        .collect();
    for block in &blocks {
        let notarization = keys.certificate(VoteKind::Notarize, block.view, block.digest(&TestHasher), &[1, 2, 3]);
        send_message(
            &mut replica,
            1,
            &Message::Notarized {
                block: block.clone(),
                notarization,
            },
        );
    }
    let finalization = keys.certificate(VoteKind::Finalize, 300, parent.1, &[1, 2, 3]);
    let effects = send_message(&mut replica, 1, &Message::Certificate(finalization));
    let batches: Vec<FinalizedChain> = effects
        .into_iter()
        .filter_map(|effect| match effect {
            Effect::Finalized(chain) => Some(chain),
            _ => None,
        })
        .collect();
    assert_eq!(
        batches.len(),
        2,
        "{:?}",
        batches
            .iter()
            .map(|batch| (batch.blocks.len(), batch.headers.len()))
            .collect::<Vec<_>>()
    );
    let mut observer = Anchor::genesis(genesis());
    for batch in &batches {
        assert!(batch.blocks.len() <= limits::CATCH_UP_BLOCKS_MAX);
        // What block sync sends survives the wire.
        let bytes = encode_chain(batch);
        assert_eq!(decode_chain(&bytes, bytes.len()).as_ref(), Ok(batch));
        observer = batch
            .verify(&observer, CHAIN, 0, &keys.validators, &keys.verifier(), &TestHasher)
            .expect("every batch verifies on its own");
    }
    assert_eq!(observer.height, 300);
    assert_eq!(batches[0].headers.len(), 300 - limits::CATCH_UP_BLOCKS_MAX);
    // A batch whose proof headers were tampered with fails: the next header no longer links.
    let mut tampered = batches[0].clone();
    tampered.headers[10].payload_digest = Digest([9; 32]);
    assert_eq!(
        tampered.verify(
            &Anchor::genesis(genesis()),
            CHAIN,
            0,
            &keys.validators,
            &keys.verifier(),
            &TestHasher
        ),
        Err(Error::BrokenChain)
    );
    // Without its proof headers the batch names a certificate of another block.
    let mut unproven = batches[0].clone();
    unproven.headers.clear();
    assert_eq!(
        unproven.verify(
            &Anchor::genesis(genesis()),
            CHAIN,
            0,
            &keys.validators,
            &keys.verifier(),
            &TestHasher
        ),
        Err(Error::WrongCertificate)
    );
}

// ---- regression 5: missing blocks, unmetered answers, far-ahead votes ----

/// Before the fix a leader holding a notarization but not its block never asked for it.
#[test]
fn a_leader_missing_its_parent_block_asks_for_it() {
    let keys = Keys::new(4);
    let mut leader = keys.replica(2, Durable::genesis(genesis()));
    leader.handle(Input::Start);
    let block = keys.block(1, 1, 0, genesis(), b"never seen");
    let digest = block.digest(&TestHasher);
    let notarization = keys.certificate(VoteKind::Notarize, 1, digest, &[0, 1, 3]);
    let effects = send_message(&mut leader, 1, &Message::Certificate(notarization));
    assert_eq!(leader.view(), 2);
    assert!(
        broadcasts(&effects)
            .iter()
            .any(|message| matches!(message, Message::BlockRequest { digest: asked } if *asked == digest)),
        "{effects:?}"
    );
    let effects = send_message(&mut leader, 1, &Message::Block(block));
    assert!(
        effects
            .iter()
            .any(|effect| matches!(effect, Effect::RequestProposal { view: 2, height: 2, .. })),
        "{effects:?}"
    );
    // An unasked block is refused.
    let rejected = leader.stats().messages_rejected;
    send_message(
        &mut leader,
        1,
        &Message::Block(keys.block(1, 1, 0, genesis(), b"unasked")),
    );
    assert!(leader.stats().messages_rejected > rejected);
}

#[test]
fn answers_to_one_peer_are_rate_limited_per_view() {
    let keys = Keys::new(4);
    let mut replica = keys.replica(0, Durable::genesis(genesis()));
    replica.handle(Input::Start);
    let (digest, bytes) = keys.proposal(1, &[0u8; 1024]);
    replica.handle(Input::Message { from: 1, bytes });
    let notarization = keys.certificate(VoteKind::Notarize, 1, digest, &[1, 2, 3]);
    let nullification = keys.certificate(VoteKind::Nullify, 2, Digest::default(), &[1, 2, 3]);
    send_message(&mut replica, 1, &Message::Certificate(notarization));
    send_message(&mut replica, 1, &Message::Certificate(nullification));
    let mut answers = 0;
    for _ in 0..200 {
        let effects = send_message(&mut replica, 3, &Message::Request { view: 1 });
        answers += sends(&effects).len();
        let effects = send_message(&mut replica, 3, &Message::BlockRequest { digest });
        answers += sends(&effects).len();
    }
    assert_eq!(answers, limits::ANSWERS_PER_PEER_PER_VIEW as usize);
    assert!(replica.stats().answers_withheld > 300);
    // Another peer has its own budget.
    let effects = send_message(&mut replica, 2, &Message::Request { view: 1 });
    assert_eq!(sends(&effects).len(), 1);
}

#[test]
fn far_ahead_votes_from_one_signer_do_not_trigger_catch_up_but_f_plus_one_do() {
    let keys = Keys::new(4);
    let mut replica = keys.replica(0, Durable::genesis(genesis()));
    replica.handle(Input::Start);
    let catch_ups = |effects: &[Effect]| {
        effects
            .iter()
            .filter(|effect| matches!(effect, Effect::RequestCatchUp { .. }))
            .count()
    };
    let mut requested = 0;
    for step in 0..50 {
        let vote = keys.vote(VoteKind::Nullify, 1_000 + step * 10, Digest::default(), 3);
        requested += catch_ups(&send_message(&mut replica, 3, &Message::Vote(vote)));
    }
    assert_eq!(
        requested, 0,
        "one signer can sign any view: not evidence of being behind"
    );
    let vote = keys.vote(VoteKind::Nullify, 1_000, Digest::default(), 2);
    let effects = send_message(&mut replica, 2, &Message::Vote(vote));
    assert_eq!(catch_ups(&effects), 1, "two signers (f + 1) ahead: one honest is there");
}

// ---- epochs ----

/// Drives a one-validator replica until `height` or its epoch ends; returns every finalized
/// batch and the epoch's end.
fn run_dev_chain(replica: &mut TestReplica, height: u64) -> (Vec<FinalizedChain>, Option<(Anchor, Certificate)>) {
    let mut pending = vec![Input::Start];
    let mut finalized = Vec::new();
    let mut ended = None;
    let mut steps = 0;
    while let Some(input) = pending.pop() {
        steps += 1;
        assert!(steps < 10_000, "the dev chain stalled");
        for effect in replica.handle(input) {
            match effect {
                Effect::Persist { sequence, .. } => pending.push(Input::Persisted { sequence }),
                Effect::RequestProposal { view, .. } => {
                    pending.push(Input::Proposal {
                        view,
                        payload: view.to_le_bytes().to_vec(),
                    });
                }
                Effect::Finalized(chain) => finalized.push(chain),
                Effect::EpochEnded { last, finalization } => ended = Some((last, finalization)),
                _ => {}
            }
        }
        if replica.anchor().height >= height || ended.is_some() {
            break;
        }
    }
    (finalized, ended)
}

#[test]
fn the_dev_chain_finalizes_alone_and_a_fresh_node_catches_up() {
    let keys = Keys::new(1);
    let mut validator = keys.replica(0, Durable::genesis(genesis()));
    let (batches, _) = run_dev_chain(&mut validator, 5);
    assert_eq!(validator.anchor().height, 5);
    let heights: Vec<u64> = batches
        .iter()
        .flat_map(|chain| chain.blocks.iter().map(|block| block.height))
        .collect();
    assert_eq!(heights, vec![1, 2, 3, 4, 5]);

    // A node that missed everything is handed the blocks with their certificates.
    let mut lagging = keys.replica(0, Durable::genesis(genesis()));
    let mut tampered = batches[0].clone();
    tampered.blocks[0].payload.push(0);
    lagging.handle(Input::CatchUp(tampered));
    assert_eq!(lagging.anchor().height, 0, "a tampered block must not be accepted");
    for chain in batches {
        let effects = lagging.handle(Input::CatchUp(chain));
        assert!(effects.iter().any(|effect| matches!(effect, Effect::Finalized(_))));
    }
    assert_eq!(lagging.anchor(), validator.anchor());
    assert!(
        lagging.view() > validator.anchor().view,
        "jumped past the finalized view"
    );
}

/// An epoch ends with the finalization of its last height; the next epoch's replica starts from
/// it with its own set; an observer holding only genesis follows both; messages signed in the
/// old epoch mean nothing in the new one.
#[test]
fn an_epoch_hands_over_at_its_last_height_and_old_epoch_messages_are_refused() {
    let keys = Keys::new(1);
    let config = keys.config(0, 0, 4);
    let mut epoch_zero = Replica::new(
        config,
        keys.signer(0),
        keys.verifier(),
        TestHasher,
        Durable::genesis(genesis()),
    );
    let (batches, ended) = run_dev_chain(&mut epoch_zero, u64::MAX);
    let (last, finalization) = ended.expect("epoch 0 ends at height 4");
    assert_eq!(last.height, 4);
    assert!(epoch_zero.ended());
    assert!(
        batches
            .iter()
            .all(|batch| batch.blocks.iter().all(|block| block.height <= 4))
    );

    // Epoch 1 is run by another key: the outsider of epoch 0 becomes the validator.
    let epoch_one_keys = Rc::new(vec![keys.secrets[1]]);
    let config = Config {
        epoch: 1,
        last_height: u64::MAX,
        ..keys.config(0, 0, 0)
    };
    let mut epoch_one = Replica::new(
        config,
        TestSigner::new(keys.secrets[1]),
        TestVerifier::new(epoch_one_keys.clone()),
        TestHasher,
        Durable::epoch_start(1, last, finalization.clone()),
    );
    let (more, _) = run_dev_chain(&mut epoch_one, 8);
    assert_eq!(epoch_one.anchor().height, 8);
    assert!(
        more.iter()
            .all(|batch| batch.blocks.iter().all(|block| block.epoch == 1))
    );

    // The observer: epoch 0's batches with epoch 0's set, then epoch 1's with epoch 1's.
    let mut observer = Anchor::genesis(genesis());
    for batch in &batches {
        observer = batch
            .verify(&observer, CHAIN, 0, &keys.validators, &keys.verifier(), &TestHasher)
            .expect("epoch 0 batch");
    }
    assert_eq!(observer, last);
    let epoch_one_verifier = TestVerifier::new(epoch_one_keys);
    for batch in &more {
        assert!(
            batch
                .verify(&observer, CHAIN, 0, &keys.validators, &epoch_one_verifier, &TestHasher)
                .is_err(),
            "a batch of epoch 1 is not valid as epoch 0"
        );
        observer = batch
            .verify(&observer, CHAIN, 1, &keys.validators, &epoch_one_verifier, &TestHasher)
            .expect("epoch 1 batch");
    }
    assert_eq!(observer.height, 8);

    // A vote signed in epoch 0 is replayed into epoch 1: refused, and the sender is told where
    // its epoch ended.
    let old_vote = keys.vote(VoteKind::Nullify, 20, Digest::default(), 0);
    let effects = epoch_one.handle(Input::Message {
        from: 0,
        bytes: encode(0, &Message::Vote(old_vote.clone())),
    });
    assert!(!effects.iter().any(|effect| matches!(effect, Effect::Persist { .. })));
    let relabelled = epoch_one.handle(Input::Message {
        from: 0,
        bytes: encode(1, &Message::Vote(old_vote)),
    });
    assert!(
        relabelled.is_empty(),
        "an epoch-0 signature fails in epoch 1: {relabelled:?}"
    );
    assert!(epoch_one.stats().messages_rejected >= 1);
}

// ---- evidence, certificates, codec ----

#[test]
fn an_equivocating_leader_leaves_verifiable_evidence() {
    let keys = Keys::new(4);
    let mut replica = keys.replica(0, Durable::genesis(genesis()));
    replica.handle(Input::Start);
    let (_, first) = keys.proposal(1, b"to half the peers");
    let (_, second) = keys.proposal(1, b"to the other half");
    replica.handle(Input::Message { from: 1, bytes: first });
    let effects = replica.handle(Input::Message { from: 1, bytes: second });
    assert!(
        effects
            .iter()
            .any(|effect| matches!(effect, Effect::Evidence(Evidence::Proposals { .. })))
    );
    let evidence = &replica.evidence()[0];
    assert_eq!(evidence.validator(&keys.validators), 1);
    assert_eq!(
        evidence.verify(CHAIN, 0, &keys.validators, &keys.verifier(), &TestHasher),
        Ok(())
    );
}

#[test]
fn double_votes_leave_evidence() {
    let keys = Keys::new(4);
    let mut replica = keys.replica(0, Durable::genesis(genesis()));
    replica.handle(Input::Start);
    let first = keys.vote(VoteKind::Notarize, 1, Digest([1; 32]), 2);
    let second = keys.vote(VoteKind::Notarize, 1, Digest([2; 32]), 2);
    send_message(&mut replica, 2, &Message::Vote(first));
    send_message(&mut replica, 2, &Message::Vote(second));
    assert_eq!(replica.evidence().len(), 1);
    let forged = Vote {
        signer: 3,
        ..keys.vote(VoteKind::Notarize, 1, Digest([3; 32]), 2)
    };
    send_message(&mut replica, 3, &Message::Vote(forged));
    assert_eq!(replica.stats().messages_rejected, 1, "a forged vote is rejected");
}

#[test]
fn certificates_verify_on_their_own_and_reject_forgeries() {
    let keys = Keys::new(4);
    let digest = Digest([5; 32]);
    let verifier = keys.verifier();
    let check = |certificate: &Certificate| certificate.verify(CHAIN, 0, &keys.validators, &verifier);
    let certificate = keys.certificate(VoteKind::Finalize, 3, digest, &[0, 1, 3]);
    assert_eq!(check(&certificate), Ok(()));
    let too_few = keys.certificate(VoteKind::Finalize, 3, digest, &[0, 1]);
    assert_eq!(check(&too_few), Err(Error::NotQuorum));
    let repeated = keys.certificate(VoteKind::Finalize, 3, digest, &[0, 1, 1]);
    assert_eq!(check(&repeated), Err(Error::NotQuorum));
    let other_block = Certificate {
        digest: Digest([6; 32]),
        ..certificate.clone()
    };
    assert_eq!(check(&other_block), Err(Error::BadSignature));
    let other_kind = Certificate {
        kind: VoteKind::Notarize,
        ..certificate.clone()
    };
    assert_eq!(check(&other_kind), Err(Error::BadSignature));
    assert_eq!(
        certificate.verify(b"another-chain", 0, &keys.validators, &verifier),
        Err(Error::BadSignature)
    );
    assert_eq!(
        certificate.verify(CHAIN, 1, &keys.validators, &verifier),
        Err(Error::BadSignature),
        "a certificate of epoch 0 is not one of epoch 1"
    );
    // The outsider's key verifies, but it is not a member of the set.
    let outsider = keys.certificate(VoteKind::Finalize, 3, digest, &[0, 1, 4]);
    assert_eq!(check(&outsider), Err(Error::UnknownValidator));
    // A nullification must sign the zero digest and claim a view below its own.
    let bad_claim = keys.certificate_since(VoteKind::Nullify, 3, Digest::default(), 3, &[0, 1, 2]);
    assert_eq!(check(&bad_claim), Err(Error::WrongCertificate));
}

fn sample_messages(keys: &Keys) -> Vec<Message> {
    let (digest, proposal) = keys.proposal(1, b"sample");
    let vote = keys.vote(VoteKind::Notarize, 1, digest, 2);
    let certificate = keys.certificate(VoteKind::Notarize, 1, digest, &[2, 3]);
    let Some(Message::Proposal(proposal)) = message(&proposal) else {
        panic!("own proposal decodes");
    };
    vec![
        Message::Proposal(proposal.clone()),
        Message::Vote(vote),
        Message::Vote(keys.vote_since(VoteKind::Nullify, 9, Digest::default(), 3, 1)),
        Message::Certificate(certificate.clone()),
        Message::Certificate(keys.certificate_since(VoteKind::Nullify, 9, Digest::default(), 2, &[0, 2, 3])),
        Message::Request { view: 9 },
        Message::Notarized {
            block: proposal.block.clone(),
            notarization: certificate,
        },
        Message::BlockRequest { digest },
        Message::Block(proposal.block),
    ]
}

#[test]
fn messages_round_trip_and_reject_trailing_or_oversized_bytes() {
    let keys = Keys::new(4);
    for original in sample_messages(&keys) {
        let mut bytes = encode(3, &original);
        assert_eq!(decode(&bytes, limits::MESSAGE_BYTES_MAX), Ok((3, original.clone())));
        assert_eq!(decode(&bytes, bytes.len() - 1), Err(Error::TooLarge));
        bytes.push(0);
        assert_eq!(decode(&bytes, limits::MESSAGE_BYTES_MAX), Err(Error::TrailingBytes));
    }
    // version 2, epoch 0, a proposal whose payload claims 4 GiB
    let mut huge_payload = vec![2, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    huge_payload.extend_from_slice(&[0; 64]);
    huge_payload.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        decode(&huge_payload, limits::MESSAGE_BYTES_MAX),
        Err(Error::LimitExceeded)
    );
    let mut old_version = encode(0, &Message::Request { view: 1 });
    old_version[0] = 1;
    assert_eq!(decode(&old_version, limits::MESSAGE_BYTES_MAX), Err(Error::UnknownTag));
}

#[test]
fn decoding_garbage_never_panics() {
    let keys = Keys::new(4);
    let samples: Vec<Vec<u8>> = sample_messages(&keys)
        .iter()
        .map(|message| encode(0, message))
        .collect();
    let mut rng = Rng::new(3);
    let mut replica = keys.replica(0, Durable::genesis(genesis()));
    replica.handle(Input::Start);
    for round in 0..20_000 {
        let mut bytes = samples[round % samples.len()].clone();
        match rng.below(3) {
            0 => bytes = (0..rng.below(200)).map(|_| rng.next_u64().to_le_bytes()[0]).collect(),
            1 => {
                let position = rng.index(bytes.len());
                bytes[position] ^= rng.next_u64().to_le_bytes()[0] | 1;
            }
            _ => bytes.truncate(rng.index(bytes.len())),
        }
        let _ = decode(&bytes, limits::MESSAGE_BYTES_MAX);
        let _ = decode_chain(&bytes, limits::MESSAGE_BYTES_MAX);
        replica.handle(Input::Message { from: 1, bytes });
    }
}
