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
