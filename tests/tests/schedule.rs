//! Standing orders against a running dev chain through the CLI: a recurring payment runs at
//! the first block at or after each due time, a failed run is recorded with its code, and a
//! cancelled order stops. (The dev producer makes blocks only when transactions arrive, so the
//! test sends a small transfer to get a block.)

use corridor_sdk::schedule::{ScheduleStatus, ScheduleView};
use corridor_sdk::{Amount, ErrorCode, Operation};
use corridor_tests::{DevNode, balance, id};
use std::process::Output;
use std::time::Duration;

fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix(name).map(|rest| rest.trim().to_owned()))
        .unwrap_or_else(|| panic!("no `{name}` in:\n{text}"))
}

async fn show(node: &DevNode, schedule: &str) -> ScheduleView {
    serde_json::from_str(&ok(&node.cli(&["--json", "schedule", "show", schedule]))).expect("schedule JSON")
}

/// A block: one small transfer between banks.
async fn tick(node: &DevNode) {
    let tx = node
        .sign(
            "boc-hk",
            Operation::transfer(id("enbd-ae"), "HKD".parse().expect("code"), Amount::from(1), None),
        )
        .await;
    node.execute(&tx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurring_payment_runs_records_failures_and_cancels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let harbour = node.key_path("harbour@boc-hk").display().to_string();
    let pay = |amount: &str, count: &str| {
        node.cli(&[
            "--key",
            &harbour,
            "schedule",
            "create",
            "--to",
            "acme@icbc-cn",
            "--amount",
            amount,
            "--currency",
            "HKD",
            "--period-ms",
            "1000",
            "--count",
            count,
        ])
    };
    let rent = field(&ok(&pay("250.5", "2")), "schedule_id");
    let too_big = field(&ok(&pay("5000000", "0")), "schedule_id");
    let listed = ok(&node.cli(&["schedule", "list", "harbour@boc-hk"]));
    assert_eq!(listed.lines().count(), 2, "{listed}");

    // The next block runs both: rent pays, the other fails for lack of funds and is recorded.
    tick(&node).await;
    let view = show(&node, &rent).await;
    assert_eq!(
        (view.runs_succeeded, view.remaining, view.status),
        (1, Some(1), ScheduleStatus::Active)
    );
    assert_eq!(balance(&node.account("acme@icbc-cn").await, "HKD"), "250.5");
    let failing = show(&node, &too_big).await;
    assert_eq!(failing.runs_failed, 1);
    assert_eq!(
        failing.last_failure.map(|(_, code)| code),
        Some(ErrorCode::InsufficientFunds)
    );
    // Not retried before its next period.
    tick(&node).await;
    assert_eq!(show(&node, &too_big).await.runs_failed, 1);

    // A period later the rent runs its second and last time.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    tick(&node).await;
    let view = show(&node, &rent).await;
    assert_eq!((view.runs_succeeded, view.status), (2, ScheduleStatus::Done));
    assert_eq!(balance(&node.account("acme@icbc-cn").await, "HKD"), "501");

    // Cancelled: no further runs.
    ok(&node.cli(&["--key", &harbour, "schedule", "cancel", &too_big]));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    tick(&node).await;
    let cancelled = show(&node, &too_big).await;
    assert_eq!(cancelled.status, ScheduleStatus::Cancelled);
    assert_eq!(
        cancelled.runs_failed, 2,
        "the run due before the cancel block was its last"
    );
    assert!(ok(&node.cli(&["schedule", "list", "harbour@boc-hk"])).trim().is_empty());
    let stranger = node.cli(&[
        "--key",
        &node.key_path("acme@icbc-cn").display().to_string(),
        "schedule",
        "cancel",
        &rent,
    ]);
    assert_eq!(stranger.status.code(), Some(1));
}
