//! The wire format: a small deterministic, length-checked, little-endian byte format.
//!
//! The rule this module keeps: decoding takes a byte limit, checks every length against both the
//! named limit and the bytes that remain before allocating, rejects trailing bytes, and never
//! panics, whatever the input.
//!
//! ```text
//! message      = version:u8 (=2) epoch:u64 tag:u8 body
//! Proposal  1  = block signature
//! Vote      2  = kind:u8 view:u64 digest:[32] signer:u16 [since:u64 if nullify] signature
//! Cert      3  = certificate
//! Request   4  = view:u64
//! Notarized 5  = block certificate
//! BlockReq  6  = digest:[32]
//! Block     7  = block
//! block        = epoch:u64 view:u64 height:u64 parent_view:u64 parent:[32] payload_len:u32 payload
//! header       = epoch:u64 view:u64 height:u64 parent_view:u64 parent:[32] payload_digest:[32]
//! certificate  = kind:u8 view:u64 digest:[32] count:u16 (signer:u16 [since:u64 if nullify] signature)*count
//! signature    = len:u16 bytes        (len <= SIGNATURE_BYTES_MAX)
//! chain        = version:u8 count:u16 block*count headers:u32 header*headers certificate
//! safety state = version:u8 epoch:u64 view:u64 flags:u8 proposed:[32] notarized:[32] finalized:[32]
//! ```

use crate::error::Error;
use crate::limits::{CATCH_UP_BLOCKS_MAX, PAYLOAD_BYTES_MAX, PROOF_HEADERS_MAX, SIGNATURE_BYTES_MAX, VALIDATORS_MAX};
use crate::message::{Certificate, Endorsement, FinalizedChain, Message, Proposal, Vote, VoteKind};
use crate::types::{Block, BlockHeader, Digest, Epoch, Signature, View};

const VERSION: u8 = 2;

const TAG_PROPOSAL: u8 = 1;
const TAG_VOTE: u8 = 2;
const TAG_CERTIFICATE: u8 = 3;
const TAG_REQUEST: u8 = 4;
const TAG_NOTARIZED: u8 = 5;
const TAG_BLOCK_REQUEST: u8 = 6;
const TAG_BLOCK: u8 = 7;

