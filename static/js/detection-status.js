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
  // What the panel shows: its status, and for a video the frames judged so far.
  var shown = el.getAttribute("data-status");

  function swap(html) {
    // A video keeps playing across a refresh: the playing element moves into the new panel.
    var playing = el.querySelector("video[data-keep-video]");
    el.innerHTML = html;
    var fresh = el.querySelector("video[data-keep-video]");
    if (playing && fresh && playing.getAttribute("src") === fresh.getAttribute("src")) {
      fresh.parentNode.replaceChild(playing, fresh);
    }
  }

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
        var state = data.status + (data.frames_done != null ? ":" + data.frames_done : "");
        if (state !== shown || data.final) {
          swap(data.html);
          shown = state;
          el.setAttribute("data-status", data.status);
        }
        // A video's progress moves by frames: ask again soon while it does.
        if (data.frames_done != null && data.status === "running") { delay = Math.min(delay, 1500); }
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
