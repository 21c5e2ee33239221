//! Session windows: per group key, events less than the gap apart form one session, which spans
//! [first event, last event + gap). A row extends the session it falls within the gap of, starts a
//! new one, or bridges two or more sessions, which then merge into one.
//!
//! The state is per session, never per row: each group key keeps its sessions (start, last event,
//! revision) sorted by start, and the aggregation state of every session lives in one
//! [`WindowState`] keyed by an internal session id. The group key is not repeated in that state
//! (it is in the session table) so it stays a single integer column whatever the GROUP BY. When
//! sessions merge, their partial states are taken out, re-keyed to the surviving session and merged
//! back, as DataFusion merges partial aggregates. A session closes when the watermark reaches its
//! end; it is emitted, kept for the allowed lateness (a late row extending it re-emits it with the
//! next revision), then dropped.

use super::state::{TakenState, WindowState, accumulator};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array, UInt64Array};
use datafusion::arrow::compute::{filter, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use datafusion::arrow::row::Rows;
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::EmitTo;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// A hasher for session ids: they are sequential integers, not attacker-chosen, and closing
/// sessions looks up every group of the state, where SipHash dominated the cost.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by session id.
type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;
/// A set of session ids.
type IdSet = HashSet<u64, BuildHasherDefault<IdHasher>>;

/// Name of the session state's only key column.
const SESSION_ID: &str = "__aiops_session";

/// One session of one group key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    /// Internal id, the key of its aggregation state; never reused within a pipeline's state.
    pub id: u64,
    /// Time of its first event, Unix ms.
    pub start: i64,
    /// Time of its last event, Unix ms.
    pub last: i64,
    /// The start it was first emitted under: its event ids keep it when a late row moves the
    /// start earlier, so a revision replaces the earlier emission.
    pub id_start: Option<i64>,
    /// Emissions so far: the revision of the next one.
    pub revision: u32,
    /// Changed since its last emission (or never emitted).
    pub dirty: bool,
}

impl Session {
    /// End of the session (exclusive): last event + gap.
    pub fn end(&self, gap_ms: i64) -> i64 {
        self.last.saturating_add(gap_ms)
    }
}

/// A session with its group key (row bytes of the key converter).
pub(crate) type KeyedSession = (Arc<[u8]>, Session);

/// A session picked for emission: end, key, start, id start, revision, and its group in the
/// state.
struct Picked {
    end: i64,
    key: Arc<[u8]>,
    start: i64,
    id_start: i64,
    revision: u32,
    group: u32,
}

/// Sessions that the watermark closed (or that late rows changed after they closed), ready to be
/// emitted: one row per session, sorted by end time then group key. Sessions of one end time
/// leave as one emission.
pub(crate) struct Closed {
    /// Session ends.
    pub ends: Vec<i64>,
    /// Group keys, as rows of the pipeline's key converter.
    pub key_rows: Vec<Arc<[u8]>>,
    /// Session starts, the window column.
    pub starts: Vec<i64>,
    /// Starts used in event ids (see [`Session::id_start`]).
    pub id_starts: Vec<i64>,
    /// Revision of each session's emission.
    pub revisions: Vec<u32>,
    /// Final value of each aggregate, one row per session.
    pub values: Vec<ArrayRef>,
}

/// The session windows of a pipeline: the session table and the sessions' aggregation state.
pub(crate) struct Sessions {
    gap_ms: i64,
    next_id: u64,
    /// Per group key (row bytes of the key converter), its sessions sorted by start; they never
    /// overlap.
    by_key: BTreeMap<Arc<[u8]>, Vec<Session>>,
    /// Bytes of the keys in `by_key` (kept so that sizing the state does not walk it).
    key_bytes: usize,
    /// Every session by (end, id), with its key: what closes or expires next.
    ends: BTreeMap<(i64, u64), Arc<[u8]>>,
    /// Sessions with changes not emitted yet, by (end, id).
    pending: BTreeSet<(i64, u64)>,
    state: WindowState,
}

fn internal(what: &str) -> DataFusionError {
    DataFusionError::Internal(format!("session windows: {what}"))
}

/// The state's key schema: the session id alone.
fn id_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        SESSION_ID,
        DataType::UInt64,
        true,
    )]))
}

/// The session ids of a taken state's groups.
fn ids_of(taken: &TakenState) -> Result<&UInt64Array> {
    taken
        .keys
        .first()
        .and_then(|k| k.as_primitive_opt::<UInt64Type>())
        .ok_or_else(|| internal("the state is not keyed by session id"))
}