/// Appends fields to a byte vector.
pub(crate) struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Writer {
        Writer { bytes: Vec::new() }
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    pub(crate) fn u16(&mut self, value: u16) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn digest(&mut self, digest: &Digest) {
        self.bytes.extend_from_slice(&digest.0);
    }

    fn signature(&mut self, signature: &Signature) {
        assert!(signature.0.len() <= SIGNATURE_BYTES_MAX, "own signature over the limit");
        self.u16(u16::try_from(signature.0.len()).expect("bounded by SIGNATURE_BYTES_MAX"));
        self.bytes.extend_from_slice(&signature.0);
    }

    fn block(&mut self, block: &Block) {
        assert!(block.payload.len() <= PAYLOAD_BYTES_MAX, "own payload over the limit");
        self.u64(block.epoch);
        self.u64(block.view);
        self.u64(block.height);
        self.u64(block.parent_view);
        self.digest(&block.parent);
        self.u32(u32::try_from(block.payload.len()).expect("bounded by PAYLOAD_BYTES_MAX"));
        self.bytes.extend_from_slice(&block.payload);
    }

    fn header(&mut self, header: &BlockHeader) {
        self.u64(header.epoch);
        self.u64(header.view);
        self.u64(header.height);
        self.u64(header.parent_view);
        self.digest(&header.parent);
        self.digest(&header.payload_digest);
    }

    fn certificate(&mut self, certificate: &Certificate) {
        assert!(
            certificate.endorsements.len() <= VALIDATORS_MAX,
            "certificate over the limit"
        );
        self.u8(certificate.kind.tag());
        self.u64(certificate.view);
        self.digest(&certificate.digest);
        self.u16(u16::try_from(certificate.endorsements.len()).expect("bounded by VALIDATORS_MAX"));
        for endorsement in &certificate.endorsements {
            self.u16(endorsement.signer);
            if certificate.kind == VoteKind::Nullify {
                self.u64(endorsement.since);
            }
            self.signature(&endorsement.signature);
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads fields from a byte slice that was checked against a limit.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], limit_bytes: usize) -> Result<Reader<'a>, Error> {
        if bytes.len() > limit_bytes {
            return Err(Error::TooLarge);
        }
        Ok(Reader { bytes })
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], Error> {
        if count > self.bytes.len() {
            return Err(Error::Truncated);
        }
        let (head, tail) = self.bytes.split_at(count);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn digest(&mut self) -> Result<Digest, Error> {
        Ok(Digest(self.array()?))
    }

    fn signature(&mut self) -> Result<Signature, Error> {
        let length = usize::from(self.u16()?);
        if length > SIGNATURE_BYTES_MAX {
            return Err(Error::LimitExceeded);
        }
        Ok(Signature(self.take(length)?.to_vec()))
    }

    fn block(&mut self) -> Result<Block, Error> {
        let epoch = self.u64()?;
        let view = self.u64()?;
        let height = self.u64()?;
        let parent_view = self.u64()?;
        let parent = self.digest()?;
        let length = usize::try_from(self.u32()?).map_err(|_| Error::LimitExceeded)?;
        if length > PAYLOAD_BYTES_MAX {
            return Err(Error::LimitExceeded);
        }
        let payload = self.take(length)?.to_vec();
        Ok(Block {
            epoch,
            view,
            height,
            parent_view,
            parent,
            payload,
        })
    }

    fn certificate(&mut self) -> Result<Certificate, Error> {
        let kind = VoteKind::from_tag(self.u8()?)?;
        let view = self.u64()?;
        let digest = self.digest()?;
        let count = usize::from(self.u16()?);
        if count > VALIDATORS_MAX {
            return Err(Error::LimitExceeded);
        }
        let mut endorsements = Vec::with_capacity(count);
        for _ in 0..count {
            let signer = self.u16()?;
            let since = if kind == VoteKind::Nullify { self.u64()? } else { 0 };
            let signature = self.signature()?;
            endorsements.push(Endorsement {
                signer,
                since,
                signature,
            });
        }
        Ok(Certificate {
            kind,
            view,
            digest,
            endorsements,
        })
    }

    fn header(&mut self) -> Result<BlockHeader, Error> {
        Ok(BlockHeader {
            epoch: self.u64()?,
            view: self.u64()?,
            height: self.u64()?,
            parent_view: self.u64()?,
            parent: self.digest()?,
            payload_digest: self.digest()?,
        })
    }

    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes)
        }
    }
}

/// The bytes a block digest is computed over: the version and the header.
pub(crate) fn header_bytes(header: &BlockHeader) -> Vec<u8> {
    let mut writer = Writer::new();
    writer.u8(VERSION);
    writer.header(header);
    writer.finish()
}

/// Encodes a message of `epoch` for the wire.
pub fn encode(epoch: Epoch, message: &Message) -> Vec<u8> {
    let mut writer = Writer::new();
    writer.u8(VERSION);
    writer.u64(epoch);
    match message {
        Message::Proposal(proposal) => {
            writer.u8(TAG_PROPOSAL);
            writer.block(&proposal.block);
            writer.signature(&proposal.signature);
        }
        Message::Vote(vote) => {
            writer.u8(TAG_VOTE);
            writer.u8(vote.kind.tag());
            writer.u64(vote.view);
            writer.digest(&vote.digest);
            writer.u16(vote.signer);
            if vote.kind == VoteKind::Nullify {
                writer.u64(vote.since);
            }
            writer.signature(&vote.signature);
        }
        Message::Certificate(certificate) => {
            writer.u8(TAG_CERTIFICATE);
            writer.certificate(certificate);
        }
        Message::Request { view } => {
            writer.u8(TAG_REQUEST);
            writer.u64(*view);
        }
        Message::Notarized { block, notarization } => {
            writer.u8(TAG_NOTARIZED);
            writer.block(block);
            writer.certificate(notarization);
        }
        Message::BlockRequest { digest } => {
            writer.u8(TAG_BLOCK_REQUEST);
            writer.digest(digest);
        }
        Message::Block(block) => {
            writer.u8(TAG_BLOCK);
            writer.block(block);
        }
    }
    writer.finish()
}

