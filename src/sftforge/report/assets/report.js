// sftforge report: draws the run's figures (embedded as JSON) as SVG charts and a record browser.
// No network, no libraries: the page must open from a file on an air-gapped machine.
"use strict";

const DATA = JSON.parse(document.getElementById("report-data").textContent);
const SVGNS = "http://www.w3.org/2000/svg";
const PALETTE = ["#2f7ed8", "#e8743b", "#19a979", "#945ecf", "#ed4a7b", "#13a4b4", "#bf399e", "#6c8893", "#ee6868",
                 "#525df4", "#d4a12e", "#5c9e3a"];
const STATUS_COLOR = {kept: "#2f7ed8", removed: "#d9534f"};
const byId = (id) => document.getElementById(id);

// -- small DOM helpers ---------------------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "onclick" || k === "onchange" || k === "oninput") node[k] = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function s(tag, attrs, parent) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function fmt(v, digits = 3) {
  if (v === null || v === undefined) return "-";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 1) return v.toFixed(Math.max(0, digits - 1));
  return v.toPrecision(digits);
}

function table(headers, rows, numeric = []) {
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((c, i) => h("th", {class: numeric.includes(i) ? "num" : null}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", {class: numeric.includes(i) ? "num" : null},
      c instanceof Node ? c : fmt(c)))))));
}

function empty(text) { return h("p", {class: "empty"}, text); }

function recordLink(id) { return h("a", {class: "rid", href: "#browser", onclick: (e) => { e.preventDefault(); openRecord(id); }}, id); }

// -- tooltip -------------------------------------------------------------------------------------------------------

const tipBox = byId("tip");
function tip(node, text) {
  node.addEventListener("mousemove", (e) => {
    tipBox.textContent = typeof text === "function" ? text() : text;
    tipBox.hidden = false;
    tipBox.style.left = Math.min(e.clientX + 14, window.innerWidth - 440) + "px";
    tipBox.style.top = (e.clientY + 14) + "px";
  });
  node.addEventListener("mouseleave", () => { tipBox.hidden = true; });
}

// -- charts --------------------------------------------------------------------------------------------------------

function scale(d0, d1, r0, r1) {
  const span = d1 - d0 || 1;
  const f = (v) => r0 + (v - d0) / span * (r1 - r0);
  f.domain = [d0, d1];
  return f;
}

function ticks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((x) => x >= step0);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function chartBox(container, name, width, height) {
  const box = h("div", {class: "chart", "data-chart": name});
  container.append(box);
  const svg = s("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", style: `width:100%;max-width:${width}px;height:auto`});
  box.append(svg);
  return {box, svg};
}

function legend(box, items) {
  const node = h("div", {class: "legend"}, items.map(([name, color]) => h("span", {}, h("i", {style: `background:${color}`}), name)));
  box.prepend(node);
}

function axes(svg, x, y, width, height, m, xLabel, yLabel, xTicks) {
  const g = s("g", {class: "axis"}, svg);
  for (const t of ticks(y.domain[0], y.domain[1])) {
    s("line", {class: "grid-line", x1: m.l, x2: width - m.r, y1: y(t), y2: y(t)}, g);
    s("text", {x: m.l - 4, y: y(t) + 3, "text-anchor": "end"}, g).textContent = fmt(t);
  }
  for (const t of xTicks || ticks(x.domain[0], x.domain[1], 6)) {
    s("text", {x: x(t), y: height - m.b + 14, "text-anchor": "middle"}, g).textContent = fmt(t);
  }
  s("line", {x1: m.l, x2: width - m.r, y1: height - m.b, y2: height - m.b}, g);
  if (xLabel) s("text", {class: "label", x: (m.l + width - m.r) / 2, y: height - 2, "text-anchor": "middle"}, g).textContent = xLabel;
  if (yLabel) s("text", {class: "label", x: 10, y: m.t - 6}, g).textContent = yLabel;
}

// Horizontal bars: one per label, value printed at the end.
function barChart(container, name, labels, values, opts = {}) {
  if (!labels.length) { container.append(empty(opts.empty || "nothing to show")); return; }
  const labelW = Math.min(300, 12 + 6.5 * Math.max(...labels.map((l) => String(l).length)));
  const width = opts.width || 620, rowH = 20, m = {t: 6, r: 60, b: 6, l: labelW};
  const height = m.t + m.b + rowH * labels.length;
  const {box, svg} = chartBox(container, name, width, height);
  const max = Math.max(...values.map((v) => v || 0), 0), min = Math.min(...values.map((v) => v || 0), 0);
  const x = scale(min, max > min ? max : min + 1, m.l, width - m.r);
  labels.forEach((label, i) => {
    const y = m.t + i * rowH, v = values[i] || 0;
    const color = (opts.colors && opts.colors[i]) || opts.color || PALETTE[0];
    s("text", {class: "label", x: m.l - 6, y: y + 14, "text-anchor": "end"}, svg).textContent =
      String(label).length > 48 ? String(label).slice(0, 46) + "…" : label;
    const x0 = Math.min(x(0), x(v)), x1 = Math.max(x(0), x(v));
    const bar = s("rect", {class: "mark bar", x: x0, y: y + 3, width: Math.max(1, x1 - x0), height: rowH - 6, fill: color,
                           "data-label": label, "data-value": values[i]}, svg);
    tip(bar, `${label}: ${fmt(values[i])}`);
    s("text", {class: "label value", x: x1 + 4, y: y + 14}, svg).textContent = fmt(values[i]);
  });
  if (min < 0) s("line", {x1: x(0), x2: x(0), y1: m.t, y2: height - m.b, stroke: "#aab3bf"}, svg);
  if (opts.legend) legend(box, opts.legend);
  return box;
}

