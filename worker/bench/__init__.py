"""`scripts/bench`: throughput, call economy and memory of promobulk against the rate limit and
naive peers, on real processes and the bundled simulator (issue 7).

One module per concern: `config` (sizes), `scenarios` (simulator scenario, job rows, the minimum
number of calls, the desired end state), `stack` (servers and processes), `measure` (the
sections), `peers` (the docs-sample and official-SDK loops), `profiling` (py-spy), `report`
(Markdown, JSON, targets), `run` (the whole benchmark).
"""
