// Whether the page changed since the last click: DOM changes counted by the watcher, or a new
// document (the click navigated; the watcher is not installed there yet).
return { muts: window.__aisalesObs ? window.__aisalesMuts : -1, href: location.href };
