// Elements under `selectors` (optionally inside the token's closest `scopeUp`) whose text equals
// one of `exact` or contains one of `contains`, keyword order = priority; visible ones first, and
// with `freshFirst` those that appeared since the last click before older ones. `nullIfNone`
// answers `null` instead of `[]`, for polling. Among the `contains` hits, those that also contain
// one of `prefer` (assembly words) come first.
var none = A.nullIfNone ? null : [];
var root = document;
if (A.scope) {
  var s = byToken(A.scope);
  if (!s) return none;
  root = (A.scopeUp && s.closest(A.scopeUp)) || s;
}
var skip = (A.skipTokens || []).concat(A.skipToken ? [A.skipToken] : []);
var els = all(root, A.selectors).filter(function (e) {
  return skip.indexOf(e.getAttribute('data-aisales-target')) < 0;
});
if (A.leaf) els = els.filter(function (e) { return !Array.from(e.children).some(function (c) { return txt(c).length > 0; }); });
var maxLen = A.maxLen || 200, minLen = A.minLen || 1;
var exclude = (A.exclude || []).map(low);
var cands = els.filter(function (e) {
  var t = low(txt(e));
  return t.length >= minLen && t.length <= maxLen && !exclude.some(function (x) { return t.indexOf(x) >= 0; });
});
if (A.visibleOnly) cands = cands.filter(visible);
var exact = (A.exact || []).map(low), contains = (A.contains || []).map(low);
var hits = [];
exact.forEach(function (k) { cands.forEach(function (e) { if (low(txt(e)) === k && hits.indexOf(e) < 0) hits.push(e); }); });
var prefer = (A.prefer || []).map(low);
function preferred(e) { var t = low(txt(e)); return prefer.some(function (w) { return t.indexOf(w) >= 0; }); }
[true, false].forEach(function (want) {
  contains.forEach(function (k) {
    cands.forEach(function (e) {
      if (low(txt(e)).indexOf(k) >= 0 && hits.indexOf(e) < 0 && (!prefer.length || preferred(e) === want)) hits.push(e);
    });
  });
});
if (!exact.length && !contains.length) hits = cands;
function rank(e) { return (visible(e) ? 0 : 2) + (A.freshFirst && e.hasAttribute('data-aisales-seen') ? 1 : 0); }
var ordered = hits.map(function (e, i) { return [rank(e), i, e]; })
  .sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; }).map(function (x) { return x[2]; });
var out = ordered.slice(0, A.limit || 1).map(describe);
return out.length ? out : none;
