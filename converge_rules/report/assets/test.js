// converge test --report: filter the tests by text and status.
"use strict";
(function () {
  const filter = document.getElementById("test-filter");
  const status = document.getElementById("test-status");
  const count = document.getElementById("test-count");
  const tests = Array.from(document.querySelectorAll("details.test"));
  function apply() {
    const q = filter.value.trim().toLowerCase();
    let shown = 0;
    for (const t of tests) {
      const ok = (!status.value || t.getAttribute("data-status") === status.value) &&
        (!q || t.textContent.toLowerCase().includes(q));
      t.hidden = !ok;
      shown += ok ? 1 : 0;
    }
    count.textContent = `${shown} of ${tests.length} tests`;
  }
  filter.addEventListener("input", apply);
  status.addEventListener("change", apply);
  apply();
  document.body.setAttribute("data-ready", "1");
})();
