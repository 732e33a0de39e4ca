"""The README's two commands are the project's front door: keep them and CI in step."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_readme_starts_with_install_demo_and_test_commands():
    install_demo, tests = _readme_commands()[:2]
    assert install_demo == "pip install . && kerasseg demo"
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    tests = _readme_commands()[1]
    ci_lines = [l.strip() for l in (ROOT / ".ci" / "run").read_text().splitlines()]
    for part in tests.split(" && "):
        assert any(
            part.replace("pip install", "pip install --quiet") == l or part == l for l in ci_lines
        ), f"CI does not run {part!r}"
