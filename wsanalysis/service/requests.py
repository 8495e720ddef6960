"""A look, as the service reads it from Argo's `web` provider or a Flagger webhook.

Every field may arrive as a string (Flagger's `metadata` holds only strings, and an Argo
template renders its arguments as text): numbers, times and durations are parsed here,
and every error names the field and the fix (HTTP 400). Nothing a client sends reaches
the judge unchecked: ids are short, texts hold no control characters, selectors parse
and cannot both match one series (`sources.variants`), durations are bounded.

A canary's settings (`SETTINGS`) never change from look to look. Its traffic share
(`STAGE`: `canary_share`, or `canary_weight` in percent as Argo's `setWeight` and
Flagger's weights count) belongs to the look: a ramp moves it, and the state keeps each
look's share (a new ramp stage where it changes, `canary_looks`).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from wsanalysis.canary.gates import load_gate_file
from wsanalysis.errors import UsageError
from wsanalysis.run_metadata import checked_label
from wsanalysis.sources.telemetry import REFERENCE
from wsanalysis.times import parse_duration, parse_moment

FLAGGER_HOOKS = ("confirm-promotion", "rollout", "pre-rollout", "rollback")
#: Fields that fix what a canary is; a later look may not change them (only `end` moves).
SETTINGS = (
    "profile",
    "gates",
    "variant_label",
    "canary_selector",
    "control_selector",
    "rum",
    "look",
    "horizon",
    "telemetry",
)
#: Fields of the look's ramp stage: a later look may change them (Argo `setWeight`,
#: Flagger `stepWeight`); the state records them per look.
STAGE = ("canary_share",)
#: Who and what the canary is about (run_metadata): recorded, never part of the settings.
NAMES = ("service", "release", "environment")
KNOWN = {"id", "start", "end", "canary_weight", *SETTINGS, *STAGE, *NAMES}
MAX_ID = 256  # characters of a canary id (it keys the state and the lock table)
MAX_TEXT = 4096  # characters of any other field (selectors, paths, names)
MIN_LOOK, MAX_HORIZON = "1m", "30d"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True)
class Look:
    """One question about one canary: is it good so far, judged up to `end`?"""

    id: str
    start: datetime | None  # None: the first look's time (Flagger cannot template it)
    end: datetime
    profile: str = "canary"
    gates: str | None = None
    canary_share: float | None = None
    variant_label: str = "variant"
    canary_selector: str | None = None
    control_selector: str | None = None
    rum: str | None = None
    look: str = "5m"
    horizon: str = "48h"
    telemetry: str | None = None  # a mapping file under --files-root (default: the server's)
    ignored: tuple[str, ...] = ()  # Flagger metadata keys that are not a look's (owners...)
    end_is_now: bool = False  # no `end` was sent: `end` is the server's time of arrival
    service: str | None = None
    release: str | None = None
    environment: str | None = None

    def settings(self) -> dict[str, Any]:
        """What must stay the same from look to look (stored with the canary)."""
        values = asdict(self)
        return {name: values[name] for name in SETTINGS}

    def stage(self) -> dict[str, Any]:
        """What a ramp may change between looks: the canary's declared traffic share."""
        values = asdict(self)
        return {name: values[name] for name in STAGE}


def _text(body: dict[str, Any], name: str, limit: int = MAX_TEXT) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, str | int | float)
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise UsageError(f"field {name!r} must be a string", f'e.g. {name}: "..."')
    text = str(value).strip()
    if len(text) > limit:
        raise UsageError(
            f"field {name!r} has {len(text)} characters, more than {limit}",
            "shorten it (ids name a canary, e.g. checkout/7d9f8c)"
            if name == "id"
            else "shorten it",
        )
    if _CONTROL.search(text):
        raise UsageError(
            f"field {name!r} holds a control character (a newline, a tab, ...)",
            "send plain text",
        )
    return text


def _fraction(name: str, text: str, scale: float, example: str) -> float:
    try:
        value = float(text) / scale
    except (ValueError, OverflowError):
        value = math.nan
    if not (math.isfinite(value) and 0 < value < 1):
        low, high = (0, 1) if scale == 1 else (0, 100)
        raise UsageError(
            f"field {name!r}: {text!r} is not strictly between {low} and {high}",
            f'e.g. "{name}": "{example}" (a canary needs traffic, and so does its control)',
        )
    return value


def _share(body: dict[str, Any]) -> float | None:
    """The declared traffic share: `canary_share` (0-1) or `canary_weight` (percent)."""
    share, weight = _text(body, "canary_share"), _text(body, "canary_weight")
    if share is not None and weight is not None:
        raise UsageError(
            "both canary_share and canary_weight are given",
            "give one: canary_weight in percent (as setWeight counts) or canary_share in 0-1",
        )
    if weight is not None:
        return _fraction("canary_weight", weight, 100.0, "10")
    return None if share is None else _fraction("canary_share", share, 1.0, "0.1")


def _duration(name: str, text: str | None, default: str) -> str:
    if text is None:
        return default
    try:
        length = parse_duration(text)
    except (ValueError, OverflowError):
        raise UsageError(
            f"field {name!r}: {text!r} is not a duration", "e.g. 5m, 1h, 48h"
        ) from None
    if not parse_duration(MIN_LOOK) <= length <= parse_duration(MAX_HORIZON):
        raise UsageError(
            f"field {name!r}: {text!r} is not between {MIN_LOOK} and {MAX_HORIZON}",
            "e.g. look 5m, horizon 48h",
        )
    return text


def _moment(name: str, text: str | None) -> datetime | None:
    try:
        return parse_moment(text, f"field {name!r}")
    except UsageError as error:
        raise UsageError(
            error.problem, "RFC 3339 (2026-11-02T06:00:00Z) or epoch seconds"
        ) from None


