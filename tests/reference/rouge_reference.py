#!/usr/bin/env python3
"""Google's rouge-score (and the NLTK Porter stemmer it uses) on Lethe's own texts, for
core/eval/porter_stemmer.cpp and the ROUGE functions of core/eval/bleu.cpp;
tests/unit/test_rouge_stem.cpp compares against them.

Writes, into OUT_DIR (tests/fixtures/rouge),

  stems.json  {"stems": {word: nltk.stem.porter.PorterStemmer().stem(word)}} over the words of the
              project's text files under datasets/ and resources/ (tokenised the rouge way) and
              words generated here to reach every rule of the stemmer: stems of my choosing with
              every suffix of the rule tables (and some two-suffix chains), words ending in y,
              double consonants, every short string over a small alphabet, NLTK's irregular
              forms, digits, and pseudo-random letter strings.
  pairs.json  {"pairs": [{"kind", "hyp", "ref", "plain": S, "stem": S}]} where S is
              {"rouge1": {"precision", "recall", "f1"}, "rougeL": {...}} from
              rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False / True).score(ref, hyp)
              (open-unlearning calls score(ground_truth, generation)); the pairs are sentences of
              the same texts with perturbations: dropped, reordered, repeated, inflected and
              replaced words, punctuation, case, non-ASCII characters, empty strings.

Both record "script", "command" and the versions of rouge_score, nltk and Python. Regenerate with

    third_party/venv/bin/pip install rouge-score
    third_party/venv/bin/python tests/reference/rouge_reference.py tests/fixtures/rouge
"""
import csv
import importlib.metadata
import io
import json
import os
import platform
import random
import re
import subprocess
import sys

import nltk
from nltk.stem.porter import PorterStemmer
from rouge_score import rouge_scorer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = "tests/reference/rouge_reference.py"
TEXT_EXTENSIONS = ("md", "txt", "csv", "jsonl", "json", "desktop")


def header(out_dir):
    return {
        "script": SCRIPT,
        "command": f"third_party/venv/bin/python {SCRIPT} {os.path.relpath(out_dir, ROOT)}",
        "rouge_score": importlib.metadata.version("rouge-score"),
        "nltk": nltk.__version__,
        "python": platform.python_version(),
    }


def project_files():
    """The tracked text files under datasets/ and resources/, sorted."""
    out = subprocess.check_output(["git", "ls-files", "datasets", "resources"], cwd=ROOT, text=True)
    return sorted(f for f in out.split() if f.rsplit(".", 1)[-1] in TEXT_EXTENSIONS)


def json_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_strings(v)


def project_passages():
    """Natural-language strings of the project's texts: lines of .txt/.md, cells of .csv, string
    values of .json/.jsonl."""
    passages = []
    for f in project_files():
        text = open(os.path.join(ROOT, f), encoding="utf-8").read()
        ext = f.rsplit(".", 1)[-1]
        if ext == "csv":
            for row in csv.reader(io.StringIO(text)):
                passages.extend(row)
        elif ext == "jsonl":
            for line in text.splitlines():
                if line.strip():
                    passages.extend(json_strings(json.loads(line)))
        elif ext == "json":
            passages.extend(json_strings(json.loads(text)))
        else:
            passages.extend(text.splitlines())
    return [p.strip() for p in passages if p.strip()]


def rouge_words(text):
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


# --- words for the stemmer -------------------------------------------------------------------

STEMS = ["relat", "condit", "hope", "gener", "sensit", "formal", "digit", "adopt", "feud", "rat", "val", "hesit",
         "conform", "radic", "differ", "vil", "analog", "predic", "oper", "decis", "call", "electr", "tripl", "good",
         "reviv", "allow", "infer", "airlin", "gyroscop", "adjust", "defens", "irrit", "replac", "depend", "homolog",
         "commun", "activ", "angular", "effect", "bowdler", "geo", "theo", "archaeo", "philo", "tr", "b", "ab", "o",
         "sing", "fil", "hop", "tann", "fizz", "hiss", "plaster", "motor", "agr", "f", "ceas", "prob", "control",
         "ro", "w", "ox", "ay"]

