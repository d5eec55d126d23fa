//! The TOML configuration of `corridord run`.

use corridor_sdk::error::{Error, ErrorCode};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub(crate) const BLOCK_INTERVAL_MS_DEFAULT: u64 = 25;
pub(crate) const RPC_ADDR_DEFAULT: &str = "127.0.0.1:8545";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Where the database lives; relative paths are relative to the config file.
    pub data_dir: PathBuf,
    pub genesis_file: PathBuf,
    pub rpc_addr: SocketAddr,
    /// The validator's id and PKCS#8 key file; a node without them would be an observer.
    pub validator_id: Option<String>,
    pub validator_key_file: Option<PathBuf>,
    #[serde(default = "block_interval_default")]
    pub block_interval_ms: u64,
    /// Serve https with this PEM certificate chain and key (both or neither); relative paths
    /// are relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    /// Require client certificates signed by this PEM CA (mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_ca_file: Option<PathBuf>,
    /// The node's Ed25519 network key (PKCS#8 PEM), whose public half genesis lists. Needed
    /// when the chain has peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_key_file: Option<PathBuf>,
    /// Where to listen for peers, as a multiaddr (`/ip4/127.0.0.1/tcp/30300`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p_listen: Option<String>,
    /// Peers to dial, as multiaddrs ending in `/p2p/<peer id>`. Only peers whose network key
    /// genesis lists are dialled or accepted, whatever this list says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
}

fn block_interval_default() -> u64 {
    BLOCK_INTERVAL_MS_DEFAULT
}

impl Config {
    pub fn read(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| Error::new(ErrorCode::NotFound, format!("cannot read {}: {error}", path.display())))?;
        let mut config: Config = toml::from_str(&text)
            .map_err(|error| Error::new(ErrorCode::BadRequest, format!("{}: {error}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.data_dir = base.join(&config.data_dir);
        config.genesis_file = base.join(&config.genesis_file);
        config.validator_key_file = config.validator_key_file.map(|file| base.join(file));
        config.tls_cert_file = config.tls_cert_file.map(|file| base.join(file));
        config.tls_key_file = config.tls_key_file.map(|file| base.join(file));
        config.tls_client_ca_file = config.tls_client_ca_file.map(|file| base.join(file));
        config.network_key_file = config.network_key_file.map(|file| base.join(file));
        Ok(config)
    }

    /// The TLS files, if configured; a certificate without a key (or the reverse), or a
    /// client CA without either, is an error.
    pub fn tls_files(&self) -> Result<Option<crate::tls::TlsFiles>, Error> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Ok(Some(crate::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca_file.clone(),
            })),
            (None, None) if self.tls_client_ca_file.is_none() => Ok(None),
            _ => Err(Error::new(
                ErrorCode::BadRequest,
                "tls_cert_file and tls_key_file go together (and tls_client_ca_file needs them)",
            )),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes")
    }
}
