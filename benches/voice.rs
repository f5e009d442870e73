//! Voice turn processing time: a signed Twilio `gather` request in → TwiML out, model
//! on, demo knowledge base, one call per question (every request is a full bot turn).
//! Run: `cargo bench --bench voice`.

use std::time::Instant;

mod common;
use common::percentile;

const TOKEN: &str = "bench-token";
const PUBLIC: &str = "https://cskh.example.vn";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let server = common::serve(&[
        ("CSKH_TWILIO_AUTH_TOKEN", TOKEN),
        ("CSKH_PUBLIC_URL", PUBLIC),
    ]);
    let base = server.base.clone();
    let queries = common::holdout();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let client = reqwest::Client::new();
        common::ready(&client, &base).await;
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
    drop(server);
}
