// The batch page fills in row by row: polls the batch's status URL and, for each row whose
// state (data-state: status and verdict) changed, swaps in the cells that differ, so a verdict
// shows as soon as it arrives, while the thumbnails, the focus and the scroll position stay put.
// The summary line above the table is a live region: screen readers hear each change.
(function () {
  "use strict";
  var box = document.getElementById("batch");
  if (!box || !box.getAttribute("data-poll-url")) { return; }
  var url = box.getAttribute("data-poll-url");
  var summary = document.getElementById("batch-summary");
  var delay = 1000;
  var failures = 0;

  function schedule() {
    // Back off slowly so a long queue does not turn into a flood of requests.
    window.setTimeout(poll, delay);
    delay = Math.min(delay * 1.3, 5000);
  }

  function parseRow(html) {
    var body = document.createElement("tbody");
    body.innerHTML = html;
    return body.querySelector("tr");
  }

  function updateRow(current, fresh) {
    if (current.getAttribute("data-state") === fresh.getAttribute("data-state")) { return false; }
    current.setAttribute("data-state", fresh.getAttribute("data-state") || "");
    var oldCells = current.cells;
    var newCells = fresh.cells;
    if (oldCells.length !== newCells.length) {
      current.parentNode.replaceChild(fresh, current);
      return true;
    }
    // Only the cells that changed: the thumbnail is not fetched again, and a focused file link
    // (its cell does not change) keeps the focus.
    for (var i = newCells.length - 1; i >= 0; i -= 1) {
      if (oldCells[i].innerHTML !== newCells[i].innerHTML
          || oldCells[i].className !== newCells[i].className) {
        current.replaceChild(newCells[i], oldCells[i]);
      }
    }
    return true;
  }

  function apply(data) {
    var tbody = box.querySelector("tbody");
    if (!tbody) { return; }
    var seen = {};
    var changed = false;
    (data.rows || []).forEach(function (row) {
      var id = "detection-" + row.id;
      seen[id] = true;
      var fresh = parseRow(row.html);
      if (!fresh) { return; }
      var current = document.getElementById(id);
      if (current) {
        changed = updateRow(current, fresh) || changed;
      } else {
        tbody.appendChild(fresh);
        changed = true;
      }
    });
    // A row deleted meanwhile (in another tab) leaves the table too.
    Array.prototype.slice.call(tbody.rows).forEach(function (tr) {
      if (tr.id && !seen[tr.id]) { tbody.removeChild(tr); }
    });
    if (summary && data.summary && summary.textContent !== data.summary) {
      summary.textContent = data.summary;
    }
    box.setAttribute("data-status", data.status);
    return changed;
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        // Verdicts tend to arrive one after another: after a change, look again soon.
        if (apply(data)) { delay = 1000; }
        if (data.final) {
          box.setAttribute("data-poll-url", "");
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
