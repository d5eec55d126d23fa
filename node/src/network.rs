//! The node on the network: consensus messages, transaction gossip and block sync over the
//! libp2p transport (`p2p/`), for the consensus driver or the observer's follower.
//!
//! The rules it keeps:
//! - a peer is who genesis says its network key is: validator i, an observer, or nobody (the
//!   transport refuses nobody); consensus messages count only from validators, and carry the
//!   sender's validator index from that binding, never from the bytes;
//! - nothing from a peer is acted on before it is decoded within a limit; transactions go
//!   through the same admission as the API's (signature, nonce, funds);
//! - a peer that serves a batch that does not verify is dropped for `BAD_PEER_BAN_MS`;
//! - an admitted transaction reaches every validator even if its first gossip was lost: a
//!   peer that connects is offered the pool, and a transaction left unordered for
//!   `REGOSSIP_AGE_MS` is gossiped again (a lost transaction is a liveness bug, not a
//!   client's retry: it was answered `202`);
//! - the driver's thread never waits on the network: sends queue, requests run on the runtime.

use crate::chain::Chain;
use crate::driver::{Event, Transport, finalized_after};
use crate::genesis::Genesis;
use crate::metrics::{Stage, timed};
use crate::p2p::{self, Channel, Inbound, NetworkHandle, SYNC_RESPONSE_BYTES_MAX, TX_MESSAGE_BYTES_MAX};
use corridor_consensus::ValidatorIndex;
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::{PrivateKey, PublicKey, SignedTransaction, codec};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Transactions gossiped in one message at most.
const GOSSIP_BATCH_TXS_MAX: usize = 1024;
/// How long admitted transactions wait to be batched before they are gossiped.
const GOSSIP_BATCH_MS: u64 = 5;
/// Admitted transactions waiting to be gossiped; past it, gossip is dropped (the pool still
/// holds them, and this node proposes them when it leads).
const GOSSIP_QUEUE_TXS_MAX: usize = 100_000;
/// How often the pool is looked over for transactions to gossip again.
const REGOSSIP_INTERVAL_MS: u64 = 2_000;
/// How long a transaction waits unordered, since it was last gossiped, before it is gossiped
/// again: a peer that was down, paused or cut off when it was first sent has missed it.
const REGOSSIP_AGE_MS: u64 = 3_000;
/// Transactions gossiped again per look, at most.
const REGOSSIP_TXS_MAX: usize = 4 * GOSSIP_BATCH_TXS_MAX;
/// Transactions offered to a peer when it connects, at most (the rest follow by `REGOSSIP_*`).
const CONNECT_GOSSIP_TXS_MAX: usize = 16 * GOSSIP_BATCH_TXS_MAX;
/// How long a peer that served a bad batch is refused.
const BAD_PEER_BAN_MS: u64 = 60_000;
/// A sync request: the tag and the height after which blocks are wanted.
const SYNC_REQUEST_TAG: u8 = b'S';

/// Who a peer is, by genesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Validator(ValidatorIndex),
    Observer,
}

/// The network identities genesis lists.
pub(crate) struct Peers {
    validators: Vec<PeerId>,
    roles: BTreeMap<PeerId, Role>,
}

impl Peers {
    pub fn of(genesis: &Genesis) -> Result<Peers, Error> {
        let peer = |key: &PublicKey| -> Result<PeerId, Error> {
            let bytes: [u8; 32] = key
                .as_bytes()
                .try_into()
                .map_err(|_| Error::new(ErrorCode::BadPublicKey, "a network key is 32 bytes (Ed25519)"))?;
            p2p::peer_id_from_public(&bytes)
        };
        let mut validators = Vec::new();
        let mut roles = BTreeMap::new();
        for (index, validator) in genesis.validators.iter().enumerate() {
            let key = validator.network_key.as_ref().ok_or_else(|| {
                Error::new(
                    ErrorCode::BadRequest,
                    format!("validator {} has no network_key in genesis", validator.id),
                )
            })?;
            let id = peer(key)?;
            validators.push(id);
            let index = ValidatorIndex::try_from(index).expect("genesis bounds the validator count");
            roles.insert(id, Role::Validator(index));
        }
        for observer in &genesis.observers {
            roles.insert(peer(&observer.network_key)?, Role::Observer);
        }
        Ok(Peers { validators, roles })
    }

    pub fn role(&self, peer: &PeerId) -> Option<Role> {
        self.roles.get(peer).copied()
    }

