// converge report: the tables, pagers and the derivation explorer of one job.
// Values from the trace are written into the page only as text (textContent),
// never as markup, whatever they hold.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const PAGE = 50;
  const TRUNCATE = 80;

  // --------------------------------------------------------------- helpers
  // C1 controls, line and paragraph separators and bidirectional embeddings,
  // overrides and isolates, escaped (\u202e) as the terminal shows them
  // (converge_rules/text.py): raw, an override reorders the rest of its cell, so a
  // value would show other text than it holds.
  const INVISIBLE = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
  function visible(text) {
    return String(text).replace(INVISIBLE,
      (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = visible(v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(typeof c === "string" ? document.createTextNode(visible(c)) : c);
    }
    return node;
  }
  const enums = new Set(DATA.enums);
  function literal(v, enumField) {
    if (v === null || v === undefined) return "none";
    if (typeof v === "string") return enumField ? v : JSON.stringify(v);
    if (Array.isArray(v)) return "[" + v.map((x) => literal(x)).join(", ") + "]";
    if (typeof v === "object") {
      return "{" + Object.entries(v).map(([k, x]) => k + ": " + literal(x)).join(", ") + "}";
    }
    return String(v);
  }
  function cell(v, isFloat) {
    if (v === null || v === undefined) return "none";
    if (typeof v === "string") return v;
    if (isFloat && Number.isInteger(v)) return v.toFixed(1);  // JSON wrote 12.0
    return literal(v);
  }
  // a field's value as rule text: floats keep their ".0", enum members are bare
  function fieldText(t, f, v) {
    if (typeof v === "number" && t.floatSet.has(f)) return cell(v, true);
    return literal(v, enums.has(t.name + "." + f));
  }

  // facts by id: [type, row], built once
  const byId = new Map();
  for (const t of DATA.types) {
    t.floatSet = new Set(t.floats);
    for (const row of t.rows) byId.set(row[0], [t, row]);
  }
  function factText(id) {
    const found = byId.get(id);
    if (!found) return "fact " + id + " (not in this trace)";
    const [t, row] = found;
    const parts = t.fields.map((f, i) => f + ": " + fieldText(t, f, row[3 + i]));
    return t.name + "(" + parts.join(", ") + ")";
  }
  function idLink(id) {
    return el("button", {class: "fact-id", type: "button", "data-id": String(id),
      title: "explore the derivation of fact " + id, onclick: () => explore(id)}, "#" + id);
  }
  function truncated(text) {
    if (text.length <= TRUNCATE) return el("code", {}, text);
    return el("details", {class: "long"},
      el("summary", {}, el("code", {}, text.slice(0, TRUNCATE) + "…"),
        el("span", {class: "more"}, " (" + text.length + " characters, click to expand)")),
      el("pre", {class: "full"}, text));
  }

  // A paged, sortable, filterable table over `rows` (arrays); `columns` are
  // {name, value(row) -> sort key / filter text, render(row) -> node or string}.
  function pagedTable(host, columns, rows, opts) {
    opts = opts || {};
    let shown = rows, page = 0, sortCol = -1, sortDir = 1;
    const filter = el("input", {type: "search", class: "filter", placeholder: "filter…",
      "aria-label": "filter " + (opts.label || "rows")});
    const extra = opts.toggle ? el("label", {class: "toggle"},
      el("input", {type: "checkbox", class: "toggle-box"}), " " + opts.toggle.label) : null;
    const info = el("span", {class: "pager-info"});
    const prev = el("button", {type: "button", class: "prev"}, "‹ previous");
    const next = el("button", {type: "button", class: "next"}, "next ›");
    const thead = el("tr");
    const tbody = el("tbody");
    columns.forEach((c, i) => {
      const th = el("th", {title: "sort by " + c.name, tabindex: "0"}, c.name);
      th.addEventListener("click", () => {
        sortDir = sortCol === i ? -sortDir : 1;
        sortCol = i;
        for (const h of thead.children) h.removeAttribute("aria-sort");
        th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
        apply();
      });
      thead.append(th);
    });
    const table = el("table", {class: "data"}, el("thead", {}, thead), tbody);
    host.append(el("div", {class: "controls"}, filter, extra, " ", prev, " ", info, " ", next), table);
    const texts = new Map();
    function text(row) {
      let t = texts.get(row);
      if (t === undefined) {
        t = columns.map((c) => String(c.value(row))).join("\u0000").toLowerCase();
        texts.set(row, t);
      }
      return t;
    }
    function compare(a, b) {
      const x = columns[sortCol].value(a), y = columns[sortCol].value(b);
      if (typeof x === "number" && typeof y === "number") return (x - y) * sortDir;
      return String(x).localeCompare(String(y)) * sortDir;
    }
    function apply() {
      const q = filter.value.trim().toLowerCase();
      const all = extra && extra.firstChild.checked;
      shown = rows.filter((r) => (all || !opts.toggle || opts.toggle.keep(r)) &&
        (!q || text(r).includes(q)));
      if (sortCol >= 0) shown = shown.slice().sort(compare);
      page = 0;
      draw();
    }
    function draw() {
      const pages = Math.max(1, Math.ceil(shown.length / PAGE));
      page = Math.min(Math.max(page, 0), pages - 1);
      const start = page * PAGE, end = Math.min(shown.length, start + PAGE);
      tbody.replaceChildren(...shown.slice(start, end).map((r) => {
        const tr = el("tr", opts.rowClass ? {class: opts.rowClass(r)} : {});
        for (const c of columns) {
          const v = c.render ? c.render(r) : cell(c.value(r));
          tr.append(el("td", {}, v));
        }
        return tr;
      }));
      info.textContent = shown.length ? `rows ${start + 1}–${end} of ${shown.length}` +
        (shown.length !== rows.length ? ` (filtered from ${rows.length})` : "")
        : `no rows (of ${rows.length})`;
      prev.disabled = page === 0;
      next.disabled = page >= pages - 1;
    }
    filter.addEventListener("input", apply);
    if (extra) extra.firstChild.addEventListener("change", apply);
    prev.addEventListener("click", () => { page -= 1; draw(); });
    next.addEventListener("click", () => { page += 1; draw(); });
    apply();
  }

  // ----------------------------------------------------------------- facts
  const factHost = document.getElementById("fact-tables");
  for (const t of DATA.types) {
    const removed = t.rows.length - t.live;
    const box = el("details", {class: "fact-type", "data-type": t.name},
      el("summary", {}, el("strong", {}, t.name + (t.intent ? " (intent)" : "")),
        ` — ${t.live} in the end` + (removed ? `, ${removed} removed` : "")));
    let built = false;
    box.addEventListener("toggle", () => {
      if (!box.open || built) return;
      built = true;
      const columns = [{name: "id", value: (r) => r[0], render: (r) => idLink(r[0])},
        ...t.fields.map((f, i) => ({name: f + (t.keys.includes(f) ? " (key)" : ""),
          value: (r) => { const v = r[3 + i]; return typeof v === "number" ? v : cell(v); },
          render: (r) => cell(r[3 + i], t.floatSet.has(f))})),
        {name: "cycle", value: (r) => r[1]}];
      pagedTable(box, columns, t.rows, {label: t.name + " facts",
        toggle: {label: "removed too", keep: (r) => !r[2]},
        rowClass: (r) => r[2] ? "removed" : ""});
    });
    factHost.append(box);
  }
  // open the tables of the types with facts in the end (each draws one page only)
  for (const box of factHost.querySelectorAll("details.fact-type")) {
    const t = DATA.types.find((x) => x.name === box.getAttribute("data-type"));
    if (t.live) box.open = true;
  }
  if (!DATA.types.length) factHost.append(el("p", {}, "No facts in this trace."));

  // ------------------------------------------------------------- conflicts
  const conflictHost = document.getElementById("conflict-table");
  if (DATA.conflicts.length) {
    pagedTable(conflictHost, [
      {name: "cycle", value: (c) => c[0]},
      {name: "type", value: (c) => c[1]},
      {name: "key", value: (c) => c[2]},
      {name: "winner", value: (c) => c[3] === null ? "none (the job stopped)" : c[3]},
      {name: "losers", value: (c) => c[4].join("; "),
        render: (c) => el("ul", {class: "losers"}, ...c[4].map((l) => el("li", {}, l)))},
      {name: "decided by", value: (c) => c[5]},
    ], DATA.conflicts, {label: "conflicts"});
  } else {
    conflictHost.append(el("p", {}, "No conflicts: every fact's key had one candidate."));
  }

  // seconds as a person reads them (report/run.py seconds_text says the same)
  function seconds(v) {
    if (v < 0.001) return (v * 1e6).toFixed(0) + " µs";
    if (v < 1) return Number((v * 1e3).toPrecision(3)) + " ms";
    if (v < 120) return Number(v.toPrecision(3)) + " s";
    return Math.floor(v / 60) + " min " + (v % 60).toFixed(0) + " s";
  }

  // ------------------------------------------------------------ tool calls
  const callHost = document.getElementById("call-table");
  if (DATA.calls.length) {
    const columns = [
      {name: "cycle", value: (c) => c[0]},
      {name: "agent", value: (c) => c[1]},
      {name: "tool", value: (c) => c[2]},
      {name: "arguments", value: (c) => c[3], render: (c) => truncated(c[3])},
      {name: "answer", value: (c) => c[5] === null ? c[4] : "",
        render: (c) => c[5] === null ? truncated(c[4]) : ""},
      {name: "error", value: (c) => c[5] === null ? "" : c[5],
        render: (c) => c[5] === null ? "" : truncated(c[5])},
    ];
    if (DATA.timed) {
      // sorts by the seconds; a call without a record sorts first, shown empty
      columns.push({name: "latency", value: (c) => c[6] === null ? -1 : c[6],
        render: (c) => c[6] === null ? "" : el("span", {class: "latency"}, seconds(c[6]))});
      columns.push({name: "answered", value: (c) => c[7] === null ? "" : c[7]});
    }
    pagedTable(callHost, columns, DATA.calls,
      {label: "tool calls", rowClass: (c) => c[5] === null ? "" : "bad"});
  } else {
    callHost.append(el("p", {}, "No tool calls."));
  }

  // ------------------------------------------------------ broken invariants
  const invariantHost = document.getElementById("invariant-table");
  if (DATA.invariants.length) {
    pagedTable(invariantHost, [
      {name: "cycle", value: (v) => v[0]},
      {name: "invariant", value: (v) => v[1], render: (v) => el("code", {}, v[1])},
      {name: "outcome", value: (v) => v[2] === "job_ended" ? "the job ended"
        : v[2] === "effect_discarded" ? "effect discarded" : v[2]},
      {name: "agents", value: (v) => v[3].join(", ")},
      {name: "facts", value: (v) => v[4].join("; "),
        render: (v) => el("ul", {class: "losers"}, ...v[4].map((f) => el("li", {}, truncated(f))))},
      {name: "rule", value: (v) => v[5], render: (v) => truncated(v[5])},
    ], DATA.invariants, {label: "broken invariants", rowClass: () => "bad"});
  } else {
    invariantHost.append(el("p", {}, "No invariant was broken."));
  }

  // -------------------------------------------------------------- approvals
  const approvalHost = document.getElementById("approval-table");
  if (DATA.approvals.length) {
    pagedTable(approvalHost, [
      {name: "cycle", value: (a) => a[0]},
      {name: "event", value: (a) => a[1]},
      {name: "id", value: (a) => a[2]},
      {name: "gate", value: (a) => a[3]},
      {name: "agent", value: (a) => a[4]},
      {name: "fact", value: (a) => a[5], render: (a) => truncated(a[5])},
      {name: "decision", value: (a) => a[6]},
      {name: "details", value: (a) => a[7], render: (a) => truncated(a[7])},
    ], DATA.approvals, {label: "approvals",
      rowClass: (a) => a[6] === "awaiting" ? "bad" : ""});
  } else {
    approvalHost.append(el("p", {}, "No fact waited for approval in this job."));
  }

  // ------------------------------------- the page's small tables, sortable too
  for (const table of document.querySelectorAll("table.sortable")) {
    const heads = table.querySelectorAll("thead th");
    const body = table.querySelector("tbody");
    heads.forEach((th, i) => {
      th.setAttribute("tabindex", "0");
      th.setAttribute("title", "sort by " + th.textContent);
      th.addEventListener("click", () => {
        const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        for (const h of heads) h.removeAttribute("aria-sort");
        th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
        const key = (tr) => {
          const td = tr.children[i];
          const raw = td.hasAttribute("data-sort") ? td.getAttribute("data-sort") : td.textContent;
          const n = Number(raw);
          return raw.trim() !== "" && !Number.isNaN(n) ? n : raw;
        };
        const rows = Array.from(body.children);
        rows.sort((a, b) => {
          const x = key(a), y = key(b);
          if (typeof x === "number" && typeof y === "number") return (x - y) * dir;
          return String(x).localeCompare(String(y)) * dir;
        });
        body.replaceChildren(...rows);
      });
    });
  }

  // ----------------------------------------------------- derivation explorer
  const tree = document.getElementById("tree");
  function node(id, path) {
    const derivs = DATA.derivs[String(id)] || [];
    const li = el("li", {class: "node", "data-id": String(id)});
    const head = el("div", {class: "head"}, idLink(id), " ", el("code", {}, factText(id)));
    const why = DATA.removed[String(id)];
    if (!derivs.length) head.append(el("span", {class: "badge input"}, "input fact"));
    if (why) head.append(el("span", {class: "badge gone"}, "no longer in the context: " + why));
    const conf = DATA.confidence[String(id)];
    if (conf !== undefined) head.append(el("span", {class: "badge"}, "confidence " + conf));
    li.append(head);
    const evals = DATA.evaluations[String(id)];
    if (evals) {
      li.append(el("div", {class: "evals"}, "scores: " + evals.map((e) =>
        e[1] + " by agent " + e[0] + (e[2] ? " (" + e[2] + ")" : "")).join("; ")));
    }
    for (const ci of DATA.won[String(id)] || []) {
      const c = DATA.conflicts[ci];
      li.append(el("div", {class: "won"}, `won a conflict in cycle ${c[0]} against ` +
        c[4].join("; ") + (c[5] ? ` (${c[5]})` : "")));
    }
    if (path.has(id)) {
      li.append(el("div", {class: "muted"}, "… (its own support: see above)"));
      return li;
    }
    const inner = new Set(path).add(id);
    derivs.forEach((d) => {
      const agent = d[0] >= 0 ? DATA.agents[d[0]] : "?";
      const span = DATA.spans[agent];
      const box = el("details", {class: "derivation"});
      const summary = el("summary", {}, "by agent ", el("code", {class: "agent"}, agent),
        span ? " at " + span : "", ` in cycle ${d[1]}`,
        d[3] ? " (lasting: stays when the facts below go)" : "",
        d[2].length ? ` — from ${d[2].length} fact${d[2].length === 1 ? "" : "s"}` : "");
      box.append(summary);
      let built = false;
      box.addEventListener("toggle", () => {
        if (!box.open || built) return;
        built = true;
        if (d[4]) box.append(el("div", {class: "bindings"}, "with " + d[4]));
        else if (d[4] === null) box.append(el("div", {class: "muted"}, DATA.ruleset
          ? "bindings: only the first 20,000 derivations have them here; converge explain gives this one's"
          : "bindings, rule location and tool calls: give the ruleset (converge report --ruleset)"));
        for (const ci of d[5]) {
          const c = DATA.calls[ci];
          box.append(el("div", {class: "call"}, "tool " + c[2] + "(" + c[3] + ") ",
            c[5] === null ? el("span", {}, "answered ", truncated(c[4]))
              : el("span", {class: "bad"}, "failed: " + c[5])));
        }
        const ul = el("ul", {class: "support"});
        for (const s of d[2]) ul.append(node(s, inner));
        box.append(ul);
      });
      li.append(box);
    });
    return li;
  }
  function explore(id) {
    tree.replaceChildren(el("ul", {class: "tree"}, node(id, new Set())));
    const first = tree.querySelector("details.derivation");
    if (first) first.open = true;
    document.getElementById("explore-id").value = String(id);
    document.getElementById("explorer").scrollIntoView();
  }
  document.getElementById("explore-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = Number(document.getElementById("explore-id").value);
    if (byId.has(id)) explore(id);
    else tree.replaceChildren(el("p", {class: "bad"}, "no fact " + id + " in this trace"));
  });
  document.body.setAttribute("data-ready", "1");
})();
