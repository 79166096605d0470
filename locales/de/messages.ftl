# Wörter, die vigils Rust-Code (src/web/) in die Seiten einsetzt; dieselben ids wie
# locales/en/messages.ftl. Reiner Text, kein Markup.

## Fehlerseiten (web/errors.rs)
error-bad-request = Ungültige Anfrage
error-csrf-title = Bitte versuchen Sie es erneut
error-csrf = Dieses Formular ist abgelaufen oder stammt nicht von dieser Website. Gehen Sie zurück, laden Sie die Seite neu und senden Sie es erneut ab.
error-forbidden = Nicht erlaubt
error-not-found-title = Seite nicht gefunden
error-not-found = Unter dieser Adresse gibt es nichts.
error-throttled-title = Zu viele Versuche
error-throttled = Es gab zu viele fehlgeschlagene Versuche. Zu Ihrer Sicherheit warten Sie bitte { $wait }, bevor Sie es erneut versuchen.
wait-seconds = { $n ->
    [one] { $n } Sekunde
   *[other] { $n } Sekunden
}
wait-minutes = { $n ->
    [one] { $n } Minute
   *[other] { $n } Minuten
}
error-busy-title = Gerade ausgelastet
error-busy = vigil bearbeitet im Moment sehr viele Anmeldungen. Bitte versuchen Sie es in einigen Sekunden erneut.
error-unavailable-title = Vorübergehend nicht verfügbar
error-unavailable = vigil kann seine Datenbank im Moment nicht verwenden, daher wurde nichts geändert. Bitte versuchen Sie es in einigen Sekunden erneut.
error-internal-title = Etwas ist schiefgelaufen
error-internal = vigil konnte diese Anfrage nicht abschließen. Bitte versuchen Sie es gleich noch einmal.

## Anmeldung (web/login.rs, web/oidc.rs, web/mod.rs)
login-reauth = Bestätigen Sie, dass Sie es sind, um fortzufahren: Melden Sie sich erneut an.
login-wrong = Benutzername oder Passwort ist falsch.
login-malformed = Das Anmeldeformular ist fehlerhaft.
signin-refused-title = Anmeldung abgelehnt
signin-refused = vigil hat diese Anmeldung abgelehnt, weil sie nicht nach Ihnen aussah. Was Sie tun können: { $what }.
not-ready-title = Konto noch nicht bereit
not-ready = Sie können sich noch nicht anmelden: { $what }.
enrol-factor-required = Administratoren müssen einen zweiten Faktor verwenden. Richten Sie auf Ihrer Kontoseite eine Authenticator-App oder einen Passkey ein und melden Sie sich dann damit erneut an.
session-unusable = Diese Sitzung kann nicht verwendet werden: { $what }.
request-expired-title = Anmeldeanfrage abgelaufen
request-unusable-title = Diese Anmeldeanfrage kann nicht verwendet werden
request-not-form = Die Anmeldeanfrage muss ein Formular sein.
request-too-large = Die Anmeldeanfrage ist zu groß.
request-bad-parameters = Die Adresse enthält ungültige Parameter ({ $detail }).
request-repeated = Die Anfrage nennt { $name } mehr als einmal.
logout-invalid-title = Abmeldeanfrage ungültig

## Einwilligung (web/oidc.rs): was ein Scope einer Anwendung erlaubt
scope-openid = Wissen, wer Sie sind (Ihre Konto-ID)
scope-profile = Ihren Namen und Benutzernamen sehen
scope-email = Ihre E-Mail-Adresse sehen
scope-offline-access = Angemeldet bleiben, auch wenn Sie nicht da sind (Refresh-Tokens)
scope-roles = Ihre Rollen darin sehen
scope-groups = Die Namen Ihrer Gruppen sehen

## Zweiter Faktor (web/mfa.rs)
mfa-reason = Ihr Konto ist durch einen zweiten Faktor geschützt. Bestätigen Sie, dass Sie es sind, um fortzufahren.
mfa-reason-reset = Ihr Konto ist durch einen zweiten Faktor geschützt. Bestätigen Sie, dass Sie es sind, um ein neues Passwort zu wählen.
mfa-needs-passkey = Diese Anmeldung braucht Ihren Passkey oder Sicherheitsschlüssel; ein Code genügt nicht.
mfa-code-replayed = Dieser Code wurde bereits verwendet. Warten Sie auf den nächsten.
mfa-recovery-wrong = Dieser Wiederherstellungscode ist ungültig oder wurde bereits verwendet.
mfa-code-wrong = Dieser Code stimmt nicht. Versuchen Sie den aktuellen.

