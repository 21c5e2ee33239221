//! The byte form of a pipeline's state, for checkpoints: a JSON header (watermarks, counters,
//! windows) followed by one Arrow IPC stream per open window holding its group keys, each
//! accumulator's partial state, and each group's revision and changed flag.
//!
//! ```text
//! "AICK" | u32 LE header length | header (JSON) | per window: u64 LE length | Arrow IPC stream
//!        | with session windows: u64 LE length | state IPC stream | u64 LE length | sessions IPC
//! ```
//!
//! Version 2 adds session windows: the header's `sessions` (next session id, state widths), the
//! sessions' aggregation state (keyed by session id, laid out as a window's), and the session
//! table (group key columns, id, start, last event, id start, revision, changed flag). Version 1
//! checkpoints (no sessions) are still read.

use super::compile::WindowKind;
use super::session::{KeyedSession, Session, Sessions};
use super::state::{TakenState, WindowState};
use super::watermark::Watermarks;
use super::{Counters, RuntimeError, StreamingPipeline};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, UInt32Array, UInt64Array,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Int64Type, Schema, SchemaRef, UInt32Type, UInt64Type,
};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::row::RowConverter;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const MAGIC: &[u8; 4] = b"AICK";

/// The version written.
const VERSION: u32 = 2;

fn ck_err(pipeline: &str, detail: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Checkpoint {
        pipeline: pipeline.to_string(),
        detail: detail.to_string(),
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    version: u32,
    pipeline: String,
    fingerprint: u64,
    watermarks: Watermarks,
    counters: Counters,
    windows: Vec<WindowMeta>,
    /// Session windows' state, when the pipeline has them (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sessions: Option<SessionsMeta>,
}

#[derive(Serialize, Deserialize)]
struct SessionsMeta {
    next_id: u64,
    /// Number of state columns of each aggregate.
    state_widths: Vec<usize>,
}

#[derive(Serialize, Deserialize)]
struct WindowMeta {
    start: i64,
    fired: bool,
    /// Number of state columns of each aggregate.
    state_widths: Vec<usize>,
}

impl StreamingPipeline {
    fn ck_err(&self, detail: impl std::fmt::Display) -> RuntimeError {
        ck_err(&self.name, detail)
    }

    /// The pipeline's whole state as bytes (watermarks, counters, every open window). The
    /// state stays in place.
    ///
    /// # Errors
    /// [`RuntimeError`] if DataFusion or Arrow cannot hand over the state.
    pub fn checkpoint(&mut self) -> Result<Vec<u8>, RuntimeError> {
        let mut metas = Vec::with_capacity(self.windows.len());
        let mut bodies = Vec::with_capacity(self.windows.len());
        let name = self.name.as_str();
        for (&s, st) in self.windows.iter_mut() {
            let (buf, state_widths) = state_body(name, st)?;
            bodies.push(buf);
            metas.push(WindowMeta {
                start: s,
                fired: st.fired,
                state_widths,
            });
        }
        let mut sessions_meta = None;
        if let Some(sessions) = self.sessions.as_mut() {
            let (buf, state_widths) = state_body(name, sessions.state_mut())?;
            bodies.push(buf);
            sessions_meta = Some(SessionsMeta {
                next_id: sessions.next_id(),
                state_widths,
            });
            bodies.push(session_table(
                name,
                &self.converter,
                &self.c.key_schema,
                sessions,
            )?);
        }
        let header = Header {
            version: VERSION,
            pipeline: self.name.clone(),
            fingerprint: self.fingerprint,
            watermarks: self.wm.clone(),
            counters: self.counters,
            windows: metas,
            sessions: sessions_meta,
        };
        let h = serde_json::to_vec(&header).map_err(|e| self.ck_err(e))?;
        frame(MAGIC, &h, bodies).map_err(|e| self.ck_err(e))
    }

    /// Replaces the pipeline's state with a checkpoint's.
    ///
    /// # Errors
    /// [`RuntimeError::Checkpoint`] if the bytes are not a checkpoint of this pipeline and
    /// version of its SQL; the state is then unchanged.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), RuntimeError> {
        let (h, mut at) = unframe(MAGIC, bytes, "not a checkpoint").map_err(|e| self.ck_err(e))?;
        let header: Header = serde_json::from_slice(h).map_err(|e| self.ck_err(e))?;
        if header.version != 1 && header.version != VERSION {
            return Err(self.ck_err(format!("unknown checkpoint version {}", header.version)));
        }
        if header.fingerprint != self.fingerprint {
            return Err(self.ck_err("written by another version of the pipeline's SQL"));
        }
        let mut windows = std::collections::BTreeMap::new();
        for meta in &header.windows {
            let body = next_body(bytes, &mut at).ok_or_else(|| self.ck_err("truncated window"))?;
            let read =
                self.read_state(body, self.c.key_schema.fields().len(), &meta.state_widths)?;
            let mut st =
                WindowState::new(&self.c.key_schema, &self.c.aggs).map_err(|e| self.ck_err(e))?;
            st.put(&read.taken).map_err(|e| self.ck_err(e))?;
            if read.emitted.len() != st.len() {
                return Err(self.ck_err("window state has the wrong number of groups"));
            }
            st.emitted = read.emitted;
            st.dirty = read.dirty;
            st.fired = meta.fired;
            windows.insert(meta.start, st);
        }
        let sessions = match (&header.sessions, self.c.window) {
            (Some(meta), WindowKind::Session { gap_ms }) if header.windows.is_empty() => {
                let body =
                    next_body(bytes, &mut at).ok_or_else(|| self.ck_err("truncated sessions"))?;
                let read = self.read_state(body, 1, &meta.state_widths)?;
                let body =
                    next_body(bytes, &mut at).ok_or_else(|| self.ck_err("truncated sessions"))?;
                let table = self.read_session_table(body)?;
                Some(
                    Sessions::restored(gap_ms, meta.next_id, table, &read.taken, &self.c.aggs)
                        .map_err(|e| self.ck_err(e))?,
                )
            }
            (None, WindowKind::Tumble { .. } | WindowKind::Hop { .. }) => None,
            _ => return Err(self.ck_err("the state is for another kind of window")),
        };
        self.windows = windows;
        self.sessions = sessions;
        self.wm = header.watermarks;
        self.counters = header.counters;
        Ok(())
    }

    /// Reads one state body: `nk` key columns, the state columns of each aggregate (`widths`),
    /// then each group's revision and changed flag.
    fn read_state(
        &self,
        body: &[u8],
        nk: usize,
        widths: &[usize],
    ) -> Result<ReadState, RuntimeError> {
        let batch = self.read_ipc(body)?;
        let width: usize = nk + widths.iter().sum::<usize>() + 2;
        if batch.num_columns() != width || widths.len() != self.c.aggs.len() {
            return Err(self.ck_err("window state has the wrong shape"));
        }
        let keys: Vec<ArrayRef> = batch.columns()[..nk].to_vec();
        let mut states = Vec::new();
        let mut c = nk;
        for w in widths {
            states.push(batch.columns()[c..c + w].to_vec());
            c += w;
        }
        let emitted = batch
            .column(c)
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| self.ck_err("bad emitted column"))?;
        let dirty = batch
            .column(c + 1)
            .as_boolean_opt()
            .ok_or_else(|| self.ck_err("bad dirty column"))?;
        Ok(ReadState {
            taken: TakenState { keys, states },
            emitted: emitted.values().to_vec(),
            dirty: dirty.iter().map(|d| d.unwrap_or(false)).collect(),
        })
    }

    /// Reads the session table written by [`session_table`].
    fn read_session_table(&self, body: &[u8]) -> Result<Vec<KeyedSession>, RuntimeError> {
        let batch = self.read_ipc(body)?;
        let nk = self.c.key_schema.fields().len();
        if batch.num_columns() != nk + 6 {
            return Err(self.ck_err("session table has the wrong shape"));
        }
        let rows = self
            .converter
            .convert_columns(&batch.columns()[..nk])
            .map_err(|e| self.ck_err(e))?;
        let bad = |what: &str| self.ck_err(format!("session table: bad {what} column"));
        let ints = |i: usize, what: &str| {
            batch
                .column(nk + i)
                .as_primitive_opt::<Int64Type>()
                .filter(|a| a.null_count() == 0)
                .ok_or_else(|| bad(what))
        };
        let ids = batch
            .column(nk)
            .as_primitive_opt::<UInt64Type>()
            .filter(|a| a.null_count() == 0)
            .ok_or_else(|| bad("id"))?;
        let starts = ints(1, "start")?;
        let lasts = ints(2, "last")?;
        let id_starts = batch
            .column(nk + 3)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| bad("id_start"))?;
        let revisions = batch
            .column(nk + 4)
            .as_primitive_opt::<UInt32Type>()
            .filter(|a| a.null_count() == 0)
            .ok_or_else(|| bad("revision"))?;
        let dirty = batch
            .column(nk + 5)
            .as_boolean_opt()
            .ok_or_else(|| bad("dirty"))?;
        Ok((0..batch.num_rows())
            .map(|i| {
                (
                    Arc::from(rows.row(i).as_ref()),
                    Session {
                        id: ids.value(i),
                        start: starts.value(i),
                        last: lasts.value(i),
                        id_start: id_starts.is_valid(i).then(|| id_starts.value(i)),
                        revision: revisions.value(i),
                        dirty: dirty.is_valid(i) && dirty.value(i),
                    },
                )
            })
            .collect())
    }

    /// The one batch of an Arrow IPC stream.
    pub(super) fn read_ipc(&self, body: &[u8]) -> Result<RecordBatch, RuntimeError> {
        let mut reader = StreamReader::try_new(body, None).map_err(|e| self.ck_err(e))?;
        reader
            .next()
            .ok_or_else(|| self.ck_err("empty window"))?
            .map_err(|e| self.ck_err(e))
    }
}

