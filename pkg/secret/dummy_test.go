package secret

import (
	"testing"

	"github.com/alexedwards/argon2id"
)

func TestDummyHashUsesTheCurrentParameters(t *testing.T) {
	p, _, _, err := argon2id.DecodeHash(dummyHash)
	if err != nil {
		t.Fatal(err)
	}
	if p.Memory != PasswordParams.Memory || p.Iterations != PasswordParams.Iterations || p.Parallelism != PasswordParams.Parallelism || p.KeyLength != PasswordParams.KeyLength {
		t.Fatalf("dummyHash has %+v, PasswordParams are %+v: regenerate it so unknown logins cost what real ones do", p, PasswordParams)
	}
	if CheckPassword("anything", "") {
		t.Fatal("a login with no user matched")
	}
}
