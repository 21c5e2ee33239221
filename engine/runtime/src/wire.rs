//! Every name the engine writes into the log: subjects, message-id prefixes, the content hash that
//! makes ids deterministic, the NDJSON and control-event envelopes.
//!
//! These names are the log's on-disk contract. A data directory written by an earlier release
//! resumes only if every processor recognizes its own outputs by the same id, so **no prefix or
//! subject here may change**; `tests/wire.rs` lists them, checks which overlap (and that only the
//! intended ones do) and recomputes the ids of a recorded stream.

use aiops_log::AppendMessage;
use bytes::Bytes;
use serde::Deserialize;

/// Control events: alerting commands, workflow commands and deployments, pipeline changes.
pub const CONTROL_SUBJECT: &str = "aiops.control";
/// Alerting decisions (NDJSON, one message per input message that caused them).
pub const DECISIONS_SUBJECT: &str = "aiops.alerting";
/// Clock ticks: appended while timers are pending so they fire without new input.
pub const CLOCK_SUBJECT: &str = "aiops.clock";
/// Workflow engine events (intents first of all) and effect results.
pub const EFFECTS_SUBJECT: &str = "aiops.effects";
/// Deploy records as they change (NDJSON, one message per input message that changed them),
/// written by the deploy processor.
pub const DEPLOYS_SUBJECT: &str = "aiops.deploys";
/// Prefix of pipeline outputs (`aiops.derived.<output>`).
pub const DERIVED_PREFIX: &str = aiops_schemas::derived::DERIVED_PREFIX;
/// Prefix of pipelines' late rows (`aiops.late.<pipeline>`).
pub const LATE_PREFIX: &str = aiops_schemas::derived::LATE_PREFIX;
/// Prefix of alert batches (`aiops.alerts.<partition>`).
pub const ALERTS_PREFIX: &str = "aiops.alerts.";
/// Prefix of event batches (`aiops.events.<partition>`).
pub const EVENTS_PREFIX: &str = "aiops.events.";
/// Prefix of partitioned pipelines' partial records (`aiops.partial.<pipeline>`, cluster
/// mode): written by the partition units, read by the pipeline's merge unit only.
pub const PARTIAL_PREFIX: &str = "aiops.partial.";
/// Prefix of work units' fence subjects (`aiops.fence.<unit>`, cluster mode): an owner appends
/// one message there when it takes a unit over and appends its outputs fenced by it
/// ([`aiops_log::Fence`]). No processor reads them.
pub const FENCE_PREFIX: &str = "aiops.fence.";

/// Message-id prefixes, each with who writes it and on which subjects.
pub mod ids {
    /// Alerting decisions: `x.<input seq>.<content hash>` on [`super::DECISIONS_SUBJECT`].
    pub const DECISIONS: &str = "x.";
    /// Control events of alerting commands and pipeline changes: `c.<ms>.<hash>` on
    /// [`super::CONTROL_SUBJECT`]. Ingest's content ids (`c<hex>`, no dot) share the letter, not
    /// the prefix.
    pub const CONTROL: &str = "c.";
    /// Clock ticks: `t.<ms>` on [`super::CLOCK_SUBJECT`]. Shares `t.` with the template miner:
    /// the subject tells them apart.
    pub const TICK: &str = "t.";
    /// Template miner outputs: `t.c.<input seq>.<hash>` (changes), `t.w.<window>.<hash>`
    /// (counts), `t.a.<window>.<hash>` (anomalies), on events and derived subjects.
    pub const TEMPLATES: &str = "t.";
    /// Workflow engine events: `w.<input seq>.<hash>` on [`super::EFFECTS_SUBJECT`].
    pub const WORKFLOW_EVENTS: &str = "w.";
    /// Effect results: `r.<key hash>.<content hash>` on [`super::EFFECTS_SUBJECT`].
    pub const RESULTS: &str = "r.";
    /// Workflow commands and deployments: `wc.<ms>.<hash>` on [`super::CONTROL_SUBJECT`].
    pub const WORKFLOW_CONTROL: &str = "wc.";
    /// Pipeline window outputs: `d.<pipeline>.<window start>.<hash>` on derived subjects.
    pub const PIPELINE_OUTPUT: &str = "d.";
    /// Pipeline late rows: `l.<pipeline>.<input seq>.<hash>` on late subjects.
    pub const PIPELINE_LATE: &str = "l.";
    /// Partial records of partition units: `p.<pipeline>.<unit index>.<input seq>` on
    /// [`super::PARTIAL_PREFIX`] subjects.
    pub const PIPELINE_PARTIAL: &str = "p.";
    /// Alerts of SQL alert rules: `a.<pipeline>.<ms>.<hash>` on alert subjects.
    pub const RULE_ALERTS: &str = "a.";
    /// Anomaly events of pipelines: `n.<pipeline>.<ms>.<hash>` on event subjects.
    pub const PIPELINE_ANOMALIES: &str = "n.";
    /// Ingest with a client idempotency key: `k<hex>-<batch>-<partition>`.
    pub const INGEST_KEYED: &str = "k";
    /// Ingest identified by content: `c<hex>-<batch>-<partition>`.
    pub const INGEST_CONTENT: &str = "c";
    /// Ingest without an id basis: `u<boot>-<counter>-<batch>-<partition>`.
    pub const INGEST_UNIQUE: &str = "u";
    /// Fence messages of cluster mode: `f.<unit>.<node>.<lease revision>` on
    /// [`super::FENCE_PREFIX`] subjects.
    pub const FENCE: &str = "f.";
    /// Knowledge base commands (entry put, delete, feedback, verify): `b.<ms>.<hash>` on
    /// [`super::CONTROL_SUBJECT`].
    pub const KNOWLEDGE: &str = "b.";
    /// Recorded LLM calls (request and response, written before the answer is used):
    /// `m.<call key>` on [`super::EFFECTS_SUBJECT`].
    pub const LLM_CALLS: &str = "m.";