## Passkey-Abläufe (web/passkeys.rs, angezeigt von static/webauthn.js)
passkey-too-large = Die Anfrage ist zu groß.
passkey-not-json = Die Anfrage muss JSON sein.
passkey-unreadable = Die Anfrage konnte nicht gelesen werden.
passkey-throttled = Zu viele Versuche. Versuchen Sie es in { $secs } Sekunden erneut.
passkey-busy = Ausgelastet; versuchen Sie es gleich noch einmal.
passkey-reauth = Bestätigen Sie zuerst, dass Sie es sind: Melden Sie sich erneut an.
passkey-expired = Diese Anmeldung ist abgelaufen. Beginnen Sie von vorn.

## Konto (web/account.rs)
notice-recovery = Sie haben sich mit einem Wiederherstellungscode angemeldet. Richten Sie jetzt einen neuen zweiten Faktor ein und erstellen Sie neue Wiederherstellungscodes, falls nur noch wenige übrig sind.
notice-totp = Ihre Authenticator-App ist eingerichtet.
notice-passkey = Ihr Passkey ist registriert.
notice-password = Ihr Passwort wurde geändert. Ihre anderen Sitzungen wurden beendet.
notice-verify-sent = Wir haben einen Link an Ihre E-Mail-Adresse gesendet. Öffnen Sie ihn innerhalb von 24 Stunden, um die Adresse zu bestätigen.
notice-verified-already = Ihre E-Mail-Adresse ist bereits bestätigt.
verify-mail-off = Dieser Server versendet keine E-Mails, daher können Adressen hier nicht bestätigt werden; wenden Sie sich an Ihre Administration.
device-on = { $browser } auf { $os }
device-unknown = Unbekanntes Gerät

## Passwort zurücksetzen, Registrierung (web/recovery.rs, web/register.rs)
reset-no-cookie = Ihr Browser hat das Cookie dieser Website nicht behalten, und der Link funktioniert nur in dem Browser, der ihn angefordert hat. Erlauben Sie Cookies für diese Website und versuchen Sie es erneut.
reset-refused-title = Zurücksetzen des Passworts abgelehnt
reset-refused = vigil hat das Zurücksetzen dieses Passworts abgelehnt: { $what }.
reset-expired = Dieses Zurücksetzen des Passworts ist abgelaufen oder wurde bereits abgeschlossen. Fordern Sie einen neuen Link an.
reset-mismatch = Die beiden Passwörter stimmen nicht überein.
register-malformed = Das Registrierungsformular ist fehlerhaft.

