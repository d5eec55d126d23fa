//! The validator-to-validator transport: libp2p over TCP, noise and yamux (ADR 0040).
//!
//! The rule this module keeps: only the peers on the allow list (and not banned) hold a
//! connection, in either direction; everything a peer sends passes a size limit, a rate limit
//! and a bounded queue before the driver sees it, and everything this node sends waits in a
//! bounded per-peer queue. Nothing here verifies what a message says: the driver verifies every
//! message where its bytes enter (DESIGN.md, "Verify at the boundary").
//!
//! Each kind of traffic has its own request-response protocol: `/corridor/consensus/1` and
//! `/corridor/tx/1` carry one-way messages answered by an empty ack, `/corridor/sync/1` carries
//! requests the driver answers (block sync, validator proofs).

// The node (network.rs) uses the transport; `set_peers` (validator-set changes by governance),
// `stats` (not yet exported as metrics) and the validator proof are reached from tests only
// until those land (issue 7's notes).
#![allow(dead_code)]

mod codec;
mod flow;
mod stats;
mod swarm;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use corridor_sdk::error::{Error, ErrorCode};
use libp2p::{Multiaddr, PeerId, identity};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

pub(crate) use stats::NetworkStats;

/// Largest consensus message: a proposal carrying a full block payload with its certificate.
pub(crate) const CONSENSUS_MESSAGE_BYTES_MAX: usize = corridor_consensus::limits::MESSAGE_BYTES_MAX;
/// Largest transactions message: a batch of gossiped transactions (eight of the largest).
pub(crate) const TX_MESSAGE_BYTES_MAX: usize = 1024 * 1024;
/// Largest request (a block-sync range, a validator-proof challenge).
pub(crate) const REQUEST_BYTES_MAX: usize = 64 * 1024;
/// Largest answer to a request. A catch-up batch may hold up to `CATCH_UP_BLOCKS_MAX` (256)
/// blocks of up to 4 MiB each; the serving driver stops adding blocks before this limit, which
/// always holds at least one full block with its finality proof.
pub(crate) const SYNC_RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// The acknowledgement of a one-way message is empty.
const ACK_BYTES_MAX: usize = 0;

/// Consensus messages queued (or in flight) to one peer.
const CONSENSUS_QUEUE_MESSAGES_MAX: usize = 1024;
/// Bytes of consensus messages queued (or in flight) to one peer: 16 full proposals.
const CONSENSUS_QUEUE_BYTES_MAX: usize = 16 * CONSENSUS_MESSAGE_BYTES_MAX;
/// Transactions messages queued (or in flight) to one peer.
const TX_QUEUE_MESSAGES_MAX: usize = 256;
/// Bytes of transactions messages queued (or in flight) to one peer.
const TX_QUEUE_BYTES_MAX: usize = 32 * TX_MESSAGE_BYTES_MAX;
/// Requests waiting for an answer from one peer.
const REQUESTS_PENDING_MAX: usize = 16;
/// Bytes of requests waiting for an answer from one peer.
const REQUESTS_PENDING_BYTES_MAX: usize = REQUESTS_PENDING_MAX * REQUEST_BYTES_MAX;
/// Messages of one channel on the wire to one peer at once; the rest wait in its queue.
const STREAMS_IN_FLIGHT_MAX: usize = 16;

/// Consensus messages a second one peer may send (a view has a handful per validator, plus
/// answers; this is ample for views of a few milliseconds).
const CONSENSUS_MESSAGES_PER_SECOND: u64 = 1_000;
/// Consensus messages one peer may send in a burst.
const CONSENSUS_MESSAGES_BURST: u64 = 2_000;
/// Transactions messages a second one peer may send.
const TX_MESSAGES_PER_SECOND: u64 = 200;
/// Transactions messages one peer may send in a burst.
const TX_MESSAGES_BURST: u64 = 400;
/// Requests a second one peer may send.
const REQUESTS_PER_SECOND: u64 = 20;
/// Requests one peer may send in a burst.
const REQUESTS_BURST: u64 = 40;

