# Pages de Portcullis, français. Mêmes clés que en.ftl.
language-name = Français

## Toutes les pages
footer-trouble = Un problème pour vous connecter ?
footer-need-help = Besoin d’aide ?
footer-language = Langue
caps-lock-on = La touche Verr. Maj est activée.

## Connexion
login-title = Se connecter
login-identifier = Nom d’utilisateur, adresse e-mail ou numéro de mobile
login-phone-hint = Pour un numéro de mobile, indiquez l’indicatif du pays, par exemple { $example }.
login-phone-hint-region = Pour un numéro de mobile, indiquez l’indicatif du pays s’il ne s’agit pas d’un numéro de la région { $region }, par exemple { $example }. Les numéros de la région { $region } fonctionnent aussi sans indicatif.
login-password = Mot de passe
login-password-hint = Les mots de passe tiennent compte des majuscules : « Motdepasse » et « motdepasse » sont différents.
login-submit = Se connecter
login-forgot = Mot de passe oublié ?
login-locked-link = Que faire si un compte est bloqué
login-wrong = L’identifiant ou le mot de passe est incorrect, ou ce compte ne peut pas se connecter ici.
login-wrong-locked = L’identifiant ou le mot de passe est incorrect, ou ce compte ne peut pas se connecter ici pour le moment. Après de nombreuses tentatives échouées, un compte est bloqué pendant un certain temps : attendez et réessayez plus tard, réinitialisez votre mot de passe ou cherchez un e-mail de notre part.
login-missing = Saisissez votre identifiant et votre mot de passe.
login-too-long = Ce mot de passe est trop long (1024 octets au maximum).
login-session-ended = Votre session a pris fin : vous étiez absent un moment, ou vous vous êtes déconnecté ailleurs. Reconnectez-vous pour reprendre là où vous en étiez.

## CAPTCHA
captcha-legend = Prouvez que vous êtes une personne
captcha-image-alt = Image de caractères à recopier. Si vous ne pouvez pas la voir, utilisez la version audio ci-dessous.
captcha-hear = Écouter le défi
captcha-hear-note = (sept chiffres ; saisissez-les à la place des caractères)
captcha-audio-label = Défi audio : sept chiffres
captcha-label = Caractères de l’image, ou chiffres entendus
captcha-hint = Les majuscules et minuscules n’ont pas d’importance ici.
captcha-wrong = Veuillez saisir les caractères de l’image, ou les chiffres que vous entendez.

