"""A stored job is a session that takes more input: ``converge run --resume run.db
--facts more.jsonl`` merges the facts after the job's end, records them in the store
with the cycle that merges them, and re-converges incrementally. Done when a resumed
job with new facts equals one run over all the facts: the facts and the status are
equal; the traces differ by their cycles (the later facts enter in a cycle of their
own, after the status of the run before), so the stored trace is checked to be intact,
to replay identically, and to keep the first run's cycles as they were."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import converge_rules
from converge_rules import api
from converge_rules.errors import StoreError
from converge_rules.store.sqlite import SqliteStore
from tests.store.conftest import Backend
from tests.store.test_resume import JOB_TIME, NOW, bumps, calls, converge

CLOSURE = """\
ruleset closure "reachability"
fact Edge { a: int, b: int }
fact Path { a: int, b: int }
agent base {
  when Edge(a, b)
  emit Path(a: a, b: b)
}
agent step {
  when Path(a, b) and Edge(a: b, b: c)
  emit Path(a: a, b: c)
}
"""


def write_facts(path: Path, rows: list[tuple[str, dict[str, Any]]]) -> Path:
    path.write_text("".join(json.dumps({t: f}) + "\n" for t, f in rows))
    return path


def counts(*pairs: tuple[str, int]) -> list[tuple[str, dict[str, Any]]]:
    return [("Count", {"id": k, "n": n}) for k, n in pairs]


def stored(db: Path) -> tuple[list[Any], list[Any], list[Any]]:
    """The job rows, trace lines and job specs of a SQLite store, as they are."""
    with sqlite3.connect(db) as conn:
        return (list(conn.execute("SELECT * FROM jobs")),
                list(conn.execute("SELECT * FROM trace_rows ORDER BY job, seq")),
                list(conn.execute("SELECT * FROM job_specs")))


def trace_of(tmp: Path, db: Path) -> list[str]:
    out = converge(tmp, "trace", "export", db, "-o", tmp / "exported.jsonl")
    assert out.returncode == 0, out.stderr
    return (tmp / "exported.jsonl").read_text().splitlines()


def without_hash(line: str) -> dict[str, Any]:
    event = json.loads(line)
    event.pop("hash", None)
    return event


def test_a_resumed_job_with_new_facts_equals_one_run_over_all_facts(tmp_path: Path) -> None:
    ruleset, _ = bumps(tmp_path)
    first = write_facts(tmp_path / "first.jsonl", counts(("a", 0), ("b", 4)))
    more = write_facts(tmp_path / "more.jsonl", counts(("c", 9), ("d", 2)))
    again = write_facts(tmp_path / "again.jsonl", counts(("e", 7), ("a", 5)))
    every = write_facts(tmp_path / "all.jsonl", counts(("a", 0), ("b", 4), ("c", 9),
                                                       ("d", 2), ("e", 7), ("a", 5)))
    db = tmp_path / "run.db"
    out = converge(tmp_path, "run", ruleset, "-f", first, "--now", NOW, "--store", db)
    assert out.returncode == 0, out.stderr
    before = trace_of(tmp_path, db)
    paid = len(calls(tmp_path))

    out = converge(tmp_path, "run", "--resume", db, "-f", more, "--format", "json")
    assert out.returncode == 0, out.stderr
    # the job has checkpoints: it is restored from its last one, then takes the facts
    assert "converge: job 1 resumed from its checkpoint after cycle " in out.stderr
    # what the first run paid for is not paid again: only the new counters' bumps
    assert {k for k, _, _ in calls(tmp_path)[paid:]} == {"c", "d"}
    after = trace_of(tmp_path, db)
    # the first run's cycles are kept as they were; its ending (budget, status) now
    # comes before the cycle of the later facts
    ending = [i for i, line in enumerate(before)
              if json.loads(line)["event"] in ("budget", "status")]
    assert after[:ending[0]] == before[:ending[0]]
    later = [without_hash(line) for line in after[ending[0]:]]
    assert [e["event"] for e in later[:len(ending)]] == [
        json.loads(before[i])["event"] for i in ending]
    added = [e for e in later if e["event"] == "fact_added" and e["agent"] is None]
    assert [e["fields"] for e in added] == [{"id": "c", "n": 9}, {"id": "d", "n": 2}]

    # a second batch, with a new value for a key the job holds (resolve by latest:
    # the later input wins, as the later line of one facts file does)
    out = converge(tmp_path, "run", "--resume", db, "-f", again, "--format", "json")
    assert out.returncode == 0, out.stderr
    resumed = json.loads(out.stdout)
    whole = converge(tmp_path, "run", ruleset, "-f", every, "--now", NOW,
                     "--format", "json")
    assert whole.returncode == 0, whole.stderr
    expected = json.loads(whole.stdout)
    assert resumed["facts"] == expected["facts"]
    assert resumed["status"] == expected["status"] == "converged"
    assert resumed["cycles"] > expected["cycles"]  # the input cycles count too

    # the stored trace is intact and replays identically, batches included
    out = converge(tmp_path, "verify", db)
    assert out.returncode == 0, out.stdout + out.stderr
    out = converge(tmp_path, "replay", ruleset, db)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("identical:")
    with sqlite3.connect(db) as conn:
        settings = json.loads(conn.execute("SELECT settings FROM job_specs").fetchone()[0])
    assert settings["version"] == 2
    assert [[row[0] for row in rows] for _, rows in settings["later"]] == [
        ["Count", "Count"], ["Count", "Count"]]


def test_a_crash_after_the_facts_were_merged_resumes_with_them(tmp_path: Path) -> None:
    """The later facts are recorded with the cycle that merges them: a job killed after
    that commit resumes (without --facts) to the same end; one killed inside it did not
    take them, and takes them when given again."""
    ruleset, _ = bumps(tmp_path)
    first = write_facts(tmp_path / "first.jsonl", counts(("a", 0)))
    more = write_facts(tmp_path / "more.jsonl", counts(("b", 3), ("c", 6)))
    every = write_facts(tmp_path / "all.jsonl", counts(("a", 0), ("b", 3), ("c", 6)))
    db = tmp_path / "run.db"
    assert converge(tmp_path, "run", ruleset, "-f", first, "--now", NOW, "--store",
                    db).returncode == 0
    with sqlite3.connect(db) as conn:
        last = conn.execute("SELECT max(cycle) FROM cycles").fetchone()[0]
    merge_cycle = last + 1
    # killed inside the commit of the facts' cycle: nothing of it is stored
    before = stored(db)
    out = converge(tmp_path, "run", "--resume", db, "-f", more,
                   CONVERGE_CRASH_AT=f"commit:{merge_cycle}")
    assert out.returncode == -9, out.stderr
    assert stored(db)[1:] == before[1:]  # lines and spec (the job row names the pid)
    # killed two cycles later: the facts are stored, a plain resume goes on with them
    out = converge(tmp_path, "run", "--resume", db, "-f", more,
                   CONVERGE_CRASH_AT=f"commit:{merge_cycle + 2}")
    assert out.returncode == -9, out.stderr
    out = converge(tmp_path, "run", "--resume", db, "--format", "json")
    assert out.returncode == 0, out.stderr
    whole = converge(tmp_path, "run", ruleset, "-f", every, "--now", NOW,
                     "--format", "json")
    assert json.loads(out.stdout)["facts"] == json.loads(whole.stdout)["facts"]
    # converged now: resuming again needs more facts
    out = converge(tmp_path, "run", "--resume", db)
    assert out.returncode == 2 and "--facts FILE" in out.stderr


@pytest.mark.parametrize("bad", [
    ('{"Count": {"id": "z", "n": 1}}\n{"Count": {"id": "y", "n": "many"}}\n',
     "more.jsonl:2: Count.n must be int"),
    ('{"Count": {"id": "z", "n": 1}}\n{"Counter": {"id": "y"}}\n',
     "more.jsonl:2: unknown fact type `Counter`"),
    ('{"Count": {"id": "z", "n": 1}}\n{"Count": \n', "more.jsonl:2:"),
])
def test_bad_facts_are_refused_and_the_store_is_untouched(tmp_path: Path,
                                                         bad: tuple[str, str]) -> None:
    ruleset, _ = bumps(tmp_path)
    first = write_facts(tmp_path / "first.jsonl", counts(("a", 0)))
    db = tmp_path / "run.db"
    assert converge(tmp_path, "run", ruleset, "-f", first, "--now", NOW, "--store",
                    db).returncode == 0
    before = stored(db)
    text, message = bad
    (tmp_path / "more.jsonl").write_text(text)
    out = converge(tmp_path, "run", "--resume", db, "-f", tmp_path / "more.jsonl")
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert stored(db) == before


def test_the_api_resumes_a_job_with_more_facts_on_each_backend(
    tmp_path: Path, backend: Backend,
) -> None:
    path = tmp_path / "closure.cvg"
    path.write_text(CLOSURE)
    ruleset = converge_rules.load(path, plugins=False)
    edges = [("Edge", {"a": a, "b": b}) for a, b in ((1, 2), (2, 3), (3, 1), (0, 1))]
    with backend.open() as store:
        first = api.run(ruleset, edges[:2], store=store, now=JOB_TIME)
        assert first.status == "converged"
        with pytest.raises(StoreError, match="converged"):
            api.resume(store, 1, ruleset=ruleset)
        result = api.resume(store, 1, ruleset=ruleset, facts=edges[2:])
        assert store.job(1).status == "converged"
    whole = api.run(ruleset, edges, now=JOB_TIME)
    assert result.facts("Path") == whole.facts("Path")
    assert len(result.facts("Path")) == 12


def test_a_job_that_ended_in_a_conflict_is_refused_even_with_facts(tmp_path: Path) -> None:
    path = tmp_path / "keyed.cvg"
    path.write_text("""\