/// Items in the channel to the driver.
const INBOUND_QUEUE_ITEMS_MAX: usize = 4096;
/// Free places in that channel that transactions messages may not take.
const INBOUND_RESERVED_ITEMS: usize = 1024;
/// Consensus messages, requests and connection events held while the driver's channel is full.
const INBOUND_OVERFLOW_ITEMS_MAX: usize = 1024;
/// Requests waiting for the driver's answer.
const ANSWERS_PENDING_MAX: usize = 1024;

/// Time for a one-way message to be written and acknowledged. A peer that misses it is taken
/// for dead: its connections are closed and redialed.
const MESSAGE_TIMEOUT_MS: u64 = 10_000;
/// Time for a request to be written, answered by the peer's driver and read back.
const REQUEST_TIMEOUT_MS: u64 = 60_000;
/// First delay before redialing a peer that dropped or could not be dialed.
const REDIAL_DELAY_MS_MIN: u64 = 100;
/// Longest delay between redials.
const REDIAL_DELAY_MS_MAX: u64 = 30_000;
/// How often the swarm task redials, lifts expired bans and checks on the driver.
const MAINTENANCE_INTERVAL_MS: u64 = 100;
/// Time `start` waits for the listener to come up.
const LISTEN_TIMEOUT_MS: u64 = 5_000;
/// An established connection without traffic stays open this long (peers are few and fixed).
const CONNECTION_IDLE_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;
/// Connections to one peer: two when both dial at once.
const CONNECTIONS_PER_PEER_MAX: u32 = 2;
/// Connections being set up by remote dialers (before their identity is known).
const CONNECTIONS_PENDING_INBOUND_MAX: u32 = 64;
/// Peers on the allow list.
const PEERS_MAX: usize = corridor_consensus::limits::VALIDATORS_MAX;

/// Domain tag of the bytes that bind a validator's consensus key to its network identity.
const VALIDATOR_PROOF_DOMAIN: &[u8] = b"corridor/validator-proof/v1";

/// Which traffic a message belongs to; each has its own size limit, queue and rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Channel {
    Consensus,
    Transactions,
}

/// A channel or the request lane: the unit of limits, queues and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Lane {
    Consensus,
    Transactions,
    Sync,
}

impl From<Channel> for Lane {
    fn from(channel: Channel) -> Lane {
        match channel {
            Channel::Consensus => Lane::Consensus,
            Channel::Transactions => Lane::Transactions,
        }
    }
}

/// Byte limits of the protocols; tests raise one to send what a peer must refuse.
#[derive(Clone, Copy, Debug)]
struct Limits {
    consensus_message_bytes_max: usize,
    tx_message_bytes_max: usize,
    request_bytes_max: usize,
    sync_response_bytes_max: usize,
}

impl Limits {
    const PROTOCOL: Limits = Limits {
        consensus_message_bytes_max: CONSENSUS_MESSAGE_BYTES_MAX,
        tx_message_bytes_max: TX_MESSAGE_BYTES_MAX,
        request_bytes_max: REQUEST_BYTES_MAX,
        sync_response_bytes_max: SYNC_RESPONSE_BYTES_MAX,
    };

    /// Largest outbound message (or request) on a lane.
    fn message_bytes_max(&self, lane: Lane) -> usize {
        match lane {
            Lane::Consensus => self.consensus_message_bytes_max,
            Lane::Transactions => self.tx_message_bytes_max,
            Lane::Sync => self.request_bytes_max,
        }
    }
}

/// The outbound queue bounds of a lane, per peer: (messages, bytes).
fn queue_bounds(lane: Lane) -> (usize, usize) {
    match lane {
        Lane::Consensus => (CONSENSUS_QUEUE_MESSAGES_MAX, CONSENSUS_QUEUE_BYTES_MAX),
        Lane::Transactions => (TX_QUEUE_MESSAGES_MAX, TX_QUEUE_BYTES_MAX),
        Lane::Sync => (REQUESTS_PENDING_MAX, REQUESTS_PENDING_BYTES_MAX),
    }
}

