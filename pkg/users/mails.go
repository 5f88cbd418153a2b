package users

import (
	"html"
	"strings"
	"time"

	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/mail"
)

// Languages the mails (and the pages) are written in; the first is the
// default.
var Languages = []string{"en", "de"}

// Language picks the supported language for a preferred_language value
// such as "de", "de-AT" or "en_GB"; ok is false when none fits.
func Language(pref string) (lang string, ok bool) {
	p := strings.ToLower(strings.TrimSpace(pref))
	if i := strings.IndexAny(p, "-_"); i >= 0 {
		p = p[:i]
	}
	for _, l := range Languages {
		if p == l {
			return l, true
		}
	}
	return Languages[0], false
}

// mailText is one mail in one language: {product} in any part is the
// product's name, {email} the new address of a notice.
type mailText struct{ subject, intro, outro string }

var mailTexts = map[string]map[string]mailText{
	"en": {
		"activation": {"Activate your account", "Welcome to {product}! Open this link to activate your account:",
			"The link works once and expires in 24 hours. If you did not sign up, ignore this email."},
		"reset": {"Reset your password", "Someone asked to reset the password of your {product} account. Open this link to choose a new one:",
			"The link works once and expires in 1 hour. If it was not you, ignore this email; your password is unchanged."},
		"set_password": {"Your new account", "An account at {product} was created for you. Open this link to choose your password:",
			"The link works once and expires in 1 hour; ask for a password reset if it has expired."},
		"email_change": {"Confirm your new email address", "Open this link to confirm this address as the new email of your {product} account:",
			"The link works once and expires in 24 hours. If you did not ask for this, ignore this email."},
		"email_notice":    {"Your account's email is about to change", "Someone asked to change the email of your {product} account to {email}. If it was you, nothing more to do here. If it was not, change your password and cancel the change.", ""},
		"support":         {"", "Questions? Write to {support}.", ""},
		"email_changed":   {"Your account's email was changed", "The email of your {product} account was changed to {email} on {when}. This address no longer signs in, and links mailed to it before no longer work.", ""},
		"changed_support": {"", "If you did not make this change, write to {support} at once.", ""},
		"changed_reply":   {"", "If you did not make this change, reply to this email at once.", ""},
	},
	"de": {
		"activation": {"Aktivieren Sie Ihr Konto", "Willkommen bei {product}! Öffnen Sie diesen Link, um Ihr Konto zu aktivieren:",
			"Der Link gilt einmal und 24 Stunden lang. Wenn Sie sich nicht registriert haben, ignorieren Sie diese E-Mail."},
		"reset": {"Passwort zurücksetzen", "Jemand möchte das Passwort Ihres {product}-Kontos zurücksetzen. Öffnen Sie diesen Link, um ein neues zu wählen:",
			"Der Link gilt einmal und 1 Stunde lang. Waren Sie es nicht, ignorieren Sie diese E-Mail; Ihr Passwort bleibt unverändert."},
		"set_password": {"Ihr neues Konto", "Für Sie wurde ein Konto bei {product} angelegt. Öffnen Sie diesen Link, um Ihr Passwort zu wählen:",
			"Der Link gilt einmal und 1 Stunde lang; ist er abgelaufen, fordern Sie eine Passwort-Zurücksetzung an."},
		"email_change": {"Bestätigen Sie Ihre neue E-Mail-Adresse", "Öffnen Sie diesen Link, um diese Adresse als neue E-Mail Ihres {product}-Kontos zu bestätigen:",
			"Der Link gilt einmal und 24 Stunden lang. Haben Sie das nicht angefordert, ignorieren Sie diese E-Mail."},
		"email_notice":    {"Die E-Mail-Adresse Ihres Kontos wird geändert", "Jemand möchte die E-Mail-Adresse Ihres {product}-Kontos in {email} ändern. Waren Sie es, ist nichts weiter zu tun. Waren Sie es nicht, ändern Sie Ihr Passwort und brechen Sie die Änderung ab.", ""},
		"support":         {"", "Fragen? Schreiben Sie an {support}.", ""},
		"email_changed":   {"Die E-Mail-Adresse Ihres Kontos wurde geändert", "Die E-Mail-Adresse Ihres {product}-Kontos wurde am {when} in {email} geändert. Mit dieser Adresse ist keine Anmeldung mehr möglich, und früher an sie gesendete Links funktionieren nicht mehr.", ""},
		"changed_support": {"", "Wenn Sie diese Änderung nicht vorgenommen haben, schreiben Sie sofort an {support}.", ""},
		"changed_reply":   {"", "Wenn Sie diese Änderung nicht vorgenommen haben, antworten Sie sofort auf diese E-Mail.", ""},
	},
}

