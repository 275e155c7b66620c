// Elements under `selectors` (optionally inside the token's closest `scopeUp`) whose text equals
// one of `exact` or contains one of `contains`, keyword order = priority, visible ones first.
var root = document;
if (A.scope) {
  var s = byToken(A.scope);
  if (!s) return [];
  root = (A.scopeUp && s.closest(A.scopeUp)) || s;
}
var els = all(root, A.selectors).filter(function (e) {
  return !A.skipToken || e.getAttribute('data-aisales-target') !== A.skipToken;
});
if (A.leaf) els = els.filter(function (e) { return !Array.from(e.children).some(function (c) { return txt(c).length > 0; }); });
var maxLen = A.maxLen || 200;
var exclude = (A.exclude || []).map(low);
var cands = els.filter(function (e) {
  var t = low(txt(e));
  return t.length > 0 && t.length <= maxLen && !exclude.some(function (x) { return t.indexOf(x) >= 0; });
});
if (A.visibleOnly) cands = cands.filter(visible);
var exact = (A.exact || []).map(low), contains = (A.contains || []).map(low);
var hits = [];
exact.forEach(function (k) { cands.forEach(function (e) { if (low(txt(e)) === k && hits.indexOf(e) < 0) hits.push(e); }); });
contains.forEach(function (k) { cands.forEach(function (e) { if (low(txt(e)).indexOf(k) >= 0 && hits.indexOf(e) < 0) hits.push(e); }); });
if (!exact.length && !contains.length) hits = cands;
var vis = hits.filter(visible), hid = hits.filter(function (e) { return !visible(e); });
return vis.concat(hid).slice(0, A.limit || 1).map(describe);
