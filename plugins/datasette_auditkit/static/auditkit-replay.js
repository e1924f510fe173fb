// Starts the asciinema player (loaded before this file) on #player, from its data-* attributes.
(function () {
  "use strict";
  function start() {
    var el = document.getElementById("player");
    if (!el) return;
    if (!window.AsciinemaPlayer) {
      el.textContent = "The player could not be loaded; the recording itself is linked below.";
      return;
    }
    var opts = { fit: "width", idleTimeLimit: 2, poster: "npt:0:1", preload: true };
    if (el.dataset.cols) opts.cols = parseInt(el.dataset.cols, 10);
    if (el.dataset.rows) opts.rows = parseInt(el.dataset.rows, 10);
    window.auditkitPlayer = window.AsciinemaPlayer.create(el.dataset.cast, el, opts);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
