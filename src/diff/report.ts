/** A diff's report: a terminal table, JSON, and a self-contained HTML page (inline CSS and JS, no network). */
import type { Answer } from './answer.js';
import type { DiffReport } from './engine.js';

export function terminalReport(r: DiffReport): string {
  const rows = r.endpoints.map((e) => {
    const top = e.fields.filter((f) => f.real).slice(0, 3).map((f) => `${f.path}: ${Object.keys(f.kinds).join('/')}`).join('; ');
    return [e.endpoint, String(e.requests), String(e.withDifferences), top || '-'];
  });
  const head = ['ENDPOINT', 'REQUESTS', 'DIFFERING', 'REAL DIFFERENCES (TOP FIELDS)'];
  const w = [0, 1, 2].map((i) => Math.max(head[i].length, ...rows.map((x) => x[i].length)));
  const line = (c: string[]) => `${c[0].padEnd(w[0])}  ${c[1].padStart(w[1])}  ${c[2].padStart(w[2])}  ${c[3]}`;
  const out = [line(head), ...rows.map(line)];
  out.push('', `${r.mode}: ${r.requests} requests, ${r.withDifferences} with real differences`
    + ` (a field counts when raw > noise × ${1 + r.thresholds.relative}, (raw − noise) ≥ ${(r.thresholds.absolute * 100).toFixed(2)}% of requests`
    + ` and, if noisy at all, raw − noise > 2·√(raw + noise))`);
  for (const [what, n] of Object.entries(r.problems)) out.push(`note: ${n} × ${what}`);
  return out.join('\n') + '\n';
}

export function jsonReport(r: DiffReport): string {
  return JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n';
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function answerHtml(a: Answer | undefined, title: string): string {
  if (!a) return '';
  const body = typeof a.body === 'string' ? a.body : JSON.stringify(a.body, null, 2);
  return `<div class="side"><h4>${esc(title)}: ${esc(a.status)}</h4><pre>${esc(body ?? '')}</pre></div>`;
}

export function htmlReport(r: DiffReport, title = 'flowtap diff'): string {
  const endpoints = r.endpoints.map((e, i) => {
    const fields = e.fields.map((f) => `<tr class="${f.real ? 'real' : 'noise'}"><td><code>${esc(f.path)}</code></td><td>${esc(Object.entries(f.kinds).map(([k, n]) => `${k} ×${n}`).join(', '))}</td>`
      + `<td class="n">${f.raw}</td><td class="n">${f.noise}</td><td>${f.real ? 'real' : 'noise'}</td></tr>`).join('');
    const examples = e.examples.map((x) => `<details><summary><code>${esc(x.request)}</code>: ${esc(x.differences.map((d) => `${d.path} ${d.kind}`).join('; '))}</summary>`
      + `<div class="sides">${answerHtml(x.primary, 'primary')}${answerHtml(x.secondary, 'secondary')}${answerHtml(x.candidate, 'candidate')}</div></details>`).join('');
    return `<section class="endpoint${e.withDifferences ? ' differs' : ''}" id="e${i}"><h2><code>${esc(e.endpoint)}</code></h2>`
      + `<p class="counts"><span class="req">${e.requests} requests</span>, <span class="diffn">${e.withDifferences} with real differences</span></p>`
      + (e.fields.length ? `<table><thead><tr><th>field</th><th>kinds</th><th>raw</th><th>noise</th><th>verdict</th></tr></thead><tbody>${fields}</tbody></table>` : '<p>no differences at all</p>')
      + examples + '</section>';
  }).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}h1{font-size:1.4em}h2{font-size:1.1em;margin:0}
section{border:1px solid #ddd;border-radius:6px;padding:.8em 1em;margin:1em 0}section.differs{border-color:#c33}
table{border-collapse:collapse;margin:.5em 0}td,th{border-bottom:1px solid #eee;padding:.2em .6em;text-align:left}td.n{text-align:right}
tr.real td{color:#a00;font-weight:600}tr.noise td{color:#888}.sides{display:flex;gap:1em}.side{flex:1;min-width:0}
pre{background:#f6f6f6;padding:.5em;overflow:auto;max-height:20em}#filter{margin:.5em 0}
</style></head><body>
<h1>${esc(title)}</h1>
<p id="summary">${esc(r.mode)}: ${r.requests} requests, <strong>${r.withDifferences}</strong> with real differences;
a field is real when raw &gt; noise × ${1 + r.thresholds.relative} and (raw − noise) ≥ ${(r.thresholds.absolute * 100).toFixed(2)}% of requests.</p>
<label><input type="checkbox" id="filter"> only endpoints with real differences</label>
${endpoints}
<script>
document.getElementById('filter').addEventListener('change', function (e) {
  for (const s of document.querySelectorAll('section.endpoint')) s.style.display = e.target.checked && !s.classList.contains('differs') ? 'none' : '';
});
</script>
</body></html>
`;
}
