#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora, tests/fuzz/corpus/<harness>/, from the repository's own test
fixtures and demo data (shrunk) and hand-made valid and invalid inputs. Standard library only;
the pytorch_model.bin pickles are written by Python's pickle the way torch.save writes them
(protocol 2, storages as persistent ids), with stand-ins for torch's classes.

    python3 tests/fuzz/make_seeds.py      # rewrites the generated seeds (crash-* regression seeds stay)
"""
import collections
import json
import os
import pickle
import struct
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
SEP = b"\n--- lethe-fuzz-file ---\n"  # fuzz_util.h's kSectionSeparator


def fixture(*parts):
    return os.path.join(ROOT, *parts)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def clear_generated(harness):
    d = os.path.join(CORPUS, harness)
    if os.path.isdir(d):
        for n in os.listdir(d):
            if not n.startswith("crash-"):
                os.remove(os.path.join(d, n))


def sections(*files):
    return SEP.join(f if isinstance(f, bytes) else f.encode() for f in files)


def jdump(obj):
    return json.dumps(obj, ensure_ascii=False).encode()


# ---- safetensors -------------------------------------------------------------------------------
DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1, "BOOL": 1, "F64": 8, "I8": 1}


def safetensors(tensors, metadata=None, pad=True):
    """tensors: [(name, dtype, shape)], data laid out in order, filled with a byte pattern."""
    header, off = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dt, shape in tensors:
        n = DTYPE_SIZE[dt]
        for s in shape:
            n *= s
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header).encode()
    while pad and len(h) % 8:
        h += b" "
    return struct.pack("<Q", len(h)) + h + bytes(i % 251 for i in range(off))


def raw_safetensors(header_obj, data_len):
    h = json.dumps(header_obj).encode()
    return struct.pack("<Q", len(h)) + h + bytes(data_len)


def seeds_safetensors():
    w = lambda n, d: write("safetensors", n, d)
    w("valid-two", safetensors([("a.weight", "F32", [2, 3]), ("a.bias", "F32", [3])]))
    w("valid-metadata", safetensors([("x", "BF16", [4]), ("y", "I64", [1])], {"format": "pt"}))
    w("valid-scalar-and-empty", safetensors([("s", "F16", []), ("e", "F32", [0, 5]), ("b", "BOOL", [3])]))
    w("valid-empty", safetensors([]))
    w("bad-overlap", raw_safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, 12))
    w("bad-out-of-range", raw_safetensors({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, 8))
    # A shape whose byte count wraps around 2^64 onto the 16 bytes present.
    write("safetensors", "crash-shape-wraps", raw_safetensors({"a": {"dtype": "F32", "shape": [2 ** 62, 4, 1], "data_offsets": [0, 0]}}, 16))
    w("bad-shape-huge", raw_safetensors({"a": {"dtype": "U8", "shape": [2 ** 63 + 5], "data_offsets": [0, 5]}}, 5))
    w("bad-dtype", raw_safetensors({"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, 16))
    w("bad-header-length", struct.pack("<Q", 1 << 40) + b"{}")
    w("bad-not-json", struct.pack("<Q", 5) + b"{abc}")
    w("bad-metadata", raw_safetensors({"__metadata__": {"k": 1}}, 0))
    w("bad-truncated", b"\x08\x00\x00")


# ---- shard index -------------------------------------------------------------------------------
def seeds_shard_index():
    w = lambda n, d: write("shard_index", n, jdump(d))
    s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    w("valid", {"metadata": {"total_size": 18}, "weight_map": {"a.weight": s1, "b.weight": s1, "c.weight": s2}})
    w("valid-partial", {"weight_map": {"c.weight": s2}})
    w("refuse-traversal", {"weight_map": {"a.weight": "../../etc/passwd"}})
    w("refuse-absolute", {"weight_map": {"a.weight": "/etc/passwd"}})
    w("refuse-dotdot", {"weight_map": {"a.weight": ".."}})
    w("refuse-dot", {"weight_map": {"a.weight": "."}})
    w("bad-missing-shard", {"weight_map": {"a.weight": "model-00003-of-00003.safetensors"}})
    w("bad-tensor-not-in-shard", {"weight_map": {"z.weight": s1}})
    w("bad-not-a-file-name", {"weight_map": {"a.weight": 7}})
    w("bad-no-weight-map", {"metadata": {}})
    w("bad-index-is-config", {"weight_map": {"a.weight": "config.json"}})
    write("shard_index", "bad-array", b"[1, 2]")


# ---- config.json -------------------------------------------------------------------------------
def seeds_model_config():
    fam = fixture("tests", "fixtures", "families")
    for name in sorted(os.listdir(fam)):
        p = os.path.join(fam, name, "config.json")
        if os.path.isfile(p):
            write("model_config", "valid-" + name, read(p))
    write("model_config", "valid-demo-opt", read(fixture("resources", "demo", "model", "config.json")))
    base = json.loads(read(os.path.join(fam, "llama_gqa_untied", "config.json")))
    for tag, change in [("vocab-1e12", {"vocab_size": 10 ** 12}), ("heads-not-dividing", {"num_attention_heads": 7}),
                        ("negative-layers", {"num_hidden_layers": -1}), ("float-hidden", {"hidden_size": 64.5}),
                        ("unknown-type", {"model_type": "gpt_neox"}), ("rope-scaling-string", {"rope_scaling": "yes"})]:
        write("model_config", "bad-" + tag, jdump({**base, **change}))
    write("model_config", "crash-huge-sizes-overflow", jdump({**base, "hidden_size": 2 ** 40, "intermediate_size": 2 ** 40,
                                                                "vocab_size": 2 ** 40, "num_hidden_layers": 2 ** 30}))
    write("model_config", "bad-array", b"[]")
    write("model_config", "bad-truncated", b'{"model_type": "opt", "hidden_size": 6')


# ---- tokenizers --------------------------------------------------------------------------------
def shrink_tokenizer_json(j, keep=160):
    """The first `keep` ids of a BPE vocabulary and the merges among them; the rest unchanged."""
    m = j.get("model", {})
    if m.get("type") != "BPE" or not isinstance(m.get("vocab"), dict):
        return j
    vocab = {t: i for t, i in m["vocab"].items() if i < keep}
    merges = []
    for mg in m.get("merges", []):
        a, b = mg if isinstance(mg, list) else mg.split(" ", 1)
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(mg)
    j = dict(j)
    j["model"] = dict(m, vocab=vocab, merges=merges)
    return j


TEXT = "Hello world, \u00e9t\u00e9 \u65e5\u672c <|im_end|></s> 123\n\n  x"


def seeds_hf_tokenizer():
    tdir = fixture("tests", "fixtures", "tokenizers")
    files = ["tokenizer.json", "tokenizer_config.json", "config.json", "special_tokens_map.json", "generation_config.json"]
    for name in sorted(os.listdir(tdir)):
        d = os.path.join(tdir, name)
        if not os.path.isfile(os.path.join(d, "tokenizer.json")):
            continue
        parts = []
        for f in files:
            p = os.path.join(d, f)
            data = read(p) if os.path.isfile(p) else b""
            if f == "tokenizer.json":
                data = jdump(shrink_tokenizer_json(json.loads(data)))
            parts.append(data)
        write("hf_tokenizer", "valid-" + name, sections(*parts, TEXT))
    for name in sorted(os.listdir(tdir)):  # the library-level fixtures: one tokenizer.json each
        if name.endswith(".json") and not name.endswith(".expected.json") and name != "lines.json":
            write("hf_tokenizer", "valid-" + name[:-5], sections(read(os.path.join(tdir, name)), b"", b"", b"", b"", TEXT))
    tiny = {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}
    write("hf_tokenizer", "valid-tiny", sections(jdump(tiny), b"", b"", b"", b"", "abab"))
    write("hf_tokenizer", "bad-merge-unknown", sections(jdump({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a q"]}})))
    write("hf_tokenizer", "bad-model-type", sections(jdump({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})))
    write("hf_tokenizer", "bad-regex", sections(jdump({**tiny, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(("},
                                                                                   "behavior": "Isolated", "invert": False}})))
    write("hf_tokenizer", "bad-config", sections(jdump(tiny), b"{\"tokenizer_class\": 5}"))
    write("hf_tokenizer", "bad-none", b"")


def seeds_bpe_vocab():
    g = fixture("third_party", "gpt2")
    if os.path.isfile(os.path.join(g, "vocab.json")):
        vocab = json.loads(read(os.path.join(g, "vocab.json")))
        merges_lines = read(os.path.join(g, "merges.txt")).decode().split("\n")
        keep = {t: i for t, i in vocab.items() if i < 300}
        kept = [merges_lines[0]] + [l for l in merges_lines[1:] if l and len(l.split(" ")) == 2 and
                                    all(x in keep for x in l.split(" ")) and "".join(l.split(" ")) in keep]
        keep["<|endoftext|>"] = len(keep)
        write("bpe_vocab", "valid-gpt2-300", sections(jdump(keep), "\n".join(kept) + "\n", TEXT))
    byte = {chr(c): i for i, c in enumerate(range(33, 127))}
    write("bpe_vocab", "valid-ascii", sections(jdump({**byte, "he": 94, "ll": 95, "hell": 96, "</s>": 97, "<pad>": 98}),
                                               "#version: 0.2\nh e\nl l\nhe ll\n", "hello hell"))
    write("bpe_vocab", "valid-tokenizer-json", sections(jdump({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
                                                                         "merges": ["a b"]}}), b"", "abba"))
    write("bpe_vocab", "bad-merge-line", sections(jdump({"a": 0}), "#version: 0.2\na\n"))
    write("bpe_vocab", "bad-vocab-id", sections(jdump({"a": -4, "b": "x"}), ""))
    write("bpe_vocab", "bad-vocab-array", sections(b"[1,2,3]", ""))


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def spm_piece(piece, score, type_=1):
    return field(1, 2, piece.encode()) + field(2, 5, struct.pack("<f", score)) + field(3, 0, varint(type_))


def seeds_spm_model():
    real = fixture("tests", "fixtures", "tokenizers", "spm_llama", "tokenizer.model")
    if os.path.isfile(real):
        data = read(real)
        write("spm_model", "valid-spm-llama", data)
        write("spm_model", "bad-truncated", data[: len(data) // 3])
    pieces = [("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3), ("\u2581", -1, 1), ("a", -2, 1), ("b", -3, 1),
              ("\u2581a", -4, 1), ("ab", -5, 1), ("<0x41>", 0, 6)]
    body = b"".join(field(1, 2, spm_piece(*p)) for p in pieces)
    trainer_bpe = field(2, 2, field(3, 0, varint(2)) + field(35, 0, varint(1)))  # model_type BPE, byte_fallback
    normalizer = field(3, 2, field(1, 2, b"identity") + field(3, 0, varint(1)))
    write("spm_model", "valid-tiny-bpe", body + trainer_bpe + normalizer)
    write("spm_model", "valid-tiny-unigram", body + field(2, 2, field(3, 0, varint(1))))
    write("spm_model", "valid-unknown-piece-type", field(1, 2, spm_piece("x", 0, 99)))  # read as NORMAL, as proto2 does
    write("spm_model", "bad-length-past-end", field(1, 2, b"") [:-1] + varint(1000) + b"abc")
    write("spm_model", "bad-wire-type", bytes([0x0F, 0x01]))
    write("spm_model", "bad-text", b"this is not a model\n")


def seeds_chat_template():
    d = fixture("tests", "fixtures", "chat_templates")
    for name in sorted(os.listdir(d)):
        if name.endswith(".jinja"):
            write("chat_template", "valid-" + name[:-6], read(os.path.join(d, name)))
    write("chat_template", "bad-unclosed", "{% for m in messages %}{{ m.content }}")
    write("chat_template", "bad-range", "{% for i in range(10**9) %}x{% endfor %}")
    write("chat_template", "bad-raise", "{{ raise_exception('no system role') }}")
    write("chat_template", "bad-deep", "{{ " + "(" * 500 + "1" + ")" * 500 + " }}")


# ---- datasets ----------------------------------------------------------------------------------
def seeds_jsonl():
    forget = read(fixture("datasets", "demo", "forget.jsonl")).split(b"\n")
    write("jsonl", "valid-pku", b"\n".join(forget[:6]) + b"\n")
    write("jsonl", "valid-qa", b'{"prompt": "Q1", "response": "A1", "label": 1}\n\n{"prompt": "Q2", "response": "A2", "label": false}\n')
    write("jsonl", "valid-texts", b'{"text": "some text", "label": 0}\n"a json string"\nplain line\n')
    write("jsonl", "bad-line", b'{"prompt": "Q1", "response": "A1"}\n{"prompt": \n')
    write("jsonl", "bad-label", b'{"prompt": "Q", "response": "A", "label": 7}\n')
    write("jsonl", "bad-types", b'{"prompt": 1, "response": null, "response_0": [], "is_response_0_safe": "no"}\n')
    write("jsonl", "bad-not-utf8", b'{"prompt": "\xff\xfe"}\n')


def seeds_csv():
    normal = read(fixture("datasets", "demo", "normal.csv")).split(b"\n")
    write("csv", "valid-truthfulqa", b"\n".join(normal[:6]) + b"\n")
    write("csv", "valid-quoted-multiline", b'\xef\xbb\xbfType,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\r\n'
          b'A,B,"Q, with ""quotes""","line1\nline2","x; y","z",s\r\n')
    write("csv", "bad-unterminated", b'a,b\n"open,1\n')
    write("csv", "bad-width", b"a,b,c\n1,2\n")
    write("csv", "bad-missing-column", b"Question,Answer\nq,a\n")
    write("csv", "bad-empty", b"")


