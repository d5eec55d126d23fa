//! An in-process cluster for tests: N full nodes (chain + consensus driver, each with its own
//! RocksDB) on an in-memory transport with seeded loss, isolation and crashes, so most
//! multi-validator behaviour is tested in one process in seconds.
//!
//! The adversary here is the network and the crash: lost messages, a validator cut off or
//! killed and restarted from its disk. (Byzantine validators are the consensus simulator's.)

use crate::chain::{Chain, now_ms};
use crate::driver::{Driver, Event, Transport, finalized_after};
use crate::follower::Follower;
use crate::genesis::{Genesis, GenesisValidator, dev_genesis};
use corridor_consensus::{ValidatorIndex, encode_chain};
use corridor_sdk::tx::{Operation, Transaction, TransferLeg};
use corridor_sdk::{AccountId, Amount, CurrencyCode, Hash, PrivateKey, Scheme};
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the network does to messages, shared by every node's transport.
#[derive(Default)]
struct Network {
    inboxes: Vec<Option<Sender<Event>>>,
    chains: Vec<Option<Arc<Chain>>>,
    /// Nodes cut off from everyone.
    isolated: BTreeSet<usize>,
    /// Percent of messages lost.
    loss_percent: u64,
    rng: u64,
    /// Messages carried, for tests that want to see traffic.
    delivered: u64,
}

impl Network {
    /// xorshift64*: seeded and reproducible.
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn deliver(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        if from == to || self.isolated.contains(&from) || self.isolated.contains(&to) {
            return;
        }
        if self.loss_percent > 0 && self.next() % 100 < self.loss_percent {
            return;
        }
        if let Some(Some(inbox)) = self.inboxes.get(to) {
            let from = ValidatorIndex::try_from(from).expect("cluster size fits u16");
            if inbox.send(Event::Message { from, bytes }).is_ok() {
                self.delivered += 1;
            }
        }
    }
}

struct MemoryTransport {
    me: usize,
    network: Arc<Mutex<Network>>,
}

impl Transport for MemoryTransport {
    fn send(&self, to: ValidatorIndex, bytes: Vec<u8>) {
        self.network.lock().deliver(self.me, usize::from(to), bytes);
    }

    fn broadcast(&self, bytes: Vec<u8>) {
        let mut network = self.network.lock();
        for to in 0..network.inboxes.len() {
            network.deliver(self.me, to, bytes.clone());
        }
    }

    /// Served by the first reachable live peer from its store, as block sync does.
    fn request_catch_up(&self, after_height: u64) {
        let network = self.network.lock();
        if network.isolated.contains(&self.me) {
            return;
        }
        let served = network
            .chains
            .iter()
            .enumerate()
            .filter(|(peer, _)| *peer != self.me && !network.isolated.contains(peer))
            .find_map(|(_, chain)| finalized_after(chain.as_ref()?, after_height, usize::MAX));
        if let (Some(batch), Some(Some(inbox))) = (served, network.inboxes.get(self.me)) {
            let _ = inbox.send(Event::CatchUp {
                bytes: encode_chain(&batch),
                source: 0,
            });
        }
    }
}

struct Node {
    chain: Arc<Chain>,
    events: Sender<Event>,
    thread: JoinHandle<()>,
}

/// A network key derived from a seed (the in-memory transport does not use it; genesis
/// requires one per node when there are peers).
fn network_key(seed: &[u8; 32]) -> corridor_sdk::PublicKey {
    let mut seed = *seed;
    seed[31] ^= 0x5a;
    PrivateKey::from_seed(Scheme::Ed25519, seed)
        .expect("seeded key")
        .public_key()
}

pub(crate) struct Cluster {
    _dir: tempfile::TempDir,
    genesis: Genesis,
    keys_dir: PathBuf,
    validator_seeds: Vec<[u8; 32]>,
    network: Arc<Mutex<Network>>,
    nodes: Vec<Option<Node>>,
    nonces: Mutex<std::collections::BTreeMap<AccountId, u64>>,
    /// Each node's clock offset, applied when it (re)starts.
    clock_offsets_ms: Vec<i64>,
}

