"""A look, as the service reads it from Argo's `web` provider or a Flagger webhook.

Every field may arrive as a string (Flagger's `metadata` holds only strings, and an Argo
template renders its arguments as text): numbers, times and durations are parsed here,
and every error names the field and the fix (HTTP 400).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wsanalysis.errors import UsageError
from wsanalysis.times import parse_duration, parse_moment

FLAGGER_HOOKS = ("confirm-promotion", "rollout", "pre-rollout", "rollback")
#: Fields that fix what a canary is; a later look may not change them (only `end` moves).
SETTINGS = (
    "profile",
    "gates",
    "canary_share",
    "variant_label",
    "canary_selector",
    "control_selector",
    "rum",
    "look",
    "horizon",
    "telemetry",
)
KNOWN = {"id", "start", "end", *SETTINGS}


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

    def settings(self) -> dict[str, Any]:
        """What must stay the same from look to look (stored with the canary)."""
        values = asdict(self)
        return {name: values[name] for name in SETTINGS}


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UsageError(f"field {name!r} must be a string", f'e.g. {name}: "..."')
    return str(value).strip()


def _share(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value < 1):
        raise UsageError(
            f"field 'canary_share': {text!r} is not between 0 and 1", 'e.g. "canary_share": "0.1"'
        )
    return value


def _duration(name: str, text: str | None, default: str) -> str:
    if text is None:
        return default
    try:
        if parse_duration(text).total_seconds() <= 0:
            raise ValueError(text)
    except ValueError:
        raise UsageError(
            f"field {name!r}: {text!r} is not a positive duration", "e.g. 5m, 1h, 48h"
        ) from None
    return text


def _moment(name: str, text: str | None) -> datetime | None:
    try:
        return parse_moment(text, f"field {name!r}:")
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
    canary_id = _text(body, "id")
    if not canary_id:
        raise UsageError("field 'id' is missing", "name the canary, e.g. checkout/7d9f8c")
    start = _moment("start", _text(body, "start"))
    end = _moment("end", _text(body, "end")) or (now or datetime.now(UTC))
    if start is not None and end <= start:
        raise UsageError(
            f"field 'end' ({end.isoformat()}) is not after 'start' ({start.isoformat()})",
            "give a window that has a length",
        )
    selectors = (_text(body, "canary_selector"), _text(body, "control_selector"))
    if (selectors[0] is None) != (selectors[1] is None):
        raise UsageError("canary_selector and control_selector go together", "give both or neither")
    return Look(
        id=canary_id,
        start=start,
        end=end,
        profile=_text(body, "profile") or "canary",
        gates=_inside(files_root, "gates", _text(body, "gates")),
        canary_share=_share(_text(body, "canary_share")),
        variant_label=_text(body, "variant_label") or "variant",
        canary_selector=selectors[0],
        control_selector=selectors[1],
        rum=_inside(files_root, "rum", _text(body, "rum")),
        look=_duration("look", _text(body, "look"), "5m"),
        horizon=_duration("horizon", _text(body, "horizon"), "48h"),
        telemetry=_inside(files_root, "telemetry", _text(body, "telemetry")),
    )


def parse_flagger(
    hook: str, payload: Any, *, now: datetime | None = None, files_root: Path | None = None
) -> Look:
    """A `Look` from Flagger's webhook payload `{name, namespace, phase, checksum, metadata}`.

    The fields of a look ride in `metadata` (all strings). Without an `id` the canary is
    `namespace/name@checksum`: the checksum changes with each new revision, so a new
    rollout starts from scratch while retries of one rollout share their state.
    """
    if hook not in FLAGGER_HOOKS:
        raise UsageError(f"no Flagger hook {hook!r}", "use one of " + ", ".join(FLAGGER_HOOKS))
    if not isinstance(payload, dict) or "name" not in payload:
        raise UsageError(
            "the body is not a Flagger webhook payload",
            "Flagger sends {name, namespace, phase, checksum, metadata}",
        )
    metadata = payload.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise UsageError("field 'metadata' is not an object", "give the look's fields there")
    fields = {k: v for k, v in metadata.items() if k != "token"}  # the token authenticates
    if not fields.get("id"):
        name = f"{payload.get('namespace') or 'default'}/{payload['name']}"
        checksum = payload.get("checksum")
        fields["id"] = f"{name}@{checksum}" if checksum else name
    return parse_look(fields, now=now, files_root=files_root)