// Vertical histogram: several series side by side per bin, over shared edges.
function histogram(container, name, edges, series, opts = {}) {
  const width = opts.width || 420, height = opts.height || 170, m = {t: 16, r: 10, b: 30, l: 42};
  const {box, svg} = chartBox(container, name, width, height);
  const max = Math.max(1, ...series.flatMap((sr) => sr.counts));
  const x = scale(edges[0], edges[edges.length - 1], m.l, width - m.r);
  const y = scale(0, max, height - m.b, m.t);
  axes(svg, x, y, width, height, m, opts.xLabel, opts.yLabel || "records");
  const k = series.length;
  series.forEach((sr, j) => {
    sr.counts.forEach((c, i) => {
      if (!c) return;
      const x0 = x(edges[i]), x1 = x(edges[i + 1]), w = (x1 - x0) / k;
      const bar = s("rect", {class: "mark bar", x: x0 + j * w, y: y(c), width: Math.max(1, w - 0.5), height: y(0) - y(c), fill: sr.color}, svg);
      tip(bar, `${sr.name}: ${c} records in [${fmt(edges[i])}, ${fmt(edges[i + 1])})`);
    });
  });
  legend(box, series.map((sr) => [`${sr.name} (n=${sr.n}${sr.median !== null && sr.median !== undefined ? ", median " + fmt(sr.median) : ""})`, sr.color]));
  return box;
}

// Lines over steps; each series is [[x, y], ...].
function lineChart(container, name, series, opts = {}) {
  const pts = series.flatMap((sr) => sr.points);
  if (!pts.length) { container.append(empty(opts.empty || "no points")); return; }
  const width = opts.width || 560, height = opts.height || 220, m = {t: 18, r: 16, b: 32, l: 52};
  const {box, svg} = chartBox(container, name, width, height);
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const pad = (Math.max(...ys) - Math.min(...ys)) * 0.05 || 0.5;
  const x = scale(Math.min(...xs), Math.max(...xs), m.l, width - m.r);
  const y = scale(opts.yMin !== undefined ? opts.yMin : Math.min(...ys) - pad, opts.yMax !== undefined ? opts.yMax : Math.max(...ys) + pad, height - m.b, m.t);
  axes(svg, x, y, width, height, m, opts.xLabel || "step", opts.yLabel);
  series.forEach((sr, j) => {
    const color = sr.color || PALETTE[j % PALETTE.length];
    if (sr.points.length > 1 && !sr.dotsOnly) {
      s("path", {class: "mark line", d: sr.points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(""),
                 fill: "none", stroke: color, "stroke-width": sr.width || 1.8, "stroke-dasharray": sr.dashed ? "5 3" : null,
                 "data-series": sr.name}, svg);
    }
    if (sr.dots || sr.points.length === 1 || sr.dotsOnly) {
      sr.points.forEach((p) => {
        const c = s("circle", {class: "mark dot", cx: x(p[0]), cy: y(p[1]), r: 3, fill: p[2] || color}, svg);
        tip(c, `${sr.name}: step ${p[0]}, ${fmt(p[1], 4)}${p[3] ? " · " + p[3] : ""}`);
      });
    }
  });
  legend(box, series.filter((sr) => !sr.noLegend).map((sr, j) => [sr.name, sr.color || PALETTE[j % PALETTE.length]]));
  return box;
}

// Stacked areas: arm probabilities over steps (each row sums to 1).
function stackedArea(container, name, steps, rows, names, opts = {}) {
  const width = opts.width || 560, height = opts.height || 220, m = {t: 18, r: 16, b: 32, l: 40};
  const {box, svg} = chartBox(container, name, width, height);
  const x = scale(Math.min(...steps), Math.max(...steps), m.l, width - m.r);
  const y = scale(0, 1, height - m.b, m.t);
  axes(svg, x, y, width, height, m, "step", "probability");
  const base = steps.map(() => 0);
  names.forEach((armName, a) => {
    const lower = base.slice();
    steps.forEach((_, i) => { base[i] += rows[i][a]; });
    const top = steps.map((st, i) => `${x(st).toFixed(1)},${y(base[i]).toFixed(1)}`);
    const bottom = steps.map((st, i) => `${x(st).toFixed(1)},${y(lower[i]).toFixed(1)}`).reverse();
    const area = s("path", {class: "mark area", d: `M${top.join("L")}L${bottom.join("L")}Z`, fill: PALETTE[a % PALETTE.length], "fill-opacity": 0.8,
                            "data-arm": armName}, svg);
    tip(area, `${armName}: final probability ${fmt(rows[rows.length - 1][a])}`);
  });
  legend(box, names.map((n, a) => [n, PALETTE[a % PALETTE.length]]));
  return box;
}

