// "Show heatmap" on the result page: shows or hides the heatmaps over the image, and keeps the
// choice when detection-status.js swaps in a refreshed result (a new, unticked checkbox).
// A native checkbox: Tab reaches it and Space ticks it.
(function () {
  "use strict";
  var shown = false;

  function apply() {
    var boxes = document.querySelectorAll("[data-heatmap-toggle]");
    for (var i = 0; i < boxes.length; i += 1) {
      boxes[i].checked = shown;
      var figure = boxes[i].closest("figure");
      if (figure) { figure.classList.toggle("heatmap-shown", shown); }
    }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!target || !target.matches || !target.matches("[data-heatmap-toggle]")) { return; }
    shown = target.checked;
    apply();
  });

  // Only added nodes are watched (not attributes), so apply() does not wake it again.
  var root = document.getElementById("result") || document.body;
  new MutationObserver(apply).observe(root, { childList: true, subtree: true });
  apply();
})();