    pub fn all(&self) -> BTreeSet<PeerId> {
        self.roles.keys().copied().collect()
    }
}

/// The 32-byte secret of an Ed25519 network key.
pub(crate) fn network_secret(key: &PrivateKey) -> Result<[u8; 32], Error> {
    match key {
        PrivateKey::Ed25519(key) => Ok(key.to_bytes()),
        _ => Err(Error::new(ErrorCode::BadRequest, "a network key is Ed25519")),
    }
}

/// A peer's address from config: a multiaddr ending in `/p2p/<peer id>`.
pub(crate) fn parse_peer(text: &str) -> Result<(PeerId, Multiaddr), Error> {
    let address: Multiaddr = text
        .parse()
        .map_err(|error| Error::new(ErrorCode::BadRequest, format!("peer {text}: {error}")))?;
    match address.iter().last() {
        Some(Protocol::P2p(peer)) => Ok((peer, address)),
        _ => Err(Error::new(
            ErrorCode::BadRequest,
            format!("peer {text} does not end in /p2p/<peer id>"),
        )),
    }
}

/// What `corridord run` needs to join the network.
pub(crate) struct Setup {
    pub secret_key: [u8; 32],
    pub listen: Multiaddr,
    pub peers: Vec<(PeerId, Multiaddr)>,
}

/// The driver's or follower's transport over the network.
pub(crate) struct NetTransport {
    handle: NetworkHandle,
    peers: Arc<Peers>,
    events: Arc<OnceLock<std::sync::mpsc::Sender<Event>>>,
    runtime: tokio::runtime::Handle,
    syncing: Arc<AtomicBool>,
    next_peer: AtomicUsize,
    /// The peers recent sync requests went to, by token (the token comes back with the
    /// answer, so a bad batch is blamed on the peer that served it).
    asked: Arc<parking_lot::Mutex<BTreeMap<u64, PeerId>>>,
    next_token: AtomicU64,
}

/// Sync requests remembered for blame.
const SYNC_REQUESTS_REMEMBERED_MAX: usize = 64;

impl Transport for NetTransport {
    /// The batch `source` served did not verify: drop that peer for a while.
    fn refused_catch_up(&self, source: u64) {
        if let Some(peer) = self.asked.lock().remove(&source) {
            tracing::warn!("peer {peer} served blocks that do not verify; dropped for {BAD_PEER_BAN_MS} ms");
            self.handle.ban(peer, Duration::from_millis(BAD_PEER_BAN_MS));
        }
    }

    fn send(&self, to: ValidatorIndex, bytes: Vec<u8>) {
        if let Some(peer) = self.peers.validators.get(usize::from(to)) {
            let _ = self.handle.send(*peer, Channel::Consensus, bytes);
        }
    }

    /// To every connected peer: validators and observers (who watch for finalizations).
    fn broadcast(&self, bytes: Vec<u8>) {
        self.handle.broadcast(Channel::Consensus, bytes);
    }

    /// One request at a time, to the next connected peer in turn.
    fn request_catch_up(&self, after_height: u64) {
        let connected = self.handle.connected();
        if connected.is_empty() || self.syncing.swap(true, Ordering::AcqRel) {
            return;
        }
        let peer = connected[self.next_peer.fetch_add(1, Ordering::Relaxed) % connected.len()];
        let source = self.next_token.fetch_add(1, Ordering::Relaxed);
        {
            let mut asked = self.asked.lock();
            asked.insert(source, peer);
            while asked.len() > SYNC_REQUESTS_REMEMBERED_MAX {
                asked.pop_first();
            }
        }
        let (handle, events, syncing) = (self.handle.clone(), Arc::clone(&self.events), Arc::clone(&self.syncing));
        let mut request = vec![SYNC_REQUEST_TAG];
        request.extend_from_slice(&after_height.to_be_bytes());
        self.runtime.spawn(async move {
            if let Ok(answer) = handle.request(peer, request).await
                && !answer.is_empty()
                && let Some(events) = events.get()
            {
                let _ = events.send(Event::CatchUp { bytes: answer, source });
            }
            syncing.store(false, Ordering::Release);
        });
    }
}

/// The running network: its handle and what the node hands its events to.
pub(crate) struct Network {
    pub handle: NetworkHandle,
    pub peers: Arc<Peers>,
    events: Arc<OnceLock<std::sync::mpsc::Sender<Event>>>,
}

