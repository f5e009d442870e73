//! The hand-written Markdown knowledge format (documented in README.md):
//! `# Category`, `## Question {#id}` or `## Title {#id .passage}`, then optional
//! `? variant` and `tags: a, b` lines, then the answer until the next heading.

use std::path::Path;

use super::{Entry, KnowledgeError, Origin};
use crate::text::{fold, nfc};

struct Heading {
    text: String,
    id: String,
    passage: bool,
}

fn parse_heading(file: &Path, line_no: usize, raw: &str) -> Result<Heading, KnowledgeError> {
    let raw = raw.trim();
    let (text, attrs) = match raw.rfind('{') {
        Some(open) if raw.ends_with('}') => (&raw[..open], Some(&raw[open + 1..raw.len() - 1])),
        // `## Q? {#xe-dap} nhé`: an id block that does not end the heading would
        // silently give another id (derived from all of it).
        Some(open) if raw[open + 1..].starts_with(['#', '.']) && raw[open..].contains('}') => {
            let close = open + raw[open..].find('}').expect("checked");
            return Err(KnowledgeError::invalid(
                file,
                line_no,
                format!(
                    "text `{}` after `{}`: the `{{#id}}` goes at the very end of the heading",
                    raw[close + 1..].trim(),
                    &raw[open..=close]
                ),
            ));
        }
        _ => (raw, None),
    };
    let text = nfc(text.trim());
    let mut id = None;
    let mut passage = false;
    if let Some(attrs) = attrs {
        // The whole block is named in errors: `{#Thue Xe}` is one id with a space,
        // not the id `Thue`.
        let bad_id = |why: String| {
            KnowledgeError::invalid(file, line_no, format!("bad id in `{{{attrs}}}`: {why}"))
        };
        for attr in attrs.split_whitespace() {
            if let Some(v) = attr.strip_prefix('#') {
                if id.is_some() {
                    return Err(bad_id("one `#id` per heading".into()));
                }
                super::check_id(v).map_err(|m| {
                    let hint = slug(&attrs.replace('.', " "));
                    let m = m
                        .split_once(": ")
                        .map_or(m.as_str(), |(_, why)| why)
                        .to_string();
                    bad_id(match attrs.split_whitespace().count() {
                        1 => m,
                        _ => format!(
                            "an id has no spaces; lowercase letters, digits and hyphens \
                             (e.g. `{{#{hint}}}`)"
                        ),
                    })
                })?;
                id = Some(v.to_string());
            } else if attr == ".passage" {
                passage = true;
            } else {
                return Err(KnowledgeError::invalid(
                    file,
                    line_no,
                    format!(
                        "unknown heading attribute `{attr}` in `{{{attrs}}}` \
                         (expected `#id` or `.passage`; an id has no spaces)"
                    ),
                ));
            }
        }
    }
    if text.is_empty() {
        return Err(KnowledgeError::invalid(
            file,
            line_no,
            "an entry heading needs a question or title",
        ));
    }
    let id = id.unwrap_or_else(|| slug(&text));
    if id.is_empty() {
        return Err(KnowledgeError::invalid(
            file,
            line_no,
            "cannot derive an id from this heading: add `{#some-id}`",
        ));
    }
    Ok(Heading { text, id, passage })
}

/// An id derived from a heading: diacritic-free, lowercase, hyphen-separated.
pub(super) fn slug(text: &str) -> String {
    let folded = fold(text).to_lowercase();
    let words: Vec<&str> = folded
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words.join("-")
}

