package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/epicme/epicme"
)

const userColumns = `id, issuer, subject, email, disabled, created_at, updated_at`

func scanUser(row rowScanner) (*epicme.User, error) {
	var u epicme.User
	var created, updated int64
	if err := row.Scan(&u.ID, &u.Issuer, &u.Subject, &u.Email, &u.Disabled, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, epicme.UserNotFound()
		}
		return nil, epicme.Internal(err)
	}
	u.CreatedAt, u.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &u, nil
}

// CreateUser creates a user. A local account without a subject gets its own
// id as subject. ECONFLICT if (issuer, subject) exists, or if a local account
// has the same email.
func (db *DB) CreateUser(ctx context.Context, in epicme.NewUser) (*epicme.User, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var u *epicme.User
	err := db.update(ctx, func(tx *Tx) error {
		var err error
		u, err = tx.createUser(in)
		return err
	})
	return u, err
}

func (tx *Tx) createUser(in epicme.NewUser) (*epicme.User, error) {
	u := &epicme.User{
		ID:        epicme.NewUserID(),
		Issuer:    in.Issuer,
		Subject:   in.Subject,
		Email:     in.Email,
		CreatedAt: tx.now,
		UpdatedAt: tx.now,
	}
	if u.Subject == "" {
		u.Subject = u.ID
	}
	_, err := tx.exec(`INSERT INTO users (id, issuer, subject, email, password_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Issuer, u.Subject, u.Email, in.PasswordHash, toNanos(u.CreatedAt), toNanos(u.UpdatedAt))
	switch {
	case isUnique(err, "users.email"):
		return nil, epicme.Errorf(epicme.ECONFLICT, "A local account with email %q already exists", u.Email)
	case isUnique(err, "users.issuer"):
		return nil, epicme.Errorf(epicme.ECONFLICT, "A user with this issuer and subject already exists")
	case err != nil:
		return nil, err
	}
	return u, nil
}

// UserByID returns a user; ENOTFOUND if none.
func (db *DB) UserByID(ctx context.Context, id string) (*epicme.User, error) {
	return scanUser(db.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
}

// UserByIdentity returns the user with this (issuer, subject); ENOTFOUND if none.
func (db *DB) UserByIdentity(ctx context.Context, issuer, subject string) (*epicme.User, error) {
	return scanUser(db.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE issuer = ? AND subject = ?`, issuer, subject))
}

// LocalUserByEmail returns the local account with this email, compared
// case-insensitively (emails are stored in lower case); ENOTFOUND if none.
func (db *DB) LocalUserByEmail(ctx context.Context, email string) (*epicme.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	return scanUser(db.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE issuer = 'local' AND email = ?`, email))
}

// EnsureUser returns the user with this (issuer, subject), creating it on
// first use. Concurrent first calls get the same user: the insert and the
// lookup run in one write transaction, which the single writer serialises
// (and BEGIN IMMEDIATE serialises across processes). The input is
// epicme.EnsureUserInput's.
func (db *DB) EnsureUser(ctx context.Context, issuer, subject, email string) (*epicme.User, error) {
	in, err := epicme.EnsureUserInput(issuer, subject, email)
	if err != nil {
		return nil, err
	}
	if u, err := db.UserByIdentity(ctx, in.Issuer, in.Subject); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		return u, err
	}
	var u *epicme.User
	err = db.update(ctx, func(tx *Tx) error {
		var err error
		u, err = scanUser(tx.queryRow(`SELECT `+userColumns+` FROM users WHERE issuer = ? AND subject = ?`, in.Issuer, in.Subject))
		if epicme.ErrorCode(err) != epicme.ENOTFOUND {
			return err
		}
		u, err = tx.createUser(in)
		return err
	})
	return u, err
}

// ListUsers returns every user, oldest first.
func (db *DB) ListUsers(ctx context.Context) ([]*epicme.User, error) {
	return collect(ctx, db, scanUser, `SELECT `+userColumns+` FROM users ORDER BY created_at, rid`)
}

// PasswordHash returns the stored password hash of a user ("" when it has
// none); ENOTFOUND if no such user.
func (db *DB) PasswordHash(ctx context.Context, userID string) (string, error) {
	var h string
	err := db.queryRow(ctx, `SELECT password_hash FROM users WHERE id = ?`, userID).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", epicme.UserNotFound()
	}
	if err != nil {
		return "", epicme.Internal(err)
	}
	return h, nil
}

// SetPasswordHash replaces the password hash of a user; ENOTFOUND if no such
// user.
func (db *DB) SetPasswordHash(ctx context.Context, userID, hash string) error {
	return db.update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, hash, toNanos(tx.now), userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return epicme.UserNotFound()
		}
		return nil
	})
}

// SetUserDisabled disables or re-enables a user; ENOTFOUND if no such user.
func (db *DB) SetUserDisabled(ctx context.Context, userID string, disabled bool) error {
	return db.update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?`, disabled, toNanos(tx.now), userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return epicme.UserNotFound()
		}
		return nil
	})
}

// DeleteUser deletes a user and, by cascade, the whole journal; ENOTFOUND if
// no such user.
func (db *DB) DeleteUser(ctx context.Context, userID string) error {
	return db.update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`DELETE FROM users WHERE id = ?`, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return epicme.UserNotFound()
		}
		return nil
	})
}
