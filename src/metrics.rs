//! Prometheus metrics (`GET /metrics`, text format 0.0.4). Counters and histograms
//! are recorded as things happen; gauges that live in the database (open tickets,
//! outbox backlog) are read at scrape time.

use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntGauge, Opts, Registry,
    TextEncoder,
};

const LATENCY_BUCKETS: [f64; 12] = [
    0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5,
];

pub struct Metrics {
    registry: Registry,
    pub http_duration: HistogramVec,
    pub turn_duration: HistogramVec,
    pub decisions: CounterVec,
    pub intents: CounterVec,
    pub handoffs: CounterVec,
    pub open_tickets: IntGauge,
    pub overdue_tickets: IntGauge,
    pub outbox: GaugeVec,
    pub llm: GaugeVec,
    pub info: GaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let hist = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                labels,
            )
            .expect("valid histogram");
            registry.register(Box::new(h.clone())).expect("unique");
            h
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = CounterVec::new(Opts::new(name, help), labels).expect("valid counter");
            registry.register(Box::new(c.clone())).expect("unique");
            c
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
            registry.register(Box::new(g.clone())).expect("unique");
            g
        };
        let int_gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid gauge");
            registry.register(Box::new(g.clone())).expect("unique");
            g
        };
        Self {
            http_duration: hist(
                "cskh_http_request_duration_seconds",
                "HTTP request latency by route, method and status.",
                &["route", "method", "status"],
            ),
            turn_duration: hist(
                "cskh_turn_duration_seconds",
                "Conversation turn processing time by channel.",
                &["channel"],
            ),
            decisions: counter(
                "cskh_decisions_total",
                "Retrieval decisions (answer, clarify, handoff) by channel.",
                &["channel", "decision"],
            ),
            intents: counter(
                "cskh_intents_total",
                "Turns by recognized intent and channel.",
                &["channel", "intent"],
            ),
            handoffs: counter(
                "cskh_handoffs_total",
                "Hand-offs to a human by reason and priority.",
                &["reason", "priority"],
            ),
            open_tickets: int_gauge("cskh_open_tickets", "Tickets not yet resolved or closed."),
            overdue_tickets: int_gauge(
                "cskh_overdue_tickets",
                "Open tickets past their SLA deadline.",
            ),
            outbox: gauge(
                "cskh_outbox_messages",
                "Outbound platform messages by delivery status.",
                &["status"],
            ),
            llm: gauge(
                "cskh_llm_calls",
                "LLM calls since start by outcome (calls, accepted, fallbacks, timeouts, errors).",
                &["outcome"],
            ),
            info: gauge(
                "cskh_model_info",
                "The embedding model and knowledge index in use (value 1).",
                &["model", "knowledge_entries", "index"],
            ),
            registry,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding");
        String::from_utf8(buf).expect("utf-8")
    }
}
