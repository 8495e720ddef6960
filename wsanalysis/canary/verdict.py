"""Gate results and the verdict: the decision rule, its JSON.

Decision rule v2 (docs/architecture.md, default_gates.yaml). Each gate has two lines,
the bound (where harm starts) and the tolerance (harm that must never be waved
through). `fail` when the lower confidence limit is beyond the bound (Holm across
gates); `pass` when the upper confidence limit is inside the tolerance (same level,
Holm across gates), so a canary exactly at the tolerance passes with probability at
most alpha / 2 at any volume; `inconclusive` otherwise, with how much longer at this
traffic would settle it (`settle_in_s`); `no_data` when a variant's metric is missing,
or the canary's exposure is below the gate's minimum and nothing failed. GO needs
every gate to pass; any fail is NO_GO; anything else, or a sample-ratio mismatch, is
INCONCLUSIVE. Missing data is never a GO. No observed-power figure decides anything.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, Literal

from wsanalysis.canary.details import Details
from wsanalysis.canary.gate_spec import Gate, GateFile
from wsanalysis.canary.judge_input import JudgeInput
from wsanalysis.sources.dataset import file_fingerprint

Decision = Literal["pass", "fail", "inconclusive", "no_data"]
Overall = Literal["GO", "NO_GO", "INCONCLUSIVE"]


class ExitCode(IntEnum):
    """What a release pipeline reads (architecture page)."""

    GO = 0
    NO_GO = 1
    INCONCLUSIVE = 2
    USAGE_OR_DATA_ERROR = 3


@dataclass(frozen=True)
class GateEvidence:
    """What a statistic found for one gate, before the decision across gates.

    `effect`, `ci_low`, `ci_high`, `limit` (the bound) and `tolerance` are on the same
    scale (a ratio, a difference, or the canary's own figure for an absolute bound).
    `p_harm` is the one-sided p-value of "the canary is no worse than the bound": small
    means harm. `p_safe` is the one-sided p-value of "the canary is at least as bad as
    the tolerance": small means it is shown not to be. `se` is the standard error on
    the test's scale (log for a ratio, `log_scale`), with `df` degrees of freedom, for
    the settle projection; `exposure` the canary's (connections, or samples).
    `power` at the tolerance is planning information only (nan when not computed).
    """

    canary: float | None
    control: float | None
    effect: float | None
    ci_low: float | None
    ci_high: float | None
    limit: float
    p_harm: float
    power: float
    sufficient: bool
    method: str
    source: str
    n_canary: int = 0
    n_control: int = 0
    reason: str = ""
    worse: str = "increase"
    details: Details | None = None  # what the statistic found besides the interval
    p_safe: float = math.nan
    tolerance: float = math.nan
    se: float = math.nan
    df: float = math.inf
    log_scale: bool = False
    exposure: float = math.nan
    anytime: bool = False
    # sequential mode: the p-values after every look (not written to verdict.json)
    path_harm: tuple[float, ...] | None = None
    path_safe: tuple[float, ...] | None = None
    sequence: Details | None = None  # sequential mode: what the looks added

    def details_json(self) -> dict[str, Any]:
        """`details` and `sequence` as verdict.json writes them (one object)."""
        found = self.details.to_json() if self.details is not None else {}
        return found | (self.sequence.to_json() if self.sequence is not None else {})

    @classmethod
    def no_data(cls, limit: float, reason: str) -> GateEvidence:
        """Evidence that there is none: the gate's data are missing (`no_data`)."""
        return cls(
            None, None, None, None, None, limit, math.nan, math.nan, False, "", "", reason=reason
        )

    @property
    def missing(self) -> bool:
        return self.method == ""

    # -- rich display in notebooks (issue 18; rendering lives in wsanalysis.display) ----
    def __repr__(self) -> str:
        from wsanalysis.display import evidence_text

        return evidence_text(self)

    def _repr_html_(self) -> str:
        from wsanalysis.display import evidence_html

        return evidence_html(self)

    def to_polars(self):
        from wsanalysis.display import evidence_frame

        return evidence_frame([self])


@dataclass(frozen=True)
class GateResult:
    name: str
    title: str
    critical: bool
    statistic: str
    unit: str
    comparison: str  # "control" or "bound"
    worse: str
    evidence: GateEvidence
    p_adjusted: float
    decision: Decision
    sentence: str
    p_safe_adjusted: float = math.nan
    settle_in_s: float | None = None
    #: what `effect`, the interval, the bound and the tolerance are (the gate kind says):
    #: a `ratio` to control, a `difference` from control, or the canary's own `figure`
    scale: str = "difference"
    #: the gate's spec from the gate file (not written to verdict.json: its name is)
    gate: Gate | None = field(default=None, repr=False, compare=False)

    # -- rich display in notebooks (issue 18; rendering lives in wsanalysis.display) ----
    def __repr__(self) -> str:
        from wsanalysis.display import gate_text

        return gate_text(self)

    def _repr_html_(self) -> str:
        from wsanalysis.display import gate_html

        return gate_html(self)

    def to_polars(self):
        from wsanalysis.display import evidence_frame

        return evidence_frame([self])

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "gate"}
        evidence = self.evidence
        data["evidence"] = {  # every look's p-values are not written; the details are
            f.name: _json_number(
                evidence.details_json()
                if f.name == "details"
                else copy.deepcopy(getattr(evidence, f.name))
            )
            for f in fields(evidence)
            if f.name not in ("path_harm", "path_safe", "sequence")
        }
        data["p_adjusted"] = _json_number(self.p_adjusted)
        data["p_safe_adjusted"] = _json_number(self.p_safe_adjusted)
        data["settle_in_s"] = _json_number(self.settle_in_s)
        # the figures a rollout controller's condition reads (Argo, Flagger)
        data["estimate"] = _json_number(self.evidence.effect)
        data["interval"] = [_json_number(self.evidence.ci_low), _json_number(self.evidence.ci_high)]
        return data


