// tailscope waterfall parts used by waterfall.js (loaded just before it):
// element and duration helpers, the span detail's CPU profile tabs, the
// drag brush of the time axis and the minimap.
"use strict";

// wfEl makes an element with a class and text.
function wfEl(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined) el.textContent = text;
  return el;
}

// wfMs writes a duration like the server's units.Ms: three significant
// digits in µs, ms, s or min.
function wfMs(ms) {
  if (ms === 0) return "0 ms";
  const units = [[1e-3, "µs", 1e-3], [1, "ms", 1], [1e3, "s", 1e3], [6e4, "min", 6e4]];
  let u = units[0];
  for (const x of units) if (ms >= x[0]) u = x;
  const v = ms / u[2];
  return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)).replace(/\.?0+$/, "") + " " + u[1];
}

// wfMatches finds the rows whose "service name" contains q (lower case).
// Names repeat (50,000 spans have a few hundred), so each distinct service
// and name is tested once and rows look the results up; a query with a
// space, which may span both, tests the joined text of each row. lower
// holds the lower-cased services and names.
function wfMatches(T, lower, q) {
  const N = T.id.length, matches = [], isMatch = new Uint8Array(N);
  if (q && q.includes(" ")) {
    for (let i = 0; i < N; i++) if ((lower.svc[T.service[i]] + " " + lower.name[T.name[i]]).includes(q)) { matches.push(i); isMatch[i] = 1; }
  } else if (q) {
    const sh = Uint8Array.from(lower.svc, (s) => s.includes(q)), nh = Uint8Array.from(lower.name, (s) => s.includes(q));
    const svc = T.service, name = T.name;
    for (let i = 0; i < N; i++) if (sh[svc[i]] || nh[name[i]]) { matches.push(i); isMatch[i] = 1; }
  }
  return { matches, isMatch };
}

// A span with CPU samples gets two tabs: its facts, and a flame graph of
// what it and its children burned, fetched when first shown. ?tab=profile
// keeps the choice in the URL, across spans.
function spanProfileTabs(panel, href) {
  const details = wfEl("div");
  details.setAttribute("role", "tabpanel");
  details.append(...[...panel.children].slice(1));
  const flame = wfEl("div");
  flame.setAttribute("role", "tabpanel");
  const tabs = wfEl("div", "tabs");
  tabs.setAttribute("role", "tablist");
  const tab = (label, name) => {
    const b = wfEl("button", "", label);
    b.type = "button";
    b.setAttribute("role", "tab");
    b.setAttribute("data-testid", name + "-tab");
    b.addEventListener("click", () => show(name, true));
    tabs.append(b);
    return b;
  };
  const tDetails = tab("Details", "details"), tProfile = tab("CPU profile", "profile");
  panel.append(tabs, details, flame);
  async function show(name, push) {
    tDetails.setAttribute("aria-selected", String(name === "details"));
    tProfile.setAttribute("aria-selected", String(name === "profile"));
    details.hidden = name !== "details";
    flame.hidden = name !== "profile";
    if (push) {
      const u = new URL(location.href);
      if (name === "profile") u.searchParams.set("tab", "profile"); else u.searchParams.delete("tab");
      history.replaceState(null, "", u);
    }
    if (name !== "profile" || flame.dataset.loaded) return;
    flame.dataset.loaded = "1";
    flame.textContent = "Loading the CPU profile…";
    try {
      const res = await fetch(href + "&fragment=1");
      if (!res.ok) throw new Error("HTTP " + res.status);
      // Server-rendered by templ, which escaped every value in it.
      flame.innerHTML = await res.text();
      if (typeof bindFlameSearch === "function") bindFlameSearch(flame);
    } catch (err) {
      delete flame.dataset.loaded;
      const a = wfEl("a", "", "open it on its own page");
      a.href = href;
      flame.replaceChildren("Could not load the CPU profile (" + err.message + "): ", a);
    }
  }
  show(new URL(location.href).searchParams.get("tab") === "profile" ? "profile" : "details", false);
}

// wfBrush lets the user drag across el; done(x0, x1) gets the fractions of
// el's width, a click gives x0 === x1.
function wfBrush(el, done) {
  el.addEventListener("mousedown", (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    const r = el.getBoundingClientRect();
    const x0 = (e.clientX - r.left) / r.width;
    const box = wfEl("div", "wf-brush");
    el.append(box);
    const moveH = (m) => {
      const x = Math.max(0, Math.min(1, (m.clientX - r.left) / r.width));
      box.style.left = Math.min(x0, x) * 100 + "%";
      box.style.width = Math.abs(x - x0) * 100 + "%";
    };
    const up = (m) => {
      removeEventListener("mousemove", moveH);
      removeEventListener("mouseup", up);
      box.remove();
      const x = Math.max(0, Math.min(1, (m.clientX - r.left) / r.width));
      done(Math.min(x0, x), Math.max(x0, x), (m.clientY - r.top) / r.height);
    };
    addEventListener("mousemove", moveH);
    addEventListener("mouseup", up);
  });
}

