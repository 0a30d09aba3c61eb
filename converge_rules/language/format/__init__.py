"""Format: the one unparser. ``converge fmt`` lays out whole modules with it; every other
place that prints rule text (tests, explain, diagnostics) prints expressions and
patterns with it too."""
