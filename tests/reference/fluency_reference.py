#!/usr/bin/python3
"""The independent reference for Lethe's fluency measures (core/eval/fluency.h): answer_words,
is_plausible_word, answer_fluency (words, non-words, rep-2) and fluency() over a set of answers with
the default FluencyLimits, re-implemented from the definition written in that header's comment
(and only from it). Standard library only: unicodedata gives the general categories (letters =
L*, digits kept by trimming = Nd); whitespace is the Unicode White_Space property, listed below.

Writes the fixture tests/fixtures/fluency/fluency_reference.json that tests/unit/test_fluency.cpp
checks the C++ against:

    {"generator", "python", "command", "limits",
     "answers": [{"answer", "words", "plausible", "non_words", "repetition", "note"?}],
     "sets": [{"name", "answers", "expected": {"answers", "empty_rate", "repetition",
               "repetitive_rate", "non_word_rate", "collapsed", "reasons"}}]}

"reasons" lists which limits tripped ("empty", "repetitive", "non_words"); the C++ words its
reasons as sentences, so the test compares their number only. A "note" marks a case whose
expected value follows a literal reading of a point the header leaves open.

    python3 tests/reference/fluency_reference.py tests/fixtures/fluency/fluency_reference.json"""
import json
import os
import platform
import sys
import unicodedata

