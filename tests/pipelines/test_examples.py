"""The examples in docs/pipelines/ are kept true: field names against the controllers'
CRDs (recorded in controller_schemas.json with their source), request bodies against what
the service accepts, conditions and status codes against what the service returns, and
the job's command line against the `wsanalysis judge` parser.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.pipelines.controllers import (
    ERROR_RETRY,
    ArgoRollout,
    FlaggerCanary,
    Unmodelled,
    evaluate,
    go_duration,
)
from wsanalysis.cli import build_parser
from wsanalysis.service.app import FLAGGER_OK
from wsanalysis.service.requests import KNOWN, parse_flagger, parse_look
from wsanalysis.times import parse_duration

HERE = Path(__file__).resolve().parent
DOCS = HERE.parents[1] / "docs" / "pipelines"
SCHEMAS = json.loads((HERE / "controller_schemas.json").read_text())
TYPES = {"string": str, "integer": int, "boolean": bool, "number": (int, float), "array": list,
         "object": dict, "int-or-string": (int, str)}  # fmt: skip
VERDICTS = ("GO", "NO_GO", "INCONCLUSIVE")


def documents(name: str) -> list[dict]:
    return list(yaml.safe_load_all((DOCS / name).read_text()))


def check(node, schema: dict, path: str) -> list[str]:
    """Every field the CRD does not know, every required one missing, every wrong type."""
    problems = []
    if schema.get("open") or not schema:
        return problems
    if "names" in schema:
        if not isinstance(node, dict):
            return [f"{path}: expected an object"]
        problems += [
            f"{path}.{k}: not a field of the CRD" for k in node if k not in schema["names"]
        ]
        problems += [f"{path}.{k}: required" for k in schema["required"] if k not in node]
        for key, value in node.items():
            if key in schema["names"]:
                sub = schema.get("properties", {}).get(key)
                if sub is None:
                    problems.append(f"{path}.{key}: not in the recorded schema; rerun make_schemas")
                else:
                    problems += check(value, sub, f"{path}.{key}")
    elif "items" in schema:
        if not isinstance(node, list):
            return [f"{path}: expected a list"]
        for i, item in enumerate(node):
            problems += check(item, schema["items"], f"{path}[{i}]")
    else:
        expected = TYPES.get(schema.get("type", ""), object)
        if not isinstance(node, expected) or (expected is int and isinstance(node, bool)):
            problems.append(f"{path}: {node!r} is not {schema.get('type')}")
        if "enum" in schema and node not in schema["enum"]:
            problems.append(f"{path}: {node!r} not one of {schema['enum']}")
    return problems


EXAMPLES = [(n, i) for n in sorted(p.name for p in DOCS.glob("*.yaml"))
            for i in range(len(documents(n)))]  # fmt: skip


@pytest.mark.parametrize(("name", "index"), EXAMPLES)
def test_every_field_is_in_the_controllers_schema(name: str, index: int):
    doc = documents(name)[index]
    entry = SCHEMAS[f"{doc['apiVersion']} {doc['kind']}"]
    assert entry["source"].startswith("https://github.com/")
    assert check(doc, entry["schema"], doc["kind"]) == []


def test_the_checker_catches_a_misspelt_field():
    doc = documents("argo-web-analysis.yaml")[0]
    doc["spec"]["metrics"][0]["successCondtion"] = doc["spec"]["metrics"][0].pop("successCondition")
    schema = SCHEMAS["argoproj.io/v1alpha1 AnalysisTemplate"]["schema"]
    assert any("successCondtion" in p for p in check(doc, schema, "AnalysisTemplate"))


def render(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*args\.([\w-]+)\s*\}\}", lambda m: args[m.group(1)], text)


def test_the_web_template_sends_what_the_service_reads_and_reads_what_it_answers():
    template, rollout = documents("argo-web-analysis.yaml")
    metric = template["spec"]["metrics"][0]
    web = metric["provider"]["web"]
    assert web["method"] == "POST" and web["url"].endswith("/v1/judge")
    assert web["timeoutSeconds"] <= 10  # Argo's default; the service answers well inside
    assert {h["key"]: h["value"] for h in web["headers"]}["Authorization"].startswith("Bearer ")
    body = json.loads(render(json.dumps(web["jsonBody"]),
                             {"canary-hash": "7d9f8c", "stable-hash": "5b6c7d"}))  # fmt: skip
    assert set(body) <= KNOWN
    look = parse_look(body)
    assert look.canary_selector == 'rollouts_pod_template_hash="7d9f8c"'
    # args are resolved once per run: a background run cannot follow setWeight, so no share
    assert look.canary_share is None and look.horizon == "48h"
    # the conditions, on the three answers the service gives (shape of looks._document)
    outcomes = {}
    for verdict in VERDICTS:
        answer = {"verdict": verdict, "reason": "", "settle_in_s": None, "gates": [],
                  "report": None}  # fmt: skip
        outcomes[verdict] = evaluate(metric, answer)
    assert outcomes == {"GO": "Successful", "NO_GO": "Failed", "INCONCLUSIVE": "Inconclusive"}
    # every look until the horizon may be inconclusive; an outage of two intervals (errors
    # retried every 10 s, analysis.go) stays under consecutiveErrorLimit
    interval = go_duration(metric["interval"])
    assert metric["count"] * interval == parse_duration(look.horizon)
    assert metric["failureLimit"] == 0 and metric["inconclusiveLimit"] == metric["count"] - 1
    assert metric["consecutiveErrorLimit"] * ERROR_RETRY >= 2 * interval
    # the same template runs in the background across the setWeight steps and gates the end
    declared = {a["name"] for a in template["spec"]["args"]}
    canary = rollout["spec"]["strategy"]["canary"]
    background = canary["analysis"]
    assert [t["templateName"] for t in background["templates"]] == ["wsanalysis-judge"]
    assert {a["name"] for a in background["args"]} | {"judge-token"} == declared
    weights = [step["setWeight"] for step in canary["steps"] if "setWeight" in step]
    assert weights == sorted(weights) and len(weights) > 1
    gate = canary["steps"][-1]["analysis"]
    assert gate["templates"] == background["templates"] and gate["args"] == background["args"]


def test_the_flagger_hooks_go_where_their_semantics_are():
    (canary,) = documents("flagger-canary.yaml")
    analysis = canary["spec"]["analysis"]
    # a progressive canary (canary.go DeploymentStrategy), on a provider that moves weights
    assert "iterations" not in analysis and "match" not in analysis
    assert canary["spec"]["provider"] != "kubernetes"
    assert 0 < analysis["stepWeight"] <= analysis["maxWeight"] < 100
    assert analysis["threshold"] >= 3  # a blip of two intervals is two failed checks
    hooks = analysis["webhooks"]
    assert {h["type"] for h in hooks} == set(FLAGGER_OK)
    assert hooks[0]["type"] == "rollback"
    for hook in hooks:
        assert hook["url"].endswith(f"/v1/flagger/{hook['type']}")
        metadata = hook["metadata"]
        assert all(isinstance(v, str) for v in metadata.values())  # Flagger's metadata type
        payload = {"name": "checkout", "namespace": "shop", "phase": "Progressing",
                   "checksum": "85d557f47b", "metadata": metadata}  # fmt: skip
        look = parse_flagger(hook["type"], payload)
        assert look.id == "shop/checkout@85d557f47b" and look.canary_share is None
        assert look.ignored == ("owner",)  # the team's key, ignored, not a 400
        # the labels Flagger puts on canary pods (the target's) and on primary pods
        assert 'app="checkout"' in look.canary_selector
        assert 'app="checkout-primary"' in look.control_selector
        assert "canary" not in look.canary_selector.replace("checkout", "")
    assert {
        "confirm-promotion": {"GO"},
        "rollout": {"GO", "INCONCLUSIVE"},
        "pre-rollout": {"GO", "INCONCLUSIVE"},
        "rollback": {"NO_GO"},
    } == FLAGGER_OK


def test_the_examples_are_what_the_controller_double_runs():
    """The double refuses what it does not model; the examples stay on modelled ground."""
    (canary,) = documents("flagger-canary.yaml")
    FlaggerCanary(canary, "http://127.0.0.1:9")
    template, rollout = documents("argo-web-analysis.yaml")
    argo = ArgoRollout(rollout, {"wsanalysis-judge": template}, {"Latest": "a", "Stable": "b"},
                       {("wsanalysis-judge", "token"): "t"}, "http://127.0.0.1:9")  # fmt: skip
    run = argo.new_run(rollout["spec"]["strategy"]["canary"]["analysis"], "background")
    assert run.metric["provider"]["web"]["headers"] == [{"key": "Authorization",
                                                         "value": "Bearer t"}]  # fmt: skip
    with pytest.raises(Unmodelled, match="Blue/Green"):
        FlaggerCanary({**canary, "spec": {**canary["spec"], "analysis": {
            **canary["spec"]["analysis"], "iterations": 576}}}, "http://127.0.0.1:9")  # fmt: skip


def test_the_job_runs_a_judge_command_line_that_parses(tmp_path: Path):
    (template,) = documents("argo-job-analysis.yaml")
    job = template["spec"]["metrics"][0]["provider"]["job"]["spec"]
    assert job["backoffLimit"] == 0 and job["template"]["spec"]["restartPolicy"] == "Never"
    container = job["template"]["spec"]["containers"][0]
    assert container["command"] == ["sh", "-c"]
    script = render(container["args"][0], {"canary-hash": "7d9f8c", "stable-hash": "5b6c7d"})
    # run the real shell line with a stand-in `wsanalysis` that records its arguments
    fake = tmp_path / "wsanalysis"
    fake.write_text("#!/usr/bin/env python3\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}",
           "WSANALYSIS_PROM_URL": "http://prometheus.monitoring.svc:9090"}  # fmt: skip
    argv = json.loads(subprocess.run(["sh", "-c", script], env=env, capture_output=True,
                                     text=True, check=True).stdout)  # fmt: skip
    args = build_parser("judge").parse_args(argv)
    assert args.command == "judge" and args.inconclusive_exit == 1
    assert int(args.end) - int(args.start) == 3600
    assert args.canary_selector == 'rollouts_pod_template_hash="7d9f8c"'
    names = {e["name"] for e in container["env"]}
    assert "WSANALYSIS_PROM_BEARER_TOKEN" in names and "hunter" not in script


def test_the_ramp_declares_each_steps_weight_to_the_one_canary():
    stage, gate, rollout = documents("argo-ramp-analysis.yaml")
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    assert "analysis" not in rollout["spec"]["strategy"]["canary"]  # no background run
    hashes = {"canary-hash": "7d9f8c", "stable-hash": "5b6c7d"}
    ids = set()
    for setter, step in zip(steps[::2], steps[1::2], strict=True):
        weight = setter["setWeight"]
        args = {a["name"]: a.get("value") for a in step["analysis"]["args"]}
        assert args["canary-weight"] == str(weight)  # what was just set, as text
        (name,) = [t["templateName"] for t in step["analysis"]["templates"]]
        template = {"wsanalysis-judge-stage": stage, "wsanalysis-judge-ramp": gate}[name]
        web = template["spec"]["metrics"][0]["provider"]["web"]
        body = json.loads(render(json.dumps(web["jsonBody"]),
                                 {**hashes, "canary-weight": args["canary-weight"]}))  # fmt: skip
        look = parse_look(body)
        assert look.canary_share == weight / 100
        ids.add((look.id, tuple(sorted(look.settings().items()))))
    assert len(ids) == 1  # one canary, one set of settings: only the share moves
    # a stage watches its hour and never pauses on INCONCLUSIVE; the last step is the gate
    metric = stage["spec"]["metrics"][0]
    assert metric["count"] - 1 == 12 and go_duration(metric["interval"]) * 12 == parse_duration(
        "1h"
    )
    assert metric["inconclusiveLimit"] >= metric["count"] and metric["failureLimit"] == 0
    assert "consecutiveSuccessLimit" not in metric
    assert steps[-1]["analysis"]["templates"] == [{"templateName": "wsanalysis-judge-ramp"}]
    last = gate["spec"]["metrics"][0]
    assert last["consecutiveSuccessLimit"] == 1 and last["inconclusiveLimit"] == last["count"] - 1
