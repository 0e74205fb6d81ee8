// tailscope page behaviour. Pages work without it (every state is a URL);
// this adds the theme toggle, heatmap region selection, flame graph search
// and delete confirmations (the trace waterfall has its own waterfall.js).
"use strict";

(function theme() {
  const root = document.documentElement;
  const saved = localStorage.getItem("tailscope-theme");
  if (saved === "light" || saved === "dark") root.dataset.theme = saved;
  document.addEventListener("click", (e) => {
    const btn = e.target.closest("[data-theme-toggle]");
    if (!btn) return;
    const dark = root.dataset.theme ? root.dataset.theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
    root.dataset.theme = dark ? "light" : "dark";
    localStorage.setItem("tailscope-theme", root.dataset.theme);
  });
})();

document.addEventListener("submit", (e) => {
  const msg = e.target.dataset && e.target.dataset.confirm;
  if (msg && !confirm(msg)) e.preventDefault();
});

// Heatmap: drag across cells to list the traces of a region.
(function heatmap() {
  for (const svg of document.querySelectorAll("svg.heatmap[data-select-url]")) {
    const cells = Array.from(svg.querySelectorAll("rect.cell"));
    if (!cells.length) continue;
    let start = null, brush = null;
    const pt = (e) => { const p = svg.createSVGPoint(); p.x = e.clientX; p.y = e.clientY; return p.matrixTransform(svg.getScreenCTM().inverse()); };
    svg.addEventListener("mousedown", (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      start = pt(e);
      brush = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      brush.setAttribute("class", "brush");
      svg.append(brush);
    });
    svg.addEventListener("mousemove", (e) => {
      if (!start) return;
      const p = pt(e);
      brush.setAttribute("x", Math.min(start.x, p.x)); brush.setAttribute("y", Math.min(start.y, p.y));
      brush.setAttribute("width", Math.abs(p.x - start.x)); brush.setAttribute("height", Math.abs(p.y - start.y));
    });
    svg.addEventListener("mouseup", (e) => {
      if (!start) return;
      const p = pt(e);
      const box = { x0: Math.min(start.x, p.x), x1: Math.max(start.x, p.x), y0: Math.min(start.y, p.y), y1: Math.max(start.y, p.y) };
      start = null;
      brush.remove();
      if (box.x1 - box.x0 < 4 && box.y1 - box.y0 < 4) return; // a click: the cell's own link handles it
      const ctm = svg.getScreenCTM().inverse();
      let from = null, to = null, lo = Infinity, hi = 0;
      for (const c of cells) {
        const r = c.getBoundingClientRect();
        const a = svg.createSVGPoint(); a.x = r.left; a.y = r.top;
        const b = svg.createSVGPoint(); b.x = r.right; b.y = r.bottom;
        const pa = a.matrixTransform(ctm), pb = b.matrixTransform(ctm);
        if (pb.x < box.x0 || pa.x > box.x1 || pb.y < box.y0 || pa.y > box.y1) continue;
        if (from === null || c.dataset.from < from) from = c.dataset.from;
        if (to === null || c.dataset.to > to) to = c.dataset.to;
        lo = Math.min(lo, Number(c.dataset.lo)); hi = Math.max(hi, Number(c.dataset.hi));
      }
      if (from === null) return;
      const u = new URL(svg.dataset.selectUrl, location.href);
      u.searchParams.set("from", from); u.searchParams.set("to", to);
      u.searchParams.set("min_ms", String(lo)); u.searchParams.set("max_ms", String(hi));
      location.href = u.toString();
    });
  }
})();

// Flame graph: highlight frames whose function matches the search box.
// A page has one box for all its graphs; a graph inserted later (the
// waterfall's profile tab) brings its own, bound to its own frames.
function bindFlameSearch(root) {
  const input = root.querySelector("[data-flame-search]");
  if (!input) return;
  const frames = Array.from(root.querySelectorAll(".flame .frame"));
  input.addEventListener("input", () => {
    const q = input.value.trim().toLowerCase();
    for (const f of frames) {
      const hit = q !== "" && f.dataset.name.toLowerCase().includes(q);
      f.classList.toggle("match", hit);
      f.classList.toggle("dim", q !== "" && !hit);
    }
  });
}
bindFlameSearch(document);
