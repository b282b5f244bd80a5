// stream.js: the Stream tab: an HMM stream on a session (/decode with
// "session"), fed chunk by chunk or played at a rate; fixed_path (states
// no later observation can change) settles behind tentative_path (the best
// path over the rest so far). "final": true closes the stream.
import { postJSON, listModels, showError, setStatus } from "./api.js";
import { clear, layout, legend, loadFileInto, obsRow, parseObservations, stateColor, stripRow } from "./charts.js";
import { modelInfo, stateNames } from "./decode.js";

const $ = (id) => document.getElementById(id);
let st = null; // the stream in progress
let timer = null;

function fresh(form, m) {
  const obs = parseObservations(form.elements.observations.value, m);
  const rnd = crypto.getRandomValues(new Uint32Array(2));
  return {
    model: m, obs, fed: 0, fixed: [], tentative: [], tentativeFrom: 0, session: `ui-${rnd[0].toString(16)}${rnd[1].toString(16)}`,
    closed: false, ll: null, lag: null, smoothed: [], // smoothed[t]: P(state | up to t + lag)
  };
}

function draw() {
  const svg = $("str-strip");
  clear(svg);
  if (!st) return;
  const T = st.obs.length, geo = layout(T);
  const cat = st.model.emissions === "categorical";
  svg.setAttribute("width", geo.width);
  const K = st.model.states, smoothH = st.lag !== null ? K * 8 + 6 : 0;
  svg.setAttribute("height", (cat && geo.cell >= 9 ? 86 : 60) + smoothH);
  stripRow(svg, geo, st.fixed, { y: 0, cls: "fixed", label: "fixed" });
  stripRow(svg, geo, st.tentative, { y: 28, offset: st.tentativeFrom, cls: "tentative",
    opacity: 0.4, label: "tentative" });
  // the feed position
  svgEl(svg, "line", { x1: geo.left + st.fed * geo.cell, x2: geo.left + st.fed * geo.cell, y1: 0,
    y2: 54, stroke: "#1d2433", "stroke-dasharray": "3 2" });
  if (cat) obsRow(svg, geo, st.obs.map((o, t) => (t < st.fed ? o : "·")), 62);
  if (smoothH) drawSmoothed(svg, geo, (cat && geo.cell >= 9 ? 86 : 60) + 2, K);
  const pending = st.fed - st.fixed.length;
  let text = `${st.closed ? "closed" : "open"}: fed ${st.fed} of ${T}, fixed ${st.fixed.length}, ` +
    `pending ${pending}`;
  if (st.lag !== null) text += `, lag ${st.lag}`;
  if (st.ll !== null) text += `, log-likelihood ${st.ll.toFixed(4)}`;
  setStatus($("str-status"), st.closed ? "done" : "streaming", text);
  $("str-status").dataset.fixed = st.fixed.length;
  $("str-status").dataset.pending = pending;
}

// The smoothed posteriors so far, K thin rows (one cell per position and
// state, its opacity the probability), under the paths.
function drawSmoothed(svg, geo, y, K) {
  const label = svgEl(svg, "text", { x: 4, y: y + 4 * K + 4 });
  label.textContent = `lag ${st.lag}`;
  st.smoothed.forEach((row, t) => {
    for (let k = 0; k < K; k++) {
      svgEl(svg, "rect", { class: "smooth", x: geo.left + t * geo.cell, y: y + k * 8, width: geo.cell,
        height: 7, fill: stateColor(k), "fill-opacity": row[k].toFixed(4) });
    }
  });
}

function svgEl(parent, tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  parent.appendChild(e);
  return e;
}

async function ensure(form) {
  if (st && !st.closed) return st;
  const m = modelInfo(await listModels(), form.elements.model.value);
  st = fresh(form, m);
  legend($("str-legend"), stateNames(m));
  return st;
}

// Send the next chunk (or, with final, close the stream). false when done.
async function step(form, final = false) {
  const s = await ensure(form);
  const size = Math.max(1, Number(form.elements.chunk.value) || 1);
  const chunk = s.obs.slice(s.fed, s.fed + size);
  if (!chunk.length && !final) return false;
  const body = { model: s.model.name, session: s.session, observations: chunk };
  const lag = Number(form.elements.lag.value);
  if (lag > 0) body.lag = lag;
  if (final) body.final = true;
  const res = await postJSON("/decode", body);
  s.fed += chunk.length;
  s.fixed.push(...res.fixed_path);
  s.tentative = res.tentative_path;
  s.tentativeFrom = res.tentative_from;
  s.ll = res.log_likelihood;
  if (res.lag !== undefined) s.lag = res.lag;
  if (res.smoothed) res.smoothed.forEach((row, i) => { s.smoothed[res.smoothed_from + i] = row; });
  if (res.final_smoothed) s.smoothed.push(...res.final_smoothed);
  s.closed = !!res.final;
  draw();
  return !s.closed;
}

async function guarded(fn) {
  showError($("str-error"), null);
  try {
    return await fn();
  } catch (e) {
    stop();
    setStatus($("str-status"), "error", "error");
    showError($("str-error"), e);
    return false;
  }
}

function stop() {
  if (timer) clearTimeout(timer);
  timer = null;
  $("str-play").textContent = "Play";
}

// Feed a chunk every 1/rate seconds; close the stream after the last.
function play(form) {
  if (timer) return stop();
  $("str-play").textContent = "Pause";
  const tick = async () => {
    const more = await guarded(async () => {
      const s = await ensure(form);
      return s.fed < s.obs.length ? step(form) : (await step(form, true), false);
    });
    if (!timer) return;
    if (more) timer = setTimeout(tick, 1000 / Math.max(0.1, Number(form.elements.rate.value) || 1));
    else stop();
  };
  timer = setTimeout(tick, 0);
}

export function initStream() {
  const form = $("str-form");
  loadFileInto(form.elements.file, form.elements.observations);
  form.addEventListener("submit", (e) => e.preventDefault());
  $("str-step").addEventListener("click", () => guarded(() => step(form)));
  $("str-final").addEventListener("click", () => guarded(() => step(form, true)));
  $("str-play").addEventListener("click", () => play(form));
  $("str-reset").addEventListener("click", async () => {
    stop();
    if (st && !st.closed) await guarded(() => step(form, true)); // frees the server's session
    st = null;
    draw();
    setStatus($("str-status"), "idle", "idle");
  });
}
