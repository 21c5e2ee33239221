//! The Drain template miner: masking on real Loghub lines, stable ids across checkpoints and batch
//! sizes, generalization, threshold and depth semantics, configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aiops_detect::drain::{
    Change, Drain, DrainConfig, DrainError, MaskConfig, ParsedBatch, Placeholder, TemplateId,
};

fn drain() -> Drain {
    Drain::new(DrainConfig::default()).unwrap()
}

/// The template a single line gets in a fresh parser (its masked form).
fn masked(line: &str) -> String {
    let mut d = drain();
    let p = d.parse(line);
    d.template(p.template_id).unwrap().template.to_owned()
}

fn typed(line: &str) -> String {
    let mut d = Drain::new(DrainConfig {
        placeholder: Placeholder::Typed,
        ..DrainConfig::default()
    })
    .unwrap();
    let p = d.parse(line);
    d.template(p.template_id).unwrap().template.to_owned()
}

// Content of real lines of /work/shared/data/loghub/*/*_2k.log.
const HDFS_RECV: &str =
    "Receiving block blk_5792489080791696128 src: /10.251.30.6:33145 dest: /10.251.30.6:50010";
const HDFS_DEL: &str = "Deleting block blk_1781953582842324563 file /mnt/hadoop/dfs/data/current/subdir5/blk_1781953582842324563";
const HPC_HWID: &str = "Component State Change: Component \\042SCSI-WWID:01000010:6005-08b4-0001-00c6-0006-3000-003d-0000\\042 is in the unavailable state (HWID=1973)";
const SPARK_SIZE: &str =
    "Block broadcast_9_piece0 stored as bytes in memory (estimated size 5.2 KB, free 5.2 KB)";
const ZK_ACCEPT: &str = "Accepted socket connection from /10.10.34.13:37196";
const HADOOP_APP: &str = "Created MRAppMaster for application appattempt_1445144423722_0020_000001";
const BGL_HEX: &str = "CE sym 2, at 0x0b85eee0, mask 0x05";
const SPARK_DIR: &str = "Created local directory at /opt/hdfs/nodemanager/usercache/curi/appcache/application_1485248649253_0147/blockmgr-70293f72-844a-4b39-9ad6-fb0ad7e364e4";
const WIN_UUID: &str = "CSI Transaction @0x47e9e0 initialized for deployment engine {d16d444c-56d8-11d5-882d-0080c847b195} with flags 00000002";

#[test]
fn masks_ips_with_ports_and_block_ids() {
    assert_eq!(masked(HDFS_RECV), "Receiving block <*> src: <*> dest: <*>");
    assert_eq!(
        typed(HDFS_RECV),
        "Receiving block <BLK> src: <IP> dest: <IP>"
    );
    assert_eq!(masked(ZK_ACCEPT), "Accepted socket connection from <*>");
}

#[test]
fn masks_paths_hex_and_numbers_inside_tokens() {
    assert_eq!(masked(HDFS_DEL), "Deleting block <*> file <*>");
    assert_eq!(typed(HDFS_DEL), "Deleting block <BLK> file <PATH>");
    // The quoted (`\\042`) WWID keeps its dashes: each hex group is masked, not the whole id.
    assert_eq!(
        masked(HPC_HWID),
        "Component State Change: Component \\042SCSI-WWID:<*>:<*>-<*>-<*>-<*>-<*>-<*>-<*>-0000\\042 is in the unavailable state (HWID=<*>)"
    );
    assert_eq!(
        masked(SPARK_SIZE),
        "Block <*> stored as bytes in memory (estimated size <*>, free <*>)"
    );
    assert_eq!(
        masked(HADOOP_APP),
        "Created MRAppMaster for application <*>"
    );
    assert_eq!(masked(BGL_HEX), "CE sym <*>, at <*>, mask <*>");
    assert_eq!(typed(BGL_HEX), "CE sym <NUM>, at <HEX>, mask <HEX>");
    assert_eq!(masked(SPARK_DIR), "Created local directory at <*>");
    assert_eq!(
        typed(WIN_UUID),
        "CSI Transaction @<HEX> initialized for deployment engine {<UUID>} with flags <NUM>"
    );
}

