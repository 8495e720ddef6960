"""The judge end to end: synthetic canaries with known truth, the rule, the CLI."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from wsanalysis.canary.gates import load_gate_file
from wsanalysis.canary.inputs import load_judge_input
from wsanalysis.canary.judge import JudgeInput, judge
from wsanalysis.canary.reads import gate_metric_names, gate_rum_columns
from wsanalysis.canary.synthetic import CanaryCase, synthesize
from wsanalysis.canary.verdict import GateEvidence, decide, overall
from wsanalysis.cli import main
from wsanalysis.errors import DataError
from wsanalysis.frames.measures import Window
from wsanalysis.sources.schema import empty_samples

CANARY = load_gate_file().profile("canary")


def run(scenario: CanaryCase, seed: int, share: float | None = 0.1, profile=CANARY):
    samples, beacons = synthesize(scenario, seed)
    window = Window(scenario.start, scenario.start + timedelta(hours=scenario.hours))
    return judge(profile, JudgeInput(samples, beacons, window, canary_share=share))


def decisions(verdict) -> dict[str, str]:
    return {g.name: g.decision for g in verdict.gates}


def test_aa_canaries_are_never_no_go():
    scenario = CanaryCase(connections_per_hour=60_000)
    verdicts = [run(scenario, seed) for seed in range(6)]
    assert all(v.overall != "NO_GO" for v in verdicts), [v.reason for v in verdicts]
    assert all(decisions(v)["reconnect_rate"] == "pass" for v in verdicts)


def test_error_rate_tripled_fails_the_critical_gate():
    scenario = CanaryCase(connections_per_hour=60_000, error_multiplier=3.0)
    verdicts = [run(scenario, seed) for seed in range(4)]
    assert sum(decisions(v)["error_rate"] == "fail" for v in verdicts) >= 3
    failing = next(v for v in verdicts if decisions(v)["error_rate"] == "fail")
    assert failing.overall == "NO_GO" and "Error rate" in failing.reason
    gate = next(g for g in failing.gates if g.name == "error_rate")
    assert gate.evidence.ci_low > 1.1  # the whole interval beyond control + 10%
    assert "is worse than control + 10%" in gate.sentence


def test_reconnect_rate_over_the_bound_fails():
    verdict = run(CanaryCase(connections_per_hour=20_000, canary_reconnect_rate=0.09), 0)
    assert decisions(verdict)["reconnect_rate"] == "fail"
    assert verdict.overall == "NO_GO"


def test_auth_burst_is_not_averaged_away():
    """A 15-minute 4401 burst fails the spike gate; the hour's average barely moves."""
    scenario = CanaryCase(connections_per_hour=60_000, auth_burst_multiplier=8.0)
    verdict = run(scenario, 0)
    gate = next(g for g in verdict.gates if g.name == "auth_spike")
    assert gate.decision == "fail"
    burst_start = scenario.start + timedelta(minutes=scenario.auth_burst_minutes[0])
    burst_end = scenario.start + timedelta(minutes=scenario.auth_burst_minutes[1])
    worst = gate.evidence.details.worst_bucket
    assert burst_start.isoformat() <= worst < burst_end.isoformat()


def test_ttfb_shift_beyond_the_margin_fails_and_near_miss_does_not():
    far = run(CanaryCase(connections_per_hour=60_000, ttfb_shift_s=0.3), 1)
    assert decisions(far)["ttfb_p95"] == "fail"
    near = run(CanaryCase(connections_per_hour=60_000, ttfb_shift_s=0.04), 1)
    assert decisions(near)["ttfb_p95"] == "pass"
    gate = next(g for g in near.gates if g.name == "ttfb_p95")
    assert "this passes: the upper 95% limit" in gate.sentence
    assert "is inside the +150 ms tolerance" in gate.sentence


def test_sample_ratio_mismatch_makes_an_aa_run_inconclusive():
    verdict = run(CanaryCase(connections_per_hour=60_000), 0, share=0.2)
    assert verdict.overall == "INCONCLUSIVE"
    assert verdict.reason.startswith("Sample-ratio mismatch") and "20%" in verdict.reason


def test_empty_window_is_no_data_never_go():
    verdict = judge(CANARY, JudgeInput(empty_samples(), None))
    assert verdict.overall == "INCONCLUSIVE"
    assert {g.decision for g in verdict.gates} == {"no_data"}
    assert all("no data" in g.sentence for g in verdict.gates)


def test_missing_variant_is_no_data():
    samples, beacons = synthesize(CanaryCase(connections_per_hour=20_000), 0)
    only_canary = JudgeInput(
        samples.filter(pl.col("variant") == "canary"),
        beacons.filter(pl.col("variant") == "canary"),
    )
    verdict = judge(CANARY, only_canary)
    assert verdict.overall != "GO"
    assert decisions(verdict)["error_rate"] == "no_data"
    assert decisions(verdict)["ttfb_p95"] == "no_data"


