"""Scenario files: bundled ones load; malformed ones fail naming the field and the reason."""

from __future__ import annotations

import copy

import pytest
import yaml

from wsanalysis.cli import main
from wsanalysis.errors import UsageError
from wsanalysis.reference.scenario import (
    ScenarioError,
    bundled_names,
    field_seconds,
    load_scenario,
    parse_scenario,
)

from .conftest import TINY


def test_every_bundled_scenario_loads_and_declares_its_expectation() -> None:
    names = bundled_names()
    assert {"aa_baseline", "error_rate_x2", "network_outage", "before_after_before"} <= set(names)
    for name in names:
        scenario = load_scenario(name)
        assert scenario.name == name
        assert abs(sum(v.share for v in scenario.variants) - 1) < 1e-9
        if "canary" in {v.name for v in scenario.variants}:
            assert scenario.expect["profiles"]["canary"]["verdict"] in (
                "GO",
                "NO_GO",
                "INCONCLUSIVE",
            )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("90s", 90), ("15m", 900), ("2h30m", 9000), ("1d", 86400), (42, 42.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert field_seconds(text, "x") == pytest.approx(seconds)


def test_tiny_scenario_parses_with_defaults(tiny: dict) -> None:
    scenario = parse_scenario(tiny)
    assert scenario.duration == 7200 and scenario.warmup == 1200
    canary = scenario.variant("canary")
    assert canary.client.jitter == "none" and not canary.client.dedup
    assert canary.server.ttfb_median == pytest.approx(0.3)
    assert scenario.variant("control").client.jitter == "production"
    kinds = [event.kind for event in scenario.timeline]
    assert kinds[0] == "restart" and kinds[-1] == "server_faults"
    rotation = next(e for e in scenario.timeline if e.kind == "token_rotation")
    assert (rotation.start, rotation.end, rotation.variants) == (4200, 4500, ("canary",))
    # users.concurrent is turned into an arrival rate: rate × mean session = concurrent
    assert scenario.users.concurrent == pytest.approx(60)


def _edit(path: str, value: object, delete: bool = False) -> dict:
    raw = copy.deepcopy(TINY)
    *parents, last = path.split(".")
    target = raw
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    elif delete:
        del target[last]
    else:
        target[last] = value
    return raw


MALFORMED = [
    (_edit("duration", "12 hours"), "duration", "not a duration"),
    (_edit("duration", None, delete=True), "duration", "required"),
    (_edit("seed", -1), "seed", "non-negative"),
    (_edit("start", "2026-11-02T06:00:00"), "start", "no time zone"),
    (_edit("variants.canary.share", 0.5), "variants", "add up to 1.2"),
    (_edit("variants.canary.share", "ten"), "variants.canary.share", "not a number"),
    (_edit("variants.canary.client.jitter", "random"), "variants.canary.client.jitter", "not a jitter"),
    (_edit("variants.canary.server.internal_error_p", 1.5), "variants.canary.server.internal_error_p", "outside"),
    (_edit("variants.canary.server.ttfb_mean", "1s"), "variants.canary.server.ttfb_mean", "unknown field"),
    (_edit("users.sessions_per_hour", 100), "users", "exactly one of concurrent or sessions_per_hour"),
    (_edit("users.concurrent", None, delete=True), "users", "neither given"),
    (_edit("timeline.0", {"kind": "earthquake", "at": "1h"}), "timeline[0].kind", "unknown event kind"),
    (_edit("timeline.0", {"kind": "drain", "start": "1h"}), "timeline[0].end", "required for a drain"),
    (_edit("timeline.0", {"kind": "drain", "start": "1h", "end": "30m"}), "timeline[0].end", "ends before"),
    (_edit("timeline.0", {"kind": "restart", "at": "5h"}), "timeline[0].at", "after the end"),
    (_edit("timeline.0", {"kind": "restart", "at": "1h", "variants": ["beta"]}), "timeline[0].variants", "unknown variant"),
    (_edit("expect.profiles.canary.verdict", "MAYBE"), "expect.profiles.canary.verdict", "not one of"),
    (_edit("output", {"rum_sample": 2}), "output.rum_sample", "outside"),
    (_edit("colour", "blue"), "colour", "unknown field"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "field", "reason"), MALFORMED, ids=[m[1] for m in MALFORMED])
def test_malformed_scenarios_name_the_field_and_the_reason(
    raw: dict, field: str, reason: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(raw)
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert isinstance(caught.value, UsageError)  # the CLI maps it to exit 3


def test_invalid_yaml_and_unknown_names_fail_with_a_fix(tmp_path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nvariants: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(broken)
    with pytest.raises(UsageError, match="aa_baseline"):  # the fix lists the bundled names
        load_scenario("no_such_scenario")


def test_cli_reports_a_malformed_scenario_with_exit_3(tmp_path, tiny, capsys) -> None:
    tiny["variants"]["canary"]["client"]["jitter"] = "random"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(tiny))
    assert main(["simulate", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "variants.canary.client.jitter" in err and "not a jitter strategy" in err
    assert not (tmp_path / "out").exists()
