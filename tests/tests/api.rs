//! The HTTP API as a user meets it: proofs a regulator can check, the resumable event stream,
//! history paging, block and transaction lookups, metrics.

use corridor_sdk::api::{AccountProof, BlockView, EventRecord, HistoryPage};
use corridor_sdk::{Amount, CurrencyCode, Event, HashAlgorithm, Operation};
use corridor_tests::{DevNode, id};
use futures::StreamExt;
use std::time::Duration;

fn pay(to: &str, currency: &str, amount: &str) -> Operation {
    Operation::transfer(
        id(to),
        CurrencyCode::new(currency).expect("code"),
        Amount::parse(amount).expect("amount"),
        Some("api test".into()),
    )
}

/// Read `count` SSE events from `/v1/events?from_height=H`.
async fn read_events(node: &DevNode, from_height: u64, count: usize) -> Vec<(u64, EventRecord)> {
    read_stream(node, &format!("from_height={from_height}"), count).await
}

/// Read `count` SSE events after the event `id`.
async fn read_events_after(node: &DevNode, id: &str, count: usize) -> (String, Vec<EventRecord>) {
    let events = read_stream(node, &format!("after={id}"), count).await;
    (id.to_owned(), events.into_iter().map(|(_, record)| record).collect())
}

async fn read_stream(node: &DevNode, query: &str, count: usize) -> Vec<(u64, EventRecord)> {
    let response = node
        .signed_get("regulator", &format!("/v1/events?{query}"))
        .send()
        .await
        .expect("events");
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let (mut buffer, mut events, mut last_id) = (String::new(), Vec::new(), 0u64);
    let reading = async {
        while events.len() < count {
            let chunk = stream.next().await.expect("stream open").expect("chunk");
            buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
            while let Some(end) = buffer.find('\n') {
                let line: String = buffer.drain(..=end).collect();
                let line = line.trim_end();
                if let Some(id) = line.strip_prefix("id:") {
                    last_id = EventRecord::parse_id(id).expect("height:tx:event id").0;
                } else if let Some(data) = line.strip_prefix("data:") {
                    events.push((last_id, serde_json::from_str(data.trim()).expect("event JSON")));
                }
            }
        }
        events
    };
    tokio::time::timeout(Duration::from_secs(30), reading)
        .await
        .expect("events arrive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_events_history_and_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let mut hashes = Vec::new();
    for amount in ["10", "20", "30"] {
        let view = node
            .execute(&node.sign("harbour@boc-hk", pay("boc-hk", "HKD", amount)).await)
            .await;
        hashes.push(view.tx_hash);
    }

    // A regulator checks harbour's balance against the state root, without trusting the node.
    let (_, body) = node.get("/v1/accounts/harbour@boc-hk/proof").await;
    let proof: AccountProof = serde_json::from_value(body).expect("proof JSON");
    let state = proof
        .verify(HashAlgorithm::Sha256, &proof.state_root)
        .expect("verifies")
        .expect("present");
    assert_eq!(
        state.balance(&CurrencyCode::new("HKD").expect("code")).to_string(),
        "999940"
    );
    // The root is committed by the next block's header.
    node.execute(&node.sign("boc-hk", pay("harbour@boc-hk", "HKD", "1")).await)
        .await;
    let (_, next) = node.get(&format!("/v1/blocks/{}", proof.height + 1)).await;
    let next: BlockView = serde_json::from_value(next).expect("block JSON");
    assert_eq!(next.header.state_root, proof.state_root);
    // A doctored record, or a doctored root, does not verify.
    let mut doctored = proof.clone();
    let mut forged = state.clone();
    forged.set_balance(&CurrencyCode::new("HKD").expect("code"), Amount::from(5_000_000));
    doctored.record = Some(hex::encode(corridor_sdk::codec::encode(&forged)));
    assert!(doctored.verify(HashAlgorithm::Sha256, &proof.state_root).is_err());
    assert!(proof.verify(HashAlgorithm::Sha256, &next.hash).is_err());
    // Absence is provable too.
    let (_, body) = node.get("/v1/accounts/nobody@boc-hk/proof").await;
    let absent: AccountProof = serde_json::from_value(body).expect("proof JSON");
    assert_eq!(
        absent
            .verify(HashAlgorithm::Sha256, &absent.state_root)
            .expect("verifies"),
        None
    );

    // The event stream replays from a height and follows; resuming later skips what was seen.
    let events = read_events(&node, 0, 4).await;
    let transfers: Vec<_> = events
        .iter()
        .filter(|(_, r)| matches!(r.event, Event::Transferred { .. }))
        .collect();
    assert_eq!(transfers.len(), 4);
    assert_eq!(events[0].1.tx_hash, hashes[0]);
    assert!(events.windows(2).all(|w| w[0].0 < w[1].0), "heights ascend");
    let resume_from = events[2].0 + 1;
    let resumed = read_events(&node, resume_from, 1).await;
    assert_eq!(resumed[0].1.tx_hash, events[3].1.tx_hash);
    // Live: a new transfer arrives on an open stream.
    let live = tokio::spawn({
        let from = events[3].0 + 1;
        let request = node.signed_get("regulator", &format!("/v1/events?from_height={from}"));
        async move { DevNodeProbe { request }.first_event().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let last = node
        .execute(&node.sign("harbour@boc-hk", pay("boc-hk", "HKD", "5")).await)
        .await;
    assert_eq!(live.await.expect("live task"), last.tx_hash);

    // History pages newest first, with a cursor.
    let (_, body) = node.get("/v1/accounts/harbour@boc-hk/history?limit=2").await;
    let page: HistoryPage = serde_json::from_value(body).expect("history JSON");
    assert_eq!(page.entries.len(), 2);
    assert_eq!(page.entries[0].record.tx_hash, last.tx_hash);
    let before = page.next_before.expect("more pages");
    let (_, body) = node
        .get(&format!("/v1/accounts/harbour@boc-hk/history?limit=10&before={before}"))
        .await;
    let rest: HistoryPage = serde_json::from_value(body).expect("history JSON");
    assert_eq!(rest.entries.len(), 3);
    assert_eq!(rest.next_before, None);
    assert_eq!(rest.entries[2].record.tx_hash, hashes[0]);
    let (status, _) = node.get("/v1/accounts/harbour@boc-hk/history?limit=0").await;
    assert_eq!(status, 400);
    let (status, _) = node.get("/v1/accounts/nobody@boc-hk/history").await;
    assert_eq!(status, 404);

    // Metrics count what happened.
    let text = node
        .http
        .get(format!("{}/metrics", node.rpc))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(text.contains("corridor_txs_finalized_total 5"), "{text}");
    assert!(text.contains(&format!("corridor_height {}", node.status().await.height)));

    // Three events in one block: resuming after the first gives exactly the other two.
    let legs = ["boc-hk", "acme@icbc-cn", "siam-rice@kbank-th"]
        .iter()
        .map(|to| corridor_sdk::TransferLeg {
            to: id(to),
            currency: CurrencyCode::new("HKD").expect("code"),
            amount: Amount::from(1),
            memo: None,
        })
        .collect();
    let batch = node
        .execute(&node.sign("harbour@boc-hk", Operation::batch_transfer(legs)).await)
        .await;
    let height = batch.receipt.as_ref().expect("receipt").height;
    let block_events = read_events(&node, height, 3).await;
    assert!(block_events.iter().all(|(_, r)| r.height == height));
    let first_id = block_events[0].1.id();
    let response = node
        .signed_get("regulator", "/v1/events")
        .header("Last-Event-ID", &first_id)
        .send()
        .await
        .expect("events");
    assert_eq!(response.status(), 200);
    drop(response);
    let (_, after_first) = read_events_after(&node, &first_id, 2).await;
    assert_eq!(
        after_first,
        block_events[1..].iter().map(|(_, r)| r.clone()).collect::<Vec<_>>()
    );
    let (status, _) = node.get("/v1/events?after=garbage").await;
    assert_eq!(status, 400);
}

/// A second client that only reads the stream.
struct DevNodeProbe {
    /// A signed `GET /v1/events?from_height=H`.
    request: reqwest::RequestBuilder,
}

impl DevNodeProbe {
    async fn first_event(self) -> corridor_sdk::Hash {
        let response = self.request.send().await.expect("events");
        let mut stream = response.bytes_stream();
        let mut buffer = String::new();
        loop {
            let chunk = stream.next().await.expect("open").expect("chunk");
            buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
            // Only whole lines: a chunk may end mid-line.
            let complete = &buffer[..buffer.rfind('\n').map_or(0, |end| end + 1)];
            if let Some(line) = complete.lines().find_map(|l| l.strip_prefix("data:")) {
                let record: EventRecord = serde_json::from_str(line.trim()).expect("event JSON");
                return record.tx_hash;
            }
        }
    }
}

/// SIGTERM stops the node promptly even with an event stream open (it used to keep it
/// running).
#[tokio::test]
async fn sigterm_with_open_streams_stops_the_node_within_two_seconds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let stream = node
        .signed_get("regulator", "/v1/events?from_height=0")
        .send()
        .await
        .expect("events");
    assert_eq!(stream.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let took = node.terminate();
    println!("stopped {} ms after SIGTERM", took.as_millis());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    drop(stream);
}

/// The `corridor_stage_*` lines of a `/metrics` page: stage name → nanoseconds.
fn stage_nanos(text: &str, metric: &str) -> std::collections::BTreeMap<String, u64> {
    let prefix = format!("{metric}{{stage=\"");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|rest| {
            let (stage, value) = rest.split_once("\"} ").expect("stage=\"…\"} value");
            (stage.to_owned(), seconds_to_nanos(value))
        })
        .collect()
}

/// "12.000345678" → 12000345678, without floats.
fn seconds_to_nanos(text: &str) -> u64 {
    let (whole, fraction) = text.split_once('.').expect("seconds with decimals");
    assert_eq!(fraction.len(), 9, "nine decimals: {text}");
    whole.parse::<u64>().expect("seconds") * 1_000_000_000 + fraction.parse::<u64>().expect("nanoseconds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_cpu_by_stage_once_a_transfer_is_final() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("chain")).await;
    let transfer = node.sign("harbour@boc-hk", pay("boc-hk", "HKD", "1")).await;
    let response = node.submit_batch(&[transfer]).await;
    let hash = response.results[0].tx_hash.expect("admitted");
    assert_eq!(node.wait(&hash).await.status, corridor_sdk::api::TxStatus::Finalized);

    let text = node
        .http
        .get(format!("{}/metrics", node.rpc))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let cpu = stage_nanos(&text, "corridor_stage_cpu_seconds_total");
    let wall = stage_nanos(&text, "corridor_stage_wall_seconds_total");
    let stages = [
        "decode",
        "verify",
        "pool",
        "consensus",
        "execute",
        "root",
        "write",
        "network",
    ];
    assert_eq!(cpu.keys().collect::<Vec<_>>().len(), stages.len(), "{text}");
    // The transfer went through every stage but the network: a dev node has no peers.
    for stage in &stages[..7] {
        assert!(cpu[*stage] > 0, "no CPU counted for {stage}:\n{text}");
        assert!(wall[*stage] > 0, "no wall time counted for {stage}:\n{text}");
    }
    assert_eq!(cpu["network"], 0, "{text}");
    // The stages are parts of the process's CPU time, never more than it.
    let process = text
        .lines()
        .find_map(|line| line.strip_prefix("corridor_process_cpu_seconds_total "))
        .map(seconds_to_nanos)
        .expect("process CPU");
    assert!(cpu.values().sum::<u64>() <= process, "{text}");
}