/// How long a test waits for a cluster to reach a state before it fails.
pub(crate) const WAIT_MS_MAX: u64 = 30_000;
/// The same under message loss, where learned timeouts slow the views down.
pub(crate) const LOSSY_WAIT_MS_MAX: u64 = 120_000;

impl Cluster {
    /// `validators` nodes on the dev genesis (its accounts, `validators` validators), fast
    /// consensus timeouts, messages lost at `loss_percent` with `seed`.
    pub fn start(validators: usize, loss_percent: u64, seed: u64) -> Cluster {
        Cluster::start_with_observers(validators, 0, loss_percent, seed)
    }

    /// As `start`, with `observers` observer nodes after the validators (indices
    /// `validators..`).
    pub fn start_with_observers(validators: usize, observers: usize, loss_percent: u64, seed: u64) -> Cluster {
        let nodes = validators + observers;
        let dir = tempfile::tempdir().expect("temp dir");
        let keys_dir = dir.path().join("keys");
        std::fs::create_dir_all(&keys_dir).expect("keys dir");
        let mut genesis = dev_genesis(&keys_dir, now_ms()).expect("dev genesis");
        let validator_seeds: Vec<[u8; 32]> = (0..validators)
            .map(|i| {
                let mut seed_bytes = [7u8; 32];
                seed_bytes[..8].copy_from_slice(&(seed + i as u64).to_le_bytes());
                seed_bytes
            })
            .collect();
        genesis.validators = validator_seeds
            .iter()
            .enumerate()
            .map(|(i, seed)| GenesisValidator {
                id: AccountId::new(&format!("validator-{i}")).expect("validator id"),
                public_key: PrivateKey::from_seed(Scheme::Ed25519, *seed)
                    .expect("seeded key")
                    .public_key(),
                network_key: Some(network_key(seed)),
            })
            .collect();
        genesis.observers = (0..observers)
            .map(|i| crate::genesis::GenesisObserver {
                name: format!("observer-{i}"),
                network_key: network_key(&[200 + i as u8; 32]),
            })
            .collect();
        genesis.consensus_timeout_ms = 200;
        genesis.validate().expect("the cluster's genesis is valid");
        let network = Network {
            inboxes: vec![None; nodes],
            chains: vec![None; nodes],
            loss_percent,
            rng: seed.max(1),
            ..Network::default()
        };
        let mut cluster = Cluster {
            _dir: dir,
            genesis,
            keys_dir,
            validator_seeds,
            network: Arc::new(Mutex::new(network)),
            nodes: (0..nodes).map(|_| None).collect(),
            nonces: Mutex::default(),
            clock_offsets_ms: vec![0; nodes],
        };
        for node in 0..nodes {
            cluster.start_node(node);
        }
        cluster
    }

    /// Start (or restart, from its disk) node `node`.
    pub fn start_node(&mut self, node: usize) {
        assert!(self.nodes[node].is_none(), "node {node} is running");
        let db = self._dir.path().join(format!("node-{node}")).join("db");
        std::fs::create_dir_all(db.parent().expect("db has a parent")).expect("node dir");
        let chain = Chain::open(&db, self.genesis.clone(), true).expect("chain opens");
        chain.replay_journal().expect("journal replays");
        let transport = MemoryTransport {
            me: node,
            network: Arc::clone(&self.network),
        };
        let (thread, events) = match self.validator_seeds.get(node) {
            Some(seed) => {
                let me = ValidatorIndex::try_from(node).expect("cluster size fits u16");
                let key = PrivateKey::from_seed(Scheme::Ed25519, *seed).expect("seeded key");
                let (mut driver, events) =
                    Driver::new(Arc::clone(&chain), me, key, transport, Duration::from_millis(5));
                driver.skew_clock(self.clock_offsets_ms[node]);
                (std::thread::spawn(move || driver.run()), events)
            }
            None => {
                let (follower, events) = Follower::new(Arc::clone(&chain), transport);
                (std::thread::spawn(move || follower.run()), events)
            }
        };
        let mut network = self.network.lock();
        network.inboxes[node] = Some(events.clone());
        network.chains[node] = Some(Arc::clone(&chain));
        drop(network);
        self.nodes[node] = Some(Node { chain, events, thread });
    }

