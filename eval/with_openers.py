#!/usr/bin/env python3
"""Writes a copy of a query file with small talk around every query, as customers
write to a shop: an opener before it ("shop ơi cho em hỏi ...", the default) or a
closer after it ("... vậy shop", --closers). The phrase cycles with the line number.

usage: python3 eval/with_openers.py QUERIES.jsonl OUT.jsonl [--closers] [--address ad]
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

CLOSERS = [
    "vậy shop",
    "ạ",
    "shop ơi",
    "nhé ad",
    "với ạ",
    "vậy ạ, cảm ơn shop",
    "z shop",
    "ad ơi",
]


def main():
    args = sys.argv[1:]
    closers = "--closers" in args
    address = args[args.index("--address") + 1] if "--address" in args else "shop"
    src, out = [a for a in args if not a.startswith("--") and a != address][:2]
    with open(src, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as w:
        for i, line in enumerate(f):
            q = json.loads(line)
            text = q["text"]
            if closers:
                closer = CLOSERS[i % len(CLOSERS)].replace("shop", address)
                q["text"] = f"{text.rstrip(' ?.!')} {closer}"
            else:
                opener = OPENERS[i % len(OPENERS)].replace("shop", address)
                q["text"] = f"{opener} {text[:1].lower()}{text[1:]}"
            w.write(json.dumps(q, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
