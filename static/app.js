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

// ---- Time: local or UTC (browseux) ----
// The server writes every <time datetime> in UTC so its HTML is the same for
// everyone (and cacheable); this rewrites them in the reader's time zone
// unless they chose UTC, remembered in localStorage like the theme. The
// range form's date-time pickers read and write in the same zone.
(function times() {
  const key = "tailscope-tz";
  const pad = (n, w) => String(n).padStart(w || 2, "0");
  const zoneName = () => {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "local"; } catch (e) { return "local"; }
  };
  const utc = () => localStorage.getItem(key) === "utc";
  // parts of d in the chosen zone
  function parts(d) {
    return utc()
      ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()]
      : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
  }
  // text writes d in format fmt; an interval's end ("end") is a clock
  // alone when it falls on the day of from, its start.
  function text(d, fmt, from) {
    const [y, mo, da, h, mi, s, ms] = parts(d);
    const clock = pad(h) + ":" + pad(mi) + ":" + pad(s);
    if (fmt === "end") {
      const f = from && !isNaN(from) ? parts(from) : null;
      fmt = f && f[0] === y && f[1] === mo && f[2] === da ? "time" : "datetime";
    }
    let out = fmt === "time" ? clock : y + "-" + pad(mo) + "-" + pad(da) + " " + clock;
    if (fmt === "datetime-ms") out += "." + pad(ms, 3);
    return utc() ? out + " UTC" : out;
  }
  // "YYYY-MM-DDTHH:MM:SS" for <input type="datetime-local">
  function pickerValue(d) {
    const [y, mo, da, h, mi, s] = parts(d);
    return y + "-" + pad(mo) + "-" + pad(da) + "T" + pad(h) + ":" + pad(mi) + ":" + pad(s);
  }
  function fromPicker(v) {
    if (!v) return null;
    if (v.length === 16) v += ":00";
    const d = utc() ? new Date(v + "Z") : new Date(v);
    return isNaN(d) ? null : d;
  }
  function render() {
    for (const el of document.querySelectorAll("time[datetime]")) {
      const d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) continue;
      el.textContent = text(d, el.dataset.fmt || "datetime", el.dataset.from && new Date(el.dataset.from));
      el.title = utc() ? "" : "your time zone (" + zoneName() + "); " + d.toISOString().replace("T", " ").replace(".000Z", "Z");
    }
    // Time-axis tick labels: the server drew them in UTC at round UTC
    // times; in another zone a day tick that is not local midnight says
    // its hour too.
    const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    for (const el of document.querySelectorAll("svg text[data-t]")) {
      const d = new Date(el.dataset.t);
      if (isNaN(d)) continue;
      const [, mo, da, h, mi, s] = parts(d);
      const day = months[mo - 1] + " " + da, clock = pad(h) + ":" + pad(mi);
      let fmt = el.dataset.tick;
      if (fmt === "date" && (h !== 0 || mi !== 0)) fmt = "datetime";
      el.textContent = fmt === "date" ? day : fmt === "datetime" ? day + " " + clock : fmt === "clock-s" ? clock + ":" + pad(s) : clock;
    }
    for (const b of document.querySelectorAll("[data-tz-toggle]")) {
      b.setAttribute("aria-pressed", String(utc()));
      b.textContent = utc() ? "UTC" : "Local time";
      b.title = utc() ? "Times are in UTC; click for your time zone (" + zoneName() + ")" : "Times are in your time zone (" + zoneName() + "); click for UTC";
    }
    fillPickers();
  }
  function fillPickers() {
    const resolved = document.querySelector("[data-testid=range-resolved]");
    for (const p of document.querySelectorAll("[data-range-pick]")) {
      p.hidden = false;
      const iso = resolved && resolved.dataset[p.dataset.rangePick];
      if (iso) p.value = pickerValue(new Date(iso));
    }
  }
  document.addEventListener("change", (e) => {
    const p = e.target.closest && e.target.closest("[data-range-pick]");
    if (!p) return;
    const d = fromPicker(p.value);
    const input = p.form ? p.form.elements[p.dataset.rangePick] : p.parentElement.querySelector("input[name=" + p.dataset.rangePick + "]");
    const target = input || document.querySelector("form[data-range-form] input[name=" + p.dataset.rangePick + "]");
    if (d && target) target.value = d.toISOString().replace(".000Z", "Z");
  });
  document.addEventListener("click", (e) => {
    if (!e.target.closest("[data-tz-toggle]")) return;
    localStorage.setItem(key, utc() ? "local" : "utc");
    render();
  });
  render();
  // Components inserted later (fragments) carry <time> elements too.
  window.tailscopeTimes = render;
})();

