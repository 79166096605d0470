# vigils Seiten auf Deutsch (templates/*.html, ohne templates/admin/). Dieselben ids wie
# locales/en/pages.ftl; Markup wie dort, Werte ($client, $user, …) werden escaped eingesetzt.

## Gemeinsam
sign-in = Anmelden
sign-out = Abmelden
back-to-sign-in = Zurück zur Anmeldung
create-account = Konto erstellen
this-wasnt-me = Das war ich nicht
continue = Weiter
cancel = Abbrechen
remove = Entfernen
username = Benutzername
password = Passwort
new-password = Neues Passwort
password-hint-breached = Mindestens 8 Zeichen. Gängige Passwörter, aus Datenlecks bekannte Passwörter und Ihr Benutzername werden abgelehnt.
error-status = Fehler { $status }
go-to-account = Zu Ihrem Konto
reset-title = Passwort zurücksetzen
totp-setup = Authenticator-App einrichten
change-password = Passwort ändern
factor-totp = Authenticator-App
factor-passkey = Passkey „{ $name }“
col-action = Aktion
col-device = Gerät
col-place = Ort
badge-new = neu

## base.html
skip-to-content = Zum Inhalt springen
signed-in-as = Angemeldet als <strong>{ $user }</strong>
footer = vigil · OpenID-Connect-Identitätsanbieter

## login.html
login-forgot = Passwort vergessen?
login-or = oder
login-passkey-unsupported = Dieser Browser kann keine Passkeys verwenden. Melden Sie sich mit Ihrem Passwort an.
login-passkey = Mit einem Passkey anmelden

## mfa.html
mfa-title = Bestätigen Sie, dass Sie es sind
mfa-passkey-prompt = Verwenden Sie Ihren Passkey oder Sicherheitsschlüssel.
mfa-passkey-unsupported = Dieser Browser kann keine Passkeys verwenden. Wählen Sie unten einen anderen Weg.
mfa-use-passkey = Passkey verwenden
mfa-totp-label = Code aus Ihrer Authenticator-App
mfa-verify = Bestätigen
mfa-recovery-label = Wiederherstellungscode
mfa-recovery-hint = Jeder Wiederherstellungscode funktioniert nur einmal.
mfa-other-ways-label = Andere Wege zur Bestätigung
mfa-other-ways = Andere Wege:
mfa-use-totp = Authenticator-App verwenden
mfa-use-recovery = Wiederherstellungscode verwenden

## consent.html
consent-title = Zugriff erlauben
consent-heading = { $client } erlauben?
consent-intro = <strong>{ $client }</strong> möchte:
consent-remember = vigil merkt sich Ihre Antwort. Sie können sie jederzeit auf Ihrer Kontoseite widerrufen.
consent-allow = Erlauben
consent-deny = Ablehnen

## no_access.html
no-access-title = Kein Zugang zu { $client }
no-access-heading = Sie haben keinen Zugang zu { $client }
no-access-body = Sie sind angemeldet, aber { $client } lässt nur Personen zu, die eine seiner Rollen haben, und Ihr Konto hat keine. Bitten Sie Ihre Administration, Ihnen eine Rolle dafür zu geben.
no-access-back = Zurück zu { $client }

## error.html
error-back = Zurück zur Anmeldung

## forgot.html
forgot-off = Dieser Server versendet keine E-Mails, daher kann ein Passwort hier nicht zurückgesetzt werden. Bitten Sie Ihre Administration um ein vorläufiges Passwort.
forgot-sent = Wenn ein Konto zu Ihrer Eingabe passt und eine E-Mail-Adresse hat, ist ein Link zum Zurücksetzen des Passworts unterwegs. Er funktioniert einmal, { $minutes } Minuten lang und nur in diesem Browser.
forgot-no-mail = Nach einigen Minuten keine E-Mail? Sehen Sie in Ihrem Spam-Ordner nach oder wenden Sie sich an Ihre Administration.
forgot-intro = Geben Sie Ihren Benutzernamen oder Ihre E-Mail-Adresse ein. Wir senden einen Link an die Adresse Ihres Kontos.
forgot-identifier = Benutzername oder E-Mail-Adresse
forgot-send = Link senden

## reset.html
reset-confirm-intro = Klicken Sie auf die Schaltfläche, um fortzufahren. Hat Ihr Konto einen zweiten Faktor (eine Authenticator-App oder einen Passkey), werden Sie zuerst danach gefragt.
reset-choose = Wählen Sie ein neues Passwort für <strong>{ $username }</strong>. Alle Sitzungen des Kontos werden auf allen Geräten beendet, und die Anwendungen werden benachrichtigt.
reset-confirm-password = Neues Passwort wiederholen
reset-set = Neues Passwort festlegen
reset-done = Ihr Passwort wurde geändert. Alle Sitzungen Ihres Kontos wurden beendet; melden Sie sich mit dem neuen Passwort an.
reset-new-link = Neuen Link anfordern

