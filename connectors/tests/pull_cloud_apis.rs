//! CloudWatch `GetMetricData` against a local contract server that recomputes every SigV4
//! signature in Python from AWS's documented algorithm (`cloudwatch_contract.py`, whose own
//! signer is checked against AWS's published test vectors first) and checks the documented
//! request shape; pagination by `NextToken`; wrong credentials.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aiops_connectors::SourceError;
use aiops_connectors::outbound::OutboundPolicy;
use aiops_connectors::sources::cloudwatch_query::CloudWatchQueryConfig;
use aiops_connectors::sources::range::RangeSource;
use aiops_schemas::arrow_array::Array;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::types::{Float64Type, TimestampMillisecondType};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2026-01-01T00:00:00Z.
const FROM: i64 = 1_767_225_600_000;

fn script() -> String {
    format!(
        "{}/tests/cloudwatch_contract.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(token: Option<&str>) -> Server {
        let mut cmd = Command::new("python3");
        cmd.arg(script()).args([AKID, SECRET, "eu-west-1"]);
        if let Some(t) = token {
            cmd.arg(t);
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .expect("the contract server prints its port");
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(port: u16, secret: &str, token: Option<&str>) -> CloudWatchQueryConfig {
    let token = token
        .map(|t| format!("session_token = {{ value = {t:?} }}\n"))
        .unwrap_or_default();
    toml::from_str(&format!(
        "region = \"eu-west-1\"\nendpoint = \"http://127.0.0.1:{port}/\"\naccess_key_id = {{ value = {AKID:?} }}\nsecret_access_key = {{ value = {secret:?} }}\n{token}\
         [[queries]]\nid = \"cpu\"\nnamespace = \"AWS/EC2\"\nmetric_name = \"CPUUtilization\"\ndimensions = {{ InstanceId = \"i-0abc\" }}\n\
         [[queries]]\nid = \"net\"\nnamespace = \"AWS/EC2\"\nmetric_name = \"NetworkIn\"\nstat = \"Sum\"\n"
    ))
    .unwrap()
}

#[test]
fn the_contract_servers_signer_matches_aws_test_vectors() {
    let out = Command::new("python3")
        .arg(script())
        .arg("--selftest")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn signed_get_metric_data_pages_become_metric_rows() {
    for token in [None, Some("FQoGZXIvYXdzEXAMPLETOKEN")] {
        let server = Server::start(token);
        let src = config(server.port, SECRET, token)
            .build_with(&OutboundPolicy::allowing(["127.0.0.1"]))
            .unwrap();
        // 5 minutes: 5 points per query at 60 s; the second query comes on page 2.
        let out = src.pull(FROM, FROM + 300_000).await.unwrap();
        assert_eq!(out.len(), 1);
        let b = &out[0].batch;
        assert_eq!(b.num_rows(), 10, "token {token:?}");
        let t = b.column(0).as_primitive::<TimestampMillisecondType>();
        let n = b.column(1).as_string::<i32>();
        let v = b.column(3).as_primitive::<Float64Type>();
        let rows: Vec<(i64, &str, f64)> = (0..10)
            .map(|i| (t.value(i), n.value(i), v.value(i)))
            .collect();
        assert_eq!(rows[0], (FROM, "aws_ec2_cpuutilization_average", 0.0));
        assert_eq!(
            rows[4],
            (FROM + 240_000, "aws_ec2_cpuutilization_average", 4.0)
        );
        assert_eq!(rows[5], (FROM, "aws_ec2_network_in_sum", 100.0));
        let labels = b.column(2).as_map().value(0);
        let k = labels.column(0).as_string::<i32>();
        let vv = labels.column(1).as_string::<i32>();
        let pairs: Vec<(&str, &str)> = (0..k.len()).map(|j| (k.value(j), vv.value(j))).collect();
        assert_eq!(pairs, [("InstanceId", "i-0abc"), ("region", "eu-west-1")]);
        let report = src.test(FROM + 300_000).await.unwrap();
        assert!(report.reachable && report.problems.is_empty(), "{report:?}");
    }
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_signature_check_and_not_echoed() {
    let server = Server::start(None);
    let wrong = "Wrong/Secret+Key0000000000000000000000000";
    let src = config(server.port, wrong, None)
        .build_with(&OutboundPolicy::allowing(["127.0.0.1"]))
        .unwrap();
    let e = src.pull(FROM, FROM + 300_000).await.unwrap_err();
    assert!(matches!(e, SourceError::Config(_)), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("refused the credentials (HTTP 403 Forbidden) SignatureDoesNotMatch"),
        "{text}"
    );
    assert!(!text.contains(wrong) && !text.contains(SECRET), "{text}");
    let report = src.test(FROM).await.unwrap();
    assert!(!report.reachable, "{report:?}");
}
