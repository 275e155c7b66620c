// Page state: `ready` when a result marker is visible, else `error` / `not_found` by a shown marker
// or by the text a user sees under the content root (hidden templates, scripts, screen-reader-only
// and off-screen phrases do not count).
var ready = all(document, A.ready).filter(visible)[0];
if (ready) return { state: 'ready', matched: ready.tagName.toLowerCase() + ':' + txt(ready).slice(0, 60), href: location.href };
var e = all(document, A.errorSelectors).filter(shown)[0];
if (e) return { state: 'error', matched: txt(e).slice(0, 120), href: location.href };
var n = all(document, A.notFoundSelectors).filter(shown)[0];
var text = null;
if (!n) text = visibleText(firstOf(A.textRoot) || document.body);
var ep = text === null ? null : matchesAny(text, A.errorPatterns);
if (ep) return { state: 'error', matched: ep, href: location.href };
if (n) return { state: 'not_found', matched: txt(n).slice(0, 120), href: location.href };
var np = matchesAny(text, A.notFoundPatterns);
if (np) return { state: 'not_found', matched: np, href: location.href };
return null;
