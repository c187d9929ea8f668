#!/usr/bin/env python3
"""Hugging Face reference fixtures for Lethe's Llama-like model families (llama, mistral, qwen2, phi3, gemma).

Every number here comes from Hugging Face transformers itself (eager attention, fp32 compute) on tiny models
built from a config with fixed-seed random weights; nothing is downloaded. For each variant it writes

    OUT_DIR/<variant>/config.json, generation_config.json      save_pretrained(), then for some variants
                                                                config.json is rewritten by hand into the legacy
                                                                flat form (top-level rope_theta, "rope_scaling"
                                                                with key "type" or "rope_type"); see FORMS below
    OUT_DIR/<variant>/model.safetensors                        (llama_sharded: model-0000k-of-0000n.safetensors
                                                                + model.safetensors.index.json)
    OUT_DIR/<variant>/expected.safetensors                     inputs and expected outputs (keys below)
    OUT_DIR/<variant>/expected.json                            human-readable facts and observed tolerances
    OUT_DIR/manifest.json                                      versions and the list of variants

expected.safetensors keys (B=3, T=20, V=vocab, G=10 new tokens):
    input_ids       int64 (B,T)   row 0 full, rows 1 and 2 LEFT-padded with pad_token_id (4 and 9 pads),
                                  real ids drawn uniformly from [3, V)
    attention_mask  int64 (B,T)
    position_ids    int64 (B,T)   exactly what generate() builds in this transformers version:
                                  attention_mask.cumsum(-1) - 1, masked_fill(attention_mask == 0, 0)
                                  (the value at pad positions never matters; only real positions are compared)
    logits          f32 (B,T,V)   model(input_ids, attention_mask, position_ids).logits, fp32 compute, fresh model
                                  (pad positions hold whatever HF computes there: compare real positions only)
    greedy          int64 (B,G)   generate(input_ids, attention_mask, max_new_tokens=G, min_new_tokens=G,
                                  do_sample=False), new tokens only, KV cache (DynamicCache), fresh model
    greedy_step_logits f32 (B,G,V) the raw (unprocessed) logits of every generate step (output_logits=True);
                                  the script checks that argmax of these == greedy, i.e. no logits processor
                                  (min_new_tokens / eos) changed a choice; the input seed is chosen so that
                                  no generated token (batched or alone) is an eos id or the pad id
    greedy_alone_<b> int64 (1,G)  generate on row b alone, unpadded, fresh model
    rope_inv_freq   f32 (D/2,)    rotary inv_freq buffer right after loading (every causal-LM variant;
                                  D = rotary dim; longrope: the short-factor set)
    long_ids, long_logits         (1,L=48) and (1,L,V): one unpadded forward on a fresh model (rope variants)
    long_rope_inv_freq            inv_freq the rotary module used for that long forward
    short_ids, short_logits       (1,12) and (1,12,V) (llama_rope_dynamic, phi3_longrope: below the threshold)
    greedy_rope_inv_freq f32 (G,D/2)  inv_freq used by each forward of the batched generate (dynamic, longrope)
    logits_bf16     f32 (B,T,V)   llama_bf16 only: forward computed in bf16 (values are exact bf16 numbers)
    cls_logits      f32 (B,2)     *_seqcls only (instead of logits/greedy): pooled classification logits
    right_input_ids, right_attention_mask, right_position_ids, right_cls_logits
                                  *_seqcls only: the same rows RIGHT-padded (discriminates the pooling rule)

Written by (the committed outputs): transformers 5.24.0, torch 2.15.0+cu132, safetensors 0.8.0,
numpy 2.4.6, Python 3.11, CPU, torch.set_num_threads(1). (In transformers 5.x save_pretrained always writes
safetensors; there is no safe_serialization argument any more. config.json says "dtype", not "torch_dtype".)

Rerun (from the repository root, with the project's virtualenv):

    third_party/venv/bin/python tests/reference/families_reference.py [OUT_DIR]

OUT_DIR defaults to tests/fixtures/families. Reruns with the same versions rewrite the same bytes (checked by
the author with two runs and diff -r). The script asserts the properties each variant claims (rope bands, yarn
ramp, thresholds crossed, shard count, legacy config forms loading to the same rope parameters, ...), so a
transformers upgrade that changes semantics fails loudly instead of silently writing different fixtures.
"""
import copy
import json
import math
import os
import platform
import shutil
import sys

import numpy
import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification,
                          GenerationConfig)
from transformers.masking_utils import create_sliding_window_causal_mask

transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

WRITTEN_WITH = "5.24.0"
B, T, G = 3, 20, 10
PADS = [0, 4, 9]          # left pads per row
LONG_L, SHORT_L = 48, 12
PAD_ID = 0
OUT_GAIN, TIED_EMB, GEMMA_EMB = 5.0, 0.4, 0.2     # weight scales (see randomize)

