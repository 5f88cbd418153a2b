package secret

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// The vectors in testdata/legacy_hashes.json were made by the real tools
// (Django 3.2's make_password, passlib 1.7.4, argon2-cffi 21.1, python
// bcrypt 3.2, hashlib.pbkdf2_hmac for the PHC PBKDF2 form, Apache's
// htpasswd -B) with testdata/legacy_hashes.py.
type vector struct {
	Source, Hash, Password string
	Weak                   bool
}

func vectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/legacy_hashes.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestLegacyHashesFromTheRealTools(t *testing.T) {
	for _, v := range vectors(t) {
		t.Run(v.Source, func(t *testing.T) {
			l, err := ParseLegacy(v.Hash)
			if err != nil {
				t.Fatalf("ParseLegacy: %v", err)
			}
			if !IsLegacy(l.Stored) {
				t.Fatalf("stored form %q does not read as legacy", l.Stored)
			}
			if got := len(l.Weak) > 0; got != v.Weak {
				t.Fatalf("weak = %v (%v), want %v", got, l.Weak, v.Weak)
			}
			if !CheckPassword(v.Password, l.Stored) {
				t.Fatal("the right password does not verify")
			}
			if CheckPassword("y"+v.Password, l.Stored) || CheckPassword(strings.ToUpper(v.Password), l.Stored) || CheckPassword("", l.Stored) {
				t.Fatal("a wrong password verifies")
			}
		})
	}
}

func TestLegacyBcryptReadsTheFirst72Bytes(t *testing.T) {
	for _, v := range vectors(t) {
		if len(v.Password) == 80 {
			l, _ := ParseLegacy(v.Hash)
			if !CheckPassword(v.Password[:72]+"yyyyyyyy", l.Stored) {
				t.Fatal("bcrypt hashed the first 72 bytes, as every bcrypt does")
			}
			return
		}
	}
	t.Fatal("no 80-byte vector")
}

func TestLegacyHashesRefused(t *testing.T) {
	for _, h := range []string{
		"", "plain", "md5$abc$def", "sha1$salt$0123",
		"pbkdf2_sha256$x$salt$abc=", "pbkdf2_sha256$260000$$abc=", "pbkdf2_sha256$99999999$salt$R5B60ckaS7tj0gkagbh9gX5lVOHwN6x0J1Zxj1rVjlI=",
		"$2b$31$0p1Hrct57TrJGXyjNVz.rOktoedRYIJ0XcuIX/Rzj9juyYeK6csly", "$2b$12$short",
		"$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=16$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2d$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$pbkdf2-sha256$i=1000,l=64$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
		"$pbkdf2-sha256$i=1000,x=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
	} {
		if _, err := ParseLegacy(h); err == nil {
			t.Errorf("%q was accepted", h)
		}
	}
}

func TestOwnHashesAreNotLegacy(t *testing.T) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if IsLegacy(h) || IsLegacy("") {
		t.Fatal("the service's own hash reads as legacy")
	}
}

// FuzzParseLegacy: any string is parsed without a panic, and one accepted
// reads back as legacy with its costs within the bounds.
func FuzzParseLegacy(f *testing.F) {
	b, err := os.ReadFile("testdata/legacy_hashes.json")
	if err != nil {
		f.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		f.Fatal(err)
	}
	for _, v := range vs {
		f.Add(v.Hash)
	}
	f.Add("$pbkdf2-sha256$i=1,l=16$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, h string) {
		l, err := ParseLegacy(h)
		if err != nil {
			return
		}
		if !IsLegacy(l.Stored) {
			t.Fatalf("%q stored as %q, which reads as the service's own", h, l.Stored)
		}
		if _, err := parseVerifier(l.Stored); err != nil {
			t.Fatalf("the stored form %q does not parse again: %v", l.Stored, err)
		}
	})
}
