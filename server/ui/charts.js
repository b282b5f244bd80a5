// charts.js: SVG drawing shared by the tabs: state colours, the state
// strip, the posterior heat map, line and scatter plots, and parsing of
// observations typed or loaded from CSV / JSON.

const NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#3867d6", "#eb3b5a", "#20bf6b", "#f7b731", "#8854d0", "#0fb9b1",
  "#fa8231", "#4b6584", "#a55eea", "#26de81", "#fd9644", "#2d98da"];

export function stateColor(k) {
  return PALETTE[k % PALETTE.length];
}

export function svgEl(tag, attrs = {}, parent) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

export function clear(svg) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
}

// Horizontal geometry shared by the charts of one tab, so that position t
// lines up in every one: a left margin and a cell width per position.
export function layout(T, minWidth = 320) {
  const left = 64;
  const avail = Math.max(minWidth, Math.min(1200, document.body.clientWidth - 48)) - left - 8;
  const cell = Math.max(3, Math.min(24, avail / Math.max(T, 1)));
  return { left, cell, width: left + cell * T + 8 };
}

export function legend(el, names) {
  el.replaceChildren(...names.map((n, k) => {
    const s = document.createElement("span");
    const i = document.createElement("i");
    i.style.background = stateColor(k);
    s.append(i, n);
    return s;
  }));
}

// Runs of equal states: [{state, from, to}] with to exclusive.
export function runs(path, offset = 0) {
  const out = [];
  for (let t = 0; t < path.length; t++) {
    const last = out[out.length - 1];
    if (last && last.state === path[t]) last.to = offset + t + 1;
    else out.push({ state: path[t], from: offset + t, to: offset + t + 1 });
  }
  return out;
}

// One row of coloured segments (one <rect class="seg"> per run, with
// data-state/from/to) at height y. cls distinguishes rows (fixed,
// tentative). opacity < 1 draws a paler row.
export function stripRow(svg, geo, path, { y = 0, h = 22, offset = 0, cls = "seg", opacity = 1,
  label } = {}) {
  const g = svgEl("g", { class: cls }, svg);
  if (label) svgEl("text", { x: 4, y: y + h / 2 + 4 }, g).textContent = label;
  for (const r of runs(path, offset)) {
    svgEl("rect", {
      class: "seg", x: geo.left + r.from * geo.cell, y, width: (r.to - r.from) * geo.cell,
      height: h, fill: stateColor(r.state), "fill-opacity": opacity,
      "data-state": r.state, "data-from": r.from, "data-to": r.to,
    }, g).appendChild(svgEl("title")).textContent = `state ${r.state}: ${r.from}..${r.to - 1}`;
  }
  return g;
}

// The observations as text under a strip (categorical), one per cell when
// the cells are wide enough.
export function obsRow(svg, geo, obs, y) {
  if (geo.cell < 9) return;
  const g = svgEl("g", { class: "obs" }, svg);
  svgEl("text", { x: 4, y: y + 12 }, g).textContent = "obs";
  obs.forEach((o, t) => {
    svgEl("text", { x: geo.left + (t + 0.5) * geo.cell, y: y + 12, "text-anchor": "middle" }, g)
      .textContent = String(o);
  });
}

// Posteriors (T x K, as /decode gives them) as a K x T grid of cells
// (<rect class="cell" data-t data-k>), each the state's colour with the
// probability as its opacity.
export function heatmap(svg, geo, post, names) {
  clear(svg);
  const T = post.length, K = T ? post[0].length : 0, h = 16;
  svg.setAttribute("width", geo.width);
  svg.setAttribute("height", K * h + 20);
  svgEl("text", { x: 4, y: 12 }, svg).textContent = "posteriors";
  for (let k = 0; k < K; k++) {
    svgEl("text", { x: 4, y: 20 + k * h + 12 }, svg).textContent = names[k].slice(0, 9);
    for (let t = 0; t < T; t++) {
      svgEl("rect", {
        class: "cell", x: geo.left + t * geo.cell, y: 18 + k * h, width: geo.cell, height: h - 1,
        fill: stateColor(k), "fill-opacity": post[t][k].toFixed(4), "data-t": t, "data-k": k,
      }, svg).appendChild(svgEl("title")).textContent = `t=${t} ${names[k]}: ${post[t][k].toFixed(4)}`;
    }
  }
}

function ticks(lo, hi) {
  return [lo, (lo + hi) / 2, hi];
}

