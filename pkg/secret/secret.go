// Package secret owns the service's secrets: API tokens and emailed codes
// (random, bound to a user, stored only as hashes), the encrypted copy of a
// token that lets it be shown again, and password hashes.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"sync/atomic"

	"github.com/alexedwards/argon2id"
	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"
)

const (
	tokenRandomBytes = 32 // 256 bits
	codeRandomBytes  = 20 // 160 bits
)

// ErrMalformed is returned for a token or code that is not one we issue.
var ErrMalformed = errors.New("secret: malformed token or code")

var enc = base64.RawURLEncoding

// Bearer is a token or code: the user it was issued for, and the whole
// opaque string. Binding the user into the string lets a look-up go straight
// to the user's item, where only its hash is kept.
type Bearer struct {
	User  string // uuid
	Value string
}

// NewToken makes an API token for user.
func NewToken(user string) (Bearer, error) { return newBearer(user, tokenRandomBytes) }

// NewCode makes an emailed single-use code for user.
func NewCode(user string) (Bearer, error) { return newBearer(user, codeRandomBytes) }

func newBearer(user string, n int) (Bearer, error) {
	id, err := uuid.Parse(user)
	if err != nil {
		return Bearer{}, err
	}
	b := make([]byte, 16+n)
	copy(b, id[:])
	if _, err := rand.Read(b[16:]); err != nil {
		return Bearer{}, err
	}
	return Bearer{User: user, Value: enc.EncodeToString(b)}, nil
}

// ParseToken reads a token presented by a client.
func ParseToken(s string) (Bearer, error) { return parse(s, tokenRandomBytes) }

// ParseCode reads a code presented by a client.
func ParseCode(s string) (Bearer, error) { return parse(s, codeRandomBytes) }

func parse(s string, n int) (Bearer, error) {
	if enc.EncodedLen(16+n) != len(s) {
		return Bearer{}, ErrMalformed
	}
	b, err := enc.DecodeString(s)
	if err != nil || len(b) != 16+n {
		return Bearer{}, ErrMalformed
	}
	id, err := uuid.FromBytes(b[:16])
	if err != nil {
		return Bearer{}, ErrMalformed
	}
	return Bearer{User: id.String(), Value: s}, nil
}

// Hash is what the table keeps of a token or code.
func Hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Matches compares a presented value with a stored hash in constant time.
func Matches(presented, storedHash string) bool {
	if storedHash == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(Hash(presented)), []byte(storedHash)) == 1
}

// Sealer encrypts token copies with AES-256-GCM under a key the table does
// not hold.
type Sealer struct {
	aead cipher.AEAD
	// derive is the root of keys derived for other purposes (Derive), apart
	// from the sealing key so that neither reveals the other.
	derive [32]byte
}

// NewSealer derives an AES-256 key from keyMaterial (a secret string of any
// length, such as a generated Secrets Manager value).
func NewSealer(keyMaterial []byte) (*Sealer, error) {
	if len(keyMaterial) < 16 {
		return nil, errors.New("secret: token key material must be at least 16 bytes")
	}
	key := sha256.Sum256(keyMaterial)
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead, derive: sha256.Sum256(append([]byte("accounts/derive\x00"), keyMaterial...))}, nil
}

// Derive returns a 256-bit key for purpose (such as signing the pages'
// form tokens), derived from the same key material so that no other
// secret has to be stored.
func (s *Sealer) Derive(purpose string) []byte {
	m := hmac.New(sha256.New, s.derive[:])
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Seal encrypts plain; aad binds the ciphertext to its owner so a copy moved
// to another user's item does not open.
func (s *Sealer) Seal(plain, aad string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := s.aead.Seal(nonce, nonce, []byte(plain), []byte(aad))
	return enc.EncodeToString(out), nil
}

// Open decrypts what Seal made.
func (s *Sealer) Open(sealed, aad string) (string, error) {
	b, err := enc.DecodeString(sealed)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", ErrMalformed
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], []byte(aad))
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// PasswordParams are OWASP's argon2id minimum (19 MiB, t=2, p=1). Hashes are
// PHC strings, so raising these later still verifies old hashes.
var PasswordParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// NormalizePassword applies Unicode NFKC so the same password typed on two
// keyboards hashes the same.
func NormalizePassword(p string) string { return norm.NFKC.String(p) }

// hashes counts the password hashes computed (made or checked), so that
// tests can show a refused request costs none.
var hashes atomic.Int64

// Hashes returns how many password hashes this process has computed.
func Hashes() int64 { return hashes.Load() }

// HashPassword returns the PHC string of p.
func HashPassword(p string) (string, error) {
	hashes.Add(1)
	return argon2id.CreateHash(NormalizePassword(p), PasswordParams)
}

// dummyHash is verified against when a login names no user, so that an
// unknown login costs the same one hash as a wrong password. It is a
// constant (a hash of a throwaway password with PasswordParams; a test keeps
// the two in step) so that no function pays for making it.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$CO8nmuLLn7M/L3kg+N5aNg$nvsUjgd1XmE/qSHwtmuaoTythAaee35r52TmgfyLsf0"

// CheckPassword reports whether p matches the stored hash: the service's
// argon2id PHC string, or an imported legacy hash (legacy.go), verified with
// its own algorithm. An empty hash (no such user, or no password set) still
// costs one full hash.
func CheckPassword(p, hash string) bool {
	hashes.Add(1)
	if hash == "" {
		_, _ = argon2id.ComparePasswordAndHash(NormalizePassword(p), dummyHash)
		return false
	}
	if IsLegacy(hash) {
		return checkLegacy(p, hash)
	}
	ok, err := argon2id.ComparePasswordAndHash(NormalizePassword(p), hash)
	return err == nil && ok
}
