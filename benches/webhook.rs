//! Webhook load test: signed Messenger deliveries to `cskh serve` (model on, demo
//! knowledge base) with a local stand-in for the Graph Send API. Measures how fast the
//! webhook is acknowledged (Meta's limit is 5 s, Zalo's ~2 s) and how long until the
//! reply reaches the Send API, one at a time and in a burst.
//! Run: `cargo bench --bench webhook`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};

mod common;
use common::percentile;

const SECRET: &str = "bench-secret";

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // The stand-in Send API records when each recipient's first reply arrives.
    let arrivals: Arrivals = Default::default();
    let graph = {
        use axum::routing::post;
        let arrivals = arrivals.clone();
        let app = axum::Router::new().route(
            "/v21.0/{page}/messages",
            post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                let arrivals = arrivals.clone();
                async move {
                    let to = body["recipient"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    arrivals
                        .lock()
                        .unwrap()
                        .entry(to.clone())
                        .or_insert_with(Instant::now);
                    axum::Json(serde_json::json!({"recipient_id": to, "message_id": "m"}))
                }
            }),
        );
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        rt.spawn(async move {
            axum::serve(tokio::net::TcpListener::from_std(l).unwrap(), app)
                .await
                .unwrap();
        });
        format!("http://{addr}/v21.0")
    };
    let server = common::serve(&[
        ("CSKH_MESSENGER_APP_SECRET", SECRET),
        ("CSKH_MESSENGER_VERIFY_TOKEN", "v"),
        ("CSKH_MESSENGER_PAGE_TOKEN", "p"),
        ("CSKH_MESSENGER_API_BASE", &graph),
    ]);
    let base = server.base.clone();
    let queries = common::holdout();

    rt.block_on(async move {
        let client = reqwest::Client::new();
        common::ready(&client, &base).await;
        let url = format!("{base}/webhooks/messenger");
        let deliver = |client: reqwest::Client, user: String, text: String, url: String| async move {
            let body = serde_json::json!({"object": "page", "entry": [{"id": "page", "time": 1, "messaging": [
                {"sender": {"id": user}, "recipient": {"id": "page"}, "timestamp": 1,
                 "message": {"mid": format!("mid-{user}"), "text": text}}]}]})
            .to_string();
            let sig = sign(body.as_bytes());
            let t0 = Instant::now();
            let r = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", sig)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            (t0, t0.elapsed().as_secs_f64() * 1000.0)
        };
        let wait_all = |users: Vec<(String, Instant)>, arrivals: Arrivals| async move {
            let deadline = Instant::now() + Duration::from_secs(600);
            loop {
                let got = arrivals.lock().unwrap().clone();
                if users.iter().all(|(u, _)| got.contains_key(u)) {
                    let mut lat: Vec<f64> = users
                        .iter()
                        .map(|(u, t0)| (got[u] - *t0).as_secs_f64() * 1000.0)
                        .collect();
                    lat.sort_by(f64::total_cmp);
                    return lat;
                }
                assert!(Instant::now() < deadline, "replies missing");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        // Warm-up.
        for (i, q) in queries.iter().take(5).enumerate() {
            let user = format!("warm-{i}");
            let (t0, _) = deliver(client.clone(), user.clone(), q.clone(), url.clone()).await;
            wait_all(vec![(user, t0)], arrivals.clone()).await;
        }
        // One at a time: acknowledgement, then the reply at the Send API.
        let (mut ack, mut users) = (Vec::new(), Vec::new());
        for (i, q) in queries.iter().take(150).enumerate() {
            let user = format!("s-{i}");
            let (t0, ms) = deliver(client.clone(), user.clone(), q.clone(), url.clone()).await;
            ack.push(ms);
            wait_all(vec![(user.clone(), t0)], arrivals.clone()).await;
            users.push((user, t0));
        }
        ack.sort_by(f64::total_cmp);
        let reply = wait_all(users, arrivals.clone()).await;
        println!(
            "sequential, 150 webhooks: ack p50 {:.1} ms, p99 {:.1} ms; reply at Send API p50 {:.1} ms, p99 {:.1} ms",
            percentile(&ack, 50.0), percentile(&ack, 99.0), percentile(&reply, 50.0), percentile(&reply, 99.0)
        );
        // A burst: 300 deliveries from 16 concurrent senders.
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..16 {
            let (client, url, queries) = (client.clone(), url.clone(), queries.clone());
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for i in (w..300).step_by(16) {
                    let user = format!("b-{i}");
                    let (t, ms) = deliver(client.clone(), user.clone(), queries[i % queries.len()].clone(), url.clone()).await;
                    out.push((user, t, ms));
                }
                out
            }));
        }
        let (mut ack, mut users) = (Vec::new(), Vec::new());
        for t in tasks {
            for (u, t, ms) in t.await.unwrap() {
                ack.push(ms);
                users.push((u, t));
            }
        }
        let acked = t0.elapsed().as_secs_f64();
        ack.sort_by(f64::total_cmp);
        let reply = wait_all(users, arrivals.clone()).await;
        println!(
            "burst, 300 webhooks from 16 senders: all acknowledged in {:.1} s (ack p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms); all replies delivered after {:.1} s (reply p50 {:.0} ms, p99 {:.0} ms)",
            acked, percentile(&ack, 50.0), percentile(&ack, 99.0), ack[ack.len() - 1],
            t0.elapsed().as_secs_f64(), percentile(&reply, 50.0), percentile(&reply, 99.0)
        );
    });
    drop(server);
}
