#!/usr/bin/env python3
"""Builds tokenizer.json files of each style ropex reads, and the `tokenizers` library's answers.

Usage: make_tokenizers.py OUTDIR [--bench-bytes N]

Writes OUTDIR/<style>.json for the styles below (each trained here with the `tokenizers` library's
BpeTrainer on a generated multilingual text, then given the structure of the real file it stands
for) and OUTDIR/expected.json: for each style, for a held-out text (generated with another seed)
and a list of tricky strings, the oracle's encode ids with add_special_tokens False and True and
its decode with skip_special_tokens False and True; plus decodes of random id lists (invalid
UTF-8 paths). With --bench-bytes N it also writes OUTDIR/bench.txt, a held-out text of about N
bytes for timing.

Styles (the real files they mirror):
  llama3       Split(Llama-3 regex, Isolated) + ByteLevel(use_regex false), ignore_merges, 256
               special added tokens, post-processor Sequence[ByteLevel, Template(<|begin_of_text|> $A)]
  qwen2        NFC + Split(Qwen2 regex) + ByteLevel(use_regex false), ByteLevel post-processor,
               <|endoftext|>, <|im_start|>, <|im_end|> special, <tool_call> not special
  gpt2         ByteLevel(add_prefix_space false, use_regex true); <|endoftext|> in the model vocab and
               normalized (as in the real file);
               plus an lstrip token <mask> and a single_word token
  llama2       (Llama-2 / Mistral v0.1 fast) normalizer Sequence[Prepend(▁), Replace(' ', ▁)], no
               pre-tokenizer, BPE byte_fallback + fuse_unk + <unk>, decoder
               Sequence[Replace(▁, ' '), ByteFallback, Fuse, Strip(' ', 1, 0)], Template(<s> $A);
               plus a normalized non-special added token
  mistral3     (Mistral v0.3 style) no normalizer, Metaspace(▁, prepend_scheme first, split false)
               pre-tokenizer and decoder
  metaspace    Metaspace(always, split true) pre-tokenizer and Metaspace decoder, no unk_token
  legacy_merges  gpt2 with merges written as "a b" strings (the older format)
  gpt2_prefix_space  gpt2 with add_prefix_space true
  c_*          the other components on the byte-fallback model: NFD/NFKD/NFKC, Lowercase,
               StripAccents, Strip, Replace(Regex), Split (every behavior, invert, String pattern),
               Digits, Whitespace, WhitespaceSplit, Roberta/BertProcessing, unk with and without
               fuse_unk, continuing_subword_prefix / end_of_word_suffix, the decoders in other orders
"""
import json
import os
import random
import sys
import unicodedata

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

WORDS = {
    "latin": "the quick brown fox jumps over lazy dog it's we're they've I'm you'll she'd DON'T WE'LL "
             "Hello World Python tokenizer model training data café naïve résumé façade coöperate Zürich "
             "São Paulo España niño crème brûlée Ærø Øresund Straße Łódź Dvořák İstanbul ıi",
    "greek": "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο ΣΟΦΟΣ σοφός Ἀθῆναι",
    "cyrillic": "Съешь же ещё этих мягких французских булок да выпей чаю Привет мир Україна їжак",
    "arabic": "السلام عليكم مرحبا بالعالم اللغة العربية جميلة كِتَابٌ مُدَرِّسٌ",
    "hebrew": "שלום עולם עברית היא שפה שמית בְּרֵאשִׁית",
    "devanagari": "नमस्ते दुनिया हिन्दी भाषा क्षत्रिय स्वागत है",
    "thai": "สวัสดีชาวโลก ภาษาไทย เป็นภาษาที่สวยงาม",
    "cjk": "你好世界 中文分词 机器学习 日本語のテキスト こんにちは カタカナ 漢字",
    "hangul": "안녕하세요 세계 한국어 텍스트 토크나이저",
    "emoji": "😀 😃 👍🏽 👩‍💻 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇫🇷 🇯🇵 ✌🏿 🤦🏼‍♂️ 🎉🎉",
    "misc": "ﬁ ﬂ ① ② Ⅻ ½ ² ³ ℃ ㎏ ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ ™ © ® … — – « » „ “ ” ‘ ’",
}
DIGITS = ["0", "7", "42", "123", "2024", "31415", "1000000", "3.14159", "1,234,567", "٣٤٥", "१२३", "๑๒๓",
          "１２３", "0x1F", "12e-3"]
