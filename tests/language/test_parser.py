"""parse(): the syntax tree it builds, its spans, comments and its syntax diagnostics."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from converge_rules.language.syntax import nodes as n
from converge_rules.language.syntax.parser import ParseResult, parse
from converge_rules.language.syntax.span import UNKNOWN_SPAN, Span


class _WithoutSpans:
    """``t.Ident("x")`` builds ``n.Ident("x", span=UNKNOWN_SPAN)``: spans take no part in
    equality, so expected trees need not spell them out."""

    def __getattr__(self, name: str) -> Any:
        return functools.partial(getattr(n, name), span=UNKNOWN_SPAN)


t = _WithoutSpans()
HEADER = 'ruleset t "test"\n'


def ok(text: str) -> n.Module:
    result = parse(text, "t.cvg")
    assert result.diagnostics == (), [f"{d.span} {d.code} {d.message}" for d in result.diagnostics]
    assert result.module is not None
    return result.module


def item(body: str) -> n.Item:
    module = ok(HEADER + body)
    assert len(module.items) == 1
    return module.items[0]


def expr(source: str) -> n.Expr:
    root = item(f'root "g" {{\n  require {source}\n}}\n')
    assert isinstance(root, n.Root)
    return root.requires[0].condition


def codes(text: str) -> list[str]:
    return [d.code for d in parse(text, "t.cvg").diagnostics]


# ------------------------------------------------------------------------ items


def test_header_name_and_title() -> None:
    module = ok('ruleset pricing "Competitive prices"\n')
    assert module.header == t.RulesetDecl(t.Ident("pricing"), "Competitive prices")
    assert ok("ruleset bare\n").header == t.RulesetDecl(t.Ident("bare"), None)


def test_import_and_uses() -> None:
    module = ok(HEADER + 'import "lib/common.cvg"\nuses tool fx_rate, geo\n')
    assert module.items == (
        t.Import("lib/common.cvg"),
        t.Uses((t.Ident("fx_rate"), t.Ident("geo"))),
    )


def test_root_budgets_keep_ints_floats_and_durations() -> None:
    root = item('root "goal" {\n max_facts = 50_000\n agent_timeout = 250ms\n'
                ' job_timeout = 2s\n slow = 5m\n ratio = 0.5\n require true\n}\n')
    assert isinstance(root, n.Root)
    values = [b.value for b in root.budgets]
    assert values == [t.Literal(50_000, ""), t.Duration(250, ""), t.Duration(2000, ""),
                      t.Duration(300_000, ""), t.Literal(0.5, "")]
    assert [v.text for v in values] == ["50_000", "250ms", "2s", "5m", "0.5"]
    first = values[0]
    assert isinstance(first, n.Literal) and type(first.value) is int
    assert root.requires == (t.Require(t.Literal(True, "true")),)


def test_enum_and_fact_fields() -> None:
    module = ok(HEADER + "enum Channel { web, store, marketplace }\n"
                'fact Quote { key sku: str, tags: list[str], note: str? = "x", n: int = 1_0 }\n'
                "intent Need { currency: str }\n")
    enum, fact, intent = module.items
    assert enum == t.EnumDecl(t.Ident("Channel"),
                              (t.Ident("web"), t.Ident("store"), t.Ident("marketplace")))
    assert isinstance(fact, n.FactDecl) and not fact.intent
    assert [f.name.name for f in fact.keys] == ["sku"]
    assert fact.fields[1].type == t.TypeRef("list", (t.TypeRef("str", (), False),), False)
    assert fact.fields[2].type == t.TypeRef("str", (), True)
    assert fact.fields[2].default == t.Literal("x", '"x"')
    assert fact.fields[3].default == t.Literal(10, "1_0")
    assert isinstance(intent, n.FactDecl) and intent.intent


def test_agent_with_every_part() -> None:
    agent = item(
        "agent a tier 2 {\n"
        "  when p: Price(sku, amount: cost) and not Alert(sku) and intent Need(currency: _, x: 1)\n"
        "  where cost > 1\n"
        "  call fx(currency: sku) as rate\n"
        "  emit Price(sku: sku, amount: rate.usd) confidence 0.5\n"
        "  intend Need(x: 2)\n"
        '  evaluate p score 0.0 reason "low"\n'
        "}\n")
    assert isinstance(agent, n.Agent)
    assert agent.tier == 2
    price, alert, need = agent.patterns
    assert price.binder == t.Ident("p")
    assert price.fields == (t.FieldMatch(t.Ident("sku"), None),
                            t.FieldMatch(t.Ident("amount"), t.Name("cost")))
    assert alert.negated and not alert.intent
    assert need.intent and not need.negated
    assert need.fields[0] == t.FieldMatch(t.Ident("currency"), t.Wildcard())
    assert agent.where == t.Binary(">", t.Name("cost"), t.Literal(1, "1"))
    assert agent.calls == (t.ToolCall(t.Ident("fx"), (t.Arg(t.Ident("currency"), t.Name("sku")),),
                                      t.Ident("rate")),)
    emit, intend, evaluate = agent.outputs
    assert emit == t.Emit(t.Ident("Price"), (
        t.Arg(t.Ident("sku"), t.Name("sku")),
        t.Arg(t.Ident("amount"), t.Attribute(t.Name("rate"), t.Ident("usd"))),
    ), t.Literal(0.5, "0.5"))
    assert intend == t.Intend(t.Ident("Need"), (t.Arg(t.Ident("x"), t.Literal(2, "2")),))
    assert evaluate == t.Evaluate(t.Ident("p"), t.Literal(0.0, "0.0"), "low")


def test_agent_without_tier() -> None:
    agent = item("agent a { when A(x) emit B(x: x) }\n")
    assert isinstance(agent, n.Agent)
    assert agent.tier is None and agent.effective_tier == n.DEFAULT_TIER


@pytest.mark.parametrize(("source", "strategy", "tie"), [
    ("resolve by highest confidence, then lowest amount\n on tie reject",
     t.Resolve((t.ByField("highest", t.Ident("confidence")),
                t.ByField("lowest", t.Ident("amount")))), t.OnTie("reject")),
    ("resolve by highest score, latest, earliest", t.Resolve((
        t.ByField("highest", t.Ident("score")), t.ByCycle("latest"), t.ByCycle("earliest"))),
     None),
    ("resolve by priority [a, b], then majority, then using vote on tie first", t.Resolve((
        t.ByPriority((t.Ident("a"), t.Ident("b"))), t.ByMajority(),
        t.ByResolver(t.Ident("vote")))), t.OnTie("first")),
    ("combine sum amount on tie latest", t.Combine("sum", t.Ident("amount")), t.OnTie("latest")),
    ("combine mean amount", t.Combine("mean", t.Ident("amount")), None),
    ("keep all", t.KeepAll(), None),
    ("reject", t.RejectAll(), None),
])
def test_policy_forms(source: str, strategy: n.Strategy, tie: n.OnTie | None) -> None:
    assert item(f"policy Price {{ {source} }}\n") == t.Policy(t.Ident("Price"), strategy, tie)


def test_prune_and_test_steps() -> None:
    module = ok(HEADER + "prune Quote when age > 5\n"
                'test "t" {\n given Cost(sku: "A1")\n'
                ' mock tool fx_rate(currency: "EUR") returns {usd: 1.1}\n'
                ' expect Price(sku: "A1")\n expect no Alert()\n'
                ' expect conflict Price(sku: "A1")\n expect status converged\n}\n')
    prune, test = module.items
    assert prune == t.Prune(t.Ident("Quote"), t.Binary(">", t.Name("age"), t.Literal(5, "5")))
    assert isinstance(test, n.Test)
    given, mock, fact, no, conflict, status = test.steps
    assert given == t.Given(t.Ident("Cost"), (t.Arg(t.Ident("sku"), t.Literal("A1", "")),))
    assert mock == t.Mock(t.Ident("fx_rate"), (t.Arg(t.Ident("currency"), t.Literal("EUR", "")),),
                          t.Record((t.Arg(t.Ident("usd"), t.Literal(1.1, "")),)))
    assert isinstance(fact, n.ExpectFact) and not fact.negated
    assert isinstance(no, n.ExpectFact) and no.negated
    assert isinstance(conflict, n.ExpectConflict)
    assert status == t.ExpectStatus(t.Ident("converged"))


def test_domain_words_work_as_field_names() -> None:
    module = ok(HEADER + "fact F { score: float, reason: str, message: str, age: int,"
                " status: str, count: int, latest: bool, tier: int, all: int }\n"
                "agent a { when F(score, reason, count, tier: t) where score > count "
                "emit F(score: score, reason: reason, message: \"m\", age: 1, status: \"s\","
                " count: count, latest: true, tier: t, all: 0) }\n")
    fact = module.items[0]
    assert isinstance(fact, n.FactDecl)
    assert [f.name.name for f in fact.fields][:4] == ["score", "reason", "message", "age"]


# ------------------------------------------------------------------ expressions


def test_precedence() -> None:
    one, two, three = (t.Literal(i, str(i)) for i in (1, 2, 3))
    assert expr("1 + 2 * 3") == t.Binary("+", one, t.Binary("*", two, three))
    assert expr("(1 + 2) * 3") == t.Binary("*", t.Binary("+", one, two), three)
    assert expr("1 - 2 - 3") == t.Binary("-", t.Binary("-", one, two), three)
    assert expr("-1 % 2") == t.Binary("%", t.Unary("-", one), two)
    a, b, c = t.Name("a"), t.Name("b"), t.Name("c")
    assert expr("a or b and c") == t.Binary("or", a, t.Binary("and", b, c))
    assert expr("not a == b") == t.Unary("not", t.Binary("==", a, b))
    assert expr("a in [1, 2]") == t.Binary("in", a, t.ListExpr((one, two)))
    assert expr("if a then 1 else 2 + 3") == t.IfExpr(a, one, t.Binary("+", two, three))
    assert expr("a.b.c") == t.Attribute(t.Attribute(a, t.Ident("b")), t.Ident("c"))
    assert expr('x != "a\\"\\n"') == t.Binary("!=", t.Name("x"), t.Literal('a"\n', ""))


def test_calls_and_aggregates() -> None:
    assert expr("round(x, 2)") == t.FuncCall(t.Ident("round"), (t.Name("x"), t.Literal(2, "2")))
    assert expr("max(a, b)") == t.FuncCall(t.Ident("max"), (t.Name("a"), t.Name("b")))
    assert expr("count(Alert())") == t.Aggregate("count", t.Pattern(
        t.Ident("Alert"), (), None, False, False), None)
    pattern = t.Pattern(t.Ident("Quote"), (t.FieldMatch(t.Ident("sku"), None),
                                           t.FieldMatch(t.Ident("vendor"), t.Literal("a", ""))),
                        None, False, False)
    for func in ("sum", "min", "max", "mean"):
        assert expr(f'{func}(Quote(sku, vendor: "a"), amount)') == t.Aggregate(
            func, pattern, t.Ident("amount"))  # type: ignore[arg-type]
    need = expr("count(intent Need(currency))")
    assert isinstance(need, n.Aggregate) and need.pattern.intent


# ------------------------------------------------------------------------ spans


def test_spans_are_exact() -> None:
    text = HEADER + "agent a tier 1 {\n  when Cost(sku, amount: cost)\n  emit X(v: cost * 2)\n}\n"
    module = ok(text)
    agent = module.items[0]
    assert isinstance(agent, n.Agent)
    assert agent.span == Span("t.cvg", 2, 1, 5, 2)
    assert agent.name.span == Span("t.cvg", 2, 7, 2, 8)
    pattern = agent.patterns[0]
    assert pattern.span == Span("t.cvg", 3, 8, 3, 31)
    assert pattern.fields[1].value is not None
    assert pattern.fields[1].value.span == Span("t.cvg", 3, 26, 3, 30)
    emit = agent.outputs[0]
    assert isinstance(emit, n.Emit)
    assert emit.args[0].value.span == Span("t.cvg", 4, 13, 4, 21)
    assert module.header is not None and module.header.span == Span("t.cvg", 1, 1, 1, 17)


def test_comments_are_collected_with_trailing_flag() -> None:
    module = ok("# leading\n" + HEADER + "fact A { x: int }  # after code\n")
    assert [(c.text, c.trailing) for c in module.comments] == [
        ("# leading", False), ("# after code", True)]
    assert module.comments[1].span == Span("t.cvg", 3, 20, 3, 32)


def test_layout_does_not_change_the_tree() -> None:
    a = ok(HEADER + "agent a { when A(x) emit B(x: x) }")
    b = ok(HEADER + "\n\nagent   a\n{\n when A( x )\n\n emit B( x : x , )\n}\n# end\n")
    assert a == b


# ------------------------------------------------------------------- diagnostics


def first(text: str) -> ParseResult:
    result = parse(text, "t.cvg")
    assert result.diagnostics, "expected a diagnostic"
    return result


def test_expected_tokens_are_words() -> None:
    d = first(HEADER + "fact Cost { key sku: str amount float }\n").diagnostics[0]
    assert d.code == "CVG001"
    assert d.message == "unexpected name `float` in fact `Cost`; expected `:`"
    assert d.span == Span("t.cvg", 2, 33, 2, 38)
    d = first(HEADER + "agent a { when A(, ) emit B() }\n").diagnostics[0]
    assert "expected a field name or `)`" in d.message


def test_unclosed_block_names_the_agent_and_where_it_opened() -> None:
    text = (HEADER + "fact A { x: int }\nagent a {\n  when A(x)\n  emit A(x: x)\n\n"
            "fact B { y: int }\n")
    result = first(text)
    (d,) = result.diagnostics
    assert d.code == "CVG002"
    assert d.message == "expected `}` to close agent `a` opened at 3:1"
    assert d.span is not None and (d.span.line, d.span.column) == (5, 15)
    assert d.related[0].span.line == 3
    assert result.module is not None
    assert [type(i).__name__ for i in result.module.items] == ["FactDecl", "FactDecl"]


def test_several_errors_are_reported_and_good_items_kept() -> None:
    text = (HEADER + "fact A { x: int }\nagnet a {\n  when A(x)\n}\nfact B { y: int }\n"
            "policy B { resolve by }\nfact C { z: int }\n")
    result = parse(text, "t.cvg")
    assert [(d.code, d.span.line if d.span else 0) for d in result.diagnostics] == [
        ("CVG007", 3), ("CVG001", 7)]
    assert result.diagnostics[0].help == "did you mean `agent`?"
    assert result.module is not None
    assert [i.name.name for i in result.module.items if isinstance(i, n.FactDecl)] == [
        "A", "B", "C"]


@pytest.mark.parametrize(("text", "code"), [
    ('ruleset r "unterminated\n', "CVG003"),
    ("ruleset r 'single'\n", "CVG004"),
    ("ruleset r\nfact A { x: int = 1 $ 2 }\n", "CVG004"),
    ('ruleset r\nroot "g" { job_timeout = 5y }\n', "CVG005"),
    ('ruleset r\nroot "g" { max_facts = 1__0 }\n', "CVG005"),
    ("ruleset r\nagent a tier 1.5 { when A(x) emit A(x: x) }\n", "CVG005"),
    ("fact A { x: int }\n", "CVG006"),
    ("", "CVG006"),
    ("rulset r\n", "CVG007"),
    ('ruleset r "bad \\q"\n', "CVG008"),
    ('ruleset r\nroot "g" { require round(x: 1) > 0 }\n', "CVG009"),
    ('ruleset r\nroot "g" { require count(x) > 0 }\n', "CVG009"),
    ("ruleset r\nfact A { x: int }\nruleset s\n", "CVG010"),
])
def test_error_codes(text: str, code: str) -> None:
    assert code in codes(text)


def test_deep_nesting_is_a_diagnostic_not_a_crash() -> None:
    result = parse('ruleset r\nroot "g" { require ' + "-" * 20000 + "1 < 0 }\n", "t.cvg")
    assert [d.code for d in result.diagnostics] == ["CVG990"]


def test_keyword_swallowed_by_an_incomplete_expression_is_named() -> None:
    d = first(HEADER + "agent a {\n  when A(x) where x >\n  emit A(x: x)\n}\n").diagnostics[0]
    assert d.code == "CVG001"
    assert d.message.startswith("`emit` is read as a name in agent `a`")
    assert d.span is not None and (d.span.line, d.span.column) == (4, 3)


@pytest.mark.parametrize(("body", "fragment"), [
    ("agent a { when A(x) where x = 1 emit A(x: x) }", "compare with `==`"),
    ("agent a { when A(x) emit A(x: x) }}", "no block is open here"),
    ("fact B { x: }", "expected a type (`str`"),
    ("agent { when A(x) emit A(x: 1) }", "expected an agent name"),
    ('test "t" { expect status }', "expected a status (`converged`"),
    ("policy A { resolve by newest }", "policy is written `policy FACT {"),
])
def test_messages_say_what_fits(body: str, fragment: str) -> None:
    d = first(HEADER + body + "\n").diagnostics[0]
    assert fragment in f"{d.message} | {d.help}"


def test_keywords_followed_by_a_colon_are_names() -> None:
    fact = item("fact F {\n  score: float = 0.5\n  reason: str\n  key: str\n  test: int = 1\n"
                "  emit: bool\n}\n")
    assert isinstance(fact, n.FactDecl)
    assert [f.name.name for f in fact.fields] == ["score", "reason", "key", "test", "emit"]
    assert not any(f.key for f in fact.fields)


def test_recovery_keeps_unindented_bodies_whole() -> None:
    text = (HEADER + "fact A { x: int }\nagent a {\nwhen A(x)\nemit A(x: x)\n}\n"
            "agnet b {\nwhen A(x)\nemit A(x: x)\n}\nfact B {\ny: int\n}\n"
            "fcat C { z: int }\nfact D { w: int }\n")
    result = parse(text, "t.cvg")
    assert [(d.code, d.span.line if d.span else 0) for d in result.diagnostics] == [
        ("CVG007", 7), ("CVG007", 14)]
    assert result.module is not None
    assert [i.name.name for i in result.module.items
            if isinstance(i, n.FactDecl | n.Agent)] == ["A", "a", "B", "D"]


@pytest.mark.parametrize(("written", "fix"), [
    # met as: "unexpected `.`; expected an expression" (help: "write an expression here")
    ("where f > .5 emit A(id: id, f: 1.0)", "write `0.5`"),
    # met as: "unexpected `)`; expected a field name" (the point read as a field access)
    ("emit A(id: id, f: 1.)", "write `1.0`"),
    # met as: "`emit` is read as a name … finish the expression … before `emit`"
    ("where f > 1_000. emit A(id: id, f: 1.0)", "write `1_000.0`"),
])
def test_a_float_without_a_digit_on_one_side_of_its_point_says_how_to_write_it(
        written: str, fix: str) -> None:
    text = HEADER + f"fact A {{ key id: str, f: float }}\nagent a {{ when A(id, f) {written} }}\n"
    (diagnostic,) = parse(text, "t.cvg").diagnostics
    assert diagnostic.code == "CVG001"
    assert diagnostic.help is not None and diagnostic.help.endswith(fix), diagnostic.help


def test_a_field_access_left_unfinished_is_not_taken_for_a_float() -> None:
    text = HEADER + ("fact A { key id: str, f: float }\n"
                     "agent a { when A(id, f) emit A(id: id, f: x.) }\n")
    (diagnostic,) = parse(text, "t.cvg").diagnostics
    assert diagnostic.help == "write a field name here"
