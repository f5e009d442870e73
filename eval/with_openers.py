#!/usr/bin/env python3
"""Writes a copy of a query file with small talk before every query, as customers
open a chat ("shop ơi cho em hỏi ..."). The opener cycles with the line number.

usage: python3 eval/with_openers.py QUERIES.jsonl OUT.jsonl [--address ad]
"""
import json
import sys

OPENERS = [
    "shop ơi cho em hỏi",
    "chào shop, cho mình hỏi chút",
    "ad ơi",
    "dạ em chào ạ, em muốn hỏi là",
    "hi shop",
    "cho em hỏi với ạ,",
    "alo shop ơi",
    "xin chào, cho mình hỏi",
]


def main():
    src, out = sys.argv[1], sys.argv[2]
    address = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--address" else "shop"
    with open(src, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as w:
        for i, line in enumerate(f):
            q = json.loads(line)
            opener = OPENERS[i % len(OPENERS)].replace("shop", address)
            text = q["text"]
            q["text"] = f"{opener} {text[:1].lower()}{text[1:]}"
            w.write(json.dumps(q, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
