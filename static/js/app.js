// PlanMan's own few behaviours, loaded on every page (the CSP allows only
// files served by PlanMan, never inline script). Each works on markup that is
// already useful without JavaScript.
(function () {
  "use strict";

  // Flash messages: show their close buttons, and close on click.
  function enableFlashClose(root) {
    root.querySelectorAll(".flash-close[hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest(".flash-close");
    if (button) {
      button.closest(".flash").remove();
    }
  });

  // Description fields grow with what is typed, where the browser cannot do it
  // in CSS (field-sizing: content, see app.css).
  var sizesItself = window.CSS && CSS.supports && CSS.supports("field-sizing", "content");
  function grow(textarea) {
    textarea.style.height = "auto";
    textarea.style.height = textarea.scrollHeight + 2 + "px";
  }
  if (!sizesItself) {
    document.addEventListener("input", function (event) {
      if (event.target.matches("textarea.line-input")) {
        grow(event.target);
      }
    });
  }

  // An open integration tab closes its panel instead of loading it again
  // (without JavaScript its link leads to the page with the panel closed).
  document.addEventListener("htmx:beforeRequest", function (event) {
    var tab = event.detail.elt;
    if (!tab.matches(".integration-tab[aria-expanded=true]")) {
      return;
    }
    event.preventDefault();
    document.getElementById(tab.getAttribute("aria-controls")).replaceChildren();
    tab.setAttribute("aria-expanded", "false");
    tab.href = tab.href.replace(/panel=[^&]*/, "panel=" + tab.dataset.provider);
  });

  function enhance(root) {
    enableFlashClose(root);
    if (!sizesItself) {
      root.querySelectorAll("textarea.line-input").forEach(grow);
    }
  }
  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:load", function (event) { enhance(event.detail.elt); });
})();
