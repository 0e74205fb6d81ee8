// tailscope trace waterfall (helpers and minimap: waterfall_parts.js). The
// page carries the first rows (enough to read a trace without JavaScript);
// this script fetches every row of the
// trace as columns (GET /api/v1/traces/{id}/waterfall) and renders only
// the rows on screen, so a 50,000-span trace costs a few hundred DOM nodes.
// It adds collapse/expand, find with next/previous (opening collapsed
// subtrees), ?span= permalinks that scroll to and open the span, a minimap,
// drag-to-zoom on the time axis and Jaeger-style keyboard shortcuts.
"use strict";

(function waterfall() {
  const wf = document.querySelector("[data-waterfall]");
  if (!wf || !wf.dataset.rows) return;
  const body = wf.querySelector(".wf-rows");
  const axis = wf.querySelector("[data-axis]");
  const minimap = wf.querySelector("[data-minimap]");
  const panel = document.querySelector("[data-span-detail]");
  const search = document.querySelector("[data-span-search]");
  const counter = document.querySelector("[data-span-search-count]");
  const help = document.querySelector("[data-wf-help]");
  const ROW_H = 28, OVERSCAN = 8;

  let T = null, N = 0; // the rows, as served, and how many
  let open, size, vis, visN = 0; // expanded flags, subtree sizes, visible rows (ascending)
  const idx = new Map(); // span id → row
  let view = { from: 0, to: 1 }; // the time axis window, ms from the trace's start
  let cursor = -1, selected = -1, frame = 0, map = null;
  let matches = [], matchAt = -1, isMatch = new Uint8Array(0), lower = null, lastQ = "";
  let spacer = null, shown = new Map(); // row → element on screen
  // The minimap's view of the waterfall's state.
  const wv = { get T() { return T; }, get vis() { return vis; }, get visN() { return visN; }, get view() { return view; },
    body, ROW_H, posOf: (i) => posOf(i), zoom: (a, b) => zoom(a, b), schedule: () => schedule() };

  // The rows are fetched once the page has painted, so its first paint
  // never waits for (or shares the connection with) a few MiB of rows.
  const painted = new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  const ready = painted.then(() => fetch(wf.dataset.rows, { headers: { Accept: "application/json" } }))
    .then((res) => { if (!res.ok) throw new Error("HTTP " + res.status); return res.json(); })
    .then(init);
  ready.catch(() => { /* the server-rendered rows stay usable */ });

  function init(data) {
    T = data;
    N = T.id.length;
    if (!N) return;
    view = { from: 0, to: Math.max(T.extent_ms, 1e-3) };
    size = new Int32Array(N).fill(1);
    for (let i = N - 1; i > 0; i--) if (T.parent[i] >= 0) size[T.parent[i]] += size[i];
    for (let i = 0; i < N; i++) idx.set(T.id[i], i);
    open = new Uint8Array(N).fill(1);
    if (T.collapsed) {
      for (let i = 0; i < N; i++) open[i] = T.depth[i] < T.collapse_depth ? 1 : 0;
      for (let i = 0; i < N; i++) if (T.flags[i] & 1) openAbove(i);
    }
    vis = new Int32Array(N);
    body.classList.add("virtual");
    spacer = document.createElement("div");
    spacer.className = "wf-spacer";
    body.replaceChildren(spacer);
    body.addEventListener("scroll", schedule, { passive: true });
    addEventListener("resize", () => { if (map) map.drawBase(); schedule(); });
    for (const b of document.querySelectorAll("[data-find-prev],[data-find-next],[data-zoom-reset],[data-help-open],[data-expand-all]")) b.hidden = false;
    for (const a of document.querySelectorAll("[data-expand-all-link]")) a.remove();
    if (minimap) { minimap.hidden = false; map = waterfallMinimap(minimap, wv); }
    const q = new URL(location.href).searchParams;
    layout();
    if (map) map.drawBase();
    if (search && search.value.trim()) find(search.value, false);
    const sel = q.get("span");
    if (sel && idx.has(sel)) {
      const i = idx.get(sel);
      openAbove(i);
      layout();
      cursor = i;
      scrollToRow(i, "center");
      select(i, false);
    } else {
      cursor = vis[0];
      paint(true);
    }
    for (const b of document.querySelectorAll("[data-zoom-reset]")) b.disabled = true;
    wf.dataset.ready = "";
    performance.mark("waterfall-ready");
  }

  function openAbove(i) {
    for (let p = T.parent[i]; p >= 0; p = T.parent[p]) open[p] = 1;
  }

  // layout lists the visible rows: a collapsed row hides its subtree,
  // which is the next size-1 rows of the preorder.
  function layout() {
    let k = 0;
    for (let i = 0; i < N; i += open[i] ? 1 : size[i]) vis[k++] = i;
    visN = k;
    spacer.style.height = visN * ROW_H + "px";
    body.style.height = Math.min(visN * ROW_H, Math.round(innerHeight * 0.78)) + "px";
  }

  // posOf is a row's place among the visible rows, or of the nearest
  // visible row above it.
  function posOf(i) {
    let lo = 0, hi = visN - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (vis[mid] <= i) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  // ---- rendering -------------------------------------------------------
  function schedule() {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; paint(false); });
  }

  // paint puts the rows on screen into the page; all=true rebuilds rows
  // already shown (after a change of state), keeping focus on the cursor.
  function paint(all) {
    if (!T) return;
    const hadFocus = wf.contains(document.activeElement) && document.activeElement.closest(".wf-row");
    const first = Math.max(0, Math.floor(body.scrollTop / ROW_H) - OVERSCAN);
    const last = Math.min(visN, Math.ceil((body.scrollTop + body.clientHeight) / ROW_H) + OVERSCAN);
    const want = new Set();
    for (let p = first; p < last; p++) want.add(vis[p]);
    for (const [i, el] of shown) {
      if (all || !want.has(i)) { el.remove(); shown.delete(i); }
    }
    const frag = document.createDocumentFragment();
    for (let p = first; p < last; p++) {
      const i = vis[p];
      let el = shown.get(i);
      if (!el) { el = rowEl(i); shown.set(i, el); frag.append(el); }
      el.style.top = p * ROW_H + "px";
    }
    spacer.append(frag);
    if (hadFocus) focusCursor();
    if (map) map.drawWindow();
  }

  function pct(ms) { return (100 * (ms - view.from)) / (view.to - view.from); }

  function seg(cls, start, dur) {
    const el = wfEl("div", cls);
    const l = pct(start), w = Math.max((100 * dur) / (view.to - view.from), 0.01);
    el.style.left = l.toFixed(3) + "%";
    el.style.width = w.toFixed(3) + "%";
    return el;
  }

  function rowEl(i) {
    const id = T.id[i], f = T.flags[i], svc = T.services[T.service[i]], name = T.names[T.name[i]];
    const cls = T.classes[T.service[i]];
    const row = wfEl("div", "wf-row");
    row.setAttribute("role", "treeitem");
    row.setAttribute("aria-level", String(T.depth[i] + 1));
    row.dataset.id = id;
    row.dataset.row = String(i);
    if (T.parent[i] >= 0) row.dataset.parent = T.id[T.parent[i]];
    row.dataset.depth = String(T.depth[i]);
    row.dataset.search = (svc + " " + name).toLowerCase();
    row.dataset.self = T.self[i].toFixed(3);
    if (f & 1) row.dataset.critical = "";
    if (f & 2) row.dataset.error = "";
    if (f & 4) { row.dataset.async = ""; row.classList.add("async"); }
    if (f & 8) row.dataset.profile = "/traces/" + T.trace_id + "/profile?span=" + id;
    if (isMatch[i]) row.classList.add("match");
    if (i === matches[matchAt]) row.classList.add("current");
    if (i === selected) row.classList.add("selected");
    const hasKids = size[i] > 1;
    if (hasKids) row.setAttribute("aria-expanded", open[i] ? "true" : "false");

    const nm = wfEl("div", "wf-name");
    nm.style.paddingLeft = (0.4 + 0.9 * Math.min(T.depth[i], T.max_indent)).toFixed(1) + "rem";
    if (hasKids) {
      const t = wfEl("button", "toggle");
      t.type = "button";
      t.tabIndex = -1;
      t.setAttribute("aria-expanded", open[i] ? "true" : "false");
      t.setAttribute("aria-label", (open[i] ? "collapse " : "expand ") + (size[i] - 1) + " spans");
      nm.append(t);
    } else nm.append(wfEl("span", "leaf"));
    nm.append(wfEl("span", "svc-chip " + cls));
    const a = wfEl("a", "span-link");
    a.href = "?span=" + id;
    a.tabIndex = i === cursor ? 0 : -1;
    a.append(wfEl("span", "svc", svc), " ", wfEl("span", "span-name", name));
    a.title = svc + " " + name;
    nm.append(a);
    if (f & 2) nm.append(wfEl("span", "badge", "error"));
    if (T.async_tie[i]) {
      const b = wfEl("span", "badge async", "async · " + T.async_tie[i]);
      b.title = "The parent did not wait for this span: it is off the request's critical path.";
      nm.append(b);
    }
    for (const k of T.findings[i] || []) nm.append(wfEl("span", "badge finding", k));
    if (hasKids && !open[i]) nm.append(wfEl("span", "badge hidden-count", "+" + (size[i] - 1)));

    const tr = wfEl("div", "wf-track");
    const gaps = T.gaps[i] || [];
    for (let k = 0; k < gaps.length; k += 2) tr.append(seg("wf-gap", gaps[k], gaps[k + 1]));
    const bar = seg("wf-bar " + cls, T.start[i], T.duration[i]);
    if (f & 1) bar.classList.add("crit");
    if (f & 2) bar.classList.add("error");
    if (f & 4) bar.classList.add("async");
    tr.append(bar);
    const crit = T.critical[i] || [];
    for (let k = 0; k < crit.length; k += 2) tr.append(seg("wf-crit", crit[k], crit[k + 1]));
    let label = wfMs(T.duration[i]);
    if (hasKids && T.self[i] > 0) label += " (self " + wfMs(T.self[i]) + ")";
    const lb = wfEl("div", "wf-label", label);
    const l = pct(T.start[i]), r = pct(T.start[i] + T.duration[i]);
    // Right of the bar, else left of it, else inside it: never over it.
    if (r < 78) lb.style.left = (Math.max(r, 0) + 0.5).toFixed(2) + "%";
    else if (l > 22) lb.style.right = (100 - l + 0.5).toFixed(2) + "%";
    else { lb.style.left = (Math.max(l, 0) + 0.5).toFixed(2) + "%"; lb.classList.add("inside"); }
    tr.append(lb);
    row.append(nm, tr);
    return row;
  }

  function drawAxis() {
    if (!axis) return;
    const spans = [];
    for (let k = 0; k <= 4; k++) {
      const s = wfEl("span", "", wfMs(view.from + ((view.to - view.from) * k) / 4));
      s.style.left = k * 25 + "%";
      spans.push(s);
    }
    axis.replaceChildren(...spans);
  }

  function scrollToRow(i, where) {
    const p = posOf(i);
    const top = p * ROW_H, vh = body.clientHeight;
    if (where === "center") body.scrollTop = Math.max(0, top - vh / 2 + ROW_H / 2);
    else if (top < body.scrollTop) body.scrollTop = top;
    else if (top + ROW_H > body.scrollTop + vh) body.scrollTop = top + ROW_H - vh;
    // The row may sit below the fold of the page, too.
    const r = body.getBoundingClientRect();
    if (r.top + (top - body.scrollTop) > innerHeight || r.bottom < 0) body.scrollIntoView({ block: "start" });
    paint(true);
  }

  function focusCursor() {
    const el = shown.get(cursor);
    if (!el) return;
    for (const a of spacer.querySelectorAll("a.span-link[tabindex='0']")) a.tabIndex = -1;
    const a = el.querySelector("a.span-link");
    a.tabIndex = 0;
    a.focus({ preventScroll: true });
  }

  function moveTo(i) {
    cursor = i;
    scrollToRow(i);
    focusCursor();
  }

  function move(delta) {
    if (!visN) return;
    const p = Math.max(0, Math.min(visN - 1, posOf(cursor) + delta));
    moveTo(vis[p]);
  }

  function setOpen(i, v) {
    if (size[i] <= 1 || open[i] === v) return;
    open[i] = v;
    relayout();
  }

  // relayout keeps the cursor row where it was on screen.
  function relayout() {
    const before = posOf(cursor) * ROW_H - body.scrollTop;
    layout();
    if (cursor >= 0) body.scrollTop = Math.max(0, posOf(cursor) * ROW_H - before);
    paint(true);
  }

  function setAll(v) {
    if (!T) return;
    open.fill(v);
    if (!v) cursor = T.parent[cursor] < 0 ? cursor : topOf(cursor);
    relayout();
  }

  function topOf(i) { while (T.parent[i] >= 0) i = T.parent[i]; return i; }

  // ---- selection and details -------------------------------------------
  async function select(i, push) {
    selected = i;
    cursor = i;
    paint(true);
    focusCursor();
    const id = T.id[i];
    if (push) {
      const u = new URL(location.href);
      u.searchParams.set("span", id);
      history.replaceState(null, "", u);
    }
    if (!panel) return;
    // A ?span= permalink's panel is already on the page.
    const served = panel.dataset.testid === "span-detail" && !panel.hidden && !push && panel.dataset.loaded === undefined;
    if (!served) {
      let html;
      try {
        const res = await fetch(wf.dataset.detail + id);
        if (!res.ok) throw new Error("HTTP " + res.status);
        html = await res.text();
      } catch (err) {
        location.href = "?span=" + id;
        return;
      }
      if (selected !== i) return; // a later selection won
      // Server-rendered by templ, which escaped every value in it.
      panel.innerHTML = html;
    }
    panel.dataset.loaded = "";
    panel.hidden = false;
    panel.closest(".wf-layout").classList.add("with-detail");
    if (T.flags[i] & 8) spanProfileTabs(panel, "/traces/" + T.trace_id + "/profile?span=" + id);
  }

  // ---- find ------------------------------------------------------------
  function find(q, jump) {
    q = q.trim().toLowerCase();
    lastQ = q;
    if (!lower) lower = { svc: T.services.map((s) => s.toLowerCase()), name: T.names.map((s) => s.toLowerCase()) };
    ({ matches, isMatch } = wfMatches(T, lower, q));
    matchAt = -1;
    if (matches.length && jump !== false) { step(1); return; }
    if (matches.length) {
      // Open the first match without moving the page (?find= on load).
      matchAt = 0;
      openAbove(matches[0]);
      layout();
    }
    count();
    paint(true);
  }

  function count() {
    if (!counter) return;
    const q = search ? search.value.trim() : "";
    const n = matches.length;
    counter.textContent = !q ? "" : n === 0 ? "0 matching spans"
      : (matchAt >= 0 ? matchAt + 1 + " of " : "") + n + " matching span" + (n === 1 ? "" : "s");
  }

  // step goes to the next (1) or previous (-1) match, opening the
  // collapsed subtrees above it.
  function step(dir) {
    if (!matches.length) return;
    matchAt = (matchAt + dir + matches.length) % matches.length;
    if (matchAt < 0) matchAt = matches.length - 1;
    const i = matches[matchAt];
    let closed = false;
    for (let p = T.parent[i]; p >= 0; p = T.parent[p]) if (!open[p]) { closed = true; open[p] = 1; }
    if (closed) layout();
    cursor = i;
    count();
    scrollToRow(i, "center");
  }

  if (search) {
    let timer = 0;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => ready.then(() => { if (search.value.trim().toLowerCase() !== lastQ) find(search.value); }), N > 5000 ? 120 : 0);
    });
    search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        ready.then(() => {
          clearTimeout(timer);
          next(e.shiftKey ? -1 : 1);
        });
      } else if (e.key === "Escape") {
        search.value = "";
        ready.then(() => find(""));
      }
    });
    const form = search.closest("form");
    if (form) form.addEventListener("submit", (e) => { if (T) e.preventDefault(); });
  }
  const onClick = (sel, fn) => { for (const b of document.querySelectorAll(sel)) b.addEventListener("click", () => ready.then(fn)); };
  // next steps through the matches, searching first when the query
  // changed since the last search (typing is debounced).
  function next(dir) {
    if (search && search.value.trim().toLowerCase() !== lastQ) find(search.value);
    else step(dir);
  }
  onClick("[data-find-next]", () => next(1));
  onClick("[data-find-prev]", () => next(-1));
  onClick("[data-expand-all]", () => setAll(1));
  onClick("[data-collapse-all]", () => setAll(0));
  onClick("[data-zoom-reset]", () => zoom(0, T.extent_ms));
  onClick("[data-help-open]", () => toggleHelp(true));
  for (const b of document.querySelectorAll("[data-help-close]")) b.addEventListener("click", () => toggleHelp(false));

  function toggleHelp(show) {
    if (!help) return;
    help.hidden = !show;
    if (show) help.querySelector("button").focus();
  }

  // ---- mouse -------------------------------------------------------------
  wf.addEventListener("click", (e) => {
    const row = e.target.closest(".wf-row");
    if (!row || !T || !spacer.contains(row)) return;
    const i = Number(row.dataset.row);
    const t = e.target.closest(".toggle");
    if (t) {
      e.preventDefault();
      cursor = i;
      setOpen(i, open[i] ? 0 : 1);
      focusCursor();
      return;
    }
    const link = e.target.closest("a.span-link");
    if (link && !e.metaKey && !e.ctrlKey && !e.shiftKey) {
      e.preventDefault();
      select(i, true);
    }
  });

  // ---- zoom --------------------------------------------------------------
  function zoom(from, to) {
    const ext = T.extent_ms;
    const w = Math.max(to - from, ext / 1e5, 1e-3);
    from = Math.max(0, Math.min(from, ext - w));
    view = { from, to: Math.min(ext, from + w) };
    for (const b of document.querySelectorAll("[data-zoom-reset]")) b.disabled = view.from === 0 && view.to === ext;
    drawAxis();
    paint(true);
  }

  function zoomBy(f) {
    const c = (view.from + view.to) / 2, w = (view.to - view.from) * f;
    zoom(c - w / 2, c + w / 2);
  }

  function pan(f) {
    const w = view.to - view.from;
    zoom(view.from + w * f, view.to + w * f);
  }

  if (axis) wfBrush(axis, (a, b) => {
    if (b - a < 0.005) return;
    const w = view.to - view.from;
    zoom(view.from + a * w, view.from + b * w);
  });

  // ---- keyboard (after Jaeger's shortcuts) ----------------------------------
  document.addEventListener("keydown", (e) => {
    if (!T) return;
    const typing = e.target.closest && e.target.closest("input, textarea, select, [contenteditable]");
    if (help && !help.hidden) {
      if (e.key === "Escape" || e.key === "?") { e.preventDefault(); toggleHelp(false); }
      return;
    }
    if (typing) return;
    const inRows = wf.contains(e.target);
    if (e.ctrlKey && (e.key === "]" || e.key === "[")) { e.preventDefault(); setAll(e.key === "]" ? 1 : 0); focusCursor(); return; }
    if (e.ctrlKey && e.key === "b" || e.key === "/" && !e.ctrlKey) { e.preventDefault(); if (search) search.focus(); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.shiftKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) { e.preventDefault(); zoomBy(e.key === "ArrowUp" ? 0.5 : 2); return; }
    switch (e.key) {
      case "?": e.preventDefault(); toggleHelp(true); return;
      case "n": e.preventDefault(); next(1); focusCursor(); return;
      case "N": e.preventDefault(); next(-1); focusCursor(); return;
      case "a": pan(-0.25); return;
      case "d": pan(0.25); return;
      case "0": zoom(0, T.extent_ms); return;
      case "s": body.scrollTop += body.clientHeight; schedule(); return;
      case "w": body.scrollTop -= body.clientHeight; schedule(); return;
    }
    if (!inRows) return;
    switch (e.key) {
      case "ArrowDown": case "j": e.preventDefault(); move(1); break;
      case "ArrowUp": case "k": e.preventDefault(); move(-1); break;
      case "PageDown": e.preventDefault(); move(Math.floor(body.clientHeight / ROW_H)); break;
      case "PageUp": e.preventDefault(); move(-Math.floor(body.clientHeight / ROW_H)); break;
      case "Home": e.preventDefault(); moveTo(vis[0]); break;
      case "End": e.preventDefault(); moveTo(vis[visN - 1]); break;
      case "ArrowRight": case "]":
        e.preventDefault();
        if (size[cursor] > 1 && !open[cursor]) { setOpen(cursor, 1); focusCursor(); } else if (size[cursor] > 1) move(1);
        break;
      case "ArrowLeft": case "[":
        e.preventDefault();
        if (size[cursor] > 1 && open[cursor]) { setOpen(cursor, 0); focusCursor(); } else if (T.parent[cursor] >= 0) moveTo(T.parent[cursor]);
        break;
      case "Escape": if (search && search.value) { search.value = ""; find(""); } break;
    }
  });
  wf.addEventListener("focusin", (e) => {
    const row = e.target.closest(".wf-row");
    if (row && T && spacer.contains(row)) cursor = Number(row.dataset.row);
  });
})();
