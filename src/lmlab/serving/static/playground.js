// lmlab playground: plain JavaScript over the server's own API (no build step). See docs/serving.md.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { config: null, promptTokens: 0, text: "", position: -1, interventions: new Map(), busy: false };

$("api-key").value = localStorage.getItem("lmlab-api-key") || "";
$("api-key").addEventListener("change", () => localStorage.setItem("lmlab-api-key", $("api-key").value));

function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("api-key").value) h["Authorization"] = "Bearer " + $("api-key").value;
  return h;
}

async function api(path, body, method) {
  const r = await fetch(path, { method: method || (body ? "POST" : "GET"), headers: headers(),
                                body: body ? JSON.stringify(body) : undefined });
  const data = await r.json();
  if (!r.ok) throw new Error(data.error ? data.error.message : r.statusText);
  return data;
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

// probability → background colour: red (unlikely) … green (likely)
function colour(p) { return `hsl(${Math.round(120 * p)}, 70%, 85%)`; }

function esc(s) { return JSON.stringify(s).slice(1, -1); }

function tokenSpan(text, prob, top, index, cls) {
  const span = document.createElement("span");
  span.className = "token " + cls;
  span.textContent = text;
  span.dataset.index = index;
  if (prob !== null) {
    span.style.background = colour(prob);
    span.dataset.prob = prob.toFixed(4);
  }
  span.top = top;
  span.addEventListener("mouseenter", (e) => showTooltip(span, e));
  span.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  span.addEventListener("click", () => selectPosition(Number(span.dataset.index)));
  return span;
}

function showTooltip(span, e) {
  const tip = $("tooltip");
  const rows = Object.entries(span.top || {}).map(([t, lp]) =>
    `<tr><td>"${esc(t)}"</td><td>${Math.exp(lp).toFixed(3)}</td></tr>`).join("");
  tip.innerHTML = `<div>"${esc(span.textContent)}"${span.dataset.prob ? " p=" + span.dataset.prob : ""}</div>` +
                  (rows ? `<table>${rows}</table>` : "");
  const box = span.getBoundingClientRect();
  tip.style.left = (window.scrollX + box.left) + "px";
  tip.style.top = (window.scrollY + box.bottom + 4) + "px";
  tip.hidden = false;
}

async function generateCompletion() {
  const prompt = $("prompt").value;
  if (state.busy) return;
  state.busy = true;
  setStatus("generating…");
  const out = $("completion");
  out.innerHTML = "";
  try {
    const tok = await api("/tokenize", { prompt });
    tok.token_strs.forEach((t, i) => out.appendChild(tokenSpan(t, null, null, i, "prompt")));
    state.promptTokens = tok.count;
    const r = await fetch("/v1/completions", { method: "POST", headers: headers(), body: JSON.stringify({
      prompt, max_tokens: Number($("max-tokens").value), temperature: Number($("temperature").value),
      logprobs: 5, stream: true }) });
    if (!r.ok) throw new Error((await r.json()).error.message);
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", text = "", n = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const line = buffer.slice(0, cut).replace(/^data: /, "");
        buffer = buffer.slice(cut + 2);
        if (line === "[DONE]") continue;
        const chunk = JSON.parse(line);
        for (const c of chunk.choices) {
          text += c.text;
          const lp = c.logprobs;
          out.appendChild(tokenSpan(lp.tokens[0], Math.exp(lp.token_logprobs[0]), lp.top_logprobs[0],
                                    state.promptTokens + n, "generated"));
          n += 1;
        }
      }
    }
    state.text = prompt + text;
    setStatus(`${n} tokens`);
    out.dataset.done = "1";
    await Promise.all([selectPosition(-1), showTrainingSpans(prompt)]);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    state.busy = false;
  }
}

async function selectPosition(index) {
  state.position = index;
  document.querySelectorAll(".token.selected").forEach((s) => s.classList.remove("selected"));
  const span = document.querySelector(`.token[data-index="${index}"]`);
  if (span) span.classList.add("selected");
  await Promise.all([showLens(), showMemories(), showAttention()]);
}

async function showLens() {
  const r = await api("/v1/inside/lens", { prompt: state.text, top_k: 3 });
  const pos = state.position < 0 ? r.tokens.length + state.position : Math.min(state.position, r.tokens.length - 1);
  $("lens-position").textContent = `at "${esc(r.tokens[pos])}" (position ${pos})`;
  const rows = r.stages.map((s) => {
    const top = s.positions[pos].top.map((t) => `"${esc(t.token)}" ${t.prob.toFixed(2)}`).join(" · ");
    return `<tr><th>${s.stage}</th><td>${top}</td></tr>`;
  });
  $("lens").innerHTML = rows.join("");
}

