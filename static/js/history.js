// History page: "Select all on this page" for the bulk delete, and how many rows are ticked.
// Without JavaScript the box stays hidden and each row is ticked by hand.
(function () {
  "use strict";
  var form = document.getElementById("history-form");
  var all = document.getElementById("select-all");
  if (!form || !all) { return; }
  var boxes = Array.prototype.slice.call(form.querySelectorAll("input[type=checkbox][name=ids]"));
  var count = document.getElementById("selected-count");
  all.closest("label").hidden = false;

  function refresh() {
    var ticked = boxes.filter(function (box) { return box.checked; }).length;
    all.checked = ticked > 0 && ticked === boxes.length;
    all.indeterminate = ticked > 0 && ticked < boxes.length;
    if (count) { count.textContent = ticked ? ticked + " selected" : ""; }
  }

  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
    refresh();
  });
  boxes.forEach(function (box) { box.addEventListener("change", refresh); });
  // Ticks the browser restored on "back" count too.
  refresh();
})();
