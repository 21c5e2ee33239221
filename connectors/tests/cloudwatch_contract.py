#!/usr/bin/env python3
"""A local CloudWatch GetMetricData endpoint (AWS JSON 1.0 protocol) for the pull-source tests.

It checks what AWS documents and nothing from aiops' code: the request shape (POST, the
X-Amz-Target and Content-Type of the JSON protocol, MetricDataQueries / StartTime / EndTime /
NextToken) and the SigV4 signature, recomputed here from the documented algorithm with
hashlib/hmac and the secret given on the command line. It answers with the documented response
shape and splits the results over two pages (NextToken).

Usage: cloudwatch_contract.py ACCESS_KEY_ID SECRET REGION [SESSION_TOKEN]
       prints the port it listens on (127.0.0.1), then serves until killed.
       cloudwatch_contract.py --selftest   checks the signer against AWS's published vectors.
"""
import hashlib
import hmac
import json
import re
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

TARGET = "GraniteServiceVersion20100801.GetMetricData"
CONTENT_TYPE = "application/x-amz-json-1.0"


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret, date, region, service):
    k = _hmac(("AWS4" + secret).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def _enc(s):
    return urllib.parse.quote(s, safe="-_.~")


def canonical_query(q):
    pairs = urllib.parse.parse_qsl(q, keep_blank_values=True)
    return "&".join(f"{k}={v}" for k, v in sorted((_enc(k), _enc(v)) for k, v in pairs))


def signature(method, path, query, headers, signed, body, secret, amz_date, region, service):
    """headers: dict of lower-case name -> value; signed: list of names in SignedHeaders."""
    canonical_headers = "".join(f"{h}:{' '.join(headers[h].split())}\n" for h in signed)
    canonical_uri = "/".join(_enc(seg) for seg in path.split("/")) or "/"
    creq = "\n".join([
        method, canonical_uri, canonical_query(query), canonical_headers, ";".join(signed),
        hashlib.sha256(body).hexdigest(),
    ])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    return hmac.new(signing_key(secret, amz_date[:8], region, service), sts.encode(), hashlib.sha256).hexdigest()


def selftest():
    # AWS SigV4 test suite: get-vanilla and get-vanilla-query-order-key-case.
    h = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    s = signature("GET", "/", "", h, ["host", "x-amz-date"], b"", secret, "20150830T123600Z", "us-east-1", "service")
    assert s == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31", s
    s = signature("GET", "/", "Param2=value2&Param1=value1", h, ["host", "x-amz-date"], b"", secret,
                  "20150830T123600Z", "us-east-1", "service")
    assert s == "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500", s
    assert signing_key(secret, "20150830", "us-east-1", "iam").hex() == \
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    print("selftest ok")


AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9]+)/aws4_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