#[test]
fn masks_urls_emails_timestamps_ipv6() {
    assert_eq!(
        typed("GET http://example.com:8080/a?b=1 from ops@example.org at 2024-01-02T03:04:05.123Z"),
        "GET <URL> from <EMAIL> at <TIME>"
    );
    assert_eq!(
        typed("peer [fe80::1]:443 up since 12:01:01"),
        "peer <IP> up since <TIME>"
    );
    assert_eq!(typed("peer 2001:db8::8a2e:370:7334 down"), "peer <IP> down");
}

#[test]
fn each_mask_rule_can_be_turned_off() {
    let off = MaskConfig {
        block_id: false,
        mixed_id: false,
        ipv4: false,
        number: false,
        ..MaskConfig::default()
    };
    let mut d = Drain::new(DrainConfig {
        masks: off,
        placeholder: Placeholder::Typed,
        ..DrainConfig::default()
    })
    .unwrap();
    let p = d.parse(HDFS_RECV);
    // The address is still an absolute path (`/10.251.30.6`) once ipv4 is off; block id and port
    // stay as they are.
    assert_eq!(
        d.template(p.template_id).unwrap().template,
        "Receiving block blk_5792489080791696128 src: <PATH>:33145 dest: <PATH>:50010"
    );
    let none = MaskConfig {
        url: false,
        email: false,
        uuid: false,
        ipv4: false,
        ipv6: false,
        path: false,
        timestamp: false,
        block_id: false,
        hex: false,
        number: false,
        mixed_id: false,
        key_value: false,
        json_value: false,
        units: false,
    };
    let mut d = Drain::new(DrainConfig {
        masks: none,
        ..DrainConfig::default()
    })
    .unwrap();
    let p = d.parse(HDFS_DEL);
    assert_eq!(d.template(p.template_id).unwrap().template, HDFS_DEL);
}

#[test]
fn generalization_keeps_shared_punctuation() {
    let mut d = drain();
    let a = d.parse("data_thread() got not answer from any [Thunderbird_A8] datasource");
    d.parse("data_thread() got not answer from any [Thunderbird_B2] datasource");
    assert_eq!(
        d.template(a.template_id).unwrap().template,
        "data_thread() got not answer from any [<*>] datasource"
    );
}

#[test]
fn parameters_are_spans_of_the_line() {
    let mut d = drain();
    let p = d.parse(HDFS_RECV);
    let params: Vec<&str> = p.parameters.iter().map(|r| &HDFS_RECV[r.clone()]).collect();
    assert_eq!(
        params,
        [
            "blk_5792489080791696128",
            "/10.251.30.6:33145",
            "/10.251.30.6:50010"
        ]
    );
}

