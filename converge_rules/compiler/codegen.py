"""Agent source generation: one agent → one Python module defining
``agent(view, since, runtime) -> list[Output]``. For an agent that calls tools the
compiler also generates the coroutine variant (``asynchronous=True``): the same code
as ``async def agent``, each call ``await runtime.acall(...)``, for the ``asyncio``
executor; it makes the same calls in the same order and returns the same outputs.

The generated function runs one semi-naive pass per positive pattern. In pass *i* the
pattern *Pi* iterates the facts new since the watermark, patterns written before it
are restricted to older facts (``id < since``; ids are ascending, so the loop stops at
the first new one) and patterns written after it are unrestricted. A match with at
least one new fact is therefore produced by exactly one pass: the one of its first new
fact, in written order. Inside a pass the other patterns are looked up through an
index on the fields already constrained (see :mod:`converge_rules.compiler.joins`);
``where`` conjuncts, negations and deferred constraints run as soon as the names they
use are bound (and ``where`` conjuncts keep their written order, so a conjunct that
protects a later one — ``n != 0 and x / n > 1`` — still does). Guards that use no
name of the match (``sum(Q(), amount) > 100.0``) are checked once per pass, before
its loops, when the pass has new facts.

A value whose type the compiler cannot know (a tool result, a plugin function's
result) is checked against its field's type at run time (``_typed``), so a fact never
holds a value of another type; values of known type cost nothing.

Memory is bounded by the root budgets. A run checks ``len(out)`` against
``max_facts`` once per iteration of every loop of a pass but the innermost (never per
output: the innermost loop is the hot one), so it stops within one innermost loop of
the limit; and a ``str`` or ``list`` value the agent computes (``s + s``, a function's
or a tool's result) is measured against ``max_string_length`` / ``max_list_length``
before it is emitted. Values copied from facts and literals are not measured: they
were measured when they were computed.

Only generated names (``v0``, ``f1``, ``t1``, ``ix2``…) and literals made with
``repr`` of Python values appear in the code; rule names appear in comments only
through ``repr``, which cannot end a comment line.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from converge_rules.compiler.context import (
    FactRef,
    Namespace,
    ProgramContext,
    ToolRef,
    Var,
    key_src,
    tuple_src,
)
from converge_rules.compiler.expressions import ExprCompiler
from converge_rules.compiler.joins import (
    FieldUse,
    PatternInfo,
    classify,
    constrained,
    names_in,
    plan_from,
    plan_pass,
    routes,
)
from converge_rules.errors import CompileError
from converge_rules.language.syntax.nodes import (
    Agent,
    Aggregate,
    Arg,
    Attribute,
    Binary,
    Emit,
    Evaluate,
    Expr,
    IfExpr,
    Intend,
    ListExpr,
    Literal,
    Name,
    Pattern,
    Unary,
    walk_expr,
)
from converge_rules.program import (
    EMIT,
    EVALUATE,
    INTEND,
    MISSING,
    TypeSpec,
    ValueType,
)

_LOOP = re.compile(r"(?P<indent> *)for (?P<fact>f\d+) in (?P<ids>.+):")


def _whole_constant_loops(lines: list[str]) -> list[str]:
    """Columnar generated code (``out``, ``support``) with each loop whose whole body
    emits one constant value tuple and records the fact it walks as the support
    (``when Reading(kind: "k0", value) emit Seen(kind: "k0")``) written as two list
    extensions, at C speed: the same outputs (the same constant object, as the loop
    appends it) and support, in the same order. 200 such agents on 10,000 readings
    spent a sixth of their run in those loops."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _LOOP.fullmatch(lines[i])
        if m is not None and i + 2 < len(lines):
            indent, fact = m["indent"], m["fact"]
            emitted, sup = lines[i + 1], lines[i + 2]
            const = emitted.removeprefix(f"{indent}    emit(").removesuffix(")")
            if (sup == f"{indent}    sup({fact})" and emitted == f"{indent}    emit({const})"
                    and (i + 3 == len(lines) or not lines[i + 3].startswith(indent + "    "))
                    and _is_literal_tuple(const)):
                out += [f"{indent}# each {fact} emits {const}: outputs and support whole",
                        f"{indent}before = len(support)",
                        f"{indent}support += {m['ids']}",
                        f"{indent}out += [{const}] * (len(support) - before)"]
                i += 3
                continue
        out.append(lines[i])
        i += 1
    return out


def _is_literal_tuple(src: str) -> bool:
    """Whether ``src`` is a tuple of immutable constants only (no name, no list: one
    object can stand for every iteration's)."""
    try:
        value = ast.literal_eval(src)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return type(value) is tuple and _immutable(value)


def _immutable(value: Any) -> bool:
    if type(value) is tuple:
        return all(_immutable(v) for v in value)
    return value is None or type(value) in (str, int, float, bool, bytes, complex)


@dataclass(slots=True)
class Writer:
    """Lines of Python with indentation."""

    lines: list[str] = field(default_factory=list)
    depth: int = 0

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)


@dataclass(frozen=True, slots=True)
class GeneratedAgent:
    source: str
    namespace: dict[str, Any]
    reads: tuple[int, ...]
    negates: tuple[int, ...]
    emits: tuple[int, ...]
    tools: tuple[str, ...]
    aggregates: tuple[int, ...] = ()
    updates: tuple[int, ...] = ()
    unblocks: tuple[int, ...] = ()


@dataclass(slots=True)
class _Guard:
    """Something checked once its names are bound: a ``where`` conjunct (``expr``), a
    negated pattern (``pattern``: no live fact matches it; with ``candidate``, the
    fact whose id that variable holds matches it), or a deferred field constraint
    (field ``position`` of the tuple ``field_of`` equals ``expr``)."""

    deps: set[str]
    expr: Expr | None = None
    pattern: Pattern | None = None
    field_of: str = ""
    position: int = -1
    ordered: bool = False
    visible: frozenset[str] | None = None   # names bound before it in written order
    candidate: str = ""


