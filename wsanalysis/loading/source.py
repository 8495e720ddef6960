"""Where the data come from: one typed description for every caller.

A `DataSource` is a dataset folder, or a metrics server read raw or pushed down, with RUM
beacons from files read in memory or by an engine, over a window, with a variant mapping
and the user's telemetry names; its incremental form (`since`) reads only what is new
since a point, re-reading a late-arrival margin before it. The CLI, the reports and
notebooks, `judge-server` and the public API all build one (`DataSource.of` checks what a
person typed) and hand it to the one loader, `wsanalysis.loading.load`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from wsanalysis.errors import UsageError
from wsanalysis.pushdown.engines import ENGINES, Engine
from wsanalysis.secrets import checked_url
from wsanalysis.sources.dataset import Dataset
from wsanalysis.sources.rum import BeaconSchema
from wsanalysis.sources.telemetry import REFERENCE, Telemetry, load_telemetry
from wsanalysis.sources.variants import DEFAULT_VARIANTS, VariantMapping
from wsanalysis.windows import checked_window

#: How late a sample may reach the server and still be read by the next incremental look.
DEFAULT_LATE = timedelta(minutes=15)


@dataclass(frozen=True)
class MetricsServer:
    """A Prometheus-compatible server (Prometheus, Thanos, Mimir, VictoriaMetrics).

    By default the server sums what the gates need (push-down); `raw` reads every sample
    instead (audits, small data, Kayenta, the incident detectors)."""

    url: str
    raw: bool = False


@dataclass(frozen=True)
class Incremental:
    """Read what is new since `since`, and re-read the `late` before it, so a sample that
    reaches the server up to `late` after its timestamp is still counted."""

    since: datetime
    late: timedelta = DEFAULT_LATE


@dataclass(frozen=True)
class DataSource:
    """A dataset folder, or a metrics server (plus an optional RUM export), over a window.

    `metrics` is the folder (`Path`: its metrics file and RUM beacons) or a
    `MetricsServer`; `rum` is a RUM export beside a server; `engine` computes the RUM
    gates' sums (`polars` reads the beacons into memory, `duckdb` / `spark` leave them in
    the engine); `start` / `end` narrow a folder to a window (a server needs both).
    `telemetry` names the user's metrics, labels and beacons; `variants` given here
    replace the telemetry's (and are then its: both always say the same).
    """

    metrics: Path | MetricsServer
    rum: Path | None = None
    engine: Engine = "polars"
    start: datetime | None = None
    end: datetime | None = None
    variants: VariantMapping = field(default_factory=lambda: DEFAULT_VARIANTS)
    telemetry: Telemetry = REFERENCE
    lenient: bool = False  # a metrics file: drop lines that break a rule, count them
    incremental: Incremental | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r}", f"use one of {', '.join(ENGINES)}")
        # one variant mapping: the one given here, else the telemetry file's
        if self.variants != DEFAULT_VARIANTS and self.telemetry.variants != self.variants:
            object.__setattr__(self, "telemetry", replace(self.telemetry, variants=self.variants))
        elif self.variants == DEFAULT_VARIANTS and self.telemetry.variants is not None:
            object.__setattr__(self, "variants", self.telemetry.variants)
        if self.engine != "polars" and not BeaconSchema.of(self.telemetry).plain:
            raise UsageError(
                f"the {self.engine} engine reads beacons in the contract's names only",
                "use --engine polars with a telemetry file that maps beacon fields, types "
                "or the variant",
            )
        if self.server is None:
            if self.rum is not None:
                raise UsageError(
                    "a RUM export goes with a metrics server; a dataset folder holds its own RUM",
                    "drop the RUM export, or read the metrics from a server",
                )
            if self.incremental is not None:
                raise UsageError("an incremental read needs a metrics server", "give one")
        elif self.start is None or self.end is None:
            raise UsageError("a metrics server source needs start and end", "give both")

    @property
    def folder(self) -> Path | None:
        return self.metrics if isinstance(self.metrics, Path) else None

    @property
    def server(self) -> MetricsServer | None:
        return self.metrics if isinstance(self.metrics, MetricsServer) else None

    def since(self, moment: datetime, late: timedelta = DEFAULT_LATE) -> DataSource:
        """The incremental form: what is new since `moment`, `late` re-read before it."""
        return replace(self, incremental=Incremental(moment, late))

    @classmethod
    def of(
        cls,
        *,
        data: str | Path | Dataset | DataSource | None = None,
        prometheus: str | None = None,
        start: str | datetime | None = None,
        end: str | datetime | None = None,
        rum: str | Path | None = None,
        raw: bool = False,
        engine: Engine = "polars",
        lenient: bool = False,
        variant_label: str | None = None,
        canary_selector: str | None = None,
        control_selector: str | None = None,
        telemetry: str | Path | Telemetry | None = None,
    ) -> DataSource:
        """A source from what a person gives (options, notebook parameters, keywords; a
        `Dataset` for its folder, a `DataSource` as it is), every check in one place:
        exactly one of `data` / `prometheus`, a window in order (both ends for a server),
        no credentials in the URL, selectors in pairs, one variant mapping. Precedence
        (docs/telemetry.md): variant options given (a label other than `variant`, or the
        two selectors) replace the telemetry file's `variants` for this run."""
        if isinstance(data, DataSource):  # already a source
            return data
        if isinstance(data, Dataset):
            data = data.folder
        if (data is None) == (prometheus is None):
            raise UsageError(
                "give exactly one data source", "a dataset folder (data) or a metrics server URL"
            )
        checked_url(prometheus, "prometheus")
        start_at, end_at = checked_window(
            start, end, required=prometheus is not None, needs="a Prometheus source"
        )
        mapping = load_telemetry(telemetry).with_variants(
            variant_label, canary_selector, control_selector
        )
        variants = mapping.variant_mapping
        metrics: Path | MetricsServer = (
            Path(data) if data is not None else MetricsServer(str(prometheus), raw=raw)
        )
        rum_path = Path(rum) if rum else None
        return cls(metrics, rum_path, engine, start_at, end_at, variants, mapping, lenient)

    def origin(self) -> dict[str, object]:
        """What a verdict names as its source (verdict.json's `inputs`)."""
        if self.folder is not None:
            return {"data": str(self.folder)}
        assert self.server is not None
        return {"prometheus": self.server.url, "selectors": self.variants.selectors or None}
