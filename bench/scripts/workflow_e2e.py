#!/usr/bin/env python3
"""End-to-end workflow latency through the real `aiops` binary (release build).

Starts `aiops run` on the embedded log (fsync always) with one workflow (firing alert → webhook),
a recording webhook receiver in this process, posts N alerts at RATE/s to /api/alerts, and reports
p50/p99/max from the start of each POST to the receiver reading the request, and executions/s
over the run. Usage: bench/scripts/workflow_e2e.py [N] [RATE]
"""
import http.server, json, os, socket, subprocess, sys, tempfile, threading, time, urllib.request

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
RATE = float(sys.argv[2]) if len(sys.argv) > 2 else 200.0
BIN = os.environ.get("AIOPS_BIN", "target/release/aiops")
arrived = {}

class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        t = time.monotonic()
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        arrived.setdefault(body["name"], t)
        self.send_response(200); self.send_header("content-length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
threading.Thread(target=sink.serve_forever, daemon=True).start()
d = tempfile.mkdtemp()
os.makedirs(f"{d}/wf")
open(f"{d}/wf/hook.yaml", "w").write("""
workflow:
  id: hook
  concurrency: 1000
  queue: 100000
  triggers: [{type: alert, filters: [{key: status, value: firing}]}]
  actions:
    - name: hook
      provider: {type: webhook, config: hook, with: {body: {name: "{{ alert.name }}"}}}
""")
open(f"{d}/aiops.toml", "w").write(f"""
[workflows]
dir = "{d}/wf"
outbound_allow = ["127.0.0.1"]
max_in_flight = 64
[workflows.rate_limits]
default_per_provider = "100000/1s"
per_target = "100000/1s"
[workflows.providers.hook]
kind = "webhook"
url = "http://127.0.0.1:{sink.server_address[1]}/hook"
secret = "bench-hmac-key"
""")
port = free_port()
proc = subprocess.Popen([BIN, "run", "--data-dir", f"{d}/data", "--http", f"127.0.0.1:{port}", "--pg", "127.0.0.1:0", "--config", f"{d}/aiops.toml"],
                        stdout=subprocess.DEVNULL, stderr=open(f"{d}/stderr", "w"),
                        env={**os.environ, "AIOPS__AUTH__ANONYMOUS_ROLE": "admin"})
base = f"http://127.0.0.1:{port}"
for _ in range(300):
    try:
        urllib.request.urlopen(base + "/api/health").read(); break
    except Exception:
        time.sleep(0.05)
sent = {}
t0 = time.monotonic()
for i in range(N):
    due = t0 + i / RATE
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    name = f"A{i}"
    sent[name] = time.monotonic()
    req = urllib.request.Request(base + "/api/alerts", data=json.dumps([{"name": name, "severity": "critical"}]).encode(),
                                 headers={"content-type": "application/json"})
    urllib.request.urlopen(req).read()
deadline = time.monotonic() + 60
while len(arrived) < N and time.monotonic() < deadline:
    time.sleep(0.05)
elapsed = max(arrived.values()) - t0 if arrived else 0
proc.kill(); proc.wait()
lat = sorted((arrived[k] - sent[k]) * 1000 for k in sent if k in arrived)
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(json.dumps({"alerts": N, "rate_per_s": RATE, "received": len(lat), "executions_per_s": len(lat) / elapsed if elapsed else 0,
                  "p50_ms": round(q(0.5), 2), "p99_ms": round(q(0.99), 2), "max_ms": round(lat[-1], 2)}))