// mails writes the mails of one user: in their language, with the
// product's name and support address.
type mails struct {
	brand   config.Branding
	support string
	lang    string
}

// mailsFor returns the mails for u.
func (s *Service) mailsFor(u *User) mails {
	lang, _ := Language(u.PreferredLanguage)
	return mails{brand: s.cfg.Branding, support: s.cfg.SupportEmail, lang: lang}
}

func (m mails) text(kind, newEmail string) mailText {
	t := mailTexts[m.lang][kind]
	r := strings.NewReplacer("{product}", m.brand.ProductName, "{email}", newEmail, "{support}", m.support)
	return mailText{subject: r.Replace(t.subject), intro: r.Replace(t.intro), outro: r.Replace(t.outro)}
}

// footer is the support line, when a support address is configured.
func (m mails) footer() string {
	if m.support == "" {
		return ""
	}
	return m.text("support", "").intro
}

// codeMail builds a message carrying a code: the link in the text part (the
// contract's <base>?code=<code>) and in the HTML part.
func (m mails) codeMail(to, kind, link string) mail.Message {
	t := m.text(kind, "")
	text := t.intro + "\n\n" + link + "\n\n" + t.outro + "\n"
	body := "<p>" + html.EscapeString(t.intro) + "</p><p><a href=\"" + html.EscapeString(link) + "\">" +
		html.EscapeString(link) + "</a></p><p>" + html.EscapeString(t.outro) + "</p>"
	if f := m.footer(); f != "" {
		text += "\n" + f + "\n"
		body += "<p>" + html.EscapeString(f) + "</p>"
	}
	return mail.Message{To: to, Subject: t.subject + " – " + m.brand.ProductName, Text: text, HTML: body}
}

func (m mails) activation(to, link string) mail.Message { return m.codeMail(to, "activation", link) }

func (m mails) reset(to, link string) mail.Message { return m.codeMail(to, "reset", link) }

func (m mails) setPassword(to, link string) mail.Message { return m.codeMail(to, "set_password", link) }

func (m mails) emailChange(to, link string) mail.Message { return m.codeMail(to, "email_change", link) }

func (m mails) emailChangeNotice(to, newEmail string) mail.Message {
	t := m.text("email_notice", newEmail)
	text, body := t.intro, "<p>"+html.EscapeString(t.intro)+"</p>"
	if f := m.footer(); f != "" {
		text += "\n\n" + f
		body += "<p>" + html.EscapeString(f) + "</p>"
	}
	return mail.Message{To: to, Subject: t.subject + " – " + m.brand.ProductName, Text: text + "\n", HTML: body}
}

// emailChanged tells the old address that the change was confirmed, when,
// and whom to ask if it was not the account's owner.
func (m mails) emailChanged(to, newEmail string, at time.Time) mail.Message {
	t := m.text("email_changed", newEmail)
	text := strings.ReplaceAll(t.intro, "{when}", at.UTC().Format("2006-01-02 15:04 UTC"))
	if m.support != "" {
		text += " " + m.text("changed_support", "").intro
	} else {
		text += " " + m.text("changed_reply", "").intro
	}
	return mail.Message{To: to, Subject: t.subject + " – " + m.brand.ProductName, Text: text + "\n",
		HTML: "<p>" + html.EscapeString(text) + "</p>"}
}

// DecoyRecipient is SES's mailbox simulator: a message to it is accepted
// like any other and delivered nowhere. Requests with nothing to mail send
// a decoy there, so they take as long as those that mail someone.
const DecoyRecipient = "success@simulator.amazonses.com"

// decoyMail is a reset mail in every respect but its recipient.
func (s *Service) decoyMail(link string) mail.Message {
	return mails{brand: s.cfg.Branding, support: s.cfg.SupportEmail, lang: Languages[0]}.reset(DecoyRecipient, link)
}
