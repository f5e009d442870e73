//! Knowledge gaps: what customers asked that the bot could not answer, grouped by
//! meaning with the same embeddings retrieval uses, and — where an agent answered
//! such a question in a resolved ticket — that answer proposed as a new knowledge
//! entry. Accepting writes it to `<knowledge>/learned.jsonl` and swaps in a rebuilt
//! answering core, without a restart.

use std::collections::HashMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::answer::Core;
use crate::embed::cosine;
use crate::reload::Reloader;
use crate::service::ConversationService;
use crate::store::{GapMessage, StoreError};

/// Two questions are "the same question" when both their meaning and their topic
/// words agree. Meaning: cosine of the query vectors at least `SAME_MEANING`; on
/// `eval/dev.jsonl` pairs (diacritics restored) 88% of same-question pairs reach 0.85,
/// but so do ~45% of different-question pairs from the same shop, because a short
/// question's vector is dominated by its frame ("shop có … không"). Topic: an
/// IDF-weighted overlap of their words of at least `SAME_TOPIC` (half the
/// information-bearing words shared), set a priori, not tuned.
pub const SAME_MEANING: f32 = 0.85;
pub const SAME_TOPIC: f32 = 0.5;
const EXAMPLES: usize = 5;
const EXAMPLE_CHARS: usize = 300;
pub const LEARNED_FILE: &str = "learned.jsonl";

#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    pub question: String,
    pub variants: Vec<String>,
    pub answer: String,
    /// The ticket whose agent reply is proposed.
    pub ticket: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    pub id: String,
    pub count: usize,
    pub examples: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub proposal: Option<Proposal>,
    /// `open`, `accepted` or `rejected`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
}