pub(crate) struct NetworkConfig {
    /// The node's Ed25519 network secret key (32 bytes); its PeerId is derived from it.
    pub secret_key: [u8; 32],
    /// Where to listen, e.g. /ip4/127.0.0.1/tcp/0 in tests.
    pub listen: Multiaddr,
    /// Peers to dial and keep connected (redialed with back-off when the connection drops).
    pub peers: Vec<(PeerId, Multiaddr)>,
    /// The only PeerIds allowed to connect, inbound or outbound.
    pub allowed: BTreeSet<PeerId>,
    /// Where the swarm's and the connections' CPU time is counted (`Stage::Network`).
    pub stages: Arc<crate::metrics::Stages>,
}

pub(crate) enum Inbound {
    /// A message on a channel from an authenticated (allowed) peer.
    Message {
        from: PeerId,
        channel: Channel,
        bytes: Vec<u8>,
    },
    /// A request (block sync, validator proof) the driver must answer with `respond`. Dropping
    /// `respond` refuses the request.
    Request {
        from: PeerId,
        bytes: Vec<u8>,
        respond: oneshot::Sender<Vec<u8>>,
    },
    Connected(PeerId),
    Disconnected(PeerId),
}

/// Why a message was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SendError {
    #[error("the peer's outbound queue is full")]
    Full,
    #[error("the message is over the channel's size limit")]
    TooLarge,
    #[error("the peer is not allowed (or is banned)")]
    NotAllowed,
    #[error("the network task has stopped")]
    Stopped,
}

/// Why a request got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RequestError {
    #[error("the request or its answer is over the size limit")]
    TooLarge,
    #[error("the peer is not allowed (or is banned)")]
    NotAllowed,
    #[error("too many requests are waiting on the peer")]
    Busy,
    #[error("the peer did not answer in time")]
    Timeout,
    #[error("the peer refused the request")]
    Refused,
    #[error("the peer is not connected")]
    Disconnected,
    #[error("the network task has stopped")]
    Stopped,
}

impl From<SendError> for Error {
    fn from(error: SendError) -> Error {
        let code = match error {
            SendError::Full => ErrorCode::Busy,
            SendError::TooLarge => ErrorCode::TooLarge,
            SendError::NotAllowed => ErrorCode::Forbidden,
            SendError::Stopped => ErrorCode::Unavailable,
        };
        Error::new(code, error.to_string())
    }
}

impl From<RequestError> for Error {
    fn from(error: RequestError) -> Error {
        let code = match error {
            RequestError::TooLarge => ErrorCode::TooLarge,
            RequestError::NotAllowed => ErrorCode::Forbidden,
            RequestError::Busy => ErrorCode::Busy,
            RequestError::Timeout | RequestError::Refused | RequestError::Disconnected | RequestError::Stopped => {
                ErrorCode::Unavailable
            }
        };
        Error::new(code, error.to_string())
    }
}

/// What the handle asks of the swarm task.
enum Command {
    Send {
        to: PeerId,
        lane: Lane,
        bytes: Vec<u8>,
    },
    Request {
        to: PeerId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, RequestError>>,
    },
    SetPeers {
        peers: Vec<(PeerId, Multiaddr)>,
        allowed: BTreeSet<PeerId>,
    },
    Ban {
        peer: PeerId,
        ban: Duration,
    },
}

/// Messages and bytes queued or in flight to one peer on one lane.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    messages: usize,
    bytes: usize,
}

/// State the handle reads and the swarm task writes.
#[derive(Default)]
struct Book {
    listen_addrs: Vec<Multiaddr>,
    connected: BTreeSet<PeerId>,
    /// Allowed and not banned: the peers a message may be queued to.
    permitted: BTreeSet<PeerId>,
    usage: HashMap<(PeerId, Lane), Usage>,
}

impl Book {
    /// Reserves room for one message in the peer's queue.
    fn reserve(&mut self, peer: PeerId, lane: Lane, bytes: usize) -> bool {
        let (messages_max, bytes_max) = queue_bounds(lane);
        let usage = self.usage.entry((peer, lane)).or_default();
        if usage.messages >= messages_max || usage.bytes.saturating_add(bytes) > bytes_max {
            return false;
        }
        usage.messages += 1;
        usage.bytes += bytes;
        true
    }

