"""What attention adds to a SmolLM2 decode step beyond the linear-layer floor.

One decode step at B rows with L cached positions: the model's linear layers alone (as the
floor of bench_pretrained.py runs them, plus the head) against its 30 attention calls alone
on fp32 K/V of that size (one query per row, GQA packed as transformers 5.25 does), in the
same process, alternating, median of 5. Attention at one query per row reads every cached
key and value once per step and does little work per byte: a loop that reaches the linear
floor still pays this on top of it.

    python benchmarks/bench_decode_attention.py [B] [L] [threads]   # default 128 96 (the lm case's mean length) 2
"""

import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from collapselab.models import kernels  # noqa: E402

B = int(sys.argv[1]) if len(sys.argv) > 1 else 128
L = int(sys.argv[2]) if len(sys.argv) > 2 else 96
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
print(f"machine: {common.machine()}")
m = AutoModelForCausalLM.from_pretrained(common.smollm2_folder(), dtype=torch.float32).eval()
kernels.install(m)
c = m.config
H, Hk, D = c.num_attention_heads, c.num_key_value_heads, c.hidden_size // c.num_attention_heads
x, h = torch.randn(B, c.hidden_size), torch.randn(B, c.intermediate_size)
kv = [(torch.randn(B, Hk, L, D), torch.randn(B, Hk, L, D)) for _ in m.model.layers]  # distinct per layer: no cache reuse
q = torch.randn(B, Hk, H // Hk, D)


def linears():
    for layer in m.model.layers:
        a, p = layer.self_attn, layer.mlp
        a.q_proj(x), a.k_proj(x), a.v_proj(x), a.o_proj(x), p.gate_proj(x), p.up_proj(x), p.down_proj(h)
    m.lm_head(x)


def attention():
    for k, v in kv:
        F.scaled_dot_product_attention(q, k, v)


t = {"linears": [], "attention": []}
with torch.inference_mode():
    linears()
    attention()  # warm-up
    for _ in range(5):
        for name, f in (("linears", linears), ("attention", attention)):
            start = time.perf_counter()
            f()
            t[name].append(time.perf_counter() - start)
lin, att = statistics.median(t["linears"]), statistics.median(t["attention"])
kv_mb = 2 * len(kv) * B * Hk * L * D * 4 / 1e6
print(f"B={B} L={L} threads={torch.get_num_threads()}: linears {lin*1e3:.0f} ms, attention {att*1e3:.0f} ms "
      f"= {att/lin:.0%} of the linears; KV read {kv_mb:.0f} MB -> {kv_mb/1e3/att:.1f} GB/s; load {os.getloadavg()[0]:.1f}")
print(f"machine at the end: {common.machine()}")
