"""Fleet scenarios: the YAML spec of a labelled dataset, parsed and validated.

A scenario says how long the fleet runs and from when, how often Prometheus scrapes,
the seed, how users behave (arrivals over a day, session length, messages, token
lifetime), the variants (traffic share, client policy settings, server faults), a
timeline of injected events, and what the default gate file is expected to decide
(`expect`). `load_scenario` accepts a bundled name (`aa_baseline`) or a path; every
mistake is reported as `ScenarioError` naming the field (`variants.canary.share`)
and the reason, before anything runs.

Durations are strings with units (`250ms`, `90s`, `15m`, `2h30m`, `1d`) or plain
seconds; timeline times are offsets from the window's start.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from wsanalysis import times
from wsanalysis.errors import UsageError
from wsanalysis.reference.policy import JITTER_STRATEGIES

BUNDLED_PACKAGE = "wsanalysis.reference.scenarios"
VERDICTS = ("GO", "NO_GO", "INCONCLUSIVE")
DECISIONS = ("pass", "fail", "inconclusive", "no_data")

#: Timeline kinds: their required and optional parameters (besides `variants`).
EVENT_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "restart": (("at",), ("downtime",)),
    "drain": (("start", "end"), ()),
    "network_outage": (("start", "end"), ("share", "browser_offline")),
    "token_rotation": (("at",), ("duration", "reject_p", "revalidate")),
    "latency": (("start", "end"), ("extra",)),
    "reconnect_storm": (("start", "end"), ("share", "lifetime")),
    "server_faults": (("start",), ("end", "set")),
}
#: The incident kind each timeline event is labelled with.
INCIDENT_OF = {
    "restart": "server_restart",
    "drain": "server_drain",
    "network_outage": "network_outage",
    "token_rotation": "auth_spike",
    "latency": "latency_injection",
    "reconnect_storm": "reconnect_storm",
    "server_faults": "server_faults",
}


class ScenarioError(UsageError):
    """A scenario file that cannot run: `field` names where, the message says why."""

    def __init__(self, where: str, reason: str, fix: str = "") -> None:
        self.field = where
        self.reason = reason
        super().__init__(
            f"scenario field {where}: {reason}",
            fix or "correct the scenario file (see wsanalysis/reference/scenarios/ for examples)",
        )


# -- small typed readers, each naming the field it reads -------------------------------


def field_seconds(value: Any, where: str, *, allow_zero: bool = True) -> float:
    """A scenario field's duration in seconds (`times.duration_seconds`: `250ms`, `90s`,
    `2h30m`, `1d`, a number), an error naming the field when it is not one."""
    try:
        seconds = times.duration_seconds(value)
    except times.TimeError:
        raise ScenarioError(
            where, f"{value!r} is not a duration", "write e.g. 250ms, 90s, 15m, 2h30m or 1d"
        ) from None
    if seconds == 0 and not allow_zero:
        raise ScenarioError(where, f"{value!r} must be a non-zero positive duration")
    return seconds


def _number(value: Any, where: str, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(where, f"{value!r} is not a number")
    if not low <= value <= high:
        bounds = f"[{low:g}, {high:g}]" if math.isfinite(high) else f">= {low:g}"
        raise ScenarioError(where, f"{value!r} is outside {bounds}")
    return float(value)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(where, f"{value!r} is not true or false")
    return value


def _mapping(value: Any, where: str, known: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ScenarioError(where, f"expected a mapping, got {type(value).__name__}")
    for key in value:
        if key not in known:
            raise ScenarioError(
                f"{where}.{key}" if where else str(key),
                "unknown field",
                f"known fields here: {', '.join(known)}",
            )
    return value


def _time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ScenarioError(
                where, f"{value!r} is not a time", "write RFC 3339, e.g. 2026-11-02T06:00:00Z"
            ) from None
    if moment.tzinfo is None:
        raise ScenarioError(where, f"{value!r} has no time zone", "end it with Z or +00:00")
    return moment.astimezone(UTC)


# -- the spec ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSettings:
    """The client policy of a variant (policy.py's knobs, plus dedup and token refresh)."""

    jitter: str = "production"
    dedup: bool = True
    token_refresh: bool = True
    base: float = 1.0
    cap: float = 16.0
    max_attempts: int = 10
    stable_after: float = 10.0
    summary_every: float = 900.0


@dataclass(frozen=True)
class ServerSettings:
    """Server behaviour of a variant: faults and connection lifetime.

    `drop_rate` is abrupt drops (1006) per connection-hour; `lifetime_median` (when
    set) drops every connection after a log-normal lifetime (e.g. a load balancer's
    idle timeout); TTFB is log-normal (`ttfb_median`, `ttfb_sigma`) plus `ttfb_extra`.
    """

    internal_error_p: float = 0.0
    ttfb_median: float = 0.4
    ttfb_sigma: float = 0.5
    ttfb_extra: float = 0.0
    duplicate_p: float = 0.0
    drop_rate: float = 0.0
    lifetime_median: float | None = None
    lifetime_sigma: float = 0.25
    token_skew: float = 0.0


@dataclass(frozen=True)
class Variant:
    name: str
    share: float
    client: ClientSettings
    server: ServerSettings
    faults: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Users:
    """How users behave: arrivals (diurnal), session length, messages, tokens."""

    sessions_per_hour: float
    session_median: float = 5400.0
    session_sigma: float = 0.8
    messages_per_hour: float = 6.0
    threads: int = 3
    diurnal_amplitude: float = 0.3
    peak_hour: float = 14.0
    token_ttl: float = 3600.0
    refresh_p: float = 0.9
    refresh_delay: float = 60.0

    @property
    def mean_session(self) -> float:
        return self.session_median * math.exp(self.session_sigma**2 / 2)

    @property
    def concurrent(self) -> float:
        return self.sessions_per_hour / 3600.0 * self.mean_session


@dataclass(frozen=True)
class Event:
    """One timeline entry; times are seconds from the window's start."""

    kind: str
    start: float
    end: float
    variants: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    seed: int
    start: datetime
    duration: float
    warmup: float
    scrape_interval: float
    users: Users
    variants: tuple[Variant, ...]
    timeline: tuple[Event, ...]
    rum_exclude: tuple[str, ...]
    rum_sample: float
    metrics_gzip: bool
    expect: dict[str, Any]
    raw: dict[str, Any]

    def with_seed(self, seed: int) -> Scenario:
        raw = copy.deepcopy(self.raw)
        raw["seed"] = seed
        return replace(self, seed=seed, raw=raw)

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def to_yaml(self) -> str:
        """The spec as YAML (what the dataset's `scenario.yaml` holds, seed included)."""
        return yaml.safe_dump(self.raw, sort_keys=False, allow_unicode=True)


def _client(value: Any, where: str) -> ClientSettings:
    known = tuple(ClientSettings.__dataclass_fields__)
    data = _mapping(value, where, known)
    out: dict[str, Any] = {}
    if "jitter" in data:
        if data["jitter"] not in JITTER_STRATEGIES:
            raise ScenarioError(
                f"{where}.jitter",
                f"{data['jitter']!r} is not a jitter strategy",
                f"use one of {', '.join(JITTER_STRATEGIES)}",
            )
        out["jitter"] = data["jitter"]
    for name in ("dedup", "token_refresh"):
        if name in data:
            out[name] = _bool(data[name], f"{where}.{name}")
    for name in ("base", "cap", "stable_after"):
        if name in data:
            out[name] = field_seconds(data[name], f"{where}.{name}")
    if "summary_every" in data:
        out["summary_every"] = field_seconds(
            data["summary_every"], f"{where}.summary_every", allow_zero=False
        )
    if "max_attempts" in data:
        out["max_attempts"] = int(_number(data["max_attempts"], f"{where}.max_attempts", 1, 1000))
    return ClientSettings(**out)


def _server(value: Any, where: str) -> ServerSettings:
    data = _mapping(
        value,
        where,
        ("internal_error_p", "ttfb", "duplicate_p", "drop_rate", "lifetime", "token_skew"),
    )
    out: dict[str, Any] = {}
    for name in ("internal_error_p", "duplicate_p"):
        if name in data:
            out[name] = _number(data[name], f"{where}.{name}", 0.0, 1.0)
    if "drop_rate" in data:
        out["drop_rate"] = _number(data["drop_rate"], f"{where}.drop_rate", 0.0, 3600.0)
    if "token_skew" in data:
        skew = data["token_skew"]
        negative = isinstance(skew, str) and skew.strip().startswith("-")
        seconds = field_seconds(
            skew.strip().lstrip("-") if negative else skew, where + ".token_skew"
        )
        out["token_skew"] = -seconds if negative else seconds
    if "ttfb" in data:
        ttfb = _mapping(data["ttfb"], f"{where}.ttfb", ("median", "sigma", "extra"))
        if "median" in ttfb:
            out["ttfb_median"] = field_seconds(ttfb["median"], f"{where}.ttfb.median")
        if "sigma" in ttfb:
            out["ttfb_sigma"] = _number(ttfb["sigma"], f"{where}.ttfb.sigma", 0.0, 5.0)
        if "extra" in ttfb:
            out["ttfb_extra"] = field_seconds(ttfb["extra"], f"{where}.ttfb.extra")
    if data.get("lifetime") is not None:
        lifetime = _mapping(data["lifetime"], f"{where}.lifetime", ("median", "sigma"))
        if "median" not in lifetime:
            raise ScenarioError(f"{where}.lifetime.median", "required when lifetime is given")
        out["lifetime_median"] = field_seconds(
            lifetime["median"], f"{where}.lifetime.median", allow_zero=False
        )
        if "sigma" in lifetime:
            out["lifetime_sigma"] = _number(lifetime["sigma"], f"{where}.lifetime.sigma", 0.0, 5.0)
    return ServerSettings(**out)


def _users(value: Any, where: str = "users") -> Users:
    known = (
        "concurrent", "sessions_per_hour", "session_length", "messages_per_hour", "threads",
        "diurnal", "token_ttl", "refresh_after_give_up",
    )  # fmt: skip
    data = _mapping(value, where, known)
    out: dict[str, Any] = {}
    if "session_length" in data:
        length = _mapping(data["session_length"], f"{where}.session_length", ("median", "sigma"))
        if "median" in length:
            out["session_median"] = field_seconds(
                length["median"], f"{where}.session_length.median", allow_zero=False
            )
        if "sigma" in length:
            out["session_sigma"] = _number(length["sigma"], f"{where}.session_length.sigma", 0, 3)
    if "messages_per_hour" in data:
        out["messages_per_hour"] = _number(
            data["messages_per_hour"], f"{where}.messages_per_hour", 0, 3600
        )
    if "threads" in data:
        out["threads"] = int(_number(data["threads"], f"{where}.threads", 1, 1000))
    if "diurnal" in data:
        diurnal = _mapping(data["diurnal"], f"{where}.diurnal", ("amplitude", "peak_hour"))
        if "amplitude" in diurnal:
            out["diurnal_amplitude"] = _number(
                diurnal["amplitude"], f"{where}.diurnal.amplitude", 0, 1
            )
        if "peak_hour" in diurnal:
            out["peak_hour"] = _number(diurnal["peak_hour"], f"{where}.diurnal.peak_hour", 0, 24)
    if "token_ttl" in data:
        out["token_ttl"] = field_seconds(data["token_ttl"], f"{where}.token_ttl", allow_zero=False)
    if "refresh_after_give_up" in data:
        refresh = _mapping(
            data["refresh_after_give_up"], f"{where}.refresh_after_give_up", ("p", "delay")
        )
        if "p" in refresh:
            out["refresh_p"] = _number(refresh["p"], f"{where}.refresh_after_give_up.p", 0, 1)
        if "delay" in refresh:
            out["refresh_delay"] = field_seconds(
                refresh["delay"], f"{where}.refresh_after_give_up.delay", allow_zero=False
            )
    given = [k for k in ("concurrent", "sessions_per_hour") if k in data]
    if len(given) != 1:
        raise ScenarioError(
            where,
            "give exactly one of concurrent or sessions_per_hour"
            + (f" (both given: {', '.join(given)})" if given else " (neither given)"),
        )
    probe = Users(sessions_per_hour=1.0, **out)
    if "concurrent" in data:
        concurrent = _number(data["concurrent"], f"{where}.concurrent", 1, 10_000_000)
        rate = concurrent / probe.mean_session * 3600.0
    else:
        rate = _number(data["sessions_per_hour"], f"{where}.sessions_per_hour", 0.001, 1e9)
    return replace(probe, sessions_per_hour=rate)


def _variants(value: Any) -> tuple[Variant, ...]:
    if not isinstance(value, dict) or not value:
        raise ScenarioError("variants", "expected a mapping of variant names (control, canary)")
    variants = []
    for name, spec in value.items():
        where = f"variants.{name}"
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.-]{1,64}$", name):
            raise ScenarioError(where, "a variant name is 1-64 characters of [A-Za-z0-9_.-]")
        data = _mapping(spec, where, ("share", "client", "server", "faults"))
        if "share" not in data:
            raise ScenarioError(f"{where}.share", "required (the variant's traffic share)")
        share = _number(data["share"], f"{where}.share", 0.0, 1.0)
        faults = data.get("faults") or []
        if not isinstance(faults, list) or not all(
            isinstance(f, dict) and isinstance(f.get("kind"), str) for f in faults
        ):
            raise ScenarioError(f"{where}.faults", "expected a list of mappings with a `kind`")
        variants.append(
            Variant(
                name,
                share,
                _client(data.get("client"), f"{where}.client"),
                _server(data.get("server"), f"{where}.server"),
                tuple(faults),
            )
        )
    total = sum(v.share for v in variants)
    if abs(total - 1.0) > 1e-6:
        raise ScenarioError("variants", f"shares add up to {total:g}, not 1")
    return tuple(variants)


