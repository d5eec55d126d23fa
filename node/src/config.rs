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
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes")
    }
}
