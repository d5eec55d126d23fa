//! Signed HTTP requests: how a client proves which account reads (ADR 0031).
//!
//! A request carries three headers:
//!
//! | header | value |
//! |---|---|
//! | `x-corridor-key` | the signer's public key, `ed25519:<hex>` or `sm2:<hex>` (an account's current key) |
//! | `x-corridor-timestamp` | milliseconds since the Unix epoch, within `REQUEST_SKEW_MS_MAX` of the node's clock |
//! | `x-corridor-signature` | hex of the signature (Ed25519 raw; SM2 raw `r ‖ s` or DER) |
//!
//! The signed bytes are the canonical encoding (`codec`) of
//! `(REQUEST_AUTH_DOMAIN, genesis_hash, method, path, query, SHA-256(body), timestamp_ms, public_key)`,
//! so a signature is good for one chain, one request and one moment; `request_signing_bytes`
//! builds them, so an HSM or OpenSSL can sign them too (SM2 with the GM/T 0003 default id).
//! The node finds the account by the key (`GET /v1/keys/{key}` needs no account id first).

use crate::codec;
use crate::crypto::{PrivateKey, PublicKey};
use crate::hash::Hash;
use sha2::{Digest, Sha256};

/// Version 2 names the chain by its genesis hash (`/v1/status`), not its `chain_id` (ADR 0042).
pub const REQUEST_AUTH_DOMAIN: &str = "corridor/request/v2";
pub const HEADER_KEY: &str = "x-corridor-key";
pub const HEADER_TIMESTAMP: &str = "x-corridor-timestamp";
pub const HEADER_SIGNATURE: &str = "x-corridor-signature";
/// How far a request's timestamp may be from the node's clock, either way.
pub const REQUEST_SKEW_MS_MAX: u64 = 60_000;
/// Bytes of a signature header's value (hex of a DER SM2 signature, with room).
pub const SIGNATURE_HEADER_BYTES_MAX: usize = 256;
/// Bytes of a key header's value (`sm2:` and 65 bytes in hex, with room).
pub const KEY_HEADER_BYTES_MAX: usize = 256;

/// What one request's signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestToSign<'a> {
    /// The chain's genesis hash, as `/v1/status` gives it.
    pub genesis_hash: Hash,
    pub method: &'a str,
    /// The path exactly as sent (`/v1/accounts/acme@icbc-cn`).
    pub path: &'a str,
    /// The query exactly as sent, without `?` (empty if none).
    pub query: &'a str,
    pub body: &'a [u8],
    pub timestamp_ms: u64,
}

/// The exact bytes the signer signs.
pub fn request_signing_bytes(request: &RequestToSign<'_>, public_key: &PublicKey) -> Vec<u8> {
    let body_hash: [u8; 32] = Sha256::digest(request.body).into();
    codec::encode(&(
        REQUEST_AUTH_DOMAIN,
        request.genesis_hash,
        request.method,
        request.path,
        request.query,
        body_hash,
        request.timestamp_ms,
        public_key,
    ))
}

/// The three header (name, value) pairs for `request` signed with `key`.
pub fn sign_request(request: &RequestToSign<'_>, key: &PrivateKey) -> [(&'static str, String); 3] {
    let public_key = key.public_key();
    let signature = key.sign(&request_signing_bytes(request, &public_key));
    [
        (HEADER_KEY, public_key.to_text()),
        (HEADER_TIMESTAMP, request.timestamp_ms.to_string()),
        (HEADER_SIGNATURE, hex::encode(signature.as_bytes())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Scheme, Signature};

    fn request(body: &[u8]) -> RequestToSign<'_> {
        RequestToSign {
            genesis_hash: Hash([0x6e; 32]),
            method: "GET",
            path: "/v1/accounts/acme@icbc-cn",
            query: "",
            body,
            timestamp_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn every_part_of_the_request_is_covered() {
        for scheme in [Scheme::Ed25519, Scheme::Sm2] {
            let key = PrivateKey::from_seed(scheme, [3; 32]).expect("seed");
            let headers = sign_request(&request(b""), &key);
            let signature =
                Signature::from_bytes(scheme, &hex::decode(&headers[2].1).expect("hex")).expect("signature");
            let public_key = key.public_key();
            let verifies = |r: &RequestToSign<'_>| {
                public_key
                    .verify(&request_signing_bytes(r, &public_key), &signature)
                    .is_ok()
            };
            assert!(verifies(&request(b"")));
            let base = request(b"");
            let variants = [
                RequestToSign {
                    genesis_hash: Hash([0x6f; 32]),
                    ..base.clone()
                },
                RequestToSign {
                    method: "POST",
                    ..base.clone()
                },
                RequestToSign {
                    path: "/v1/accounts/harbour@boc-hk",
                    ..base.clone()
                },
                RequestToSign {
                    query: "limit=1",
                    ..base.clone()
                },
                RequestToSign {
                    body: b"x",
                    ..base.clone()
                },
                RequestToSign {
                    timestamp_ms: base.timestamp_ms + 1,
                    ..base.clone()
                },
            ];
            for variant in &variants {
                assert!(!verifies(variant), "{variant:?}");
            }
            // Another key's signature over the same request does not pass as this key's.
            let other = PrivateKey::from_seed(scheme, [4; 32]).expect("seed");
            let forged = other.sign(&request_signing_bytes(&base, &public_key));
            assert!(
                public_key
                    .verify(&request_signing_bytes(&base, &public_key), &forged)
                    .is_err()
            );
        }
    }
}