/// A state body read back.
struct ReadState {
    taken: TakenState,
    emitted: Vec<u32>,
    dirty: Vec<bool>,
}

/// `magic | u32 LE header length | header | per body: u64 LE length | body`.
pub(super) fn frame(
    magic: &[u8; 4],
    header: &[u8],
    bodies: Vec<Vec<u8>>,
) -> Result<Vec<u8>, std::num::TryFromIntError> {
    let mut out = Vec::with_capacity(8 + header.len() + bodies.iter().map(Vec::len).sum::<usize>());
    out.extend_from_slice(magic);
    out.extend_from_slice(&u32::try_from(header.len())?.to_le_bytes());
    out.extend_from_slice(header);
    for b in bodies {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(&b);
    }
    Ok(out)
}

/// The header of [`frame`]'s bytes and where its bodies start ([`next_body`]); `not_one`
/// is the error when the bytes do not start with `magic`.
pub(super) fn unframe<'a>(
    magic: &[u8; 4],
    bytes: &'a [u8],
    not_one: &'static str,
) -> Result<(&'a [u8], usize), &'static str> {
    if bytes.len() < 8 || &bytes[..4] != magic {
        return Err(not_one);
    }
    let hl = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    let h = bytes
        .get(8..8usize.saturating_add(hl))
        .ok_or("truncated header")?;
    Ok((h, 8 + hl))
}

/// The key columns (`k<i>`) and each aggregate's state columns (`s<a>_<j>`) of a taken state,
/// with their fields.
pub(super) fn state_columns(taken: &TakenState) -> (Vec<Field>, Vec<ArrayRef>) {
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (i, k) in taken.keys.iter().enumerate() {
        fields.push(Field::new(format!("k{i}"), k.data_type().clone(), true));
        cols.push(k.clone());
    }
    for (a, s) in taken.states.iter().enumerate() {
        for (j, c) in s.iter().enumerate() {
            fields.push(Field::new(format!("s{a}_{j}"), c.data_type().clone(), true));
            cols.push(c.clone());
        }
    }
    (fields, cols)
}

/// The next length-prefixed body at `at`, moving `at` past it.
pub(super) fn next_body<'a>(bytes: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len_bytes: [u8; 8] = bytes.get(*at..at.checked_add(8)?)?.try_into().ok()?;
    let len = usize::try_from(u64::from_le_bytes(len_bytes)).ok()?;
    let from = *at + 8;
    let body = bytes.get(from..from.checked_add(len)?)?;
    *at = from + len;
    Some(body)
}

