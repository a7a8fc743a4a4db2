"""Build the AWS artifacts under ``build/aws/`` from this repository and ``requirements.lock``.

- ``tmdb-extract.zip``: the TMDB Lambda: the ``ingestion`` package and the pinned wheels of
  what it imports (boto3, tmdbv3api, requests, tqdm and their dependencies), for the Lambda
  runtime (CPython 3.11, manylinux2014, x86_64 or arm64). boto3 is pinned into the zip on
  purpose: the runtime's copy is older than the lock's and changes without notice.
- ``glue_entry.py`` and ``spark.zip``: the Glue job's script and its ``--extra-py-files``.
- ``dbt-project.zip``: the dbt project, ``profiles.example.yml``, ``requirements.lock`` and
  the CodeBuild ``buildspec.yml``, the source of the dbt CodeBuild project.
- ``manifest.json``: for each artifact its file, sha256 and the content-addressed key
  ``deploy/deploy.py`` uploads it to (a new key per content, so CloudFormation sees the change).

The wheels are installed once per (lock, platform) into ``build/aws/cache/`` and reused while
the lock is unchanged; every zip is byte-for-byte reproducible (sorted entries, fixed times).

    python -m deploy.package [--arch x86_64|arm64] [--native] [--out build/aws]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("deploy.package")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "build" / "aws"

# What the Lambda imports beyond the standard library (ingestion/tmdb*.py, lake.py); the lock
# pins each of them and their dependencies.
LAMBDA_REQUIREMENTS = ("boto3", "tmdbv3api", "requests", "tqdm")
LAMBDA_PYTHON = "3.11"  # the template's Runtime: python3.11
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
# Bump when the layout of the dependency bundle changes, to invalidate cached bundles.
DEPS_FORMAT = "1"

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# Caches and build output of a source tree. Wheels get only __pycache__ dropped: botocore
# ships data folders named "logs" and the like.
SKIP_DIRS = frozenset({"__pycache__", ".pytest_cache", "target", "logs", "dbt_packages"})
CACHE_DIRS = frozenset({"__pycache__"})
SKIP_SUFFIXES = {".pyc", ".pyo"}
DBT_ROOT_FILES = ("dbt_project.yml", "profiles.example.yml", "requirements.lock", "packages.yml")
BUILDSPEC = Path(__file__).resolve().parent / "dbt-buildspec.yml"


class PackageError(RuntimeError):
    """An artifact cannot be built; the message says which, why, and what to do."""


@dataclass(frozen=True)
class Artifact:
    name: str  # lambda, glue_script, glue_code, dbt
    path: str  # the built file
    sha256: str
    key: str  # where deploy/deploy.py uploads it in the artifact bucket


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_files(
    root: Path, arc_prefix: str, skip_dirs: frozenset[str] = SKIP_DIRS
) -> Iterator[tuple[str, Path]]:
    """``(archive name, file)`` for every file under ``root``, caches and build output left out."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in skip_dirs for part in rel.parts) or path.suffix in SKIP_SUFFIXES:
            continue
        if path.is_file():
            yield f"{arc_prefix}{rel.as_posix()}", path


def write_zip(target: Path, files: Iterable[tuple[str, Path]], mode: str = "w") -> None:
    """Add ``files`` to the zip ``target`` in name order, with fixed times and permissions."""
    with zipfile.ZipFile(target, mode, compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for arcname, path in sorted(files):
            info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16  # regular file, rw-r--r--
            info.create_system = 3  # unix, so the permissions above are honoured
            zf.writestr(info, path.read_bytes())


def lambda_deps_key(lock: Path, arch: str, native: bool) -> str:
    digest = hashlib.sha256()
    digest.update(lock.read_bytes())
    for part in (*LAMBDA_REQUIREMENTS, LAMBDA_PYTHON, arch, str(native), DEPS_FORMAT):
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()[:16]


def pip_command(target: Path, lock: Path, arch: str, native: bool) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "-c",
        str(lock),
    ]
    if not native:
        # Wheels for the Lambda runtime, whatever machine builds the zip.
        command += [
            "--platform",
            PLATFORMS[arch],
            "--implementation",
            "cp",
            "--python-version",
            LAMBDA_PYTHON,
            "--only-binary=:all:",
        ]
    return [*command, *LAMBDA_REQUIREMENTS]


