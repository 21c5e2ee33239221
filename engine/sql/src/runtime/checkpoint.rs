//! The byte form of a pipeline's state, for checkpoints: a JSON header (watermarks, counters,
//! windows) followed by one Arrow IPC stream per open window holding its group keys, each
//! accumulator's partial state, and each group's revision and changed flag.
//!
//! ```text
//! "AICK" | u32 LE header length | header (JSON) | per window: u64 LE length | Arrow IPC stream
//! ```

use super::state::{TakenState, WindowState};
use super::watermark::Watermarks;
use super::{Counters, RuntimeError, StreamingPipeline};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array};
use datafusion::arrow::datatypes::{Field, Schema, UInt32Type};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const MAGIC: &[u8; 4] = b"AICK";

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
            let taken = st.take().map_err(|e| ck_err(name, e))?;
            st.put(&taken).map_err(|e| ck_err(name, e))?;
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
            fields.push(Field::new(
                "emitted",
                datafusion::arrow::datatypes::DataType::UInt32,
                false,
            ));
            cols.push(Arc::new(UInt32Array::from(st.emitted.clone())));
            fields.push(Field::new(
                "dirty",
                datafusion::arrow::datatypes::DataType::Boolean,
                false,
            ));
            cols.push(Arc::new(BooleanArray::from(st.dirty.clone())));
            let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
                .map_err(|e| ck_err(name, e))?;
            let mut buf = Vec::new();
            {
                let mut w = StreamWriter::try_new(&mut buf, &batch.schema())
                    .map_err(|e| ck_err(name, e))?;
                w.write(&batch).map_err(|e| ck_err(name, e))?;
                w.finish().map_err(|e| ck_err(name, e))?;
            }
            bodies.push(buf);
            metas.push(WindowMeta {
                start: s,
                fired: st.fired,
                state_widths: taken.states.iter().map(Vec::len).collect(),
            });
        }
        let header = Header {
            version: 1,
            pipeline: self.name.clone(),
            fingerprint: self.fingerprint,
            watermarks: self.wm.clone(),
            counters: self.counters,
            windows: metas,
        };
        let h = serde_json::to_vec(&header).map_err(|e| self.ck_err(e))?;
        let mut out = Vec::with_capacity(8 + h.len() + bodies.iter().map(Vec::len).sum::<usize>());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(
            &u32::try_from(h.len())
                .map_err(|e| self.ck_err(e))?
                .to_le_bytes(),
        );
        out.extend_from_slice(&h);
        for b in bodies {
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(&b);
        }
        Ok(out)
    }

    /// Replaces the pipeline's state with a checkpoint's.
    ///
    /// # Errors
    /// [`RuntimeError::Checkpoint`] if the bytes are not a checkpoint of this pipeline and
    /// version of its SQL; the state is then unchanged.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), RuntimeError> {
        if bytes.len() < 8 || &bytes[..4] != MAGIC {
            return Err(self.ck_err("not a checkpoint"));
        }
        let hl = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        let h = bytes
            .get(8..8 + hl)
            .ok_or_else(|| self.ck_err("truncated header"))?;
        let header: Header = serde_json::from_slice(h).map_err(|e| self.ck_err(e))?;
        if header.version != 1 {
            return Err(self.ck_err(format!("unknown checkpoint version {}", header.version)));
        }
        if header.fingerprint != self.fingerprint {
            return Err(self.ck_err("written by another version of the pipeline's SQL"));
        }
        let mut at = 8 + hl;
        let mut windows = std::collections::BTreeMap::new();
        for meta in &header.windows {
            let len_bytes: [u8; 8] = bytes
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| self.ck_err("truncated window"))?;
            let len = u64::from_le_bytes(len_bytes) as usize;
            at += 8;
            let body = bytes
                .get(at..at + len)
                .ok_or_else(|| self.ck_err("truncated window"))?;
            at += len;
            let mut reader = StreamReader::try_new(body, None).map_err(|e| self.ck_err(e))?;
            let batch = reader
                .next()
                .ok_or_else(|| self.ck_err("empty window"))?
                .map_err(|e| self.ck_err(e))?;
            let nk = self.c.key_schema.fields().len();
            let width: usize = nk + meta.state_widths.iter().sum::<usize>() + 2;
            if batch.num_columns() != width || meta.state_widths.len() != self.c.aggs.len() {
                return Err(self.ck_err("window state has the wrong shape"));
            }
            let keys: Vec<ArrayRef> = batch.columns()[..nk].to_vec();
            let mut states = Vec::new();
            let mut c = nk;
            for w in &meta.state_widths {
                states.push(batch.columns()[c..c + w].to_vec());
                c += w;
            }
            let taken = TakenState { keys, states };
            let mut st =
                WindowState::new(&self.c.key_schema, &self.c.aggs).map_err(|e| self.ck_err(e))?;
            st.put(&taken).map_err(|e| self.ck_err(e))?;
            let emitted = batch
                .column(c)
                .as_primitive_opt::<UInt32Type>()
                .ok_or_else(|| self.ck_err("bad emitted column"))?;
            let dirty = batch
                .column(c + 1)
                .as_boolean_opt()
                .ok_or_else(|| self.ck_err("bad dirty column"))?;
            if emitted.len() != st.len() {
                return Err(self.ck_err("window state has the wrong number of groups"));
            }
            st.emitted = emitted.values().to_vec();
            st.dirty = dirty.iter().map(|d| d.unwrap_or(false)).collect();
            st.fired = meta.fired;
            windows.insert(meta.start, st);
        }
        self.windows = windows;
        self.wm = header.watermarks;
        self.counters = header.counters;
        Ok(())
    }
}