def test_rule_v2_passes_on_the_upper_limit_never_on_power():
    weak = GateEvidence(
        canary=0.01, control=0.01, effect=1.0, ci_low=0.5, ci_high=2.0, limit=1.1,
        p_harm=0.6, power=0.99, sufficient=True, method="m", source="s", p_safe=0.2,
        tolerance=1.5, exposure=5000,
    )  # fmt: skip
    # high observed power, upper limit outside the tolerance: inconclusive
    assert decide(weak, 0.6, 0.025, 0.2) == "inconclusive"
    assert decide(weak, 0.6, 0.025, 0.02) == "pass"  # the upper limit inside the tolerance
    assert decide(weak, 0.6, 0.025, 0.025) == "pass"  # the level itself
    short = GateEvidence(**{**weak.__dict__, "sufficient": False})
    assert decide(short, 0.6, 0.025, 0.001) == "inconclusive"
    assert decide(weak, 0.01, 0.025, 0.001) == "fail"  # harm shown wins
    # below the gate's minimum exposure nothing passes; harm still fails
    assert decide(weak, 0.6, 0.025, 0.001, min_exposure=10_000) == "no_data"
    assert decide(weak, 0.001, 0.025, 0.001, min_exposure=10_000) == "fail"
    assert decide(GateEvidence.no_data(1.1, "x"), math.nan, 0.025, math.nan) == "no_data"


def test_overall_rule():
    verdict = run(CanaryCase(connections_per_hour=60_000), 0)
    results = list(verdict.gates)
    passing = [r.__class__(**{**r.__dict__, "decision": "pass"}) for r in results]
    assert overall(passing)[0] == "GO"
    assert overall(passing, "Sample-ratio mismatch")[0] == "INCONCLUSIVE"
    one_fail = [passing[0].__class__(**{**passing[0].__dict__, "decision": "fail"}), *passing[1:]]
    assert overall(one_fail)[0] == "NO_GO"
    assert overall(one_fail, "Sample-ratio mismatch")[0] == "NO_GO"  # harm stays harm
    no_data = [
        *passing[:-1],
        passing[-1].__class__(**{**passing[-1].__dict__, "decision": "no_data"}),
    ]
    assert overall(no_data)[0] == "INCONCLUSIVE"


# -- the CLI on the bundled sample (a canary restart at 4 h) -------------------------------


def test_cli_judge_writes_verdict_and_exit_code(sample_dataset: Path, tmp_path: Path):
    out = tmp_path / "verdict.json"
    code = main(
        ["judge", "--data", str(sample_dataset), "--canary-share", "0.1", "--out", str(out)]
    )
    document = json.loads(out.read_text())
    assert code == 1 and document["verdict"] == "NO_GO" and document["exit_code"] == 1
    gates = {g["name"]: g for g in document["gates"]}
    assert gates["reconnect_rate"]["decision"] == "fail"
    assert document["inputs"]["fingerprints"]["metrics.om"]
    assert document["run"]["package_version"] and document["gate_file"]["sha256"]
    assert document["window"]["start"].startswith("2026-11-02T06:00")


def test_cli_staging_profile_and_kayenta_judge(sample_dataset: Path, tmp_path: Path):
    out = tmp_path / "v.json"
    assert (
        main(["judge", "--data", str(sample_dataset), "--profile", "staging", "--out", str(out)])
        == 0
    )
    assert json.loads(out.read_text())["verdict"] == "GO"
    # Kayenta's per-step Mann-Whitney does not see the one-hour reconnect burst
    code = main(["judge", "--data", str(sample_dataset), "--judge", "kayenta", "--out", str(out)])
    document = json.loads(out.read_text())
    assert document["judge"] == "kayenta" and code == int(document["exit_code"])
    assert set(document["kayenta"]["metrics"]) == {g.name for g in CANARY.gates}


@pytest.mark.parametrize(
    "argv",
    [
        ["judge", "--data", "data/absent"],
        ["judge", "--data", "data/sample", "--profile", "prod"],
        ["judge", "--data", "data/sample", "--gates", "nope.yaml"],
        ["judge", "--prometheus", "http://127.0.0.1:9"],
        ["judge", "--data", "data/sample", "--canary-selector", 'track="canary"'],
    ],
)
def test_cli_usage_errors_exit_3(argv, repo_root: Path, monkeypatch, tmp_path: Path, capsys):
    monkeypatch.chdir(repo_root)
    assert main([*argv, "--out", str(tmp_path / "v.json")]) == 3
    assert "fix:" in capsys.readouterr().err
    assert not (tmp_path / "v.json").exists()


# -- sequential looks ----------------------------------------------------------------------


def sequential_run(scenario: CanaryCase, seed: int, plan):
    samples, beacons = synthesize(scenario, seed)
    window = Window(scenario.start, scenario.start + timedelta(hours=scenario.hours))
    return judge(CANARY, JudgeInput(samples, beacons, window, 0.1, sequential=plan))


