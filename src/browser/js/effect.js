// Did the click work? `expanded`/`selected` read the control's ARIA state; `appears` waits for
// any visible element of `selectors` or a visible-text pattern under `textRoot`.
var el = byToken(A.token);
if (A.kind === 'expanded') return !!el && el.getAttribute('aria-expanded') === 'true';
if (A.kind === 'selected') {
  return !!el && (el.getAttribute('aria-selected') === 'true' || /(^|\s)(Mui-selected|active|selected)(\s|$)/.test(String(el.className)));
}
var hit = all(document, A.selectors).filter(visible)[0];
if (hit) return { by: 'selector', text: txt(hit).slice(0, 80), href: location.href };
if (A.patterns && A.patterns.length) {
  var root = firstOf(A.textRoot) || document.body;
  var p = matchesAny(root ? txt(root) : '', A.patterns);
  if (p) return { by: 'pattern', text: p, href: location.href };
}
return null;
