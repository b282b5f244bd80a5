// app.js: the playground's entry: tabs, the API key field, and the model
// lists of each tab (filled from GET /models by kind).
import { listModels, showError } from "./api.js";
import { initDecode } from "./decode.js";
import { initFit } from "./fit.js";
import { initGenerate } from "./generate.js";
import { initServer, liveMetrics, refreshServer } from "./server.js";
import { initStream } from "./stream.js";

function selectTab(name) {
  for (const b of document.querySelectorAll("nav [role=tab]"))
    b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const s of document.querySelectorAll("main > section"))
    s.hidden = s.id !== `tab-${name}`;
  if (name === "server") refreshServer();
  liveMetrics(name === "server");
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

async function fillModels() {
  const models = await listModels(true);
  for (const sel of document.querySelectorAll("select.models")) {
    const kind = sel.dataset.kind;
    const keep = sel.value;
    sel.replaceChildren(...models.filter((m) => m.kind === kind).map((m) => {
      const o = document.createElement("option");
      o.textContent = m.name;
      return o;
    }));
    if (keep) sel.value = keep;
  }
  document.body.dataset.ready = "true";
}

async function start() {
  const key = document.getElementById("api-key");
  key.value = sessionStorage.getItem("hmmba-api-key") || "";
  key.addEventListener("change", () => {
    sessionStorage.setItem("hmmba-api-key", key.value);
    fillModels().catch((e) => showError(document.getElementById("gen-error"), e));
  });
  for (const b of document.querySelectorAll("nav [role=tab]"))
    b.addEventListener("click", () => selectTab(b.dataset.tab));
  document.addEventListener("models-changed", () =>
    fillModels().catch((e) => showError(document.getElementById("fit-error"), e)));
  initGenerate();
  initDecode();
  initStream();
  initFit();
  initServer();
  const tab = location.hash.slice(1);
  selectTab(["generate", "decode", "stream", "fit", "server"].includes(tab) ? tab : "generate");
  try {
    await fillModels();
  } catch (e) {
    showError(document.getElementById("gen-error"), e);
    document.body.dataset.ready = "error";
  }
}

start();
