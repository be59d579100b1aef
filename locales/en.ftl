# Portcullis pages, English (the fallback for every other language).
# Keys are used by templates/*.html (t("key")) and, for the texts the Rust code
# writes in English, looked up by their English value: change both together.
language-name = English

## Every page
footer-trouble = Trouble signing in?
footer-need-help = Need help?
footer-language = Language
caps-lock-on = Caps Lock is on.

## Sign-in
login-title = Sign in
login-identifier = User name, email or mobile number
login-phone-hint = For a mobile number, include the country code, for example { $example }.
login-phone-hint-region = For a mobile number, include the country code if it isn't a { $region } number, for example { $example }. { $region } numbers also work without it.
login-password = Password
login-password-hint = Passwords are case-sensitive: "Password" and "password" are different.
login-submit = Sign in
login-forgot = Forgot your password?
login-locked-link = What to do when an account is locked
login-wrong = The identifier or password is not right, or this account can't sign in here.
login-wrong-locked = The identifier or password is not right, or this account can't sign in here right now. After many failed attempts an account is locked for a while: wait and try again later, reset your password, or look for an email from us.
login-missing = Enter your identifier and your password.
login-too-long = That password is too long (1024 bytes at most).
login-session-ended = Your session has ended: you were away for a while, or signed out elsewhere. Sign in again to continue where you were.

## CAPTCHA
captcha-legend = Prove you're a person
captcha-image-alt = Picture of characters to type. If you can't see it, use the audio challenge below.
captcha-hear = Hear the challenge
captcha-hear-note = (seven digits; type them instead of the characters)
captcha-audio-label = Audio challenge: seven digits
captcha-label = Characters in the picture, or the digits you heard
captcha-hint = Upper or lower case doesn't matter here.
captcha-wrong = Please type the characters shown in the picture, or the digits you hear.

## Messages and error pages
message-home = Go to the home page
message-contact = If this keeps happening, contact { $contact } and mention error { $status }.
message-contact-none = If this keeps happening, tell the person who manages this site (error { $status }).
status-not-found = Not found
status-not-found-text = There is no page at this address.
status-method = Method not allowed
status-method-text = This address does not accept that method.
status-bad-request = Bad request
status-bad-form = The form could not be read.
status-form-expired = This form has expired
status-form-expired-text = For your security the form could not be accepted. Go back, reload the page and try again.
status-too-many = Too many attempts
status-busy = Busy
status-busy-text = Too many sign-ins at this moment. Try again in a few seconds.
status-unavailable = Temporarily unavailable
status-unavailable-text = Sign-in is unavailable for a moment. Please try again shortly.
status-unavailable-retry = Please try again in a few seconds.
status-wrong = Something went wrong
status-try-again = Please try again.
status-try-again-moment = Please try again in a moment.
status-denied = Access denied
status-denied-text = You do not have access to this page.
status-other-account = Sign in as someone else
status-bad-gateway = The application is not responding
status-bad-gateway-text = The page could not be loaded. Please try again in a moment.
status-timeout = The application is taking too long
status-timeout-text = The page could not be loaded in time. Please try again in a moment.
status-request-timeout = Request timed out
status-request-timeout-text = The request took too long to arrive.
status-request-unreadable = The request could not be read.
status-too-large = Request too large
status-too-large-text = The form sent too much data.
next-400 = Go back, reload the page and try again. If you followed a link, ask for a new one.
next-403 = If you think you should have access, sign in with the account that has it, or ask the person who manages your access.
next-404 = Check the address for typing mistakes, or start again from the home page. A link from an old email may no longer work.
next-408 = Try again. If your connection is slow, wait until it is better.
next-429 = Wait the time shown, then try once more. Guessing doesn't help: if you don't remember your password, reset it instead.
next-500 = This is a problem on our side, not something you did. Try again in a few minutes; if it keeps happening, tell us.
next-502 = You are still signed in; nothing was lost. This is usually over within a minute or two: reload the page then. If it lasts longer, tell us.
next-503 = Wait a few seconds, then reload the page. You don't need to sign in again. If it lasts longer than a few minutes, tell us.

