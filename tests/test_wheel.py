"""The built wheel works on its own: the grammar ships inside it and a ruleset parses
with the installed copy, away from the source checkout. Offline: the wheel is built
without build isolation and installed with ``--no-index --no-deps``; the dependencies
come from the running environment."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
import converge_rules
from converge_rules.language.syntax.parser import grammar_text, parse
text = open(sys.argv[1], encoding="utf-8").read()
result = parse(text, "pricing.cvg")
print(json.dumps({
    "file": converge_rules.__file__,
    "items": len(result.module.items),
    "diagnostics": [d.code for d in result.diagnostics],
    "grammar": grammar_text().startswith("// The grammar of the Converge rules language"),
}))
"""


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_wheel_ships_the_grammar_and_parses_when_installed(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    # Without isolation the build needs no network, but hatchling must be installed here;
    # otherwise fall back to an isolated build (which downloads hatchling).
    isolation = ["--no-isolation"] if importlib.util.find_spec("hatchling") else []
    _run(sys.executable, "-m", "build", "--wheel", *isolation, "--outdir", dist, REPO,
         cwd=tmp_path)
    (wheel,) = dist.glob("converge_rules-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "converge_rules/grammar/converge.lark" in names
    assert "converge_rules/language/syntax/parser.py" in names

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    _run(python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", wheel,
         cwd=tmp_path)

    # The dependencies (lark, click, …) come from this environment's site-packages,
    # appended *after* the new venv's own through a .pth file, so the wheel's copy of
    # converge_rules wins over any copy installed here (editable or not).
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                cwd=tmp_path).strip()
    Path(site, "deps-from-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = _run(python, "-c", PROBE, REPO / "rulesets" / "pricing" / "pricing.cvg",
               cwd=tmp_path, env=env)
    report = json.loads(out)
    assert Path(report["file"]).resolve().is_relative_to(venv.resolve()), report
    assert report["grammar"] is True
    assert report["diagnostics"] == []
    assert report["items"] == 17
