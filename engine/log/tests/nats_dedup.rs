//! JetStream de-duplication on a real `nats-server -js`: an append retried after a lost ack is
//! stored once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_log::nats::{NatsConfig, NatsLog};
use aiops_log::{AppendMessage, Appended, EventLog};
use aiops_testkit::NatsServer;
use bytes::Bytes;

fn msg(id: &str) -> AppendMessage {
    AppendMessage {
        subject: "aiops.metrics.0".into(),
        msg_id: id.into(),
        time_min_ms: 10,
        time_max_ms: 20,
        payload: Bytes::from_static(b"batch"),
    }
}

#[tokio::test]
async fn retried_publish_is_stored_once() {
    let server = NatsServer::start().unwrap();
    let log = NatsLog::connect(NatsConfig::new(&server.url()))
        .await
        .unwrap();
    let first = log.append(vec![msg("a")]).await.unwrap();
    assert_eq!(
        first,
        vec![Appended {
            seq: 1,
            duplicate: false
        }]
    );
    // The ack was lost; the caller retries with the same id, from a second connection too.
    let again = log.append(vec![msg("a")]).await.unwrap();
    assert_eq!(
        again,
        vec![Appended {
            seq: 1,
            duplicate: true
        }]
    );
    let other = NatsLog::connect(NatsConfig::new(&server.url()))
        .await
        .unwrap();
    assert_eq!(
        other.append(vec![msg("a"), msg("b")]).await.unwrap(),
        vec![
            Appended {
                seq: 1,
                duplicate: true
            },
            Appended {
                seq: 2,
                duplicate: false
            }
        ]
    );
    let stats = log.stats().await.unwrap();
    assert_eq!((stats.messages, stats.next_seq), (2, 3));
    let mut r = log.reader(1).await.unwrap();
    let got = r.next_batch(100).await.unwrap();
    let ids: Vec<_> = got.iter().map(|r| (r.seq, r.msg_id.as_str())).collect();
    assert_eq!(ids, vec![(1, "a"), (2, "b")]);
    assert!(r.next_batch(100).await.unwrap().is_empty());
}
