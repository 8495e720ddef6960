"""Calibration of the judge on a service's own history: A/A replays.

`load_history` reads the history through the judge's loader, `calibrate` replays the
judge on A/A splits of it (`splits`: control's pods into two groups, RUM sessions by
a seeded hash) over every window it holds, and returns the document
`calibration.json` holds; `reading` turns that document into sentences and a table.
"""

from wsanalysis.calibration.reading import gate_rows, sentences, table_text
from wsanalysis.calibration.replay import DEFAULT_SEEDS, calibrate, load_history

__all__ = ["DEFAULT_SEEDS", "calibrate", "gate_rows", "load_history", "sentences", "table_text"]
