// server.js: the Server tab: GET /models, GET /sessions (with DELETE per
// session) and a few figures from GET /metrics (Prometheus text), live
// while the tab is shown.
import { getJSON, listModels, request, showError } from "./api.js";

const $ = (id) => document.getElementById(id);

function table(el, head, rows) {
  const tr = (cells, tag) => {
    const r = document.createElement("tr");
    for (const c of cells) {
      const d = document.createElement(tag);
      if (c instanceof Node) d.appendChild(c);
      else d.textContent = c;
      if (typeof c === "number") d.className = "num";
      r.appendChild(d);
    }
    return r;
  };
  el.replaceChildren(tr(head, "th"), ...rows.map((r) => tr(r, "td")));
}

function bytes(n) {
  return n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
}

function shape(m) {
  if (m.kind === "hmm") {
    return `${m.states} states, ${m.emissions}` +
      (m.symbols ? `, ${m.symbols} symbols` : `, dimension ${m.dimension}`);
  }
  return `${m.n_layer} layers, d_model ${m.d_model}, vocab ${m.vocab_size}, ${m.weights}`;
}

// Sums per metric name (labels summed over; histogram buckets left out).
export function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1].endsWith("_bucket")) continue;
    out.set(m[1], (out.get(m[1]) || 0) + Number(m[3]));
  }
  return out;
}

const FIGURES = [
  ["hmmba_requests_total", "requests"],
  ["hmmba_generated_tokens_total", "tokens generated"],
  ["hmmba_prompt_tokens_total", "prompt tokens"],
  ["hmmba_hmm_observations_decoded_total", "HMM observations decoded"],
  ["hmmba_queue_depth", "queue depth"],
  ["hmmba_rejected_total", "503s"],
  ["hmmba_sessions", "sessions"],
  ["hmmba_sessions_bytes", "session bytes", bytes],
  ["hmmba_sessions_evicted_total", "sessions evicted"],
];

// The figures, from GET /metrics.
async function refreshMetrics() {
  const metrics = parseMetrics(await (await request("/metrics")).text());
  const rows = FIGURES.filter(([k]) => metrics.has(k))
    .map(([k, label, fmt]) => [label, fmt ? fmt(metrics.get(k)) : metrics.get(k)]);
  for (const [k, label] of [["hmmba_time_to_first_token_seconds", "mean time to first token"],
    ["hmmba_time_per_output_token_seconds", "mean time per output token"]]) {
    const n = metrics.get(`${k}_count`);
    if (n) rows.push([label, `${((metrics.get(`${k}_sum`) / n) * 1000).toFixed(2)} ms`]);
  }
  table($("srv-metrics"), ["figure", "value"], rows);
}

let live = null;

// While the Server tab is shown, the figures refresh every 2 s.
export function liveMetrics(on) {
  if (live) clearInterval(live);
  live = on ? setInterval(() => refreshMetrics().catch((e) => showError($("srv-error"), e)), 2000) : null;
}

export async function refreshServer() {
  showError($("srv-error"), null);
  try {
    const models = await listModels(true);
    table($("srv-models"), ["name", "kind", "shape", "sessions", "session bytes"],
      models.map((m) => [m.name, m.kind, shape(m), m.sessions.count, bytes(m.sessions.bytes)]));
    const s = await getJSON("/sessions");
    $("srv-sess-sum").textContent = `(${s.count}, ${bytes(s.bytes)} of ${bytes(s.budget_bytes)})`;
    table($("srv-sessions"), ["id", "model", "tokens", "bytes", "last use", "idle", ""],
      s.sessions.map((x) => {
        const del = document.createElement("button");
        del.type = "button";
        del.textContent = "Delete";
        del.dataset.session = x.id;
        del.addEventListener("click", async () => {
          try {
            await request(`/sessions/${encodeURIComponent(x.id)}`, { method: "DELETE" });
            await refreshServer();
          } catch (e) {
            showError($("srv-error"), e);
          }
        });
        return [x.id, x.model, x.tokens, bytes(x.bytes), new Date(x.last_use * 1000).toLocaleTimeString(),
          `${(x.idle_ms / 1000).toFixed(1)} s`, del];
      }));
    await refreshMetrics();
  } catch (e) {
    showError($("srv-error"), e);
  }
}

export function initServer() {
  $("srv-refresh").addEventListener("click", refreshServer);
}
