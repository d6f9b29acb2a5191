"""Packaging and setup as a newcomer meets them: the version, the PostgreSQL extra and
its error message, what the README says, and what a plain ``pytest`` run prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import onestop
from onestop.errors import StoreError
from onestop.store import open_store as Store

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
POSTGRES_EXTRA = "pip install 'onestop[postgres]'"


def test_one_version_for_package_metadata_and_the_command():
    project = PYPROJECT["project"]
    assert "version" in project.get("dynamic", []) and "version" not in project
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "onestop/__init__.py"
    assert metadata.version("onestop") == onestop.__version__


def test_postgres_is_an_extra_and_the_tests_install_it():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert extras["postgres"] == ["psycopg[binary]>=3.2,<4"]
    assert "onestop[postgres]" in extras["test"]


@pytest.mark.parametrize("path", ["README.md", "docs/getting-started.md"])
def test_the_docs_say_postgresql_needs_the_extra(path):
    assert POSTGRES_EXTRA in (ROOT / path).read_text(encoding="utf-8")


def test_a_postgresql_url_without_the_driver_says_to_install_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    with pytest.raises(StoreError) as caught:
        Store("postgresql+psycopg://officer:s3cret@db.example/onestop")
    message = str(caught.value)
    assert POSTGRES_EXTRA in message
    assert "s3cret" not in message and "db.example/onestop" in message


def test_a_postgresql_url_for_another_driver_points_to_psycopg():
    pytest.importorskip("sqlalchemy.dialects.postgresql")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("psycopg2 is installed here")
    with pytest.raises(StoreError) as caught:
        Store("postgresql+psycopg2://officer:s3cret@db.example/onestop")
    message = str(caught.value)
    assert POSTGRES_EXTRA in message and "postgresql+psycopg://" in message
    assert "s3cret" not in message


def test_pytest_lists_failures_and_only_counts_skips():
    report = re.search(r"-r(\S+)", PYPROJECT["tool"]["pytest"]["ini_options"]["addopts"])
    assert report is not None
    assert "s" not in report.group(1) and "a" not in report.group(1)
    assert "f" in report.group(1) and "E" in report.group(1)


def test_a_plain_pytest_run_gives_each_skip_reason_once(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ONESTOP_TEST_POSTGRES"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
         "tests/test_clock.py::test_engine_stamps_events_with_the_injected_clock"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("SKIPPED [")]
    reasons = [line for line in lines if "no PostgreSQL server" in line]
    assert reasons == ["1 skipped: no PostgreSQL server (set ONESTOP_TEST_POSTGRES; "
                       ".ci/run does)"], result.stdout
    assert re.search(r"2 passed, 1 skipped", lines[-1])   # SQLite and memory ran