// -- sections ------------------------------------------------------------------------------------------------------

function overview() {
  const r = DATA.run, t = DATA.totals;
  byId("subtitle").textContent = `${r.description || ""}  ·  ${r.path}  ·  made ${r.created_at || "?"} with sftforge ${r.sftforge}`;
  const body = byId("overview-body");
  body.append(h("p", {},
    h("b", {"data-key": "dataset"}, fmt(t.dataset)), " records in the dataset; ",
    h("b", {"data-key": "records"}, fmt(t.records)), " made, ",
    h("b", {"data-key": "removed"}, fmt(t.removed)), " removed on the way. Generator model: ", r.model || "-", "."));
  body.append(table(["stage", "status", "counts", "seconds"],
    DATA.stages.map((st) => [st.name, st.status, Object.entries(st.counts).map(([k, v]) => `${k} ${fmt(v)}`).join(", "), st.seconds]), [3]));
  const inputs = DATA.inputs;
  if (inputs.files.length || inputs.rows.length) {
    body.append(h("h3", {id: "skipped-inputs"}, "Inputs not used"));
    if (inputs.files.length) body.append(table(["file", "why"], inputs.files.map((f) => [f.path, f.reason])));
    const reasons = Object.entries(inputs.rows_by_reason);
    if (reasons.length) {
      body.append(table(["dataset rows skipped because", "rows"], reasons.map(([r, n]) => [r, n]), [1]));
      body.append(table(["row", "why"], inputs.rows.map((r) => [r.where, r.reason])));
    }
  }
}

function funnel() {
  const body = byId("funnel-body");
  const rows = DATA.funnel;
  DATA.warnings.forEach((w) => body.append(h("p", {class: "warning", "data-warning": "yes"}, w)));
  if (!rows.length) { body.append(empty("no stage has finished yet")); return; }
  body.append(h("h3", {}, "Records kept and removed per stage"));
  const labels = [], values = [], colors = [];
  rows.forEach((r) => {
    labels.push(`${r.stage}: kept`); values.push(r.kept); colors.push(STATUS_COLOR.kept);
    if (r.removed !== null) { labels.push(`${r.stage}: removed`); values.push(r.removed); colors.push(STATUS_COLOR.removed); }
  });
  barChart(body, "funnel", labels, values, {colors});
  body.append(table(["stage", "records in", "kept", "removed"], rows.map((r) => [r.stage, r.input, r.kept, r.removed]), [1, 2, 3]));
  if (DATA.operators.length) {
    body.append(h("h3", {}, "Cleaning, per operator (in the order they ran)"));
    barChart(body, "operators", DATA.operators.map((o) => o.name), DATA.operators.map((o) => o.removed),
             {color: STATUS_COLOR.removed, empty: "no cleaning operator ran"});
    body.append(table(["operator", "seen", "removed"], DATA.operators.map((o) => [o.name, o.seen, o.removed]), [1, 2]));
  }
  if (DATA.generate_reasons.length) {
    body.append(h("h3", {}, "Generation: outputs that failed a check, by reason"));
    body.append(h("p", {}, "Each failed output is asked again (a new seed) up to the recipe's attempts; an item whose last attempt fails is rejected."));
    body.append(table(["check failed", "outputs (asked again or last attempt)", "items rejected"],
      DATA.generate_reasons.map((r) => [r.reason, r.asked_again, r.rejected]), [1, 2]));
  }
  coverage(body);
  audiences(body);
  body.append(h("h3", {}, "Removed records by reason, with examples"));
  if (!DATA.reasons.length) body.append(empty("nothing was removed"));
  else body.append(table(["stage", "operator", "reason", "records", "examples"],
    DATA.reasons.map((r) => [r.stage, r.operator, r.reason, r.count, h("span", {}, r.examples.map((id) => [recordLink(id), " "]))]), [3]));
}

