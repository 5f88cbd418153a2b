package secret_test

import (
	"encoding/base64"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/example/accounts/pkg/secret"
)

const someUser = "6f1c7a0e-3b9d-4c2a-8e51-0a7d2b9c4f13"

// checkParsed holds a parser's answer to the format: what it accepts is one
// of our strings, canonical, naming the uuid its first 16 bytes carry.
func checkParsed(t *testing.T, s string, b secret.Bearer, err error, random int) {
	t.Helper()
	if err != nil {
		if err != secret.ErrMalformed {
			t.Fatalf("error %v, want ErrMalformed", err)
		}
		return
	}
	if b.Value != s {
		t.Fatalf("Value %q, want the input %q", b.Value, s)
	}
	raw, derr := base64.RawURLEncoding.DecodeString(s)
	if derr != nil || len(raw) != 16+random {
		t.Fatalf("accepted %q: %d bytes, %v", s, len(raw), derr)
	}
	if base64.RawURLEncoding.EncodeToString(raw) != s {
		t.Fatalf("accepted a non-canonical encoding %q", s)
	}
	id, perr := uuid.Parse(b.User)
	if perr != nil || string(id[:]) != string(raw[:16]) || id.String() != b.User {
		t.Fatalf("user %q does not round-trip from %x", b.User, raw[:16])
	}
}

// roundTrip issues a bearer for the uuid made of the first 16 bytes of
// seed and checks that parsing gives that uuid back.
func roundTrip(t *testing.T, seed string, issue func(string) (secret.Bearer, error), parse func(string) (secret.Bearer, error)) {
	t.Helper()
	if len(seed) < 16 {
		return
	}
	id, _ := uuid.FromBytes([]byte(seed[:16]))
	b, err := issue(id.String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := parse(b.Value)
	if err != nil || p.User != id.String() || p.Value != b.Value {
		t.Fatalf("issued %q for %s, parsed %+v, %v", b.Value, id, p, err)
	}
}

func seeds(f *testing.F, random int) {
	tok, _ := secret.NewToken(someUser)
	code, _ := secret.NewCode(someUser)
	for _, s := range []string{
		tok.Value, code.Value, "", "not a token", strings.Repeat("A", 43), strings.Repeat("A", 48), strings.Repeat("A", 64),
		strings.Repeat("_", 48), strings.Repeat("-", 64), strings.Repeat("=", 48), strings.Repeat("A", 47) + "\n",
		strings.Repeat("+", 64), strings.Repeat("/", 48), code.Value[:47] + "!", tok.Value[:63] + ".",
		base64.StdEncoding.EncodeToString(make([]byte, 16+random)),
		base64.URLEncoding.EncodeToString(make([]byte, 16+random)),
	} {
		f.Add(s)
	}
}

func FuzzParseToken(f *testing.F) {
	seeds(f, 32)
	f.Fuzz(func(t *testing.T, s string) {
		b, err := secret.ParseToken(s)
		checkParsed(t, s, b, err, 32)
		roundTrip(t, s, secret.NewToken, secret.ParseToken)
	})
}

func FuzzParseCode(f *testing.F) {
	seeds(f, 20)
	f.Fuzz(func(t *testing.T, s string) {
		b, err := secret.ParseCode(s)
		checkParsed(t, s, b, err, 20)
		roundTrip(t, s, secret.NewCode, secret.ParseCode)
	})
}

func TestBearers(t *testing.T) {
	t.Run("case=tokens carry 256 random bits and codes 160", func(t *testing.T) {
		for _, tc := range []struct {
			issue  func(string) (secret.Bearer, error)
			random int
		}{{secret.NewToken, 32}, {secret.NewCode, 20}} {
			a, err := tc.issue(someUser)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := tc.issue(someUser)
			ra, _ := base64.RawURLEncoding.DecodeString(a.Value)
			rb, _ := base64.RawURLEncoding.DecodeString(b.Value)
			if len(ra) != 16+tc.random || string(ra[16:]) == string(rb[16:]) || a.User != someUser {
				t.Fatalf("%d bytes, repeated random part or wrong user: %q %q", len(ra), a.Value, b.Value)
			}
		}
	})
	t.Run("case=a token is not a code and a code is not a token", func(t *testing.T) {
		tok, _ := secret.NewToken(someUser)
		code, _ := secret.NewCode(someUser)
		if _, err := secret.ParseCode(tok.Value); err == nil {
			t.Error("a token parsed as a code")
		}
		if _, err := secret.ParseToken(code.Value); err == nil {
			t.Error("a code parsed as a token")
		}
	})
}

func TestMatches(t *testing.T) {
	code, _ := secret.NewCode(someUser)
	stored := secret.Hash(code.Value)
	other, _ := secret.NewCode(someUser)
	for _, tc := range []struct {
		desc      string
		presented string
		stored    string
		want      bool
	}{
		{"the right value matches", code.Value, stored, true},
		{"another value of the same user does not", other.Value, stored, false},
		{"the stored hash itself does not", stored, stored, false},
		{"nothing stored matches nothing", "", "", false},
		{"nothing stored does not match a value", code.Value, "", false},
		{"a truncated hash does not match", code.Value, stored[:32], false},
		{"an upper-case hash does not match", code.Value, strings.ToUpper(stored), false},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			if got := secret.Matches(tc.presented, tc.stored); got != tc.want {
				t.Fatalf("Matches = %v", got)
			}
		})
	}
	if len(stored) != 64 || strings.Contains(stored, code.Value) {
		t.Errorf("Hash(%q) = %q, want a hex SHA-256", code.Value, stored)
	}
}

