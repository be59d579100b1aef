# Portcullis-Seiten, Deutsch. Schlüssel wie in en.ftl.
language-name = Deutsch

## Jede Seite
footer-trouble = Probleme bei der Anmeldung?
footer-need-help = Hilfe nötig?
footer-language = Sprache
caps-lock-on = Die Feststelltaste ist aktiviert.

## Anmeldung
login-title = Anmelden
login-identifier = Benutzername, E-Mail-Adresse oder Mobilnummer
login-phone-hint = Geben Sie eine Mobilnummer mit Ländervorwahl ein, zum Beispiel { $example }.
login-phone-hint-region = Geben Sie eine Mobilnummer mit Ländervorwahl ein, wenn es keine Nummer aus { $region } ist, zum Beispiel { $example }. Nummern aus { $region } funktionieren auch ohne Vorwahl.
login-password = Passwort
login-password-hint = Bei Passwörtern zählt die Groß- und Kleinschreibung: „Passwort“ und „passwort“ sind verschieden.
login-submit = Anmelden
login-forgot = Passwort vergessen?
login-locked-link = Was tun, wenn ein Konto gesperrt ist
login-wrong = Kennung oder Passwort stimmen nicht, oder dieses Konto kann sich hier nicht anmelden.
login-wrong-locked = Kennung oder Passwort stimmen nicht, oder dieses Konto kann sich hier gerade nicht anmelden. Nach vielen Fehlversuchen wird ein Konto für eine Weile gesperrt: Warten Sie und versuchen Sie es später erneut, setzen Sie Ihr Passwort zurück oder suchen Sie nach einer E-Mail von uns.
login-missing = Geben Sie Ihre Kennung und Ihr Passwort ein.
login-too-long = Dieses Passwort ist zu lang (höchstens 1024 Byte).
login-session-ended = Ihre Sitzung ist beendet: Sie waren eine Weile abwesend oder haben sich anderswo abgemeldet. Melden Sie sich erneut an, um dort weiterzumachen, wo Sie waren.

## CAPTCHA
captcha-legend = Bestätigen Sie, dass Sie ein Mensch sind
captcha-image-alt = Bild mit Zeichen zum Abtippen. Wenn Sie es nicht sehen können, nutzen Sie die Audio-Aufgabe darunter.
captcha-hear = Aufgabe anhören
captcha-hear-note = (sieben Ziffern; tippen Sie diese statt der Zeichen ein)
captcha-audio-label = Audio-Aufgabe: sieben Ziffern
captcha-label = Zeichen im Bild oder die gehörten Ziffern
captcha-hint = Groß- und Kleinschreibung spielen hier keine Rolle.
captcha-wrong = Bitte tippen Sie die Zeichen aus dem Bild oder die gehörten Ziffern ein.

