//! Customer-care KPIs from the stored conversations and tickets. Definitions (also in
//! README): a *conversation* is a contact session — a customer's messages on one
//! channel with no gap over 30 minutes; it is *escalated* when one of its turns
//! handed off to a human, otherwise *contained*; it is *resolved at first contact*
//! when the same customer (on any linked channel) does not come back within 7 days
//! about the same issue (the same answered FAQ entry or the same non-small-talk
//! intent).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde::Serialize;

use crate::store::{InboundRow, Store, StoreError, TicketStatsRow};

const SESSION_GAP_MINUTES: i64 = 30;
const REPEAT_DAYS: i64 = 7;
const SMALL_TALK: [&str; 10] = [
    "greeting",
    "thanks",
    "goodbye",
    "csat",
    "nps",
    "attachment",
    "handoff_active",
    "handoff_waiting",
    "handoff_withdrawn",
    "faq",
];

fn t(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn ratio(n: usize, d: usize) -> Option<f64> {
    (d > 0).then(|| round(n as f64 / d as f64))
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| round(v.iter().sum::<f64>() / v.len() as f64))
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct ChannelStats {
    pub conversations: usize,
    pub escalated: usize,
    pub containment_rate: Option<f64>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct DayStats {
    pub conversations: usize,
    pub escalated: usize,
    pub tickets: usize,
    pub csat_average: Option<f64>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Sla {
    pub due: usize,
    pub met: usize,
    pub rate: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub from: String,
    pub to: String,
    pub conversations: usize,
    pub contained: usize,
    pub escalated: usize,
    pub containment_rate: Option<f64>,
    pub escalation_rate: Option<f64>,
    pub first_contact_resolution: Option<f64>,
    pub tickets: usize,
    pub average_handling_minutes: Option<f64>,
    pub first_response_minutes: Option<f64>,
    pub sla: BTreeMap<String, Sla>,
    pub backlog: Backlog,
    pub csat: Csat,
    pub nps: Nps,
    pub by_channel: BTreeMap<String, ChannelStats>,
    pub by_day: BTreeMap<String, DayStats>,
}

#[derive(Debug, Default, Serialize)]
pub struct Backlog {
    pub open: usize,
    pub overdue: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Csat {
    pub responses: usize,
    pub average: Option<f64>,
    pub distribution: BTreeMap<String, usize>,
}

#[derive(Debug, Default, Serialize)]
pub struct Nps {
    pub responses: usize,
    pub promoters: usize,
    pub passives: usize,
    pub detractors: usize,
    pub score: Option<f64>,
}

struct Session {
    customer: String,
    channel: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    issues: HashSet<String>,
    escalated: bool,
}

fn sessions(rows: &[InboundRow]) -> Vec<Session> {
    let mut by_conv: BTreeMap<&str, Vec<&InboundRow>> = BTreeMap::new();
    for r in rows {
        by_conv.entry(&r.conversation_id).or_default().push(r);
    }
    let mut out = Vec::new();
    for (_, msgs) in by_conv {
        let mut cur: Option<Session> = None;
        for m in msgs {
            let Some(at) = t(&m.created_at) else { continue };
            let issue = match (&m.faq_id, m.intent.as_deref()) {
                (Some(id), _) => Some(format!("faq:{id}")),
                (None, Some(i)) if !SMALL_TALK.contains(&i) => Some(i.to_string()),
                _ => None,
            };
            let split = cur
                .as_ref()
                .is_none_or(|s| at - s.end > Duration::minutes(SESSION_GAP_MINUTES));
            if split {
                out.extend(cur.take());
                cur = Some(Session {
                    customer: m.customer_id.clone(),
                    channel: m.channel.clone(),
                    start: at,
                    end: at,
                    issues: HashSet::new(),
                    escalated: false,
                });
            }
            let s = cur.as_mut().expect("session");
            s.end = at;
            s.issues.extend(issue);
            s.escalated |= m.handoff_reason.is_some();
        }
        out.extend(cur);
    }
    out.sort_by_key(|s| s.start);
    out
}

/// A time bound as stored times are written: RFC 3339 in UTC. They have four-digit
/// years and are compared as text, so a bound past the last such instant (a `to` of
/// 9999-12-31, plus a look-ahead) is held to it: printed as `+10000-…` it would sort
/// before every stored time.
pub fn db_time(d: DateTime<Utc>) -> String {
    let last = DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999999Z")
        .expect("valid")
        .with_timezone(&Utc);
    d.min(last)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// KPIs for sessions starting and tickets created in `[from, to)`; the backlog is
/// as of `now`. Days are local days at `offset`.
pub async fn compute(
    store: &Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> Result<Stats, StoreError> {
    let iso = db_time;
    // Earlier messages decide where the first session really starts; later ones
    // decide repeat contacts.
    let rows = store
        .inbound_between(
            &iso(from - Duration::minutes(SESSION_GAP_MINUTES)),
            &iso(to + Duration::days(REPEAT_DAYS)),
        )
        .await?;
    let all = sessions(&rows);
    let in_range: Vec<&Session> = all
        .iter()
        .filter(|s| s.start >= from && s.start < to)
        .collect();
    let day = |d: DateTime<Utc>| d.with_timezone(&offset).format("%Y-%m-%d").to_string();

    let mut by_channel: BTreeMap<String, ChannelStats> = BTreeMap::new();
    let mut by_day: BTreeMap<String, DayStats> = BTreeMap::new();
    let mut resolved_first = 0;
    for s in &in_range {
        let c = by_channel.entry(s.channel.clone()).or_default();
        c.conversations += 1;
        c.escalated += s.escalated as usize;
        let d = by_day.entry(day(s.start)).or_default();
        d.conversations += 1;
        d.escalated += s.escalated as usize;
        let repeat = all.iter().any(|o| {
            o.customer == s.customer
                && o.start > s.end
                && o.start <= s.end + Duration::days(REPEAT_DAYS)
                && !o.issues.is_disjoint(&s.issues)
        });
        resolved_first += (!repeat) as usize;
    }
    for c in by_channel.values_mut() {
        c.containment_rate = ratio(c.conversations - c.escalated, c.conversations);
    }
    let conversations = in_range.len();
    let escalated = in_range.iter().filter(|s| s.escalated).count();

    let tickets: Vec<TicketStatsRow> = store.tickets_between(&iso(from), &iso(to)).await?;
    let mut handling = Vec::new();
    let mut first_response = Vec::new();
    let mut sla: BTreeMap<String, Sla> = BTreeMap::new();
    let mut csat = Csat::default();
    let mut csat_sum = 0.0;
    let mut day_csat: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for k in &tickets {
        let (Some(created), Some(due)) = (t(&k.created_at), t(&k.sla_due_at)) else {
            continue;
        };
        by_day.entry(day(created)).or_default().tickets += 1;
        let resolved = k.resolved_at.as_deref().and_then(t);
        let withdrawn = k.resolution.as_deref() == Some("withdrawn");
        if let Some(r) =
            resolved.filter(|_| (k.status == "resolved" || k.status == "closed") && !withdrawn)
        {
            let start = k.first_action_at.as_deref().and_then(t).unwrap_or(created);
            handling.push((r - start).num_seconds() as f64 / 60.0);
        }
        if let Some(first) = k.first_reply_at.as_deref().and_then(t) {
            first_response.push((first - created).num_seconds() as f64 / 60.0);
        }
        // The deadline is the one the customer was told ("nhân viên sẽ phản hồi trong
        // vòng …"): a person's first reply. It counts once decided: replied (in time or
        // late), passed, or the ticket ended without a reply (resolved, or handed back
        // to the bot): missed.
        // Only a reply that reached the customer keeps the promise (one the platform
        // refused for good did not). A request the customer withdrew before anyone
        // took it decides nothing: no deadline was met or missed.
        if k.resolution.as_deref() == Some("withdrawn") {
            continue;
        }
        let entry = sla.entry(k.priority.clone()).or_default();
        let first_reply = k.first_delivered_reply_at.as_deref().and_then(t);
        let ended = matches!(k.status.as_str(), "resolved" | "closed");
        match first_reply {
            Some(r) => {
                entry.due += 1;
                entry.met += (r <= due) as usize;
            }
            None if ended || due < now => entry.due += 1,
            None => {}
        }
        if let Some(c) = k.csat {
            csat.responses += 1;
            csat_sum += c as f64;
            *csat.distribution.entry(c.to_string()).or_default() += 1;
            day_csat.entry(day(created)).or_default().push(c as f64);
        }
    }
    for s in sla.values_mut() {
        s.rate = ratio(s.met, s.due);
    }
    csat.average = (csat.responses > 0).then(|| round(csat_sum / csat.responses as f64));
    for (d, v) in day_csat {
        by_day.entry(d).or_default().csat_average = mean(&v);
    }
    let (open, overdue) = store.ticket_backlog().await?;
    let mut nps = Nps::default();
    for (_, score, _) in store.nps_between(&iso(from), &iso(to)).await? {
        nps.responses += 1;
        match score {
            9..=10 => nps.promoters += 1,
            7..=8 => nps.passives += 1,
            _ => nps.detractors += 1,
        }
    }
    nps.score = (nps.responses > 0).then(|| {
        round((nps.promoters as f64 - nps.detractors as f64) * 100.0 / nps.responses as f64)
    });
    Ok(Stats {
        from: iso(from),
        to: iso(to),
        conversations,
        contained: conversations - escalated,
        escalated,
        containment_rate: ratio(conversations - escalated, conversations),
        escalation_rate: ratio(escalated, conversations),
        first_contact_resolution: ratio(resolved_first, conversations),
        tickets: tickets.len(),
        average_handling_minutes: mean(&handling),
        first_response_minutes: mean(&first_response),
        sla,
        backlog: Backlog {
            open: open as usize,
            overdue: overdue as usize,
        },
        csat,
        nps,
        by_channel,
        by_day,
    })
}
