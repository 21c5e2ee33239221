//! CloudWatch config checks and request shape (no network; the signed requests are tested
//! against a contract server in `connectors/tests/pull_cloud_apis.rs`).

use super::config::{CloudWatchQueryConfig, snake};
use crate::outbound::OutboundPolicy;

fn config(extra: &str) -> CloudWatchQueryConfig {
    toml::from_str(&format!(
        "region = \"eu-west-1\"\naccess_key_id = {{ value = \"AKIDEXAMPLE\" }}\nsecret_access_key = {{ value = \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\" }}\n{extra}\n\
         [[queries]]\nid = \"cpu\"\nnamespace = \"AWS/EC2\"\nmetric_name = \"CPUUtilization\"\ndimensions = {{ InstanceId = \"i-0abc\" }}\nperiod = \"5m\"\n\
         [[queries]]\nid = \"doubled\"\nexpression = \"cpu * 2\"\nmetric = \"cpu_doubled\"\n"
    ))
    .unwrap()
}

#[test]
fn queries_become_documented_metric_data_queries() {
    let c = config("");
    assert_eq!(
        c.endpoint_url(),
        "https://monitoring.eu-west-1.amazonaws.com/"
    );
    assert_eq!(
        c.queries[0].to_aws(),
        serde_json::json!({
            "Id": "cpu",
            "ReturnData": true,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/EC2",
                    "MetricName": "CPUUtilization",
                    "Dimensions": [{"Name": "InstanceId", "Value": "i-0abc"}]
                },
                "Period": 300,
                "Stat": "Average"
            }
        })
    );
    assert_eq!(
        c.queries[1].to_aws(),
        serde_json::json!({"Id": "doubled", "ReturnData": true, "Expression": "cpu * 2", "Period": 60})
    );
    assert_eq!(
        c.queries[0].metric_name().as_deref(),
        Some("aws_ec2_cpuutilization_average")
    );
    assert_eq!(snake("NetworkIn"), "network_in");
    assert_eq!(snake("AWS/ApplicationELB"), "application_elb");
}

#[test]
fn bad_configs_list_every_problem() {
    let mut c = config("endpoint = \"http://169.254.169.254/\"");
    c.region = "EU WEST".into();
    c.queries[1].metric = None;
    c.queries[0].id = "Cpu".into();
    let e = c
        .build_with(&OutboundPolicy::default())
        .unwrap_err()
        .to_string();
    for want in [
        "not an AWS region name",
        "id must match",
        "an expression needs `metric`",
        "metadata",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }
    let c = config("endpoint = \"http://127.0.0.1:9/\"");
    assert!(
        c.build_with(&OutboundPolicy::allowing(["127.0.0.1"]))
            .is_ok()
    );
    let shown = serde_json::to_string(&c).unwrap();
    assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
}
