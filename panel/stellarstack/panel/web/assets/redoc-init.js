"use strict";
// Starts ReDoc on the panel's OpenAPI document (no inline script: the page's
// Content-Security-Policy allows only the panel's own files).
(function () {
  const script = document.currentScript;
  Redoc.init(script.dataset.openapiUrl, {}, document.getElementById("redoc"));
})();
