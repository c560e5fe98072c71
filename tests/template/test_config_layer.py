"""config/Makefile's build-ConfigLayer, run as `sam build` runs it: in a scratch copy of config/, with ARTIFACTS_DIR.

The layer is extracted under /opt: the document at /opt/pullthrough.yaml and each file warm.sources names at its
relative path beside it, so the functions read the sources there exactly as `pullthrough images` reads them here.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pullthrough import config as config_module
from pullthrough import sources
from tests.template.cfn import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "sources"


def build_layer(config_folder: Path, artifacts: Path) -> list[str]:
    """Run the target in a scratch copy of `config_folder`; the files of the layer, relative to its root."""
    scratch = artifacts.parent / "scratch"
    shutil.copytree(config_folder, scratch)
    artifacts.mkdir()
    subprocess.run(
        ["make", "--no-print-directory", "build-ConfigLayer", f"ARTIFACTS_DIR={artifacts}"],
        cwd=scratch,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return sorted(str(path.relative_to(artifacts)) for path in artifacts.rglob("*") if path.is_file())


def test_the_repository_config_ships_alone(tmp_path: Path) -> None:
    # Given the repository's config folder (a document without sources), Then only the document ships
    assert build_layer(REPO_ROOT / "config", tmp_path / "opt") == ["pullthrough.yaml"]


def test_source_files_ship_at_their_relative_paths_and_read_the_same_from_the_layer(tmp_path: Path) -> None:
    # Given a config folder holding the Makefile, the schema, a config with sources and the files they name
    folder = tmp_path / "config"
    shutil.copytree(FIXTURES, folder, ignore=shutil.ignore_patterns("README.md"))
    for build_file in ("Makefile", "pullthrough.schema.json"):
        shutil.copy(REPO_ROOT / "config" / build_file, folder / build_file)
    expected = sources.read(config_module.load(folder / "pullthrough.yaml"))

    # When the layer is built
    layer = tmp_path / "build" / "opt"
    layer.parent.mkdir()
    shipped = build_layer(folder, layer)

    # Then the document and every file the sources name (and what compose reads besides: .env, extends) ship, and
    # what only builds or edits the document stays out
    config = config_module.load(layer / "pullthrough.yaml")
    assert set(sources.source_files(config)) <= set(shipped)
    assert {"olake/common.yml", "olake/.env", "pullthrough.yaml"} <= set(shipped)
    assert "Makefile" not in shipped
    assert "pullthrough.schema.json" not in shipped
    # And reading the sources from the layer (paths relative to /opt/pullthrough.yaml) yields the same, no problem
    from_layer = sources.read(config)
    assert from_layer.problems == []
    assert from_layer.references == expected.references
    assert len(from_layer.references) == 24
