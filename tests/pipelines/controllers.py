"""A controller double: Flagger's scheduler and Argo Rollouts' analysis, re-implemented
small from their source, driving a real judge-server over HTTP on a virtual timeline.

Only the rules the examples in docs/pipelines/ reach are modelled, each citing the
controller file it follows (fluxcd/flagger 15bd6ad, argoproj/argo-rollouts 9f8d111, the
commits `controller_schemas.json` records). What a rule does not model it refuses
(`Unmodelled`), so an example that leaves the modelled ground fails its test rather than
being judged by a guess. Time is virtual: the double moves `Clock.now` and the service
reads the same clock for looks that send no `end`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests

from wsanalysis.times import parse_duration


class Unmodelled(AssertionError):
    """The example uses a controller feature the double does not re-implement."""


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def post(url: str, body: Any, headers: dict[str, str], timeout: float) -> requests.Response | None:
    """One HTTP POST as a controller makes it; None when nothing answered in time."""
    try:
        return requests.post(url, json=body, headers=headers, timeout=timeout)
    except requests.RequestException:
        return None


def go_duration(text: str) -> timedelta:
    """A Go duration as the controllers write them (5m, 10s, 1h30m)."""
    if not re.fullmatch(r"(\d+(\.\d+)?(ms|s|m|h))+", text):
        raise Unmodelled(f"duration {text!r}")
    return parse_duration(text)


# --------------------------------------------------------------------------- Flagger


@dataclass
class FlaggerCanary:
    """One progressive canary under Flagger's scheduler, one `tick()` per interval.

    `base` replaces the scheme and host of every webhook URL (the service's address in
    the test); `phase`, `weight` and `failed_checks` are Flagger's status fields.
    """

    canary: dict[str, Any]
    base: str
    phase: str = "Progressing"
    weight: int = 0
    failed_checks: int = 0
    iterations: int = 0
    log: list[tuple[datetime, str, int | None]] = field(default_factory=list)
    clock: Clock | None = None

    def __post_init__(self) -> None:
        spec = self.canary["spec"]
        analysis = spec["analysis"]
        # canary.go DeploymentStrategy: iterations (without match) means Blue/Green
        if analysis.get("iterations") or analysis.get("match") or analysis.get("stepWeights"):
            raise Unmodelled(
                "iterations, match or stepWeights: Blue/Green, A/B or steps, not modelled"
            )
        # scheduler.go: the kubernetes provider forces iterations = 10 (Blue/Green)
        if spec.get("provider", "kubernetes") == "kubernetes":
            raise Unmodelled("the kubernetes provider turns the canary into Blue/Green")
        if analysis.get("metrics") or analysis.get("mirror") or analysis.get("stepWeightPromotion"):
            raise Unmodelled("builtin metrics, mirroring, stepWeightPromotion")
        # canary.go GetAnalysisInterval (>= 10 s), GetAnalysisThreshold (default 1)
        self.interval = max(go_duration(analysis.get("interval", "1m")), timedelta(seconds=10))
        self.threshold = analysis.get("threshold") or 1
        self.step = analysis.get("stepWeight", 0)
        # scheduler.go maxWeight: maxWeight, else the total weight (100)
        self.max_weight = analysis.get("maxWeight") or 100
        self.webhooks = analysis.get("webhooks", [])
        for hook in self.webhooks:
            if hook.get("retries") or hook.get("type") not in (
                "",
                "rollout",
                "pre-rollout",
                "rollback",
                "confirm-promotion",
            ):
                raise Unmodelled(f"webhook {hook['name']}: type {hook.get('type')}, retries")  # fmt: skip

    @property
    def done(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    def call(self, hook: dict[str, Any]) -> bool:
        """webhook.go CallWebhook: POST the payload; a status above 202 or none is an error."""
        payload = {
            "name": self.canary["metadata"]["name"],
            "namespace": self.canary["metadata"].get("namespace", "default"),
            "phase": self.phase,
            "checksum": "85d557f47b",  # canaryChecksum: one revision, one checksum
            "metadata": hook.get("metadata") or {},
        }
        url = re.sub(r"^https?://[^/]+", self.base, hook["url"])
        timeout = go_duration(hook.get("timeout") or "10s").total_seconds()
        answer = post(url, payload, {"Content-Type": "application/json"}, timeout)
        status = None if answer is None else answer.status_code
        self.log.append((self.clock.now if self.clock else datetime.min, hook["type"], status))
        return status is not None and status <= 202

    def hooks(self, *kinds: str) -> list[dict[str, Any]]:
        return [h for h in self.webhooks if h.get("type", "") in kinds]

    def all_pass(self, *kinds: str) -> bool:
        """scheduler_hooks.go run*Hooks: every hook of the kind, stopping at the first error."""
        return all(self.call(hook) for hook in self.hooks(*kinds))

    def rollback(self) -> None:
        """scheduler.go rollback: all traffic back to the primary, phase Failed."""
        self.weight, self.phase = 0, "Failed"

    def tick(self) -> None:
        """scheduler.go advanceCanary, for a canary already Progressing."""
        if self.done:
            return
        # check if we should rollback: runRollbackHooks, the first hook that passes decides
        watched = self.phase in ("Progressing", "Waiting", "WaitingPromotion")
        if watched and any(self.call(hook) for hook in self.hooks("rollback")):
            return self.rollback()
        if self.phase == "Promoting":  # runPromotionTrafficShift, stepWeightPromotion 0
            self.weight, self.phase = 0, "Finalising"
            return None
        if self.phase == "Finalising":  # scale the canary to zero, Succeeded
            self.phase = "Succeeded"
            return None
        # check if the number of failed checks reached the threshold
        if self.phase in ("Progressing", "WaitingPromotion") and (
            self.failed_checks >= self.threshold
        ):
            return self.rollback()
        if self.weight == 0 and self.iterations == 0:  # runPreRolloutHooks
            if not self.all_pass("pre-rollout"):
                self.failed_checks += 1
                return None
        elif not self.all_pass("", "rollout"):  # runAnalysis: rollout hooks
            self.failed_checks += 1
            return None
        if self.step > 0:  # nextStepWeight > 0 (confirm-traffic-increase: none here)
            self.run_canary()
        return None

    def run_canary(self) -> None:
        """scheduler.go runCanary: one step of weight, or at maxWeight the promotion gate."""
        if self.weight < self.max_weight:
            self.weight = min(self.weight + self.step, 100)
            return
        # runConfirmPromotionHooks: any failure waits at maxWeight (WaitingPromotion)
        if not self.all_pass("confirm-promotion"):
            self.phase = "WaitingPromotion"
            return
        self.phase = "Promoting"  # canaryController.Promote: the canary spec goes to primary


def run_flagger(canary: FlaggerCanary, clock: Clock, until: datetime) -> FlaggerCanary:
    """Ticks every analysis interval from `clock.now` until the canary is done or `until`."""
    canary.clock = clock
    while not canary.done and clock.now <= until:
        canary.tick()
        clock.now += canary.interval
    return canary


# --------------------------------------------------------------------------- Argo

ERROR_RETRY = timedelta(seconds=10)  # analysis/analysis.go DefaultErrorRetryInterval
CONSECUTIVE_ERROR_LIMIT = 4  # utils/defaults/defaults.go DefaultConsecutiveErrorLimit
_ARG = re.compile(r"\{\{\s*args\.([\w-]+)\s*\}\}")


def render(node: Any, args: dict[str, str]) -> Any:
    """Argo's argument substitution over a metric (`{{args.name}}`); a missing arg fails."""
    if isinstance(node, str):

        def value(match: re.Match[str]) -> str:
            if match.group(1) not in args:
                raise Unmodelled(f"argument {match.group(1)} has no value")
            return args[match.group(1)]

        return _ARG.sub(value, node)
    if isinstance(node, list):
        return [render(item, args) for item in node]
    if isinstance(node, dict):
        return {key: render(item, args) for key, item in node.items()}
    return node


