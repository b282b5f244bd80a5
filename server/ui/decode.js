// decode.js: the Decode tab: POST /decode on an HMM with the posteriors;
// the path as a state strip under the observations, the posteriors as a
// K x T heat map, Gaussian observations plotted in their states' colours.
import { postJSON, listModels, showError, setStatus } from "./api.js";
import { clear, heatmap, layout, legend, loadFileInto, obsRow, parseObservations, scatter,
  stripRow } from "./charts.js";

const $ = (id) => document.getElementById(id);
const MAX_CELLS = 200000; // one SVG rectangle per cell: past this the page slows down

export function modelInfo(models, name) {
  return models.find((m) => m.name === name);
}

export function stateNames(m) {
  return m.state_names || Array.from({ length: m.states }, (_, k) => `state ${k}`);
}

async function decode(form) {
  const status = $("dec-status");
  setStatus(status, "running", "decoding…"); // at once: the previous answer's state is gone
  showError($("dec-error"), null);
  try {
    const m = modelInfo(await listModels(), form.elements.model.value);
    const obs = parseObservations(form.elements.observations.value, m);
    setStatus(status, "running", `decoding ${obs.length} observations…`);
    const res = await postJSON("/decode", {
      model: m.name, observations: obs, algorithm: form.elements.algorithm.value, posteriors: true,
    });
    const T = res.path.length, geo = layout(T), names = stateNames(m);
    legend($("dec-legend"), names);
    const strip = $("dec-strip");
    clear(strip);
    const cat = m.emissions === "categorical";
    strip.setAttribute("width", geo.width);
    strip.setAttribute("height", cat && geo.cell >= 9 ? 46 : 26);
    stripRow(strip, geo, res.path, { label: res.path_log_prob !== undefined ? "Viterbi" : "MAP" });
    if (cat) obsRow(strip, geo, obs, 28);
    if (cat) clear($("dec-plot"));
    else scatter($("dec-plot"), geo, obs, res.path);
    $("dec-plot").style.display = cat ? "none" : "";
    if (T * names.length <= MAX_CELLS) heatmap($("dec-heat"), geo, res.posteriors, names);
    else clear($("dec-heat"));
    let text = `${T} positions, log-likelihood ${res.log_likelihood.toFixed(6)}`;
    if (T * names.length > MAX_CELLS) text += ` (no heat map past ${MAX_CELLS} cells)`;
    if (res.path_log_prob !== undefined) text += `, path log-probability ${res.path_log_prob.toFixed(6)}`;
    setStatus(status, "done", text);
  } catch (e) {
    setStatus(status, "error", "error");
    showError($("dec-error"), e);
  }
}

export function initDecode() {
  const form = $("dec-form");
  loadFileInto(form.elements.file, form.elements.observations);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    decode(form);
  });
}
