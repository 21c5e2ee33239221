//! Unit tests of the masking engine: every built-in detector on positive and negative examples,
//! actions, settings validation, Arrow batches, and properties (idempotence, no panics, text
//! without triggers unchanged).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use aiops_schemas::arrow_array::cast::AsArray;
use aiops_schemas::arrow_array::{Array, RecordBatch};
use aiops_schemas::builders::AlertRow;
use aiops_schemas::{
    AlertBatchBuilder, EventBatchBuilder, Kind, LogBatchBuilder, MetricBatchBuilder,
};
use proptest::prelude::*;

fn masker(s: MaskingSettings) -> Masker {
    Masker::new(&s, Some(b"test-key")).unwrap()
}

fn all_on() -> &'static Masker {
    // Built once: the property tests call it for every case.
    static M: std::sync::LazyLock<Masker> = std::sync::LazyLock::new(|| {
        masker(MaskingSettings {
            pii: true,
            ..MaskingSettings::default()
        })
    });
    &M
}

fn all_hash() -> &'static Masker {
    static M: std::sync::LazyLock<Masker> = std::sync::LazyLock::new(|| {
        masker(MaskingSettings {
            pii: true,
            actions: BUILTINS
                .iter()
                .map(|b| (b.name.to_string(), Action::Hash))
                .collect(),
            hash_key: Some("k".into()),
            hash_length: 16,
            ..MaskingSettings::default()
        })
    });
    &M
}

fn mask(m: &Masker, s: &str) -> String {
    let mut st = MaskStats::default();
    match m.mask_text(s, &mut st) {
        Masked::Unchanged(t) => t.to_string(),
        Masked::Changed(t) => t,
        Masked::Drop => "<dropped>".to_string(),
    }
}

/// Asserts that `input` becomes `want` and that masking again changes nothing.
#[track_caller]
fn check(m: &Masker, input: &str, want: &str) {
    let got = mask(m, input);
    assert_eq!(got, want, "masking {input:?}");
    assert_eq!(mask(m, &got), got, "masking twice {input:?}");
}

/// Asserts that nothing in `input` is masked.
#[track_caller]
fn untouched(m: &Masker, input: &str) {
    let mut st = MaskStats::default();
    assert_eq!(
        m.mask_text(input, &mut st),
        Masked::Unchanged(input),
        "{input:?} must not be masked"
    );
    assert!(!st.any());
}