## register.html
register-ready = Ihr Konto ist bereit. Melden Sie sich mit Ihrem Benutzernamen und Passwort an.
register-verify = Fast geschafft: Wir haben einen Link an Ihre Adresse gesendet. Öffnen Sie ihn, um die Adresse zu bestätigen; danach können Sie sich anmelden.
register-held = Vielen Dank. Ihre Registrierung wartet auf die Freigabe durch die Administration. Bestätigen Sie in der Zwischenzeit Ihre Adresse mit dem Link, den wir an sie gesendet haben.
register-closed = Dieser Server nimmt keine Registrierungen an. Bitten Sie Ihre Administration um ein Konto.
register-email = E-Mail-Adresse
register-name = Ihr Name (optional)
register-submit = Mein Konto erstellen
register-have-account = Ich habe bereits ein Konto

## report.html
report-confirm = Sie melden die Aktivität in Ihrem Konto am <strong>{ $when }</strong> als nicht von Ihnen.
report-confirm-ip = Sie melden die Aktivität in Ihrem Konto am <strong>{ $when }</strong> von <strong>{ $ip }</strong> als nicht von Ihnen.
report-consequences = Alle Sitzungen Ihres Kontos werden auf allen Geräten beendet, die Anwendungen werden benachrichtigt, und die Administration sieht die Meldung. Danach brauchen Sie Ihren zweiten Faktor und ein neues Passwort, um wieder hineinzukommen.
report-submit = Das war ich nicht: Konto sichern
report-done = Vielen Dank. Die Meldung wurde erfasst, und alle Sitzungen Ihres Kontos wurden beendet ({ $sessions }). Um wieder hineinzukommen, verwenden Sie <a href="/login/forgot">Passwort vergessen?</a> mit Ihrem zweiten Faktor, oder wenden Sie sich an Ihre Administration.

## password.html
password-title = Passwort ändern
password-required = Sie müssen Ihr Passwort ändern, bevor Sie fortfahren. Wählen Sie ein neues, das Sie nirgendwo sonst verwenden.
password-current = Aktuelles Passwort
password-hint = Mindestens 8 Zeichen. Gängige Passwörter und Ihr Benutzername werden abgelehnt.
password-signs-out = Wenn Sie Ihr Passwort ändern, werden Sie überall sonst abgemeldet.

## totp_enrol.html
totp-scan = Scannen Sie diesen Code mit einer Authenticator-App (etwa Aegis, Google Authenticator oder 1Password).
totp-or-key = Oder geben Sie diesen Schlüssel in der App ein:
totp-code-label = Geben Sie dann den 6-stelligen Code ein, den sie anzeigt
totp-turn-on = Einschalten

## recovery_codes.html
rc-title = Ihre Wiederherstellungscodes
rc-first = Ihr zweiter Faktor ist eingeschaltet.
rc-keep = Bewahren Sie diese Codes sicher auf. Jeder meldet Sie einmal an, falls Sie Ihren zweiten Faktor verlieren.
rc-not-again = Sie werden nicht noch einmal angezeigt.
rc-not-again-previous = Sie werden nicht noch einmal angezeigt, und Ihre bisherigen Codes funktionieren nicht mehr.
rc-saved = Ich habe sie gespeichert

## signed_out.html
signed-out-title = Abgemeldet
signed-out-heading = Sie sind abgemeldet
signed-out-reported = Vielen Dank. Wir haben erfasst, dass diese Anmeldung nicht von Ihnen war, und sie der Administration als Angriff gemeldet. Alle Sitzungen Ihres Kontos wurden beendet, auf allen Geräten, auch auf diesem.
signed-out-reported-next = Melden Sie sich jetzt wieder an: Sie werden zuerst aufgefordert, ein neues Passwort zu wählen. Falls Sie noch keinen zweiten Faktor eingerichtet haben, tun Sie das danach auf Ihrer Kontoseite.
signed-out-done = Ihre Sitzung auf diesem Gerät wurde beendet.
signed-out-again = Wieder anmelden

## logout_confirm.html
logout-heading = Von vigil abmelden?
logout-asked = <strong>{ $client }</strong> möchte Sie abmelden.
logout-body = Sie sind als <strong>{ $user }</strong> angemeldet. Die Abmeldung beendet Ihre Sitzung für alle Anwendungen, die vigil verwenden.
logout-stay = Angemeldet bleiben

## email_verify.html
verify-title = E-Mail-Adresse bestätigen
verify-done = Vielen Dank: <strong>{ $email }</strong> ist bestätigt.
verify-intro = Klicken Sie auf die Schaltfläche, um zu bestätigen, dass diese Adresse zu Ihrem Konto gehört.
verify-submit = Meine Adresse bestätigen

## form_post.html
form-post-title = Weiterleitung
form-post-heading = Zurück zur Anwendung …