/// Real lines of several data sets, interleaved, for the stream tests.
fn stream() -> Vec<String> {
    let mut lines = Vec::new();
    let dir = std::path::Path::new("/work/shared/data/loghub");
    for name in ["HDFS", "Zookeeper", "BGL", "Windows"] {
        let path = dir.join(name).join(format!("{name}_2k.log"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            // The whole raw line (headers included) is fine for determinism tests.
            lines.extend(text.lines().take(600).map(str::to_owned));
        }
    }
    if lines.is_empty() {
        // Without the data set, a synthetic stream with generalizations.
        for i in 0..2000 {
            lines.push(format!(
                "user u{} did {} from 10.0.{}.{} in {} ms",
                i % 13,
                ["login", "logout", "read"][i % 3],
                i % 7,
                i % 250,
                i
            ));
        }
    }
    lines
}

fn run_all(d: &mut Drain, lines: &[String]) -> Vec<(TemplateId, Change)> {
    lines
        .iter()
        .map(|l| {
            let p = d.parse(l);
            (p.template_id, p.change)
        })
        .collect()
}

fn templates(d: &Drain) -> Vec<(TemplateId, String, u64)> {
    d.templates()
        .map(|t| (t.id, t.template.to_owned(), t.count))
        .collect()
}

#[test]
fn restore_mid_stream_gives_the_same_ids_and_templates() {
    let lines = stream();
    let mut whole = drain();
    let expected = run_all(&mut whole, &lines);
    let expected_templates = templates(&whole);
    for cut in [0, 1, 37, lines.len() / 3, lines.len() / 2, lines.len() - 1] {
        let mut first = drain();
        let mut got = run_all(&mut first, &lines[..cut]);
        let json = serde_json::to_string(&first).unwrap();
        let mut restored: Drain = serde_json::from_str(&json).unwrap();
        got.extend(run_all(&mut restored, &lines[cut..]));
        assert_eq!(got, expected, "cut at {cut}");
        assert_eq!(templates(&restored), expected_templates, "cut at {cut}");
        // Serializing the restored parser gives the same bytes as the uninterrupted one.
        assert_eq!(
            serde_json::to_string(&restored).unwrap(),
            serde_json::to_string(&whole).unwrap()
        );
    }
}

#[test]
fn ids_do_not_depend_on_batch_size() {
    let lines = stream();
    let mut one = drain();
    let expected = run_all(&mut one, &lines);
    for size in [1, 7, 100, 4096] {
        let mut d = drain();
        let mut out = ParsedBatch::default();
        let mut got = Vec::new();
        for chunk in lines.chunks(size) {
            d.parse_batch(chunk.iter().map(String::as_str), &mut out);
            got.extend(out.lines.iter().map(|l| (l.template_id, l.change)));
        }
        assert_eq!(got, expected, "batch size {size}");
    }
}

#[test]
fn batch_parameters_match_single_parse() {
    let lines = [
        HDFS_RECV,
        "Receiving block blk_1 src: /10.0.0.1:1 dest: /10.0.0.2:2",
    ];
    let mut a = drain();
    let mut b = drain();
    let mut out = ParsedBatch::default();
    a.parse_batch(lines, &mut out);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(out.params_of(i), b.parse(l).parameters.as_slice());
    }
}

#[test]
fn ids_are_deterministic_across_parsers() {
    let lines = stream();
    let a = run_all(&mut drain(), &lines);
    let b = run_all(&mut drain(), &lines);
    assert_eq!(a, b);
}

#[test]
fn generalization_keeps_the_id_and_is_reported() {
    // Classic Drain: with sibling merging off, a differing word generalizes at once.
    let mut d = Drain::new(DrainConfig {
        merge_siblings: 0,
        ..DrainConfig::default()
    })
    .unwrap();
    let a = d.parse_at(1_000, "Starting service alpha on node main with defaults");
    assert_eq!(a.change, Change::New);
    let b = d.parse_at(2_000, "Starting service alpha on node backup with defaults");
    assert_eq!(b.template_id, a.template_id);
    assert_eq!(b.change, Change::Updated);
    let c = d.parse_at(1_500, "Starting service alpha on node spare with defaults");
    assert_eq!(c.change, Change::Unchanged);
    let t = d.template(a.template_id).unwrap();
    assert_eq!(
        t.template,
        "Starting service alpha on node <*> with defaults"
    );
    assert_eq!(
        (t.count, t.first_seen, t.last_seen),
        (3, Some(1_000), Some(2_000))
    );
    assert_eq!(d.template_count(), 1);
}

#[test]
fn similarity_threshold_is_the_fraction_of_equal_tokens() {
    // Two of four tokens equal: similarity 0.5.
    let lines = ["alpha beta gamma delta", "alpha beta omega sigma"];
    for (threshold, same) in [(0.5, true), (0.51, false), (0.0, true), (1.0, false)] {
        let mut d = Drain::new(DrainConfig {
            similarity_threshold: threshold,
            merge_siblings: 0,
            ..DrainConfig::default()
        })
        .unwrap();
        let a = d.parse(lines[0]).template_id;
        let b = d.parse(lines[1]).template_id;
        assert_eq!(a == b, same, "threshold {threshold}");
    }
    // A template wildcard equals any token (the position is a parameter): after
    // generalization, the third token counts as equal whatever it is.
    let mut d = Drain::new(DrainConfig {
        similarity_threshold: 0.75,
        merge_siblings: 0,
        ..DrainConfig::default()
    })
    .unwrap();
    let a = d.parse("alpha beta gamma delta").template_id;
    assert_eq!(d.parse("alpha beta omega delta").template_id, a); // 3/4
    assert_eq!(d.parse("alpha beta sigma zeta").template_id, a); // 3/4 with the wildcard
    assert_eq!(d.template(a).unwrap().template, "alpha beta <*> <*>");
    // A stricter threshold keeps 3/4 apart.
    let mut strict = Drain::new(DrainConfig {
        similarity_threshold: 0.8,
        merge_siblings: 0,
        ..DrainConfig::default()
    })
    .unwrap();
    let a = strict.parse("alpha beta gamma delta").template_id;
    assert_ne!(strict.parse("alpha beta omega delta").template_id, a); // 3/4 < 0.8
}