## Messages et pages d’erreur
message-home = Aller à la page d’accueil
message-contact = Si cela se reproduit, contactez { $contact } en mentionnant l’erreur { $status }.
message-contact-none = Si cela se reproduit, prévenez la personne qui gère ce site (erreur { $status }).
status-not-found = Page introuvable
status-not-found-text = Il n’y a pas de page à cette adresse.
status-method = Méthode non autorisée
status-method-text = Cette adresse n’accepte pas cette méthode.
status-bad-request = Requête incorrecte
status-bad-form = Le formulaire n’a pas pu être lu.
status-form-expired = Ce formulaire a expiré
status-form-expired-text = Pour votre sécurité, le formulaire n’a pas été accepté. Revenez en arrière, rechargez la page et réessayez.
status-too-many = Trop de tentatives
status-busy = Occupé
status-busy-text = Trop de connexions en ce moment. Réessayez dans quelques secondes.
status-unavailable = Temporairement indisponible
status-unavailable-text = La connexion est momentanément indisponible. Veuillez réessayer dans un instant.
status-unavailable-retry = Veuillez réessayer dans quelques secondes.
status-wrong = Un problème est survenu
status-try-again = Veuillez réessayer.
status-try-again-moment = Veuillez réessayer dans un instant.
status-denied = Accès refusé
status-denied-text = Vous n’avez pas accès à cette page.
status-other-account = Se connecter avec un autre compte
status-bad-gateway = L’application ne répond pas
status-bad-gateway-text = La page n’a pas pu être chargée. Veuillez réessayer dans un instant.
status-timeout = L’application met trop de temps
status-timeout-text = La page n’a pas pu être chargée à temps. Veuillez réessayer dans un instant.
status-request-timeout = Délai dépassé
status-request-timeout-text = La requête a mis trop de temps à arriver.
status-request-unreadable = La requête n’a pas pu être lue.
status-too-large = Requête trop volumineuse
status-too-large-text = Le formulaire a envoyé trop de données.
next-400 = Revenez en arrière, rechargez la page et réessayez. Si vous avez suivi un lien, demandez-en un nouveau.
next-403 = Si vous pensez devoir y avoir accès, connectez-vous avec le compte qui a cet accès, ou demandez à la personne qui gère vos accès.
next-404 = Vérifiez l’adresse (faute de frappe ?) ou recommencez depuis la page d’accueil. Un lien d’un ancien e-mail peut ne plus fonctionner.
next-408 = Réessayez. Si votre connexion est lente, attendez qu’elle s’améliore.
next-429 = Attendez le temps indiqué, puis réessayez une fois. Deviner ne sert à rien : si vous ne vous souvenez plus de votre mot de passe, réinitialisez-le.
next-500 = Le problème vient de chez nous, pas de vous. Réessayez dans quelques minutes ; si cela continue, prévenez-nous.
next-502 = Vous êtes toujours connecté ; rien n’est perdu. Cela ne dure en général qu’une minute ou deux : rechargez alors la page. Si cela dure plus longtemps, prévenez-nous.
next-503 = Attendez quelques secondes, puis rechargez la page. Vous n’avez pas besoin de vous reconnecter. Si cela dure plus de quelques minutes, prévenez-nous.

## Lien de déblocage
unlock-title = Débloquer votre compte
unlock-text = Appuyez sur le bouton pour débloquer votre compte maintenant.
unlock-button = Débloquer mon compte
unlock-invalid = Lien non valide
unlock-invalid-text = Ce lien de déblocage n’est pas valide. Utilisez le lien de votre e-mail le plus récent.
unlock-invalid-short = Ce lien de déblocage n’est pas valide.
unlock-expired = Lien expiré
unlock-expired-text = Ce lien de déblocage a expiré ou a déjà été utilisé.
unlock-done = Compte débloqué
unlock-done-text = Votre compte est débloqué. Si vous n’avez pas essayé de vous connecter récemment, changez votre mot de passe.

## Déconnexion
logout-title = Se déconnecter
logout-question = Se déconnecter ?
logout-signed-in-as = Vous êtes connecté en tant que { $user }.
logout-button = Se déconnecter
logout-done = Vous êtes déconnecté
logout-again = Se reconnecter

## Réinitialisation
reset-title = Réinitialiser le mot de passe
reset-heading = Réinitialiser votre mot de passe
reset-code = Code reçu dans notre message
reset-new = Nouveau mot de passe
reset-again = Nouveau mot de passe (confirmation)
reset-send = M’envoyer un code
reset-set = Enregistrer le nouveau mot de passe
reset-back = Retour à la connexion
reset-expired = Ce code a expiré, a été remplacé par un plus récent ou a été essayé trop souvent. Demandez-en un nouveau.
reset-code-wrong = Ce code est incorrect.
password-changed = Mot de passe modifié
password-changed-reset = Votre mot de passe a été modifié et vous avez été déconnecté partout. Connectez-vous avec le nouveau mot de passe.

## Changer de mot de passe
change-title = Changer de mot de passe
change-heading = Changer votre mot de passe
change-signed-in-as = Connecté en tant que { $user }. Les autres navigateurs connectés à ce compte seront déconnectés.
change-current = Mot de passe actuel
change-new = Nouveau mot de passe
change-again = Nouveau mot de passe (confirmation)
change-submit = Changer le mot de passe
change-current-wrong = Votre mot de passe actuel est incorrect.
change-done = Votre mot de passe a été modifié. Les autres navigateurs connectés à votre compte ont été déconnectés.
change-not-changed = Votre mot de passe n’a pas été modifié.

