// Sign-up: tell PlanMan the browser's time zone, so the new firm's times are
// shown in it (Setup > Firm changes it later). A file, not inline script: the
// CSP allows only PlanMan's own scripts.
document.querySelectorAll("input[data-browser-time-zone]").forEach(function (input) {
  try {
    input.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    input.value = "";
  }
});