## Sätze des Anmeldeablaufs (flow/, auth/, oidc/), in web/i18n.rs über ihr Englisch zugeordnet
refusal-disabled = dieses Konto ist deaktiviert; wenden Sie sich an Ihre Administration
refusal-compromised = dieses Konto wurde als kompromittiert gemeldet und hat keinen zweiten Faktor, mit dem Sie sich ausweisen können; wenden Sie sich an Ihre Administration
refusal-not-admin = Diese Seite ist für Administratoren. Ihr Konto hat die Administratorrolle nicht.
refusal-not-permitted = Ihre Konsolenrolle umfasst diese Seite oder Aktion nicht. Wenden Sie sich an einen Administrator.
refusal-wrong-device = Ihre Sitzung gehört zu einem anderen Browser; melden Sie sich erneut an
refusal-revoked = diese Sitzung oder dieses Token wurde beendet
refusal-no-access = diese Anwendung lässt nur Personen zu, die eine ihrer Rollen haben, und Ihr Konto hat keine; bitten Sie Ihre Administration um eine
refusal-at-risk = dieses Konto ist gefährdet; privilegierte Rollen werden zurückgehalten, bis es bereinigt ist
refusal-unverified = die E-Mail-Adresse dieses Kontos ist noch nicht bestätigt; öffnen Sie den Link, den wir an sie gesendet haben
refusal-held = dieses Konto wartet darauf, dass die Administration seine Registrierung freigibt
block-deny-listed = Anmeldungen aus diesem Netzwerk werden nicht angenommen; versuchen Sie es aus einem anderen Netzwerk
block-policy = diese Anmeldung wurde abgelehnt; wenden Sie sich an Ihre Administration
block-no-second-factor = diese Anmeldung erfordert einen zweiten Faktor, und Ihr Konto hat keinen; melden Sie sich von einem vertrauten Gerät an oder bitten Sie Ihre Administration, die Anmeldung zu prüfen
block-no-phishing-resistant = diese Anmeldung erfordert einen Sicherheitsschlüssel oder Passkey, und Ihr Konto hat keinen; melden Sie sich von einem vertrauten Gerät an oder bitten Sie Ihre Administration, die Anmeldung zu prüfen
flow-request-expired = Diese Anmeldeanfrage ist abgelaufen oder gehört zu einem anderen Browser. Kehren Sie zur Anwendung zurück und beginnen Sie von vorn.
flow-unknown-client = Die Anfrage nennt keine bekannte Anwendung (client_id).
flow-unregistered-client = Die Anwendung, die Sie hierher geschickt hat, ist bei vigil nicht registriert.
flow-unregistered-redirect = Die Anwendung wollte Sie an eine Adresse schicken, die sie nicht registriert hat. Zu Ihrer Sicherheit hat vigil hier angehalten.
flow-no-redirect-uri = Die Anfrage hat keine redirect_uri.
flow-service-unavailable = Der Anmeldedienst ist vorübergehend nicht verfügbar.
flow-identifier-needed = Geben Sie Ihren Benutzernamen oder Ihre E-Mail-Adresse ein.
flow-reset-link-dead = Dieser Link funktioniert nicht: Er ist abgelaufen (Links gelten 15 Minuten), wurde bereits verwendet oder durch einen neueren ersetzt. Fordern Sie einen neuen Link an.
flow-reset-other-browser = Öffnen Sie diesen Link in dem Browser, in dem Sie ihn angefordert haben (Links funktionieren nur dort). Oder fordern Sie in diesem Browser einen neuen Link an.
flow-registration-off = Dieser Server nimmt keine Registrierungen an; bitten Sie Ihre Administration um ein Konto.
flow-invite-dead = Diese Einladung funktioniert nicht: Sie ist abgelaufen (Einladungen gelten 7 Tage), wurde bereits verwendet oder unvollständig kopiert. Bitten Sie um eine neue.
flow-email-needed = Eine E-Mail-Adresse wird benötigt.
flow-username-taken = Dieser Benutzername ist vergeben; wählen Sie einen anderen.
flow-verify-link-dead = Dieser Link funktioniert nicht: Er ist abgelaufen, wurde bereits verwendet oder unvollständig kopiert. Fordern Sie auf Ihrer Kontoseite einen neuen an.
flow-verify-old-address = Dieser Link wurde an eine Adresse gesendet, die das Konto nicht mehr hat; es wurde nichts geändert.
flow-report-link-dead = Dieser Link funktioniert nicht: Er ist abgelaufen, wurde bereits verwendet oder unvollständig kopiert. Wenn jemand anderes Ihr Konto verwendet, melden Sie sich an und wählen Sie auf Ihrer Kontoseite „Das war ich nicht“, oder wenden Sie sich an Ihre Administration.
flow-current-password-wrong = Ihr aktuelles Passwort stimmt nicht.
flow-choose-factor = Wählen Sie einen Faktor zum Entfernen.
flow-setup-expired = Diese Einrichtung ist abgelaufen. Beginnen Sie von vorn.
flow-totp-wrong = Dieser Code stimmt nicht. Prüfen Sie die Uhrzeit auf Ihrem Gerät und versuchen Sie den aktuellen Code.
weak-password = Passwort: { $reason }.
weak-too-short = das Passwort ist zu kurz: verwenden Sie mindestens { $n } Zeichen
weak-too-long = das Passwort ist zu lang: verwenden Sie höchstens { $n } Zeichen
weak-username = das Passwort darf nicht der Benutzername sein
weak-common = dieses Passwort steht auf der Liste häufig verwendeter Passwörter; wählen Sie ein anderes