// A line plot of ys (x = 1..n) with dots; returns nothing.
export function lineChart(svg, ys, { width = 600, height = 220, label = "" } = {}) {
  clear(svg);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  if (!ys.length) return;
  const L = 70, R = 10, Tp = 18, B = 26;
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (hi === lo) { hi += 1; lo -= 1; }
  const X = (i) => L + (ys.length === 1 ? 0 : (i / (ys.length - 1)) * (width - L - R));
  const Y = (v) => Tp + (1 - (v - lo) / (hi - lo)) * (height - Tp - B);
  svgEl("text", { x: 4, y: 12 }, svg).textContent = label;
  for (const v of ticks(lo, hi)) {
    svgEl("line", { x1: L, x2: width - R, y1: Y(v), y2: Y(v), stroke: "#e1e4ea" }, svg);
    svgEl("text", { x: L - 4, y: Y(v) + 4, "text-anchor": "end" }, svg).textContent = v.toFixed(2);
  }
  svgEl("text", { x: width - R, y: height - 6, "text-anchor": "end" }, svg).textContent =
    `iteration (${ys.length})`;
  svgEl("polyline", {
    points: ys.map((v, i) => `${X(i)},${Y(v)}`).join(" "), fill: "none", stroke: "#3867d6",
    "stroke-width": 2,
  }, svg);
  ys.forEach((v, i) => {
    svgEl("circle", { class: "pt", cx: X(i), cy: Y(v), r: 3, fill: "#3867d6" }, svg)
      .appendChild(svgEl("title")).textContent = `iteration ${i}: ${v}`;
  });
}

// Scalar (or first-dimension) Gaussian observations over time, each dot
// in the colour of its decoded state.
export function scatter(svg, geo, values, path, height = 140) {
  clear(svg);
  svg.setAttribute("width", geo.width);
  svg.setAttribute("height", height);
  const ys = values.map((v) => (Array.isArray(v) ? v[0] : v));
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (hi === lo) { hi += 1; lo -= 1; }
  const Y = (v) => 8 + (1 - (v - lo) / (hi - lo)) * (height - 16);
  for (const v of ticks(lo, hi)) {
    svgEl("line", { x1: geo.left, x2: geo.width - 8, y1: Y(v), y2: Y(v), stroke: "#e1e4ea" }, svg);
    svgEl("text", { x: geo.left - 4, y: Y(v) + 4, "text-anchor": "end" }, svg).textContent =
      v.toPrecision(3);
  }
  ys.forEach((v, t) => {
    svgEl("circle", {
      class: "obs-pt", cx: geo.left + (t + 0.5) * geo.cell, cy: Y(v),
      r: Math.max(1.5, Math.min(4, geo.cell / 2)), fill: stateColor(path[t]),
    }, svg);
  });
}

// Observations from text: JSON (an array, or {"observations": [...]} or
// {"sequences": [...]}), else CSV / whitespace. model is a /models entry:
// Gaussian values become numbers (D > 1: one vector per line), categorical
// ones symbol names when the model names its symbols, else indices.
export function parseObservations(text, model) {
  const s = text.trim();
  if (!s) return [];
  if (s[0] === "[" || s[0] === "{") {
    const j = JSON.parse(s);
    if (Array.isArray(j)) return j;
    if (Array.isArray(j.observations)) return j.observations;
    throw new Error("JSON observations: expected an array or {\"observations\": [...]}");
  }
  const gauss = model && model.emissions !== "categorical";
  const dim = (model && model.dimension) || 1;
  const cells = (line) => line.split(/[\s,;]+/).filter(Boolean);
  let lines = s.split(/\r?\n/).filter((l) => l.trim());
  // a CSV header line (not numbers) before Gaussian values is left out
  if (gauss && cells(lines[0]).some((c) => Number.isNaN(Number(c)))) lines = lines.slice(1);
  if (gauss && dim > 1) return lines.map((l) => cells(l).map(Number));
  const items = cells(lines.join(" "));
  if (gauss) return items.map(Number);
  if (model && model.symbol_names) return items;
  return items.map((x) => (/^\d+$/.test(x) ? Number(x) : x));
}

// Sequences for /fit: a JSON array of sequences, or one sequence per line.
export function parseSequences(text, model) {
  const s = text.trim();
  if (s[0] === "[" || s[0] === "{") {
    const j = JSON.parse(s);
    return Array.isArray(j) ? j : j.sequences;
  }
  return s.split(/\r?\n/).filter((l) => l.trim()).map((l) => parseObservations(l, model));
}

// Fill a textarea from a chosen file.
export function loadFileInto(input, textarea) {
  input.addEventListener("change", async () => {
    const f = input.files[0];
    if (f) textarea.value = await f.text();
  });
}
