"""`wsanalysis judge-server`: the judge over HTTP for rollout controllers.

`requests` reads a look (Argo's web provider body, Flagger's webhook payload),
`state` keeps each canary's fetched samples and final decision in SQLite, `canary_looks`
fetches only what is new and re-judges in sequential mode, `app` is the Starlette
application (routes, bearer token, /healthz, /metrics).
"""
