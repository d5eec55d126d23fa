//! Loopback tests of the transport: real swarms on 127.0.0.1, every wait bounded.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use corridor_sdk::crypto::{PrivateKey, Scheme};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout};

use super::*;

/// Longest any one wait in these tests may take; reaching it fails the test.
const WAIT_MAX: Duration = Duration::from_secs(30);

struct Node {
    id: PeerId,
    address: Multiaddr,
    handle: NetworkHandle,
    inbound: mpsc::Receiver<Inbound>,
}

fn secret(seed: u8) -> [u8; 32] {
    [seed; 32]
}

fn loopback() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().expect("a loopback address")
}

async fn node_with(seed: u8, allowed: BTreeSet<PeerId>, peers: Vec<(PeerId, Multiaddr)>, limits: Limits) -> Node {
    let config = NetworkConfig {
        secret_key: secret(seed),
        listen: loopback(),
        peers,
        allowed,
        stages: Default::default(),
    };
    let (handle, inbound) = start_with(config, limits).await.expect("the node starts");
    let address = handle.listen_addrs().first().cloned().expect("a listen address");
    assert_eq!(handle.local_peer_id(), peer_id_of(&secret(seed)));
    Node {
        id: handle.local_peer_id(),
        address,
        handle,
        inbound,
    }
}

