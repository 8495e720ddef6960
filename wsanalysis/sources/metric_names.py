"""The telemetry contract's metric names (docs/architecture.md, "Telemetry the reference
server exposes"), spelled once: the reference server exposes them, the sources read them,
the observability exports and the gates query them.

Counters are named as scraped (`_total`); a histogram is named by its family, its series
are `<family>_bucket`, `_count` and `_sum`.
"""

from __future__ import annotations

#: Open connections (gauge).
CONNECTIONS_ACTIVE = "ws_connections_active"
#: Connections accepted (counter).
CONNECTIONS_TOTAL = "ws_connections_total"
#: Closes by `code` and `reason` (counter).
CLOSES_TOTAL = "ws_closes_total"
#: Connection duration at disconnect (histogram family; buckets reach past 8 h).
CONNECTION_DURATION = "ws_connection_duration_seconds"
#: Frames sent by `event` (counter).
FRAMES_SENT_TOTAL = "ws_frames_sent_total"
#: Reconnect advice frames sent by `why` (counter).
RECONNECT_ADVICE_TOTAL = "ws_reconnect_advice_total"
#: User message received → first `assistant_message` frame (histogram family).
ASSISTANT_TTFB = "ws_assistant_ttfb_seconds"

#: Every counter of the contract, as scraped.
COUNTERS = (CONNECTIONS_TOTAL, CLOSES_TOTAL, FRAMES_SENT_TOTAL, RECONNECT_ADVICE_TOTAL)
#: Every histogram family of the contract.
HISTOGRAMS = (CONNECTION_DURATION, ASSISTANT_TTFB)
#: Every family of the contract (counters by their scraped name).
FAMILIES = (CONNECTIONS_ACTIVE, *COUNTERS, *HISTOGRAMS)
#: The label a counter of the contract carries besides `variant` (none for the others).
COUNTER_LABELS = {
    CONNECTIONS_TOTAL: (),
    CLOSES_TOTAL: ("code", "reason"),
    FRAMES_SENT_TOTAL: ("event",),
    RECONNECT_ADVICE_TOTAL: ("why",),
}
