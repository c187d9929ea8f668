#!/usr/bin/env python3
"""Trains small tokenizers in the style of Llama-3, Qwen2, Llama-2/Mistral, Phi-3 and Gemma, offline,
and writes what Hugging Face's `tokenizers` and `transformers` make of ~300 hard lines with them.

What it writes (under tests/fixtures/tokenizers/, committed; CI has no PyPI):
  lines.json                      the test lines (unicode, emoji with ZWJ, CJK, RTL, combining marks,
                                  NFC/NFD pairs, numbers, whitespace runs, added tokens in text, ...)
  <family>/                       a model folder: tokenizer.json (or tokenizer.model), tokenizer_config.json,
                                  generation_config.json, config.json (and special_tokens_map.json where
                                  an older transformers would have written one), as save_pretrained writes
                                  them, then edited where the family's hub files differ
  <family>/expected.json          per line: ids of tokenizers.Tokenizer.from_file(tokenizer.json) ("raw") and
                                  of AutoTokenizer.from_pretrained(folder) ("auto"), with add_special_tokens
                                  False and True, decode(skip_special_tokens=True/False); the folder's
                                  special ids and stop ids
  zoo/<name>.json + .expected.json  tokenizer.json files that exercise the other normalizers,
                                  pre-tokenizers, decoders, post-processors and added-token options
                                  ("raw" only)

Families (see FAMILIES below): llama3 (byte-level BPE, Llama-3's split regex, <|begin_of_text|> template),
qwen2 (NFC, Qwen2's regex, ChatML tokens, no BOS), llama2_legacy (Prepend/Replace normalizers, as
Llama-2's hub tokenizer.json), llama2_first (Metaspace pre-tokenizer, prepend_scheme first), mistral (the
same file under model_type mistral), phi3 (the legacy file, model_type phi3, rstrip chat tokens), gemma
(Replace normalizer, byte fallback, <start_of_turn>/<end_of_turn>), spm_llama and spm_llama_legacy
(a SentencePiece BPE tokenizer.model only, as transformers' LlamaTokenizer loads it).

Versions used to write the committed fixtures: tokenizers 0.23.3, transformers 5.24.0, sentencepiece 0.2.3
(printed again on each run; the script refuses other major versions of transformers).

transformers 5 has no sentencepiece-backed ("slow") LlamaTokenizer any more: AutoTokenizer builds a
`tokenizers` BPE from the .model's pieces (merges generated from the piece ids) with a Metaspace
pre-tokenizer, and for LlamaTokenizer/GemmaTokenizer/Qwen2Tokenizer it rebuilds the normalizer,
pre-tokenizer and decoder of a tokenizer.json from the class, keeping only its vocabulary, merges and
post-processor. "auto" records that. For the .model folders, the lines on which
SentencePieceProcessor.encode gives other ids than AutoTokenizer are listed ("spm_differs_on_lines"), for
comparison only (mostly leading spaces: SentencePiece adds its dummy prefix even before a space).

Rerun (no network needed):
  third_party/venv/bin/python tests/reference/tokenizers_reference.py [OUT_DIR]
OUT_DIR defaults to tests/fixtures/tokenizers. SentencePiece training is deterministic (one thread); the
`tokenizers` BPE trainer breaks ties between equally frequent pairs in hash order, so a rerun may write a
different (equally valid) vocabulary for some files. The expected outputs are always computed from the files
written in the same run, so a fixture folder is consistent whichever run wrote it.
"""
import copy
import json
import os
import random
import shutil
import sys
import tempfile
import unicodedata

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import sentencepiece as spm  # noqa: E402
import tokenizers  # noqa: E402
import transformers  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import AutoTokenizer, GenerationConfig  # noqa: E402

if int(transformers.__version__.split(".")[0]) != 5:
    sys.exit("this script describes transformers 5's loading rules; found transformers " + transformers.__version__)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fixtures", "tokenizers")

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# ---------------------------------------------------------------------------------------------
# Training text: phrases in several scripts, recombined with a fixed seed.
# ---------------------------------------------------------------------------------------------
PHRASES = [
    "The river Lethe flows through the underworld", "whoever drinks from it forgets everything",
    "Machine unlearning removes what a model learned", "the quick brown fox jumps over the lazy dog",
    "We can't, won't and shouldn't forget", "It's a model; they're tokens; I'm here; you'll see; he'd know",
    "Numbers like 3.14159, 2024-06-01 and 1,000,000 appear often", "Call 555-0199 or write to info@example.org",
    "def forget(model, data):\n    return model.unlearn(data)", "for (int i = 0; i < n; ++i) { sum += x[i]; }",
    "Der Fluss Lethe fließt durch die Unterwelt", "Wer daraus trinkt, vergisst alles Gewesene",
    "Le fleuve Léthé coule à travers les Enfers", "Les élèves étudient l'oubli et la mémoire",
    "El río Lete fluye por el inframundo", "¿Dónde está la biblioteca? ¡Aquí mismo!",
    "Река Лета течёт через подземный мир", "Кто пьёт из неё, забывает всё",
    "忘却の川レーテーは冥界を流れる", "機械学習モデルは忘れることを学ぶ", "遗忘之河流经冥界", "模型需要忘记一些数据",
    "레테 강은 저승을 흐른다", "모델은 잊어버리는 법을 배운다",
    "نهر ليثي يجري في العالم السفلي", "من يشرب منه ينسى كل شيء",
    "נהר הלתה זורם בשאול", "מי ששותה ממנו שוכח הכול",
    "Ο ποταμός Λήθη ρέει στον Άδη", "Η μνήμη και η λήθη",
    "लेथे नदी पाताल में बहती है", "मॉडल भूलना सीखता है",
    "Sông Lethe chảy qua âm phủ", "Mô hình học cách quên",
    "Tokens 🙂 and emoji 👩‍💻 🏳️‍🌈 👍🏽 appear too", "café naïve coöperate résumé façade",
    "ÀÉÎÕÜ àéîõü ßẞ ǅ ﬁ ﬂ ½ ² ℃ Ⅻ", "tab\tseparated\tvalues", "line one\nline two\r\nline three",
    "   leading and trailing spaces   ", "MIXED case WORDS and CamelCaseIdentifiers",
    "I'LL SEE IT'S THEY'RE WE'VE HE'D", "user: hello\nassistant: hi there!", "x = 42; y = x ** 2 // 7",
]


