//! `SendStream`: the sending end of the send stream (docs/design.md §8) across napi. The
//! object holds the open core `Sender` between steps (`steps::Stream`); every step
//! (open, next batch of records, close) is one task on the threadpool, so the JS side
//! pulls at its own pace and memory stays at one batch. Steps return the image offset
//! reached, which TS turns into progress. A `CancelToken` stops a long step (hashing a
//! large range) between chunks.

use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi_derive::napi;
use reflink_pool_core::error::Result;
use reflink_pool_core::imagehash::to_hex;
use reflink_pool_core::send::Sender;

use crate::cancel::CancelToken;
use crate::outcome::{outcome, task, to_js, to_u64};
use crate::pool_dir::PoolDir;
use crate::send_header::{key_of, NativeSendHeader};
use crate::steps::{check_size, open_read, opened, step, Step, Stream};

#[napi(object)]
#[derive(Debug, Clone)]
pub struct NativeSendStats {
    pub data_bytes: f64,
    pub hole_bytes: f64,
    pub records: f64,
    pub stream_bytes: f64,
    /// The target's image hash (32 hex digits), once the stream ended.
    pub image_hash: String,
}

/// A batch of stream bytes (None once the stream ended) and the image offset reached.
#[napi(object)]
pub struct NativeSendBatch {
    pub data: Option<Buffer>,
    pub position: f64,
}

outcome!(SendBatchOutcome, NativeSendBatch);

/// The stream (target, base, cancel flag, the open `Sender`) and what opens it.
pub struct SendShared {
    stream: Stream<Sender>,
    header: NativeSendHeader,
    key: Option<Buffer>,
}

#[napi]
pub struct SendStream {
    shared: Arc<SendShared>,
}

pub enum SendOp {
    Open,
    Next { want: f64 },
    Close,
}

pub type SendTask = Step<SendShared, SendOp>;

impl SendTask {
    fn run(&self) -> Result<NativeSendBatch> {
        let s = &self.shared;
        let st = &s.stream;
        let mut sender = st.state();
        match &self.op {
            SendOp::Open => {
                let header = s.header.to_core()?;
                let (target, path) = open_read(&st.target)?;
                check_size(&target, &path, header.size)?;
                let base = match (&st.base, &header.base) {
                    (Some(t), Some(b)) => {
                        let (f, p) = open_read(t)?;
                        check_size(&f, &p, b.size)?;
                        Some(f)
                    }
                    _ => None,
                };
                let key = key_of(s.key.as_ref())?;
                *sender =
                    Some(Sender::new(header, target, base, key).map_err(|e| e.with_path(&path))?);
                Ok(NativeSendBatch {
                    data: None,
                    position: 0.0,
                })
            }
            SendOp::Next { want } => {
                let snd = opened(&mut sender, "send stream")?;
                let want = to_u64("want", *want)? as usize;
                let mut out = Vec::with_capacity(want.min(8 << 20) + (2 << 20));
                let more = snd
                    .fill(&mut out, want, &st.control())
                    .map_err(|e| e.with_path(st.shown()))?;
                let position = if more {
                    snd.position()
                } else {
                    to_u64("size", s.header.size)?
                };
                Ok(NativeSendBatch {
                    data: (!out.is_empty()).then(|| out.into()),
                    position: to_js("position", position)?,
                })
            }
            SendOp::Close => {
                sender.take();
                Ok(NativeSendBatch {
                    data: None,
                    position: 0.0,
                })
            }
        }
    }
}

task!(SendTask, SendBatchOutcome, "send");

#[napi]
impl SendStream {
    /// No I/O here: `open()` opens `target` (and `base`, for an incremental header).
    /// `key`: a key file's contents, exactly when `header.keyed`.
    #[napi(constructor)]
    pub fn new(
        dir: &PoolDir,
        target: String,
        base: Option<String>,
        header: NativeSendHeader,
        key: Option<Buffer>,
        cancel: Option<&CancelToken>,
    ) -> Self {
        SendStream {
            shared: Arc::new(SendShared {
                stream: Stream::new(dir, target, base, cancel),
                header,
                key,
            }),
        }
    }

    #[napi]
    pub fn open(&self) -> AsyncTask<SendTask> {
        step(&self.shared, SendOp::Open)
    }

    /// Whole records totalling at least `want` bytes (fewer at the end); `data` is
    /// absent once the stream has ended.
    #[napi]
    pub fn next(&self, want: f64) -> AsyncTask<SendTask> {
        step(&self.shared, SendOp::Next { want })
    }

    #[napi]
    pub fn close(&self) -> AsyncTask<SendTask> {
        step(&self.shared, SendOp::Close)
    }

    /// What was sent so far (the image hash is set once the stream ended).
    #[napi]
    pub fn stats(&self) -> Option<NativeSendStats> {
        let sender = self.shared.stream.state();
        let st = sender.as_ref()?.stats();
        Some(NativeSendStats {
            data_bytes: st.data_bytes as f64,
            hole_bytes: st.hole_bytes as f64,
            records: st.records as f64,
            stream_bytes: st.stream_bytes as f64,
            image_hash: to_hex(st.image_hash),
        })
    }
}
