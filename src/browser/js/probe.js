// Page state: `ready` when a result marker is visible, else `error` / `not_found` by marker or by
// the *visible* text of the content root (hidden templates and scripts do not count).
var ready = all(document, A.ready).filter(visible)[0];
if (ready) return { state: 'ready', matched: ready.tagName.toLowerCase() + ':' + txt(ready).slice(0, 60), href: location.href };
var root = firstOf(A.textRoot) || document.body;
var text = root ? txt(root) : '';
var e = all(document, A.errorSelectors).filter(visible)[0];
if (e) return { state: 'error', matched: txt(e).slice(0, 120), href: location.href };
var ep = matchesAny(text, A.errorPatterns);
if (ep) return { state: 'error', matched: ep, href: location.href };
var n = all(document, A.notFoundSelectors).filter(visible)[0];
if (n) return { state: 'not_found', matched: txt(n).slice(0, 120), href: location.href };
var np = matchesAny(text, A.notFoundPatterns);
if (np) return { state: 'not_found', matched: np, href: location.href };
return null;
