//! The knowledge base: hand-written Markdown files, spreadsheets exported as CSV and
//! machine-imported JSONL, loaded and validated into [`Entry`] values. Errors always
//! name the file and line.

mod markdown;
mod sheet;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::text::{Normalizer, TextError};

#[derive(Debug, Error)]
pub enum KnowledgeError {
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    /// The reason is in the message, not a `source`: a report that prints the chain
    /// (`{:#}`) would say it twice.
    #[error("cannot read {path}: {reason}")]
    Io {
        path: String,
        reason: std::io::Error,
    },
    #[error("{0}: no knowledge files (*.md, *.csv, *.jsonl) found")]
    Empty(String),
}

impl KnowledgeError {
    fn invalid(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Self::Invalid {
            file: file.display().to_string(),
            line,
            message: message.into(),
        }
    }
}

/// Whether `id` is a well-formed entry id (the one rule for every format): lowercase
/// ASCII letters, digits and hyphens, starting with a letter or digit. The error says
/// what to write instead.
pub(crate) fn check_id(id: &str) -> Result<(), String> {
    let well_formed = id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && id.starts_with(|c: char| c.is_ascii_alphanumeric());
    if well_formed {
        return Ok(());
    }
    let hint = markdown::slug(id);
    let hint = if hint.is_empty() || hint == id {
        String::new()
    } else {
        format!(", e.g. `{hint}`")
    };
    Err(format!(
        "bad id `{id}`: an id is lowercase letters (no diacritics), digits and hyphens, \
         starting with a letter or digit{hint}"
    ))
}

/// Counts of a knowledge base: entries, passage-only entries, files holding entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Contents {
    pub entries: usize,
    pub passages: usize,
    pub files: usize,
}

/// Where an entry was written, for error messages and the operator's benefit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

/// One knowledge entry: a question with its answer, or (without question) a passage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub id: String,
    /// The canonical question; `None` for a passage.
    pub question: Option<String>,
    /// A passage's short topic title (Markdown passages only).
    pub title: Option<String>,
    pub variants: Vec<String>,
    pub answer: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    #[serde(skip)]
    pub origin: Origin,
}

impl Entry {
    pub fn is_passage(&self) -> bool {
        self.question.is_none()
    }

    /// How the entry is named to people: its question, a passage's title, or its id.
    pub fn label(&self) -> &str {
        self.question
            .as_deref()
            .or(self.title.as_deref())
            .unwrap_or(&self.id)
    }

    /// All ways the entry is asked: question and variants.
    pub fn questions(&self) -> impl Iterator<Item = &str> {
        self.question
            .iter()
            .chain(self.variants.iter())
            .map(String::as_str)
    }

    /// The text a passage is found by: its title (if any) and body.
    pub fn passage_text(&self) -> String {
        match (&self.title, &self.question) {
            (Some(t), _) => format!("{t}. {}", self.answer),
            (None, Some(q)) => format!("{q} {}", self.answer),
            (None, None) => self.answer.clone(),
        }
    }

    /// The passage text in pieces of at most `max_words` words each, for a model that
    /// reads a bounded number of tokens: the whole text when it fits, else its
    /// sentences packed into windows that overlap by one sentence, each led by the
    /// title or question. A sentence longer than a window is cut into pieces.
    pub fn passage_windows(&self, max_words: usize) -> Vec<String> {
        let whole = self.passage_text();
        if whole.split_whitespace().count() <= max_words {
            return vec![whole];
        }
        let head = self.title.as_deref().or(self.question.as_deref());
        let head_words = head.map_or(0, |h| h.split_whitespace().count());
        let room = max_words
            .saturating_sub(head_words)
            .max(max_words / 2)
            .max(1);
        let mut pieces: Vec<Vec<&str>> = Vec::new();
        for sentence in sentences(&self.answer) {
            let words: Vec<&str> = sentence.split_whitespace().collect();
            pieces.extend(words.chunks(room).map(<[&str]>::to_vec));
        }
        let mut windows = Vec::new();
        let mut start = 0;
        while start < pieces.len() {
            let mut end = start;
            let mut len = 0;
            while end < pieces.len() && (end == start || len + pieces[end].len() <= room) {
                len += pieces[end].len();
                end += 1;
            }
            let body = pieces[start..end].concat().join(" ");
            windows.push(match head {
                Some(h) => format!("{h}. {body}"),
                None => body,
            });
            if end == pieces.len() {
                break;
            }
            // Overlap by the last sentence when the window holds more than it and it
            // fits beside the next one.
            let overlap = end - start > 1 && pieces[end - 1].len() + pieces[end].len() <= room;
            start = if overlap { end - 1 } else { end };
        }
        windows
    }
}