## Meldungen und Fehlerseiten
message-home = Zur Startseite
message-contact = Wenn das wiederholt passiert, wenden Sie sich an { $contact } und nennen Sie den Fehler { $status }.
message-contact-none = Wenn das wiederholt passiert, wenden Sie sich an die Person, die diese Website betreut (Fehler { $status }).
status-not-found = Nicht gefunden
status-not-found-text = Unter dieser Adresse gibt es keine Seite.
status-method = Methode nicht erlaubt
status-method-text = Diese Adresse nimmt diese Methode nicht an.
status-bad-request = Ungültige Anfrage
status-bad-form = Das Formular konnte nicht gelesen werden.
status-form-expired = Dieses Formular ist abgelaufen
status-form-expired-text = Zu Ihrer Sicherheit wurde das Formular nicht angenommen. Gehen Sie zurück, laden Sie die Seite neu und versuchen Sie es noch einmal.
status-too-many = Zu viele Versuche
status-busy = Ausgelastet
status-busy-text = Gerade melden sich zu viele Personen an. Versuchen Sie es in ein paar Sekunden erneut.
status-unavailable = Vorübergehend nicht verfügbar
status-unavailable-text = Die Anmeldung ist kurz nicht verfügbar. Bitte versuchen Sie es gleich noch einmal.
status-unavailable-retry = Bitte versuchen Sie es in ein paar Sekunden erneut.
status-wrong = Etwas ist schiefgelaufen
status-try-again = Bitte versuchen Sie es noch einmal.
status-try-again-moment = Bitte versuchen Sie es gleich noch einmal.
status-denied = Zugriff verweigert
status-denied-text = Sie haben keinen Zugriff auf diese Seite.
status-other-account = Mit einem anderen Konto anmelden
status-bad-gateway = Die Anwendung antwortet nicht
status-bad-gateway-text = Die Seite konnte nicht geladen werden. Bitte versuchen Sie es gleich noch einmal.
status-timeout = Die Anwendung braucht zu lange
status-timeout-text = Die Seite konnte nicht rechtzeitig geladen werden. Bitte versuchen Sie es gleich noch einmal.
status-request-timeout = Zeitüberschreitung
status-request-timeout-text = Die Anfrage kam zu langsam an.
status-request-unreadable = Die Anfrage konnte nicht gelesen werden.
status-too-large = Anfrage zu groß
status-too-large-text = Das Formular hat zu viele Daten gesendet.
next-400 = Gehen Sie zurück, laden Sie die Seite neu und versuchen Sie es noch einmal. Wenn Sie einem Link gefolgt sind, fordern Sie einen neuen an.
next-403 = Wenn Sie Zugriff haben sollten, melden Sie sich mit dem Konto an, das ihn hat, oder fragen Sie die Person, die Ihre Zugänge verwaltet.
next-404 = Prüfen Sie die Adresse auf Tippfehler oder beginnen Sie noch einmal auf der Startseite. Ein Link aus einer alten E-Mail funktioniert vielleicht nicht mehr.
next-408 = Versuchen Sie es noch einmal. Ist Ihre Verbindung langsam, warten Sie, bis sie besser ist.
next-429 = Warten Sie die angegebene Zeit und versuchen Sie es dann noch einmal. Raten hilft nicht: Wenn Sie Ihr Passwort nicht mehr wissen, setzen Sie es zurück.
next-500 = Das ist ein Problem auf unserer Seite, nicht Ihr Fehler. Versuchen Sie es in ein paar Minuten erneut; wenn es weiter passiert, sagen Sie uns Bescheid.
next-502 = Sie sind weiterhin angemeldet; nichts ist verloren. Das dauert meist nur ein, zwei Minuten: Laden Sie die Seite dann neu. Wenn es länger dauert, sagen Sie uns Bescheid.
next-503 = Warten Sie ein paar Sekunden und laden Sie die Seite neu. Sie müssen sich nicht erneut anmelden. Wenn es länger als ein paar Minuten dauert, sagen Sie uns Bescheid.

## Entsperr-Link
unlock-title = Konto entsperren
unlock-text = Drücken Sie die Schaltfläche, um Ihr Konto jetzt zu entsperren.
unlock-button = Mein Konto entsperren
unlock-invalid = Link ungültig
unlock-invalid-text = Dieser Entsperr-Link ist ungültig. Verwenden Sie den Link aus Ihrer neuesten E-Mail.
unlock-invalid-short = Dieser Entsperr-Link ist ungültig.
unlock-expired = Link abgelaufen
unlock-expired-text = Dieser Entsperr-Link ist abgelaufen oder wurde schon verwendet.
unlock-done = Konto entsperrt
unlock-done-text = Ihr Konto ist entsperrt. Wenn Sie sich in letzter Zeit nicht anmelden wollten, ändern Sie Ihr Passwort.

## Abmelden
logout-title = Abmelden
logout-question = Abmelden?
logout-signed-in-as = Sie sind als { $user } angemeldet.
logout-button = Abmelden
logout-done = Sie sind abgemeldet
logout-again = Erneut anmelden