/// One batch as an Arrow IPC stream.
pub(super) fn ipc(name: &str, batch: &RecordBatch) -> Result<Vec<u8>, RuntimeError> {
    let mut buf = Vec::new();
    {
        let mut w =
            StreamWriter::try_new(&mut buf, &batch.schema()).map_err(|e| ck_err(name, e))?;
        w.write(batch).map_err(|e| ck_err(name, e))?;
        w.finish().map_err(|e| ck_err(name, e))?;
    }
    Ok(buf)
}

/// A state's keys, each accumulator's partial state, and each group's revision and changed flag
/// as one IPC stream, plus the number of state columns of each aggregate. The state stays.
fn state_body(name: &str, st: &mut WindowState) -> Result<(Vec<u8>, Vec<usize>), RuntimeError> {
    let taken = st.take().map_err(|e| ck_err(name, e))?;
    st.put(&taken).map_err(|e| ck_err(name, e))?;
    let (mut fields, mut cols) = state_columns(&taken);
    fields.push(Field::new("emitted", DataType::UInt32, false));
    cols.push(Arc::new(UInt32Array::from(st.emitted.clone())));
    fields.push(Field::new("dirty", DataType::Boolean, false));
    cols.push(Arc::new(BooleanArray::from(st.dirty.clone())));
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|e| ck_err(name, e))?;
    Ok((
        ipc(name, &batch)?,
        taken.states.iter().map(Vec::len).collect(),
    ))
}

