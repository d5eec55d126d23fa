//! The protocol with the keys banks actually hold: a validator set mixing Ed25519 and SM2
//! keys, the chain hash SM3, signatures made and checked by corridor-sdk behind the crate's
//! `Signer`, `Verifier` and `Hasher` traits. Four validators finalize a chain over a lossless
//! network; an observer verifies every finalized chain on its own; forged votes fail.

use corridor_consensus::{
    Anchor, Certificate, Config, Digest, Durable, Effect, Endorsement, Hasher, Input, Replica, Signature, Signer,
    Timeouts, ValidatorSet, Verifier,
};
use corridor_sdk::{HashAlgorithm, PrivateKey, PublicKey, Scheme};
use std::collections::VecDeque;
use std::rc::Rc;

const CHAIN: &[u8] = b"corridor-real-keys";
const HEIGHTS: u64 = 12;
const STEPS_MAX: usize = 200_000;

struct SdkSigner(PrivateKey);

impl Signer for SdkSigner {
    fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).as_bytes().to_vec())
    }
}

/// The genesis public keys, by validator index.
#[derive(Clone)]
struct SdkVerifier(Rc<Vec<PublicKey>>);

impl Verifier for SdkVerifier {
    fn verify(&self, validator: u16, message: &[u8], signature: &Signature) -> bool {
        let Some(key) = self.0.get(usize::from(validator)) else {
            return false;
        };
        let Ok(signature) = corridor_sdk::Signature::from_bytes(key.scheme(), &signature.0) else {
            return false;
        };
        key.verify(message, &signature).is_ok()
    }
}

struct Sm3;

impl Hasher for Sm3 {
    fn hash(&self, bytes: &[u8]) -> Digest {
        Digest(HashAlgorithm::Sm3.digest(bytes).0)
    }
}

fn keys() -> Vec<PrivateKey> {
    [Scheme::Ed25519, Scheme::Sm2, Scheme::Ed25519, Scheme::Sm2]
        .iter()
        .enumerate()
        .map(|(i, scheme)| PrivateKey::from_seed(*scheme, [i as u8 + 1; 32]).expect("seed"))
        .collect()
}

#[test]
fn mixed_ed25519_and_sm2_validators_finalize_with_sm3_and_observers_verify() {
    let keys = keys();
    let public: Rc<Vec<PublicKey>> = Rc::new(keys.iter().map(PrivateKey::public_key).collect());
    let validators = ValidatorSet::new(keys.len()).expect("4 validators");
    let genesis = Digest(HashAlgorithm::Sm3.digest(b"genesis").0);
    let mut replicas: Vec<Replica<SdkSigner, SdkVerifier, Sm3>> = keys
        .into_iter()
        .enumerate()
        .map(|(me, key)| {
            let config = Config {
                chain_id: CHAIN.to_vec(),
                validators,
                epoch: 0,
                me: me as u16,
                last_height: u64::MAX,
                timeouts: Timeouts::from_base(1_000),
            };
            Replica::new(
                config,
                SdkSigner(key),
                SdkVerifier(Rc::clone(&public)),
                Sm3,
                Durable::genesis(genesis),
            )
        })
        .collect();

    // A lossless network delivering in order; timers never fire (no faults, no timeouts needed).
    let mut inbox: VecDeque<(usize, Input)> = (0..replicas.len()).map(|i| (i, Input::Start)).collect();
    let mut finalized: Vec<Vec<(u64, Digest)>> = vec![Vec::new(); replicas.len()];
    let observer = SdkVerifier(Rc::clone(&public));
    let mut observer_anchor = Anchor::genesis(genesis);
    let mut steps = 0;
    while finalized.iter().any(|chain| (chain.len() as u64) < HEIGHTS) {
        steps += 1;
        assert!(
            steps < STEPS_MAX,
            "no progress: {:?}",
            finalized.iter().map(Vec::len).collect::<Vec<_>>()
        );
        let Some((to, input)) = inbox.pop_front() else {
            panic!("the network went quiet")
        };
        for effect in replicas[to].handle(input) {
            match effect {
                Effect::Send { to: peer, bytes } => {
                    inbox.push_back((usize::from(peer), Input::Message { from: to as u16, bytes }))
                }
                Effect::Broadcast { bytes } => {
                    for peer in (0..replicas.len()).filter(|peer| *peer != to) {
                        inbox.push_back((
                            peer,
                            Input::Message {
                                from: to as u16,
                                bytes: bytes.clone(),
                            },
                        ));
                    }
                }
                Effect::Persist { sequence, .. } => inbox.push_back((to, Input::Persisted { sequence })),
                Effect::RequestProposal { view, height, .. } => {
                    let payload = format!("block {height} from validator {to}").into_bytes();
                    inbox.push_back((to, Input::Proposal { view, payload }));
                }
                Effect::Validate { view, digest, .. } => inbox.push_back((
                    to,
                    Input::Validated {
                        view,
                        digest,
                        valid: true,
                    },
                )),
                Effect::Finalized(chain) => {
                    if to == 0 {
                        // The observer checks validator 0's output with real signatures only.
                        observer_anchor = chain
                            .verify(&observer_anchor, CHAIN, 0, &validators, &observer, &Sm3)
                            .expect("an observer verifies every finalized chain");
                    }
                    finalized[to].extend(chain.blocks.iter().map(|block| (block.height, block.digest(&Sm3))));
                }
                Effect::ScheduleTimeout { .. }
                | Effect::StoreBlock(_)
                | Effect::StoreCertificate(_)
                | Effect::RequestCatchUp { .. }
                | Effect::Evidence(_)
                | Effect::EpochEnded { .. } => {}
            }
        }
    }
    // Agreement, with real keys.
    for chain in &finalized[1..] {
        let common = chain.len().min(finalized[0].len());
        assert_eq!(chain[..common], finalized[0][..common]);
    }
    assert!(observer_anchor.height >= HEIGHTS);
}

#[test]
fn a_vote_signed_with_the_wrong_scheme_or_key_does_not_verify() {
    let keys = keys();
    let public: Rc<Vec<PublicKey>> = Rc::new(keys.iter().map(PrivateKey::public_key).collect());
    let verifier = SdkVerifier(public);
    let message = b"finalize view 3";
    // Validator 1 holds an SM2 key; validator 0 an Ed25519 key.
    let good = SdkSigner(PrivateKey::from_seed(Scheme::Sm2, [2; 32]).expect("seed")).sign(message);
    assert!(verifier.verify(1, message, &good));
    assert!(!verifier.verify(0, message, &good), "another validator's key");
    assert!(!verifier.verify(1, b"finalize view 4", &good), "another message");
    assert!(!verifier.verify(9, message, &good), "no such validator");
    let mut truncated = good.clone();
    truncated.0.pop();
    assert!(!verifier.verify(1, message, &truncated));
    let validators = ValidatorSet::new(4).expect("4");
    let forged = Certificate {
        kind: corridor_consensus::VoteKind::Finalize,
        view: 3,
        digest: Digest([1; 32]),
        endorsements: [(0, good.clone()), (1, good.clone()), (2, good)]
            .into_iter()
            .map(|(signer, signature)| Endorsement {
                signer,
                since: 0,
                signature,
            })
            .collect(),
    };
    assert!(forged.verify(CHAIN, 0, &validators, &verifier).is_err());
}
