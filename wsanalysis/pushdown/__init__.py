"""Push-down: each gate's sufficient statistics computed by the engine holding the data.

`promql` asks a Prometheus-compatible server for counter sums per variant (and `code` /
`le` where the request says) at each bucket point, and differences them here, instead of
reading every raw sample; `rum` computes the RUM gates' inputs in SQL on an engine
(`engines`: DuckDB, Spark). What to sum arrives as a frames-level request
(`promql.PushdownRequest`); nothing here knows what a gate is.
"""
