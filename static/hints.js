// Device hints for the risk engine: time zone, screen size and platform, put into the login
// form's hidden `device_hints` field. Nothing else is collected; without JavaScript it stays empty.
(function () {
  var field = document.getElementById("device-hints");
  if (!field) { return; }
  try {
    field.value = JSON.stringify({
      tz: Intl.DateTimeFormat().resolvedOptions().timeZone || "",
      screen: window.screen ? window.screen.width + "x" + window.screen.height : "",
      platform: navigator.platform || ""
    });
  } catch (e) { field.value = ""; }
})();
