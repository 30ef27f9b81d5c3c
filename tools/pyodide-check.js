// Written into every page of the course's JupyterLite site by tools/site.py (which fills in the __...__ values).
// The site's Python (Pyodide) comes from a CDN. Where that CDN is blocked or unreachable, the kernel never starts
// and the first cell just stays [*], the reason only in a hidden log. So, as soon as a notebook is open, this asks
// the CDN for Pyodide's entry point; when it does not answer within a few seconds, every open notebook shows, at
// its top, why its cells cannot run and what to use instead.
(function () {
  "use strict";
  var PYODIDE_URL = "__PYODIDE_URL__";
  var TIMEOUT_SECONDS = __TIMEOUT_SECONDS__;
  var ALTERNATIVES = "__ALTERNATIVES__";
  var CLASS = "course-pyodide-unavailable";
  var reason = null; // null: not known yet (or Pyodide is reachable); else why Python cannot start
  var probing = false;

  function probe() {
    if (probing) {
      return;
    }
    probing = true;
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, TIMEOUT_SECONDS * 1000);
    fetch(PYODIDE_URL, { method: "HEAD", cache: "no-store", signal: controller.signal })
      .then(function (response) {
        if (!response.ok) {
          reason = "it answered with HTTP status " + response.status;
        }
      })
      .catch(function (error) {
        reason = error && error.name === "AbortError"
          ? "it did not answer within " + TIMEOUT_SECONDS + " s"
          : "it could not be reached (blocked on this network, or you are offline)";
      })
      .then(function () {
        clearTimeout(timer);
        show();
      });
  }

  function banner() {
    var host = new URL(PYODIDE_URL).host;
    var note = document.createElement("div");
    note.className = CLASS;
    note.setAttribute("role", "alert");
    note.style.cssText = "margin: 8px 16px 12px 16px; padding: 12px 16px; border: 2px solid #d32f2f;" +
      " border-radius: 4px; background: #fdecea; color: #5f1412; font-size: 14px; line-height: 1.45;";
    note.innerHTML = "<strong>Python cannot start in this browser tab, so the cells of this notebook will not " +
      "run here.</strong><br>This site runs Python with Pyodide, which your browser downloads from " +
      "<code>" + host + "</code>, and " + reason + ". You can still read the notebook. To run it instead:" +
      "<ul style='margin: 6px 0 0 0; padding-left: 22px;'>" + ALTERNATIVES + "</ul>";
    return note;
  }

  function show() {
    if (reason === null) {
      return;
    }
    var panels = document.querySelectorAll(".jp-NotebookPanel");
    for (var i = 0; i < panels.length; i++) {
      if (panels[i].querySelector("." + CLASS)) {
        continue;
      }
      // Above the first cell, inside the notebook's scrolling area (a sibling of the cells, not one of them).
      var area = panels[i].querySelector(".jp-WindowedPanel-outer") || panels[i].querySelector(".jp-Notebook");
      if (area) {
        area.insertBefore(banner(), area.firstChild);
      }
    }
  }

  new MutationObserver(function () {
    if (document.querySelector(".jp-NotebookPanel")) {
      probe();
      show();
    }
  }).observe(document.documentElement, { childList: true, subtree: true });
})();
