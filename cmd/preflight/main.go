// Command preflight checks, before and after a deploy, that the stack can
// send mail: its sender (the SenderEmail parameter of the deployed stack,
// or SENDER) or the sender's domain is a verified SES identity, SES sending
// is enabled, and whether the account is still in the SES sandbox (where
// SES delivers only to verified addresses). It uses the caller's AWS
// credentials and region, and changes nothing.
//
//	make preflight STACK=user-accounts
//	make preflight SENDER='Acme <no-reply@acme.example>'   # before the first deploy
//
// Exit status: 0 ready; 1 the sender is not verified or sending is
// disabled (every mail would be refused); 3 verified, but the account is
// in the sandbox (mail reaches verified addresses only); 2 usage or AWS
// error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
)

// Exit statuses.
const (
	ok         = 0
	notReady   = 1
	failed     = 2
	inSandbox  = 3
	stackParam = "SenderEmail"
)

// SES is the part of the SES v2 client preflight uses.
type SES interface {
	GetEmailIdentity(ctx context.Context, in *sesv2.GetEmailIdentityInput, opts ...func(*sesv2.Options)) (*sesv2.GetEmailIdentityOutput, error)
	GetAccount(ctx context.Context, in *sesv2.GetAccountInput, opts ...func(*sesv2.Options)) (*sesv2.GetAccountOutput, error)
}

// Stacks is the part of the CloudFormation client preflight uses.
type Stacks interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, opts ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	os.Exit(run(ctx, os.Getenv, os.Stdout, nil, nil))
}

// run does the checks; ses and stacks are built from the environment's
// AWS configuration when nil (AWS_ENDPOINT_URL points them at a test
// server).
func run(ctx context.Context, getenv func(string) string, out io.Writer, ses SES, stacks Stacks) int {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	stack, sender := strings.TrimSpace(getenv("STACK")), strings.TrimSpace(getenv("SENDER"))
	if stack == "" && sender == "" {
		say("usage: make preflight STACK=<stack name>   (or SENDER=<address> before the first deploy)")
		return failed
	}
	if ses == nil || stacks == nil {
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			say("preflight: AWS configuration: %v", err)
			return failed
		}
		ses, stacks = sesv2.NewFromConfig(cfg), cloudformation.NewFromConfig(cfg)
		say("Region: %s", cfg.Region)
	}
	if sender == "" {
		var err error
		if sender, err = stackSender(ctx, stacks, stack); err != nil {
			say("preflight: %v", err)
			return failed
		}
		say("Stack %s sends as %s", stack, sender)
	}
	addr := address(sender)
	_, domain, found := strings.Cut(addr, "@")
	if !found || domain == "" {
		say("preflight: %q is not an e-mail address", sender)
		return failed
	}

	status := ok
	verified, err := checkIdentity(ctx, ses, addr, domain, say)
	if err != nil {
		say("preflight: SES: %v", err)
		return failed
	}
	if !verified {
		status = notReady
	}
	acct, err := ses.GetAccount(ctx, &sesv2.GetAccountInput{})
	if err != nil {
		say("preflight: SES GetAccount: %v", err)
		return failed
	}
	if !acct.SendingEnabled {
		say("FAIL  sending is disabled for this account in this region (SES paused it, or it was turned off): no mail goes out.")
		status = notReady
	}
	if acct.ProductionAccessEnabled {
		say("ok    the account is out of the SES sandbox: mail reaches any address")
	} else {
		say("WARN  the account is in the SES sandbox: SES delivers only to verified addresses and at most 200 mails a day.")
		say("      Request production access (README, \"Deploying\"): aws sesv2 put-account-details --production-access-enabled \\")
		say("        --mail-type TRANSACTIONAL --website-url https://your.product.example --use-case-description '...'")
		if status == ok {
			status = inSandbox
		}
	}
	if q := acct.SendQuota; q != nil {
		say("      quota: %.0f mails per 24 h, %.0f per second; %.0f sent in the last 24 h", q.Max24HourSend, q.MaxSendRate, q.SentLast24Hours)
	}
	switch status {
	case ok:
		say("Ready to send mail.")
	case inSandbox:
		say("Mail works for verified recipients only (exit status 3).")
	default:
		say("Mail will be refused until the above is fixed (exit status 1).")
	}
	return status
}

// stackSender reads the deployed stack's SenderEmail parameter.
func stackSender(ctx context.Context, stacks Stacks, stack string) (string, error) {
	out, err := stacks.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil {
		return "", fmt.Errorf("stack %s: %w (before the first deploy, give SENDER=<address>)", stack, err)
	}
	if len(out.Stacks) == 0 {
		return "", fmt.Errorf("stack %s not found", stack)
	}
	for _, p := range out.Stacks[0].Parameters {
		if aws.ToString(p.ParameterKey) == stackParam {
			return aws.ToString(p.ParameterValue), nil
		}
	}
	return "", fmt.Errorf("stack %s has no %s parameter", stack, stackParam)
}

// address is the address of "Name <address>" or of a bare address.
func address(sender string) string {
	if i := strings.LastIndex(sender, "<"); i >= 0 && strings.HasSuffix(sender, ">") {
		return sender[i+1 : len(sender)-1]
	}
	return sender
}

// checkIdentity reports whether SES may send as addr: the address itself or
// its domain is a verified identity.
func checkIdentity(ctx context.Context, ses SES, addr, domain string, say func(string, ...any)) (bool, error) {
	var notes []string
	for _, id := range []string{addr, domain} {
		out, err := ses.GetEmailIdentity(ctx, &sesv2.GetEmailIdentityInput{EmailIdentity: aws.String(id)})
		var nf *sestypes.NotFoundException
		if errors.As(err, &nf) {
			notes = append(notes, fmt.Sprintf("%s is not an SES identity", id))
			continue
		}
		if err != nil {
			return false, fmt.Errorf("GetEmailIdentity %s: %w", id, err)
		}
		if out.VerifiedForSendingStatus || out.VerificationStatus == sestypes.VerificationStatusSuccess {
			say("ok    %s is a verified SES identity (%s): SES may send as %s", id, out.IdentityType, addr)
			return true, nil
		}
		notes = append(notes, fmt.Sprintf("%s is an SES identity, verification %s", id, strings.ToLower(string(out.VerificationStatus))))
	}
	say("FAIL  neither %s nor its domain is verified in SES (%s).", addr, strings.Join(notes, "; "))
	say("      Verify the domain (DNS records, README \"Deploying\"): aws sesv2 create-email-identity --email-identity %s", domain)
	say("      or the address (SES mails it a link):              aws sesv2 create-email-identity --email-identity %s", addr)
	return false, nil
}
