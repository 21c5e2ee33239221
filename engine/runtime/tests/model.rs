//! Model tests of every processor under the driver, without the binary: a generated input
//! stream is run once uninterrupted, and then, for every cut, run with a crash after that step
//! (the driver dropped without its final checkpoint, the last checkpoint a few steps earlier),
//! reopened and run to the end. The log's outputs must equal the uninterrupted run's: the same
//! messages in the same order, none missing, none twice.
//!
//! The log under test keeps duplicates (its own id dedup is off), so an output appended twice
//! shows here instead of being absorbed by the log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_alerting::{AlertEngine, AlertingConfig, Control};
use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog, FsyncPolicy};
use aiops_log::{AppendMessage, EventLog};
use aiops_runtime::alerting::codec::control_message;
use aiops_runtime::alerting::processor::{AlertProcessor, AlertingHandle};
use aiops_runtime::store::Store;
use aiops_runtime::templates::TemplateSettings;
use aiops_runtime::templates::processor::TemplateProcessor;
use aiops_runtime::wire;
use aiops_runtime::workflows::WorkflowSettings;
use aiops_runtime::workflows::codec::{WorkflowCommand, parse_effects, results_message};
use aiops_runtime::workflows::processor::{WorkflowProcessor, WorkflowsHandle};
use aiops_runtime::{CommandProgress, Driver, DriverOptions, Processor};
use aiops_schemas::builders::{AlertBatchBuilder, AlertRow, LogBatchBuilder};
use aiops_schemas::{Envelope, Kind};
use aiops_workflow::EffectResult;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200_000;
/// Records per step: small, so a stream has many cuts.
const STEP: usize = 3;

/// A log that keeps every append, duplicates included.
async fn open_log(dir: &Path) -> Arc<dyn EventLog> {
    let mut c = EmbeddedConfig::new(dir.join("log"));
    c.fsync = FsyncPolicy::Interval(Duration::from_secs(3600));
    c.dedup_window = Duration::ZERO;
    c.dedup_max_ids = 0;
    Arc::new(EmbeddedLog::open(c).await.unwrap())
}

/// Every record from `from` on as (subject, id, payload).
async fn records_from(log: &dyn EventLog, from: u64) -> Vec<(String, String, Bytes)> {
    let mut r = log.reader(from).await.unwrap();
    let mut out = Vec::new();
    loop {
        let b = r.next_batch(1024).await.unwrap();
        if b.is_empty() {
            return out;
        }
        out.extend(b.into_iter().map(|x| (x.subject, x.msg_id, x.payload)));
    }
}

fn opts(store: &Store, start: u64) -> DriverOptions {
    DriverOptions {
        store: Some(store.clone()),
        append: true,
        start,
        // Checkpoints only where the test says.
        checkpoint_every: Duration::MAX,
        progress: Arc::new(CommandProgress::default()),
        write_checkpoints: true,
    }
}

/// Runs with a periodic checkpoint due after every step (written beside the loop when the
/// processor offers a snapshot job, so a crash can land while one is being written) and a crash
/// after step `cut`; reopens and runs to the end; returns the outputs.
async fn crashed_with_periodic_checkpoints<P: Processor>(
    inputs: &[AppendMessage],
    make: &impl Fn() -> P,
    cut: usize,
) -> Vec<(String, String, Bytes)> {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    log.append(inputs.to_vec()).await.unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    {
        let mut o = opts(&store, 1);
        o.checkpoint_every = Duration::ZERO;
        let mut d = Driver::open(log.clone(), make(), o).await.unwrap();
        for _ in 1..=cut {
            d.step(STEP).await.unwrap();
        }
        // Crash: dropped, a checkpoint perhaps still being written.
    }
    let mut d = Driver::open(log.clone(), make(), opts(&store, 1))
        .await
        .unwrap();
    d.run_to_end(None).await.unwrap();
    d.checkpoint().await.unwrap();
    records_from(&*log, inputs.len() as u64 + 1).await
}

