//! Account and validator keys: Ed25519 or SM2 (SM2DSA with SM3, GM/T 0003), one tagged enum.
//!
//! The rule this module keeps: whether a signature is valid is a deterministic function of its
//! bytes, the same on every node and on every path (single or batched).
//! - Ed25519 uses the cofactored verification equation `[8](sB - kA - R) = 0` (as in ZIP-215)
//!   on both paths, with canonical encodings required for A, R and s and small-order public keys
//!   refused. Batching with random coefficients then cannot change a verdict (ADR 0003).
//!   Every RFC 8032 signature, OpenSSL's included, passes it.
//! - SM2 uses the GM/T 0003 default distinguishing id `1234567812345678`, so signatures from
//!   OpenSSL, GmSSL, Tongsuo or an HSM verify. Signatures are raw `r ‖ s` (64 bytes) on the
//!   wire; DER is accepted at the edges and converted.
//!
//! Key files are PKCS#8 PEM that OpenSSL 3 reads; SM2 keys carry the SM2 curve OID.

use crate::error::{Error, ErrorCode};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

/// The GM/T 0003 default distinguishing id (`ENTL` = 128 bits).
pub const SM2_DEFAULT_DIST_ID: &str = "1234567812345678";
pub const ED25519_PUBLIC_KEY_BYTES: usize = 32;
/// SM2 public keys are stored as uncompressed SEC1 points (`04 ‖ x ‖ y`).
pub const SM2_PUBLIC_KEY_BYTES: usize = 65;
pub const SIGNATURE_BYTES: usize = 64;
/// DER of `OneAsymmetricKey { version 0, algorithm id-Ed25519, privateKey OCTET STRING {
/// OCTET STRING (32 bytes) } }`, up to the 32-byte seed that follows it.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Ed25519,
    Sm2,
}

impl std::str::FromStr for Scheme {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "ed25519" => Ok(Scheme::Ed25519),
            "sm2" => Ok(Scheme::Sm2),
            other => Err(Error::new(
                ErrorCode::BadRequest,
                format!("unknown scheme `{other}` (ed25519 or sm2)"),
            )),
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Scheme::Ed25519 => "ed25519",
            Scheme::Sm2 => "sm2",
        })
    }
}

/// A public key. Constructing one validates it: a held `PublicKey` is a usable point.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PublicKey {
    Ed25519([u8; ED25519_PUBLIC_KEY_BYTES]),
    Sm2([u8; SM2_PUBLIC_KEY_BYTES]),
}

/// A signature: Ed25519 `R ‖ s`, or SM2 `r ‖ s` (big-endian scalars).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Signature {
    Ed25519([u8; SIGNATURE_BYTES]),
    Sm2([u8; SIGNATURE_BYTES]),
}

fn bad_key(why: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::BadPublicKey, format!("public key: {why}"))
}

fn bad_signature(why: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::BadSignature, format!("signature: {why}"))
}

