//! `corridor`: the command line client of a corridor node.
//!
//! Every command prints a human form by default and one JSON value per line with `--json`.
//! Errors are one line with a stable code (`error: insufficient_funds: ...`), and the exit code
//! says what kind of failure it was: 0 success, 1 refused or failed, 2 usage or local input,
//! 3 transport, timeout or an undecodable answer.

#[path = "corridor/args.rs"]
mod args;
#[path = "corridor/commands.rs"]
mod commands;
#[path = "corridor/contract.rs"]
mod contract;
#[path = "corridor/fx.rs"]
mod fx;
#[path = "corridor/input.rs"]
mod input;
#[path = "corridor/output.rs"]
mod output;
#[path = "corridor/proof.rs"]
mod proof;
#[path = "corridor/schedule.rs"]
mod schedule;

use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: unavailable: cannot start the async runtime: {error}");
            return ExitCode::from(output::EXIT_TRANSPORT);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            failure.print(json);
            ExitCode::from(failure.exit_code)
        }
    }
}
