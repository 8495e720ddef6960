"""`wsanalysis judge-server`: the judge over HTTP for rollout controllers.

`requests` reads a look (Argo's web provider body, Flagger's webhook payload),
`canary_looks` reads what is new (and the late margin) through the one loader and
re-judges in sequential mode, `bucket_stats` keeps what was read as per-bucket sufficient
statistics, `state` keeps them, every look and the final decision in SQLite, `app` is the
Starlette application (routes, bearer token, /healthz, /metrics).
"""
