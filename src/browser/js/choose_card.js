// Gearbox card of the scheme list: one naming the gearbox AND the assembly first, else any gearbox
// card; returns its action (CardActionArea button, plain "ПОСМОТРЕТЬ СХЕМУ" link, any button).
var cards = all(document, A.cards).filter(visible);
var kw = (A.keywords || []).map(low), asm = (A.assembly || []).map(low);
function has(t, list) { return list.some(function (k) { return t.indexOf(k) >= 0; }); }
var best = cards.filter(function (c) { var t = low(txt(c)); return has(t, kw) && has(t, asm); })[0]
  || cards.filter(function (c) { return has(low(txt(c)), kw); })[0];
if (!best) return null;
var action = all(best, A.actions)[0] || best;
var d = describe(action);
d.card = txt(best).slice(0, 200);
return d;