# ---------------------------------------------------------------------------------------------------------------
# Variants
# ---------------------------------------------------------------------------------------------------------------
# Common tiny shape; every variant overrides what it exercises.
BASE = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=32, rms_norm_eps=1e-5, pad_token_id=PAD_ID,
            bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)

# FORMS (how config.json is left on disk):
#   native       : as this transformers writes it: "rope_parameters": {"rope_type", "rope_theta", ...}
#   legacy_type  : top-level "rope_theta", "rope_scaling": {"type": ..., ...}      (older HF checkpoints)
#   legacy_rtype : top-level "rope_theta", "rope_scaling": {"rope_type": ..., ...} (e.g. Llama-3.1)
#   legacy_none  : top-level "rope_theta", "rope_scaling": null                   (Llama-2, Mistral, Qwen2)
VARIANTS = [
    dict(name="llama_gqa_untied", model_type="llama", arch="LlamaForCausalLM", form="legacy_none",
         cfg=dict(vocab_size=128, rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
         exercises="llama, GQA (4 query heads, 2 kv heads), untied lm_head, rope_theta 10000, rms_norm_eps 1e-5; "
                   "config.json in the legacy flat form (top-level rope_theta, rope_scaling null)"),
    dict(name="llama_tied_mha", model_type="llama", arch="LlamaForCausalLM", form="native",
         cfg=dict(num_key_value_heads=4, tie_word_embeddings=True, eos_token_id=[2, 3],
                  rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
         exercises="llama, MHA (kv heads == heads), tied lm_head (no lm_head.weight in the safetensors), "
                   "eos_token_id a list [2, 3] in config.json and generation_config.json"),
    dict(name="llama_bias_headdim", model_type="llama", arch="LlamaForCausalLM", form="native",
         cfg=dict(hidden_size=48, head_dim=16, attention_bias=True, mlp_bias=True,
                  rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
         exercises="llama, attention_bias (q,k,v AND o_proj biases) and mlp_bias (gate/up/down biases), explicit "
                   "head_dim 16 != hidden/heads = 12 (q_proj 48->64, k/v 48->32, o_proj 64->48)"),
    dict(name="llama_rope_linear", model_type="llama", arch="LlamaForCausalLM", form="legacy_type",
         cfg=dict(rope_parameters=dict(rope_type="linear", factor=2.0, rope_theta=10000.0)),
         long=True,
         exercises="rope linear scaling factor 2 (inv_freq / 2 for every position, static: no threshold); "
                   "config.json legacy flat rope_scaling with key \"type\""),
    dict(name="llama_rope_dynamic", model_type="llama", arch="LlamaForCausalLM", form="legacy_rtype",
         cfg=dict(max_position_embeddings=16, rope_parameters=dict(rope_type="dynamic", factor=2.0,
                                                                  rope_theta=10000.0)),
         long=True, short=True, record_rope=True,
         exercises="rope dynamic NTK factor 2, max_position_embeddings 16: every forward whose max(position_ids)+1 "
                   "exceeds the largest length seen so far recomputes inv_freq (stateful); config.json legacy flat "
                   "rope_scaling with key \"rope_type\""),
    dict(name="llama_rope_llama3", model_type="llama", arch="LlamaForCausalLM", form="legacy_rtype",
         cfg=dict(max_position_embeddings=64,
                  rope_parameters=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                       original_max_position_embeddings=32, rope_theta=100.0)),
         long=True,
         exercises="rope llama3 (factor 8, low_freq_factor 1, high_freq_factor 4, original_max_position_embeddings "
                   "32, rope_theta 100, head_dim 8): the 4 frequencies fall in the high (unchanged), medium "
                   "(smoothed) and low (/8) bands; static (no threshold at run time); config.json legacy flat "
                   "rope_scaling with key \"rope_type\" (the Llama-3.1 layout)"),
    dict(name="llama_rope_yarn", model_type="llama", arch="LlamaForCausalLM", form="legacy_rtype",
         cfg=dict(max_position_embeddings=64,
                  rope_parameters=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=16,
                                       rope_theta=10.0)),
         long=True,
         exercises="rope yarn factor 4, original_max_position_embeddings 16, rope_theta 10, head_dim 8, defaults "
                   "beta_fast 32, beta_slow 1, truncate true, attention_factor 0.1*ln(4)+1: frequency 0 is "
                   "extrapolated, frequency 1 blended 50/50, frequencies 2-3 interpolated; static; config.json "
                   "legacy flat rope_scaling with key \"rope_type\""),
    dict(name="llama_rope_nested", model_type="llama", arch="LlamaForCausalLM", form="native",
         cfg=None, same_as="llama_rope_yarn", long=True,
         exercises="the llama_rope_yarn model (same weights, same expected numbers, asserted) with config.json in "
                   "the nested form this transformers writes: \"rope_parameters\": {rope_type, rope_theta, factor, "
                   "original_max_position_embeddings}, no top-level rope_theta, no rope_scaling"),
    dict(name="llama_bf16", model_type="llama", arch="LlamaForCausalLM", form="native", save_dtype=torch.bfloat16,
         cfg=dict(rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
         exercises="llama weights stored in bfloat16 (config.json \"dtype\": \"bfloat16\"); logits/greedy from the "
                   "bf16 weights upcast to fp32 with fp32 compute; logits_bf16 from eager bf16 compute"),
    dict(name="llama_sharded", model_type="llama", arch="LlamaForCausalLM", form="native", shard="20KB",
         cfg=dict(rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
         exercises="llama in several safetensors shards + model.safetensors.index.json (weight_map)"),
    dict(name="mistral_sliding", model_type="mistral", arch="MistralForCausalLM", form="legacy_none",
         cfg=dict(sliding_window=6, rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
         exercises="mistral with sliding_window 6 < sequence: query at cache index i attends keys j with "
                   "i-6 < j <= i (6 keys including itself), in prefill and in cached decoding"),
    dict(name="qwen2", model_type="qwen2", arch="Qwen2ForCausalLM", form="legacy_none", qwen_trap=True,
         cfg=dict(tie_word_embeddings=True, rms_norm_eps=1e-6, use_sliding_window=False,
                  rope_parameters=dict(rope_type="default", rope_theta=1000000.0)),
         exercises="qwen2: q/k/v biases, o_proj without bias, tied lm_head (like Qwen2.5-1.5B), rope_theta 1e6, "
                   "rms_norm_eps 1e-6; config.json carries sliding_window 6 and max_window_layers 1 but "
                   "use_sliding_window false (no layer_types), like real Qwen2.5 configs: NO window must be applied"),
    dict(name="phi3", model_type="phi3", arch="Phi3ForCausalLM", form="legacy_none",
         cfg=dict(hidden_size=48, max_position_embeddings=32, original_max_position_embeddings=32,
                  rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.5)),
         exercises="phi3: fused qkv_proj (rows: q | k | v) and gate_up_proj (rows: gate | up), GQA 4/2, head_dim 12, "
                   "partial_rotary_factor 0.5 (rotary on the first 6 dims of each head, inv_freq exponent / 6); "
                   "config.json legacy: top-level rope_theta and partial_rotary_factor, rope_scaling null"),
    dict(name="phi3_longrope", model_type="phi3", arch="Phi3ForCausalLM", form="legacy_type",
         cfg=dict(max_position_embeddings=64, original_max_position_embeddings=16,
                  rope_parameters=dict(rope_type="longrope", rope_theta=10000.0,
                                       short_factor=[1.0, 1.25, 1.5, 2.0], long_factor=[1.0, 3.0, 6.0, 12.0])),
         long=True, short=True, record_rope=True,
         exercises="phi3 longrope: short_factor / long_factor (4 each = head_dim/2), original_max_position_embeddings "
                   "16 (top level, as Phi-3-128k), max_position_embeddings 64 -> attention_factor "
                   "sqrt(1 + ln(64/16)/ln(16)); config.json legacy rope_scaling {\"type\": \"longrope\", "
                   "short_factor, long_factor}"),
    dict(name="gemma", model_type="gemma", arch="GemmaForCausalLM", form="native", gemma=True,
         cfg=dict(head_dim=16, num_key_value_heads=1, tie_word_embeddings=True, rms_norm_eps=1e-6,
                  hidden_act="gelu_pytorch_tanh", eos_token_id=1, bos_token_id=2,
                  rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
         exercises="gemma: embeddings * sqrt(hidden) (the scale cast to the weight dtype), RMSNorm "
                   "x*rsqrt(mean(x^2)+eps)*(1+w) in fp32, gelu_pytorch_tanh MLP, explicit head_dim 16 "
                   "(hidden 32, 4 heads), MQA (1 kv head, like gemma-2b), tied lm_head"),
    dict(name="llama_seqcls", model_type="llama", arch="LlamaForSequenceClassification", form="native", seqcls=True,
         cfg=dict(num_labels=2, rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
         exercises="LlamaForSequenceClassification (score: Linear(hidden, 2, bias=False)), pooled at the rightmost "
                   "token whose input_id != pad_token_id; config.json has no num_labels/id2label (transformers 5.x "
                   "omits them when num_labels is the default 2: take it from score.weight or default to 2)"),
    dict(name="qwen2_seqcls", model_type="qwen2", arch="Qwen2ForSequenceClassification", form="native", seqcls=True,
         write_id2label=True,
         cfg=dict(num_labels=2, rms_norm_eps=1e-6, tie_word_embeddings=True,
                  rope_parameters=dict(rope_type="default", rope_theta=1000000.0)),
         exercises="Qwen2ForSequenceClassification, same pooling rule; config.json with id2label/label2id (2 "
                   "labels) as transformers 4.x wrote it (llama_seqcls has neither: 5.x omits them for 2 labels)"),
]
ROPE_FORM_KEY = {"legacy_type": "type", "legacy_rtype": "rope_type"}


# ---------------------------------------------------------------------------------------------------------------
# Building, saving, loading
# ---------------------------------------------------------------------------------------------------------------
def variant_seed(name):
    # stable across runs and Python versions (no hash())
    return 1000 + sum((i + 1) * ord(c) for i, c in enumerate(name))


def build_config(v):
    cfg = dict(BASE)
    cfg.update(copy.deepcopy(v["cfg"]))
    config = AutoConfig.for_model(v["model_type"], **cfg)
    config.architectures = [v["arch"]]
    return config


def randomize(model, seed, gemma, tied):
    """Deterministic random weights of a healthy scale (logits O(1..10), non-trivial norms and biases). With a tied
    head the residual stream would be dominated by the token's own embedding (greedy then just repeats the last
    token), so tied models get larger o_proj/down_proj outputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            r = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if name.endswith("norm.weight"):
                val = 0.2 * r if gemma else 1.0 + 0.2 * r         # gemma stores w, uses (1 + w)
            elif name.endswith(".bias"):
                val = 0.2 * r
            elif "embed_tokens" in name:
                val = (GEMMA_EMB if gemma else TIED_EMB if tied else 1.0) * r   # gemma multiplies by sqrt(32) ~ 5.66
            else:                                                 # Linear weight (out, in)
                gain = OUT_GAIN if tied and name.endswith(("o_proj.weight", "down_proj.weight")) else 1.2
                val = gain * r / math.sqrt(p.shape[1])
            p.copy_(val.to(p.dtype))


def rewrite_config_json(folder, v):
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        c = json.load(f)
    form = v["form"]
    if form != "native":
        rp = dict(c.pop("rope_parameters"))
        rp.pop("type", None)
        rtype = rp.pop("rope_type")
        c["rope_theta"] = rp.pop("rope_theta")
        if "partial_rotary_factor" in rp:
            prf = rp.pop("partial_rotary_factor")
            if prf != 1.0:
                c["partial_rotary_factor"] = prf
        if v["model_type"] == "phi3":
            rp.pop("original_max_position_embeddings", None)     # phi3 keeps it at the top level only
        if form == "legacy_none":
            assert rtype == "default" and not rp, rp
            c["rope_scaling"] = None
            if c.get("head_dim") == c["hidden_size"] // c["num_attention_heads"]:
                del c["head_dim"]                                  # as in Llama-2 / Mistral-7B config.json
        else:
            c["rope_scaling"] = dict({ROPE_FORM_KEY[form]: rtype}, **rp)
    if v.get("write_id2label"):        # transformers 4.x wrote these; 5.x omits them when num_labels is the default 2
        c["id2label"] = {"0": "LABEL_0", "1": "LABEL_1"}
        c["label2id"] = {"LABEL_0": 0, "LABEL_1": 1}
    if v.get("qwen_trap"):
        c["sliding_window"] = 6
        c["use_sliding_window"] = False
        c["max_window_layers"] = 1
        c.pop("layer_types", None)
    with open(path, "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
        f.write("\n")


def load(folder, v, dtype=torch.float32):
    cls = AutoModelForSequenceClassification if v.get("seqcls") else AutoModelForCausalLM
    m = cls.from_pretrained(folder, dtype=dtype, attn_implementation="eager")
    m.eval()
    assert m.config._attn_implementation == "eager"
    return m


def strip_type(d):
    return {k: val for k, val in d.items() if k != "type"}


# ---------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------
def make_inputs(vocab, seed):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (B, T), generator=gen, dtype=torch.int64)
    mask = torch.ones(B, T, dtype=torch.int64)
    for b, p in enumerate(PADS):
        ids[b, :p] = PAD_ID
        mask[b, :p] = 0
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)   # == GenerationMixin._prepare_position_ids_for_generation
    return ids, mask, pos


def make_right_padded(ids, mask):
    rids = torch.full_like(ids, PAD_ID)
    rmask = torch.zeros_like(mask)
    for b, p in enumerate(PADS):
        n = T - p
        rids[b, :n] = ids[b, p:]
        rmask[b, :n] = 1
    rpos = (rmask.cumsum(-1) - 1).masked_fill(rmask == 0, 0)
    return rids, rmask, rpos


# ---------------------------------------------------------------------------------------------------------------
# Measurements (each on a freshly loaded model)
# ---------------------------------------------------------------------------------------------------------------
def explicit_4d_mask(m, mask, dtype):
    """The additive mask HF builds (causal AND key not padding AND, with a sliding window, key index > query index - W),
    but with a finite -1e30 instead of finfo.min: in float64 HF's eager softmax runs in float32, where
    finfo(float64).min becomes -inf, so every fully-masked (pad) query row is NaN and the NaNs reach the real rows
    through 0 * NaN."""
    n = mask.shape[-1]
    q = torch.arange(n)[:, None]
    k = torch.arange(n)[None, :]
    allowed = (k <= q)[None] & mask.bool()[:, None, :]
    w = getattr(m.config, "sliding_window", None)
    if w is not None:
        allowed = allowed & (k > q - w)[None]
    return torch.where(allowed, 0.0, -1e30).to(dtype)[:, None]


def forward_logits(folder, v, ids, mask, pos, dtype=torch.float32, finite_mask=False):
    m = load(folder, v, dtype)
    am = explicit_4d_mask(m, mask, dtype) if finite_mask else mask
    with torch.no_grad():
        out = m(input_ids=ids, attention_mask=am, position_ids=pos, use_cache=False)
    rope = getattr(getattr(m, "model", None), "rotary_emb", None)
    inv = rope.inv_freq.detach().clone().float() if rope is not None else None
    return out.logits.detach().float(), inv


def rope_recorder(m):
    rec = []
    rope = m.model.rotary_emb

    def hook(mod, args, kwargs, out):
        pos = kwargs["position_ids"] if "position_ids" in kwargs else args[1]
        rec.append(dict(inv_freq=mod.inv_freq.detach().clone().float(), q_len=int(pos.shape[-1]),
                        max_pos=int(pos.max())))
    rope.register_forward_hook(hook, with_kwargs=True)
    return rec


def generate(folder, v, ids, mask, eos):
    m = load(folder, v)
    rec = rope_recorder(m)
    with torch.no_grad():
        out = m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=G, min_new_tokens=G, do_sample=False,
                         pad_token_id=PAD_ID, eos_token_id=eos, output_logits=True, return_dict_in_generate=True)
    new = out.sequences[:, ids.shape[1]:]
    step_logits = torch.stack([x.float() for x in out.logits], dim=1)      # (b, G, V) raw logits
    ok = (new.shape[1] == G and torch.equal(step_logits.argmax(-1), new)
          and not any(int(t) in eos or int(t) == PAD_ID for t in new.flatten()))
    return new.clone(), step_logits, rec, ok


def real_max_abs(a, b, mask):
    sel = mask.bool()
    return float((a[sel].double() - b[sel].double()).abs().max())


# ---------------------------------------------------------------------------------------------------------------
# Checks of the claims each variant makes
# ---------------------------------------------------------------------------------------------------------------
def rotary_dim(config):
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return int(head_dim * config.rope_parameters.get("partial_rotary_factor", 1.0))


def rope_facts(v, m):
    rope = m.model.rotary_emb
    rp = m.config.rope_parameters
    inv = rope.inv_freq.double()
    facts = dict(rope_parameters_as_loaded=rp, rotary_dim=rotary_dim(m.config),
                 inv_freq=[float(x) for x in rope.inv_freq],
                 attention_scaling=float(rope.attention_scaling))
    rtype = rp["rope_type"]
    dim = rotary_dim(m.config)
    if rtype == "llama3":
        old = rp["original_max_position_embeddings"]
        base_inv = 1.0 / (rp["rope_theta"] ** (torch.arange(0, dim, 2).double() / dim))
        wl = 2 * math.pi / base_inv
        bands = ["high" if w < old / rp["high_freq_factor"] else "low" if w > old / rp["low_freq_factor"]
                 else "medium" for w in wl.tolist()]
        assert set(bands) == {"high", "medium", "low"}, bands
        facts["llama3_unscaled_wavelengths"] = wl.tolist()
        facts["llama3_bands"] = bands
    if rtype == "yarn":
        base = rp["rope_theta"]
        orig = rp["original_max_position_embeddings"]
        pos_freqs = base ** (torch.arange(0, dim, 2).double() / dim)
        extrap, interp = 1 / pos_freqs, 1 / (rp["factor"] * pos_freqs)
        w = ((inv - interp) / (extrap - interp)).tolist()   # 1 = extrapolated (unchanged), 0 = interpolated
        frac = [x for x in w if 0.01 < x < 0.99]
        assert frac and min(w) < 0.01 and max(w) > 0.99, w
        facts["yarn_extrapolation_weight_per_freq"] = [round(x, 6) for x in w]
        facts["yarn_defaults_used"] = dict(beta_fast=32, beta_slow=1, truncate=True,
                                           attention_factor=0.1 * math.log(rp["factor"]) + 1.0,
                                           correction_range_from="original_max_position_embeddings")
        assert abs(rope.attention_scaling - (0.1 * math.log(rp["factor"]) + 1.0)) < 1e-12
    return facts


def sliding_window_pattern(m):
    cfg = m.config
    emb = torch.zeros(1, T, cfg.hidden_size)
    mask = create_sliding_window_causal_mask(config=cfg, inputs_embeds=emb, attention_mask=torch.ones(1, T,
                                             dtype=torch.int64), cache=None, position_ids=torch.arange(T)[None])
    allowed = (mask[0, 0] == 0)
    return {f"q{q}": [int(k) for k in torch.nonzero(allowed[q]).flatten()] for q in (0, 5, 6, 10, 19)}


# ---------------------------------------------------------------------------------------------------------------
# One variant
# ---------------------------------------------------------------------------------------------------------------
def run_variant(v, out_dir, results):
    name = v["name"]
    folder = os.path.join(out_dir, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    src = v
    if v.get("same_as"):
        src = dict(next(x for x in VARIANTS if x["name"] == v["same_as"]))
        src.update({k: v[k] for k in ("name", "form", "exercises")})
    seed = variant_seed(v.get("same_as") or name)
    torch.manual_seed(seed)
    config = build_config(src)
    cls = AutoModelForSequenceClassification if v.get("seqcls") else AutoModelForCausalLM
    model = cls.from_config(config, dtype=torch.float32, attn_implementation="eager")
    randomize(model, seed, bool(v.get("gemma")), bool(config.tie_word_embeddings))
    if v.get("save_dtype") is not None:
        model = model.to(v["save_dtype"])
    if not v.get("seqcls"):
        eos = config.eos_token_id
        model.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=eos,
                                                   pad_token_id=PAD_ID)
    model.save_pretrained(folder, max_shard_size=v.get("shard", "50GB"))
    rewrite_config_json(folder, v)
    built_rp = strip_type(config.rope_parameters)
    del model

    # --- the folder as loaded must mean what was built
    m = load(folder, v)
    assert strip_type(m.config.rope_parameters) == built_rp, (m.config.rope_parameters, built_rp)
    if v.get("seqcls"):
        assert m.config.num_labels == 2 and m.score.weight.shape[0] == 2
    facts = dict(variant=name, model_type=v["model_type"], architecture=v["arch"], exercises=v["exercises"],
                 config_form=v["form"], weights_seed=seed, pad_token_id=PAD_ID,
                 eos_token_id=m.config.eos_token_id, left_pads_per_row=PADS, vocab_size=m.config.vocab_size)
    files = sorted(os.listdir(folder))
    if v.get("shard"):
        shards = [f for f in files if f.startswith("model-") and f.endswith(".safetensors")]
        assert len(shards) >= 3 and "model.safetensors.index.json" in files, files
        facts["shards"] = shards
    if v.get("save_dtype") is not None:
        assert json.load(open(os.path.join(folder, "config.json")))["dtype"] == "bfloat16"
    if v.get("qwen_trap"):
        assert m.config.sliding_window is None and set(m.config.layer_types) == {"full_attention"}
        facts["qwen2_sliding_trap"] = ("config.json has sliding_window=6, max_window_layers=1, use_sliding_window="
                                       "false and no layer_types; transformers loads sliding_window=None, layer_types="
                                       + json.dumps(m.config.layer_types))
    if v["model_type"] == "mistral":
        facts["sliding_window_allowed_keys_per_query_index"] = sliding_window_pattern(m)
    tied = bool(m.config.tie_word_embeddings)
    facts["tie_word_embeddings"] = tied
    if not v.get("seqcls"):
        facts.update(rope_facts(v, m))
    if v.get("gemma"):
        facts["gemma_embed_scale_fp32"] = float(m.model.embed_tokens.embed_scale.to(torch.float32))
    del m

    tensors = {}
    vocab = config.vocab_size
    eos = config.eos_token_id
    eos = [] if eos is None else (list(eos) if isinstance(eos, (list, tuple)) else [eos])

    # --- choose the input seed so that no row's greedy continuation (batched or alone) contains an eos id or the
    #     pad id: 10 tokens in every row, pure argmax of the raw logits, no special id among the outputs
    for tries in range(100):
        iseed = seed * 7 + tries
        ids, mask, pos = make_inputs(vocab, iseed)
        if v.get("seqcls"):
            break
        new, step_logits, rec, ok = generate(folder, v, ids, mask, eos)
        alone = []
        for b in range(B):
            row = ids[b:b + 1, PADS[b]:]
            a_new, _, a_rec, a_ok = generate(folder, v, row, torch.ones_like(row), eos)
            ok = ok and a_ok
            alone.append((a_new, a_rec))
        if ok:
            break
    else:
        raise RuntimeError(f"{name}: no input seed without eos in 100 tries")
    facts["input_seed"] = iseed
    tensors.update(input_ids=ids, attention_mask=mask, position_ids=pos)

    if v.get("seqcls"):
        rids, rmask, rpos = make_right_padded(ids, mask)
        cls_l, _ = forward_logits(folder, v, ids, mask, pos)
        r_cls, _ = forward_logits(folder, v, rids, rmask, rpos)
        cls64, _ = forward_logits(folder, v, ids, mask, pos, torch.float64, finite_mask=True)
        tensors.update(cls_logits=cls_l, right_input_ids=rids, right_attention_mask=rmask, right_position_ids=rpos,
                       right_cls_logits=r_cls)
        lengths = (T - torch.tensor(PADS)).tolist()
        facts["pooling"] = ("rightmost index whose input_id != pad_token_id: "
                            "(arange(T) * (input_ids != pad)).argmax(-1) "
                            "-- by input_ids, not attention_mask; left-padded batch -> index 19 for every row; "
                            f"right-padded batch -> indices {[n - 1 for n in lengths]}")
        facts["cls_left_vs_right_padded_max_abs"] = float((cls_l - r_cls).abs().max())
        facts["fp32_vs_fp64_cls_logits_max_abs"] = float((cls_l.double() - cls64.double()).abs().max())
        save(folder, tensors, facts, results)
        return tensors

    # --- batched logits, fresh model
    logits, inv = forward_logits(folder, v, ids, mask, pos)
    tensors["logits"] = logits
    logits64, _ = forward_logits(folder, v, ids, mask, pos, torch.float64, finite_mask=True)
    facts["fp32_vs_fp64_logits_max_abs_real_positions"] = real_max_abs(logits, logits64, mask)
    plain64, _ = forward_logits(folder, v, ids, mask, pos, torch.float64)
    facts["hf_float64_with_2d_padding_mask_is_nan"] = bool(torch.isnan(plain64).any())
    l32_4d, _ = forward_logits(folder, v, ids, mask, pos, torch.float32, finite_mask=True)
    assert real_max_abs(logits, l32_4d, mask) == 0.0      # the explicit mask is exactly HF's mask on real positions
    facts["logits_abs_max_real_positions"] = float(logits[mask.bool()].abs().max())
    if v.get("save_dtype") is not None:
        lb, _ = forward_logits(folder, v, ids, mask, pos, torch.bfloat16)
        tensors["logits_bf16"] = lb
        facts["bf16_compute_vs_fp32_logits_max_abs_real_positions"] = real_max_abs(lb, logits, mask)
    if v["model_type"] == "mistral":
        # show the window is active: same model without the window gives different logits after index 5
        m_nw = load(folder, v)
        m_nw.config.sliding_window = None
        m_nw.model.config.sliding_window = None
        with torch.no_grad():
            lnw = m_nw(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits.float()
        d = (lnw - logits).abs().amax(-1)[0]
        facts["row0_max_abs_diff_vs_no_window_per_index"] = [float(x) for x in d]
        assert float(d[:6].max()) == 0.0 and float(d[6:].min()) > 1e-4

    # --- greedy
    tensors["greedy"] = new
    tensors["greedy_step_logits"] = step_logits
    same = []
    for b in range(B):
        tensors[f"greedy_alone_{b}"] = alone[b][0]
        same.append(bool(torch.equal(alone[b][0][0], new[b])))
    facts["greedy_batched_equals_alone_per_row"] = same
    facts["greedy"] = new.tolist()
    if v.get("record_rope"):
        tensors["greedy_rope_inv_freq"] = torch.stack([r["inv_freq"] for r in rec])
        facts["greedy_forwards_batched"] = [dict(q_len=r["q_len"], max_position=r["max_pos"]) for r in rec]
        facts["greedy_forwards_alone"] = [[dict(q_len=r["q_len"], max_position=r["max_pos"],
                                                inv_freq=[float(x) for x in r["inv_freq"]]) for r in a[1]]
                                          for a in alone]
    if inv is not None:
        tensors["rope_inv_freq"] = load(folder, v).model.rotary_emb.inv_freq.detach().clone().float()

    # --- long / short single forwards on fresh models
    gen = torch.Generator().manual_seed(seed + 17)
    if v.get("long"):
        lids = torch.randint(3, vocab, (1, LONG_L), generator=gen, dtype=torch.int64)
        lmask = torch.ones_like(lids)
        lpos = torch.arange(LONG_L)[None]
        ll, linv = forward_logits(folder, v, lids, lmask, lpos)
        ll64, _ = forward_logits(folder, v, lids, lmask, lpos, torch.float64)
        tensors.update(long_ids=lids, long_logits=ll, long_rope_inv_freq=linv)
        facts["long_inv_freq"] = [float(x) for x in linv]
        facts["fp32_vs_fp64_long_logits_max_abs"] = real_max_abs(ll, ll64, lmask)
    if v.get("short"):
        sids = torch.randint(3, vocab, (1, SHORT_L), generator=gen, dtype=torch.int64)
        smask = torch.ones_like(sids)
        sl, sinv = forward_logits(folder, v, sids, smask, torch.arange(SHORT_L)[None])
        tensors.update(short_ids=sids, short_logits=sl)
        facts["short_inv_freq"] = [float(x) for x in sinv]

    # --- variant-specific assertions about thresholds
    rp = facts["rope_parameters_as_loaded"]
    if rp["rope_type"] == "dynamic":
        init = tensors["rope_inv_freq"]
        assert torch.equal(torch.tensor(facts["short_inv_freq"]), init)          # 12 <= 16: unscaled
        assert not torch.equal(tensors["long_rope_inv_freq"], init)               # 48 > 16: scaled
        g = tensors["greedy_rope_inv_freq"]
        assert all(not torch.equal(g[i], g[i + 1]) for i in range(G - 1))         # recomputed at every step
        base, dim, mpe, f = rp["rope_theta"], facts["rotary_dim"], 16, rp["factor"]
        for i, r in enumerate(rec):
            L = max(r["max_pos"] + 1, mpe)
            nb = base * ((f * L / mpe) - (f - 1)) ** (dim / (dim - 2))
            exp = 1.0 / (nb ** (torch.arange(0, dim, 2).double() / dim))
            assert torch.allclose(r["inv_freq"].double(), exp, rtol=1e-6, atol=0), (i, r)
    if rp["rope_type"] == "longrope":
        init = tensors["rope_inv_freq"]
        assert torch.equal(torch.tensor(facts["short_inv_freq"]), init)
        assert not torch.equal(tensors["long_rope_inv_freq"], init)
        assert torch.equal(tensors["greedy_rope_inv_freq"][0], tensors["long_rope_inv_freq"])  # batch max pos 19
    if v.get("same_as"):
        ref = results[v["same_as"]]["tensors"]
        assert set(ref) == set(tensors), (set(ref) ^ set(tensors))
        for k in ref:
            assert torch.equal(ref[k], tensors[k]), k
        facts["identical_to"] = v["same_as"]
    save(folder, tensors, facts, results)
    return tensors


def save(folder, tensors, facts, results):
    tensors = {k: t.contiguous() for k, t in tensors.items()}
    save_file(tensors, os.path.join(folder, "expected.safetensors"), metadata={"generator": "families_reference.py"})
    facts["versions"] = versions()
    facts["expected_keys"] = {k: f"{str(t.dtype).replace('torch.', '')} {list(t.shape)}"
                              for k, t in sorted(tensors.items())}
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(facts, f, indent=2, sort_keys=True)
        f.write("\n")
    results[facts["variant"]] = dict(tensors=tensors, facts=facts)


def versions():
    return dict(transformers=transformers.__version__, torch=torch.__version__, safetensors=safetensors.__version__,
                numpy=numpy.__version__, python=platform.python_version())


def main():
    if transformers.__version__ != WRITTEN_WITH:
        print(f"warning: transformers {transformers.__version__}, the committed fixtures were written with "
              f"{WRITTEN_WITH}", file=sys.stderr)
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "fixtures", "families")
    os.makedirs(out_dir, exist_ok=True)
    results = {}
    for v in VARIANTS:
        run_variant(v, out_dir, results)
        f = results[v["name"]]["facts"]
        tol = f.get("fp32_vs_fp64_logits_max_abs_real_positions", f.get("fp32_vs_fp64_cls_logits_max_abs"))
        print(f"{v['name']:20s} fp32-vs-fp64 {tol:.2e}"
              f"  batched==alone {f.get('greedy_batched_equals_alone_per_row')}")
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(dict(generator="tests/reference/families_reference.py", versions=versions(),
                       variants=[v["name"] for v in VARIANTS]), f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
