// Follows a running sync: asks the JSON API each second how far it got, says so, and
// goes on to the overview when it is done. Without JavaScript the page reloads itself.
"use strict";
(function () {
  const box = document.getElementById("sync");
  const text = document.getElementById("sync-text");
  const bar = document.getElementById("sync-bar");
  if (!box || !text) return;
  const say = (status) => {
    if (status.state === "running") {
      text.textContent = status.resource
        ? `Reading ${status.resource}: ${status.records} records…`
        : "Reading the accounting system…";
    } else if (status.state === "done") {
      text.textContent = `Synced: ${status.clients} clients, ${status.invoices} invoices, ${status.left_out} records left out.`;
    } else if (status.state === "failed") {
      text.textContent = `The sync failed: ${status.error}.` + (status.hint ? ` ${status.hint}` : "");
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