impl PublicKey {
    /// Validate raw public key bytes of `scheme`. SM2 keys may be compressed (33 bytes) or
    /// uncompressed (65 bytes); they are kept uncompressed.
    pub fn from_bytes(scheme: Scheme, bytes: &[u8]) -> Result<PublicKey, Error> {
        match scheme {
            Scheme::Ed25519 => {
                let bytes: [u8; 32] = bytes.try_into().map_err(|_| bad_key("ed25519 keys are 32 bytes"))?;
                ed25519_point(&bytes).ok_or_else(|| bad_key("not a canonical ed25519 point"))?;
                Ok(PublicKey::Ed25519(bytes))
            }
            Scheme::Sm2 => {
                let key = sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DEFAULT_DIST_ID, bytes)
                    .map_err(|_| bad_key("not a point on the SM2 curve"))?;
                let uncompressed: [u8; 65] = key
                    .to_sec1_bytes()
                    .as_ref()
                    .try_into()
                    .map_err(|_| bad_key("unexpected SEC1 length"))?;
                Ok(PublicKey::Sm2(uncompressed))
            }
        }
    }

    pub fn scheme(&self) -> Scheme {
        match self {
            PublicKey::Ed25519(_) => Scheme::Ed25519,
            PublicKey::Sm2(_) => Scheme::Sm2,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            PublicKey::Ed25519(bytes) => bytes,
            PublicKey::Sm2(bytes) => bytes,
        }
    }

    /// Refuse an Ed25519 key with a torsion (small-order) component: `A + T` for a point `T`
    /// of order 2, 4 or 8 verifies every signature made for `A` under the cofactored rule, so
    /// without this one private key backs eight distinct public keys. Checked where a key
    /// enters the ledger (registration, rotation, genesis) rather than on every decode: the
    /// check is a full scalar multiplication. SM2 (prime-order curve) has no torsion.
    pub fn check_torsion_free(&self) -> Result<(), Error> {
        match self {
            PublicKey::Ed25519(bytes) => match ed25519_point(bytes) {
                Some(point) if point.is_torsion_free() => Ok(()),
                _ => Err(bad_key("ed25519 key has a small-order (torsion) component")),
            },
            PublicKey::Sm2(_) => Ok(()),
        }
    }

    /// `scheme:hex`, the text form used in JSON, genesis files and the CLI.
    pub fn to_text(&self) -> String {
        format!("{}:{}", self.scheme(), hex::encode(self.as_bytes()))
    }

    pub fn from_text(text: &str) -> Result<PublicKey, Error> {
        let (scheme, key) = text
            .split_once(':')
            .ok_or_else(|| bad_key("expected `ed25519:<hex>` or `sm2:<hex>`"))?;
        let bytes = hex::decode(key).map_err(|error| bad_key(format!("not hex: {error}")))?;
        PublicKey::from_bytes(scheme.parse()?, &bytes)
    }

    /// Verify one signature under the rule of this module.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), Error> {
        match (self, signature) {
            (PublicKey::Ed25519(key), Signature::Ed25519(signature)) => {
                if ed25519_verify_cofactored(key, message, signature) {
                    Ok(())
                } else {
                    Err(bad_signature("ed25519 signature does not verify"))
                }
            }
            (PublicKey::Sm2(key), Signature::Sm2(signature)) => sm2_verify(key, message, signature),
            _ => Err(bad_signature("signature scheme does not match the key")),
        }
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.to_text())
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.to_text())
    }
}

impl Signature {
    pub fn scheme(&self) -> Scheme {
        match self {
            Signature::Ed25519(_) => Scheme::Ed25519,
            Signature::Sm2(_) => Scheme::Sm2,
        }
    }

    pub fn as_bytes(&self) -> &[u8; SIGNATURE_BYTES] {
        match self {
            Signature::Ed25519(bytes) | Signature::Sm2(bytes) => bytes,
        }
    }

    /// A signature made elsewhere: Ed25519 raw 64 bytes; SM2 raw `r ‖ s` or DER
    /// (as `openssl pkeyutl -sign` writes it).
    pub fn from_bytes(scheme: Scheme, bytes: &[u8]) -> Result<Signature, Error> {
        match scheme {
            Scheme::Ed25519 => {
                let bytes: [u8; 64] = bytes
                    .try_into()
                    .map_err(|_| bad_signature("ed25519 signatures are 64 bytes"))?;
                Ok(Signature::Ed25519(bytes))
            }
            Scheme::Sm2 => {
                let signature = if bytes.len() == SIGNATURE_BYTES {
                    sm2::dsa::Signature::from_slice(bytes)
                } else {
                    sm2::dsa::Signature::from_der(bytes)
                }
                .map_err(|_| bad_signature("not an SM2 signature (raw r‖s or DER)"))?;
                Ok(Signature::Sm2(signature.to_bytes().into()))
            }
        }
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}:{}", self.scheme(), hex::encode(self.as_bytes()))
    }
}