def seeds_spec():
    for name in ["demo.json", "demo-copyright.json", "paper-llama-3.2-1b-instruct-harmful.json"]:
        p = fixture("resources", "presets", name)
        if os.path.isfile(p):
            write("spec", "preset-" + name[:-5], sections(read(p)))
    llama_cfg = read(fixture("tests", "fixtures", "families", "llama_gqa_untied", "config.json"))
    local = {"name": "fuzz", "model": {"path": "model", "prompt_format": "chat"},
             "datasets": {"forget": {"path": "spec.json", "limit": 3}, "normal": {"path": "spec.json"}},
             "unlearn": {"method": "paper", "steps": 2, "lora": {"rank": 4, "targets": ["q_proj"]}},
             "output": {"dir": "out", "save": "adapter"}}
    write("spec", "valid-local-chat", sections(jdump(local), "unlearn.eps1=0.3\nevaluation.samples=2",
                                                llama_cfg, '{"chat_template": "{{ messages[0].content }}"}'))
    write("spec", "valid-local-jinja", sections(jdump(local), b"", llama_cfg, b"", read(fixture("tests", "fixtures",
                                                                                                "chat_templates", "zephyr.jinja"))))
    write("spec", "bad-unknown-fields", sections(jdump({"modle": {}, "unlearn": {"lr": -1, "stepz": 3}})))
    write("spec", "bad-override", sections(jdump(local), "=1\nunlearn=\nunlearn.lr.x=3\n[]=4"))
    write("spec", "bad-not-object", sections(b"[1]"))


