/* Copy buttons: <button data-copy-target="ID" hidden> copies the value of the element #ID.
   The button stays hidden without JavaScript; the field is read-only and can be selected by hand. */
(function () {
  "use strict";

  function report(button, text) {
    var status = button.parentElement.querySelector("[data-copy-status]");
    if (status) { status.textContent = text; }
  }

  function fallbackCopy(button, field) {
    field.focus();
    field.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    report(button, ok ? "Copied." : "Press Ctrl+C (⌘C) to copy.");
  }

  document.querySelectorAll("[data-copy-target]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy-target"));
    if (!field) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = "value" in field ? field.value : field.textContent;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(
          function () { report(button, "Copied."); },
          function () { fallbackCopy(button, field); }
        );
      } else {
        fallbackCopy(button, field);
      }
    });
  });
})();