// TestConstantTimeComparison holds the code to comparing presented tokens and
// codes only through secret.Matches, and Matches to crypto/subtle: a plain
// == on a hash leaks, through timing, how much of it a guess got right.
func TestConstantTimeComparison(t *testing.T) {
	fset := token.NewFileSet()
	parse := func(dir string) []*ast.File {
		t.Helper()
		paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		var files []*ast.File
		for _, p := range paths {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		return files
	}
	calls := func(fn *ast.FuncDecl, pkg, name string) bool {
		found := false
		ast.Inspect(fn, func(n ast.Node) bool {
			if c, ok := n.(*ast.CallExpr); ok {
				if s, ok := c.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == name {
					if id, ok := s.X.(*ast.Ident); ok && id.Name == pkg {
						found = true
					}
				}
			}
			return !found
		})
		return found
	}
	funcs := func(files []*ast.File) map[string]*ast.FuncDecl {
		out := map[string]*ast.FuncDecl{}
		for _, f := range files {
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok {
					out[fn.Name.Name] = fn
				}
			}
		}
		return out
	}

	own := funcs(parse("."))
	if fn := own["Matches"]; fn == nil || !calls(fn, "subtle", "ConstantTimeCompare") {
		t.Error("secret.Matches does not compare with subtle.ConstantTimeCompare")
	}
	usersFiles := parse(filepath.Join("..", "users"))
	if len(usersFiles) == 0 {
		t.Fatal("no sources found in ../users")
	}
	svc := funcs(usersFiles)
	// Where a presented token or code meets its stored hash.
	for _, name := range []string{"checkCode", "Authenticate"} {
		if fn := svc[name]; fn == nil || !calls(fn, "secret", "Matches") {
			t.Errorf("users.%s does not check with secret.Matches", name)
		}
	}
	// Nowhere is a hash compared with == or != (except with "", to ask
	// whether there is one).
	for _, f := range usersFiles {
		ast.Inspect(f, func(n ast.Node) bool {
			be, ok := n.(*ast.BinaryExpr)
			if !ok || (be.Op != token.EQL && be.Op != token.NEQ) {
				return true
			}
			if isEmptyString(be.X) || isEmptyString(be.Y) {
				return true
			}
			if mentionsHash(be.X) || mentionsHash(be.Y) {
				t.Errorf("%s: a hash compared with %s; use secret.Matches", fset.Position(be.Pos()), be.Op)
			}
			return true
		})
	}
}

func isEmptyString(e ast.Expr) bool {
	l, ok := e.(*ast.BasicLit)
	return ok && l.Kind == token.STRING && (l.Value == `""` || l.Value == "``")
}

// mentionsHash reports whether e reads a stored hash (x.Hash, x.TokenHash)
// or computes one (secret.Hash(...)).
func mentionsHash(e ast.Expr) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if s, ok := n.(*ast.SelectorExpr); ok && (s.Sel.Name == "Hash" || s.Sel.Name == "TokenHash") {
			found = true
		}
		return !found
	})
	return found
}
