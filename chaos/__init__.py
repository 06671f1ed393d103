"""A Jepsen-style harness: real dtm processes on network-namespace hosts, seeded nemeses, a
recorded history of concurrent client sessions and a checker of what the cluster promised.

Modules: `net` (hosts and network faults), `cluster` (the processes and their one TOML),
`nemesis` (the seeded plan and its executor), `workload` (the clients), `history` (records),
`checker` (the pure judgement), `report` (per-nemesis figures and docs/reliability.md), `run`
(one run end to end). Run it with `make chaos` or `python -m chaos --help`.
"""
