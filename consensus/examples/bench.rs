//! Benchmarks one replica, and measures finalization latency in message delays.
//!
//! cargo run -p corridor-consensus --release --example bench -- [--validators 7] [--heights 2000]
//!
//! 1. Latency: n replicas on a lossless network where every message takes exactly one delay;
//!    persistence and the application answer at once. Reports, per block, the delays from the
//!    leader's proposal to each replica finalizing it.
//! 2. Throughput: the inputs validator 0 received in that run are replayed into a fresh replica
//!    (it is a pure state machine, so the replay is exact) and timed: messages handled per second,
//!    including signature and certificate verification with the simulator's keyed-hash scheme.

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use corridor_consensus::sim::crypto::{TestHasher, TestSigner, TestVerifier, secrets};
use corridor_consensus::{
    Config, Digest, Durable, Effect, Input, Message, Replica, Timeouts, ValidatorSet, decode, limits,
};

type BenchReplica = Replica<TestSigner, TestVerifier, TestHasher>;

fn replica(validators: ValidatorSet, me: u16, secrets: &Rc<Vec<u64>>) -> BenchReplica {
    let config = Config {
        chain_id: b"bench".to_vec(),
        epoch: 0,
        validators,
        me,
        last_height: u64::MAX,
        timeouts: Timeouts::from_base(1_000_000),
    };
    let signer = TestSigner::new(secrets[usize::from(me)]);
    Replica::new(
        config,
        signer,
        TestVerifier::new(secrets.clone()),
        TestHasher,
        Durable::genesis(Digest([1; 32])),
    )
}

struct Run {
    inputs_of_first: Vec<Input>,
    latencies: Vec<u64>,
    heights: u64,
    delays: u64,
}

/// Lockstep network: each message arrives exactly one delay after it was sent.
fn latency_run(count: usize, heights: u64) -> Run {
    let validators = ValidatorSet::new(count).expect("validator count in range");
    let secrets = Rc::new(secrets(1, count));
    let mut replicas: Vec<BenchReplica> = validators
        .indices()
        .map(|me| replica(validators, me, &secrets))
        .collect();
    let mut queue: VecDeque<(u64, usize, Input)> = VecDeque::new();
    for me in 0..count {
        queue.push_back((0, me, Input::Start));
    }
    let mut proposed_at: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut run = Run {
        inputs_of_first: Vec::new(),
        latencies: Vec::new(),
        heights: 0,
        delays: 0,
    };
    while let Some((time, me, input)) = queue.pop_front() {
        if me == 0 {
            run.inputs_of_first.push(input.clone());
        }
        run.delays = run.delays.max(time);
        for effect in replicas[me].handle(input) {
            match effect {
                Effect::Persist { sequence, .. } => {
                    queue.push_front((time, me, Input::Persisted { sequence }));
                }
                Effect::RequestProposal { view, .. } => {
                    let payload = view.to_le_bytes().repeat(16);
                    queue.push_front((time, me, Input::Proposal { view, payload }));
                }
                Effect::Validate { view, digest, .. } => {
                    queue.push_front((
                        time,
                        me,
                        Input::Validated {
                            view,
                            digest,
                            valid: true,
                        },
                    ));
                }
                Effect::Broadcast { bytes } => {
                    if let Ok((_, Message::Proposal(proposal))) = decode(&bytes, limits::MESSAGE_BYTES_MAX) {
                        proposed_at.insert(proposal.block.digest(&TestHasher), time);
                    }
                    for to in 0..count {
                        if to != me {
                            let from = u16::try_from(me).expect("below 100");
                            queue.push_back((
                                time + 1,
                                to,
                                Input::Message {
                                    from,
                                    bytes: bytes.clone(),
                                },
                            ));
                        }
                    }
                }
                Effect::Finalized(chain) => {
                    for block in &chain.blocks {
                        let digest = block.digest(&TestHasher);
                        if let Some(start) = proposed_at.get(&digest) {
                            run.latencies.push(time - start);
                        }
                        if me == 0 {
                            run.heights = block.height;
                        }
                    }
                }
                _ => {}
            }
        }
        if run.heights >= heights {
            break;
        }
    }
    run
}

fn argument(name: &str, default: u64) -> u64 {
    let words: Vec<String> = std::env::args().collect();
    words
        .windows(2)
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair[1].parse().ok())
        .unwrap_or(default)
}

fn main() {
    let count = usize::try_from(argument("--validators", 7)).expect("small count");
    let heights = argument("--heights", 2_000);
    let run = latency_run(count, heights);
    let total: u64 = run.latencies.iter().sum();
    let samples = u64::try_from(run.latencies.len()).expect("fits");
    let (minimum, maximum) = (run.latencies.iter().min(), run.latencies.iter().max());
    println!(
        "validators={count} heights={} message_delays_total={}",
        run.heights, run.delays
    );
    println!(
        "finalization latency (leader's proposal -> replica finalizes), in message delays: mean={}.{:02} min={:?} max={:?} over {samples} (block, replica) samples",
        total / samples.max(1),
        (total % samples.max(1)) * 100 / samples.max(1),
        minimum,
        maximum
    );
    let messages = run
        .inputs_of_first
        .iter()
        .filter(|input| matches!(input, Input::Message { .. }))
        .count();
    let mut best_per_second = 0u128;
    for _ in 0..5 {
        let validators = ValidatorSet::new(count).expect("validator count in range");
        let secrets = Rc::new(secrets(1, count));
        let mut fresh = replica(validators, 0, &secrets);
        let inputs = run.inputs_of_first.clone();
        let started = Instant::now();
        let mut effects = 0usize;
        for input in inputs {
            effects += fresh.handle(input).len();
        }
        let elapsed = started.elapsed();
        assert!(fresh.anchor().height >= run.heights, "the replay reproduces the run");
        let per_second = (messages as u128) * 1_000_000_000 / elapsed.as_nanos().max(1);
        best_per_second = best_per_second.max(per_second);
        println!(
            "replay: {messages} messages ({} inputs, {effects} effects) into validator 0 in {} us = {per_second} messages/s",
            run.inputs_of_first.len(),
            elapsed.as_micros()
        );
    }
    println!("best: {best_per_second} messages/s handled by one replica at n={count}");
}