class Handler(BaseHTTPRequestHandler):
    akid = secret = region = token = ""

    def log_message(self, *args):
        pass

    def answer(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fault(self, status, code, message):
        self.answer(status, {"__type": f"com.amazon.coral.service#{code}", "message": message})

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        path, _, query = self.path.partition("?")
        if path != "/":
            return self.fault(404, "UnknownOperationException", f"path {path}")
        if self.headers.get("Content-Type") != CONTENT_TYPE:
            return self.fault(400, "SerializationException", "Content-Type must be " + CONTENT_TYPE)
        if self.headers.get("X-Amz-Target") != TARGET:
            return self.fault(400, "UnknownOperationException", "X-Amz-Target must be " + TARGET)
        amz_date = self.headers.get("X-Amz-Date", "")
        if not re.fullmatch(r"\d{8}T\d{6}Z", amz_date):
            return self.fault(400, "IncompleteSignature", "X-Amz-Date missing or malformed")
        m = AUTH_RE.match(self.headers.get("Authorization", ""))
        if not m:
            return self.fault(403, "IncompleteSignature", "Authorization header malformed")
        akid, date, region, service, signed, sig = m.groups()
        if akid != self.akid:
            return self.fault(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        if date != amz_date[:8] or region != self.region or service != "monitoring":
            return self.fault(403, "SignatureDoesNotMatch", "Credential scope does not match")
        signed_list = signed.split(";")
        required = {"host", "x-amz-date", "content-type", "x-amz-target"}
        if self.token:
            required.add("x-amz-security-token")
            if self.headers.get("X-Amz-Security-Token") != self.token:
                return self.fault(403, "InvalidClientTokenId", "The security token is invalid.")
        if not required <= set(signed_list) or signed_list != sorted(signed_list):
            return self.fault(403, "SignatureDoesNotMatch", f"SignedHeaders {signed} lacks {sorted(required)}")
        headers = {h: self.headers.get(h, "") for h in signed_list}
        expected = signature("POST", path, query, headers, signed_list, body, self.secret, amz_date, region, service)
        if not hmac.compare_digest(expected, sig):
            return self.fault(403, "SignatureDoesNotMatch",
                              "The request signature we calculated does not match the signature you provided.")
        try:
            req = json.loads(body)
        except ValueError:
            return self.fault(400, "SerializationException", "body is not JSON")
        queries = req.get("MetricDataQueries")
        if not isinstance(queries, list) or not queries:
            return self.fault(400, "ValidationError", "MetricDataQueries is required")
        for q in queries:
            if not re.fullmatch(r"[a-z][a-zA-Z0-9_]*", str(q.get("Id", ""))):
                return self.fault(400, "ValidationError", f"bad Id {q.get('Id')!r}")
            if "MetricStat" in q:
                ms = q["MetricStat"]
                metric = ms.get("Metric", {})
                if not (metric.get("Namespace") and metric.get("MetricName") and isinstance(ms.get("Period"), int)
                        and ms.get("Stat") and isinstance(metric.get("Dimensions", []), list)):
                    return self.fault(400, "ValidationError", f"incomplete MetricStat in {q['Id']}")
                for d in metric.get("Dimensions", []):
                    if set(d) != {"Name", "Value"}:
                        return self.fault(400, "ValidationError", f"bad dimension {d}")
            elif not ("Expression" in q and isinstance(q.get("Period"), int)):
                return self.fault(400, "ValidationError", f"query {q['Id']} needs MetricStat or Expression")
        start, end = req.get("StartTime"), req.get("EndTime")
        if not isinstance(start, (int, float)) or not isinstance(end, (int, float)) or start >= end:
            return self.fault(400, "ValidationError", "StartTime and EndTime must be epoch seconds, start < end")
        # Page 1: the first query; page 2 (NextToken "page-2"): the others.
        page2 = req.get("NextToken") == "page-2"
        if req.get("NextToken") not in (None, "page-2"):
            return self.fault(400, "InvalidNextToken", "unknown NextToken")
        chosen = queries[1:] if page2 else queries[:1]
        results = []
        for n, q in enumerate(chosen):
            if not q.get("ReturnData", True):
                continue
            period = q.get("Period") or q["MetricStat"]["Period"]
            first = int(start) - int(start) % period
            stamps = [t for t in range(first, int(end) + period, period) if start <= t < end]
            base = 100 if page2 else 0
            results.append({"Id": q["Id"], "Label": q["Id"], "Timestamps": stamps,
                            "Values": [base + i + n * 10 for i in range(len(stamps))], "StatusCode": "Complete"})
        out = {"MetricDataResults": results, "Messages": []}
        if not page2 and len(queries) > 1:
            out["NextToken"] = "page-2"
        self.answer(200, out)


def main():
    if sys.argv[1:] == ["--selftest"]:
        return selftest()
    Handler.akid, Handler.secret, Handler.region = sys.argv[1:4]
    Handler.token = sys.argv[4] if len(sys.argv) > 4 else ""
    server = HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