/// The session table as one IPC stream: the group key columns, then id, start, last event, id
/// start, revision and changed flag of each session, by key then start.
fn session_table(
    name: &str,
    converter: &RowConverter,
    key_schema: &SchemaRef,
    sessions: &Sessions,
) -> Result<Vec<u8>, RuntimeError> {
    let all: Vec<(&Arc<[u8]>, &Session)> = sessions.iter().collect();
    let parser = converter.parser();
    let keys = converter
        .convert_rows(all.iter().map(|(k, _)| parser.parse(k)))
        .map_err(|e| ck_err(name, e))?;
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (i, (k, f)) in keys.into_iter().zip(key_schema.fields()).enumerate() {
        // Rows give dictionary keys back as plain values; restore reads the declared types.
        let k = if k.data_type() == f.data_type() {
            k
        } else {
            datafusion::arrow::compute::cast(&k, f.data_type()).map_err(|e| ck_err(name, e))?
        };
        fields.push(Field::new(format!("k{i}"), k.data_type().clone(), true));
        cols.push(k);
    }
    fields.push(Field::new("id", DataType::UInt64, false));
    cols.push(Arc::new(UInt64Array::from_iter_values(
        all.iter().map(|(_, s)| s.id),
    )));
    fields.push(Field::new("start", DataType::Int64, false));
    cols.push(Arc::new(Int64Array::from_iter_values(
        all.iter().map(|(_, s)| s.start),
    )));
    fields.push(Field::new("last", DataType::Int64, false));
    cols.push(Arc::new(Int64Array::from_iter_values(
        all.iter().map(|(_, s)| s.last),
    )));
    fields.push(Field::new("id_start", DataType::Int64, true));
    cols.push(Arc::new(Int64Array::from_iter(
        all.iter().map(|(_, s)| s.id_start),
    )));
    fields.push(Field::new("revision", DataType::UInt32, false));
    cols.push(Arc::new(UInt32Array::from_iter_values(
        all.iter().map(|(_, s)| s.revision),
    )));
    fields.push(Field::new("dirty", DataType::Boolean, false));
    cols.push(Arc::new(BooleanArray::from_iter(
        all.iter().map(|(_, s)| Some(s.dirty)),
    )));
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|e| ck_err(name, e))?;
    ipc(name, &batch)
}