function coverage(body) {
  const c = DATA.coverage;
  if (!c) return;
  body.append(h("h3", {}, "What the dataset covers of the documents"));
  body.append(h("p", {}, `The exported records come from ${c.documents_covered} of ${c.documents} documents, ` +
    `${c.passages_used} of ${c.passages} usable passages and ${c.sections_covered} of ${c.sections} sections. ` +
    "Documents with the fewest records first; generation.min_per_doc and per_1k_tokens spread the budget."));
  const docs = c.by_document.slice(0, 30);
  barChart(body, "coverage", docs.map((d) => d.doc_id), docs.map((d) => d.records), {empty: "no usable passage"});
  body.append(table(["document", "records", "passages used", "usable passages", "tokens"],
    c.by_document.map((d) => [d.doc_id, d.records, d.passages_used, d.passages, d.tokens]), [1, 2, 3, 4]));
  if (c.uncovered_sections.length) {
    body.append(h("p", {}, "Sections no exported record comes from (what the dataset does not teach):"));
    body.append(table(["document", "section", "usable passages"],
      c.uncovered_sections.map((u) => [u.doc_id, u.section, u.passages]), [2]));
  }
}

function audiences(body) {
  const rows = Object.entries(DATA.audiences);
  if (!rows.length) return;
  body.append(h("h3", {}, "Generated for each audience"));
  body.append(h("p", {}, "Replies' distinct-2 (higher is more varied); for exercise levels, the Bloom level read from each question's cue words (a proxy) and the share that matches the level asked for."));
  const t = table(["audience", "records", "genres", "replies distinct-2", "level asked", "level measured", "agreement"],
    rows.map(([name, a]) => [name, a.records, Object.entries(a.genres).map(([g, n]) => `${g} ${n}`).join(", "),
      a.replies.distinct_2, a.level, a.measured_level, a.level_agreement]), [1, 3, 4, 5, 6]);
  t.dataset.table = "audiences";
  body.append(t);
}

function distributions() {
  const body = byId("distributions-body");
  const d = DATA.distributions;
  const metrics = Object.keys(d.histograms);
  const groups = [...new Set(metrics.flatMap((m) => Object.keys(d.histograms[m].groups)))];
  body.append(h("h3", {}, "Language mix per task"));
  const mix = {};
  d.languages.forEach((r) => { const k = `${r.task} · ${r.lang} · ${r.status}`; mix[k] = (mix[k] || 0) + r.records; });
  barChart(body, "languages", Object.keys(mix), Object.values(mix), {colors: Object.keys(mix).map((k) => STATUS_COLOR[k.split(" · ")[2]])});
  const bal = d.balance;
  body.append(h("h3", {}, "Who the kept records speak about"));
  const named = Object.entries(bal.groups);
  if (!named.length) body.append(empty("no kept record names a gender, religion, age group or nationality"));
  else {
    barChart(body, "balance", named.map(([g]) => g), named.map(([, v]) => v.records), {color: "#5b8ff9"});
    const cols = ["group", "records naming it", "share", "mentions"].concat(bal.score ? [`mean ${bal.score}`] : []);
    body.append(table(cols, named.map(([g, v]) => [g, v.records, `${(100 * v.share).toFixed(1)}%`, v.mentions]
      .concat(bal.score ? [v.mean_score === null ? "-" : fmt(v.mean_score)] : [])), [1, 2, 3]));
    body.append(table(["pair", "mentions", "skew (log2)", "per task and generator"], bal.pairs.map((p) => [
      p.pair, `${p.a} / ${p.b}`, p.skew === null ? "-" : fmt(p.skew),
      Object.entries(p.slices).map(([s, v]) => `${s}: ${fmt(v.skew)}`).join("; ") || "-"]), [1]));
  }
  body.append(h("h3", {}, "Answer checks"));
  if (d.answer_checks.length) {
    barChart(body, "answer-checks", d.answer_checks.map((r) => `${r.method} · ${r.result} · ${r.status}`), d.answer_checks.map((r) => r.records),
             {colors: d.answer_checks.map((r) => r.result === "passed" ? "#19a979" : "#e8743b")});
  } else body.append(empty("no record carries an answer check"));
  const groupSel = h("select", {id: "dist-group"}, groups.map((g) => h("option", {value: g}, g)));
  const metricSel = h("select", {id: "dist-metric"}, h("option", {value: "*"}, "every metric"), metrics.map((m) => h("option", {value: m}, m)));
  body.append(h("h3", {}, "Lengths and features: kept vs removed"),
              h("div", {class: "controls"}, h("label", {}, "task · language", groupSel), h("label", {}, "metric", metricSel)));
  const grid = h("div", {class: "grid", id: "dist-grid"});
  body.append(grid);
  const draw = () => {
    grid.replaceChildren();
    const chosen = metricSel.value === "*" ? metrics : [metricSel.value];
    chosen.forEach((m) => {
      const g = d.histograms[m].groups[groupSel.value];
      if (!g) return;
      const cell = h("div", {}, h("h3", {}, m));
      grid.append(cell);
      const series = ["kept", "removed"].filter((k) => g[k] && g[k].n).map((k) => ({name: k, color: STATUS_COLOR[k], ...g[k]}));
      histogram(cell, `hist:${m}`, d.histograms[m].edges, series, {xLabel: m});
    });
  };
  groupSel.onchange = draw; metricSel.onchange = draw;
  draw();
}

