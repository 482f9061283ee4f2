"""``deploy/``: the systemd units run the Procfile's commands, and those commands exist.

A unit says ``/bin/sh -c "exec <the Procfile's command>"`` with systemd's escapes (``%%``
for ``%``, ``$$`` for ``$``, ``\\"`` inside the quotes); read back, it must be the Procfile's
line exactly, and each program it names must resolve in this installation.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
CHECKOUT = "/srv/timebank"  # where the units expect the repository
UNITS = {"release": "timebank-release.service", "web": "timebank-web.service",
         "worker": "timebank-worker@.service"}


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def service(name: str) -> dict[str, list[str]]:
    """The unit's ``[Service]`` settings, each with all its values."""
    settings: dict[str, list[str]] = {}
    for line in (DEPLOY / name).read_text().splitlines():
        if line.startswith("[") or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def command(exec_start: str) -> list[str]:
    """``ExecStart`` as systemd hands it to the program: specifiers, quotes, then ``$$``."""
    without_specifiers = exec_start.replace("%%", "")
    assert "%" not in without_specifiers, f"a bare % is a systemd specifier: {exec_start}"
    assert "$" not in exec_start.replace("$$", ""), f"systemd would expand a bare $: {exec_start}"
    return [word.replace("$$", "$") for word in shlex.split(exec_start.replace("%%", "%"))]


def test_every_procfile_process_has_a_unit():
    assert set(procfile()) == set(UNITS)
    assert {p.name for p in DEPLOY.glob("*.service")} == set(UNITS.values())


@pytest.mark.parametrize("process", sorted(UNITS))
def test_each_unit_runs_the_procfile_command(process):
    settings = service(UNITS[process])

    [exec_start] = settings["ExecStart"]

    assert command(exec_start) == ["/bin/sh", "-c", f"exec {procfile()[process]}"]
    assert settings["WorkingDirectory"] == [CHECKOUT]
    assert settings["EnvironmentFile"] == ["/etc/timebank/timebank.env"]
    [path] = [v.removeprefix("PATH=") for v in settings["Environment"] if v.startswith("PATH=")]
    assert path.split(":")[0] == f"{CHECKOUT}/.venv/bin"


@pytest.mark.parametrize("process", sorted(UNITS))
def test_the_programs_the_units_run_exist_here(process):
    """Each command's program, looked up as the unit's PATH would (its virtualenv standing
    for this one), and what it runs: the app factory, worker.py, `timebank db upgrade`."""
    [exec_start] = service(UNITS[process])["ExecStart"]
    shell, _, script = command(exec_start)
    assert Path(shell).is_file() and os.access(shell, os.X_OK)
    words = shlex.split(script.removeprefix("exec "))
    found = shutil.which(words[0], path=f"{BIN}:/usr/bin:/bin")
    assert found is not None, f"{words[0]} not found"
    if process == "web":
        assert Path(found).parent == BIN  # gunicorn, from the project's environment
        module, _, factory = words[1].partition(":")
        loaded = subprocess.run(
            [sys.executable, "-c", f"import {module}; assert callable({module}."
                                   f"{factory.removesuffix('()')})"],
            cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert loaded.returncode == 0, loaded.stderr
        assert (ROOT / "gunicorn.conf.py").is_file()  # read by gunicorn from its folder
    elif process == "worker":
        assert words == ["python", "worker.py"]
        assert (ROOT / "worker.py").is_file()
        assert "from app.worker import main" in (ROOT / "worker.py").read_text()
    else:
        assert Path(found).parent == BIN  # the console script of this installation
        helped = subprocess.run([found, *words[1:], "--help"], capture_output=True, text=True,
                                timeout=60)
        assert helped.returncode == 0, helped.stderr
        assert "Usage: timebank db upgrade" in helped.stdout


def test_systemd_reads_the_units(tmp_path):
    """``systemd-analyze verify`` where systemd is installed (quoting, settings)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    for name in UNITS.values():
        shutil.copy(DEPLOY / name, tmp_path / name.replace("@.", "@1."))
    verified = subprocess.run(
        [analyze, "verify", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0, verified.stderr
    assert "ignoring" not in verified.stderr, verified.stderr


def test_the_environment_example_names_only_documented_settings():
    readme = (ROOT / "README.md").read_text()
    example = (DEPLOY / "timebank.env.example").read_text()
    names = re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE)
    assert "TIMEBANK_TRUSTED_PROXIES" in names and "TIMEBANK_METRICS_TOKEN" in names
    for name in names:
        assert f"`{name}`" in readme, f"{name} is not in the README's configuration"
    assert re.search(r"^TIMEBANK_TRUSTED_PROXIES=1$", example, flags=re.MULTILINE)


def test_the_nginx_example_is_one_hop_with_tls_to_the_port_in_the_example():
    nginx = (DEPLOY / "nginx-timebank.conf").read_text()
    port = re.search(r"^PORT=(\d+)$", (DEPLOY / "timebank.env.example").read_text(),
                     flags=re.MULTILINE)
    assert port is not None
    assert f"server 127.0.0.1:{port.group(1)};" in nginx
    assert "listen 443 ssl;" in nginx and "ssl_certificate " in nginx
    assert nginx.count("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;") == 2
    assert "TIMEBANK_TRUSTED_PROXIES=1" in nginx
    parsed = configparser.ConfigParser(strict=False, interpolation=None)  # units are INI
    for name in UNITS.values():
        parsed.read(DEPLOY / name)
    assert parsed.get("Service", "User") == "timebank"


def test_sh_reads_the_environment_example_as_systemd_does(tmp_path):
    """docs/OPERATIONS.md runs `timebank` commands with the file sourced by sh."""
    example = (DEPLOY / "timebank.env.example").read_text()
    uncommented = re.sub(r"^# (TWILIO_\w+=)", r"\1", example, flags=re.MULTILINE)
    (tmp_path / "timebank.env").write_text(uncommented)
    read = subprocess.run(
        ["/bin/sh", "-c", f"set -a; . {tmp_path / 'timebank.env'}; set +a; "
         "printf '%s\\n' \"$TIMEBANK_NAME\" \"$TWILIO_WHATSAPP_TEMPLATES\" \"$PORT\""],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=30)
    assert read.returncode == 0, read.stderr
    name, templates, port = read.stdout.splitlines()
    assert name == "Lambeth Time Bank"
    assert templates.startswith('{"confirm_ask": {"sid": "HX')
    assert port == "5000"
