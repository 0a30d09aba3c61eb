"""Syntax: the cached LALR parser over ``grammar/converge.lark``, the frozen syntax-tree
nodes with their spans, and the friendly wording of syntax errors. Lark types never
leave this package."""
