package secret

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Password hashes brought from other systems (users.Import). They are kept
// as given, verified with their own algorithm (the standard library's
// crypto/pbkdf2, golang.org/x/crypto's bcrypt and argon2, compared in
// constant time) and replaced by the service's argon2id at the first login
// that verifies them. Unlike the service's own hashes, they are verified
// against the password as typed: the systems that made them did not
// normalise it (NormalizePassword).

// Upper bounds on a legacy hash's cost, so that an imported hash cannot make
// one login take a Lambda's whole timeout or memory.
const (
	maxPBKDF2Iterations = 5_000_000
	maxBcryptCost       = 16
	maxArgon2MemoryKiB  = 256 * 1024
	maxArgon2Time       = 16
	maxArgon2Threads    = 16
)

// Legacy is a recognised legacy password hash.
type Legacy struct {
	// Stored is the form the table keeps: the hash as given, except that a
	// bare argon2 PHC string (indistinguishable from the service's own) is
	// kept as Django writes it, "argon2$argon2id$...", which marks it as one
	// to verify without normalising the password.
	Stored string
	// Algorithm names the format, e.g. "django pbkdf2_sha256" or "bcrypt".
	Algorithm string
	// Weak lists the parameters below today's recommendations (OWASP's
	// password storage cheat sheet); the hash is accepted all the same.
	Weak []string
}

// ErrUnknownHash is returned for a hash in no recognised format.
var ErrUnknownHash = errors.New("secret: unrecognised password hash format")

// IsLegacy reports whether a stored hash is another system's, to be
// replaced by the service's own at the next successful login.
func IsLegacy(stored string) bool {
	return stored != "" && !strings.HasPrefix(stored, "$argon2id$")
}

// ParseLegacy recognises an imported password hash and checks its
// parameters. Recognised: Django's pbkdf2_sha256$, pbkdf2_sha1$,
// bcrypt_sha256$, bcrypt$ and argon2$; bcrypt's $2a$, $2b$, $2y$; argon2id
// and argon2i PHC strings; PBKDF2 in PHC form ($pbkdf2-sha256$i=N,l=L$...,
// also sha512 and sha1) and as passlib writes it ($pbkdf2-sha256$N$...,
// $pbkdf2-sha512$, $pbkdf2$ for sha1).
func ParseLegacy(h string) (Legacy, error) {
	h = strings.TrimSpace(h)
	v, err := parseVerifier(h)
	if err != nil {
		return Legacy{}, err
	}
	stored := h
	if strings.HasPrefix(h, "$argon2") {
		stored = "argon2" + h
	}
	return Legacy{Stored: stored, Algorithm: v.name, Weak: v.weak}, nil
}

// verifier is a parsed legacy hash: how to check a password against it.
type verifier struct {
	name  string
	weak  []string
	check func(password string) bool
}

func parseVerifier(h string) (*verifier, error) {
	switch {
	case strings.HasPrefix(h, "pbkdf2_sha256$"):
		return djangoPBKDF2(h, "django pbkdf2_sha256", sha256.New, 600_000)
	case strings.HasPrefix(h, "pbkdf2_sha1$"):
		return djangoPBKDF2(h, "django pbkdf2_sha1", sha1.New, 1_300_000)
	case strings.HasPrefix(h, "bcrypt_sha256$"):
		// Django hashes the password with SHA-256 first (hex), so that
		// bcrypt's 72-byte limit does not truncate it.
		return bcryptVerifier(strings.TrimPrefix(h, "bcrypt_sha256$"), "django bcrypt_sha256", func(p string) []byte {
			d := sha256.Sum256([]byte(p))
			return []byte(hex.EncodeToString(d[:]))
		})
	case strings.HasPrefix(h, "bcrypt$"):
		return bcryptVerifier(strings.TrimPrefix(h, "bcrypt$"), "django bcrypt", bcryptInput)
	case strings.HasPrefix(h, "argon2$"):
		return argon2Verifier(strings.TrimPrefix(h, "argon2"), "argon2")
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		return bcryptVerifier(h, "bcrypt", bcryptInput)
	case strings.HasPrefix(h, "$argon2id$"), strings.HasPrefix(h, "$argon2i$"):
		return argon2Verifier(h, "argon2 PHC")
	case strings.HasPrefix(h, "$pbkdf2-sha256$"):
		return phcPBKDF2(h, "pbkdf2-sha256", sha256.New, 32, 600_000)
	case strings.HasPrefix(h, "$pbkdf2-sha512$"):
		return phcPBKDF2(h, "pbkdf2-sha512", sha512.New, 64, 210_000)
	case strings.HasPrefix(h, "$pbkdf2$"), strings.HasPrefix(h, "$pbkdf2-sha1$"):
		return phcPBKDF2(h, "pbkdf2-sha1", sha1.New, 20, 1_300_000)
	}
	return nil, ErrUnknownHash
}

// bcryptInput is what bcrypt hashes of a password: its bytes, of which
// bcrypt reads the first 72 (as the systems that made the hash did).
func bcryptInput(p string) []byte {
	b := []byte(p)
	if len(b) > 72 {
		b = b[:72]
	}
	return b
}

func bcryptVerifier(h, name string, input func(string) []byte) (*verifier, error) {
	cost, err := bcrypt.Cost([]byte(h))
	if err != nil || !(strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")) {
		return nil, fmt.Errorf("secret: bad bcrypt hash")
	}
	if cost > maxBcryptCost {
		return nil, fmt.Errorf("secret: bcrypt cost %d is above %d", cost, maxBcryptCost)
	}
	v := &verifier{name: name, check: func(p string) bool {
		return bcrypt.CompareHashAndPassword([]byte(h), input(p)) == nil
	}}
	if cost < 10 {
		v.weak = append(v.weak, fmt.Sprintf("bcrypt cost %d is below 10", cost))
	}
	return v, nil
}