/// Runs `make()` over `inputs` without interruption; returns the outputs (records after the
/// inputs).
async fn uninterrupted<P: Processor>(
    inputs: &[AppendMessage],
    make: &impl Fn() -> P,
) -> Vec<(String, String, Bytes)> {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    log.append(inputs.to_vec()).await.unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let mut d = Driver::open(log.clone(), make(), opts(&store, 1))
        .await
        .unwrap();
    while d.step(STEP).await.unwrap() > 0 {}
    d.checkpoint().await.unwrap();
    records_from(&*log, inputs.len() as u64 + 1).await
}

/// Runs with a crash after step `cut` (last checkpoint after step `ck`), reopens, runs to the
/// end; returns the outputs.
async fn crashed<P: Processor>(
    inputs: &[AppendMessage],
    make: &impl Fn() -> P,
    cut: usize,
    ck: usize,
) -> Vec<(String, String, Bytes)> {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    log.append(inputs.to_vec()).await.unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    {
        let mut d = Driver::open(log.clone(), make(), opts(&store, 1))
            .await
            .unwrap();
        for i in 1..=cut {
            d.step(STEP).await.unwrap();
            if i == ck {
                d.checkpoint().await.unwrap();
            }
        }
        // Crash: dropped without its final checkpoint.
    }
    let mut d = Driver::open(log.clone(), make(), opts(&store, 1))
        .await
        .unwrap();
    d.run_to_end(None).await.unwrap();
    d.checkpoint().await.unwrap();
    // A second reopen after a clean checkpoint re-derives nothing.
    let before = log.stats().await.unwrap().next_seq;
    let mut again = Driver::open(log.clone(), make(), opts(&store, 1))
        .await
        .unwrap();
    again.run_to_end(None).await.unwrap();
    assert_eq!(
        log.stats().await.unwrap().next_seq,
        before,
        "reopening after a clean checkpoint appended something"
    );
    records_from(&*log, inputs.len() as u64 + 1).await
}

/// The whole model check for one processor.
async fn crash_at_every_cut<P: Processor>(inputs: Vec<AppendMessage>, make: impl Fn() -> P) {
    let want = uninterrupted(&inputs, &make).await;
    assert!(
        want.len() >= 5,
        "{}: the generated stream must make outputs (made {})",
        P::NAME,
        want.len()
    );
    let mut ids: Vec<&str> = want.iter().map(|w| w.1.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        want.len(),
        "{}: two outputs share an id",
        P::NAME
    );
    let steps = inputs.len().div_ceil(STEP) + 2;
    for cut in 1..=steps {
        let got = crashed_with_periodic_checkpoints(&inputs, &make, cut).await;
        assert!(
            got == want,
            "{}: crash after step {cut} with periodic checkpoints: outputs differ",
            P::NAME
        );
        for ck in [0, cut / 2, cut.saturating_sub(1)] {
            let got = crashed(&inputs, &make, cut, ck).await;
            if got != want {
                let g: Vec<&str> = got.iter().map(|x| x.1.as_str()).collect();
                let w: Vec<&str> = want.iter().map(|x| x.1.as_str()).collect();
                panic!(
                    "{}: crash after step {cut} (checkpoint after step {ck}): outputs differ\n got {g:?}\nwant {w:?}",
                    P::NAME
                );
            }
        }
    }
}

/// A tiny deterministic generator (no dependency, same stream every run).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// A batch of `kind` as ingest would append it at `at` (id from the time: unique per stream).
fn ingested(
    kind: Kind,
    at: i64,
    range: (i64, i64),
    batch: &aiops_schemas::arrow_array::RecordBatch,
) -> AppendMessage {
    let env = Envelope::new(kind, "test", at, range, batch);
    AppendMessage {
        subject: kind.subject(0),
        msg_id: format!("k{at:x}"),
        time_min_ms: range.0,
        time_max_ms: range.1,
        payload: Bytes::from(aiops_schemas::encode(&env, batch).unwrap()),
    }
}

