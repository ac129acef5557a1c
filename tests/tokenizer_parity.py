#!/usr/bin/env python3
"""Reference ids for tests/test_tokenizer.cpp: encodes a fixed list of tricky
strings with Python's sentencepiece and writes them to a JSON file.

Usage: tokenizer_parity.py MODEL OUT.json

It writes {"sentencepiece_version": str, "cases": [{"text", "ids",
"ids_bos_eos", "decoded"}]}; the C++ test reads the texts from that file, so the
list of strings lives here only. It does not train models or compare anything.
"""
import json
import sys

import sentencepiece as spm

CASES = [
    "",
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    " leading space",
    "trailing space ",
    "   three leading spaces",
    "many     inner      spaces",
    "tabs\tinside\t\tthe\ttext",
    "line one\nline two\n\nline four",
    "\n",
    " ",
    "\t",
    "carriage\r\nreturn",
    "12345",
    "3.14159 and 2,718 and -42",
    "year 2024, item #007",
    "café naïve résumé Zoë",
    "中文字符测试",
    "日本語のテキスト",
    "한국어 문장",
    "emoji 🙂 and 🦀 and 👩‍👩‍👧",
    "mixed: abc中文123🙂é\tend",
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ",
    "\ufb01 ligature and \u00c5 (precomposed) vs A\u030a (combining)",
    "zero\u200bwidth\u00a0nbsp",
    "symbols <>&\"'`~!@#$%^*()_+-={}[]|\\:;?/",
    "▁ the meta symbol itself",
    "a",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
]


# Long texts, which ropex encodes a piece at a time (cut at spaces, data/tokenizer.h): every case
# above joined, about 330 KB and 900 KB, so that cuts fall next to each kind of text.
LONG_CASES = [" ".join(CASES) * 220, "\n".join(CASES[1:]) * 600]


def encode_case(sp, text):
    return {
        "text": text,
        "ids": sp.encode(text, out_type=int),
        "ids_bos_eos": sp.encode(text, out_type=int, add_bos=True, add_eos=True),
        "decoded": sp.decode(sp.encode(text, out_type=int)),
    }


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: tokenizer_parity.py MODEL OUT.json\n")
        return 2
    sp = spm.SentencePieceProcessor(model_file=argv[1])
    result = {
        "sentencepiece_version": spm.__version__,
        "cases": [encode_case(sp, text) for text in CASES + LONG_CASES],
    }
    with open(argv[2], "w", encoding="utf-8") as out:
        json.dump(result, out, ensure_ascii=False, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
