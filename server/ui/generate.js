// generate.js: the Generate tab: POST /generate with "stream": true on a
// Mamba model; tokens appear as their events arrive, shaded by their
// probability, with the top alternatives on hover; Stop aborts the fetch
// (the server stops the generation when the connection closes); sessions
// continue, fork, download and upload through /sessions; the hover's token
// texts come from /detokenize.
import { request, postJSON, streamEvents, showError, setStatus } from "./api.js";

const $ = (id) => document.getElementById(id);
const pieces = new Map(); // "model:id" -> the token's own text (for the hover)
let controller = null;

function num(form, name) {
  const v = form.elements[name].value.trim();
  return v === "" ? undefined : Number(v);
}

// The request body from the form: every sampling field that is set.
function body(form) {
  const b = { model: form.elements.model.value, prompt: form.elements.prompt.value, stream: true };
  for (const f of ["max_tokens", "temperature", "top_k", "top_p", "min_p",
    "repetition_penalty", "seed", "logprobs"]) {
    const v = num(form, f);
    if (v !== undefined) b[f] = v;
  }
  const stop = form.elements.stop.value.split("\n").filter((s) => s !== "");
  if (stop.length) b.stop = stop;
  const session = form.elements.session.value.trim();
  if (session) {
    b.session = session;
    b.session_mode = form.elements.session_mode.value;
  }
  return b;
}

// Green for a likely token, through yellow, to red for one of log
// probability -6 (p = 0.25%) or less.
function shade(logprob) {
  const s = Math.max(0, Math.min(1, 1 + logprob / 6));
  return `hsla(${Math.round(120 * s)}, 70%, ${Math.round(70 + 14 * s)}%, 0.95)`;
}

function tokenSpan(ev, model) {
  const s = document.createElement("span");
  s.className = "tok";
  s.dataset.token = ev.token;
  s.textContent = ev.text || "";
  if (typeof ev.logprob === "number") {
    s.dataset.logprob = ev.logprob;
    s.style.background = shade(ev.logprob);
    s.ev = ev;
    s.model = model;
  }
  return s;
}

const pieceText = (model, id) => {
  const key = `${model}:${id}`;
  return pieces.has(key) ? JSON.stringify(pieces.get(key)) : "";
};

// The hover text: the token and its alternatives, each with its text
// (from /detokenize once the generation has ended) and probability.
function tipText(span) {
  const ev = span.ev;
  return [`#${ev.token} ${pieceText(span.model, ev.token)}  p=${Math.exp(ev.logprob).toFixed(3)}`]
    .concat((ev.top_logprobs || []).map((a) =>
      `  #${a.token} ${pieceText(span.model, a.token)}  p=${Math.exp(a.logprob).toFixed(3)}`))
    .join("\n");
}

// Each token's own text, for the hover: one POST /detokenize with
// "pieces" for the ids of the output and their alternatives not known yet.
async function learnPieces(out, model) {
  const ids = new Set();
  for (const t of out.querySelectorAll(".tok")) {
    if (!t.ev || t.model !== model) continue;
    for (const id of [t.ev.token, ...(t.ev.top_logprobs || []).map((a) => a.token)])
      if (!pieces.has(`${model}:${id}`)) ids.add(id);
  }
  if (!ids.size) return;
  const j = await postJSON("/detokenize", { model, tokens: [...ids], pieces: true });
  for (const p of j.pieces) pieces.set(`${model}:${p.id}`, p.text);
}

function setSession(id) {
  $("gen-session").textContent = id || "none";
  for (const b of ["gen-fork", "gen-download"]) $(b).disabled = !id;
}

