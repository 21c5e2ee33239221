//! Property: for any command history, `snapshot` → `restore` gives the same state hash and the
//! same search results (bit-equal scores).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_knowledge::{Command, EntryInput, KnowledgeBase, Links, SearchQuery};
use proptest::prelude::*;

const WORDS: &[&str] = &[
    "disk",
    "full",
    "memory",
    "leak",
    "restart",
    "pod",
    "etcd",
    "leader",
    "磁盘",
    "空间",
    "不足",
    "连接池",
    "耗尽",
    "内存",
    "泄漏",
    "重启",
    "## Mitigation\n",
    "## 处理\n",
    "```\ncode\n```\n",
    ".",
    "。",
];

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 1..30).prop_map(|w| w.join(" "))
}

fn command() -> impl Strategy<Value = Command> {
    let id = prop::sample::select(vec!["a", "b/c", "d.e", "f-g"]);
    prop_oneof![
        4 => (id.clone(), text(), text(), any::<bool>(), prop::option::of(0u64..3)).prop_map(
            |(id, title, body, draft, base)| Command::Put {
                entry: EntryInput {
                    id: id.to_string(),
                    title: format!("t {title}"),
                    body,
                    tags: vec!["x".into()],
                    owner: None,
                    links: Links::default(),
                    draft,
                    source: None,
                },
                base_revision: base,
                by: "p".into(),
                at_ms: 1,
            }
        ),
        1 => (id.clone(), prop::option::of(0u64..3)).prop_map(|(id, base)| Command::Delete {
            id: id.to_string(),
            base_revision: base,
            by: "p".into(),
            at_ms: 2,
        }),
        1 => (id.clone(), any::<bool>()).prop_map(|(id, helpful)| Command::Feedback {
            id: id.to_string(),
            helpful,
            by: "p".into(),
            at_ms: 3,
        }),
        1 => id.prop_map(|id| Command::Verify { id: id.to_string(), by: "p".into(), at_ms: 4 }),
    ]
}

fn results(kb: &KnowledgeBase) -> Vec<(String, u32, u32)> {
    let mut out = Vec::new();
    for q in [
        "disk full",
        "memory leak restart",
        "磁盘空间不足",
        "连接池耗尽",
        "code",
    ] {
        for drafts in [false, true] {
            let hits = kb
                .search(&SearchQuery {
                    text: q.into(),
                    limit: 10,
                    include_drafts: drafts,
                    ..SearchQuery::default()
                })
                .unwrap();
            out.extend(
                hits.into_iter()
                    .map(|h| (h.entry_id, h.chunk, h.score.to_bits())),
            );
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn snapshot_restore_keeps_hash_and_results(cmds in prop::collection::vec(command(), 1..25)) {
        let mut kb = KnowledgeBase::new();
        for c in &cmds {
            // Refused commands (conflicts, missing ids) change nothing; that is part of the model.
            let _ = kb.apply(c);
        }
        let back = KnowledgeBase::restore(&kb.snapshot().unwrap()).unwrap();
        prop_assert_eq!(back.state_hash(), kb.state_hash());
        prop_assert_eq!(back.len(), kb.len());
        prop_assert_eq!(results(&back), results(&kb));
    }
}
