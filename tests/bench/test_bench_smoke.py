"""``python -m bench.run --smoke``: the whole benchmark at tiny sizes, so ``make bench`` never rots.

It proves the suite runs every stage end to end and writes a results file in which every figure
is a positive number beside its baseline with the right ratio, and every target says what was
measured and whether it was met. It does not assert any speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every bench stage: Spark and dbt in subprocesses

ROOT = Path(__file__).resolve().parents[2]

# stage -> {figure: its baselines in smoke mode}
FIGURES = {
    "csv_landing": {
        "csv_local_mb_s": ["bare hashlib.sha256 pass", "shutil.copyfile"],
        "csv_s3_mb_s": ["boto3 upload_file"],
    },
    "tmdb": {
        "tmdb_requests_per_s": ["one request at a time (original)"],
        "tmdb_limit_fraction": ["one request at a time (original)"],
        "tmdb_default_requests_per_s": ["one request at a time (original)"],
    },
    "trusted_job": {
        fig: [
            "bare Spark CSV → parquet copy",
            "bare copy + dropDuplicates()",
            "original transform (same Spark)",
            "DuckDB, same transform",
        ]
        for fig in ("trusted_seconds", "trusted_peak_mib")
    },
    # the sample-data baseline needs the lake make demo leaves, and smoke mode skips the demo
    "dbt_build": {"dbt_seconds": ["budget"], "dbt_peak_mib": []},
}
TARGETS = ["csv_local_vs_sha256", "csv_s3_vs_upload_file", "tmdb_limit_fraction",
           "tmdb_records_lost", "trusted_vs_copy", "dbt_full_seconds"]  # fmt: skip


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench-smoke")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    tail = f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    assert proc.returncode == 0, f"bench smoke run failed:\n{tail}"
    results = out / "results"
    return json.loads((results / "latest.json").read_text()), (results / "latest.md").read_text()


def test_smoke_run_measures_every_stage(smoke_results: tuple[dict, str]) -> None:
    data, _ = smoke_results
    status = {s["id"]: (s["status"], s["note"]) for s in data["stages"]}
    assert set(status) == {*FIGURES, "demo", "history"}
    for stage_id in FIGURES:
        state, note = status[stage_id]
        assert state == "measured", f"{stage_id}: {state}: {note}"
    for skipped in ("demo", "history"):
        assert status[skipped][0] == "skipped" and "smoke mode" in status[skipped][1]


def test_every_figure_is_positive_beside_its_baseline_with_its_ratio(
    smoke_results: tuple[dict, str],
) -> None:
    data, _ = smoke_results
    for stage in data["stages"]:
        if stage["id"] not in FIGURES:
            continue
        figures = {f["id"]: f for f in stage["figures"]}
        assert set(figures) == set(FIGURES[stage["id"]]), stage["id"]
        for fig in figures.values():
            assert fig["value"] > 0, fig
            labels = [b["label"] for b in fig["baselines"]]
            assert labels == FIGURES[stage["id"]][fig["id"]], fig["id"]
            for base in fig["baselines"]:
                assert base["value"] > 0, (fig["id"], base)
                assert base["ratio"] == pytest.approx(fig["value"] / base["value"]), fig["id"]


def test_targets_say_goal_measured_and_met(smoke_results: tuple[dict, str]) -> None:
    data, markdown = smoke_results
    targets = {t["id"]: t for t in data["targets"]}
    assert set(TARGETS) <= set(targets)
    for target in targets.values():
        assert isinstance(target["met"], bool)
        assert target["measured"] >= 0
        assert (target["missed_by"] == "") == target["met"], target
        assert target["label"] in markdown
    lost = targets["tmdb_records_lost"]
    assert lost["met"] == (lost["measured"] == 0)


def test_results_name_the_machine_and_tool_versions(smoke_results: tuple[dict, str]) -> None:
    data, markdown = smoke_results
    assert data["machine"]["cores"] >= 1 and data["machine"]["memory_gib"] > 0
    for tool in ("python", "java", "pyspark", "duckdb", "dbt-core"):
        assert data["versions"][tool] not in ("", "not installed", "not found"), tool
        assert f"{tool} {data['versions'][tool]}" in markdown
    assert data["mode"] == "smoke"