def corpus(n_lines=2500, seed=2405):
    rnd = random.Random(seed)
    out = []
    for _ in range(n_lines):
        k = rnd.randint(1, 3)
        parts = [rnd.choice(PHRASES) for _ in range(k)]
        sep = rnd.choice([" ", " ", ". ", ", ", "\n", "  "])
        line = sep.join(parts)
        if rnd.random() < 0.2:
            line = line.upper() if rnd.random() < 0.5 else line.lower()
        if rnd.random() < 0.15:
            line += " " + str(rnd.randint(0, 10 ** rnd.randint(1, 9)))
        out.append(line)
    return out


# ---------------------------------------------------------------------------------------------
# Test lines.
# ---------------------------------------------------------------------------------------------
def hard_lines(specials):
    """~300 lines; `specials` are added-token strings to put inside text."""
    L = [
        "", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n\n", " \n ", "\t\t x", "a", "A", "1", ".", "'", "'s",
        "Hello", " Hello", "Hello ", "  Hello  ", "Hello world", "Hello  world", "Hello   world", "Hello\tworld",
        "Hello\nworld", "Hello\r\nworld", "Hello\n\nworld", "Hello \n world", "hello world!", "HELLO WORLD!",
        "I'm here", "I'M HERE", "you're", "YOU'RE", "they'll", "THEY'LL", "we've", "WE'VE", "he'd", "HE'D",
        "it's", "IT'S", "don't", "DON'T", "can't stop", "'twas", "rock 'n' roll", "O'Neil's", "ſ's 'ſ",
        "The river Lethe flows through the underworld.", "whoever drinks from it forgets everything",
        "Machine unlearning removes what a model learned",
        "0", "7", "42", "123", "1234", "12345", "123456789", "3.14159", "1,000,000", "2024-06-01", "-17",
        "+49 30 1234567", "0x1F 0b1010 1e-9", "v1.2.3", "١٢٣ ٤٥٦", "१२३", "½ ¾ ² ³", "①②③", "Ⅻ ⅷ",
        "12345678901234567890", "a1b2c3", "abc123def456",
        "café", "cafe\u0301", "naïve", "nai\u0308ve", "Å", "A\u030a", "\u212b", "ﬁ ﬂ ﬃ", "ǅungla", "Ｆｕｌｌｗｉｄｔｈ",
        "e\u0301\u0301\u0301", "\u0301 starts with a mark", "Z\u0351\u0352\u0353algo", "한국어", "\u1112\u1161\u11ab",
        "日本語のテキスト", "中文文本测试", "忘却の川", "遗忘之河流经冥界", "ｶﾀｶﾅ", "한글 テスト 中文 mix",
        "مرحبا بالعالم", "نهر ليثي", "שלום עולם", "עברית ו-English", "العربية 123 عربي", "\u200fRTL mark\u200f",
        "Ελληνικά", "Привет, мир!", "ЁЖИК ёжик", "हिन्दी", "ภาษาไทย", "Tiếng Việt", "ქართული", "Հայերեն", "ⴰⵣⵓⵍ",
        "🙂", "🙂🙂🙂", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "👍🏽", "🇩🇪🇫🇷", "a🙂b", " 🙂 ", "❤️", "☃", "𝔾𝕠𝕠𝕕 𝕞𝕠𝕣𝕟𝕚𝕟𝕘",
        "\u200b zero width", "a\u00a0b", "a\u2003b", "a\u3000b", "x\u2028y", "x\u0085y", "x\u000by", "x\u000cy",
        "NBSP\u00a0\u00a0two", "\u00a0lead", "trail\u00a0",
        "def f(x):\n    return x + 1\n", "if (a && b || !c) { return; }", "<div class=\"x\">text</div>",
        "https://example.org/path?q=1&r=2#frag", "user@example.com", "C:\\Windows\\path", "$HOME/.config",
        "print('hello')", "x = [1, 2, 3]", "α + β = γ", "E = mc²", "∀x ∃y: x ≠ y", "→ ← ↑ ↓", "©®™", "§¶†‡",
        "...", "!!!", "???", "?!", "—–-", "«quoted»", "„German“", "「かっこ」", "(parens)", "[brackets]",
        "word.", "word,", "word;", "word:", "word!", "word?", "end.\n", "a.b.c", "a-b-c", "a_b_c", "a/b/c",
        "multiple     spaces     here", "trailing   ", "   leading", " \t mixed \t ", "\n leading newline",
        "tabs\t\tinside", "\r alone", "a\rb", "CR\r\r\rLF", "\n\n\n\n\n", "     ",
        "▁already has meta", "▁▁", "▁", "a▁b", "<0x41>", "<unk>", "<s>", "</s>", "<pad>", "<mask>", "[CLS]",
        "<|endoftext|>", "<|im_start|>", "<|eot_id|>", "<start_of_turn>", "<|end|>", "<|user|>",
    ]
    # Added tokens inside text, with and without spaces around them.
    for i, s in enumerate(specials):
        L += [s, "Hi" + s + "there", "Hi " + s + " there", "Hi  " + s + "  there", " " + s, s + " Hi"]
        if i % 3 == 0:
            L += [s + s, "Hi\n" + s + "\nthere", s + "\n", "a" + s + "b", "Hi " + s, s + "Hi"]
    # Combinations of scripts and spacings, deterministic.
    rnd = random.Random(7)
    pieces = ["Lethe", "river", "日本", "🙂", "42", "é", "Ж", "שלום", "\t", "  ", "\n", "don't", "ß", "x2", "—"]
    while len(L) < 330:
        k = rnd.randint(2, 6)
        L.append("".join(rnd.choice(pieces) + rnd.choice(["", " ", " ", "  "]) for _ in range(k)))
    # Long lines (speed and merges over long words).
    L.append(" ".join(PHRASES))
    L.append("a" * 300)
    L.append("🙂" * 40)
    L.append("1234567890" * 12)
    L.append("\n".join(PHRASES[:12]))
    return L


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1 if not path.endswith("expected.json") else None,
                  separators=None if not path.endswith("expected.json") else (",", ":"))
        f.write("\n")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def compact_lists(obj):
    """json.dumps with lists of ints on one line (keeps tokenizer.json files small and readable)."""
    return obj


