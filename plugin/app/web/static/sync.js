// Follows a running sync: asks the JSON API each second how far it got, says so in the
// page's language (its sentences come in the page, with {placeholders}), and goes on to
// the overview when it is done. Without JavaScript the page reloads itself.
"use strict";
(function () {
  const box = document.getElementById("sync");
  const text = document.getElementById("sync-text");
  const bar = document.getElementById("sync-bar");
  if (!box || !text) return;
  const fill = (sentence, values) =>
    sentence.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
  const say = (status) => {
    if (status.state === "running") {
      text.textContent = status.resource
        ? fill(box.dataset.reading, status)
        : box.dataset.readingStart;
    } else if (status.state === "done") {
      text.textContent = fill(box.dataset.done, status);
    } else if (status.state === "failed") {
      text.textContent = fill(box.dataset.failed, status) + (status.hint ? ` ${status.hint}` : "");
    }
  };
  const ask = () => {
    fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((answer) => (answer.ok ? answer.json() : Promise.reject(answer.status)))
      .then((status) => {
        say(status);
        if (status.state === "running") {
          window.setTimeout(ask, 1000);
        } else {
          if (bar) bar.remove();
          if (status.state === "done") window.location.assign(box.dataset.doneUrl);
        }
      })
      .catch(() => window.setTimeout(ask, 3000));
  };
  ask();
})();
