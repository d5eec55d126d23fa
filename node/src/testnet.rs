//! The files of a local network (`corridor-testnet up`): keys, one genesis, a config per node.
//!
//! The genesis is the dev chain's (its accounts, currencies and FX) with `validators`
//! validators and `observers` observers; every node listens on free loopback ports and dials
//! every other. Account keys go to `DIR/keys/` as with `corridord dev`; each node's consensus
//! and network keys to `DIR/nodes/<name>/`.

use crate::config::{BLOCK_INTERVAL_MS_DEFAULT, Config};
use crate::genesis::{GenesisObserver, GenesisValidator, dev_genesis};
use corridor_sdk::error::{Error, ErrorCode};
use corridor_sdk::{AccountId, PrivateKey, Scheme};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Nodes one local network may have.
pub const TESTNET_NODES_MAX: usize = 32;

pub use corridor_sdk::api::NetworkNode as PlannedNode;

fn io_error(what: &str, path: &Path, error: std::io::Error) -> Error {
    Error::new(ErrorCode::Unavailable, format!("{what} {}: {error}", path.display()))
}

fn free_port() -> Result<u16, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|error| Error::new(ErrorCode::Unavailable, format!("no free loopback port: {error}")))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| Error::new(ErrorCode::Unavailable, error.to_string()))
}

fn write_key(key: &PrivateKey, path: &Path) -> Result<(), Error> {
    key.write_file(path)
        .map_err(|error| io_error("cannot write", path, error))
}

/// Write keys, genesis and configs for a network into `dir` (which must not hold one yet).
pub fn plan(dir: &Path, validators: usize, observers: usize, scheme: Scheme) -> Result<Vec<PlannedNode>, Error> {
    if validators == 0 || validators + observers > TESTNET_NODES_MAX {
        return Err(Error::new(
            ErrorCode::BadRequest,
            format!("1 to {TESTNET_NODES_MAX} nodes, at least one a validator"),
        ));
    }
    if dir.join("genesis.json").exists() {
        return Err(Error::new(
            ErrorCode::BadRequest,
            format!(
                "{} already holds a network; `up` it again or use another --dir",
                dir.display()
            ),
        ));
    }
    let keys_dir = dir.join("keys");
    std::fs::create_dir_all(&keys_dir).map_err(|error| io_error("cannot create", &keys_dir, error))?;
    let mut genesis = dev_genesis(&keys_dir, crate::chain::now_ms())?;
    // The dev genesis's single validator key is replaced by the network's validators.
    let _ = std::fs::remove_file(keys_dir.join(format!("{}.key", crate::genesis::DEV_VALIDATOR)));
    genesis.chain_id = format!("corridor-testnet-{validators}v{observers}o");
    genesis.validators.clear();
    let mut nodes = Vec::new();
    let mut peers = Vec::new();
    for index in 0..validators + observers {
        let validator = index < validators;
        let name = match validator {
            true => format!("validator-{index}"),
            false => format!("observer-{}", index - validators),
        };
        let node_dir = dir.join("nodes").join(&name);
        std::fs::create_dir_all(&node_dir).map_err(|error| io_error("cannot create", &node_dir, error))?;
        let network_key = PrivateKey::generate(Scheme::Ed25519)?;
        write_key(&network_key, &node_dir.join("network.key"))?;
        let secret = crate::network::network_secret(&network_key)?;
        let peer_id = crate::p2p::peer_id_of(&secret);
        let (rpc_port, p2p_port) = (free_port()?, free_port()?);
        let p2p = format!("/ip4/127.0.0.1/tcp/{p2p_port}/p2p/{peer_id}");
        if validator {
            let key = PrivateKey::generate(scheme)?;
            write_key(&key, &node_dir.join("validator.key"))?;
            genesis.validators.push(GenesisValidator {
                id: AccountId::new(&name)?,
                public_key: key.public_key(),
                network_key: Some(network_key.public_key()),
            });
        } else {
            genesis.observers.push(GenesisObserver {
                name: name.clone(),
                network_key: network_key.public_key(),
            });
        }
        peers.push(p2p.clone());
        nodes.push(PlannedNode {
            name,
            role: if validator { "validator" } else { "observer" }.into(),
            rpc: format!("http://127.0.0.1:{rpc_port}"),
            p2p,
            config: node_dir.join("config.toml"),
            log: node_dir.join("node.log"),
            pid: None,
        });
    }
    genesis.validate()?;
    let genesis_path = dir.join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_json()).map_err(|error| io_error("cannot write", &genesis_path, error))?;
    for node in &nodes {
        write_config(node, &peers)?;
    }
    Ok(nodes)
}

fn write_config(node: &PlannedNode, peers: &[String]) -> Result<(), Error> {
    let rpc: SocketAddr = node
        .rpc
        .trim_start_matches("http://")
        .parse()
        .map_err(|error| Error::new(ErrorCode::BadRequest, format!("rpc {}: {error}", node.rpc)))?;
    let validator = node.role == "validator";
    let listen = node
        .p2p
        .rsplit_once("/p2p/")
        .map(|(address, _)| address.to_string())
        .unwrap_or_default();
    let config = Config {
        data_dir: PathBuf::from("db"),
        genesis_file: PathBuf::from("../../genesis.json"),
        rpc_addr: rpc,
        validator_id: validator.then(|| node.name.clone()),
        validator_key_file: validator.then(|| PathBuf::from("validator.key")),
        block_interval_ms: BLOCK_INTERVAL_MS_DEFAULT,
        tls_cert_file: None,
        tls_key_file: None,
        tls_client_ca_file: None,
        network_key_file: Some(PathBuf::from("network.key")),
        p2p_listen: Some(listen),
        peers: peers.iter().filter(|peer| **peer != node.p2p).cloned().collect(),
    };
    std::fs::write(&node.config, config.to_toml()).map_err(|error| io_error("cannot write", &node.config, error))
}
