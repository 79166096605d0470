// OAuth 2.0 Form Post Response Mode: submit the hidden form to the application right away.
// Without JavaScript the visible button does the same.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("form-post");
  if (form) { form.submit(); }
});