    /// Stop node `node` as a crash would: its driver stops between steps and everything it
    /// did not make durable is gone when it starts again.
    pub fn crash(&mut self, node: usize) {
        let Some(stopped) = self.nodes[node].take() else { return };
        let mut network = self.network.lock();
        network.inboxes[node] = None;
        network.chains[node] = None;
        drop(network);
        let _ = stopped.events.send(Event::Stop);
        stopped.thread.join().expect("driver thread");
    }

    /// Restart node `node` with its clock `offset_ms` off.
    pub fn skew_clock(&mut self, node: usize, offset_ms: i64) {
        self.crash(node);
        self.clock_offsets_ms[node] = offset_ms;
        self.start_node(node);
    }

    pub fn isolate(&self, node: usize, isolated: bool) {
        let mut network = self.network.lock();
        if isolated {
            network.isolated.insert(node);
        } else {
            network.isolated.remove(&node);
        }
    }

    pub fn chain(&self, node: usize) -> &Arc<Chain> {
        &self.nodes[node].as_ref().expect("node is running").chain
    }

    pub fn running(&self) -> impl Iterator<Item = &Arc<Chain>> {
        self.nodes.iter().flatten().map(|node| &node.chain)
    }

    /// A transfer of `amount` CNY from acme@icbc-cn, admitted by every running node (as
    /// transaction gossip would), returning its hash.
    pub fn transfer(&self, amount: &str) -> Hash {
        let sender = AccountId::new("acme@icbc-cn").expect("id");
        let key = PrivateKey::read_file(&self.keys_dir.join("acme@icbc-cn.key")).expect("acme's key");
        let nonce = {
            let mut nonces = self.nonces.lock();
            let nonce = nonces.entry(sender.clone()).or_insert(0);
            *nonce += 1;
            *nonce - 1
        };
        let signed = Transaction {
            version: corridor_sdk::tx::TX_VERSION,
            genesis_hash: self.genesis.hash().expect("genesis hash"),
            sender,
            nonce,
            expires_at_ms: now_ms() + 600_000,
            operation: Operation::Transfer(TransferLeg {
                to: AccountId::new("harbour@boc-hk").expect("id"),
                currency: CurrencyCode::new("CNY").expect("code"),
                amount: Amount::parse(amount).expect("amount"),
                memo: None,
            }),
        }
        .sign(&key);
        let mut hash = None;
        for chain in self.running() {
            if let Ok(admitted) = chain.admit(signed.clone(), false) {
                hash = Some(admitted);
            }
        }
        hash.expect("some node admitted the transfer")
    }

    /// Wait until every running node has committed `hash`; false on timeout.
    pub fn wait_committed(&self, hash: &Hash) -> bool {
        self.wait(|cluster| {
            cluster
                .running()
                .all(|chain| chain.tx_view(hash).is_some_and(|(view, _)| view.receipt.is_some()))
        })
    }

    /// Wait until every running node is at least at `height`; false on timeout.
    pub fn wait_height(&self, height: u64) -> bool {
        self.wait(|cluster| cluster.running().all(|chain| chain.head().height >= height))
    }

    pub fn wait(&self, done: impl Fn(&Cluster) -> bool) -> bool {
        self.wait_ms(WAIT_MS_MAX, done)
    }