def condition(expression: str, result: Any) -> bool:
    """utils/evaluate: the one expr form the examples use, `result.<field> == "<value>"`."""
    match = re.fullmatch(r'\s*result\.(\w+)\s*(==|!=)\s*"([^"]*)"\s*', expression)
    if not match:
        raise Unmodelled(f"condition {expression!r}")
    name, op, value = match.groups()
    if not isinstance(result, dict) or name not in result:
        raise ValueError(f"result has no {name}")  # expr fails: the measurement is an Error
    return (result[name] == value) == (op == "==")


def evaluate(metric: dict[str, Any], result: Any) -> str:
    """utils/evaluate/evaluate.go EvaluateResult: the phase of one measurement."""
    success_text, failure_text = metric.get("successCondition"), metric.get("failureCondition")
    try:
        success = condition(success_text, result) if success_text else False
        failure = condition(failure_text, result) if failure_text else False
    except ValueError:
        return "Error"
    if not success_text and not failure_text:
        return "Successful"
    if success_text and not failure_text:
        failure = not success
    if failure_text and not success_text:
        success = not failure
    if failure:
        return "Failed"
    return "Successful" if success else "Inconclusive"


def _limit(metric: dict[str, Any], name: str, default: int) -> int:
    value = metric.get(name)
    return default if value is None else int(value)


