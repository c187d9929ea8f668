#!/usr/bin/python3
"""Independent byte-level BPE reference (GPT-2's algorithm, written here from its description):
the `regex` module applies GPT-2's pre-tokenisation pattern, merges are applied by rank.

    /usr/bin/python3 bpe_reference.py VOCAB_JSON MERGES_TXT LINES_JSONL OUT_JSON
writes {"ids": [[...], ...]} with the ids of every line (special tokens split out first)."""
import json
import sys

import regex

PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
SPECIALS = ["<|endoftext|>", "</s>", "<pad>", "<unk>", "<s>", "<mask>"]


def byte_alphabet():
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class Bpe:
    """GPT-2 byte-level BPE: encode (special tokens split out first) and decode."""

    def __init__(self, vocab_path, merges_path):
        self.vocab = json.load(open(vocab_path, encoding="utf-8"))
        self.inv = {v: k for k, v in self.vocab.items()}
        self.ranks = {}
        with open(merges_path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                line = line.rstrip("\n")
                if i == 0 and line.startswith("#version") or not line:
                    continue
                a, b = line.split(" ")
                self.ranks[(a, b)] = len(self.ranks)
        self.alpha = byte_alphabet()
        self.unalpha = {v: k for k, v in self.alpha.items()}
        self.specials = [s for s in SPECIALS if s in self.vocab]
        self.split = regex.compile("(" + "|".join(regex.escape(s) for s in sorted(self.specials, key=len, reverse=True)) + ")")

    def bpe(self, word):
        sym = [self.alpha[b] for b in word.encode("utf-8")]
        while len(sym) > 1:
            pairs = [(self.ranks.get((sym[i], sym[i + 1]), float("inf")), i) for i in range(len(sym) - 1)]
            best = min(pairs)
            if best[0] == float("inf"):
                break
            a, b = sym[best[1]], sym[best[1] + 1]
            out, i = [], 0
            while i < len(sym):
                if i + 1 < len(sym) and sym[i] == a and sym[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(sym[i])
                    i += 1
            sym = out
        return [self.vocab[s] for s in sym]

    def encode(self, text):
        ids = []
        for part in (self.split.split(text) if self.specials else [text]):
            if part in self.specials:
                ids.append(self.vocab[part])
            elif part:
                for w in PAT.findall(part):
                    ids.extend(self.bpe(w))
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            tok = self.inv[i]
            if tok in self.specials:
                out += tok.encode("utf-8")
            else:
                out += bytes(self.unalpha[c] for c in tok)
        return out.decode("utf-8", errors="replace")


def main(vocab_path, merges_path, lines_path, out_path):
    bpe = Bpe(vocab_path, merges_path)
    result = [bpe.encode(json.loads(raw)) for raw in open(lines_path, encoding="utf-8")]
    json.dump({"ids": result}, open(out_path, "w"))
    print(f"bpe_reference: {len(result)} lines")


if __name__ == "__main__":
    main(*sys.argv[1:5])
