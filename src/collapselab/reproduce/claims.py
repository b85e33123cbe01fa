"""A claim file: a published finding in data, the configs that test it and the checks that decide it.

    configs/reproductions/<name>.yaml     (shipped as package data, like the ready configs)

    name: gerstgrasser
    title: Accumulating real and synthetic data avoids model collapse
    paper: {title: ..., authors: ..., year: 2024, venue: COLM 2024, arxiv: "2404.01413"}
    setting: "GPT-2 9M from scratch on TinyStories, ..."
    config: repro-gerstgrasser              # laptop size (CPU): a ready config's name or a path
    paper_config: repro-gerstgrasser-gpu    # paper size (GPU)
    cost: {cpu: "measured: ...", gpu: "estimate: ..."}
    metric: cross_entropy                   # the checks' and the figures' metric unless they name one
    figures:                                # the paper's numbers, each with where it comes from
      - {arm: replace, generation: 4, value: 2.39, source: "Table 2, GPT-2 9M"}
    checks:                                 # what "reproduced" rests on
      - {id: replace-rises, claim: "...", expr: "replace.g4 - replace.g0", expect: positive,
         paper: {value: 0.57, source: "Table 2: 2.39 - 1.82"}}
    notes: "what was tried, why a verdict is what it is"

A path in `config` / `paper_config` that is not a ready config's name is read relative to
the claim file's folder. `claim_problems` checks a claim against the config it runs: every
arm a check or a figure names exists, every generation a check reads is run.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, model_validator

from collapselab.config import ExperimentConfig
from collapselab.config.files import ready_dir
from collapselab.config.loading import Block, load_model_file
from collapselab.errors import ConfigError
from collapselab.metrics.registry import metric_info
from collapselab.reproduce.expressions import ExpressionError, Linear, Term, parse


class Paper(Block):
    title: str = Field(description="The paper's title (or the project's name when there is no paper).")
    authors: str = Field(description="Its authors, as the paper lists them (may be shortened with '...').")
    year: int = Field(description="Year of publication.")
    venue: str | None = Field(None, description="Where it was published (journal, conference, workshop); None: a preprint or a repository.")
    arxiv: str | None = Field(None, description="arXiv id, e.g. 2404.01413.")
    url: str | None = Field(None, description="Where to read it when it has no arXiv id (a DOI or a repository).")

    def reference(self) -> str:
        """'Gerstgrasser, Schaeffer, ... (2024), "Is model collapse inevitable?", COLM 2024, arXiv:2404.01413'."""
        parts = [f"{self.authors} ({self.year})", f'"{self.title}"']
        parts += [p for p in (self.venue, f"arXiv:{self.arxiv}" if self.arxiv else None, self.url) if p]
        return ", ".join(parts)


class Cost(Block):
    cpu: str = Field(description="Wall time of the laptop-size config on 2 CPU cores, measured (with the date) or marked as an estimate.")
    gpu: str = Field(description="Wall time of the paper-size config on a GPU, measured or marked as an estimate.")


class PaperFigure(Block):
    source: str = Field(description="Where the number comes from (table, figure, text) and how sure it is (evidence label).")
    value: float | None = Field(None, description="The number the paper reports; None where it gives words only (`quote`).")
    quote: str | None = Field(None, description="The paper's words, where it gives no number.")
    arm: str | None = Field(None, description="Our arm the figure corresponds to (drawn beside its curve when `generation` is set too).")
    generation: int | None = Field(None, ge=0, description="Our generation it corresponds to (0: the model trained on human data).")
    metric: str | None = Field(None, description="The metric it is in (default: the claim's `metric`); free text where the paper measures something this lab does not.")

    @model_validator(mode="after")
    def _check(self) -> PaperFigure:
        if self.value is None and self.quote is None:
            raise ValueError("a figure needs a value or a quote")
        return self


class PaperValue(Block):
    value: float | None = Field(None, description="The paper's value of the check's expression; None where it gives no number.")
    source: str = Field(description="How it was computed from the paper's figures, and where they come from.")


class Check(Block):
    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", description="Short name of the check.")
    claim: str = Field(description="The claim in words.")
    expr: str = Field(description="A linear combination of ARM.gN[:METRIC] terms, per seed (reproduce/expressions.py).")
    expect: Literal["positive", "negative"] = Field(description="The side of 0 the claim puts the expression on.")
    metric: str | None = Field(None, description="The metric of its bare ARM.gN terms (default: the claim's `metric`).")
    paper: PaperValue | None = Field(None, description="The paper's value of the expression, reported beside ours (never part of the verdict).")

    _parsed: Linear | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _parse(self) -> Check:
        try:
            self._parsed = parse(self.expr)
        except ExpressionError as e:
            raise ValueError(f"check {self.id!r}: expr {e}") from None
        return self

    @property
    def linear(self) -> Linear:
        assert self._parsed is not None  # set by the validator
        return self._parsed


class Claim(Block):
    name: str = Field(pattern=r"^[a-z0-9\-]+$", description="The claim's name (`collapselab reproduce NAME`).")
    title: str = Field(description="The finding in one line.")
    paper: Paper
    setting: str = Field(description="What the paper did: model, data, decoding, generations, seeds.")
    config: str = Field(description="The laptop-size (CPU) config: a ready config's name or a path (relative to the claim file).")
    paper_config: str = Field(description="The paper-size (GPU) config: a ready config's name or a path.")
    cost: Cost
    metric: str = Field(description="The metric of the checks and figures that name none.")
    figures: list[PaperFigure] = Field(default_factory=list, description="The paper's numbers, copied with their sources.")
    checks: list[Check] = Field(min_length=1, description="What the verdict rests on: every check reproduced -> reproduced.")
    notes: str = Field("", description="What was tried, and why a verdict is what it is.")

    _source: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _check(self) -> Claim:
        ids = [c.id for c in self.checks]
        if len(set(ids)) != len(ids):
            raise ValueError(f"checks: ids must be unique, got {ids}")
        return self

    @property
    def source(self) -> str:
        return str(self._source) if self._source is not None else f"claim {self.name!r}"

    def config_path(self, gpu: bool = False) -> Path:
        """The YAML file of the laptop-size config, or with `gpu` the paper-size one."""
        name = self.paper_config if gpu else self.config
        shipped = ready_dir() / f"{name.removesuffix('.yaml')}.yaml"
        if "/" not in name and shipped.is_file():
            return shipped
        path = Path(name)
        if not path.is_absolute() and self._source is not None:
            path = self._source.parent / path
        if not path.is_file():
            raise ConfigError(f"{self.source}: {'paper_config' if gpu else 'config'}: {name!r} is neither a ready config nor a file")
        return path

    def metrics(self) -> list[str]:
        """The metrics its checks and figures read (details left out), the claim's first."""
        names = [self.metric]
        for c in self.checks:
            names += [term_metric(t, c.metric or self.metric)[0] for t, _ in c.linear.terms]
        names += [f.metric for f in self.figures if f.metric and f.arm]  # figures beside a curve of ours
        return list(dict.fromkeys(names))