## Règles des mots de passe
policy-hint-length = Au moins { $min } caractères.
policy-hint-either = Au moins { $single } caractères ({ $min } si votre compte utilise la validation en deux étapes avec une application ou un téléphone).
policy-hint-words = Quelques mots sans rapport entre eux font un mot de passe solide et facile à retenir ; pas besoin de symboles ni de chiffres. Les mots de passe courants et ceux qui contiennent votre nom sont refusés.
policy-personal = Ce mot de passe serait facile à deviner : il contient votre nom, votre adresse e-mail ou votre numéro de téléphone, ou le nom de ce service. Choisissez plutôt quelques mots sans rapport entre eux ; pas besoin de symboles ni de chiffres.
policy-mismatch = Les deux mots de passe ne sont pas identiques.
policy-too-long = Ce mot de passe est trop long (1024 octets au maximum ; 64 caractères passent toujours).
policy-control = Un mot de passe ne peut pas contenir de caractères de contrôle, comme des tabulations ou des retours à la ligne. Utilisez des lettres, des chiffres, des espaces et des symboles.

## Validation en deux étapes
twofactor-title = Validation en deux étapes
twofactor-totp = Ouvrez votre application d’authentification et saisissez le code à { $digits } chiffres qu’elle affiche pour { $account }.
twofactor-backup = Saisissez l’un des codes de secours enregistrés lors de la mise en place de la validation en deux étapes. Chaque code ne sert qu’une fois.
twofactor-email = Nous pouvons envoyer un code à { $length } chiffres à { $destination }.
twofactor-sms = Nous pouvons envoyer un code à { $length } chiffres par SMS au { $destination }.
twofactor-voice = Nous pouvons appeler le { $destination } et vous lire un code à { $length } chiffres.
twofactor-expires = Le code expire dans { $minutes ->
        [one] { $minutes } minute.
       *[other] { $minutes } minutes.
    }
twofactor-send = M’envoyer un code
twofactor-send-new = Envoyer un nouveau code
twofactor-call = M’appeler
twofactor-code = Code
twofactor-backup-code = Code de secours
twofactor-remember = Ne plus demander sur ce navigateur pendant { $days } jours
twofactor-verify = Valider
twofactor-other-methods = Utiliser une autre méthode
twofactor-left = ({ $count } restants)
twofactor-no-code = Vous n’avez pas reçu le code ?
twofactor-no-code-wait = Cela peut prendre une minute. Après une courte attente, vous pouvez appuyer à nouveau sur « { $button } » ; seul le code le plus récent fonctionne.
twofactor-no-code-spam = Cherchez un e-mail de { $service } dans votre dossier de courrier indésirable.
twofactor-no-code-voice = Pas de réseau, ou le SMS n’arrive pas ?
twofactor-no-code-voice-link = Recevoir plutôt un appel
twofactor-no-code-other = Essayez l’une des autres méthodes ci-dessus.
twofactor-no-code-yours = Vérifiez que { $destination } est toujours à vous. Sinon, voyez ci-dessous.
twofactor-cant = Je ne peux utiliser aucune de ces méthodes
twofactor-cant-text = Si vous avez perdu votre téléphone sans code de secours, ou n’avez plus accès à cette adresse e-mail, nous ne pouvons envoyer de code nulle part ailleurs.
twofactor-cant-contact = Contactez { $contact } : on pourra y vérifier votre identité et réinitialiser la validation en deux étapes de votre compte.
twofactor-cant-none = Demandez à la personne ou à l’équipe qui vous a donné l’accès : elle pourra vérifier votre identité et réinitialiser la validation en deux étapes de votre compte.
twofactor-more-help = Plus d’aide
twofactor-sign-out = Se déconnecter
method-totp = Utiliser votre application d’authentification
method-email = Recevoir un code par e-mail
method-sms = Recevoir un code par SMS
method-voice = Recevoir un code par appel
method-backup = Utiliser un code de secours
twofactor-enter-code = Saisissez le code.
twofactor-wrong-code = Ce code est incorrect. Vérifiez-le et réessayez, ou utilisez une autre méthode.
twofactor-wrong-totp = Ce code est incorrect. Vérifiez que l’heure de votre téléphone est réglée automatiquement, et saisissez le code que l’application affiche maintenant.
twofactor-used = Ce code a déjà été utilisé. Attendez le suivant.
twofactor-too-many = Trop de codes erronés : ce code ne fonctionne plus. Demandez-en un nouveau, ou utilisez une autre méthode.
twofactor-ask-first = Demandez d’abord un code, ou un nouveau : le dernier a expiré ou a été utilisé.
twofactor-not-sent = Le code n’a pas pu être envoyé pour l’instant. Réessayez dans un instant, ou utilisez une autre méthode.
twofactor-locked = Trop de tentatives échouées. Pour votre sécurité, attendez un moment et réessayez plus tard.

