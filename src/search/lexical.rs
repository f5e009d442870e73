//! BM25 over the knowledge base with tantivy. Terms are precomputed by `text`
//! (syllables + bigrams, accented and diacritic-free) and indexed verbatim.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED,
};
use tantivy::tokenizer::{TextAnalyzer, WhitespaceTokenizer};
use tantivy::{doc, Index, IndexReader, TantivyDocument, Term};

use super::SearchError;

const TOKENIZER: &str = "cskh_terms";

/// Per-entry terms, as produced by the retriever.
pub struct EntryTerms {
    pub question: Vec<String>,
    pub question_folded: Vec<String>,
    pub answer: Vec<String>,
    pub answer_folded: Vec<String>,
}

struct Fields {
    idx: Field,
    q: Field,
    q_fold: Field,
    a: Field,
    a_fold: Field,
}

pub struct LexicalIndex {
    reader: IndexReader,
    fields: Fields,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        idx: b.add_u64_field("idx", STORED),
        q: b.add_text_field("q", text.clone()),
        q_fold: b.add_text_field("q_fold", text.clone()),
        a: b.add_text_field("a", text.clone()),
        a_fold: b.add_text_field("a_fold", text),
    };
    (b.build(), fields)
}

fn register(index: &Index) {
    index.tokenizers().register(
        TOKENIZER,
        TextAnalyzer::from(WhitespaceTokenizer::default()),
    );
}

impl LexicalIndex {
    /// Opens the index stored at `dir`, or builds it there atomically (staging
    /// directory + rename) so a crash never leaves a half-built index behind.
    pub fn open_or_build(dir: Option<&Path>, entries: &[EntryTerms]) -> Result<Self, SearchError> {
        let (schema, fields) = schema();
        let Some(dir) = dir else {
            let index = Index::create_in_ram(schema);
            register(&index);
            write(&index, &fields, entries)?;
            return Self::from_index(index, fields);
        };
        if dir.join("meta.json").exists() {
            if let Ok(index) = Index::open_in_dir(dir) {
                register(&index);
                if let Ok(me) = Self::from_index(index, schema_fields(&schema)) {
                    if me.num_docs() == entries.len() as u64 {
                        return Ok(me);
                    }
                }
            }
            fs::remove_dir_all(dir)?;
        }
        let parent = dir.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent)?;
        let staging = tempfile::Builder::new()
            .prefix(".index-")
            .tempdir_in(parent)?;
        {
            let index = Index::create_in_dir(staging.path(), schema.clone())?;
            register(&index);
            write(&index, &fields, entries)?;
        }
        let staged = staging.keep();
        fs::rename(&staged, dir)?;
        let index = Index::open_in_dir(dir)?;
        register(&index);
        Self::from_index(index, fields)
    }

    fn from_index(index: Index, fields: Fields) -> Result<Self, SearchError> {
        let reader = index.reader()?;
        Ok(Self { reader, fields })
    }

    fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// BM25 over accented and folded fields; returns (entry index, score), best first.
    pub fn search(
        &self,
        terms: &[String],
        folded_terms: &[String],
        answer_weight: f32,
        limit: usize,
    ) -> Result<Vec<(usize, f32)>, SearchError> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut add = |field: Field, list: &[String], boost: f32| {
            let mut seen = HashSet::new();
            for t in list {
                if seen.insert(t) {
                    let q = TermQuery::new(
                        Term::from_field_text(field, t),
                        IndexRecordOption::WithFreqs,
                    );
                    clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), boost))));
                }
            }
        };
        add(self.fields.q, terms, 1.0);
        add(self.fields.a, terms, answer_weight);
        add(self.fields.q_fold, folded_terms, 1.0);
        add(self.fields.a_fold, folded_terms, answer_weight);
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit))?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            if let Some(idx) = doc.get_first(self.fields.idx).and_then(|v| v.as_u64()) {
                out.push((idx as usize, score));
            }
        }
        Ok(out)
    }
}

fn schema_fields(schema: &Schema) -> Fields {
    let f = |n: &str| schema.get_field(n).expect("field in schema");
    Fields {
        idx: f("idx"),
        q: f("q"),
        q_fold: f("q_fold"),
        a: f("a"),
        a_fold: f("a_fold"),
    }
}

fn write(index: &Index, fields: &Fields, entries: &[EntryTerms]) -> Result<(), SearchError> {
    let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, 15_000_000)?;
    for (i, e) in entries.iter().enumerate() {
        writer.add_document(doc!(
            fields.idx => i as u64,
            fields.q => e.question.join(" "),
            fields.q_fold => e.question_folded.join(" "),
            fields.a => e.answer.join(" "),
            fields.a_fold => e.answer_folded.join(" "),
        ))?;
    }
    writer.commit()?;
    Ok(())
}