@dataclass
class AnalysisRun:
    """One AnalysisRun of a one-metric template with the `web` provider."""

    metric: dict[str, Any]
    base: str
    name: str = ""
    phase: str = "Running"
    count: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    consecutive_successes: int = 0
    measurements: list[tuple[datetime, str, Any]] = field(default_factory=list)
    next_at: datetime | None = None  # None: measure now (no initialDelay modelled)

    def __post_init__(self) -> None:
        web = self.metric["provider"].get("web")
        if web is None or web.get("jsonPath") or self.metric.get("initialDelay"):
            raise Unmodelled("only the web provider, without jsonPath or initialDelay")
        self.interval = go_duration(self.metric["interval"]) if "interval" in self.metric else None

    @property
    def done(self) -> bool:
        return self.phase != "Running"

    def measure_if_due(self, now: datetime) -> None:
        """analysis.go generateMetricTasks + runMeasurements + assessMetricStatus."""
        if self.done or (self.next_at is not None and now < self.next_at):
            return
        phase, value = self.take()
        self.measurements.append((now, phase, value))
        if phase == "Successful":
            self.count += 1
            self.consecutive_errors = 0
            self.consecutive_successes += 1
        elif phase in ("Failed", "Inconclusive"):
            self.count += 1
            self.consecutive_errors = 0
            self.consecutive_successes = 0
            self.failed += phase == "Failed"
            self.inconclusive += phase == "Inconclusive"
        else:
            self.errors += 1
            self.consecutive_errors += 1
            self.consecutive_successes = 0
        # an error is retried after DefaultErrorRetryInterval, anything else after interval
        self.next_at = now + (ERROR_RETRY if phase == "Error" else self.interval or ERROR_RETRY)
        self.phase = self.assess()

    def take(self) -> tuple[str, Any]:
        """metricproviders/webmetric/webmetric.go Run: POST jsonBody, non-2xx is an Error."""
        web = self.metric["provider"]["web"]
        headers = {h["key"]: h["value"] for h in web.get("headers", [])}
        url = re.sub(r"^https?://[^/]+", self.base, web["url"])
        if web.get("method", "GET") != "POST" or "jsonBody" not in web:
            raise Unmodelled("only POST with jsonBody")
        timeout = web.get("timeoutSeconds") or 10
        answer = post(url, web["jsonBody"], headers, timeout)
        if answer is None or not 200 <= answer.status_code < 300:
            return "Error", None if answer is None else answer.status_code
        try:
            result = json.loads(answer.content)
        except ValueError:
            raise Unmodelled("a body that is not JSON") from None
        return evaluate(self.metric, result), result.get("verdict")

    def assess(self) -> str:
        """analysis.go assessMetricStatus (a failure, inconclusive or error limit first)."""
        phase = "Running"
        if (limit := _limit(self.metric, "failureLimit", 0)) >= 0 and self.failed > limit:
            phase = "Failed"
        if self.inconclusive > _limit(self.metric, "inconclusiveLimit", 0):
            phase = "Inconclusive"
        limit = _limit(self.metric, "consecutiveErrorLimit", CONSECUTIVE_ERROR_LIMIT)
        if self.consecutive_errors > limit:
            phase = "Error"
        if phase != "Running":
            return phase
        success_limit = _limit(self.metric, "consecutiveSuccessLimit", 0)
        if success_limit > 0 and self.consecutive_successes >= success_limit:
            return "Successful"
        count = self.metric.get("count")  # pkg/apis/.../analysis_types.go EffectiveCount
        effective = int(count) if count else (None if self.interval else 1)
        if effective is not None and self.count >= effective:
            failure_applies = _limit(self.metric, "failureLimit", 0) >= 0
            if success_limit > 0:
                return "Inconclusive" if failure_applies else "Failed"
            return "Successful"
        return "Running"

    def terminate(self) -> None:
        """A run stopped before it completed ends Successful (assessMetricStatus, terminating)."""
        if not self.done:
            self.phase = "Successful"


