"""Numbers a column cannot hold are bad lines with a reason, in every path, never a crash."""

from __future__ import annotations

from pathlib import Path

from wsanalysis.sources.rum import read_rum

GOOD = '{"v":1,"ts":1764028800000,"type":"ws.open","session_id":"s0","variant":"canary"}'


def test_out_of_range_numbers_are_bad_lines(tmp_path: Path) -> None:
    lines = [
        GOOD,
        GOOD.replace("1764028800000", "1e400"),  # inf after json
        GOOD.replace("1764028800000", "NaN"),  # json reads NaN
        GOOD.replace("1764028800000", "99999999999999999999999"),  # beyond Int64
        GOOD.replace("1764028800000", "253402300800000"),  # past year 9999
        GOOD.replace('"variant"', '"code":99999999999999999999999,"variant"'),
        GOOD.replace('"variant"', '"code":1.5,"variant"'),  # not an integer: wrong type
        GOOD.replace('"variant"', '"online":7,"variant"'),  # not a boolean: wrong type
        GOOD.replace('"variant"', '"deep":' + "[" * 5000 + "]" * 5000 + ',"variant"'),
    ]
    path = tmp_path / "rum.ndjson"
    path.write_text("\n".join(lines * 300) + "\n")  # enough lines for the bulk paths
    load = read_rum(path)
    assert load.frame.height == 300
    assert load.bad_lines == 8 * 300
    assert load.bad_reasons == {
        "out of range": 5 * 300,
        "wrong type": 2 * 300,
        "not JSON we read": 300,
    }
