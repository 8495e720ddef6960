"""Regenerate `controller_schemas.json` from the controllers' CRDs (run by hand).

    python tests/pipelines/make_schemas.py ARGO_ROLLOUTS_REPO FLAGGER_REPO

Only the parts of each CRD's openAPIV3Schema that the examples in docs/pipelines/ reach
are kept: at every object an example visits, every property name the CRD allows there
and the required ones. A field an example adds later that the file does not cover fails
the test until this script is run again against the CRDs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DOCS = HERE.parents[1] / "docs" / "pipelines"
SOURCES = {
    ("argoproj.io/v1alpha1", "AnalysisTemplate"): (
        "argo",
        "manifests/crds/analysis-template-crd.yaml",
    ),
    ("argoproj.io/v1alpha1", "Rollout"): ("argo", "manifests/crds/rollout-crd.yaml"),
    ("flagger.app/v1beta1", "Canary"): ("flagger", "artifacts/flagger/crd.yaml"),
}
REPOS = {"argo": "argoproj/argo-rollouts", "flagger": "fluxcd/flagger"}


def extract(schema: dict, example) -> dict:
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return {"open": True}
    if isinstance(example, dict) and "properties" in schema:
        props = schema["properties"]
        return {
            "names": sorted(props),
            "required": sorted(schema.get("required", [])),
            "properties": {k: extract(props[k], v) for k, v in example.items() if k in props},
        }
    if isinstance(example, dict) and schema.get("type") == "object":
        return {"open": True}  # a map (labels, Flagger's metadata)
    if isinstance(example, list) and "items" in schema:
        merged: dict = {}
        for item in example:
            merged = _merge(merged, extract(schema["items"], item))
        return {"items": merged}
    leaf = {"type": schema.get("type", "any")}
    if "enum" in schema:
        leaf["enum"] = schema["enum"]
    if "x-kubernetes-int-or-string" in schema:
        leaf["type"] = "int-or-string"
    return leaf


def _merge(a: dict, b: dict) -> dict:
    if not a:
        return b
    out = dict(a)
    if "properties" in b:
        props = dict(a.get("properties", {}))
        for k, v in b["properties"].items():
            props[k] = _merge(props.get(k, {}), v)
        out["properties"] = props
    if "items" in b:
        out["items"] = _merge(a.get("items", {}), b["items"])
    return out


def crd_schema(repo: Path, path: str, kind: str, version: str) -> tuple[dict, str]:
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    text = subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{path}"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    for doc in yaml.safe_load_all(text):
        if doc and doc["spec"]["names"]["kind"] == kind:
            for v in doc["spec"]["versions"]:
                if v["name"] == version:
                    return v["schema"]["openAPIV3Schema"], commit
    raise SystemExit(f"no {kind} {version} in {path}")


def main() -> None:
    repos = {"argo": Path(sys.argv[1]), "flagger": Path(sys.argv[2])}
    out: dict = {}
    for example in sorted(DOCS.glob("*.yaml")):
        for doc in yaml.safe_load_all(example.read_text()):
            key = (doc["apiVersion"], doc["kind"])
            which, path = SOURCES[key]
            schema, commit = crd_schema(repos[which], path, doc["kind"], key[0].split("/")[1])
            entry = out.setdefault(f"{key[0]} {key[1]}", {
                "source": f"https://github.com/{REPOS[which]}/blob/{commit}/{path}",
                "schema": {},
            })  # fmt: skip
            entry["schema"] = _merge(entry["schema"], extract(schema, doc))
    (HERE / "controller_schemas.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