## Zurücksetzen
reset-title = Passwort zurücksetzen
reset-heading = Passwort zurücksetzen
reset-code = Code aus unserer Nachricht
reset-new = Neues Passwort
reset-again = Neues Passwort wiederholen
reset-send = Code senden
reset-set = Neues Passwort festlegen
reset-back = Zurück zur Anmeldung
reset-expired = Dieser Code ist abgelaufen, wurde durch einen neueren ersetzt oder zu oft falsch eingegeben. Fordern Sie einen neuen an.
reset-code-wrong = Dieser Code stimmt nicht.
password-changed = Passwort geändert
password-changed-reset = Ihr Passwort wurde geändert und Sie wurden überall abgemeldet. Melden Sie sich mit dem neuen Passwort an.

## Passwort ändern
change-title = Passwort ändern
change-heading = Passwort ändern
change-signed-in-as = Angemeldet als { $user }. Andere Browser, die bei diesem Konto angemeldet sind, werden abgemeldet.
change-current = Aktuelles Passwort
change-new = Neues Passwort
change-again = Neues Passwort wiederholen
change-submit = Passwort ändern
change-current-wrong = Ihr aktuelles Passwort stimmt nicht.
change-done = Ihr Passwort wurde geändert. Andere Browser, die bei Ihrem Konto angemeldet waren, wurden abgemeldet.
change-not-changed = Ihr Passwort wurde nicht geändert.

## Passwortregeln
policy-hint-length = Mindestens { $min } Zeichen.
policy-hint-either = Mindestens { $single } Zeichen ({ $min }, wenn Ihr Konto die Bestätigung in zwei Schritten mit einer App oder einem Telefon nutzt).
policy-hint-words = Ein paar Wörter, die nichts miteinander zu tun haben, ergeben ein starkes Passwort, das man sich gut merkt; Sonderzeichen oder Ziffern sind nicht nötig. Gängige Passwörter und solche mit Ihrem Namen werden abgelehnt.
policy-personal = Dieses Passwort wäre leicht zu erraten: Es enthält Ihren Namen, Ihre E-Mail-Adresse oder Telefonnummer oder den Namen dieses Dienstes. Nehmen Sie stattdessen ein paar Wörter, die nichts miteinander zu tun haben; Sonderzeichen oder Ziffern sind nicht nötig.
policy-mismatch = Die beiden Passwörter sind nicht gleich.
policy-too-long = Dieses Passwort ist zu lang (höchstens 1024 Byte; 64 beliebige Zeichen passen immer).
policy-control = Ein Passwort darf keine Steuerzeichen wie Tabulatoren oder Zeilenumbrüche enthalten. Verwenden Sie Buchstaben, Ziffern, Leerzeichen und Symbole.

## Bestätigung in zwei Schritten
twofactor-title = Bestätigung in zwei Schritten
twofactor-totp = Öffnen Sie Ihre Authenticator-App und geben Sie den { $digits }-stelligen Code ein, den sie für { $account } anzeigt.
twofactor-backup = Geben Sie einen der Sicherungscodes ein, die Sie bei der Einrichtung gespeichert haben. Jeder Code funktioniert einmal.
twofactor-email = Wir können einen { $length }-stelligen Code an { $destination } senden.
twofactor-sms = Wir können einen { $length }-stelligen Code per SMS an { $destination } senden.
twofactor-voice = Wir können { $destination } anrufen und einen { $length }-stelligen Code vorlesen.
twofactor-expires = Der Code ist { $minutes ->
        [one] { $minutes } Minute gültig.
       *[other] { $minutes } Minuten gültig.
    }
