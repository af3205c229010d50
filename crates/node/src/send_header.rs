//! The send stream's header across napi (docs/design.md §8.3; the format itself is
//! `core::send_format`): `NativeSendHeader` and its conversions, `parseSendHeader` (which
//! answers a `DecodedSendHeader`, the one decode a receive goes on from),
//! `sendHeaderLength`, `sendFormatVersion`, and the stream key. `parseSendHeader` is
//! synchronous: it only decodes (and, under a key, authenticates) at most
//! `MAX_HEADER_LEN` bytes. Identities and image hashes cross as 32 hex digits (neither
//! fits a JS number); a stream key crosses as its key file's contents, parsed here
//! (`send_format::parse_key`).

use napi::bindgen_prelude::{Buffer, FromNapiRef, FromNapiValue};
use napi::sys;
use napi_derive::napi;
use reflink_pool_core::error::{codes, Error, Result};
use reflink_pool_core::imagehash::{from_hex, to_hex};
use reflink_pool_core::send_format::{
    parse_key, BaseRef, Header, Seal, StateId, StreamKey, VolumeKind, MAX_HEADER_LEN, VERSION,
};

use crate::outcome::{outcome, to_js, to_u64};

/// The header of a send stream as JS sees it.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeSendHeader {
    /// Size of the target image in bytes.
    pub size: f64,
    /// The target state's identity (32 hex digits).
    pub target_id: String,
    /// The base state's identity, size and image hash (incremental streams only).
    pub base_id: Option<String>,
    pub base_size: Option<f64>,
    pub base_hash: Option<String>,
    /// The volume's kind (docs/design.md §8.3; absent from version 1 streams).
    pub save_on_stop: Option<bool>,
    pub snap_on_start: Option<bool>,
    pub rw: Option<bool>,
    /// DATA records may be zstd-compressed.
    pub compressed: Option<bool>,
    /// A MAC chain under a key seals the records.
    pub keyed: Option<bool>,
    /// A resumed stream: the image offset its records start at.
    pub resume_from: Option<f64>,
    /// Set by `parseSendHeader`: the format version and the header's bytes.
    pub version: Option<u32>,
    pub header_length: Option<u32>,
}

/// A stream's header, decoded (and, under a key, authenticated) once: its fields for JS,
/// and what the receive goes on from (the header and the seal chain its records continue,
/// docs/design.md §8.8). `ReceiveStream` takes this, not the header's bytes again.
#[napi]
#[derive(Clone)]
pub struct DecodedSendHeader {
    pub(crate) header: Header,
    pub(crate) seal: Seal,
    /// Boxed: the outcome enum holding this stays near the size of its error variant.
    fields: Box<NativeSendHeader>,
}

#[napi]
impl DecodedSendHeader {
    /// The header's fields.
    #[napi(getter)]
    pub fn fields(&self) -> NativeSendHeader {
        (*self.fields).clone()
    }
}

/// The outcome type converts both ways; JS only ever hands the instance back.
impl FromNapiValue for DecodedSendHeader {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        // SAFETY: `value` is a live handle of this call's `env`, as napi passes it.
        let decoded: &DecodedSendHeader = unsafe { FromNapiRef::from_napi_ref(env, value)? };
        Ok(decoded.clone())
    }
}

outcome!(SendHeaderOutcome, DecodedSendHeader);

pub(crate) fn bad(detail: String) -> Error {
    Error::lib(codes::ERR_INVALID_ARG_VALUE, "validate", detail)
}

fn state_id(name: &str, hex: &str) -> Result<StateId> {
    let v = from_hex(hex).ok_or_else(|| bad(format!("{name} must be 32 hex digits")))?;
    Ok(v.to_be_bytes())
}

fn hash_of(name: &str, hex: &str) -> Result<u128> {
    from_hex(hex).ok_or_else(|| bad(format!("{name} must be 32 hex digits")))
}

fn id_hex(id: &StateId) -> String {
    to_hex(u128::from_be_bytes(*id))
}

impl NativeSendHeader {
    pub(crate) fn to_core(&self) -> Result<Header> {
        let base = match (&self.base_id, self.base_size, &self.base_hash) {
            (Some(id), Some(size), Some(hash)) => Some(BaseRef {
                id: state_id("baseId", id)?,
                size: to_u64("baseSize", size)?,
                hash: hash_of("baseHash", hash)?,
            }),
            (None, None, None) => None,
            _ => return Err(bad("baseId, baseSize and baseHash go together".to_string())),
        };
        Ok(Header {
            volume: VolumeKind {
                save_on_stop: self.save_on_stop.unwrap_or(false),
                snap_on_start: self.snap_on_start.unwrap_or(false),
                rw: self.rw.unwrap_or(false),
            },
            compressed: self.compressed.unwrap_or(false),
            keyed: self.keyed.unwrap_or(false),
            resume_from: self
                .resume_from
                .map(|v| to_u64("resumeFrom", v))
                .transpose()?,
            ..Header::new(
                to_u64("size", self.size)?,
                state_id("targetId", &self.target_id)?,
                base,
            )
        })
    }

    fn from_core(h: &Header) -> Result<Self> {
        Ok(NativeSendHeader {
            size: to_js("size", h.size)?,
            target_id: id_hex(&h.target_id),
            base_id: h.base.map(|b| id_hex(&b.id)),
            base_size: h.base.map(|b| to_js("baseSize", b.size)).transpose()?,
            base_hash: h.base.map(|b| to_hex(b.hash)),
            save_on_stop: (h.version >= 2).then_some(h.volume.save_on_stop),
            snap_on_start: (h.version >= 2).then_some(h.volume.snap_on_start),
            rw: (h.version >= 2).then_some(h.volume.rw),
            compressed: Some(h.compressed),
            keyed: Some(h.keyed),
            resume_from: h.resume_from.map(|v| to_js("resumeFrom", v)).transpose()?,
            version: Some(h.version),
            header_length: Some(h.wire_len() as u32),
        })
    }
}

/// A stream key from its key file's contents (absent: an unkeyed stream).
pub(crate) fn key_of(contents: Option<&Buffer>) -> Result<Option<StreamKey>> {
    contents.map(|c| parse_key(c)).transpose()
}

/// Decode and check a stream's header from its first bytes (at least
/// `sendHeaderLength()`, or the whole stream if shorter), authenticating it under
/// `key` (a key file's contents) when given (synchronous: no I/O).
#[napi]
pub fn parse_send_header(data: Buffer, key: Option<Buffer>) -> SendHeaderOutcome {
    key_of(key.as_ref())
        .and_then(|k| Header::decode(&data, k.as_ref()))
        .and_then(|(header, seal)| {
            Ok(DecodedSendHeader {
                fields: Box::new(NativeSendHeader::from_core(&header)?),
                header,
                seal,
            })
        })
        .into()
}

/// Bytes to read before `parseSendHeader`: the longest header. Every valid stream is
/// longer (its header and at least an END record).
#[napi]
pub fn send_header_length() -> u32 {
    MAX_HEADER_LEN as u32
}

/// The send stream format version this build writes.
#[napi]
pub fn send_format_version() -> u32 {
    VERSION
}