#[test]
fn variable_looking_mismatches_count_half() {
    // `IRQ9`/`IRQ2` both look variable: 4 equal + 0.5 of 5 = 0.9 >= 0.85.
    let strict = DrainConfig {
        similarity_threshold: 0.85,
        ..DrainConfig::default()
    };
    let drain = || Drain::new(strict.clone()).unwrap();
    let mut d = drain();
    let a = d.parse("IRQ9 used by override here");
    assert_eq!(
        d.parse("IRQ2 used by override here").template_id,
        a.template_id
    );
    // Two different plain words: never the same template (until siblings show a parameter).
    let b = d.parse("Session: 30546173_4261722401 initialized by client SPP.");
    let c = d.parse("Session: 30546173_4261722402 initialized by client WindowsUpdateAgent.");
    assert_ne!(b.template_id, c.template_id);
    // Without the credit, the IRQ lines split too (4 of 5 = 0.8).
    let mut strict = Drain::new(DrainConfig {
        variable_mismatch_credit: 0.0,
        ..strict
    })
    .unwrap();
    let a = strict.parse("IRQ9 used by override here");
    assert_ne!(
        strict.parse("IRQ2 used by override here").template_id,
        a.template_id
    );
}

#[test]
fn wildcard_runs_collapse_into_one_parameter() {
    let mut d = drain();
    let line = "ask 10.0.0.1:50010 to delete blk_1 blk_-2 blk_3";
    let a = d.parse(line);
    let b = d.parse("ask 10.0.0.2:50010 to delete blk_4");
    assert_eq!(a.template_id, b.template_id);
    assert_eq!(
        d.template(a.template_id).unwrap().template,
        "ask <*> to delete <*>"
    );
    let params: Vec<&str> = a.parameters.iter().map(|r| &line[r.clone()]).collect();
    assert_eq!(params, ["10.0.0.1:50010", "blk_1 blk_-2 blk_3"]);
}

#[test]
fn depth_routes_by_the_first_depth_minus_two_tokens() {
    // Different second token: separated at depth 4 (two routing tokens), merged at depth 3.
    let lines = ["connect from alice to server", "connect via bob to server"];
    let loose = DrainConfig {
        similarity_threshold: 0.5,
        merge_siblings: 0,
        ..DrainConfig::default()
    };
    let mut d4 = Drain::new(DrainConfig {
        depth: 4,
        ..loose.clone()
    })
    .unwrap();
    assert_ne!(
        d4.parse(lines[0]).template_id,
        d4.parse(lines[1]).template_id
    );
    let mut d3 = Drain::new(DrainConfig { depth: 3, ..loose }).unwrap();
    assert_eq!(
        d3.parse(lines[0]).template_id,
        d3.parse(lines[1]).template_id
    );
    // Lines of different lengths never share a template.
    let mut d = drain();
    assert_ne!(d.parse("a b c").template_id, d.parse("a b c d").template_id);
}

#[test]
fn max_children_sends_overflow_to_the_wildcard_child() {
    let mut d = Drain::new(DrainConfig {
        max_children: 3,
        depth: 3,
        similarity_threshold: 0.5,
        merge_siblings: 0,
        ..DrainConfig::default()
    })
    .unwrap();
    // First tokens a, b get their own child; c, d, e share the wildcard child (and merge there).
    let ids: Vec<TemplateId> = ["a x y", "b x y", "c x y", "d x y", "e x y"]
        .iter()
        .map(|l| d.parse(l).template_id)
        .collect();
    assert_ne!(ids[0], ids[1]);
    assert_eq!(ids[2], ids[3]);
    assert_eq!(ids[3], ids[4]);
    assert_eq!(d.template(ids[2]).unwrap().template, "<*> x y");
}

