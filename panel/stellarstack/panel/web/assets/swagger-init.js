"use strict";
// Starts Swagger UI on the panel's OpenAPI document (no inline script: the page's
// Content-Security-Policy allows only the panel's own files).
//
// "Try it out" runs as the logged-in user: the browser sends the session cookie by itself, and
// a cookie-authenticated write must also carry the CSRF token, which the panel keeps in a
// cookie this script can read. The token goes to the panel only, never to another origin.
(function () {
  const script = document.currentScript;
  const csrfCookie = script.dataset.csrfCookie;
  const csrfHeader = script.dataset.csrfHeader;
  const safeMethods = new Set(["GET", "HEAD", "OPTIONS"]);

  function cookieValue(name) {
    for (const part of document.cookie.split(";")) {
      const [key, ...rest] = part.trim().split("=");
      if (key === name) return decodeURIComponent(rest.join("="));
    }
    return "";
  }

  function withCsrfToken(request) {
    const method = (request.method || "GET").toUpperCase();
    const target = new URL(request.url, window.location.href);
    if (safeMethods.has(method) || target.origin !== window.location.origin) return request;
    const token = cookieValue(csrfCookie);
    if (token) request.headers[csrfHeader] = token;
    return request;
  }

  window.ui = SwaggerUIBundle({
    url: script.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    requestInterceptor: withCsrfToken,
  });
})();
