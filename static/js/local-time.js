// Times in the viewer's own time zone. The server writes every time with its zone, e.g.
// <time datetime="2026-12-02T07:38:00+00:00">2026-12-02 07:38 UTC</time>; this rewrites such a
// text in the browser's zone with its name ("2026-12-02 08:38 CET") and keeps the server's text
// in the tooltip. Without JavaScript the server's time, with its zone, stays. Times that are not
// in that form ("3 minutes ago") keep their text and get the local time as a tooltip. Times put
// in later (pages that update themselves) are converted too.
(function () {
  "use strict";
  if (!window.Intl || !Intl.DateTimeFormat) { return; }
  var SERVER_TEXT = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?( \S+)?$/;
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function shortZone(date, locale) {
    try {
      var parts = new Intl.DateTimeFormat(locale, { timeZoneName: "short" }).formatToParts(date);
      for (var i = 0; i < parts.length; i += 1) {
        if (parts[i].type === "timeZoneName") { return parts[i].value; }
      }
    } catch (e) { /* an old browser: no name */ }
    return "";
  }

  function zoneName(date) {
    // A name people know ("UTC", "EST", "CET") where English has one, else the offset ("GMT+2").
    var us = shortZone(date, "en-US");
    if (us && !/^GMT[+-]/.test(us)) { return us; }
    var gb = shortZone(date, "en-GB");
    if (gb && !/^GMT[+-]/.test(gb)) { return gb; }
    return us || gb;
  }

  function localise(el) {
    el.setAttribute("data-local", "");
    var value = el.getAttribute("datetime") || "";
    if (value.indexOf("T") < 0) { return; }  // a day alone has no time zone
    var date = new Date(value);
    if (isNaN(date.getTime())) { return; }
    var local = date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate())
      + " " + pad(date.getHours()) + ":" + pad(date.getMinutes());
    var text = (el.textContent || "").trim();
    var match = SERVER_TEXT.exec(text);
    var name = zoneName(date);
    if (match) {
      if (match[1]) { local += ":" + pad(date.getSeconds()); }
      local += name ? " " + name : "";
      if (local === text) { return; }
      el.textContent = local;
      el.setAttribute("title", "In your time zone" + (zone ? " (" + zone + ")" : "") + "; on the server: " + text);
    } else if (!el.getAttribute("title")) {
      el.setAttribute("title", local + (name ? " " + name : ""));
    }
  }

  function localiseAll() {
    Array.prototype.forEach.call(document.querySelectorAll("time[datetime]:not([data-local])"), localise);
  }

  localiseAll();
  if (window.MutationObserver) {
    new MutationObserver(localiseAll).observe(document.body, { childList: true, subtree: true });
  }
})();