twofactor-send = Code senden
twofactor-send-new = Neuen Code senden
twofactor-call = Mich anrufen
twofactor-code = Code
twofactor-backup-code = Sicherungscode
twofactor-remember = In diesem Browser { $days } Tage lang nicht mehr fragen
twofactor-verify = Bestätigen
twofactor-other-methods = Andere Methode verwenden
twofactor-left = (noch { $count })
twofactor-no-code = Keinen Code erhalten?
twofactor-no-code-wait = Das kann eine Minute dauern. Nach einer kurzen Wartezeit können Sie erneut auf „{ $button }“ drücken; nur der neueste Code gilt.
twofactor-no-code-spam = Sehen Sie im Spam- oder Junk-Ordner nach einer E-Mail von { $service }.
twofactor-no-code-voice = Kein Empfang, oder die SMS kommt nicht an?
twofactor-no-code-voice-link = Stattdessen einen Anruf erhalten
twofactor-no-code-other = Versuchen Sie eine der anderen Methoden oben.
twofactor-no-code-yours = Prüfen Sie, ob { $destination } noch Ihnen gehört. Wenn nicht, lesen Sie weiter unten.
twofactor-cant = Ich kann keine dieser Methoden nutzen
twofactor-cant-text = Wenn Sie Ihr Telefon verloren und keinen Sicherungscode haben oder diese E-Mail-Adresse nicht mehr nutzen können, können wir den Code nirgendwo anders hinschicken.
twofactor-cant-contact = Wenden Sie sich an { $contact }: Dort kann man prüfen, wer Sie sind, und die Bestätigung in zwei Schritten für Ihr Konto zurücksetzen.
twofactor-cant-none = Fragen Sie die Person oder das Team, die Ihnen den Zugang gegeben haben: Dort kann man prüfen, wer Sie sind, und die Bestätigung in zwei Schritten für Ihr Konto zurücksetzen.
twofactor-more-help = Weitere Hilfe
twofactor-sign-out = Abmelden
method-totp = Authenticator-App verwenden
method-email = Code per E-Mail erhalten
method-sms = Code per SMS erhalten
method-voice = Code per Anruf erhalten
method-backup = Sicherungscode verwenden
twofactor-enter-code = Geben Sie den Code ein.
twofactor-wrong-code = Dieser Code stimmt nicht. Prüfen Sie ihn und versuchen Sie es noch einmal, oder nutzen Sie eine andere Methode.
twofactor-wrong-totp = Dieser Code stimmt nicht. Prüfen Sie, ob die Uhrzeit Ihres Telefons automatisch eingestellt wird, und geben Sie den Code ein, den die App jetzt anzeigt.
twofactor-used = Dieser Code wurde schon verwendet. Warten Sie auf den nächsten.
twofactor-too-many = Zu viele falsche Codes: Dieser Code gilt nicht mehr. Fordern Sie einen neuen an oder nutzen Sie eine andere Methode.
twofactor-ask-first = Fordern Sie zuerst einen Code an, oder einen neuen: Der letzte ist abgelaufen oder wurde verwendet.
twofactor-not-sent = Der Code konnte gerade nicht gesendet werden. Versuchen Sie es gleich noch einmal oder nutzen Sie eine andere Methode.
twofactor-locked = Zu viele Fehlversuche. Zu Ihrer Sicherheit warten Sie bitte eine Weile und versuchen Sie es später erneut.

## Authenticator-App einrichten
setup-on = Die Bestätigung in zwei Schritten ist eingeschaltet. Bewahren Sie diese Sicherungscodes sicher auf: Mit jedem können Sie sich einmal anmelden, falls Sie Ihr Telefon verlieren. Sie werden nur jetzt angezeigt.
setup-continue = Weiter
setup-enrolled = Die Bestätigung in zwei Schritten mit einer Authenticator-App ist für { $account } eingeschaltet.
setup-codes-left = { $count ->
        [one] Sie haben noch { $count } unbenutzten Sicherungscode.
       *[other] Sie haben noch { $count } unbenutzte Sicherungscodes.
    }
setup-confirm-password = Ihr Passwort (zur Bestätigung, dass Sie es sind)
setup-regenerate = Neue Sicherungscodes erzeugen
setup-remove = Bestätigung in zwei Schritten ausschalten
setup-required-on = Ihre Organisation verlangt die Bestätigung in zwei Schritten, daher kann sie nicht ausgeschaltet werden.
setup-replace = Eine andere Authenticator-App einrichten
setup-required = Ihre Organisation verlangt die Bestätigung in zwei Schritten. Richten Sie sie jetzt ein, um fortzufahren.
setup-step-install = Installieren Sie eine Authenticator-App auf Ihrem Telefon.
setup-step-scan = Scannen Sie diesen QR-Code mit der App oder tippen Sie den Schlüssel unten ein.
setup-step-code = Geben Sie den { $digits }-stelligen Code ein, den die App dann anzeigt.
setup-qr-alt = QR-Code für Ihre Authenticator-App. Wenn Sie ihn nicht scannen können, tippen Sie den Schlüssel darunter ein.
setup-key = Schlüssel:
setup-link = Oder öffnen Sie diesen Link auf dem Telefon:
setup-app-code = Code aus der App
setup-turn-on = Bestätigung in zwei Schritten einschalten