fn alert_message(at: i64, rows: &[(usize, bool)]) -> AppendMessage {
    let mut b = AlertBatchBuilder::new();
    for &(fp, resolved) in rows {
        let name = format!("Alert{}", fp % 3);
        let service = format!("svc{}", fp % 2);
        let sev = if fp % 4 == 0 { "critical" } else { "warning" };
        b.push(AlertRow {
            fingerprint: &format!("fp{fp}"),
            resolved,
            labels: [
                ("alertname", name.as_str()),
                ("service", service.as_str()),
                ("severity", sev),
            ],
            annotations: [("summary", "model test")],
            starts_at_ms: at - 1_000,
            ends_at_ms: resolved.then_some(at),
            source: "test",
            generator_url: None,
        });
    }
    let range = b.time_range().unwrap_or((at, at));
    ingested(Kind::Alerts, at, range, &b.finish().unwrap())
}

const ALERTING: &str = r#"
route:
  receiver: team
  group_by: [alertname, service]
  group_wait: 2s
  group_interval: 6s
  repeat_interval: 30s
receivers:
  - name: team
"#;

/// Alerts firing and resolving, clock ticks, and commands (refused ones included).
fn alerting_inputs() -> Vec<AppendMessage> {
    let mut g = Lcg(7);
    let mut msgs = Vec::new();
    let mut firing = [false; 8];
    for i in 0..40i64 {
        let at = T0 + i * 1_500;
        match i % 5 {
            3 => msgs.push(wire::tick_message(at)),
            4 if i % 10 == 4 => msgs.push(
                control_message(
                    Control::SilenceExpire {
                        id: format!("missing-{i}"),
                    },
                    at,
                )
                .unwrap(),
            ),
            _ => {
                let rows: Vec<(usize, bool)> = (0..1 + g.next(3))
                    .map(|_| {
                        let fp = g.next(8) as usize;
                        let resolve = firing[fp] && g.next(3) == 0;
                        firing[fp] = !resolve;
                        (fp, resolve)
                    })
                    .collect();
                msgs.push(alert_message(at, &rows));
            }
        }
    }
    msgs
}

