"""Fixtures of the AWS deployment tests: the parsed templates and the packaged artifacts."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # deploy/ and fake_tmdb/ are imported from the checkout
    sys.path.insert(0, str(REPO))

TEMPLATE_DIR = REPO / "cloudformation"
MAIN_TEMPLATE = TEMPLATE_DIR / "movie-lake.yaml"
ARTIFACTS_TEMPLATE = TEMPLATE_DIR / "movie-lake-artifacts.yaml"


def load_template(path: Path) -> dict[str, Any]:
    """The template as plain data; intrinsic tags (!Ref, !Sub, ...) become Fn:: mappings."""
    from cfnlint.decode import decode

    template, problems = decode(str(path))
    assert not problems, f"{path} does not parse: {problems}"
    assert template is not None
    return template


@pytest.fixture(scope="session")
def main_template() -> dict[str, Any]:
    return load_template(MAIN_TEMPLATE)


@pytest.fixture(scope="session")
def artifacts_template() -> dict[str, Any]:
    return load_template(ARTIFACTS_TEMPLATE)


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``make package``'s artifacts, built once per session into a temporary folder.

    The wheels come from the configured index (and pip's cache) once per lock; the bundle
    is cached in build/aws/cache/ like ``make package`` does, so later runs only re-zip.
    """
    from deploy.package import build_all

    out = tmp_path_factory.mktemp("aws-build")
    # Share the dependency cache of `make package`: the slow part (pip) runs once per lock.
    cache = REPO / "build" / "aws" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    (out / "cache").symlink_to(cache, target_is_directory=True)
    started = time.monotonic()
    artifacts = build_all(out=out, repo=REPO)
    seconds = time.monotonic() - started
    assert seconds < 90, f"packaging took {seconds:.0f} s: the dependency cache is not reused"
    return {"out": out, "artifacts": artifacts, "seconds": seconds}
