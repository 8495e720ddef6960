"""`judge-server --reports DIR`: each canary's final answer, where the release history reads it.

When a look reaches GO or NO_GO, the service writes one folder per canary under DIR:
`verdict.json` (the judge's whole verdict, as `wsanalysis judge` writes it, with the
run's `about` block: service, release, environment from the look, the window, the gate
file's sha256, the time it was decided) and `answer.json` (what the controller was told).
So releases judged by a controller sit beside the ones judged in notebooks, and
`wsanalysis report index DIR` lists them all. Both files are written atomically, before
the decision is stored: a write that fails fails the look (the controller asks again,
and the next look writes them), never a decision recorded without its report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from wsanalysis.canary.gates import DEFAULT_GATE_FILE
from wsanalysis.errors import DataError, UsageError
from wsanalysis.files import write_text_atomic
from wsanalysis.run_metadata import stamp, subject
from wsanalysis.service.requests import Look

log = logging.getLogger("wsanalysis.judge_server")
VERDICT_FILE = "verdict.json"
ANSWER_FILE = "answer.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def check_reports_folder(folder: Path) -> None:
    """`--reports DIR` at start-up: created when missing, and writable."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"--reports {folder} cannot be created ({error.strerror or error})",
            "give a folder the server may write to",
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(
            f"--reports {folder} is not writable", "give a folder the server may write to"
        )


def canary_folder(reports: Path, canary_id: str) -> Path:
    """One folder per canary id: its readable part (an id is free text, e.g.
    `shop/checkout@85d557f47b`) and a hash of the whole id, so two ids never share one."""
    readable = _UNSAFE.sub("_", canary_id).strip("._-")[:80] or "canary"
    digest = hashlib.sha256(canary_id.encode()).hexdigest()[:10]
    return reports / f"{readable}-{digest}"


def write_final_answer(
    reports: Path, look: Look, answer: dict[str, Any], verdict: dict[str, Any]
) -> Path:
    """Write the canary's final answer under `reports`; returns its folder. `verdict` is the
    judge's verdict document (`Verdict.to_json()`); `answer` what the look answers."""
    folder = canary_folder(reports, look.id)
    document = {**verdict, "verdict": answer["verdict"], "reason": answer["reason"]}
    document["canary"] = {
        "id": look.id,
        "looks": answer.get("looks"),
        "report": answer.get("report"),
    }
    stamp(document, "canary", producer="judge-server", names=subject(look),
          gate_file=look.gates or DEFAULT_GATE_FILE, window=answer.get("window"))  # fmt: skip
    try:
        for name, content in ((ANSWER_FILE, answer), (VERDICT_FILE, document)):
            text = json.dumps(content, indent=2, default=str) + "\n"
            write_text_atomic(folder / name, text, what="final answer")
    except DataError as error:  # the path stays in the server's log, out of the answer
        log.error("--reports: %s", error.problem)
        raise DataError(
            "cannot write this canary's final answer under the server's --reports folder",
            "see the server's log; free space or fix the folder's permissions (the next "
            "look writes it again)",
        ) from None
    return folder
