"""Incident analysis: detectors that find, bound and attribute what went wrong.

`analyze.analyze(data)` runs every detector that can run on an `IncidentData`; each
returns `Finding`s (see findings.py) or says why it could not run.
"""
