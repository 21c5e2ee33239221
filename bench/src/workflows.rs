//! `aiops-bench workflows`: the workflow engine in two measurements.
//!
//! - **Executions/s** ([`run_throughput`]): alert decisions through a fresh [`WorkflowEngine`]
//!   with one workflow (filter, templated webhook action); every intent is answered with a result
//!   at once, so an execution is trigger → render → intent → result → finished. One thread, no
//!   I/O: the engine's own cost.
//! - **Trigger → first request** ([`run_latency`]): the same engine with the real `webhook`
//!   provider (connectors, HMAC-signed POST through the outbound guard) calling a recording
//!   server on loopback; alerts arrive at a steady rate and the latency is from feeding the
//!   decision to the recording server reading the request. The log append of the intent (one
//!   fsync, measured by `aiops-bench ingest`) is not included.

use aiops_alerting::Decision;
use aiops_connectors::sinks::{EffectCall, OutboundPolicy, ProviderContext, build_provider};
use aiops_workflow::{
    EffectResult, EngineConfig, Limits, Renderer, StaticCatalog, WorkflowEngine, WorkflowEvent,
    compile_text,
};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKFLOW: &str = r#"
workflow:
  id: bench
  concurrency: 1000000
  queue: 1000000
  triggers:
    - type: alert
      filters: [{key: status, value: firing}, {key: severity, value: r"crit.*"}]
  actions:
    - name: notify
      provider:
        type: webhook
        config: hook
        with:
          body:
            text: "{{ alert.name }} on {{ alert.service }} ({{ alert.labels | tojson }})"
            fingerprint: "{{ alert.fingerprint }}"
"#;

fn engine() -> anyhow::Result<WorkflowEngine> {
    let mut cat = StaticCatalog::default();
    cat.providers.insert("hook".into(), "webhook".into());
    let r = Renderer::default();
    let wf = compile_text("bench.yaml", WORKFLOW, &cat, &r).map_err(|e| anyhow::anyhow!(e))?;
    let mut workflows = BTreeMap::new();
    workflows.insert(wf.id.clone(), Arc::new(wf));
    Ok(WorkflowEngine::new(
        EngineConfig {
            workflows,
            strategies: Vec::new(),
            limits: Limits::default(),
            catalog: Arc::new(cat),
        },
        r,
    ))
}

fn decision(i: u64) -> anyhow::Result<Decision> {
    Ok(serde_json::from_value(json!({
        "type": "alert_state", "at_ms": 1_800_000_000_000i64 + i as i64, "fingerprint": format!("{i:016x}"),
        "name": format!("Alert{}", i % 50), "severity": "critical", "service": format!("svc-{}", i % 20),
        "source": "bench", "change": "firing", "count": 1,
        "labels": {"alertname": format!("Alert{}", i % 50), "service": format!("svc-{}", i % 20), "instance": format!("host-{}", i % 500)},
    }))?)
}

fn ok(key: &str) -> EffectResult {
    EffectResult {
        key: key.into(),
        ok: true,
        status: "200".into(),
        response: Value::Null,
        error: None,
        attempts: 1,
        at_ms: 0,
    }
}

/// Executions/s of the engine alone over `n` triggers (median of `runs`).
///
/// # Errors
/// A workflow that does not compile (a bug).
pub fn run_throughput(n: u64, runs: usize) -> anyhow::Result<Value> {
    let decisions: Vec<Decision> = (0..n).map(decision).collect::<anyhow::Result<_>>()?;
    let mut rates = Vec::new();
    for _ in 0..runs.max(1) {
        let mut e = engine()?;
        let mut out = Vec::with_capacity(8);
        let mut finished = 0u64;
        let t = Instant::now();
        for d in &decisions {
            out.clear();
            e.on_decision(d, &mut out);
            let keys: Vec<String> = out
                .iter()
                .filter_map(|x| match x {
                    WorkflowEvent::Intent(i) => Some(i.key.clone()),
                    _ => None,
                })
                .collect();
            for k in keys {
                out.clear();
                e.on_result(&ok(&k), &mut out);
                finished += out
                    .iter()
                    .filter(|x| matches!(x, WorkflowEvent::ExecutionFinished { .. }))
                    .count() as u64;
            }
        }
        let secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(finished == n, "{finished} of {n} executions finished");
        rates.push(n as f64 / secs);
    }
    rates.sort_by(f64::total_cmp);
    Ok(
        json!({"executions": n, "runs": rates.len(), "executions_per_s_median": rates[rates.len() / 2], "executions_per_s_all": rates}),
    )
}

/// p50/p99 from trigger to the recording server reading the request, `n` alerts at `rate`/s.
///
/// # Errors
/// The recording server or the provider could not start.
pub async fn run_latency(n: u64, rate: u64) -> anyhow::Result<Value> {
    let received: Arc<Mutex<Vec<(String, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let r2 = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let r3 = r2.clone();
            async move {
                let now = Instant::now();
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let fp = v["fingerprint"].as_str().unwrap_or("").to_string();
                if let Ok(mut g) = r3.lock() {
                    g.push((fp, now));
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let ctx = ProviderContext {
        outbound: OutboundPolicy {
            allow: vec!["127.0.0.1".into()],
        },
        timeout: Duration::from_secs(10),
    };
    let hook = build_provider(
        "hook",
        &json!({"kind": "webhook", "url": format!("http://127.0.0.1:{port}/hook"), "secret": "bench-hmac-key"}),
        &ctx,
    )
    .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let mut e = engine()?;
    let mut sent: BTreeMap<String, Instant> = BTreeMap::new();
    let gap = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let due = start + gap.mul_f64(i as f64);
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        let d = decision(i)?;
        let t0 = Instant::now();
        let mut out = Vec::new();
        e.on_decision(&d, &mut out);
        for ev in out {
            if let WorkflowEvent::Intent(intent) = ev {
                sent.insert(format!("{i:016x}"), t0);
                let p = hook.clone();
                tasks.spawn(async move {
                    let call = EffectCall {
                        idempotency_key: &intent.key,
                        params: &intent.params,
                    };
                    p.call(&call).await.is_ok()
                });
            }
        }
        while let Some(r) = tasks.try_join_next() {
            anyhow::ensure!(r.unwrap_or(false), "a webhook call failed");
        }
    }
    while let Some(r) = tasks.join_next().await {
        anyhow::ensure!(r.unwrap_or(false), "a webhook call failed");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let got = received.lock().map(|g| g.clone()).unwrap_or_default();
    for (fp, at) in &got {
        if let Some(t0) = sent.get(fp) {
            h.record(at.duration_since(*t0).as_micros().max(1) as u64)?;
        }
    }
    anyhow::ensure!(h.len() == n, "{} of {n} requests matched", h.len());
    Ok(json!({
        "alerts": n, "rate_per_s": rate, "achieved_per_s": n as f64 / elapsed,
        "p50_ms": h.value_at_quantile(0.5) as f64 / 1000.0,
        "p99_ms": h.value_at_quantile(0.99) as f64 / 1000.0,
        "max_ms": h.max() as f64 / 1000.0,
    }))
}
