"""The review pages' stylesheet (served from /static/review.css: the CSP allows no inline style)."""

CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dee7; --bg:#f6f7f9; --accent:#2454d6; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       color:var(--fg); background:var(--bg); }
header { display:flex; gap:1.5rem; align-items:center; padding:.6rem 1.2rem;
         background:#111827; color:#fff; }
header nav a { color:#cbd5e1; margin-right:1rem; text-decoration:none; }
header nav a.on { color:#fff; border-bottom:2px solid #60a5fa; }
main { padding:1rem 1.2rem; }
a { color:var(--accent); }
h1 { font-size:1.35rem; margin:.2rem 0 .8rem; }
h2 { font-size:1rem; margin:1rem 0 .4rem; }
h3 { font-size:.85rem; margin:.6rem 0 .2rem; color:var(--muted); text-transform:uppercase; }
table { border-collapse:collapse; background:#fff; width:100%; }
th, td { text-align:left; padding:.35rem .5rem; border-bottom:1px solid var(--line);
         vertical-align:top; }
table.kv th { width:11rem; color:var(--muted); font-weight:500; }
tr.verdict td { font-weight:700; }
.split { display:grid; gap:1rem; }
.split.left { grid-template-columns: 16rem minmax(0, 1fr); }
.split.right { grid-template-columns: minmax(0, 1fr) 22rem; }
.facets ul { list-style:none; padding:0; margin:0; }
.facets li { display:flex; justify-content:space-between; gap:.5rem; }
.facets .n, .note, .count { color:var(--muted); }
.filters { display:flex; flex-wrap:wrap; gap:.5rem; align-items:end; margin-bottom:1rem; }
.filters label { display:flex; flex-direction:column; font-size:.75rem; color:var(--muted); }
.filters input { width:9rem; padding:.25rem; }
.filters input[name=q] { width:16rem; }
button { padding:.3rem .8rem; border:1px solid var(--line); border-radius:4px;
         background:#fff; cursor:pointer; }
button.primary { background:var(--accent); color:#fff; border-color:var(--accent); }
button.fp { background:#fff7ed; border-color:#fdba74; }
form.triage { display:flex; gap:.4rem; margin:.35rem 0; }
form.triage input { flex:1; padding:.25rem; }
.sev { padding:.05rem .4rem; border-radius:3px; font-size:.8rem; font-weight:600; }
.sev.critical { background:#7f1d1d; color:#fff; } .sev.high { background:#dc2626; color:#fff; }
.sev.medium { background:#f59e0b; } .sev.low { background:#e5e7eb; }
.status { font-size:.8rem; padding:.05rem .4rem; border-radius:3px; background:#e0e7ff; }
.status.false_positive, .status.suppressed { background:#f3f4f6; color:var(--muted); }
.status.resolved { background:#dcfce7; }
mark { background:#fde68a; padding:0 .1rem; }
blockquote.excerpt { background:#fff; border-left:4px solid #f59e0b; margin:0 0 .8rem;
                     padding:.6rem .8rem; font-family:ui-monospace, monospace; }
td.excerpt { font-family:ui-monospace, monospace; font-size:.85rem; }
.matched { font-family:ui-monospace, monospace; }
.flash { background:#ecfdf5; border:1px solid #a7f3d0; padding:.4rem .8rem; }
.error { background:#fef2f2; border:1px solid #fecaca; padding:.4rem .8rem; }
.jump { display:inline-block; margin-bottom:.6rem; }
ol.timeline li.triage { color:var(--muted); }
"""