## Mise en place de l’application d’authentification
setup-on = La validation en deux étapes est activée. Conservez ces codes de secours en lieu sûr : chacun permet de vous connecter une fois si vous perdez votre téléphone. Ils ne sont affichés que maintenant.
setup-continue = Continuer
setup-enrolled = La validation en deux étapes avec une application d’authentification est activée pour { $account }.
setup-codes-left = { $count ->
        [one] Il vous reste { $count } code de secours inutilisé.
       *[other] Il vous reste { $count } codes de secours inutilisés.
    }
setup-confirm-password = Votre mot de passe (pour confirmer que c’est vous)
setup-regenerate = Obtenir de nouveaux codes de secours
setup-remove = Désactiver la validation en deux étapes
setup-required-on = Votre organisation exige la validation en deux étapes : elle ne peut pas être désactivée.
setup-replace = Configurer une autre application d’authentification
setup-required = Votre organisation exige la validation en deux étapes. Configurez-la maintenant pour continuer.
setup-step-install = Installez une application d’authentification sur votre téléphone.
setup-step-scan = Scannez ce code QR avec l’application, ou saisissez la clé ci-dessous.
setup-step-code = Saisissez le code à { $digits } chiffres que l’application affiche alors.
setup-qr-alt = Code QR pour votre application d’authentification. Si vous ne pouvez pas le scanner, saisissez la clé ci-dessous.
setup-key = Clé :
setup-link = Ou ouvrez ce lien sur le téléphone :
setup-app-code = Code de l’application
setup-turn-on = Activer la validation en deux étapes

