//! CloudWatch alarms in SNS messages (and raw), SNS subscription handshakes, and the rejections.

use super::*;
use crate::sources::json_alerts::common::test_util::{m, rows};
use serde_json::json;

const NOW: i64 = 1_795_700_000_000;
/// 2026-11-25T10:00:00Z.
const T: i64 = 1_795_600_800_000;

fn req() -> PushRequest<'static> {
    PushRequest {
        // What SNS sends.
        content_type: Some("text/plain; charset=UTF-8"),
        content_encoding: None,
        now_ms: NOW,
        limits: crate::sources::IngestLimits::any_time(),
    }
}

fn decode(body: &Value) -> Result<Vec<SourceBatch>, DecodeError> {
    CloudWatchDecoder.decode(body.to_string().as_bytes(), &req())
}

/// An alarm notification as CloudWatch publishes it to an SNS topic set as alarm action
/// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html>):
/// the JSON of real notifications, with CloudWatch's `+0000` time offsets.
fn alarm() -> Value {
    json!({
        "AlarmName": "api-5xx-high",
        "AlarmDescription": "5xx on the public ALB. severity=critical, runbook https://runbooks/alb",
        "AWSAccountId": "123456789012",
        "AlarmConfigurationUpdatedTimestamp": "2026-11-20T08:00:00.000+0000",
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed: 1 out of the last 1 datapoints [42.0 (25/11/26 09:59:00)] was greater than the threshold (10.0) (minimum 1 datapoint for OK -> ALARM transition).",
        "StateChangeTime": "2026-11-25T10:00:00.000+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-5xx-high",
        "OldStateValue": "OK",
        "OKActions": [],
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:aiops"],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": "HTTPCode_Target_5XX_Count",
            "Namespace": "AWS/ApplicationELB",
            "StatisticType": "Statistic",
            "Statistic": "SUM",
            "Unit": null,
            "Dimensions": [{"value": "app/public/50dc6c495c0c9188", "name": "LoadBalancer"}],
            "Period": 60,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 10.0,
            "TreatMissingData": "missing",
            "EvaluateLowSampleCountPercentile": ""
        }
    })
}

/// The SNS HTTP(S) notification of
/// <https://docs.aws.amazon.com/sns/latest/dg/http-notification-json.html> carrying `message`.
fn envelope(message: &Value) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:aiops",
        "Subject": "ALARM: \"api-5xx-high\" in US East (N. Virginia)",
        "Message": message.to_string(),
        "Timestamp": "2026-11-25T10:00:01.234Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEw6JRN...",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:123456789012:aiops:c9135db0-26c4-47ec-8998-413945fb5a96"
    })
}

fn arn_fingerprint() -> String {
    format!(
        "{:016x}",
        hash_labels([(
            "alarm_arn",
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-5xx-high"
        )])
    )
}

#[test]
fn alarm_in_sns_notification() {
    let out = decode(&envelope(&alarm())).unwrap();
    assert_eq!(out[0].source, "cloudwatch");
    let r = rows(&out);
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!(r.status, "firing");
    assert_eq!(r.fingerprint, arn_fingerprint());
    assert_eq!(
        r.labels,
        m(&[
            ("LoadBalancer", "app/public/50dc6c495c0c9188"),
            ("account", "123456789012"),
            ("alertname", "api-5xx-high"),
            ("metric", "HTTPCode_Target_5XX_Count"),
            ("namespace", "AWS/ApplicationELB"),
            ("region", "us-east-1"),
            ("severity", "critical"),
        ])
    );
    assert_eq!(
        r.annotations,
        m(&[
            (
                "alarm_arn",
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-5xx-high"
            ),
            (
                "description",
                "5xx on the public ALB. severity=critical, runbook https://runbooks/alb"
            ),
            ("old_state", "OK"),
            ("state", "ALARM"),
            (
                "summary",
                "Threshold Crossed: 1 out of the last 1 datapoints [42.0 (25/11/26 09:59:00)] was greater than the threshold (10.0) (minimum 1 datapoint for OK -> ALARM transition)."
            ),
        ])
    );
    assert_eq!((r.starts_at, r.ends_at, r.time), (T, None, T));
    assert_eq!(
        (r.source.as_str(), r.generator_url.as_deref()),
        ("cloudwatch", None)
    );
}

#[test]
fn ok_is_resolved_and_raw_delivery_is_accepted() {
    let mut a = alarm();
    a["NewStateValue"] = json!("OK");
    a["OldStateValue"] = json!("ALARM");
    a["StateChangeTime"] = json!("2026-11-25T10:30:00.000+0000");
    // Raw message delivery: the body is the alarm itself.
    let r = rows(&decode(&a).unwrap());
    assert_eq!(r[0].status, "resolved");
    assert_eq!(
        r[0].fingerprint,
        arn_fingerprint(),
        "same alarm, same alert"
    );
    assert_eq!(r[0].starts_at, T + 30 * 60_000);
    assert_eq!(r[0].ends_at, Some(T + 30 * 60_000));
    assert_eq!(r[0].time, T + 30 * 60_000);
    assert_eq!(r[0].annotations["state"], "OK");
}

