"""The language: ``syntax`` (grammar → frozen syntax tree with spans), ``checks``
(names, types, tiers, policies, tools → a checked ruleset), ``format`` (the one
unparser), ``diagnostics`` (codes, suggestions and their renderers); ``loader`` reads a
ruleset and the files it imports; ``builtins`` is the one table of built-in functions.

The language never imports the engine."""