## Page d’aide
help-title = Un problème pour vous connecter ?
help-intro = La plupart des problèmes de connexion se règlent vite. Trouvez le vôtre ci-dessous.
help-toc = Sur cette page
help-identifier = Quel nom, quelle adresse e-mail ou quel numéro utiliser
help-identifier-1 = Vous pouvez vous connecter avec votre nom d’utilisateur, votre adresse e-mail ou votre numéro de mobile : celui que votre compte possède.
help-identifier-2 = Une adresse e-mail ressemble à name@example.com. Si vous en avez plusieurs, utilisez celle avec laquelle ce compte a été créé. Si votre navigateur la remplit pour vous, vérifiez qu’il a choisi la bonne.
help-identifier-3 = Un numéro de mobile doit comporter l’indicatif du pays, commençant par +, par exemple { $example }. Les espaces, tirets et parenthèses n’ont pas d’importance.
help-identifier-region = Les numéros de la région { $region } (+{ $code }) fonctionnent aussi sans indicatif.
help-identifier-4 = Si vous avez peut-être deux comptes (par exemple un avec votre e-mail professionnel, un avec votre e-mail personnel), déconnectez-vous et essayez l’autre.
help-password = Votre mot de passe n’est pas accepté
help-password-1 = Les mots de passe tiennent compte des majuscules : « Motdepasse » et « motdepasse » sont deux mots de passe différents. Vérifiez que la touche Verr. Maj est désactivée ; sur ce site, un avertissement s’affiche quand elle est activée.
help-password-2 = Si votre mot de passe contient des chiffres, vérifiez la touche Verr. Num quand vous utilisez le pavé numérique.
help-password-3 = Tapez vous-même le mot de passe au lieu de laisser le navigateur en remplir un ancien.
help-password-4 = Toujours pas ? Réinitialisez votre mot de passe : nous envoyons un code à l’adresse e-mail de votre compte. Cela peut prendre quelques minutes ; si rien n’arrive, regardez dans votre dossier de courrier indésirable. Le code est valable { $minutes } minutes.
help-reset-link = Réinitialiser votre mot de passe
help-cookies = La page revient sans cesse, ou un formulaire a expiré
help-cookies-1 = La connexion a besoin des cookies de ce site. Autorisez-les dans les réglages de votre navigateur, ou effacez les cookies et le cache de ce site (l’aide de votre navigateur explique comment), puis rechargez la page.
help-cookies-2 = « Ce formulaire a expiré » signifie que la page est restée ouverte longtemps ou a été ouverte dans un autre onglet : rechargez-la et réessayez.
help-cookies-3 = « Votre session a pris fin » signifie que vous étiez absent un moment ou vous êtes déconnecté ailleurs : reconnectez-vous, et vous reviendrez là où vous étiez.
help-locked = Votre compte est bloqué
help-locked-intro = Après { $captcha } tentatives échouées, nous vous demandons de prouver que vous êtes une personne (recopier les caractères d’une image, ou écouter sept chiffres à la place). Après beaucoup d’autres, le compte est bloqué un moment (d’abord { $minutes } minutes, plus longtemps si cela se reproduit) pour empêcher quelqu’un de deviner votre mot de passe.
help-locked-1 = Attendez et réessayez plus tard, ou réinitialisez votre mot de passe : une réinitialisation débloque aussi le compte.
help-locked-2 = Nous envoyons un e-mail au titulaire d’un compte bloqué. Cet e-mail vient de { $service }, indique quand et depuis quelle adresse réseau les tentatives ont eu lieu, et contient un lien de déblocage qui mène à l’adresse de ce site. Il ne demande jamais votre mot de passe. Si un e-mail vous demande votre mot de passe, ou si son lien mène ailleurs, il ne vient pas de nous : ne cliquez pas.
help-locked-3 = Si ces tentatives ne viennent pas de vous, quelqu’un connaît peut-être votre identifiant : réinitialisez votre mot de passe et activez la validation en deux étapes.
help-two-step = Problèmes avec le code de validation en deux étapes
help-two-step-1 = Les codes par e-mail ou par SMS peuvent mettre une minute. Après la courte attente indiquée sur la page, vous pouvez en demander un nouveau ; seul le plus récent fonctionne. Pour les codes par e-mail, regardez aussi dans le courrier indésirable.
help-two-step-2 = Pas de SMS ? Choisissez « Utiliser une autre méthode » et faites-vous lire le code par un appel, envoyer par e-mail, ou utilisez votre application d’authentification.
help-two-step-3 = Les codes des applications d’authentification changent toutes les 30 secondes. S’ils ne sont jamais acceptés, vérifiez que l’heure de votre téléphone est réglée automatiquement.
help-two-step-4 = Téléphone perdu ? Utilisez l’un des codes de secours enregistrés lors de la mise en place de la validation en deux étapes. Chaque code ne sert qu’une fois.
help-lost = Vous n’avez plus accès à votre e-mail ou à votre téléphone
help-lost-1 = Nous ne pouvons envoyer des codes qu’à l’adresse e-mail et au numéro de téléphone de votre compte : nous ne pouvons donc pas réinitialiser le mot de passe ni envoyer de code ailleurs. Contactez les personnes ci-dessous : elles pourront vérifier votre identité et changer l’adresse e-mail ou le numéro de votre compte, ou désactiver pour vous la validation en deux étapes.
help-errors = Pages d’erreur
help-errors-404 = Page introuvable (404) : vérifiez l’adresse, ou recommencez depuis la page d’accueil.
help-errors-429 = Trop de tentatives (429) : attendez le temps indiqué, puis réessayez.
help-errors-5xx = Ne répond pas, indisponible ou trop lent (502, 503, 504) : l’application derrière cette connexion redémarre ou est surchargée. Cela passe en général en quelques minutes ; vous restez connecté.
help-contact = Qui contacter
help-contact-text = Contactez { $contact }. Dites ce que vous essayiez de faire, ce que la page affichait, et quand. N’envoyez jamais votre mot de passe : personne ne vous le demandera.
help-contact-none = Adressez-vous à la personne ou à l’équipe qui vous a donné accès à ce site. Dites ce que vous essayiez de faire, ce que la page affichait, et quand. N’envoyez jamais votre mot de passe : personne ne vous le demandera.
help-back = Retour à la connexion

