//! Voice turn processing time: a signed Twilio `gather` request in → TwiML out, model
//! on, demo knowledge base, one call per question (every request is a full bot turn).
//! Run: `cargo bench --bench voice`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token";
const PUBLIC: &str = "https://cskh.example.vn";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cskh"))
        .current_dir(root)
        .args(["serve", "--port", "0", "--data"])
        .arg(data.path())
        .env("CSKH_LOG", "warn,cskh=info")
        .env(
            "CSKH_EMBED_CACHE",
            format!("{root}/target/test-embed-cache"),
        )
        .env("CSKH_TWILIO_AUTH_TOKEN", TOKEN)
        .env("CSKH_PUBLIC_URL", PUBLIC)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cskh serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line.split("listening on ").nth(1) {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server address");
    let queries: Vec<String> = std::fs::read_to_string(format!("{root}/eval/holdout.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(300);
        while client.get(format!("{base}/ready")).send().await.map(|r| r.status().as_u16()).ok() != Some(200) {
            assert!(Instant::now() < deadline, "server not ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let post = |path: &'static str, params: Vec<(String, String)>| {
            let client = client.clone();
            let base = base.clone();
            async move {
                let sig = cskh::voice::twilio::signature(TOKEN, &format!("{PUBLIC}{path}"), &params);
                let t0 = Instant::now();
                let r = client
                    .post(format!("{base}{path}"))
                    .header("x-twilio-signature", sig)
                    .form(&params)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
                let xml = r.text().await.unwrap();
                assert!(xml.contains("<Response>"));
                t0.elapsed().as_secs_f64() * 1000.0
            }
        };
        let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        for (i, q) in queries.iter().take(10).enumerate() {
            let call = format!("warm{i}");
            post("/voice/twilio/gather", p(&[("CallSid", &call), ("From", "+84900000000"), ("SpeechResult", q), ("Confidence", "0.9")])).await;
        }
        let (mut start, mut turn) = (Vec::new(), Vec::new());
        for (i, q) in queries.iter().cycle().take(300).enumerate() {
            let call = format!("CA{i}");
            let from = format!("+8490{:07}", i);
            start.push(post("/voice/twilio/incoming", p(&[("CallSid", &call), ("From", &from)])).await);
            turn.push(post("/voice/twilio/gather", p(&[("CallSid", &call), ("From", &from), ("SpeechResult", q), ("Confidence", "0.9")])).await);
        }
        start.sort_by(f64::total_cmp);
        turn.sort_by(f64::total_cmp);
        println!(
            "twilio incoming (greeting): p50 {:.1} ms, p99 {:.1} ms; gather (full voice turn, 300 calls): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
            percentile(&start, 50.0),
            percentile(&start, 99.0),
            percentile(&turn, 50.0),
            percentile(&turn, 90.0),
            percentile(&turn, 99.0)
        );
    });
    let _ = child.kill();
    let _ = child.wait();
}
