//! Argument and record encoding shared with the host's SDK (`corridor_sdk::contract::ArgsWriter`):
//! a sequence of fields, each a u32 little-endian length and that many bytes. Integers are
//! fields of 8 little-endian bytes; text is UTF-8. Readers must consume every field.

use alloc::string::String;
use alloc::vec::Vec;

#[derive(Default)]
pub struct ArgsWriter {
    bytes: Vec<u8>,
}

impl ArgsWriter {
    pub fn new() -> ArgsWriter {
        ArgsWriter::default()
    }

    pub fn bytes(mut self, field: &[u8]) -> ArgsWriter {
        self.bytes.extend_from_slice(&(field.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(field);
        self
    }

    pub fn str(self, text: &str) -> ArgsWriter {
        self.bytes(text.as_bytes())
    }

    pub fn u64(self, value: u64) -> ArgsWriter {
        self.bytes(&value.to_le_bytes())
    }

    pub fn i64(self, value: i64) -> ArgsWriter {
        self.bytes(&value.to_le_bytes())
    }

    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads fields in order; any malformed or missing field aborts the call with `bad_args`.
pub struct Args<'a> {
    rest: &'a [u8],
}

impl<'a> Args<'a> {
    pub fn new(bytes: &'a [u8]) -> Args<'a> {
        Args { rest: bytes }
    }

    pub fn bytes(&mut self) -> &'a [u8] {
        if self.rest.len() < 4 {
            crate::abort("bad_args", "missing field");
        }
        let (head, tail) = self.rest.split_at(4);
        let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if tail.len() < n {
            crate::abort("bad_args", "field longer than the arguments");
        }
        let (field, rest) = tail.split_at(n);
        self.rest = rest;
        field
    }

    pub fn str(&mut self) -> String {
        String::from_utf8(self.bytes().to_vec()).unwrap_or_else(|_| crate::abort("bad_args", "text is not UTF-8"))
    }

    pub fn u64(&mut self) -> u64 {
        let field = self.bytes();
        let array: [u8; 8] = field
            .try_into()
            .unwrap_or_else(|_| crate::abort("bad_args", "not 8 bytes"));
        u64::from_le_bytes(array)
    }

    pub fn i64(&mut self) -> i64 {
        self.u64() as i64
    }

    /// Abort unless every field was read.
    pub fn end(self) {
        if !self.rest.is_empty() {
            crate::abort("bad_args", "trailing arguments");
        }
    }
}
