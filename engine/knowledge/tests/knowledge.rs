//! The knowledge base's behaviour: determinism, concurrency, search in English and Chinese,
//! cited answers, linking, bad input, snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod fixtures;

use std::collections::BTreeMap;

use aiops_knowledge::{
    AlertContext, AskRequest, Command, KnowledgeBase, KnowledgeError, Links, SearchHit,
    SearchQuery, entry_from_markdown, validate,
};
use fixtures::{chinese, english, entry, kb_with, put};

fn search(kb: &KnowledgeBase, text: &str) -> Vec<SearchHit> {
    kb.search(&SearchQuery {
        text: text.to_string(),
        limit: 10,
        ..SearchQuery::default()
    })
    .unwrap()
}

fn ids(hits: &[SearchHit]) -> Vec<&str> {
    hits.iter().map(|h| h.entry_id.as_str()).collect()
}

/// Results with bit-exact scores.
fn fingerprint(kb: &KnowledgeBase, queries: &[&str]) -> Vec<(String, String, u32, u32, String)> {
    let mut out = Vec::new();
    for q in queries {
        for h in search(kb, q) {
            out.push((
                q.to_string(),
                h.entry_id,
                h.chunk,
                h.score.to_bits(),
                h.snippet,
            ));
        }
    }
    out
}

const QUERIES: &[&str] = &[
    "disk full out of space",
    "database connection pool",
    "memory leak restart",
    "磁盘空间不足",
    "连接池耗尽怎么办",
    "证书过期",
];

