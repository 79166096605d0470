// WebAuthn (passkeys), browser side. Pages declare buttons; this file does the rest:
//   <button data-webauthn="register|authenticate" data-begin="URL" data-finish="URL"
//           data-csrf="TOKEN" [data-name-input="ID of the passkey name input"]>
// begin -> { options, flow }; navigator.credentials.create/get; finish -> { redirect } | { error }.
"use strict";

(function () {
  // base64url (no padding) <-> ArrayBuffer
  function toBuffer(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    var bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeIds(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: toBuffer(c.id) }); });
  }

  // Server options (webauthn-rs JSON, binary fields in base64url) -> what navigator.credentials expects.
  function decodeOptions(pk) {
    var o = Object.assign({}, pk, { challenge: toBuffer(pk.challenge) });
    if (pk.user) { o.user = Object.assign({}, pk.user, { id: toBuffer(pk.user.id) }); }
    if (pk.excludeCredentials) { o.excludeCredentials = decodeIds(pk.excludeCredentials); }
    if (pk.allowCredentials) { o.allowCredentials = decodeIds(pk.allowCredentials); }
    return o;
  }

  // PublicKeyCredential -> the JSON webauthn-rs deserialises.
  function serialise(cred) {
    var r = cred.response;
    var response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      if (r.getTransports) { response.transports = r.getTransports(); }
    } else {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      if (r.userHandle) { response.userHandle = toBase64url(r.userHandle); }
    }
    var out = {
      id: cred.id,
      rawId: toBase64url(cred.rawId),
      type: cred.type,
      response: response,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
    if (cred.authenticatorAttachment) { out.authenticatorAttachment = cred.authenticatorAttachment; }
    return out;
  }

  function showError(message) {
    var el = document.getElementById("webauthn-error");
    if (el) {
      el.textContent = message;
      el.hidden = false;
    } else {
      window.alert(message);
    }
  }

  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok || data.error) {
          throw new Error(data.error || words("failed", "The server refused the request (" + res.status + ")."));
        }
        return data;
      });
    });
  }

  // The page's language: the error box carries the words (data-*, from the catalogues);
  // English when a page has none.
  function words(key, english) {
    var el = document.getElementById("webauthn-error");
    return (el && el.dataset[key]) || english;
  }

  function friendly(err) {
    if (err && (err.name === "NotAllowedError" || err.name === "AbortError")) {
      return words("cancelled", "The passkey request was cancelled or timed out. Please try again.");
    }
    if (err && err.name === "InvalidStateError") {
      return words("duplicate", "This passkey is already registered.");
    }
    if (err instanceof TypeError) {
      return words("offline", "Could not reach the server. Check your connection and try again.");
    }
    return (err && err.message) || words("failed", "Something went wrong with the passkey. Please try again.");
  }

  function run(button) {
    var mode = button.dataset.webauthn;
    var csrf = button.dataset.csrf || "";
    var error = document.getElementById("webauthn-error");
    if (error) { error.hidden = true; }
    button.disabled = true;

    post(button.dataset.begin, csrf, {}).then(function (begin) {
      var pk = begin.options.publicKey || begin.options;
      var ask = mode === "register"
        ? navigator.credentials.create({ publicKey: decodeOptions(pk) })
        : navigator.credentials.get({ publicKey: decodeOptions(pk) });
      return ask.then(function (cred) {
        if (!cred) { throw new Error(words("none", "No passkey was provided.")); }
        var body = { flow: begin.flow, credential: serialise(cred) };
        if (mode === "register") {
          var input = document.getElementById(button.dataset.nameInput || "");
          body.name = input ? input.value : "";
        }
        return post(button.dataset.finish, csrf, body);
      });
    }).then(function (finish) {
      if (finish.redirect) { window.location.assign(finish.redirect); }
    }).catch(function (err) {
      showError(friendly(err));
    }).then(function () {
      button.disabled = false;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("[data-webauthn]");
    if (!window.PublicKeyCredential || !navigator.credentials) {
      var note = document.getElementById("webauthn-unsupported");
      if (note) {
        if (!note.textContent.trim()) {
          note.textContent = "This browser does not support passkeys. Use another sign-in method or a current browser.";
        }
        note.hidden = false;
      }
      buttons.forEach(function (b) { b.disabled = true; });
      return;
    }
    buttons.forEach(function (b) {
      b.addEventListener("click", function (e) {
        e.preventDefault();
        run(b);
      });
    });
  });
})();