// Canonical bytes: (scheme tag, raw bytes). JSON: `scheme:hex`.
impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_text())
        } else {
            (self.scheme(), serde_bytes_ref(self.as_bytes())).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            PublicKey::from_text(&text).map_err(D::Error::custom)
        } else {
            let (scheme, bytes) = <(Scheme, ByteBuf)>::deserialize(deserializer)?;
            let key = PublicKey::from_bytes(scheme, &bytes.0).map_err(D::Error::custom)?;
            if key.as_bytes() != bytes.0.as_slice() {
                return Err(D::Error::custom("public key is not in canonical (uncompressed) form"));
            }
            Ok(key)
        }
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&format!("{}:{}", self.scheme(), hex::encode(self.as_bytes())))
        } else {
            (self.scheme(), serde_bytes_ref(self.as_bytes())).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let (scheme, bytes) = if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            let (scheme, hex_text) = text
                .split_once(':')
                .ok_or_else(|| D::Error::custom("expected scheme:hex"))?;
            let scheme: Scheme = scheme.parse().map_err(D::Error::custom)?;
            (scheme, hex::decode(hex_text).map_err(D::Error::custom)?)
        } else {
            let (scheme, bytes) = <(Scheme, ByteBuf)>::deserialize(deserializer)?;
            (scheme, bytes.0)
        };
        let bytes: [u8; 64] = bytes
            .try_into()
            .map_err(|_| D::Error::custom("signatures are 64 bytes"))?;
        Ok(match scheme {
            Scheme::Ed25519 => Signature::Ed25519(bytes),
            Scheme::Sm2 => Signature::Sm2(bytes),
        })
    }
}

struct BytesRef<'a>(&'a [u8]);
fn serde_bytes_ref(bytes: &[u8]) -> BytesRef<'_> {
    BytesRef(bytes)
}
impl Serialize for BytesRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

struct ByteBuf(Vec<u8>);
impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ByteBuf;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(bytes.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(bytes))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

/// A private key, held in memory to sign. Stored as PKCS#8 PEM.
pub enum PrivateKey {
    Ed25519(ed25519_dalek::SigningKey),
    Sm2 {
        secret: sm2::SecretKey,
        signing: Box<sm2::dsa::SigningKey>,
    },
}

