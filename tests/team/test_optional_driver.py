"""The driver stays optional: a local project never imports psycopg, and a team URL without the driver
installed is one clear paragraph (install the `team` extra), not an ImportError."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_a_local_project_never_imports_the_driver(image_folder):
    code = (
        "import sys\n"
        "from segstudio.core.project import Project\n"
        "from segstudio.cli import main\n"
        "Project.open(sys.argv[1]).close()\n"
        "assert main(['info', sys.argv[1]]) == 0\n"
        "print('psycopg' in sys.modules, 'segstudio.team.project' in sys.modules)\n"
    )
    result = _python(code, str(image_folder))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False False"


def test_a_team_url_without_the_driver_says_what_to_install(image_folder):
    code = (
        "import sys\n"
        "sys.modules['psycopg'] = None  # as if not installed\n"
        "from segstudio.cli import main\n"
        "sys.exit(main(['predict', sys.argv[1], '--db', 'postgresql://alice@127.0.0.1/x', '--weights', 'none']))\n"
    )
    result = _python(code, str(image_folder))
    assert result.returncode == 2
    assert "pip install 'segstudio[team]'" in result.stderr and "Traceback" not in result.stderr