#[test]
fn insufficient_data_and_defaults() {
    let mut a = alarm();
    a["NewStateValue"] = json!("INSUFFICIENT_DATA");
    let r = rows(&decode(&envelope(&a)).unwrap());
    assert_eq!(r[0].status, "firing");
    assert_eq!(r[0].annotations["state"], "INSUFFICIENT_DATA");
    let alarm_rows = rows(&decode(&envelope(&alarm())).unwrap());
    assert_eq!(
        (&r[0].labels, &r[0].fingerprint),
        (&alarm_rows[0].labels, &alarm_rows[0].fingerprint),
        "one alarm, one label set whatever its state"
    );

    // An older message: no AlarmArn, no StateChangeTime, no Trigger, no severity token.
    let old = json!({
        "AlarmName": "queue-depth", "AlarmDescription": null, "AWSAccountId": "123456789012",
        "NewStateValue": "ALARM", "NewStateReason": "Threshold Crossed", "Region": "EU (Ireland)"
    });
    let r = rows(&decode(&envelope(&old)).unwrap());
    assert_eq!(
        r[0].labels,
        m(&[
            ("account", "123456789012"),
            ("alertname", "queue-depth"),
            ("region", "EU (Ireland)"),
            ("severity", "warning"),
        ])
    );
    assert_eq!(r[0].starts_at, T + 1_234, "the SNS Timestamp");
    assert_eq!(
        r[0].fingerprint,
        format!(
            "{:016x}",
            hash_labels([
                ("account", "123456789012"),
                ("region", "EU (Ireland)"),
                ("alarm", "queue-depth")
            ])
        )
    );
    let bare = json!({"AlarmName": "x", "NewStateValue": "ALARM"});
    assert_eq!(rows(&decode(&bare).unwrap())[0].starts_at, NOW);
}

#[test]
fn subscription_handshakes_store_nothing() {
    // <https://docs.aws.amazon.com/sns/latest/dg/http-subscription-confirmation-json.html>
    let confirm = json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37...",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
        "Message": "You have chosen to subscribe to the topic arn:aws:sns:us-west-2:123456789012:MyTopic.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37...",
        "Timestamp": "2012-04-26T20:45:04.751Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=",
        "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
    });
    assert_eq!(decode(&confirm).unwrap().len(), 0);
    let mut unsub = confirm;
    unsub["Type"] = json!("UnsubscribeConfirmation");
    assert_eq!(decode(&unsub).unwrap().len(), 0);
}

#[test]
fn rejects_malformed_notifications() {
    let with = |f: &dyn Fn(&mut Value)| {
        let mut a = alarm();
        f(&mut a);
        envelope(&a)
    };
    let mut bad_type = envelope(&alarm());
    bad_type["Type"] = json!("Weird");
    let mut no_message = envelope(&alarm());
    no_message
        .as_object_mut()
        .map(|o| o.remove("Message"))
        .unwrap();
    let mut text_message = envelope(&alarm());
    text_message["Message"] = json!("Hello world!");
    let cases: [(Value, DecodeError); 7] = [
        (
            bad_type,
            DecodeError::InvalidValue {
                at: "notification".into(),
                field: "Type".into(),
                message: "must be \"Notification\", \"SubscriptionConfirmation\" or \"UnsubscribeConfirmation\", got \"Weird\"".into(),
            },
        ),
        (
            no_message,
            DecodeError::MissingField {
                at: "notification".into(),
                field: "Message",
            },
        ),
        (
            with(&|a| {
                a.as_object_mut().map(|o| o.remove("AlarmName")).unwrap();
            }),
            DecodeError::MissingField {
                at: "alarm".into(),
                field: "AlarmName",
            },
        ),
        (
            with(&|a| a["NewStateValue"] = json!("BROKEN")),
            DecodeError::InvalidValue {
                at: "alarm".into(),
                field: "NewStateValue".into(),
                message: "must be \"ALARM\", \"OK\" or \"INSUFFICIENT_DATA\", got \"BROKEN\"".into(),
            },
        ),
        (
            with(&|a| a["StateChangeTime"] = json!("25/11/2026 10:00")),
            DecodeError::InvalidValue {
                at: "alarm".into(),
                field: "StateChangeTime".into(),
                message: "\"25/11/2026 10:00\" is not a time like 2026-11-25T10:00:00.000+0000"
                    .into(),
            },
        ),
        (
            with(&|a| a["Trigger"]["Dimensions"] = json!({"name": "x"})),
            DecodeError::WrongType {
                at: "alarm".into(),
                field: "Trigger.Dimensions".into(),
                expected: "an array",
                got: "an object",
            },
        ),
        (
            with(&|a| a["Trigger"]["Namespace"] = json!(5)),
            DecodeError::WrongType {
                at: "alarm".into(),
                field: "Trigger.Namespace".into(),
                expected: "a string",
                got: "a number",
            },
        ),
    ];
    for (body, want) in cases {
        assert_eq!(decode(&body).unwrap_err(), want, "{body}");
    }
    let e = decode(&text_message).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("notification: field \"Message\" is not a CloudWatch alarm JSON document"),
        "{e}"
    );
    let e = CloudWatchDecoder.decode(b"{\"Type\":", &req()).unwrap_err();
    assert_eq!(e.reason(), "bad_json");
    assert_eq!(decode(&json!([1])).unwrap_err().reason(), "wrong_type");
}

#[test]
fn sns_text_plain_is_read_but_other_media_are_refused() {
    let body = json!({"AlarmName": "a", "NewStateValue": "ALARM"}).to_string();
    assert!(CloudWatchDecoder.decode(body.as_bytes(), &req()).is_ok());
    for (ct, enc) in [
        (Some("application/xml"), None),
        (Some("text/plain; charset=UTF-8"), Some("gzip")),
    ] {
        let r = PushRequest {
            content_type: ct,
            content_encoding: enc,
            ..req()
        };
        let e = CloudWatchDecoder.decode(body.as_bytes(), &r).unwrap_err();
        assert_eq!(e.reason(), "unsupported_media_type", "{ct:?} {enc:?}");
    }
}