@dataclass(frozen=True)
class Verdict:
    overall: Overall
    reason: str
    gates: tuple[GateResult, ...]
    profile: str
    judge: str
    metadata: dict[str, Any] = field(default_factory=dict)
    #: where the gates came from and what they were judged on (not in verdict.json; the
    #: file's path and sha256 are, and the inputs' provenance): set by the one pipeline
    gate_file: GateFile | None = field(default=None, repr=False, compare=False)
    data: JudgeInput | None = field(default=None, repr=False, compare=False)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode[self.overall]

    @property
    def settle_in_s(self) -> float | None:
        """How much longer at this traffic would settle every unsettled gate (the
        largest of theirs): a pipeline's "retry after". None when the verdict is
        settled (GO, NO_GO) or when some unsettled gate cannot say."""
        if self.overall != "INCONCLUSIVE":
            return None
        unsettled = [g for g in self.gates if g.decision in ("inconclusive", "no_data")]
        if not unsettled or any(g.settle_in_s is None for g in unsettled):
            return None
        return max(g.settle_in_s for g in unsettled)

    # -- rich display in notebooks (issue 18; rendering lives in wsanalysis.display) ----
    def __repr__(self) -> str:
        from wsanalysis.display import verdict_text

        return verdict_text(self)

    def _repr_html_(self) -> str:
        from wsanalysis.display import verdict_html

        return verdict_html(self)

    def evidence_frame(self):
        """Every gate's evidence as one polars row per gate."""
        from wsanalysis.display import evidence_frame

        return evidence_frame(self.gates)

    def to_json(self) -> dict[str, Any]:
        """verdict.json: the one rendering of a verdict, for the CLI, the reports and the
        service alike (the gate file it came from named with its sha256)."""
        document = {
            "verdict": self.overall,
            "reason": self.reason,
            "settle_in_s": _json_number(self.settle_in_s),
            "exit_code": int(self.exit_code),
            "profile": self.profile,
            "judge": self.judge,
            "gates": [g.to_json() for g in self.gates],
            **self.metadata,
        }
        if self.gate_file is not None:
            path = self.gate_file.path
            document["gate_file"] = {"path": str(path), "sha256": file_fingerprint(path)}
        return document


def _json_number(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null (and strings for infinities)."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: _json_number(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_number(v) for v in value]
    return value


def decide(
    evidence: GateEvidence,
    p_adjusted: float,
    alpha: float,
    p_safe_adjusted: float = math.nan,
    min_exposure: float = 0.0,
) -> Decision:
    """Decision rule v2 for one gate; `alpha` is one-sided, both p-values Holm-adjusted.

    Harm shown is harm at any volume (`fail`); below `min_exposure` nothing else is
    decided (`no_data`); a pass needs the method's own minimum (`sufficient`) too.
    """
    if evidence.missing:
        return "no_data"
    if not math.isnan(p_adjusted) and p_adjusted <= alpha:
        return "fail"
    if min_exposure > 0 and not (evidence.exposure >= min_exposure):
        return "no_data"
    if not evidence.sufficient or math.isnan(p_safe_adjusted):
        return "inconclusive"
    return "pass" if p_safe_adjusted <= alpha else "inconclusive"


def overall(results: list[GateResult], srm_problem: str | None = None) -> tuple[Overall, str]:
    """GO / NO_GO / INCONCLUSIVE with the one sentence a manager reads first."""
    failed = [r for r in results if r.decision == "fail"]
    if failed:
        names = ", ".join(r.title for r in failed)
        critical = " (critical)" if any(r.critical for r in failed) else ""
        return "NO_GO", f"The canary is worse than allowed on {names}{critical}."
    if srm_problem:
        return "INCONCLUSIVE", srm_problem
    unsettled = [r for r in results if r.decision != "pass"]
    if not results:
        return "INCONCLUSIVE", "No gate was evaluated."
    if unsettled:
        names = ", ".join(f"{r.title} ({r.decision.replace('_', ' ')})" for r in unsettled)
        return "INCONCLUSIVE", f"No gate failed, but these could not be settled: {names}."
    return "GO", f"All {len(results)} gates pass: the canary is at least as good as allowed."
