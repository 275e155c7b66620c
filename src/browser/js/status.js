var nav = (performance.getEntriesByType && performance.getEntriesByType('navigation')[0]) || {};
// Chromium renders network failures as its own error page instead of failing the navigation.
var neterror = null;
if (location.protocol === 'chrome-error:' || (document.body && document.body.classList.contains('neterror'))) {
  var code = document.querySelector('.error-code');
  neterror = (code && code.textContent.trim()) || 'network error page';
}
return { href: location.href, status: nav.responseStatus || 0, ready: document.readyState, neterror: neterror };
