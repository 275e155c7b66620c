// Is the page still loading? A shown loading indicator, and the milliseconds since an element was
// last added or removed.
watchMutations();
var busy = all(document, A.loading).filter(shown)[0];
return { busy: busy ? (busy.className ? String(busy.className).slice(0, 60) : busy.tagName.toLowerCase()) : null,
  quiet: Math.round(performance.now() - window.__aisalesLastMut), href: location.href };
