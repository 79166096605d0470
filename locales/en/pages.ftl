# vigil's pages (templates/*.html, not templates/admin/). Messages may hold HTML markup of
# ours; the page's values ($client, $user, …) are escaped before they are put in.
# Every id here must exist in every other language (src/web/i18n.rs tests).

## Shared
sign-in = Sign in
sign-out = Sign out
back-to-sign-in = Back to sign-in
create-account = Create an account
this-wasnt-me = This wasn't me
continue = Continue
cancel = Cancel
remove = Remove
username = Username
password = Password
new-password = New password
password-hint-breached = At least 8 characters. Common passwords, passwords known from breaches and your username are refused.
error-status = Error { $status }
go-to-account = Go to your account
reset-title = Reset your password
totp-setup = Set up an authenticator app
change-password = Change password
factor-totp = Authenticator app
factor-passkey = Passkey “{ $name }”
col-action = Action
col-device = Device
col-place = Place
badge-new = new

## base.html
skip-to-content = Skip to content
signed-in-as = Signed in as <strong>{ $user }</strong>
footer = vigil · OpenID Connect identity provider

## login.html
login-forgot = Forgot your password?
login-or = or
login-passkey-unsupported = This browser cannot use passkeys. Sign in with your password.
login-passkey = Sign in with a passkey

## mfa.html
mfa-title = Confirm it's you
mfa-passkey-prompt = Use your passkey or security key.
mfa-passkey-unsupported = This browser cannot use passkeys. Choose another way below.
mfa-use-passkey = Use a passkey
mfa-totp-label = Code from your authenticator app
mfa-verify = Verify
mfa-recovery-label = Recovery code
mfa-recovery-hint = Each recovery code works once.
mfa-other-ways-label = Other ways to confirm
mfa-other-ways = Other ways:
mfa-use-totp = Use your authenticator app
mfa-use-recovery = Use a recovery code

## consent.html
consent-title = Allow access
consent-heading = Allow { $client }?
consent-intro = <strong>{ $client }</strong> would like to:
consent-remember = vigil remembers your answer. You can withdraw it at any time on your account page.
consent-allow = Allow
consent-deny = Deny

## no_access.html
no-access-title = No access to { $client }
no-access-heading = You have no access to { $client }
no-access-body = You are signed in, but { $client } admits only people who hold one of its roles, and your account holds none. Ask your administrator to grant you a role for it.
no-access-back = Back to { $client }

## error.html
error-back = Back to sign in

## forgot.html
forgot-off = This server sends no e-mail, so a password cannot be reset here. Ask your administrator for a temporary password.
forgot-sent = If an account matches what you typed and has an e-mail address, a link to reset its password is on its way. It works once, for { $minutes } minutes, and only in this browser.
forgot-no-mail = No mail after a few minutes? Check your spam folder, or ask your administrator.
forgot-intro = Type your username or your e-mail address. We will mail a link to the address on your account.
forgot-identifier = Username or e-mail address
forgot-send = Send me a link

## reset.html
reset-confirm-intro = Press the button to continue. If your account has a second factor (an authenticator app or a passkey), you will be asked for it first.
reset-choose = Choose a new password for <strong>{ $username }</strong>. Every session of the account will end, on all devices, and applications will be told.
reset-confirm-password = New password again
reset-set = Set the new password
reset-done = Your password was changed. Every session of your account has ended; sign in with the new password.
reset-new-link = Ask for a new link

## register.html
register-ready = Your account is ready. Sign in with your username and password.
register-verify = Almost done: we mailed a link to your address. Open it to confirm the address; then you can sign in.
register-held = Thank you. Your registration waits for an administrator's approval. Meanwhile, confirm your address with the link we mailed to it.
register-closed = This server does not take registrations. Ask your administrator for an account.
register-email = E-mail address
register-name = Your name (optional)
register-submit = Create my account
register-have-account = I have an account

## report.html
report-confirm = You are reporting the activity on your account on <strong>{ $when }</strong> as not yours.
report-confirm-ip = You are reporting the activity on your account on <strong>{ $when }</strong> from <strong>{ $ip }</strong> as not yours.
report-consequences = Every session of your account will end on all devices, its applications will be told, and the administrators will see the report. You will then need your second factor and a new password to get back in.
report-submit = This wasn't me: secure my account
report-done = Thank you. The report was recorded and every session of your account has ended ({ $sessions }). To get back in, use <a href="/login/forgot">Forgot your password?</a> with your second factor, or ask your administrator.

## password.html
password-title = Change your password
password-required = Your password must be changed before you continue. Choose a new one that you do not use anywhere else.
password-current = Current password
password-hint = At least 8 characters. Common passwords and your username are refused.
password-signs-out = Changing your password signs you out everywhere else.

## totp_enrol.html
totp-scan = Scan this code with an authenticator app (such as Aegis, Google Authenticator or 1Password).
totp-or-key = Or type this key into the app:
totp-code-label = Then enter the 6-digit code it shows
totp-turn-on = Turn on