def _inside(root: Path | None, name: str, text: str | None) -> str | None:
    """A server-side path from a request, allowed only under `--files-root`."""
    if text is None:
        return None
    if root is None:
        raise UsageError(
            f"field {name!r} names a file on the server, and this server reads none",
            "start the server with --files-root DIR, or drop the field",
        )
    path = (root / text).resolve()
    if not path.is_relative_to(root.resolve()):
        raise UsageError(f"field {name!r} leaves the server's --files-root", "give a path in it")
    if not path.exists():
        raise UsageError(f"field {name!r}: {text} does not exist under --files-root", "check it")
    return str(path)


def _mtime(path: str | None) -> int:
    return Path(path).stat().st_mtime_ns if path else 0


@lru_cache(maxsize=64)
def _check_profile(gates: str | None, mtime: int, profile: str) -> None:
    """The gate file reads and names the profile (cached per file version: looks repeat)."""
    load_gate_file(gates).profile(profile)


def parse_look(body: Any, *, now: datetime | None = None, files_root: Path | None = None) -> Look:
    """A `Look` from a JSON body (Argo `web` provider, or any caller)."""
    if not isinstance(body, dict):
        raise UsageError("the body is not a JSON object", 'send {"id": "...", "start": "..."}')
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise UsageError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}",
            "known fields: " + ", ".join(sorted(KNOWN)),
        )
    canary_id = _text(body, "id", MAX_ID)
    if not canary_id:
        raise UsageError("field 'id' is missing", "name the canary, e.g. checkout/7d9f8c")
    start = _moment("start", _text(body, "start"))
    given_end = _moment("end", _text(body, "end"))
    end = given_end or (now or datetime.now(UTC))
    if start is not None and end <= start:
        raise UsageError(
            f"field 'end' ({end.isoformat()}) is not after 'start' ({start.isoformat()})",
            "give a window that has a length",
        )
    selectors = (_text(body, "canary_selector"), _text(body, "control_selector"))
    if (selectors[0] is None) != (selectors[1] is None):
        raise UsageError("canary_selector and control_selector go together", "give both or neither")
    variant_label = _text(body, "variant_label") or "variant"
    if not _LABEL.fullmatch(variant_label):
        raise UsageError(
            f"field 'variant_label': {variant_label!r} is not a label name", "e.g. variant, track"
        )
    REFERENCE.with_variants(variant_label, *selectors)  # parse, escapes, no series in both: 400
    look = _duration("look", _text(body, "look"), "5m")
    horizon = _duration("horizon", _text(body, "horizon"), "48h")
    if parse_duration(horizon) < parse_duration(look):
        raise UsageError(f"horizon {horizon} is shorter than look {look}", "e.g. 5m and 48h")
    profile = _text(body, "profile", MAX_ID) or "canary"
    gates = _inside(files_root, "gates", _text(body, "gates"))
    _check_profile(gates, _mtime(gates), profile)  # a bad first look stores nothing
    return Look(
        id=canary_id,
        start=start,
        end=end,
        profile=profile,
        gates=gates,
        canary_share=_share(body),
        variant_label=variant_label,
        canary_selector=selectors[0],
        control_selector=selectors[1],
        rum=_inside(files_root, "rum", _text(body, "rum")),
        look=look,
        horizon=horizon,
        telemetry=_inside(files_root, "telemetry", _text(body, "telemetry")),
        end_is_now=given_end is None,
        **{name: checked_label(f"field {name!r}", _text(body, name)) for name in NAMES},
    )


def parse_flagger(
    hook: str, payload: Any, *, now: datetime | None = None, files_root: Path | None = None
) -> Look:
    """A `Look` from Flagger's webhook payload `{name, namespace, phase, checksum, metadata}`.

    The fields of a look ride in `metadata` (all strings). Without an `id` the canary is
    `namespace/name@checksum`: the checksum changes with each new revision, so a new
    rollout starts from scratch while retries of one rollout share their state. Other
    metadata keys (owners, channels: the hook's metadata is the team's too) are ignored
    and listed in `Look.ignored`; a key one letter away from a field is refused, since a
    misspelt selector or horizon would otherwise fall back to a default unnoticed.
    """
    if hook not in FLAGGER_HOOKS:
        raise UsageError(f"no Flagger hook {hook!r}", "use one of " + ", ".join(FLAGGER_HOOKS))
    if (
        not isinstance(payload, dict)
        or not all(isinstance(payload.get(k, ""), str) for k in ("name", "namespace", "checksum"))
        or not payload.get("name")
    ):
        raise UsageError(
            "the body is not a Flagger webhook payload",
            "Flagger sends {name, namespace, phase, checksum, metadata}",
        )
    metadata = {} if payload.get("metadata") is None else payload["metadata"]
    if not isinstance(metadata, dict):
        raise UsageError("field 'metadata' is not an object", "give the look's fields there")
    fields = {k: v for k, v in metadata.items() if k in KNOWN}  # `token` authenticates
    ignored = tuple(sorted(str(k) for k in metadata if k not in KNOWN and k != "token"))
    for key in ignored:
        near = difflib.get_close_matches(key, sorted(KNOWN), n=1, cutoff=0.8)
        if near:
            raise UsageError(
                f"metadata key {key!r} is not a field of a look", f"did you mean {near[0]!r}?"
            )
    if not fields.get("id"):
        for part in ("name", "namespace", "checksum"):
            _text(payload, part, MAX_ID)  # strings, short, printable
        name = f"{payload.get('namespace') or 'default'}/{payload['name']}"
        checksum = payload.get("checksum")
        fields["id"] = f"{name}@{checksum}" if checksum else name
    look = parse_look(fields, now=now, files_root=files_root)
    return replace(look, ignored=ignored)