impl PrivateKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate(scheme: Scheme) -> Result<PrivateKey, Error> {
        let mut seed = [0u8; 32];
        loop {
            getrandom::fill(&mut seed)
                .map_err(|error| Error::new(ErrorCode::Unavailable, format!("no OS randomness: {error}")))?;
            match scheme {
                Scheme::Ed25519 => return Ok(PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))),
                // Rejection sampling: the odds that 32 random bytes are not a valid scalar are ~2^-32.
                Scheme::Sm2 => {
                    if let Ok(secret) = sm2::SecretKey::from_slice(&seed) {
                        return PrivateKey::from_sm2_secret(secret);
                    }
                }
            }
        }
    }

    /// Deterministic key from a 32-byte seed (demo genesis, tests, benchmarks).
    pub fn from_seed(scheme: Scheme, seed: [u8; 32]) -> Result<PrivateKey, Error> {
        match scheme {
            Scheme::Ed25519 => Ok(PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))),
            Scheme::Sm2 => {
                let secret = sm2::SecretKey::from_slice(&seed)
                    .map_err(|_| Error::new(ErrorCode::BadRequest, "seed is not a valid SM2 scalar"))?;
                PrivateKey::from_sm2_secret(secret)
            }
        }
    }

    fn from_sm2_secret(secret: sm2::SecretKey) -> Result<PrivateKey, Error> {
        let signing = sm2::dsa::SigningKey::new(SM2_DEFAULT_DIST_ID, &secret)
            .map_err(|_| Error::new(ErrorCode::BadRequest, "invalid SM2 secret key"))?;
        Ok(PrivateKey::Sm2 {
            secret,
            signing: Box::new(signing),
        })
    }

    pub fn scheme(&self) -> Scheme {
        match self {
            PrivateKey::Ed25519(_) => Scheme::Ed25519,
            PrivateKey::Sm2 { .. } => Scheme::Sm2,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::Ed25519(key) => PublicKey::Ed25519(key.verifying_key().to_bytes()),
            PrivateKey::Sm2 { signing, .. } => {
                let bytes = signing.verifying_key().to_sec1_bytes();
                let bytes: [u8; 65] = match bytes.as_ref().try_into() {
                    Ok(bytes) => bytes,
                    Err(_) => panic!("sm2 uncompressed SEC1 points are 65 bytes"),
                };
                PublicKey::Sm2(bytes)
            }
        }
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        use sm2::dsa::signature::Signer as _;
        match self {
            PrivateKey::Ed25519(key) => Signature::Ed25519(ed25519_dalek::Signer::sign(key, message).to_bytes()),
            PrivateKey::Sm2 { signing, .. } => {
                let signature: sm2::dsa::Signature = signing.sign(message);
                Signature::Sm2(signature.to_bytes().into())
            }
        }
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), readable by `openssl pkey`.
    ///
    /// Ed25519 keys are written as PKCS#8 v1 (RFC 8410, no public key attached), the form
    /// OpenSSL writes itself: OpenSSL 3.0 refuses the v2 form ed25519-dalek would write.
    pub fn to_pem(&self) -> Result<String, Error> {
        use sm2::pkcs8::der::pem::{LineEnding, encode_string};
        let pem = match self {
            PrivateKey::Ed25519(key) => {
                let der = [ED25519_PKCS8_V1_PREFIX.as_slice(), key.as_bytes()].concat();
                encode_string("PRIVATE KEY", LineEnding::LF, &der).map_err(|error| error.to_string())
            }
            PrivateKey::Sm2 { secret, .. } => {
                use sm2::pkcs8::EncodePrivateKey as _;
                secret
                    .to_pkcs8_pem(LineEnding::LF)
                    .map(|pem| pem.to_string())
                    .map_err(|error| error.to_string())
            }
        };
        pem.map_err(|error| Error::new(ErrorCode::Malformed, format!("cannot encode key: {error}")))
    }

    /// Read a PKCS#8 PEM private key of either scheme (ours, or one made by OpenSSL).
    pub fn from_pem(text: &str) -> Result<PrivateKey, Error> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(text) {
            return Ok(PrivateKey::Ed25519(key));
        }
        match sm2::SecretKey::from_pkcs8_pem(text) {
            Ok(secret) => PrivateKey::from_sm2_secret(secret),
            Err(_) => Err(Error::new(
                ErrorCode::Malformed,
                "not a PKCS#8 PEM private key for ed25519 or SM2",
            )),
        }
    }

    pub fn read_file(path: &std::path::Path) -> Result<PrivateKey, Error> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            Error::new(
                ErrorCode::NotFound,
                format!("cannot read key file {}: {error}", path.display()),
            )
        })?;
        PrivateKey::from_pem(&text)
    }

    /// Write the key as PEM to a new file, readable by its owner only, and sync it. An
    /// existing file is never overwritten (`AlreadyExists`): a lost key is lost money.
    pub fn write_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        let pem = self.to_pem().map_err(std::io::Error::other)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        std::io::Write::write_all(&mut file, pem.as_bytes())?;
        file.sync_all()
    }
}

// --- Ed25519 under the cofactored rule ----------------------------------------------------