## Messages envoyés par e-mail, SMS et appel (texte brut)
msg-hello = Bonjour { $name },
msg-code-subject = Votre code de connexion { $service }
msg-code-email = { $code } est votre code de connexion { $service }. Il expire dans { $minutes ->
        [one] { $minutes } minute.
       *[other] { $minutes } minutes.
    }
msg-code-email-warning = Ne le communiquez à personne : nous ne vous le demanderons jamais. Si vous n’avez pas essayé de vous connecter, quelqu’un connaît peut-être votre mot de passe : changez-le.
msg-code-sms = { $code } est votre code de connexion { $service }. Il expire dans { $minutes } min. Ne le partagez pas.
msg-code-voice = Bonjour. Votre code de connexion { $service } est : { $spoken }. Je répète, votre code est : { $spoken }. Il expire dans { $minutes } minutes. Au revoir.
msg-backup-subject = Un code de secours a servi à se connecter à { $service }
msg-backup-used = un code de secours vient d’être utilisé pour vous connecter à votre compte (depuis { $client }). { $left ->
        [one] Il vous reste { $left } code de secours inutilisé.
       *[other] Il vous reste { $left } codes de secours inutilisés.
    }
msg-backup-running-out = Il vous reste peu de codes de secours : obtenez-en de nouveaux sur la page de validation en deux étapes ({ $url }).
msg-backup-not-you = Si ce n’était pas vous, changez votre mot de passe et reconfigurez la validation en deux étapes.
msg-lock-subject = Votre compte { $service } a été bloqué
msg-lock-text = votre compte a été bloqué après plusieurs tentatives de connexion échouées (la dernière depuis { $client }, à { $time }). Il se débloquera tout seul dans environ { $minutes ->
        [one] { $minutes } minute.
       *[other] { $minutes } minutes.
    }
msg-lock-unlock = Si c’était vous, vous pouvez le débloquer maintenant avec ce lien (il ne fonctionne qu’une fois) :
msg-lock-not-you = Si ce n’était pas vous, quelqu’un essaie peut-être de deviner votre mot de passe : changez-le et activez la validation en deux étapes.
msg-lock-genuine = Nous ne demandons jamais votre mot de passe par e-mail. Ce message n’a aucune pièce jointe et seulement le lien ci-dessus, qui mène à l’adresse où vous vous connectez.
msg-reset-subject = Votre code de réinitialisation du mot de passe { $service }
msg-reset-code = Votre code pour réinitialiser votre mot de passe { $service } est { $code }. Il expire dans { $minutes ->
        [one] { $minutes } minute.
       *[other] { $minutes } minutes.
    }
msg-reset-not-you = Si vous n’avez pas demandé à réinitialiser votre mot de passe, ignorez ce message : rien ne change.

