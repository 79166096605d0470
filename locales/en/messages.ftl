# Words that vigil's Rust code (src/web/) puts into the pages: error pages, notices, and the
# sentences of the sign-in flow that web/ maps to ids (src/web/i18n.rs, FLOW_TEXTS). Plain
# text: no markup here (these are escaped like any value).

## Error pages (web/errors.rs)
error-bad-request = Bad request
error-csrf-title = Please try again
error-csrf = This form expired or did not come from this site. Go back, reload the page and submit it again.
error-forbidden = Not allowed
error-not-found-title = Page not found
error-not-found = There is nothing at this address.
error-throttled-title = Too many attempts
error-throttled = There were too many failed attempts. For your security, please wait { $wait } before trying again.
wait-seconds = { $n } seconds
wait-minutes = { $n } minutes
error-busy-title = Busy right now
error-busy = vigil is handling many sign-ins at this moment. Please try again in a few seconds.
error-unavailable-title = Temporarily unavailable
error-unavailable = vigil cannot use its database at the moment, so nothing was changed. Please try again in a few seconds.
error-internal-title = Something went wrong
error-internal = vigil could not complete this request. Please try again in a moment.

## Signing in (web/login.rs, web/oidc.rs, web/mod.rs)
login-reauth = To continue, confirm it's you: sign in again.
login-wrong = Wrong username or password.
login-malformed = The sign-in form is malformed.
signin-refused-title = Sign-in refused
signin-refused = vigil refused this sign-in because it did not look like you. What you can do: { $what }.
not-ready-title = Account not ready
not-ready = You cannot sign in yet: { $what }.
enrol-factor-required = Administrators must use a second factor. Set up an authenticator app or a passkey on your account page, then sign in again with it.
session-unusable = This session cannot be used: { $what }.
request-expired-title = Sign-in request expired
request-unusable-title = This sign-in request cannot be used
request-not-form = The sign-in request must be a form.
request-too-large = The sign-in request is too large.
request-bad-parameters = The address has invalid parameters ({ $detail }).
request-repeated = The request names { $name } more than once.
logout-invalid-title = Sign-out request not valid

## Consent (web/oidc.rs): what a scope lets an application do
scope-openid = Know who you are (your account id)
scope-profile = See your name and username
scope-email = See your e-mail address
scope-offline-access = Stay signed in to it when you are away (refresh tokens)
scope-roles = See your roles in it
scope-groups = See the names of your groups

## Step-up (web/mfa.rs)
mfa-reason = Your account is protected by a second factor. Confirm it's you to continue.
mfa-reason-reset = Your account is protected by a second factor. Confirm it's you to choose a new password.
mfa-needs-passkey = This sign-in needs your passkey or security key; a code will not do.
mfa-code-replayed = That code was already used. Wait for the next one.
mfa-recovery-wrong = That recovery code is not valid, or was already used.
mfa-code-wrong = That code is not right. Try the current one.

## Passkey ceremonies (web/passkeys.rs, shown by static/webauthn.js)
passkey-too-large = The request is too large.
passkey-not-json = The request must be JSON.
passkey-unreadable = The request could not be read.
passkey-throttled = Too many attempts. Try again in { $secs } seconds.
passkey-busy = Busy; try again shortly.
passkey-reauth = Confirm it's you first: sign in again.
passkey-expired = This sign-in expired. Start again.

## Account (web/account.rs)
notice-recovery = You signed in with a recovery code. Enrol a new second factor now, and generate new recovery codes if few are left.
notice-totp = Your authenticator app is set up.
notice-passkey = Your passkey is registered.
notice-password = Your password is changed. Your other sessions have ended.
notice-verify-sent = We sent a link to your e-mail address. Open it within 24 hours to confirm the address.
notice-verified-already = Your e-mail address is already confirmed.
verify-mail-off = This server sends no e-mail, so addresses cannot be confirmed here; ask your administrator.
device-on = { $browser } on { $os }
device-unknown = Unknown device

## Password reset, registration (web/recovery.rs, web/register.rs)
reset-no-cookie = Your browser did not keep this site's cookie, and the link works only in the browser that asks for it. Allow cookies for this site and try again.
reset-refused-title = Password reset refused
reset-refused = vigil refused this password reset: { $what }.
reset-expired = This password reset expired or was already completed. Ask for a new link.
reset-mismatch = The two passwords are not the same.
register-malformed = The registration form is malformed.

## Sentences of the sign-in flow (flow/, auth/, oidc/), matched by their English in web/i18n.rs
refusal-disabled = this account is disabled; contact your administrator
refusal-compromised = this account was reported as compromised and has no second factor to prove it is you; contact your administrator
refusal-not-admin = This page is for administrators. Your account does not have the admin role.
refusal-not-permitted = Your console role does not cover this page or action. Ask an administrator.
refusal-wrong-device = your session belongs to another browser; sign in again
refusal-revoked = this session or token was ended
refusal-no-access = this application admits only people who hold one of its roles, and your account holds none; ask your administrator for one
refusal-at-risk = this account is at risk; privileged roles are withheld until it is remediated
refusal-unverified = this account's e-mail address is not confirmed yet; open the link we mailed to it
refusal-held = this account is waiting for an administrator to approve its registration
block-deny-listed = sign-ins from this network are not accepted; try again from another network
block-policy = this sign-in was refused; contact your administrator
block-no-second-factor = this sign-in needs a second factor and your account has no second factor; sign in from a familiar device, or ask your administrator to review it
block-no-phishing-resistant = this sign-in needs a security key or passkey and your account has none; sign in from a familiar device, or ask your administrator to review it
flow-request-expired = This sign-in request has expired or belongs to another browser. Go back to the application and start again.
flow-unknown-client = The request does not name a known application (client_id).
flow-unregistered-client = The application that sent you here is not registered with vigil.
flow-unregistered-redirect = The application asked to send you to an address it has not registered. For your safety, vigil stopped here.
flow-no-redirect-uri = The request has no redirect_uri.
flow-service-unavailable = The sign-in service is temporarily unavailable.
flow-identifier-needed = Enter your username or your e-mail address.
flow-reset-link-dead = This link does not work: it expired (links work for 15 minutes), was already used, or was replaced by a newer one. Ask for a new link.
flow-reset-other-browser = Open this link in the browser where you asked for it (links work only there). Or ask for a new link in this browser.
flow-registration-off = This server does not take registrations; ask your administrator for an account.
flow-invite-dead = This invitation does not work: it expired (invitations work for 7 days), was already used, or was copied incompletely. Ask for a new one.
flow-email-needed = An e-mail address is needed.
flow-username-taken = That username is taken; choose another.
flow-verify-link-dead = This link does not work: it expired, was already used, or was copied incompletely. Ask for a new one on your account page.
flow-verify-old-address = This link was sent to an address the account no longer has; nothing was changed.
flow-report-link-dead = This link does not work: it expired, was already used, or was copied incompletely. If someone else is using your account, sign in and choose “This wasn't me” on your account page, or ask your administrator.
flow-current-password-wrong = Your current password is not right.
flow-choose-factor = Choose a factor to remove.
flow-setup-expired = This set-up expired. Start again.
flow-totp-wrong = That code is not right. Check the time on your device and try the current code.
weak-password = Password: { $reason }.
weak-too-short = the password is too short: use at least { $n } characters
weak-too-long = the password is too long: use at most { $n } characters
weak-username = the password must not be the username
weak-common = this password is on the list of commonly used passwords; choose another
