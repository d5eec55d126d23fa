//! The swarm task: one tokio task owns the libp2p swarm, the per-peer queues, rate limits and
//! redial timers, and talks to the handle through a command channel and a shared `Book`.
//!
//! The rule this module keeps: the task never awaits the driver. Everything it hands over goes
//! through `InboundQueue` (bounded, drop and count), every answer it waits for has a deadline,
//! and a message is acknowledged to its sender only once the driver's queue took it.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::{Stage, Stages, timed};
use corridor_sdk::error::{Error, ErrorCode};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, ListenError, NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, allow_block_list, connection_limits, identity, noise, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use super::codec::{FrameCodec, is_too_large};
use super::flow::{Delivery, InboundQueue, TokenBucket, redial_delay};
use super::*;

const CONSENSUS_PROTOCOL: StreamProtocol = StreamProtocol::new("/corridor/consensus/1");
const TX_PROTOCOL: StreamProtocol = StreamProtocol::new("/corridor/tx/1");
const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/corridor/sync/1");
/// Longest ban; a longer one is cut to this (and `Instant` arithmetic cannot overflow).
const BAN_MS_MAX: u64 = 30 * 24 * 60 * 60 * 1000;

#[derive(NetworkBehaviour)]
struct Behaviour {
    /// Connection gate: only allowed peers, inbound (after noise names them) and outbound.
    allowed: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    /// Banned peers, refused the same way until the ban ends.
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    connection_limits: connection_limits::Behaviour,
    consensus: request_response::Behaviour<FrameCodec>,
    transactions: request_response::Behaviour<FrameCodec>,
    sync: request_response::Behaviour<FrameCodec>,
}

impl Behaviour {
    fn new(shared: &Shared) -> Behaviour {
        let limits = shared.limits;
        let counters = &shared.counters;
        let codec = |lane, request_bytes_max, response_bytes_max| {
            FrameCodec::new(lane, request_bytes_max, response_bytes_max, Arc::clone(counters))
        };
        let connection_limits = connection_limits::ConnectionLimits::default()
            .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX))
            .with_max_pending_incoming(Some(CONNECTIONS_PENDING_INBOUND_MAX));
        Behaviour {
            allowed: allow_block_list::Behaviour::default(),
            blocked: allow_block_list::Behaviour::default(),
            connection_limits: connection_limits::Behaviour::new(connection_limits),
            consensus: protocol(
                CONSENSUS_PROTOCOL,
                codec(Lane::Consensus, limits.consensus_message_bytes_max, ACK_BYTES_MAX),
                MESSAGE_TIMEOUT_MS,
                STREAMS_IN_FLIGHT_MAX,
            ),
            transactions: protocol(
                TX_PROTOCOL,
                codec(Lane::Transactions, limits.tx_message_bytes_max, ACK_BYTES_MAX),
                MESSAGE_TIMEOUT_MS,
                STREAMS_IN_FLIGHT_MAX,
            ),
            sync: protocol(
                SYNC_PROTOCOL,
                codec(Lane::Sync, limits.request_bytes_max, limits.sync_response_bytes_max),
                REQUEST_TIMEOUT_MS,
                REQUESTS_PENDING_MAX,
            ),
        }
    }

    fn lane(&mut self, lane: Lane) -> &mut request_response::Behaviour<FrameCodec> {
        match lane {
            Lane::Consensus => &mut self.consensus,
            Lane::Transactions => &mut self.transactions,
            Lane::Sync => &mut self.sync,
        }
    }
}

/// One request-response protocol. Streams per connection: this node's own in flight plus as
/// many from the peer.
fn protocol(
    name: StreamProtocol,
    codec: FrameCodec,
    timeout_ms: u64,
    in_flight_max: usize,
) -> request_response::Behaviour<FrameCodec> {
    let config = request_response::Config::default()
        .with_request_timeout(Duration::from_millis(timeout_ms))
        .with_max_concurrent_streams(2 * in_flight_max);
    request_response::Behaviour::with_codec(codec, [(name, ProtocolSupport::Full)], config)
}