## Page du compte
account-title = Votre compte
account-profile = Profil
account-name = Nom
account-user = Nom d’utilisateur
account-email = E-mail
account-phone = Numéro de mobile
account-profile-hint = Pour modifier ces informations, adressez-vous à la personne qui gère vos accès.
account-sessions = Où vous êtes connecté
account-unknown-browser = Navigateur inconnu
account-this-browser = ce navigateur
account-session-line = Depuis { $client } ; connecté le { $created } ; vu pour la dernière fois le { $seen }.
account-sign-out-one = Déconnecter
account-sign-out-one-label = Déconnecter { $agent } à { $client }
account-sign-out-others = Déconnecter tous les autres navigateurs
account-sign-out-all = Se déconnecter partout
account-browsers = Navigateurs qui sautent la deuxième étape
account-remembered = Ce navigateur ne demande pas la deuxième étape (jusqu’à { $days } jours après votre choix).
account-not-remembered = Ce navigateur demande la deuxième étape.
account-forget-browser = Oublier ce navigateur
account-forget-all = Oublier tous les navigateurs
account-factors = Validation en deux étapes
account-app-on = Application d’authentification : activée.
account-app-off = Application d’authentification : non configurée.
account-app-manage = Gérer
account-app-set-up = La configurer
account-phone-codes = Codes par SMS ou par appel au { $phone }.
account-email-codes = Codes par e-mail à { $email }.
account-events = Activité récente
account-event-when = Quand
account-event-what = Quoi
account-event-from = Depuis
account-no-events = Aucune activité récente à afficher.
account-signed-out-one = Ce navigateur est déconnecté.
account-signed-out-others = Tous les autres navigateurs sont déconnectés.
account-browser-forgotten = Ce navigateur demandera de nouveau la deuxième étape.
account-browsers-forgotten = Plus aucun navigateur ne saute la deuxième étape.
account-unknown-action = Action inconnue.
account-reauth = Saisissez votre mot de passe actuel pour confirmer que c’est vous.
account-change-signed_out_one = Un navigateur a été déconnecté de votre compte.
account-change-signed_out_others = Tous les autres navigateurs ont été déconnectés de votre compte.
account-change-signed_out_everywhere = Votre compte a été déconnecté partout.
account-change-browser_forgotten = Un navigateur demandera de nouveau la deuxième étape.
account-change-browsers_forgotten = Plus aucun navigateur ne saute la deuxième étape de votre compte.
msg-account-subject = Votre compte { $service } a été modifié
msg-account-text = cette modification vient d’être faite sur votre compte (depuis { $client }, à { $time }) :
msg-account-not-you = Si ce n’était pas vous, changez votre mot de passe maintenant et déconnectez-vous partout.

## Statuts de compte
status-closed = Compte fermé
status-closed-text = Ce compte est fermé et ne peut plus se connecter. Si vous pensez qu’il s’agit d’une erreur, contactez votre administrateur.
status-suspended = Compte suspendu
status-accounts-unavailable = Les comptes sont injoignables pour le moment. Rien n’a été modifié. Veuillez réessayer dans quelques minutes.

## Événements du compte
event-signin_ok = Connexion
event-password_ok = Mot de passe saisi (deuxième étape ensuite)
event-signin_failed = Échec de connexion
event-signin_refused = Connexion refusée (compte inactif)
event-2fa_failed = Code de deuxième étape erroné
event-password_changed = Mot de passe modifié
event-factors_changed = Validation en deux étapes modifiée
event-status_changed = Statut du compte modifié
event-created = Compte créé
event-account_changed = Paramètres du compte modifiés

## Textes avec des nombres venant du code
status-too-many-text = Trop de tentatives de connexion depuis votre réseau. Réessayez dans { $secs } secondes.
policy-too-short = Choisissez un mot de passe d’au moins { $min } caractères.
policy-too-short-why = Votre mot de passe est la seule protection de ce compte ; avec la validation en deux étapes activée, un mot de passe plus court suffit.
policy-words-tip = Plusieurs mots sans rapport entre eux font un long mot de passe facile à retenir ; les espaces sont autorisés.
policy-guessable = Ce mot de passe serait facile à deviner : il est courant ou suit un schéma connu. Choisissez quelques mots sans rapport entre eux, ou une phrase à laquelle vous seul penseriez ; pas besoin de symboles ni de chiffres.