ruleset keyed
fact Reading { key sensor: str, value: int, note: str }
policy Reading {
  resolve by highest value
  on tie reject
}
""")
    ruleset = converge_rules.load(path, plugins=False)
    db = tmp_path / "run.db"

    def reading(value: int, note: str) -> tuple[str, dict[str, Any]]:
        return ("Reading", {"sensor": "s", "value": value, "note": note})

    assert api.run(ruleset, [reading(1, "a")], store=db, now=JOB_TIME).status == "converged"
    # two later values for the key that tie: the policy rejects both, the job ends
    ended = api.resume(db, 1, ruleset=ruleset, facts=[reading(2, "b"), reading(2, "c")])
    assert ended.status == "conflict"
    with pytest.raises(StoreError, match="ended with status conflict"):
        api.resume(db, 1, ruleset=ruleset, facts=[reading(3, "d")])
    # and the job as it ended resumes to the same end (its batch recorded): refused
    # as final, not re-run
    with SqliteStore(db) as store:
        assert store.job(1).status == "conflict"


def test_an_interrupted_job_runs_to_its_end_then_takes_the_facts(tmp_path: Path) -> None:
    path = tmp_path / "closure.cvg"
    path.write_text(CLOSURE)
    ruleset = converge_rules.load(path, plugins=False)
    chain = [("Edge", {"a": i, "b": i + 1}) for i in range(8)]
    more = [("Edge", {"a": 8, "b": 0})]
    db = tmp_path / "run.db"
    asked = iter(range(100))
    stopped = api.run(ruleset, chain, store=db, now=JOB_TIME,
                      stop=lambda: next(asked) >= 3)
    assert stopped.status == "interrupted"
    result = api.resume(db, ruleset=ruleset, facts=more)
    whole = api.run(ruleset, chain + more, now=JOB_TIME)
    assert result.status == whole.status == "converged"
    assert result.facts("Path") == whole.facts("Path")
    with SqliteStore(db) as store:
        assert store.job(1).status == "converged"
        lines = [json.loads(line) for line in store.trace_lines(1)]
    statuses = [e["status"] for e in lines if e["event"] == "status"]
    assert statuses == ["converged", "converged"]  # the first run's end, then the last


def test_facts_given_to_a_resume_interrupted_again_stay_pending(tmp_path: Path) -> None:
    # interrupted again after its first commit, a resume with facts keeps them: giving
    # them again is refused (they would merge twice), a plain resume merges them at
    # the job's end — the facts and the stored trace of the uninterrupted resume
    path = tmp_path / "closure.cvg"
    path.write_text(CLOSURE)
    ruleset = converge_rules.load(path, plugins=False)
    chain = [("Edge", {"a": i, "b": i + 1}) for i in range(8)]
    more = [("Edge", {"a": 8, "b": 0})]
    traces = []
    for name in ("once", "twice"):
        db = tmp_path / f"{name}.db"
        asked = iter(range(100))
        stopped = api.run(ruleset, chain, store=db, now=JOB_TIME,
                          stop=lambda asked=asked: next(asked) >= 3)
        assert stopped.status == "interrupted"
        if name == "twice":
            again = iter(range(100))
            cut = api.resume(db, ruleset=ruleset, facts=more,
                             stop=lambda again=again: next(again) >= 2)
            assert cut.status == "interrupted"
            with pytest.raises(StoreError, match="without --facts first"):
                api.resume(db, ruleset=ruleset, facts=more)
            result = api.resume(db, ruleset=ruleset)
        else:
            result = api.resume(db, ruleset=ruleset, facts=more)
        assert result.status == "converged"
        assert result.facts("Path") == api.run(ruleset, chain + more,
                                               now=JOB_TIME).facts("Path")
        traces.append(trace_of(tmp_path, db))
    assert traces[0] == traces[1]
