"""The distribution as a user gets it: a wheel built with `python -m build`, installed into a fresh
virtual environment, installs one import package (`interlock`) and runs the demo."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(work / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    [wheel] = list((work / "dist").glob("interlock-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops <= {"interlock", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}, tops
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True, timeout=120)
    pip = subprocess.run(
        [str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    return work / "venv"


def _run(venv: Path, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(cwd or venv),
        "XDG_DATA_HOME": str((cwd or venv) / "xdg"),
        "LANG": "C.UTF-8",
        "INTERLOCK_PLAYGROUND_IDLE_SECONDS": "5",
    }
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=300, env=env, cwd=cwd or venv)


@pytest.mark.parametrize("name", ["server", "tools", "sandbox"])
def test_the_installed_wheel_has_no_top_level_server_tools_or_sandbox(venv: Path, name: str) -> None:
    proc = _run(venv, str(venv / "bin" / "python"), "-c", f"import {name}")
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, proc.stderr
    site = next((venv / "lib").glob("python*/site-packages"))
    assert not (site / name).exists()


def test_the_installed_wheel_reports_its_version_both_ways(venv: Path) -> None:
    from interlock import __version__

    for argv in (
        [str(venv / "bin" / "interlock"), "--version"],
        [str(venv / "bin" / "python"), "-m", "interlock", "--version"],
    ):
        proc = _run(venv, *argv)
        assert proc.returncode == 0 and proc.stdout.strip() == f"interlock {__version__}", proc.stderr


def test_the_installed_wheel_runs_the_demo_unattended(venv: Path, tmp_path: Path) -> None:
    proc = _run(venv, str(venv / "bin" / "interlock"), "demo", "--no-input", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "reject" in (proc.stdout + proc.stderr).lower()
