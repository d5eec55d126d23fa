//! Bounded resources (issue 9), against a node started with small caps: event streams beyond
//! the cap are refused `503 busy`; long polls beyond it answer at once; connections beyond it
//! wait until one closes. Each cap frees its place when the holder goes.

use corridor_sdk::api::{TxStatus, TxView};
use corridor_sdk::error::ErrorCode;
use corridor_sdk::{Amount, CurrencyCode, Operation};
use corridor_tests::{DevNode, error_code, id};
use std::time::{Duration, Instant};

#[tokio::test]
async fn event_streams_beyond_the_cap_are_refused_until_one_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start_with(&dir.path().join("chain"), &["--event-subscribers-max", "2"]).await;
    let open = |node: &DevNode| node.signed_get("regulator", "/v1/events?from_height=0").send();
    let first = open(&node).await.expect("stream");
    let second = open(&node).await.expect("stream");
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let third = open(&node).await.expect("answer");
    assert_eq!(third.status().as_u16(), 503);
    let body: serde_json::Value = third.json().await.expect("json");
    assert_eq!(error_code(&body), ErrorCode::Busy);
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let again = open(&node).await.expect("answer");
        if again.status().as_u16() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the closed stream's place was not freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(second);
}

#[tokio::test]
async fn long_polls_beyond_the_cap_answer_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start_with(&dir.path().join("chain"), &["--long-polls-max", "1"]).await;
    // A transaction parked behind a nonce gap stays pending.
    let nonce = node.next_nonce("acme@icbc-cn").await;
    let pay = Operation::transfer(
        id("harbour@boc-hk"),
        CurrencyCode::new("CNY").expect("code"),
        Amount::from(1),
        None,
    );
    let parked = node.sign_with_nonce("acme@icbc-cn", nonce + 1, pay);
    let hash = node.submit(&parked).await.expect("admitted, parked");
    let path = format!("/v1/transactions/{hash}?wait_ms=3000");
    let held = tokio::spawn({
        let request = node.signed_get("acme@icbc-cn", &path);
        async move {
            let started = Instant::now();
            let response = request.send().await.expect("held poll");
            (started.elapsed(), response.status().as_u16())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let (status, body) = node.get_as(Some("acme@icbc-cn"), &path).await;
    let quick = started.elapsed();
    assert_eq!(status, 200, "{body}");
    let view: TxView = serde_json::from_value(body).expect("tx view");
    assert_eq!(view.status, TxStatus::Pending);
    let (held_for, held_status) = held.await.expect("held task");
    println!("held poll: {held_for:?}; poll over the cap: {quick:?}");
    assert_eq!(held_status, 200);
    assert!(
        held_for >= Duration::from_millis(2_500),
        "the first poll was held: {held_for:?}"
    );
    assert!(
        quick < Duration::from_millis(2_000),
        "the second answered at once: {quick:?}"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start_with(&dir.path().join("chain"), &["--connections-max", "4"]).await;
    let address = node.rpc.trim_start_matches("http://").to_owned();
    // The harness's own pooled connection holds one place; three idle sockets take the rest.
    let idle: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(&address).expect("connect"))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_millis(1_000))
        .build()
        .expect("client");
    let status_url = format!("{}/v1/status", node.rpc);
    assert!(
        fresh.get(&status_url).send().await.is_err(),
        "a fifth connection got an answer while four were open"
    );
    drop(idle);
    served_within_10_s(&fresh, &status_url).await;
}

/// Slowloris: connections that say nothing, or half a request, are closed once idle, and the
/// places they held serve others again.
#[tokio::test]
async fn idle_and_half_sent_connections_are_closed_and_free_their_places() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start_with(
        &dir.path().join("chain"),
        &["--connections-max", "3", "--connection-idle-ms", "1000"],
    )
    .await;
    let address = node.rpc.trim_start_matches("http://").to_owned();
    let mut held: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(&address).expect("connect"))
        .collect();
    held[0]
        .write_all(b"GET /v1/status HTTP/1.1\r\nHost: corridor\r\n")
        .expect("half a request");
    for (index, socket) in held.iter_mut().enumerate() {
        socket.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut byte = [0u8; 1];
        let read = socket.read(&mut byte);
        assert!(
            matches!(read, Ok(0))
                || read
                    .as_ref()
                    .is_err_and(|error| error.kind() == std::io::ErrorKind::ConnectionReset),
            "connection {index} was not closed within 10 s: {read:?}"
        );
    }
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_millis(1_000))
        .build()
        .expect("client");
    let status_url = format!("{}/v1/status", node.rpc);
    served_within_10_s(&fresh, &status_url).await;
}

/// Slowloris by drip: a client that sends its request head one byte a second keeps the idle
/// clock at zero, so only the head's deadline closes it; its place then serves others.
#[tokio::test]
async fn a_request_head_sent_one_byte_at_a_time_is_cut_off_at_its_deadline() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start_with(
        &dir.path().join("chain"),
        &["--connections-max", "1", "--header-read-ms", "2000"],
    )
    .await;
    let address = node.rpc.trim_start_matches("http://").to_owned();
    let mut drip = std::net::TcpStream::connect(&address).expect("connect");
    drip.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let head = b"GET /v1/status HTTP/1.1\r\nHost: corridor\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let started = Instant::now();
    let mut closed_after = None;
    for byte in head.iter().take(head.len() - 1) {
        if drip.write_all(std::slice::from_ref(byte)).is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut answer = [0u8; 1];
        match drip.read(&mut answer) {
            Ok(0) => {
                closed_after = Some(started.elapsed());
                break;
            }
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                closed_after = Some(started.elapsed());
                break;
            }
            Ok(_) => panic!("the node answered a request whose head never ended"),
            Err(_) => {} // nothing yet: the read timed out
        }
        std::thread::sleep(Duration::from_millis(900));
    }
    let closed_after = closed_after.expect("the drip connection was never closed");
    assert!(
        closed_after >= Duration::from_millis(1_500) && closed_after < Duration::from_secs(10),
        "closed after {closed_after:?}, not at the 2 s head deadline"
    );
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_millis(1_000))
        .build()
        .expect("client");
    served_within_10_s(&fresh, &format!("{}/v1/status", node.rpc)).await;
}

/// `url` answers 200 to `client` within 10 s (once closed connections free their places).
async fn served_within_10_s(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(response) = client.get(url).send().await {
            assert_eq!(response.status().as_u16(), 200);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "closed connections did not free their places"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Per-account request rates: an account asking faster than its rate gets `429 rate_limited`,
/// while another account is served; the public status stays open.
#[tokio::test]
async fn an_account_over_its_request_rate_is_refused_and_others_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start_with(&dir.path().join("chain"), &["--account-requests-per-second", "5"]).await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(node.get_as(Some("acme@icbc-cn"), "/v1/accounts/acme@icbc-cn").await);
    }
    let served = statuses.iter().filter(|(status, _)| *status == 200).count();
    let limited: Vec<&(u16, serde_json::Value)> = statuses.iter().filter(|(status, _)| *status == 429).collect();
    assert!((5..20).contains(&served), "{served} of 20 served");
    assert_eq!(served + limited.len(), 20);
    assert!(
        limited
            .iter()
            .all(|(_, body)| error_code(body) == ErrorCode::RateLimited)
    );
    assert_eq!(
        node.get_as(Some("harbour@boc-hk"), "/v1/accounts/harbour@boc-hk")
            .await
            .0,
        200
    );
    assert_eq!(node.get_as(None, "/v1/status").await.0, 200);
}