/// An answer's lines as Markdown reads them: the lines of a paragraph are one
/// paragraph (an editor's wrapping is not a line break in the chat), while a blank
/// line, a list item, a table row, a quote, a hard break (two trailing spaces or a
/// trailing backslash) and the lines of a fenced block keep their line breaks.
///
/// Unlike CommonMark, a list item or table row takes the next line only when that
/// line is indented (two spaces or a tab): a plain sentence right after a list
/// ("- iPhone 14: 1.050.000đ" then "Thay xong trong 30 phút.") starts a line of its
/// own, as the owner who wrote it on its own line means, instead of running on in
/// the last item (CommonMark's "lazy continuation").
fn join_lines(lines: &[String]) -> String {
    fn starts_block(line: &str) -> bool {
        let t = line.trim_start();
        let numbered = t
            .find(|c: char| !c.is_ascii_digit())
            .filter(|&i| i > 0)
            .is_some_and(|i| t[i..].starts_with(". ") || t[i..].starts_with(") "));
        t.starts_with("- ")
            || t.starts_with("* ")
            || t.starts_with("+ ")
            || t.starts_with('|')
            || t.starts_with('>')
            || numbered
    }
    /// A list item or a table row: what follows it continues it only when indented.
    fn item(line: &str) -> bool {
        starts_block(line) && !line.trim_start().starts_with('>')
    }
    let indented = |line: &str| line.starts_with("  ") || line.starts_with('\t');
    let mut out = String::new();
    // What the previous line asks of the next: nothing yet, a paragraph break, a
    // line break, or a space.
    let mut glue = "";
    let mut fenced = false;
    // The text being continued is a list item or a table row.
    let mut in_item = false;
    for line in lines {
        let fence = line.trim_start().starts_with("```");
        if !fenced && !fence && line.trim().is_empty() {
            if !out.is_empty() {
                glue = "\n\n";
            }
            in_item = false;
            continue;
        }
        let mut continues = false;
        if !out.is_empty() {
            continues =
                glue == " " && !fence && !starts_block(line) && (!in_item || indented(line));
            out.push_str(if glue == " " && !continues {
                "\n"
            } else {
                glue
            });
        }
        if !fenced && !fence && !continues {
            in_item = item(line);
        }
        if fenced || fence {
            out.push_str(line.trim_end());
            glue = "\n";
            if fence {
                fenced = !fenced;
            }
            continue;
        }
        let hard = line.ends_with("  ") || line.trim_end().ends_with('\\');
        let text = line.trim_end();
        let text = if continues { text.trim_start() } else { text };
        out.push_str(text.strip_suffix('\\').unwrap_or(text));
        glue = if hard { "\n" } else { " " };
    }
    out
}

struct Draft {
    heading: Heading,
    line: usize,
    category: Option<String>,
    variants: Vec<String>,
    tags: Vec<String>,
    body: Vec<String>,
}

impl Draft {
    fn finish(self, file: &Path) -> Result<Entry, KnowledgeError> {
        let answer = nfc(join_lines(&self.body).trim());
        if answer.is_empty() {
            return Err(KnowledgeError::invalid(
                file,
                self.line,
                format!("entry `{}` has no answer text", self.heading.id),
            ));
        }
        let (question, title) = if self.heading.passage {
            (None, Some(self.heading.text))
        } else {
            (Some(self.heading.text), None)
        };
        Ok(Entry {
            id: self.heading.id,
            question,
            title,
            variants: self.variants,
            answer,
            category: self.category,
            tags: self.tags,
            origin: Origin {
                file: file.to_path_buf(),
                line: self.line,
            },
        })
    }
}

