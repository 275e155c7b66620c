// Did the click work? The first sign that shows: the control's ARIA state (`expanded`,
// `selected`), a shown element of `appears` (optionally with one of `appearsText`, inside the
// control's `scopeUp`, and new since the click), an error page, or a visible-text pattern.
var el = byToken(A.token);
var here = location.href;
if (A.expanded && el && el.getAttribute('aria-expanded') === 'true') return { by: 'expanded', text: '', href: here };
if (A.selected && el && (el.getAttribute('aria-selected') === 'true'
  || /(^|\s)(Mui-selected|active|selected|is-active)(\s|$)/.test(String(el.className)))) {
  return { by: 'selected', text: '', href: here };
}
if (location.protocol === 'chrome-error:' || (document.body && document.body.classList.contains('neterror'))) {
  return { by: 'error', text: 'network error page', href: here };
}
var scope = document;
if (A.scope) {
  var s = byToken(A.scope);
  if (s) scope = (A.scopeUp && s.closest(A.scopeUp)) || s;
}
var words = (A.appearsText || []).map(low);
function fits(e) {
  if (A.newOnly && e.hasAttribute('data-aisales-seen')) return false;
  if (el && (e === el || el.contains(e))) return false;
  if (!shown(e)) return false;
  if (!words.length) return true;
  var t = low(txt(e));
  return t.length > 0 && t.length <= (A.maxLen || 200) && words.some(function (k) { return t.indexOf(k) >= 0; });
}
var appears = A.appears || [];
for (var i = 0; i < appears.length; i++) {
  var hit = null;
  try { hit = Array.from(scope.querySelectorAll(appears[i])).filter(fits)[0]; } catch (x) { }
  if (hit) return { by: 'selector', sel: appears[i], text: txt(hit).slice(0, 80), href: here };
}
var err = all(document, A.errorSelectors).filter(function (e) { return !e.hasAttribute('data-aisales-seen') && shown(e); })[0];
if (err) return { by: 'error', text: txt(err).slice(0, 120), href: here };
if ((A.errorPatterns && A.errorPatterns.length) || (A.patterns && A.patterns.length)) {
  var text = visibleText(firstOf(A.textRoot) || document.body);
  var ep = matchText(text, A.errorPatterns);
  if (ep) return { by: 'error', text: ep, href: here };
  var p = matchText(text, A.patterns);
  if (p) return { by: 'pattern', text: p, href: here };
}
return null;
