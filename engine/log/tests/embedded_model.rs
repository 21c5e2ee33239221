//! Model-based property test of the embedded log: random appends (with duplicate ids), crashes
//! (drop without close, optionally tearing the last write), reopens, reads from random positions
//! and time seeks, checked against a plain Vec.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_log::embedded::{EmbeddedConfig, EmbeddedLog};
use aiops_log::{AppendMessage, EventLog};
use bytes::Bytes;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(u8, i64, usize)>),
    Crash { tear: Option<u16> },
    Read(u16),
    Seek(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec((0u8..40, 0i64..1000, 0usize..300), 1..6).prop_map(Op::Append),
        1 => proptest::option::of(1u16..200).prop_map(|tear| Op::Crash { tear }),
        2 => any::<u16>().prop_map(Op::Read),
        1 => (0i64..1100).prop_map(Op::Seek),
    ]
}

fn message(id: u8, t: i64, size: usize) -> AppendMessage {
    AppendMessage {
        subject: "aiops.logs.0".into(),
        msg_id: format!("m{id}"),
        time_min_ms: t,
        time_max_ms: t + 5,
        payload: Bytes::from(vec![id; size]),
    }
}

fn last_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v.pop().unwrap()
}

async fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EmbeddedConfig::new(dir.path().to_path_buf());
    cfg.segment_bytes = 1500;
    let mut log = Some(EmbeddedLog::open(cfg.clone()).await.unwrap());
    // The model: acknowledged records (msg_id, time_max, payload len) in log order.
    let mut model: Vec<(String, i64, usize)> = Vec::new();
    // Size of the last acknowledged write, so a tear cuts only inside it.
    let mut last_write_bytes = 0u64;
    for op in ops {
        let l = log.as_ref().unwrap();
        match op {
            Op::Append(ms) => {
                let msgs: Vec<_> = ms.iter().map(|(id, t, s)| message(*id, *t, *s)).collect();
                let res = l.append(msgs.clone()).await.unwrap();
                last_write_bytes = 0;
                for (m, a) in msgs.iter().zip(&res) {
                    let known = model.iter().position(|r| r.0 == m.msg_id);
                    match known {
                        Some(i) => {
                            assert!(a.duplicate, "{} stored twice", m.msg_id);
                            assert_eq!(a.seq, i as u64 + 1);
                        }
                        None => {
                            assert!(!a.duplicate);
                            assert_eq!(a.seq, model.len() as u64 + 1);
                            model.push((m.msg_id.clone(), m.time_max_ms, m.payload.len()));
                            last_write_bytes +=
                                48 + 12 + m.msg_id.len() as u64 + m.payload.len() as u64;
                        }
                    }
                }
            }
            Op::Crash { tear } => {
                drop(log.take());
                if let Some(t) = tear {
                    // Tear inside the last write only if it is entirely in the last segment:
                    // the model then loses the records that write carried.
                    let seg = last_segment(dir.path());
                    let len = std::fs::metadata(&seg).unwrap().len();
                    let cut = u64::from(t).min(last_write_bytes);
                    if cut > 0 && len >= 8 + last_write_bytes {
                        std::fs::OpenOptions::new()
                            .write(true)
                            .open(&seg)
                            .unwrap()
                            .set_len(len - cut)
                            .unwrap();
                        // Records whose bytes were cut are gone (the last one at least).
                        let reopened = EmbeddedLog::open(cfg.clone()).await.unwrap();
                        let kept = reopened.stats().await.unwrap().next_seq - 1;
                        assert!(kept < model.len() as u64 && kept + 20 >= model.len() as u64);
                        model.truncate(kept as usize);
                        log = Some(reopened);
                        last_write_bytes = 0;
                        continue;
                    }
                }
                log = Some(EmbeddedLog::open(cfg.clone()).await.unwrap());
                last_write_bytes = 0;
            }
            Op::Read(from) => {
                let from = u64::from(from) % (model.len() as u64 + 2) + 1;
                let mut r = l.reader(from).await.unwrap();
                let mut got = Vec::new();
                loop {
                    let b = r.next_batch(5).await.unwrap();
                    if b.is_empty() {
                        break;
                    }
                    got.extend(b);
                }
                let expect: Vec<_> = model.iter().skip(from as usize - 1).collect();
                assert_eq!(got.len(), expect.len());
                for (g, e) in got.iter().zip(expect) {
                    assert_eq!(
                        (&g.msg_id, g.time_max_ms, g.payload.len()),
                        (&e.0, e.1, e.2)
                    );
                }
            }
            Op::Seek(ts) => {
                let s = l.seek_time(ts).await.unwrap();
                for (i, r) in model.iter().enumerate() {
                    if (i as u64 + 1) < s {
                        assert!(r.1 < ts, "seek_time({ts}) = {s} skips a needed record");
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn embedded_log_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops));
    }
}