// waterfallMinimap draws every row of the trace (time across, rows down)
// once per size of the window, and over it a window on what the waterfall
// shows: the zoomed time range and the rows scrolled into view. Dragging
// the window moves it; dragging elsewhere zooms the time axis; a click
// jumps to the row. wv is the waterfall's state: T (the rows), vis and
// visN (the visible rows), view (the time window), body (the scrolled
// rows), ROW_H, posOf, zoom and schedule.
function waterfallMinimap(minimap, wv) {
  const body = wv.body, ROW_H = wv.ROW_H;
  let base = null, critColor = "#d33", colors = null;

  function drawBase() {
    const T = wv.T, N = T.id.length;
    const W = Math.max(1, Math.round(minimap.clientWidth * devicePixelRatio));
    const H = Math.round(64 * devicePixelRatio);
    minimap.width = W;
    minimap.height = H;
    base = document.createElement("canvas");
    base.width = W;
    base.height = H;
    const ctx = base.getContext("2d");
    if (!colors) colors = T.classes.map(colorOf);
    const rowH = Math.max(H / N, 0.5);
    for (let i = 0; i < N; i++) {
      ctx.fillStyle = T.flags[i] & 1 ? critColor : colors[T.service[i]];
      const x = (T.start[i] / T.extent_ms) * W;
      ctx.fillRect(x, (i / N) * H, Math.max((T.duration[i] / T.extent_ms) * W, 1), rowH);
    }
    drawWindow();
  }

  // colorOf reads a service colour (and the critical path's) from the
  // stylesheet, so the minimap follows the theme.
  function colorOf(cls) {
    const probe = wfEl("span", cls);
    document.body.append(probe);
    const c = getComputedStyle(probe).backgroundColor;
    probe.className = "swatch s-p99";
    critColor = getComputedStyle(probe).backgroundColor || critColor;
    probe.remove();
    return c;
  }

  // windowRect is the minimap's window in canvas pixels.
  function windowRect() {
    const T = wv.T, N = T.id.length, vis = wv.vis, view = wv.view;
    const W = minimap.width, H = minimap.height;
    const first = Math.floor(body.scrollTop / ROW_H);
    const last = Math.min(wv.visN - 1, Math.ceil((body.scrollTop + body.clientHeight) / ROW_H) - 1);
    const y0 = (vis[Math.max(0, first)] / N) * H;
    const y1 = ((vis[Math.max(0, last)] + 1) / N) * H;
    const x0 = (view.from / T.extent_ms) * W, x1 = (view.to / T.extent_ms) * W;
    return { x: x0, y: y0, w: Math.max(x1 - x0, 2), h: Math.max(y1 - y0, 3) };
  }

  function drawWindow() {
    if (!base) return;
    const ctx = minimap.getContext("2d");
    ctx.clearRect(0, 0, minimap.width, minimap.height);
    ctx.drawImage(base, 0, 0);
    const r = windowRect();
    ctx.fillStyle = "rgba(128,128,128,.18)";
    ctx.fillRect(0, 0, minimap.width, r.y);
    ctx.fillRect(0, r.y + r.h, minimap.width, minimap.height);
    ctx.fillRect(0, r.y, r.x, r.h);
    ctx.fillRect(r.x + r.w, r.y, minimap.width, r.h);
    ctx.strokeStyle = critColor;
    ctx.lineWidth = Math.max(1, devicePixelRatio);
    ctx.strokeRect(r.x, r.y, r.w, r.h);
  }

  minimap.addEventListener("mousedown", (e) => {
    if (e.button !== 0 || !base) return;
    e.preventDefault();
    const T = wv.T, N = T.id.length, view = wv.view;
    const b = minimap.getBoundingClientRect();
    const sx = minimap.width / b.width, sy = minimap.height / b.height;
    const px = (e.clientX - b.left) * sx, py = (e.clientY - b.top) * sy;
    const r = windowRect();
    const inside = px >= r.x && px <= r.x + r.w && py >= r.y && py <= r.y + r.h;
    const start = { x: e.clientX, y: e.clientY, from: view.from, to: view.to, row: wv.vis[Math.floor(body.scrollTop / ROW_H)] || 0 };
    const moveH = (m) => {
      if (!inside) return;
      // Dragging the window moves it: time across, rows down.
      const dt = (((m.clientX - start.x) * sx) / minimap.width) * T.extent_ms;
      wv.zoom(start.from + dt, start.to + dt);
      const row = Math.max(0, Math.min(N - 1, start.row + Math.round((((m.clientY - start.y) * sy) / minimap.height) * N)));
      body.scrollTop = wv.posOf(row) * ROW_H;
      wv.schedule();
    };
    const up = (m) => {
      removeEventListener("mousemove", moveH);
      removeEventListener("mouseup", up);
      if (inside) return;
      const x0 = Math.min(px, (m.clientX - b.left) * sx), x1 = Math.max(px, (m.clientX - b.left) * sx);
      if (x1 - x0 > 4) {
        wv.zoom((x0 / minimap.width) * T.extent_ms, (x1 / minimap.width) * T.extent_ms);
      } else {
        // A click jumps to that row, keeping the zoom.
        const row = Math.max(0, Math.min(N - 1, Math.floor((py / minimap.height) * N)));
        body.scrollTop = Math.max(0, wv.posOf(row) * ROW_H - body.clientHeight / 2);
        wv.schedule();
      }
    };
    addEventListener("mousemove", moveH);
    addEventListener("mouseup", up);
  });

  return { drawBase, drawWindow };
}
