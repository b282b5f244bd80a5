// openai.test.mjs: hmmba against real clients (meson test 'node'): the
// official openai SDK for Node on the /v1 routes, and an OpenAPI 3.1
// validator on GET /openapi.json. The server is the built binary
// ($HMMBA_BIN) with the bundled demo Mamba model ($HMMBA_CONFIG_DIR/models/
// demo, its chat template named on --model) and the casino HMM, on a free
// loopback port. Greedy (temperature 0) answers are compared with each
// other, never with stored text, so a retrained demo model keeps passing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import OpenAI from "openai";
import SwaggerParser from "@apidevtools/swagger-parser";

const bin = process.env.HMMBA_BIN;
const cfg = process.env.HMMBA_CONFIG_DIR;
let server, base, client;

before(async () => {
  assert.ok(bin && cfg, "HMMBA_BIN and HMMBA_CONFIG_DIR must be set (meson test sets them)");
  server = spawn(bin, ["--listen", "127.0.0.1:0", "--workers", "2",
    "--model", `demo=${cfg}/models/demo,chat_template=chatml`,
    "--model", `casino=${cfg}/models/casino.json`], { stdio: ["ignore", "pipe", "inherit"] });
  base = await new Promise((resolve, reject) => {
    let out = "";
    const guard = setTimeout(() => reject(new Error("hang guard: hmmba did not listen in 60 s")), 60000);
    server.on("exit", (code) => reject(new Error(`hmmba exited with ${code}`)));
    server.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(guard); resolve(m[1]); }
    });
  });
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "none", maxRetries: 0 });
});

// A clean stop: drained, exit status 0 (under a sanitizer build, a report
// would make it non-zero).
after(async () => {
  if (!server || server.exitCode !== null) return;
  const exited = new Promise((resolve) => server.on("exit", (code, signal) => resolve({ code, signal })));
  server.kill("SIGTERM");
  assert.deepEqual(await exited, { code: 0, signal: null });
});

const prompt = "Once upon a time";
const chatMsgs = [{ role: "user", content: "Tell me a story." }];

test("models list", async () => {
  const { data, response } = await client.models.list().withResponse();
  assert.deepEqual(data.data.map((m) => m.id), ["demo"]); // the Mamba models only
  assert.equal(data.data[0].object, "model");
  assert.match(response.headers.get("x-request-id"), /^[0-9a-f]{16}$/);
});

test("completions, with and without streaming, agree", async () => {
  const r = await client.completions.create({ model: "demo", prompt, max_tokens: 8, temperature: 0 });
  assert.equal(r.object, "text_completion");
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.choices.length, 1);
  assert.equal(r.usage.completion_tokens, 8);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 8);
  assert.ok(r.choices[0].text.length > 0);
  const stream = await client.completions.create({
    model: "demo", prompt, max_tokens: 8, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  let text = "", usage = null, finish = null;
  for await (const chunk of stream) {
    assert.equal(chunk.id.slice(0, 5), "cmpl-");
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, r.choices[0].text);
  assert.equal(finish, "length");
  assert.deepEqual(usage, r.usage);
});

test("chat, with and without streaming, agree", async () => {
  const r = await client.chat.completions.create({ model: "demo", messages: chatMsgs, max_tokens: 8, temperature: 0 });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.role, "assistant");
  const content = r.choices[0].message.content;
  assert.equal(typeof content, "string");
  const stream = await client.chat.completions.create({
    model: "demo", messages: chatMsgs, max_tokens: 8, temperature: 0, stream: true });
  let text = "", roles = 0;
  for await (const chunk of stream) {
    assert.equal(chunk.object, "chat.completion.chunk");
    const d = chunk.choices[0]?.delta;
    if (d?.role) roles++;
    text += d?.content ?? "";
  }
  assert.equal(roles, 1); // the role comes once, first
  assert.equal(text, content);
});

test("n = 2: two choices, choice i sampled with seed + i", async () => {
  const r = await client.completions.create({ model: "demo", prompt, max_tokens: 6, temperature: 1, seed: 7, n: 2 });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
  assert.equal(r.usage.completion_tokens, 12);
  const one = await client.completions.create({ model: "demo", prompt, max_tokens: 6, temperature: 1, seed: 8 });
  assert.equal(r.choices[1].text, one.choices[0].text);
});

test("logprobs on completions and chat", async () => {
  const r = await client.completions.create({ model: "demo", prompt, max_tokens: 5, temperature: 0, logprobs: 2 });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, 5);
  assert.equal(lp.tokens.join(""), r.choices[0].text);
  for (let i = 0; i < 5; i++) {
    assert.ok(lp.token_logprobs[i] <= 0);
    const top = Object.values(lp.top_logprobs[i]);
    assert.equal(top.length, 2);
    // greedy: the chosen token is the most likely one
    assert.ok(Math.abs(Math.max(...top) - lp.token_logprobs[i]) < 1e-6);
  }
  const c = await client.chat.completions.create({
    model: "demo", messages: chatMsgs, max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = c.choices[0].logprobs.content;
  assert.equal(content.length, c.usage.completion_tokens);
  for (const t of content) {
    assert.equal(t.top_logprobs.length, 3);
    assert.equal(t.top_logprobs[0].logprob, t.logprob);
  }
});

test("errors come as the SDK's error classes", async () => {
  await assert.rejects(
    client.completions.create({ model: "nope", prompt: "a" }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === "model_not_found");
  await assert.rejects(
    client.completions.create({ model: "demo", prompt: "a", n: 99 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "n" && e.type === "invalid_request_error");
  await assert.rejects(
    client.chat.completions.create({ model: "demo", messages: chatMsgs, response_format: { type: "json_object" } }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "response_format");
});

test("a session continued through X-Session-Id", async () => {
  const headers = { "X-Session-Id": "node-chat-1" };
  const first = [{ role: "system", content: "You are terse." }, { role: "user", content: "Hello." }];
  const r1 = await client.chat.completions.create({ model: "demo", messages: first, max_tokens: 4, temperature: 0 }, { headers });
  assert.equal(r1.session, "node-chat-1");
  assert.equal(r1.session_created, true);
  const next = [{ role: "user", content: "Go on." }];
  const r2 = await client.chat.completions.create({ model: "demo", messages: next, max_tokens: 4, temperature: 0 }, { headers });
  assert.equal(r2.session_created, false);
  // only the new turn was sent and absorbed
  const alone = await client.chat.completions.create({ model: "demo", messages: next, max_tokens: 1, temperature: 0 });
  assert.ok(r2.usage.prompt_tokens <= alone.usage.prompt_tokens);
  const info = await (await fetch(`${base}/sessions/node-chat-1`)).json();
  assert.equal(info.tokens, r1.usage.total_tokens + r2.usage.total_tokens);
});

test("the OpenAPI document validates and lists every served route family", async () => {
  const doc = await (await fetch(`${base}/openapi.json`)).json();
  const api = await SwaggerParser.validate(structuredClone(doc));
  assert.equal(api.openapi.slice(0, 3), "3.1");
  for (const p of ["/v1/completions", "/v1/chat/completions", "/tokenize", "/v2/models/{name}", "/metrics"])
    assert.ok(doc.paths[p], `${p} documented`);
});
