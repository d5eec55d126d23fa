//! Scenario tests of one replica driven by hand: persist before you speak, restart safety, the
//! one-validator dev chain, catch-up, evidence, certificates and the wire format.

use std::rc::Rc;

use corridor_consensus::sim::crypto::{TestHasher, TestSigner, TestVerifier, secrets};
use corridor_consensus::sim::rng::Rng;
use corridor_consensus::{
    Block, Certificate, Config, Digest, Durable, Effect, Error, Evidence, FinalizedChain, Input, Message, Proposal,
    Replica, Signer, ValidatorSet, Vote, VoteKind, decode, encode, limits, signing_bytes,
};

const CHAIN: &[u8] = b"corridor-test";
type TestReplica = Replica<TestSigner, TestVerifier, TestHasher>;

struct Keys {
    secrets: Rc<Vec<u64>>,
    validators: ValidatorSet,
}

impl Keys {
    fn new(count: usize) -> Keys {
        Keys {
            secrets: Rc::new(secrets(9, count)),
            validators: ValidatorSet::new(count).expect("count in range"),
        }
    }

    fn signer(&self, index: u16) -> TestSigner {
        TestSigner::new(self.secrets[usize::from(index)])
    }

    fn verifier(&self) -> TestVerifier {
        TestVerifier::new(self.secrets.clone())
    }

    fn replica(&self, me: u16, durable: Durable) -> TestReplica {
        let config = Config {
            chain_id: CHAIN.to_vec(),
            validators: self.validators,
            me,
            timeout_base_ms: 100,
        };
        Replica::new(config, self.signer(me), self.verifier(), TestHasher, durable)
    }

    fn proposal(&self, view: u64, payload: &[u8]) -> (Digest, Vec<u8>) {
        let block = Block {
            view,
            height: 1,
            parent_view: 0,
            parent: genesis(),
            payload: payload.to_vec(),
        };
        let digest = block.digest(&TestHasher);
        let leader = self.validators.leader(view);
        let signature = self.signer(leader).sign(&Proposal::signing_bytes(CHAIN, view, &digest));
        (digest, encode(&Message::Proposal(Proposal { block, signature })))
    }

    fn vote(&self, kind: VoteKind, view: u64, digest: Digest, signer: u16) -> Vote {
        let signature = self
            .signer(signer)
            .sign(&signing_bytes(CHAIN, tag(kind), view, &digest));
        Vote {
            kind,
            view,
            digest,
            signer,
            signature,
        }
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

fn broadcasts(effects: &[Effect]) -> Vec<Message> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Broadcast { bytes } => decode(bytes, limits::MESSAGE_BYTES_MAX).ok(),
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
        evidence.verify(CHAIN, &keys.validators, &keys.verifier(), &TestHasher),
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
    replica.handle(Input::Message {
        from: 2,
        bytes: encode(&Message::Vote(first)),
    });
    replica.handle(Input::Message {
        from: 2,
        bytes: encode(&Message::Vote(second)),
    });
    assert_eq!(replica.evidence().len(), 1);
    let forged = Vote {
        signer: 3,
        ..keys.vote(VoteKind::Notarize, 1, Digest([3; 32]), 2)
    };
    replica.handle(Input::Message {
        from: 3,
        bytes: encode(&Message::Vote(forged)),
    });
    assert_eq!(replica.stats().messages_rejected, 1, "a forged vote is rejected");
}

/// Drives a one-validator chain to `height`; returns every finalized batch.
fn run_dev_chain(replica: &mut TestReplica, height: u64) -> Vec<FinalizedChain> {
    let mut pending = vec![Input::Start];
    let mut finalized = Vec::new();
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
                _ => {}
            }
        }
        if replica.anchor().height >= height {
            break;
        }
    }
    finalized
}

