// Package password hashes and verifies the passwords of local EpicMe accounts
// with Argon2id (RFC 9106), encoded in the PHC string format:
//
//	$argon2id$v=19$m=65536,t=1,p=2$<salt>$<hash>
//
// where salt and hash are unpadded standard base64. The parameters travel
// with each hash, so they can be raised later without invalidating stored
// passwords; Verify reports when a hash was made with weaker ones.
//
// [RFC 9106]: https://datatracker.ietf.org/doc/rfc9106
// [PHC string format]: https://github.com/P-H-C/phc-string-format/blob/master/phc-sf-spec.md
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are the Argon2id cost parameters.
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Time is the number of passes.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
}

// DefaultParams follow the second recommended option of RFC 9106 §4 scaled
// down in memory (64 MiB) so that a small server can check a few sign-ins at
// once: m=65536, t=1, p=2.
var DefaultParams = Params{Memory: 64 * 1024, Time: 1, Threads: 2}

const (
	saltLen = 16 // RFC 9106 §3.1 recommends 128-bit salts
	keyLen  = 32

	// Bounds on parameters read from a stored hash, so a corrupted or
	// hostile hash cannot make Verify allocate gigabytes or spin forever.
	maxMemory  = 1024 * 1024 // 1 GiB
	maxTime    = 64
	maxKeyLen  = 128
	maxSaltLen = 64
)

// ErrMalformed means an encoded hash is not one this package produces.
var ErrMalformed = errors.New("password: malformed argon2id hash")

var b64 = base64.RawStdEncoding

// Hash returns the encoded Argon2id hash of pw with DefaultParams and a fresh
// random salt.
func Hash(pw string) (string, error) {
	return HashWith(pw, DefaultParams)
}

// HashWith returns the encoded Argon2id hash of pw with the given parameters.
func HashWith(pw string, p Params) (string, error) {
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 {
		return "", errors.New("password: parameters must be positive")
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: reading random salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether pw matches the encoded hash. The comparison of the
// derived keys takes constant time. needsRehash is true when the hash was made
// with parameters weaker than DefaultParams, so the caller can store a new hash
// after a successful sign-in. A malformed hash is an error (ErrMalformed), never
// a match.
func Verify(pw, encoded string) (ok, needsRehash bool, err error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	weaker := p.Memory < DefaultParams.Memory || p.Time < DefaultParams.Time || p.Threads < DefaultParams.Threads
	return true, weaker, nil
}

// decode parses "$argon2id$v=19$m=..,t=..,p=..$salt$hash".
func decode(encoded string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, ErrMalformed
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported version %q", ErrMalformed, parts[2])
	}
	var seen [3]bool
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, found := strings.Cut(kv, "=")
		if !found {
			return p, nil, nil, ErrMalformed
		}
		n, perr := strconv.ParseUint(v, 10, 32)
		if perr != nil || n == 0 {
			return p, nil, nil, fmt.Errorf("%w: parameter %q", ErrMalformed, k)
		}
		switch k {
		case "m":
			if n > maxMemory {
				return p, nil, nil, fmt.Errorf("%w: memory cost too large", ErrMalformed)
			}
			p.Memory, seen[0] = uint32(n), true
		case "t":
			if n > maxTime {
				return p, nil, nil, fmt.Errorf("%w: time cost too large", ErrMalformed)
			}
			p.Time, seen[1] = uint32(n), true
		case "p":
			if n > 255 {
				return p, nil, nil, fmt.Errorf("%w: parallelism too large", ErrMalformed)
			}
			p.Threads, seen[2] = uint8(n), true
		default:
			return p, nil, nil, fmt.Errorf("%w: unknown parameter %q", ErrMalformed, k)
		}
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return p, nil, nil, fmt.Errorf("%w: missing parameter", ErrMalformed)
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 || len(salt) > maxSaltLen {
		return p, nil, nil, fmt.Errorf("%w: salt", ErrMalformed)
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > maxKeyLen {
		return p, nil, nil, fmt.Errorf("%w: hash", ErrMalformed)
	}
	return p, salt, key, nil
}
