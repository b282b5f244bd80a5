// fit.js: the Fit tab: POST /fit with "stream": true; the log-likelihood
// curve grows by one point per iteration event; the fitted model is shown
// as JSON; with "save_as" the server also installs it for serving (or
// says, verbatim, why it cannot), and the model lists are refilled.
import { listModels, showError, setStatus, streamEvents } from "./api.js";
import { lineChart, loadFileInto, parseSequences } from "./charts.js";
import { modelInfo } from "./decode.js";

const $ = (id) => document.getElementById(id);
let controller = null;

async function fit(form) {
  const status = $("fit-status");
  setStatus(status, "running", "fitting…"); // at once: the previous answer's state is gone
  showError($("fit-error"), null);
  $("fit-model").hidden = true;
  const curve = [];
  const width = Math.min(900, document.body.clientWidth - 40);
  lineChart($("fit-curve"), curve, { width, label: "log-likelihood" });
  controller = new AbortController();
  $("fit-run").disabled = true;
  $("fit-stop").disabled = false;
  try {
    const m = modelInfo(await listModels(), form.elements.model.value);
    const body = {
      model: m.name, sequences: parseSequences(form.elements.sequences.value, m), stream: true,
    };
    for (const f of ["max_iterations", "tolerance", "pseudocount"]) {
      const v = form.elements[f].value.trim();
      if (v !== "") body[f] = Number(v);
    }
    if (form.elements.algorithm.value === "viterbi") body.algorithm = "viterbi";
    const saveAs = form.elements.save_as.value.trim();
    if (saveAs) body.save_as = saveAs;
    setStatus(status, "running", "fitting…");
    for await (const ev of streamEvents("/fit", body, controller.signal)) {
      if (ev.iteration !== undefined) {
        curve.push(ev.log_likelihood);
        lineChart($("fit-curve"), curve, { width, label: "log-likelihood" });
        setStatus(status, "running", `iteration ${ev.iteration}: ${ev.log_likelihood.toFixed(6)}`);
      } else if (ev.error) {
        throw new Error(JSON.stringify({ error: ev.error }));
      } else if (ev.model) {
        $("fit-model").textContent = JSON.stringify(ev.model, null, 1);
        $("fit-model").hidden = false;
        setStatus(status, "done", `${ev.iterations} iterations, final log-likelihood ` +
          `${ev.final_log_likelihood.toFixed(6)}${ev.converged ? ", converged" : ""}` +
          `${saveAs ? `, installed as ${saveAs}` : ""}`);
        if (saveAs) document.dispatchEvent(new Event("models-changed")); // app.js refills the lists
      }
    }
  } catch (e) {
    if (e.name === "AbortError") setStatus(status, "stopped", `stopped after ${curve.length} iterations`);
    else {
      setStatus(status, "error", "error");
      showError($("fit-error"), e);
    }
  } finally {
    controller = null;
    $("fit-run").disabled = false;
    $("fit-stop").disabled = true;
  }
}

export function initFit() {
  const form = $("fit-form");
  loadFileInto(form.elements.file, form.elements.sequences);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    fit(form);
  });
  $("fit-stop").addEventListener("click", () => controller && controller.abort());
}