## Unlock link
unlock-title = Unlock your account
unlock-text = Press the button to unlock your account now.
unlock-button = Unlock my account
unlock-invalid = Link not valid
unlock-invalid-text = This unlock link is not valid. Use the link from your most recent email.
unlock-invalid-short = This unlock link is not valid.
unlock-expired = Link expired
unlock-expired-text = This unlock link has expired or was already used.
unlock-done = Account unlocked
unlock-done-text = Your account is unlocked. If you didn't try to sign in recently, change your password.

## Sign out
logout-title = Sign out
logout-question = Sign out?
logout-signed-in-as = You are signed in as { $user }.
logout-button = Sign out
logout-done = You are signed out
logout-again = Sign in again

## Reset
reset-title = Reset password
reset-heading = Reset your password
reset-code = Code from the message we sent
reset-new = New password
reset-again = New password again
reset-send = Send me a code
reset-set = Set new password
reset-back = Back to sign in
reset-expired = That code has expired, was replaced by a newer one, or was used too often. Ask for a new one.
reset-code-wrong = That code is not right.
password-changed = Password changed
password-changed-reset = Your password was changed and you were signed out everywhere. Sign in with the new password.

## Change password
change-title = Change password
change-heading = Change your password
change-signed-in-as = Signed in as { $user }. Other browsers signed in to this account will be signed out.
change-current = Current password
change-new = New password
change-again = New password again
change-submit = Change password
change-current-wrong = Your current password is not right.
change-done = Your password was changed. Other browsers signed in to your account were signed out.
change-not-changed = Your password was not changed.

## Password policy
policy-hint-length = At least { $min } characters.
policy-hint-either = At least { $single } characters ({ $min } if your account has two-step verification with an app or a phone).
policy-hint-words = A few unrelated words make a strong password that is easy to remember; no symbols or digits needed. Common passwords and ones containing your name are refused.
policy-personal = This password would be easy to guess: it contains your name, email address or phone number, or the name of this service. Try a few unrelated words instead; you don't need symbols or digits.
policy-mismatch = The two passwords are not the same.
policy-too-long = That password is too long (1024 bytes at most; any 64 characters fit).
policy-control = A password can't contain control characters such as tabs or line breaks. Use letters, digits, spaces and symbols.

## Two-step verification
twofactor-title = Two-step verification
twofactor-totp = Open your authenticator app and enter the { $digits }-digit code it shows for { $account }.
twofactor-backup = Enter one of the backup codes you saved when you set up two-step verification. Each code works once.
twofactor-email = We can email a { $length }-digit code to { $destination }.
twofactor-sms = We can send a { $length }-digit code by text message to { $destination }.
twofactor-voice = We can call { $destination } and read out a { $length }-digit code.
twofactor-expires = The code expires in { $minutes ->
        [one] { $minutes } minute.
       *[other] { $minutes } minutes.
    }