pub(super) fn parse(file: &Path, text: &str) -> Result<Vec<Entry>, KnowledgeError> {
    let mut entries = Vec::new();
    let mut category: Option<String> = None;
    let mut draft: Option<Draft> = None;
    let mut in_fence = false;
    for (idx, line) in text.lines().enumerate() {
        let line_no = idx + 1;
        let trimmed = line.trim_end();
        if trimmed.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if !in_fence {
            if let Some(rest) = trimmed.strip_prefix("## ") {
                if let Some(d) = draft.take() {
                    entries.push(d.finish(file)?);
                }
                draft = Some(Draft {
                    heading: parse_heading(file, line_no, rest)?,
                    line: line_no,
                    category: category.clone(),
                    variants: Vec::new(),
                    tags: Vec::new(),
                    body: Vec::new(),
                });
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix("# ") {
                if let Some(d) = draft.take() {
                    entries.push(d.finish(file)?);
                }
                let c = nfc(rest.trim());
                category = (!c.is_empty()).then_some(c);
                continue;
            }
        }
        match draft.as_mut() {
            None => {
                if !trimmed.trim().is_empty() {
                    return Err(KnowledgeError::invalid(
                        file,
                        line_no,
                        "text outside an entry: start an entry with `## Question {#id}`",
                    ));
                }
            }
            Some(d) => {
                let at_meta = d.body.iter().all(|l| l.trim().is_empty());
                if at_meta && !in_fence {
                    let t = trimmed.trim_start();
                    // `trimmed` has lost its trailing spaces: "? " reads "?".
                    if let Some(v) = t.strip_prefix("? ").or((t == "?").then_some("")) {
                        let v = nfc(v.trim());
                        if v.is_empty() {
                            return Err(KnowledgeError::invalid(
                                file,
                                line_no,
                                "a `?` line with nothing after it: write another way \
                                 customers ask after `? `, or remove the line",
                            ));
                        }
                        d.variants.push(v);
                        continue;
                    }
                    if let Some(tags) = t.strip_prefix("tags:") {
                        d.tags.extend(
                            tags.split(',')
                                .map(|s| nfc(s.trim()))
                                .filter(|s| !s.is_empty()),
                        );
                        continue;
                    }
                }
                // Untrimmed: two trailing spaces are a hard break.
                d.body.push(line.to_string());
            }
        }
    }
    if in_fence {
        return Err(KnowledgeError::invalid(
            file,
            text.lines().count(),
            "unclosed ``` code block",
        ));
    }
    if let Some(d) = draft.take() {
        entries.push(d.finish(file)?);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<Entry>, KnowledgeError> {
        parse(Path::new("kb/giao-hang.md"), text)
    }

    #[test]
    fn wrapped_lines_of_a_paragraph_are_one_paragraph() {
        let lines = |s: &str| s.lines().map(String::from).collect::<Vec<_>>();
        let cases = [
            ("Dạ, phí ship\nlà 25.000đ ạ.", "Dạ, phí ship là 25.000đ ạ."),
            ("Một.\n\n\nHai.", "Một.\n\nHai."),
            (
                "Bảng phí:\n- Nội thành\n  giao trong ngày\n- Ngoại thành",
                "Bảng phí:\n- Nội thành giao trong ngày\n- Ngoại thành",
            ),
            (
                "Các bước:\n1. Đăng nhập\n2) Chọn đơn",
                "Các bước:\n1. Đăng nhập\n2) Chọn đơn",
            ),
            (
                "Địa chỉ:  \n12 Lê Lợi\\\nQuận 1",
                "Địa chỉ:\n12 Lê Lợi\nQuận 1",
            ),
            (
                "| Vùng | Phí |\n|---|---|\n| HN | 25k |",
                "| Vùng | Phí |\n|---|---|\n| HN | 25k |",
            ),
            ("> Lưu ý\n> quan trọng", "> Lưu ý\n> quan trọng"),
            (
                "Mã:\n```\nDH123\n\n  DH456\n```\nhết",
                "Mã:\n```\nDH123\n\n  DH456\n```\nhết",
            ),
            ("Năm 2024\nlà năm", "Năm 2024 là năm"),
        ];
        for (src, want) in cases {
            assert_eq!(join_lines(&lines(src)), want, "{src:?}");
        }
    }

    #[test]
    fn a_plain_line_right_after_a_list_starts_its_own_line() {
        let lines = |s: &str| s.lines().map(String::from).collect::<Vec<_>>();
        let cases = [
            (
                "- iPhone 13: 850.000đ\n- iPhone 14: 1.050.000đ\nThay xong trong 30 phút.",
                "- iPhone 13: 850.000đ\n- iPhone 14: 1.050.000đ\nThay xong trong 30 phút.",
            ),
            // The sentence is a paragraph again: its own wrapped lines join.
            (
                "1. Tắt máy\n2. Mang máy ra tiệm\nKỹ thuật viên kiểm tra\nmiễn phí ạ.",
                "1. Tắt máy\n2. Mang máy ra tiệm\nKỹ thuật viên kiểm tra miễn phí ạ.",
            ),
            // Indented by two spaces or a tab: still the item's text.
            (
                "- Pin zin:\n  bảo hành 6 tháng\n\tđổi mới 7 ngày\nGiá đã gồm công.",
                "- Pin zin: bảo hành 6 tháng đổi mới 7 ngày\nGiá đã gồm công.",
            ),
            // A table ends at a plain line too.
            (
                "| Máy | Giá |\n|---|---|\n| iPhone 13 | 850k |\nGiá đã gồm công.",
                "| Máy | Giá |\n|---|---|\n| iPhone 13 | 850k |\nGiá đã gồm công.",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(join_lines(&lines(src)), want, "{src:?}");
        }
        // Through the parser, as the QA report wrote it.
        let e = p("## Thay pin iPhone bao nhiêu? {#pin}\n\nGiá thay pin:\n- iPhone 13: 850.000đ\n- iPhone 14: 1.050.000đ\nThay xong trong 30 phút.\n").unwrap();
        assert_eq!(
            e[0].answer,
            "Giá thay pin:\n- iPhone 13: 850.000đ\n- iPhone 14: 1.050.000đ\nThay xong trong 30 phút."
        );
    }

    #[test]
    fn an_empty_variant_line_is_an_error() {
        for src in [
            "## Q {#a}\n? ship bn\n? \n\nĐáp.\n",
            "## Q {#a}\n? ship bn\n?\n\nĐáp.\n",
            "## Q {#a}\n? ship bn\n  ?   \r\n\nĐáp.\n",
        ] {
            let err = p(src).unwrap_err().to_string();
            assert!(
                err.starts_with("kb/giao-hang.md:3: a `?` line with nothing after it"),
                "{src:?}: {err}"
            );
        }
        // In the answer, a question mark is text.
        let e = p("## Q {#a}\nĐáp:\n?\n").unwrap();
        assert_eq!(e[0].answer, "Đáp: ?");
    }

    #[test]
    fn hard_breaks_in_a_file_keep_their_line_breaks() {
        let e = p("## Q {#a}\nLine one.  \nLine two.\\\nLine three.\nsame line.\n").unwrap();
        assert_eq!(e[0].answer, "Line one.\nLine two.\nLine three. same line.");
        // Windows line ends too.
        let e = p("## Q {#a}\r\nLine one.  \r\nLine two.\r\n").unwrap();
        assert_eq!(e[0].answer, "Line one.\nLine two.");
    }

    #[test]
    fn parses_entries_passages_variants_and_tags() {
        let src = "# Giao hàng\n\n## Phí ship ra Hà Nội bao nhiêu? {#phi-ship-ha-noi}\n? ship ra hn bn tiền\n? giao về Hà Nội tính phí sao\ntags: phí ship, hà nội\n\nDạ, phí là 25.000đ ạ.\n\n- Nội thành: 25.000đ\n\n## Chính sách giao hàng {#chinh-sach .passage}\nMây Xanh giao toàn quốc.\n\n# Thanh toán\n## Có COD không\nDạ có ạ.\n";
        let e = p(src).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].id, "phi-ship-ha-noi");
        assert_eq!(
            e[0].question.as_deref(),
            Some("Phí ship ra Hà Nội bao nhiêu?")
        );
        assert_eq!(e[0].variants.len(), 2);
        assert_eq!(e[0].tags, ["phí ship", "hà nội"]);
        assert_eq!(e[0].answer, "Dạ, phí là 25.000đ ạ.\n\n- Nội thành: 25.000đ");
        assert_eq!(e[0].category.as_deref(), Some("Giao hàng"));
        assert_eq!(e[0].origin.line, 3);
        assert!(e[1].is_passage());
        assert_eq!(e[1].title.as_deref(), Some("Chính sách giao hàng"));
        assert_eq!(e[2].id, "co-cod-khong");
        assert_eq!(e[2].category.as_deref(), Some("Thanh toán"));
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            (
                "## Câu hỏi {#a}\n\n## Khác {#b}\nx\n",
                "kb/giao-hang.md:1: entry `a` has no answer text",
            ),
            (
                "Lời mở đầu\n## Q {#a}\nx\n",
                "kb/giao-hang.md:1: text outside an entry",
            ),
            (
                "\n\n## Q {#A B}\nx\n",
                "kb/giao-hang.md:3: bad id in `{#A B}`: an id has no spaces",
            ),
            (
                "## Thuê xe {#Thue Xe}\nx\n",
                "kb/giao-hang.md:1: bad id in `{#Thue Xe}`: an id has no spaces; lowercase \
                 letters, digits and hyphens (e.g. `{#thue-xe}`)",
            ),
            (
                "## Q {#Đơn-hàng}\nx\n",
                "kb/giao-hang.md:1: bad id in `{#Đơn-hàng}`: an id is lowercase letters",
            ),
            ("## Q {#x_y}\nx\n", "kb/giao-hang.md:1: bad id in `{#x_y}`"),
            ("## Q {#-3}\nx\n", "kb/giao-hang.md:1: bad id in `{#-3}`"),
            (
                "## Q? {#xe-dap} nhé\nx\n",
                "kb/giao-hang.md:1: text `nhé` after `{#xe-dap}`: the `{#id}` goes at the very end",
            ),
            (
                "## Q {#a .faq}\nx\n",
                "kb/giao-hang.md:1: unknown heading attribute `.faq`",
            ),
            (
                "## {#a}\nx\n",
                "kb/giao-hang.md:1: an entry heading needs a question or title",
            ),
            ("## Q {#a}\n```\ncode\n", "kb/giao-hang.md:3: unclosed"),
        ];
        for (src, want) in cases {
            let err = p(src).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        }
    }
}
