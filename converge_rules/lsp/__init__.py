"""``converge lsp``: the language server editors talk to.

:mod:`.index` reads a checked ruleset into a table of the names written in it (what
each one is, where it is declared, where it is used); :mod:`.complete` says what may be
written at a position; :mod:`.server` speaks the Language Server Protocol over stdio
with pygls, and is the only module that imports pygls or lsprotocol (the ``lsp`` extra:
``pip install "converge-rules[lsp]"``). Every diagnostic, every parse and every layout
comes from :mod:`converge_rules.language`; nothing here checks or formats on its own.
"""