/// Nodes that all allow and dial one another.
async fn cluster(seeds: &[u8]) -> Vec<Node> {
    let ids: BTreeSet<PeerId> = seeds.iter().map(|seed| peer_id_of(&secret(*seed))).collect();
    let mut nodes = Vec::new();
    for seed in seeds {
        nodes.push(node_with(*seed, ids.clone(), Vec::new(), Limits::PROTOCOL).await);
    }
    let book: Vec<(PeerId, Multiaddr)> = nodes.iter().map(|node| (node.id, node.address.clone())).collect();
    for node in &nodes {
        node.handle.set_peers(book.clone(), ids.clone());
    }
    for node in &nodes {
        let others = seeds.len() - 1;
        eventually("a full mesh", || node.handle.connected().len() == others).await;
    }
    nodes
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    timeout(WAIT_MAX, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    within(what, async {
        while !condition() {
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// The next inbound item `pick` accepts; the items before it are skipped.
async fn next<T>(inbound: &mut mpsc::Receiver<Inbound>, mut pick: impl FnMut(Inbound) -> Option<T>) -> T {
    within("an inbound item", async {
        loop {
            let item = inbound.recv().await.expect("the network task runs");
            if let Some(picked) = pick(item) {
                return picked;
            }
        }
    })
    .await
}

async fn next_message(inbound: &mut mpsc::Receiver<Inbound>) -> (PeerId, Channel, Vec<u8>) {
    next(inbound, |item| match item {
        Inbound::Message { from, channel, bytes } => Some((from, channel, bytes)),
        _ => None,
    })
    .await
}

/// Everything waiting in the inbound queue, as (kind, peer) pairs.
fn drain(inbound: &mut mpsc::Receiver<Inbound>) -> Vec<(&'static str, PeerId)> {
    let mut items = Vec::new();
    while let Ok(item) = inbound.try_recv() {
        items.push(match item {
            Inbound::Message { from, .. } => ("message", from),
            Inbound::Request { from, .. } => ("request", from),
            Inbound::Connected(peer) => ("connected", peer),
            Inbound::Disconnected(peer) => ("disconnected", peer),
        });
    }
    items
}

#[tokio::test]
async fn three_validators_exchange_messages_and_requests() {
    let mut nodes = cluster(&[1, 2, 3]).await;
    let ids: Vec<PeerId> = nodes.iter().map(|node| node.id).collect();

    nodes[0]
        .handle
        .send(ids[1], Channel::Consensus, b"notarize view 7".to_vec())
        .expect("queued");
    assert_eq!(
        next_message(&mut nodes[1].inbound).await,
        (ids[0], Channel::Consensus, b"notarize view 7".to_vec())
    );

    nodes[0]
        .handle
        .send(ids[2], Channel::Transactions, b"tx batch".to_vec())
        .expect("queued");
    assert_eq!(
        next_message(&mut nodes[2].inbound).await,
        (ids[0], Channel::Transactions, b"tx batch".to_vec())
    );

    nodes[2].handle.broadcast(Channel::Consensus, b"proposal".to_vec());
    for receiver in [0, 1] {
        let expected = (ids[2], Channel::Consensus, b"proposal".to_vec());
        assert_eq!(next_message(&mut nodes[receiver].inbound).await, expected);
    }

    // Block sync: node 1 asks node 0, whose driver answers.
    let (asker, first) = (nodes[1].handle.clone(), ids[0]);
    let asked = tokio::spawn(async move { asker.request(first, b"blocks after 7".to_vec()).await });
    let (from, question, respond) = next(&mut nodes[0].inbound, |item| match item {
        Inbound::Request { from, bytes, respond } => Some((from, bytes, respond)),
        _ => None,
    })
    .await;
    assert_eq!((from, question.as_slice()), (ids[1], &b"blocks after 7"[..]));
    respond
        .send(b"blocks 8 and 9".to_vec())
        .expect("the transport waits for the answer");
    let answer = within("the answer", asked).await.expect("the asking task ran");
    assert_eq!(answer, Ok(b"blocks 8 and 9".to_vec()));

    // A driver that drops `respond` refuses the request.
    let asker = nodes[2].handle.clone();
    let asked = tokio::spawn(async move { asker.request(first, b"validator proof".to_vec()).await });
    drop(
        next(&mut nodes[0].inbound, |item| {
            matches!(item, Inbound::Request { .. }).then_some(item)
        })
        .await,
    );
    let answer = within("the refusal", asked).await.expect("the asking task ran");
    assert_eq!(answer, Err(RequestError::Refused));

    // Acks travel back after delivery, so the senders' counts settle a little later.
    eventually("node 0's counts", || {
        let stats = nodes[0].handle.stats();
        (
            stats.consensus.messages_out,
            stats.transactions.messages_out,
            stats.sync.messages_in,
        ) == (1, 1, 2)
    })
    .await;
    eventually("node 1's counts", || {
        let stats = nodes[1].handle.stats();
        (
            stats.consensus.messages_in,
            stats.sync.messages_out,
            stats.sync.undelivered,
        ) == (2, 1, 0)
    })
    .await;
}

#[tokio::test]
async fn an_outsider_can_neither_connect_nor_be_dialed() {
    let mut nodes = cluster(&[11, 12, 13]).await;
    let members: BTreeSet<PeerId> = nodes.iter().map(|node| node.id).collect();
    let book: Vec<(PeerId, Multiaddr)> = nodes.iter().map(|node| (node.id, node.address.clone())).collect();

    // The outsider allows the members and dials them all; each member refuses it.
    let mut outsider = node_with(14, members.clone(), book.clone(), Limits::PROTOCOL).await;
    outsider
        .handle
        .send(nodes[0].id, Channel::Consensus, b"forged vote".to_vec())
        .expect("queued at the outsider");
    for node in &nodes {
        eventually("the outsider refused", || node.handle.stats().connections_refused >= 1).await;
    }

    // A member told to dial someone it does not allow never does, though that one would accept.
    let mut stranger = node_with(15, BTreeSet::from([nodes[0].id]), Vec::new(), Limits::PROTOCOL).await;
    let mut book_with_stranger = book.clone();
    book_with_stranger.push((stranger.id, stranger.address.clone()));
    nodes[0].handle.set_peers(book_with_stranger, members.clone());
    assert_eq!(
        nodes[0].handle.send(stranger.id, Channel::Consensus, vec![1]),
        Err(SendError::NotAllowed)
    );
    assert_eq!(
        nodes[0].handle.request(stranger.id, vec![1]).await,
        Err(RequestError::NotAllowed)
    );

    // Let the outsider's redials and the member's dial loop run a while.
    sleep(Duration::from_millis(1_500)).await;
    for node in &mut nodes {
        assert!(!node.handle.connected().contains(&outsider.id));
        assert!(!node.handle.connected().contains(&stranger.id));
        let seen = drain(&mut node.inbound);
        assert!(
            !seen
                .iter()
                .any(|(_, peer)| *peer == outsider.id || *peer == stranger.id),
            "{seen:?}"
        );
        assert_eq!(node.handle.stats().consensus.messages_in, 0);
    }
    assert!(stranger.handle.connected().is_empty());
    assert_eq!(
        stranger.handle.stats().connections_refused,
        0,
        "nobody dialed the stranger"
    );
    assert!(drain(&mut stranger.inbound).is_empty());
    // The outsider may see its own dials succeed for a moment before the member closes them.
    assert!(!drain(&mut outsider.inbound).iter().any(|(kind, _)| *kind == "message"));
    assert_eq!(
        outsider.handle.stats().consensus.messages_out,
        0,
        "its message was never acknowledged"
    );
}

#[tokio::test]
async fn oversized_messages_are_refused_both_ways() {
    let ids = BTreeSet::from([peer_id_of(&secret(21)), peer_id_of(&secret(22))]);
    let small_limits = Limits {
        tx_message_bytes_max: 1024,
        sync_response_bytes_max: 1024,
        ..Limits::PROTOCOL
    };
    let mut small = node_with(21, ids.clone(), Vec::new(), small_limits).await;
    let mut large = node_with(
        22,
        ids.clone(),
        vec![(small.id, small.address.clone())],
        Limits::PROTOCOL,
    )
    .await;
    eventually("connected", || large.handle.connected() == [small.id]).await;

    // Outbound: refused before it is queued.
    let too_large = vec![0; TX_MESSAGE_BYTES_MAX + 1];
    assert_eq!(
        large.handle.send(small.id, Channel::Transactions, too_large),
        Err(SendError::TooLarge)
    );
    let consensus_too_large = vec![0; CONSENSUS_MESSAGE_BYTES_MAX + 1];
    assert_eq!(
        large.handle.send(small.id, Channel::Consensus, consensus_too_large),
        Err(SendError::TooLarge)
    );
    assert_eq!(
        large.handle.request(small.id, vec![0; REQUEST_BYTES_MAX + 1]).await,
        Err(RequestError::TooLarge)
    );
    let stats = large.handle.stats();
    assert_eq!(
        (stats.transactions.dropped_oversized, stats.consensus.dropped_oversized),
        (1, 1)
    );
    assert_eq!(stats.sync.dropped_oversized, 1);

    // Inbound: a frame over the receiver's limit is refused as its length is read.
    large
        .handle
        .send(small.id, Channel::Transactions, vec![7; 2048])
        .expect("within the sender's limit");
    eventually("the refusal", || {
        small.handle.stats().transactions.dropped_oversized == 1
    })
    .await;
    eventually("the sender's count", || {
        large.handle.stats().transactions.undelivered == 1
    })
    .await;
    large
        .handle
        .send(small.id, Channel::Transactions, b"small".to_vec())
        .expect("queued");
    assert_eq!(
        next_message(&mut small.inbound).await,
        (large.id, Channel::Transactions, b"small".to_vec())
    );

    // An answer over the asker's limit.
    let asker = small.handle.clone();
    let large_id = large.id;
    let asked = tokio::spawn(async move { asker.request(large_id, b"blocks".to_vec()).await });
    let respond = next(&mut large.inbound, |item| match item {
        Inbound::Request { respond, .. } => Some(respond),
        _ => None,
    })
    .await;
    respond.send(vec![9; 2048]).expect("the transport waits for the answer");
    assert_eq!(
        within("the refusal", asked).await.expect("ran"),
        Err(RequestError::TooLarge)
    );
    assert_eq!(small.handle.stats().sync.dropped_oversized, 1);
}

#[tokio::test]
async fn a_peer_removed_from_the_allow_list_is_disconnected() {
    let mut nodes = cluster(&[31, 32]).await;
    let (first, second) = (nodes[0].id, nodes[1].id);
    nodes[0].handle.set_peers(Vec::new(), BTreeSet::new());
    next(&mut nodes[0].inbound, |item| {
        matches!(item, Inbound::Disconnected(peer) if peer == second).then_some(())
    })
    .await;
    next(&mut nodes[1].inbound, |item| {
        matches!(item, Inbound::Disconnected(peer) if peer == first).then_some(())
    })
    .await;
    assert_eq!(
        nodes[0].handle.send(second, Channel::Consensus, vec![1]),
        Err(SendError::NotAllowed)
    );
    // The removed peer still dials; it is refused every time.
    eventually("a refused redial", || nodes[0].handle.stats().connections_refused >= 1).await;
    assert!(nodes[0].handle.connected().is_empty());
    assert!(!drain(&mut nodes[0].inbound).contains(&("connected", second)));
}

#[tokio::test]
async fn a_banned_peer_is_refused_until_the_ban_ends() {
    let mut nodes = cluster(&[41, 42]).await;
    let (first, second) = (nodes[0].id, nodes[1].id);
    nodes[0].handle.ban(second, Duration::from_secs(1));
    next(&mut nodes[0].inbound, |item| {
        matches!(item, Inbound::Disconnected(peer) if peer == second).then_some(())
    })
    .await;
    assert_eq!(
        nodes[0].handle.send(second, Channel::Consensus, vec![1]),
        Err(SendError::NotAllowed)
    );
    eventually("a refused redial", || nodes[0].handle.stats().connections_refused >= 1).await;

    // The ban ends: the banning node dials the peer again, and messages flow.
    next(&mut nodes[0].inbound, |item| {
        matches!(item, Inbound::Connected(peer) if peer == second).then_some(())
    })
    .await;
    nodes[0]
        .handle
        .send(second, Channel::Consensus, b"welcome back".to_vec())
        .expect("queued");
    assert_eq!(
        next_message(&mut nodes[1].inbound).await,
        (first, Channel::Consensus, b"welcome back".to_vec())
    );
}

#[tokio::test]
async fn a_message_to_a_disconnected_peer_waits_for_the_redial() {
    let ids = BTreeSet::from([peer_id_of(&secret(51)), peer_id_of(&secret(52))]);
    let mut receiver = node_with(51, ids.clone(), Vec::new(), Limits::PROTOCOL).await;
    let sender = node_with(52, ids.clone(), Vec::new(), Limits::PROTOCOL).await;
    sender
        .handle
        .send(receiver.id, Channel::Consensus, b"early".to_vec())
        .expect("queued while disconnected");
    sender
        .handle
        .set_peers(vec![(receiver.id, receiver.address.clone())], ids);
    assert_eq!(
        next_message(&mut receiver.inbound).await,
        (sender.id, Channel::Consensus, b"early".to_vec())
    );
}

#[tokio::test]
async fn a_full_peer_queue_refuses_without_blocking() {
    let absent = peer_id_of(&secret(82));
    let node = node_with(81, BTreeSet::from([absent]), Vec::new(), Limits::PROTOCOL).await;
    for _ in 0..TX_QUEUE_MESSAGES_MAX {
        node.handle
            .send(absent, Channel::Transactions, vec![1])
            .expect("room in the queue");
    }
    assert_eq!(
        node.handle.send(absent, Channel::Transactions, vec![1]),
        Err(SendError::Full)
    );
    // Each channel has its own queue.
    node.handle
        .send(absent, Channel::Consensus, vec![1])
        .expect("room in the consensus queue");
    assert_eq!(node.handle.stats().transactions.dropped_queue_full, 1);
    // Removing the peer empties its queues.
    node.handle.set_peers(Vec::new(), BTreeSet::new());
    eventually("the queue dropped", || {
        node.handle.stats().transactions.undelivered == TX_QUEUE_MESSAGES_MAX as u64
    })
    .await;
    assert_eq!(
        node.handle.send(absent, Channel::Transactions, vec![1]),
        Err(SendError::NotAllowed)
    );
}

#[test]
fn a_peer_id_comes_from_the_public_key_in_genesis() {
    let secret_key = secret(61);
    let public = keypair_of(&secret_key)
        .public()
        .try_into_ed25519()
        .expect("an ed25519 key")
        .to_bytes();
    assert_eq!(
        peer_id_from_public(&public).expect("a valid key"),
        peer_id_of(&secret_key)
    );
    assert_ne!(peer_id_of(&secret(62)), peer_id_of(&secret_key));
    // The identity point (y = 1) is of small order.
    let mut small_order = [0u8; 32];
    small_order[0] = 1;
    let refused = peer_id_from_public(&small_order).expect_err("a small-order key");
    assert_eq!(refused.code, ErrorCode::BadPublicKey);
}

#[test]
fn a_validator_binds_its_consensus_key_to_its_peer_id() {
    let peer = peer_id_of(&secret(71));
    let genesis_hash = [0xab; 32];
    let bytes = validator_proof_bytes(&genesis_hash, &peer);
    // Pinned: the domain tag, the genesis hash, the PeerId's multihash (identity, 36 bytes).
    assert_eq!(hex::encode(&bytes), VALIDATOR_PROOF_FIXTURE_HEX);
    assert!(bytes.starts_with(b"corridor/validator-proof/v1"));

    // An SM2 consensus key signs it; the proof does not carry over to another PeerId or chain.
    let key = PrivateKey::from_seed(Scheme::Sm2, [5; 32]).expect("an SM2 key");
    let signature = key.sign(&bytes);
    key.public_key().verify(&bytes, &signature).expect("the proof verifies");
    let other_peer = validator_proof_bytes(&genesis_hash, &peer_id_of(&secret(72)));
    assert!(key.public_key().verify(&other_peer, &signature).is_err());
    let other_chain = validator_proof_bytes(&[0xac; 32], &peer);
    assert!(key.public_key().verify(&other_chain, &signature).is_err());
}

/// `"corridor/validator-proof/v1"`, the genesis hash, then the PeerId: identity multihash
/// (`00`, 36 bytes) of the protobuf public key (`08 01`: Ed25519, `12 20`: 32 bytes of key).
const VALIDATOR_PROOF_FIXTURE_HEX: &str = concat!(
    "636f727269646f722f76616c696461746f722d70726f6f662f7631",
    "abababababababababababababababababababababababababababababababab",
    "002408011220",
    "e28a8970753332bd72fef413e6b0b2ef1b4aadda7aa2c141f233712a6876b351",
);

#[test]
fn errors_crossing_into_the_node_have_stable_codes() {
    assert_eq!(Error::from(SendError::Full).code, ErrorCode::Busy);
    assert_eq!(Error::from(SendError::TooLarge).code, ErrorCode::TooLarge);
    assert_eq!(Error::from(RequestError::NotAllowed).code, ErrorCode::Forbidden);
    assert_eq!(Error::from(RequestError::Timeout).code, ErrorCode::Unavailable);
}

#[test]
fn a_peer_queue_is_bounded_in_messages_and_bytes() {
    let mut book = Book::default();
    let peer = PeerId::random();
    for _ in 0..TX_QUEUE_MESSAGES_MAX {
        assert!(book.reserve(peer, Lane::Transactions, 1));
    }
    assert!(!book.reserve(peer, Lane::Transactions, 1));
    book.release(peer, Lane::Transactions, 1);
    assert!(book.reserve(peer, Lane::Transactions, 1));
    for _ in 0..16 {
        assert!(book.reserve(peer, Lane::Consensus, CONSENSUS_MESSAGE_BYTES_MAX));
    }
    assert!(!book.reserve(peer, Lane::Consensus, 1), "the byte bound holds");
}