CODE = [
    "def f(x):\n    return x**2 + 1  # square\n",
    "for (int i = 0; i < n; ++i) { a[i] += b[i] * c; }\r\n",
    "if (x != null && y >= 0) {\n\treturn \"ok\";\n}\n",
    "const s = `${a}-${b}`; // template\n",
    "SELECT * FROM t WHERE id = 42;\n",
    "<html><body class=\"x\">&amp; &lt;tag&gt;</body></html>\n",
    "x = {'key': [1, 2, 3], \"v\": None}\n",
    "    \t  mixed\t\tindent\n",
]
SPACES = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", " \n ", "\u00a0", "\u3000", "\u2009",
          "      ", "\n\n\n", " \r\n\r\n", "\u200b", "\u2028", "\x0b", "\x0c"]
COMBINING = ["e\u0301", "a\u0308", "o\u0302\u0323", "n\u0303", "\u0915\u094d\u0937", "x\u0336", "Z\u0351\u0362"]
SPECIAL_TEXTS = ["<|endoftext|>", "<|begin_of_text|>", "<|im_start|>", "<|im_end|>", "<s>", "</s>", "<unk>",
                 "<|reserved_special_token_7|>", "<tool_call>", "<mask>", "[FOO]", "<|end", "<s", "<|im_start|"]


def _byte_chars():
    visible = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, extra = {}, 0
    for b in range(256):
        if b in visible:
            out[b] = chr(b)
        else:
            out[b] = chr(0x100 + extra)
            extra += 1
    return out


BYTE_CHARS = _byte_chars()


def gen_text(seed, n_chars, with_specials):
    rng = random.Random(seed)
    pools = {k: v.split(" ") for k, v in WORDS.items()}
    keys = sorted(pools)
    out = []
    size = 0
    while size < n_chars:
        r = rng.random()
        if r < 0.55:
            k = rng.choice(keys)
            w = rng.choice(pools[k])
            if rng.random() < 0.1:
                w = w.upper()
            if rng.random() < 0.15:
                w = unicodedata.normalize(rng.choice(["NFC", "NFD"]), w)
            piece = w
        elif r < 0.65:
            piece = rng.choice(DIGITS) if rng.random() < 0.7 else str(rng.randrange(10 ** rng.randrange(1, 12)))
        elif r < 0.72:
            piece = rng.choice(CODE)
        elif r < 0.80:
            piece = rng.choice(COMBINING)
        elif r < 0.88:
            piece = rng.choice(["'s", "'S", "'LL", "'ll", "'re", "'Ve", "'d", "'m", "'t", "'", "''", "n't"])
        elif r < 0.90 and with_specials:
            piece = rng.choice(SPECIAL_TEXTS)
        else:
            piece = rng.choice(".,;:!?()[]{}\"'-_/\\@#$%^&*+=~`|<>") * rng.randrange(1, 4)
        sep = rng.choice(SPACES) if rng.random() < 0.25 else " "
        if rng.random() < 0.3:
            sep = ""
        out.append(piece + sep)
        size += len(piece) + len(sep)
    return "".join(out)


TRICKY = [
    "", " ", "  ", "\n", "\r\n", "\r", "\t", "a", "Hello world", " Hello", "Hello  world's 12345\n\n  x",
    "I'M HERE, WE'LL SEE, IT'S 'S 'LL", "don't stop", "1234567890", "١٢٣٤٥٦", "3.14159265358979",
    "café CAFÉ cafe\u0301", "ΣΟΦΟΣ σοφός", "İstanbul ıi", "ﬁ ½ ①", "👩‍💻👨‍👩‍👧‍👦🏳️‍🌈👍🏽",
    "<|endoftext|>", "a<|endoftext|>b", "<|endoftext|><|endoftext|>", "<|begin_of_text|>Hello",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<s>hello</s>", "<s> hello", "hello <s>world",
    "<unk>", "x <mask> y", "x<mask>y", "  <mask>  z", "[FOO]", "a [FOO] b", "a[FOO]b", "<tool_call>{}</tool_call>",
    "<|reserved_special_token_7|>x", "<|end", "<s", "< s >",
    "    def f(x):\n        return x\n", "\n\n\n\n", "   \n   \n", "a\u00a0b\u3000c", "\u200b\u200b",
    "x\u0301\u0302\u0303", "a\u0085b\u1680c\u2028d\u2029e\u180ef\ufeffg\u205fh\u00a0\u00a0i", "\u2002\u2003x",
    "ǅungla ǈ ǋ ß ẞ ŉ İI", "ΌΣΟΣ ΣΑ Σ", "x\ufe0f\u20e3 1\ufe0f\u20e3", "\U000E0041\U000E007F", "\u0915\u094d\u0937\u0924\u094d\u0930\u093f\u092f", "สวัสดี", "안녕", "你好，世界！",
    "Ångström Å Å", "▁", "▁▁x", "a▁b", "\ufffd", "\U0001F600" * 5, "\U00010348\U0001D11E", "z" * 300,
    " " * 50 + "x", "a" + "\t" * 7 + "b", "quixotic Zanzibar Ωμέγα жираф 東京都 999 we'll",
]