# Every suffix named in the rule tables of steps 1a-5b (and NLTK's additions).
SUFFIXES = ["", "s", "ss", "sses", "ies", "ied", "eed", "ed", "ing", "y", "at", "bl", "iz", "ational", "tional",
            "enci", "anci", "izer", "abli", "bli", "alli", "entli", "eli", "ousli", "ization", "ation", "ator",
            "alism", "iveness", "fulness", "ousness", "aliti", "iviti", "biliti", "fulli", "logi", "icate", "ative",
            "alize", "iciti", "ical", "ful", "ness", "al", "ance", "ence", "er", "ic", "able", "ible", "ant",
            "ement", "ment", "ent", "sion", "tion", "ion", "ou", "ism", "ate", "iti", "ous", "ive", "ize", "e",
            "ll", "le", "ly", "ally", "fully", "lessly", "ously", "ably", "ently", "ically", "ogy", "ogies"]

# Suffix chains: a step 2/3 suffix with an inflection that step 1 removes first.
CHAINS = [("ational", "ly"), ("tional", "ly"), ("ization", "s"), ("ation", "s"), ("ator", "s"), ("ful", "ness"),
          ("ous", "ness"), ("ive", "ness"), ("al", "ity"), ("al", "ities"), ("iv", "ities"), ("ic", "ally"),
          ("al", "ize"), ("al", "ized"), ("al", "izing"), ("iz", "ation"), ("ent", "ly"), ("ful", "ly"),
          ("al", "ly"), ("ic", "ate"), ("ic", "ated"), ("at", "ing"), ("bl", "ed"), ("iz", "ing"), ("ence", "s"),
          ("ment", "s"), ("ism", "s"), ("logi", "cal"), ("ness", "es"), ("abil", "ities"), ("y", "ing")]

Y_WORDS = ["happy", "enjoy", "spy", "fly", "try", "sky", "by", "toy", "syzygy", "yyyy", "yy", "y", "ay", "yay", "boy",
           "cry", "dry", "ivy", "tidy", "fancy", "yearly", "yelling", "obey", "obeyed", "playing", "played",
           "display", "destroying", "studying", "studied", "studies", "copying", "replies", "replied", "xyz",
           "rhythm", "rhythms", "crying", "eying", "dyeing", "yes", "yesterday", "bye", "ayy", "ayyy", "yayy",
           "employ", "employment", "journey", "journeys", "monkey", "valley", "apply", "reply", "supply", "ply"]

DOUBLE_WORDS = ["hopping", "hopped", "tanned", "falling", "hissing", "fizzed", "controll", "controlling", "roll",
                "rolling", "buzzing", "begged", "spill", "spilling", "stuffed", "fuzz", "filling", "filing",
                "failing", "feed", "agreed", "bled", "sing", "motoring", "plastered", "conflated", "troubled",
                "sized", "tapping", "taping", "planning", "plotted", "committed", "occurring", "referred",
                "dulled", "hummed", "shopping", "dropping", "running", "runs", "ran", "swimming", "getting"]

IRREGULAR = ["sky", "skies", "dying", "lying", "tying", "news", "innings", "inning", "outings", "outing", "cannings",
             "canning", "howe", "proceed", "exceed", "succeed", "die", "lie", "tie", "proceeds", "exceeding",
             "succeeded", "skied", "newsy"]

DIGIT_WORDS = ["2024", "1st", "2nd", "3rd", "4th", "mp3", "mp3s", "covid19", "abc123ing", "123ed", "4ever", "x2ies",
               "b12ational", "9ing", "0ed", "42s", "h2o", "a1", "1a", "b4", "1234", "v2ly", "99ness", "7y", "77y",
               "k8eed", "10ll", "2ation"]

FOUR_LETTER = ["ties", "dies", "lies", "pies", "died", "tied", "lied", "vied", "cies", "aied", "eies", "ssss",
               "sses", "seed", "need", "weed", "bees", "uses", "oses", "ably", "ally", "ogic", "logi", "bled"]


# Stems that get every suffix and chain; the rest of STEMS get a pseudo-random sample of them.
FULL_STEMS = STEMS[:9] + ["geo", "tr", "b", "hop", "control"]


