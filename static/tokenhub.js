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
  button.classList.add("copied");
  button.textContent = "Copied";
  setTimeout(() => { button.classList.remove("copied"); button.textContent = "Copy"; }, 1500);
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