fn alerting_processor() -> AlertProcessor {
    let cfg = AlertingConfig::parse(ALERTING).unwrap();
    AlertProcessor::new(AlertingHandle::new(
        AlertEngine::new(cfg),
        ALERTING.to_string(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerting_survives_a_crash_at_every_cut() {
    crash_at_every_cut(alerting_inputs(), alerting_processor).await;
}

fn log_message(at: i64, lines: &[(&str, &str, String)]) -> AppendMessage {
    let mut b = LogBatchBuilder::new();
    for (service, sev, body) in lines {
        b.push(
            at,
            sev,
            body,
            [("service", *service)],
            std::iter::empty::<(&str, &str)>(),
        );
    }
    let range = b.time_range().unwrap_or((at, at));
    ingested(Kind::Logs, at, range, &b.finish().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_survive_a_crash_at_every_cut() {
    let mut g = Lcg(11);
    let shapes = [
        "user {} logged in from 10.0.0.{}",
        "request {} took {} ms",
        "disk /dev/sd{} is {} percent full",
        "connection reset by peer {} after {} retries",
    ];
    let mut msgs = Vec::new();
    // Spread over several minutes so windows close and counts are written.
    for i in 0..36i64 {
        let at = T0 + i * 20_000;
        let lines: Vec<(&str, &str, String)> = (0..2 + g.next(4))
            .map(|_| {
                let s = shapes[g.next(shapes.len() as u64) as usize];
                let body = s.replacen("{}", &g.next(1000).to_string(), 1).replacen(
                    "{}",
                    &g.next(100).to_string(),
                    1,
                );
                let svc = if g.next(2) == 0 { "api" } else { "db" };
                let sev = if g.next(5) == 0 { "error" } else { "info" };
                (svc, sev, body)
            })
            .collect();
        msgs.push(log_message(at, &lines));
    }
    let settings = TemplateSettings::default();
    crash_at_every_cut(msgs, || TemplateProcessor::new(&settings).unwrap()).await;
}

const WORKFLOW: &str = r#"
workflow:
  id: model
  triggers:
    - type: alert
      filters: [{key: status, value: firing}]
  steps:
    - name: look
      provider:
        type: sql
        with:
          query: "SELECT 1"
  actions:
    - name: again
      provider:
        type: sql
        with:
          query: "SELECT {{ steps.look.results | length }}"
"#;

fn workflows_processor() -> WorkflowProcessor {
    let settings = WorkflowSettings::default();
    let providers = Arc::new(settings.providers_lenient().unwrap());
    WorkflowProcessor::new(WorkflowsHandle::new(providers, settings.limits().unwrap()))
}

/// The decisions the alerting processor makes over `alerting_inputs()`, with their sequences.
async fn decisions() -> Vec<AppendMessage> {
    let dir = tempfile::tempdir().unwrap();
    let log = open_log(dir.path()).await;
    let inputs = alerting_inputs();
    log.append(inputs.clone()).await.unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let mut d = Driver::open(log.clone(), alerting_processor(), opts(&store, 1))
        .await
        .unwrap();
    d.run_to_end(None).await.unwrap();
    let mut r = log.reader(inputs.len() as u64 + 1).await.unwrap();
    r.next_batch(10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|x| AppendMessage {
            subject: x.subject,
            msg_id: x.msg_id,
            time_min_ms: x.time_min_ms,
            time_max_ms: x.time_max_ms,
            payload: x.payload,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_survive_a_crash_at_every_cut() {
    let mut inputs = vec![
        aiops_runtime::workflows::codec::control_message(
            WorkflowCommand::Deployed {
                workflows: BTreeMap::from([("model.yaml".to_string(), WORKFLOW.to_string())]),
                strategies: BTreeMap::new(),
            },
            T0 - 1,
        )
        .unwrap(),
    ];
    inputs.extend(decisions().await);
    // A first pass finds the intents; their results (some batched, some failed) join the input
    // stream, so the second step of each execution and the finish are exercised too.
    let intents = {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path()).await;
        log.append(inputs.clone()).await.unwrap();
        let mut d = Driver::open(
            log.clone(),
            workflows_processor(),
            DriverOptions {
                store: None,
                ..opts(&Store::open(&dir.path().join("s")).unwrap(), 1)
            },
        )
        .await
        .unwrap();
        d.run_to_end(None).await.unwrap();
        let mut keys = Vec::new();
        for (_, _, p) in records_from(&*log, inputs.len() as u64 + 1).await {
            for l in parse_effects(&p) {
                if let aiops_runtime::workflows::codec::EffectsLine::Event(e) = l
                    && let aiops_workflow::WorkflowEvent::Intent(i) = *e
                {
                    keys.push((i.key.clone(), i.at_ms));
                }
            }
        }
        keys
    };
    assert!(!intents.is_empty(), "the workflow must start executions");
    let results: Vec<EffectResult> = intents
        .iter()
        .enumerate()
        .map(|(n, (key, at))| EffectResult {
            key: key.clone(),
            ok: n % 5 != 0,
            status: if n % 5 != 0 { "ok" } else { "error" }.into(),
            response: serde_json::json!([{"x": 1}]),
            error: (n % 5 == 0).then(|| "boom".to_string()),
            attempts: 1,
            at_ms: at + 100,
        })
        .collect();
    for chunk in results.chunks(3) {
        inputs.push(results_message(chunk).unwrap());
    }
    crash_at_every_cut(inputs, workflows_processor).await;
}

/// One window of the verification pipeline's output: `(service, version, error_ratio)` rows.
fn deploy_metrics(at: i64, rows: &[(&str, &str, f64)]) -> AppendMessage {
    use aiops_schemas::arrow_array::{
        ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    };
    use aiops_schemas::arrow_schema::{DataType, Field, Schema, TimeUnit};
    let schema = Arc::new(Schema::new(vec![
        Field::new("revision", DataType::Int64, false),
        Field::new(
            "window_start",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("service", DataType::Utf8, false),
        Field::new("version", DataType::Utf8, false),
        Field::new("error_ratio", DataType::Float64, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![0; rows.len()])),
        Arc::new(TimestampMillisecondArray::from(vec![at; rows.len()])),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from(
            rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )),
    ];
    let batch = RecordBatch::try_new(schema, cols).unwrap();
    let payload = aiops_schemas::derived::encode_derived(
        &aiops_schemas::derived::DerivedHeader {
            what: aiops_schemas::derived::DerivedWhat::Events,
            window_start_ms: at,
            pipeline: "deploy_metrics".into(),
        },
        &batch,
    )
    .unwrap();
    AppendMessage {
        subject: format!("{}deploy_metrics_10s", wire::DERIVED_PREFIX),
        msg_id: format!("d.deploy_metrics.{at}.0"),
        time_min_ms: at,
        time_max_ms: at,
        payload: Bytes::from(payload),
    }
}

fn deploys_processor() -> aiops_runtime::deploys::processor::DeployProcessor {
    use aiops_runtime::deploys::processor::{DeployHandle, DeployProcessor};
    let mut s = aiops_runtime::deploys::DeploySettings {
        verification_window: Duration::from_secs(60),
        grace: Duration::from_secs(10),
        rollback_workflow: Some("deploy-rollback".into()),
        ..Default::default()
    };
    s.metrics.truncate(1);
    DeployProcessor::new(DeployHandle::new(s))
}

/// Deploys of three services (one bad canary, one good, one rolled back by a person), a
/// minute of per-version error ratios, and clock ticks past the windows: records, verdict
/// proposals read back, rollback runs and record changes survive a crash at every cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_survive_a_crash_at_every_cut() {
    use aiops_deploy::DeployCommand;
    use aiops_runtime::deploys::command_message;
    use aiops_schemas::deploy::{DeployReport, DeployStrategy, SourceStatus};
    let deploy = |id: &str, service: &str| {
        command_message(
            &DeployCommand::Report {
                report: DeployReport {
                    source: "api".into(),
                    service: service.into(),
                    environment: "staging".into(),
                    version: "2".into(),
                    previous_version: Some("1".into()),
                    strategy: DeployStrategy::Canary,
                    status: SourceStatus::InProgress,
                    at_ms: T0,
                    ..DeployReport::default()
                },
                id: Some(id.into()),
                rollback_of: None,
                run_action: false,
            },
            T0,
        )
        .unwrap()
    };
    let mut inputs = vec![
        deploy("bad", "a"),
        deploy("good", "b"),
        deploy("manual", "c"),
    ];
    let mut rng = Lcg(7);
    for w in 0..8 {
        let at = T0 + w * 10_000;
        let noise = |r: &mut Lcg| r.next(1000) as f64 / 100_000.0;
        let rows = [
            ("a", "1", 0.01 + noise(&mut rng)),
            ("a", "2", 0.05 + noise(&mut rng)),
            ("b", "1", 0.01 + noise(&mut rng)),
            ("b", "2", 0.01 + noise(&mut rng)),
            ("c", "1", 0.01 + noise(&mut rng)),
            ("c", "2", 0.01 + noise(&mut rng)),
        ];
        inputs.push(deploy_metrics(at, &rows));
    }
    inputs.push(
        command_message(
            &DeployCommand::Rollback {
                id: "manual".into(),
                by: "alice".into(),
                reason: "by hand".into(),
            },
            T0 + 30_000,
        )
        .unwrap(),
    );
    for t in [T0 + 65_000, T0 + 71_000, T0 + 90_000] {
        inputs.push(wire::tick_message(t));
    }
    // The stream exercises what matters: verdicts written and read back, the bad canary's and
    // the person's rollbacks asked for once each.
    let out = uninterrupted(&inputs, &deploys_processor).await;
    let count = |p: &str| out.iter().filter(|o| o.1.starts_with(p)).count();
    assert_eq!(
        count("g.verdict."),
        2,
        "{:?}",
        out.iter().map(|o| &o.1).collect::<Vec<_>>()
    );
    assert_eq!(count("g.run."), 2);
    assert!(count("v.") >= 5);
    crash_at_every_cut(inputs, deploys_processor).await;
}

/// The template miner's window counts (written by its own encoder) reach the deploy book: a
/// template with error lines first counted during the window makes a good canary's verdict
/// inconclusive, with the template in the reasons; the same across a crash at every cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_read_the_template_miners_counts() {
    use aiops_deploy::DeployCommand;
    use aiops_detect::drain::TemplateId;
    use aiops_detect::templates::WindowCount;
    use aiops_runtime::deploys::command_message;
    use aiops_runtime::templates::encode::counts_messages;
    use aiops_schemas::deploy::{DeployReport, DeployStrategy, SourceStatus};
    let count = |at: i64, id: u64, template: &str, count: u64, errors: u64| WindowCount {
        window_start_ms: at,
        service: "web".into(),
        id: TemplateId(id),
        template: template.into(),
        count,
        errors,
    };
    let mut counts = Vec::new();
    for m in 1..=3 {
        counts.push(count(T0 - m * 60_000, 1, "GET <*> 200", 600, 0));
    }
    let mut inputs = counts_messages(&counts, 60_000).unwrap();
    // Two good canaries: `web` gets a new error template during its window, `api` does not.
    for service in ["web", "api"] {
        inputs.push(
            command_message(
                &DeployCommand::Report {
                    report: DeployReport {
                        source: "api".into(),
                        service: service.into(),
                        environment: "staging".into(),
                        version: "2".into(),
                        previous_version: Some("1".into()),
                        strategy: DeployStrategy::Canary,
                        status: SourceStatus::InProgress,
                        at_ms: T0,
                        ..DeployReport::default()
                    },
                    id: Some(format!("{service}-2")),
                    rollback_of: None,
                    run_action: false,
                },
                T0,
            )
            .unwrap(),
        );
    }
    let mut rng = Lcg(11);
    for w in 0..6 {
        let noise = |r: &mut Lcg| r.next(1000) as f64 / 100_000.0;
        let rows = [
            ("web", "1", 0.01 + noise(&mut rng)),
            ("web", "2", 0.01 + noise(&mut rng)),
            ("api", "1", 0.01 + noise(&mut rng)),
            ("api", "2", 0.01 + noise(&mut rng)),
        ];
        inputs.push(deploy_metrics(T0 + w * 10_000, &rows));
    }
    inputs.extend(
        counts_messages(
            &[
                count(T0, 1, "GET <*> 200", 610, 0),
                count(T0, 2, "NullPointerException in <*>", 12, 12),
            ],
            60_000,
        )
        .unwrap(),
    );
    inputs.push(wire::tick_message(T0 + 75_000));
    let out = uninterrupted(&inputs, &deploys_processor).await;
    let verdicts: Vec<String> = out
        .iter()
        .filter(|o| o.1.starts_with("g.verdict."))
        .map(|o| String::from_utf8_lossy(&o.2).into_owned())
        .collect();
    assert_eq!(verdicts.len(), 2, "{out:?}");
    let web = verdicts.iter().find(|v| v.contains("\"web-2\"")).unwrap();
    assert!(
        web.contains("\"inconclusive\"")
            && web.contains("NullPointerException in <*>")
            && web.contains("new_log_template"),
        "{web}"
    );
    let api = verdicts.iter().find(|v| v.contains("\"api-2\"")).unwrap();
    assert!(
        api.contains("\"promote\"") && !api.contains("new_log_template"),
        "{api}"
    );
    crash_at_every_cut(inputs, deploys_processor).await;
}