## recovery_codes.html
rc-title = Your recovery codes
rc-first = Your second factor is on.
rc-keep = Keep these codes somewhere safe. Each one signs you in once if you lose your second factor.
rc-not-again = They will not be shown again.
rc-not-again-previous = They will not be shown again, and your previous codes no longer work.
rc-saved = I have saved them

## signed_out.html
signed-out-title = Signed out
signed-out-heading = You are signed out
signed-out-reported = Thank you. We recorded that this sign-in was not you and sent it to the administrators as an attack. Every session of your account has ended, on all devices, including this one.
signed-out-reported-next = Sign in again now: you will be asked to choose a new password before anything else. If you have not set up a second factor, do it on your account page afterwards.
signed-out-done = Your session has ended on this device.
signed-out-again = Sign in again

## logout_confirm.html
logout-heading = Sign out of vigil?
logout-asked = <strong>{ $client }</strong> asked to sign you out.
logout-body = You are signed in as <strong>{ $user }</strong>. Signing out ends your session for every application that uses vigil.
logout-stay = Stay signed in

## email_verify.html
verify-title = Confirm your e-mail address
verify-done = Thank you: <strong>{ $email }</strong> is confirmed.
verify-intro = Press the button to confirm that this address belongs to your account.
verify-submit = Confirm my address

## form_post.html
form-post-title = Continuing
form-post-heading = Returning to the application…

## account.html
account-title = Your account
account-compromised = This account was reported as compromised. Every other session and application token has been ended. Choose a new password, and check the second factors below: any added since the reported sign-in are suspended until you confirm them.
account-compromised-since = This account was reported as compromised on { $since }. Every other session and application token has been ended. Choose a new password, and check the second factors below: any added since the reported sign-in are suspended until you confirm them.
account-at-risk = A risky sign-in to this account was seen: every sign-in asks for your second factor until you change your password with it.
account-at-risk-since = A risky sign-in to this account was seen on { $since }: every sign-in asks for your second factor until you change your password with it.
account-suspended-heading = Factors to check
account-suspended-intro = These were added after the sign-in that was reported. If you added them, confirm them; if not, remove them.
account-suspended-added = (added { $created })
account-confirm-factor = It was me: confirm
account-profile = Profile
account-role-admin = Administrator
account-email = Email
account-email-confirmed = confirmed
account-email-unconfirmed = not confirmed
account-send-link = Send me a confirmation link
account-name = Name
account-not-set = Not set
account-admin-console = Admin console
account-factors = Second factors
account-totp-on = On since { $created }.
account-totp-on-used = On since { $created }, last used { $used }.
account-new-hint = Added this week. If it was not you, remove it and report the sign-in below.
account-totp-remove = Remove authenticator app
account-not-set-up = Not set up.
account-passkeys = Passkeys and security keys
account-col-name = Name
account-col-added = Added
account-col-last-used = Last used
account-never = never
account-passkeys-none = None registered.
account-passkey-unsupported = This browser cannot create passkeys.
account-passkey-name = Name for a new passkey
account-passkey-placeholder = e.g. Work laptop
account-passkey-add = Add a passkey
account-recovery = Recovery codes
account-recovery-left = { $count ->
    [one] { $count } unused recovery code left.
   *[other] { $count } unused recovery codes left.
}
account-recovery-none = None. They are created when you turn on your first second factor.
account-recovery-regenerate = Generate new recovery codes
account-sessions = Sessions
account-col-last-seen = Last seen
account-this-device = this device
account-session-sign-out = Sign out of this session
account-signins = Recent sign-ins
account-signins-hint = Don't recognise one? "This wasn't me" signs you out everywhere, including here, and you will choose a new password at your next sign-in.
account-none-yet = None yet.
account-col-when = When
account-col-how = How
account-col-result = Result
account-apps = Applications you allowed
account-apps-none = You have not given any third-party application access.
account-col-application = Application
account-col-access = Access
account-col-since = Since
account-withdraw = Withdraw

# The sign-in log's codes on the account page (flow/signin_log.rs METHODS, OUTCOMES).
signin-method-password = password
signin-method-passkey = passkey
signin-method-totp = authenticator app
signin-method-recovery-code = recovery code
signin-method-webauthn = passkey
signin-method-sso = single sign-on
signin-method-email-link = e-mailed link
signin-outcome-success = success
signin-outcome-failure = wrong password
signin-outcome-step-up-required = second factor asked
signin-outcome-step-up-passed = second factor passed
signin-outcome-step-up-failed = second factor failed
signin-outcome-blocked = blocked
signin-outcome-access-denied = refused by the application
signin-outcome-password-reset = password reset

# static/webauthn.js reads these from the error box's data attributes.
passkey-js-cancelled = The passkey request was cancelled or timed out. Please try again.
passkey-js-duplicate = This passkey is already registered.
passkey-js-offline = Could not reach the server. Check your connection and try again.
passkey-js-failed = Something went wrong with the passkey. Please try again.
passkey-js-none = No passkey was provided.