#[derive(Debug, Error)]
pub enum GapError {
    #[error("no such knowledge gap")]
    NotFound,
    #[error("no proposed answer: give question and answer")]
    NoAnswer,
    #[error("the knowledge base did not accept the entry: {0}")]
    Knowledge(String),
    #[error(
        "this knowledge gap was already accepted as entry `{0}`; to change or remove \
         the entry, edit learned.jsonl"
    )]
    AlreadyAccepted(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Cluster {
    centroid: Vec<f32>,
    members: Vec<GapMessage>,
}

fn cluster_id(first_message: &str) -> String {
    hex::encode(&Sha256::digest(first_message.as_bytes())[..6])
}

/// Groups questions by meaning (greedy, against each group's mean vector); without
/// a model, identical normalized texts group.
fn cluster(core: &Core, msgs: Vec<GapMessage>) -> Vec<Cluster> {
    // "shop ơi" and "vậy shop" are no topic two questions share.
    let rules = crate::bot::intents::IntentRules::shared();
    let skip = |w: &str| rules.is_filler_word(w);
    let mut out: Vec<Cluster> = Vec::new();
    for m in msgs {
        let v = core.retriever.embed_query(&m.text).unwrap_or_default();
        let best = out
            .iter_mut()
            .filter_map(|c| {
                let topic = core.retriever.overlap(&m.text, &c.members[0].text, &skip);
                let meaning = if v.is_empty() {
                    1.0
                } else {
                    cosine(&v, &c.centroid)
                };
                (topic >= SAME_TOPIC && meaning >= SAME_MEANING).then_some((topic + meaning, c))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match best {
            Some((_, c)) => {
                let n = c.members.len() as f32;
                for (a, b) in c.centroid.iter_mut().zip(&v) {
                    *a = (*a * n + b) / (n + 1.0);
                }
                c.members.push(m);
            }
            None => out.push(Cluster {
                centroid: v,
                members: vec![m],
            }),
        }
    }
    out
}

/// The gaps of `[from, to)`, most frequent first.
pub async fn report(svc: &ConversationService, from: &str, to: &str) -> Result<Vec<Gap>, GapError> {
    let store = svc.store();
    let msgs = store.unanswered_questions(from, to).await?;
    let core = svc.bot().core();
    let clusters = tokio::task::spawn_blocking(move || cluster(&core, msgs))
        .await
        .expect("clustering task");
    let decisions: HashMap<String, (String, Option<String>)> = store
        .gap_decisions()
        .await?
        .into_iter()
        .map(|(id, d, e)| (id, (d, e)))
        .collect();
    let mut gaps = Vec::new();
    for c in clusters {
        let id = cluster_id(&c.members[0].id);
        let mut examples: Vec<String> = Vec::new();
        for m in &c.members {
            // A pasted wall of text is no example: cut.
            let example = crate::text::clip(&m.text, EXAMPLE_CHARS);
            if !examples.contains(&example) && examples.len() < EXAMPLES {
                examples.push(example);
            }
        }
        let mut proposal = None;
        for m in &c.members {
            if let Some((answer, ticket)) = store
                .agent_answer(&m.conversation_id, &m.created_at)
                .await?
            {
                proposal = Some(Proposal {
                    question: m.text.clone(),
                    variants: examples.iter().filter(|e| **e != m.text).cloned().collect(),
                    answer,
                    ticket,
                });
                break;
            }
        }
        let (status, entry_id) = match decisions.get(&id) {
            Some((d, e)) => (d.clone(), e.clone()),
            None => ("open".to_string(), None),
        };
        gaps.push(Gap {
            id,
            count: c.members.len(),
            examples,
            first_seen: c.members[0].created_at.clone(),
            last_seen: c
                .members
                .last()
                .map(|m| m.created_at.clone())
                .unwrap_or_default(),
            proposal,
            status,
            entry_id,
        });
    }
    gaps.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_seen.cmp(&b.first_seen)));
    Ok(gaps)
}

/// Rejects a gap: its proposal is hidden. An accepted gap stays accepted (its entry
/// answers customers): refused. A rejected gap may still be accepted later.
pub async fn reject(svc: &ConversationService, gap: &Gap) -> Result<(), GapError> {
    match svc.store().reject_gap(&gap.id).await? {
        None => Ok(()),
        Some(entry) => Err(GapError::AlreadyAccepted(entry.unwrap_or_default())),
    }
}

/// Accepts a gap's proposal (optionally edited): appends the entry to
/// `learned.jsonl`, rebuilds the core and swaps it in. Nothing changes on failure,
/// nor for a gap accepted before (`AlreadyAccepted`).
pub async fn accept(
    svc: &ConversationService,
    reloader: &Reloader,
    gap: &Gap,
    question: Option<String>,
    answer: Option<String>,
) -> Result<String, GapError> {
    let p = gap.proposal.as_ref();
    let question = question
        .or_else(|| p.map(|p| p.question.clone()))
        .filter(|q| !q.trim().is_empty())
        .ok_or(GapError::NoAnswer)?;
    let answer = answer
        .or_else(|| p.map(|p| p.answer.clone()))
        .filter(|a| !a.trim().is_empty())
        .ok_or(GapError::NoAnswer)?;
    let variants: Vec<String> = gap
        .examples
        .iter()
        .filter(|e| **e != question)
        .cloned()
        .collect();
    let entry_id = format!("hoc-{}", &gap.id[..8]);
    let line = serde_json::json!({
        "id": entry_id, "question": question, "variants": variants, "answer": answer,
        "category": "Học từ hội thoại", "tags": ["learned"],
    });
    let path = reloader.options().knowledge.join(LEARNED_FILE);
    // One guard over the write and the rebuild: no other rebuild reads the file
    // half-way, and a failed one is undone before anyone else looks. The decision is
    // read under it too, so two accepts of one gap write one entry.
    let mut attempt = reloader.lock().await;
    if let Some(("accepted", entry)) = svc
        .store()
        .gap_decision(&gap.id)
        .await?
        .as_ref()
        .map(|(d, e)| (d.as_str(), e.clone()))
    {
        return Err(GapError::AlreadyAccepted(entry.unwrap_or_default()));
    }
    let before = std::fs::read_to_string(&path).ok();
    let mut content = before.clone().unwrap_or_default();
    if !content.is_empty() && !content.ends_with('\n') {
        content.push('\n');
    }
    content.push_str(&line.to_string());
    content.push('\n');
    std::fs::write(&path, &content).map_err(|e| GapError::Knowledge(e.to_string()))?;
    match reloader.rebuild(&mut attempt, svc.bot()).await {
        Ok(_) => {
            svc.store()
                .decide_gap(&gap.id, "accepted", Some(&entry_id))
                .await?;
            tracing::info!(entry = %entry_id, "knowledge entry learned from a hand-off; index rebuilt");
            Ok(entry_id)
        }
        Err(e) => {
            let _ = match before {
                Some(b) => std::fs::write(&path, b),
                None => std::fs::remove_file(&path),
            };
            Err(GapError::Knowledge(e.to_string()))
        }
    }
}