## Hilfeseite
help-title = Probleme bei der Anmeldung?
help-intro = Die meisten Anmeldeprobleme lassen sich schnell lösen. Suchen Sie Ihres unten.
help-toc = Auf dieser Seite
help-identifier = Welcher Name, welche E-Mail-Adresse oder Nummer?
help-identifier-1 = Sie können sich mit Ihrem Benutzernamen, Ihrer E-Mail-Adresse oder Ihrer Mobilnummer anmelden: mit dem, was Ihr Konto hat.
help-identifier-2 = Eine E-Mail-Adresse sieht aus wie name@example.com. Wenn Sie mehrere haben, nehmen Sie die, mit der dieses Konto eingerichtet wurde. Füllt Ihr Browser sie automatisch aus, prüfen Sie, ob er die richtige gewählt hat.
help-identifier-3 = Eine Mobilnummer braucht ihre Ländervorwahl, beginnend mit +, zum Beispiel { $example }. Leerzeichen, Bindestriche und Klammern spielen keine Rolle.
help-identifier-region = Nummern aus { $region } (+{ $code }) funktionieren auch ohne Vorwahl.
help-identifier-4 = Wenn Sie vielleicht zwei Konten haben (zum Beispiel eines mit Ihrer beruflichen und eines mit Ihrer privaten E-Mail-Adresse), melden Sie sich ab und versuchen Sie das andere.
help-password = Ihr Passwort wird nicht angenommen
help-password-1 = Bei Passwörtern zählt die Groß- und Kleinschreibung: „Passwort“ und „passwort“ sind verschiedene Passwörter. Prüfen Sie, ob die Feststelltaste aus ist; auf dieser Website erscheint ein Hinweis, wenn sie an ist.
help-password-2 = Enthält Ihr Passwort Ziffern, prüfen Sie die Num-Taste, wenn Sie den Ziffernblock benutzen.
help-password-3 = Tippen Sie das Passwort selbst ein, statt den Browser ein altes einfügen zu lassen.
help-password-4 = Klappt es immer noch nicht? Setzen Sie Ihr Passwort zurück: Wir senden einen Code an die E-Mail-Adresse Ihres Kontos. Das kann ein paar Minuten dauern; kommt nichts an, sehen Sie im Spam- oder Junk-Ordner nach. Der Code ist { $minutes } Minuten gültig.
help-reset-link = Passwort zurücksetzen
help-cookies = Die Seite kommt immer wieder, oder ein Formular ist abgelaufen
help-cookies-1 = Für die Anmeldung braucht diese Website Cookies. Erlauben Sie sie in den Einstellungen Ihres Browsers, oder löschen Sie Cookies und Cache dieser Website (die Hilfe Ihres Browsers erklärt, wie), und laden Sie die Seite neu.
help-cookies-2 = „Dieses Formular ist abgelaufen“ bedeutet, dass die Seite lange offen war oder in einem anderen Tab geöffnet wurde: Laden Sie sie neu und versuchen Sie es noch einmal.
help-cookies-3 = „Ihre Sitzung ist beendet“ bedeutet, dass Sie eine Weile abwesend waren oder sich anderswo abgemeldet haben: Melden Sie sich erneut an, dann kommen Sie dorthin zurück, wo Sie waren.
help-locked = Ihr Konto ist gesperrt
help-locked-intro = Nach { $captcha } Fehlversuchen bitten wir Sie zu bestätigen, dass Sie ein Mensch sind (die Zeichen eines Bildes abtippen oder stattdessen sieben Ziffern anhören). Nach vielen weiteren wird das Konto für eine Weile gesperrt (zuerst { $minutes } Minuten, bei Wiederholung länger), damit niemand Ihr Passwort erraten kann.
help-locked-1 = Warten Sie und versuchen Sie es später erneut, oder setzen Sie Ihr Passwort zurück: Das Zurücksetzen entsperrt das Konto auch.
help-locked-2 = Wir schicken der Person, der ein gesperrtes Konto gehört, eine E-Mail. Sie kommt von { $service }, nennt Zeitpunkt und Netzwerkadresse der Versuche und enthält einen Entsperr-Link, der zur Adresse dieser Website führt. Sie fragt nie nach Ihrem Passwort. Fragt eine E-Mail nach Ihrem Passwort oder führt ihr Link woandershin, ist sie nicht von uns: Klicken Sie nicht darauf.
help-locked-3 = Wenn die Versuche nicht von Ihnen waren, kennt vielleicht jemand Ihre Kennung: Setzen Sie Ihr Passwort zurück und schalten Sie die Bestätigung in zwei Schritten ein.
help-two-step = Probleme mit dem Code der Bestätigung in zwei Schritten
help-two-step-1 = Codes per E-Mail oder SMS können eine Minute brauchen. Nach der kurzen Wartezeit, die die Seite anzeigt, können Sie einen neuen anfordern; nur der neueste gilt. Sehen Sie bei Codes per E-Mail auch im Spam-Ordner nach.
help-two-step-2 = Keine SMS? Wählen Sie „Andere Methode verwenden“ und lassen Sie sich den Code per Anruf vorlesen, per E-Mail schicken, oder nutzen Sie Ihre Authenticator-App.
help-two-step-3 = Codes von Authenticator-Apps wechseln alle 30 Sekunden. Werden sie nie angenommen, prüfen Sie, ob die Uhrzeit Ihres Telefons automatisch eingestellt wird.
help-two-step-4 = Telefon verloren? Nutzen Sie einen der Sicherungscodes, die Sie bei der Einrichtung gespeichert haben. Jeder Code funktioniert einmal.
help-lost = Sie haben Ihre E-Mail-Adresse oder Ihr Telefon nicht mehr
help-lost-1 = Wir können Codes nur an die E-Mail-Adresse und Telefonnummer Ihres Kontos senden, deshalb können wir das Passwort nicht anders zurücksetzen oder den Code woandershin schicken. Wenden Sie sich an die unten Genannten: Dort kann man prüfen, wer Sie sind, die E-Mail-Adresse oder Telefonnummer Ihres Kontos ändern oder die Bestätigung in zwei Schritten für Sie ausschalten.
help-errors = Fehlerseiten
help-errors-404 = Seite nicht gefunden (404): Prüfen Sie die Adresse oder beginnen Sie noch einmal auf der Startseite.
help-errors-429 = Zu viele Versuche (429): Warten Sie die angegebene Zeit und versuchen Sie es dann noch einmal.
help-errors-5xx = Antwortet nicht, nicht verfügbar oder braucht zu lange (502, 503, 504): Die Anwendung hinter dieser Anmeldung startet neu oder ist überlastet. Das ist meist nach ein paar Minuten vorbei; Sie bleiben angemeldet.
help-contact = An wen Sie sich wenden können
help-contact-text = Wenden Sie sich an { $contact }. Schreiben Sie, was Sie tun wollten, was die Seite angezeigt hat und wann. Schicken Sie nie Ihr Passwort: Niemand wird danach fragen.
help-contact-none = Fragen Sie die Person oder das Team, die Ihnen den Zugang zu dieser Website gegeben haben. Schreiben Sie, was Sie tun wollten, was die Seite angezeigt hat und wann. Schicken Sie nie Ihr Passwort: Niemand wird danach fragen.
help-back = Zurück zur Anmeldung

