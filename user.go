package epicme

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"
)

// LocalIssuer is the issuer of accounts that EpicMe itself holds (created with
// `epicme user add` or by sign-up). Users of an external authorization server
// carry that server's issuer URL instead.
const LocalIssuer = "local"

// User is a person with a journal. A user is identified by (Issuer, Subject);
// Email is optional, informational, and never used to link accounts of
// different issuers.
type User struct {
	// ID is the opaque, random identifier used in every journal row.
	ID string `json:"id"`
	// Issuer is the authorization server that vouches for the user
	// (LocalIssuer for local accounts).
	Issuer string `json:"issuer"`
	// Subject is the user's identifier at Issuer.
	Subject string `json:"subject"`
	// Email is the user's address, when known.
	Email string `json:"email"`
	// Disabled users cannot sign in or use tokens.
	Disabled  bool      `json:"-"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Limits on user fields.
const (
	MaxEmailLen    = 254
	MaxSubjectLen  = 255
	MinPasswordLen = 8
	MaxPasswordLen = 1024
)

// NewUser is the input to create a user.
type NewUser struct {
	Issuer  string
	Subject string // "" for a local account: the store uses the new user's ID
	Email   string
	// PasswordHash is the encoded password hash of a local account ("" for none).
	PasswordHash string
}

// Validate checks the input and normalises the email to lower case.
func (u *NewUser) Validate() error {
	if u.Issuer == "" {
		return Invalid("issuer", "issuer is required")
	}
	if hasNUL(u.Issuer) {
		return Invalid("issuer", "issuer must not contain NUL characters")
	}
	if hasNUL(u.Subject) {
		return Invalid("subject", "subject must not contain NUL characters")
	}
	if len(u.Subject) > MaxSubjectLen {
		return Invalid("subject", "subject must be at most %d characters", MaxSubjectLen)
	}
	if u.Issuer != LocalIssuer && u.Subject == "" {
		return Invalid("subject", "subject is required for an external issuer")
	}
	u.Email = strings.ToLower(strings.TrimSpace(u.Email))
	if u.Issuer == LocalIssuer && u.Email == "" {
		return Invalid("email", "email is required for a local account")
	}
	if u.Email != "" {
		if len(u.Email) > MaxEmailLen {
			return Invalid("email", "email must be at most %d characters", MaxEmailLen)
		}
		at := strings.LastIndexByte(u.Email, '@')
		if at <= 0 || at == len(u.Email)-1 || strings.ContainsAny(u.Email, " \t\r\n\x00") {
			return Invalid("email", "email must look like name@example.com")
		}
	}
	return nil
}

// EnsureUserInput returns the validated input with which
// UserService.EnsureUser creates the user (issuer, subject). An email the
// issuer vouches for but that breaks our rules is dropped rather than
// refusing the user, except for LocalIssuer, whose emails are ours; the
// subject is required.
func EnsureUserInput(issuer, subject, email string) (NewUser, error) {
	in := NewUser{Issuer: issuer, Subject: subject, Email: email}
	if err := in.Validate(); err != nil {
		if e, ok := err.(*Error); !ok || e.Field != "email" || issuer == LocalIssuer {
			return NewUser{}, err
		}
		in.Email = ""
	}
	if in.Subject == "" {
		return NewUser{}, Invalid("subject", "subject is required")
	}
	return in, nil
}

// ValidatePassword checks a new password against the length rules.
func ValidatePassword(p string) error {
	if n := len([]rune(p)); n < MinPasswordLen {
		return Invalid("password", "password must be at least %d characters", MinPasswordLen)
	}
	if len(p) > MaxPasswordLen {
		return Invalid("password", "password must be at most %d bytes", MaxPasswordLen)
	}
	return nil
}

// UserService stores users.
type UserService interface {
	// CreateUser creates a user; ECONFLICT if (issuer, subject) exists, or
	// if a local account has the same email.
	CreateUser(ctx context.Context, in NewUser) (*User, error)
	// UserByID returns a user; ENOTFOUND if none.
	UserByID(ctx context.Context, id string) (*User, error)
	// UserByIdentity returns the user with this (issuer, subject); ENOTFOUND if none.
	UserByIdentity(ctx context.Context, issuer, subject string) (*User, error)
	// LocalUserByEmail returns the local account with this email; ENOTFOUND if none.
	LocalUserByEmail(ctx context.Context, email string) (*User, error)
	// EnsureUser returns the user with this (issuer, subject), creating it on
	// first use. The email is recorded at creation and never used to match.
	EnsureUser(ctx context.Context, issuer, subject, email string) (*User, error)
	// ListUsers returns every user, oldest first.
	ListUsers(ctx context.Context) ([]*User, error)
	// PasswordHash returns the stored password hash of a local account
	// ("" when it has none); ENOTFOUND if no such user.
	PasswordHash(ctx context.Context, userID string) (string, error)
	// SetPasswordHash replaces the password hash of a user.
	SetPasswordHash(ctx context.Context, userID, hash string) error
}

// UserNotFound is the error for a user that does not exist.
func UserNotFound() error { return Errorf(ENOTFOUND, "User not found") }

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewUserID returns a random user id: 20 base32 characters, 100 bits from
// crypto/rand, so ids can be neither guessed nor counted.
func NewUserID() string {
	var b [13]byte
	rand.Read(b[:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))[:20]
}
