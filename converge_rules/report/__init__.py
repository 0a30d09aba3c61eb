"""HTML reports people read in a browser: ``converge report`` (a job, from its trace or
a store) and ``converge test --report`` (a test run).

A report is one self-contained HTML file: its CSS and script inline, no network (a
Content-Security-Policy forbids any), so it opens from disk and from a CI artifact.
The page is rendered by Jinja2 with autoescaping; the data the script pages through
(facts, conflicts, tool calls, derivations) is embedded as one JSON document that the
script reads with ``JSON.parse`` and writes into the page only as text, never as
markup. Jinja2 is imported only when a report is written (``converge check`` does not
pay for it).
"""
