"""``microloop replay --html``: the replay as one self-contained page (no network at view time).

The page holds the report as JSON and a small script that draws it: the totals, a table of the runs
sorted by what they would have saved, and one timeline per run where each call is a mark colored by
its verdict; hovering a mark names it, clicking it shows the tool, the arguments, the answer and the
verdict's message.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

from .engine import RunReport

ARGS_KEPT = 1000
RESULT_KEPT = 600


def _data(reports: List[RunReport], total: Dict[str, Any]) -> Dict[str, Any]:
    runs = []
    for r in reports:
        s = r.summary()
        runs.append({
            "name": r.name, "source": r.source, "format": r.format, "summary": s,
            # per call: tool, args, action, rule, message, answer, error, tokens
            "steps": [[st.tool, st.args[:ARGS_KEPT], st.action, st.rule, st.message, st.result[:RESULT_KEPT]
                       + ("…" if st.result_chars > RESULT_KEPT else ""), st.error, st.tokens] for st in r.steps],
        })
    return {"policy": reports[0].policy if reports else "", "total": total, "runs": runs}


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MicroLoop replay</title>
<style>
:root { --allow:#9aa5b1; --warn:#e0a800; --block:#d64545; --halt:#7b1fa2; --error:#555; font-family: system-ui, sans-serif; }
body { margin: 24px; color: #1f2933; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
.muted { color: #616e7c; font-size: 13px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 12px 0; }
.card { border: 1px solid #d9e2ec; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.card b { display: block; font-size: 20px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e4e7eb; text-align: right; }
th:first-child, td:first-child, td.l { text-align: left; }
tbody tr { cursor: pointer; } tbody tr:hover { background: #f0f4f8; }
.run { margin: 10px 0 14px; }
.run .head { font-size: 13px; margin-bottom: 3px; }
.timeline { display: flex; flex-wrap: wrap; gap: 2px; }
.mark { width: 10px; height: 18px; border-radius: 2px; border: 0; padding: 0; cursor: pointer; background: var(--allow); }
.mark.warn { background: var(--warn); } .mark.block { background: var(--block); } .mark.halt { background: var(--halt); }
.mark.error { background: var(--error); } .mark.failed { box-shadow: inset 0 -4px 0 #1f2933; }
.mark.sel { outline: 2px solid #1f2933; outline-offset: 1px; }
.legend span { display: inline-block; margin-right: 12px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 12px; margin-right: 4px; vertical-align: -1px; border-radius: 2px; }
#detail { position: sticky; bottom: 0; background: #f8fafc; border: 1px solid #d9e2ec; border-radius: 6px; padding: 10px 14px;
          margin-top: 16px; font-size: 13px; max-height: 40vh; overflow: auto; }
#detail pre { white-space: pre-wrap; word-break: break-word; margin: 4px 0 8px; background: #fff; padding: 6px; border: 1px solid #e4e7eb; }
.badge { display: inline-block; padding: 1px 6px; border-radius: 3px; color: #fff; font-size: 12px; background: var(--allow); }
.badge.warn { background: var(--warn); } .badge.block { background: var(--block); } .badge.halt { background: var(--halt); } .badge.error { background: var(--error); }
</style></head>
<body>
<h1>MicroLoop replay</h1>
<div class="muted" id="policy"></div>
<div class="cards" id="totals"></div>
<h2>Timelines: each call a mark (hover to name it, click for details)</h2>
<div class="legend"><span><i style="background:var(--allow)"></i>allow</span><span><i style="background:var(--warn)"></i>warn</span>
<span><i style="background:var(--block)"></i>block</span><span><i style="background:var(--halt)"></i>halt</span>
<span><i style="background:var(--error)"></i>unreadable</span><span class="muted">a dark underline: the call failed in the log</span></div>
<div id="timelines"></div>
<div id="detail" hidden></div>
<h2>Runs, by what they would have saved</h2>
<table id="runs"><thead><tr><th>run</th><th>format</th><th>calls</th><th>warned</th><th>blocked</th><th>halted</th>
<th>calls saved</th><th>tokens saved</th><th>first block</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="report-data">__DATA__</script>
<script>
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const fmt = (n) => n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
  const el = (tag, attrs, text) => {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  document.getElementById("policy").textContent = "policy: " + data.policy;
  const t = data.total;
  const cards = [["runs", t.runs], ["calls", t.calls], ["warned", t.warn], ["blocked", t.block], ["halted", t.halt],
                 ["calls saved", t.calls_saved], ["model tokens saved", t.tokens_saved], ["answer tokens not read (est.)", t.est_tokens_saved]];
  const totals = document.getElementById("totals");
  for (const [label, value] of cards) {
    const c = el("div", {class: "card"});
    c.appendChild(el("b", {}, fmt(value)));
    c.appendChild(el("span", {class: "muted"}, label));
    totals.appendChild(c);
  }
  const order = data.runs.map((r, i) => i).sort((a, b) => {
    const x = data.runs[a].summary, y = data.runs[b].summary;
    return (y.calls_saved - x.calls_saved) || ((y.tokens_saved || 0) - (x.tokens_saved || 0)) || (a - b);
  });
  const tbody = document.querySelector("#runs tbody");
  for (const i of order) {
    const r = data.runs[i], s = r.summary;
    const tr = el("tr", {"data-run": i});
    const cells = [r.name, r.format, fmt(s.calls), fmt(s.warn), fmt(s.block), fmt(s.halt), fmt(s.calls_saved), fmt(s.tokens_saved),
                   s.first_block_step ? "step " + s.first_block_step + " (" + s.rules.join(", ") + ")" : "–"];
    cells.forEach((v, k) => tr.appendChild(el("td", k === 1 || k === 8 ? {class: "l"} : {}, v)));
    tr.addEventListener("click", () => document.getElementById("run-" + i).scrollIntoView({block: "center"}));
    tbody.appendChild(tr);
  }
  const detail = document.getElementById("detail");
  let selected = null;
  function show(i, j, mark) {
    const r = data.runs[i], st = r.steps[j];
    const [tool, args, action, rule, message, answer, failed, tokens] = st;
    if (selected) selected.classList.remove("sel");
    selected = mark; mark.classList.add("sel");
    detail.hidden = false;
    detail.textContent = "";
    const h = el("div");
    h.appendChild(el("span", {class: "badge " + action}, action));
    h.appendChild(document.createTextNode(" " + r.name + " · call " + (j + 1) + " · " + tool + (rule ? " · " + rule : "")
      + (tokens !== null ? " · " + fmt(tokens) + " tokens" : "")));
    detail.appendChild(h);
    if (message) { detail.appendChild(el("div", {class: "muted"}, "message")); detail.appendChild(el("pre", {class: "message"}, message)); }
    detail.appendChild(el("div", {class: "muted"}, "arguments")); detail.appendChild(el("pre", {class: "args"}, args));
    detail.appendChild(el("div", {class: "muted"}, failed ? "answer (failed)" : "answer")); detail.appendChild(el("pre", {class: "answer"}, answer || "(none)"));
  }
  const timelines = document.getElementById("timelines");
  data.runs.forEach((r, i) => {
    const box = el("div", {class: "run", id: "run-" + i});
    const s = r.summary;
    box.appendChild(el("div", {class: "head"}, r.name + " (" + r.format + "): " + fmt(s.calls) + " calls, " + fmt(s.warn) + " warned, "
      + fmt(s.block) + " blocked, " + fmt(s.halt) + " halted"));
    const line = el("div", {class: "timeline"});
    r.steps.forEach((st, j) => {
      const m = el("button", {class: "mark " + st[2] + (st[6] ? " failed" : ""), "data-run": i, "data-step": j,
                              title: (j + 1) + ". " + st[0] + ": " + st[2] + (st[3] ? " (" + st[3] + ")" : "")});
      m.addEventListener("click", () => show(i, j, m));
      line.appendChild(m);
    });
    box.appendChild(line);
    timelines.appendChild(box);
  });
  document.body.setAttribute("data-rendered", "true");
})();
</script>
</body></html>
"""


def render_html(reports: List[RunReport], total: Dict[str, Any]) -> str:
    text = json.dumps(_data(reports, total), ensure_ascii=False, separators=(",", ":"))
    # inside <script>: no "</script>" can close it and no "<!--" open a comment ("<" only occurs in strings)
    text = text.replace("<", "\\u003c")
    return PAGE.replace("__DATA__", text)


def write_html(path: str, reports: List[RunReport], total: Dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_html(reports, total))


__all__ = ["render_html", "write_html"]