    /// Gives back what `reserve` took, once the message is acknowledged, failed or dropped.
    fn release(&mut self, peer: PeerId, lane: Lane, bytes: usize) {
        let usage = self.usage.entry((peer, lane)).or_default();
        assert!(
            usage.messages >= 1 && usage.bytes >= bytes,
            "released more than was reserved"
        );
        usage.messages -= 1;
        usage.bytes -= bytes;
        if usage.messages == 0 {
            self.usage.remove(&(peer, lane));
        }
    }
}

/// What the handle and the swarm task share.
struct Shared {
    book: Mutex<Book>,
    counters: Arc<stats::Counters>,
    limits: Limits,
}

struct HandleInner {
    local_peer_id: PeerId,
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
}

/// The driver's side of the transport. Cheap to clone; the swarm task stops when the last clone
/// is dropped.
#[derive(Clone)]
pub(crate) struct NetworkHandle {
    inner: Arc<HandleInner>,
}

impl NetworkHandle {
    pub fn local_peer_id(&self) -> PeerId {
        self.inner.local_peer_id
    }

    /// The addresses actually listened on (after port 0 is resolved).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.inner.shared.book.lock().listen_addrs.clone()
    }

    /// Queues a message to one peer; `Err(Full)` when that peer's bounded queue is full. Never
    /// blocks. A message to a peer that is not connected waits in its queue for the redial.
    pub fn send(&self, to: PeerId, channel: Channel, bytes: Vec<u8>) -> Result<(), SendError> {
        let lane = Lane::from(channel);
        let counters = self.inner.shared.counters.lane(lane);
        if bytes.len() > self.inner.shared.limits.message_bytes_max(lane) {
            counters.count_oversized();
            return Err(SendError::TooLarge);
        }
        let length = bytes.len();
        self.reserve(to, lane, length).inspect_err(|error| {
            if *error == SendError::Full {
                counters.count_queue_full();
            }
        })?;
        self.command(Command::Send { to, lane, bytes })
            .inspect_err(|_| self.release(to, lane, length))
    }

    /// Queues a message to every connected allowed peer; a full queue drops it for that peer
    /// (counted).
    pub fn broadcast(&self, channel: Channel, bytes: Vec<u8>) {
        for peer in self.connected() {
            // Failures are counted by `send`; a broadcast is best effort per peer.
            let _ = self.send(peer, channel, bytes.clone());
        }
    }

    /// Asks one peer; the answer, or why there is none.
    pub async fn request(&self, to: PeerId, bytes: Vec<u8>) -> Result<Vec<u8>, RequestError> {
        if bytes.len() > self.inner.shared.limits.request_bytes_max {
            self.inner.shared.counters.lane(Lane::Sync).count_oversized();
            return Err(RequestError::TooLarge);
        }
        self.reserve(to, Lane::Sync, bytes.len()).map_err(|error| match error {
            SendError::Full => RequestError::Busy,
            SendError::NotAllowed => RequestError::NotAllowed,
            SendError::TooLarge => RequestError::TooLarge,
            SendError::Stopped => RequestError::Stopped,
        })?;
        let (reply, answer) = oneshot::channel();
        let length = bytes.len();
        self.command(Command::Request { to, bytes, reply }).map_err(|_| {
            self.release(to, Lane::Sync, length);
            RequestError::Stopped
        })?;
        answer.await.unwrap_or(Err(RequestError::Stopped))
    }

    /// Replaces the allow list (validator-set change): disconnects peers no longer allowed and
    /// dials the new `peers`.
    pub fn set_peers(&self, peers: Vec<(PeerId, Multiaddr)>, allowed: BTreeSet<PeerId>) {
        // A stopped task has nothing left to connect.
        let _ = self.command(Command::SetPeers { peers, allowed });
    }

    /// Currently connected peers.
    pub fn connected(&self) -> Vec<PeerId> {
        self.inner.shared.book.lock().connected.iter().copied().collect()
    }

    /// Drops a misbehaving peer (e.g. it served bad blocks): disconnects it and refuses it,
    /// both ways, for `ban`.
    pub fn ban(&self, peer: PeerId, ban: Duration) {
        let _ = self.command(Command::Ban { peer, ban });
    }

    pub fn stats(&self) -> NetworkStats {
        self.inner.shared.counters.snapshot()
    }

    fn reserve(&self, to: PeerId, lane: Lane, bytes: usize) -> Result<(), SendError> {
        let mut book = self.inner.shared.book.lock();
        if !book.permitted.contains(&to) {
            return Err(SendError::NotAllowed);
        }
        if !book.reserve(to, lane, bytes) {
            return Err(SendError::Full);
        }
        Ok(())
    }

    fn release(&self, to: PeerId, lane: Lane, bytes: usize) {
        self.inner.shared.book.lock().release(to, lane, bytes);
    }

    fn command(&self, command: Command) -> Result<(), SendError> {
        self.inner.commands.send(command).map_err(|_| SendError::Stopped)
    }
}

