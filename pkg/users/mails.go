package users

import (
	"html"
	"time"

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

// emailChangedNotice tells the old address that the change was confirmed,
// when, and whom to ask if it was not the account's owner.
func emailChangedNotice(to, newEmail string, at time.Time, support string) mail.Message {
	text := "The email of your account was changed to " + newEmail + " on " +
		at.UTC().Format("2 January 2006 at 15:04 UTC") + ". This address no longer signs in, and " +
		"links mailed to it before no longer work."
	if support != "" {
		text += " If you did not make this change, write to " + support + " at once."
	} else {
		text += " If you did not make this change, reply to this email at once."
	}
	return mail.Message{To: to, Subject: "Your account's email was changed", Text: text,
		HTML: "<p>" + html.EscapeString(text) + "</p>"}
}

// DecoyRecipient is SES's mailbox simulator: a message to it is accepted
// like any other and delivered nowhere. Requests with nothing to mail send
// a decoy there, so they take as long as those that mail someone.
const DecoyRecipient = "success@simulator.amazonses.com"

func decoyMail(link string) mail.Message {
	return codeMail(DecoyRecipient, "Reset your password",
		"Someone asked to reset the password of your account. Open this link to choose a new one:", link,
		"The link works once and expires in 1 hour. If it was not you, ignore this email; your password is unchanged.")
}
