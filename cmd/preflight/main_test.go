package main

import (
	"bytes"
	"context"

	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
)

// startMoto runs moto's server (python3 -m moto.server), a second
// implementation of the SES v2 and CloudFormation APIs, on a free port; the
// test skips when moto is not installed (CI has it: pip install
// 'moto[server]').
func startMoto(t *testing.T) string {
	t.Helper()
	if err := exec.Command("python3", "-c", "import moto.server").Run(); err != nil {
		t.Skip("moto is not installed (python3 -m moto.server): pip install 'moto[server]'")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if res, err := http.Get(endpoint + "/moto-api/"); err == nil {
			res.Body.Close()
			return endpoint
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto did not start: %s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// account stands in for GetAccount, which moto does not implement; the
// identities come from moto.
type account struct {
	*sesv2.Client
	out sesv2.GetAccountOutput
}

func (a account) GetAccount(context.Context, *sesv2.GetAccountInput, ...func(*sesv2.Options)) (*sesv2.GetAccountOutput, error) {
	return &a.out, nil
}

func TestPreflightAgainstMoto(t *testing.T) {
	endpoint := startMoto(t)
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	ses := sesv2.New(sesv2.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(endpoint)})
	cfn := cloudformation.New(cloudformation.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(endpoint)})

	// A verified domain, a verified address at another, and a stack whose
	// sender is a display name at the verified domain.
	for _, id := range []string{"acme.example", "ops@solo.example"} {
		if _, err := ses.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
	}
	tpl := "Parameters:\n  SenderEmail:\n    Type: String\nResources:\n  Nothing:\n    Type: AWS::CloudFormation::WaitConditionHandle\n"
	if _, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String("accounts-test"), TemplateBody: aws.String(tpl),
		Parameters: []cfntypes.Parameter{{ParameterKey: aws.String("SenderEmail"), ParameterValue: aws.String("Acme ID <no-reply@acme.example>")}}}); err != nil {
		t.Fatal(err)
	}

	production := sesv2.GetAccountOutput{ProductionAccessEnabled: true, SendingEnabled: true,
		SendQuota: &sestypes.SendQuota{Max24HourSend: 50000, MaxSendRate: 14}}
	sandbox := sesv2.GetAccountOutput{ProductionAccessEnabled: false, SendingEnabled: true}
	paused := sesv2.GetAccountOutput{ProductionAccessEnabled: true, SendingEnabled: false}
	for _, c := range []struct {
		desc  string
		env   map[string]string
		acct  sesv2.GetAccountOutput
		want  int
		lines []string
	}{
		{"the stack's sender at a verified domain, out of the sandbox, is ready",
			map[string]string{"STACK": "accounts-test"}, production, ok,
			[]string{"Stack accounts-test sends as Acme ID <no-reply@acme.example>", "ok    acme.example is a verified SES identity (DOMAIN)", "Ready to send mail."}},
		{"a verified address is ready",
			map[string]string{"SENDER": "ops@solo.example"}, production, ok,
			[]string{"ok    ops@solo.example is a verified SES identity (EMAIL_ADDRESS)"}},
		{"another address at a domain with only one address verified is refused",
			map[string]string{"SENDER": "Solo <no-reply@solo.example>"}, production, notReady,
			[]string{"FAIL  neither no-reply@solo.example nor its domain is verified in SES", "aws sesv2 create-email-identity --email-identity solo.example"}},
		{"an unknown domain is refused",
			map[string]string{"SENDER": "no-reply@nowhere.example"}, production, notReady,
			[]string{"no-reply@nowhere.example is not an SES identity; nowhere.example is not an SES identity"}},
		{"the sandbox is reported with its own status",
			map[string]string{"STACK": "accounts-test"}, sandbox, inSandbox,
			[]string{"WARN  the account is in the SES sandbox", "aws sesv2 put-account-details --production-access-enabled"}},
		{"paused sending is refused",
			map[string]string{"SENDER": "no-reply@acme.example"}, paused, notReady,
			[]string{"FAIL  sending is disabled"}},
		{"a stack that does not exist is an error",
			map[string]string{"STACK": "no-such-stack"}, production, failed,
			[]string{"preflight: stack no-such-stack:", "give SENDER=<address>"}},
		{"no stack and no sender is a usage error",
			map[string]string{}, production, failed, []string{"usage: make preflight STACK="}},
	} {
		t.Run("case="+c.desc, func(t *testing.T) {
			var out bytes.Buffer
			got := run(ctx, func(k string) string { return c.env[k] }, &out, account{ses, c.acct}, cfn)
			if got != c.want {
				t.Errorf("exit status %d, want %d\n%s", got, c.want, out.String())
			}
			for _, l := range c.lines {
				if !strings.Contains(out.String(), l) {
					t.Errorf("output lacks %q:\n%s", l, out.String())
				}
			}
		})
	}
}

func TestAddress(t *testing.T) {
	for in, want := range map[string]string{
		"no-reply@acme.example":           "no-reply@acme.example",
		"Acme ID <no-reply@acme.example>": "no-reply@acme.example",
		"A <b> <c@d.example>":             "c@d.example",
	} {
		if got := address(in); got != want {
			t.Errorf("address(%q) = %q, want %q", in, got, want)
		}
	}
}
