// Before a click: remember what is already on the page, so that only what the click brings counts
// as its effect. Marks elements of `seen` (parts markers, tables, cards) and returns the
// visible-text patterns that already match. With `shownOnly` hidden elements stay unmarked: a
// hidden panel the click shows counts as new.
watchMutations();
document.querySelectorAll('[data-aisales-seen]').forEach(function (e) { e.removeAttribute('data-aisales-seen'); });
all(document, A.seen).forEach(function (e) { if (!A.shownOnly || shown(e)) e.setAttribute('data-aisales-seen', '1'); });
var text = visibleText(firstOf(A.textRoot) || document.body);
return (A.patterns || []).filter(function (p) {
  try { return new RegExp(p, 'i').test(text); } catch (e) { return false; }
});
