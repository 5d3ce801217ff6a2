"""The README's figures are the ones in benchmarks/results (regenerate with benchmarks/render_readme.py)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_figures_match_benchmark_results():
    script = ROOT / "benchmarks" / "render_readme.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_readme_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    commands = [line for line in text.split("```bash", 1)[1].split("```", 1)[0].splitlines() if line.strip()]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci  # CI runs exactly the README's test command