def test_sequential_mode_goes_before_the_horizon_on_a_healthy_canary():
    from wsanalysis.canary.judge import SequentialPlan

    plan = SequentialPlan(timedelta(minutes=5), timedelta(hours=48))
    verdict = sequential_run(CanaryCase(connections_per_hour=60_000, hours=2), 0, plan)
    record = verdict.metadata["sequential"]
    assert record["planned_looks"] == 576 and record["looks_so_far"] == 24
    assert verdict.overall == "GO", verdict.reason
    assert record["go_at_look"] is not None and record["go_at_look"] < 24
    gate = next(g for g in verdict.gates if g.name == "error_rate")
    assert gate.evidence.method.startswith("mixture SPRT over 24 looks")
    assert gate.evidence.anytime and gate.evidence.sequence.first_rejecting_look is None
    ttfb = next(g for g in verdict.gates if g.name == "ttfb_p95")
    assert "quantile confidence sequences" in ttfb.evidence.method
    # the anytime interval is wider than the fixed one on the same data
    fixed = run(CanaryCase(connections_per_hour=60_000, hours=2), 0)
    fixed_ttfb = next(g for g in fixed.gates if g.name == "ttfb_p95")
    assert ttfb.evidence.ci_high - ttfb.evidence.ci_low > (
        fixed_ttfb.evidence.ci_high - fixed_ttfb.evidence.ci_low
    )


def test_sequential_mode_keeps_watching_until_the_horizon():
    from wsanalysis.canary.judge import SequentialPlan

    plan = SequentialPlan(timedelta(minutes=5), timedelta(hours=48))
    tiny = CanaryCase(connections_per_hour=3_000, hours=1)
    verdict = sequential_run(tiny, 0, plan)
    assert verdict.overall == "INCONCLUSIVE" and "keep watching" in verdict.reason


def test_sequential_mode_stops_at_a_clear_failure():
    from wsanalysis.canary.judge import SequentialPlan

    plan = SequentialPlan(timedelta(minutes=5), timedelta(hours=48))
    verdict = sequential_run(
        CanaryCase(connections_per_hour=60_000, hours=2, error_multiplier=3), 0, plan
    )
    gate = next(g for g in verdict.gates if g.name == "error_rate")
    assert verdict.overall == "NO_GO" and gate.decision == "fail"
    first = gate.evidence.sequence.first_rejecting_look
    # rate decisions wait for an hour of buckets (the burn-in), then come at the first look
    assert first == (CanaryCase().start + timedelta(hours=1)).isoformat()


def test_cli_sequential_flag(sample_dataset: Path, tmp_path: Path):
    out = tmp_path / "v.json"
    main(
        ["judge", "--data", str(sample_dataset), "--sequential", "--look", "10m", "--out", str(out)]
    )
    record = json.loads(out.read_text())["sequential"]
    assert record["look_minutes"] == 10 and record["horizon_hours"] == 48
    assert main(["judge", "--data", str(sample_dataset), "--sequential", "--look", "soon",
                 "--out", str(out)]) == 3  # fmt: skip


def test_spike_gate_passes_on_exposure_when_no_variant_has_an_event():
    """A ×3 of a zero control rate cannot be ruled out, but an excess of 1 per 100
    connections can, from the canary's exposure alone (no zero-event shortcut)."""
    verdict = run(CanaryCase(connections_per_hour=20_000, auth_rate=0.0), 0)
    gate = next(g for g in verdict.gates if g.name == "auth_spike")
    assert gate.evidence.n_canary == 0 and gate.decision == "pass"


def test_a_bad_line_in_a_series_no_gate_reads_is_still_an_error(
    sample_dataset: Path, tmp_path: Path
):
    text = (sample_dataset / "metrics.om").read_text()
    bad = 'ws_unrelated_total{variant="canary"} not-a-number 1793620800\n# EOF\n'
    (tmp_path / "metrics.om").write_text(text.replace("# EOF\n", bad))
    profile = load_gate_file().profile("canary")
    with pytest.raises(DataError, match="not a number"):
        load_judge_input(profile, data=tmp_path, metric_names=gate_metric_names(profile))


def test_reading_only_what_the_gates_read_gives_the_same_verdict(sample_dataset: Path):
    for name in ("canary", "staging"):
        profile = load_gate_file().profile(name)
        columns, metrics = gate_rum_columns(profile), gate_metric_names(profile)
        assert {"ts", "type", "variant", "session_id"} <= set(columns)
        narrow = load_judge_input(
            profile, data=sample_dataset, canary_share=0.1, rum_columns=columns,
            metric_names=metrics,
        )  # fmt: skip
        whole = load_judge_input(profile, data=sample_dataset, canary_share=0.1)
        assert narrow.beacons.columns == [c for c in whole.beacons.columns if c in columns]
        assert set(narrow.samples["metric"].unique()) == set(metrics) & set(
            whole.samples["metric"].unique()
        )
        assert narrow.samples.height < whole.samples.height
        assert narrow.metadata == whole.metadata  # fingerprints included
        assert judge(profile, narrow).to_json() == judge(profile, whole).to_json()
    assert "socket_id" in gate_rum_columns(load_gate_file().profile("staging"))
    assert "ttfb_ms" in gate_rum_columns(load_gate_file().profile("canary"))
