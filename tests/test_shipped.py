"""What ships: an install that carries the page's templates and static files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from model import registry

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DIR = registry.CHECKPOINT_DIR


# Imported from the built package, not the source tree: the page and a static file are served.
SERVE_PAGE = """
import json
import webapp

app = webapp.create_app({"TESTING": True})
client = app.test_client()
page, script = client.get("/"), client.get("/static/app.js")
print(json.dumps({
    "package": webapp.__file__,
    "templates": app.template_folder,
    "page": [page.status_code, 'id="record"' in page.get_data(as_text=True)],
    "script": script.status_code,
}))
script.close()
"""


def test_an_installed_package_carries_and_serves_the_templates_and_static_files(tmp_path):
    pytest.importorskip("setuptools", reason="setuptools builds the package")
    # build_py lays out the files exactly as the wheel holds them (bdist_wheel zips this tree);
    # setuptools' own egg-info and build folders go to tmp_path, so the source tree is untouched.
    lib, egg_base = tmp_path / "lib", tmp_path / "egg"
    egg_base.mkdir()
    built = subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q"]
        + ["egg_info", "--egg-base", str(egg_base), "build_py", "--build-lib", str(lib)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr

    for folder in ("templates", "static"):
        sources = sorted(p for p in (ROOT / folder).iterdir() if not p.name.startswith("."))
        assert sources
        for source in sources:
            installed = lib / "webapp" / folder / source.name
            assert installed.is_file(), f"{source.relative_to(ROOT)} is not in the package"
            assert installed.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in (lib / "model" / "checkpoints").glob("*.safetensors")) == sorted(
        p.name for p in SHIPPED_DIR.glob("*.safetensors")
    )

    served = subprocess.run(
        [sys.executable, "-c", SERVE_PAGE],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(lib)},
        capture_output=True,
        text=True,
    )
    assert served.returncode == 0, served.stderr
    answer = json.loads(served.stdout)
    assert Path(answer["package"]).is_relative_to(lib)
    assert Path(answer["templates"]).is_relative_to(lib)
    assert answer["page"] == [200, True]
    assert answer["script"] == 200
