"""A look's fields: the stage's traffic share in either unit, and what a later look may change."""

from __future__ import annotations

import pytest

from wsanalysis.errors import UsageError
from wsanalysis.service.requests import SETTINGS, STAGE, parse_flagger, parse_look

LOOK = {"id": "shop/checkout-1", "start": "2026-11-02T06:00:00Z", "end": "2026-11-02T07:00:00Z"}


@pytest.mark.parametrize(
    ("fields", "share"),
    [
        ({"canary_weight": "25"}, 0.25),  # Argo's setWeight, rendered as text
        ({"canary_weight": 10}, 0.10),
        ({"canary_weight": "2.5"}, 0.025),
        ({"canary_share": "0.25"}, 0.25),
        ({}, None),
    ],
)
def test_the_share_comes_in_either_unit(fields, share):
    look = parse_look({**LOOK, **fields})
    assert look.canary_share == share and look.stage() == {"canary_share": share}


def test_one_unit_at_a_time_and_never_all_or_nothing():
    with pytest.raises(UsageError, match="both canary_share and canary_weight"):
        parse_look({**LOOK, "canary_share": "0.1", "canary_weight": "10"})
    for weight in ("0", "100", "-5", "abc", "1e400"):
        with pytest.raises(UsageError, match="canary_weight"):
            parse_look({**LOOK, "canary_weight": weight})


def test_the_share_is_the_looks_stage_not_a_setting():
    assert STAGE == ("canary_share",) and "canary_share" not in SETTINGS
    look = parse_look({**LOOK, "canary_weight": "10", "profile": "canary"})
    assert look.settings() == {k: getattr(look, k) for k in SETTINGS}
    ramped = parse_look({**LOOK, "canary_weight": "25", "profile": "canary"})
    assert ramped.settings() == look.settings() and ramped.stage() != look.stage()
    # a changed gate file, profile or selector is a changed setting
    other = parse_look({**LOOK, "profile": "staging"})
    assert other.settings()["profile"] != look.settings()["profile"]
    selected = {"canary_selector": 'app="a"', "control_selector": 'app="b"'}
    assert parse_look({**LOOK, **selected}).settings() != look.settings()


def test_an_end_not_sent_is_the_servers_now():
    now = parse_look({"id": "c"}, now=parse_look(LOOK).end)
    assert now.end_is_now and now.end == parse_look(LOOK).end
    assert not parse_look(LOOK).end_is_now


def test_flagger_weights_ride_in_metadata_as_strings():
    payload = {"name": "checkout", "namespace": "shop", "checksum": "x",
               "metadata": {"canary_weight": "50", "channel": "#releases"}}  # fmt: skip
    look = parse_flagger("rollout", payload)
    assert look.canary_share == 0.5 and look.ignored == ("channel",)
