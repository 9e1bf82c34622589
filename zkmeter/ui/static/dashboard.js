// zkmeter dashboard: copy buttons (the only script; pages work without it).
"use strict";

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  // Fallback for browsers without the asynchronous clipboard API.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "absolute";
  area.style.left = "-9999px";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  document.body.removeChild(area);
  return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  copyText(button.dataset.copy).then(
    () => {
      button.textContent = "copied";
      button.classList.add("done");
      setTimeout(() => { button.textContent = "copy"; button.classList.remove("done"); }, 1500);
    },
    () => { button.textContent = "select and copy"; }
  );
});