/// The places a row's session is tracked in, borrowed apart from the session list being changed.
struct Index<'a> {
    gap_ms: i64,
    next_id: &'a mut u64,
    ends: &'a mut BTreeMap<(i64, u64), Arc<[u8]>>,
    pending: &'a mut BTreeSet<(i64, u64)>,
    /// Sessions merged away in this batch → the session they merged into.
    merged: &'a mut IdMap<u64>,
}

impl Index<'_> {
    /// Adds an event at `t` to a key's sessions `list`; returns the id of its session.
    fn insert(&mut self, key: &Arc<[u8]>, list: &mut Vec<Session>, t: i64) -> u64 {
        let gap = self.gap_ms;
        let end = t.saturating_add(gap);
        // Sessions are disjoint and sorted by start, so their ends are sorted too and the ones
        // overlapping [t, t + gap) are contiguous.
        let i = list.partition_point(|s| s.end(gap) <= t);
        let k = i + list[i..].partition_point(|s| s.start < end);
        if k == i {
            let id = *self.next_id;
            *self.next_id += 1;
            list.insert(
                i,
                Session {
                    id,
                    start: t,
                    last: t,
                    id_start: None,
                    revision: 0,
                    dirty: true,
                },
            );
            self.ends.insert((end, id), key.clone());
            self.pending.insert((end, id));
            return id;
        }
        for s in &list[i..k] {
            self.ends.remove(&(s.end(gap), s.id));
            self.pending.remove(&(s.end(gap), s.id));
        }
        let keep = list[i].id;
        let start = list[i].start.min(t);
        let last = list[k - 1].last.max(t);
        // When several parts were emitted already, the merged session goes on under the id of
        // the earliest one; the others' emissions stay as they were (outputs are never retracted).
        let (id_start, revision) = list[i..k]
            .iter()
            .find(|s| s.id_start.is_some())
            .map_or((None, 0), |s| (s.id_start, s.revision));
        for s in &list[i + 1..k] {
            self.merged.insert(s.id, keep);
        }
        list.drain(i + 1..k);
        let s = &mut list[i];
        s.start = start;
        s.last = last;
        s.id_start = id_start;
        s.revision = revision;
        s.dirty = true;
        let e = s.end(gap);
        self.ends.insert((e, keep), key.clone());
        self.pending.insert((e, keep));
        keep
    }
}

/// The session an id ended up in after this batch's merges.
fn resolve(merged: &IdMap<u64>, mut id: u64) -> u64 {
    while let Some(&to) = merged.get(&id) {
        id = to;
    }
    id
}

impl Sessions {
    /// No sessions yet, for events less than `gap_ms` apart.
    pub fn new(gap_ms: i64, aggs: &[Arc<AggregateFunctionExpr>]) -> Result<Sessions> {
        Ok(Sessions {
            gap_ms,
            next_id: 0,
            by_key: BTreeMap::new(),
            key_bytes: 0,
            ends: BTreeMap::new(),
            pending: BTreeSet::new(),
            state: WindowState::new(&id_schema(), aggs)?,
        })
    }

    /// Open or kept sessions.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Groups of the aggregation state (one per session that received a row).
    pub fn groups(&self) -> usize {
        self.state.len()
    }

    /// Bytes held: the aggregation state plus the session table (keys, sessions, and their two
    /// indexes, estimated).
    pub fn size(&self) -> usize {
        self.state.size()
            + self.key_bytes
            + self.by_key.len() * 16
            + self.ends.len() * (2 * std::mem::size_of::<Session>() + 2 * 16)
    }

