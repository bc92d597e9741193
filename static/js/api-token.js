// A token just created on the account page, handed to the API page's examples in the browser
// only: the account page keeps the new key in sessionStorage (this tab, until it is closed), the
// API page writes it into its `export TOKEN=...` line. It never goes back to the server. The
// account page also forgets a kept key whose token is no longer listed as active (revoked).
(function () {
  "use strict";
  var KEY = "deepfake-detector.new-api-token";
  var storage;
  try { storage = window.sessionStorage; } catch (e) { return; }  // storage blocked
  if (!storage) { return; }

  function read() {
    try { return JSON.parse(storage.getItem(KEY) || "null"); } catch (e) { return null; }
  }

  // --- Account page ---------------------------------------------------------------------
  var fresh = document.getElementById("new-token-key");
  if (fresh && fresh.value) {
    storage.setItem(KEY, JSON.stringify({ key: fresh.value, name: fresh.getAttribute("data-token-name") || "" }));
    var hint = document.getElementById("new-token-api-hint");
    if (hint) { hint.hidden = false; }
  } else if (document.getElementById("tokens-heading")) {
    var kept = read();
    if (kept && kept.key) {
      var active = Array.prototype.some.call(
        document.querySelectorAll("tr[data-key-prefix]"),
        function (row) { return kept.key.indexOf(row.getAttribute("data-key-prefix")) === 0; }
      );
      if (!active) { storage.removeItem(KEY); }
    }
  }

  // --- API page ---------------------------------------------------------------------------
  var slot = document.getElementById("token-slot");
  if (!slot) { return; }
  var note = document.getElementById("token-note");
  var name = document.getElementById("token-name");
  var forget = document.getElementById("token-forget");
  var status = document.getElementById("token-status");
  var token = read();
  if (!token || !token.key) { return; }
  slot.textContent = token.key;
  if (name && token.name) { name.textContent = " “" + token.name + "”"; }
  if (note) { note.hidden = false; }
  if (forget) {
    forget.addEventListener("click", function () {
      storage.removeItem(KEY);
      slot.textContent = slot.getAttribute("data-placeholder") || "paste-your-token-here";
      if (note) { note.hidden = true; }
      if (status) {
        status.textContent = "Forgotten: the example shows a placeholder again. Paste your token there yourself.";
        status.focus();
      }
    });
  }
})();
