// Gearbox card of a scheme list: among `cards` (MUI cards) one naming the gearbox AND an assembly
// first, else any gearbox card; returns its action (CardActionArea button, plain "ПОСМОТРЕТЬ
// СХЕМУ" link, any button). Without such cards, `generic` elements (scheme titles, content links)
// are matched the same way, exact names first, and the enclosing card's action (or the element) is
// returned. Cards that appeared since the last click come first; `skipTokens` are never chosen.
var kw = (A.keywords || []).map(low), asm = (A.assembly || []).map(low);
var skip = A.skipTokens || [];
function has(t, list) { return list.some(function (k) { return t.indexOf(k) >= 0; }); }
function usable(e) {
  if (!visible(e)) return false;
  return !skip.some(function (t) { var s = byToken(t); return s && (s === e || s.contains(e) || e.contains(s)); });
}
function freshFirst(list) {
  return list.filter(function (e) { return !e.hasAttribute('data-aisales-seen'); })
    .concat(list.filter(function (e) { return e.hasAttribute('data-aisales-seen'); }));
}
function pick(list, maxLen) {
  list = freshFirst(list.filter(usable).filter(function (c) { var n = low(txt(c)).length; return n >= 3 && n <= maxLen; }));
  var exact = [];
  kw.forEach(function (k) { list.forEach(function (c) { if (low(txt(c)) === k && exact.indexOf(c) < 0) exact.push(c); }); });
  return list.filter(function (c) { var t = low(txt(c)); return has(t, kw) && has(t, asm); })[0]
    || exact[0] || list.filter(function (c) { return has(low(txt(c)), kw); })[0];
}
var best = pick(all(document, A.cards), 300), action = null, how = 'card';
if (best) action = all(best, A.actions)[0] || best;
if (!best) {
  best = pick(all(document, A.generic), 300);
  if (!best) return null;
  how = 'generic';
  var card = best.closest(A.cardUp || '[class*="card"], [class*="Card"], [class*="scheme"], li');
  action = (best.matches('a[href], button, [role="button"], [role="link"]') && best)
    || best.closest('a[href], button, [role="button"], [role="link"]')
    || (card && all(card, A.actions)[0]) || best;
}
var d = describe(action);
d.card = txt(best).slice(0, 200);
d.how = how;
return d;
