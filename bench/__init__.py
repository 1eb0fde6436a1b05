"""Benchmarks: `python -m bench [SUITE ...]` (or `make bench`) runs suites, prints a table for each, and merges the
results into `bench/results.json`.

The suite contract (how to add one):

- A suite is a module `bench/<name>.py` that defines `async def run() -> dict[str, Any]`. Every module in this
  package except `report` and `__main__` is a suite, found by name; `python -m bench` without names runs them all,
  in alphabetical order, one after the other in one process (so a suite may reuse a model another one loaded).
- `run()` measures what a user would notice, bounded in count and time (finish well under two minutes, send traffic
  only to 127.0.0.1) and stops by itself. It returns JSON-ready data: numbers, strings, booleans, lists and nested
  dicts. Put the unit in the key (`first_token_ms`, `load_s`, `tokens_per_s`); `bench.report.summarize(samples)`
  gives the usual `{"median", "p95", "min", "max", "n"}` of a list of samples.
- Needing a service (Redis, PostgreSQL) is fine; if it is absent, raise with a message saying so. A suite that raises
  is reported as failed, its previous results stay in the file, and `python -m bench` exits with status 1.

`bench/results.json` holds one section per suite, `{"measured_at": ..., "machine": {...}, "results": {...}}`, each
replaced only when that suite runs again, so suites measured at different times on different machines stay apart.
"""
