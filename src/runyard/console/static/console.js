// Runyard console: the few things a server-rendered page can't do alone (no framework, no CDN).
"use strict";

// Live logs: <pre data-follow="URL" data-cursor="..."> polls URL?cursor=... and appends the new lines.
function follow(pre) {
  const toggle = pre.closest("section, main").querySelector("[data-follow-toggle]");
  const note = pre.parentElement.querySelector("[data-empty-note]");
  let cursor = pre.dataset.cursor || "";
  async function poll() {
    if (!toggle || toggle.checked) {
      try {
        const response = await fetch(pre.dataset.follow + "?cursor=" + encodeURIComponent(cursor),
                                     { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (response.ok) {
          const answer = await response.json();
          cursor = answer.cursor;
          if (answer.lines.length) {
            const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
            pre.append(answer.lines.join("\n") + "\n");
            if (note) note.hidden = true;
            if (atBottom) pre.scrollTop = pre.scrollHeight;
          }
        }
      } catch (error) { /* the server restarts or the network blips: try again on the next tick */ }
    }
    setTimeout(poll, 1000);
  }
  poll();
}

// A service whose operation is in progress: poll its status and reload the page when it changes.
function watchStatus(element) {
  async function poll() {
    try {
      const response = await fetch(element.dataset.statusUrl, { credentials: "same-origin" });
      if (response.ok) {
        const answer = await response.json();
        if (answer.status !== element.dataset.status) { window.location.reload(); return; }
      }
    } catch (error) { /* try again */ }
    setTimeout(poll, 1500);
  }
  setTimeout(poll, 1500);
}

// Wizard: show only the fields of the chosen option (data-when="name=value").
function conditional(form) {
  const blocks = form.querySelectorAll("[data-when]");
  function update() {
    blocks.forEach((block) => {
      const [name, value] = block.dataset.when.split("=");
      const chosen = form.querySelector(`input[name="${name}"]:checked`);
      block.hidden = chosen !== null && chosen.value !== value;
    });
  }
  form.addEventListener("change", update);
  update();
}

document.querySelectorAll("pre[data-follow]").forEach(follow);
document.querySelectorAll("[data-status-url]").forEach(watchStatus);
document.querySelectorAll("form").forEach((form) => {
  if (form.querySelector("[data-when]")) conditional(form);
  if (form.dataset.confirm) form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
});
document.querySelectorAll("[data-download]").forEach((button) => {
  button.addEventListener("click", () => {
    const text = document.getElementById(button.dataset.downloadFrom).textContent;
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    link.download = button.dataset.download;
    link.click();
    URL.revokeObjectURL(link.href);
  });
});