/// A text's sentences: split after `.`, `!`, `?` or `…` followed by white space, and at
/// line breaks.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut from = 0;
        let mut chars = line.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if matches!(c, '.' | '!' | '?' | '…')
                && chars.peek().is_some_and(|(_, n)| n.is_whitespace())
            {
                let end = i + c.len_utf8();
                out.push(&line[from..end]);
                from = end;
            }
        }
        out.push(&line[from..]);
    }
    out.retain(|s| !s.trim().is_empty());
    out
}

/// The shop's own abbreviation table, read from the root of a knowledge directory.
pub const ABBREVIATIONS_FILE: &str = "abbreviations.tsv";

/// Where a knowledge directory keeps its own abbreviation table (it may not exist).
pub fn abbreviations_file(dir: &Path) -> PathBuf {
    dir.join(ABBREVIATIONS_FILE)
}

#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    pub entries: Vec<Entry>,
    by_id: HashMap<String, usize>,
    /// The shop's abbreviation table as written, when the directory has one.
    abbreviations: Option<String>,
    /// How entries and messages are read: the built-in abbreviations with the
    /// shop's laid over them.
    normalizer: Normalizer,
}

impl KnowledgeBase {
    pub fn new(entries: Vec<Entry>) -> Result<Self, KnowledgeError> {
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if let Some(&first) = by_id.get(&e.id) {
                let f = &entries[first].origin;
                return Err(KnowledgeError::invalid(
                    &e.origin.file,
                    e.origin.line,
                    format!(
                        "duplicate id `{}` (first defined at {}:{})",
                        e.id,
                        f.file.display(),
                        f.line
                    ),
                ));
            }
            by_id.insert(e.id.clone(), i);
        }
        Ok(Self {
            entries,
            by_id,
            abbreviations: None,
            normalizer: Normalizer::default(),
        })
    }

    /// Reads the shop's abbreviation table of a knowledge directory, if it has one:
    /// its text and the normalizer it makes. Errors name the file and line.
    fn shop_table(dir: &Path) -> Result<Option<(String, Normalizer)>, KnowledgeError> {
        let file = abbreviations_file(dir);
        if !file.is_file() {
            return Ok(None);
        }
        let text = crate::text::read_text(&file).map_err(|source| KnowledgeError::Io {
            path: file.display().to_string(),
            reason: source,
        })?;
        let normalizer = Normalizer::with_shop_table(&file.display().to_string(), &text).map_err(
            |e| match e {
                TextError::Abbreviations {
                    file,
                    line,
                    message,
                } => KnowledgeError::Invalid {
                    file,
                    line,
                    message,
                },
            },
        )?;
        Ok(Some((text, normalizer)))
    }

    /// Loads a directory (recursively; `README.md` files are documentation and skipped;
    /// an `abbreviations.tsv` at its root is the shop's abbreviation table) or a single
    /// `.md` / `.csv` / `.jsonl` file.
    pub fn load(path: &Path) -> Result<Self, KnowledgeError> {
        let io = |source| KnowledgeError::Io {
            path: path.display().to_string(),
            reason: source,
        };
        let meta = fs::metadata(path).map_err(io)?;
        let (files, table) = if meta.is_dir() {
            (knowledge_files(path)?, Self::shop_table(path)?)
        } else {
            (vec![path.to_path_buf()], None)
        };
        let mut entries = Vec::new();
        for file in &files {
            let text = crate::text::read_text(file).map_err(|source| KnowledgeError::Io {
                path: file.display().to_string(),
                reason: source,
            })?;
            let ext = file
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            match ext.as_deref() {
                Some("md") => entries.extend(markdown::parse(file, &text)?),
                Some("jsonl") => entries.extend(parse_jsonl(file, &text)?),
                Some("csv") => entries.extend(sheet::parse(file, &text)?),
                _ => {
                    return Err(KnowledgeError::invalid(
                        file,
                        1,
                        "unsupported file type (use .md, .csv or .jsonl)",
                    ))
                }
            }
        }
        if entries.is_empty() {
            return Err(KnowledgeError::Empty(path.display().to_string()));
        }
        let mut kb = Self::new(entries)?;
        if let Some((text, normalizer)) = table {
            kb.abbreviations = Some(text);
            kb.normalizer = normalizer;
        }
        Ok(kb)
    }

    /// How the retriever reads this knowledge base's entries and the questions asked
    /// of it: the built-in abbreviations with the shop's own laid over them.
    pub fn normalizer(&self) -> &Normalizer {
        &self.normalizer
    }

    /// Whether the directory has its own abbreviation table ([`ABBREVIATIONS_FILE`]).
    pub fn has_shop_table(&self) -> bool {
        self.abbreviations.is_some()
    }

    /// What the knowledge base holds, as operators are told.
    pub fn contents(&self) -> Contents {
        let files: std::collections::HashSet<&Path> = self
            .entries
            .iter()
            .map(|e| e.origin.file.as_path())
            .collect();
        Contents {
            entries: self.entries.len(),
            passages: self.entries.iter().filter(|e| e.is_passage()).count(),
            files: files.len(),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.by_id.get(id).map(|&i| &self.entries[i])
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A hash of everything retrieval depends on; names the on-disk index.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        for e in &self.entries {
            let json = serde_json::to_vec(e).expect("entries serialize");
            h.update((json.len() as u64).to_le_bytes());
            h.update(&json);
        }
        // Terms depend on the shop's abbreviations too. Nothing is added without a
        // table, so knowledge bases without one keep their hash.
        if let Some(table) = &self.abbreviations {
            h.update(b"abbreviations");
            h.update((table.len() as u64).to_le_bytes());
            h.update(table.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// The knowledge files a directory holds (what [`KnowledgeBase::load`] reads), sorted.
pub fn knowledge_files(dir: &Path) -> Result<Vec<PathBuf>, KnowledgeError> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    Ok(files)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), KnowledgeError> {
    let rd = fs::read_dir(dir).map_err(|source| KnowledgeError::Io {
        path: dir.display().to_string(),
        reason: source,
    })?;
    for item in rd {
        let item = item.map_err(|source| KnowledgeError::Io {
            path: dir.display().to_string(),
            reason: source,
        })?;
        let path = item.path();
        let name = item.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if name.eq_ignore_ascii_case("README.md") {
            continue;
        } else if [".md", ".csv", ".jsonl"]
            .iter()
            .any(|x| name.to_ascii_lowercase().ends_with(x))
        {
            out.push(path);
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct JsonEntry {
    id: Option<serde_json::Value>,
    question: Option<String>,
    #[serde(default)]
    variants: Option<OneOrMany>,
    answer: Option<String>,
    category: Option<String>,
    #[serde(default)]
    tags: Option<OneOrMany>,
}

/// `variants` and `tags` as a list, or as one string (exports from other tools often
/// flatten lists), split as a spreadsheet cell is.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<String>),
    One(String),
}

impl OneOrMany {
    fn tags(self) -> Vec<String> {
        match self {
            OneOrMany::Many(v) => v
                .into_iter()
                .map(|s| crate::text::nfc(s.trim()))
                .filter(|s| !s.is_empty())
                .collect(),
            OneOrMany::One(s) => split_tags(&s),
        }
    }

    /// An empty item of a list is an error, as an empty `? ` line is in Markdown.
    fn variants(self) -> Result<Vec<String>, String> {
        match self {
            OneOrMany::Many(v) => v
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let s = crate::text::nfc(s.trim());
                    if s.is_empty() {
                        Err(format!(
                            "`variants` item {} is empty: write another way customers ask, \
                             or remove it",
                            i + 1
                        ))
                    } else {
                        Ok(s)
                    }
                })
                .collect(),
            OneOrMany::One(s) => split_variants(&s),
        }
    }
}

/// Tags written in one string, separated by line breaks, `|`, commas or semicolons;
/// empty ones (a trailing comma) are dropped.
fn split_tags(cell: &str) -> Vec<String> {
    cell.split(['\n', '|', ',', ';'])
        .map(|s| crate::text::nfc(s.trim()))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Variants written in one string: one per line, or separated by `|` (a question may
/// hold commas). Blank lines are spacing; a `|` with nothing on one side (`ship bn |`,
/// `a || b`) is an error, as an empty `? ` line is in Markdown.
fn split_variants(cell: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for line in cell.lines().filter(|l| !l.trim().is_empty()) {
        for piece in line.split('|') {
            let v = crate::text::nfc(piece.trim());
            if v.is_empty() {
                return Err(format!(
                    "an empty variant in `{}`: every `|` separates two ways customers \
                     ask; write the missing one or remove the extra `|`",
                    line.trim()
                ));
            }
            out.push(v);
        }
    }
    Ok(out)
}

/// An entry id as a JSON value names it: a non-empty string (trimmed) or a number
/// (`7` names the entry `7`; only whole numbers 0 and up are ids, so `1.5` or `-3`
/// give the number's text, which [`check_id`] refuses).
pub(crate) fn entry_id(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_jsonl(file: &Path, text: &str) -> Result<Vec<Entry>, KnowledgeError> {
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let line_no = idx + 1;
        if line.trim().is_empty() {
            continue;
        }
        let raw: JsonEntry = serde_json::from_str(line)
            .map_err(|e| KnowledgeError::invalid(file, line_no, format!("invalid JSON: {e}")))?;
        let Some(id) = raw.id.as_ref().and_then(entry_id) else {
            return Err(KnowledgeError::invalid(
                file,
                line_no,
                "missing `id` (a non-empty string)",
            ));
        };
        if let Err(message) = check_id(&id) {
            let message = match raw.id {
                Some(serde_json::Value::Number(_)) => format!(
                    "bad id `{id}`: a numeric id is a whole number, 0 or more; \
                     other ids are lowercase letters, digits and hyphens"
                ),
                _ => message,
            };
            return Err(KnowledgeError::invalid(file, line_no, message));
        }
        let answer = raw
            .answer
            .map(|a| crate::text::nfc(a.trim()))
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                KnowledgeError::invalid(file, line_no, format!("entry `{id}` has no `answer`"))
            })?;
        let variants = match raw.variants {
            Some(v) => v.variants().map_err(|m| {
                KnowledgeError::invalid(file, line_no, format!("entry `{id}`: {m}"))
            })?,
            None => Vec::new(),
        };
        out.push(Entry {
            id,
            question: raw
                .question
                .map(|q| crate::text::nfc(q.trim()))
                .filter(|q| !q.is_empty()),
            title: None,
            variants,
            answer,
            category: raw.category.map(|c| crate::text::nfc(c.trim())),
            tags: raw.tags.map_or_else(Vec::new, OneOrMany::tags),
            origin: Origin {
                file: file.to_path_buf(),
                line: line_no,
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        fs::write(dir.join(name), body).unwrap();
    }

    #[test]
    fn files_saved_with_a_byte_order_mark_and_crlf_load_like_the_others() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.jsonl",
            "\u{feff}{\"id\": 7, \"question\": \"Phí ship bao nhiêu?\", \"answer\": \"Dạ 30.000đ ạ.\"}\r\n\
             {\"id\": \"gio\", \"answer\": \"Cửa hàng mở cửa từ 8h đến 22h.\"}\r\n",
        );
        write(
            dir.path(),
            "b.md",
            "\u{feff}# Thanh toán\r\n\r\n## Có COD không? {#cod}\r\n? ship cod dc ko\r\n\r\nDạ có ạ.\r\n",
        );
        let kb = KnowledgeBase::load(dir.path()).unwrap();
        let got: Vec<(&str, Option<&str>, &str)> = kb
            .entries
            .iter()
            .map(|e| (e.id.as_str(), e.question.as_deref(), e.answer.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("7", Some("Phí ship bao nhiêu?"), "Dạ 30.000đ ạ."),
                ("gio", None, "Cửa hàng mở cửa từ 8h đến 22h."),
                ("cod", Some("Có COD không?"), "Dạ có ạ."),
            ]
        );
        assert_eq!(kb.get("cod").unwrap().variants, vec!["ship cod dc ko"]);
    }

    fn passage(title: Option<&str>, answer: &str) -> Entry {
        Entry {
            id: "p".into(),
            question: None,
            title: title.map(Into::into),
            variants: Vec::new(),
            answer: answer.into(),
            category: None,
            tags: Vec::new(),
            origin: Origin {
                file: "kb.md".into(),
                line: 1,
            },
        }
    }

    #[test]
    fn long_passages_are_read_in_overlapping_windows() {
        // Fits: one window, the text as before (its cached vector stays valid).
        let short = passage(Some("Bảo hành"), "Bảo hành 12 tháng. Đổi mới 7 ngày.");
        assert_eq!(short.passage_windows(10), [short.passage_text()]);
        // Sentences packed up to the limit, the next window starting with the last
        // sentence of the one before; every window led by the title.
        let long = passage(
            Some("Giao hàng"),
            "Một hai ba bốn. Năm sáu bảy tám. Chín mười mười một.\nMười hai mười ba?",
        );
        assert_eq!(
            long.passage_windows(10),
            [
                "Giao hàng. Một hai ba bốn. Năm sáu bảy tám.",
                "Giao hàng. Năm sáu bảy tám. Chín mười mười một.",
                "Giao hàng. Chín mười mười một. Mười hai mười ba?",
            ]
        );
        // A sentence longer than a window is cut; no title, no lead.
        let run_on = passage(None, "a b c d e f g h i j k");
        assert_eq!(run_on.passage_windows(4), ["a b c d", "e f g h", "i j k"]);
        // Every word is in some window.
        for e in [&long, &run_on] {
            let all: HashSet<String> = e
                .passage_windows(4)
                .iter()
                .flat_map(|w| w.split_whitespace().map(String::from).collect::<Vec<_>>())
                .collect();
            assert!(e.answer.split_whitespace().all(|w| all.contains(w)));
        }
        // Decimal points and amounts do not end a sentence.
        assert_eq!(
            sentences("Giá 1.500.000đ. Hết."),
            ["Giá 1.500.000đ.", " Hết."]
        );
    }

    #[test]
    fn jsonl_entries_and_passages() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "kb.jsonl",
            concat!(
                r#"{"id": "a", "question": "Phí ship?", "variants": ["ship bn"], "answer": "25.000đ", "category": "Giao hàng", "tags": ["ship"], "extra": 1}"#,
                "\n\n",
                r#"{"id": "p1", "question": null, "answer": "Chính sách bảo hành 12 tháng."}"#,
                "\n",
                r#"{"id": "p2", "answer": "Đoạn văn thứ hai."}"#,
                "\n"
            ),
        );
        let kb = KnowledgeBase::load(dir.path()).unwrap();
        assert_eq!(kb.len(), 3);
        let a = kb.get("a").unwrap();
        assert_eq!(a.questions().collect::<Vec<_>>(), ["Phí ship?", "ship bn"]);
        assert!(kb.get("p1").unwrap().is_passage());
        assert!(kb.get("p2").unwrap().is_passage());
        assert_eq!(kb.get("p2").unwrap().origin.line, 4);
    }

    #[test]
    fn jsonl_variants_and_tags_may_be_one_string() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "kb.jsonl",
            "{\"id\": \"a\", \"question\": \"Phí ship?\", \"variants\": \"ship bn | phí giao, hàng\", \"answer\": \"x\", \"tags\": \"ship, phí\"}\n",
        );
        let kb = KnowledgeBase::load(dir.path()).unwrap();
        let a = kb.get("a").unwrap();
        assert_eq!(a.variants, ["ship bn", "phí giao, hàng"]);
        assert_eq!(a.tags, ["ship", "phí"]);
    }

    #[test]
    fn jsonl_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "{\"id\": \"a\", \"answer\": \"x\"}\n{broken\n",
                ":2: invalid JSON",
            ),
            (
                "{\"id\": \"a\", \"question\": \"q\"}\n",
                ":1: entry `a` has no `answer`",
            ),
            (
                "{\"id\": \"a\", \"answer\": \"  \"}\n",
                ":1: entry `a` has no `answer`",
            ),
            ("{\"answer\": \"x\"}\n", ":1: missing `id`"),
            // An empty variant, as an empty `? ` line in Markdown.
            (
                "{\"id\": \"a\", \"answer\": \"x\", \"variants\": [\"ship bn\", \" \"]}\n",
                ":1: entry `a`: `variants` item 2 is empty",
            ),
            (
                "{\"id\": \"a\", \"answer\": \"x\"}\n{\"id\": \"b\", \"answer\": \"x\", \"variants\": \"ship bn | \"}\n",
                ":2: entry `b`: an empty variant in `ship bn |`",
            ),
            // Ids follow the Markdown rule; a numeric id is a whole number 0 or more.
            ("{\"id\": \"A B\", \"answer\": \"x\"}\n", ":1: bad id `A B`"),
            ("{\"id\": \"a\", \"answer\": \"x\"}\n{\"id\": \"x_y\", \"answer\": \"x\"}\n", ":2: bad id `x_y`"),
            ("{\"id\": \"Đơn-hàng\", \"answer\": \"x\"}\n", ":1: bad id `Đơn-hàng`: an id is lowercase letters (no diacritics), digits and hyphens, starting with a letter or digit, e.g. `don-hang`"),
            ("{\"id\": \"goi-qua\", \"answer\": \"x\"}\n{\"id\": \"GOI-QUA\", \"answer\": \"x\"}\n", ":2: bad id `GOI-QUA`"),
            ("{\"id\": 1.5, \"answer\": \"x\"}\n", ":1: bad id `1.5`: a numeric id is a whole number, 0 or more"),
            ("{\"id\": -3, \"answer\": \"x\"}\n", ":1: bad id `-3`: a numeric id is a whole number"),
            (
                "{\"id\": \"a\", \"answer\": \"x\"}\n{\"id\": \"a\", \"answer\": \"y\"}\n",
                ":2: duplicate id `a` (first defined at",
            ),
        ];
        for (body, want) in cases {
            write(dir.path(), "kb.jsonl", body);
            let err = KnowledgeBase::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains("kb.jsonl"), "{err}");
            assert!(err.contains(want), "{err} should contain {want}");
        }
    }

    #[test]
    fn numeric_ids_and_empty_questions_in_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "kb.jsonl",
            "{\"id\": 0, \"question\": \"Q?\", \"answer\": \"a\"}\n\
             {\"id\": 12, \"question\": \"\", \"answer\": \"b\"}\n\
             {\"id\": \"12-b\", \"question\": \"  \", \"answer\": \"c\"}\n",
        );
        let kb = KnowledgeBase::load(dir.path()).unwrap();
        assert!(!kb.get("0").unwrap().is_passage());
        // An empty question is no question: the entry is a passage.
        assert!(kb.get("12").unwrap().is_passage());
        assert!(kb.get("12-b").unwrap().is_passage());
    }

    #[test]
    fn duplicate_ids_across_files_and_empty_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let err = KnowledgeBase::load(dir.path()).unwrap_err();
        assert!(matches!(err, KnowledgeError::Empty(_)));
        write(
            dir.path(),
            "a.jsonl",
            "{\"id\": \"x\", \"answer\": \"1\"}\n",
        );
        write(dir.path(), "b.md", "## Câu hỏi {#x}\n\nTrả lời.\n");
        let err = KnowledgeBase::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("b.md:1: duplicate id `x`"), "{err}");
    }

    #[test]
    fn a_shop_abbreviation_table_is_read_beside_the_knowledge_files() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.md",
            "## Thay pin iPhone bao nhiêu? {#pin}\n\nDạ, 850.000đ ạ.\n",
        );
        let plain = KnowledgeBase::load(dir.path()).unwrap();
        assert!(!plain.has_shop_table());
        assert_eq!(plain.normalizer().normalize("pin ip"), "pin ip");
        write(dir.path(), ABBREVIATIONS_FILE, "ip\tiPhone\n");
        // A table in a subdirectory is not the shop's (nor a knowledge file).
        fs::create_dir(dir.path().join("cu")).unwrap();
        write(&dir.path().join("cu"), ABBREVIATIONS_FILE, "pin\tpin sạc\n");
        let kb = KnowledgeBase::load(dir.path()).unwrap();
        assert!(kb.has_shop_table());
        assert_eq!(kb.normalizer().normalize("pin ip"), "pin iphone");
        assert_eq!(kb.contents(), plain.contents());
        assert_eq!(knowledge_files(dir.path()).unwrap().len(), 1);
        // What retrieval builds depends on it: another index.
        assert_ne!(kb.content_hash(), plain.content_hash());
        // A single file is read alone.
        let one = KnowledgeBase::load(&dir.path().join("a.md")).unwrap();
        assert!(!one.has_shop_table());

        write(
            dir.path(),
            ABBREVIATIONS_FILE,
            "ip\tiPhone\nss\tSamsung\nip\tiPad\n",
        );
        let err = KnowledgeBase::load(dir.path()).unwrap_err().to_string();
        let want = format!(
            "{}:3: `ip` is listed twice",
            dir.path().join(ABBREVIATIONS_FILE).display()
        );
        assert_eq!(err, want);
    }

    #[test]
    fn content_hash_changes_with_content() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.jsonl",
            "{\"id\": \"x\", \"answer\": \"1\"}\n",
        );
        let h1 = KnowledgeBase::load(dir.path()).unwrap().content_hash();
        assert_eq!(h1, KnowledgeBase::load(dir.path()).unwrap().content_hash());
        write(
            dir.path(),
            "a.jsonl",
            "{\"id\": \"x\", \"answer\": \"2\"}\n",
        );
        assert_ne!(h1, KnowledgeBase::load(dir.path()).unwrap().content_hash());
    }
}
