//! Sequential reader over the segments: large positional reads, records handed out as slices of
//! the read buffer (no per-record copy), every checksum verified, and never past what the writer
//! has committed.

use super::format::{self, Bad};
use super::segment;
use super::shared::Shared;
use crate::{LogError, LogReader, Record};
use async_trait::async_trait;
use bytes::Bytes;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

/// Bytes read per chunk.
const CHUNK: usize = 4 << 20;

struct Open {
    first_seq: u64,
    path: PathBuf,
    file: File,
    offset: u64,
}

/// A reader of the embedded log.
pub struct EmbeddedReader {
    shared: Arc<Shared>,
    pos: u64,
    open: Option<Open>,
}

impl EmbeddedReader {
    /// A reader at the first record with sequence `>= from`.
    pub fn new(shared: Arc<Shared>, from: u64) -> EmbeddedReader {
        EmbeddedReader {
            shared,
            pos: from.max(1),
            open: None,
        }
    }

    fn read_some(&mut self, max: usize, out: &mut Vec<Record>) -> Result<bool, LogError> {
        // Where is `pos`, and how much of that segment is committed?
        let (first_seq, path, committed, seg_next, is_last, start_offset) = {
            let segs = self.shared.segments.lock();
            let Some(first) = segs.first() else {
                return Ok(false);
            };
            if self.pos < first.first_seq {
                // Retention removed what this reader had not read yet.
                self.pos = first.first_seq;
            }
            let i = segs
                .partition_point(|s| s.first_seq <= self.pos)
                .saturating_sub(1);
            let s = &segs[i];
            if self.pos >= s.next_seq {
                if i + 1 < segs.len() {
                    // Sealed segment exhausted (or a gap): move to the next one.
                    self.pos = self.pos.max(segs[i + 1].first_seq);
                    self.open = None;
                    return Ok(true);
                }
                return Ok(false);
            }
            (
                s.first_seq,
                s.path.clone(),
                s.len,
                s.next_seq,
                i + 1 == segs.len(),
                s.offset_for(self.pos),
            )
        };
        let _ = (seg_next, is_last);
        if self.open.as_ref().is_none_or(|o| o.first_seq != first_seq) {
            let file = File::open(&path).map_err(|source| LogError::Io {
                path: path.clone(),
                source,
            })?;
            self.open = Some(Open {
                first_seq,
                path: path.clone(),
                file,
                offset: start_offset,
            });
        }
        let Some(o) = self.open.as_mut() else {
            return Ok(false);
        };
        if o.offset >= committed {
            return Ok(false);
        }
        let mut want = CHUNK.min((committed - o.offset) as usize);
        loop {
            let raw = segment::read_at(&o.file, &o.path, o.offset, want)?;
            let buf = Bytes::from(raw);
            let mut at = 0usize;
            let mut progressed = false;
            while at < buf.len() && out.len() < max {
                match format::parse(&buf, at) {
                    Ok(p) => {
                        let len = p.len;
                        let seq = p.header.seq;
                        if seq >= self.pos {
                            out.push(format::to_record(p, &buf));
                            self.pos = seq + 1;
                        }
                        at += len;
                        progressed = true;
                    }
                    Err(Bad::Short(need)) => {
                        if !progressed && o.offset + (need as u64) <= committed && need > want {
                            // One record larger than the chunk: read exactly it.
                            want = need;
                            break;
                        }
                        if o.offset + (at as u64) + (need as u64) > committed {
                            return Err(LogError::Corrupt {
                                segment: o.path.clone(),
                                offset: o.offset + at as u64,
                                reason: "record extends past the committed end".into(),
                            });
                        }
                        break;
                    }
                    Err(Bad::Invalid(reason)) => {
                        o.offset += at as u64;
                        return Err(LogError::Corrupt {
                            segment: o.path.clone(),
                            offset: o.offset,
                            reason,
                        });
                    }
                }
            }
            if progressed || at > 0 {
                o.offset += at as u64;
                return Ok(true);
            }
            if want == CHUNK.min((committed - o.offset) as usize) {
                return Ok(false);
            }
        }
    }
}

#[async_trait]
impl LogReader for EmbeddedReader {
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Record>, LogError> {
        let mut out = Vec::new();
        while out.len() < max.max(1) {
            match self.read_some(max.max(1), &mut out) {
                Ok(true) => {}
                Ok(false) => break,
                // Hand out what precedes a damaged record first; the position stays before it,
                // so the next call reports the damage.
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(out)
    }

    fn position(&self) -> u64 {
        self.pos
    }
}
