// The review report's page style and script (see report-html.ts). Plain ES2017 run by the
// browser, kept as text: the report embeds it, so it must not hold a closing script tag,
// and it loads nothing (the page's Content-Security-Policy forbids any request).

export const REPORT_STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1f2328;background:#fff}
header,section{padding:8px 16px}
h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:12px 0 6px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}dt{color:#59636e}dd{margin:0}
code,.mono,#diff table{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
.ok{color:#1a7f37}.bad{color:#cf222e}
#patterns table{border-collapse:collapse}#patterns td{padding:2px 8px;vertical-align:top}
#patterns td.n{text-align:right;white-space:nowrap}#patterns button{all:unset;cursor:pointer;color:#0969da}
#patterns tr.unexplained button{color:#9a6700}
#filters{display:flex;gap:8px;align-items:center;flex-wrap:wrap;position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #d1d9e0}
#filters input{flex:1;min-width:220px;padding:4px}
#panes{display:grid;grid-template-columns:minmax(260px,32%) 1fr;gap:12px;margin-top:8px}
#units{list-style:none;margin:0;padding:0;max-height:80vh;overflow:auto;border:1px solid #d1d9e0}
#units li{padding:2px 6px;cursor:pointer;font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
#units li:hover{background:#f6f8fa}#units li.sel{background:#ddf4ff}
#diff{overflow:auto}#diff table{border-collapse:collapse;width:100%}
#diff td{padding:0 6px;white-space:pre-wrap;word-break:break-all;vertical-align:top}
#diff td.ln{color:#59636e;text-align:right;user-select:none;width:1%;white-space:nowrap}
#diff tr.hunk td{background:#ddf4ff;color:#59636e}
#diff .del{background:#ffebe9}#diff .add{background:#dafbe1}
#diff .del mark{background:#ff8182}#diff .add mark{background:#4ac26b}
#diff tr.nonl td{color:#59636e;font-style:italic}
.views button{margin-right:4px}.views button.on{font-weight:bold}
`

export const REPORT_CLIENT = `
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('aas-data').textContent);
  var H = data.header, P = data.patterns, F = data.files, A = data.agents;
  var PAGE = 300, TYPES = ['memory', 'wiki'];
  var view = 'unified', shown = 0, matching = [], selected = -1;

  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) { return c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;'; });
  }
  function num(n) { return Number(n).toLocaleString('en-US'); }
  function short(oid) { return oid ? String(oid).slice(0, 12) : '(none)'; }
  function $(id) { return document.getElementById(id); }

  function headerHtml() {
    var v = H.validation, rows = [];
    rows.push(['vault', '<code id="vault">' + esc(H.vault) + '</code>']);
    rows.push(['run', '<code>' + esc(H.runId) + '</code> (' + (H.dryRun ? 'dry run' : 'real run') + '; report of ' + esc(H.generatedAt) + ', aas-migrate ' + esc(H.engineVersion) + ')']);
    rows.push(['versions', '<span id="from-to">v' + (H.from === null ? '?' : H.from) + ' \\u2192 v' + H.target + '</span>, ' + num(H.units) + ' units, ' + num(F.length) + (H.dryRun ? ' would change' : ' changed')]);
    rows.push(['scripts', '<ul id="scripts">' + H.scripts.map(function (s) {
      return '<li><code>' + esc(s.file) + '</code> blob <code>' + esc(s.blob || '(unreadable)') + '</code></li>';
    }).join('') + '</ul>']);
    if (H.snapshot) rows.push([H.dryRun ? 'preview base' : 'snapshot', '<code id="snapshot">' + esc(H.snapshot.ref || H.snapshot.commit) + '</code>' + (H.snapshot.ref ? '' : ' (a dry run keeps no snapshot ref)')]);
    if (H.result) rows.push([H.dryRun ? 'pending ref' : 'run ref', '<code id="pending">' + esc(H.result.ref) + '</code> <code>' + short(H.result.commit) + '</code>']);
    var val = H.validationSummary === 'ok' ? '<span class="ok">every unit valid at v' + H.target + ' (as recorded by the run)</span>'
      : H.validationSummary && H.validationSummary !== 'none' ? '<span class="bad">' + esc(H.validationSummary) + ' at v' + H.target + ' (as recorded by the run; its audit line in _migrations/migration.jsonl has the details)</span>'
      : H.dryRun ? 'not run' : 'not recorded in the store (see the audit line of this run in _migrations/migration.jsonl)';
    if (v) {
      val = v.ok ? '<span class="ok">' + num(v.checked) + ' units valid at v' + v.version + '</span>'
        : '<span class="bad">' + num(v.failures.length) + ' of ' + num(v.checked) + ' units invalid at v' + v.version + '</span><ul>' +
          v.failures.slice(0, 100).map(function (f) {
            return '<li><code>' + esc(f.unitId) + '</code>: ' + f.issues.map(function (i) { return esc(i.field + ': ' + i.message); }).join('; ') + '</li>';
          }).join('') + '</ul>';
    }
    rows.push(['validation', '<span id="validation">' + val + '</span>']);
    return '<h1>Review: v' + (H.from === null ? '?' : H.from) + ' \\u2192 v' + H.target + '</h1><dl>' +
      rows.map(function (r) { return '<dt>' + r[0] + '</dt><dd>' + r[1] + '</dd>'; }).join('') + '</dl>';
  }

  function patternsHtml() {
    return '<h2>Change patterns: ' + num(P.length) + ' group' + (P.length === 1 ? '' : 's') + '</h2><table><tbody>' +
      P.map(function (p, i) {
        return '<tr data-g="' + i + '"' + (p.unexplained ? ' class="unexplained"' : '') + '><td class="n">' + num(p.units) + ' unit' + (p.units === 1 ? '' : 's') +
          '</td><td><button type="button">' + esc(p.label) + '</button></td></tr>';
      }).join('') + '</tbody></table>';
  }

  function options(values, all) {
    return '<option value="">' + all + '</option>' + values.map(function (v, i) { return '<option value="' + i + '">' + esc(v) + '</option>'; }).join('');
  }

  function browseHtml() {
    return '<h2>Changed units</h2><div id="filters"><input id="filter" type="search" placeholder="filter: path or pattern words" autocomplete="off">' +
      '<select id="f-pattern">' + options(P.map(function (p) { return num(p.units) + '  ' + p.label; }), 'every pattern') + '</select>' +
      '<select id="f-agent">' + options(A, 'every agent') + '</select>' +
      '<select id="f-type">' + options(TYPES, 'memory and wiki') + '</select><span id="count"></span></div>' +
      '<div id="panes"><div><ol id="units"></ol><button type="button" id="more" hidden></button></div><div id="diff"><p>Pick a unit to see its diff.</p></div></div>';
  }

  function applyFilter() {
    var words = $('filter').value.toLowerCase().split(/\\s+/).filter(Boolean);
    var g = $('f-pattern').value, a = $('f-agent').value, t = $('f-type').value;
    matching = [];
    for (var i = 0; i < F.length; i++) {
      var f = F[i];
      if (g !== '' && f.g !== Number(g)) continue;
      if (a !== '' && f.a !== Number(a)) continue;
      if (t !== '' && f.t !== Number(t)) continue;
      if (words.length) {
        var hay = (f.p + ' ' + (P[f.g] ? P[f.g].label : '')).toLowerCase(), ok = true;
        for (var w = 0; w < words.length && ok; w++) ok = hay.indexOf(words[w]) !== -1;
        if (!ok) continue;
      }
      matching.push(i);
    }
    $('units').innerHTML = '';
    shown = 0;
    showMore();
    $('count').textContent = num(matching.length) + ' of ' + num(F.length) + ' units';
  }

  function showMore() {
    var html = '';
    var end = Math.min(matching.length, shown + PAGE);
    for (var k = shown; k < end; k++) {
      var i = matching[k];
      html += '<li data-i="' + i + '"' + (i === selected ? ' class="sel"' : '') + '>' + esc(F[i].p) + '</li>';
    }
    $('units').insertAdjacentHTML('beforeend', html);
    shown = end;
    var more = $('more');
    more.hidden = shown >= matching.length;
    more.textContent = 'show ' + num(Math.min(PAGE, matching.length - shown)) + ' more of ' + num(matching.length - shown);
  }

  function hunksOf(f) {
    return f.h.map(function (h) {
      var lines = [];
      h[2].split('\\n').forEach(function (l) {
        if (l.charAt(0) === '\\\\') { if (lines.length) lines[lines.length - 1].nonl = true; return; }
        lines.push({ op: l.charAt(0), text: l.slice(1), html: null, nonl: false });
      });
      return { os: h[0], ns: h[1], lines: lines };
    });
  }

  // Within a run of removed lines followed by added ones, the i-th of each pair: what
  // differs between them is marked (common prefix and suffix left plain).
  function markPairs(lines) {
    for (var i = 0; i < lines.length;) {
      if (lines[i].op !== '-') { i++; continue; }
      var d = i; while (i < lines.length && lines[i].op === '-') i++;
      var a = i; while (i < lines.length && lines[i].op === '+') i++;
      for (var k = 0; k < Math.min(a - d, i - a); k++) markPair(lines[d + k], lines[a + k]);
    }
    lines.forEach(function (l) { if (l.html === null) l.html = esc(l.text); });
  }
  function markPair(x, y) {
    var s = x.text, t = y.text, p = 0, q = 0;
    while (p < s.length && p < t.length && s.charAt(p) === t.charAt(p)) p++;
    while (q < s.length - p && q < t.length - p && s.charAt(s.length - 1 - q) === t.charAt(t.length - 1 - q)) q++;
    x.html = marked(s, p, s.length - q);
    y.html = marked(t, p, t.length - q);
  }
  function marked(s, from, to) {
    if (from >= to) return esc(s);
    return esc(s.slice(0, from)) + '<mark>' + esc(s.slice(from, to)) + '</mark>' + esc(s.slice(to));
  }

  function cls(op) { return op === '-' ? 'del' : op === '+' ? 'add' : 'ctx'; }
  function hunkHead(h) {
    var oc = 0, nc = 0;
    h.lines.forEach(function (l) { if (l.op !== '+') oc++; if (l.op !== '-') nc++; });
    return '@@ -' + h.os + ',' + oc + ' +' + h.ns + ',' + nc + ' @@';
  }
  var NONL = '\\\\ No newline at end of file';

  function unifiedHtml(hunks) {
    var out = '<table class="unified"><tbody>';
    hunks.forEach(function (h) {
      out += '<tr class="hunk"><td class="ln"></td><td class="ln"></td><td>' + hunkHead(h) + '</td></tr>';
      var o = h.os, n = h.ns;
      h.lines.forEach(function (l) {
        var on = l.op === '+' ? '' : o++, nn = l.op === '-' ? '' : n++;
        out += '<tr class="' + cls(l.op) + '"><td class="ln">' + on + '</td><td class="ln">' + nn + '</td><td class="' + cls(l.op) + '">' + esc(l.op) + l.html + '</td></tr>';
        if (l.nonl) out += '<tr class="nonl"><td class="ln"></td><td class="ln"></td><td>' + NONL + '</td></tr>';
      });
    });
    return out + '</tbody></table>';
  }

  function splitHtml(hunks) {
    var out = '<table class="split"><tbody>';
    function cell(l, no) {
      if (!l) return '<td class="ln"></td><td></td>';
      return '<td class="ln">' + no + '</td><td class="' + cls(l.op) + '">' + l.html + (l.nonl ? ' <i>(' + NONL.slice(2) + ')</i>' : '') + '</td>';
    }
    hunks.forEach(function (h) {
      out += '<tr class="hunk"><td class="ln"></td><td colspan="3">' + hunkHead(h) + '</td></tr>';
      var o = h.os, n = h.ns, ls = h.lines;
      for (var i = 0; i < ls.length;) {
        if (ls[i].op === ' ') { out += '<tr>' + cell(ls[i], o++) + cell(ls[i], n++) + '</tr>'; i++; continue; }
        var dels = [], adds = [];
        while (i < ls.length && ls[i].op === '-') dels.push(ls[i++]);
        while (i < ls.length && ls[i].op === '+') adds.push(ls[i++]);
        for (var k = 0; k < Math.max(dels.length, adds.length); k++) {
          out += '<tr>' + (dels[k] ? cell(dels[k], o++) : cell(null)) + (adds[k] ? cell(adds[k], n++) : cell(null)) + '</tr>';
        }
      }
    });
    return out + '</tbody></table>';
  }

  function show(i) {
    selected = i;
    var f = F[i], p = P[f.g];
    Array.prototype.forEach.call(document.querySelectorAll('#units li.sel'), function (li) { li.classList.remove('sel'); });
    var li = document.querySelector('#units li[data-i="' + i + '"]');
    if (li) li.classList.add('sel');
    var hunks = hunksOf(f);
    hunks.forEach(function (h) { markPairs(h.lines); });
    var body = f.b ? '<p>Binary file: ' + short(f.o) + ' \\u2192 ' + short(f.n) + '</p>' : view === 'split' ? splitHtml(hunks) : unifiedHtml(hunks);
    $('diff').innerHTML = '<h2 id="diff-path" class="mono">' + esc(f.p) + '</h2><p>' + esc(TYPES[f.t]) + ' of <code>' + esc(A[f.a]) + '</code>; ' +
      (p ? esc(p.label) : '') + '; blob <code>' + short(f.o) + '</code> \\u2192 <code>' + short(f.n) + '</code></p>' +
      '<p class="views"><button type="button" id="view-unified"' + (view === 'unified' ? ' class="on"' : '') + '>unified</button>' +
      '<button type="button" id="view-split"' + (view === 'split' ? ' class="on"' : '') + '>side by side</button></p>' + body;
  }

  document.body.insertAdjacentHTML('beforeend', '<header>' + headerHtml() + '</header><section id="patterns">' + patternsHtml() +
    '</section><section id="browse">' + browseHtml() + '</section>');
  var pending = 0;
  $('filter').addEventListener('input', function () { cancelAnimationFrame(pending); pending = requestAnimationFrame(applyFilter); });
  ['f-pattern', 'f-agent', 'f-type'].forEach(function (id) { $(id).addEventListener('change', applyFilter); });
  $('more').addEventListener('click', showMore);
  $('units').addEventListener('click', function (e) {
    var li = e.target.closest('li[data-i]');
    if (li) show(Number(li.getAttribute('data-i')));
  });
  $('diff').addEventListener('click', function (e) {
    var id = e.target.id;
    if ((id === 'view-unified' || id === 'view-split') && selected >= 0) { view = id === 'view-split' ? 'split' : 'unified'; show(selected); }
  });
  $('patterns').addEventListener('click', function (e) {
    var tr = e.target.closest('tr[data-g]');
    if (!tr) return;
    $('f-pattern').value = tr.getAttribute('data-g');
    applyFilter();
    $('browse').scrollIntoView();
  });
  applyFilter();
  document.body.setAttribute('data-ready', '1');
})();
`
