package password_test

import (
	"errors"
	"regexp"
	"testing"

	"github.com/epicme/epicme/password"
)

// cheap keeps the tests fast; the format and logic are the same as with the
// default parameters.
var cheap = password.Params{Memory: 1024, Time: 1, Threads: 1}

func TestHashIsPHCEncodedArgon2id(t *testing.T) {
	h, err := password.Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=65536,t=1,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(h) {
		t.Fatalf("hash %q does not match the PHC argon2id format", h)
	}
	ok, rehash, err := password.Verify("correct horse battery", h)
	if err != nil || !ok || rehash {
		t.Fatalf("Verify = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
}

func TestVerifyRejectsWrongPassword(t *testing.T) {
	h, err := password.HashWith("s3cret-password", cheap)
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", "s3cret-passwor", "s3cret-password ", "S3cret-password"} {
		ok, _, err := password.Verify(pw, h)
		if err != nil || ok {
			t.Errorf("Verify(%q) = %v, %v; want false, nil", pw, ok, err)
		}
	}
}

func TestSaltIsRandom(t *testing.T) {
	a, _ := password.HashWith("same password", cheap)
	b, _ := password.HashWith("same password", cheap)
	if a == b {
		t.Fatal("two hashes of the same password are equal; the salt is not random")
	}
}

func TestVerifyReportsWeakParametersForRehash(t *testing.T) {
	h, _ := password.HashWith("some password", cheap)
	ok, rehash, err := password.Verify("some password", h)
	if err != nil || !ok || !rehash {
		t.Fatalf("Verify = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
}

func TestVerifyRejectsMalformedHashes(t *testing.T) {
	for _, h := range []string{
		"",
		"plain text",
		"$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=16$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=1024,t=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=0,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=1024,t=1000,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=1024,t=1,p=1,x=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=1024,t=1,p=1$!!!$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$",
	} {
		ok, _, err := password.Verify("pw", h)
		if ok || !errors.Is(err, password.ErrMalformed) {
			t.Errorf("Verify(pw, %q) = %v, %v; want false, ErrMalformed", h, ok, err)
		}
	}
}
