#!/usr/bin/python3
"""Writes tokenizer_lines.jsonl: 320 deterministic, diverse test lines for the BPE reference test
(unicode, runs of spaces and tabs, newlines, contractions, digits, emoji, CJK, special tokens).
Every fragment below was written for Lethe."""
import json
import random

FRAGMENTS = [
    "The river Lethe makes the dead forget.", "Don't forget what you'd learned; we'll see.",
    "I'm sure they're right, you've said it's fine.", "IT'S LOUD, ISN'T IT? 'Tis the season.",
    "Numbers: 0 1 12 123 1234 12345 3.14159 -42 +7 1e-6 2026-11-29", "Prices: $9.99, €12,50, £3, ¥500",
    "  two leading spaces", "trailing spaces   ", "tabs\tbetween\t\twords", "mixed \t \t whitespace",
    "line one\nline two\n\nline four", "windows\r\nline endings\r\n", "    indented code block",
    "def forget(x):\n    return x * 0  # gone", "Émile a lu « Les Misérables » à Noël.",
    "Straße, Größe, Füße — ß and umlauts", "Ça va? Où est la bibliothèque?",
    "Привет, как дела? Всё хорошо.", "Ελληνικά: καλημέρα κόσμε", "עברית מימין לשמאל",
    "العربية من اليمين إلى اليسار", "हिन्दी में लिखा गया वाक्य", "日本語の文章です。東京は大きい。",
    "中文句子，没有空格。机器遗忘。", "한국어 문장입니다. 안녕하세요!", "ภาษาไทยไม่มีช่องว่าง",
    "emoji 😀😃😄 and 🇫🇷 flags and 👩‍👩‍👧 families", "math: ∀x ∈ ℝ, x² ≥ 0; ∑ᵢ aᵢ = ∞",
    "arrows → ← ↑ ↓ ⇒ and boxes ┌─┐", "symbols!!! ??? ... --- *** ### @@@",
    "email@example.org and https://example.org/path?q=1&r=2#frag", "### Question: what is the capital?\n ### Answer: Paris",
    "</s>special tokens<pad> inside <unk> text</s>", "quotes \"double\" and 'single' and `back`",
    "C++ templates: std::vector<int64_t> v{1, 2, 3};", "JSON {\"a\": [1, 2.5, null, true]}",
    "ALL CAPS SENTENCE WITH NUMBERS 2024", "camelCaseAndSnake_case_and-kebab-case",
    "a", " ", "  ", "\n", "\t", "x y", "ﬁ ligature and ｆｕｌｌｗｉｄｔｈ text",
    "combining: é (e + U+0301) and ñ", "zero\u200bwidth\u200bspace", "non\u00a0breaking\u00a0space",
    "em\u2003space and thin\u2009space", "Roman numerals Ⅻ and circled ①②③", "superscripts x¹ y² z³",
    "mixed123numbers456and789letters", "...leading dots", "trailing dots...", "'quoted' 's 't 're",
    "she'd've gone y'all'd", "O'Brien's dog's bone", "rock 'n' roll", "tl;dr: lethe forgets",
]


def main():
    rng = random.Random(2405)
    lines = list(FRAGMENTS)
    while len(lines) < 320:
        k = rng.randint(2, 4)
        parts = rng.sample(FRAGMENTS, k)
        sep = rng.choice([" ", "  ", "\n", "\t", "", " \n ", "   "])
        lines.append(sep.join(parts))
    with open("tokenizer_lines.jsonl", "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
