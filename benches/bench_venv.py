"""The venv a Python bench runs in: created on first use, then the bench re-runs itself in it."""
import os
import subprocess
import sys
from pathlib import Path


def ensure_venv(venv: Path, requirements: list[str], script: Path, name: str) -> None:
    """Creates/reuses ``venv`` with ``requirements``, then re-executes ``script`` with its Python.

    Returns at once when already running in ``venv``. ``name`` prefixes the progress and error
    lines on stderr. A marker file records what was installed, so a changed list reinstalls.
    """
    if Path(sys.prefix).resolve() == venv.resolve():
        return
    python = venv / "bin" / "python"
    marker = venv / ".bench-requirements"
    wanted = "\n".join(requirements) + "\n"
    try:
        if not python.exists():
            print(f"{name}: creating {venv}", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        if not marker.exists() or marker.read_text() != wanted:
            print(f"{name}: installing {', '.join(requirements)} into {venv}", file=sys.stderr)
            subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", *requirements], check=True)
            marker.write_text(wanted)
    except (OSError, subprocess.CalledProcessError) as error:
        sys.exit(f"{name}: step 'venv' failed: {error}")
    os.execv(str(python), [str(python), str(script.resolve()), *sys.argv[1:]])
