"""The reports there are: which notebook, which result file, which extra rules.

A kind is one notebook (its `parameters` cell is the typed spec) plus the checks a
type cannot express: which parameters are required together, which name files that
must exist, which must stay free of secrets. Adding the incident report is one more
notebook under `notebooks/` and one more `ReportKind` in `KINDS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wsanalysis.canary.gates import load_gate_file
from wsanalysis.errors import DataError, UsageError
from wsanalysis.report.parameters import ParameterSpec, read_spec
from wsanalysis.secrets import CREDENTIALS_FIX, secret_values, url_has_credentials
from wsanalysis.sources.telemetry import load_telemetry
from wsanalysis.times import parse_duration
from wsanalysis.windows import checked_window

SECRET_ENV_PREFIX = "WSANALYSIS_PROM_"
OUTPUT_PARAMETER = "output_dir"


def notebooks_folder() -> Path:
    """Where the report notebooks are, in a checkout and in an installed wheel alike.

    `wsanalysis/notebooks` is a symlink to the top-level `notebooks/` folder (where
    analysts open them); a wheel build follows it, so the wheel holds real copies at
    `site-packages/wsanalysis/notebooks/`. One path serves both.
    """
    return Path(__file__).resolve().parents[1] / "notebooks"


NOTEBOOKS = notebooks_folder()


def _missing(value: Any) -> bool:
    return value is None or value == ""


@dataclass(frozen=True)
class ReportKind:
    """One report: its notebook, its result file and the rules beyond the types."""

    name: str
    title: str
    notebook: Path
    result_file: str
    one_of: tuple[tuple[str, ...], ...] = ()  # exactly one of each group must be given
    files: tuple[str, ...] = ()  # parameters naming paths that must exist
    check: Callable[[dict[str, Any]], None] | None = None
    exit_code: Callable[[dict[str, Any]], int] = field(
        default=lambda document: int(document["exit_code"])
    )

    def spec(self) -> ParameterSpec:
        if not self.notebook.exists():
            raise UsageError(
                f"the {self.name} notebook {self.notebook} is missing",
                "reinstall wsanalysis: the wheel ships the notebooks inside the package",
            )
        return read_spec(self.notebook)

    def validate(self, values: dict[str, Any]) -> dict[str, Any]:
        """Typed, complete parameters, with paths made absolute; raises naming the culprit."""
        params = self.spec().validate(values)
        # The notebook's defaults serve an analyst who opens it (issue 18): a source the
        # caller names replaces the default source, and a default path is relative to
        # the notebook's folder, wherever the command runs.
        for group in self.one_of:
            if any(name in values for name in group):
                params.update({name: None for name in group if name not in values})
        for name in self.files:
            if name not in values and not _missing(params[name]):
                params[name] = str((self.notebook.parent / params[name]).resolve())
        for group in self.one_of:
            given = [n for n in group if not _missing(params[n])]
            if len(given) != 1:
                raise UsageError(
                    f"give exactly one of parameters {', '.join(group)} (got "
                    f"{', '.join(given) if given else 'none'})",
                    f"e.g. --param {group[0]}=...",
                )
        for name in self.files:
            if _missing(params[name]):
                continue
            path = Path(params[name]).expanduser()
            if not path.exists():
                raise DataError(
                    f"parameter {name!r}: {path} does not exist", "pass an existing path"
                )
            params[name] = str(path.resolve())
        check_secrets(params)
        if self.check is not None:
            self.check(params)
        return params


def check_secrets(params: dict[str, Any]) -> None:
    """Credentials live in the environment only: a parameter holding one is refused.

    Parameters are written into the executed notebook and the HTML, so a token there
    would be published with the report.
    """
    secrets = secret_values()
    for name, value in params.items():
        if not isinstance(value, str):
            continue
        if any(secret in value for secret in secrets):
            raise UsageError(
                f"parameter {name!r} contains a credential from a {SECRET_ENV_PREFIX}* variable",
                "credentials stay in the environment; parameters are published with the report",
            )
        if value.startswith(("http://", "https://")) and url_has_credentials(value):
            raise UsageError(
                f"parameter {name!r} has a user name or password in its URL", CREDENTIALS_FIX
            )


def _window(params: dict[str, Any]) -> None:
    """start/end as RFC 3339 (epoch seconds converted), checked once for both kinds."""
    for name in ("start", "end"):
        if not _missing(params[name]):
            params[name] = _rfc3339(params[name])
    try:
        checked_window(
            params["start"] or None,
            params["end"] or None,
            required=bool(params["prometheus"]),
            names=("parameter 'start'", "parameter 'end'"),
            needs="parameter 'prometheus'",
        )
    except UsageError as error:
        raise UsageError(
            error.problem, f"{error.fix} (RFC 3339 such as 2026-11-02T06:00:00Z, or epoch s)"
        ) from None


def _rfc3339(text: str) -> str:
    """Epoch seconds as RFC 3339 (UTC); anything else unchanged (checked after)."""
    try:
        seconds = float(text)
    except ValueError:
        return text
    if not math.isfinite(seconds):
        return text
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _sources_and_window(params: dict[str, Any]) -> None:
    """What both kinds check first: where the data come from, the window and the
    telemetry mapping (read now, so a bad file fails before any kernel starts)."""
    if params.get("telemetry"):
        load_telemetry(params["telemetry"])
    if params["data"] and params["rum"]:
        raise UsageError(
            "parameter 'rum' goes with prometheus; a dataset folder holds its own RUM",
            "drop rum, or use prometheus instead of data",
        )
    _window(params)


def _check_canary(params: dict[str, Any]) -> None:
    _sources_and_window(params)
    for name in ("look", "horizon", "bucket"):
        try:
            if parse_duration(params[name]).total_seconds() <= 0:
                raise ValueError("not positive")
        except ValueError:
            raise UsageError(
                f"parameter {name!r}: {params[name]!r} is not a positive duration",
                "use durations like 5m, 10m, 48h",
            ) from None
    share = params["canary_share"]
    if share is not None and not 0 < share < 1:
        raise UsageError(
            f"parameter 'canary_share': {share} is not between 0 and 1", "e.g. canary_share=0.1"
        )
    gate_file = load_gate_file(params["gates"])
    try:
        gate_file.profile(params["profile"])
    except UsageError as error:
        raise UsageError(f"parameter 'profile': {error.problem}", error.fix) from None


CANARY = ReportKind(
    name="canary",
    title="Canary evaluation",
    notebook=NOTEBOOKS / "canary_evaluation.ipynb",
    result_file="verdict.json",
    one_of=(("data", "prometheus"),),
    files=("data", "rum", "gates", "telemetry"),
    check=_check_canary,
)


def _check_incident(params: dict[str, Any]) -> None:
    _sources_and_window(params)
    if params["rum_sample"] is not None and not 0 < params["rum_sample"] <= 1:
        raise UsageError(
            f"parameter 'rum_sample': {params['rum_sample']} is not in (0, 1]",
            "the share of sessions the RUM export keeps, e.g. rum_sample=0.2",
        )
    try:
        if parse_duration(params["bucket"]).total_seconds() <= 0:
            raise ValueError("not positive")
    except ValueError:
        raise UsageError(
            f"parameter 'bucket': {params['bucket']!r} is not a positive duration",
            "use durations like 1m, 5m, 10m",
        ) from None


INCIDENT = ReportKind(
    name="incident",
    title="Incident analysis",
    notebook=NOTEBOOKS / "incident_analysis.ipynb",
    result_file="findings.json",
    one_of=(("data", "prometheus"),),
    files=("data", "rum", "telemetry"),
    check=_check_incident,
    exit_code=lambda document: 0,  # the analysis ran; what it found is in findings.json
)

KINDS: dict[str, ReportKind] = {CANARY.name: CANARY, INCIDENT.name: INCIDENT}


def kind(name: str) -> ReportKind:
    if name not in KINDS:
        raise UsageError(f"no report kind {name!r}", f"choose one of {', '.join(KINDS)}")
    return KINDS[name]