    /// Deploy commands (source reports, rollbacks asked for by a person): `y.<ms>.<hash>` on
    /// [`super::CONTROL_SUBJECT`].
    pub const DEPLOY_CONTROL: &str = "y.";
    /// Deploy record changes: `v.<input seq>.<hash>` on [`super::DEPLOYS_SUBJECT`].
    pub const DEPLOY_EVENTS: &str = "v.";
    /// Commands the deploy processor gives other processors (run the deploy or rollback
    /// workflow, note a deploy on an incident's timeline): `g.<input seq>.<n>.<hash>` on
    /// [`super::CONTROL_SUBJECT`].
    pub const DEPLOY_ACTIONS: &str = "g.";

    /// Every prefix with its name, for the wire test and `docs/runtime.md`.
    pub const ALL: &[(&str, &str)] = &[
        ("decisions", DECISIONS),
        ("control", CONTROL),
        ("tick", TICK),
        ("templates", TEMPLATES),
        ("workflow_events", WORKFLOW_EVENTS),
        ("results", RESULTS),
        ("workflow_control", WORKFLOW_CONTROL),
        ("pipeline_output", PIPELINE_OUTPUT),
        ("pipeline_late", PIPELINE_LATE),
        ("pipeline_partial", PIPELINE_PARTIAL),
        ("rule_alerts", RULE_ALERTS),
        ("pipeline_anomalies", PIPELINE_ANOMALIES),
        ("ingest_keyed", INGEST_KEYED),
        ("ingest_content", INGEST_CONTENT),
        ("ingest_unique", INGEST_UNIQUE),
        ("fence", FENCE),
        ("knowledge", KNOWLEDGE),
        ("llm_calls", LLM_CALLS),
        ("deploy_control", DEPLOY_CONTROL),
        ("deploy_events", DEPLOY_EVENTS),
        ("deploy_actions", DEPLOY_ACTIONS),
    ];
}

/// The input part of an id `<prefix><input seq>.<content hash>` made by [`ndjson_message`]
/// (`<prefix><input seq>`); any other id whole.
pub fn input_key<'a>(prefix: &str, msg_id: &'a str) -> &'a str {
    match msg_id
        .strip_prefix(prefix)
        .and_then(|rest| rest.split_once('.'))
    {
        Some((seq, _)) => &msg_id[..prefix.len() + seq.len()],
        None => msg_id,
    }
}

/// FNV-1a, 64 bits: the content hash in every id the engine derives (and the configuration
/// hashes that tie a checkpoint to its configuration).
pub fn hash(bytes: &[u8]) -> u64 {
    aiops_schemas::partition::fnv1a(0xcbf2_9ce4_8422_2325, bytes)
}

