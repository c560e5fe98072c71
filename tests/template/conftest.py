"""Fixtures for the template tests: the parsed template and an environment for running the venv's SAM CLI."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.template.cfn import REPO_ROOT, TEMPLATE_PATH, load_template

# The venv that runs pytest also holds sam and cfn-lint (requirements-dev.txt).
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def template_path() -> Path:
    return TEMPLATE_PATH


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """template.yaml with short-form tags in their long forms; tests must not mutate it."""
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="session")
def venv_tool() -> Callable[[str], Path]:
    """Path of a console script of the venv, failing clearly when it is missing."""

    def find(name: str) -> Path:
        path = VENV_BIN / name
        if not path.exists():
            pytest.fail(f"{path} is missing: run `make venv` (requirements-dev.txt installs {name})")
        return path

    return find


@pytest.fixture(scope="session")
def sam_env() -> dict[str, str]:
    """Environment for the SAM CLI: no telemetry, a fixed region, and the venv first on PATH.

    The venv first on PATH makes `python3` in the layer Makefile a Python that has pip.
    """
    env = dict(os.environ)
    env.update(
        SAM_CLI_TELEMETRY="0",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env
