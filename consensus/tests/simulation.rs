//! The seeded simulator as CI runs it: `SEEDS_PER_SIZE` seeds for each of n = 1, 4, 7, 10 (and
//! a few at n = 100), cycling through every fault mix, half of them with epochs whose validator
//! set changes, with every invariant checked on every step; and the mutation suite: with any one
//! safety or verification rule switched off (a test-only feature), the same simulator must find
//! a violation within a fixed budget of runs.

use corridor_consensus::sim::{FaultMix, Outcome, SimConfig, replay_command, run};

#[cfg(not(any(
    feature = "mutation-skip-nullification-check",
    feature = "mutation-skip-certificate-verification",
    feature = "mutation-signer-membership",
    feature = "mutation-quorum-size",
    feature = "mutation-notarize-twice",
    feature = "mutation-finalize-after-nullify",
)))]
mod with_every_rule {
    use super::*;
    use corridor_consensus::sim::{LONG_VIEWS_MIN, STALL_VIEWS_MIN};

    /// Seeds per validator count; 4 counts make the CI budget of at least 4,000 runs.
    const SEEDS_PER_SIZE: u64 = 1000;

    fn describe(outcome: &Outcome) -> String {
        format!(
            "{:?}\n  replay: {}",
            outcome.violations,
            replay_command(&outcome.config)
        )
    }

    fn outcomes(validators: usize, seeds: std::ops::Range<u64>) -> Vec<Outcome> {
        seeds
            .map(|seed| run(&SimConfig::new(validators, seed, FaultMix::for_seed(seed))))
            .collect()
    }