#[test]
fn bad_config_is_refused_with_the_field() {
    let err = Drain::new(DrainConfig {
        similarity_threshold: 1.5,
        ..DrainConfig::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            DrainError::InvalidConfig {
                field: "similarity_threshold",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("similarity_threshold"));
    let err = Drain::new(DrainConfig {
        depth: 1,
        ..DrainConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("`depth`"), "{err}");
    let err = DrainConfig::from_json(r#"{"similarity": 0.4}"#).unwrap_err();
    assert!(
        err.to_string().contains("unknown field `similarity`"),
        "{err}"
    );
    let err = DrainConfig::from_json(r#"{"masks": {"ipv5": true}}"#).unwrap_err();
    assert!(err.to_string().contains("ipv5"), "{err}");
    let err = DrainConfig::from_json(r#"{"max_children": 1}"#).unwrap_err();
    assert!(err.to_string().contains("max_children"), "{err}");
    let ok = DrainConfig::from_json(r#"{"depth": 5, "masks": {"number": false}}"#).unwrap();
    assert_eq!(ok.depth, 5);
    assert!(!ok.masks.number && ok.masks.ipv4);
}

#[test]
fn corrupt_state_is_refused() {
    let mut d = drain();
    d.parse("a b c 1");
    let mut v: serde_json::Value = serde_json::to_value(&d).unwrap();
    v["clusters"][0]["tokens"][0] = serde_json::json!(999);
    let err = serde_json::from_value::<Drain>(v).unwrap_err();
    assert!(err.to_string().contains("drain state"), "{err}");
}

#[test]
fn default_config_round_trips_as_json() {
    let c = DrainConfig::default();
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(DrainConfig::from_json(&json).unwrap(), c);
    assert_eq!(DrainConfig::from_json("{}").unwrap(), c);
}

#[test]
fn extra_delimiters_split_tokens() {
    let mut d = Drain::new(DrainConfig {
        extra_delimiters: ",;".into(),
        ..DrainConfig::default()
    })
    .unwrap();
    let line = "users=alice,bob;count 2";
    let p = d.parse(line);
    assert_eq!(
        d.template(p.template_id).unwrap().template,
        "users=<*> bob count <*>"
    );
    let err = Drain::new(DrainConfig {
        extra_delimiters: "*".into(),
        ..DrainConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("extra_delimiters"), "{err}");
}

#[test]
fn words_differing_are_constants_until_siblings_show_a_parameter() {
    let mut d = drain();
    // Two values seen again and again: two events (an enumeration of constants).
    let start = d.parse("service web is now starting").template_id;
    let stop = d.parse("service web is now stopping").template_id;
    for _ in 0..5 {
        assert_eq!(d.parse("service web is now starting").template_id, start);
        assert_eq!(d.parse("service web is now stopping").template_id, stop);
    }
    assert_ne!(d.resolve(start), d.resolve(stop));
    // A position that keeps bringing new values where all else is equal: a parameter.
    let users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
    let ids: Vec<TemplateId> = users
        .iter()
        .map(|u| {
            d.parse(&format!("Invalid user {u} from gateway"))
                .template_id
        })
        .collect();
    let merged: std::collections::BTreeSet<TemplateId> =
        ids.iter().map(|&id| d.resolve(id)).collect();
    assert_eq!(merged.len(), 1, "{merged:?}");
    let root = *merged.iter().next().unwrap();
    assert_eq!(
        d.template(root).unwrap().template,
        "Invalid user <*> from gateway"
    );
    assert_eq!(d.template(root).unwrap().count, users.len() as u64);
    // An absorbed id answers with the template it joined; a new value joins it directly.
    assert_eq!(d.template(ids[0]).unwrap().id, root);
    let p = d.parse("Invalid user mallory from gateway");
    assert_eq!((p.template_id, p.change), (root, Change::Unchanged));
    let line = "Invalid user mallory from gateway";
    let params: Vec<&str> = p.parameters.iter().map(|r| &line[r.clone()]).collect();
    assert_eq!(params, ["mallory"]);
    // Three templates: the two events and the merged one.
    assert_eq!(d.template_count(), 3);
}

#[test]
fn key_value_and_json_values_are_parameters() {
    assert_eq!(
        masked("login ok user=alice (uid=0),"),
        "login ok user=<*> (uid=<*>),"
    );
    assert_eq!(
        masked(r#"request done {"user": "alice", "ms": 12, "ok": true}"#),
        r#"request done {"user": <*>, "ms": <*>, "ok": <*>}"#
    );
    // A nested object after a key is not a value to mask.
    assert_eq!(masked(r#"cfg {"a": {"b": 1}}"#), r#"cfg {"a": {"b": <*>}}"#);
}

#[test]
fn restore_after_merges_continues_identically() {
    let mut lines = Vec::new();
    let names = [
        "ann", "ben", "cid", "dan", "eve", "fay", "gus", "hal", "ivy",
    ];
    for i in 0..200usize {
        let n = names[(i * 7) % names.len()];
        let m = names[(i * 5 + 3) % names.len()];
        lines.push(match i % 4 {
            0 => format!("user {n} logged in from host {m}"),
            1 => format!("job {i} finished for {n} state=ok"),
            2 => format!("cache {m} evicted {n} entries"),
            _ => "worker idle".to_owned(),
        });
    }
    let mut full = drain();
    let all = run_all(&mut full, &lines);
    let mut first = drain();
    let mut got = run_all(&mut first, &lines[..100]);
    let json = serde_json::to_string(&first).unwrap();
    let mut restored: Drain = serde_json::from_str(&json).unwrap();
    got.extend(run_all(&mut restored, &lines[100..]));
    assert_eq!(got, all);
    assert_eq!(templates(&restored), templates(&full));
    // Merges happened, so the test exercises them.
    assert!(
        full.template_count() < 4 + names.len(),
        "{}",
        full.template_count()
    );
    let resolved: Vec<TemplateId> = all.iter().map(|(id, _)| full.resolve(*id)).collect();
    assert_eq!(
        resolved
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        full.template_count()
    );
}

#[test]
fn abbreviated_units_join_their_number() {
    // Spark's humanized sizes: the unit is chosen by magnitude, so it is part of the value.
    let mut d = drain();
    let a = d.parse(SPARK_SIZE);
    let b = d.parse(
        "Block broadcast_0_piece0 stored as bytes in memory (estimated size 93.0 B, free 317.1 KB)",
    );
    assert_eq!(a.template_id, b.template_id);
    assert_eq!(
        d.template(a.template_id).unwrap().template,
        "Block <*> stored as bytes in memory (estimated size <*>, free <*>)"
    );
    // Spelled-out units, and units after something that is not a number, stay.
    assert_eq!(masked("took 12 seconds"), "took <*> seconds");
    assert_eq!(masked("host h1 s up"), "host h1 s up");
}

#[test]
fn a_checkpoint_with_a_merge_cycle_is_refused() {
    // A damaged checkpoint where template 0 is merged into 1 and 1 into 0 would make
    // `resolve` loop for ever: it must be refused when read.
    let mut d = drain();
    d.parse("connection opened from gateway");
    d.parse("disk full on volume root");
    let mut state: serde_json::Value = serde_json::to_value(&d).unwrap();
    fn set_cycle(v: &mut serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Array(cs)) = m.get_mut("clusters")
                    && cs.len() >= 2
                {
                    cs[0]["merged_into"] = 1.into();
                    cs[1]["merged_into"] = 0.into();
                    return true;
                }
                m.values_mut().any(set_cycle)
            }
            serde_json::Value::Array(a) => a.iter_mut().any(set_cycle),
            _ => false,
        }
    }
    assert!(set_cycle(&mut state));
    let err = serde_json::from_value::<Drain>(state)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cycle"), "{err}");
}

#[test]
fn a_very_long_line_is_one_template() {
    // 20,000 tokens: sibling merging skips templates this long (its cost is quadratic in the
    // length: such a line took seconds before the bound); the line still gets its template.
    let mut d = drain();
    let line: String = (0..20_000).map(|i| format!("w{} ", i % 97)).collect();
    let a = d.parse(&line);
    let b = d.parse(&line);
    assert_eq!(a.template_id, b.template_id);
    assert_eq!(d.template_count(), 1);
}
