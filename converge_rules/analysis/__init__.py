"""Analysis of rulesets and runs, shared by ``converge explain``, ``converge graph``,
coverage and the test runner: a run seen through its trace (``runview``), the small
obviously-correct interpreter of rule text (``interpret``), derivation trees and "why
not" (``explain``), and the dependency graph (``depgraph``). Nothing here runs agents."""