    /// Adds rows `rows` (indices into `keys` and `time`) to their sessions, creating, extending
    /// and merging sessions. `args` and `filters` are the aggregates' arguments and FILTERs of
    /// exactly those rows, in that order.
    ///
    /// # Errors
    /// If DataFusion fails to update or merge the state.
    pub fn absorb(
        &mut self,
        keys: &Rows,
        time: &[i64],
        rows: &[u32],
        args: &[Vec<ArrayRef>],
        filters: &[Option<BooleanArray>],
    ) -> Result<()> {
        let first_new = self.next_id;
        let mut order: Vec<u32> = rows.to_vec();
        // Each key's rows together, in event time: runs of rows extend one session.
        order.sort_by(|&a, &b| {
            keys.row(a as usize)
                .cmp(&keys.row(b as usize))
                .then(time[a as usize].cmp(&time[b as usize]))
        });
        let mut merged = IdMap::default();
        let mut session_of = vec![u64::MAX; keys.num_rows()];
        let mut index = Index {
            gap_ms: self.gap_ms,
            next_id: &mut self.next_id,
            ends: &mut self.ends,
            pending: &mut self.pending,
            merged: &mut merged,
        };
        let mut at = 0;
        while at < order.len() {
            let key = keys.row(order[at] as usize);
            let bytes = key.as_ref();
            let key_arc: Arc<[u8]> = match self.by_key.get_key_value(bytes) {
                Some((k, _)) => k.clone(),
                None => {
                    let k: Arc<[u8]> = Arc::from(bytes);
                    self.by_key.insert(k.clone(), Vec::new());
                    self.key_bytes += k.len();
                    k
                }
            };
            let list = self
                .by_key
                .get_mut(bytes)
                .ok_or_else(|| internal("a key vanished"))?;
            while at < order.len() && keys.row(order[at] as usize) == key {
                let r = order[at];
                let id = index.insert(&key_arc, list, time[r as usize]);
                if let Some(slot) = session_of.get_mut(r as usize) {
                    *slot = id;
                }
                at += 1;
            }
        }
        // Sessions that held state before this batch and merged into another: re-key their
        // partial states to the surviving session, where merge_batch combines them.
        if merged.keys().any(|id| *id < first_new) {
            let taken = self.state.take()?;
            let ids: UInt64Array = ids_of(&taken)?
                .values()
                .iter()
                .map(|id| resolve(&merged, *id))
                .collect();
            self.state.put(&TakenState {
                keys: vec![Arc::new(ids)],
                states: taken.states,
            })?;
        }
        let ids: UInt64Array = rows
            .iter()
            .map(|r| match session_of.get(*r as usize) {
                Some(&id) if id != u64::MAX => Ok(resolve(&merged, id)),
                _ => Err(internal("a row without a session")),
            })
            .collect::<Result<Vec<u64>>>()?
            .into();
        let ids: ArrayRef = Arc::new(ids);
        self.state.update(&[ids], args, filters)
    }

