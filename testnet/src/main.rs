use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "corridor-testnet",
    version,
    about = "run and load corridor networks on loopback"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drive pre-signed transfers from many accounts at a running node and report finalized
    /// transfers/s and submit→finalized latency.
    Bench(corridor_testnet::bench::BenchArgs),
    /// Escrow create + release contract calls against a running node: calls/s and latency.
    EscrowBench(corridor_testnet::escrow_bench::EscrowBenchArgs),
    /// Start a local network (validators and observers) on loopback; Ctrl-C stops it.
    Up(corridor_testnet::network::UpArgs),
    /// Stop the network `up` started in --dir.
    Down(corridor_testnet::network::DownArgs),
    /// Under load, kill, pause, resume and restart validators on a seeded schedule (at most f
    /// faulty at once), then check that every node agrees.
    Chaos(corridor_testnet::chaos::ChaosArgs),
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => corridor_testnet::bench::run(args).await,
        Command::EscrowBench(args) => corridor_testnet::escrow_bench::run(args).await,
        Command::Up(args) => corridor_testnet::network::up(args).await.map_err(Into::into),
        Command::Down(args) => corridor_testnet::network::down(args).map_err(Into::into),
        Command::Chaos(args) => corridor_testnet::chaos::run(args).await.map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