function colourKey(rec, by) {
  if (by === "arm") return rec.arm === null || rec.arm === undefined ? "no arm" : armName(rec.arm);
  if (by === "status") return rec.status;
  return rec[by] || "-";
}

function armName(a) {
  const names = DATA.training ? DATA.training.arm_names : [];
  return names[a] !== undefined ? `arm ${a}: ${names[a]}` : `arm ${a}`;
}

function embeddingMap() {
  const body = byId("map-body");
  const map = DATA.map;
  if (!map || !map.points.length) { body.append(empty("no embeddings: add the `embedding` feature to the recipe to see the map")); return; }
  const sel = h("select", {id: "map-colour"}, ["generator", "arm", "task", "lang", "status"].map((k) => h("option", {value: k}, k)));
  body.append(h("div", {class: "controls"}, h("label", {}, "colour by", sel)),
              h("p", {class: "note"}, `${map.points.length} records, ${map.method} of their embeddings. Hover for the text, click to open the record.`));
  const holder = h("div", {});
  body.append(holder);
  const draw = () => {
    holder.replaceChildren();
    const width = 760, height = 480, m = {t: 10, r: 10, b: 10, l: 10};
    const {box, svg} = chartBox(holder, "map", width, height);
    const xs = map.points.map((p) => p[1]), ys = map.points.map((p) => p[2]);
    const x = scale(Math.min(...xs), Math.max(...xs), m.l, width - m.r), y = scale(Math.min(...ys), Math.max(...ys), height - m.b, m.t);
    const keys = [...new Set(map.points.map((p) => colourKey(DATA.records[p[0]], sel.value)))].sort();
    const colour = (k) => sel.value === "status" ? STATUS_COLOR[k] : PALETTE[keys.indexOf(k) % PALETTE.length];
    map.points.forEach(([i, px, py]) => {
      const rec = DATA.records[i];
      const c = s("circle", {class: "mark point", cx: x(px).toFixed(1), cy: y(py).toFixed(1), r: 4, fill: colour(colourKey(rec, sel.value)),
                             "fill-opacity": 0.8, "data-id": rec.id}, svg);
      tip(c, () => `${colourKey(rec, sel.value)}\n${firstText(rec, "user").slice(0, 300)}`);
      c.addEventListener("click", () => openRecord(rec.id));
    });
    legend(box, keys.map((k) => [k, colour(k)]));
  };
  sel.onchange = draw;
  draw();
}

function cleaning() {
  const body = byId("cleaning-body");
  body.append(h("h3", {}, "Duplicate clusters"));
  if (!DATA.dedup.length) body.append(empty("no dedup operator ran"));
  DATA.dedup.forEach((d) => {
    body.append(h("p", {}, h("b", {}, d.operator), `: ${fmt(d.clusters)} clusters, `, h("span", {"data-key": `dedup-removed:${d.operator}`}, fmt(d.removed)), " records removed."));
    if (d.sizes.length) barChart(body, `dedup-sizes:${d.operator}`, d.sizes.map((x) => `size ${x.size}`), d.sizes.map((x) => x.clusters), {color: PALETTE[3]});
    if (d.top.length) body.append(table(["kept (survivor)", "size", "removed duplicates (similarity)"],
      d.top.map((c) => [recordLink(c.survivor), c.size, h("span", {}, c.duplicates.map((x) => [recordLink(x.id), ` (${fmt(x.similarity)}) `]))]), [1]));
  });
  body.append(h("h3", {}, "Personal data found, by type"));
  const pii = Object.entries(DATA.pii.by_type || {}).sort((a, b) => b[1] - a[1]);
  if (pii.length) {
    barChart(body, "pii", pii.map((p) => p[0]), pii.map((p) => p[1]), {color: PALETTE[4]});
    body.append(h("p", {class: "note"}, `${fmt(DATA.pii.records_changed)} records changed by redaction.`));
  } else body.append(empty(DATA.pii.records_changed === null || DATA.pii.records_changed === undefined ? "no PII operator ran" : "none found"));
  body.append(h("h3", {}, "Benchmark contamination"));
  const c = DATA.contamination;
  if (!c) { body.append(empty("no decontamination operator ran")); return; }
  body.append(h("p", {}, `${fmt(c.checked)} records checked, `, h("b", {"data-key": "contaminated"}, fmt(c.contaminated)), ` contaminated (action: ${c.action}).`));
  const benches = Object.keys(c.contaminated_by_benchmark || {});
  if (benches.length) {
    barChart(body, "contamination", benches, benches.map((b) => c.contaminated_by_benchmark[b]), {color: STATUS_COLOR.removed});
    body.append(table(["benchmark", "item", "records"], (c.top_items || []).map((t) => [t.benchmark, t.item, t.records]), [2]));
  }
}