def conjuncts(expr: Expr | None) -> list[Expr]:
    """The top-level ``and`` operands of a guard, left to right."""
    if expr is None:
        return []
    if isinstance(expr, Binary) and expr.op == "and":
        return conjuncts(expr.left) + conjuncts(expr.right)
    return [expr]


def aggregates_in(exprs: list[Expr | None]) -> list[Aggregate]:
    """Every aggregate in ``exprs``, outermost first, in written order."""
    return [x for e in exprs if e is not None for x in walk_expr(e) if isinstance(x, Aggregate)]


def _dedup(items: list[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(items))


class AgentGenerator:
    """Generates the source of one agent."""

    def __init__(self, agent: Agent, ctx: ProgramContext, *,
                 asynchronous: bool = False) -> None:
        self.agent = agent
        self.ctx = ctx
        # the coroutine variant, ``async def agent``: each tool call is awaited
        # (``await runtime.acall(...)``), so many runs wait on tools on one event loop
        self.asynchronous = asynchronous
        # memo: one call of the agent reads one context, so an aggregate naming
        # nothing of the match is computed once per call
        self.ns = Namespace(memo=True)
        self.positive = [p for p in agent.patterns if not p.negated]
        self.negated = [p for p in agent.patterns if p.negated]
        self.infos: list[PatternInfo] = []
        self.var_names: dict[str, str] = {}     # rule variable → generated local
        self.var_types: dict[str, Any] = {}
        self.binders: dict[str, int] = {}       # whole-fact binder → positive index
        self.aliases: dict[str, str] = {}       # call alias → generated local
        self.counts_outputs = False             # some loop checks len(out)
        self.unblocks: tuple[int, ...] = ()     # AgentSpec.unblocks (set by generate)
        #: the type id when the agent returns its outputs as ``Columns`` (set by generate)
        self.columnar: int | None = None
        # Names bound before each pattern (by index in agent.patterns) and before each
        # expression field of a positive pattern (by positive index and position), in
        # written order: the only names a negated or aggregated pattern there may take
        # as constraints; its other names are its own, as the checker reads them.
        self.visible_at: list[frozenset[str]] = []
        self.field_visible: dict[tuple[int, int], frozenset[str]] = {}
        #: the current pass's loops that look up constants alone (see _pass)
        self._const_lookups: list[str] = []
        self._safe_tests: bool | None = None  # _cannot_raise, once computed
        self._classify()
        self.rule_names = set(self.var_names) | set(self.binders) | set(self.aliases)
        self.needed = self._needed_vars()

    # ------------------------------------------------------------- analysis

    def _spec(self, pattern: Pattern) -> TypeSpec:
        spec = self.ctx.types.get(pattern.type.name)
        if spec is None:
            raise CompileError(f"{pattern.type.span}: unknown type {pattern.type.name!r}")
        return spec

    def _classify(self) -> None:
        visible: set[str] = set()
        for p in self.agent.patterns:
            self.visible_at.append(frozenset(visible))
            if p.negated:
                continue
            k = len(self.infos)
            spec = self._spec(p)
            info = classify(p, spec, self.ctx.enums, lambda n: n in self.var_names, k)
            self.infos.append(info)
            if p.binder is not None:
                self.binders[p.binder.name] = k
                visible.add(p.binder.name)
            for u in info.uses:
                if u.kind == "expr":
                    self.field_visible[(k, u.position)] = frozenset(visible)
                elif u.kind == "var":
                    visible.add(u.name)
                    if u.name not in self.var_names:
                        self.var_names[u.name] = f"v{len(self.var_names)}"
                        self.var_types[u.name] = spec.fields[u.position].type
        for c in self.agent.calls:
            self.aliases[c.alias.name] = f"r{len(self.aliases)}"

    def _needed_vars(self) -> set[str]:
        """Variables the code must bind to a local: those used anywhere but in the one
        field that binds them."""
        counts: dict[str, int] = {}
        for info in self.infos:
            for u in info.uses:
                if u.kind == "var":
                    counts[u.name] = counts.get(u.name, 0) + 1
        needed = {n for n, c in counts.items() if c > 1}
        exprs: list[Expr | None] = list(self.agent.expressions(patterns=False))
        exprs += [u.expr for info in self.infos for u in info.uses if u.kind == "expr"]
        exprs += [fm.value for p in self.negated for fm in p.fields]
        for e in exprs:
            needed |= names_in(e)
        for p in self.negated:
            needed |= {fm.field.name for fm in p.fields if fm.value is None}
        one = self.agent.one_at_a_time
        if one is not None:
            needed |= {k.var.name for k in one.keys if k.var is not None}
        return needed & set(self.var_names)

    # ----------------------------------------------------------- generation

    def generate(self) -> GeneratedAgent:
        body = Writer(depth=1)
        n = len(self.positive)
        aggregates = aggregates_in(list(self.agent.expressions()))
        agg_types = [self._spec(a.pattern).id for a in aggregates]
        negates = _dedup([self._spec(p).id for p in self.negated] + agg_types)
        # the negated types whose removals a run handles incrementally: not those it
        # aggregates over too (an aggregate changes for every match), nor any for a
        # one-at-a-time agent (always run from scratch)
        self.unblocks = () if self.agent.one_at_a_time is not None else _dedup(
            [t for t in (self._spec(p).id for p in self.negated) if t not in agg_types])
        self.columnar = self._columnar_type()
        if n == 0:
            body.line("# no positive pattern: the one match exists from the first run")
            self._pass(body, -1)
        # one at a time: always run with since=0, when pass 0 alone finds every match
        for i in range(1 if self.agent.one_at_a_time is not None and n else n):
            self._pass(body, i)
        reads = _dedup([info.spec.id for info in self.infos])
        if self.unblocks:
            self._unblocked(body)
        emits = _dedup([self.ctx.types[o.type.name].id for o in self.agent.outputs
                        if isinstance(o, (Emit, Intend)) and o.type.name in self.ctx.types])
        tools = _dedup([c.tool.name for c in self.agent.calls])
        # keyed types emitted with an aggregate in a value: re-derived in place
        updates = _dedup([
            self.ctx.types[o.type.name].id for o in self.agent.outputs
            if isinstance(o, Emit) and o.type.name in self.ctx.types
            and self.ctx.types[o.type.name].key_positions
            and aggregates_in([arg.value for arg in o.args])
        ])
        return GeneratedAgent(self._module(body), self.ns.values, reads, negates, emits,
                              tools, _dedup(agg_types), updates, self.unblocks)

    def _columnar_type(self) -> int | None:
        """The type every output emits when the agent can return :class:`Columns`:
        only plain ``emit`` outputs (no confidence, not ``lasting``) of one unkeyed,
        non-intent type, and neither ``one at a time`` (it compares whole outputs)
        nor handed facts gone (it sorts its outputs by their support); else None."""
        outs = self.agent.outputs
        if not outs or self.agent.one_at_a_time is not None or self.unblocks:
            return None
        if not all(isinstance(o, Emit) and o.confidence is None and not o.lasting
                   for o in outs):
            return None
        names = {o.type.name for o in outs if isinstance(o, Emit)}
        spec = self.ctx.types.get(names.pop()) if len(names) == 1 else None
        if spec is None or spec.key_positions or spec.intent:
            return None
        return spec.id

    def _module(self, body: Writer) -> str:
        head = [f"# agent {self.agent.name.name!r} (tier {self.agent.effective_tier}, "
                f"{self.agent.span})"]
        for name, local in self.var_names.items():
            head.append(f"#   {local} = variable {name!r}")
        for name, k in self.binders.items():
            head.append(f"#   f{k}, t{k} = fact bound to {name!r}")
        for name, local in self.aliases.items():
            head.append(f"#   {local} = result of call as {name!r}")
        head += [f"#   {note}" for note in self.ns.notes]
        head.append(("async " if self.asynchronous else "")
                    + ("def agent(view, since, runtime, gone=()):" if self.unblocks
                       else "def agent(view, since, runtime):"))
        pro = ["    vals = view.values"]
        if self.positive:
            pro.append("    new = view.new")
        pro += self.ns.view_locals()
        if self.agent.calls:
            pro.append("    call = runtime.acall" if self.asynchronous
                       else "    call = runtime.call")
        pro += ["    out = []", "    emit = out.append"]
        if self.columnar is not None:
            # columnar outputs (program.Columns): the values, and the support's ids
            # flat, with no tuple per output (in a list: an array's append costs more)
            pro += ["    support = []", "    sup = support.append"]
        if self.counts_outputs:
            pro.append(f"    max_outputs = {self.ctx.budgets.max_facts:_}  # max_facts: "
                       "no run builds more outputs")
        end = ["    return out", ""]
        if self.columnar is not None:
            end = [f"    return _columns({self.columnar}, out, support, "
                   f"{len(self.positive)})", ""]
        if self.agent.one_at_a_time is not None:
            # one at a time: keep the first match, in the declared order, that would
            # change the context; return its outputs alone
            keys = len(self.agent.one_at_a_time.keys)
            name = self.ns.literal(self.agent.name.name)
            pro += [f"    fired = view.fired.get({name}, ())",
                    "    found = False", "    best = out",
                    "    " + " = ".join(f"best{i}" for i in range(keys)) + " = None"]
            end = ["    return best", ""]
        lines = body.lines if self.columnar is None else _whole_constant_loops(body.lines)
        return "\n".join([*head, *pro, *lines, *end])

    def _pass(self, w: Writer, delta: int) -> None:
        ex = ExprCompiler(self.ctx, self.ns)
        bound: set[str] = set()
        guards = self._guards()
        base_depth = w.depth
        if delta < 0:
            w.line("if since == 0:")
            w.depth += 1
            order: list[int] = []
        else:
            w.line(f"# pass {delta}: pattern {delta} ({self.infos[delta].spec.name!r}) "
                   "is new")
            order = plan_pass(self.infos, delta, self.rule_names)
        in_loop = False
        self._const_lookups = []
        start = len(w.lines)
        hoisted = self._take_ready(bound, guards) if order else []
        if hoisted:
            # Guards that use no name of the match (`sum(Q(), amount) > 100.0`) are
            # checked once per pass, before the loops, not once per new fact; and only
            # when the pass has new facts, as they were before (an iterable that is
            # not sized, such as a generator, is always true: the guard then just runs).
            tid = self.infos[delta].spec.id
            w.line(f"d{delta} = new({tid}, since)")
            w.line(f"if d{delta}:")
            w.depth += 1
            for g in hoisted:
                self._guard(w, ex, g, in_loop=False)
        # Outputs are counted once per iteration of the loop around the innermost one
        # (every match is built there): when no test can raise, the loops further out
        # need not count too (a run that would overshoot stops at the end of the pass
        # at the latest, having run tests that cannot fail; Waltz's five-pattern
        # joins spent a twentieth of their time counting). Else every loop but the
        # innermost counts, so that the run stops before a test could fail.
        outer = self._cannot_raise() and len(order) > 2
        for n, k in enumerate(order):
            self._pattern(w, ex, k, delta, bound, guards, delta_local=bool(hoisted),
                          count_outputs=n == len(order) - 2 if outer
                          else n < len(order) - 1)
            in_loop = True
            self._ready_guards(w, ex, bound, guards, in_loop)
        self._ready_guards(w, ex, bound, guards, in_loop)
        self._match_end(w, ex, bound, guards, in_loop)
        w.depth = base_depth
        if outer:
            w.line("if len(out) > max_outputs:")
            w.line("    raise _too_many_outputs(max_outputs)")
        if delta >= 0 and self._const_lookups and self._cannot_raise():
            self._skip_unless_present(w, start, base_depth)

    def _skip_unless_present(self, w: Writer, start: int, depth: int) -> None:
        """Wrap the pass written from line ``start`` in a check that every pattern it
        looks up by constants alone has a fact: ``Stage(value: labeling)`` joined
        innermost to every new ``Edge`` is looked up once, not once per new edge, and
        when there is no such stage the new edges are not walked at all; nor when the
        stage is new itself, in a pass where it must be old (Waltz: every pass but the
        stage's own walked the new edges in the stage's first cycle, for nothing). The same
        matches in the same order: with a bucket empty the pass finds none, and
        (``_cannot_raise``) nothing it skips could fail; it still runs when the run
        has too many outputs already, to stop as it did."""
        checks = " and ".join(dict.fromkeys(self._const_lookups))
        if self.counts_outputs:
            checks = f"({checks}) or len(out) > max_outputs"
        w.lines[start:] = ["    " * depth + f"if {checks}:",
                           *("    " + line for line in w.lines[start:])]

    def _cannot_raise(self) -> bool:
        """True when no test of a match can raise: every pattern field, negated pattern
        and ``where`` part is made of names, constants, ``==``, ``!=``, ``and``, ``or``,
        ``not``, ``if``, counts, minima and maxima, and orderings of numbers (no
        arithmetic, no calls)."""
        if self._safe_tests is None:
            self._safe_tests = self._tests_cannot_raise()
        return self._safe_tests

    def _number(self, e: Expr) -> bool:
        """Whether ``e`` is a number that orders against any other without raising: an
        int or float literal, or a variable of a required int or float field."""
        if isinstance(e, Literal):
            return type(e.value) in (int, float)
        if isinstance(e, Name):
            vt = self.var_types.get(e.id)
            return vt is not None and vt.base in ("int", "float") and not vt.optional
        return False

    def _tests_cannot_raise(self) -> bool:
        exprs: list[Expr] = [fm.value for p in self.agent.patterns for fm in p.fields
                  if fm.value is not None]
        if self.agent.where is not None:
            exprs.append(self.agent.where)
        for e in exprs:
            for x in walk_expr(e):
                if isinstance(x, Binary) and x.op not in ("==", "!=", "and", "or") and not (
                        x.op in ("<", "<=", ">", ">=") and self._number(x.left)
                        and self._number(x.right)):
                    return False
                if isinstance(x, Unary) and x.op != "not":
                    return False
                if isinstance(x, Aggregate) and x.func not in ("count", "min", "max"):
                    return False
                if not isinstance(x, (Literal, Name, Attribute, Binary, Unary, IfExpr,
                                      Aggregate)):
                    return False
        return True

    def _match_end(self, w: Writer, ex: ExprCompiler, bound: set[str],
                   guards: list[_Guard], in_loop: bool) -> None:
        """Once every pattern is bound: the calls, the guards left, the outputs."""
        for c in self.agent.calls:
            args = ", ".join(f"{self.ns.literal(a.name.name)}: {ex.code(a.value)}"
                             for a in c.args)
            local = self.aliases[c.alias.name]
            wait = "await " if self.asynchronous else ""
            w.line(f"{local} = {wait}call({self.ns.literal(c.tool.name)}, {{{args}}})")
            ex.scope[c.alias.name] = ToolRef(local, self.ctx.tool_times.get(c.tool.name, {}))
            bound.add(c.alias.name)
            self._ready_guards(w, ex, bound, guards, in_loop)
        if guards:
            names = sorted(set().union(*(g.deps for g in guards)) - bound)
            raise CompileError(f"{self.agent.span}: agent {self.agent.name.name!r} uses "
                               f"names no pattern binds: {', '.join(names)}")
        self._outputs(w, ex)

    def _unblocked(self, w: Writer) -> None:
        """The part of a run handed the facts ``gone`` (see ``program.py``): one pass per
        negated pattern over the removed facts of its type. A removed fact matching
        the negated pattern binds the names they share; the positive patterns are
        joined on old facts only (new ones are the semi-naive passes' business); a
        match that no live fact blocks now was blocked by that fact before, so it is
        new. A match blocked by several facts gone is found once per fact: ``done``
        keeps it to one. Then every output of the run is put in the order a run from
        scratch gives (pass 0's loops), so fact ids and the trace come out as they
        did when such a run started over."""
        base_depth = w.depth
        w.line("if gone:")
        w.depth += 1
        w.line("done = set()")
        support = tuple_src([f"f{k}" for k in range(len(self.positive))])
        for j, pattern in enumerate(self.negated):
            tid = self._spec(pattern).id
            if tid in self.unblocks:
                self._unblocked_pass(w, j, pattern, self.unblocks.index(tid), support)
        if self.positive:
            order = plan_pass(self.infos, 0, self.rule_names)
            key = "o[4]" if order == sorted(order) else tuple_src(
                [f"o[4][{k}]" for k in order])
            w.line("# the order of a run from scratch: pass 0's loops, outermost first")
            w.line(f"out.sort(key=lambda o: {key})")
        w.depth = base_depth

    def _unblocked_pass(self, w: Writer, j: int, pattern: Pattern, slot: int,
                        support: str) -> None:
        ex = ExprCompiler(self.ctx, self.ns)
        bound: set[str] = set()
        guards = self._guards()
        visible = next(g.visible for g in guards if g.pattern is pattern)
        assert visible is not None
        deps = next(g.deps for g in guards if g.pattern is pattern)
        # first of all: the fact gone matches the negated pattern (it blocked the match)
        guards.insert(0, _Guard(set(deps), pattern=pattern, visible=visible,
                                candidate=f"n{j}"))
        spec = self._spec(pattern)
        base_depth = w.depth
        w.line(f"# negated pattern {j} ({spec.name!r}): matches its facts gone unblock")
        w.line(f"for n{j} in gone[{slot}]:")
        w.depth += 1
        if self.positive:
            self.counts_outputs = True
            w.line("if len(out) > max_outputs:")
            w.line("    raise _too_many_outputs(max_outputs)")
        info = classify(pattern, spec, self.ctx.enums,
                        lambda name: name in visible and name in self.var_names)
        binds: list[tuple[str, int]] = []
        # bound from the fact gone, to look the positive facts up by; a float or list
        # value is equal to the positive fact's, maybe not the same (-0.0): the
        # positive pattern binds it again, and guards wait for that
        pending: set[str] = set()
        for u in info.uses:
            vt = self.var_types.get(u.name)
            if u.kind == "var" and u.name in visible and vt is not None \
                    and u.name not in bound and _same_base(vt, spec.fields[u.position].type):
                bound.add(u.name)
                binds.append((self.var_names[u.name], u.position))
                ex.scope[u.name] = Var(self.var_names[u.name], vt)
                if vt.base not in _EXACT:
                    pending.add(u.name)
        if binds:
            w.line(f"u{j} = vals[n{j}]")
            for local, pos in binds:
                w.line(f"{local} = u{j}[{pos}]")
        self._ready_guards(w, ex, bound - pending, guards, True)
        order = plan_from(self.infos, bound, self.rule_names)
        for n, k in enumerate(order):
            self._pattern(w, ex, k, -1, bound, guards, count_outputs=n < len(order) - 1,
                          gone_of=spec.id, rebind=pending)
            self._ready_guards(w, ex, bound - pending, guards, True)
        assert not pending, "a rule variable no positive pattern binds"
        w.line(f"if {support} in done:")
        w.line("    continue")
        w.line(f"done.add({support})")
        self._match_end(w, ex, bound, guards, True)
        w.depth = base_depth

    def _guards(self) -> list[_Guard]:
        out = [_Guard(names_in(c) & self.rule_names, expr=c, ordered=True)
               for c in conjuncts(self.agent.where)]
        for p, visible in zip(self.agent.patterns, self.visible_at, strict=True):
            if not p.negated:
                continue
            deps: set[str] = set()
            for fm in p.fields:
                deps |= {fm.field.name} if fm.value is None else names_in(fm.value)
            out.append(_Guard(deps & visible, pattern=p, visible=visible))
        return out

    @staticmethod
    def _take_ready(bound: set[str], guards: list[_Guard]) -> list[_Guard]:
        """Remove and return the guards whose names are all bound, in order; a ``where``
        conjunct waits for every earlier one (it may rely on them: ``n != 0 and
        x / n > 1``)."""
        ready: list[_Guard] = []
        blocked_order = False
        for g in list(guards):
            if g.ordered and blocked_order:
                continue
            if not g.deps <= bound:
                if g.ordered:
                    blocked_order = True
                continue
            guards.remove(g)
            ready.append(g)
        return ready

    def _ready_guards(self, w: Writer, ex: ExprCompiler, bound: set[str],
                      guards: list[_Guard], in_loop: bool) -> None:
        for g in self._take_ready(bound, guards):
            self._guard(w, ex, g, in_loop)

    def _guard(self, w: Writer, ex: ExprCompiler, g: _Guard, in_loop: bool) -> None:
        if g.candidate:
            assert g.pattern is not None
            cond = ex.candidate(g.pattern, g.candidate, g.visible)
            if cond is not None:
                self._check(w, f"({cond})", in_loop)
        elif g.pattern is not None:
            self._skip_if(w, ex.negation(g.pattern, g.visible), in_loop)
        elif g.field_of:
            assert g.expr is not None
            self._check(w, f"({g.field_of}[{g.position}] == {ex.code(g.expr, g.visible)})",
                        in_loop)
        elif isinstance(g.expr, Binary) and g.expr.op in ("==", "!="):
            # `where a != b` reads better as `if a == b: continue`
            flipped = Binary("==" if g.expr.op == "!=" else "!=", g.expr.left,
                             g.expr.right, g.expr.span)
            self._skip_if(w, ex.condition(flipped), in_loop)
        elif isinstance(g.expr, Unary) and g.expr.op == "not":
            # `where not X`: skip when X holds, without a double negation
            self._skip_if(w, ex.condition(g.expr.operand), in_loop)
        else:
            assert g.expr is not None
            self._check(w, ex.condition(g.expr), in_loop)

    def _pattern(self, w: Writer, ex: ExprCompiler, k: int, delta: int, bound: set[str],
                 guards: list[_Guard], delta_local: bool = False,
                 count_outputs: bool = False, gone_of: int | None = None,
                 rebind: set[str] | None = None) -> None:
        """Loop over pattern ``k`` in pass ``delta``; ``gone_of`` is the negated type
        whose facts gone drive the pass instead (every pattern on old facts only).
        ``rebind``: variables bound from a fact gone whose value this pattern's fact
        gives instead (equal, maybe not the same: ``0.0`` and ``-0.0``); each is
        taken out of the set once rebound."""
        info = self.infos[k]
        tid = info.spec.id
        keyed = [] if k == delta else constrained(info, bound, self.rule_names)
        by_table = False
        if k == delta and not delta_local and self.ctx.route and (routed := routes(info)):
            # routing by constants: only the new facts in the bucket of the constants'
            # index can match, so the others are never looked at (same ids, same order)
            keyed = routed
            ix = self.ns.index(self.ctx.index(tid, tuple(u.position for u in routed), tid))
            key = key_src([self._use(ex, u, k) for u in routed])
            w.line(f"for f{k} in _delta({ix}.get({key}), since):")
        elif k == delta:
            source = f"d{k}" if delta_local else f"new({tid}, since)"
            w.line(f"for f{k} in {source}:")
        elif keyed and self._by_whole_key(info, keyed):
            # the one live fact holding a key: looked up in the type's key table (which
            # the merge keeps anyway), not iterated out of a bucket of the index on the
            # key — no index to keep through every update, no 1-tuple per fact, no
            # iterator per lookup. Nothing follows this block in the loop around it (the
            # delta pattern's, at least), so its checks' `continue` skip as in a loop
            keyed = self._by_key(info, keyed)
            ordered = sorted(keyed, key=lambda u: u.position)
            key = key_src([self._use(ex, u, k) for u in ordered])
            w.line(f"f{k} = {self.ns.key_table(tid)}.get({key})")
            w.line(f"if f{k} is not None and f{k} < since:" if k < delta or gone_of is not None
                   else f"if f{k} is not None:")
            by_table = True
        elif keyed:
            keyed = self._by_key(info, keyed)
            ordered = sorted(keyed, key=lambda u: u.position)
            driver = (gone_of if gone_of is not None
                      else self.infos[delta].spec.id if delta >= 0 else None)
            ix = self.ns.index(self.ctx.index(tid, tuple(u.position for u in ordered),
                                              driver))
            parts = [self._use(ex, u, k) for u in ordered]
            key = key_src(parts)
            if all(u.kind == "const" for u in ordered) and gone_of is None:
                # a pattern before the new one matches old facts only (``f < since``):
                # the pass needs an old fact in the bucket, not just any fact
                lookup = f"{ix}.get({key})"
                self._const_lookups.append(f"_old({lookup}, since)" if k < delta
                                           else lookup)
            w.line(f"for f{k} in {ix}.get({key}, ()):")
        else:
            w.line(f"for f{k} in {self.ns.live(tid)}:")
        w.depth += 1
        if (k < delta or gone_of is not None) and not by_table:
            w.line(f"if f{k} >= since:")
            w.line("    break")
        if count_outputs:
            # once per iteration of an outer loop, never per output: a run that would
            # build millions of matches stops within one innermost loop of max_facts
            self.counts_outputs = True
            w.line("if len(out) > max_outputs:")
            w.line("    raise _too_many_outputs(max_outputs)")
        checks: list[str] = []
        binds: list[tuple[str, int]] = []
        first: dict[str, int] = {}
        deferred: list[tuple[set[str], Expr, int]] = []
        for u in info.uses:
            if rebind and u.kind == "var" and u.name in rebind:
                rebind.discard(u.name)
                binds.append((self.var_names[u.name], u.position))
            if u in keyed:
                continue
            if u.kind == "var":
                if u.name in bound:
                    checks.append(f"t{k}[{u.position}] != {self._use(ex, u, k)}")
                elif u.name in first:
                    checks.append(f"t{k}[{u.position}] != t{k}[{first[u.name]}]")
                else:
                    first[u.name] = u.position
                    if u.name in self.needed:
                        binds.append((self.var_names[u.name], u.position))
            elif u.kind == "const":
                checks.append(f"t{k}[{u.position}] != {self._use(ex, u, k)}")
            else:
                assert u.expr is not None
                visible = self.field_visible[(k, u.position)]
                deps = names_in(u.expr) & visible
                if deps <= bound:
                    checks.append(f"t{k}[{u.position}] != {ex.code(u.expr, visible)}")
                else:
                    deferred.append((deps, u.expr, u.position))
        binder = info.pattern.binder
        arity = len(info.spec.fields)
        if checks or binder is not None or deferred:
            w.line(f"t{k} = vals[f{k}]")
            for c in checks:
                w.line(f"if {c}:")
                w.line("    continue")
            for local, pos in binds:
                w.line(f"{local} = t{k}[{pos}]")
        elif len(binds) == 1:
            w.line(f"{binds[0][0]} = vals[f{k}][{binds[0][1]}]")
        elif binds and arity <= 8:
            # one unpacking is cheaper than a subscript per field
            targets = dict.fromkeys(range(arity), "_")
            targets.update({pos: local for local, pos in binds})
            w.line(", ".join(targets.values()) + f" = vals[f{k}]")
        elif binds:
            w.line(f"t{k} = vals[f{k}]")
            for local, pos in binds:
                w.line(f"{local} = t{k}[{pos}]")
        for name in first:
            bound.add(name)
            ex.scope[name] = Var(self.var_names[name], self.var_types[name])
        if binder is not None:
            bound.add(binder.name)
            ex.scope[binder.name] = FactRef(f"t{k}", f"f{k}", info.spec)
        for deps, expr, pos in deferred:
            # An expression constraint on a fact found before the names it uses: check
            # it as a guard once they are bound.
            guards.append(_Guard(deps, expr=expr, field_of=f"t{k}", position=pos,
                                 visible=self.field_visible[(k, pos)]))

    def _by_whole_key(self, info: PatternInfo, keyed: list[FieldUse]) -> bool:
        """Whether pattern ``info`` is looked up by its whole key (:meth:`_by_key` of
        the constrained ``keyed``), not by constants alone, in an agent compiled with
        routing: then through the key table, which holds the one live fact of a key
        (a fact type: an intent's key may be held by a closed intent too)."""
        spec = info.spec
        if not (self.ctx.route and spec.key_positions and not spec.intent):
            return False
        uses = self._by_key(info, keyed)
        return (sorted(u.position for u in uses) == list(spec.key_positions)
                and not all(u.kind == "const" for u in uses))

    @staticmethod
    def _by_key(info: PatternInfo, keyed: list[FieldUse]) -> list[FieldUse]:
        """The uses to look pattern ``info`` up by, of the constrained ``keyed``: its
        type's key alone when all of it is constrained (one live fact at most holds a
        key), the other fields then checked on that fact — so a keyed type needs no
        index per combination of fields its patterns constrain, each of which every
        update of the type would maintain. Likewise the bound part of a key of several
        fields (``Edge(p1: base, p2, joined: false)`` looks the few edges from ``base``
        up, as ``Edge(p1: base, p2)`` does, and checks ``joined``): the facts sharing a
        part of a key are few. Only for constants and bound names in fields compared
        exactly (an index and ``!=`` agree on them: not floats, NaN); an expression
        keeps its place in the key (evaluated once, before the lookup)."""
        key = info.spec.key_positions
        if not key:
            return keyed
        part = [u for u in keyed if u.position in key]
        if len(part) == len(keyed) or not (
                len(part) == len(key) or any(u.kind == "var" for u in part)):
            return keyed
        rest = [u for u in keyed if u.position not in key]
        if any(u.kind == "expr" or info.spec.fields[u.position].type.base not in _EXACT
               for u in rest):
            return keyed
        return part

    def _use(self, ex: ExprCompiler, u: FieldUse, k: int) -> str:
        if u.kind == "const":
            return self.ns.literal(u.value)
        if u.kind == "var":
            return self.var_names[u.name]
        assert u.expr is not None
        return ex.code(u.expr, self.field_visible[(k, u.position)])

    def _check(self, w: Writer, cond: str, in_loop: bool) -> None:
        if in_loop:
            w.line(f"if not {cond}:")
            w.line("    continue")
        else:
            w.line(f"if {cond}:")
            w.depth += 1

    def _skip_if(self, w: Writer, cond: str, in_loop: bool) -> None:
        if in_loop:
            w.line(f"if {cond}:")
            w.line("    continue")
        else:
            w.line(f"if not {cond}:")
            w.depth += 1

    def _unit(self, ex: ExprCompiler, expr: Expr, what: str) -> str:
        """Code for a confidence or score: a literal was checked to be in 0..1; a
        computed one is checked when it is computed (``_unit``)."""
        code = ex.coerced(expr, _FLOAT)
        if isinstance(expr, Literal):
            return code
        return f"_unit({code}, {self.ns.literal(what)})"

    def _order_key(self, support: str) -> list[tuple[str, str]]:
        """A ``one at a time`` agent's order as (source of the match's value, ``<`` or
        ``>``: the operator by which a value comes first), one per criterion."""
        one = self.agent.one_at_a_time
        assert one is not None
        parts: list[tuple[str, str]] = []
        for k in one.keys:
            if k.var is None:
                # earliest: oldest facts first; latest: newest first
                parts.append((f"_recency({support})", "<" if k.direction == "earliest"
                              else ">"))
                continue
            code = self.var_names[k.var.name]
            vt = self.var_types[k.var.name]
            if vt.base == "enum":
                # members in declared order, not by name
                code = f"{self.ns.constant(vt.members)}.index({code})"
            parts.append((code, "<" if k.direction == "lowest" else ">"))
        return parts

    @staticmethod
    def _first(parts: list[tuple[str, str]], i: int = 0) -> str:
        """Source of "this match comes before the best so far" (``best0``, ``best1``…
        hold the best's values): compared one criterion at a time, so a later value is
        only computed on a tie of the earlier ones."""
        code, op = parts[i]
        if i == len(parts) - 1:
            return f"{code} {op} best{i}"
        return f"({code} {op} best{i} or ({code} == best{i} and " \
               f"{AgentGenerator._first(parts, i + 1)}))"

    def _outputs(self, w: Writer, ex: ExprCompiler) -> None:
        support = tuple_src([f"f{k}" for k in range(len(self.positive))])
        sink = "emit"
        order = self._order_key(support) if self.agent.one_at_a_time is not None else []
        if order:
            # a match it fired already is never fired again, whatever became of it
            w.line(f"if {support} not in fired and (not found or {self._first(order)}):")
            w.depth += 1
            w.line("step = []")
            sink = "step.append"
        lasting = "_lasting(" + support + ")"
        if self.columnar is None and sum(
                isinstance(out, Emit) and out.lasting for out in self.agent.outputs) > 1:
            # one support for the match's outputs, not one each (immutable: shared)
            w.line(f"rests = {lasting}")
            lasting = "rests"
        for out in self.agent.outputs:
            if isinstance(out, Emit) and self.columnar is not None:
                w.line(f"emit({self._values(ex, out.type.name, out.args)})")
                for k in range(len(self.positive)):
                    w.line(f"sup(f{k})")
            elif isinstance(out, Emit):
                values = self._values(ex, out.type.name, out.args)
                conf = "1.0" if out.confidence is None else self._unit(
                    ex, out.confidence, f"the confidence of {out.type.name}")
                rests = lasting if out.lasting else support
                w.line(f"{sink}(({EMIT}, {self._tid(out.type.name)}, {values}, {conf}, "
                       f"{rests}))")
            elif isinstance(out, Intend):
                values = self._values(ex, out.type.name, out.args)
                w.line(f"{sink}(({INTEND}, {self._tid(out.type.name)}, {values}, 1.0, "
                       f"{support}))")
            elif isinstance(out, Evaluate):
                b = ex.scope.get(out.target.name)
                if not isinstance(b, FactRef):
                    raise CompileError(f"{out.target.span}: evaluate needs a whole-fact "
                                       f"binder, {out.target.name!r} is not one")
                score = self._unit(ex, out.score, "the score")
                reason = self.ns.literal(out.reason)
                w.line(f"{sink}(({EVALUATE}, {b.fact_id}, {score}, {reason}, {support}))")
        if order:
            w.line("if _changes(view, step):")
            w.line("    found = True")
            for i, (code, _) in enumerate(order):
                w.line(f"    best{i} = {code}")
            w.line("    best = step")
            w.depth -= 1

    def _sized(self, code: str, vt: ValueType, name: str) -> str:
        """``code`` measured against the value-size budgets when ``vt`` is ``str`` or
        ``list`` (the only values that can grow without bound); other types as is."""
        budgets = self.ctx.budgets
        if vt.base == "str":
            return f"_sized_str({code}, {budgets.max_string_length:_}, {name})"
        if vt.base == "list":
            element = vt.element
            strings = (f", {budgets.max_string_length:_}"
                       if element is not None and element.base == "str" else "")
            return f"_sized_list({code}, {budgets.max_list_length:_}, {name}{strings})"
        return code

    def _finite(self, ex: ExprCompiler, code: str, vt: ValueType, value: Expr,
                name: str) -> str:
        """``code`` checked to be finite when ``vt`` is ``float`` or a list of floats:
        computed numbers may overflow to infinity or be NaN, and a fact holds finite
        numbers only (NaN never equals itself, so it would be re-derived every
        cycle). Other types as is."""
        element = vt.element
        if vt.base != "float" and (element is None or element.base != "float"):
            return code
        if vt.base == "float" and (not vt.optional or not ex.kind(value).nullable):
            # A number that cannot be none is checked inline, cheaply: x - x is 0
            # for every finite x, NaN for infinity and NaN.
            return f"(x0 if (x0 := {code}) - x0 == 0 else _finite(x0, {name}))"
        return f"_finite({code}, {name})"

    def _may_hold_none(self, ex: ExprCompiler, expr: Expr) -> bool:
        """Whether the list ``expr`` may hold a none item: a list literal with an item
        that may be none, or a join or ``if`` of such a list. A list from a fact or a
        tool answer was checked item by item already."""
        if isinstance(expr, ListExpr):
            return any(ex.kind(item).nullable for item in expr.items)
        if isinstance(expr, IfExpr):
            return self._may_hold_none(ex, expr.then) \
                or self._may_hold_none(ex, expr.otherwise)
        if isinstance(expr, Binary) and expr.op == "+":
            return self._may_hold_none(ex, expr.left) or self._may_hold_none(ex, expr.right)
        return False

    def _copied(self, ex: ExprCompiler, expr: Expr) -> bool:
        """Whether ``expr`` only copies values that were measured already: a literal,
        a pattern variable, a field of a bound fact, an enum member, or a list
        literal or ``if`` of those. A computed value (``s + s``, a call, a tool
        result) is not."""
        if isinstance(expr, Literal):
            return True
        if isinstance(expr, Name):
            return not isinstance(ex.scope.get(expr.id), ToolRef)
        if isinstance(expr, Attribute):
            inner = expr.value
            return isinstance(inner, Name) and (
                isinstance(ex.scope.get(inner.id), FactRef)
                or (inner.id not in ex.scope and inner.id in self.ctx.enums))
        if isinstance(expr, ListExpr):
            return all(self._copied(ex, item) for item in expr.items)
        if isinstance(expr, IfExpr):
            return self._copied(ex, expr.then) and self._copied(ex, expr.otherwise)
        return False

    def _tid(self, name: str) -> int:
        spec = self.ctx.types.get(name)
        if spec is None:
            raise CompileError(f"{self.agent.span}: unknown type {name!r}")
        return spec.id

    def _values(self, ex: ExprCompiler, type_name: str, args: tuple[Arg, ...]) -> str:
        spec = self.ctx.types[type_name]
        given = {a.name.name: a for a in args}
        unknown = set(given) - set(spec.field_names)
        if unknown:
            a = given[sorted(unknown)[0]]
            raise CompileError(f"{a.name.span}: {spec.name} has no field {a.name.name!r}")
        parts = []
        for f in spec.fields:
            arg = given.get(f.name)
            if arg is not None:
                name = self.ns.literal(spec.name + "." + f.name)
                if ex.kind(arg.value).base is None:
                    # An untyped value (a tool result, a plugin function's result):
                    # check it against the field at run time, so a fact never holds a
                    # value of another type.
                    vt = self.ns.constant(f.type)
                    code = f"_typed({ex.code(arg.value)}, {vt}, {name})"
                else:
                    code = ex.coerced(arg.value, f.type)
                    if not f.type.optional and ex.kind(arg.value).nullable:
                        # An optional value or an aggregate over nothing must not slip
                        # a none into a required field.
                        code = f"_required({code}, {name})"
                    if not self._copied(ex, arg.value):
                        code = self._finite(ex, code, f.type, arg.value, name)
                if not self._copied(ex, arg.value):
                    code = self._sized(code, f.type, name)
                if f.type.element is not None and not f.type.element.optional \
                        and self._may_hold_none(ex, arg.value):
                    # `[note]` with an optional note: a list[str] must not hold a none
                    code = f"_items_required({code}, {name})"
                parts.append(code)
            elif f.default is not MISSING:
                parts.append(self.ns.literal(f.default))
            elif f.type.optional:
                parts.append("None")
            else:
                raise CompileError(f"{self.agent.span}: {spec.name}({f.name}) has no value "
                                   "and no default")
        return tuple_src(parts)



_FLOAT = ValueType("float")

#: bases whose equal values are the same value (an int is never a bool here, a str
#: never anything else); not float (0.0 == -0.0) nor list (of floats)
_EXACT = frozenset({"str", "int", "bool", "enum", "date", "datetime", "duration"})


class InvariantGenerator(AgentGenerator):
    """A ``never`` invariant as generated code: the agent of its patterns and guard
    (``Invariant.as_agent``) whose one output per match is the match's support."""

    def _outputs(self, w: Writer, ex: ExprCompiler) -> None:
        w.line(f"emit({tuple_src([f'f{k}' for k in range(len(self.positive))])})")


def _same_base(a: ValueType, b: ValueType) -> bool:
    """Whether a variable of type ``a`` may take its value from a field of type ``b``
    it equals, to look facts up by: a pass driven by facts gone binds a rule's
    variable from the fact gone only when the types agree (an int field never gives
    a float variable ``1.0`` for ``1``)."""
    return a.base == b.base and a.enum == b.enum and str(a).rstrip("?") == str(b).rstrip("?")