def build_lambda_deps(cache_dir: Path, lock: Path, arch: str, native: bool) -> Path:
    """The zip of the Lambda's third-party packages, built once per lock and platform."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    bundle = cache_dir / f"lambda-deps-{arch}-{lambda_deps_key(lock, arch, native)}.zip"
    if bundle.exists():
        log.info("reusing the dependency bundle %s (the lock has not changed)", bundle.name)
        return bundle
    with tempfile.TemporaryDirectory(prefix="lambda-deps-", dir=cache_dir) as tmp:
        site = Path(tmp) / "site"
        command = pip_command(site, lock, arch, native)
        log.info("installing %s for %s", ", ".join(LAMBDA_REQUIREMENTS), PLATFORMS[arch])
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PackageError(
                f"pip could not install the Lambda dependencies for {PLATFORMS[arch]} "
                f"(exit {result.returncode}):\n{result.stderr.strip()}\n"
                "Check that the package index is reachable, or build for this machine with "
                "--native (Linux x86_64 with Python 3.11 only)."
            )
        shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts: unused on Lambda
        partial = Path(tmp) / "deps.zip"
        write_zip(partial, tree_files(site, "", CACHE_DIRS))
        partial.replace(bundle)
    for stale in cache_dir.glob(f"lambda-deps-{arch}-*.zip"):
        if stale != bundle:
            stale.unlink()
    return bundle


def build_lambda(out: Path, repo: Path, arch: str, native: bool) -> Path:
    """``tmdb-extract.zip``: the dependency bundle plus the ``ingestion`` package at the root."""
    source = repo / "ingestion"
    if not (source / "lambda_handler.py").is_file():
        raise PackageError(
            f"{source / 'lambda_handler.py'} is missing: the Lambda needs "
            "ingestion.lambda_handler.lambda_handler"
        )
    deps = build_lambda_deps(out / "cache", repo / "requirements.lock", arch, native)
    target = out / "tmdb-extract.zip"
    partial = out / "tmdb-extract.zip.partial"
    shutil.copyfile(deps, partial)
    write_zip(partial, tree_files(source, "ingestion/"), mode="a")
    partial.replace(target)
    return target


def build_glue(out: Path, repo: Path) -> tuple[Path, Path]:
    """The Glue script (``spark/glue_entry.py``) and ``spark.zip`` (the ``spark`` package)."""
    entry = repo / "spark" / "glue_entry.py"
    if not entry.is_file():
        raise PackageError(f"{entry} is missing: the Glue job's script is spark/glue_entry.py")
    script = out / "glue_entry.py"
    shutil.copyfile(entry, script)
    bundle = out / "spark.zip"
    partial = out / "spark.zip.partial"
    partial.unlink(missing_ok=True)
    write_zip(partial, tree_files(repo / "spark", "spark/"))
    partial.replace(bundle)
    return script, bundle


def build_dbt(out: Path, repo: Path) -> Path:
    """``dbt-project.zip``: what CodeBuild needs to run dbt against Athena, buildspec included."""
    if not (repo / "dbt_project.yml").is_file():
        raise PackageError(f"{repo / 'dbt_project.yml'} is missing: nothing to bundle for dbt")
    files = [(name, repo / name) for name in DBT_ROOT_FILES if (repo / name).is_file()]
    files += list(tree_files(repo / "dbt_project", "dbt_project/"))
    files.append(("buildspec.yml", BUILDSPEC))
    bundle = out / "dbt-project.zip"
    partial = out / "dbt-project.zip.partial"
    partial.unlink(missing_ok=True)
    write_zip(partial, files)
    partial.replace(bundle)
    return bundle


def _artifact(name: str, path: Path, key_template: str) -> Artifact:
    digest = sha256_file(path)
    return Artifact(name, str(path), digest, key_template.format(sha=digest[:16]))


def build_all(
    out: Path = DEFAULT_OUT, repo: Path = REPO, arch: str = "x86_64", native: bool = False
) -> dict[str, Artifact]:
    """Build every artifact into ``out`` and write ``out/manifest.json``; return the manifest."""
    if arch not in PLATFORMS:
        raise PackageError(f"unknown architecture {arch!r}: use one of {', '.join(PLATFORMS)}")
    if native and arch != "x86_64":
        raise PackageError("--native builds for this machine (x86_64) only: drop --arch arm64")
    out.mkdir(parents=True, exist_ok=True)
    lambda_zip = build_lambda(out, repo, arch, native)
    script, spark_zip = build_glue(out, repo)
    dbt_zip = build_dbt(out, repo)
    artifacts = {
        "lambda": _artifact("lambda", lambda_zip, "lambda/tmdb-extract-{sha}.zip"),
        "glue_script": _artifact("glue_script", script, "glue/{sha}/glue_entry.py"),
        "glue_code": _artifact("glue_code", spark_zip, "glue/spark-{sha}.zip"),
        "dbt": _artifact("dbt", dbt_zip, "dbt/dbt-project-{sha}.zip"),
    }
    manifest = {"arch": arch, "artifacts": {k: asdict(v) for k, v in artifacts.items()}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return artifacts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.package", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="x86_64")
    parser.add_argument(
        "--native",
        action="store_true",
        help="plain pip install for this machine (no --platform): Linux x86_64, Python 3.11",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        artifacts = build_all(args.out, REPO, args.arch, args.native)
    except PackageError as exc:
        log.error("%s", exc)
        return 1
    for artifact in artifacts.values():
        size = Path(artifact.path).stat().st_size / 1e6
        print(f"{artifact.name:12} {size:8.1f} MB  {artifact.path}  -> {artifact.key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
