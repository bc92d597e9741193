// A video's result page: the timeline's points, the frame strip and the tracks table's times
// play the video from their moment (any element with data-time), and a line on the timeline
// follows the video while it plays. Listeners sit on the document, so the panel that
// detection-status.js swaps in while the video is analysed needs no set-up of its own.
(function () {
  "use strict";

  function video() { return document.getElementById("detection-video"); }

  function seek(target) {
    var player = video();
    var time = parseFloat(target.getAttribute("data-time"));
    if (!player || !isFinite(time)) { return; }
    player.currentTime = Math.max(0, time);
    // On a phone the plot is below the video: bring the video into view to watch the moment.
    var box = player.getBoundingClientRect();
    if (box.bottom < 0 || box.top > window.innerHeight) {
      player.scrollIntoView({ block: "center" });
    }
    mark(player);
  }

  function seekTarget(event) {
    var target = event.target;
    return target && target.closest ? target.closest("[data-time]") : null;
  }

  document.addEventListener("click", function (event) {
    var target = seekTarget(event);
    if (!target) { return; }
    event.preventDefault();
    seek(target);
  });

  // Points are SVG circles: Enter and Space act on them like buttons; the arrow keys move
  // along a track (only its first point is in the Tab order), Home and End to its ends.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (!target || !target.classList || !target.classList.contains("timeline-point")) { return; }
    var points = Array.prototype.slice.call(target.parentNode.querySelectorAll(".timeline-point"));
    var at = points.indexOf(target);
    var next = null;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      seek(target);
      return;
    }
    if (event.key === "ArrowRight" || event.key === "ArrowUp") { next = points[at + 1]; }
    if (event.key === "ArrowLeft" || event.key === "ArrowDown") { next = points[at - 1]; }
    if (event.key === "Home") { next = points[0]; }
    if (event.key === "End") { next = points[points.length - 1]; }
    if (!next) { return; }
    event.preventDefault();
    for (var i = 0; i < points.length; i += 1) { points[i].setAttribute("tabindex", "-1"); }
    next.setAttribute("tabindex", "0");
    next.focus();
  });

  // The current moment on the timeline (an SVG attribute: the pages allow no inline style).
  function mark(player) {
    var plot = document.querySelector("[data-video-timeline]");
    var line = document.getElementById("timeline-now");
    if (!plot || !line || !player) { return; }
    var duration = parseFloat(plot.getAttribute("data-duration"));
    var margin = parseFloat(plot.getAttribute("data-x-margin")) || 0;
    if (!(duration > 0)) { return; }
    var share = Math.min(Math.max(player.currentTime / duration, 0), 1);
    var x = (margin + (100 - 2 * margin) * share).toFixed(3) + "%";
    line.setAttribute("x1", x);
    line.setAttribute("x2", x);
    line.setAttribute("visibility", "visible");
  }

  // Media events do not bubble: listened to on the way down instead.
  ["timeupdate", "seeked"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      if (event.target && event.target.id === "detection-video") { mark(event.target); }
    }, true);
  });
})();
