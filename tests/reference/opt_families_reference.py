#!/usr/bin/env python3
"""Hugging Face reference fixtures for Lethe's OPT, in the form of tests/fixtures/families (the
Llama-like families' fixtures, tests/reference/families_reference.py), so that OPT is checked
against transformers itself beside the independent implementation of opt_reference.py: by
tests/numeric/test_families.cpp on the CPU and by bench/device_logits.cpp on a GPU.

Variants (tiny random models built from a config, fixed seeds; nothing is downloaded):
    opt              pre-LN, tied head, E == H (OPT-125m ... 2.7b, 6.7b, ...)
    opt_postln_proj  post-LN (do_layer_norm_before false), word_embed_proj_dim < hidden_size with
                     project_in/project_out (OPT-350m's layout)

For each: OUT_DIR/<variant>/config.json, generation_config.json, model.safetensors
(save_pretrained) and expected.safetensors:
    input_ids, attention_mask   int64 (3, 20): row 0 full, rows 1 and 2 LEFT-padded (4 and 9 pads)
    logits                      f32 (3, 20, V): eager, fp32, model.eval()
    greedy                      int64 (3, 10): generate(max_new_tokens=10, min_new_tokens=10, greedy)
    greedy_step_logits          f32 (3, 10, V): the raw logits of every generate step
    greedy_alone_<b>            int64 (1, 10): row b alone, unpadded
and OUT_DIR/opt_manifest.json (the variants and versions). The input seed is chosen so that no
generated token is the pad or eos id and no step's top two logits are within 1e-3 (a tie would
make the greedy choice depend on rounding).

    third_party/torch2/bin/python tests/reference/opt_families_reference.py [OUT_DIR]

Written by: transformers 5.24.0, torch 2.15.0, safetensors 0.8.0, CPU, one thread.
"""
import json
import os
import platform
import sys

import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, OPTConfig

transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

B, T, G, V = 3, 20, 10, 96
PAD, BOS, EOS = 1, 2, 2
PADS = [0, 4, 9]

VARIANTS = {
    "opt": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64, word_embed_proj_dim=32,
                do_layer_norm_before=True),
    "opt_postln_proj": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64,
                            word_embed_proj_dim=16, do_layer_norm_before=False),
}


def build(name, seed):
    cfg = OPTConfig(vocab_size=V, max_position_embeddings=64, pad_token_id=PAD, bos_token_id=BOS,
                    eos_token_id=EOS, dropout=0.1, attention_dropout=0.0, activation_function="relu",
                    **VARIANTS[name])
    torch.manual_seed(seed)
    m = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    # transformers' init gives std 0.02 weights and zero biases; make every tensor matter.
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith("bias") or "layer_norm" in n:
                p.add_(0.1 * torch.randn_like(p))
            else:
                p.normal_(0, 0.15)
    return m.eval()


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, V, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    for b, n in enumerate(PADS):
        ids[b, :n] = PAD
        mask[b, :n] = 0
    return ids, mask


def generate(m, ids, mask):
    out = m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=G, min_new_tokens=G, do_sample=False,
                     pad_token_id=PAD, eos_token_id=EOS, output_logits=True, return_dict_in_generate=True)
    return out.sequences[:, ids.shape[1]:], torch.stack(out.logits, 1)


def run(name, out_dir):
    m = build(name, 1000 + len(name))
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    m.save_pretrained(folder)
    for seed in range(200):
        ids, mask = inputs(seed)
        with torch.no_grad():
            logits = m(input_ids=ids, attention_mask=mask).logits
            greedy, steps = generate(m, ids, mask)
            alone = []
            for b in range(B):
                row = ids[b:b + 1, PADS[b]:]
                alone.append(generate(m, row, torch.ones_like(row))[0])
        top2 = steps.topk(2, -1).values
        if (greedy == PAD).any() or (greedy == EOS).any() or any((a == EOS).any() or (a == PAD).any() for a in alone):
            continue
        if (top2[..., 0] - top2[..., 1]).min() < 1e-3 or not torch.equal(steps.argmax(-1), greedy):
            continue
        break
    else:
        sys.exit(f"{name}: no input seed gave unambiguous greedy tokens")
    t = {"input_ids": ids, "attention_mask": mask, "logits": logits.float(), "greedy": greedy,
         "greedy_step_logits": steps.float()}
    for b in range(B):
        t[f"greedy_alone_{b}"] = alone[b]
    save_file({k: v.contiguous() for k, v in t.items()}, os.path.join(folder, "expected.safetensors"))
    print(f"{name}: input seed {seed}, max |logit| {logits[mask.bool()].abs().max():.3f}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "fixtures", "families")
    for name in VARIANTS:
        run(name, out_dir)
    manifest = {"generator": "tests/reference/opt_families_reference.py", "variants": list(VARIANTS),
                "versions": {"python": platform.python_version(), "torch": torch.__version__,
                             "transformers": transformers.__version__, "safetensors": safetensors.__version__}}
    with open(os.path.join(out_dir, "opt_manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