def term_metric(term: Term, default: str) -> tuple[str, list[str]]:
    """(metric, path into its details) a term reads: `replace.g4` -> (default, []),
    `a.g2:synthetic_perplexity.p99` -> ("synthetic_perplexity", ["p99"]). A registered name
    that holds dots (an MMLU family member) is read whole."""
    if term.metric is None:
        return default, []
    parts = term.metric.split(".")
    for k in range(len(parts), 0, -1):
        name = ".".join(parts[:k])
        try:
            metric_info(name)
        except KeyError:
            continue
        return name, parts[k:]
    return parts[0], parts[1:]  # unknown: `claim_problems` names it


def claims_dir() -> Path:
    """The shipped claim files (configs/reproductions inside the package)."""
    return Path(str(resources.files("collapselab") / "configs" / "reproductions"))


def claim_names(folder: Path | None = None) -> list[str]:
    """The names of the claim files in `folder` (default: the shipped ones), sorted."""
    return sorted(p.stem for p in (folder or claims_dir()).glob("*.yaml"))


def load_claim(name_or_path: str | Path) -> Claim:
    """A claim by its name (a shipped claim file) or its path.

    Raises:
        ConfigError: No such claim, or a key or value that is wrong (naming the file and the key).
    """
    path = Path(name_or_path)
    if not path.is_file():
        path = claims_dir() / f"{str(name_or_path).removesuffix('.yaml')}.yaml"
        if not path.is_file():
            raise ConfigError(f"{name_or_path}: no such claim; the claims are {', '.join(claim_names())}")
    claim = load_model_file(Claim, path)
    claim._source = path
    return claim


def claim_problems(claim: Claim, cfg: ExperimentConfig) -> list[str]:
    """What in `claim` the config `cfg` cannot answer, one line each naming the claim file,
    the check (or figure) and the term: an arm it does not have, a generation it does not
    run, a metric the registry does not know."""
    arms, g_max = {a.name for a in cfg.arms}, cfg.experiment.generations
    where = claim.source
    problems = []
    for c in claim.checks:
        for term, _ in c.linear.terms:
            if term.arm not in arms:
                problems.append(f"{where}: check {c.id!r}: {term}: no arm {term.arm!r} in {cfg.experiment.name} (arms: {sorted(arms)})")
            elif term.generation >= g_max:
                problems.append(f"{where}: check {c.id!r}: {term}: {cfg.experiment.name} runs generations 0..{g_max - 1}")
            name, _ = term_metric(term, c.metric or claim.metric)
            try:
                metric_info(name)
            except KeyError:
                problems.append(f"{where}: check {c.id!r}: {term}: unknown metric {name!r}")
    for i, f in enumerate(claim.figures):
        if f.arm is not None and f.arm not in arms:
            problems.append(f"{where}: figures.{i}: no arm {f.arm!r} in {cfg.experiment.name} (arms: {sorted(arms)})")
    try:
        metric_info(claim.metric)
    except KeyError:
        problems.append(f"{where}: metric: unknown metric {claim.metric!r}")
    return list(dict.fromkeys(problems))