def template_run(
    template: dict[str, Any], passed: list[dict[str, Any]], hashes: dict[str, str],
    secrets: dict[tuple[str, str], str], base: str, name: str,
) -> AnalysisRun:  # fmt: skip
    """rollout/analysis.go createAnalysisRun: args resolved once, when the run is created
    (utils/analysis/factory.go BuildArgumentsForRolloutAnalysisRun)."""
    args: dict[str, str] = {}
    for arg in template["spec"].get("args", []):
        source = arg.get("valueFrom", {}).get("secretKeyRef")
        if source:
            args[arg["name"]] = secrets[(source["name"], source["key"])]
        elif "value" in arg:
            args[arg["name"]] = arg["value"]
    for arg in passed:
        source = arg.get("valueFrom", {})
        if "podTemplateHashValue" in source:
            args[arg["name"]] = hashes[source["podTemplateHashValue"]]
        elif "value" in arg:
            args[arg["name"]] = arg["value"]
        else:
            raise Unmodelled(f"argument {arg['name']}: {source}")
    (metric,) = template["spec"]["metrics"]
    return AnalysisRun(render(metric, args), base, name=name)


@dataclass
class ArgoRollout:
    """A canary Rollout's steps with background and inline analysis (rollout/canary.go,
    rollout/analysis.go). `phase`: Progressing, Paused (an Inconclusive run: a human
    decides), Degraded (aborted: weight back to 0), Healthy (promoted)."""

    rollout: dict[str, Any]
    templates: dict[str, dict[str, Any]]
    hashes: dict[str, str]  # Latest / Stable pod-template hashes
    secrets: dict[tuple[str, str], str]
    base: str
    phase: str = "Progressing"
    weight: int = 0
    step: int = 0
    pause_until: datetime | None = None
    background: AnalysisRun | None = None
    inline: AnalysisRun | None = None
    runs: list[AnalysisRun] = field(default_factory=list)
    log: list[tuple[datetime, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        canary = self.rollout["spec"]["strategy"]["canary"]
        self.steps = canary["steps"]
        self.analysis = canary.get("analysis")
        if self.analysis and self.analysis.get("startingStep"):
            raise Unmodelled("startingStep")

    @property
    def done(self) -> bool:
        return self.phase in ("Degraded", "Healthy", "Paused")

    def new_run(self, spec: dict[str, Any], name: str) -> AnalysisRun:
        (ref,) = spec["templates"]
        run = template_run(self.templates[ref["templateName"]], spec.get("args", []),
                           self.hashes, self.secrets, self.base, name)  # fmt: skip
        self.runs.append(run)
        return run

    def outcome(self, run: AnalysisRun, now: datetime) -> None:
        """rollout/analysis.go: Failed or Error aborts; Inconclusive pauses."""
        if run.phase in ("Failed", "Error"):
            self.phase, self.weight = "Degraded", 0
            self.log.append((now, f"aborted: {run.name} {run.phase}"))
        elif run.phase == "Inconclusive":
            self.phase = "Paused"
            self.log.append((now, f"paused: {run.name} Inconclusive"))

    def tick(self, now: datetime) -> None:
        if self.done:
            return
        if self.analysis and self.background is None:  # reconcileBackgroundAnalysisRun
            self.background = self.new_run(self.analysis, "background")
        if self.background is not None and not self.background.done:
            self.background.measure_if_due(now)
            self.outcome(self.background, now)
            if self.done:
                return
        while self.step < len(self.steps):
            step = self.steps[self.step]
            if "setWeight" in step:
                self.weight = step["setWeight"]
            elif "pause" in step:
                if "duration" not in step["pause"]:
                    raise Unmodelled("an indefinite pause")
                if self.pause_until is None:
                    self.pause_until = now + go_duration(str(step["pause"]["duration"]))
                if now < self.pause_until:
                    return
                self.pause_until = None
            elif "analysis" in step:  # reconcileStepBasedAnalysisRun: blocks the step
                if self.inline is None:
                    self.inline = self.new_run(step["analysis"], f"step {self.step}")
                self.inline.measure_if_due(now)
                self.outcome(self.inline, now)
                if self.inline.phase != "Successful":
                    return
                self.inline = None
            else:
                raise Unmodelled(f"step {step}")
            self.step += 1
            self.log.append((now, f"step {self.step} done, weight {self.weight}"))
        # all steps done: promoted; a background run still going is stopped
        self.phase, self.weight = "Healthy", 100
        if self.background is not None:
            self.background.terminate()
        self.log.append((now, "promoted"))


def run_argo(
    rollout: ArgoRollout, clock: Clock, until: datetime, every: timedelta = ERROR_RETRY,
    during: Callable[[datetime], None] | None = None,
) -> ArgoRollout:  # fmt: skip
    """Reconciles every `every` of virtual time until the rollout is done or `until`."""
    while not rollout.done and clock.now <= until:
        if during is not None:
            during(clock.now)
        rollout.tick(clock.now)
        clock.now += every
    return rollout