// ---- Sortable tables (browseux) ----
// A table[data-sortable] sorts by a heading's button without a reload. Rows
// are grouped in <tbody class="sort-group">: groups sort by their first row
// (a service), the other rows sort within their group (its endpoints).
// Numbers sort largest first on the first press, text A to Z. The order is
// kept in the URL (?order=p99-desc) so a copied link shows it.
(function sortableTables() {
  for (const table of document.querySelectorAll("table[data-sortable]")) {
    const heads = Array.from(table.tHead.rows[0].cells);
    const value = (row, col) => {
      const cell = row.cells[col];
      return cell ? cell.dataset.sort || "" : "";
    };
    function sort(col, dir) {
      const th = heads[col];
      const num = th.dataset.sortKind === "num";
      const sign = dir === "ascending" ? 1 : -1;
      const cmp = (a, b) => {
        const va = value(a, col), vb = value(b, col);
        const c = num ? Number(va) - Number(vb) : va.localeCompare(vb);
        return sign * c;
      };
      const groups = Array.from(table.tBodies);
      for (const g of groups) {
        const rows = Array.from(g.rows);
        const [head, ...rest] = g.classList.contains("sort-group") ? rows : [null, ...rows];
        // A .sort-tail row (e.g. "and 300 more endpoints") stays last.
        const body = rest.filter((r) => !r.classList.contains("sort-tail"));
        body.sort(cmp);
        g.append(...body, ...rest.filter((r) => r.classList.contains("sort-tail")));
        if (head) g.prepend(head);
      }
      if (groups.length > 1 && groups.every((g) => g.classList.contains("sort-group"))) {
        groups.sort((a, b) => cmp(a.rows[0], b.rows[0]));
        table.append(...groups);
      }
      for (const h of heads) {
        if (h === th) h.setAttribute("aria-sort", dir); else h.removeAttribute("aria-sort");
        const mark = h.querySelector(".sort-mark");
        if (mark) mark.textContent = h === th ? (dir === "ascending" ? " ↑" : " ↓") : "";
      }
    }
    table.tHead.addEventListener("click", (e) => {
      const btn = e.target.closest("button[data-sort-key]");
      if (!btn) return;
      const th = btn.closest("th");
      const col = heads.indexOf(th);
      const first = th.dataset.sortKind === "num" ? "descending" : "ascending";
      const cur = th.getAttribute("aria-sort");
      const dir = cur ? (cur === "ascending" ? "descending" : "ascending") : first;
      sort(col, dir);
      const u = new URL(location.href);
      u.searchParams.set("order", btn.dataset.sortKey + (dir === "ascending" ? "-asc" : "-desc"));
      history.replaceState(null, "", u);
    });
    const order = new URL(location.href).searchParams.get("order");
    if (order) {
      const m = /^(.+)-(asc|desc)$/.exec(order);
      const btn = m && table.tHead.querySelector('button[data-sort-key="' + CSS.escape(m[1]) + '"]');
      if (btn) sort(heads.indexOf(btn.closest("th")), m[2] === "asc" ? "ascending" : "descending");
    }
  }
})();

