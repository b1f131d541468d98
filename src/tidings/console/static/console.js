// Tidings console: live fragments (templates/_live.html). Hand-written, no build step.
//
// <div data-live="/url" data-live-every="2"> is refreshed from /url (an HTML fragment,
// swapped in by htmx so its hx- attributes work) every `every` seconds:
//  - an answer slower than SLOW_MS, or a failure, doubles the wait (up to MAX_MS);
//    a quick one brings it back to `every`;
//  - nothing is fetched while the tab is hidden; it resumes when the tab shows again;
//  - an answer holding [data-live-final] stops the polling (a send that is over).
(function () {
  "use strict";
  var SLOW_MS = 1000;
  var MAX_MS = 60000;

  function poll(el) {
    var base = Math.max(0.5, parseFloat(el.dataset.liveEvery || "2")) * 1000;
    var wait = base;
    var timer = null;

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(tick, wait);
    }

    function tick() {
      if (!el.isConnected) return;
      if (document.hidden) {
        document.addEventListener("visibilitychange", function resume() {
          if (document.hidden) return;
          document.removeEventListener("visibilitychange", resume);
          tick();
        });
        return;
      }
      var started = Date.now();
      htmx.ajax("GET", el.dataset.live, { source: el, target: el, swap: "innerHTML" }).then(
        function () {
          var took = Date.now() - started;
          wait = took > SLOW_MS ? Math.min(wait * 2, MAX_MS) : base;
          el.dataset.liveWait = String(wait);
          if (el.querySelector("[data-live-final]")) {
            el.dataset.liveDone = "true";
            return;
          }
          schedule();
        },
        function () {
          wait = Math.min(wait * 2, MAX_MS);
          el.dataset.liveWait = String(wait);
          schedule();
        }
      );
    }

    if (el.querySelector("[data-live-final]")) {
      el.dataset.liveDone = "true";
      return;
    }
    schedule();
  }

  function start(root) {
    var found = root.querySelectorAll("[data-live]:not([data-live-started])");
    for (var i = 0; i < found.length; i++) {
      found[i].dataset.liveStarted = "true";
      poll(found[i]);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    start(document);
    // A fragment htmx swaps in may hold live parts of its own.
    document.body.addEventListener("htmx:afterSettle", function (event) {
      start(event.target);
    });
  });
})();
