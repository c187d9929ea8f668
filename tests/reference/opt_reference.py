#!/usr/bin/python3
"""Independent OPT reference for Lethe's numeric tests, written from the semantics of Hugging
Face's modeling_opt.py (OPTLearnedPositionalEmbedding with offset 2 and positions from the
attention-mask cumsum, pre-/post-LN decoder layers, project_in/project_out, tied lm_head).

Writes, for each case, a Hugging Face folder (config.json + model.safetensors) and
expected.safetensors with the inputs and the logits (and greedy tokens with a KV cache):

    /usr/bin/python3 opt_reference.py OUTDIR
"""
import collections
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402

CASES = {
    # name: config overrides, weight dtype
    "pre_ln": ({}, torch.float32),
    "post_ln_project": ({"do_layer_norm_before": False, "word_embed_proj_dim": 12}, torch.float32),
    "no_bias": ({"enable_bias": False}, torch.float32),
    "no_final_ln": ({"_remove_final_layer_norm": True}, torch.float32),
    "bf16_weights": ({}, torch.bfloat16),
    "gelu_untied": ({"activation_function": "gelu", "tie_word_embeddings": False}, torch.float32),
}

BASE = dict(model_type="opt", architectures=["OPTForCausalLM"], vocab_size=53, hidden_size=16,
            num_hidden_layers=2, num_attention_heads=4, ffn_dim=40, max_position_embeddings=40,
            word_embed_proj_dim=16, do_layer_norm_before=True, _remove_final_layer_norm=False,
            enable_bias=True, layer_norm_elementwise_affine=True, activation_function="relu",
            tie_word_embeddings=True, dropout=0.1, attention_dropout=0.0, pad_token_id=1,
            bos_token_id=2, eos_token_id=2)


def make_weights(cfg, gen):
    H, E, F_, V, P = cfg["hidden_size"], cfg["word_embed_proj_dim"], cfg["ffn_dim"], cfg["vocab_size"], cfg["max_position_embeddings"]
    bias = cfg["enable_bias"]
    w = {}

    def rnd(*shape, std=0.2):
        return torch.randn(*shape, generator=gen) * std

    p = "model.decoder."
    w[p + "embed_tokens.weight"] = rnd(V, E, std=0.5)
    w[p + "embed_positions.weight"] = rnd(P + 2, H, std=0.5)
    if E != H:
        w[p + "project_in.weight"] = rnd(H, E)
        w[p + "project_out.weight"] = rnd(E, H)
    if cfg["do_layer_norm_before"] and not cfg["_remove_final_layer_norm"]:
        w[p + "final_layer_norm.weight"] = 1 + rnd(H, std=0.1)
        w[p + "final_layer_norm.bias"] = rnd(H, std=0.1)
    for i in range(cfg["num_hidden_layers"]):
        l = f"{p}layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            w[l + f"self_attn.{proj}.weight"] = rnd(H, H, std=0.3)
            if bias:
                w[l + f"self_attn.{proj}.bias"] = rnd(H, std=0.1)
        for ln in ("self_attn_layer_norm", "final_layer_norm"):
            w[l + ln + ".weight"] = 1 + rnd(H, std=0.1)
            w[l + ln + ".bias"] = rnd(H, std=0.1)
        w[l + "fc1.weight"] = rnd(F_, H, std=0.3)
        w[l + "fc2.weight"] = rnd(H, F_, std=0.3)
        if bias:
            w[l + "fc1.bias"] = rnd(F_, std=0.1)
            w[l + "fc2.bias"] = rnd(H, std=0.1)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = rnd(V, E, std=0.5)
    return w


def act(name, x):
    if name == "relu":
        return F.relu(x)
    if name == "gelu":
        return F.gelu(x)
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return F.gelu(x, approximate="tanh")
    raise ValueError(name)


def forward(cfg, w, ids, mask, past=None, states=None):
    """ids (B,T), mask (B, S) with S = past_len + T. past: list of (k, v) per layer, (B,NH,past,hd).
    Returns logits (B,T,V) in float32 and the new past. states, when a list, receives the residual
    stream (B,T,H) in the weights' dtype as transformers' output_hidden_states gives it before the
    final layer norm: the embeddings (positions added) and each decoder layer's output (L + 1)."""
    p = "model.decoder."
    H, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = H // NH
    B, T = ids.shape
    past_len = 0 if past is None else past[0][0].shape[2]
    dt = w[p + "embed_tokens.weight"].dtype
    x = F.embedding(ids, w[p + "embed_tokens.weight"])
    if p + "project_in.weight" in w:
        x = F.linear(x, w[p + "project_in.weight"])
    pos = (torch.cumsum(mask, dim=1) * mask).long() - 1
    pos = pos[:, past_len:]
    x = x + F.embedding(pos + 2, w[p + "embed_positions.weight"])
    S = past_len + T
    causal = torch.ones(T, S, dtype=torch.bool).tril(diagonal=past_len)
    allowed = causal[None, None] & mask[:, None, None, :].bool()
    neg = torch.finfo(dt).min
    new_past = []
    pre = cfg["do_layer_norm_before"]

    def ln(name, h):
        return F.layer_norm(h, (H,), w[name + ".weight"], w[name + ".bias"], 1e-5)

    def lin(name, h):
        return F.linear(h, w[name + ".weight"], w.get(name + ".bias"))

    for i in range(cfg["num_hidden_layers"]):
        if states is not None:
            states.append(x)
        l = f"{p}layers.{i}."
        res = x
        h = ln(l + "self_attn_layer_norm", x) if pre else x
        q = lin(l + "self_attn.q_proj", h) * (hd ** -0.5)
        k = lin(l + "self_attn.k_proj", h)
        v = lin(l + "self_attn.v_proj", h)
        q, k, v = (t.view(B, T, NH, hd).transpose(1, 2) for t in (q, k, v))
        if past is not None:
            k = torch.cat([past[i][0], k], dim=2)
            v = torch.cat([past[i][1], v], dim=2)
        new_past.append((k, v))
        s = q @ k.transpose(-1, -2)
        s = s.masked_fill(~allowed, neg)
        a = torch.softmax(s.float(), dim=-1).to(dt)
        o = (a @ v).transpose(1, 2).reshape(B, T, H)
        o = lin(l + "self_attn.out_proj", o)
        x = res + o
        if not pre:
            x = ln(l + "self_attn_layer_norm", x)
        res = x
        h = ln(l + "final_layer_norm", x) if pre else x
        h = lin(l + "fc2", act(cfg["activation_function"], lin(l + "fc1", h)))
        x = res + h
        if not pre:
            x = ln(l + "final_layer_norm", x)
    if states is not None:
        states.append(x)
    if p + "final_layer_norm.weight" in w:
        x = ln(p + "final_layer_norm", x)
    if p + "project_out.weight" in w:
        x = F.linear(x, w[p + "project_out.weight"])
    head = w.get("lm_head.weight", w[p + "embed_tokens.weight"])
    return F.linear(x, head).float(), new_past