impl Network {
    /// Join the network: start the transport (allowing exactly genesis's other nodes), gossip
    /// what this node admits, answer block sync from its store, and pass consensus messages
    /// on (once `connect` names the driver's or follower's event sender).
    pub async fn start(setup: Setup, chain: &Arc<Chain>) -> Result<Network, Error> {
        let peers = Arc::new(Peers::of(chain.genesis())?);
        let me = p2p::peer_id_of(&setup.secret_key);
        if peers.role(&me).is_none() {
            return Err(Error::new(
                ErrorCode::KeyMismatch,
                format!("this node's network key ({me}) is not in genesis"),
            ));
        }
        let mut allowed = peers.all();
        allowed.remove(&me);
        let config = p2p::NetworkConfig {
            stages: Arc::clone(&chain.metrics.stages),
            secret_key: setup.secret_key,
            listen: setup.listen,
            peers: setup
                .peers
                .into_iter()
                .filter(|(peer, _)| allowed.contains(peer))
                .collect(),
            allowed,
        };
        let (handle, inbound) = p2p::start(config).await?;
        let events = Arc::new(OnceLock::new());
        tokio::spawn(timed(
            Arc::clone(&chain.metrics.stages),
            Stage::Network,
            serve_inbound(
                inbound,
                handle.clone(),
                Arc::clone(&peers),
                Arc::clone(chain),
                Arc::clone(&events),
            ),
        ));
        start_gossip(chain, handle.clone());
        start_regossip(chain, handle.clone());
        Ok(Network { handle, peers, events })
    }

    /// The transport the driver or follower sends through.
    pub fn transport(&self) -> NetTransport {
        NetTransport {
            handle: self.handle.clone(),
            peers: Arc::clone(&self.peers),
            events: Arc::clone(&self.events),
            runtime: tokio::runtime::Handle::current(),
            syncing: Arc::new(AtomicBool::new(false)),
            next_peer: AtomicUsize::new(0),
            asked: Arc::default(),
            next_token: AtomicU64::new(1),
        }
    }

    /// From now on, peers' consensus messages and sync answers go to `events`.
    pub fn connect(&self, events: std::sync::mpsc::Sender<Event>) {
        let _ = self.events.set(events);
    }
}

/// Batches what this node admits and sends it to every peer.
fn start_gossip(chain: &Arc<Chain>, handle: NetworkHandle) {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<Vec<u8>>>(GOSSIP_QUEUE_TXS_MAX / 16);
    chain.gossip.set(Box::new(move |txs| {
        let _ = sender.try_send(txs);
    }));
    tokio::spawn(timed(Arc::clone(&chain.metrics.stages), Stage::Network, async move {
        while let Some(first) = receiver.recv().await {
            let mut batch = first;
            let deadline = tokio::time::Instant::now() + Duration::from_millis(GOSSIP_BATCH_MS);
            while batch.len() < GOSSIP_BATCH_TXS_MAX {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(more)) => batch.extend(more),
                    _ => break,
                }
            }
            for message in gossip_messages(batch) {
                handle.broadcast(Channel::Transactions, message);
            }
        }
    }));
}

