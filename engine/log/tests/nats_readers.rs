//! Readers on a real `nats-server -js`: the durable reader resumes after a reconnect, a reader
//! whose consumer the server dropped carries on where it was, and a reader at the end answers
//! promptly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use aiops_log::nats::{NatsConfig, NatsLog};
use aiops_log::{AppendMessage, EventLog, LogReader};
use aiops_testkit::NatsServer;
use bytes::Bytes;
use futures::TryStreamExt;
use std::time::{Duration, Instant};

fn msg(subject: &str, i: usize) -> AppendMessage {
    AppendMessage {
        subject: subject.into(),
        msg_id: format!("{subject}-{i}"),
        time_min_ms: i as i64,
        time_max_ms: i as i64,
        payload: Bytes::from(format!("p{i}")),
    }
}

async fn drain(r: &mut dyn LogReader, max: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    loop {
        let b = r.next_batch(max).await.unwrap();
        if b.is_empty() {
            return seqs;
        }
        seqs.extend(b.iter().map(|r| r.seq));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_reader_resumes_after_reconnect() {
    let server = NatsServer::start().unwrap();
    let log = NatsLog::connect(NatsConfig::new(&server.url()))
        .await
        .unwrap();
    // Partition 0 and 1 interleaved; the worker owns partition 0 only.
    let msgs: Vec<_> = (0..20)
        .map(|i| msg(&format!("aiops.metrics.{}", i % 2), i))
        .collect();
    log.append(msgs).await.unwrap();
    let mut w = log
        .durable_reader("worker-p0", "aiops.metrics.0")
        .await
        .unwrap();
    let first = w.next_batch(4).await.unwrap();
    assert_eq!(
        first.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 3, 5, 7]
    );
    assert!(first.iter().all(|r| r.subject == "aiops.metrics.0"));
    // Asking for more acknowledges the first batch; this second batch is never acknowledged.
    let second = w.next_batch(2).await.unwrap();
    assert_eq!(
        second.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![9, 11]
    );
    drop(w);
    log.close().await.unwrap();

    // A new process (new connection) resumes after the last acknowledged batch: the unacked
    // one comes again (at least once), nothing before it does.
    let log = NatsLog::connect(NatsConfig::new(&server.url()))
        .await
        .unwrap();
    let mut w = log
        .durable_reader("worker-p0", "aiops.metrics.0")
        .await
        .unwrap();
    // The position is the acknowledged floor + 1: the next message of its filter is at or after it.
    assert_eq!(w.position(), 8);
    assert_eq!(drain(&mut w, 3).await, vec![9, 11, 13, 15, 17, 19]);
    w.ack_returned().await.unwrap();
    drop(w);
    let mut w = log
        .durable_reader("worker-p0", "aiops.metrics.0")
        .await
        .unwrap();
    assert_eq!(w.position(), 20);
    assert!(w.next_batch(10).await.unwrap().is_empty());
    log.append(vec![msg("aiops.metrics.0", 20), msg("aiops.metrics.1", 21)])
        .await
        .unwrap();
    assert_eq!(drain(&mut w, 10).await, vec![21]);
    // The same name with another filter is a configuration error, not a silent switch.
    let e = log
        .durable_reader("worker-p0", "aiops.metrics.1")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, aiops_log::LogError::Config(m) if m.contains("filter")),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_recreates_a_consumer_the_server_dropped() {
    let server = NatsServer::start().unwrap();
    let mut cfg = NatsConfig::new(&server.url());
    cfg.reader_inactive_threshold = Duration::from_millis(300);
    cfg.fetch_batch = 5;
    let log = NatsLog::connect(cfg).await.unwrap();
    log.append((0..10).map(|i| msg("aiops.logs.0", i)).collect())
        .await
        .unwrap();
    let mut r = log.reader(1).await.unwrap();
    assert_eq!(r.next_batch(3).await.unwrap().len(), 3);
    // Wait (bounded) until the server removed the idle consumer. Only the reader's counts: the
    // log's wake-up watcher keeps its own consumer on the stream.
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "consumer never removed");
        let s = js.get_stream("AIOPS").await.unwrap();
        // A consumer being deleted while the list is read can answer something the client does
        // not parse (seen under load): that listing is retried, not a failure.
        let consumers: Vec<_> = match s.consumers().try_collect().await {
            Ok(c) => c,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let readers = consumers
            .iter()
            .filter(|c| c.config.description.as_deref() == Some("aiops log reader"))
            .count();
        if readers == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "consumer never removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rest = drain(r.as_mut(), 4).await;
    assert_eq!(rest, (4..=10).collect::<Vec<u64>>(), "no gap, no repeat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_at_the_end_answers_promptly_and_replays_fast() {
    let server = NatsServer::start().unwrap();
    let log = NatsLog::connect(NatsConfig::new(&server.url()))
        .await
        .unwrap();
    let mut r = log.reader(1).await.unwrap();
    let t = Instant::now();
    assert!(r.next_batch(10).await.unwrap().is_empty());
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    // With fewer messages than a fetch asks for, the reader does not wait out the idle wait.
    let mut slow = NatsConfig::new(&server.url());
    slow.idle_wait = Duration::from_secs(3);
    let slow = NatsLog::connect(slow).await.unwrap();
    slow.append((0..3).map(|i| msg("aiops.alerts.0", i)).collect())
        .await
        .unwrap();
    let mut r = slow.reader(1).await.unwrap();
    let t = Instant::now();
    assert_eq!(r.next_batch(10).await.unwrap().len(), 3);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // ... and one at the end waits for the first new message, not for the whole wait.
    let waiting = tokio::spawn(async move {
        let t = Instant::now();
        let got = r.next_batch(10).await.unwrap();
        (got.len(), t.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    slow.append(vec![msg("aiops.alerts.0", 3)]).await.unwrap();
    let (n, took) = waiting.await.unwrap();
    assert_eq!(n, 1);
    assert!(took < Duration::from_secs(2), "{took:?}");
    // 64 MiB in 64 KiB messages, then one replay.
    let payload = Bytes::from(vec![7u8; 64 << 10]);
    for round in 0..8 {
        let msgs = (0..128)
            .map(|i| AppendMessage {
                payload: payload.clone(),
                ..msg("aiops.metrics.3", round * 128 + i)
            })
            .collect();
        log.append(msgs).await.unwrap();
    }
    let t = Instant::now();
    let mut r = log.reader(5).await.unwrap();
    let seqs = drain(r.as_mut(), 1024).await;
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(seqs, (5..=1028).collect::<Vec<u64>>());
    eprintln!(
        "replayed 64 MiB in {secs:.3}s: {:.0} MB/s",
        64.0 * 1.048_576 / secs
    );
}