twofactor-send = Send me a code
twofactor-send-new = Send a new code
twofactor-call = Call me
twofactor-code = Code
twofactor-backup-code = Backup code
twofactor-remember = Don't ask again on this browser for { $days } days
twofactor-verify = Verify
twofactor-other-methods = Use a backup method
twofactor-left = ({ $count } left)
twofactor-no-code = Didn't get the code?
twofactor-no-code-wait = It can take a minute. After a short wait you can press "{ $button }" again; only the newest code works.
twofactor-no-code-spam = Look in your spam or junk folder for an email from { $service }.
twofactor-no-code-voice = No signal, or the text doesn't come?
twofactor-no-code-voice-link = Get a voice call instead
twofactor-no-code-other = Try one of the backup methods above.
twofactor-no-code-yours = Check that { $destination } is still yours. If it isn't, see below.
twofactor-cant = I can't use any of these
twofactor-cant-text = If you lost your phone and have no backup code, or no longer have this email address, we can't send a code anywhere else.
twofactor-cant-contact = Contact { $contact }: they can check who you are and reset two-step verification for your account.
twofactor-cant-none = Ask the person or team who gave you access: they can check who you are and reset two-step verification for your account.
twofactor-more-help = More help
twofactor-sign-out = Sign out
method-totp = Use your authenticator app
method-email = Get a code by email
method-sms = Get a code by text message
method-voice = Get a code by phone call
method-backup = Use a backup code
twofactor-enter-code = Enter the code.
twofactor-wrong-code = That code is not right. Check it and try again, or use another method.
twofactor-wrong-totp = That code is not right. Check that your phone's clock is set automatically, and enter the code the app shows now.
twofactor-used = That code was already used. Wait for the next one.
twofactor-too-many = Too many wrong codes: that code no longer works. Ask for a new code, or use another method.
twofactor-ask-first = Ask for a code first, or ask for a new one: the last one has expired or was used.
twofactor-not-sent = The code could not be sent just now. Try again in a moment, or use another method.
twofactor-locked = Too many failed attempts. For your security, wait a while and try again later.

## Authenticator app set-up
setup-on = Two-step verification is on. Save these backup codes somewhere safe: each one lets you sign in once if you lose your phone. They are shown only now.
setup-continue = Continue
setup-enrolled = Two-step verification with an authenticator app is on for { $account }.
setup-codes-left = { $count ->
        [one] You have { $count } unused backup code.
       *[other] You have { $count } unused backup codes.
    }