/// Each connection task the swarm spawns runs on tokio, its polls counted as `Stage::Network`.
fn build_swarm(
    keypair: identity::Keypair,
    behaviour: Behaviour,
    stages: &Arc<Stages>,
) -> Result<Swarm<Behaviour>, Error> {
    let stages = Arc::clone(stages);
    let executor = move |future: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| {
        tokio::spawn(timed(Arc::clone(&stages), Stage::Network, future));
    };
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|error| Error::new(ErrorCode::Unavailable, format!("p2p transport: {error}")))?
        .with_behaviour(|_| behaviour)
        .map_err(|error| Error::new(ErrorCode::Unavailable, format!("p2p behaviour: {error}")))?
        .with_swarm_config(|_| {
            libp2p::swarm::Config::with_executor(executor)
                .with_idle_connection_timeout(Duration::from_millis(CONNECTION_IDLE_TIMEOUT_MS))
        })
        .build();
    Ok(swarm)
}

/// Builds the swarm, listens, and spawns its task once the first listen address is known.
pub(super) async fn spawn(
    config: NetworkConfig,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    inbound: mpsc::Sender<Inbound>,
) -> Result<PeerId, Error> {
    let keypair = keypair_of(&config.secret_key);
    let local_peer_id = keypair.public().to_peer_id();
    let mut swarm = build_swarm(keypair, Behaviour::new(&shared), &config.stages)?;
    swarm
        .listen_on(config.listen.clone())
        .map_err(|error| Error::new(ErrorCode::Unavailable, format!("listen on {}: {error}", config.listen)))?;
    let address = tokio::time::timeout(Duration::from_millis(LISTEN_TIMEOUT_MS), first_listen_addr(&mut swarm))
        .await
        .map_err(|_| {
            Error::new(
                ErrorCode::Unavailable,
                format!("listen on {}: timed out", config.listen),
            )
        })??;
    shared.book.lock().listen_addrs.push(address);
    let mut task = Task {
        swarm,
        local_peer_id,
        shared,
        commands,
        inbound: InboundQueue::new(inbound, INBOUND_RESERVED_ITEMS, INBOUND_OVERFLOW_ITEMS_MAX),
        allowed: BTreeSet::new(),
        banned: HashMap::new(),
        redials: HashMap::new(),
        queues: HashMap::new(),
        in_flight: HashMap::new(),
        requests: HashMap::new(),
        answers: FuturesUnordered::new(),
        buckets: HashMap::new(),
    };
    task.set_peers(config.peers, config.allowed);
    tokio::spawn(timed(Arc::clone(&config.stages), Stage::Network, task.run()));
    Ok(local_peer_id)
}

async fn first_listen_addr(swarm: &mut Swarm<Behaviour>) -> Result<Multiaddr, Error> {
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
            SwarmEvent::ListenerClosed { reason, .. } => {
                return Err(Error::new(
                    ErrorCode::Unavailable,
                    format!("listener closed: {reason:?}"),
                ));
            }
            SwarmEvent::ListenerError { error, .. } => {
                return Err(Error::new(ErrorCode::Unavailable, format!("listener failed: {error}")));
            }
            _ => {}
        }
    }
}

/// A peer this node keeps connected.
struct Redial {
    address: Multiaddr,
    /// Dials failed (or connections dropped) since the peer last acknowledged anything.
    failures: u32,
    /// When to dial next; `None` while dialing or connected.
    due: Option<Instant>,
}

/// One peer's outbound messages on one lane: waiting, and on the wire.
#[derive(Default)]
struct PeerQueue {
    waiting: VecDeque<Vec<u8>>,
    in_flight: usize,
}

struct PendingRequest {
    peer: PeerId,
    bytes: usize,
    reply: oneshot::Sender<Result<Vec<u8>, RequestError>>,
}

/// The driver's answer to an inbound request (`None`: refused or too late), with its channel.
type Answer = BoxFuture<'static, (ResponseChannel<Vec<u8>>, Option<Vec<u8>>)>;

