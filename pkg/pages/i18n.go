package pages

import (
	"sort"
	"strconv"
	"strings"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// messages holds every text of the pages, per language. Keys missing from
// a language fall back to English; a key missing there is shown as it is
// (the service's own sentences are keys too, so the German catalogue can
// translate them).
var messages = map[string]map[string]string{
	"en": {
		"skip":              "Skip to the form",
		"title.login":       "Log in",
		"title.signup":      "Create an account",
		"title.activate":    "Activate your account",
		"title.resend":      "Send a new activation link",
		"title.forgot":      "Forgot your password?",
		"title.reset":       "Choose a new password",
		"title.set":         "Choose your password",
		"title.confirm":     "Confirm your new email address",
		"title.me":          "My account",
		"title.delete":      "Delete your account",
		"title.error":       "Something went wrong",
		"title.notfound":    "Page not found",
		"title.csrf":        "This form has expired",
		"field.login":       "Email or username",
		"field.email":       "Email",
		"field.new_email":   "New email address",
		"field.password":    "Password",
		"field.signup_pw":   "Password you chose at sign-up",
		"field.current":     "Current password",
		"field.new":         "New password",
		"field.new2":        "New password, again",
		"field.first_name":  "First name",
		"field.last_name":   "Last name",
		"field.job_title":   "Job title",
		"field.org":         "Organization",
		"field.phone":       "Phone number",
		"field.language":    "Language",
		"field.confirm_del": "Yes, delete my account and everything in it",
		"lang.en":           "English",
		"lang.de":           "Deutsch",
		"rules":             "At least 8 characters, not a commonly used password, and not your email or username.",
		"btn.login":         "Log in",
		"btn.signup":        "Create account",
		"btn.activate":      "Activate",
		"btn.resend":        "Send the link",
		"btn.forgot":        "Send a reset link",
		"btn.reset":         "Save the new password",
		"btn.confirm":       "Confirm the new address",
		"btn.save":          "Save",
		"btn.change_pw":     "Change password",
		"btn.change_email":  "Send a confirmation link",
		"btn.cancel_email":  "Cancel the change",
		"btn.logout":        "Log out",
		"btn.delete":        "Delete my account",
		"link.signup":       "No account yet? Create one",
		"link.login":        "Log in",
		"link.forgot":       "Forgot your password?",
		"link.resend":       "Did not get the activation mail?",
		"link.me":           "Back to my account",
		"link.delete":       "Delete my account…",
		"link.cancel":       "Cancel",
		"activate.intro":    "You are activating the account of",
		"activate.prove":    "To finish, enter the password you chose when you signed up.",
		"reset.intro":       "You are choosing a new password for",
		"set.intro":         "You are choosing the first password of your account",
		"reset.revoke":      "Saving it ends every session that is logged in with the old one.",
		"confirm.intro":     "The new email address of your account will be",
		"confirm.current":   "Until you confirm, it stays",
		"confirm.prove":     "To confirm, enter the password of the account: the link alone proves only the new mailbox.",
		"code.bad":          "This link is invalid, already used or expired.",
		"code.bad_activate": "If your account is not activated yet, ask for a new link below. If it is, just log in.",
		"code.bad_reset":    "Ask for a new reset link below.",
		"code.bad_confirm":  "The change may also have been cancelled. Log in and ask for a new change if you still want it.",
		"me.signed_in_as":   "Logged in as",
		"me.profile":        "Profile",
		"me.password":       "Password",
		"me.email":          "Email address",
		"me.pending":        "Waiting for confirmation: a link was mailed to",
		"me.session":        "Session",
		"me.danger":         "Delete the account",
		"delete.warn":       "This deletes your account, your profile and your sessions at once. It cannot be undone.",
		"forgot.intro":      "Enter the address of your account and we will mail you a link to choose a new password.",
		"resend.intro":      "Enter the address you signed up with and we will mail you a new activation link.",
		"csrf.body":         "For your safety this form works only from the page it came with. Go back, reload the page and try again.",
		"error.body":        "Please try again in a moment.",
		"notfound.body":     "There is no page at this address.",
		"support":           "Need help? Write to",
		"errors.summary":    "Please correct the following:",
		"optional":          "optional",
		"pw.mismatch":       "The two passwords differ.",
		"stale":             "Your account changed in another window meanwhile; the form now shows the current values.",
		"retry_in":          "Try again in %s seconds.",
		"m.signed_up":       "Almost done: we mailed you a link to activate your account. Open it to finish.",
		"m.activated":       "Your account is active. You can log in now.",
		"m.sent":            "If an account exists for that address, a mail is on its way.",
		"m.resent":          "If that address has an account waiting for activation, a new link is on its way.",
		"m.password_reset":  "Your new password is saved and every old session has ended. Log in with the new password.",
		"m.email_changed":   "Your email address has changed. Every session has ended: log in with the new address.",
		"m.logged_out":      "You are logged out.",
		"m.deleted":         "Your account is deleted.",
		"m.saved":           "Your profile is saved.",
		"m.password_saved":  "Your password is changed.",
		"m.email_requested": "We mailed a confirmation link to the new address. The change happens when you open it.",
		"m.email_cancelled": "The email change is cancelled; its link no longer works.",
		"m.login_first":     "Please log in first.",
	},
	"de": {
		"skip":              "Zum Formular springen",
		"title.login":       "Anmelden",
		"title.signup":      "Konto anlegen",
		"title.activate":    "Konto aktivieren",
		"title.resend":      "Neuen Aktivierungslink senden",
		"title.forgot":      "Passwort vergessen?",
		"title.reset":       "Neues Passwort wählen",
		"title.set":         "Passwort wählen",
		"title.confirm":     "Neue E-Mail-Adresse bestätigen",
		"title.me":          "Mein Konto",
		"title.delete":      "Konto löschen",
		"title.error":       "Etwas ist schiefgegangen",
		"title.notfound":    "Seite nicht gefunden",
		"title.csrf":        "Dieses Formular ist abgelaufen",
		"field.login":       "E-Mail oder Benutzername",
		"field.email":       "E-Mail",
		"field.new_email":   "Neue E-Mail-Adresse",
		"field.password":    "Passwort",
		"field.signup_pw":   "Bei der Registrierung gewähltes Passwort",
		"field.current":     "Aktuelles Passwort",
		"field.new":         "Neues Passwort",
		"field.new2":        "Neues Passwort wiederholen",
		"field.first_name":  "Vorname",
		"field.last_name":   "Nachname",
		"field.job_title":   "Position",
		"field.org":         "Organisation",
		"field.phone":       "Telefonnummer",
		"field.language":    "Sprache",
		"field.confirm_del": "Ja, mein Konto und alles darin löschen",
		"rules":             "Mindestens 8 Zeichen, kein häufig verwendetes Passwort und weder Ihre E-Mail-Adresse noch Ihr Benutzername.",
		"btn.login":         "Anmelden",
		"btn.signup":        "Konto anlegen",
		"btn.activate":      "Aktivieren",
		"btn.resend":        "Link senden",
		"btn.forgot":        "Link zum Zurücksetzen senden",
		"btn.reset":         "Neues Passwort speichern",
		"btn.confirm":       "Neue Adresse bestätigen",
		"btn.save":          "Speichern",
		"btn.change_pw":     "Passwort ändern",
		"btn.change_email":  "Bestätigungslink senden",
		"btn.cancel_email":  "Änderung abbrechen",
		"btn.logout":        "Abmelden",
		"btn.delete":        "Mein Konto löschen",
		"link.signup":       "Noch kein Konto? Jetzt anlegen",
		"link.login":        "Anmelden",
		"link.forgot":       "Passwort vergessen?",
		"link.resend":       "Keine Aktivierungs-E-Mail erhalten?",
		"link.me":           "Zurück zu meinem Konto",
		"link.delete":       "Mein Konto löschen …",
		"link.cancel":       "Abbrechen",
		"activate.intro":    "Sie aktivieren das Konto von",
		"activate.prove":    "Geben Sie zum Abschluss das Passwort ein, das Sie bei der Registrierung gewählt haben.",
		"reset.intro":       "Sie wählen ein neues Passwort für",
		"set.intro":         "Sie wählen das erste Passwort Ihres Kontos",
		"reset.revoke":      "Beim Speichern enden alle Sitzungen, die mit dem alten Passwort angemeldet sind.",
		"confirm.intro":     "Die neue E-Mail-Adresse Ihres Kontos wird",
		"confirm.current":   "Bis zur Bestätigung bleibt sie",
		"confirm.prove":     "Geben Sie zur Bestätigung das Passwort des Kontos ein: Der Link allein beweist nur das neue Postfach.",
		"code.bad":          "Dieser Link ist ungültig, schon benutzt oder abgelaufen.",
		"code.bad_activate": "Ist Ihr Konto noch nicht aktiviert, fordern Sie unten einen neuen Link an. Ist es aktiviert, melden Sie sich einfach an.",
		"code.bad_reset":    "Fordern Sie unten einen neuen Link an.",
		"code.bad_confirm":  "Vielleicht wurde die Änderung auch abgebrochen. Melden Sie sich an und fordern Sie sie neu an, wenn Sie sie noch möchten.",
		"me.signed_in_as":   "Angemeldet als",
		"me.profile":        "Profil",
		"me.password":       "Passwort",
		"me.email":          "E-Mail-Adresse",
		"me.pending":        "Wartet auf Bestätigung: ein Link ging an",
		"me.session":        "Sitzung",
		"me.danger":         "Konto löschen",
		"delete.warn":       "Damit werden Ihr Konto, Ihr Profil und Ihre Sitzungen sofort gelöscht. Das lässt sich nicht rückgängig machen.",
		"forgot.intro":      "Geben Sie die Adresse Ihres Kontos ein; wir senden Ihnen einen Link, um ein neues Passwort zu wählen.",
		"resend.intro":      "Geben Sie die Adresse ein, mit der Sie sich registriert haben; wir senden Ihnen einen neuen Aktivierungslink.",
		"csrf.body":         "Zu Ihrer Sicherheit funktioniert dieses Formular nur von seiner eigenen Seite aus. Gehen Sie zurück, laden Sie die Seite neu und versuchen Sie es noch einmal.",
		"error.body":        "Bitte versuchen Sie es gleich noch einmal.",
		"notfound.body":     "Unter dieser Adresse gibt es keine Seite.",
		"support":           "Brauchen Sie Hilfe? Schreiben Sie an",
		"errors.summary":    "Bitte korrigieren Sie Folgendes:",
		"optional":          "optional",
		"pw.mismatch":       "Die beiden Passwörter stimmen nicht überein.",
		"stale":             "Ihr Konto wurde inzwischen in einem anderen Fenster geändert; das Formular zeigt jetzt die aktuellen Werte.",
		"retry_in":          "Versuchen Sie es in %s Sekunden noch einmal.",
		"m.signed_up":       "Fast geschafft: Wir haben Ihnen einen Link zur Aktivierung Ihres Kontos gesendet. Öffnen Sie ihn, um abzuschließen.",
		"m.activated":       "Ihr Konto ist aktiv. Sie können sich jetzt anmelden.",
		"m.sent":            "Wenn es für diese Adresse ein Konto gibt, ist eine E-Mail unterwegs.",
		"m.resent":          "Wenn zu dieser Adresse ein Konto auf die Aktivierung wartet, ist ein neuer Link unterwegs.",
		"m.password_reset":  "Ihr neues Passwort ist gespeichert, und alle alten Sitzungen sind beendet. Melden Sie sich mit dem neuen Passwort an.",
		"m.email_changed":   "Ihre E-Mail-Adresse wurde geändert. Alle Sitzungen sind beendet: Melden Sie sich mit der neuen Adresse an.",
		"m.logged_out":      "Sie sind abgemeldet.",
		"m.deleted":         "Ihr Konto ist gelöscht.",
		"m.saved":           "Ihr Profil ist gespeichert.",
		"m.password_saved":  "Ihr Passwort wurde geändert.",
		"m.email_requested": "Wir haben einen Bestätigungslink an die neue Adresse gesendet. Die Änderung gilt, sobald Sie ihn öffnen.",
		"m.email_cancelled": "Die Änderung der E-Mail-Adresse ist abgebrochen; ihr Link funktioniert nicht mehr.",
		"m.login_first":     "Bitte melden Sie sich zuerst an.",
		// The service's own sentences.
		"This field is required.":                                                                         "Dieses Feld ist erforderlich.",
		"The password is wrong.":                                                                          "Das Passwort ist falsch.",
		"Enter a valid email address.":                                                                    "Geben Sie eine gültige E-Mail-Adresse ein.",
		"Enter a valid email address of at most 254 characters.":                                          "Geben Sie eine gültige E-Mail-Adresse mit höchstens 254 Zeichen ein.",
		"This password is too short. It must contain at least 8 characters.":                              "Dieses Passwort ist zu kurz. Es muss mindestens 8 Zeichen enthalten.",
		"This password is too long. It must contain at most 256 characters.":                              "Dieses Passwort ist zu lang. Es darf höchstens 256 Zeichen enthalten.",
		"This password is too common.":                                                                    "Dieses Passwort wird zu häufig verwendet.",
		"The password is too similar to the email or username.":                                           "Das Passwort ähnelt zu sehr der E-Mail-Adresse oder dem Benutzernamen.",
		"The current password is wrong.":                                                                  "Das aktuelle Passwort ist falsch.",
		"This is already the account's email.":                                                            "Das ist bereits die E-Mail-Adresse des Kontos.",
		"This code is invalid, already used or expired.":                                                  "Dieser Link ist ungültig, schon benutzt oder abgelaufen.",
		"Unable to log in with the provided credentials.":                                                 "Mit diesen Angaben ist keine Anmeldung möglich.",
		"This account is disabled.":                                                                       "Dieses Konto ist gesperrt.",
		"Too many failed attempts; try again later.":                                                      "Zu viele Fehlversuche; versuchen Sie es später noch einmal.",
		"Too many requests from your address; try again later.":                                           "Zu viele Anfragen von Ihrer Adresse; versuchen Sie es später noch einmal.",
		"Your email cannot serve as a username; choose one.":                                              "Ihre E-Mail-Adresse taugt nicht als Benutzername; wählen Sie einen.",
		"Some fields are invalid.":                                                                        "Einige Felder sind ungültig.",
		"Something went wrong on our side; it has been logged.":                                           "Bei uns ist etwas schiefgegangen; es wurde protokolliert.",
		"The service is busy; please retry shortly.":                                                      "Der Dienst ist ausgelastet; bitte versuchen Sie es gleich noch einmal.",
		"This field is required: the password chosen at sign-up.":                                         "Dieses Feld ist erforderlich: das bei der Registrierung gewählte Passwort.",
		"This is not the password chosen at sign-up.":                                                     "Das ist nicht das bei der Registrierung gewählte Passwort.",
		"This password is too long.":                                                                      "Dieses Passwort ist zu lang.",
		"The account's credentials changed; log in again.":                                                "Die Zugangsdaten des Kontos haben sich geändert; melden Sie sich erneut an.",
		"Too many mails to this address for now; try again later.":                                        "Im Moment zu viele E-Mails an diese Adresse; versuchen Sie es später noch einmal.",
		"A username that is an email address must be the account's own email.":                            "Ein Benutzername, der eine E-Mail-Adresse ist, muss die eigene E-Mail-Adresse des Kontos sein.",
		httpapi.DuplicateMessage:                                                                          "Diese E-Mail-Adresse oder dieser Benutzername ist schon vergeben. Versuchen Sie eine andere?",
		"This account is not activated yet: open the link in the activation email, or ask for a new one.": "Dieses Konto ist noch nicht aktiviert: Öffnen Sie den Link in der Aktivierungs-E-Mail oder fordern Sie einen neuen an.",
	},
}

// translate returns key in lang, falling back to English, then to the key.
func translate(lang, key string) string {
	if s, ok := messages[lang][key]; ok {
		return s
	}
	if s, ok := messages["en"][key]; ok {
		return s
	}
	return key
}

// negotiate picks the page language: the user's preferred_language when
// it is one the pages speak, else the best of Accept-Language, else English.
func negotiate(preferred, acceptLanguage string) string {
	if l, ok := users.Language(preferred); ok {
		return l
	}
	type choice struct {
		lang string
		q    float64
		i    int
	}
	var cs []choice
	for i, part := range strings.Split(acceptLanguage, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			q = f
		}
		if l, ok := users.Language(tag); ok && q > 0 {
			cs = append(cs, choice{l, q, i})
		}
	}
	sort.SliceStable(cs, func(a, b int) bool { return cs[a].q > cs[b].q })
	if len(cs) > 0 {
		return cs[0].lang
	}
	return users.Languages[0]
}
