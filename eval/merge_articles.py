#!/usr/bin/env python3
"""Builds a long-passage test set from a JSONL knowledge base and its queries.

Consecutive entries of one category are merged, N at a time, into one passage-only
article (question and answer of each member, in order); every query is pointed at the
article that holds its entry, with `pos` telling which member it was.

usage: eval/merge_articles.py N KB.jsonl QUERIES.jsonl OUT_DIR
  e.g. eval/merge_articles.py 5 eval/other/knowledge/isp.jsonl eval/other/queries.jsonl /tmp/long5
then:  cskh eval --knowledge /tmp/long5/knowledge --queries /tmp/long5/queries.jsonl
"""
import json
import os
import sys


def main():
    n, kb, queries, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    entries = [json.loads(line) for line in open(kb, encoding="utf-8") if line.strip()]
    groups = []
    for e in entries:
        if groups and groups[-1][0] == e.get("category") and len(groups[-1][1]) < n:
            groups[-1][1].append(e)
        else:
            groups.append((e.get("category"), [e]))
    os.makedirs(os.path.join(out, "knowledge"), exist_ok=True)
    owner = {}
    with open(os.path.join(out, "knowledge", "articles.jsonl"), "w", encoding="utf-8") as f:
        for i, (_, members) in enumerate(groups):
            article = f"bai-{i}"
            parts = []
            for pos, e in enumerate(members):
                owner[e["id"]] = (article, pos)
                q = e.get("question")
                parts.append((q + " " if q else "") + e["answer"])
            row = {"id": article, "question": None, "answer": "\n\n".join(parts)}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(os.path.join(out, "queries.jsonl"), "w", encoding="utf-8") as f:
        for line in open(queries, encoding="utf-8"):
            if not line.strip():
                continue
            q = json.loads(line)
            want = q.get("faq_id")
            row = {"text": q["text"], "faq_id": None, "pos": None}
            if want:
                row["faq_id"], row["pos"] = owner[want]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(groups)} articles", file=sys.stderr)


if __name__ == "__main__":
    main()
