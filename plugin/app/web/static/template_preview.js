// Shows a template draft at work as it is typed: the form is sent to the preview frame
// (the same request the Preview button makes) a moment after the typing stops.
"use strict";
(function () {
  const form = document.getElementById("template-form");
  const button = document.getElementById("preview-button");
  const text = document.getElementById("text");
  const reminder = document.getElementById("reminder");
  if (!form || !button || !text) return;
  let waiting = 0;
  const soon = () => {
    window.clearTimeout(waiting);
    waiting = window.setTimeout(() => form.requestSubmit(button), 700);
  };
  text.addEventListener("input", soon);
  if (reminder) reminder.addEventListener("change", soon);
  form.requestSubmit(button);
})();