    /// Emits the changed sessions whose end is at most `wm` and drops the sessions whose end is
    /// at most `expire` (emitting them first if changed). Returns what to emit and how many
    /// sessions are emitted again (revisions).
    ///
    /// # Errors
    /// If DataFusion fails to hand over or evaluate the state.
    pub fn close(
        &mut self,
        wm: i64,
        expire: i64,
        aggs: &[Arc<AggregateFunctionExpr>],
    ) -> Result<(Option<Closed>, u64)> {
        let emit: Vec<(i64, u64)> = self
            .pending
            .range(..=(wm.max(expire), u64::MAX))
            .copied()
            .collect();
        let expired: Vec<(i64, u64)> = self
            .ends
            .range(..=(expire, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        if emit.is_empty() && expired.is_empty() {
            return Ok((None, 0));
        }
        let taken = self.state.take()?;
        let ids = ids_of(&taken)?;
        let group_of: IdMap<u32> = ids
            .values()
            .iter()
            .enumerate()
            .map(|(g, id)| (*id, g as u32))
            .collect();
        let mut revisions = 0;
        let mut picked: Vec<Picked> = Vec::with_capacity(emit.len());
        for &(end, id) in &emit {
            self.pending.remove(&(end, id));
            let Some(key) = self.ends.get(&(end, id)).cloned() else {
                continue;
            };
            let Some(s) = self
                .by_key
                .get_mut(&*key)
                .and_then(|l| l.iter_mut().find(|s| s.id == id))
            else {
                continue;
            };
            s.dirty = false;
            // A session whose rows all failed to intern has no state and nothing to say.
            let Some(&g) = group_of.get(&id) else {
                continue;
            };
            let id_start = *s.id_start.get_or_insert(s.start);
            picked.push(Picked {
                end,
                key,
                start: s.start,
                id_start,
                revision: s.revision,
                group: g,
            });
            if s.revision > 0 {
                revisions += 1;
            }
            s.revision = s.revision.saturating_add(1);
        }
        let mut out = None;
        if !picked.is_empty() {
            // `emit` is in end order already; one key has at most one session per end.
            picked.sort_by(|a, b| a.end.cmp(&b.end).then_with(|| a.key.cmp(&b.key)));
            let m = picked.len();
            let idx = UInt32Array::from(picked.iter().map(|p| p.group).collect::<Vec<_>>());
            let groups: Vec<usize> = (0..m).collect();
            let mut values = Vec::with_capacity(aggs.len());
            for (agg, st) in aggs.iter().zip(&taken.states) {
                let cols = st
                    .iter()
                    .map(|c| take(c.as_ref(), &idx, None))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut acc = accumulator(agg)?;
                acc.merge_batch(&cols, &groups, m)?;
                values.push(acc.evaluate(EmitTo::All)?);
            }
            out = Some(Closed {
                ends: picked.iter().map(|p| p.end).collect(),
                starts: picked.iter().map(|p| p.start).collect(),
                id_starts: picked.iter().map(|p| p.id_start).collect(),
                revisions: picked.iter().map(|p| p.revision).collect(),
                key_rows: picked.into_iter().map(|p| p.key).collect(),
                values,
            });
        }
        let mut dropped = IdSet::with_capacity_and_hasher(expired.len(), Default::default());
        for (end, id) in expired {
            self.pending.remove(&(end, id));
            if let Some(key) = self.ends.remove(&(end, id)) {
                if let Some(list) = self.by_key.get_mut(&*key) {
                    list.retain(|s| s.id != id);
                    if list.is_empty() {
                        self.by_key.remove(&*key);
                        self.key_bytes = self.key_bytes.saturating_sub(key.len());
                    }
                }
                dropped.insert(id);
            }
        }
        if dropped.is_empty() {
            self.state.put(&taken)?;
        } else {
            let keep = BooleanArray::from(
                ids.values()
                    .iter()
                    .map(|id| !dropped.contains(id))
                    .collect::<Vec<bool>>(),
            );
            let keys = vec![filter(taken.keys[0].as_ref(), &keep)?];
            let states = taken
                .states
                .iter()
                .map(|s| {
                    s.iter()
                        .map(|c| filter(c.as_ref(), &keep))
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.state.put(&TakenState { keys, states })?;
        }
        Ok((out, revisions))
    }

    /// The aggregation state, for checkpoints.
    pub fn state_mut(&mut self) -> &mut WindowState {
        &mut self.state
    }

    /// The next session id.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Every session with its key, by key then start.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<[u8]>, &Session)> {
        self.by_key
            .iter()
            .flat_map(|(k, l)| l.iter().map(move |s| (k, s)))
    }

    /// Sessions rebuilt from a checkpoint: the sessions with their keys, the next id and the
    /// aggregation state as taken out.
    ///
    /// # Errors
    /// A message if the parts disagree: overlapping sessions, duplicate ids, ids not below
    /// `next_id`, state of an unknown session, or state DataFusion refuses.
    pub fn restored(
        gap_ms: i64,
        next_id: u64,
        sessions: Vec<KeyedSession>,
        taken: &TakenState,
        aggs: &[Arc<AggregateFunctionExpr>],
    ) -> std::result::Result<Sessions, String> {
        let mut by_key: BTreeMap<Arc<[u8]>, Vec<Session>> = BTreeMap::new();
        let mut ends = BTreeMap::new();
        let mut pending = BTreeSet::new();
        let mut seen = IdSet::default();
        for (key, s) in sessions {
            if s.id >= next_id || !seen.insert(s.id) || s.last < s.start {
                return Err(format!("session {} is inconsistent", s.id));
            }
            let end = s.end(gap_ms);
            ends.insert((end, s.id), key.clone());
            if s.dirty {
                pending.insert((end, s.id));
            }
            by_key.entry(key).or_default().push(s);
        }
        for list in by_key.values_mut() {
            list.sort_by_key(|s| s.start);
            if list.windows(2).any(|w| w[0].end(gap_ms) > w[1].start) {
                return Err("overlapping sessions".into());
            }
        }
        let ids = ids_of(taken).map_err(|e| e.to_string())?;
        if ids.null_count() > 0 || ids.values().iter().any(|id| !seen.contains(id)) {
            return Err("state of an unknown session".into());
        }
        let mut state = WindowState::new(&id_schema(), aggs).map_err(|e| e.to_string())?;
        state.put(taken).map_err(|e| e.to_string())?;
        Ok(Sessions {
            gap_ms,
            next_id,
            key_bytes: by_key.keys().map(|k| k.len()).sum(),
            by_key,
            ends,
            pending,
            state,
        })
    }
}
