"""`make lab`: JupyterLab on the project's environment, rooted at the repository.

Prints the URL with its token before the server starts, binds to 127.0.0.1 only, and
turns JupyterLab's news prompt and update check off (both are settings of the venv's own
JupyterLab, written to its `overrides.json`; nothing outside the venv changes).

    .venv/bin/python scripts/lab.py [--port 8888] [--browser] [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUIET = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}
}


def quiet_settings(prefix: Path = Path(sys.prefix)) -> Path:
    """The venv's JupyterLab `overrides.json` with news and update checks off (merged)."""
    path = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.exists() else {}
    for plugin, values in QUIET.items():
        current[plugin] = {**current.get(plugin, {}), **values}
    path.write_text(json.dumps(current, indent=2) + "\n")
    return path


def free_port(preferred: int) -> int:
    """`preferred` when it is free on 127.0.0.1, else one the system picks."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


def command(port: int, token: str, browser: bool = False, root: Path = REPO) -> list[str]:
    """The JupyterLab command line."""
    return [
        sys.executable, "-m", "jupyterlab",
        f"--ServerApp.root_dir={root}", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        *([] if browser else ["--no-browser"]),
        *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),  # containers
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("LAB_PORT", 8888)))
    parser.add_argument("--browser", action="store_true", help="also open a browser")
    parser.add_argument("--root", type=Path, default=REPO, help="folder JupyterLab serves")
    args = parser.parse_args()
    quiet_settings()
    port = free_port(args.port)
    token = os.environ.get("JUPYTER_TOKEN") or secrets.token_hex(24)
    url = f"http://127.0.0.1:{port}/lab?token={token}"
    print(f"JupyterLab (project venv, rooted at {args.root}):\n    {url}\n", flush=True)
    cmd = command(port, token, args.browser, args.root.resolve())
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
