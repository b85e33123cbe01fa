// collapselab chat page: plain JS, no build step, nothing fetched but this server.
// Replies stream from POST /v1/chat/completions (server-sent events); compare mode sends the
// same message to two models (two generations of one run) and shows both side by side.
"use strict";

const $ = (id) => document.getElementById(id);
const columns = {
  a: { select: $("model-a"), log: $("log-a"), title: $("title-a"), history: [] },
  b: { select: $("model-b"), log: $("log-b"), title: $("title-b"), history: [] },
};
let models = [];

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function label(m) {
  return m.generation === null || m.generation === undefined ? m.id : `${m.id} (generation ${m.generation})`;
}

async function loadModels() {
  const r = await fetch("/v1/models", { headers: headers() });
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    $("status").textContent = `cannot list models: ${(body.error || {}).message || r.status}`;
    return;
  }
  models = (await r.json()).data;
  for (const side of ["a", "b"]) {
    const sel = columns[side].select;
    const keep = sel.value;
    sel.innerHTML = "";
    for (const m of models) {
      const o = document.createElement("option");
      o.value = m.id;
      o.textContent = label(m);
      sel.appendChild(o);
    }
    const fallback = side === "a" ? models.find((m) => m.default) : models.find((m) => !m.default) || models[0];
    sel.value = keep && models.some((m) => m.id === keep) ? keep : (fallback || models[0] || {}).id;
  }
  titles();
  $("status").textContent = `${models.length} model(s) served`;
}

function titles() {
  for (const side of ["a", "b"]) {
    const m = models.find((x) => x.id === columns[side].select.value);
    columns[side].title.textContent = m ? `${label(m)} · ${m.origin}` : "";
  }
}

function compareOn() { return $("compare-toggle").checked; }

function setCompare() {
  const on = compareOn();
  $("column-b").hidden = !on;
  $("model-b-label").hidden = !on;
}

function addTurn(log, role, text) {
  const div = document.createElement("div");
  div.className = `turn ${role}`;
  div.textContent = text;
  log.appendChild(div);
  log.scrollTop = log.scrollHeight;
  return div;
}

function settings() {
  const num = (id) => Number($(id).value);
  return { temperature: num("temperature"), top_p: num("top_p"), top_k: num("top_k"), max_tokens: num("max_tokens") };
}

// Stream one reply into a new assistant turn of `side`; resolves when the stream ends.
async function ask(side, message) {
  const col = columns[side];
  const model = col.select.value;
  const messages = [...col.history, { role: "user", content: message }];
  addTurn(col.log, "user", message);
  const div = addTurn(col.log, "assistant reply", "");
  div.classList.add("streaming");
  div.dataset.model = model;
  const text = document.createElement("span");
  text.className = "text";
  div.appendChild(text);
  const t0 = performance.now();
  let reply = "", info = null, finish = null, failure = null;
  try {
    const r = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(),
      body: JSON.stringify({ model, messages, stream: true, stream_options: { include_usage: true }, ...settings() }),
    });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      throw new Error(`${r.status}: ${(body.error || {}).message || r.statusText}`);
    }
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", usage = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        if (chunk.usage) usage = chunk.usage;
        if (chunk.collapselab) info = chunk.collapselab;
        for (const c of chunk.choices || []) {
          if (c.delta && c.delta.content) { reply += c.delta.content; text.textContent = reply; }
          if (c.finish_reason) finish = c.finish_reason;
        }
        col.log.scrollTop = col.log.scrollHeight;
      }
    }
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    const gen = info && info.generation !== null ? ` · generation ${info.generation}` : "";
    const tokens = usage ? ` · ${usage.completion_tokens} tokens` : "";
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = `${model}${gen}${tokens} · ${seconds} s · ${finish || "?"}`;
    div.appendChild(meta);
    col.history.push({ role: "user", content: message }, { role: "assistant", content: reply });
  } catch (e) {
    failure = e;
    div.classList.add("error");
    text.textContent = `error ${e.message}`;
  } finally {
    div.classList.remove("streaming");
    div.dataset.done = failure ? "error" : "ok";
  }
}

async function send(ev) {
  ev.preventDefault();
  const message = $("message").value.trim();
  if (!message) return;
  $("message").value = "";
  $("send").disabled = true;
  try {
    const sides = compareOn() ? ["a", "b"] : ["a"];
    await Promise.all(sides.map((s) => ask(s, message)));
  } finally {
    $("send").disabled = false;
    $("message").focus();
  }
}

$("composer").addEventListener("submit", send);
$("message").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) send(ev);
});
$("compare-toggle").addEventListener("change", setCompare);
for (const side of ["a", "b"]) columns[side].select.addEventListener("change", () => {
  columns[side].history = [];
  columns[side].log.innerHTML = "";
  titles();
});
$("clear").addEventListener("click", () => {
  for (const side of ["a", "b"]) { columns[side].history = []; columns[side].log.innerHTML = ""; }
});
$("api-key").value = localStorage.getItem("collapselab-api-key") || "";
$("api-key").addEventListener("change", () => { localStorage.setItem("collapselab-api-key", $("api-key").value); loadModels(); });
setCompare();
loadModels();
setInterval(loadModels, 10000); // a learner publishes new checkpoints
