//! Load test of `cskh serve` with a real HTTP client on loopback: turn latency at
//! concurrency 1 and throughput at concurrency 16, model on, demo knowledge base.
//! Run: `cargo bench --bench load` (bounded: a few hundred requests, ~30 s).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

mod common;
use common::percentile;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let server = common::serve(&[]);
    let base = server.base.clone();
    let queries = common::holdout();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let client = reqwest::Client::new();
        common::ready(&client, &base).await;
        let url = format!("{base}/api/v1/messages");
        let send = |client: reqwest::Client, user: String, id: String, text: String, url: String| async move {
            let t0 = Instant::now();
            let r = client
                .post(&url)
                .json(&serde_json::json!({"channel": "api", "user_id": user, "message_id": id, "text": text}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.bytes().await.unwrap();
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            t0.elapsed().as_secs_f64() * 1000.0
        };
        // Warm-up.
        for (i, q) in queries.iter().take(10).enumerate() {
            send(client.clone(), "warm".into(), format!("w{i}"), q.clone(), url.clone()).await;
        }
        // Concurrency 1: latency.
        let mut lat = Vec::new();
        for (i, q) in queries.iter().cycle().take(300).enumerate() {
            // A fresh customer each turn: every request is a full bot turn (repeated
            // fallbacks would otherwise hand conversations off and the bot goes quiet).
            lat.push(send(client.clone(), format!("c1-{i}"), format!("c1-{i}"), q.clone(), url.clone()).await);
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "concurrency 1: {} turns, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
            lat.len(),
            percentile(&lat, 50.0),
            percentile(&lat, 90.0),
            percentile(&lat, 99.0)
        );
        // Concurrency 16: throughput over a fixed number of turns.
        let total = 800;
        let next = Arc::new(AtomicUsize::new(0));
        let queries = Arc::new(queries);
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..16 {
            let (client, url, next, queries) = (client.clone(), url.clone(), next.clone(), queries.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        break;
                    }
                    let q = queries[i % queries.len()].clone();
                    lat.push(send(client.clone(), format!("c16-{w}-{i}"), format!("c16-{i}"), q, url.clone()).await);
                }
                lat
            }));
        }
        let mut lat16 = Vec::new();
        for t in tasks {
            lat16.extend(t.await.unwrap());
        }
        let secs = t0.elapsed().as_secs_f64();
        lat16.sort_by(f64::total_cmp);
        println!(
            "concurrency 16: {} turns in {:.1} s = {:.0} turns/s, p50 {:.1} ms, p99 {:.1} ms",
            total,
            secs,
            total as f64 / secs,
            percentile(&lat16, 50.0),
            percentile(&lat16, 99.0)
        );
    });
    drop(server);
}
