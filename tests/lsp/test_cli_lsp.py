"""``converge lsp`` as a command: without pygls it says what to install (no traceback);
``converge check`` never imports the server or pygls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRICING = REPO / "rulesets" / "pricing" / "pricing.cvg"

# pygls and lsprotocol made unimportable, as in an install without the `lsp` extra
NO_PYGLS = """
import sys
class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pygls", "lsprotocol"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Hide())
from converge_rules.cli import main
main(sys.argv[1:], prog_name="converge")
"""


def test_without_pygls_it_says_how_to_install_it() -> None:
    done = subprocess.run([sys.executable, "-c", NO_PYGLS, "lsp"], capture_output=True,
                          text=True, timeout=120, cwd=REPO, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert 'pip install "converge-rules[lsp]"' in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_check_does_not_import_the_language_server(tmp_path: Path) -> None:
    out = tmp_path / "modules.json"
    probe = ("import json, sys\nfrom converge_rules.cli import main\n"
             "try:\n    main(sys.argv[2:], prog_name='converge')\n"
             "except SystemExit:\n    pass\n"
             "json.dump(sorted(sys.modules), open(sys.argv[1], 'w'))\n")
    env = {**os.environ, "CONVERGE_CACHE_DIR": str(tmp_path / "cache")}
    subprocess.run([sys.executable, "-c", probe, str(out), "check", str(PRICING)],
                   cwd=REPO, env=env, timeout=120, capture_output=True)
    modules = set(json.loads(out.read_text(encoding="utf-8")))
    assert "converge_rules.language.checks.checker" in modules
    assert not {m for m in modules if m.split(".")[0] in ("pygls", "lsprotocol")
                or m.startswith(("converge_rules.lsp", "converge_rules.cli.lsp"))}


def test_help_describes_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "converge_rules.cli", "lsp", "--help"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0
    assert "Start the language server" in done.stdout and "docs/editors.md" in done.stdout
