package users

import (
	"html"

	"github.com/example/accounts/pkg/mail"
)

// codeMail builds a message carrying a code: the link in the text part (the
// contract's <base>?code=<code>) and in the HTML part.
func codeMail(to, subject, intro, link, outro string) mail.Message {
	return mail.Message{
		To:      to,
		Subject: subject,
		Text:    intro + "\n\n" + link + "\n\n" + outro + "\n",
		HTML: "<p>" + html.EscapeString(intro) + "</p><p><a href=\"" + html.EscapeString(link) + "\">" +
			html.EscapeString(link) + "</a></p><p>" + html.EscapeString(outro) + "</p>",
	}
}

func activationMail(to, link string) mail.Message {
	return codeMail(to, "Activate your account",
		"Welcome! Open this link to activate your account:", link,
		"The link works once and expires in 24 hours. If you did not sign up, ignore this email.")
}

func resetMail(to, link string) mail.Message {
	return codeMail(to, "Reset your password",
		"Someone asked to reset the password of your account. Open this link to choose a new one:", link,
		"The link works once and expires in 1 hour. If it was not you, ignore this email; your password is unchanged.")
}

func setPasswordMail(to, link string) mail.Message {
	return codeMail(to, "Your new account",
		"An account was created for you. Open this link to choose your password:", link,
		"The link works once and expires in 1 hour; ask for a password reset if it has expired.")
}

func emailChangeMail(to, link string) mail.Message {
	return codeMail(to, "Confirm your new email address",
		"Open this link to confirm this address as the new email of your account:", link,
		"The link works once and expires in 24 hours. If you did not ask for this, ignore this email.")
}

func emailChangeNotice(to, newEmail string) mail.Message {
	text := "Someone asked to change the email of your account to " + newEmail +
		". If it was you, nothing more to do here. If it was not, change your password and cancel the change."
	return mail.Message{To: to, Subject: "Your account's email is about to change", Text: text,
		HTML: "<p>" + html.EscapeString(text) + "</p>"}
}