/// Starts the swarm on the current tokio runtime; returns once listening.
pub(crate) async fn start(config: NetworkConfig) -> Result<(NetworkHandle, mpsc::Receiver<Inbound>), Error> {
    start_with(config, Limits::PROTOCOL).await
}

async fn start_with(config: NetworkConfig, limits: Limits) -> Result<(NetworkHandle, mpsc::Receiver<Inbound>), Error> {
    if config.allowed.len() > PEERS_MAX {
        return Err(Error::new(
            ErrorCode::LimitExceeded,
            format!("{} allowed peers, at most {PEERS_MAX}", config.allowed.len()),
        ));
    }
    let shared = Arc::new(Shared {
        book: Mutex::new(Book::default()),
        counters: Arc::new(stats::Counters::default()),
        limits,
    });
    let (commands, command_receiver) = mpsc::unbounded_channel();
    let (inbound, inbound_receiver) = mpsc::channel(INBOUND_QUEUE_ITEMS_MAX);
    let local_peer_id = swarm::spawn(config, Arc::clone(&shared), command_receiver, inbound).await?;
    let handle = NetworkHandle {
        inner: Arc::new(HandleInner {
            local_peer_id,
            commands,
            shared,
        }),
    };
    Ok((handle, inbound_receiver))
}

fn keypair_of(secret_key: &[u8; 32]) -> identity::Keypair {
    let mut secret = *secret_key; // zeroized by libp2p as it is read
    identity::Keypair::ed25519_from_bytes(&mut secret).expect("any 32 bytes are an Ed25519 secret key")
}

/// The PeerId of the node with this Ed25519 network secret key.
pub(crate) fn peer_id_of(secret_key: &[u8; 32]) -> PeerId {
    keypair_of(secret_key).public().to_peer_id()
}

/// PeerId from an Ed25519 public key (32 bytes) as listed in genesis. A key with a small-order
/// component is refused (as account keys are, ADR 0030): one secret would back several PeerIds.
pub(crate) fn peer_id_from_public(public: &[u8; 32]) -> Result<PeerId, Error> {
    corridor_sdk::crypto::PublicKey::from_bytes(corridor_sdk::crypto::Scheme::Ed25519, public)?.check_torsion_free()?;
    let key = identity::ed25519::PublicKey::try_from_bytes(public)
        .map_err(|error| Error::new(ErrorCode::BadPublicKey, format!("network key: {error}")))?;
    Ok(identity::PublicKey::from(key).to_peer_id())
}

/// The bytes a validator signs with its consensus key to bind it to its network identity:
/// the domain tag, the genesis hash, then the PeerId's bytes (a multihash; last, so no length
/// is needed).
pub(crate) fn validator_proof_bytes(genesis_hash: &[u8; 32], peer_id: &PeerId) -> Vec<u8> {
    let peer_id = peer_id.to_bytes();
    let mut bytes = Vec::with_capacity(VALIDATOR_PROOF_DOMAIN.len() + genesis_hash.len() + peer_id.len());
    bytes.extend_from_slice(VALIDATOR_PROOF_DOMAIN);
    bytes.extend_from_slice(genesis_hash);
    bytes.extend_from_slice(&peer_id);
    bytes
}
