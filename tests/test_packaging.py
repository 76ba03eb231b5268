"""The set-up stays true: README commands, CI script, conda recipe, layout."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower()


def _spec(req: str) -> str:
    """A requirement without pip extras (conda has none): 'psycopg[binary]>=3.2' → 'psycopg>=3.2'."""
    return re.sub(r"\[.*?\]", "", req).replace(" ", "")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = {_name(r): _spec(r) for r in py["dependencies"] + py["optional-dependencies"]["test"]}
    env = {}
    for line in (ROOT / "environment.yml").read_text(encoding="utf-8").splitlines():
        m = re.match(r"\s+-\s+([A-Za-z0-9_.\-]+)(.*)$", line)
        if m and m.group(1) not in ("python", "pip", "conda-forge"):
            env[m.group(1).lower()] = (m.group(1) + m.group(2)).replace(" ", "")
    assert set(env) == set(wanted)
    for name, spec in wanted.items():
        assert env[name] == spec, f"{name}: pyproject {spec} vs environment.yml {env[name]}"


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", setup, flags=re.S)
    assert len(blocks) == 2
    app_cmd, test_cmd = (b.strip() for b in blocks)
    assert "renewal serve" in app_cmd and "pip install" in app_cmd
    install, _, pytest_cmd = test_cmd.partition(" && ")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert install in ci and pytest_cmd in ci.splitlines()


def test_layout_the_customer_named():
    for p in ("app.py", "gis", "layers", "data/parcels", "tests", "environment.yml", "ui", "bench",
              "data/raster", "pyproject.toml", ".ci/run"):
        assert (ROOT / p).exists(), p


def test_gis_never_imports_streamlit():
    for py in (ROOT / "gis").rglob("*.py"):
        text = py.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import streamlit|from streamlit)", text, flags=re.M), py


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "gis.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "renewal" in out.stdout
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["renewal"] == "gis.cli.main:main"