def generated_words(rng):
    words = []
    endings = SUFFIXES + [a + b for a, b in CHAINS]
    for stem in STEMS:
        for ending in endings if stem in FULL_STEMS else rng.sample(endings, 10):
            words.append(stem + ending)
    words += Y_WORDS + DOUBLE_WORDS + IRREGULAR + DIGIT_WORDS + FOUR_LETTER
    # Every string of 1 to 3 letters over a small alphabet (the short-word guard, 'ies'/'ied').
    alphabet = "aeiysd"
    for a in alphabet:
        words.append(a)
        for b in alphabet:
            words.append(a + b)
            for c in alphabet:
                words.append(a + b + c)
    # Pseudo-random letter strings, ending in a rule's suffix half of the time.
    letters = "aeiouybcdlmnrstvwxz"
    for _ in range(250):
        w = "".join(rng.choice(letters) for _ in range(rng.randint(1, 9)))
        if rng.random() < 0.5:
            w += rng.choice(SUFFIXES)
        words.append(w)
    return words


# --- pairs ------------------------------------------------------------------------------------

INFLECT = ["s", "es", "ed", "ing", "ly", "ness", "ation", "ations", "er", "ers", "ful", "ment", "ize", "izing"]


def inflect(word, rng):
    if not word.isalpha():
        return word
    r = rng.random()
    if r < 0.15 and word.endswith("s") and len(word) > 3:
        return word[:-1]
    if r < 0.3 and word.endswith("ing") and len(word) > 5:
        return word[:-3] + rng.choice(["", "e", "ed", "s"])
    if r < 0.4 and word.endswith("e"):
        return word[:-1] + rng.choice(["ing", "ed", "ation"])
    if r < 0.5 and word.endswith("y") and len(word) > 3:
        return word[:-1] + rng.choice(["ies", "ied", "ily", "iness"])
    return word + rng.choice(INFLECT)


