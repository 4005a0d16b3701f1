/* The login page: choosing a language submits its form at once (no inline handlers: the CSP allows none). */
"use strict";

(() => {
  const select = document.querySelector(".language-switch [data-testid=language-select]");
  if (select) select.addEventListener("change", () => select.form.submit());
})();