#[test]
fn a_history_of_updates_and_deletes_scores_like_the_final_entries_alone() {
    let mut all = english();
    all.extend(chinese());
    // History: everything, edits, a deleted entry, a re-created one, noise entries deleted.
    let mut hist = KnowledgeBase::new();
    for (i, e) in all.iter().enumerate() {
        put(&mut hist, e.clone(), "a", i as i64);
    }
    for k in 0..20 {
        let noise = entry(
            &format!("noise/{k}"),
            "Disk noise entry",
            "disk disk space memory pool 磁盘 连接 noise words",
        );
        put(&mut hist, noise, "b", 100 + k);
    }
    let mut edited = all[0].clone();
    edited.body.push_str("\nAn extra line about disk quotas.\n");
    put(&mut hist, edited.clone(), "c", 200);
    for k in 0..20 {
        hist.apply(&Command::Delete {
            id: format!("noise/{k}"),
            base_revision: None,
            by: "b".into(),
            at_ms: 300,
        })
        .unwrap();
    }
    hist.apply(&Command::Delete {
        id: all[1].id.clone(),
        base_revision: Some(1),
        by: "d".into(),
        at_ms: 400,
    })
    .unwrap();
    put(&mut hist, all[1].clone(), "d", 500);
    // Query in between so an index existed before the deletes.
    let _ = search(&hist, "disk");

    let mut fin = all.clone();
    fin[0] = edited;
    let fresh = kb_with(fin);
    let a = fingerprint(&hist, QUERIES);
    let b = fingerprint(&fresh, QUERIES);
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[test]
fn two_puts_on_the_same_revision_keep_one_winner_named_in_the_error() {
    let mut kb = KnowledgeBase::new();
    let e = english().remove(0);
    assert_eq!(
        kb.apply(&Command::Put {
            entry: e.clone(),
            base_revision: Some(0),
            by: "alice".into(),
            at_ms: 10
        })
        .unwrap(),
        Some(1)
    );
    let mut by_bob = e.clone();
    by_bob.title = "Bob's title".into();
    let mut by_carol = e.clone();
    by_carol.title = "Carol's title".into();
    assert_eq!(
        kb.apply(&Command::Put {
            entry: by_bob,
            base_revision: Some(1),
            by: "bob".into(),
            at_ms: 20
        })
        .unwrap(),
        Some(2)
    );
    let err = kb
        .apply(&Command::Put {
            entry: by_carol,
            base_revision: Some(1),
            by: "carol".into(),
            at_ms: 21,
        })
        .unwrap_err();
    let KnowledgeError::Conflict(msg) = err else {
        panic!("not a conflict: {err:?}")
    };
    assert!(
        msg.contains("revision 2") && msg.contains("\"bob\""),
        "{msg}"
    );
    assert_eq!(kb.entry(&e.id).unwrap().title, "Bob's title");
    // Creating what exists with base 0 is a conflict too.
    let err = kb
        .apply(&Command::Put {
            entry: e.clone(),
            base_revision: Some(0),
            by: "dave".into(),
            at_ms: 30,
        })
        .unwrap_err();
    assert!(matches!(err, KnowledgeError::Conflict(_)), "{err:?}");
}

#[test]
fn a_put_of_the_same_content_is_a_no_op_and_feedback_does_not_bump_the_revision() {
    let mut kb = KnowledgeBase::new();
    let e = english().remove(0);
    assert_eq!(put(&mut kb, e.clone(), "import", 1), Some(1));
    let h = kb.state_hash();
    assert_eq!(put(&mut kb, e.clone(), "import", 2), None);
    assert_eq!(kb.state_hash(), h);
    assert_eq!(
        kb.apply(&Command::Feedback {
            id: e.id.clone(),
            helpful: true,
            by: "x".into(),
            at_ms: 3
        })
        .unwrap(),
        Some(1)
    );
    assert_eq!(kb.entry(&e.id).unwrap().helpful, 1);
    kb.apply(&Command::Verify {
        id: e.id.clone(),
        by: "x".into(),
        at_ms: 4,
    })
    .unwrap();
    assert_eq!(kb.entry(&e.id).unwrap().last_verified_ms, Some(4));
    let err = kb
        .apply(&Command::Feedback {
            id: "nope".into(),
            helpful: true,
            by: "x".into(),
            at_ms: 5,
        })
        .unwrap_err();
    assert!(matches!(err, KnowledgeError::NotFound(_)));
}

#[test]
fn feedback_re_ranks_boundedly() {
    // Two identical entries: the tie breaks by id; votes for the second lift it above.
    let body = "## Mitigation\n\nRestart the ingest gateway to clear the stuck queue.\n";
    let mut kb = kb_with(vec![
        entry("a/one", "Stuck queue", body),
        entry("b/two", "Stuck queue", body),
    ]);
    assert_eq!(ids(&search(&kb, "stuck queue")), ["a/one", "b/two"]);
    for i in 0..3 {
        kb.apply(&Command::Feedback {
            id: "b/two".into(),
            helpful: true,
            by: format!("u{i}"),
            at_ms: i,
        })
        .unwrap();
    }
    let hits = search(&kb, "stuck queue");
    assert_eq!(ids(&hits), ["b/two", "a/one"]);
    let ratio = hits[0].score / hits[1].score;
    assert!(ratio > 1.0 && ratio <= 1.2, "{ratio}");
}

#[test]
fn english_and_chinese_queries_find_their_entries() {
    let mut all = english();
    all.extend(chinese());
    let kb = kb_with(all);
    assert_eq!(
        search(&kb, "disk is out of space")[0].entry_id,
        "node/DiskFull"
    );
    assert_eq!(
        search(&kb, "connection pool exhausted")[0].entry_id,
        "db/ConnectionPoolExhausted"
    );
    assert_eq!(
        search(&kb, "memory leaking processes")[0].entry_id,
        "app/MemoryLeak"
    );
    assert_eq!(search(&kb, "磁盘空间不足")[0].entry_id, "zh/cipan");
    assert_eq!(search(&kb, "数据库连接池满了")[0].entry_id, "zh/db-pool");
    assert_eq!(search(&kb, "内存泄漏")[0].entry_id, "zh/mem-leak");
    assert_eq!(
        search(&kb, "证书过期了怎么续签")[0].entry_id,
        "zh/cert-expiry"
    );
    // Mixed: an English word inside a Chinese question.
    assert_eq!(search(&kb, "TLS 证书")[0].entry_id, "zh/cert-expiry");
    assert_eq!(
        search(&kb, "OOM killer 杀掉进程")[0].entry_id,
        "zh/mem-leak"
    );
    // Snippets mark the matched words and escape the rest.
    let hit = &search(&kb, "清理日志")[0];
    assert_eq!(hit.entry_id, "zh/cipan");
    assert!(hit.snippet.contains("<mark>清理</mark>"), "{}", hit.snippet);
}

#[test]
fn filters_and_drafts() {
    let mut es = english();
    es[0].tags = vec!["storage".into()];
    es[0].owner = Some("infra".into());
    es[1].links.services = vec!["checkout".into()];
    es[2].draft = true;
    let kb = kb_with(es);
    let q = |tags: Vec<&str>, service: Option<&str>, owner: Option<&str>, drafts: bool| {
        ids(&kb
            .search(&SearchQuery {
                text: String::new(),
                tags: tags.into_iter().map(String::from).collect(),
                service: service.map(String::from),
                owner: owner.map(String::from),
                limit: 10,
                include_drafts: drafts,
            })
            .unwrap())
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    assert_eq!(q(vec!["storage"], None, None, false), ["node/DiskFull"]);
    assert_eq!(
        q(vec![], Some("checkout"), None, false),
        ["db/ConnectionPoolExhausted"]
    );
    assert_eq!(q(vec![], None, Some("infra"), false), ["node/DiskFull"]);
    assert_eq!(q(vec![], None, None, false).len(), 2);
    assert_eq!(q(vec![], None, None, true).len(), 3);
    assert!(
        search(&kb, "memory leak")
            .iter()
            .all(|h| h.entry_id != "app/MemoryLeak")
    );
}

/// Every sentence is verbatim in the cited entry, and its section is one of the entry's.
fn assert_verbatim(kb: &KnowledgeBase, a: &aiops_knowledge::Answer) {
    for s in &a.sentences {
        let e = kb.entry(&s.entry_id).expect("cited entry exists");
        assert!(
            e.body.contains(&s.text),
            "{:?} is not in {}",
            s.text,
            s.entry_id
        );
        assert!(!s.section.is_empty() || !e.body.contains("\n## "), "{s:?}");
    }
}

#[test]
fn ask_quotes_the_fitting_section_verbatim_with_citations() {
    let mut all = english();
    all.extend(chinese());
    let kb = kb_with(all);
    let ask = |q: &str| {
        kb.ask(&AskRequest {
            question: q.into(),
            context: None,
        })
        .unwrap()
    };

    let a = ask("How do I fix a database connection pool that is exhausted?");
    assert!(a.answered, "{a:?}");
    assert_eq!(a.intent, "mitigation");
    assert_eq!(a.sentences[0].entry_id, "db/ConnectionPoolExhausted");
    assert_eq!(a.sentences[0].section, "Mitigation");
    assert_eq!(
        a.sentences[0].text,
        "Kill the long-running queries, then raise the pool size or fix the leak."
    );
    assert_verbatim(&kb, &a);

    let a = ask("What is the impact of a full disk on a node?");
    assert_eq!(a.intent, "impact");
    assert_eq!(a.sentences[0].section, "Impact");
    assert_verbatim(&kb, &a);

    let a = ask("磁盘空间不足怎么办");
    assert!(a.answered, "{a:?}");
    assert_eq!(a.intent, "mitigation");
    assert_eq!(a.sentences[0].entry_id, "zh/cipan");
    assert_eq!(a.sentences[0].section, "处理");
    assert_eq!(a.sentences[0].text, "清理过期的日志文件和无用的镜像。");
    assert_verbatim(&kb, &a);

    let a = ask("数据库连接池耗尽的原因是什么");
    assert_eq!(a.intent, "diagnosis");
    assert_eq!(a.sentences[0].section, "排查");
    assert_verbatim(&kb, &a);

    // Code is never quoted.
    for q in ["why is the disk full", "du -sh var log"] {
        let a = ask(q);
        assert!(
            a.sentences
                .iter()
                .all(|s| !s.text.contains("du -sh /var/log/*")),
            "{a:?}"
        );
        assert_verbatim(&kb, &a);
    }
}

#[test]
fn ask_abstains_below_the_floor_with_the_nearest_entries() {
    let kb = kb_with(english());
    let a = kb
        .ask(&AskRequest {
            question: "How do I rotate the Kafka broker TLS keystore passwords?".into(),
            context: None,
        })
        .unwrap();
    assert!(!a.answered, "{a:?}");
    assert_eq!(a.message, "no answer");
    assert!(a.sentences.is_empty());
    let a = kb
        .ask(&AskRequest {
            question: "量子纠缠的哲学意义".into(),
            context: None,
        })
        .unwrap();
    assert!(!a.answered, "{a:?}");
}

#[test]
fn ask_with_an_alert_context_uses_its_links() {
    let mut es = english();
    es[0].links.alertnames = vec!["NodeDiskFull".into()];
    let kb = kb_with(es);
    let ctx = AlertContext {
        alertname: "NodeDiskFull".into(),
        ..AlertContext::default()
    };
    let a = kb
        .ask(&AskRequest {
            question: "what should I do?".into(),
            context: Some(ctx),
        })
        .unwrap();
    assert!(a.answered, "{a:?}");
    assert_eq!(a.sentences[0].entry_id, "node/DiskFull");
    assert_verbatim(&kb, &a);
}

#[test]
fn bad_questions_are_refused_naming_the_limit() {
    let kb = kb_with(english());
    let err = kb
        .ask(&AskRequest {
            question: "  ".into(),
            context: None,
        })
        .unwrap_err();
    assert!(
        matches!(&err, KnowledgeError::Invalid(m) if m.contains("empty")),
        "{err:?}"
    );
    let err = kb
        .ask(&AskRequest {
            question: "disk ".repeat(1000),
            context: None,
        })
        .unwrap_err();
    assert!(
        matches!(&err, KnowledgeError::Invalid(m) if m.contains("4096")),
        "{err:?}"
    );
}

#[test]
fn a_10_mb_entry_and_bad_matchers_are_refused_and_change_nothing() {
    let mut kb = kb_with(english());
    let before = kb.state_hash();
    let huge = entry("big/one", "Big", &"x".repeat(10 * 1024 * 1024));
    let err = kb
        .apply(&Command::Put {
            entry: huge,
            base_revision: None,
            by: "u".into(),
            at_ms: 1,
        })
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("10485") && msg.contains("1048576"), "{msg}");
    let mut bad = entry("m/one", "Matchers", "body");
    bad.links = Links {
        matchers: vec!["severity=\"critical\"".into(), "team=~\"(unclosed\"".into()],
        ..Links::default()
    };
    let msg = validate(&bad).unwrap_err().to_string();
    assert!(
        msg.contains("team=~\\\"(unclosed\\\"") && msg.contains("does not parse"),
        "{msg}"
    );
    assert!(
        kb.apply(&Command::Put {
            entry: bad,
            base_revision: None,
            by: "u".into(),
            at_ms: 1
        })
        .is_err()
    );
    for (id, why) in [("", "empty"), ("a/../b", ".."), ("a b", "' '")] {
        let msg = validate(&entry(id, "t", "b")).unwrap_err().to_string();
        assert!(msg.contains(why), "{id:?}: {msg}");
    }
    assert!(validate(&entry("ok", "", "b")).is_err());
    assert_eq!(kb.state_hash(), before);
}

#[test]
fn malformed_markdown_still_imports_and_malformed_front_matter_is_named() {
    // Unclosed fence, stray HTML, heading without text: imported, searchable by title.
    let e = entry_from_markdown(
        "x/Weird.md",
        "# Weird\n\n<details>\n## \n```\nunclosed code\n",
    )
    .unwrap();
    let kb = kb_with(vec![e]);
    assert_eq!(search(&kb, "weird")[0].entry_id, "x/Weird");
    let err = entry_from_markdown("x/y.md", "---\ntitle: [a\n---\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("x/y.md: malformed front matter at line "),
        "{err}"
    );
    assert!(err.contains("flow sequence at line 2 column 8"), "{err}");
}

#[test]
fn links_are_deterministic_in_tier_order_then_search() {
    let mut es = english();
    es[0].links.alertnames = vec!["NodeDiskFull".into()];
    es[1].links.matchers = vec![
        "alertname=~\"Node.*\"".into(),
        "severity=\"critical\"".into(),
    ];
    es[2].links.services = vec!["checkout".into()];
    es[2].links.template_ids = vec!["t42".into()];
    es[2].source = Some("app/MemoryLeak.md".into());
    let kb = kb_with(es);
    let ctx = |name: &str, labels: &[(&str, &str)]| AlertContext {
        alertname: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..AlertContext::default()
    };
    let l = kb
        .link(
            &ctx(
                "NodeDiskFull",
                &[("severity", "critical"), ("service", "checkout")],
            ),
            10,
        )
        .unwrap();
    let got: Vec<(&str, &str)> = l
        .iter()
        .map(|l| (l.entry_id.as_str(), l.how.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("node/DiskFull", "alertname"),
            ("db/ConnectionPoolExhausted", "matchers"),
            ("app/MemoryLeak", "service")
        ]
    );
    let mut c = ctx("Other", &[]);
    c.annotations.insert(
        "runbook_url".into(),
        "https://runbooks.example/app/memoryleak/".into(),
    );
    let l = kb.link(&c, 10).unwrap();
    assert_eq!(
        (l[0].entry_id.as_str(), l[0].how.as_str()),
        ("app/MemoryLeak", "runbook_url")
    );
    let mut c = ctx("Other", &[]);
    c.template_ids = vec!["t42".into()];
    assert_eq!(kb.link(&c, 10).unwrap()[0].how, "template");
    // Nothing deterministic: search over the annotations, placeholders stripped.
    let mut c = ctx("HostDiskPressure", &[]);
    c.annotations.insert(
        "summary".into(),
        "Disk on {{ $labels.instance }} is almost full, out of space".into(),
    );
    let l = kb.link(&c, 10).unwrap();
    assert_eq!(
        (l[0].entry_id.as_str(), l[0].how.as_str()),
        ("node/DiskFull", "search")
    );
    assert!(l[0].score.is_some());
    // Nothing at all for an unrelated alert.
    assert!(
        kb.link(&ctx("KafkaBrokerOffline", &[]), 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn snapshot_restore_keeps_state_and_results() {
    let mut all = english();
    all.extend(chinese());
    let mut kb = kb_with(all);
    kb.apply(&Command::Feedback {
        id: "zh/mem-leak".into(),
        helpful: false,
        by: "u".into(),
        at_ms: 9,
    })
    .unwrap();
    let back = KnowledgeBase::restore(&kb.snapshot().unwrap()).unwrap();
    assert_eq!(back.state_hash(), kb.state_hash());
    assert_eq!(fingerprint(&back, QUERIES), fingerprint(&kb, QUERIES));
    assert!(matches!(
        KnowledgeBase::restore(b"{not json"),
        Err(KnowledgeError::Invalid(_))
    ));
}

#[test]
fn concurrent_readers_share_one_build_and_see_the_same_results() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<KnowledgeBase>();
    let mut all = english();
    all.extend(chinese());
    let kb = kb_with(all);
    // No query yet: the first readers race to build; all must see identical results.
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| fingerprint(&kb, QUERIES)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(!results[0].is_empty());
    assert!(results.iter().all(|r| *r == results[0]));
}