# The Unicode White_Space property (PropList.txt), every code point of it.
WHITE_SPACE = frozenset([chr(c) for c in range(0x09, 0x0E)] + [
    "\u0020", "\u0085", "\u00a0", "\u1680"
] + [chr(c) for c in range(0x2000, 0x200B)] + ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"])

ASCII_DIGITS = frozenset("0123456789")
ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
NUMBER_SEPARATORS = frozenset(".,:/-")
# The joins of letter parts: apostrophe, right single quotation mark, hyphen-minus, hyphen, dot.
PART_SEPARATORS = frozenset(["'", "\u2019", "-", "\u2010", "."])
APOSTROPHES = frozenset(["'", "\u2019"])
CLITICS = frozenset(["s", "t", "d", "m", "ll", "re", "ve"])
VOWELS = frozenset("aeiouy")
SINGLE_LETTER_WORDS = frozenset(["a", "A", "I", "o", "O"])
NO_VOWEL_WORDS = frozenset(["mr", "mrs", "ms", "dr", "st", "vs", "hmm", "shh", "nth", "pst", "brr"])

# FluencyLimits' defaults.
LIMITS = {"repetitive_answer": 0.5, "empty_rate": 0.5, "repetitive_rate": 0.5, "non_word_rate": 0.25}


def is_letter(ch):
    """Letters: L* and M* (a combining mark belongs to the letter it follows)."""
    cat = unicodedata.category(ch)
    return cat.startswith("L") or cat.startswith("M")


def is_kept(ch):
    """A character trimming keeps: a letter (L*, M*) or a decimal digit (Nd)."""
    return is_letter(ch) or unicodedata.category(ch) == "Nd"


def tokens(answer):
    """Splits at White_Space characters; runs of them make no empty tokens."""
    out, cur = [], []
    for ch in answer:
        if ch in WHITE_SPACE:
            if cur:
                out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def answer_words(answer):
    words = []
    for tok in tokens(answer):
        b, e = 0, len(tok)
        while b < e and not is_kept(tok[b]):
            b += 1
        while e > b and not is_kept(tok[e - 1]):
            e -= 1
        if b < e:
            words.append(tok[b:e])
    return words


def split_joined(word, is_part_char, separators):
    """(parts, joins) when `word` is runs of is_part_char joined by single separators, else None."""
    parts, joins, cur = [], [], []
    for ch in word:
        if is_part_char(ch):
            cur.append(ch)
        elif ch in separators:
            if not cur:
                return None  # a leading separator or two in a row
            parts.append("".join(cur))
            joins.append(ch)
            cur = []
        else:
            return None
    if not cur:
        return None  # a trailing separator (or nothing)
    parts.append("".join(cur))
    return parts, joins


def is_number(word):
    return split_joined(word, lambda c: c in ASCII_DIGITS, NUMBER_SEPARATORS) is not None


def is_digits_then_letters(word):
    i = 0
    while i < len(word) and word[i] in ASCII_DIGITS:
        i += 1
    rest = word[i:]
    return i > 0 and 1 <= len(rest) <= 3 and all(c in ASCII_LETTERS for c in rest)


def has_triple(part):
    low = part.lower()
    return any(low[i] == low[i + 1] == low[i + 2] for i in range(len(low) - 2))


def has_six_consonants(part):
    run = 0
    for c in part.lower():
        run = 0 if c in VOWELS else run + 1
        if run >= 6:
            return True
    return False


def plausible_part(part, dot_joined):
    """One letter part; dot_joined: a '.' joins it to a neighbouring part."""
    if any(ord(c) > 0x7F for c in part):
        return True  # other scripts are not judged
    if has_triple(part) or has_six_consonants(part):
        return False
    if len(part) == 1:
        return part in SINGLE_LETTER_WORDS or dot_joined
    if any(c in VOWELS for c in part.lower()):
        return True
    if part.isupper() and len(part) <= 5:
        return True  # an acronym
    return part.lower() in NO_VOWEL_WORDS


def is_plausible_word(word):
    if is_number(word) or is_digits_then_letters(word):
        return True
    split = split_joined(word, is_letter, PART_SEPARATORS)
    if split is None:
        return False
    parts, joins = split
    for i, part in enumerate(parts):
        if i > 0 and joins[i - 1] in APOSTROPHES and all(c in ASCII_LETTERS for c in part) and part.lower() in CLITICS:
            continue  # an English clitic after an apostrophe
        dot_joined = (i > 0 and joins[i - 1] == ".") or (i < len(joins) and joins[i] == ".")
        if not plausible_part(part, dot_joined):
            return False
    return True


def ascii_lower(s):
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def rep2(words):
    low = [ascii_lower(w) for w in words]
    bigrams = list(zip(low, low[1:]))
    if len(bigrams) < 2:
        return 0.0
    return 1.0 - len(set(bigrams)) / len(bigrams)


def answer_fluency(answer):
    words = answer_words(answer)
    plausible = [is_plausible_word(w) for w in words]
    return {"words": words, "plausible": plausible, "non_words": plausible.count(False), "repetition": rep2(words)}


def fluency(answers, limits=LIMITS):
    n = len(answers)
    if n == 0:
        return {"answers": 0, "empty_rate": 0.0, "repetition": 0.0, "repetitive_rate": 0.0, "non_word_rate": 0.0,
                "collapsed": False, "reasons": []}
    per = [answer_fluency(a) for a in answers]
    with_words = [p for p in per if p["words"]]
    total_words = sum(len(p["words"]) for p in per)
    total_non = sum(p["non_words"] for p in per)
    out = {
        "answers": n,
        "empty_rate": (n - len(with_words)) / n,
        "repetition": sum(p["repetition"] for p in with_words) / len(with_words) if with_words else 0.0,
        "repetitive_rate": sum(1 for p in per if p["repetition"] >= limits["repetitive_answer"]) / n,
        "non_word_rate": total_non / total_words if total_words else 0.0,
    }
    reasons = []
    if out["empty_rate"] >= limits["empty_rate"]:
        reasons.append("empty")
    if out["repetitive_rate"] >= limits["repetitive_rate"]:
        reasons.append("repetitive")
    if out["non_word_rate"] >= limits["non_word_rate"]:
        reasons.append("non_words")
    out["collapsed"] = bool(reasons)
    out["reasons"] = reasons
    return out


# Answers, with a note where the expected value rests on a literal reading of an open point.
CONTRACTION = "an English clitic after an apostrophe is a word ('rock'n'roll' keeps the one-letter 'n': a non-word)"
LITERAL_HYPHEN = "literal: a one-letter ASCII part is a word only when dot-joined, not hyphen-joined"
CASES = [
    # Numbers: each separator, trimming, doubled separators.
    ("1449", None), ("3.5", None), ("1,000,000", None), ("12:30", None), ("9/11", None), ("2024-01-01", None),
    ("50% of $1,000.00 (approx.)", None), ("1..5 and 1.-5 and 1,,000", None),
    ("3.5km 3:00pm", "literal: only a bare digit run may carry letters, so both are non-words"),
    # Digits then one to three ASCII letters.
    ("1st 2nd 3rd 10am 3D 1990s 4K", None), ("1abcd a1b MP3 abc123", None),
    ("1ST 2ND 5TH", None), ("-5 .5 5. +7 \u00b15", None), ("3\u00e9 \u00e91 abc\u0663", None),
    # Apostrophes (ASCII and U+2019), hyphens, dots.
    ("'tis students' o'clock we've you're they\u2019re", None), ("can''t", None),
    ("don't don\u2019t I'm it's rock'n'roll", CONTRACTION),
    ("we'll you'll", CONTRACTION),
    ("y'all", "literal: 'y' is a one-letter part that is not a, A, I, o, O and not dot-joined"),
    ("well-known state-of-the-art co-operate A-level well--known", None),
    ("e-mail x-ray T-shirt", LITERAL_HYPHEN),
    ("O'Brien o'er I'd", CONTRACTION), ("catch-phrase bee-eater a.b-c", "runs are judged per part"),
    ("well\u2010known", "U+2010 HYPHEN joins like '-'"),
    ("e.g. i.e. U.S. U.S.A. a.m. etc.", None), ("Ph.D.", "literal: 'Ph' has no vowel and is not all capitals"),
    ("U.S-based", "reading: 'S' counts as dot-joined because a '.' joins it to 'U'"), ("U.S.-based", None),
    # Single letters.
    ("a A I o O", None), ("e x i u", None),
    # Acronyms and the listed exceptions.
    ("DNA TV HTTPS NTSC", None), ("BCDFGH", None),
    ("WWW CNN UNESCO", "the triple-letter rule applies to acronyms too"), ("UNLEARNING", "vowels counted in either case"),
    ("Tv CDs PhD", "literal: not all capitals, no vowel, not listed"),
    ("Mr. Mrs. Ms. Dr. St. vs. hmm shh nth pst brr", None), ("MR mrs DR VS HMM Shh NTH", None),
    ("hmmm shhh brrr", None),
    # Triple letters and consonant runs.
    ("aaa zzz Aaah", None), ("bookkeeper committee balloon", None), ("strengths twelfths rhythms", None),
    ("xzqwrtp Angstschrei", None), ("catchphrase", "literal: 't c h p h r' is a run of six consonants"),
    # Other scripts.
    ("caf\u00e9 na\u00efve \u00c9T\u00c9", None),
    ("\u03bb\u03cc\u03b3\u03bf\u03c2 \u041c\u043e\u0441\u043a\u0432\u0430 \u65e5\u672c\u8a9e", None),
    ("Angstschwei\u00df x\u00e9zqwrtp", None), ("\u00e9 \u00fc\u00fc\u00fc", None),
    ("cafe\u0301 cafe\u0301s", "U+0301 (Mn) counts as a letter: a part with a non-ASCII letter"),
    ("\u0939\u093f\u0928\u094d\u0926\u0940", "the vowel signs (Mc, Mn) count as letters: a word"),
    ("\uff11\uff12\uff13 \u0663\u0664", "literal: Nd but not 0-9, so kept by trimming yet non-words"),
    ("don\u02bct", "U+02BC is a letter (Lm): one part with a non-ASCII letter"),
    # Punctuation, symbols, empty answers.
    ("", None), ("   ", None), ("\t\n\r", None), ("\u00a0\u3000\u2028", None), ("... \u2014 !!! - \U0001F600 ??", None),
    ("hello \u2014 world!", None), ("foo$bar AT&T C++ #hashtag @user", None),
    ("http://example.com user@example.com", None), ("(\"quoted\"), [bracketed]; {braced}:", None),
    # Separators.
    ("one\u00a0two\u3000three", None), ("one\u2028two\u0085three\u202ffour\u1680five\u2009six", None),
    ("one\u200btwo", "U+200B ZERO WIDTH SPACE is not White_Space"), ("a\x1fb", "U+001F is not White_Space"),
    ("  leading and trailing  \n", None), ("\ufeffHello\u200b", "U+FEFF and U+200B (Cf) are trimmed"),
    # Repetition.
    ("the the", None), ("the the the", None), ("e e e e e", None), ("The the THE the", None),
    ("\u03a9 \u03c9 \u03a9 \u03c9", "ASCII lower-casing only: '\u03a9' and '\u03c9' stay distinct"),
    ("a b a b a b", None), ("the the the the the", None),
    ("I am sorry, " * 20, None), ("Paris Paris Paris Paris", None),
    ("the answer is the answer is the answer is the answer is the answer is", None),
    # Realistic answers.
    ("The capital of France is Paris, a city known for the Eiffel Tower.", None),
    ("Harry Potter's best friends are Ron Weasley and Hermione Granger.", CONTRACTION),
    ("I don\u2019t know the answer to that question.", CONTRACTION),
    ("He was born in 1965, studied at MIT and moved to the U.S. in the 1990s, e.g. to work on DNA.", None),
    ("1449 is e e not full is the found that it.", None),
    ("xkcd qwrtz blorp fff zzzt hmmmm", None),
    ("The the author of of the the book book is is", None),
    ("COVID-19 spread in 2020.", "literal: '19' is not a letter part, so 'COVID-19' is a non-word"),
]

SETS = [
    ("no answers", []),
    ("fluent", ["The capital of France is Paris.", "The friends of Harry Potter are Ron and Hermione.",
                "I do not know the answer to that question.", "It was written in 1997 by J.K. Rowling."]),
    ("fluent with contractions", ["I don't know.", "It's Paris.", "We'll see."]),
    ("mostly empty", ["", "  ", "Paris is the capital.", "..."]),
    ("empty at the limit", ["", "Paris is nice."]),
    ("all empty", ["", " ", "\u00a0"]),
    ("repetitive", ["the the the the", "yes yes yes", "Paris is the capital of France."]),
    ("repetitive at the limit", ["no no no", "Paris is lovely."]),
    ("repetitive below the limit", ["no no no", "Paris is lovely.", "So is Rome."]),
    ("word salad", ["e e x zzz", "Paris is nice."]),
    ("non-words at the limit", ["e is a cat"]),
    ("non-words below the limit", ["e is a good cat"]),
    ("every reason", ["", "", "e e e e", "x x x"]),
    ("empty answers do not count for repetition", ["", "the the the", "a cat sat on it"]),
    ("degenerate", ["1449 is e e not full is the found that it.", "the the the the the", "",
                    "xkcd qwrtz blorp fff", "Paris Paris Paris Paris"]),
]


def dumps(fixture):
    """JSON with one answer or set per line (short, and a diff shows which case changed)."""
    lines = ["{"]
    keys = list(fixture)
    for k in keys:
        v = fixture[k]
        comma = "," if k != keys[-1] else ""
        if isinstance(v, list):
            lines.append(" %s: [" % json.dumps(k))
            for i, item in enumerate(v):
                lines.append("  " + json.dumps(item) + ("," if i + 1 < len(v) else ""))
            lines.append(" ]" + comma)
        else:
            lines.append(" %s: %s%s" % (json.dumps(k), json.dumps(v), comma))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(out):
    answers = []
    for answer, note in CASES:
        case = {"answer": answer}
        case.update(answer_fluency(answer))
        if note:
            case["note"] = note
        answers.append(case)
    sets = [{"name": name, "answers": a, "expected": fluency(a)} for name, a in SETS]
    fixture = {
        "generator": "tests/reference/fluency_reference.py: the definition in core/eval/fluency.h, re-implemented",
        "python": platform.python_version(),
        "unicodedata": unicodedata.unidata_version,
        "command": "python3 tests/reference/fluency_reference.py tests/fixtures/fluency/fluency_reference.json",
        "limits": LIMITS,
        "answers": answers,
        "sets": sets,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(dumps(fixture))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