struct Task {
    swarm: Swarm<Behaviour>,
    local_peer_id: PeerId,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    inbound: InboundQueue,
    allowed: BTreeSet<PeerId>,
    banned: HashMap<PeerId, Instant>,
    redials: HashMap<PeerId, Redial>,
    queues: HashMap<(PeerId, Lane), PeerQueue>,
    in_flight: HashMap<(Lane, OutboundRequestId), (PeerId, usize)>,
    requests: HashMap<OutboundRequestId, PendingRequest>,
    answers: FuturesUnordered<Answer>,
    buckets: HashMap<(PeerId, Lane), TokenBucket>,
}

impl Task {
    async fn run(mut self) {
        let mut maintenance = tokio::time::interval(Duration::from_millis(MAINTENANCE_INTERVAL_MS));
        maintenance.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break, // every handle is gone
                },
                Some((channel, answer)) = self.answers.next(), if !self.answers.is_empty() => {
                    self.answer(channel, answer);
                }
                permit = self.inbound.sender.clone().reserve_owned(), if !self.inbound.overflow.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(item) = self.inbound.overflow.pop_front() {
                            permit.send(item);
                        }
                    }
                    Err(_) => break, // the driver is gone
                },
                _ = maintenance.tick() => {
                    if self.inbound.sender.is_closed() {
                        break;
                    }
                    self.maintain();
                }
            }
        }
        tracing::debug!(peer = %self.local_peer_id, "p2p task stopped");
    }

    fn counters(&self, lane: Lane) -> &stats::LaneCounters {
        self.shared.counters.lane(lane)
    }

    fn permitted(&self, peer: &PeerId) -> bool {
        self.allowed.contains(peer) && !self.banned.contains_key(peer)
    }

    fn refresh_permitted(&self) {
        let permitted = self
            .allowed
            .iter()
            .filter(|peer| !self.banned.contains_key(peer))
            .copied()
            .collect();
        self.shared.book.lock().permitted = permitted;
    }

    // ---- Commands from the handle.

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Send { to, lane, bytes } => self.enqueue(to, lane, bytes),
            Command::Request { to, bytes, reply } => self.start_request(to, bytes, reply),
            Command::SetPeers { peers, allowed } => self.set_peers(peers, allowed),
            Command::Ban { peer, ban } => self.ban(peer, ban),
        }
    }

    fn enqueue(&mut self, to: PeerId, lane: Lane, bytes: Vec<u8>) {
        if !self.permitted(&to) {
            // Banned or removed between `send` and here.
            self.shared.book.lock().release(to, lane, bytes.len());
            self.counters(lane).count_undelivered();
            return;
        }
        self.queues.entry((to, lane)).or_default().waiting.push_back(bytes);
        self.pump(to, lane);
    }

    /// Puts waiting messages on the wire, up to `STREAMS_IN_FLIGHT_MAX`, while connected, and
    /// forgets the queue once it is empty.
    fn pump(&mut self, peer: PeerId, lane: Lane) {
        let connected = self.swarm.is_connected(&peer);
        let Some(queue) = self.queues.get_mut(&(peer, lane)) else {
            return;
        };
        while connected && queue.in_flight < STREAMS_IN_FLIGHT_MAX {
            let Some(bytes) = queue.waiting.pop_front() else {
                break;
            };
            let length = bytes.len();
            let id = self.swarm.behaviour_mut().lane(lane).send_request(&peer, bytes);
            queue.in_flight += 1;
            self.in_flight.insert((lane, id), (peer, length));
        }
        if queue.waiting.is_empty() && queue.in_flight == 0 {
            self.queues.remove(&(peer, lane));
        }
    }

    fn start_request(&mut self, to: PeerId, bytes: Vec<u8>, reply: oneshot::Sender<Result<Vec<u8>, RequestError>>) {
        let length = bytes.len();
        let refusal = if !self.permitted(&to) {
            Some(RequestError::NotAllowed)
        } else if !self.swarm.is_connected(&to) {
            Some(RequestError::Disconnected)
        } else {
            None
        };
        if let Some(error) = refusal {
            self.shared.book.lock().release(to, Lane::Sync, length);
            let _ = reply.send(Err(error));
            return;
        }
        let id = self.swarm.behaviour_mut().sync.send_request(&to, bytes);
        let request = PendingRequest {
            peer: to,
            bytes: length,
            reply,
        };
        self.requests.insert(id, request);
    }

    fn set_peers(&mut self, peers: Vec<(PeerId, Multiaddr)>, allowed: BTreeSet<PeerId>) {
        let local = self.local_peer_id;
        let mut allowed: BTreeSet<PeerId> = allowed.into_iter().filter(|peer| *peer != local).collect();
        if allowed.len() > PEERS_MAX {
            tracing::warn!(peers = allowed.len(), PEERS_MAX, "allow list cut to its limit");
            allowed = allowed.into_iter().take(PEERS_MAX).collect();
        }
        let removed: Vec<PeerId> = self.allowed.difference(&allowed).copied().collect();
        for peer in removed {
            self.swarm.behaviour_mut().allowed.disallow_peer(peer);
            self.forget(peer);
        }
        for peer in &allowed {
            self.swarm.behaviour_mut().allowed.allow_peer(*peer);
        }
        self.allowed = allowed;
        let now = Instant::now();
        let mut redials = HashMap::new();
        for (peer, address) in peers {
            if !self.allowed.contains(&peer) {
                continue;
            }
            let redial = match self.redials.remove(&peer) {
                Some(redial) if redial.address == address => redial,
                _ => Redial {
                    address,
                    failures: 0,
                    due: Some(now),
                },
            };
            redials.insert(peer, redial);
        }
        self.redials = redials;
        self.refresh_permitted();
        self.redial_due(now);
    }

    fn ban(&mut self, peer: PeerId, ban: Duration) {
        if peer == self.local_peer_id {
            return;
        }
        let until = Instant::now() + ban.min(Duration::from_millis(BAN_MS_MAX));
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        self.banned.insert(peer, until);
        self.forget(peer);
        self.refresh_permitted();
        tracing::info!(%peer, ?ban, "peer banned");
    }

    /// Drops what is waiting for a peer that is no longer permitted. Messages in flight fail
    /// when its connections close and are released then.
    fn forget(&mut self, peer: PeerId) {
        for lane in [Lane::Consensus, Lane::Transactions] {
            let Some(queue) = self.queues.get_mut(&(peer, lane)) else {
                continue;
            };
            let waiting = std::mem::take(&mut queue.waiting);
            let mut book = self.shared.book.lock();
            for bytes in waiting {
                book.release(peer, lane, bytes.len());
                self.shared.counters.lane(lane).count_undelivered();
            }
        }
        self.buckets.retain(|(bucket_peer, _), _| *bucket_peer != peer);
    }

    // ---- Timers.

    fn maintain(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &expired {
            self.banned.remove(peer);
            self.swarm.behaviour_mut().blocked.unblock_peer(*peer);
            if let Some(redial) = self.redials.get_mut(peer) {
                redial.failures = 0;
                redial.due = Some(now);
            }
        }
        if !expired.is_empty() {
            self.refresh_permitted();
        }
        self.redial_due(now);
    }

    fn redial_due(&mut self, now: Instant) {
        let due: Vec<(PeerId, Multiaddr)> = self
            .redials
            .iter()
            .filter(|(peer, redial)| redial.due.is_some_and(|due| due <= now) && self.permitted(peer))
            .filter(|(peer, _)| !self.swarm.is_connected(peer))
            .map(|(peer, redial)| (*peer, redial.address.clone()))
            .collect();
        for (peer, address) in due {
            if let Some(redial) = self.redials.get_mut(&peer) {
                redial.due = None;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![address])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(error) = self.swarm.dial(opts) {
                self.on_dial_error(Some(peer), &error);
            }
        }
    }

    fn schedule_redial(&mut self, peer: PeerId) {
        if let Some(redial) = self.redials.get_mut(&peer) {
            let delay = redial_delay(redial.failures, REDIAL_DELAY_MS_MIN, REDIAL_DELAY_MS_MAX);
            redial.failures = redial.failures.saturating_add(1);
            redial.due = Some(Instant::now() + delay);
        }
    }

    /// The peer acknowledged or sent something: the connection works, so back-off starts over.
    fn peer_is_live(&mut self, peer: PeerId) {
        if let Some(redial) = self.redials.get_mut(&peer) {
            redial.failures = 0;
        }
    }

    // ---- Swarm events.

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } if num_established.get() == 1 => self.on_connected(peer_id),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => self.on_disconnected(peer_id),
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => self.on_dial_error(peer_id, &error),
            SwarmEvent::IncomingConnectionError {
                error: ListenError::Denied { .. },
                ..
            } => self.shared.counters.count_refused_connection(),
            SwarmEvent::NewListenAddr { address, .. } => self.shared.book.lock().listen_addrs.push(address),
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.shared.book.lock().listen_addrs.retain(|known| *known != address);
            }
            _ => {}
        }
    }

    fn on_connected(&mut self, peer: PeerId) {
        tracing::debug!(%peer, "connected");
        self.shared.book.lock().connected.insert(peer);
        if let Some(redial) = self.redials.get_mut(&peer) {
            redial.due = None;
        }
        self.deliver_event(Inbound::Connected(peer));
        self.pump(peer, Lane::Consensus);
        self.pump(peer, Lane::Transactions);
    }

    fn on_disconnected(&mut self, peer: PeerId) {
        tracing::debug!(%peer, "disconnected");
        self.shared.book.lock().connected.remove(&peer);
        self.deliver_event(Inbound::Disconnected(peer));
        self.schedule_redial(peer);
    }

    fn on_dial_error(&mut self, peer: Option<PeerId>, error: &DialError) {
        match error {
            DialError::DialPeerConditionFalse(_) => return,
            DialError::Denied { .. } => self.shared.counters.count_refused_connection(),
            _ => {}
        }
        if let Some(peer) = peer
            && !self.swarm.is_connected(&peer)
        {
            tracing::debug!(%peer, %error, "dial failed");
            self.schedule_redial(peer);
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Consensus(event) => self.on_protocol_event(Lane::Consensus, event),
            BehaviourEvent::Transactions(event) => self.on_protocol_event(Lane::Transactions, event),
            BehaviourEvent::Sync(event) => self.on_protocol_event(Lane::Sync, event),
            BehaviourEvent::Allowed(never)
            | BehaviourEvent::Blocked(never)
            | BehaviourEvent::ConnectionLimits(never) => match never {},
        }
    }

    fn on_protocol_event(&mut self, lane: Lane, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => {
                self.peer_is_live(peer);
                match message {
                    request_response::Message::Request { request, channel, .. } => {
                        self.on_request(lane, peer, request, channel);
                    }
                    request_response::Message::Response { request_id, response } => {
                        self.on_response(lane, request_id, Ok(response));
                    }
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if lane != Lane::Sync && matches!(error, OutboundFailure::Timeout) {
                    // The peer's task acknowledges at once: a missing ack means a dead link.
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                self.on_response(lane, request_id, Err(request_error(&error)));
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, ?lane, %error, "inbound stream failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_request(&mut self, lane: Lane, peer: PeerId, bytes: Vec<u8>, channel: ResponseChannel<Vec<u8>>) {
        if !self.take_token(peer, lane) || (lane == Lane::Sync && self.answers.len() >= ANSWERS_PENDING_MAX) {
            // Dropping the channel refuses the message; the sender counts it undelivered.
            self.counters(lane).count_rate_limited();
            return;
        }
        let item = match lane {
            Lane::Consensus | Lane::Transactions => Inbound::Message {
                from: peer,
                channel: if lane == Lane::Consensus {
                    Channel::Consensus
                } else {
                    Channel::Transactions
                },
                bytes,
            },
            Lane::Sync => {
                let (respond, answer) = oneshot::channel();
                self.answers.push(Box::pin(async move {
                    let answer = tokio::time::timeout(Duration::from_millis(REQUEST_TIMEOUT_MS), answer).await;
                    (channel, answer.ok().and_then(Result::ok))
                }));
                self.deliver(
                    lane,
                    Inbound::Request {
                        from: peer,
                        bytes,
                        respond,
                    },
                );
                return;
            }
        };
        if self.deliver(lane, item) {
            // The ack frees a place in the sender's queue; send fails only if the peer left.
            let _ = self.swarm.behaviour_mut().lane(lane).send_response(channel, Vec::new());
        }
    }

    fn take_token(&mut self, peer: PeerId, lane: Lane) -> bool {
        let now = Instant::now();
        let (per_second, burst) = match lane {
            Lane::Consensus => (CONSENSUS_MESSAGES_PER_SECOND, CONSENSUS_MESSAGES_BURST),
            Lane::Transactions => (TX_MESSAGES_PER_SECOND, TX_MESSAGES_BURST),
            Lane::Sync => (REQUESTS_PER_SECOND, REQUESTS_BURST),
        };
        self.buckets
            .entry((peer, lane))
            .or_insert_with(|| TokenBucket::new(per_second, burst, now))
            .take(now)
    }

    /// Hands a message or request to the driver; false (and counted) when it was dropped.
    fn deliver(&mut self, lane: Lane, item: Inbound) -> bool {
        match self.inbound.deliver(item) {
            Delivery::Queued => {
                self.counters(lane).count_in();
                true
            }
            Delivery::Dropped => {
                self.counters(lane).count_inbound_full();
                false
            }
        }
    }

    fn deliver_event(&mut self, item: Inbound) {
        if self.inbound.deliver(item) == Delivery::Dropped {
            self.shared.counters.count_dropped_event();
        }
    }

    /// The end of an outbound message (ack or failure) or request (answer or failure).
    fn on_response(&mut self, lane: Lane, id: OutboundRequestId, result: Result<Vec<u8>, RequestError>) {
        if lane == Lane::Sync {
            let Some(request) = self.requests.remove(&id) else {
                return;
            };
            self.shared.book.lock().release(request.peer, lane, request.bytes);
            if result.is_ok() {
                self.counters(lane).count_out();
            }
            let _ = request.reply.send(result);
            return;
        }
        let Some((peer, length)) = self.in_flight.remove(&(lane, id)) else {
            return;
        };
        self.shared.book.lock().release(peer, lane, length);
        if result.is_ok() {
            self.counters(lane).count_out();
        } else {
            self.counters(lane).count_undelivered();
        }
        if let Some(queue) = self.queues.get_mut(&(peer, lane)) {
            assert!(queue.in_flight > 0, "an in-flight message has a place in its queue");
            queue.in_flight -= 1;
        }
        self.pump(peer, lane);
    }

    /// Sends the driver's answer to an inbound request, or refuses it by dropping the channel.
    fn answer(&mut self, channel: ResponseChannel<Vec<u8>>, answer: Option<Vec<u8>>) {
        match answer {
            Some(bytes) if bytes.len() <= self.shared.limits.sync_response_bytes_max => {
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, bytes);
            }
            Some(_) => self.counters(Lane::Sync).count_oversized(),
            None => {}
        }
    }
}

fn request_error(failure: &OutboundFailure) -> RequestError {
    match failure {
        OutboundFailure::DialFailure | OutboundFailure::ConnectionClosed => RequestError::Disconnected,
        OutboundFailure::Timeout => RequestError::Timeout,
        OutboundFailure::UnsupportedProtocols => RequestError::Refused,
        OutboundFailure::Io(error) if is_too_large(error) => RequestError::TooLarge,
        OutboundFailure::Io(_) => RequestError::Refused,
    }
}