    /// `wait` with its own bound.
    pub fn wait_ms(&self, bound_ms: u64, done: impl Fn(&Cluster) -> bool) -> bool {
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(bound_ms) {
            if done(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("timed out; nodes (height, view, pool, ready): {:?}", self.snapshot());
        false
    }

    /// Each node's (height, view, pool size, ready transactions), for failure messages.
    pub fn snapshot(&self) -> Vec<Option<(u64, u64, usize, usize)>> {
        self.nodes
            .iter()
            .map(|node| {
                node.as_ref().map(|node| {
                    let chain = &node.chain;
                    (
                        chain.head().height,
                        chain.metrics.view.load(std::sync::atomic::Ordering::Relaxed),
                        chain.mempool.len(),
                        chain.mempool.ready_len(),
                    )
                })
            })
            .collect()
    }

    /// Every running node at `height` has the same block and state root there.
    pub fn assert_agree(&self, height: u64) {
        let views: BTreeSet<_> = self
            .running()
            .map(|chain| {
                let block = chain.block_view(height).expect("the block is committed");
                (
                    block.hash,
                    block.header.state_root,
                    chain.storage().state_root_at(height),
                )
            })
            .collect();
        assert_eq!(views.len(), 1, "nodes disagree at height {height}: {views:?}");
        for chain in self.running() {
            chain.audit_conservation().expect("conservation holds");
        }
    }

    pub fn delivered(&self) -> u64 {
        self.network.lock().delivered
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in 0..self.nodes.len() {
            self.crash(node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follower::Refused;

    #[test]
    fn four_validators_finalize_and_agree() {
        let cluster = Cluster::start(4, 0, 1);
        let hashes: Vec<Hash> = (0..20).map(|_| cluster.transfer("1.00")).collect();
        for hash in &hashes {
            assert!(cluster.wait_committed(hash), "transfer {hash} was not finalized");
        }
        let height = cluster.running().map(|chain| chain.head().height).min().expect("nodes");
        assert!(height >= 1);
        for h in 1..=height {
            cluster.assert_agree(h);
        }
        assert!(cluster.delivered() > 0, "votes went over the network");
        let harbour = cluster
            .chain(2)
            .account(&AccountId::new("harbour@boc-hk").expect("id"))
            .expect("account");
        assert!(harbour.balances.contains_key(&CurrencyCode::new("CNY").expect("code")));
    }

    #[test]
    fn one_crashed_validator_of_four_does_not_stop_finality_and_catches_up() {
        let mut cluster = Cluster::start(4, 0, 2);
        assert!(cluster.wait_committed(&cluster.transfer("1.00")));
        cluster.crash(3);
        let during: Vec<Hash> = (0..10).map(|_| cluster.transfer("2.00")).collect();
        for hash in &during {
            assert!(cluster.wait_committed(hash), "finality stopped with one of four down");
        }
        cluster.start_node(3);
        let height = cluster.chain(0).head().height;
        assert!(cluster.wait_height(height), "the restarted validator did not catch up");
        cluster.assert_agree(height);
        // It votes again: with another one down, finality needs it.
        cluster.crash(0);
        let after = cluster.transfer("3.00");
        assert!(cluster.wait_committed(&after), "the restarted validator does not vote");
    }

    #[test]
    fn two_of_four_down_stop_finality_and_nothing_is_lost_after_restart() {
        let mut cluster = Cluster::start(4, 0, 3);
        assert!(cluster.wait_committed(&cluster.transfer("1.00")));
        let before = cluster.chain(0).head().height;
        cluster.crash(2);
        cluster.crash(3);
        let stuck = cluster.transfer("5.00");
        std::thread::sleep(Duration::from_millis(1_500));
        assert_eq!(cluster.chain(0).head().height, before, "two of four cannot finalize");
        assert!(
            cluster
                .chain(0)
                .tx_view(&stuck)
                .is_some_and(|(view, _)| view.receipt.is_none())
        );
        cluster.start_node(2);
        cluster.start_node(3);
        assert!(cluster.wait_committed(&stuck), "finality did not resume");
        let height = cluster.running().map(|chain| chain.head().height).min().expect("nodes");
        cluster.assert_agree(height);
    }

    #[test]
    fn a_validator_whose_clock_jumps_ahead_does_not_stall_the_chain() {
        let mut cluster = Cluster::start(4, 0, 5);
        let validator_1 = AccountId::new("validator-1").expect("id");
        // An hour ahead: every pending transfer looks expired to validator-1, so it proposes
        // nothing; a minute ahead: it proposes blocks a minute in the future, which the others
        // refuse. Either way the others' views go on. One transfer at a time, so blocks span
        // many views and validator-1 leads some.
        for offset_ms in [3_600_000, 60_000] {
            cluster.skew_clock(1, offset_ms);
            for _ in 0..8 {
                let hash = cluster.transfer("1.00");
                assert!(
                    cluster.wait_committed(&hash),
                    "a clock {offset_ms} ms ahead stalled the chain"
                );
            }
        }
        let height = cluster.running().map(|chain| chain.head().height).min().expect("nodes");
        for h in 1..=height {
            cluster.assert_agree(h);
            let header = cluster.chain(0).block_view(h).expect("block").header;
            assert_ne!(header.proposer, validator_1, "a block from the future was finalized");
        }
        let refused: u64 = cluster
            .running()
            .map(|chain| {
                chain
                    .metrics
                    .proposals_refused
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .sum();
        assert!(refused > 0, "validator-1's proposals from a minute ahead were refused");
    }

    #[test]
    fn a_certified_block_whose_root_differs_halts_production_but_not_reads() {
        use crate::chain::Application;
        let cluster = Cluster::start(1, 0, 6);
        assert!(cluster.wait_committed(&cluster.transfer("1.00")));
        let chain = cluster.chain(0);
        let head = chain.head();
        let stored = chain.storage().block(head.height).expect("head block");
        let mut header = stored.block.header.clone();
        header.height = head.height + 1;
        header.parent_hash = head.block_hash;
        header.timestamp_ms += 1;
        header.tx_count = 0;
        header.txs_root = Hash::ZERO;
        header.state_height = head.height;
        header.state_root = Hash([9; 32]);
        let block = corridor_sdk::Block { header, txs: vec![] };
        let mut certificate = stored.certificate.clone();
        certificate.height = head.height + 1;
        certificate.block_hash = block.header.hash(chain.hash_algorithm());
        let refused = chain
            .finalize(block, certificate)
            .expect_err("a foreign root is refused");
        assert_eq!(refused.code, corridor_sdk::ErrorCode::Diverged);
        assert_eq!(chain.head(), head, "nothing was written");
        chain.halt(refused.message);
        let status = chain.status();
        assert!(
            status
                .halted
                .as_deref()
                .is_some_and(|why| why.contains("names state root"))
        );
        assert_eq!(status.height, head.height, "reads go on");
        assert!(chain.metrics.render(0, 0).contains("corridor_halted 1"));
    }

    #[test]
    fn an_observer_follows_verifies_and_never_votes() {
        let mut cluster = Cluster::start_with_observers(4, 1, 0, 7);
        let hashes: Vec<Hash> = (0..10).map(|_| cluster.transfer("1.00")).collect();
        for hash in &hashes {
            assert!(cluster.wait_committed(hash), "the observer did not follow");
        }
        // Finality does not need the observer, and it never signs: 3 validators suffice and
        // every finalization's signers are validators.
        cluster.crash(3);
        let after = cluster.transfer("2.00");
        assert!(cluster.wait_committed(&after));
        let height = cluster.running().map(|chain| chain.head().height).min().expect("nodes");
        for h in 1..=height {
            cluster.assert_agree(h);
            let certificate = cluster.chain(4).block_view(h).expect("block").certificate;
            if let Ok(proof) =
                corridor_consensus::decode_chain(&certificate.finality, crate::driver::CATCH_UP_BYTES_MAX)
            {
                assert!(proof.finalization.signers().iter().all(|signer| *signer < 4));
            }
        }
        // A new observer syncs from genesis.
        cluster.crash(4);
        let fresh = cluster._dir.path().join("node-4");
        std::fs::remove_dir_all(&fresh).expect("wipe the observer");
        cluster.start_node(4);
        assert!(
            cluster.wait_height(height),
            "a fresh observer did not sync from genesis"
        );
        cluster.assert_agree(height);
    }

    #[test]
    fn an_observer_refuses_forged_and_tampered_batches() {
        let cluster = Cluster::start(4, 0, 8);
        for _ in 0..3 {
            assert!(cluster.wait_committed(&cluster.transfer("1.00")));
        }
        let served = finalized_after(cluster.chain(0), 0, usize::MAX).expect("a batch above genesis");
        let dir = tempfile::tempdir().expect("temp dir");
        let observer = Chain::open(&dir.path().join("db"), cluster.genesis.clone(), true).expect("chain");
        let (mut follower, _events) = Follower::new(Arc::clone(&observer), crate::driver::Alone);
        // A payload changed under its certificate.
        let mut tampered = served.clone();
        tampered.blocks[0].payload[10] ^= 1;
        assert!(matches!(
            follower.follow(&encode_chain(&tampered)),
            Err(Refused::Unproven(_))
        ));
        // A finalization with one signature flipped, and one short of a quorum.
        let mut forged = served.clone();
        forged.finalization.endorsements[0].signature.0[0] ^= 1;
        assert!(matches!(
            follower.follow(&encode_chain(&forged)),
            Err(Refused::Unproven(_))
        ));
        let mut short = served.clone();
        short.finalization.endorsements.truncate(2);
        assert!(matches!(
            follower.follow(&encode_chain(&short)),
            Err(Refused::Unproven(_))
        ));
        // Garbage, and a batch that does not extend our head.
        assert_eq!(follower.follow(&[1, 2, 3]), Err(Refused::Malformed));
        let mut unlinked = served.clone();
        unlinked.blocks.remove(0);
        if !unlinked.blocks.is_empty() {
            assert_eq!(follower.follow(&encode_chain(&unlinked)), Err(Refused::Unlinked));
        }
        assert_eq!(observer.head().height, 0, "nothing forged was executed");
        // The real batch is accepted.
        follower
            .follow(&encode_chain(&served))
            .expect("the served batch verifies");
        assert_eq!(observer.head().height, served.blocks.len() as u64);
        assert_eq!(
            observer.head().state_root,
            cluster
                .chain(0)
                .storage()
                .state_root_at(observer.head().height)
                .expect("root")
        );
    }

    /// The SDK's verifier (what `corridor proof` runs) accepts every certificate the nodes
    /// store, on every node, with nothing but the genesis validator set; and refuses the real
    /// certificates once an adversary has changed them.
    #[test]
    fn the_sdk_verifies_the_certificates_nodes_store() {
        use corridor_sdk::finality::{FinalityError, ValidatorSet, verify_block};
        let cluster = Cluster::start(4, 0, 11);
        for _ in 0..4 {
            assert!(cluster.wait_committed(&cluster.transfer("1.00")));
        }
        let genesis = &cluster.genesis;
        let set = ValidatorSet::new(
            0,
            genesis
                .validators
                .iter()
                .map(|validator| corridor_sdk::finality::Validator {
                    id: validator.id.clone(),
                    public_key: validator.public_key.clone(),
                })
                .collect(),
        )
        .expect("the genesis set")
        .with_chain_id(&genesis.chain_id);
        let algorithm = genesis.hash_algorithm;
        let mut with_txs = 0;
        for chain in cluster.running() {
            for height in 1..=chain.head().height {
                let stored = chain.storage().block(height).expect("stored block");
                with_txs += usize::from(!stored.block.txs.is_empty());
                let shown = verify_block(&set, algorithm, &stored.block, &stored.certificate)
                    .unwrap_or_else(|error| panic!("block {height}: {error}"));
                assert_eq!(shown.header, stored.block.header);
                assert!(shown.certified_height >= height);
                assert!(shown.signers.len() >= 3, "a quorum of four is three");
            }
        }
        assert!(with_txs > 0, "blocks with transactions were checked");
        let chain = cluster.chain(0);
        let stored = chain.storage().block(chain.head().height).expect("head block");
        let (block, certificate) = (&stored.block, &stored.certificate);
        // The state root changed, with and without the hash the certificate names.
        let mut lie = block.clone();
        lie.header.state_root = algorithm.digest(b"a richer state");
        assert_eq!(
            verify_block(&set, algorithm, &lie, certificate)
                .map(|_| ())
                .map_err(|e| e.code()),
            Err("wrong_block_hash")
        );
        let mut renamed = certificate.clone();
        renamed.block_hash = lie.header.hash(algorithm);
        assert!(verify_block(&set, algorithm, &lie, &renamed).is_err());
        // Signatures dropped below a quorum, one forged, one signer twice.
        let proof = corridor_consensus::decode_chain(&certificate.finality, usize::MAX).expect("proof");
        let with = |finalization: corridor_consensus::Certificate| corridor_sdk::Certificate {
            finality: encode_chain(&corridor_consensus::FinalizedChain {
                blocks: Vec::new(),
                headers: proof.headers.clone(),
                finalization,
            }),
            ..certificate.clone()
        };
        let mut short = proof.finalization.clone();
        short.endorsements.truncate(2);
        assert!(matches!(
            verify_block(&set, algorithm, block, &with(short)),
            Err(FinalityError::TooFewSigners { signers: 2, quorum: 3 })
        ));
        let mut forged = proof.finalization.clone();
        forged.endorsements[0].signature.0[3] ^= 1;
        assert!(matches!(
            verify_block(&set, algorithm, block, &with(forged)),
            Err(FinalityError::BadSignature { .. })
        ));
        let mut twice = proof.finalization.clone();
        let first = twice.endorsements[0].clone();
        twice.endorsements[1] = first;
        assert!(matches!(
            verify_block(&set, algorithm, block, &with(twice)),
            Err(FinalityError::DuplicateSigner { .. })
        ));
        // Another block's certificate.
        let earlier = chain.storage().block(1).expect("block 1");
        if earlier.block.header.height != block.header.height {
            assert_eq!(
                verify_block(&set, algorithm, block, &earlier.certificate)
                    .map(|_| ())
                    .map_err(|e| e.code()),
                Err("wrong_block_hash")
            );
        }
    }

    #[test]
    fn lossy_network_and_a_partitioned_validator_still_agree() {
        let cluster = Cluster::start(4, 10, 4);
        let mut hashes: Vec<Hash> = (0..5).map(|_| cluster.transfer("1.00")).collect();
        cluster.isolate(1, true);
        hashes.extend((0..5).map(|_| cluster.transfer("1.00")));
        // Under 10% loss replicas that nullify views notarized anyway learn longer timeouts
        // (up to 64 x the 200 ms base), so progress may take tens of seconds on a loaded machine.
        for hash in &hashes {
            assert!(
                cluster.wait_ms(LOSSY_WAIT_MS_MAX, |c| c
                    .chain(0)
                    .tx_view(hash)
                    .is_some_and(|(v, _)| v.receipt.is_some())),
                "not finalized under loss"
            );
        }
        cluster.isolate(1, false);
        for hash in &hashes {
            let everywhere = |c: &Cluster| {
                c.running()
                    .all(|chain| chain.tx_view(hash).is_some_and(|(view, _)| view.receipt.is_some()))
            };
            assert!(
                cluster.wait_ms(LOSSY_WAIT_MS_MAX, everywhere),
                "the healed validator did not catch up"
            );
        }
        let height = cluster.running().map(|chain| chain.head().height).min().expect("nodes");
        cluster.assert_agree(height);
    }
}
