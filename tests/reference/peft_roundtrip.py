"""Loads what Lethe exported for a Llama-family model in peft and transformers and compares the
logits with Lethe's own (tests/numeric/test_families.cpp, FamiliesExport, runs it when
LETHE_TRANSFORMERS_PYTHON names a python with transformers and peft, e.g. third_party/venv).

    python peft_roundtrip.py BASE_MODEL_DIR EXPORT_DIR

EXPORT_DIR holds adapter/ (a PEFT LoRA adapter), merged/ (a transformers folder with the
adapters folded in) and lethe_logits.safetensors (input_ids, attention_mask, Lethe's logits
with the adapter on). Exit 0 when both load and match within 1e-4 on real positions.
Written against transformers 5.24.0 and peft 0.21.2 (third_party/venv).
"""
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM


def positions_diff(a, b, mask):
    m = mask.bool().unsqueeze(-1).expand_as(a)
    return (a - b).abs().masked_select(m).max().item()


def main():
    base_dir, export = sys.argv[1], sys.argv[2]
    t = load_file(f"{export}/lethe_logits.safetensors")
    ids, mask, lethe = t["input_ids"], t["attention_mask"], t["logits"]
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager")
        peft_model = PeftModel.from_pretrained(base, f"{export}/adapter").eval()
        via_peft = peft_model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        merged = AutoModelForCausalLM.from_pretrained(f"{export}/merged", dtype=torch.float32, attn_implementation="eager").eval()
        via_merged = merged(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    d_peft, d_merged = positions_diff(via_peft, lethe, mask), positions_diff(via_merged, lethe, mask)
    print(f"{base_dir}: peft adapter vs Lethe {d_peft:.2e}, transformers merged folder vs Lethe {d_merged:.2e}")
    sys.exit(0 if d_peft <= 1e-4 and d_merged <= 1e-4 else 1)


if __name__ == "__main__":
    main()