// djangoPBKDF2 reads Django's <algorithm>$<iterations>$<salt>$<base64 key>:
// the salt is used as its text, the key is standard base64.
func djangoPBKDF2(h, name string, fn func() hash.Hash, minIter int) (*verifier, error) {
	parts := strings.Split(h, "$")
	if len(parts) != 4 || parts[2] == "" {
		return nil, fmt.Errorf("secret: bad %s hash", name)
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil {
		return nil, fmt.Errorf("secret: bad %s iterations", name)
	}
	want, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil {
		return nil, fmt.Errorf("secret: bad %s key", name)
	}
	return pbkdf2Verifier(name, fn, []byte(parts[2]), want, iter, minIter)
}

// phcPBKDF2 reads $pbkdf2-<hash>$i=<iterations>,l=<key length>$<salt>$<key>
// (the PHC form, standard base64 without padding) and passlib's
// $pbkdf2-<hash>$<iterations>$<salt>$<key> (its "adapted" base64, with .
// for +).
func phcPBKDF2(h, name string, fn func() hash.Hash, keyLen, minIter int) (*verifier, error) {
	parts := strings.Split(h, "$")
	if len(parts) != 5 || parts[0] != "" {
		return nil, fmt.Errorf("secret: bad %s hash", name)
	}
	iter, l := 0, keyLen
	if n, err := strconv.Atoi(parts[2]); err == nil {
		iter = n
	} else {
		for _, kv := range strings.Split(parts[2], ",") {
			k, val, _ := strings.Cut(kv, "=")
			x, err := strconv.Atoi(val)
			if err != nil {
				return nil, fmt.Errorf("secret: bad %s parameters", name)
			}
			switch k {
			case "i":
				iter = x
			case "l":
				l = x
			default:
				return nil, fmt.Errorf("secret: unknown %s parameter %q", name, k)
			}
		}
	}
	salt, err1 := phcBase64(parts[3])
	want, err2 := phcBase64(parts[4])
	if err1 != nil || err2 != nil || len(salt) == 0 {
		return nil, fmt.Errorf("secret: bad %s salt or key", name)
	}
	if len(want) != l {
		return nil, fmt.Errorf("secret: %s key is %d bytes, l says %d", name, len(want), l)
	}
	return pbkdf2Verifier(name, fn, salt, want, iter, minIter)
}

// phcBase64 decodes base64 without padding, standard or passlib's adapted
// alphabet (. for +).
func phcBase64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.ReplaceAll(strings.TrimRight(s, "="), ".", "+"))
}

func pbkdf2Verifier(name string, fn func() hash.Hash, salt, want []byte, iter, minIter int) (*verifier, error) {
	if iter < 1 || iter > maxPBKDF2Iterations {
		return nil, fmt.Errorf("secret: %s iterations must be between 1 and %d", name, maxPBKDF2Iterations)
	}
	if len(want) < 16 || len(want) > 128 {
		return nil, fmt.Errorf("secret: %s key length %d", name, len(want))
	}
	v := &verifier{name: name, check: func(p string) bool {
		got, err := pbkdf2.Key(fn, p, salt, iter, len(want))
		return err == nil && subtle.ConstantTimeCompare(got, want) == 1
	}}
	if iter < minIter {
		v.weak = append(v.weak, fmt.Sprintf("%s with %d iterations is below %d", name, iter, minIter))
	}
	return v, nil
}

// argon2Verifier reads $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>
// (and argon2i), base64 without padding.
func argon2Verifier(h, name string) (*verifier, error) {
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, fmt.Errorf("secret: bad %s hash", name)
	}
	variant := parts[1]
	if variant != "argon2id" && variant != "argon2i" {
		return nil, fmt.Errorf("secret: %s variant %q is not supported", name, variant)
	}
	if parts[2] != "v=19" {
		return nil, fmt.Errorf("secret: %s version %q is not supported (only v=19)", name, parts[2])
	}
	var m, t, p int
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return nil, fmt.Errorf("secret: bad %s parameters", name)
	}
	if m < 8 || m > maxArgon2MemoryKiB || t < 1 || t > maxArgon2Time || p < 1 || p > maxArgon2Threads || m < 8*p {
		return nil, fmt.Errorf("secret: %s parameters out of bounds (m at most %d KiB, t at most %d, p at most %d)", name, maxArgon2MemoryKiB, maxArgon2Time, maxArgon2Threads)
	}
	salt, err1 := phcBase64(parts[4])
	want, err2 := phcBase64(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(want) < 16 || len(want) > 128 {
		return nil, fmt.Errorf("secret: bad %s salt or key", name)
	}
	derive := argon2.IDKey
	if variant == "argon2i" {
		derive = argon2.Key
	}
	v := &verifier{name: name + " " + variant, check: func(pw string) bool {
		got := derive([]byte(pw), salt, uint32(t), uint32(m), uint8(p), uint32(len(want)))
		return subtle.ConstantTimeCompare(got, want) == 1
	}}
	// OWASP: m=19 MiB with t=2, or equivalent (m*t at least ~35 MiB·passes,
	// m at least 7 MiB).
	if m < 7168 || m*t < 35840 {
		v.weak = append(v.weak, fmt.Sprintf("%s m=%d KiB, t=%d is below OWASP's minimum (19456 KiB with t=2)", variant, m, t))
	}
	if variant == "argon2i" {
		v.weak = append(v.weak, "argon2i: argon2id is recommended")
	}
	return v, nil
}

// checkLegacy verifies p against a stored legacy hash.
func checkLegacy(p, stored string) bool {
	v, err := parseVerifier(stored)
	if err != nil {
		return false
	}
	return v.check(p)
}
