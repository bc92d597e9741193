// Keeps a pending result up to date without a reload: polls the element's data-poll-url,
// swaps in the server-rendered HTML, stops at a final state. (The batch page has its own,
// row by row: batch-status.js.)
(function () {
  "use strict";
  var el = document.querySelector("[data-poll-url]");
  if (!el || !el.getAttribute("data-poll-url")) { return; }
  var url = el.getAttribute("data-poll-url");
  var delay = 1000;
  var failures = 0;

  function schedule() {
    // Back off slowly so a long queue does not turn into a flood of requests.
    window.setTimeout(poll, delay);
    delay = Math.min(delay * 1.3, 5000);
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        if (data.status !== el.getAttribute("data-status") || data.final) {
          el.innerHTML = data.html;
          el.setAttribute("data-status", data.status);
        }
        if (data.final) {
          el.setAttribute("data-poll-url", "");
          return;
        }
        schedule();
      })
      .catch(function () {
        failures += 1;
        if (failures < 20) { schedule(); }
      });
  }

  schedule();
})();