function selection() {
  const body = byId("selection-body");
  const t = DATA.training;
  if (!t && !DATA.evaluation.length && !DATA.benchmark) { body.append(empty("this recipe has no selection or training")); return; }
  if (t) {
    const grid = h("div", {class: "grid"});
    body.append(grid);
    const curves = h("div", {}, h("h3", {}, "Training and held-out loss"));
    grid.append(curves);
    lineChart(curves, "loss", [
      {name: "training loss (batch)", points: t.loss, color: "#9aa6b5", width: 1},
      {name: "held-out loss", points: t.eval, color: PALETTE[1], dots: true},
    ], {yLabel: "nats/token"});
    if (t.probabilities.length && t.arm_names.length) {
      const probs = h("div", {}, h("h3", {}, "Arm probabilities over training steps"));
      grid.append(probs);
      stackedArea(probs, "arm-probabilities", t.probabilities.map((p) => p[0]), t.probabilities.map((p) => p[1]), t.arm_names);
    }
    if (t.rewards.length) {
      const rw = h("div", {}, h("h3", {}, "Rewards per step (coloured by arm)"));
      grid.append(rw);
      const byArm = {};
      t.rewards.forEach(([step, arm, reward]) => { (byArm[arm] = byArm[arm] || []).push([step, reward]); });
      lineChart(rw, "rewards", Object.entries(byArm).map(([a, pts]) => ({name: t.arm_names[a] || `arm ${a}`, points: pts, dotsOnly: true, color: PALETTE[a % PALETTE.length]})),
                {yLabel: "scaled reward"});
    }
    if (t.left_out && t.left_out.length) {
      const lo = h("div", {}, h("h3", {}, "Examples left out of their step (gradient against the probe set's), cumulated"));
      grid.append(lo);
      lineChart(lo, "left-out", [{name: "left out and not drawn again", points: t.left_out, color: STATUS_COLOR.removed}],
                {yLabel: "examples"});
    }
    if (t.per_arm.length) {
      const pa = h("div", {}, h("h3", {}, "Mean reward per arm"));
      grid.append(pa);
      barChart(pa, "arm-rewards", t.per_arm.map((a) => `${a.name} (${a.pulls} pulls)`), t.per_arm.map((a) => a.mean_reward),
               {colors: t.per_arm.map((a) => PALETTE[a.arm % PALETTE.length])});
    }
    if (t.arms.length) {
      body.append(h("h3", {}, "Arms at the end of training"));
      body.append(table(["arm", "records", "chosen for the dataset", "value", "probability"],
        t.arms.map((a) => [a.name, a.records, a.chosen, a.value, a.probability]), [1, 2, 3, 4]));
    }
  }
  body.append(h("h3", {}, "Base vs fine-tuned"));
  if (DATA.evaluation.length) {
    body.append(h("div", {id: "eval-table"}, table(["set", "metric", "base", "fine-tuned", "change"],
      DATA.evaluation.map((r) => [r.set, r.metric, r.base, r.tuned, r.delta]), [2, 3, 4])));
  } else body.append(empty("not evaluated yet"));
  if (DATA.benchmark) {
    const b = DATA.benchmark;
    body.append(h("h3", {}, "Baseline comparison (benchmarks/selection.py)"), h("p", {class: "note"}, b.path));
    lineChart(body, "benchmark", b.strategies.map((st, j) => ({name: st.name, points: st.curve, color: PALETTE[j % PALETTE.length], dots: true})),
              {yLabel: "held-out loss", width: 720});
    body.append(table(["strategy", "final held-out loss", "steps to uniform's final loss"],
      b.strategies.map((st) => [st.name, st.final, st.steps_to_uniform_final === null || st.steps_to_uniform_final === undefined ? "never" : st.steps_to_uniform_final]), [1, 2]));
  }
}

// -- record browser ------------------------------------------------------------------------------------------------

const PAGE = 50;
const state = {page: 0, active: null, rows: []};

function firstText(rec, role) { const m = rec.messages.find((x) => x[0] === role); return m ? m[1] : ""; }

// What the list shows of a record: the first user turn's last line (the question, after any passage or instruction).
function headline(rec) {
  const lines = firstText(rec, "user").split("\n").map((l) => l.trim()).filter((l) => l);
  return (lines.length ? lines[lines.length - 1] : "").slice(0, 110);
}