#[test]
fn secrets_in_key_value_and_json() {
    let m = all_on();
    check(
        m,
        "login ok user=bob password=hunter2 retry=1",
        "login ok user=bob password=[MASKED:secret] retry=1",
    );
    check(m, "db_password: s3cr3t!", "db_password: [MASKED:secret]");
    check(m, "PASSWD = 'a b c'", "PASSWD = '[MASKED:secret]'");
    check(
        m,
        r#"{"user":"bob","password":"p@ss\"word","n":1}"#,
        r#"{"user":"bob","password":"[MASKED:secret]","n":1}"#,
    );
    check(
        m,
        r#"{"pin_token": 123456}"#,
        r#"{"pin_token": "[MASKED:secret]"}"#,
    );
    check(
        m,
        r#"msg="{\"api_key\":\"abc123\"}""#,
        r#"msg="{\"api_key\":\"[MASKED:secret]\"}""#,
    );
    check(
        m,
        "X-Api-Key: 9f8e7d6c client_secret=xyz&access_token=tok.en",
        "X-Api-Key: [MASKED:secret] client_secret=[MASKED:secret]&access_token=[MASKED:secret]",
    );
    check(
        m,
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key=[MASKED:secret]",
    );
    check(m, "pass=x1 bypass=true", "pass=[MASKED:secret] bypass=true");
    check(
        m,
        r#"auth=s3cr3t {"auth": "abc"}"#,
        r#"auth=[MASKED:secret] {"auth": "[MASKED:secret]"}"#,
    );
    check(
        m,
        "Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig123 next",
        "Authorization: [MASKED:secret] next",
    );
    check(
        m,
        "用户登录失败，密码 password=中文密码123，请重试",
        "用户登录失败，密码 password=[MASKED:secret]，请重试",
    );
    // A value cut off by truncation is hidden to the end.
    check(m, r#"{"secret": "abcdef"#, r#"{"secret": "[MASKED:secret]"#);
}

#[test]
fn secret_negatives() {
    let m = all_on();
    for s in [
        "author=alice tokens=128 max_tokens=4096",
        "Failed password for invalid user admin from 10.0.0.7 port 22 ssh2",
        "password_changed=true",
        "password: null",
        r#"{"password": null, "token": false}"#,
        "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=10.1.2.3",
        "passing through the bypass, compass=north",
        "token refreshed for session 42",
        // Hadoop: an auth method and a container token structure.
        "Auth successful for job_1445144423722_0020 (auth:SIMPLE)",
        "Token: Token { kind: ContainerToken, service: 172.22.149.145:28345 }",
        r#"{"token": {"kind": "x"}}"#,
    ] {
        untouched(m, s);
    }
}

#[test]
fn bearer_and_basic() {
    let m = all_on();
    check(
        m,
        "curl -H 'Authorization: Bearer abcDEF123456' ok",
        "curl -H 'Authorization: [MASKED:secret]' ok",
    );
    check(
        m,
        "sent bearer ya29.a0AfH6SMBx done",
        "sent bearer [MASKED:bearer] done",
    );
    // base64("alice:secret")
    check(
        m,
        "header Basic YWxpY2U6c2VjcmV0 sent",
        "header Basic [MASKED:bearer] sent",
    );
    for s in [
        "basic configuration loaded",
        "Bearer authentication required",
        "a bearer of bad news",
        "Basic YWxpY2Vib2I=",
    ] {
        untouched(m, s);
    }
}

#[test]
fn cloud_and_saas_tokens() {
    let m = all_on();
    check(
        m,
        "using key AKIAIOSFODNN7EXAMPLE for s3",
        "using key [MASKED:aws_access_key] for s3",
    );
    check(
        m,
        "sts ASIAY34FZKBOKMUTVV7A ok",
        "sts [MASKED:aws_access_key] ok",
    );
    check(
        m,
        "aws creds wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY loaded",
        "aws creds [MASKED:aws_secret_key] loaded",
    );
    check(
        m,
        "clone with ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 done",
        "clone with [MASKED:github_token] done",
    );
    check(
        m,
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "[MASKED:github_token]",
    );
    check(
        m,
        "slack xoxb-123456789012-abcdefABCDEF posted",
        "slack [MASKED:slack_token] posted",
    );
    check(
        m,
        "maps key=AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "maps key=[MASKED:google_api_key]",
    );
    check(
        m,
        "db url postgres://app:Sup3rS3cret@db.internal:5432/x",
        "db url postgres://app:[MASKED:url_password]@db.internal:5432/x",
    );
    for s in [
        "AKIA is a prefix only",
        "timezone Asia/Shanghai",
        "aws request id 3f1c2b7e-8d2a-4c5b-9e1f-0a2b3c4d5e6f",
        "aws etag da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "ghp_short",
        "see https://example.com/a:b/c",
    ] {
        untouched(m, s);
    }
}

#[test]
fn private_keys() {
    let m = all_on();
    check(
        m,
        "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----\nend",
        "key:\n[MASKED:private_key]\nend",
    );
    check(
        m,
        r#"{"private_key":"-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----\n"}"#,
        r#"{"private_key":"[MASKED:secret]"}"#,
    );
    // Cut off: hidden to the end.
    check(
        m,
        "oops -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNz",
        "oops [MASKED:private_key]",
    );
    untouched(
        m,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    );
}

#[test]
fn cards_with_luhn() {
    let m = all_on();
    check(
        m,
        "paid with 4111111111111111 ok",
        "paid with [MASKED:card] ok",
    );
    check(m, "card 4111 1111 1111 1111.", "card [MASKED:card].");
    check(m, "amex 3782-822463-10005", "amex [MASKED:card]");
    check(m, "卡号5555555555554444已扣款", "卡号[MASKED:card]已扣款");
    check(m, "unionpay=6212345678901232", "unionpay=[MASKED:card]");
    // A card followed or preceded by other numbers.
    check(
        m,
        "paid 4111 1111 1111 1111 2 items",
        "paid [MASKED:card] 2 items",
    );
    check(
        m,
        "2026-12-04 4111111111111111 ok",
        "2026-12-04 [MASKED:card] ok",
    );
    for s in [
        // Luhn-invalid 16 digits.
        "paid with 4111111111111112 ok",
        // Order ids and timestamps (first digit 1, or Luhn-invalid).
        "order 1234567890123456 shipped",
        "order id 4000123412341235",
        "ts=1700000000123 ns=1700000000123456789",
        "2015-10-18 18:01:47,978 INFO [main] started",
        // UUIDs, hex ids, versions, IPs, floats.
        "req 550e8400-e29b-41d4-a716-446655440000",
        "trace 4111111111111111abcd",
        "v4.1.11.1111.1111 at 192.168.100.200:8080",
        "value=0.4111111111111111",
        "x4111111111111111",
        "0000000000000000",
        "4111 11 1111 1111 1111",
        // HDFS block ids (signed 64-bit, some pass Luhn).
        "Receiving block blk_-6952295868487656571 src: /10.250.6.214:52922",
        "Verification succeeded for blk_-4980916519894289629",
    ] {
        untouched(m, s);
    }
}

#[test]
fn emails_and_phones_only_with_pii() {
    let default = masker(MaskingSettings::default());
    for s in [
        "mail alice@example.com",
        "call +8613800138000",
        "手机13800138000",
        "id 11010519491231002X",
    ] {
        untouched(&default, s);
    }
    let m = all_on();
    check(
        m,
        "mail from alice.smith+x@example.co.uk failed",
        "mail from [MASKED:email] failed",
    );
    check(
        m,
        "联系邮箱：张三@例子 or zhang@corp.cn。",
        "联系邮箱：张三@例子 or [MASKED:email]。",
    );
    check(m, "call +1 415-555-2671 now", "call [MASKED:phone] now");
    check(m, "tel:+8613800138000", "tel:[MASKED:phone]");
    check(
        m,
        "用户手机13800138000已注册",
        "用户手机[MASKED:cn_mobile]已注册",
    );
    check(m, "mobile 138-0013-8000", "mobile [MASKED:cn_mobile]");
    check(m, "手机13800138000 234 次", "手机[MASKED:cn_mobile] 234 次");
    check(
        m,
        "Session: 3 call +86 138 0013 8000 0546173_4261722401 initialized",
        "Session: 3 call [MASKED:phone] 0546173_4261722401 initialized",
    );
    check(
        m,
        "Session: 3 card 4111 1111 1111 1111 0546173_4261722401 initialized",
        "Session: 3 card [MASKED:card] 0546173_4261722401 initialized",
    );
    for s in [
        "user@host without tld",
        "java.lang.Object@1a2b3c4d",
        "pid 12345678901 started",
        "version 1.3.8001380001",
        "+0123456789",
        "a+12345678",
        "12800138000",
        "138001380001",
    ] {
        untouched(m, s);
    }
}

#[test]
fn chinese_id_numbers() {
    let m = all_on();
    check(
        m,
        "身份证号11010519491231002X，姓名张三",
        "身份证号[MASKED:cn_id]，姓名张三",
    );
    check(m, "id=110105198001011238", "id=[MASKED:cn_id]");
    check(m, "证件：440306199003072534。", "证件：[MASKED:cn_id]。");
    check(m, "id=11010519491231002x", "id=[MASKED:cn_id]");
    for s in [
        // Wrong check character.
        "id=110105198001011239",
        "id=11010519491231002Y",
        // Impossible birth date.
        "id=110105194913310021",
        // Too long / glued.
        "id=1101051949123100211",
    ] {
        untouched(m, s);
    }
}

#[test]
fn actions_hash_and_drop() {
    let m = masker(MaskingSettings {
        pii: true,
        actions: [
            ("email".to_string(), Action::Hash),
            ("card".to_string(), Action::Drop),
        ]
        .into_iter()
        .collect(),
        hash_key: Some("k".to_string()),
        ..MaskingSettings::default()
    });
    let a = mask(&m, "from alice@example.com");
    let b = mask(&m, "to alice@example.com again");
    let c = mask(&m, "to bob@example.com");
    let ha = a.strip_prefix("from ").unwrap();
    assert!(
        ha.starts_with("[email:") && ha.len() == "[email:]".len() + 12,
        "{a}"
    );
    assert!(b.contains(ha), "equal values hash equally: {a} / {b}");
    assert!(!c.contains(ha), "different values differ: {a} / {c}");
    assert_eq!(mask(&m, &a), a, "a hash is not masked again");
    assert_eq!(mask(&m, "paid 4111111111111111"), "<dropped>");
    // The key matters: another key, another hash.
    let other = Masker::new(
        &MaskingSettings {
            pii: true,
            actions: [("email".to_string(), Action::Hash)].into_iter().collect(),
            hash_key: Some("k".to_string()),
            ..MaskingSettings::default()
        },
        Some(b"other"),
    )
    .unwrap();
    assert_ne!(mask(&other, "from alice@example.com"), a);
}

#[test]
fn user_rules_with_value_group() {
    let m = masker(MaskingSettings {
        rules: vec![
            RuleSettings {
                name: "order_token".to_string(),
                pattern: r"ot_[A-Za-z0-9]{8}".to_string(),
                action: Action::Replace,
            },
            RuleSettings {
                name: "session".to_string(),
                pattern: r"sid=(?P<value>[0-9a-f]{6,})".to_string(),
                action: Action::Replace,
            },
        ],
        ..MaskingSettings::default()
    });
    check(
        &m,
        "paid ot_AbCd1234 sid=deadbeef01",
        "paid [MASKED:order_token] sid=[MASKED:session]",
    );
    let mut st = MaskStats::default();
    let _ = m.mask_text("ot_AbCd1234 ot_ZZZZ9999", &mut st);
    let idx = m
        .rules()
        .iter()
        .position(|r| r.name == "order_token")
        .unwrap();
    assert_eq!(st.matches[idx], 2);
}

#[test]
fn disabled_masks_nothing() {
    let m = masker(MaskingSettings {
        enabled: false,
        ..MaskingSettings::default()
    });
    untouched(&m, "password=hunter2 4111111111111111 AKIAIOSFODNN7EXAMPLE");
    assert_eq!(m.active_rule_names().count(), 0);
}

#[test]
fn detectors_list_overrides_groups() {
    let m = masker(MaskingSettings {
        detectors: Some(vec!["email".to_string()]),
        ..MaskingSettings::default()
    });
    check(&m, "a@b.io password=x", "[MASKED:email] password=x");
    assert_eq!(m.active_rule_names().collect::<Vec<_>>(), vec!["email"]);
}

#[test]
fn bad_settings_are_refused_naming_the_rule() {
    let err = Masker::new(
        &MaskingSettings {
            detectors: Some(vec!["emails".to_string()]),
            actions: [("card".to_string(), Action::Hash)].into_iter().collect(),
            hash_length: 4,
            rules: vec![
                RuleSettings {
                    name: "broken".to_string(),
                    pattern: "(unclosed".to_string(),
                    action: Action::Replace,
                },
                RuleSettings {
                    name: "Bad Name".to_string(),
                    pattern: "x".to_string(),
                    action: Action::Replace,
                },
                RuleSettings {
                    name: "empty".to_string(),
                    pattern: "a*".to_string(),
                    action: Action::Replace,
                },
                RuleSettings {
                    name: "card".to_string(),
                    pattern: "x".to_string(),
                    action: Action::Replace,
                },
            ],
            ..MaskingSettings::default()
        },
        None,
    )
    .unwrap_err()
    .to_string();
    for want in [
        "\"emails\"",
        "hash_length = 4",
        "rules[0] (\"broken\"): bad pattern",
        "rules[1] (\"Bad Name\"): name must be",
        "rules[2] (\"empty\"): pattern \"a*\" matches the empty string",
        "rules[3] (\"card\"): name is a built-in",
    ] {
        assert!(err.contains(want), "{want} missing in: {err}");
    }
    let err = Masker::new(
        &MaskingSettings {
            actions: [("secret".to_string(), Action::Hash)].into_iter().collect(),
            ..MaskingSettings::default()
        },
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no key is set"), "{err}");
}

#[test]
fn settings_parse_from_toml() {
    let s: MaskingSettings = toml::from_str(
        r#"
        pii = true
        actions = { email = "hash" }
        hash_key_env = "AIOPS_MASKING_KEY"
        sensitive_keys = ["session_id"]
        [[rules]]
        name = "order_token"
        pattern = "ot_[A-Za-z0-9]{24}"
        action = "drop"
        "#,
    )
    .unwrap();
    assert!(s.enabled && s.secrets && s.cards && s.pii);
    assert_eq!(s.rules[0].action, Action::Drop);
    assert!(s.problems().is_empty(), "{:?}", s.problems());
    assert!(toml::from_str::<MaskingSettings>("pi = true").is_err());
    // The inline key is never printed.
    let k: MaskingSettings = toml::from_str("hash_key = \"topsecret\"").unwrap();
    assert!(!format!("{k:?}").contains("topsecret"));
}

#[test]
fn sensitive_keys_mask_whole_values() {
    let m = masker(MaskingSettings {
        sensitive_keys: vec!["session_id".to_string()],
        ..MaskingSettings::default()
    });
    let mut st = MaskStats::default();
    for (k, v, want) in [
        ("password", "hunter2", Some("[MASKED:secret]")),
        ("X-Api-Key", "abc", Some("[MASKED:secret]")),
        ("db.Password", "a b", Some("[MASKED:secret]")),
        ("sessionId", "s1", Some("[MASKED:secret]")),
        ("author", "alice", None),
        ("job", "node", None),
        ("password", "", None),
        ("password", "[MASKED:secret]", None),
    ] {
        let got = m.mask_entry(k, v, &mut st);
        match want {
            Some(w) => assert_eq!(got, Masked::Changed(w.to_string()), "{k}={v}"),
            None => assert_eq!(got, Masked::Unchanged(v), "{k}={v}"),
        }
    }
    // Harmless key, value with a secret inside.
    assert_eq!(
        m.mask_entry("msg", "token=abc", &mut st),
        Masked::Changed("token=[MASKED:secret]".to_string())
    );
}

fn labels(b: &RecordBatch, col: &str, row: usize) -> Vec<(String, Option<String>)> {
    let map = b.column_by_name(col).unwrap().as_map();
    let entries = map.value(row);
    let k = entries.column(0).as_string::<i32>();
    let v = entries.column(1).as_string::<i32>();
    (0..k.len())
        .map(|i| {
            (
                k.value(i).to_string(),
                (!v.is_null(i)).then(|| v.value(i).to_string()),
            )
        })
        .collect()
}

#[test]
fn batches_every_kind() {
    let m = masker(MaskingSettings {
        actions: [("card".to_string(), Action::Drop)].into_iter().collect(),
        ..MaskingSettings::default()
    });
    // Metrics: only the label.
    let mut mb = MetricBatchBuilder::default();
    mb.push(1, "up", [("job", "x"), ("password", "hunter2")], 1.0);
    mb.push(2, "up", [("job", "y")], 1.0);
    let b = mb.finish().unwrap();
    let mut st = MaskStats::default();
    let out = m.mask_batch(Kind::Metrics, &b, &mut st).unwrap().unwrap();
    assert_eq!(
        labels(&out, "labels", 0),
        vec![
            ("job".into(), Some("x".into())),
            ("password".into(), Some("[MASKED:secret]".into()))
        ]
    );
    assert_eq!(
        labels(&out, "labels", 1),
        vec![("job".into(), Some("y".into()))]
    );
    assert_eq!(out.schema(), b.schema());
    assert_eq!(st.matches[0], 1);

    // Logs: body, labels, attributes; a card in a body drops the record.
    let mut lb = LogBatchBuilder::default();
    lb.push(
        1,
        "info",
        "login token=abc123",
        [("svc", "a")],
        [("user", "u1")],
    );
    lb.push(
        2,
        "info",
        "paid 4111111111111111",
        [("svc", "a")],
        std::iter::empty::<(&str, &str)>(),
    );
    lb.push(
        3,
        "info",
        "nothing here",
        [("svc", "a")],
        [("card", "4111 1111 1111 1111"), ("k", "v")],
    );
    let b = lb.finish().unwrap();
    let mut st = MaskStats::default();
    let out = m.mask_batch(Kind::Logs, &b, &mut st).unwrap().unwrap();
    assert_eq!(out.num_rows(), 2);
    let body = out.column_by_name("body").unwrap().as_string::<i32>();
    assert_eq!(body.value(0), "login token=[MASKED:secret]");
    assert_eq!(body.value(1), "nothing here");
    assert_eq!(
        labels(&out, "attributes", 1),
        vec![("k".into(), Some("v".into()))]
    );
    assert_eq!((st.dropped_records, st.dropped_entries), (1, 1));

    // Alerts: labels and annotations; events: message and attributes.
    let mut ab = AlertBatchBuilder::default();
    ab.push(AlertRow {
        fingerprint: "fp",
        resolved: false,
        labels: [("alertname", "A")],
        annotations: [("description", "bad key AKIAIOSFODNN7EXAMPLE")],
        starts_at_ms: 1,
        ends_at_ms: None,
        source: "prometheus",
        generator_url: Some("http://u:pw123456@prom/graph"),
    });
    let b = ab.finish().unwrap();
    let out = m
        .mask_batch(Kind::Alerts, &b, &mut MaskStats::default())
        .unwrap()
        .unwrap();
    assert_eq!(
        labels(&out, "annotations", 0)[0].1.as_deref(),
        Some("bad key [MASKED:aws_access_key]")
    );
    let url = out
        .column_by_name("generator_url")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(url.value(0), "http://u:[MASKED:url_password]@prom/graph");

    let mut eb = EventBatchBuilder::default();
    eb.push(
        1,
        "deploy",
        "deployed with api_key=xyz",
        [("svc", "a")],
        [("secret", "s")],
    );
    let b = eb.finish().unwrap();
    let out = m
        .mask_batch(Kind::Events, &b, &mut MaskStats::default())
        .unwrap()
        .unwrap();
    let msg = out.column_by_name("message").unwrap().as_string::<i32>();
    assert_eq!(msg.value(0), "deployed with api_key=[MASKED:secret]");
    assert_eq!(
        labels(&out, "attributes", 0)[0].1.as_deref(),
        Some("[MASKED:secret]")
    );

    // Nothing to mask: no new batch.
    let mut lb = LogBatchBuilder::default();
    lb.push(
        1,
        "info",
        "GET /index.html 200",
        [("svc", "a")],
        [("user", "u1")],
    );
    let b = lb.finish().unwrap();
    assert!(
        m.mask_batch(Kind::Logs, &b, &mut MaskStats::default())
            .unwrap()
            .is_none()
    );
}

#[test]
fn map_columns_skip_whole_or_find_across_neighbours() {
    let m = all_on();
    // Clean label sets: nothing rebuilt.
    let mut mb = MetricBatchBuilder::default();
    for i in 0..50 {
        mb.push(
            i,
            "node_cpu_seconds_total",
            [
                ("job", "node"),
                ("instance", "10.0.0.1:9100"),
                ("cpu", "0"),
                ("le", "0.005"),
            ],
            1.0,
        );
    }
    let b = mb.finish().unwrap();
    let mut st = MaskStats::default();
    assert!(m.mask_batch(Kind::Metrics, &b, &mut st).unwrap().is_none());
    assert!(!st.any());
    // Values glued in the buffer (`abc` then a card) are still masked one by one.
    let mut mb = MetricBatchBuilder::default();
    mb.push(1, "x", [("a", "abc"), ("b", "4111111111111111")], 1.0);
    mb.push(2, "x", [("a", "xyz-"), ("b", "+8613800138000")], 1.0);
    let b = mb.finish().unwrap();
    let out = m.mask_batch(Kind::Metrics, &b, &mut st).unwrap().unwrap();
    assert_eq!(
        labels(&out, "labels", 0)[1].1.as_deref(),
        Some("[MASKED:card]")
    );
    assert_eq!(
        labels(&out, "labels", 1)[1].1.as_deref(),
        Some("[MASKED:phone]")
    );
    assert_eq!(labels(&out, "labels", 0)[0].1.as_deref(), Some("abc"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The column pre-filter never skips a column in which some entry would change.
    #[test]
    fn column_prefilter_is_conservative(
        entries in proptest::collection::vec(("[a-z_]{1,8}", prop_oneof![
            "[ -~]{0,20}",
            Just("4111111111111111".to_string()),
            Just("password=x".to_string()),
            Just("a@b.cn".to_string()),
            Just("+86 138 0013 8000".to_string()),
        ]), 1..8)
    ) {
        let m = all_on();
        let keys: String = entries.iter().map(|(k, _)| k.as_str()).collect();
        let values: String = entries.iter().map(|(_, v)| v.as_str()).collect();
        let any_change = entries.iter().any(|(k, v)| {
            !matches!(m.mask_entry(k, v, &mut MaskStats::default()), Masked::Unchanged(_))
        });
        if any_change {
            prop_assert!(m.column_may_match(keys.as_bytes(), values.as_bytes()));
        }
    }
}

/// Generated text without any trigger: no digit, `@`, `/`, `-` or `_`, and none of the letters
/// a, e, o, p, w, x (every trigger word has one of them).
fn no_trigger_text() -> impl Strategy<Value = String> {
    "[b-df-nq-vyz ,.;:!?中文日志的内容]{0,200}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn masking_is_idempotent_and_never_panics(s in any::<String>()) {
        let m = all_on();
        let once = mask(m, &s);
        prop_assert_eq!(mask(m, &once), once);
    }

    #[test]
    fn idempotent_on_secret_shaped_text(
        parts in proptest::collection::vec(prop_oneof![
            Just("password=".to_string()),
            Just("\"token\": \"".to_string()),
            Just("Bearer ".to_string()),
            Just("4111111111111111".to_string()),
            Just("+86 138 0013 8000".to_string()),
            Just("a@b.cn".to_string()),
            Just("[MASKED:secret]".to_string()),
            Just("AKIAIOSFODNN7EXAMPLE".to_string()),
            Just("-----BEGIN PRIVATE KEY-----".to_string()),
            "[ -~]{0,12}",
            "[0-9 -]{0,20}",
        ], 0..12)
    ) {
        let s = parts.concat();
        let m = all_on();
        let once = mask(m, &s);
        prop_assert_eq!(mask(m, &once), once);
        let h = all_hash();
        let once = mask(h, &s);
        prop_assert_eq!(mask(h, &once), once);
    }

    #[test]
    fn text_without_triggers_is_borrowed(s in no_trigger_text()) {
        let m = all_on();
        let mut st = MaskStats::default();
        // `Unchanged` borrows the input: nothing was allocated for it.
        match m.mask_text(&s, &mut st) {
            Masked::Unchanged(t) => prop_assert!(std::ptr::eq(t, s.as_str())),
            other => prop_assert!(false, "changed: {:?}", other),
        }
    }
}
