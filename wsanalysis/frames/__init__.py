"""The layer between sources and the analyses (canary, incident).

Windows and time buckets, per-variant selection, and counter increases over the tidy
frames the sources return. `canary` and `incident` both build on it and never on
each other; it imports only `sources` and `stats`.
"""