#[test]
fn the_dev_chain_finalizes_alone_and_a_fresh_node_catches_up() {
    let keys = Keys::new(1);
    let mut validator = keys.replica(0, Durable::genesis(genesis()));
    let batches = run_dev_chain(&mut validator, 5);
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

#[test]
fn certificates_verify_on_their_own_and_reject_forgeries() {
    let keys = Keys::new(4);
    let digest = Digest([5; 32]);
    let signatures = |signers: &[u16]| -> Vec<(u16, corridor_consensus::Signature)> {
        signers
            .iter()
            .map(|signer| (*signer, keys.vote(VoteKind::Finalize, 3, digest, *signer).signature))
            .collect()
    };
    let certificate = Certificate {
        kind: VoteKind::Finalize,
        view: 3,
        digest,
        signatures: signatures(&[0, 1, 3]),
    };
    let verifier = keys.verifier();
    assert_eq!(certificate.verify(CHAIN, &keys.validators, &verifier), Ok(()));
    let too_few = Certificate {
        signatures: signatures(&[0, 1]),
        ..certificate.clone()
    };
    assert_eq!(
        too_few.verify(CHAIN, &keys.validators, &verifier),
        Err(Error::NotQuorum)
    );
    let repeated = Certificate {
        signatures: signatures(&[0, 1, 1]),
        ..certificate.clone()
    };
    assert_eq!(
        repeated.verify(CHAIN, &keys.validators, &verifier),
        Err(Error::NotQuorum)
    );
    let other_block = Certificate {
        digest: Digest([6; 32]),
        ..certificate.clone()
    };
    assert_eq!(
        other_block.verify(CHAIN, &keys.validators, &verifier),
        Err(Error::BadSignature)
    );
    let other_kind = Certificate {
        kind: VoteKind::Notarize,
        ..certificate.clone()
    };
    assert_eq!(
        other_kind.verify(CHAIN, &keys.validators, &verifier),
        Err(Error::BadSignature)
    );
    assert_eq!(
        certificate.verify(b"another-chain", &keys.validators, &verifier),
        Err(Error::BadSignature)
    );
    let mut outsider = certificate.clone();
    outsider.signatures.push((9, outsider.signatures[0].1.clone()));
    assert_eq!(
        outsider.verify(CHAIN, &keys.validators, &verifier),
        Err(Error::UnknownValidator)
    );
}

fn sample_messages(keys: &Keys) -> Vec<Message> {
    let (digest, proposal) = keys.proposal(1, b"sample");
    let vote = keys.vote(VoteKind::Notarize, 1, digest, 2);
    let certificate = Certificate {
        kind: VoteKind::Notarize,
        view: 1,
        digest,
        signatures: vec![
            (2, vote.signature.clone()),
            (3, keys.vote(VoteKind::Notarize, 1, digest, 3).signature),
        ],
    };
    let Ok(Message::Proposal(proposal)) = decode(&proposal, limits::MESSAGE_BYTES_MAX) else {
        panic!("own proposal decodes");
    };
    vec![
        Message::Proposal(proposal.clone()),
        Message::Vote(vote),
        Message::Certificate(certificate.clone()),
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
    for message in sample_messages(&keys) {
        let mut bytes = encode(&message);
        assert_eq!(decode(&bytes, limits::MESSAGE_BYTES_MAX), Ok(message.clone()));
        assert_eq!(decode(&bytes, bytes.len() - 1), Err(Error::TooLarge));
        bytes.push(0);
        assert_eq!(decode(&bytes, limits::MESSAGE_BYTES_MAX), Err(Error::TrailingBytes));
    }
    let mut huge_payload = vec![1, 1];
    huge_payload.extend_from_slice(&[0; 56]);
    huge_payload.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        decode(&huge_payload, limits::MESSAGE_BYTES_MAX),
        Err(Error::LimitExceeded)
    );
}

#[test]
fn decoding_garbage_never_panics() {
    let keys = Keys::new(4);
    let samples: Vec<Vec<u8>> = sample_messages(&keys).iter().map(encode).collect();
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
        replica.handle(Input::Message { from: 1, bytes });
    }
}
