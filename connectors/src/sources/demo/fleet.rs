//! The simulated fleet: hosts with node_exporter-like metrics, services with HTTP metrics, logs,
//! deploys and alerts, advanced one tick of event time at a time.
//!
//! All randomness comes from one seeded [`StdRng`] (noise, log lines, routine deploys) and from
//! [`incidents::schedule`] (the scripted incidents); time comes only from the tick's event time.
//! Counters are accumulated as floats and reported floored, which keeps them monotone; the only
//! decrease is the host restart that ends a memory leak.

use super::incidents::{self, CYCLE_MS, Incident, IncidentKind};
use aiops_schemas::builders::AlertRow;
use aiops_schemas::{AlertBatchBuilder, EventBatchBuilder, LogBatchBuilder, MetricBatchBuilder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;

const DAY_MS: i64 = 24 * 3600 * 1000;
const CPU_MODES: [&str; 4] = ["user", "system", "iowait", "idle"];
const METHODS: [&str; 2] = ["GET", "POST"];
const STATUSES: [&str; 2] = ["200", "500"];
const LE: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];
const LE_VALUES: [f64; 10] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    f64::INFINITY,
];
const SERVICE_NAMES: [&str; 8] = [
    "checkout",
    "payments",
    "search",
    "frontend",
    "inventory",
    "auth",
    "shipping",
    "recommendations",
];
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Fleet shape, from the config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FleetShape {
    /// Simulated hosts (at least 1).
    pub hosts: usize,
    /// Simulated services (at least 1); the first is always `checkout`.
    pub services: usize,
    /// Event time per tick, ms (at least 1).
    pub interval_ms: i64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Event time of tick 0, Unix ms.
    pub start_ms: i64,
}

/// What one tick produced, in the schemas' builders; empty builders mean nothing of that kind.
#[derive(Debug, Default)]
pub struct TickOutput {
    /// Metric samples.
    pub metrics: MetricBatchBuilder,
    /// Log records.
    pub logs: LogBatchBuilder,
    /// Deploy and restart events.
    pub events: EventBatchBuilder,
    /// Alert state changes.
    pub alerts: AlertBatchBuilder,
}

#[derive(Debug)]
struct Host {
    name: String,
    cpu_names: Vec<String>,
    /// Per CPU, seconds per mode (order of [`CPU_MODES`]).
    cpu_seconds: Vec<[f64; 4]>,
    base_util: f64,
    mem_total: f64,
    mem_used_frac: f64,
    fs_size: f64,
    fs_used_frac: f64,
    net_rx: f64,
    net_rate: f64,
    load1: f64,
}

#[derive(Debug)]
struct Service {
    name: String,
    hosts: Vec<usize>,
    base_rps: f64,
    median_s: f64,
    version: (u32, u32, u32),
    /// `[method][status]` request counts.
    requests: [[f64; 2]; 2],
    /// Cumulative bucket counts, order of [`LE`].
    buckets: [f64; 10],
    duration_sum: f64,
    duration_count: f64,
    orders: f64,
}

/// The fleet and its counters.
#[derive(Debug)]
pub struct Fleet {
    shape: FleetShape,
    rng: StdRng,
    hosts: Vec<Host>,
    services: Vec<Service>,
    tick: u64,
    /// The incident schedule of the current cycle, computed once per cycle.
    cycle: Option<(u64, [Incident; 3])>,
    line: String,
    aux: String,
}

