// api.js: the public HTTP API as the page uses it. Every request carries
// the API key from the header field when one is typed; a failed request
// throws an ApiError whose message is the server's own answer, verbatim.

const keyInput = () => document.getElementById("api-key");

export class ApiError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}: ${body}`);
    this.status = status;
    this.body = body;
  }
}

function headers(extra = {}) {
  const h = { ...extra };
  const key = keyInput()?.value.trim();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

// fetch path; JSON bodies are sent as JSON. Returns the Response (2xx only).
export async function request(path, { method = "GET", json, body, signal, accept } = {}) {
  const h = headers(accept ? { Accept: accept } : {});
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const res = await fetch(path, { method, headers: h, body, signal });
  if (!res.ok) throw new ApiError(res.status, (await res.text()).trim());
  return res;
}

export async function getJSON(path) {
  return (await request(path)).json();
}

export async function postJSON(path, json, opts = {}) {
  return (await request(path, { method: "POST", json, ...opts })).json();
}

// POST json with "stream": true and yield each server-sent event's data,
// parsed, until [DONE] or the end of the stream. signal aborts (closing
// the connection, which stops the server's work).
export async function* streamEvents(path, json, signal) {
  const res = await request(path, { method: "POST", json, signal, accept: "text/event-stream" });
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const data = frame.split("\n").filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart()).join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      yield JSON.parse(data);
    }
  }
}

// The models, from GET /models (cached per page load; refresh() renews).
let models = null;
export async function listModels(refresh = false) {
  if (!models || refresh) models = (await getJSON("/models")).models;
  return models;
}

// Show an error (an ApiError's text is the server's) in a <pre> element;
// null hides it.
export function showError(el, err) {
  if (!err) {
    el.hidden = true;
    el.textContent = "";
    return;
  }
  el.hidden = false;
  el.textContent = err instanceof ApiError ? err.message : String(err.message || err);
}

// Status line with a machine-readable state (tests and screen readers).
export function setStatus(el, state, text) {
  el.dataset.state = state;
  el.textContent = text;
}
