"""Credentials stay in the environment: a URL holding one is refused, a message never shows one.

Everything a command prints or writes (errors, `verdict.json`, `findings.json`, notebook
parameters, the HTML page) may end up in a CI log or a published report, so a password in
a URL is refused with the fix (the `WSANALYSIS_PROM_*` variables) before anything runs, and
`redact` blanks any credential value from the environment in a message as a last guard.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from wsanalysis.errors import UsageError

SECRET_ENV_PREFIXES = ("WSANALYSIS_PROM_", "WSANALYSIS_JUDGE_")
SECRET_WORDS = ("TOKEN", "PASSWORD", "SECRET", "KEY")  # not _URL or _USER: not secret
CREDENTIALS_FIX = (
    "remove them from the URL and export WSANALYSIS_PROM_BEARER_TOKEN, or "
    "WSANALYSIS_PROM_USER and WSANALYSIS_PROM_PASSWORD"
)


def secret_values() -> list[str]:
    """The credential values set in the environment (long enough to look for)."""
    return [
        value
        for key, value in os.environ.items()
        if key.startswith(SECRET_ENV_PREFIXES)
        and any(word in key for word in SECRET_WORDS)
        and len(value) >= 4
    ]


def url_has_credentials(url: str) -> bool:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return bool(parts.username or parts.password)


def checked_url(url: str | None, name: str = "--prometheus") -> str | None:
    """`url` unchanged when it holds no user or password; refused (with the fix) otherwise.

    The message names the option, not the URL: the URL is what must not be printed.
    """
    if url is None:
        return None
    if url_has_credentials(url):
        raise UsageError(f"{name}: the URL holds a user name or password", CREDENTIALS_FIX)
    if any(secret in url for secret in secret_values()):
        raise UsageError(
            f"{name}: the URL holds a credential from a WSANALYSIS_* variable",
            "credentials go only in the environment, never in the URL",
        )
    return url


def redact(text: str) -> str:
    """`text` with every credential value from the environment replaced by `***`."""
    for secret in secret_values():
        text = text.replace(secret, "***")
    return text