impl Fleet {
    /// A fleet in its initial state; tick 0 is at `shape.start_ms`.
    pub fn new(shape: FleetShape) -> Fleet {
        let mut rng = StdRng::seed_from_u64(shape.seed);
        let hosts = (0..shape.hosts.max(1))
            .map(|i| {
                let cpus = if rng.random_bool(0.5) { 2 } else { 4 };
                Host {
                    name: format!("host-{}", i + 1),
                    cpu_names: (0..cpus).map(|c| c.to_string()).collect(),
                    cpu_seconds: (0..cpus)
                        .map(|_| [0.0, 0.0, 0.0, rng.random_range(1.0e5..1.0e6)])
                        .collect(),
                    base_util: rng.random_range(0.15..0.45),
                    mem_total: [8.0, 16.0, 32.0][rng.random_range(0..3)] * GIB,
                    mem_used_frac: rng.random_range(0.3..0.5),
                    fs_size: [50.0, 100.0, 200.0][rng.random_range(0..3)] * GIB,
                    fs_used_frac: rng.random_range(0.3..0.6),
                    net_rx: rng.random_range(1.0e9..1.0e10),
                    net_rate: rng.random_range(2.0e5..2.0e6),
                    load1: 0.5,
                }
            })
            .collect::<Vec<_>>();
        let n_hosts = hosts.len();
        let services = (0..shape.services.max(1))
            .map(|i| Service {
                name: SERVICE_NAMES
                    .get(i)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| format!("service-{}", i + 1)),
                // Each service runs on two neighbouring hosts (one when there is one host).
                hosts: {
                    let mut hs = vec![i % n_hosts, (i + 1) % n_hosts];
                    hs.dedup();
                    hs
                },
                base_rps: rng.random_range(20.0..150.0),
                median_s: rng.random_range(0.01..0.06),
                version: (1, rng.random_range(0..10), rng.random_range(0..20)),
                requests: [[0.0; 2]; 2],
                buckets: [0.0; 10],
                duration_sum: 0.0,
                duration_count: 0.0,
                orders: 0.0,
            })
            .collect();
        Fleet {
            shape,
            rng,
            hosts,
            services,
            tick: 0,
            cycle: None,
            line: String::with_capacity(128),
            aux: String::with_capacity(64),
        }
    }

    /// Event time of the next tick, Unix ms.
    pub fn next_time_ms(&self) -> i64 {
        self.shape.start_ms + self.tick as i64 * self.shape.interval_ms
    }

    /// The incidents of the cycle containing `t_ms`.
    pub fn incidents_at(&mut self, t_ms: i64) -> [Incident; 3] {
        let cycle = ((t_ms - self.shape.start_ms).max(0) / CYCLE_MS) as u64;
        match self.cycle {
            Some((c, inc)) if c == cycle => inc,
            _ => {
                let inc = incidents::schedule(
                    self.shape.seed,
                    cycle,
                    self.shape.start_ms,
                    self.hosts.len(),
                    self.services.len(),
                );
                self.cycle = Some((cycle, inc));
                inc
            }
        }
    }

    /// Advances one tick and appends what it produced to `out`.
    pub fn tick(&mut self, out: &mut TickOutput) {
        let t = self.next_time_ms();
        self.tick += 1;
        let iv = self.shape.interval_ms;
        let dt = iv as f64 / 1000.0;
        // Daily seasonality: traffic peaks at 12:00 UTC and bottoms out at 00:00.
        let day_phase = t.rem_euclid(DAY_MS) as f64 / DAY_MS as f64;
        let season = 1.0 + 0.5 * (std::f64::consts::TAU * (day_phase - 0.25)).sin();
        let current = self.incidents_at(t);
        // An incident that ends just before its cycle does may have its end edge in the first
        // tick of the next cycle.
        let prev_t = t - iv;
        let prev_cycle = (prev_t - self.shape.start_ms) / CYCLE_MS;
        if prev_t >= self.shape.start_ms && prev_cycle != (t - self.shape.start_ms) / CYCLE_MS {
            let previous = incidents::schedule(
                self.shape.seed,
                prev_cycle as u64,
                self.shape.start_ms,
                self.hosts.len(),
                self.services.len(),
            );
            for inc in previous {
                self.incident_edges(&inc, t, out);
            }
        }
        for inc in current {
            self.incident_edges(&inc, t, out);
        }
        for h in 0..self.hosts.len() {
            self.host_tick(h, t, dt, season, &current, out);
        }
        for s in 0..self.services.len() {
            self.service_tick(s, t, dt, season, &current, out);
        }
        self.routine_deploys(t, dt, &current, out);
    }

    /// The first tick time at or after `ms`.
    fn tick_at_or_after(&self, ms: i64) -> i64 {
        let iv = self.shape.interval_ms;
        let k = (ms - self.shape.start_ms + iv - 1).div_euclid(iv);
        self.shape.start_ms + k * iv
    }

    /// Deploys, restarts, alerts and one-off logs at the start, alert and end of an incident.
    fn incident_edges(&mut self, inc: &Incident, t: i64, out: &mut TickOutput) {
        let iv = self.shape.interval_ms;
        let starts = Incident::crosses(inc.start_ms, t, iv);
        let alerts = Incident::crosses(inc.alert_ms, t, iv);
        let ends = Incident::crosses(inc.end_ms, t, iv);
        if !(starts || alerts || ends) {
            return;
        }
        let fired_at = self.tick_at_or_after(inc.alert_ms);
        match inc.kind {
            IncidentKind::ErrorBurst { service } => {
                if starts {
                    let v = &mut self.services[service].version;
                    *v = (v.0, v.1 + 1, 0);
                    self.deploy(service, t, false, out);
                }
                if alerts || ends {
                    let svc = self.services[service].name.clone();
                    alert(
                        out,
                        "HighErrorRate",
                        [("service", svc.as_str()), ("severity", "critical")],
                        &format!("more than 5% of {svc} requests answer 5xx"),
                        fired_at,
                        ends.then_some(t),
                    );
                }
                if ends {
                    let v = &mut self.services[service].version;
                    *v = (v.0, v.1.saturating_sub(1), 0);
                    self.deploy(service, t, true, out);
                }
            }
            IncidentKind::MemoryLeak { host } => {
                let name = self.hosts[host].name.clone();
                if alerts || ends {
                    alert(
                        out,
                        "HostMemoryLow",
                        [("host", name.as_str()), ("severity", "warning")],
                        &format!("less than 10% memory available on {name}"),
                        fired_at,
                        ends.then_some(t),
                    );
                }
                if ends {
                    let pid = self.rng.random_range(1000..60000).to_string();
                    self.line.clear();
                    let _ = write!(
                        self.line,
                        "Out of memory: Killed process {pid} (java) total-vm:{}kB",
                        (self.hosts[host].mem_total / 1024.0) as u64
                    );
                    out.logs.push(
                        t,
                        "error",
                        &self.line,
                        [("service", "kernel"), ("host", name.as_str())],
                        [("pid", pid.as_str())],
                    );
                    out.events.push(
                        t,
                        "restart",
                        &format!("{name} restarted after running out of memory"),
                        [("host", name.as_str())],
                        [("reason", "oom")],
                    );
                    // The reboot resets the host's counters: the one scripted counter reset.
                    let h = &mut self.hosts[host];
                    for cpu in &mut h.cpu_seconds {
                        *cpu = [0.0; 4];
                    }
                    h.net_rx = 0.0;
                    h.load1 = 0.1;
                }
            }
            IncidentKind::DiskFill { host } => {
                let name = self.hosts[host].name.clone();
                if alerts || ends {
                    alert(
                        out,
                        "DiskAlmostFull",
                        [
                            ("host", name.as_str()),
                            ("mountpoint", "/"),
                            ("severity", "warning"),
                        ],
                        &format!("less than 10% space left on / of {name}"),
                        fired_at,
                        ends.then_some(t),
                    );
                }
                if ends {
                    out.logs.push(
                        t,
                        "info",
                        "logrotate: removed /var/log/app/debug.log.1 .. .9, space reclaimed on /",
                        [("service", "logrotate"), ("host", name.as_str())],
                        [("mountpoint", "/")],
                    );
                }
            }
        }
    }

    fn deploy(&mut self, service: usize, t: i64, rollback: bool, out: &mut TickOutput) {
        let svc = &self.services[service];
        let version = format!("{}.{}.{}", svc.version.0, svc.version.1, svc.version.2);
        let commit = format!("{:07x}", self.rng.random_range(0..0x0fff_ffffu32));
        let message = if rollback {
            format!("rollback {} to {version}", svc.name)
        } else {
            format!("deploy {} {version}", svc.name)
        };
        out.events.push(
            t,
            "deploy",
            &message,
            [
                ("service", svc.name.as_str()),
                ("version", version.as_str()),
            ],
            [
                ("commit", commit.as_str()),
                ("author", "ci"),
                ("rollback", if rollback { "true" } else { "false" }),
            ],
        );
        let host = svc.hosts.first().copied().unwrap_or(0);
        out.logs.push(
            t,
            "info",
            &format!("starting {} version {version}", svc.name),
            [
                ("service", svc.name.as_str()),
                ("host", self.hosts[host].name.as_str()),
            ],
            [("version", version.as_str())],
        );
    }

    fn routine_deploys(&mut self, t: i64, dt: f64, current: &[Incident; 3], out: &mut TickOutput) {
        // About one routine deploy per service every six hours, never during its error burst.
        let p = (dt / (6.0 * 3600.0)).min(1.0);
        for s in 0..self.services.len() {
            let busy = current.iter().any(|i| {
                matches!(i.kind, IncidentKind::ErrorBurst { service } if service == s)
                    && (i.active(t) || Incident::crosses(i.end_ms, t, self.shape.interval_ms))
            });
            if self.rng.random_bool(p) && !busy {
                let v = &mut self.services[s].version;
                *v = (v.0, v.1, v.2 + 1);
                self.deploy(s, t, false, out);
            }
        }
    }

    fn host_tick(
        &mut self,
        h: usize,
        t: i64,
        dt: f64,
        season: f64,
        current: &[Incident; 3],
        out: &mut TickOutput,
    ) {
        let leak = current.iter().find(|i| {
            matches!(i.kind, IncidentKind::MemoryLeak { host } if host == h) && i.active(t)
        });
        let fill = current.iter().find(|i| {
            matches!(i.kind, IncidentKind::DiskFill { host } if host == h) && i.active(t)
        });
        let (g1, g2, g3, g4) = (
            gauss(&mut self.rng),
            gauss(&mut self.rng),
            gauss(&mut self.rng),
            gauss(&mut self.rng),
        );
        let warn_disk = fill.is_some_and(|f| f.progress(t) > 0.5) && self.rng.random_bool(0.2);
        let host = &mut self.hosts[h];
        let util = (host.base_util * season * (1.0 + 0.1 * g1)).clamp(0.02, 0.95);
        let iowait = if leak.is_some_and(|l| l.progress(t) > 0.6) {
            0.2
        } else {
            0.01
        };
        for cpu in &mut host.cpu_seconds {
            let user = dt * util * 0.7;
            let system = dt * util * 0.25;
            let wait = dt * iowait;
            cpu[0] += user;
            cpu[1] += system;
            cpu[2] += wait;
            cpu[3] += (dt - user - system - wait).max(0.0);
        }
        let cpus = host.cpu_seconds.len() as f64;
        let mut target_load = util * cpus * 1.1;
        if let Some(l) = leak {
            // Swapping makes the load climb as memory runs out.
            target_load += cpus * l.progress(t).powi(2);
        }
        host.load1 += (target_load - host.load1) * (1.0 - (-dt / 60.0).exp()) + 0.05 * g2;
        host.load1 = host.load1.max(0.0);
        let mut used = (host.mem_used_frac + 0.05 * (season - 1.0) + 0.005 * g3).clamp(0.05, 0.95);
        if let Some(l) = leak {
            used += (0.985 - used) * l.progress(t);
        }
        let fs_used = match fill {
            Some(f) => host.fs_used_frac + (0.99 - host.fs_used_frac) * f.progress(t),
            None => host.fs_used_frac,
        };
        host.net_rx += (host.net_rate * season * dt * (1.0 + 0.1 * g4)).max(0.0);

        // `instance` as a Prometheus scrape adds it (the shipped per-host pipelines group by it),
        // `host` as the alerts and logs name the host.
        let hl = [
            ("host", host.name.as_str()),
            ("instance", host.name.as_str()),
            ("job", "node"),
        ];
        for (c, secs) in host.cpu_seconds.iter().enumerate() {
            for (m, mode) in CPU_MODES.iter().enumerate() {
                out.metrics.push(
                    t,
                    "node_cpu_seconds_total",
                    [
                        ("cpu", host.cpu_names[c].as_str()),
                        hl[0],
                        hl[1],
                        hl[2],
                        ("mode", mode),
                    ],
                    secs[m],
                );
            }
        }
        out.metrics.push(
            t,
            "node_memory_MemAvailable_bytes",
            hl,
            (host.mem_total * (1.0 - used)).round(),
        );
        out.metrics
            .push(t, "node_memory_MemTotal_bytes", hl, host.mem_total);
        let fs = [
            ("device", "/dev/vda1"),
            ("fstype", "ext4"),
            hl[0],
            hl[1],
            hl[2],
            ("mountpoint", "/"),
        ];
        out.metrics.push(
            t,
            "node_filesystem_avail_bytes",
            fs,
            (host.fs_size * (1.0 - fs_used)).round(),
        );
        out.metrics
            .push(t, "node_filesystem_size_bytes", fs, host.fs_size);
        out.metrics
            .push(t, "node_load1", hl, (host.load1 * 100.0).round() / 100.0);
        out.metrics.push(
            t,
            "node_network_receive_bytes_total",
            [("device", "eth0"), hl[0], hl[1], hl[2]],
            host.net_rx.floor(),
        );
        if warn_disk {
            self.line.clear();
            let _ = write!(self.line, "disk usage {:.0}% on /", fs_used * 100.0);
            out.logs.push(
                t,
                "warn",
                &self.line,
                [("service", "node"), ("host", host.name.as_str())],
                [("mountpoint", "/")],
            );
        }
    }

    fn service_tick(
        &mut self,
        s: usize,
        t: i64,
        dt: f64,
        season: f64,
        current: &[Incident; 3],
        out: &mut TickOutput,
    ) {
        let burst = current.iter().find(|i| {
            matches!(i.kind, IncidentKind::ErrorBurst { service } if service == s) && i.active(t)
        });
        let g = gauss(&mut self.rng);
        let svc = &mut self.services[s];
        let n = (svc.base_rps * season * (1.0 + 0.08 * g)).max(0.0) * dt;
        let err = if burst.is_some() { 0.2 } else { 0.002 };
        let median = svc.median_s * if burst.is_some() { 3.0 } else { 1.0 } * (0.8 + 0.2 * season);
        let sigma = 0.6;
        for (m, share) in [0.8, 0.2].into_iter().enumerate() {
            svc.requests[m][0] += n * share * (1.0 - err);
            svc.requests[m][1] += n * share * err;
        }
        for (b, le) in svc.buckets.iter_mut().zip(LE_VALUES) {
            *b += n * lognormal_cdf(le, median, sigma);
        }
        svc.duration_sum += n * median * (sigma * sigma / 2.0).exp();
        svc.duration_count += n;
        let checkout = s == 0;
        if checkout {
            svc.orders += n * 0.2 * (1.0 - err) * 0.3;
        }

        let name = svc.name.as_str();
        for (m, method) in METHODS.iter().enumerate() {
            for (st, status) in STATUSES.iter().enumerate() {
                out.metrics.push(
                    t,
                    "http_requests_total",
                    [("method", *method), ("service", name), ("status", status)],
                    svc.requests[m][st].floor(),
                );
            }
        }
        for (b, le) in svc.buckets.iter().zip(LE) {
            out.metrics.push(
                t,
                "http_request_duration_seconds_bucket",
                [("le", le), ("service", name)],
                b.floor(),
            );
        }
        out.metrics.push(
            t,
            "http_request_duration_seconds_sum",
            [("service", name)],
            svc.duration_sum,
        );
        out.metrics.push(
            t,
            "http_request_duration_seconds_count",
            [("service", name)],
            svc.duration_count.floor(),
        );
        if checkout {
            out.metrics
                .push(t, "orders_total", [("service", name)], svc.orders.floor());
        }
        self.service_logs(s, t, median, err, burst.is_some(), out);
    }

    fn service_logs(
        &mut self,
        s: usize,
        t: i64,
        median: f64,
        err: f64,
        burst: bool,
        out: &mut TickOutput,
    ) {
        let access = self.rng.random_range(1..4);
        for _ in 0..access {
            let svc = &self.services[s];
            let host = &self.hosts[svc.hosts[self.rng.random_range(0..svc.hosts.len())]];
            let post = self.rng.random_bool(0.2);
            let failed = self.rng.random_bool(err);
            let ms = (median * 1000.0 * (0.6 * gauss(&mut self.rng)).exp()).round() as u64;
            let user = self.rng.random_range(1..5000u32);
            let path = path_for(s, post);
            let method = if post { "POST" } else { "GET" };
            let status = if failed { "500" } else { "200" };
            self.line.clear();
            let _ = write!(self.line, "{method} {path} {status} {ms}ms user={user}");
            self.aux.clear();
            let _ = write!(self.aux, "{ms}");
            out.logs.push(
                t,
                if failed { "error" } else { "info" },
                &self.line,
                [("service", svc.name.as_str()), ("host", host.name.as_str())],
                [
                    ("method", method),
                    ("path", path),
                    ("status", status),
                    ("duration_ms", self.aux.as_str()),
                ],
            );
        }
        let errors = if burst {
            self.rng.random_range(2..7)
        } else {
            u32::from(self.rng.random_bool(0.01))
        };
        for _ in 0..errors {
            let svc = &self.services[s];
            let host = &self.hosts[svc.hosts[self.rng.random_range(0..svc.hosts.len())]];
            let other = &self.services[(s + 1) % self.services.len()].name;
            self.line.clear();
            let kind = match self.rng.random_range(0..3) {
                0 => {
                    self.line.push_str("connection refused to db-1:5432");
                    "ECONNREFUSED"
                }
                1 => {
                    let _ = write!(self.line, "upstream {other} returned 503");
                    "UPSTREAM_5XX"
                }
                _ => {
                    let _ = write!(self.line, "timeout after 5000ms calling {other}");
                    "TIMEOUT"
                }
            };
            out.logs.push(
                t,
                "error",
                &self.line,
                [("service", svc.name.as_str()), ("host", host.name.as_str())],
                [("error", kind)],
            );
        }
        if self.rng.random_bool(0.03) {
            let svc = &self.services[s];
            let host = &self.hosts[svc.hosts[0]];
            let ms = self.rng.random_range(800..4000u32);
            self.line.clear();
            let _ = write!(self.line, "slow query took {ms}ms table=orders");
            out.logs.push(
                t,
                "warn",
                &self.line,
                [("service", svc.name.as_str()), ("host", host.name.as_str())],
                [("table", "orders")],
            );
        }
    }
}

