"""The benchmark harness: suites found by name, results merged by section, summaries a reader can trust."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import available_suites
from bench.report import flatten, merge_results, summarize


def test_summary_of_samples() -> None:
    summary = summarize([10.0, 30.0, 20.0, 40.0, 1000.0])
    assert summary["median"] == 30.0
    assert summary["min"] == 10.0
    assert summary["max"] == 1000.0
    assert summary["n"] == 5
    assert 40.0 < summary["p95"] <= 1000.0
    assert summarize([5.0]) == {"median": 5.0, "p95": 5.0, "min": 5.0, "max": 5.0, "n": 1}
    with pytest.raises(ValueError, match="no samples"):
        summarize([])


def test_merging_replaces_only_the_suites_that_ran(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    merge_results({"bus": {"events_per_s": 1}, "llm": {"load_s": 9.9}}, path)
    merge_results({"llm": {"load_s": 0.2}}, path)

    document = json.loads(path.read_text())
    assert document["bus"]["results"] == {"events_per_s": 1}
    assert document["llm"]["results"] == {"load_s": 0.2}
    for section in document.values():
        assert section["measured_at"]
        assert section["machine"]["cpu_count"] >= 1


def test_a_corrupt_results_file_is_named_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"results.json: not valid JSON"):
        merge_results({"llm": {}}, path)
    assert path.read_text() == "{not json"


def test_nested_results_flatten_to_dotted_rows() -> None:
    rows = dict(flatten({"first_token_ms": {"cold": {"median": 900.0}}, "model": "x.gguf"}))
    assert rows == {"first_token_ms.cold.median": 900.0, "model": "x.gguf"}


def test_suites_are_the_modules_of_the_package(repo_root: Path) -> None:
    suites = available_suites()
    assert "llm" in suites
    assert "report" not in suites
    unknown = subprocess.run(
        [sys.executable, "-m", "bench", "no_such_suite"], cwd=repo_root, capture_output=True, text=True, check=False
    )
    assert unknown.returncode == 2
    assert "unknown suite(s): no_such_suite" in unknown.stdout
