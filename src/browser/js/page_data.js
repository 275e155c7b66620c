// Everything the parsers read from the current page: title candidates outside accordions,
// tables as text rows, definition lists and label lines, headings, OEM links with their names.
var out = { href: location.href, titles: [], tables: [], pairs: [], headings: [], links: [], linkSelector: null, text: '' };
all(document, A.titles).forEach(function (e) {
  if (A.titleSkip && e.closest(A.titleSkip)) return;
  var t = txt(e);
  if (t.length >= 3 && t.length <= 80 && visible(e)) out.titles.push(t);
});
var scope = firstOf(A.root) || document.body;
all(scope, ['table']).forEach(function (tb) { if (visible(tb)) out.tables.push(rowsOf(tb)); });
all(scope, ['dl']).forEach(function (dl) {
  dl.querySelectorAll('dt').forEach(function (dt) {
    var dd = dt.nextElementSibling;
    if (dd && dd.tagName === 'DD') out.pairs.push([txt(dt), txt(dd)]);
  });
});
all(scope, A.headings).forEach(function (h) { var t = txt(h); if (t && t.length < 200 && visible(h)) out.headings.push(t); });
(A.links || []).some(function (sel) {
  var links = all(scope, [sel]);
  if (!links.length) return false;
  out.linkSelector = sel;
  links.forEach(function (a) {
    var oem = '';
    try { oem = new URL(a.getAttribute('href'), location.href).searchParams.get(A.queryParam || 'query') || ''; } catch (e) { }
    var row = A.row ? a.closest(A.row) : null;
    var name = '';
    if (row) { var n = all(row, A.names)[0]; if (n) name = txt(n); }
    if (!name && row) name = txt(row).replace(txt(a), '').trim();
    out.links.push({ oem: (oem || txt(a)).replace(/\s+/g, ''), name: name.slice(0, 300), text: txt(a).slice(0, 100) });
  });
  if (out.links.every(function (l) { return !l.name; })) {
    var names = all(scope, A.names).map(txt).filter(function (t) { return t && t.length < 100; });
    out.links.forEach(function (l, i) { if (names[i]) l.name = names[i]; });
  }
  return true;
});
out.text = txt(scope).slice(0, 30000);
return out;