def train_bpe(tok, trainer, text):
    tok.train_from_iterator(text, trainer=trainer, length=len(text))
    return tok


def byte_tokens():
    return ["<0x%02X>" % b for b in range(256)]


def train_spm(prefix, text, vocab_size, ids, user_defined=()):
    # Relative file names: the model records them, and a temporary folder's name would differ per run.
    cwd = os.getcwd()
    os.chdir(os.path.dirname(prefix))
    with open("corpus.txt", "w", encoding="utf-8") as f:
        for line in text:
            f.write(line.replace("\r", " ") + "\n")
    spm.SentencePieceTrainer.train(
        input="corpus.txt", model_prefix=os.path.basename(prefix), vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True,
        character_coverage=0.9995, normalization_rule_name="identity", remove_extra_whitespaces=False,
        split_digits=True, allow_whitespace_only_pieces=True, num_threads=1, minloglevel=2,
        user_defined_symbols=list(user_defined), hard_vocab_limit=False, seed_sentencepiece_size=100000,
        **ids)
    os.unlink("corpus.txt")
    os.chdir(cwd)


def save_folder(tok, folder, config, generation=None, tokenizer_config_edits=None, drop=()):
    os.makedirs(folder, exist_ok=True)
    tok.save_pretrained(folder)
    for name in drop:
        p = os.path.join(folder, name)
        if os.path.exists(p):
            os.remove(p)
    if tokenizer_config_edits:
        cfg_path = os.path.join(folder, "tokenizer_config.json")
        cfg = read_json(cfg_path)
        for k, v in tokenizer_config_edits.items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = v
        write_json(cfg_path, cfg)
    write_json(os.path.join(folder, "config.json"), config)
    if generation is not None:
        generation.save_pretrained(folder)
    chat = os.path.join(folder, "chat_template.jinja")
    if os.path.exists(chat):
        os.remove(chat)


def edit_tokenizer_json(folder, fn):
    p = os.path.join(folder, "tokenizer.json")
    j = read_json(p)
    fn(j)
    write_json(p, j)
    Tokenizer.from_file(p)  # still loads


# ---------------------------------------------------------------------------------------------
# Expected outputs
# ---------------------------------------------------------------------------------------------
def outputs(encode, decode, lines):
    """encode(text, add_special) -> ids; decode(ids, skip) -> str. The ids with special tokens are written
    as null where they are the folder's prefix + plain ids + suffix (most lines), to keep the files small."""
    plain = [encode(line, False) for line in lines]
    special = [encode(line, True) for line in lines]
    counts = {}
    for p, s in zip(plain, special):
        if p and len(s) >= len(p):
            for a in range(len(s) - len(p) + 1):
                if s[a:a + len(p)] == p:
                    key = (tuple(s[:a]), tuple(s[a + len(p):]))
                    counts[key] = counts.get(key, 0) + 1
                    break
    prefix, suffix = max(counts, key=counts.get) if counts else ((), ())
    prefix, suffix = list(prefix), list(suffix)
    packed = [None if s == prefix + p + suffix else s for p, s in zip(plain, special)]
    return {"plain": plain, "special": packed, "prefix": prefix, "suffix": suffix,
            "decode_skip": [decode(s, True) for s in special], "decode_keep": [decode(s, False) for s in special]}


def raw_outputs(path, lines):
    tok = Tokenizer.from_file(path)
    return outputs(lambda t, a: tok.encode(t, add_special_tokens=a).ids,
                   lambda ids, skip: tok.decode(ids, skip_special_tokens=skip), lines)