setup-confirm-password = Your password (to confirm it's you)
setup-regenerate = Get new backup codes
setup-remove = Turn off two-step verification
setup-required-on = Your organisation requires two-step verification, so it can't be turned off.
setup-replace = Set up a different authenticator app
setup-required = Your organisation requires two-step verification. Set it up now to continue.
setup-step-install = Install an authenticator app on your phone.
setup-step-scan = Scan this QR code with the app, or type the key below.
setup-step-code = Enter the { $digits }-digit code the app then shows.
setup-qr-alt = QR code for your authenticator app. If you can't scan it, type the key shown below.
setup-key = Key:
setup-link = Or open this link on the phone:
setup-app-code = Code from the app
setup-turn-on = Turn on two-step verification

## Help page
help-title = Trouble signing in?
help-intro = Most sign-in problems have a quick fix. Find yours below.
help-toc = On this page
help-identifier = Which name, email or number to use
help-identifier-1 = You can sign in with your user name, your email address or your mobile number: whichever your account has.
help-identifier-2 = An email address looks like name@example.com. If you have several, use the one this account was set up with. If your browser fills it in for you, check that it picked the right one.
help-identifier-3 = A mobile number needs its country code, starting with +, for example { $example }. Spaces, dashes and brackets don't matter.
help-identifier-region = Numbers from { $region } (+{ $code }) also work without it.
help-identifier-4 = If you may have two accounts (for example one with your work email, one with your private email), sign out and try the other one.
help-password = Your password isn't accepted
help-password-1 = Passwords are case-sensitive: "Password" and "password" are different passwords. Check that Caps Lock is off; on this site a warning appears when it is on.
help-password-2 = If your password has digits, check Num Lock when you use the number pad.
help-password-3 = Type the password yourself instead of letting the browser fill in an old one.
help-password-4 = Still not working? Reset your password: we send a code to the email address of your account. It can take a few minutes; if nothing arrives, check your spam or junk folder. The code is valid for { $minutes } minutes.
help-reset-link = Reset your password
help-cookies = The page keeps coming back, or a form has expired
help-cookies-1 = Signing in needs cookies for this site. Allow cookies for it in your browser's settings, or clear its cookies and cache (your browser's Help menu explains how), then reload the page.
help-cookies-2 = "This form has expired" means the page was open for a long time or was opened in another tab: reload it and try again.
help-cookies-3 = "Your session has ended" means you were away for a while or signed out elsewhere: sign in again and you will be taken back to where you were.
help-locked = Your account is locked
help-locked-intro = After { $captcha } failed attempts we ask you to prove you're a person (type the characters of a picture, or listen to seven digits instead). After many more, the account is locked for a while (at first { $minutes } minutes, longer if it happens again) to stop someone guessing your password.
help-locked-1 = Wait and try again later, or reset your password: a reset also unlocks the account.
help-locked-2 = We email the owner of a locked account. That email comes from { $service }, tells you when and from which network address the attempts came, and contains an "unlock" link that leads back to this site's address. It never asks for your password. If an email asks for your password, or its link leads elsewhere, it is not from us: don't click it.
help-locked-3 = If you didn't make those attempts, someone may know your identifier: reset your password and turn on two-step verification.
help-two-step = Problems with the two-step code
help-two-step-1 = Codes by email or text message can take a minute. After the short wait shown on the page you can ask for a new one; only the newest code works. Check your spam folder for emailed codes.
help-two-step-2 = No text message? Choose "Use a backup method" and have the code read to you by a voice call, sent by email, or use your authenticator app.
help-two-step-3 = Authenticator app codes change every 30 seconds. If they are never accepted, check that the time on your phone is set automatically.
help-two-step-4 = Lost your phone? Use one of the backup codes you saved when you set up two-step verification. Each code works once.
help-lost = You no longer have your email or phone
help-lost-1 = We can only send codes to the email address and phone number of your account, so we can't reset the password or send a code anywhere else. Contact the people below: they can check who you are and change the email address or phone number of your account, or turn off two-step verification for you.
help-errors = Error pages
help-errors-404 = Page not found (404): check the address, or start again from the home page.
help-errors-429 = Too many attempts (429): wait the time shown, then try again.
help-errors-5xx = Not responding, unavailable or taking too long (502, 503, 504): the application behind this sign-in is restarting or overloaded. This is usually over within a few minutes; you stay signed in.
help-contact = Who to contact
help-contact-text = Contact { $contact }. Say what you were trying to do, what the page said, and when. Never send your password: nobody will ask you for it.
help-contact-none = Ask the person or team who gave you access to this site. Say what you were trying to do, what the page said, and when. Never send your password: nobody will ask you for it.
help-back = Back to sign in

## Messages sent by email, text message and voice call (plain text)
msg-hello = Hello { $name },
msg-code-subject = Your { $service } sign-in code
msg-code-email = { $code } is your { $service } sign-in code. It expires in { $minutes ->
        [one] { $minutes } minute.
       *[other] { $minutes } minutes.
    }
msg-code-email-warning = Don't share it with anyone: we will never ask you for it. If you didn't try to sign in, someone may know your password: change it.
msg-code-sms = { $code } is your { $service } sign-in code. It expires in { $minutes } min. Don't share it.
msg-code-voice = Hello. Your { $service } sign-in code is: { $spoken }. Again, your code is: { $spoken }. It expires in { $minutes } minutes. Goodbye.
msg-backup-subject = A backup code was used to sign in to { $service }
msg-backup-used = a backup code was just used to sign in to your account (from { $client }). { $left ->
        [one] You have { $left } unused backup code left.
       *[other] You have { $left } unused backup codes left.
    }
msg-backup-running-out = You are running out of backup codes: get a new set on the two-step verification page ({ $url }).
msg-backup-not-you = If this wasn't you, change your password and set up two-step verification again.
msg-lock-subject = Your { $service } account was locked
msg-lock-text = your account was locked after repeated failed sign-in attempts (the last from { $client }, at { $time }). It unlocks by itself in about { $minutes ->
        [one] { $minutes } minute.
       *[other] { $minutes } minutes.
    }