/// Whether `subject` is a work unit's fence subject.
pub fn is_fence(subject: &str) -> bool {
    subject.starts_with(FENCE_PREFIX)
}

/// The fence message a node appends when it takes `unit` over under lease `revision`; its
/// sequence becomes the [`aiops_log::Fence`] of the unit's appends.
pub fn fence_message(unit: &str, node: &str, revision: u64, now_ms: i64) -> AppendMessage {
    let payload = serde_json::json!({"type": "fence", "unit": unit, "node": node, "revision": revision, "at_ms": now_ms});
    AppendMessage {
        subject: format!("{FENCE_PREFIX}{unit}"),
        msg_id: format!("{}{unit}.{node}.{revision}", ids::FENCE),
        time_min_ms: now_ms,
        time_max_ms: now_ms,
        payload: Bytes::from(payload.to_string()),
    }
}

/// Whether `(subject, msg_id)` is a clock tick.
pub fn is_tick(subject: &str) -> bool {
    subject == CLOCK_SUBJECT
}

/// A clock tick at `now_ms`.
pub fn tick_message(now_ms: i64) -> AppendMessage {
    AppendMessage {
        subject: CLOCK_SUBJECT.into(),
        msg_id: format!("{}{now_ms}", ids::TICK),
        time_min_ms: now_ms,
        time_max_ms: now_ms,
        payload: Bytes::from(format!("{{\"type\":\"tick\",\"at_ms\":{now_ms}}}")),
    }
}

/// An NDJSON message of objects that each get an `id` and a `message` field beside their own:
/// the envelope of alerting decisions and workflow events. The id is `<prefix><input seq>.<hash
/// of the payload>`; the time range spans the items' times.
///
/// # Errors
/// Serialization failure (a bug).
pub fn ndjson_message<T: serde::Serialize>(
    subject: &str,
    prefix: &str,
    input_seq: u64,
    items: &[T],
    describe: impl Fn(&T) -> (String, String, i64),
) -> Result<AppendMessage, serde_json::Error> {
    let mut payload = Vec::with_capacity(256 * items.len());
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for item in items {
        let (id, message, at) = describe(item);
        let mut v = serde_json::to_value(item)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("id".into(), serde_json::Value::String(id));
            o.insert("message".into(), serde_json::Value::String(message));
        }
        serde_json::to_writer(&mut payload, &v)?;
        payload.push(b'\n');
        lo = lo.min(at);
        hi = hi.max(at);
    }
    Ok(AppendMessage {
        subject: subject.into(),
        msg_id: format!("{prefix}{input_seq}.{:016x}", hash(&payload)),
        time_min_ms: lo,
        time_max_ms: hi,
        payload: Bytes::from(payload),
    })
}

/// The non-empty lines of an NDJSON payload.
pub fn lines(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    payload.split(|b| *b == b'\n').filter(|l| !l.is_empty())
}

/// A control event on [`CONTROL_SUBJECT`]: a JSON object whose `type` says who it is for
/// (`alerting`, `workflow`, `pipelines_changed`), serialized from `body`, with the id
/// `<prefix><at_ms>.<hash>`.
///
/// # Errors
/// Serialization failure (a bug).
pub fn control_message<T: serde::Serialize>(
    prefix: &str,
    at_ms: i64,
    body: &T,
) -> Result<AppendMessage, serde_json::Error> {
    let payload = serde_json::to_vec(body)?;
    Ok(AppendMessage {
        subject: CONTROL_SUBJECT.into(),
        msg_id: format!("{prefix}{at_ms}.{:016x}", hash(&payload)),
        time_min_ms: at_ms,
        time_max_ms: at_ms,
        payload: Bytes::from(payload),
    })
}

/// The `type` of a control event, if the payload is a JSON object with one.
pub fn control_type(payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_slice::<Head>(payload).ok().map(|h| h.kind)
}

/// The control event of type `kind` in `payload`, decoded: `None` when it is another type's,
/// `Some(Err)` when it is this type's but does not decode.
pub fn parse_control<T: serde::de::DeserializeOwned>(
    payload: &[u8],
    kind: &str,
) -> Option<Result<T, serde_json::Error>> {
    (control_type(payload)? == kind).then(|| serde_json::from_slice(payload))
}
