"""`converge report` on a big job: 100,000 facts (50,000 inputs, each doubled by one
agent), against the same job at 1,000 facts, measured in the same run.

Prints, for each size: the trace's size, the time to read the trace and build the
page (against the time the engine took to run the job), the page's size, and in
headless Chromium (if installed) the time from navigation until the page's script is
done, to filter the big table, and to open a derivation. Rounds alternate the sizes;
each number is the median of the rounds.

    python bench/report/bench_report.py [--quick] [--rounds N] [--facts N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

RULESET = """ruleset doubling "every item doubled"

root "double them" {
  max_facts = 10_000_000
}

fact Item { key id: int, v: int, name: str }
fact Double { key id: int, v: int }

agent double {
  when Item(id, v)
  emit Double(id: id, v: v * 2)
}
"""


def job(tmp: Path, inputs: int) -> tuple[Path, Path, float]:
    """The ruleset, and a trace of ``inputs`` items doubled; the engine's run time."""
    from converge_rules.compiler.compile import compile_ruleset
    from converge_rules.engine import run
    from converge_rules.language.checks.checker import check_file

    ruleset = tmp / "doubling.cvg"
    ruleset.write_text(RULESET, encoding="utf-8")
    program = compile_ruleset(check_file(ruleset))
    facts = [("Item", {"id": i, "v": i, "name": f"item-{i}"}) for i in range(inputs)]
    trace = tmp / f"trace-{inputs}.jsonl"
    start = time.perf_counter()
    result = run(program, facts, trace=str(trace))
    took = time.perf_counter() - start
    assert result.status == "converged", result.detail
    return ruleset, trace, took


def build(ruleset: Path, trace: Path, page: Path) -> tuple[float, float]:
    """Read the trace, build and write the page as `converge report -r` does: the
    seconds of the whole, and of reading the trace alone (the shared trace reader,
    which checks every event)."""
    from converge_rules.analysis.runview import read_trace
    from converge_rules.report.html import render_run_report
    from converge_rules.report.run import build_run_report
    from converge_rules.testing.runner import load_suite

    start = time.perf_counter()
    suite = load_suite(ruleset)
    read = time.perf_counter()
    view = read_trace(trace)
    read = time.perf_counter() - read
    report = build_run_report(view, title="bench", source=str(trace), checked=suite.checked,
                              program=suite.program, functions=suite.functions)
    page.write_text(render_run_report(report), encoding="utf-8")
    return time.perf_counter() - start, read


def in_browser(driver: Any, page: Path, probe: str) -> dict[str, float]:
    """Seconds from navigation until the script is done; to filter the Item table
    for ``probe``; to open the derivation of the first Double."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 600)
    driver.get("about:blank")
    start = time.perf_counter()
    driver.get(page.as_uri())
    wait.until(lambda d: d.execute_script(
        "return document.body && document.body.getAttribute('data-ready')") == "1")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR,
                                         'details[data-type="Double"] tbody tr'))
    loaded = time.perf_counter() - start
    box = driver.find_element(By.CSS_SELECTOR, 'details[data-type="Item"]')
    start = time.perf_counter()
    box.find_element(By.CSS_SELECTOR, "input.filter").send_keys(probe)
    wait.until(lambda d: len(box.find_elements(By.CSS_SELECTOR, "tbody tr")) == 1)
    filtered = time.perf_counter() - start
    start = time.perf_counter()
    driver.find_element(By.CSS_SELECTOR,
                        'details[data-type="Double"] button.fact-id').click()
    wait.until(lambda d: "by agent double" in d.find_element(By.ID, "tree").text)
    explored = time.perf_counter() - start
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    return {"load": loaded, "filter": filtered, "explore": explored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 facts, 1 round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--facts", type=int, default=100_000,
                        help="facts in the big job (half inputs, half derived)")
    args = parser.parse_args()
    big = 10_000 if args.quick else args.facts
    rounds = 1 if args.quick else args.rounds
    sizes = [1_000, big]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        jobs = {n: job(tmp, n // 2) for n in sizes}
        driver = None
        try:
            from tests.report.browser import start_browser

            driver = start_browser()
        except BaseException as exc:  # pytest's skip is a BaseException
            print(f"no browser ({exc}): page load times not measured")
        rows: dict[int, dict[str, list[float]]] = {n: {} for n in sizes}
        for _ in range(rounds):
            for n in sizes:  # alternate the sizes within each round
                ruleset, trace, ran = jobs[n]
                page = tmp / f"report-{n}.html"
                row = rows[n]
                row.setdefault("run", []).append(ran)
                whole, read = build(ruleset, trace, page)
                row.setdefault("build", []).append(whole)
                row.setdefault("read", []).append(read)
                if driver is not None:
                    for k, v in in_browser(driver, page, f"item-{n // 2 - 1}").items():
                        row.setdefault(k, []).append(v)
        if driver is not None:
            driver.quit()
        print(f"{'facts':>8} {'trace MB':>9} {'page MB':>8} {'run s':>7} {'build s':>8} "
              f"{'(read s)':>8} {'build/run':>9} {'load s':>7} {'filter s':>8} "
              f"{'explore s':>9}")
        for n in sizes:
            r = {k: statistics.median(v) for k, v in rows[n].items()}
            trace_mb = jobs[n][1].stat().st_size / 1e6
            page_mb = (tmp / f"report-{n}.html").stat().st_size / 1e6
            browser = (f"{r['load']:>7.2f} {r['filter']:>8.2f} {r['explore']:>9.2f}"
                       if "load" in r else "")
            print(f"{n:>8} {trace_mb:>9.1f} {page_mb:>8.1f} {r['run']:>7.2f} "
                  f"{r['build']:>8.2f} {r['read']:>8.2f} {r['build'] / r['run']:>9.2f} "
                  f"{browser}")


if __name__ == "__main__":
    main()