msg-lock-unlock = If this was you, you can unlock it now with this link (it works once):
msg-lock-not-you = If it wasn't you, someone may be guessing your password: change it, and turn on two-step verification.
msg-lock-genuine = We never ask for your password by email. This message contains no attachment and only the link above, which leads to the same address where you sign in.
msg-reset-subject = Your { $service } password reset code
msg-reset-code = Your code to reset your { $service } password is { $code }. It expires in { $minutes ->
        [one] { $minutes } minute.
       *[other] { $minutes } minutes.
    }
msg-reset-not-you = If you didn't ask to reset your password, ignore this message: nothing changes.

## Account page
account-title = Your account
account-profile = Profile
account-name = Name
account-user = User name
account-email = Email
account-phone = Mobile number
account-profile-hint = To change these, ask the person who manages your access.
account-sessions = Where you're signed in
account-unknown-browser = Unknown browser
account-this-browser = this browser
account-session-line = From { $client }; signed in { $created }; last seen { $seen }.
account-sign-out-one = Sign out
account-sign-out-one-label = Sign out { $agent } at { $client }
account-sign-out-others = Sign out all other browsers
account-sign-out-all = Sign out everywhere
account-browsers = Browsers that skip the second step
account-remembered = This browser doesn't ask for the second step (for up to { $days } days after you chose so).
account-not-remembered = This browser asks for the second step.
account-forget-browser = Forget this browser
account-forget-all = Forget all browsers
account-factors = Two-step verification
account-app-on = Authenticator app: on.
account-app-off = Authenticator app: not set up.
account-app-manage = Manage
account-app-set-up = Set it up
account-phone-codes = Codes by text message or voice call to { $phone }.
account-email-codes = Codes by email to { $email }.
account-events = Recent activity
account-event-when = When
account-event-what = What
account-event-from = From
account-no-events = No recent activity to show.
account-signed-out-one = That browser is signed out.
account-signed-out-others = Every other browser is signed out.
account-browser-forgotten = This browser will ask for the second step again.
account-browsers-forgotten = No browser skips the second step any more.
account-unknown-action = Unknown action.
account-reauth = Enter your current password to confirm it's you.
account-change-signed_out_one = One browser was signed out of your account.
account-change-signed_out_others = All other browsers were signed out of your account.
account-change-signed_out_everywhere = Your account was signed out everywhere.
account-change-browser_forgotten = A browser will ask for the second step again.
account-change-browsers_forgotten = No browser skips the second step of your account any more.
msg-account-subject = Your { $service } account was changed
msg-account-text = this change was just made to your account (from { $client }, at { $time }):
msg-account-not-you = If this wasn't you, change your password now and sign out everywhere.

## Account statuses
status-closed = Account closed
status-closed-text = This account is closed and can no longer sign in. If you think this is a mistake, contact your administrator.
status-suspended = Account suspended
status-accounts-unavailable = Accounts can't be reached right now. Nothing was changed. Please try again in a few minutes.

## Account events (the account page's "Recent activity")
event-signin_ok = Signed in
event-password_ok = Password entered (second step next)
event-signin_failed = Failed sign-in
event-signin_refused = Sign-in refused (account not active)
event-2fa_failed = Wrong two-step code
event-password_changed = Password changed
event-factors_changed = Two-step verification changed
event-status_changed = Account status changed
event-created = Account created
event-account_changed = Account settings changed

## Texts with numbers from the code
status-too-many-text = Too many sign-in attempts from your network. Try again in { $secs } seconds.
policy-too-short = Choose a password of at least { $min } characters.
policy-too-short-why = Your password is the only thing protecting this account; with two-step verification turned on, a shorter one is enough.
policy-words-tip = Several unrelated words make a long password that is easy to remember; spaces are allowed.
policy-guessable = This password would be easy to guess: it is common or follows a well-known pattern. Try a few unrelated words, or a sentence only you would think of; you don't need symbols or digits.