function browser() {
  const body = byId("browser-body");
  const recs = DATA.records;
  const uniq = (f) => [...new Set(recs.map(f))].sort();
  const opt = (values, all) => [h("option", {value: ""}, all), ...values.map((v) => h("option", {value: v}, v))];
  const features = [...new Set(recs.flatMap((r) => Object.keys(r.features)))].sort();
  const c = {
    task: h("select", {id: "f-task"}, opt(uniq((r) => r.task), "every task")),
    generator: h("select", {id: "f-generator"}, opt(uniq((r) => r.generator), "every generator")),
    status: h("select", {id: "f-status"}, opt(["kept", "removed"], "kept and removed")),
    stage: h("select", {id: "f-stage"}, opt(uniq((r) => r.removed ? r.removed[0] : null).filter((x) => x), "removed anywhere")),
    decision: h("select", {id: "f-decision"}, opt(["accept", "reject", "none"], "any review decision")),
    feature: h("select", {id: "f-feature"}, opt(features, "no feature range")),
    min: h("input", {id: "f-min", type: "number", step: "any", placeholder: "min", size: 6}),
    max: h("input", {id: "f-max", type: "number", step: "any", placeholder: "max", size: 6}),
    text: h("input", {id: "f-text", type: "search", placeholder: "text or id"}),
  };
  const count = h("span", {id: "browser-count"});
  body.append(h("div", {class: "controls"},
    h("label", {}, "task", c.task), h("label", {}, "generator", c.generator), h("label", {}, "accepted or removed", c.status),
    h("label", {}, "removed in stage", c.stage), h("label", {}, "review", c.decision), h("label", {}, "feature", c.feature),
    h("label", {}, "from", c.min), h("label", {}, "to", c.max), h("label", {}, "search", c.text), count));
  if (DATA.totals.shown < DATA.totals.records) {
    body.append(h("p", {class: "note"}, `Showing a sample of ${fmt(DATA.totals.shown)} of ${fmt(DATA.totals.records)} records (every linked example included).`));
  }
  if (DATA.review.error) body.append(h("p", {class: "error", id: "review-error"}, `Review decisions not applied: ${DATA.review.error}`));
  if (REVIEW_MODE) body.append(h("p", {id: "review-status"}, reviewSummary()));
  const list = h("div", {class: "list"}, h("table", {}, h("thead", {}, h("tr", {}, ["id", "task", "generator", "status", "first user turn (last line)"].map((x) => h("th", {}, x)))), h("tbody", {id: "browser-rows"})));
  const pager = h("div", {class: "pager", id: "pager"});
  body.append(h("div", {class: "browser"}, h("div", {}, list, pager), h("div", {class: "detail", id: "detail"}, empty("click a record to read it"))));
  const apply = () => {
    const text = c.text.value.trim().toLowerCase();
    const lo = c.min.value === "" ? -Infinity : +c.min.value, hi = c.max.value === "" ? Infinity : +c.max.value;
    state.rows = recs.filter((r) =>
      (!c.task.value || r.task === c.task.value) && (!c.generator.value || r.generator === c.generator.value) &&
      (!c.status.value || r.status === c.status.value) && (!c.stage.value || (r.removed && r.removed[0] === c.stage.value)) &&
      (!c.decision.value || (c.decision.value === "none" ? !r.decision : r.decision === c.decision.value)) &&
      (!c.feature.value || (r.features[c.feature.value] !== null && r.features[c.feature.value] !== undefined &&
                            r.features[c.feature.value] >= lo && r.features[c.feature.value] <= hi)) &&
      (!text || r.id.includes(text) || r.messages.some((m) => m[1].toLowerCase().includes(text))));
    state.page = 0;
    drawRows();
  };
  // selects on change, text boxes on input only: a change event on blur would redraw the list under a click
  Object.values(c).forEach((n) => { if (n.tagName === "SELECT") n.onchange = apply; else n.oninput = apply; });
  state.controls = c;
  apply();
}

function drawRows() {
  const tbody = byId("browser-rows");
  const rows = state.rows.slice(state.page * PAGE, (state.page + 1) * PAGE);
  tbody.replaceChildren(...rows.map((r) => {
    const tr = h("tr", {"data-id": r.id, class: r.id === state.active ? "active" : null},
      h("td", {}, h("code", {}, r.id.slice(0, 10))), h("td", {}, r.task), h("td", {}, r.generator),
      h("td", {}, h("span", {class: `badge ${r.status}`}, r.status), r.decision ? [" ", h("span", {class: `badge ${r.decision}`}, r.decision)] : null),
      h("td", {}, headline(r)));
    tr.onclick = () => showRecord(r);
    return tr;
  }));
  byId("browser-count").textContent = `${state.rows.length} records match`;
  const pages = Math.max(1, Math.ceil(state.rows.length / PAGE));
  byId("pager").replaceChildren(
    h("button", {onclick: () => { if (state.page > 0) { state.page--; drawRows(); } }}, "‹ previous"),
    ` page ${state.page + 1} of ${pages} `,
    h("button", {onclick: () => { if (state.page < pages - 1) { state.page++; drawRows(); } }}, "next ›"));
}

function openRecord(id) {
  const rec = DATA.records.find((r) => r.id === id);
  if (!rec) return;
  const c = state.controls;
  for (const k of ["task", "generator", "status", "stage", "decision", "feature"]) c[k].value = "";
  c.min.value = ""; c.max.value = ""; c.text.value = id;
  c.text.oninput();
  showRecord(rec);
  byId("browser").scrollIntoView({behavior: "smooth"});
}