def train(style_pre_tokenizer, text_lines, vocab_size, special_tokens, alphabet, limit_alphabet=None):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = style_pre_tokenizer
    kw = dict(vocab_size=vocab_size, special_tokens=special_tokens, initial_alphabet=alphabet, show_progress=False)
    if limit_alphabet is not None:
        kw["limit_alphabet"] = limit_alphabet
    tok.train_from_iterator(text_lines, trainers.BpeTrainer(**kw))
    return json.loads(tok.to_str())


def added(id_, content, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": normalized, "special": special}


def byte_level(add_prefix_space=False, use_regex=False):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True, "use_regex": use_regex}


def split(pattern):
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False}


def template(token, id_):
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": token, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {token: {"id": token, "ids": [id_], "tokens": [token]}}}


def base(model, normalizer, pre_tokenizer, post_processor, decoder, added_tokens):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens,
            "normalizer": normalizer, "pre_tokenizer": pre_tokenizer, "post_processor": post_processor,
            "decoder": decoder, "model": model}


def byte_level_styles(lines):
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    out = {}
    # Llama-3
    m = train(pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_PATTERN), "isolated"),
                                       pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
              lines, 3000, [], alphabet)["model"]
    m["ignore_merges"] = True
    # Whole words in the vocabulary that the merges do not build (tiktoken-converted vocabularies
    # have many): only ignore_merges gives them their own id.
    for w in ["quixotic", "Zanzibar", "Ωμέγα", "жираф", "東京都", "999", "'ll", "Dvořák"]:
        for form in (w, " " + w):
            key = "".join(BYTE_CHARS[b] for b in form.encode())
            if key not in m["vocab"]:
                m["vocab"][key] = len(m["vocab"])
    n = len(m["vocab"])
    specials = ["<|begin_of_text|>", "<|end_of_text|>"] + [f"<|reserved_special_token_{i}|>" for i in range(254)]
    out["llama3"] = base(m, None, {"type": "Sequence", "pretokenizers": [split(LLAMA3_PATTERN), byte_level()]},
                         {"type": "Sequence", "processors": [
                             {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
                             template("<|begin_of_text|>", n)]},
                         {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
                         [added(n + i, s) for i, s in enumerate(specials)])
    # Qwen2
    # Trained with Llama-3's digit groups, so that the vocabulary has multi-digit tokens (as the real
    # one does) and the file's one-digit rule is what keeps them apart.
    m = train(pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_PATTERN), "isolated"),
                                       pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
              [unicodedata.normalize("NFC", s) for s in lines], 3000, [], alphabet)["model"]
    m["ignore_merges"] = False
    n = len(m["vocab"])
    out["qwen2"] = base(m, {"type": "NFC"}, {"type": "Sequence", "pretokenizers": [split(QWEN2_PATTERN), byte_level()]},
                        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
                        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
                        [added(n, "<|endoftext|>"), added(n + 1, "<|im_start|>"), added(n + 2, "<|im_end|>"),
                         added(n + 3, "<tool_call>", special=False), added(n + 4, "</tool_call>", special=False)])
    # GPT-2 (<|endoftext|> in the model vocab, as in the real file) plus lstrip / single_word tokens.
    m = train(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), lines, 3000, ["<|endoftext|>"],
              alphabet)["model"]
    n = len(m["vocab"])
    out["gpt2"] = base(m, None, byte_level(False, True),
                       {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
                       byte_level(False, True),
                       [added(m["vocab"]["<|endoftext|>"], "<|endoftext|>", normalized=True),
                        added(n, "<mask>", lstrip=True),
                        added(n + 1, "[FOO]", special=False, single_word=True, rstrip=True)])
    prefix = json.loads(json.dumps(out["gpt2"]))
    prefix["pre_tokenizer"]["add_prefix_space"] = True
    out["gpt2_prefix_space"] = prefix
    legacy = json.loads(json.dumps(out["gpt2"]))
    legacy["model"]["merges"] = [" ".join(p) for p in legacy["model"]["merges"]]
    out["legacy_merges"] = legacy
    return out


def sentencepiece_styles(lines):
    # Trained on Metaspace pieces (SentencePiece never merges across "▁"), then laid out as the real
    # files: <unk>, <s>, </s>, <0x00>..<0xFF>, then the learned pieces.
    trained = train(pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True), lines, 3000,
                    [], [], limit_alphabet=300)["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = 3 + b
    for tok, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if tok not in vocab:
            vocab[tok] = len(vocab)
    model = {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
             "vocab": vocab, "merges": trained["merges"]}
    specials = [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")]
    sp_decoder = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    n = len(vocab)
    out = {}
    out["llama2"] = base(model, {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        None, template("<s>", 1), sp_decoder, specials + [added(n, "[FOO]", special=False, normalized=True)])
    metaspace_first = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    out["mistral3"] = base(model, None, metaspace_first, template("<s>", 1), metaspace_first, specials)
    m2 = dict(model)
    m2["unk_token"] = None
    out["metaspace"] = base(m2, None, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
                                       "split": True}, None,
                            {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
                            specials)
    out.update(component_styles(model, specials, sp_decoder, lines))
    return out


def component_styles(model, specials, sp_decoder, lines):
    # The other normalizers, pre-tokenizers, post-processors and decoders ropex implements, on the
    # byte-fallback model (every text gets ids whatever the pieces).
    def style(normalizer, pre_tokenizer, post_processor=None, decoder=sp_decoder, m=model):
        return base(m, normalizer, pre_tokenizer, post_processor, decoder, specials)

    def sp(pattern, behavior, invert=False, kind="Regex"):
        return {"type": "Split", "pattern": {kind: pattern}, "behavior": behavior, "invert": invert}

    seq_n = lambda *n: {"type": "Sequence", "normalizers": list(n)}
    seq_p = lambda *p: {"type": "Sequence", "pretokenizers": list(p)}
    out = {}
    out["c_nfkc_lower"] = style(seq_n({"type": "NFKC"}, {"type": "Lowercase"}),
                                seq_p(sp(r"\s+", "Removed"), {"type": "Digits", "individual_digits": True}),
                                {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1],
                                 "trim_offsets": True, "add_prefix_space": False},
                                {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": True})
    out["c_nfd_strip_accents"] = style(
        seq_n({"type": "NFD"}, {"type": "StripAccents"}, {"type": "Strip", "strip_left": True, "strip_right": True},
              {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "}),
        seq_p(sp(" ", "MergedWithPrevious", kind="String"), {"type": "Digits", "individual_digits": False}),
        {"type": "BertProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1]},
        # (stop 0: the library panics when start and stop overlap or a token is empty.)
        {"type": "Sequence", "decoders": [{"type": "Strip", "content": "▁", "start": 2, "stop": 0},
                                          {"type": "ByteFallback"}, {"type": "Fuse"}]})
    out["c_nfkd_next"] = style(seq_n({"type": "NFKD"}, {"type": "Prepend", "prepend": "▁"}),
                               seq_p(sp(r"[,.!?\s]", "MergedWithNext"), sp(r"\p{N}", "Contiguous")),
                               None, {"type": "Sequence", "decoders": [
                                   {"type": "Replace", "pattern": {"Regex": "▁+"}, "content": "_"},
                                   {"type": "ByteFallback"}]})
    out["c_invert_whitespace"] = style(None, seq_p(sp(r"\p{L}+", "Isolated", invert=True), {"type": "Whitespace"}),
                                       None, None)
    out["c_whitespace_split"] = style({"type": "NFC"}, seq_p({"type": "WhitespaceSplit"},
                                                            sp(r"[aeiou]", "Removed", invert=True)), None,
                                      {"type": "Sequence", "decoders": [{"type": "ByteFallback"}]})
    nofuse = dict(model)
    nofuse["byte_fallback"] = False
    nofuse["fuse_unk"] = False
    out["c_unk_nofuse"] = style(None, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
                                       "split": True}, None, sp_decoder, nofuse)
    fuse = dict(nofuse)
    fuse["fuse_unk"] = True
    out["c_unk_fuse"] = style(None, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
                                     "split": True}, None, sp_decoder, fuse)
    # continuing_subword_prefix / end_of_word_suffix, trained with them.
    tok = Tokenizer(models.BPE(unk_token="<unk>", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=2000, special_tokens=["<unk>"], show_progress=False,
                                                       continuing_subword_prefix="##", end_of_word_suffix="</w>",
                                                       limit_alphabet=200))
    affix = json.loads(tok.to_str())["model"]
    out["c_affixes"] = base(affix, {"type": "Lowercase"}, {"type": "Whitespace"}, None, None,
                            [added(0, "<unk>")])
    # GPT-2 with add_prefix_space (RoBERTa-style) and Llama-3 without ignore_merges.
    return out


def main():
    outdir = sys.argv[1]
    bench_bytes = int(sys.argv[sys.argv.index("--bench-bytes") + 1]) if "--bench-bytes" in sys.argv else 0
    os.makedirs(outdir, exist_ok=True)
    train_text = gen_text(1, 400_000, with_specials=False)
    lines = train_text.splitlines(keepends=True)
    files = {}
    files.update(byte_level_styles(lines))
    files.update(sentencepiece_styles(lines))

    held_out = gen_text(2, 150_000, with_specials=True)
    docs = []
    rng = random.Random(3)
    pos = 0
    while pos < len(held_out):
        k = rng.choice([1, 5, 20, 80, 300, 1500])
        docs.append(held_out[pos:pos + k])
        pos += k
    texts = TRICKY + docs + [held_out]

    expected = {}
    for name, data in sorted(files.items()):
        path = os.path.join(outdir, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
        tok = Tokenizer.from_file(path)
        cases = []
        for t in texts:
            plain = tok.encode(t, add_special_tokens=False).ids
            special = tok.encode(t, add_special_tokens=True).ids
            cases.append({"text": t, "ids": plain, "ids_special": special,
                          "decode": tok.decode(special, skip_special_tokens=False),
                          "decode_skip": tok.decode(special, skip_special_tokens=True)})
        rng = random.Random(4)
        vsize = tok.get_vocab_size(with_added_tokens=True)
        random_ids = [[rng.randrange(vsize) for _ in range(rng.randrange(1, 12))] for _ in range(300)]
        decodes = [{"ids": ids, "decode": tok.decode(ids, skip_special_tokens=False),
                    "decode_skip": tok.decode(ids, skip_special_tokens=True)} for ids in random_ids]
        expected[name] = {"file": path, "cases": cases, "decodes": decodes, "vocab_size": vsize}
    with open(os.path.join(outdir, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=True)
    if bench_bytes:
        # One encode of the whole text per style, timed (run with RAYON_NUM_THREADS=1
        # TOKENIZERS_PARALLELISM=false for one thread); best of three.
        import time
        text = gen_text(5, bench_bytes // 2, with_specials=False)
        with open(os.path.join(outdir, "bench.txt"), "w", encoding="utf-8") as f:
            f.write(text)
        for name in ["llama3", "qwen2", "gpt2", "llama2", "mistral3"]:
            tok = Tokenizer.from_file(os.path.join(outdir, name + ".json"))
            best = None
            for _ in range(3):
                t0 = time.perf_counter()
                n = len(tok.encode(text, add_special_tokens=False).ids)
                dt = time.perf_counter() - t0
                best = dt if best is None else min(best, dt)
            print(f"tokenizers {name}: {len(text.encode())} bytes -> {n} ids in {best * 1e3:.0f} ms")
            chunks = [text[i:i + 2000] for i in range(0, len(text), 2000)]
            t0 = time.perf_counter()
            for c in chunks:
                tok.encode(c, add_special_tokens=False)
            dt = time.perf_counter() - t0
            print(f"tokenizers {name}: {len(chunks)} documents of 2000 characters in {dt * 1e3:.0f} ms")
            import array
            with open(os.path.join(outdir, name + ".bench_ids"), "wb") as f:
                array.array("i", tok.encode(text, add_special_tokens=False).ids).tofile(f)


if __name__ == "__main__":
    main()