async function showMemories() {
  const r = await api("/v1/inside/memories", { prompt: state.text, position: positionFor(), top_k: 4, n_tokens: 3 });
  $("memories-position").textContent = `at "${esc(r.tokens[r.position])}" (position ${r.position})`;
  const box = $("memories");
  box.innerHTML = "";
  for (const layer of r.layers) {
    for (const m of layer.keys) {
      const id = `${layer.layer}:${m.key}`;
      const div = document.createElement("div");
      div.className = "memory";
      div.dataset.memory = id;
      const promotes = m.promotes.map((p) => `"${esc(p.token)}"`).join(" ");
      div.innerHTML = `L${layer.layer} #${m.key} |m|·‖v‖=${m.contribution.toFixed(2)} promotes ${promotes} `;
      for (const [label, value] of [["off", 0], ["promote", 10]]) {
        const b = document.createElement("button");
        b.textContent = label;
        b.className = "memory-" + label;
        b.addEventListener("click", () => toggleIntervention(layer.layer, m.key, value));
        div.appendChild(b);
      }
      box.appendChild(div);
    }
  }
  paintInterventions();
}

function positionFor() { return state.position < 0 ? -1 : state.position; }

function toggleIntervention(layer, key, value) {
  const id = `${layer}:${key}`;
  if (state.interventions.has(id) && state.interventions.get(id).value === value) state.interventions.delete(id);
  else state.interventions.set(id, { layer, key, value });
  paintInterventions();
}

function paintInterventions() {
  document.querySelectorAll(".memory").forEach((d) => {
    const it = state.interventions.get(d.dataset.memory);
    d.classList.toggle("off", !!it && it.value === 0);
    d.classList.toggle("promoted", !!it && it.value !== 0);
  });
  const list = [...state.interventions.values()].map((i) => `L${i.layer} #${i.key} → ${i.value}`).join(", ");
  $("interventions").textContent = list ? "changed: " + list : "";
  $("regenerate").disabled = state.interventions.size === 0;
}

async function regenerate() {
  try {
    const r = await api("/v1/inside/intervene", { prompt: $("prompt").value,
      interventions: [...state.interventions.values()], max_tokens: Number($("max-tokens").value),
      temperature: Number($("temperature").value) });
    $("intervened").innerHTML = `<table><tr><th>original</th><td id="original-text">${esc(r.original.text)}</td></tr>` +
      `<tr><th>with changes</th><td id="intervened-text">${esc(r.intervened.text)}</td></tr></table>`;
  } catch (e) {
    $("intervened").innerHTML = `<span class="error">${e.message}</span>`;
  }
}

async function showAttention() {
  const r = await api("/v1/inside/attention", { prompt: state.text });
  state.attention = r;
  const layerSel = $("attn-layer"), headSel = $("attn-head");
  if (layerSel.options.length !== r.layers.length) {
    layerSel.innerHTML = r.layers.map((l) => `<option value="${l}">${l}</option>`).join("");
    headSel.innerHTML = r.patterns[0].map((_, h) => `<option value="${h}">${h}</option>`).join("");
  }
  paintAttention();
}

function paintAttention() {
  const r = state.attention;
  if (!r) return;
  const pattern = r.patterns[Number($("attn-layer").value)][Number($("attn-head").value)];
  const head = "<tr><th></th>" + r.tokens.map((t) => `<th>${esc(t)}</th>`).join("") + "</tr>";
  const rows = pattern.map((row, q) => `<tr><th>${esc(r.tokens[q])}</th>` + row.map((w, k) =>
    `<td title="${w.toFixed(3)}" style="background: rgba(40, 80, 200, ${k <= q ? w : 0})"></td>`).join("") + "</tr>");
  $("attention").innerHTML = `<table>${head}${rows.join("")}</table>`;
}

