"""JWT (HS256) tokens for the reference stack: issue, validate, reject what must be rejected.

Time is always passed in (`now`, epoch seconds) so the server can skew its clock on
purpose (a fault the fleet injects) and tests never depend on the wall clock. Only
HS256 is accepted: `alg=none` and any other algorithm fail before the signature is
even considered, which is the classic JWT downgrade attack closed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"


class TokenError(ValueError):
    """A token the server refuses; `reason` is one of missing, malformed, bad_alg,
    bad_signature, expired, not_yet_valid, no_subject."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class Claims:
    """What a valid token says: who (`user`), until when (`expires_at`, epoch seconds)."""

    user: str
    issued_at: float
    expires_at: float


def issue_token(secret: str, user: str, now: float, ttl: float = 900.0) -> str:
    """A signed HS256 token for `user`, valid from `now` for `ttl` seconds."""
    payload = {"sub": user, "iat": int(now), "exp": int(now + ttl)}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def validate_token(
    token: str | None, secret: str, now: float, *, leeway: float = 0.0, skew: float = 0.0
) -> Claims:
    """Check algorithm, signature and expiry against `now + skew` (± `leeway`).

    `skew` shifts the validator's clock (positive = the server runs ahead, so tokens
    expire early); `leeway` tolerates honest clock differences both ways. Verified
    with `hmac` directly (every handshake pays for this; against PyJWT in
    benchmarks/RESULTS-internals.md); tokens issued by `pyjwt` are the interoperability
    test.
    """
    if not token:
        raise TokenError("missing", "no token on the request")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed", "a JWT has three dot-separated parts")
    header_b64, payload_b64, signature_b64 = parts
    header = _json_part(header_b64, "header")
    if header.get("alg") != ALGORITHM:
        raise TokenError("bad_alg", f"alg {header.get('alg')!r} is not {ALGORITHM}")
    expected = hmac.new(
        secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256
    ).digest()
    try:
        signature = _b64decode(signature_b64)
    except ValueError:
        raise TokenError("malformed", "signature is not base64url") from None
    if not hmac.compare_digest(signature, expected):
        raise TokenError("bad_signature", "signature does not match")
    payload = _json_part(payload_b64, "payload")
    clock = now + skew
    exp = payload.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenError("malformed", "exp claim missing or not a number")
    if clock >= exp + leeway:
        raise TokenError("expired", f"expired {clock - exp:.0f} s ago")
    nbf = payload.get("nbf")
    if isinstance(nbf, int | float) and clock < nbf - leeway:
        raise TokenError("not_yet_valid", "nbf is in the future")
    user = payload.get("sub")
    if not isinstance(user, str) or not user:
        raise TokenError("no_subject", "sub claim missing")
    iat = payload.get("iat", 0)
    return Claims(
        user=user,
        issued_at=float(iat) if isinstance(iat, int | float) else 0.0,
        expires_at=float(exp),
    )


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError(str(error)) from None


def _json_part(text: str, name: str) -> dict:
    try:
        value = json.loads(_b64decode(text))
    except ValueError:
        raise TokenError("malformed", f"{name} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise TokenError("malformed", f"{name} is not a JSON object")
    return value
