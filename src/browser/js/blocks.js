// Headings and tables of the content root in document order, grouped: each heading starts a block.
// Also the visible text as lines (for `Label: value` facts) and definition-list pairs.
var root = firstOf(A.root) || document.body;
var cur = { heading: '', tables: [] };
var blocks = [cur];
var sel = (A.headings || ['h1', 'h2', 'h3', 'h4']).concat(['table']).join(', ');
root.querySelectorAll(sel).forEach(function (el) {
  if (!visible(el)) return;
  if (el.tagName === 'TABLE') { cur.tables.push(rowsOf(el)); return; }
  if (el.closest('table')) return;
  cur = { heading: txt(el).slice(0, 200), tables: [] };
  blocks.push(cur);
});
var pairs = [];
root.querySelectorAll('dl').forEach(function (dl) {
  if (!visible(dl)) return;
  dl.querySelectorAll('dt').forEach(function (dt) {
    var dd = dt.nextElementSibling;
    if (dd && dd.tagName === 'DD') pairs.push([txt(dt), txt(dd)]);
  });
});
var lines = String(root.innerText || '').split('\n').map(function (l) { return l.replace(/\s+/g, ' ').trim(); })
  .filter(function (l) { return l.length > 0 && l.length < 300; }).slice(0, 500);
return { href: location.href, blocks: blocks, lines: lines, pairs: pairs };
