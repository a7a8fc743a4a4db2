"""The artifacts of ``make package``: the Lambda zip runs on its own (its dependencies inside),
the Glue and dbt bundles hold what their services load, and builds are reproducible."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from deploy.package import LAMBDA_REQUIREMENTS, build_all

pytestmark = pytest.mark.slow  # builds the artifacts (pip), runs the zip against a moto server

RUN_DATE = "2024-03-01"

# Runs in a Python started with -I -S: no site-packages, no PYTHON* variables, no user site.
# Its only import path beyond the standard library is the unpacked zip.
HANDLER_RUN = textwrap.dedent(
    """
    import importlib.util, json, sys
    sys.path.insert(0, sys.argv[1])
    leaks = [m for m in ("moto", "pyspark", "pytest", "fake_tmdb") if importlib.util.find_spec(m)]
    import ingestion.lambda_handler as handler_module
    import boto3, botocore, requests, tmdbv3api, tqdm

    class Context:
        def get_remaining_time_in_millis(self):
            return 600_000

    result = handler_module.lambda_handler(json.loads(sys.argv[2]), Context())
    loaded = (handler_module, boto3, botocore, requests, tmdbv3api, tqdm)
    modules = {m.__name__: m.__file__ for m in loaded}
    print(json.dumps({"result": result, "modules": modules, "leaks": leaks}))
    """
)

REPO = Path(__file__).resolve().parents[2]


def unpack(zip_path: Path, target: Path) -> Path:
    target.mkdir()
    assert not any(target.iterdir())
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(target)
    return target


def test_lambda_zip_runs_its_handler_alone_against_moto_and_fake_tmdb(
    packaged: dict[str, Any], moto_server_url: str, tmp_path: Path, main_template: dict[str, Any]
) -> None:
    from fake_tmdb import FakeTMDb, build_catalogue

    folder = unpack(Path(packaged["artifacts"]["lambda"].path), tmp_path / "task")
    bucket, secret_name, api_key = "lake-lambda-zip", "movie-lake/test/tmdb-api-key", "zip-key"
    aws = {"endpoint_url": moto_server_url, "region_name": "us-east-1"}
    s3 = boto3.client("s3", **aws)
    s3.create_bucket(Bucket=bucket)
    boto3.client("secretsmanager", **aws).create_secret(
        Name=secret_name, SecretString=json.dumps({"api_key": api_key})
    )
    env = {
        # What the template sets, plus the endpoints that make boto3 talk to moto.
        "LAKE_URI": f"s3://{bucket}",
        "TMDB_API_KEY_SECRET": secret_name,
        "TMDB_LANGUAGE": "pt-BR",
        "TMDB_GENRE_ID": "27",
        "TMDB_RATE_LIMIT": "200",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": moto_server_url,
        "S3_ENDPOINT_URL": moto_server_url,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "HOME": str(tmp_path),
    }
    event = {"run_date": RUN_DATE, "max_pages": 2}
    with FakeTMDb(build_catalogue(movies=30, seed=7), api_key=api_key) as server:
        env["TMDB_BASE_URL"] = server.base_url
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", HANDLER_RUN, str(folder), json.dumps(event)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        served = [entry.status for entry in server.log]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert api_key not in proc.stderr + proc.stdout
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    assert out["leaks"] == [], "the isolated interpreter sees packages outside the zip"
    for name, path in out["modules"].items():
        assert Path(path).resolve().is_relative_to(folder.resolve()), (name, path)
    assert served and set(served) == {200}

    result = out["result"]
    assert result["run_date"] == RUN_DATE
    # The state machine keeps these fields of the answer: they must all be there.
    task = main_template["Resources"]["PipelineStateMachine"]["Properties"]["Definition"]
    selector = task["States"]["ExtractTmdb"]["ResultSelector"]
    for path in selector.values():
        assert path.removeprefix("$.Payload.") in result, path
    assert result["movies"] > 0 and result["requests"] == len(served)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys and all(k.startswith("raw/tmdb/json/") for k in keys)
    for dataset in ("discover", "genres", "movie_details"):
        partition = f"raw/tmdb/json/{dataset}/year=2024/month=03/day=01/"
        assert f"{partition}_SUCCESS" in keys, dataset
        assert f"{partition}_manifest.json" in keys, dataset


def test_lambda_zip_holds_ingestion_and_the_locked_wheels(packaged: dict[str, Any]) -> None:
    lock = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1].strip()
        for line in (REPO / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    with zipfile.ZipFile(packaged["artifacts"]["lambda"].path) as zf:
        names = zf.namelist()
    assert "ingestion/lambda_handler.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(n.startswith(("spark/", "fake_tmdb/", "tests/", "moto/")) for n in names)
    dists = {
        n.split("/")[0].removesuffix(".dist-info")
        for n in names
        if n.split("/")[0].endswith(".dist-info")
    }
    installed = dict(d.lower().replace("_", "-").rsplit("-", 1) for d in dists)
    for requirement in LAMBDA_REQUIREMENTS:
        assert requirement in installed, requirement
    for name, version in installed.items():
        assert version == lock[name], (name, version, lock.get(name))


def test_glue_and_dbt_bundles_hold_what_their_services_load(packaged: dict[str, Any]) -> None:
    artifacts = packaged["artifacts"]
    script = Path(artifacts["glue_script"].path)
    assert script.read_bytes() == (REPO / "spark" / "glue_entry.py").read_bytes()
    with zipfile.ZipFile(artifacts["glue_code"].path) as zf:
        spark_names = set(zf.namelist())
    assert {"spark/__init__.py", "spark/trusted_job.py", "spark/glue_entry.py"} <= spark_names
    with zipfile.ZipFile(artifacts["dbt"].path) as zf:
        dbt_names = set(zf.namelist())
        buildspec = zf.read("buildspec.yml").decode()
    assert {"dbt_project.yml", "profiles.example.yml", "requirements.lock"} <= dbt_names
    assert "dbt_project/macros/register_trusted_tables.sql" in dbt_names
    assert not any(n.startswith(("target/", "logs/")) for n in dbt_names)
    phases = yaml.safe_load(buildspec)["phases"]
    commands = [c for phase in phases.values() for c in phase["commands"]]
    assert all(isinstance(c, str) for c in commands), "a command parses as a YAML mapping"
    assert any("-c requirements.lock" in c and "dbt-athena-community" in c for c in commands)
    run_op = next(i for i, c in enumerate(commands) if "run-operation register_trusted_tables" in c)
    build = next(i for i, c in enumerate(commands) if "dbt build --target athena" in c)
    assert run_op < build


def test_packaging_is_reproducible_and_content_addressed(
    packaged: dict[str, Any], tmp_path: Path
) -> None:
    manifest = json.loads((packaged["out"] / "manifest.json").read_text())
    assert {k: v["key"] for k, v in manifest["artifacts"].items()} == {
        k: v.key for k, v in packaged["artifacts"].items()
    }
    builds = []
    for attempt in ("first", "second"):  # back to back, sharing the dependency cache
        out = tmp_path / attempt
        out.mkdir()
        (out / "cache").symlink_to(packaged["out"] / "cache", target_is_directory=True)
        builds.append(build_all(out=out, repo=REPO))
    first, second = builds
    for name, artifact in first.items():
        assert second[name].sha256 == artifact.sha256, name
        assert artifact.key == second[name].key
        assert artifact.sha256[:16] in artifact.key
    assert len({a.key for a in first.values()}) == len(first)


def test_packaging_without_the_handler_says_what_is_missing(tmp_path: Path) -> None:
    from deploy.package import PackageError

    fake_repo = tmp_path / "repo"
    (fake_repo / "ingestion").mkdir(parents=True)
    with pytest.raises(PackageError, match=r"lambda_handler\.py is missing"):
        build_all(out=tmp_path / "out", repo=fake_repo)
