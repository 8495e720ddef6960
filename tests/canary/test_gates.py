"""Gate files: the default production gates, and errors that name gate and field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from wsanalysis.canary.gates import DEFAULT_GATE_FILE, load_gate_file
from wsanalysis.errors import UsageError
from wsanalysis.times import parse_duration


def test_default_gate_file_encodes_the_production_gates():
    gates = load_gate_file()
    canary = gates.profile("canary")
    assert [g.name for g in canary.gates] == [
        "error_rate",
        "ttfb_p95",
        "reconnect_rate",
        "auth_spike",
    ]
    error = canary.gate("error_rate")
    assert error.compare.against == "control" and error.worse == "increase"
    assert [s.promql() for s in error.events.prometheus] == [
        'ws_frames_sent_total{event="error"}',
        'ws_closes_total{code="1011"}',
    ]
    ttfb = canary.gate("ttfb_p95")
    assert ttfb.quantile == 0.95 and ttfb.compare.limit(control=1.2) == pytest.approx(1.3)
    assert ttfb.samples.rum.column == "ttfb_ms" and ttfb.samples.rum.scale == 0.001
    assert canary.gate("reconnect_rate").compare.limit() == 0.05
    assert canary.gate("auth_spike").bucket == timedelta(minutes=5)
    staging = gates.profile("staging")
    assert staging.gate("duration_p95").compare.bound == 7200
    assert staging.gate("duration_p50").compare.bound == 1800
    assert staging.gate("duration_p95").worse == "decrease"


def test_default_gate_file_comments_state_the_decision_rule():
    text = DEFAULT_GATE_FILE.read_text()
    for word in (
        "fail",
        "pass",
        "inconclusive",
        "no_data",
        "Holm",
        "tolerance",
        "upper confidence limit",
    ):
        assert word in text


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(UsageError, match="canary, staging"):
        load_gate_file().profile("prod")


def _broken(tmp_path: Path, edit) -> Path:
    document = yaml.safe_load(DEFAULT_GATE_FILE.read_text())
    edit(document["profiles"]["canary"]["gates"])
    path = tmp_path / "gates.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda g: g[0].update(statistic="mean"), "gate 'error_rate', field 'statistic'"),
        (lambda g: g[0].pop("worse"), "gate 'error_rate', field 'worse' is missing"),
        (lambda g: g[1].update(quantile=95), "gate 'ttfb_p95', field 'quantile'"),
        (lambda g: g[3].update(bucket="five minutes"), "gate 'auth_spike', field 'bucket'"),
        (lambda g: g[0]["compare"].update(against="baseline"), "compare, field 'against'"),
        (lambda g: g[0]["compare"].update(margin=-0.1), "field 'margin' must not be negative"),
        (lambda g: g[0].update(tolerance="big"), "field 'tolerance' must be float"),
        (lambda g: g[0].update(detectable=1.5), "'detectable' is the old name of 'tolerance'"),
        (lambda g: g[0].update(tolerance=1.05), "inside the bound 1.1"),
        (lambda g: g[0].pop("tolerance"), "field 'tolerance' is missing"),
        (lambda g: g[0].update(tolerance_excess=0.01), "field 'tolerance_excess' is for a spike"),
        (lambda g: g[0]["events"].update(prometheus=["1bad{"]), "has a bad selector"),
        (lambda g: g[0].pop("exposure"), "field 'exposure' is required for a rate"),
        (lambda g: g[1].pop("samples"), "field 'samples' is required"),
        (lambda g: g[2]["compare"].pop("bound"), "field 'bound' is missing"),
        (lambda g: g[1].update(name="error_rate"), "two gates named 'error_rate'"),
        (lambda g: g[0].update(confidence=1.5), "field 'confidence'"),
        (lambda g: g[3]["compare"].update(margin_type="absolute"), "must be relative for a spike"),
        (lambda g: g[1]["compare"].update(margin_type="relative"), "absolute margin"),
    ],
)
def test_invalid_gate_names_gate_and_field(tmp_path: Path, edit, expected):
    with pytest.raises(UsageError) as raised:
        load_gate_file(_broken(tmp_path, edit))
    assert expected in str(raised.value)


def test_old_gate_files_map_detectable_to_tolerance(tmp_path: Path):
    def rename(gates):
        gates[0]["detectable"] = gates[0].pop("tolerance")

    gate = load_gate_file(_broken(tmp_path, rename)).profile("canary").gate("error_rate")
    assert gate.tolerance == 1.5 and gate.detectable == 1.5


def test_missing_and_unparsable_files(tmp_path: Path):
    with pytest.raises(UsageError, match="does not exist"):
        load_gate_file(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("profiles:\n  canary: [unclosed\n")
    with pytest.raises(UsageError, match="not valid YAML at line"):
        load_gate_file(bad)


def test_parse_duration():
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("1h30m") == parse_duration("1.5h") == timedelta(minutes=90)
    with pytest.raises(ValueError, match="as a duration"):
        parse_duration("1.5 hours")
