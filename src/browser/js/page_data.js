// Everything the parsers read from the current page: title candidates outside accordions, tables
// as text rows (with whether they appeared since the last click), definition lists, `Label: value`
// lines, headings, OEM links with their part names.
var out = { href: location.href, titles: [], tables: [], pairs: [], lines: [], headings: [], links: [],
  linkSelector: null };
all(document, A.titles).forEach(function (e) {
  if (A.titleSkip && e.closest(A.titleSkip)) return;
  var t = txt(e);
  if (t.length >= 3 && t.length <= 80 && visible(e)) out.titles.push(t);
});
var scope = firstOf(A.root) || document.body;
function fresh(e) { return !e.hasAttribute('data-aisales-seen') && !e.closest('[data-aisales-seen]'); }
all(scope, ['table']).forEach(function (tb) {
  if (visible(tb)) out.tables.push({ rows: rowsOf(tb), fresh: fresh(tb) });
});
all(scope, ['dl']).forEach(function (dl) {
  if (!visible(dl)) return;
  dl.querySelectorAll('dt').forEach(function (dt) {
    var dd = dt.nextElementSibling;
    if (dd && dd.tagName === 'DD') out.pairs.push([txt(dt), txt(dd)]);
  });
});
if (A.lines) {
  out.lines = String(scope.innerText || '').split('\n').map(function (l) { return l.replace(/\s+/g, ' ').trim(); })
    .filter(function (l) { return l.length > 2 && l.length < 300 && l.indexOf(':') > 0; }).slice(0, 300);
}
all(scope, A.headings).forEach(function (h) { var t = txt(h); if (t && t.length < 200 && visible(h)) out.headings.push(t); });
var NAME_HEADERS = ['наименование', 'название', 'name', 'описание', 'description', 'деталь', 'запчасть'];
function nameColumn(table) {
  var head = table.querySelector('thead tr') || table.querySelector('tr');
  if (!head) return -1;
  var cells = Array.from(head.querySelectorAll('th,td')).map(function (c) { return low(txt(c)); });
  for (var i = 0; i < cells.length; i++) {
    if (cells[i].indexOf('номер') < 0 && NAME_HEADERS.some(function (k) { return cells[i].indexOf(k) >= 0; })) return i;
  }
  return -1;
}
function squash(s) { return String(s || '').replace(/\s+/g, '').toUpperCase(); }
(A.links || []).some(function (sel) {
  var links = all(scope, [sel]);
  if (links.some(fresh)) links = links.filter(fresh);
  if (!links.length) return false;
  out.linkSelector = sel;
  links.forEach(function (a) {
    var query = '';
    try { query = new URL(a.getAttribute('href'), location.href).searchParams.get(A.queryParam || 'query') || ''; } catch (e) { }
    var shownText = txt(a);
    // The catalogue's own number is the link's query, without whitespace and upper-cased (a link
    // shown as `A 204 270 84 04` searches `query=A2042708404`); the shown text only when the link
    // carries no query.
    var oem = query ? squash(query) : shownText;
    var row = A.row ? a.closest(A.row) : null;
    var name = '';
    if (row) { var n = all(row, A.names)[0]; if (n) name = txt(n); }
    if (!name && row && row.tagName === 'TR') {
      var col = nameColumn(row.closest('table'));
      var cells = row.querySelectorAll('th,td');
      if (col >= 0 && cells[col] && !cells[col].contains(a)) name = txt(cells[col]);
    }
    if (!name && row) name = txt(row).replace(shownText, '').trim();
    out.links.push({ oem: oem.replace(/\s+/g, ' ').trim(), name: name.slice(0, 300), text: shownText.slice(0, 100) });
  });
  if (out.links.every(function (l) { return !l.name; })) {
    var names = all(scope, A.names).map(txt).filter(function (t) { return t && t.length < 100; });
    out.links.forEach(function (l, i) { if (names[i]) l.name = names[i]; });
  }
  return true;
});
return out;