// ---- Chart selections: "what do these share?" (browseux) ----
// Drag across the latency heatmap (a time × latency region) or the
// histogram (a latency band) to get two links for the selection: its
// traces, and the outliers view of it (requests at or above the band's
// lower bound in its window), which ranks what they share. A plain click
// is the cell's or bar's own link.
(function chartSelections() {
  const fmtMs = (v) => (v >= 1000 ? (v / 1000).toPrecision(3) + " s" : Number(v.toPrecision(3)) + " ms");
  const fmtT = (iso) => {
    const el = document.createElement("time");
    el.setAttribute("datetime", iso);
    el.dataset.fmt = "time";
    el.textContent = iso;
    return el;
  };
  for (const box of document.querySelectorAll("[data-chart-select]")) {
    const svg = box.querySelector("svg");
    const marks = Array.from(svg.querySelectorAll("rect[data-lo]"));
    if (!marks.length) continue;
    const xy = box.dataset.chartSelect === "xy";
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
      const h = svg.viewBox.baseVal.height;
      brush.setAttribute("x", Math.min(start.x, p.x)); brush.setAttribute("width", Math.abs(p.x - start.x));
      brush.setAttribute("y", xy ? Math.min(start.y, p.y) : 0); brush.setAttribute("height", xy ? Math.abs(p.y - start.y) : h);
    });
    // A drag that ends outside the chart still ends.
    document.addEventListener("mouseup", (e) => {
      if (!start) return;
      const p = pt(e);
      const sel = { x0: Math.min(start.x, p.x), x1: Math.max(start.x, p.x), y0: Math.min(start.y, p.y), y1: Math.max(start.y, p.y) };
      start = null;
      brush.remove();
      if (sel.x1 - sel.x0 < 4 && (!xy || sel.y1 - sel.y0 < 4)) return; // a click
      const ctm = svg.getScreenCTM().inverse();
      let from = null, to = null, lo = Infinity, hi = 0;
      for (const m of marks) {
        const r = m.getBoundingClientRect();
        const a = svg.createSVGPoint(); a.x = r.left; a.y = r.top;
        const b = svg.createSVGPoint(); b.x = r.right; b.y = r.bottom;
        const pa = a.matrixTransform(ctm), pb = b.matrixTransform(ctm);
        if (pb.x < sel.x0 || pa.x > sel.x1) continue;
        if (xy && (pb.y < sel.y0 || pa.y > sel.y1)) continue;
        if (m.dataset.from && (from === null || m.dataset.from < from)) from = m.dataset.from;
        if (m.dataset.to && (to === null || m.dataset.to > to)) to = m.dataset.to;
        lo = Math.min(lo, Number(m.dataset.lo)); hi = Math.max(hi, Number(m.dataset.hi));
      }
      if (lo === Infinity) return;
      show(box, { from: from || box.dataset.from, to: to || box.dataset.to, lo, hi, timed: from !== null });
    });
  }
  function show(box, s) {
    let panel = box.querySelector(".chart-selection");
    if (!panel) {
      panel = document.createElement("div");
      panel.className = "chart-selection";
      panel.setAttribute("role", "group");
      panel.setAttribute("aria-label", "Selection");
      panel.dataset.testid = "chart-selection";
      panel.addEventListener("keydown", (e) => { if (e.key === "Escape") panel.remove(); });
      box.append(panel);
    }
    const link = (base, params, text, testid) => {
      const u = new URL(base, location.href);
      for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
      const a = document.createElement("a");
      a.href = u.pathname + u.search;
      a.textContent = text;
      a.dataset.testid = testid;
      return a;
    };
    const what = document.createElement("span");
    what.append(fmtMs(s.lo) + " – " + fmtMs(s.hi));
    if (s.timed) what.append(", ", fmtT(s.from), " – ", fmtT(s.to));
    const share = link(box.dataset.outliersUrl, { from: s.from, to: s.to, threshold_ms: String(s.lo) },
      "What do requests ≥ " + fmtMs(s.lo) + (s.timed ? " in this time" : "") + " share? →", "selection-outliers");
    const traces = link(box.dataset.tracesUrl, { from: s.from, to: s.to, min_ms: String(s.lo), max_ms: String(s.hi) }, "List these traces", "selection-traces");
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "×";
    close.setAttribute("aria-label", "Clear the selection");
    close.addEventListener("click", () => panel.remove());
    panel.replaceChildren("Selected ", what, " · ", share, " · ", traces, " ", close);
    if (window.tailscopeTimes) window.tailscopeTimes();
    share.focus();
  }
})();

// ---- Attribute autocomplete (browseux) ----
// The search form's attribute box suggests keys, then, once "key=" is
// typed, that key's most frequent values, from /api/v1/attributes (the
// store's top keys and values of a bounded sample, for the form's service
// and window), through the browser's own <datalist>.
(function attributeSuggestions() {
  const input = document.querySelector("input[data-attr-suggest]");
  if (!input || !input.list) return;
  const list = input.list, form = input.form, base = input.dataset.attrSuggest;
  const cache = new Map();
  let timer = null, seq = 0;
  async function suggest() {
    const text = input.value;
    const eq = text.indexOf("=");
    const params = new URLSearchParams();
    for (const k of ["from", "to", "service"]) {
      const el = form.elements[k];
      if (el && el.value) params.set(k, el.value);
    }
    let path = "/keys", prefix = text, key = "";
    if (eq >= 0) {
      key = text.slice(0, eq).trim();
      prefix = text.slice(eq + 1);
      path = "/values";
      params.set("key", key);
    }
    if (prefix) params.set("prefix", prefix);
    params.set("limit", "20");
    const url = base + path + "?" + params;
    const mine = ++seq;
    let body = cache.get(url);
    if (!body) {
      try {
        const res = await fetch(url, { headers: { Accept: "application/json" } });
        if (!res.ok) return;
        body = await res.json();
        cache.set(url, body);
      } catch (e) { return; }
    }
    if (mine !== seq) return; // a later keystroke won
    list.replaceChildren(...body.values.map((v) => {
      const o = document.createElement("option");
      o.value = key ? key + "=" + v.value : v.value + "=";
      o.label = v.count + (v.count === 1 ? " span" : " spans");
      return o;
    }));
  }
  const later = () => { clearTimeout(timer); timer = setTimeout(suggest, 150); };
  input.addEventListener("input", later);
  input.addEventListener("focus", later);
  if (form.elements.service) form.elements.service.addEventListener("change", () => { cache.clear(); });
})();