/// Gossips again what has waited unordered too long (see `Mempool::gossip_due`).
fn start_regossip(chain: &Arc<Chain>, handle: NetworkHandle) {
    let chain = Arc::clone(chain);
    let stages = Arc::clone(&chain.metrics.stages);
    tokio::spawn(timed(stages, Stage::Network, async move {
        let mut tick = tokio::time::interval(Duration::from_millis(REGOSSIP_INTERVAL_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if handle.connected().is_empty() {
                continue; // nobody to tell; offered on connect
            }
            let chain = Arc::clone(&chain);
            let due = tokio::task::spawn_blocking(move || {
                let _timer = chain.metrics.stages.time(Stage::Network);
                chain
                    .mempool
                    .gossip_due(crate::chain::now_ms(), REGOSSIP_AGE_MS, REGOSSIP_TXS_MAX)
            })
            .await
            .unwrap_or_default();
            if !due.is_empty() {
                tracing::debug!(txs = due.len(), "gossiping unordered transactions again");
            }
            for message in gossip_messages(due) {
                handle.broadcast(Channel::Transactions, message);
            }
        }
    }));
}

/// Offers a peer that just connected what the pool holds: it may have been down when those
/// transactions were gossiped, or this node may have replayed them from its journal before any
/// peer was connected.
fn offer_pool(chain: &Chain, handle: &NetworkHandle, peer: PeerId) {
    let _timer = chain.metrics.stages.time(Stage::Network);
    let mut txs = chain.mempool.all_bytes();
    txs.truncate(CONNECT_GOSSIP_TXS_MAX);
    for message in gossip_messages(txs) {
        if handle.send(peer, Channel::Transactions, message).is_err() {
            break; // its queue is full; the rest follow by re-gossip
        }
    }
}

/// Transactions' bytes in messages of at most `GOSSIP_BATCH_TXS_MAX` transactions and
/// `TX_MESSAGE_BYTES_MAX` bytes.
fn gossip_messages(txs: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut current: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    for tx in txs {
        let full = current.len() >= GOSSIP_BATCH_TXS_MAX || bytes + tx.len() + 16 > TX_MESSAGE_BYTES_MAX;
        if full && !current.is_empty() {
            messages.push(codec::encode(&std::mem::take(&mut current)));
            bytes = 0;
        }
        bytes += tx.len() + 16;
        current.push(tx);
    }
    if !current.is_empty() {
        messages.push(codec::encode(&current));
    }
    messages
}

async fn serve_inbound(
    mut inbound: tokio::sync::mpsc::Receiver<Inbound>,
    handle: NetworkHandle,
    peers: Arc<Peers>,
    chain: Arc<Chain>,
    events: Arc<OnceLock<std::sync::mpsc::Sender<Event>>>,
) {
    while let Some(message) = inbound.recv().await {
        match message {
            Inbound::Message {
                from,
                channel: Channel::Consensus,
                bytes,
            } => {
                // Observers never vote: only validators' consensus messages count.
                if let (Some(Role::Validator(index)), Some(events)) = (peers.role(&from), events.get()) {
                    let _ = events.send(Event::Message { from: index, bytes });
                }
            }
            Inbound::Message {
                from,
                channel: Channel::Transactions,
                bytes,
            } => {
                let chain = Arc::clone(&chain);
                tokio::task::spawn_blocking(move || admit_gossip(&chain, from, &bytes));
            }
            Inbound::Request { from, bytes, respond } => {
                let chain = Arc::clone(&chain);
                tokio::task::spawn_blocking(move || {
                    if let Some(answer) = answer_sync(&chain, &bytes) {
                        let _ = respond.send(answer);
                    } else {
                        tracing::debug!("refused a malformed request from {from}");
                    }
                });
            }
            Inbound::Connected(peer) => {
                tracing::info!("peer {peer} ({:?}) connected", peers.role(&peer));
                let (chain, handle) = (Arc::clone(&chain), handle.clone());
                tokio::task::spawn_blocking(move || offer_pool(&chain, &handle, peer));
            }
            Inbound::Disconnected(peer) => tracing::info!("peer {peer} disconnected"),
        }
    }
}

/// Admit a peer's gossiped transactions like the API's (each checked in full); a message that
/// does not decode is dropped.
fn admit_gossip(chain: &Chain, from: PeerId, bytes: &[u8]) {
    let decoding = chain.metrics.stages.time(Stage::Decode);
    let Ok(encoded) = codec::decode::<Vec<Vec<u8>>>(bytes, TX_MESSAGE_BYTES_MAX) else {
        tracing::debug!("gossip from {from} does not decode");
        return;
    };
    let txs: Vec<SignedTransaction> = encoded
        .iter()
        .take(GOSSIP_BATCH_TXS_MAX)
        .filter_map(|tx| SignedTransaction::from_bytes(tx).ok())
        .collect();
    drop(decoding);
    chain.admit_from_peer(txs);
}

/// The answer to a sync request: finalized blocks above the asked height, or an empty answer
/// when there are none; `None` for a malformed request.
fn answer_sync(chain: &Chain, request: &[u8]) -> Option<Vec<u8>> {
    let _timer = chain.metrics.stages.time(Stage::Network);
    let (tag, height) = request.split_first()?;
    if *tag != SYNC_REQUEST_TAG {
        return None;
    }
    let after_height = u64::from_be_bytes(height.try_into().ok()?);
    Some(
        finalized_after(chain, after_height, SYNC_RESPONSE_BYTES_MAX)
            .map(|batch| corridor_consensus::encode_chain(&batch))
            .unwrap_or_default(),
    )
}