## Nachrichten per E-Mail, SMS und Anruf (reiner Text)
msg-hello = Hallo { $name },
msg-code-subject = Ihr Anmeldecode für { $service }
msg-code-email = { $code } ist Ihr Anmeldecode für { $service }. Er ist { $minutes ->
        [one] { $minutes } Minute gültig.
       *[other] { $minutes } Minuten gültig.
    }
msg-code-email-warning = Geben Sie ihn niemandem weiter: Wir werden Sie nie danach fragen. Wenn Sie sich nicht anmelden wollten, kennt vielleicht jemand Ihr Passwort: Ändern Sie es.
msg-code-sms = { $code } ist Ihr Anmeldecode für { $service }. Gültig { $minutes } Min. Nicht weitergeben.
msg-code-voice = Guten Tag. Ihr Anmeldecode für { $service } lautet: { $spoken }. Noch einmal, Ihr Code lautet: { $spoken }. Er ist { $minutes } Minuten gültig. Auf Wiederhören.
msg-backup-subject = Mit einem Sicherungscode wurde sich bei { $service } angemeldet
msg-backup-used = gerade wurde mit einem Sicherungscode eine Anmeldung bei Ihrem Konto durchgeführt (von { $client }). { $left ->
        [one] Sie haben noch { $left } unbenutzten Sicherungscode.
       *[other] Sie haben noch { $left } unbenutzte Sicherungscodes.
    }
