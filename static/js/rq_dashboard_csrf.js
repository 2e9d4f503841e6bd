// Adds PlanMan's CSRF token to rq-dashboard's jQuery POSTs (it sends none of its own).
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && window.jQuery) {
    window.jQuery.ajaxSetup({ headers: { "X-CSRFToken": meta.getAttribute("content") } });
  }
})();