// Text of a passage with the cited span and, inside it, the answer's occurrences marked.
function passageNode(p, answer) {
  const node = h("div", {class: "passage"});
  const [a, b] = p.hl;
  node.append(p.text.slice(0, a));
  const src = h("mark", {class: "src"});
  const inner = p.text.slice(a, b);
  const needle = (answer || "").trim();
  let at = needle.length >= 2 ? inner.toLowerCase().indexOf(needle.toLowerCase()) : -1;
  if (at >= 0) {
    src.append(inner.slice(0, at), h("mark", {class: "ans"}, inner.slice(at, at + needle.length)), inner.slice(at + needle.length));
  } else src.append(inner);
  node.append(src, p.text.slice(b));
  return node;
}

function showRecord(rec) {
  state.active = rec.id;
  document.querySelectorAll("#browser-rows tr").forEach((tr) => tr.classList.toggle("active", tr.dataset.id === rec.id));
  const d = byId("detail");
  const answer = firstText(rec, "assistant");
  d.replaceChildren(...[
    h("h3", {}, "Record ", h("code", {id: "detail-id"}, rec.id)),
    h("p", {}, h("span", {class: `badge ${rec.status}`}, rec.status), " ",
      rec.removed ? `removed in ${rec.removed[0]} by ${rec.removed[1]}: ${rec.removed[2]}` : "in the dataset (or still in the pipeline)",
      rec.split ? ` · split ${rec.split}` : "", rec.arm !== null && rec.arm !== undefined ? ` · ${armName(rec.arm)}` : ""),
    REVIEW_MODE ? reviewBar(rec) : null,
    ...rec.messages.map(([role, content]) => h("div", {class: `msg ${role}`}, h("b", {}, role), content)),
    rec.check ? h("p", {}, h("b", {}, "Answer check: "), `${rec.check.method}, ${rec.check.passed ? "passed" : "failed"} (score ${fmt(rec.check.score)}) ${rec.check.detail || ""}`) : null,
    h("h3", {}, "Sources"),
    rec.sources.length ? h("div", {}, rec.sources.map((src) => h("div", {},
      h("p", {class: "note"}, `${src.kind} ${src.id}${src.doc ? " in " + src.doc : ""}`),
      src.passage && DATA.passages[src.passage] ? passageNode(DATA.passages[src.passage], answer) : null))) : empty("no source"),
    h("h3", {}, "Lineage"),
    table(["field", "value"], Object.entries(rec.lineage).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : String(v)])),
    h("h3", {}, "Features"),
    Object.keys(rec.features).length ? table(["feature", "value"], Object.entries(rec.features).map(([k, v]) => [k, v]), [1]) : empty("no features"),
  ].filter((x) => x !== null));
}

// -- review (only when served by `sftforge review`) ----------------------------------------------------------------

function reviewSummary() {
  const n = DATA.records.filter((r) => r.decision).length;
  const acc = DATA.records.filter((r) => r.decision === "accept").length;
  return `${n} decisions saved (${acc} accepted, ${n - acc} rejected). They apply at the next export: sftforge export ${DATA.run.path}`;
}

function reviewBar(rec) {
  const msg = h("span", {id: "review-message"});
  const canAccept = rec.status === "kept" || rec.restorable;
  const send = async (decision) => {
    msg.textContent = "saving…";
    msg.className = "";
    try {
      const res = await fetch("api/decisions", {method: "POST", headers: {"Content-Type": "application/json"},
                                                body: JSON.stringify({id: rec.id, decision})});
      const out = await res.json();
      if (!res.ok) throw new Error(out.error || res.statusText);
      rec.decision = decision === "clear" ? null : decision;
      msg.textContent = decision === "clear" ? "decision cleared" : `saved: ${decision}`;
      byId("review-status").textContent = reviewSummary();
      drawRows();
      showRecord(rec);
      byId("review-message").textContent = msg.textContent;
    } catch (err) {
      msg.textContent = `not saved: ${err.message}`;
      msg.className = "error";
    }
  };
  return h("div", {class: "review-bar"},
    h("button", {class: "accept", id: "review-accept", disabled: !canAccept, title: canAccept ? null : "held out for evaluation, or rejected during generation",
                 onclick: () => send("accept")}, "Accept"),
    h("button", {class: "reject", id: "review-reject", onclick: () => send("reject")}, "Reject"),
    h("button", {id: "review-clear", disabled: !rec.decision, onclick: () => send("clear")}, "Clear"),
    rec.decision ? h("span", {class: `badge ${rec.decision}`}, rec.decision) : null, msg);
}

// -- draw everything; a failing section says so instead of blanking the page ----------------------------------------

for (const [name, fn] of [["overview", overview], ["funnel", funnel], ["distributions", distributions], ["map", embeddingMap],
                          ["cleaning", cleaning], ["selection", selection], ["browser", browser]]) {
  try { fn(); } catch (err) {
    console.error(err);
    byId(`${name}-body`).append(h("p", {class: "error", "data-error": name}, `could not draw this section: ${err.message}`));
  }
}
document.body.dataset.ready = "yes";
