//! Runs the seeded consensus simulator over many seeds.
//!
//! cargo run -p corridor-consensus --release --example sim -- \
//!     --seeds 100000 --seed-start 0 --validators 7 [--faults cycle|none|lossy|partition|crash|byzantine|all|slow|stall|long]
//!
//! Prints a summary and every failing seed with the command that replays it; exits non-zero on
//! any violation. `--validators` takes one count or a comma-separated list (e.g. 1,4,7,10).
//! `--verbose` prints every run's summary; `--trace` prints every input and effect (use it to
//! replay one seed).

use std::process::ExitCode;

use corridor_consensus::sim::{FaultMix, Outcome, SimConfig, replay_command, run};

struct Arguments {
    seeds: u64,
    seed_start: u64,
    validators: Vec<usize>,
    faults: Option<FaultMix>,
    verbose: bool,
    trace: bool,
}

fn parse() -> Result<Arguments, String> {
    let mut arguments = Arguments {
        seeds: 100,
        seed_start: 0,
        validators: vec![4],
        faults: None,
        verbose: false,
        trace: false,
    };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        if flag == "--verbose" {
            arguments.verbose = true;
            continue;
        }
        if flag == "--trace" {
            arguments.trace = true;
            continue;
        }
        let value = words.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seeds" => arguments.seeds = value.parse().map_err(|_| "bad --seeds")?,
            "--seed-start" => arguments.seed_start = value.parse().map_err(|_| "bad --seed-start")?,
            "--validators" => {
                let counts: Result<Vec<usize>, _> = value.split(',').map(str::parse).collect();
                arguments.validators = counts.map_err(|_| "bad --validators")?;
                if arguments.validators.iter().any(|count| !(1..=100).contains(count)) {
                    return Err("--validators must be 1..=100".into());
                }
            }
            "--faults" => {
                arguments.faults = match value.as_str() {
                    "cycle" => None,
                    name => Some(FaultMix::parse(name).ok_or(format!("unknown fault mix {name}"))?),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(arguments)
}

fn main() -> ExitCode {
    let arguments = match parse() {
        Ok(arguments) => arguments,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let mut runs = 0u64;
    let mut failures = 0u64;
    let mut blocks = 0u64;
    let mut per_mix = [0u64; FaultMix::EVERY.len()];
    for offset in 0..arguments.seeds {
        let seed = arguments.seed_start + offset;
        for validators in &arguments.validators {
            let faults = arguments.faults.unwrap_or(FaultMix::for_seed(seed));
            let mut config = SimConfig::new(*validators, seed, faults);
            config.trace = arguments.trace;
            let outcome = run(&config);
            runs += 1;
            blocks += outcome.height_min;
            if let Some(position) = FaultMix::EVERY.iter().position(|mix| *mix == faults) {
                per_mix[position] += 1;
            }
            if arguments.verbose {
                print_outcome(&outcome);
            }
            if !outcome.violations.is_empty() {
                failures += 1;
                report_failure(&outcome);
            }
        }
    }
    let mixes: Vec<String> = FaultMix::EVERY
        .iter()
        .zip(per_mix)
        .map(|(mix, count)| format!("{}={count}", mix.name()))
        .collect();
    println!(
        "runs={runs} seeds={}..{} validators={:?} mixes[{}] failing={failures} blocks_finalized(min per run, summed)={blocks}",
        arguments.seed_start,
        arguments.seed_start + arguments.seeds,
        arguments.validators,
        mixes.join(" ")
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_outcome(outcome: &Outcome) {
    println!(
        "seed={} n={} faults={} epochs={:?} heights={}..{} views={} epoch_max={} stall_views={} learned={} delivered={} evidence={} rejected={} catch_ups={} tampered={} restarts={} end={}ms byzantine={:?}",
        outcome.config.seed,
        outcome.config.validators,
        outcome.config.faults.name(),
        outcome.config.epoch_heights,
        outcome.height_min,
        outcome.height_max,
        outcome.view_max,
        outcome.epoch_max,
        outcome.stall_views,
        outcome.timeouts_learned,
        outcome.messages_delivered,
        outcome.evidence_records,
        outcome.messages_rejected,
        outcome.catch_ups,
        outcome.tampered_catch_ups,
        outcome.restarts,
        outcome.end_ms,
        outcome.byzantine
    );
}

fn report_failure(outcome: &Outcome) {
    println!(
        "FAIL seed={} n={} faults={}",
        outcome.config.seed,
        outcome.config.validators,
        outcome.config.faults.name()
    );
    for violation in &outcome.violations {
        println!("  {violation}");
    }
    println!("  replay: {}", replay_command(&outcome.config));
}