# ---- pytorch_model.bin pickles -----------------------------------------------------------------
def torch_stand_ins():
    """Modules named as torch's, so pickle writes the globals torch.save writes."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    torch._utils = utils
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils

    def rebuild(name):
        def f(*a):
            raise RuntimeError("stand-in")
        f.__module__, f.__qualname__, f.__name__ = "torch._utils", name, name
        setattr(utils, name, f)
        return f

    rt2 = rebuild("_rebuild_tensor_v2")
    rp = rebuild("_rebuild_parameter")
    storages = {}
    for st in ["FloatStorage", "HalfStorage", "BFloat16Storage", "LongStorage", "DoubleStorage", "ByteStorage", "BoolStorage"]:
        c = type(st, (), {})
        c.__module__ = "torch"
        setattr(torch, st, c)
        storages[st] = c
    return rt2, rp, storages


class Storage:
    def __init__(self, cls, key, numel):
        self.cls, self.key, self.numel = cls, key, numel


class Tensor:
    def __init__(self, rt2, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())
        self.rt2 = rt2

    def __reduce__(self):
        return (self.rt2, self.args)


class Parameter:
    def __init__(self, rp, tensor):
        self.rp, self.tensor = rp, tensor

    def __reduce__(self):
        return (self.rp, (self.tensor, True, collections.OrderedDict()))


def torch_pickle(obj, protocol=2):
    import io

    class P(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, Storage):
                return ("storage", o.cls, o.key, "cpu", o.numel)
            return None

    b = io.BytesIO()
    P(b, protocol=protocol).dump(obj)
    return b.getvalue()


def seeds_torch_pickle():
    rt2, rp, st = torch_stand_ins()
    # fuzz_torch_pickle.cpp's records: data/K holds 16 * (K + 1) bytes.
    s0 = Storage(st["FloatStorage"], "0", 4)
    s1 = Storage(st["HalfStorage"], "1", 16)
    s2 = Storage(st["LongStorage"], "2", 6)
    s3 = Storage(st["BFloat16Storage"], "3", 32)
    s4 = Storage(st["DoubleStorage"], "4", 10)
    sd = collections.OrderedDict()
    sd["a.weight"] = Tensor(rt2, s0, 0, [2, 2], [2, 1])
    sd["a.bias"] = Tensor(rt2, s0, 2, [2], [1])  # a view into the same storage
    sd["b.weight"] = Tensor(rt2, s1, 0, [4, 4], [4, 1])
    sd["c.t"] = Tensor(rt2, s2, 0, [3, 2], [1, 3])  # transposed
    sd["d.param"] = Parameter(rp, Tensor(rt2, s3, 0, [32], [1]))
    sd["e.scalar"] = Tensor(rt2, s4, 9, [], [])
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    write("torch_pickle", "valid-state-dict-p2", torch_pickle(sd, 2))
    write("torch_pickle", "valid-state-dict-p4", torch_pickle(sd, 4))
    write("torch_pickle", "valid-empty-dict", torch_pickle(collections.OrderedDict()))
    bad = collections.OrderedDict(w=Tensor(rt2, s0, 0, [100], [1]))
    write("torch_pickle", "bad-view-past-storage", torch_pickle(bad))
    bad = collections.OrderedDict(w=Tensor(rt2, s0, 3, [2, 2], [2 ** 62, 1]))
    write("torch_pickle", "bad-stride-overflow", torch_pickle(bad))
    bad = collections.OrderedDict(w=Tensor(rt2, Storage(st["FloatStorage"], "0", 2 ** 40), 0, [1], [1]))
    write("torch_pickle", "bad-numel-huge", torch_pickle(bad))
    bad = collections.OrderedDict(w=Tensor(rt2, Storage(st["FloatStorage"], "9", 4), 0, [4], [1]))
    write("torch_pickle", "bad-missing-record", torch_pickle(bad))
    valid = torch_pickle(sd, 2)
    write("torch_pickle", "bad-truncated", valid[: len(valid) // 2])
    cyc = []
    cyc.append(cyc)
    write("torch_pickle", "bad-cycle", pickle.dumps(cyc, protocol=2))
    write("torch_pickle", "bad-deep", b"\x80\x02" + b"]" * 5000 + b"a" * 4999 + b".")

    # Foreign globals: refused where named (fuzz_torch_pickle.cpp checks these at start-up too).
    class Evil:
        def __init__(self, fn, arg):
            self.fn, self.arg = fn, arg

        def __reduce__(self):
            return (self.fn, (self.arg,))

    write("torch_pickle", "refuse-os-system-p2", pickle.dumps(Evil(os.system, "echo pwned"), protocol=2))
    write("torch_pickle", "refuse-posix-system-p4", pickle.dumps(Evil(os.system, "echo pwned"), protocol=4))
    write("torch_pickle", "refuse-builtins-eval", pickle.dumps(Evil(eval, "1+1"), protocol=2))
    inner = collections.OrderedDict(w=Evil(exec, "import os"))
    write("torch_pickle", "refuse-exec-in-state-dict", pickle.dumps(inner, protocol=2))
    write("torch_pickle", "refuse-global-uncalled", b"cos\nsystem\n.")


def main():
    for h, f in [("safetensors", seeds_safetensors), ("shard_index", seeds_shard_index), ("model_config", seeds_model_config),
                 ("hf_tokenizer", seeds_hf_tokenizer), ("bpe_vocab", seeds_bpe_vocab), ("spm_model", seeds_spm_model),
                 ("chat_template", seeds_chat_template), ("jsonl", seeds_jsonl), ("csv", seeds_csv), ("spec", seeds_spec),
                 ("torch_pickle", seeds_torch_pickle)]:
        clear_generated(h)
        f()
    total = sum(os.path.getsize(os.path.join(dp, n)) for dp, _, ns in os.walk(CORPUS) for n in ns)
    print(f"seeds written under {os.path.relpath(CORPUS, ROOT)}: {total} bytes")


if __name__ == "__main__":
    main()