def greedy(cfg, w, prompt, n_new):
    """Greedy decoding with a KV cache, one token at a time."""
    ids = torch.tensor([prompt])
    mask = torch.ones_like(ids)
    logits, past = forward(cfg, w, ids, mask)
    out = []
    for _ in range(n_new):
        nxt = int(logits[0, -1].argmax())
        out.append(nxt)
        mask = torch.cat([mask, torch.ones(1, 1, dtype=mask.dtype)], dim=1)
        logits, past = forward(cfg, w, torch.tensor([[nxt]]), mask, past)
    return out


def main(outdir):
    for name, (over, wdt) in CASES.items():
        cfg = dict(BASE, **over)
        if wdt == torch.bfloat16:
            cfg["torch_dtype"] = "bfloat16"
        gen = torch.Generator().manual_seed(sum(name.encode()) + 7)
        w = {k: v.to(wdt) for k, v in make_weights(cfg, gen).items()}
        d = os.path.join(outdir, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        stored = dict(w)
        safetensors_py.save(os.path.join(d, "model.safetensors"), stored, {"format": "pt"})
        # The reference computes in float32 from the stored weights (bf16 weights upcast exactly).
        wf = {k: v.float() for k, v in w.items()}
        V = cfg["vocab_size"]
        # Right-padded and left-padded batches of the same three sequences.
        seqs = [[2, 5, 9, 11, 17, 23, 4, 8], [2, 30, 31], [2, 44, 7, 7, 19]]
        Tm = max(len(s) for s in seqs)
        right = torch.ones(len(seqs), Tm, dtype=torch.long)
        rmask = torch.zeros(len(seqs), Tm, dtype=torch.long)
        left = torch.ones(len(seqs), Tm, dtype=torch.long)
        lmask = torch.zeros(len(seqs), Tm, dtype=torch.long)
        for b, s in enumerate(seqs):
            right[b, :len(s)] = torch.tensor(s)
            rmask[b, :len(s)] = 1
            left[b, Tm - len(s):] = torch.tensor(s)
            lmask[b, Tm - len(s):] = 1
        r_logits, _ = forward(cfg, wf, right, rmask)
        l_logits, _ = forward(cfg, wf, left, lmask)
        exp = {"right_ids": right, "right_mask": rmask, "right_logits": r_logits,
               "left_ids": left, "left_mask": lmask, "left_logits": l_logits,
               "greedy_prompt": torch.tensor(seqs[0][:5]),
               "greedy_tokens": torch.tensor(greedy(cfg, wf, seqs[0][:5], 12))}
        safetensors_py.save(os.path.join(d, "expected.safetensors"), exp)
        assert r_logits.shape[-1] == V
        if name == "pre_ln":
            write_bin_copies(outdir, cfg, w, exp)
    print(f"opt_reference: wrote {len(CASES)} cases to {outdir}")


def write_bin_copies(outdir, cfg, w, exp):
    """The pre_ln weights as pytorch_model.bin the way published OPT files are: an OrderedDict
    state dict with _metadata, 'decoder.*' keys and a stored lm_head that shares the embedding's
    storage; once in the zip format and once in the legacy format."""
    sd = collections.OrderedDict((k[len("model."):], v.clone()) for k, v in w.items())
    sd["lm_head.weight"] = sd["decoder.embed_tokens.weight"]
    sd._metadata = collections.OrderedDict({"": {"version": 1}})
    for sub, zip_format in (("pre_ln_bin", True), ("legacy_bin", False)):
        d = os.path.join(outdir, sub)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        torch.save(sd, os.path.join(d, "pytorch_model.bin"), _use_new_zipfile_serialization=zip_format)
        safetensors_py.save(os.path.join(d, "expected.safetensors"), exp)


if __name__ == "__main__":
    torch.manual_seed(0)
    main(sys.argv[1])