def _timeline(value: Any, duration: float, names: tuple[str, ...]) -> tuple[Event, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ScenarioError("timeline", "expected a list of events")
    events = []
    for index, entry in enumerate(value):
        where = f"timeline[{index}]"
        if not isinstance(entry, dict) or "kind" not in entry:
            raise ScenarioError(where, "each event is a mapping with a `kind`")
        kind = entry["kind"]
        if kind not in EVENT_KINDS:
            raise ScenarioError(
                f"{where}.kind",
                f"unknown event kind {kind!r}",
                f"use one of {', '.join(EVENT_KINDS)}",
            )
        required, optional = EVENT_KINDS[kind]
        data = _mapping(entry, where, ("kind", "variants", "note", *required, *optional))
        for name in required:
            if name not in data:
                raise ScenarioError(f"{where}.{name}", f"required for a {kind} event")
        times = {
            n: field_seconds(data[n], f"{where}.{n}") for n in ("at", "start", "end") if n in data
        }
        start = times.get("at", times.get("start", 0.0))
        end = times.get("end", start)
        if kind == "token_rotation":
            end = start + field_seconds(data.get("duration", "10m"), f"{where}.duration")
        if kind == "server_faults" and "end" not in data:
            end = duration
        if end < start:
            raise ScenarioError(f"{where}.end", "ends before it starts")
        if start > duration:
            raise ScenarioError(f"{where}.{'at' if 'at' in times else 'start'}",
                                "is after the end of the scenario")  # fmt: skip
        targets = data.get("variants", list(names))
        if isinstance(targets, str):
            targets = [targets]
        unknown = [t for t in targets if t not in names]
        if not isinstance(targets, list) or not targets or unknown:
            raise ScenarioError(
                f"{where}.variants",
                f"unknown variant(s) {unknown}" if unknown else "expected a list of variant names",
                f"variants of this scenario: {', '.join(names)}",
            )
        params: dict[str, Any] = {}
        if "note" in data:
            params["note"] = str(data["note"])
        if "downtime" in data:
            params["downtime"] = field_seconds(data["downtime"], f"{where}.downtime")
        if "share" in data:
            params["share"] = _number(data["share"], f"{where}.share", 0.0, 1.0)
        if "reject_p" in data:
            params["reject_p"] = _number(data["reject_p"], f"{where}.reject_p", 0.0, 1.0)
        for flag in ("browser_offline", "revalidate"):
            if flag in data:
                params[flag] = _bool(data[flag], f"{where}.{flag}")
        if "extra" in data:
            params["extra"] = field_seconds(data["extra"], f"{where}.extra")
        if "lifetime" in data:
            params["lifetime"] = field_seconds(
                data["lifetime"], f"{where}.lifetime", allow_zero=False
            )
        if "set" in data:
            params["set"] = _server(data["set"], f"{where}.set")
            params["set_fields"] = tuple(
                {"ttfb": "ttfb_median", "lifetime": "lifetime_median"}.get(k, k)
                for k in data["set"]
            )
            if isinstance(data["set"].get("ttfb"), dict):
                params["set_fields"] += tuple(
                    f"ttfb_{k}" for k in data["set"]["ttfb"] if k != "median"
                )
        events.append(Event(kind, start, end, tuple(targets), params))
    return tuple(sorted(events, key=lambda e: e.start))


def _expect(value: Any, where: str = "expect") -> dict[str, Any]:
    data = _mapping(value, where, ("canary_share", "profiles", "incidents", "note"))
    if "canary_share" in data:
        _number(data["canary_share"], f"{where}.canary_share", 0.0, 1.0)
    profiles = _mapping(data.get("profiles"), f"{where}.profiles", ("canary", "staging"))
    for profile, spec in profiles.items():
        here = f"{where}.profiles.{profile}"
        spec = _mapping(spec, here, ("verdict", "gates", "note"))
        if spec.get("verdict") not in VERDICTS:
            raise ScenarioError(
                f"{here}.verdict", f"{spec.get('verdict')!r} is not one of {VERDICTS}"
            )
        gates = _mapping(spec.get("gates"), f"{here}.gates", tuple(spec.get("gates") or ()))
        for gate, decision in gates.items():
            if decision not in DECISIONS:
                raise ScenarioError(
                    f"{here}.gates.{gate}", f"{decision!r} is not one of {DECISIONS}"
                )
    incidents = data.get("incidents") or []
    if not isinstance(incidents, list):
        raise ScenarioError(f"{where}.incidents", "expected a list")
    for index, incident in enumerate(incidents):
        here = f"{where}.incidents[{index}]"
        incident = _mapping(incident, here, ("kind", "variant", "start", "end", "note"))
        for name in ("kind", "variant", "start", "end"):
            if name not in incident:
                raise ScenarioError(f"{here}.{name}", "required")
        field_seconds(incident["start"], f"{here}.start")
        field_seconds(incident["end"], f"{here}.end")
    return copy.deepcopy(data)


def parse_scenario(raw: Any, *, origin: str = "scenario") -> Scenario:
    """Validate a decoded YAML document; raise ScenarioError naming the first bad field."""
    known = (
        "name", "description", "seed", "start", "duration", "warmup", "scrape_interval",
        "users", "variants", "timeline", "output", "expect",
    )  # fmt: skip
    data = _mapping(raw, "", known) if isinstance(raw, dict) else None
    if data is None:
        raise ScenarioError("(top level)", f"{origin} is not a YAML mapping")
    for name in ("name", "start", "duration", "users", "variants"):
        if name not in data:
            raise ScenarioError(name, "required")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ScenarioError("seed", f"{seed!r} is not a non-negative integer")
    duration = field_seconds(data["duration"], "duration", allow_zero=False)
    variants = _variants(data["variants"])
    names = tuple(v.name for v in variants)
    output = _mapping(data.get("output"), "output", ("rum_exclude", "rum_sample", "metrics_gzip"))
    rum_sample = _number(output.get("rum_sample", 1.0), "output.rum_sample", 0.0, 1.0)
    metrics_gzip = _bool(output.get("metrics_gzip", False), "output.metrics_gzip")
    exclude = output.get("rum_exclude") or []
    if not isinstance(exclude, list) or not all(isinstance(t, str) for t in exclude):
        raise ScenarioError("output.rum_exclude", "expected a list of beacon types")
    expect = _expect(data.get("expect"))
    for index, incident in enumerate(expect.get("incidents", [])):
        if incident["variant"] not in names:
            raise ScenarioError(f"expect.incidents[{index}].variant", "is not a variant here")
    return Scenario(
        name=str(data["name"]),
        description=str(data.get("description", "")).strip(),
        seed=seed,
        start=_time(data["start"], "start"),
        duration=duration,
        warmup=field_seconds(data.get("warmup", "2h"), "warmup"),
        scrape_interval=field_seconds(
            data.get("scrape_interval", "60s"), "scrape_interval", allow_zero=False
        ),
        users=_users(data["users"]),
        variants=variants,
        timeline=_timeline(data.get("timeline"), duration, names),
        rum_exclude=tuple(exclude),
        rum_sample=rum_sample,
        metrics_gzip=metrics_gzip,
        expect=expect,
        raw=copy.deepcopy(data),
    )


def bundled_names() -> list[str]:
    folder = resources.files(BUNDLED_PACKAGE)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def scenario_path(name_or_path: str | Path) -> Path:
    """A path as given, or the bundled scenario of that name."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise UsageError(f"scenario file {path} does not exist", "check the path")
        return path
    bundled = resources.files(BUNDLED_PACKAGE) / f"{name_or_path}.yaml"
    if not bundled.is_file():
        raise UsageError(
            f"no bundled scenario named {name_or_path!r}",
            f"give a path to a YAML file or one of: {', '.join(bundled_names())}",
        )
    return Path(str(bundled))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read and validate a scenario (bundled name or path)."""
    path = scenario_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise ScenarioError(where, f"{path} is not valid YAML: {error}") from None
    return parse_scenario(raw, origin=str(path))