/// Whether a compressed Edwards y-coordinate is in canonical form: y < p, and the sign bit is
/// clear when x = 0 (y = 1 or y = p - 1). Cheap byte comparisons, no field arithmetic.
fn ed25519_encoding_canonical(bytes: &[u8; 32]) -> bool {
    let sign = bytes[31] >> 7;
    let top = bytes[31] & 0x7f;
    let middle_all_ff = bytes[1..31].iter().all(|&b| b == 0xff);
    let at_least_p = top == 0x7f && middle_all_ff && bytes[0] >= 0xed;
    if at_least_p {
        return false;
    }
    if sign == 1 {
        let is_one = bytes[0] == 1 && bytes[1..31].iter().all(|&b| b == 0) && top == 0;
        let is_minus_one = bytes[0] == 0xec && middle_all_ff && top == 0x7f;
        if is_one || is_minus_one {
            return false;
        }
    }
    true
}

/// A canonical, on-curve point that is not of small order (a usable public key).
fn ed25519_point(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    let point = ed25519_any_point(bytes)?;
    (!point.is_small_order()).then_some(point)
}

fn ed25519_any_point(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    if !ed25519_encoding_canonical(bytes) {
        return None;
    }
    CompressedEdwardsY(*bytes).decompress()
}

/// The parts of one Ed25519 verification, decoded under the canonical-encoding rules.
struct Ed25519Parts {
    a: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

fn ed25519_parts(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Option<Ed25519Parts> {
    let a = ed25519_point(key)?;
    let r_bytes: [u8; 32] = signature[..32].try_into().ok()?;
    let s_bytes: [u8; 32] = signature[32..].try_into().ok()?;
    let r = ed25519_any_point(&r_bytes)?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let mut hasher = Sha512::new();
    hasher.update(r_bytes);
    hasher.update(key);
    hasher.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
    Some(Ed25519Parts { a, r, s, k })
}

fn ed25519_verify_cofactored(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Some(parts) = ed25519_parts(key, message, signature) else {
        return false;
    };
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&parts.k, &-parts.a, &parts.s);
    (sb_minus_ka - parts.r).mul_by_cofactor().is_identity()
}

/// One item of a batch: the signer's key, the signed message and the signature.
pub struct BatchItem<'a> {
    pub public_key: &'a PublicKey,
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

/// Verify many signatures; the verdict for each item equals `PublicKey::verify` on it.
/// Ed25519 items are checked together with one multiscalar multiplication of the cofactored
/// equation; if that fails, each is checked alone. SM2 items are checked one by one.
pub fn verify_batch(items: &[BatchItem<'_>]) -> Vec<bool> {
    let mut verdicts = vec![false; items.len()];
    let mut ed25519: Vec<(usize, Ed25519Parts)> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match (item.public_key, item.signature) {
            (PublicKey::Ed25519(key), Signature::Ed25519(signature)) => {
                if let Some(parts) = ed25519_parts(key, item.message, signature) {
                    ed25519.push((index, parts));
                }
            }
            _ => verdicts[index] = item.public_key.verify(item.message, item.signature).is_ok(),
        }
    }
    if ed25519_batch_equation_holds(items, &ed25519) {
        for (index, _) in &ed25519 {
            verdicts[*index] = true;
        }
    } else {
        for (index, parts) in &ed25519 {
            let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&parts.k, &-parts.a, &parts.s);
            verdicts[*index] = (sb_minus_ka - parts.r).mul_by_cofactor().is_identity();
        }
    }
    verdicts
}