async function generate(form) {
  const out = $("gen-out"), status = $("gen-status");
  showError($("gen-error"), null);
  const b = body(form);
  if (!b.session) out.replaceChildren();
  const p = document.createElement("span");
  p.className = "prompt";
  p.textContent = b.prompt;
  out.appendChild(p);
  controller = new AbortController();
  $("gen-run").disabled = true;
  $("gen-stop").disabled = false;
  setStatus(status, "streaming", "streaming…");
  let n = 0;
  try {
    for await (const ev of streamEvents("/generate", b, controller.signal)) {
      if (ev.token !== undefined) {
        out.appendChild(tokenSpan(ev, b.model));
        n++;
        continue;
      }
      if (ev.text) out.appendChild(document.createTextNode(ev.text));
      if (ev.session) {
        form.elements.session.value = ev.session;
        setSession(ev.session);
      }
      if (ev.error) throw new Error(JSON.stringify({ error: ev.error }));
      const u = ev.usage || {};
      setStatus(status, "done", `${ev.finish_reason}: ${u.prompt_tokens} prompt tokens, ` +
        `${u.completion_tokens} generated`);
    }
    if (status.dataset.state === "streaming") setStatus(status, "done", `ended after ${n} tokens`);
  } catch (e) {
    if (e.name === "AbortError") setStatus(status, "stopped", `stopped after ${n} tokens`);
    else {
      setStatus(status, "error", "error");
      showError($("gen-error"), e);
    }
  } finally {
    controller = null;
  }
  try {
    if (b.logprobs) await learnPieces(out, b.model);
  } catch (e) {
    showError($("gen-error"), e);
  }
  $("gen-run").disabled = false;
  $("gen-stop").disabled = true;
}

async function sessionAction(fn) {
  showError($("gen-error"), null);
  try {
    await fn();
  } catch (e) {
    showError($("gen-error"), e);
  }
}

export function initGenerate() {
  const form = $("gen-form");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    generate(form);
  });
  $("gen-stop").addEventListener("click", () => controller && controller.abort());
  $("gen-clear").addEventListener("click", () => {
    $("gen-out").replaceChildren();
    setStatus($("gen-status"), "idle", "idle");
  });
  setSession("");
  form.elements.session.addEventListener("change", () => setSession(form.elements.session.value.trim()));
  $("gen-fork").addEventListener("click", () => sessionAction(async () => {
    const id = form.elements.session.value.trim();
    const as = $("gen-fork-as").value.trim() || `${id}-fork`;
    const j = await postJSON(`/sessions/${encodeURIComponent(id)}/fork`, { as });
    form.elements.session.value = j.id;
    setSession(j.id);
    setStatus($("gen-status"), "done", `forked ${id} as ${j.id} (${j.tokens} tokens)`);
  }));
  $("gen-download").addEventListener("click", () => sessionAction(async () => {
    const id = form.elements.session.value.trim();
    const blob = await (await request(`/sessions/${encodeURIComponent(id)}/state`)).blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${id}.state`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }));
  $("gen-upload").addEventListener("change", (e) => sessionAction(async () => {
    const f = e.target.files[0];
    if (!f) return;
    const id = form.elements.session.value.trim() || f.name.replace(/\.state$/, "");
    const url = `/sessions/${encodeURIComponent(id)}/state?model=${encodeURIComponent(form.elements.model.value)}`;
    const j = await (await request(url, { method: "PUT", body: f })).json();
    form.elements.session.value = j.id;
    setSession(j.id);
    setStatus($("gen-status"), "done", `uploaded state into session ${j.id} (${j.tokens} tokens)`);
    e.target.value = "";
  }));
  const tip = $("gen-tip");
  $("gen-out").addEventListener("mouseover", (e) => {
    const t = e.target.closest(".tok");
    if (!t || !t.ev) return;
    tip.textContent = tipText(t);
    tip.hidden = false;
    const r = t.getBoundingClientRect();
    tip.style.left = `${Math.min(r.left, window.innerWidth - 290)}px`;
    tip.style.top = `${r.bottom + 4}px`;
  });
  $("gen-out").addEventListener("mouseout", () => { tip.hidden = true; });
}
