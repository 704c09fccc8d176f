// Copy buttons: any element with data-copy puts that text on the clipboard.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const text = button.getAttribute("data-copy");
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = Object.assign(document.createElement("textarea"), { value: text });
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  // The labels come from the page (data-copied-label), so they are in the page's language.
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  button.classList.add("copied");
  button.textContent = button.getAttribute("data-copied-label") || "Copied";
  setTimeout(() => { button.classList.remove("copied"); button.textContent = label; }, 1500);
});

// Live bot replies: an element with data-stream-url shows the reply as the worker streams it (SSE);
// the thread's own polling shows the stored reply once the run has finished.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-stream-url]").forEach((box) => {
    if (!window.EventSource) return;
    const text = box.querySelector("[data-stream-text]");
    const source = new EventSource(box.getAttribute("data-stream-url"));
    source.onmessage = (event) => {
      box.hidden = false;
      text.textContent = JSON.parse(event.data).reply;
    };
    source.addEventListener("done", () => { source.close(); box.hidden = true; });
    source.onerror = () => { source.close(); box.hidden = true; };
  });
});

// Bar widths: templates put the percentage in data-width, because the Content-Security-Policy refuses
// style attributes; setting the width through the DOM is allowed. htmx.onLoad also covers swapped content
// (the batch progress bar polls), and runs once for the whole page at start.
function applyWidths(root) {
  const boxes = root.matches && root.matches("[data-width]") ? [root] : [];
  boxes.push(...root.querySelectorAll("[data-width]"));
  boxes.forEach((box) => {
    const percent = Number.parseFloat(box.getAttribute("data-width"));
    if (Number.isFinite(percent)) box.style.width = `${Math.min(100, Math.max(0, percent))}%`;
  });
}
if (window.htmx) {
  window.htmx.onLoad(applyWidths);
} else {
  document.addEventListener("DOMContentLoaded", () => applyWidths(document));
}

// Confirmations: a form with data-confirm asks before it submits (instead of an inline onsubmit).
document.addEventListener("submit", (event) => {
  const message = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});

// Phones: the menu button opens and closes the header's navigation (CSS shows it only with .open).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-menu-toggle]");
  if (!button) return;
  const bar = button.closest(".topbar");
  const open = !bar.classList.contains("open");
  bar.classList.toggle("open", open);
  button.setAttribute("aria-expanded", String(open));
});

// Sign-up: the store starts in the browser's time zone (an IANA name such as Asia/Shanghai); the server
// falls back to UTC when the field is empty or names a zone it does not know.
document.addEventListener("DOMContentLoaded", () => {
  let zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch { zone = ""; }
  document.querySelectorAll("input[data-browser-time-zone]").forEach((input) => {
    if (!input.value) input.value = zone;
  });
});

// Tool pages: when a run's result card arrives (the form's htmx swap), bring it into view, which on a
// phone is below the form.
document.addEventListener("htmx:afterSwap", (event) => {
  const result = event.detail.target && event.detail.target.querySelector("[data-run-result]");
  if (result && event.detail.target.id === "tool-panel") result.scrollIntoView({ behavior: "smooth", block: "start" });
});