/// Decodes a message of at most `limit_bytes` bytes, with the epoch it was sent in; never
/// panics.
pub fn decode(bytes: &[u8], limit_bytes: usize) -> Result<(Epoch, Message), Error> {
    let mut reader = Reader::new(bytes, limit_bytes)?;
    if reader.u8()? != VERSION {
        return Err(Error::UnknownTag);
    }
    let epoch = reader.u64()?;
    let message = match reader.u8()? {
        TAG_PROPOSAL => {
            let block = reader.block()?;
            let signature = reader.signature()?;
            Message::Proposal(Proposal { block, signature })
        }
        TAG_VOTE => {
            let kind = VoteKind::from_tag(reader.u8()?)?;
            let view: View = reader.u64()?;
            let digest = reader.digest()?;
            let signer = reader.u16()?;
            let since = if kind == VoteKind::Nullify { reader.u64()? } else { 0 };
            let signature = reader.signature()?;
            Message::Vote(Vote {
                kind,
                view,
                digest,
                since,
                signer,
                signature,
            })
        }
        TAG_CERTIFICATE => Message::Certificate(reader.certificate()?),
        TAG_REQUEST => Message::Request { view: reader.u64()? },
        TAG_NOTARIZED => {
            let block = reader.block()?;
            let notarization = reader.certificate()?;
            Message::Notarized { block, notarization }
        }
        TAG_BLOCK_REQUEST => Message::BlockRequest {
            digest: reader.digest()?,
        },
        TAG_BLOCK => Message::Block(reader.block()?),
        _ => return Err(Error::UnknownTag),
    };
    reader.finish()?;
    Ok((epoch, message))
}

/// Encodes a finalized batch (what block sync sends).
pub fn encode_chain(chain: &FinalizedChain) -> Vec<u8> {
    assert!(chain.blocks.len() <= CATCH_UP_BLOCKS_MAX, "batch over the limit");
    assert!(chain.headers.len() <= PROOF_HEADERS_MAX, "proof over the limit");
    let mut writer = Writer::new();
    writer.u8(VERSION);
    writer.u16(u16::try_from(chain.blocks.len()).expect("bounded by CATCH_UP_BLOCKS_MAX"));
    for block in &chain.blocks {
        writer.block(block);
    }
    writer.u32(u32::try_from(chain.headers.len()).expect("bounded by PROOF_HEADERS_MAX"));
    for header in &chain.headers {
        writer.header(header);
    }
    writer.certificate(&chain.finalization);
    writer.finish()
}

/// Decodes a finalized batch of at most `limit_bytes` bytes; never panics. The result still
/// has to pass `FinalizedChain::verify`.
pub fn decode_chain(bytes: &[u8], limit_bytes: usize) -> Result<FinalizedChain, Error> {
    let mut reader = Reader::new(bytes, limit_bytes)?;
    if reader.u8()? != VERSION {
        return Err(Error::UnknownTag);
    }
    let count = usize::from(reader.u16()?);
    if count > CATCH_UP_BLOCKS_MAX {
        return Err(Error::LimitExceeded);
    }
    let mut blocks = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        blocks.push(reader.block()?);
    }
    let headers_count = usize::try_from(reader.u32()?).map_err(|_| Error::LimitExceeded)?;
    if headers_count > PROOF_HEADERS_MAX {
        return Err(Error::LimitExceeded);
    }
    let mut headers = Vec::with_capacity(headers_count.min(1024));
    for _ in 0..headers_count {
        headers.push(reader.header()?);
    }
    let finalization = reader.certificate()?;
    reader.finish()?;
    Ok(FinalizedChain {
        blocks,
        headers,
        finalization,
    })
}
