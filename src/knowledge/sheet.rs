//! Knowledge kept in a spreadsheet: a CSV export (Excel, Google Sheets, LibreOffice),
//! one entry per row under a header row. Columns are found by name, in English or
//! Vietnamese, in any order; unknown columns are ignored. The separator is the
//! header row's: comma, semicolon (Excel in a Vietnamese locale) or tab.

use std::collections::HashMap;
use std::path::Path;

use super::{split_tags, split_variants, Entry, KnowledgeError, Origin};
use crate::text::nfc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Column {
    Id,
    Question,
    Variants,
    Answer,
    Category,
    Tags,
}

/// Header names (compared lowercased, diacritics and inner spaces ignored).
const NAMES: &[(Column, &[&str])] = &[
    (Column::Id, &["id", "ma", "makhoa"]),
    (Column::Question, &["question", "cauhoi", "tieude", "title"]),
    (
        Column::Variants,
        &[
            "variants",
            "cachhoikhac",
            "cauhoikhac",
            "cauhoituongtu",
            "bienthe",
        ],
    ),
    (
        Column::Answer,
        &["answer", "traloi", "cautraloi", "noidung", "passage"],
    ),
    (Column::Category, &["category", "danhmuc", "nhom", "chude"]),
    (Column::Tags, &["tags", "tag", "the", "tukhoa"]),
];

fn column_of(header: &str) -> Option<Column> {
    let key: String = crate::text::fold(&header.trim().to_lowercase())
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .collect();
    NAMES
        .iter()
        .find(|(_, names)| names.contains(&key.as_str()))
        .map(|(c, _)| *c)
}

/// The separator the header row uses most (outside quotes).
fn sniff_delimiter(text: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for c in text.bytes() {
        match c {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            _ if !quoted => {
                if let Some(slot) = counts.iter_mut().find(|(d, _)| *d == c) {
                    slot.1 += 1;
                }
            }
            _ => {}
        }
    }
    counts
        .iter()
        .max_by_key(|(d, n)| (*n, *d == b','))
        .map_or(b',', |(d, _)| *d)
}

/// A quoted cell that does not end where a cell ends: `csv` reads an unclosed quote
/// to the end of the file, and a quote closed by the next cell's opening quote runs
/// on past it, either way swallowing the rows after it into one cell. Returns the
/// line where that cell's quote opens and what is wrong. Quoting follows `csv`: a
/// quote opens a cell only as its first character, and `""` inside is one quote.
fn quote_error(text: &str, delimiter: u8) -> Option<(usize, String)> {
    let bytes = text.as_bytes();
    let mut line = 1;
    let mut cell_start = true;
    let mut opened: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match opened {
            Some(open_line) if b == b'"' => {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    opened = None;
                    let next = bytes.get(i + 1).copied();
                    if !matches!(next, None | Some(b'\r' | b'\n')) && next != Some(delimiter) {
                        return Some((
                            open_line,
                            format!(
                                "the quoted cell opened on this line is closed on line {line} \
                                 with text after its closing quote: a quote inside a cell \
                                 must be written twice (\"\"), and every cell that opens \
                                 with a quote must close with one"
                            ),
                        ));
                    }
                    cell_start = false;
                }
            }
            Some(_) => {}
            None if b == b'"' && cell_start => opened = Some(line),
            None => cell_start = b == delimiter || b == b'\n' || b == b'\r',
        }
        if b == b'\n' {
            line += 1;
        }
        i += 1;
    }
    opened.map(|open_line| {
        (
            open_line,
            "a quote opened on this line is never closed: the rows after it would be read \
             as part of one cell; close the cell with a double quote (\")"
                .to_string(),
        )
    })
}

