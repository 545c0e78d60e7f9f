// sentsim playground: every view calls the server's public REST API, as a client would.
// No framework and no asset from elsewhere: the page works offline, and its Content-Security-Policy
// keeps every request on this origin. User text is only ever set as textContent, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const KEY_STORE = "sentsim-api-key";
const MAX_HEATMAP = 40; // sentences: one request a row, n² scores
const $ = (selector, root = document) => root.querySelector(selector);

// ---------------------------------------------------------------- the API, its key, its curl

let apiKey = sessionStorage.getItem(KEY_STORE);
let keyPrompt = null; // one dialog for all the requests refused at once

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function errorMessage(body, text) {
  // TEI-style {"error": str} or OpenAI-style {"error": {"message": str}}.
  const error = body && body.error;
  if (typeof error === "string") return error;
  if (error && typeof error.message === "string") return error.message;
  return text || "no message";
}

function askKey(refused) {
  if (keyPrompt) return keyPrompt;
  const dialog = $("#key-dialog");
  $("#key-note").textContent = refused
    ? "That key was refused. Enter the server's API key (SENTSIM_API_KEY)."
    : "This server asks for an API key (SENTSIM_API_KEY). It is kept for this tab only.";
  $("#key-input").value = "";
  keyPrompt = new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        keyPrompt = null;
        const given = dialog.returnValue === "ok" ? $("#key-input").value : "";
        if (given) {
          apiKey = given;
          sessionStorage.setItem(KEY_STORE, given);
        }
        resolve(Boolean(given));
      },
      { once: true },
    );
  });
  dialog.showModal();
  return keyPrompt;
}

function shellQuote(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

function curlFor(method, path, body) {
  const parts = ["curl -sS"];
  if (method !== "GET" && body === undefined) parts.push(`-X ${method}`);
  parts.push(shellQuote(location.origin + path));
  // The key itself stays out of the clipboard: the shell reads it from the environment.
  if (apiKey) parts.push('-H "Authorization: Bearer $SENTSIM_API_KEY"');
  if (body !== undefined) {
    parts.push("-H 'Content-Type: application/json'", `-d ${shellQuote(JSON.stringify(body))}`);
  }
  return parts.join(" ");
}

// The requests one action made, shown (and copied) as curl commands.
class Action {
  constructor(view) {
    this.box = $(".curl-box", view);
    this.commands = [];
  }

  async call(method, path, body) {
    this.commands.push(curlFor(method, path, body));
    this.show();
    return request(method, path, body);
  }

  show() {
    this.box.replaceChildren();
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy-curl";
    button.textContent = "Copy as curl";
    const pre = document.createElement("pre");
    pre.className = "curl";
    pre.textContent = this.commands.join("\n");
    button.addEventListener("click", () => copyText(pre, button));
    this.box.append(button, pre);
  }
}

async function copyText(pre, button) {
  try {
    await navigator.clipboard.writeText(pre.textContent);
    button.textContent = "Copied";
  } catch {
    // No clipboard (a plain-HTTP origin other than localhost): select the text instead.
    getSelection().selectAllChildren(pre);
    button.textContent = "Selected: press Ctrl+C";
  }
  setTimeout(() => (button.textContent = "Copy as curl"), 1600);
}

async function request(method, path, body) {
  for (let attempt = 0; ; attempt += 1) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (response.status === 401 && attempt < 3 && (await askKey(attempt > 0 || apiKey))) {
      continue;
    }
    if (!response.ok) throw new ApiError(response.status, errorMessage(data, text));
    return data;
  }
}