// The text cut at every span boundary; each piece knows the spans that cover it (spans may overlap).
async function showTrainingSpans(prompt) {
  const box = $("spans-text");
  box.innerHTML = "";
  $("spans-documents").innerHTML = "";
  $("spans-summary").textContent = "";
  let r;
  try {
    r = await api("/v1/attribution/spans", { text: state.text });
  } catch (e) {
    const err = document.createElement("span");
    err.className = "error";
    err.textContent = e.message;
    box.appendChild(err);
    return;
  }
  $("spans-summary").textContent = `${r.spans.length} verbatim span(s); searched ${r.index.n_documents} ` +
                                   `documents (${r.index.splits.join("+")})`;
  const promptEnd = r.text.startsWith(prompt) ? prompt.length : 0;
  const cuts = new Set([0, promptEnd, r.text.length]);
  r.spans.forEach((s) => { cuts.add(s.start); cuts.add(s.end); });
  const points = [...cuts].sort((a, b) => a - b);
  for (let i = 0; i + 1 < points.length; i++) {
    const [a, b] = [points[i], points[i + 1]];
    if (a === b) continue;
    const covering = r.spans.flatMap((s, n) => (s.start <= a && b <= s.end ? [n] : []));
    const piece = document.createElement("span");
    piece.textContent = r.text.slice(a, b);
    piece.className = covering.length ? "verbatim" + (covering.length > 1 ? " overlap" : "") : "plain";
    if (b <= promptEnd) piece.classList.add("prompt");
    if (covering.length) {
      piece.dataset.spans = covering.join(" ");
      const show = () => showSpanSources(r, covering, piece);
      piece.addEventListener("mouseenter", show);
      piece.addEventListener("click", show);
    }
    box.appendChild(piece);
  }
}

function showSpanSources(r, spanIds, piece) {
  document.querySelectorAll(".verbatim.active").forEach((p) => p.classList.remove("active"));
  piece.classList.add("active");
  const box = $("spans-documents");
  box.innerHTML = "";
  for (const n of spanIds) {
    const s = r.spans[n];
    const head = document.createElement("div");
    head.className = "span-source";
    head.textContent = `"${s.text}": ${s.length} tokens, ${s.count} occurrence(s) in training; first ` +
                       `${s.documents.length}:`;
    box.appendChild(head);
    for (const d of s.documents) {
      const div = document.createElement("div");
      div.className = "span-source document";
      const label = document.createElement("b");
      label.textContent = `doc ${d.document} (${d.split} #${d.split_document}) `;
      const snippet = document.createElement("span");
      snippet.className = "snippet";
      const mark = document.createElement("mark");
      mark.textContent = d.match;
      snippet.append(d.before, mark, d.after);
      div.append(label, snippet);
      box.appendChild(div);
    }
  }
}

async function applyEdit(e) {
  e.preventDefault();
  $("edit-result").textContent = "editing…";
  try {
    const body = { subject: $("edit-subject").value, prompt: $("edit-prompt").value,
                   target_new: $("edit-target").value };
    if ($("edit-paraphrase").value) body.paraphrase = $("edit-paraphrase").value;
    if ($("edit-neighbour").value) body.neighbour = $("edit-neighbour").value;
    const r = await api("/v1/edits", body);
    const rows = Object.keys(r.completions.before).map((k) =>
      `<tr><th>${k}</th><td class="before">${esc(r.completions.before[k])}</td>` +
      `<td class="after">${esc(r.completions.after[k])}</td></tr>`).join("");
    $("edit-result").innerHTML = `<table><tr><th>${r.id}</th><th>before</th><th>after</th></tr>${rows}</table>`;
    await listEdits();
    if ($("prompt").value) await generateCompletion();
  } catch (err) {
    $("edit-result").innerHTML = `<span class="error">${err.message}</span>`;
  }
}

async function listEdits() {
  const r = await api("/v1/edits");
  const ul = $("edits");
  ul.innerHTML = "";
  for (const ed of r.data) {
    const li = document.createElement("li");
    li.textContent = `${ed.id}: ${ed.prompt.replace("{}", ed.subject)} → ${ed.target_new} (layer ${ed.layers}) `;
    const b = document.createElement("button");
    b.textContent = "revert";
    b.className = "revert";
    b.addEventListener("click", async () => {
      await api("/v1/edits/" + ed.id, null, "DELETE");
      await listEdits();
      if ($("prompt").value) await generateCompletion();
    });
    li.appendChild(b);
    ul.appendChild(li);
  }
}

async function init() {
  try {
    state.config = await api("/v1/playground/config");
    $("model-name").textContent = `${state.config.model}: ${state.config.n_layer} layers, ` +
                                  `${state.config.n_head} heads, context ${state.config.block_size}`;
    $("edit-panel").hidden = !state.config.allow_edits;
    if (state.config.allow_edits) await listEdits();
  } catch (e) {
    setStatus(e.message, true);
  }
}

$("generate").addEventListener("click", generateCompletion);
$("regenerate").addEventListener("click", regenerate);
$("attn-layer").addEventListener("change", paintAttention);
$("attn-head").addEventListener("change", paintAttention);
$("edit-form").addEventListener("submit", applyEdit);
init();