pub(super) fn parse(file: &Path, text: &str) -> Result<Vec<Entry>, KnowledgeError> {
    let delimiter = sniff_delimiter(text);
    if let Some((line, message)) = quote_error(text, delimiter) {
        return Err(KnowledgeError::invalid(file, line, message));
    }
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    // The line of a record's first cell, counted from its byte offset: the reader's
    // own line count is one short after CRLF row ends (Excel's "CSV UTF-8"), whose
    // LF it counts as the start of the next record.
    let line_at = |p: &csv::Position| {
        let bytes = text.as_bytes();
        let mut at = (p.byte() as usize).min(bytes.len());
        while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        1 + bytes[..at].iter().filter(|&&b| b == b'\n').count()
    };
    let csv_error = |e: csv::Error| {
        let line = e.position().map_or(1, line_at);
        KnowledgeError::invalid(file, line, format!("unreadable CSV: {e}"))
    };
    let headers = reader.headers().map_err(csv_error)?.clone();
    let mut columns: HashMap<Column, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if let Some(c) = column_of(h) {
            if columns.insert(c, i).is_some() {
                return Err(KnowledgeError::invalid(
                    file,
                    1,
                    format!("two columns name the same field (`{}`)", h.trim()),
                ));
            }
        }
    }
    for (needed, name) in [(Column::Id, "id"), (Column::Answer, "answer")] {
        if !columns.contains_key(&needed) {
            return Err(KnowledgeError::invalid(
                file,
                1,
                format!(
                    "the header row has no `{name}` column (found: {}); columns: id, \
                     question, variants, answer, category, tags",
                    headers.iter().map(str::trim).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(1, line_at);
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if record.len() > headers.len() {
            return Err(KnowledgeError::invalid(
                file,
                line,
                format!(
                    "this row has {} cells but the header row has {}: a cell holding the \
                     separator must be in double quotes",
                    record.len(),
                    headers.len()
                ),
            ));
        }
        let cell = |c: Column| -> &str {
            columns
                .get(&c)
                .and_then(|&i| record.get(i))
                .map_or("", str::trim)
        };
        let id = cell(Column::Id);
        if id.is_empty() {
            return Err(KnowledgeError::invalid(file, line, "this row has no `id`"));
        }
        super::check_id(id).map_err(|m| KnowledgeError::invalid(file, line, m))?;
        let answer = nfc(cell(Column::Answer));
        if answer.is_empty() {
            return Err(KnowledgeError::invalid(
                file,
                line,
                format!("entry `{id}` has no `answer`"),
            ));
        }
        let variants = split_variants(cell(Column::Variants))
            .map_err(|m| KnowledgeError::invalid(file, line, format!("entry `{id}`: {m}")))?;
        let optional = |c: Column| Some(nfc(cell(c))).filter(|s| !s.is_empty());
        out.push(Entry {
            id: id.to_string(),
            question: optional(Column::Question),
            title: None,
            variants,
            answer,
            category: optional(Column::Category),
            tags: split_tags(cell(Column::Tags)),
            origin: Origin {
                file: file.to_path_buf(),
                line,
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Vec<Entry>, KnowledgeError> {
        parse(Path::new("faq.csv"), text)
    }

    #[test]
    fn reads_rows_by_column_name_in_any_order() {
        let text = "Câu hỏi,ID,Trả lời,Cách hỏi khác,Danh mục,Từ khóa,Ghi chú\n\
            Phí ship bao nhiêu?,phi-ship,\"Dạ, phí ship 30.000đ ạ.\",\"ship bn\nphí giao hàng\",Giao hàng,\"ship, phí\",nội bộ\n\
            ,chinh-sach,Chính sách đổi trả trong 7 ngày.,,,,\n";
        let entries = parse_str(text).unwrap();
        assert_eq!(entries.len(), 2);
        let e = &entries[0];
        assert_eq!(e.id, "phi-ship");
        assert_eq!(e.question.as_deref(), Some("Phí ship bao nhiêu?"));
        assert_eq!(e.answer, "Dạ, phí ship 30.000đ ạ.");
        assert_eq!(e.variants, ["ship bn", "phí giao hàng"]);
        assert_eq!(e.category.as_deref(), Some("Giao hàng"));
        assert_eq!(e.tags, ["ship", "phí"]);
        assert_eq!(e.origin.line, 2);
        // No question: a passage. The multi-line cell above moves this row to line 4.
        assert!(entries[1].is_passage());
        assert_eq!(entries[1].origin.line, 4);
    }

    #[test]
    fn quoted_cells_over_several_lines_and_inner_quotes_read_whole() {
        let text = "id,question,answer\n\
            a,Đổi trả?,\"Dạ được ạ:\n- trong 7 ngày\n- còn tem \"\"mác\"\"\"\n\
            b,\"Giờ mở cửa, đóng cửa?\",8h đến 22h ạ 5\"\n\
            c,Ship?,\"Dạ có ạ.\"";
        for text in [text.to_string(), text.replace('\n', "\r\n")] {
            let entries = parse_str(&text).unwrap();
            let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
            assert_eq!(ids, ["a", "b", "c"], "{text:?}");
            let a = entries[0].answer.replace("\r\n", "\n");
            assert_eq!(a, "Dạ được ạ:\n- trong 7 ngày\n- còn tem \"mác\"");
            assert_eq!(
                entries[1].question.as_deref(),
                Some("Giờ mở cửa, đóng cửa?")
            );
            // A quote inside an unquoted cell is just a character.
            assert_eq!(entries[1].answer, "8h đến 22h ạ 5\"");
            assert_eq!(entries[2].origin.line, 6);
        }
    }

    #[test]
    fn semicolons_and_tabs_separate_as_the_header_does() {
        for sep in [";", "\t"] {
            let text =
                format!("id{sep}question{sep}answer\na{sep}Giờ mở cửa?{sep}Dạ, 8h đến 22h ạ.\n");
            let entries = parse_str(&text).unwrap();
            assert_eq!(entries[0].answer, "Dạ, 8h đến 22h ạ.", "{sep:?}");
        }
    }

    #[test]
    fn blank_lines_between_variants_in_a_cell_are_spacing() {
        let text =
            "id,answer,variants,tags\na,Đáp,\"ship bn\n\nphí giao | giá ship\n\",\"ship,\"\n";
        let entries = parse_str(text).unwrap();
        assert_eq!(entries[0].variants, ["ship bn", "phí giao", "giá ship"]);
        // A trailing comma in the tags is no tag.
        assert_eq!(entries[0].tags, ["ship"]);
    }

    #[test]
    fn short_rows_and_blank_rows_are_fine() {
        let text = "id,answer,question,tags\na,Trả lời A\n,,,\nb,Trả lời B,Hỏi B?\n";
        let entries = parse_str(text).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].question.as_deref(), Some("Hỏi B?"));
        assert!(entries[0].tags.is_empty());
    }

    #[test]
    fn errors_name_the_line_and_what_to_fix() {
        let cases = [
            ("question,answer\nHỏi?,Đáp\n", 1, "no `id` column"),
            ("id,question\na,Hỏi?\n", 1, "no `answer` column"),
            ("id,answer\na,\n", 2, "entry `a` has no `answer`"),
            ("id,answer\na,ok\n,Đáp\n", 3, "has no `id`"),
            ("id,answer\na,ok\nA B,Đáp\n", 3, "bad id `A B`"),
            ("id,answer\nx_y,Đáp\n", 2, "bad id `x_y`"),
            ("id,answer\nĐơn-hàng,Đáp\n", 2, "e.g. `don-hang`"),
            ("id,answer\ngoi-qua,a\nGOI-QUA,b\n", 3, "bad id `GOI-QUA`"),
            ("id,answer\n1.5,Đáp\n", 2, "bad id `1.5`"),
            ("id;answer\na;1\nb;2\nc;3\nd;4;extra\n", 5, "double quotes"),
            ("id,answer\na,Dạ, được ạ\n", 2, "double quotes"),
            ("id,answer,ID\na,b,c\n", 1, "same field"),
            // An empty variant, as an empty `? ` line in Markdown.
            (
                "id,answer,variants\na,Đáp,ship bn\nb,Đáp,ship bn |\n",
                3,
                "entry `b`: an empty variant in `ship bn |`",
            ),
            (
                "id,answer,variants\na,Đáp,\"ship bn\nphí || giá\"\n",
                2,
                "an empty variant in `phí || giá`",
            ),
            // An unclosed quote would swallow the rows after it into one answer.
            (
                "id,question,answer\nx1,Thuê xe máy?,\"Dạ không ạ.\nx2,Nón?,Dạ có ạ.\nx3,Găng tay?,Dạ có ạ.\n",
                2,
                "never closed",
            ),
            ("id,answer\na,ok\nb,\"Dạ\n\nvâng ạ.", 3, "never closed"),
            // Closed by the next quoted cell's opening quote: the same swallowing.
            (
                "id,question,answer\nx1,Thuê xe?,\"Dạ không ạ.\nx2,\"Nón, mũ?\",Dạ có ạ.\n",
                2,
                "closed on line 3",
            ),
        ];
        for (text, line, needle) in cases {
            // Excel's "CSV UTF-8" ends rows with CRLF: the same lines.
            let crlf = text.replace('\n', "\r\n");
            let err = parse_str(&crlf).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("faq.csv:{line}:")),
                "{crlf:?}: {err}"
            );
            let err = parse_str(text).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("faq.csv:{line}:")),
                "{text:?}: {err}"
            );
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
