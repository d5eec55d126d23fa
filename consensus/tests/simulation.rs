//! The seeded simulator as CI runs it: `SEEDS_PER_SIZE` seeds for each of n = 1, 4, 7, 10,
//! cycling through every fault mix, with every invariant checked on every step.

use corridor_consensus::sim::{FaultMix, Outcome, SimConfig, replay_command, run};

/// Seeds per validator count; 4 counts make the CI budget of at least 1,000 runs.
const SEEDS_PER_SIZE: u64 = 1000;

#[cfg_attr(feature = "mutation-skip-nullification-check", allow(dead_code))]
fn failures(validators: usize, seeds: std::ops::Range<u64>) -> Vec<String> {
    let mut failures = Vec::new();
    for seed in seeds {
        let outcome = run(&SimConfig::new(validators, seed, FaultMix::for_seed(seed)));
        if !outcome.violations.is_empty() {
            failures.push(describe(&outcome));
        }
    }
    failures
}

fn describe(outcome: &Outcome) -> String {
    format!(
        "{:?}\n  replay: {}",
        outcome.violations,
        replay_command(&outcome.config)
    )
}

#[cfg(not(feature = "mutation-skip-nullification-check"))]
mod with_every_safety_rule {
    use super::*;

    fn assert_clean(validators: usize) {
        let failures = failures(validators, 0..SEEDS_PER_SIZE);
        assert!(
            failures.is_empty(),
            "{} failing seeds:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn one_validator_dev_chain_survives_every_fault_mix() {
        assert_clean(1);
    }

    #[test]
    fn four_validators_survive_every_fault_mix() {
        assert_clean(4);
    }

    #[test]
    fn seven_validators_survive_every_fault_mix() {
        assert_clean(7);
    }

    #[test]
    fn ten_validators_survive_every_fault_mix() {
        assert_clean(10);
    }

    #[test]
    fn a_hundred_validators_survive_every_fault_mix() {
        let failures = failures(100, 0..6);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn partitioned_and_crashed_validators_catch_up_with_certified_blocks() {
        let mut catch_ups = 0;
        let mut restarts = 0;
        for seed in 0..60 {
            for faults in [FaultMix::Partition, FaultMix::Crash] {
                let outcome = run(&SimConfig::new(7, seed, faults));
                assert!(outcome.violations.is_empty(), "{}", describe(&outcome));
                // Liveness held: every honest replica, laggards included, ended above the heal.
                assert!(outcome.height_min >= 1);
                catch_ups += outcome.catch_ups;
                restarts += outcome.restarts;
            }
        }
        assert!(catch_ups > 0, "no run exercised catch-up");
        assert!(restarts > 0, "no run exercised restart from persisted state");
    }

    #[test]
    fn byzantine_runs_record_equivocation_evidence() {
        let evidence: u64 = (0..24)
            .map(|seed| run(&SimConfig::new(4, seed, FaultMix::Byzantine)).evidence_records)
            .sum();
        assert!(evidence > 0, "twins and equivocators must leave evidence");
    }
}

#[test]
fn a_run_reproduces_exactly_from_its_seed() {
    for faults in FaultMix::EVERY {
        let config = SimConfig::new(7, 4242, faults);
        let first = run(&config);
        let second = run(&config);
        let summary = |outcome: &Outcome| {
            (
                outcome.violations.clone(),
                outcome.height_min,
                outcome.height_max,
                outcome.messages_delivered,
                outcome.evidence_records,
                outcome.end_ms,
            )
        };
        assert_eq!(summary(&first), summary(&second), "{faults:?}");
    }
}

/// With the nullification check of the parent rule disabled, honest validators vote for a
/// Byzantine leader's fork off its parent's parent, and the simulator must catch the resulting
/// safety violation within the CI seed budget.
#[cfg(feature = "mutation-skip-nullification-check")]
#[test]
fn the_simulator_catches_a_disabled_nullification_check() {
    let mut seeds_run = 0u64;
    for seed in 0..SEEDS_PER_SIZE * 4 {
        for validators in [4, 7] {
            seeds_run += 1;
            let outcome = run(&SimConfig::new(validators, seed, FaultMix::Byzantine));
            if outcome
                .violations
                .iter()
                .any(|violation| violation.contains("agreement"))
            {
                eprintln!("found after {seeds_run} runs: {}", describe(&outcome));
                return;
            }
        }
    }
    panic!("no safety violation found in {seeds_run} runs with the nullification check disabled");
}