/// The request path a service logs.
fn path_for(service: usize, post: bool) -> &'static str {
    match (service % 4, post) {
        (0, false) => "/api/cart",
        (0, true) => "/api/checkout",
        (1, false) => "/api/payments/status",
        (1, true) => "/api/pay",
        (2, _) => "/api/search",
        (_, false) => "/product/42",
        (_, true) => "/api/session",
    }
}

/// Appends one alert row from the demo source.
fn alert<const N: usize>(
    out: &mut TickOutput,
    name: &str,
    labels: [(&str, &str); N],
    summary: &str,
    starts_at_ms: i64,
    ends_at_ms: Option<i64>,
) {
    // Fingerprint: FNV-1a over the name and labels, stable across runs like Alertmanager's.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in std::iter::once(name).chain(labels.iter().flat_map(|(k, v)| [*k, *v])) {
        for b in part.bytes().chain([0xff]) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    let fingerprint = format!("{hash:016x}");
    out.alerts.push(AlertRow {
        fingerprint: &fingerprint,
        resolved: ends_at_ms.is_some(),
        labels: std::iter::once(("alertname", name)).chain(labels),
        annotations: [("summary", summary)],
        starts_at_ms,
        ends_at_ms,
        source: "demo",
        generator_url: None,
    });
}

/// A standard normal draw (Box–Muller: rand's core has no normal distribution).
fn gauss(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// P(X ≤ x) for a log-normal X with the given median and shape.
fn lognormal_cdf(x: f64, median: f64, sigma: f64) -> f64 {
    if x.is_infinite() {
        return 1.0;
    }
    let z = (x / median).ln() / (sigma * std::f64::consts::SQRT_2);
    0.5 * (1.0 + erf(z))
}

/// The error function (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7).
fn erf(x: f64) -> f64 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    sign * y
}