function setStatus(view, text, isError = false) {
  const status = $(".status", view);
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function failed(view, error) {
  const prefix = error instanceof ApiError ? `HTTP ${error.status}: ` : "";
  setStatus(view, prefix + error.message, true);
}

function svg(tag, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (parent) parent.append(node);
  return node;
}

function titled(node, text) {
  svg("title", {}, node).textContent = text;
  return node;
}

const fixed = (value, digits = 3) => Number(value).toFixed(digits);

// ---------------------------------------------------------------- colour scales

function mix(a, b, t) {
  return a.map((x, i) => Math.round(x + (b[i] - x) * t));
}

// Cosine in [-1, 1]: orange below 0, white at 0, deep blue at 1.
function similarityColour(value) {
  const v = Math.max(-1, Math.min(1, value));
  const rgb = v >= 0 ? mix([247, 248, 252], [24, 54, 150], v) : mix([247, 248, 252], [194, 65, 12], -v);
  return `rgb(${rgb.join(",")})`;
}

// Attribution scaled to [-1, 1]: orange lowered the similarity, green raised it.
function attributionColour(t) {
  const rgb = t >= 0 ? mix([255, 255, 255], [31, 122, 77], t) : mix([255, 255, 255], [194, 65, 12], -t);
  return `rgb(${rgb.join(",")})`;
}

// ---------------------------------------------------------------- 1. sentences: heatmap + projection

// Eigenvalues and vectors of a small symmetric matrix (cyclic Jacobi rotations).
function symmetricEigen(matrix) {
  const n = matrix.length;
  const a = matrix.map((row) => row.slice());
  const v = a.map((_, i) => a.map((__, j) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 100; sweep += 1) {
    let off = 0;
    for (let p = 0; p < n; p += 1) for (let q = p + 1; q < n; q += 1) off += a[p][q] ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p += 1) {
      for (let q = p + 1; q < n; q += 1) {
        if (Math.abs(a[p][q]) < 1e-300) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k += 1) {
          const akp = a[k][p];
          const akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k += 1) {
          const apk = a[p][k];
          const aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k += 1) {
          const vkp = v[k][p];
          const vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return a.map((row, i) => ({ value: row[i], vector: v.map((r) => r[i]) }))
    .sort((x, y) => y.value - x.value);
}

// Classical MDS of a cosine matrix: for unit vectors the cosines are their Gram matrix, so this
// is exactly PCA of the (transformed, unit-length) vectors, from the scores already shown.
function projection(scores) {
  const n = scores.length;
  const gram = scores.map((row, i) => row.map((value, j) => (value + scores[j][i]) / 2));
  const rowMean = gram.map((row) => row.reduce((s, x) => s + x, 0) / n);
  const mean = rowMean.reduce((s, x) => s + x, 0) / n;
  const centred = gram.map((row, i) => row.map((x, j) => x - rowMean[i] - rowMean[j] + mean));
  const [first, second] = symmetricEigen(centred);
  const axis = (pair) => {
    if (!pair || pair.value <= 1e-12) return new Array(n).fill(0);
    const scale = Math.sqrt(pair.value);
    // Signs are arbitrary: make the largest coordinate positive, for a stable picture.
    const big = pair.vector.reduce((b, x) => (Math.abs(x) > Math.abs(b) ? x : b), 0);
    return pair.vector.map((x) => x * scale * (big < 0 ? -1 : 1));
  };
  const xs = axis(first);
  const ys = axis(second);
  return xs.map((x, i) => [x, ys[i]]);
}

function drawHeatmap(sentences, scores) {
  const n = sentences.length;
  const cell = Math.max(18, Math.min(56, Math.floor(440 / n)));
  const pad = 26;
  const size = pad + n * cell;
  const root = svg("svg", { width: size, height: size, id: "heatmap-svg", role: "img" });
  const readout = $("#heatmap-readout");
  for (let i = 0; i < n; i += 1) {
    svg("text", { x: pad - 6, y: pad + i * cell + cell / 2 + 4, "text-anchor": "end", "font-size": 11 }, root)
      .textContent = String(i + 1);
    svg("text", { x: pad + i * cell + cell / 2, y: pad - 8, "text-anchor": "middle", "font-size": 11 }, root)
      .textContent = String(i + 1);
    for (let j = 0; j < n; j += 1) {
      const value = scores[i][j];
      const rect = svg("rect", {
        class: "cell",
        x: pad + j * cell,
        y: pad + i * cell,
        width: cell,
        height: cell,
        fill: similarityColour(value),
        "data-row": i,
        "data-col": j,
        "data-value": value,
      }, root);
      titled(rect, `${i + 1} ↔ ${j + 1}: ${fixed(value)}`);
      rect.addEventListener("mouseenter", () => {
        readout.textContent = `${i + 1} ↔ ${j + 1}: ${fixed(value)} · “${sentences[i]}” / “${sentences[j]}”`;
      });
      if (cell >= 36) {
        const label = svg("text", {
          x: pad + j * cell + cell / 2,
          y: pad + i * cell + cell / 2 + 4,
          "text-anchor": "middle",
          "font-size": 11,
          "pointer-events": "none",
          fill: value > 0.55 ? "#ffffff" : "#1d2433",
        }, root);
        label.textContent = fixed(value, 2);
      }
    }
  }
  $("#heatmap").replaceChildren(root);
}

function drawProjection(sentences, points) {
  const width = 440;
  const height = 340;
  const margin = 28;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const span = (values) => Math.max(...values) - Math.min(...values) || 1;
  const sx = (x) => margin + ((x - Math.min(...xs)) / span(xs)) * (width - 2 * margin);
  const sy = (y) => height - margin - ((y - Math.min(...ys)) / span(ys)) * (height - 2 * margin);
  const root = svg("svg", { width, height, id: "projection-svg", role: "img" });
  svg("line", { class: "axis", x1: margin, y1: height - margin, x2: width - margin, y2: height - margin }, root);
  svg("line", { class: "axis", x1: margin, y1: margin, x2: margin, y2: height - margin }, root);
  points.forEach(([x, y], i) => {
    const group = svg("g", { class: "projected", "data-index": i, "data-x": x, "data-y": y }, root);
    titled(svg("circle", { class: "point", cx: sx(x), cy: sy(y), r: 7 }, group), sentences[i]);
    const right = sx(x) > width / 2; // labels point inwards, so none is cut at an edge
    const label = svg("text", {
      class: "point-label",
      x: sx(x) + (right ? -10 : 10),
      y: sy(y) + 4,
      "text-anchor": right ? "end" : "start",
    }, group);
    label.textContent = `${i + 1}. ${sentences[i].length > 28 ? `${sentences[i].slice(0, 27)}…` : sentences[i]}`;
  });
  $("#projection").replaceChildren(root);
}

async function compareSentences(view) {
  const sentences = $("#heatmap-sentences").value.split("\n").map((s) => s.trim()).filter(Boolean);
  if (sentences.length < 2 || sentences.length > MAX_HEATMAP) {
    setStatus(view, `Write 2 to ${MAX_HEATMAP} sentences, one a line (each is scored against all).`, true);
    return;
  }
  const transform = $("#heatmap-transform").value.trim();
  const parameters = transform ? { transform } : undefined;
  const action = new Action(view);
  setStatus(view, `Scoring ${sentences.length} × ${sentences.length} pairs…`);
  // One request a row: the source sentence against all of them.
  const scores = await Promise.all(sentences.map((source) =>
    action.call("POST", "/similarity", { inputs: { source_sentence: source, sentences }, parameters })));
  drawHeatmap(sentences, scores);
  drawProjection(sentences, projection(scores));
  const legend = $("#heatmap-legend");
  legend.replaceChildren(...sentences.map((s) => {
    const item = document.createElement("li");
    item.textContent = s;
    return item;
  }));
  setStatus(view, `${sentences.length} sentences${transform ? `, transform ${transform}` : ""}: higher is more similar.`);
}

// ---------------------------------------------------------------- 2. a pair: scores, alignment, attributions

function layoutTokens(root, tokens, y, side) {
  const boxes = [];
  let x = 8;
  tokens.forEach((token, index) => {
    const group = svg("g", { class: `token ${side}`, "data-index": index }, root);
    const rect = svg("rect", { x, y, height: 28, width: 10 }, group);
    const text = svg("text", { x: x + 8, y: y + 15 }, group);
    text.textContent = token;
    const width = text.getComputedTextLength() + 16;
    rect.setAttribute("width", width);
    boxes.push({ group, rect, centre: x + width / 2 });
    x += width + 6;
  });
  return { boxes, width: x + 8 };
}

function drawAlignment(source, target, pairs) {
  const root = svg("svg", { id: "alignment-svg", height: 190, width: 400, role: "img" });
  $("#alignment").replaceChildren(root);
  const top = layoutTokens(root, source, 10, "source");
  const bottom = layoutTokens(root, target, 150, "target");
  root.setAttribute("width", Math.max(top.width, bottom.width));
  const links = svg("g", { class: "links" }, root);
  root.insertBefore(links, root.firstChild); // lines under the tokens
  const heaviest = Math.max(...pairs.map((p) => p.mass), 1e-12);
  for (const pair of pairs) {
    const line = svg("line", {
      class: "link",
      x1: top.boxes[pair.source_index].centre,
      y1: 38,
      x2: bottom.boxes[pair.target_index].centre,
      y2: 150,
      "stroke-width": 1 + (11 * pair.mass) / heaviest,
      "stroke-opacity": 0.3 + (0.55 * pair.mass) / heaviest,
      "data-source-index": pair.source_index,
      "data-target-index": pair.target_index,
      "data-mass": pair.mass,
    }, links);
    titled(line, `${pair.source} → ${pair.target}: ${fixed(pair.mass)} of the mass`);
  }
  const readout = $("#pair-readout");
  const focus = (side, index, token) => {
    root.classList.add("dim");
    for (const line of links.children) {
      line.classList.toggle("focus", line.dataset[`${side}Index`] === String(index));
    }
    readout.textContent = `${token}: ${links.querySelectorAll(".focus").length} of the ${pairs.length} heaviest pairs`;
  };
  const clear = () => root.classList.remove("dim");
  top.boxes.forEach((b, i) => {
    b.group.addEventListener("mouseenter", () => focus("source", i, source[i]));
    b.group.addEventListener("mouseleave", clear);
  });
  bottom.boxes.forEach((b, i) => {
    b.group.addEventListener("mouseenter", () => focus("target", i, target[i]));
    b.group.addEventListener("mouseleave", clear);
  });
  return { top, bottom };
}

function colourTokens(drawn, explanation) {
  const sides = [[drawn.top, explanation.source], [drawn.bottom, explanation.target]];
  const largest = Math.max(...sides.flatMap(([, tokens]) => tokens.map((t) => Math.abs(t.attribution))), 1e-12);
  for (const [row, tokens] of sides) {
    if (tokens.length !== row.boxes.length) return false;
    tokens.forEach((t, i) => {
      const box = row.boxes[i];
      box.rect.style.fill = attributionColour(t.attribution / largest);
      box.group.dataset.attribution = t.attribution;
      titled(box.group, `${t.token}: attribution ${t.attribution >= 0 ? "+" : ""}${fixed(t.attribution, 4)}`);
    });
  }
  return true;
}

function scoreRow(method, score, reading) {
  const row = document.createElement("tr");
  row.dataset.method = method;
  for (const [text, cls] of [[method, ""], [fixed(score), "num"], [reading, ""]]) {
    const cell = document.createElement("td");
    cell.textContent = text;
    if (cls) cell.className = cls;
    row.append(cell);
  }
  return row;
}

async function comparePair(view) {
  const a = $("#pair-a").value.trim();
  const b = $("#pair-b").value.trim();
  if (!a || !b) {
    setStatus(view, "Write two sentences.", true);
    return;
  }
  const action = new Action(view);
  const inputs = { source_sentence: a, sentences: [b] };
  const note = $("#explain-note");
  note.textContent = "";
  setStatus(view, "Scoring…");
  const [cosine, wmd, wrd] = await Promise.all([
    action.call("POST", "/similarity", { inputs }),
    action.call("POST", "/similarity", { inputs, parameters: { method: "wmd" } }),
    action.call("POST", "/similarity", { inputs, parameters: { method: "wrd", alignment: true } }),
  ]);
  const table = $("#pair-scores");
  $("tbody", table).replaceChildren(
    scoreRow("cosine", cosine[0], "cosine of the sentence vectors, in [-1, 1]"),
    scoreRow("wmd", wmd[0], "1 / (1 + word mover's distance), in (0, 1]"),
    scoreRow("wrd", wrd.scores[0], "1 − word rotator's distance, in [-1, 1]"),
  );
  table.hidden = false;
  const drawn = drawAlignment(wrd.tokens[0], wrd.tokens[1], wrd.alignments[0]);
  setStatus(view, "Explaining by integrated gradients…");
  try {
    const explanation = await action.call("POST", "/similarity/explain", { source_sentence: a, sentence: b });
    const coloured = colourTokens(drawn, explanation);
    note.classList.remove("error");
    note.textContent = coloured
      ? `Token colours: integrated gradients of the cosine (${fixed(explanation.score)}) from a ` +
        `baseline of [PAD] tokens (${fixed(explanation.baseline_score)}): green raised the similarity ` +
        "on the way from the baseline to this pair, orange lowered it; the deeper, the more. " +
        "Two content-free sentences read as alike, so most tokens lower it."
      : "The explanation's tokens differ from the alignment's; colours left out.";
    setStatus(view, "Higher is more similar, by every method. Hover a token to see its lines.");
  } catch (error) {
    note.classList.add("error");
    note.textContent = error instanceof ApiError && error.status === 404
      ? "This server has no POST /similarity/explain, so tokens are not coloured by attribution."
      : `No attributions: ${error.message}`;
    setStatus(view, "Scored; see the note on attributions.");
  }
}

// ---------------------------------------------------------------- 3. search a collection

async function loadCollections(view) {
  const select = $("#search-collection");
  try {
    const listing = await request("GET", "/collections");
    const ready = listing.collections.filter((c) => c.status !== "unavailable");
    select.replaceChildren(...ready.map((c) => {
      const option = document.createElement("option");
      option.value = c.name;
      option.textContent = `${c.name} (${c.count ?? "?"} documents)`;
      return option;
    }));
    if (!ready.length) {
      setStatus(view, "No collection yet: create one with POST /collections (see the README), then come back.", true);
    }
  } catch (error) {
    failed(view, error);
  }
}

function hitRow(rank, hit) {
  const row = document.createElement("tr");
  row.className = "hit";
  row.dataset.id = hit.id;
  const cells = [
    [String(rank), "num"],
    [hit.text, ""],
    [fixed(hit.score), "num score"],
    [hit.vector_score === undefined ? "—" : fixed(hit.vector_score), "num vector-score"],
    [hit.id, "num"],
    [Object.keys(hit.metadata).length ? JSON.stringify(hit.metadata) : "", "meta"],
  ];
  for (const [text, cls] of cells) {
    const cell = document.createElement("td");
    if (cls === "meta") {
      const code = document.createElement("code");
      code.textContent = text;
      cell.append(code);
    } else {
      cell.textContent = text;
      cell.className = cls;
    }
    row.append(cell);
  }
  return row;
}

async function search(view) {
  const name = $("#search-collection").value;
  const query = $("#search-query").value.trim();
  if (!name || !query) {
    setStatus(view, name ? "Write a query." : "Choose a collection.", true);
    return;
  }
  const body = { query, top_k: Number($("#search-top-k").value) || 5 };
  const filterText = $("#search-filter").value.trim();
  if (filterText) {
    let filter;
    try {
      filter = JSON.parse(filterText);
    } catch {
      filter = null;
    }
    if (!filter || typeof filter !== "object" || Array.isArray(filter)) {
      setStatus(view, 'The filter is a JSON object of metadata values, e.g. {"lang": "en"}.', true);
      return;
    }
    body.filter = filter;
  }
  if ($("#search-rerank").checked) body.rerank = { method: $("#search-rerank-method").value };
  const action = new Action(view);
  setStatus(view, "Searching…");
  const result = await action.call("POST", `/collections/${encodeURIComponent(name)}/search`, body);
  const table = $("#search-hits");
  $("tbody", table).replaceChildren(...result.hits.map((hit, i) => hitRow(i + 1, hit)));
  table.hidden = false;
  setStatus(view, body.rerank
    ? `${result.hits.length} hits reranked by ${body.rerank.method} (score); vector score is the FAISS cosine.`
    : `${result.hits.length} hits by cosine (higher is closer).`);
}

// ---------------------------------------------------------------- 4. paraphrase

async function paraphrase(view) {
  const text = $("#paraphrase-text").value.trim();
  if (!text) {
    setStatus(view, "Write a sentence.", true);
    return;
  }
  const body = {
    text,
    num_candidates: Number($("#paraphrase-n").value) || 16,
    num_return_sequences: Number($("#paraphrase-k").value) || 5,
  };
  const seed = $("#paraphrase-seed").value.trim();
  if (seed) body.seed = Number(seed);
  const action = new Action(view);
  setStatus(view, `Sampling ${body.num_candidates} candidates…`);
  const results = await action.call("POST", "/paraphrase", body);
  $("#paraphrases").replaceChildren(...results.map((p) => {
    const item = document.createElement("li");
    item.className = "paraphrase";
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = fixed(p.score);
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.max(0, p.score) * 120}px`;
    item.append(document.createTextNode(p.text), score, bar);
    return item;
  }));
  setStatus(view, `The ${results.length} candidates most similar to the input (cosine, higher is closer).`);
}

// ---------------------------------------------------------------- wiring

const VIEWS = { heatmap: compareSentences, pair: comparePair, search, paraphrase };

function showView(name) {
  for (const tab of document.querySelectorAll("#tabs button")) {
    tab.setAttribute("aria-selected", String(tab.dataset.view === name));
  }
  for (const view of document.querySelectorAll(".view")) view.hidden = view.dataset.view !== name;
  if (name === "search") loadCollections($("#view-search"));
}

async function showServer() {
  const line = $("#server-info");
  try {
    const info = await request("GET", "/info");
    line.textContent = `${info.model} · ${info.dimension}-d · ${info.precision} · ` +
      `generator: ${info.generator ?? "none"} · sentsim ${info.version}`;
  } catch (error) {
    line.textContent = `Server info unavailable: ${error.message}`;
  }
}

for (const tab of document.querySelectorAll("#tabs button")) {
  tab.addEventListener("click", () => showView(tab.dataset.view));
}
for (const [name, run] of Object.entries(VIEWS)) {
  const view = $(`#view-${name}`);
  $("form", view).addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = $("button[type=submit]", view);
    button.disabled = true;
    try {
      await run(view);
    } catch (error) {
      failed(view, error);
    } finally {
      button.disabled = false;
    }
  });
}
showServer();