def auto_outputs(folder, lines):
    tok = AutoTokenizer.from_pretrained(folder)
    out = outputs(lambda t, a: tok(t, add_special_tokens=a)["input_ids"],
                  lambda ids, skip: tok.decode(ids, skip_special_tokens=skip), lines)
    out["class"] = type(tok).__name__

    def tid(t):
        return getattr(tok, t + "_token_id")
    out["bos_id"], out["eos_id"], out["pad_id"], out["unk_id"] = tid("bos"), tid("eos"), tid("pad"), tid("unk")
    out["vocab_size"] = len(tok)
    stops = set()
    if tok.eos_token_id is not None:
        stops.add(tok.eos_token_id)
    for name in ("generation_config.json", "config.json"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            e = read_json(p).get("eos_token_id")
            if isinstance(e, int):
                stops.add(e)
            elif isinstance(e, list):
                stops.update(e)
    out["stop_ids"] = sorted(stops)
    out["added"] = {str(k): v.content for k, v in sorted(tok.added_tokens_decoder.items())}
    out["special_tokens"] = [str(t) for t in tok.all_special_tokens]
    return out


def same(a, b):
    keys = ("plain", "special", "prefix", "suffix", "decode_skip", "decode_keep")
    return all(a[k] == b[k] for k in keys)


def write_expected(folder, lines, has_json=True, spm_model=None):
    exp = {"versions": {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__,
                        "sentencepiece": spm.__version__}}
    raw = raw_outputs(os.path.join(folder, "tokenizer.json"), lines) if has_json else None
    auto = auto_outputs(folder, lines)
    if raw is not None:
        exp["raw"] = raw
    meta = {k: auto.pop(k) for k in ("class", "bos_id", "eos_id", "pad_id", "unk_id", "vocab_size", "stop_ids",
                                     "added", "special_tokens")}
    exp["auto_meta"] = meta
    if raw is not None and same(raw, auto):
        exp["auto"] = "same as raw"
    else:
        exp["auto"] = auto
    if spm_model is not None:
        sp = spm.SentencePieceProcessor(model_file=spm_model)
        diff = [i for i, (l, a) in enumerate(zip(lines, auto["plain"])) if sp.encode(l) != a]
        exp["spm_differs_on_lines"] = diff  # for comparison only: transformers does not run sentencepiece
        print("   %s: SentencePieceProcessor.encode differs from AutoTokenizer on %d of %d lines"
              % (os.path.basename(folder), len(diff), len(lines)))
    write_json(os.path.join(folder, "expected.json"), exp)
    print("   %s: %s, raw %s, auto %s" % (os.path.basename(folder), meta["class"],
                                           "yes" if raw is not None else "-",
                                           "same as raw" if exp["auto"] == "same as raw" else "own"))


# ---------------------------------------------------------------------------------------------
# Families
# ---------------------------------------------------------------------------------------------
def make_llama3(text, lines_specials):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=700, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    train_bpe(tok, trainer, text)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
                "<|eot_id|>", "<|python_tag|>"]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    bot = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bot)])])
    t = transformers.TokenizersBackend(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    folder = os.path.join(OUT, "llama3")
    eot = tok.token_to_id("<|eot_id|>")
    eom = tok.token_to_id("<|eom_id|>")
    end = tok.token_to_id("<|end_of_text|>")
    save_folder(t, folder, {"model_type": "llama", "bos_token_id": bot, "eos_token_id": [end, eom, eot],
                            "vocab_size": tok.get_vocab_size()},
                GenerationConfig(bos_token_id=bot, eos_token_id=[end, eom, eot]),
                {"tokenizer_class": "PreTrainedTokenizerFast"})
    return folder, specials


def make_qwen2(text):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    train_bpe(tok, trainer, [unicodedata.normalize("NFC", l) for l in text])
    vocab = tok.get_vocab()
    merges = json.loads(tok.model.__getstate__() if False else tok.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
    t = transformers.Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                    unk_token=None, bos_token=None, errors="replace",
                                    extra_special_tokens=["<|im_start|>", "<|im_end|>"])
    t.add_tokens([AddedToken("<tool_call>", special=False, normalized=False),
                  AddedToken("</tool_call>", special=False, normalized=False),
                  AddedToken("Ǆ-token", special=False, normalized=True)])
    folder = os.path.join(OUT, "qwen2")
    end = t.convert_tokens_to_ids("<|endoftext|>")
    im_end = t.convert_tokens_to_ids("<|im_end|>")
    save_folder(t, folder, {"model_type": "qwen2", "bos_token_id": end, "eos_token_id": im_end,
                            "vocab_size": len(t)},
                GenerationConfig(bos_token_id=end, eos_token_id=[im_end, end], pad_token_id=end))
    return folder, ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "Ǆ-token", "ǆ-token"]


def make_spm_llama(text, work):
    prefix = os.path.join(work, "llama_spm")
    train_spm(prefix, text, 1000, dict(unk_id=0, bos_id=1, eos_id=2, pad_id=-1))
    return prefix + ".model"


