"""`sam build` of template.yaml: the layers hold the library and its dependencies for python3.13 on arm64.

The build needs PyPI (pip downloads the cp313 aarch64 wheels); it runs once per test session, entirely outside the
repository: build directory, cache directory and SAM's working directory (where it puts `.aws-sam/deps`) are temporary.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.coldstart import python313

# The group keeps the build's tests on one worker once pytest-xdist honours it again; the fixture's lock is what
# guarantees a single build meanwhile.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sam_build")]

EM_AARCH64 = 183  # ELF e_machine of 64-bit ARM


@pytest.fixture(scope="module")
def build_dir(
    tmp_path_factory: pytest.TempPathFactory,
    repo_root: Path,
    template_path: Path,
    sam_env: dict[str, str],
    venv_tool: Callable[[str], Path],
) -> Path:
    """Run `sam build` once per test session and return its build directory.

    pytest-xdist workers share the session's base temporary directory; the first to take the lock builds, the others
    wait for it and reuse the result (xdist_group alone is not honoured by pytest-xdist 3.8 under pytest 9).
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    work = shared / "sam-build"
    outcome_file = shared / "sam-build.json"
    with (shared / "sam-build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not outcome_file.exists():
            outcome_file.write_text(json.dumps(_sam_build(work, repo_root, template_path, sam_env, venv_tool("sam"))))
    outcome = json.loads(outcome_file.read_text())
    if outcome["returncode"] != 0:
        pytest.fail(f"sam build failed ({outcome['returncode']}):\n{outcome['output']}")
    assert outcome["created_in_repository"] == [], "sam build wrote into the repository"
    return work / "build"


def _sam_build(work: Path, repo_root: Path, template_path: Path, env: dict[str, str], sam: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    sam_dirs = [
        repo_root / ".aws-sam",
        repo_root / "layers" / "pullthrough" / ".aws-sam",
        repo_root / "config" / ".aws-sam",
    ]
    existed_before = {path: path.exists() for path in sam_dirs}
    # The working directory is temporary too: a cached build puts `.aws-sam/deps` there.
    command: list[str | Path] = [
        sam,
        "build",
        "--template",
        template_path,
        "--build-dir",
        work / "build",
        "--cache-dir",
        work / "cache",
    ]
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False)
    return {
        "returncode": result.returncode,
        "output": f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}",
        "created_in_repository": [
            str(path) for path, existed in existed_before.items() if not existed and path.exists()
        ],
    }


def test_library_layer_holds_the_library_and_its_cp313_aarch64_dependencies(build_dir: Path) -> None:
    # Given the built library layer, whose python/ directory Lambda puts on sys.path
    python = build_dir / "PullthroughLayer" / "python"

    # Then it holds the library, pydantic's compiled core for CPython 3.13 on aarch64, PyYAML and Powertools
    assert (python / "pullthrough" / "__init__.py").is_file()
    assert (python / "pydantic_core" / "_pydantic_core.cpython-313-aarch64-linux-gnu.so").is_file()
    assert (python / "pydantic").is_dir()
    assert (python / "yaml").is_dir()
    assert (python / "aws_lambda_powertools").is_dir()
    assert (python / "aws_xray_sdk").is_dir()


def test_every_compiled_extension_is_an_aarch64_binary(build_dir: Path) -> None:
    # Given every shared object in the built library layer
    shared_objects = sorted((build_dir / "PullthroughLayer" / "python").rglob("*.so"))
    assert shared_objects, "no compiled extension at all: pydantic_core is expected"

    # Then each is an ELF file for 64-bit ARM (e_machine is the little-endian half-word at offset 18)
    wrong = []
    for path in shared_objects:
        header = path.read_bytes()[:20]
        if header[:4] != b"\x7fELF" or int.from_bytes(header[18:20], "little") != EM_AARCH64:
            wrong.append(path.name)
    assert wrong == []


def test_library_layer_ships_every_module_and_only_python_313_bytecode(build_dir: Path, repo_root: Path) -> None:
    # Given the library's source package and the package in the built layer
    source = repo_root / "layers" / "pullthrough" / "pullthrough"
    built = build_dir / "PullthroughLayer" / "python" / "pullthrough"

    # Then the layer has every module of the source, and byte code from local runs stayed behind
    def modules(root: Path) -> set[str]:
        return {str(path.relative_to(root)) for path in root.rglob("*.py") if "__pycache__" not in path.parts}

    assert modules(built) == modules(source)
    assert (built / "py.typed").is_file()
    compiled = {path for path in built.rglob("*.pyc")}
    assert [path.name for path in compiled if ".cpython-313." not in path.name] == []
    # And where the build machine has a Python 3.13 (the runtime's), every module of the layer has its byte code,
    # checked by nothing but its presence (PEP 552 flags 0b01: a hash-based .pyc whose source is never compared)
    if python313() is None:
        assert compiled == set(), "byte code without a Python 3.13 to compile it"
        return
    layer = build_dir / "PullthroughLayer" / "python"
    missing = [
        str(path.relative_to(layer))
        for path in layer.rglob("*.py")
        if not (path.parent / "__pycache__" / f"{path.stem}.cpython-313.pyc").is_file()
    ]
    assert missing == []
    flags = {int.from_bytes(path.read_bytes()[4:8], "little") for path in layer.rglob("*.cpython-313.pyc")}
    assert flags == {0b01}


def test_library_layer_leaves_botocore_to_the_runtime_but_ships_urllib3(build_dir: Path) -> None:
    # Given the built library layer
    python = build_dir / "PullthroughLayer" / "python"

    # Then the runtime's boto3 keeps its own botocore (a copy here would shadow it), while urllib3 2 ships
    assert not (python / "botocore").exists()
    assert list(python.glob("botocore-*.dist-info")) == []
    (urllib3_info,) = python.glob("urllib3-*.dist-info")
    assert urllib3_info.name.startswith("urllib3-2.")


def test_config_layer_holds_only_the_config_document(build_dir: Path, repo_root: Path) -> None:
    # Given the built config layer, which Lambda extracts under /opt
    layer = build_dir / "ConfigLayer"

    # Then it holds exactly pullthrough.yaml (so /opt/pullthrough.yaml), byte for byte the repository's
    assert sorted(path.name for path in layer.iterdir()) == ["pullthrough.yaml"]
    source = repo_root / "config" / "pullthrough.yaml"
    assert (layer / "pullthrough.yaml").read_bytes() == source.read_bytes()