/// `[8](−(Σ zᵢsᵢ)B + Σ zᵢRᵢ + Σ zᵢkᵢAᵢ) = 0` with 128-bit coefficients zᵢ derived from a hash of
/// every signature in the batch, so they cannot be chosen by a signer and need no OS randomness.
fn ed25519_batch_equation_holds(items: &[BatchItem<'_>], batch: &[(usize, Ed25519Parts)]) -> bool {
    if batch.is_empty() {
        return true;
    }
    let mut transcript = Sha512::new();
    transcript.update(b"corridor ed25519 batch v1");
    for (index, parts) in batch {
        transcript.update(items[*index].signature.as_bytes());
        transcript.update(parts.k.as_bytes());
    }
    let seed = transcript.finalize();
    let coefficients: Vec<Scalar> = (0..batch.len() as u64)
        .map(|i| {
            let mut hasher = Sha512::new();
            hasher.update(seed);
            hasher.update(i.to_le_bytes());
            let digest = hasher.finalize();
            let mut low = [0u8; 16];
            low.copy_from_slice(&digest[..16]);
            Scalar::from(u128::from_le_bytes(low))
        })
        .collect();
    let basepoint_coefficient: Scalar = batch.iter().zip(&coefficients).map(|((_, parts), z)| z * parts.s).sum();
    let scalars = std::iter::once(-basepoint_coefficient)
        .chain(coefficients.iter().copied())
        .chain(batch.iter().zip(&coefficients).map(|((_, parts), z)| z * parts.k));
    let points = std::iter::once(curve25519_dalek::constants::ED25519_BASEPOINT_POINT)
        .chain(batch.iter().map(|(_, parts)| parts.r))
        .chain(batch.iter().map(|(_, parts)| parts.a));
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

fn sm2_verify(key: &[u8; 65], message: &[u8], signature: &[u8; 64]) -> Result<(), Error> {
    use sm2::dsa::signature::Verifier as _;
    let key = sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DEFAULT_DIST_ID, key)
        .map_err(|_| bad_key("not a point on the SM2 curve"))?;
    let signature = sm2::dsa::Signature::from_slice(signature).map_err(|_| bad_signature("r or s out of range"))?;
    key.verify(message, &signature)
        .map_err(|_| bad_signature("SM2 signature does not verify"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scheme: Scheme, byte: u8) -> PrivateKey {
        PrivateKey::from_seed(scheme, [byte; 32]).expect("valid seed")
    }

    #[test]
    fn sign_verify_both_schemes() {
        for scheme in [Scheme::Ed25519, Scheme::Sm2] {
            let private = key(scheme, 7);
            let public = private.public_key();
            let signature = private.sign(b"pay 10 CNY");
            assert_eq!(public.verify(b"pay 10 CNY", &signature), Ok(()));
            let refused = public.verify(b"pay 11 CNY", &signature).map_err(|e| e.code);
            assert_eq!(refused, Err(ErrorCode::BadSignature));
            let other = key(scheme, 8).public_key();
            assert!(other.verify(b"pay 10 CNY", &signature).is_err());
        }
    }

    #[test]
    fn scheme_mismatch_is_refused() {
        let ed = key(Scheme::Ed25519, 1);
        let sm = key(Scheme::Sm2, 1);
        assert!(sm.public_key().verify(b"m", &ed.sign(b"m")).is_err());
    }

    #[test]
    fn rfc8032_test_vector_1() {
        let secret: [u8; 32] = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .expect("hex")
            .try_into()
            .expect("32");
        let private = PrivateKey::from_seed(Scheme::Ed25519, secret).expect("seed");
        assert_eq!(
            hex::encode(private.public_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let signature = private.sign(b"");
        assert_eq!(
            hex::encode(signature.as_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn pem_round_trip() {
        for scheme in [Scheme::Ed25519, Scheme::Sm2] {
            let private = PrivateKey::generate(scheme).expect("randomness");
            let pem = private.to_pem().expect("pem");
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
            let back = PrivateKey::from_pem(&pem).expect("parses");
            assert_eq!(back.public_key(), private.public_key());
        }
        assert!(PrivateKey::from_pem("not a key").is_err());
    }

    /// A key written by `openssl genpkey -algorithm ed25519` reads, and we write it back
    /// byte for byte (PKCS#8 v1, which OpenSSL 3.0 reads).
    #[test]
    fn openssl_ed25519_pem_round_trips_exactly() {
        let openssl = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA51H/1onts4Y8sKb3cTHXJtzPDsfu4EH05gIxJN3qLZ\n-----END PRIVATE KEY-----\n";
        let key = PrivateKey::from_pem(openssl).expect("OpenSSL's PEM reads");
        assert_eq!(key.scheme(), Scheme::Ed25519);
        assert_eq!(key.to_pem().expect("pem"), openssl);
    }

    #[test]
    fn non_canonical_and_small_order_keys_are_refused() {
        // The identity point (y = 1) is of small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey::from_bytes(Scheme::Ed25519, &identity).is_err());
        // y = p (non-canonical encoding of 0).
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(!ed25519_encoding_canonical(&p));
        // y = 1 with the sign bit set: x = 0 cannot be negative.
        let mut negative_zero = identity;
        negative_zero[31] |= 0x80;
        assert!(!ed25519_encoding_canonical(&negative_zero));
        assert!(PublicKey::from_bytes(Scheme::Ed25519, &[1, 2, 3]).is_err());
        assert!(PublicKey::from_bytes(Scheme::Sm2, &[4; 65]).is_err());
    }

    /// Adversary: one private key, eight public keys. `A + T` (T of order 8) verifies the
    /// owner's signatures under the cofactored rule, so it must never be accepted as a key.
    #[test]
    fn torsioned_ed25519_keys_are_refused() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let private = key(Scheme::Ed25519, 11);
        let honest = private.public_key();
        assert_eq!(honest.check_torsion_free(), Ok(()));
        assert_eq!(key(Scheme::Sm2, 11).public_key().check_torsion_free(), Ok(()));
        let a = CompressedEdwardsY(honest.as_bytes().try_into().expect("32"))
            .decompress()
            .expect("point");
        for torsion in &EIGHT_TORSION[1..] {
            let bytes = (a + torsion).compress().to_bytes();
            // It parses (it is a canonical point of large order) ...
            let twin = PublicKey::from_bytes(Scheme::Ed25519, &bytes).expect("a large-order point");
            assert_ne!(twin, honest);
            // The owner of `private` signs for the twin: the signature verifies under our rule.
            let PrivateKey::Ed25519(signing) = &private else {
                unreachable!()
            };
            let expanded = ed25519_dalek::hazmat::ExpandedSecretKey::from(&signing.to_bytes());
            let twin_verifying = ed25519_dalek::VerifyingKey::from_bytes(&bytes).expect("twin key");
            let forged = ed25519_dalek::hazmat::raw_sign::<Sha512>(&expanded, b"proof", &twin_verifying);
            assert_eq!(twin.verify(b"proof", &Signature::Ed25519(forged.to_bytes())), Ok(()));
            // ... and is refused as a key.
            assert_eq!(
                twin.check_torsion_free().map_err(|e| e.code),
                Err(ErrorCode::BadPublicKey)
            );
        }
    }

    #[test]
    fn non_canonical_s_is_refused_on_both_paths() {
        let private = key(Scheme::Ed25519, 3);
        let public = private.public_key();
        let Signature::Ed25519(mut bytes) = private.sign(b"m") else {
            unreachable!()
        };
        // s + l: the same scalar, non-canonically encoded.
        // l = 2^252 + 27742317777372353535851937790883648493, little-endian.
        let l: [u8; 32] = hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = bytes[32 + i] as u16 + l[i] as u16 + carry;
            bytes[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        let malleated = Signature::Ed25519(bytes);
        assert!(public.verify(b"m", &malleated).is_err());
        let items = [BatchItem {
            public_key: &public,
            message: b"m",
            signature: &malleated,
        }];
        assert_eq!(verify_batch(&items), vec![false]);
    }

    /// A signature whose R carries a small-order (torsion) component passes the cofactored
    /// equation. It must pass on both paths, whatever else is in the batch.
    #[test]
    fn torsion_component_gets_the_same_verdict_single_and_batched() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let seed = [9u8; 32];
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let expanded = ed25519_dalek::hazmat::ExpandedSecretKey::from(&seed);
        let public = PublicKey::Ed25519(signing.verifying_key().to_bytes());
        let message = b"torsion";
        // Sign by hand with R = rB + T, where T has order 8.
        let r = Scalar::from(12345u64);
        let big_r = (EdwardsPoint::mul_base(&r) + EIGHT_TORSION[1]).compress();
        let mut hasher = Sha512::new();
        hasher.update(big_r.as_bytes());
        hasher.update(public.as_bytes());
        hasher.update(message);
        let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
        let s = r + k * expanded.scalar;
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(big_r.as_bytes());
        bytes[32..].copy_from_slice(s.as_bytes());
        let torsioned = Signature::Ed25519(bytes);
        assert!(public.verify(message, &torsioned).is_ok());
        // dalek's own strict check refuses it: that is the divergence our rule removes.
        let dalek_signature = ed25519_dalek::Signature::from_bytes(&bytes);
        assert!(
            signing
                .verifying_key()
                .verify_strict(message, &dalek_signature)
                .is_err()
        );

        let honest_keys: Vec<PrivateKey> = (20..40).map(|b| key(Scheme::Ed25519, b)).collect();
        let honest: Vec<(PublicKey, Signature)> =
            honest_keys.iter().map(|k| (k.public_key(), k.sign(message))).collect();
        for size in [1, 2, 5, 20] {
            let mut items: Vec<BatchItem<'_>> = honest[..size - 1]
                .iter()
                .map(|(public_key, signature)| BatchItem {
                    public_key,
                    message,
                    signature,
                })
                .collect();
            items.push(BatchItem {
                public_key: &public,
                message,
                signature: &torsioned,
            });
            assert!(verify_batch(&items).iter().all(|ok| *ok), "batch of {size}");
        }
    }

    #[test]
    fn batch_matches_single_with_bad_items() {
        let keys: Vec<PrivateKey> = (0..12u8)
            .map(|i| key(if i % 3 == 0 { Scheme::Sm2 } else { Scheme::Ed25519 }, i + 1))
            .collect();
        let messages: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 10]).collect();
        let publics: Vec<PublicKey> = keys.iter().map(PrivateKey::public_key).collect();
        let mut signatures: Vec<Signature> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
        signatures[4] = keys[5].sign(&messages[4]); // wrong signer
        signatures[6] = keys[6].sign(b"other message");
        let items: Vec<BatchItem<'_>> = (0..12)
            .map(|i| BatchItem {
                public_key: &publics[i],
                message: &messages[i],
                signature: &signatures[i],
            })
            .collect();
        let batched = verify_batch(&items);
        let single: Vec<bool> = items
            .iter()
            .map(|i| i.public_key.verify(i.message, i.signature).is_ok())
            .collect();
        assert_eq!(batched, single);
        assert_eq!(batched.iter().filter(|ok| !**ok).count(), 2);
    }

    #[test]
    fn sm2_der_and_raw_signatures_are_the_same() {
        let private = key(Scheme::Sm2, 5);
        let Signature::Sm2(raw) = private.sign(b"m") else {
            unreachable!()
        };
        let der = sm2::dsa::Signature::from_slice(&raw).expect("raw").to_der();
        let from_der = Signature::from_bytes(Scheme::Sm2, der.as_bytes()).expect("der");
        assert_eq!(from_der, Signature::Sm2(raw));
        assert!(private.public_key().verify(b"m", &from_der).is_ok());
    }

    #[test]
    fn canonical_bytes_and_json() {
        for scheme in [Scheme::Ed25519, Scheme::Sm2] {
            let public = key(scheme, 2).public_key();
            let bytes = crate::codec::encode(&public);
            assert_eq!(crate::codec::decode::<PublicKey>(&bytes, 256), Ok(public.clone()));
            let json = serde_json::to_string(&public).expect("json");
            assert_eq!(serde_json::from_str::<PublicKey>(&json).expect("back"), public);
        }
    }
}