// ---- Chart hover values (browseux) ----
// Each bucket of a time chart is a column carrying its values; hovering it
// shows them next to the pointer with the time in the zone the reader
// chose. The column's <title> says the same without script.
(function chartHover() {
  const tip = document.createElement("div");
  tip.className = "chart-tip";
  tip.hidden = true;
  tip.dataset.testid = "chart-tip";
  tip.setAttribute("role", "status");
  document.body.append(tip);
  document.addEventListener("mouseover", (e) => {
    const col = e.target.closest && e.target.closest("rect.hover-col");
    if (!col) { tip.hidden = true; return; }
    const t = document.createElement("time");
    t.setAttribute("datetime", col.dataset.t);
    t.dataset.fmt = "datetime";
    const head = document.createElement("strong");
    head.append(t);
    if (col.hasAttribute("data-partial")) head.append(" (still filling)");
    tip.replaceChildren(head, "\n" + col.dataset.lines);
    if (window.tailscopeTimes) window.tailscopeTimes();
    tip.hidden = false;
  });
  document.addEventListener("mousemove", (e) => {
    if (tip.hidden) return;
    const x = Math.min(e.clientX + 14, innerWidth - tip.offsetWidth - 8);
    tip.style.left = x + "px";
    tip.style.top = (e.clientY + 14) + "px";
  });
})();

// ---- Flame graph zoom (browseux) ----
// Clicking a frame (or Enter on it) zooms the graph into it: its subtree
// fills the width, its ancestors span the top, other frames hide. The top
// frame or Escape zooms out. Frames carry their own x, width and depth
// (fractions of the whole graph), so graphs inserted later zoom too.
(function flameZoom() {
  function zoom(flame, target) {
    const x = Number(target.dataset.x), w = Number(target.dataset.w), d = Number(target.dataset.depth);
    const whole = d === 0;
    for (const f of flame.querySelectorAll(".frame")) {
      const fx = Number(f.dataset.x), fw = Number(f.dataset.w), fd = Number(f.dataset.depth);
      const inside = fx >= x - 1e-9 && fx + fw <= x + w + 1e-9;
      const above = fd < d && fx <= x + 1e-9 && fx + fw >= x + w - 1e-9;
      if (whole) {
        f.hidden = false;
        f.style.left = fx * 100 + "%";
        f.style.width = fw * 100 + "%";
        f.classList.remove("zoom-parent");
      } else if (above) {
        f.hidden = false;
        f.style.left = "0%";
        f.style.width = "100%";
        f.classList.add("zoom-parent");
      } else if (fd >= d && inside) {
        f.hidden = false;
        f.style.left = (fx - x) / w * 100 + "%";
        f.style.width = fw / w * 100 + "%";
        f.classList.remove("zoom-parent");
      } else {
        f.hidden = true;
      }
    }
    flame.dataset.zoomed = whole ? "" : target.dataset.name;
  }
  const rootOf = (flame) => flame.querySelector('.frame[data-depth="0"]');
  document.addEventListener("click", (e) => {
    const f = e.target.closest && e.target.closest(".flame .frame[data-x]");
    if (!f) return;
    const flame = f.closest(".flame");
    // A parent strip zooms out to that parent; the top frame to the whole.
    zoom(flame, f);
    flame.querySelectorAll(".frame.zoomed").forEach((z) => z.classList.remove("zoomed"));
    f.classList.add("zoomed");
  });
  document.addEventListener("keydown", (e) => {
    const f = e.target.closest && e.target.closest(".flame .frame[data-x]");
    if (f && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); f.click(); return; }
    if (e.key === "Escape") {
      for (const flame of document.querySelectorAll(".flame[data-zoomed]")) {
        if (flame.dataset.zoomed) { const r = rootOf(flame); if (r) r.click(); }
      }
    }
  });
})();

// "Copy link": the view at absolute times onto the clipboard. Without
// script (or clipboard) the link still opens that view, to copy from the
// address bar.
document.addEventListener("click", async (e) => {
  const a = e.target.closest && e.target.closest("a[data-copy-link]");
  if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  e.preventDefault();
  const text = a.href;
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch (_) {
    const t = document.createElement("textarea");
    t.value = text;
    t.setAttribute("readonly", "");
    t.style.position = "fixed";
    t.style.opacity = "0";
    document.body.append(t);
    t.select();
    ok = document.execCommand("copy");
    t.remove();
  }
  if (!ok) { location.href = text; return; }
  const label = a.textContent;
  a.textContent = "Copied";
  a.setAttribute("aria-live", "polite");
  setTimeout(() => { a.textContent = label; }, 2000);
});