def perturb(sentence, kind, rng, others):
    words = sentence.split()
    if kind == "same":
        return sentence
    if kind == "drop":
        keep = [w for w in words if rng.random() > 0.3]
        return " ".join(keep)
    if kind == "reorder":
        w = words[:]
        if rng.random() < 0.5:
            rng.shuffle(w)
        else:
            for _ in range(max(1, len(w) // 3)):
                i = rng.randrange(len(w))
                j = min(len(w) - 1, i + 1)
                w[i], w[j] = w[j], w[i]
        return " ".join(w)
    if kind == "inflect":
        return " ".join(inflect(w, rng) if rng.random() < 0.5 else w for w in words)
    if kind == "punct":
        marks = [",", ".", "!", "?", "-", "--", "'s", "\"", "(", ")", ";", ":", "/", "_", "...", "&"]
        out = []
        for w in words:
            if rng.random() < 0.3:
                w = w + rng.choice(marks)
            if rng.random() < 0.1:
                w = rng.choice(marks) + w
            out.append(w)
        sep = rng.choice([" ", "  ", "\t", "\n", "-", ",", " , "])
        return sep.join(out)
    if kind == "case":
        style = rng.randrange(3)
        if style == 0:
            return sentence.upper()
        if style == 1:
            return sentence.title()
        return "".join(c.upper() if rng.random() < 0.5 else c for c in sentence)
    if kind == "replace":
        pool = rng.choice(others).split()
        return " ".join(rng.choice(pool) if rng.random() < 0.3 else w for w in words)
    if kind == "repeat":
        out = []
        for w in words:
            out.append(w)
            while rng.random() < 0.25:
                out.append(w)
        return " ".join(out)
    if kind == "unrelated":
        return rng.choice(others)
    if kind == "unicode":
        extra = ["caf\u00e9", "na\u00efve", "\u2014", "\u201cquoted\u201d", "\u212aelvin", "\u0130stanbul", "\u00c9t\u00e9",
                 "stra\u00dfe", "\u00a0", "\u4e2d\u6587", "\U0001F600", "\u00bd", "x\u00b2"]
        out = []
        for w in words:
            out.append(w)
            if rng.random() < 0.3:
                out.append(rng.choice(extra))
        return " ".join(out)
    if kind == "mixed":
        s = sentence
        for k in rng.sample(["drop", "reorder", "inflect", "punct", "case", "repeat"], 3):
            s = perturb(s, k, rng, others)
        return s
    raise ValueError(kind)


FIXED_PAIRS = [
    ("empty hyp", "", "The model forgot the book."),
    ("empty ref", "The model forgot the book.", ""),
    ("both empty", "", ""),
    ("whitespace", "   \t\n ", "running runs"),
    ("punctuation only", "?!...,;", "--"),
    ("hand", "running", "runs"),
    ("hand", "He was running home.", "He runs home."),
    ("hand", "the relational conditions", "relate condition"),
    ("hand", "happily happy", "happiness happi"),
    ("hand", "caresses ponies ties caress cats", "caress poni tie caress cat"),
    ("hand", "dying lying skies news", "die lie sky news"),
    ("hand", "the the the cat", "the cat the"),
    ("hand", "a b c d e", "e d c b a"),
    ("hand", "generalizations generalization", "generalize generally"),
    ("hand", "\u212aelvin temperatures", "kelvin temperature"),
    ("hand", "\u0130stanbul", "i stanbul"),
    ("hand", "don't won't can't", "don t won t can t"),
    ("hand", "2024-05-01 v1.2.3", "2024 05 01 v1 2 3"),
]


def main(out_dir):
    rng = random.Random(20240521)
    stemmer = PorterStemmer()
    passages = project_passages()

    vocab = set()
    for p in passages:
        vocab.update(rouge_words(p))
    for f in project_files():  # also the words of keys, names and markup
        vocab.update(rouge_words(open(os.path.join(ROOT, f), encoding="utf-8").read()))
    words = sorted(vocab | set(generated_words(rng)))
    stems = {w: stemmer.stem(w) for w in words}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "stems.json"), "w") as f:
        json.dump({**header(out_dir), "stems": stems}, f, indent=0, sort_keys=False)
        f.write("\n")

    sentences = []
    for p in passages:
        for s in re.split(r"(?<=[.!?])\s+", p):
            if len(s.split()) >= 3:
                sentences.append(s)
    sentences = sorted(set(sentences))
    kinds = ["same", "drop", "reorder", "inflect", "punct", "case", "replace", "repeat", "unrelated", "unicode",
             "mixed", "inflect", "mixed", "drop"]
    cases = list(FIXED_PAIRS)
    for i in range(290):
        ref = rng.choice(sentences)
        if rng.random() < 0.1:  # a few longer, multi-sentence references
            ref = ref + " " + rng.choice(sentences)
        kind = kinds[i % len(kinds)]
        hyp = perturb(ref, kind, rng, sentences)
        if rng.random() < 0.5 and kind not in ("same", "unrelated"):
            ref = perturb(ref, rng.choice(["case", "punct", "inflect"]), rng, sentences)
        cases.append((kind, hyp, ref))

    scorers = {name: rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=use) for name, use in
               (("plain", False), ("stem", True))}
    pairs = []
    for kind, hyp, ref in cases:
        entry = {"kind": kind, "hyp": hyp, "ref": ref}
        for name, scorer in scorers.items():
            s = scorer.score(ref, hyp)
            entry[name] = {t: {"precision": s[t].precision, "recall": s[t].recall, "f1": s[t].fmeasure}
                           for t in ("rouge1", "rougeL")}
        pairs.append(entry)
    with open(os.path.join(out_dir, "pairs.json"), "w") as f:  # one pair a line
        head = json.dumps(header(out_dir), indent=1, ensure_ascii=False)
        f.write(head[:-2] + ',\n "pairs": [\n')
        f.write(",\n".join(json.dumps(p, ensure_ascii=False) for p in pairs))
        f.write("\n ]\n}\n")
    differ = sum(1 for p in pairs if p["plain"] != p["stem"])
    print(f"rouge_reference: {len(stems)} stems ({sum(1 for w, s in stems.items() if w != s)} changed), "
          f"{len(pairs)} pairs ({differ} where stemming changes a score)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fixtures", "rouge"))