def make_spm_folders(model_path):
    out = []
    for name, legacy in (("spm_llama", False), ("spm_llama_legacy", True)):
        folder = os.path.join(OUT, name)
        os.makedirs(folder, exist_ok=True)
        shutil.copy(model_path, os.path.join(folder, "tokenizer.model"))
        cfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
               "unk_token": "<unk>", "pad_token": None, "legacy": legacy, "clean_up_tokenization_spaces": False,
               "tokenizer_class": "LlamaTokenizer", "model_max_length": 4096}
        if not legacy:
            # As transformers 4.x wrote it (AddedToken objects and added_tokens_decoder).
            at = lambda c: {"__type": "AddedToken", "content": c, "lstrip": False, "normalized": False,
                            "rstrip": False, "single_word": False, "special": True}
            cfg["bos_token"], cfg["eos_token"], cfg["unk_token"] = at("<s>"), at("</s>"), at("<unk>")
            cfg["added_tokens_decoder"] = {str(i): {k: v for k, v in at(c).items() if k != "__type"}
                                           for i, c in ((0, "<unk>"), (1, "<s>"), (2, "</s>"))}
        else:
            # An older folder: special tokens in special_tokens_map.json only.
            write_json(os.path.join(folder, "special_tokens_map.json"),
                       {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"})
            for k in ("bos_token", "eos_token", "unk_token", "pad_token"):
                cfg.pop(k)
        write_json(os.path.join(folder, "tokenizer_config.json"), cfg)
        write_json(os.path.join(folder, "config.json"), {"model_type": "llama", "bos_token_id": 1, "eos_token_id": 2,
                                                         "vocab_size": 1000})
        GenerationConfig(bos_token_id=1, eos_token_id=2).save_pretrained(folder)
        out.append(folder)
    return out


def make_llama2_family(model_path):
    """Llama-2 / Mistral / Phi-3 style tokenizer.json files from the SentencePiece model."""
    base = os.path.join(OUT, "_tmp_llama_fast")
    os.makedirs(base, exist_ok=True)
    shutil.copy(model_path, os.path.join(base, "tokenizer.model"))
    write_json(os.path.join(base, "tokenizer_config.json"), {"tokenizer_class": "LlamaTokenizer", "legacy": False,
                                                              "add_bos_token": True})
    t = transformers.LlamaTokenizer.from_pretrained(base, legacy=False)
    shutil.rmtree(base)
    folders = []

    # (c1) llama2_legacy: Prepend/Replace normalizer file, class LlamaTokenizer, legacy true.
    f = os.path.join(OUT, "llama2_legacy")
    save_folder(copy.deepcopy(t), f, {"model_type": "llama", "bos_token_id": 1, "eos_token_id": 2, "vocab_size": 1000},
                GenerationConfig(bos_token_id=1, eos_token_id=2),
                {"tokenizer_class": "LlamaTokenizer", "legacy": True, "add_bos_token": True, "add_eos_token": False},
                drop=("tokenizer.model",))

    def legacy_pipeline(j):
        j["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                                {"type": "Replace", "pattern": {"String": " "},
                                                                 "content": "▁"}]}
        j["pre_tokenizer"] = None
        j["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
        j["model"]["unk_token"] = "<unk>"
        j["post_processor"] = {"type": "TemplateProcessing",
                               "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                          {"Sequence": {"id": "A", "type_id": 0}}],
                               "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                        {"Sequence": {"id": "A", "type_id": 0}},
                                        {"SpecialToken": {"id": "<s>", "type_id": 1}},
                                        {"Sequence": {"id": "B", "type_id": 1}}],
                               "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    edit_tokenizer_json(f, legacy_pipeline)
    folders.append(f)

    # (c2) llama2_first: Metaspace(prepend first) file, class LlamaTokenizer, legacy false: the class rebuilds it.
    f = os.path.join(OUT, "llama2_first")
    save_folder(copy.deepcopy(t), f, {"model_type": "llama", "bos_token_id": 1, "eos_token_id": 2, "vocab_size": 1000},
                GenerationConfig(bos_token_id=1, eos_token_id=2),
                {"tokenizer_class": "LlamaTokenizerFast", "legacy": False, "add_bos_token": True, "add_eos_token": True},
                drop=("tokenizer.model",))

    def first_pipeline(j):
        j["model"]["unk_token"] = "<unk>"
        j["post_processor"] = {"type": "TemplateProcessing",
                               "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                          {"Sequence": {"id": "A", "type_id": 0}}],
                               "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                        {"Sequence": {"id": "A", "type_id": 0}},
                                        {"SpecialToken": {"id": "<s>", "type_id": 1}},
                                        {"Sequence": {"id": "B", "type_id": 1}}],
                               "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    edit_tokenizer_json(f, first_pipeline)
    folders.append(f)

    # (c3) mistral: the Metaspace file under model_type mistral (AutoTokenizer uses the file as it is).
    f = os.path.join(OUT, "mistral")
    shutil.copytree(os.path.join(OUT, "llama2_first"), f, dirs_exist_ok=True)
    write_json(os.path.join(f, "config.json"), {"model_type": "mistral", "bos_token_id": 1, "eos_token_id": 2,
                                                "vocab_size": 1000})
    cfg = read_json(os.path.join(f, "tokenizer_config.json"))
    cfg["tokenizer_class"] = "LlamaTokenizer"
    write_json(os.path.join(f, "tokenizer_config.json"), cfg)
    folders.append(f)

    # (c4) phi3: legacy file plus chat tokens with rstrip, model_type phi3.
    f = os.path.join(OUT, "phi3")
    shutil.copytree(os.path.join(OUT, "llama2_legacy"), f, dirs_exist_ok=True)
    phi = ["<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>", "<|placeholder3|>",
           "<|placeholder4|>", "<|system|>", "<|end|>", "<|placeholder5|>", "<|placeholder6|>", "<|user|>"]
    tj = Tokenizer.from_file(os.path.join(f, "tokenizer.json"))
    tj.add_special_tokens([AddedToken(s, special=True, normalized=False, rstrip=(s != "<|endoftext|>"),
                                      lstrip=False, single_word=False) for s in phi])
    tj.add_tokens([AddedToken("Lethe", special=False, normalized=True, single_word=True),
                   AddedToken("flows", special=False, normalized=False, lstrip=True)])
    tj.save(os.path.join(f, "tokenizer.json"))
    ids = {s: tj.token_to_id(s) for s in phi}
    cfg = read_json(os.path.join(f, "tokenizer_config.json"))
    cfg["eos_token"] = "<|endoftext|>"
    cfg["pad_token"] = "<|endoftext|>"
    cfg["legacy"] = False
    cfg["tokenizer_class"] = "LlamaTokenizer"
    dec = cfg.get("added_tokens_decoder", {})
    for s in phi:
        dec[str(ids[s])] = {"content": s, "lstrip": False, "normalized": False, "rstrip": s != "<|endoftext|>",
                            "single_word": False, "special": True}
    for s, extra in (("Lethe", {"normalized": True, "single_word": True}), ("flows", {"lstrip": True})):
        d = {"content": s, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": False}
        d.update(extra)
        dec[str(tj.token_to_id(s))] = d
    cfg["added_tokens_decoder"] = dec
    write_json(os.path.join(f, "tokenizer_config.json"), cfg)
    write_json(os.path.join(f, "config.json"), {"model_type": "phi3", "bos_token_id": 1, "eos_token_id": ids["<|endoftext|>"],
                                                "pad_token_id": ids["<|endoftext|>"], "vocab_size": tj.get_vocab_size()})
    GenerationConfig(bos_token_id=1, eos_token_id=[ids["<|endoftext|>"], ids["<|assistant|>"], ids["<|end|>"]],
                     pad_token_id=ids["<|endoftext|>"]).save_pretrained(f)
    folders.append(f)
    return folders, ["<s>", "</s>", "<unk>", "<|end|>", "<|user|>", "<|assistant|>", "Lethe", "flows"]


def make_variants():
    """Folders whose configs make transformers depart from the tokenizer.json."""
    out = []
    # LlamaTokenizer without a prefix space and a file without a post-processor (so: no BOS).
    f = os.path.join(OUT, "llama2_noprefix")
    shutil.copytree(os.path.join(OUT, "llama2_first"), f, dirs_exist_ok=True)
    cfg = read_json(os.path.join(f, "tokenizer_config.json"))
    cfg["add_prefix_space"] = False
    write_json(os.path.join(f, "tokenizer_config.json"), cfg)

    def no_post(j):
        j["post_processor"] = None
    edit_tokenizer_json(f, no_post)
    out.append(f)
    # TokenizersBackend: added_tokens_decoder changes flags; a vocabulary token named as mask_token.
    f = os.path.join(OUT, "llama3_flags")
    shutil.copytree(os.path.join(OUT, "llama3"), f, dirs_exist_ok=True)
    cfg = read_json(os.path.join(f, "tokenizer_config.json"))
    tj = Tokenizer.from_file(os.path.join(f, "tokenizer.json"))
    eot = tj.token_to_id("<|eot_id|>")
    dec = cfg.get("added_tokens_decoder") or {str(i): {"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized,
                                                         "rstrip": t.rstrip, "single_word": t.single_word,
                                                         "special": t.special}
                                                for i, t in tj.get_added_tokens_decoder().items()}
    dec[str(eot)] = {"content": "<|eot_id|>", "lstrip": True, "normalized": False, "rstrip": True, "single_word": False,
                     "special": True}
    cfg["added_tokens_decoder"] = dec
    cfg["mask_token"] = "ing"
    cfg["image_token"] = "<|python_tag|>"
    write_json(os.path.join(f, "tokenizer_config.json"), cfg)
    out.append(f)
    return out, ["ing"]


def make_gemma(text, work):
    prefix = os.path.join(work, "gemma_spm")
    train_spm(prefix, text, 900, dict(pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>",
                                      bos_piece="<bos>", unk_piece="<unk>"),
              user_defined=("<mask>", "<start_of_turn>", "<end_of_turn>"))
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    scores = {sp.id_to_piece(i): sp.get_score(i) for i in range(sp.get_piece_size())}
    merges = transformers.tokenization_utils_base.generate_merges(vocab, scores)
    t = transformers.GemmaTokenizer(vocab=vocab, merges=merges, extra_special_tokens=["<start_of_turn>", "<end_of_turn>"])
    folder = os.path.join(OUT, "gemma")
    save_folder(t, folder, {"model_type": "gemma", "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0,
                            "vocab_size": len(t)},
                GenerationConfig(bos_token_id=2, eos_token_id=[1, vocab["<end_of_turn>"]], pad_token_id=0),
                {"add_bos_token": True, "add_eos_token": False})

    def gemma_file(j):  # as Gemma's hub tokenizer.json: no pre-tokenizer, <bos> template
        j["pre_tokenizer"] = None
        j["post_processor"] = {"type": "TemplateProcessing",
                               "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                                          {"Sequence": {"id": "A", "type_id": 0}}],
                               "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                                        {"Sequence": {"id": "A", "type_id": 0}},
                                        {"SpecialToken": {"id": "<bos>", "type_id": 1}},
                                        {"Sequence": {"id": "B", "type_id": 1}}],
                               "special_tokens": {"<bos>": {"id": "<bos>", "ids": [vocab["<bos>"]], "tokens": ["<bos>"]}}}
    edit_tokenizer_json(folder, gemma_file)
    return folder, ["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<mask>", "<pad>"]


# ---------------------------------------------------------------------------------------------
# Zoo: the other pipeline components on one trained vocabulary.
# ---------------------------------------------------------------------------------------------
def make_zoo(text, lines):
    base = Tokenizer(models.BPE(unk_token="[UNK]"))
    base.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    base.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=600, min_frequency=2, show_progress=False,
                                  special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"])
    train_bpe(base, trainer, text)
    base_json = json.loads(base.to_str())
    blevel = Tokenizer(models.BPE())
    blevel.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    train_bpe(blevel, trainers.BpeTrainer(vocab_size=500, show_progress=False,
                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()), text)
    blevel_json = json.loads(blevel.to_str())

    def with_(j, **parts):
        j = copy.deepcopy(j)
        for k, v in parts.items():
            j[k] = v
        return j

    def added(content, i, **kw):
        d = {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": True, "special": False}
        d.update(kw)
        return d

    n = len(base_json["model"]["vocab"])
    nb = len(blevel_json["model"]["vocab"])
    zoo = {
        "whitespace_bert": with_(base_json, normalizer={"type": "BertNormalizer", "clean_text": True,
                                                        "handle_chinese_chars": True, "strip_accents": None,
                                                        "lowercase": True},
                                 pre_tokenizer={"type": "BertPreTokenizer"},
                                 post_processor={"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
                                 decoder={"type": "BPEDecoder", "suffix": "</w>"}),
        "nfd_strip_accents": with_(base_json, normalizer={"type": "Sequence", "normalizers": [
            {"type": "NFD"}, {"type": "StripAccents"}, {"type": "Lowercase"}, {"type": "Strip", "strip_left": True,
                                                                                "strip_right": True}]},
            pre_tokenizer={"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"},
                                                                  {"type": "Punctuation", "behavior": "Contiguous"},
                                                                  {"type": "Digits", "individual_digits": True}]},
            post_processor={"type": "RobertaProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1],
                            "trim_offsets": True, "add_prefix_space": False}),
        "nfkd_replace_regex": with_(base_json, normalizer={"type": "Sequence", "normalizers": [
            {"type": "NFKD"}, {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Replace", "pattern": {"Regex": "[0-9]"}, "content": "#"}, {"type": "Lowercase"}]},
            pre_tokenizer={"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"String": " "}, "behavior": "Removed", "invert": False},
                {"type": "Digits", "individual_digits": False}]}),
        "split_behaviours": with_(base_json, normalizer={"type": "NFC"}, pre_tokenizer={
            "type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": "[,.;:!?]"}, "behavior": "MergedWithPrevious", "invert": False},
                {"type": "Split", "pattern": {"String": "-"}, "behavior": "MergedWithNext", "invert": False},
                {"type": "Split", "pattern": {"Regex": "\\p{Han}+|\\p{Hiragana}+|\\p{Katakana}+"}, "behavior": "Isolated",
                 "invert": False},
                {"type": "Split", "pattern": {"Regex": "\\d+"}, "behavior": "Contiguous", "invert": False},
                {"type": "Split", "pattern": {"Regex": "\\S+"}, "behavior": "Removed", "invert": True}]},
            added_tokens=base_json["added_tokens"] + [
                added("<mask>", n, single_word=True, lstrip=True, rstrip=True, special=True),
                added("hello", n + 1, normalized=True),
                added("<|im_end|>", n + 2, normalized=False, special=True, rstrip=True),
                added("Hi", n + 3, normalized=False, lstrip=True)]),
        "metaspace_split": with_(base_json, normalizer={"type": "Sequence", "normalizers": [
            {"type": "Strip", "strip_left": False, "strip_right": True}, {"type": "Prepend", "prepend": "»"}]},
            pre_tokenizer={"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
            decoder={"type": "Metaspace", "replacement": "▁", "str_rep": "▁", "add_prefix_space": True},
            added_tokens=base_json["added_tokens"] + [added("[PAD]x", n, normalized=False, special=True)]),
        "metaspace_never_legacy": with_(base_json, normalizer=None,
                                        pre_tokenizer={"type": "Metaspace", "replacement": "▁", "add_prefix_space": False,
                                                       "prepend_scheme": "never"},
                                        decoder={"type": "Sequence", "decoders": [
                                            {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never",
                                             "split": False},
                                            {"type": "Strip", "content": "x", "start": 2, "stop": 0},
                                            {"type": "Fuse"}]}),
        "bytelevel_regex": with_(blevel_json, normalizer={"type": "NFKC"},
                                 pre_tokenizer={"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                                "use_regex": True},
                                 decoder={"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                          "use_regex": True},
                                 post_processor={"type": "TemplateProcessing",
                                                 "single": [{"SpecialToken": {"id": "<|bos|>", "type_id": 0}},
                                                            {"Sequence": {"id": "A", "type_id": 0}},
                                                            {"SpecialToken": {"id": "<|eos|>", "type_id": 0}}],
                                                 "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                                                          {"Sequence": {"id": "B", "type_id": 1}}],
                                                 "special_tokens": {
                                                     "<|bos|>": {"id": "<|bos|>", "ids": [nb], "tokens": ["<|bos|>"]},
                                                     "<|eos|>": {"id": "<|eos|>", "ids": [nb + 1, nb + 2],
                                                                 "tokens": ["<|eos|>", "<|eos2|>"]}}},
                                 added_tokens=[added("<|bos|>", nb, special=True, normalized=False),
                                               added("<|eos|>", nb + 1, special=True, normalized=False),
                                               added("<|eos2|>", nb + 2, special=True, normalized=False),
                                               added("ﬁ", nb + 3, normalized=True),
                                               added("🙂", nb + 4, normalized=False, rstrip=True, lstrip=True)]),
        "bytelevel_no_regex_unk": with_(blevel_json, normalizer={"type": "Replace", "pattern": {"String": "ab"},
                                                                 "content": "ba"},
                                        pre_tokenizer={"type": "Sequence", "pretokenizers": [
                                            {"type": "WhitespaceSplit"},
                                            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                             "use_regex": False}]},
                                        decoder={"type": "Sequence", "decoders": [
                                            {"type": "Replace", "pattern": {"String": "Ġ"}, "content": "_"},
                                            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                             "use_regex": True}]},
                                        post_processor={"type": "Sequence", "processors": [
                                            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                                             "use_regex": True}]}),
        "misc_stages": with_(base_json, normalizer={"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "!"}, {"type": "Lowercase"}]},
            pre_tokenizer={"type": "Sequence", "pretokenizers": [{"type": "CharDelimiterSplit", "delimiter": "e"},
                                                                  {"type": "Whitespace"}]},
            decoder={"type": "WordPiece", "prefix": "##", "cleanup": True}),
        "bytelevel_normalizer": with_(blevel_json, normalizer={"type": "ByteLevel"},
                                      pre_tokenizer={"type": "Split", "pattern": {"Regex": "\u0120"},
                                                     "behavior": "MergedWithNext", "invert": False},
                                      decoder={"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                               "use_regex": True}),
        "char_bpe_suffix": None,  # filled below
    }
    # BPE with a continuing-subword prefix and end-of-word suffix, and an unk without fusing.
    csb = Tokenizer(models.BPE(unk_token="<unk>", continuing_subword_prefix="##", end_of_word_suffix="</w>",
                               fuse_unk=False))
    csb.normalizer = normalizers.Lowercase()
    csb.pre_tokenizer = pre_tokenizers.Whitespace()
    train_bpe(csb, trainers.BpeTrainer(vocab_size=400, show_progress=False, special_tokens=["<unk>"],
                                       continuing_subword_prefix="##", end_of_word_suffix="</w>",
                                       limit_alphabet=60), text)
    zoo["char_bpe_suffix"] = with_(json.loads(csb.to_str()), decoder={"type": "BPEDecoder", "suffix": "</w>"})
    # Byte fallback with a fused unk and no byte for some bytes.
    fb = copy.deepcopy(base_json)
    vocab = fb["model"]["vocab"]
    nxt = max(vocab.values()) + 1
    for b in range(0x20, 0xF0):
        vocab["<0x%02X>" % b] = nxt
        nxt += 1
    fb["model"]["byte_fallback"] = True
    fb["model"]["fuse_unk"] = True
    fb["normalizer"] = None
    fb["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}]}
    fb["decoder"] = {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]}
    zoo["byte_fallback_unk"] = fb

    os.makedirs(os.path.join(OUT, "zoo"), exist_ok=True)
    for name, j in sorted(zoo.items()):
        p = os.path.join(OUT, "zoo", name + ".json")
        Tokenizer.from_str(json.dumps(j)).save(p)  # the library's own serialization
        exp = {"versions": {"tokenizers": tokenizers.__version__}, "raw": raw_outputs(p, lines)}
        write_json(os.path.join(OUT, "zoo", name + ".expected.json"), exp)
        print("   zoo/%s" % name)


def main():
    print("tokenizers %s, transformers %s, sentencepiece %s -> %s" % (
        tokenizers.__version__, transformers.__version__, spm.__version__, OUT))
    for d in os.listdir(OUT) if os.path.isdir(OUT) else []:
        p = os.path.join(OUT, d)
        if os.path.isdir(p):
            shutil.rmtree(p)
    os.makedirs(OUT, exist_ok=True)
    text = corpus()
    work = tempfile.mkdtemp()
    try:
        specials = []
        llama3, s = make_llama3(text, None)
        specials += ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>"]
        qwen2, s2 = make_qwen2(text)
        specials += s2
        spm_model = make_spm_llama(text, work)
        spm_folders = make_spm_folders(spm_model)
        llama2_folders, s3 = make_llama2_family(spm_model)
        specials += s3
        gemma, s4 = make_gemma(text, work)
        specials += s4
        variants, s5 = make_variants()
        specials += s5
        seen = set()
        specials = [x for x in specials if not (x in seen or seen.add(x))]
        lines = hard_lines(specials)
        write_json(os.path.join(OUT, "lines.json"), lines)
        print("%d lines" % len(lines))
        for f in [llama3, qwen2] + llama2_folders + [gemma] + variants:
            write_expected(f, lines)
        for f in spm_folders:
            write_expected(f, lines, has_json=False, spm_model=os.path.join(f, "tokenizer.model"))
        make_zoo(text, lines)
    finally:
        shutil.rmtree(work)
    total = 0
    for dp, _, fs in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(dp, f)) for f in fs)
    print("fixtures: %.2f MB" % (total / 1e6))


if __name__ == "__main__":
    main()
