"""PromQL expressions checked by promtool before anything is asked of a server.

A gate's `promql:` is read when the gate file is: one `promtool check rules` over all of
them (tens of milliseconds), each expression a recording rule. Without promtool the
expressions are still tokenised (a stray quote or bracket is caught) and a server
rejects the rest when they are run, naming the gate.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from wsanalysis.errors import UsageError

_RULE = re.compile(r'rule (\d+), "[^"]*": (.*)')


def check_expressions(expressions: dict[str, str], where: str) -> None:
    """Each expression (who -> PromQL) parses; a UsageError names the first that does not."""
    if expressions:
        _check(tuple(expressions.items()), where)


@functools.lru_cache(maxsize=64)
def _check(expressions: tuple[tuple[str, str], ...], where: str) -> None:
    binary = shutil.which("promtool")
    if binary is None:
        _brackets(expressions, where)
        return
    rules = [
        {"record": f"wsanalysis:check_{i}:promql", "expr": text}
        for i, (_, text) in enumerate(expressions)
    ]
    document = {"groups": [{"name": "wsanalysis-gates", "rules": rules}]}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gates.rules.yml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True))
        run = subprocess.run(
            [binary, "check", "rules", str(path)], capture_output=True, text=True, check=False
        )
    if run.returncode == 0:
        return
    output = (run.stdout + run.stderr).replace(str(path), "")
    found = _RULE.search(output)
    who, text = expressions[int(found.group(1)) - 1] if found else ("a gate", "")
    detail = found.group(2) if found else output.strip().splitlines()[-1]
    raise UsageError(
        f"{where}: {who}'s promql does not parse: {detail}" + (f" ({text!r})" if text else ""),
        "fix the expression (try it in the Prometheus web UI's Graph tab)",
    )


def _brackets(expressions: tuple[tuple[str, str], ...], where: str) -> None:
    """Without promtool: the expression tokenises and its brackets balance."""
    from wsanalysis.sources.promql_text import _tokens

    pairs = {")": "(", "]": "[", "}": "{"}
    for who, text in expressions:
        stack: list[str] = []
        try:
            tokens = _tokens(text)
        except UsageError as error:
            raise UsageError(f"{where}: {who}'s promql: {error.problem}", error.fix) from None
        for kind, token in tokens:
            if kind != "op":
                continue
            if token in "([{":
                stack.append(token)
            elif token in pairs and (not stack or stack.pop() != pairs[token]):
                stack.append("unbalanced")
                break
        if stack:
            raise UsageError(
                f"{where}: {who}'s promql has unbalanced brackets ({text!r})",
                "fix the expression (try it in the Prometheus web UI's Graph tab)",
            )