msg-backup-running-out = Ihre Sicherungscodes gehen zur Neige: Erzeugen Sie auf der Seite zur Bestätigung in zwei Schritten neue ({ $url }).
msg-backup-not-you = Wenn Sie das nicht waren, ändern Sie Ihr Passwort und richten Sie die Bestätigung in zwei Schritten neu ein.
msg-lock-subject = Ihr Konto bei { $service } wurde gesperrt
msg-lock-text = Ihr Konto wurde nach wiederholten fehlgeschlagenen Anmeldeversuchen gesperrt (der letzte von { $client }, um { $time }). Es wird nach etwa { $minutes ->
        [one] { $minutes } Minute von selbst entsperrt.
       *[other] { $minutes } Minuten von selbst entsperrt.
    }
msg-lock-unlock = Wenn Sie das waren, können Sie es jetzt mit diesem Link entsperren (er funktioniert einmal):
msg-lock-not-you = Wenn Sie das nicht waren, versucht vielleicht jemand, Ihr Passwort zu erraten: Ändern Sie es und schalten Sie die Bestätigung in zwei Schritten ein.
msg-lock-genuine = Wir fragen nie per E-Mail nach Ihrem Passwort. Diese Nachricht hat keinen Anhang und nur den Link oben, der zu derselben Adresse führt, an der Sie sich anmelden.
msg-reset-subject = Ihr Code zum Zurücksetzen des Passworts für { $service }
msg-reset-code = Ihr Code zum Zurücksetzen Ihres Passworts für { $service } ist { $code }. Er ist { $minutes ->
        [one] { $minutes } Minute gültig.
       *[other] { $minutes } Minuten gültig.
    }
msg-reset-not-you = Wenn Sie das Zurücksetzen nicht angefordert haben, ignorieren Sie diese Nachricht: Es ändert sich nichts.