    fn assert_clean(outcomes: &[Outcome]) {
        let failures: Vec<String> = outcomes
            .iter()
            .filter(|outcome| !outcome.violations.is_empty())
            .map(describe)
            .collect();
        assert!(
            failures.is_empty(),
            "{} failing seeds:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    /// Every mix and both epoch settings were exercised, and each did what it claims.
    fn assert_exercised(outcomes: &[Outcome]) {
        for mix in FaultMix::EVERY {
            assert!(
                outcomes.iter().any(|outcome| outcome.config.faults == mix),
                "{mix:?} never ran"
            );
        }
        assert!(
            outcomes.iter().any(|outcome| outcome.epoch_max >= 2),
            "no run crossed two epochs"
        );
        let stalls = outcomes
            .iter()
            .filter(|outcome| outcome.config.faults == FaultMix::Stall);
        assert!(stalls.clone().all(|outcome| outcome.stall_views >= STALL_VIEWS_MIN));
        let long = outcomes
            .iter()
            .filter(|outcome| outcome.config.faults == FaultMix::Long);
        assert!(long.clone().all(|outcome| outcome.view_max >= LONG_VIEWS_MIN));
    }

    #[test]
    fn one_validator_dev_chain_survives_every_fault_mix() {
        let outcomes = outcomes(1, 0..SEEDS_PER_SIZE);
        assert_clean(&outcomes);
        assert_exercised(&outcomes);
    }

    #[test]
    fn four_validators_survive_every_fault_mix() {
        let outcomes = outcomes(4, 0..SEEDS_PER_SIZE);
        assert_clean(&outcomes);
        assert_exercised(&outcomes);
        let learned: u64 = outcomes.iter().map(|outcome| outcome.timeouts_learned).sum();
        assert!(learned > 0, "no run learned longer timeouts");
        let tampered: u64 = outcomes.iter().map(|outcome| outcome.tampered_catch_ups).sum();
        assert!(tampered > 0, "no Byzantine peer served catch-up");
    }

    #[test]
    fn seven_validators_survive_every_fault_mix() {
        let outcomes = outcomes(7, 0..SEEDS_PER_SIZE);
        assert_clean(&outcomes);
        assert_exercised(&outcomes);
    }

    #[test]
    fn ten_validators_survive_every_fault_mix() {
        let outcomes = outcomes(10, 0..SEEDS_PER_SIZE);
        assert_clean(&outcomes);
        assert_exercised(&outcomes);
    }

    #[test]
    fn a_hundred_validators_survive_every_fault_mix() {
        // One seed of each time-bounded mix (the view-bounded Stall and Long runs take minutes
        // at n = 100; they run at n <= 10 above).
        let seeds = [0, 1, 2, 3, 4, 5, 6];
        let outcomes: Vec<Outcome> = seeds
            .iter()
            .map(|seed| run(&SimConfig::new(100, *seed, FaultMix::for_seed(*seed))))
            .collect();
        assert_clean(&outcomes);
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
    fn byzantine_runs_record_equivocation_evidence_and_reject_forgeries() {
        let outcomes: Vec<Outcome> = (0..40)
            .map(|seed| run(&SimConfig::new(4, seed, FaultMix::Byzantine)))
            .collect();
        assert_clean(&outcomes);
        let evidence: u64 = outcomes.iter().map(|outcome| outcome.evidence_records).sum();
        assert!(evidence > 0, "twins and equivocators must leave evidence");
        let forgers = outcomes.iter().filter(|outcome| {
            outcome
                .byzantine
                .iter()
                .any(|(_, behaviour)| behaviour.name() == "forger")
        });
        let rejected: u64 = forgers.map(|outcome| outcome.messages_rejected).sum();
        assert!(rejected > 0, "forged messages must be rejected");
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
                outcome.view_max,
                outcome.messages_delivered,
                outcome.evidence_records,
                outcome.end_ms,
            )
        };
        assert_eq!(summary(&first), summary(&second), "{faults:?}");
    }
}

/// Runs at most this many simulations looking for the violation a mutation causes.
#[allow(dead_code)]
const MUTATION_RUNS_MAX: u64 = 4_000;

/// With a rule switched off, the simulator must find a violation within `MUTATION_RUNS_MAX`
/// runs over the mixes that hold adversaries, crashes and slow links, at n = 4 and n = 7.
#[allow(dead_code)]
fn find_violation(expected: &[&str]) -> String {
    let mixes = [
        FaultMix::Byzantine,
        FaultMix::All,
        FaultMix::Crash,
        FaultMix::Slow,
        FaultMix::Lossy,
        FaultMix::Partition,
    ];
    let mut runs = 0;
    for seed in 0.. {
        for validators in [4, 7] {
            let faults = mixes[usize::try_from(seed % mixes.len() as u64).expect("small")];
            runs += 1;
            assert!(
                runs <= MUTATION_RUNS_MAX,
                "no violation in {MUTATION_RUNS_MAX} runs with the rule switched off"
            );
            let outcome = run(&SimConfig::new(validators, seed, faults));
            let found = outcome
                .violations
                .iter()
                .find(|violation| expected.iter().any(|kind| violation.contains(kind)));
            if let Some(found) = found {
                return format!(
                    "after {runs} runs: {found}\n  replay: {}",
                    replay_command(&outcome.config)
                );
            }
        }
    }
    unreachable!("the loop ends by finding or by the assertion")
}

#[cfg(feature = "mutation-skip-nullification-check")]
#[test]
fn the_simulator_catches_a_disabled_nullification_check() {
    eprintln!("{}", find_violation(&["agreement"]));
}

#[cfg(feature = "mutation-skip-certificate-verification")]
#[test]
fn the_simulator_catches_disabled_certificate_verification() {
    eprintln!("{}", find_violation(&["agreement", "fails verification"]));
}

#[cfg(feature = "mutation-signer-membership")]
#[test]
fn the_simulator_catches_a_disabled_signer_membership_check() {
    eprintln!("{}", find_violation(&["agreement", "fails verification"]));
}

#[cfg(feature = "mutation-quorum-size")]
#[test]
fn the_simulator_catches_a_quorum_one_short() {
    eprintln!("{}", find_violation(&["agreement", "fails verification"]));
}

#[cfg(feature = "mutation-notarize-twice")]
#[test]
fn the_simulator_catches_a_second_notarize_vote() {
    eprintln!("{}", find_violation(&["double-signed kind 1"]));
}

#[cfg(feature = "mutation-finalize-after-nullify")]
#[test]
fn the_simulator_catches_finalize_after_nullify() {
    eprintln!("{}", find_violation(&["both nullify and finalize"]));
}
