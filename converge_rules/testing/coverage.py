"""Rule coverage: what the tests of a ruleset exercised.

Items, per ruleset:

* **agent** — covered when it fired (had an effect merged) in at least one test;
* **guard** — a ``where``: covered when it was seen false at least once (its true side
  is the agent firing). The compiled engine inlines guards and does not report their
  outcomes, so guards are evaluated afterwards against each test's final context, for
  every match of the agent's patterns there: a guard that was false only for facts that
  later left the context is not seen;
* **policy** — covered when it resolved (or raised) at least one conflict;
* **prune** — covered when it dropped at least one fact;
* **invariant** — covered when some test broke it (an effect discarded, or the job
  ended): a test shows that it catches what it forbids;
* **gate** — covered when it held at least one fact in some test (``approve T when …``).

The percentage is covered items over all items. Rendered as text, JSON-ready data and
Cobertura XML (agents, policies and prunes as lines, guards as two-way branches).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from converge_rules.analysis.interpret import EvalError, interpreter_for, job_time
from converge_rules.analysis.runview import RunView
from converge_rules.language.checks.checked import CheckedRuleset
from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.span import Span

ItemKind = Literal["agent", "guard", "policy", "prune", "invariant", "gate"]

GUARD_NOTE = ("guards are evaluated against each test's final context (the engine does "
              "not report guard outcomes)")

MAX_GUARD_MATCHES = 5_000


@dataclass(frozen=True, slots=True)
class Item:
    kind: ItemKind
    name: str
    span: Span
    hits: int
    covered: bool
    detail: str = ""


@dataclass(slots=True)
class RulesetCoverage:
    """Counters for one ruleset, filled run by run with :meth:`record`."""

    name: str
    file: str
    checked: CheckedRuleset
    functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    runs: int = 0
    fired: Counter[str] = field(default_factory=Counter)
    resolved: Counter[str] = field(default_factory=Counter)
    pruned: Counter[str] = field(default_factory=Counter)
    guard_true: Counter[str] = field(default_factory=Counter)
    guard_false: Counter[str] = field(default_factory=Counter)
    broken: Counter[str] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)

    def record(self, view: RunView) -> None:
        """Fold one test run in."""
        self.runs += 1
        for agent, count in view.effects_merged.items():
            if count:
                self.fired[agent] += 1
        for type_name in {c.type for c in view.conflicts}:
            self.resolved[type_name] += 1
        for type_name, count in view.pruned_types.items():
            self.pruned[type_name] += count
        self.broken.update(view.invariants_broken)
        self.held.update(view.gates_held)
        self._guards(view)

    def _guards(self, view: RunView) -> None:
        interp = interpreter_for(self.checked, view.context(), self.functions,
                                 now=job_time(view.now))
        for agent in self.checked.agents:
            if agent.where is None:
                continue
            seen_true = seen_false = False
            for env in _matches(interp, agent.patterns):
                try:
                    value = bool(interp.eval(agent.where, env))
                except EvalError:
                    continue
                seen_true |= value
                seen_false |= not value
                if seen_true and seen_false:
                    break
            name = agent.name.name
            self.guard_true[name] += seen_true
            self.guard_false[name] += seen_false

    def items(self) -> list[Item]:
        """Every coverage item, in declaration order."""
        out: list[Item] = []
        prunes_by_type = {p.type.name for p in self.checked.prunes}
        for agent in self.checked.agents:
            name = agent.name.name
            hits = self.fired[name]
            out.append(Item("agent", name, agent.span, hits, hits > 0,
                            "" if hits else "never fired"))
            if agent.where is not None:
                false, true = self.guard_false[name], self.guard_true[name]
                out.append(Item("guard", name, agent.where.span, false, false > 0,
                                f"true in {true} run(s), false in {false} run(s)"))
        for type_name, policy in self.checked.policies.items():
            hits = self.resolved[type_name]
            out.append(Item("policy", type_name, policy.span, hits, hits > 0,
                            "" if hits else "never resolved a conflict"))
        for prune in self.checked.prunes:
            hits = self.pruned[prune.type.name] if prune.type.name in prunes_by_type else 0
            out.append(Item("prune", prune.type.name, prune.span, hits, hits > 0,
                            "" if hits else "never dropped a fact"))
        for inv in self.checked.invariants:
            hits = self.broken[inv.name.name]
            out.append(Item("invariant", inv.name.name, inv.span, hits, hits > 0,
                            "" if hits else "never broken by a test"))
        for gate in self.checked.gates:
            hits = self.held[gate.type.name]
            out.append(Item("gate", gate.type.name, gate.span, hits, hits > 0,
                            "" if hits else "never held a fact in a test"))
        return out

    def percent(self) -> float:
        items = self.items()
        return 100.0 * sum(i.covered for i in items) / len(items) if items else 100.0


def _matches(interp: Any, patterns: Sequence[n.Pattern]) -> Iterable[dict[str, Any]]:
    envs: list[dict[str, Any]] = [{}]
    for pattern in patterns:
        if pattern.negated:
            envs = [e for e in envs if not any(True for _ in interp.matches(pattern, e))]
            continue
        grown: list[dict[str, Any]] = []
        for env in envs:
            grown.extend(bound for _, bound in interp.matches(pattern, env))
            if len(grown) >= MAX_GUARD_MATCHES:
                break
        envs = grown
    return envs


@dataclass(slots=True)
class Coverage:
    """Coverage of every ruleset a test run touched, by entry file."""

    rulesets: dict[str, RulesetCoverage] = field(default_factory=dict)

    def record(self, file: str, checked: CheckedRuleset, view: RunView,
               functions: Mapping[str, Callable[..., Any]] | None = None) -> None:
        """Fold one test run of the ruleset in ``file`` in (``functions``: the plugin
        functions its guards may call)."""
        cov = self.rulesets.get(file)
        if cov is None:
            cov = self.rulesets[file] = RulesetCoverage(checked.name, file, checked,
                                                        dict(functions or {}))
        cov.record(view)

    def add_unrun(self, file: str, checked: CheckedRuleset) -> None:
        """A ruleset with no selected test still counts (at 0 %)."""
        self.rulesets.setdefault(file, RulesetCoverage(checked.name, file, checked))

    def totals(self) -> tuple[int, int]:
        items = [i for c in self.rulesets.values() for i in c.items()]
        return sum(i.covered for i in items), len(items)

    def percent(self) -> float:
        covered, total = self.totals()
        return 100.0 * covered / total if total else 100.0

    # ----------------------------------------------------------------- formats

    def text(self) -> str:
        """A table per ruleset and the list of what no test exercised."""
        out = ["coverage (" + GUARD_NOTE + "):"]
        for file in sorted(self.rulesets):
            cov = self.rulesets[file]
            items = cov.items()
            covered = sum(i.covered for i in items)
            out.append(f"  {file} ({cov.name}): {cov.percent():.1f}% "
                       f"({covered}/{len(items)} items, {cov.runs} test run(s))")
            by_kind: dict[str, list[Item]] = {}
            for item in items:
                by_kind.setdefault(item.kind, []).append(item)
            for kind, label in (("agent", "agents fired"), ("policy", "policies resolved"),
                                ("guard", "guards seen false"), ("prune", "prunes fired"),
                                ("invariant", "invariants broken"),
                                ("gate", "gates that held a fact")):
                group = by_kind.get(kind, [])
                if group:
                    out.append(f"    {label}: {sum(i.covered for i in group)}/{len(group)}")
            missed = [i for i in items if not i.covered]
            if missed:
                out.append("    not exercised:")
                out.extend(f"      {i.kind} {i.name} at {i.span}: "
                           f"{i.detail or 'never exercised'}" for i in missed)
        out.append(f"total coverage: {self.percent():.1f}%")
        return "\n".join(out) + "\n"

    def json(self) -> dict[str, Any]:
        return {
            "percent": round(self.percent(), 2),
            "note": GUARD_NOTE,
            "rulesets": [
                {"file": file, "name": cov.name, "runs": cov.runs,
                 "percent": round(cov.percent(), 2),
                 "items": [{"kind": i.kind, "name": i.name, "file": i.span.file,
                            "line": i.span.line, "hits": i.hits, "covered": i.covered,
                            "detail": i.detail} for i in cov.items()]}
                for file, cov in sorted(self.rulesets.items())
            ],
        }

    def cobertura(self) -> str:
        """Cobertura XML (as coverage.py writes it): a package per ruleset, a class per
        file; agents, policies and prunes are lines with hit counts, guards two-way
        branches on their line. Deterministic (timestamp 0)."""
        root = ET.Element("coverage")
        ET.SubElement(ET.SubElement(root, "sources"), "source").text = "."
        packages = ET.SubElement(root, "packages")
        all_lines: list[tuple[int, bool]] = []
        all_branches = [0, 0]
        for file, cov in sorted(self.rulesets.items()):
            package = ET.SubElement(packages, "package", name=cov.name)
            classes = ET.SubElement(package, "classes")
            lines_by_file: dict[str, dict[int, list[Item]]] = {}
            for item in cov.items():
                lines_by_file.setdefault(item.span.file, {}).setdefault(
                    item.span.line, []).append(item)
            pkg_lines: list[tuple[int, bool]] = []
            pkg_branches = [0, 0]
            for source, lines in sorted(lines_by_file.items()):
                klass = ET.SubElement(classes, "class", name=f"{cov.name}:{source}",
                                      filename=source, complexity="0")
                ET.SubElement(klass, "methods")
                line_el = ET.SubElement(klass, "lines")
                cls_lines: list[tuple[int, bool]] = []
                cls_branches = [0, 0]
                for number, items in sorted(lines.items()):
                    hits = sum(i.hits for i in items if i.kind != "guard")
                    guards = [i for i in items if i.kind == "guard"]
                    attrs = {"number": str(number), "hits": str(hits)}
                    if guards:
                        g = guards[0]
                        taken = int(cov.guard_true[g.name] > 0) + int(g.covered)
                        attrs.update(branch="true",
                                     **{"condition-coverage": f"{50 * taken}% ({taken}/2)"})
                        attrs["hits"] = str(max(hits, cov.guard_true[g.name] + g.hits))
                        cls_branches[0] += taken
                        cls_branches[1] += 2
                    covered = all(i.covered for i in items)
                    ET.SubElement(line_el, "line", attrs)
                    cls_lines.append((number, covered))
                _rates(klass, cls_lines, cls_branches)
                pkg_lines += cls_lines
                pkg_branches = [pkg_branches[0] + cls_branches[0],
                                pkg_branches[1] + cls_branches[1]]
            _rates(package, pkg_lines, pkg_branches)
            package.set("complexity", "0")
            all_lines += pkg_lines
            all_branches = [all_branches[0] + pkg_branches[0],
                            all_branches[1] + pkg_branches[1]]
            del file
        _rates(root, all_lines, all_branches)
        root.attrib.update({
            "lines-covered": str(sum(c for _, c in all_lines)),
            "lines-valid": str(len(all_lines)),
            "branches-covered": str(all_branches[0]),
            "branches-valid": str(all_branches[1]),
            "complexity": "0", "version": "converge", "timestamp": "0",
        })
        ET.indent(root)
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<!DOCTYPE coverage SYSTEM '
                '"http://cobertura.sourceforge.net/xml/coverage-04.dtd">\n'
                + ET.tostring(root, encoding="unicode") + "\n")


def _rates(element: ET.Element, lines: list[tuple[int, bool]], branches: list[int]) -> None:
    element.set("line-rate", _rate(sum(c for _, c in lines), len(lines)))
    element.set("branch-rate", _rate(branches[0], branches[1]))


def _rate(covered: int, total: int) -> str:
    return f"{covered / total:.4f}" if total else "1"