## Kontoseite
account-title = Ihr Konto
account-profile = Profil
account-name = Name
account-user = Benutzername
account-email = E-Mail
account-phone = Mobilnummer
account-profile-hint = Um diese Angaben zu ändern, wenden Sie sich an die Person, die Ihre Zugänge verwaltet.
account-sessions = Wo Sie angemeldet sind
account-unknown-browser = Unbekannter Browser
account-this-browser = dieser Browser
account-session-line = Von { $client }; angemeldet { $created }; zuletzt aktiv { $seen }.
account-sign-out-one = Abmelden
account-sign-out-one-label = { $agent } bei { $client } abmelden
account-sign-out-others = Alle anderen Browser abmelden
account-sign-out-all = Überall abmelden
account-browsers = Browser, die den zweiten Schritt überspringen
account-remembered = Dieser Browser fragt nicht nach dem zweiten Schritt (bis zu { $days } Tage, nachdem Sie das gewählt haben).
account-not-remembered = Dieser Browser fragt nach dem zweiten Schritt.
account-forget-browser = Diesen Browser vergessen
account-forget-all = Alle Browser vergessen
account-factors = Bestätigung in zwei Schritten
account-app-on = Authenticator-App: eingeschaltet.
account-app-off = Authenticator-App: nicht eingerichtet.
account-app-manage = Verwalten
account-app-set-up = Einrichten
account-phone-codes = Codes per SMS oder Anruf an { $phone }.
account-email-codes = Codes per E-Mail an { $email }.
account-events = Letzte Aktivitäten
account-event-when = Wann
account-event-what = Was
account-event-from = Von
account-no-events = Keine Aktivitäten zum Anzeigen.
account-signed-out-one = Dieser Browser ist abgemeldet.
account-signed-out-others = Alle anderen Browser sind abgemeldet.
account-browser-forgotten = Dieser Browser fragt wieder nach dem zweiten Schritt.
account-browsers-forgotten = Kein Browser überspringt mehr den zweiten Schritt.
account-unknown-action = Unbekannte Aktion.
account-reauth = Geben Sie Ihr aktuelles Passwort ein, um zu bestätigen, dass Sie es sind.
account-change-signed_out_one = Ein Browser wurde von Ihrem Konto abgemeldet.
account-change-signed_out_others = Alle anderen Browser wurden von Ihrem Konto abgemeldet.
account-change-signed_out_everywhere = Ihr Konto wurde überall abgemeldet.
account-change-browser_forgotten = Ein Browser fragt wieder nach dem zweiten Schritt.
account-change-browsers_forgotten = Kein Browser überspringt mehr den zweiten Schritt Ihres Kontos.
msg-account-subject = Ihr Konto bei { $service } wurde geändert
msg-account-text = an Ihrem Konto wurde gerade Folgendes geändert (von { $client }, um { $time }):
msg-account-not-you = Wenn Sie das nicht waren, ändern Sie jetzt Ihr Passwort und melden Sie sich überall ab.

## Kontostatus
status-closed = Konto geschlossen
status-closed-text = Dieses Konto ist geschlossen und kann sich nicht mehr anmelden. Wenn Sie das für einen Irrtum halten, wenden Sie sich an Ihre Administration.
status-suspended = Konto gesperrt
status-accounts-unavailable = Die Konten sind gerade nicht erreichbar. Es wurde nichts geändert. Bitte versuchen Sie es in ein paar Minuten erneut.

## Kontoereignisse
event-signin_ok = Angemeldet
event-password_ok = Passwort eingegeben (zweiter Schritt folgt)
event-signin_failed = Fehlgeschlagene Anmeldung
event-signin_refused = Anmeldung abgelehnt (Konto nicht aktiv)
event-2fa_failed = Falscher Code im zweiten Schritt
event-password_changed = Passwort geändert
event-factors_changed = Bestätigung in zwei Schritten geändert
event-status_changed = Kontostatus geändert
event-created = Konto angelegt
event-account_changed = Kontoeinstellungen geändert

## Texte mit Zahlen aus dem Code
status-too-many-text = Zu viele Anmeldeversuche aus Ihrem Netzwerk. Versuchen Sie es in { $secs } Sekunden erneut.
policy-too-short = Wählen Sie ein Passwort mit mindestens { $min } Zeichen.
policy-too-short-why = Ihr Passwort ist das Einzige, was dieses Konto schützt; mit eingeschalteter Bestätigung in zwei Schritten genügt ein kürzeres.
policy-words-tip = Mehrere Wörter, die nichts miteinander zu tun haben, ergeben ein langes Passwort, das man sich gut merkt; Leerzeichen sind erlaubt.
policy-guessable = Dieses Passwort wäre leicht zu erraten: Es ist verbreitet oder folgt einem bekannten Muster. Nehmen Sie ein paar Wörter, die nichts miteinander zu tun haben, oder einen Satz, auf den nur Sie kommen; Sonderzeichen oder Ziffern sind nicht nötig.
