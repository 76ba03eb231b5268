"""The set-up stays true: README commands, CI script, conda recipe, layout."""
from __future__ import annotations

import os
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


CONDA_NAMES = {"python-isal": "isal"}  # conda-forge's name -> PyPI's


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = {_name(r): _spec(r) for r in py["dependencies"] + py["optional-dependencies"]["test"]}
    env = {}
    for line in (ROOT / "environment.yml").read_text(encoding="utf-8").splitlines():
        m = re.match(r"\s+-\s+([A-Za-z0-9_.\-]+)(.*)$", line)
        if m and m.group(1) not in ("python", "pip", "conda-forge"):
            name = CONDA_NAMES.get(m.group(1).lower(), m.group(1))
            env[name.lower()] = (name + m.group(2).split("#")[0]).replace(" ", "")
    assert set(env) == set(wanted)
    for name, spec in wanted.items():
        assert env[name] == spec, f"{name}: pyproject {spec} vs environment.yml {env[name]}"


DEBIAN_PYTHON = Path("/usr/bin/python3")
VENV = ROOT / ".venv"


def _setup_commands() -> tuple[str, str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", setup, flags=re.S)
    assert len(blocks) == 2, "Set up has exactly two commands: the app's and the tests'"
    app_cmd, test_cmd = (b.strip() for b in blocks)
    assert "\n" not in app_cmd and "\n" not in test_cmd, "each set-up command is one line"
    return app_cmd, test_cmd


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    app_cmd, test_cmd = _setup_commands()
    assert app_cmd == "bash .ci/install --app && .venv/bin/renewal serve"
    install, _, pytest_cmd = test_cmd.partition(" && ")
    assert install == "bash .ci/install" and pytest_cmd == ".venv/bin/python -m pytest --slow"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert install in ci and pytest_cmd in ci
    assert f"The test command is `{pytest_cmd}`" in (ROOT / "README.md").read_text(encoding="utf-8")


def _shell_lines(path: Path) -> list[str]:
    return [ln.split("#", 1)[0] for ln in path.read_text(encoding="utf-8").splitlines()
            if not ln.lstrip().startswith("#")]


def test_ci_uses_debians_python_not_the_first_on_the_path():
    """PEP 668: pip installs only into .venv/, which is made by /usr/bin/python3 itself — a pyenv or
    conda python3 first on the PATH must not be the one CI tests with."""
    for script in (ROOT / ".ci" / "install", ROOT / ".ci" / "run"):
        for ln in _shell_lines(script):
            bare_python = re.search(r"(?<![/\w.-])python3?(?![\w-])", ln)
            bare_pip = re.search(r"(?:^|[;&|(])\s*(?:sudo\s+)?pip3?\s", ln)
            assert not (bare_python or bare_pip), f"{script.name}: {ln.strip()}"
    install = (ROOT / ".ci" / "install").read_text(encoding="utf-8")
    assert f"PYTHON={DEBIAN_PYTHON}" in install and '"$PYTHON" -m venv' in install
    assert ".venv/bin/python -m pip install" in install and "python3-venv" in install
    assert "/.venv/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_the_suite_runs_in_the_venv_made_from_debians_python_when_it_exists():
    """Under .ci/run (CI=true) this very process is .venv/bin/python, made from /usr/bin/python3."""
    in_venv = Path(sys.prefix).resolve() == VENV.resolve()
    if os.environ.get("CI") == "true":
        assert in_venv, f"CI runs the tests with {sys.executable}, not .venv/bin/python"
    if in_venv:
        assert sys.prefix != sys.base_prefix
        assert Path(sys._base_executable).resolve() == DEBIAN_PYTHON.resolve(), sys._base_executable
        assert (VENV / "bin" / "renewal").exists()


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
    assert scripts["renewal"] == "gis.cli.main:run"