## account.html
account-title = Ihr Konto
account-compromised = Dieses Konto wurde als kompromittiert gemeldet. Alle anderen Sitzungen und Anwendungs-Tokens wurden beendet. Wählen Sie ein neues Passwort und prüfen Sie die zweiten Faktoren unten: Alle, die seit der gemeldeten Anmeldung hinzugefügt wurden, sind gesperrt, bis Sie sie bestätigen.
account-compromised-since = Dieses Konto wurde am { $since } als kompromittiert gemeldet. Alle anderen Sitzungen und Anwendungs-Tokens wurden beendet. Wählen Sie ein neues Passwort und prüfen Sie die zweiten Faktoren unten: Alle, die seit der gemeldeten Anmeldung hinzugefügt wurden, sind gesperrt, bis Sie sie bestätigen.
account-at-risk = Bei diesem Konto wurde eine riskante Anmeldung festgestellt: Jede Anmeldung fragt nach Ihrem zweiten Faktor, bis Sie damit Ihr Passwort ändern.
account-at-risk-since = Bei diesem Konto wurde am { $since } eine riskante Anmeldung festgestellt: Jede Anmeldung fragt nach Ihrem zweiten Faktor, bis Sie damit Ihr Passwort ändern.
account-suspended-heading = Zu prüfende Faktoren
account-suspended-intro = Diese wurden nach der gemeldeten Anmeldung hinzugefügt. Wenn Sie sie hinzugefügt haben, bestätigen Sie sie; wenn nicht, entfernen Sie sie.
account-suspended-added = (hinzugefügt am { $created })
account-confirm-factor = Das war ich: bestätigen
account-profile = Profil
account-role-admin = Administrator
account-email = E-Mail
account-email-confirmed = bestätigt
account-email-unconfirmed = nicht bestätigt
account-send-link = Bestätigungslink senden
account-name = Name
account-not-set = Nicht angegeben
account-admin-console = Administrationskonsole
account-factors = Zweite Faktoren
account-totp-on = Eingeschaltet seit { $created }.
account-totp-on-used = Eingeschaltet seit { $created }, zuletzt verwendet { $used }.
account-new-hint = Diese Woche hinzugefügt. Wenn Sie das nicht waren, entfernen Sie ihn und melden Sie die Anmeldung unten.
account-totp-remove = Authenticator-App entfernen
account-not-set-up = Nicht eingerichtet.
account-passkeys = Passkeys und Sicherheitsschlüssel
account-col-name = Name
account-col-added = Hinzugefügt
account-col-last-used = Zuletzt verwendet
account-never = nie
account-passkeys-none = Keine registriert.
account-passkey-unsupported = Dieser Browser kann keine Passkeys erstellen.
account-passkey-name = Name für einen neuen Passkey
account-passkey-placeholder = z. B. Arbeitslaptop
account-passkey-add = Passkey hinzufügen
account-recovery = Wiederherstellungscodes
account-recovery-left = { $count ->
    [one] { $count } unbenutzter Wiederherstellungscode übrig.
   *[other] { $count } unbenutzte Wiederherstellungscodes übrig.
}
account-recovery-none = Keine. Sie werden erstellt, wenn Sie Ihren ersten zweiten Faktor einschalten.
account-recovery-regenerate = Neue Wiederherstellungscodes erstellen
account-sessions = Sitzungen
account-col-last-seen = Zuletzt gesehen
account-this-device = dieses Gerät
account-session-sign-out = Von dieser Sitzung abmelden
account-signins = Letzte Anmeldungen
account-signins-hint = Kommt Ihnen eine nicht bekannt vor? „Das war ich nicht“ meldet Sie überall ab, auch hier, und Sie wählen bei Ihrer nächsten Anmeldung ein neues Passwort.
account-none-yet = Noch keine.
account-col-when = Wann
account-col-how = Wie
account-col-result = Ergebnis
account-apps = Von Ihnen erlaubte Anwendungen
account-apps-none = Sie haben keiner Anwendung eines Drittanbieters Zugriff gegeben.
account-col-application = Anwendung
account-col-access = Zugriff
account-col-since = Seit
account-withdraw = Widerrufen

# The sign-in log's codes on the account page (flow/signin_log.rs METHODS, OUTCOMES).
signin-method-password = Passwort
signin-method-passkey = Passkey
signin-method-totp = Authenticator-App
signin-method-recovery-code = Wiederherstellungscode
signin-method-webauthn = Passkey
signin-method-sso = Single Sign-on
signin-method-email-link = Link per E-Mail
signin-outcome-success = erfolgreich
signin-outcome-failure = falsches Passwort
signin-outcome-step-up-required = zweiter Faktor verlangt
signin-outcome-step-up-passed = zweiter Faktor bestätigt
signin-outcome-step-up-failed = zweiter Faktor fehlgeschlagen
signin-outcome-blocked = gesperrt
signin-outcome-access-denied = von der Anwendung abgelehnt
signin-outcome-password-reset = Passwort zurückgesetzt

# static/webauthn.js reads these from the error box's data attributes.
passkey-js-cancelled = Die Passkey-Anfrage wurde abgebrochen oder ist abgelaufen. Bitte versuchen Sie es erneut.
passkey-js-duplicate = Dieser Passkey ist bereits registriert.
passkey-js-offline = Der Server ist nicht erreichbar. Prüfen Sie Ihre Verbindung und versuchen Sie es erneut.
passkey-js-failed = Mit dem Passkey ist etwas schiefgelaufen. Bitte versuchen Sie es erneut.
passkey-js-none = Es wurde kein Passkey übergeben.
