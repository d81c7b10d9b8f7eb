package postgres

import (
	"context"
	"errors"
	"strings"

	"github.com/epicme/epicme"
	"github.com/jackc/pgx/v5"
)

const userColumns = `id, issuer, subject, email, disabled, created_at, updated_at`

// hasNUL reports whether a lookup key holds a NUL character. PostgreSQL
// refuses such a parameter with an error, where SQLite would just find
// nothing; no stored row can hold one (epicme validation refuses it), so the
// answer is "not found" without asking, as on SQLite. Sign-in forms pass
// typed emails here.
func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }

func scanUser(row pgx.Row) (*epicme.User, error) {
	var u epicme.User
	if err := row.Scan(&u.ID, &u.Issuer, &u.Subject, &u.Email, &u.Disabled, &u.CreatedAt, &u.UpdatedAt); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, epicme.UserNotFound()
		}
		return nil, epicme.Internal(err)
	}
	u.CreatedAt, u.UpdatedAt = utc(u.CreatedAt), utc(u.UpdatedAt)
	return &u, nil
}

// createUserError maps a unique violation of a new user to ECONFLICT.
func createUserError(err error, u *epicme.User) error {
	switch {
	case isUnique(err, "users_local_email"):
		return epicme.Errorf(epicme.ECONFLICT, "A local account with email %q already exists", u.Email)
	case isUnique(err, "users_identity"):
		return epicme.Errorf(epicme.ECONFLICT, "A user with this issuer and subject already exists")
	}
	return err
}

// newUserRow returns the user to insert for a validated input. A local
// account without a subject gets its own id as subject.
func (db *DB) newUserRow(in epicme.NewUser) *epicme.User {
	now := db.now()
	u := &epicme.User{ID: epicme.NewUserID(), Issuer: in.Issuer, Subject: in.Subject, Email: in.Email, CreatedAt: now, UpdatedAt: now}
	if u.Subject == "" {
		u.Subject = u.ID
	}
	return u
}

// CreateUser creates a user. A local account without a subject gets its own
// id as subject. ECONFLICT if (issuer, subject) exists, or if a local account
// has the same email.
func (db *DB) CreateUser(ctx context.Context, in epicme.NewUser) (*epicme.User, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	u := db.newUserRow(in)
	_, err := db.pool.Exec(ctx, `INSERT INTO users (id, issuer, subject, email, password_hash, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, u.ID, u.Issuer, u.Subject, u.Email, in.PasswordHash, u.CreatedAt, u.UpdatedAt)
	if err != nil {
		return nil, epicme.Internal(createUserError(err, u))
	}
	return u, nil
}

// UserByID returns a user; ENOTFOUND if none.
func (db *DB) UserByID(ctx context.Context, id string) (*epicme.User, error) {
	if hasNUL(id) {
		return nil, epicme.UserNotFound()
	}
	return idempotent(ctx, db, func() (*epicme.User, error) {
		return scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	})
}

// UserByIdentity returns the user with this (issuer, subject); ENOTFOUND if none.
func (db *DB) UserByIdentity(ctx context.Context, issuer, subject string) (*epicme.User, error) {
	if hasNUL(issuer + subject) {
		return nil, epicme.UserNotFound()
	}
	return idempotent(ctx, db, func() (*epicme.User, error) {
		return scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE issuer = $1 AND subject = $2`, issuer, subject))
	})
}

// LocalUserByEmail returns the local account with this email, compared
// case-insensitively (emails are stored in lower case); ENOTFOUND if none.
func (db *DB) LocalUserByEmail(ctx context.Context, email string) (*epicme.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if hasNUL(email) {
		return nil, epicme.UserNotFound()
	}
	return idempotent(ctx, db, func() (*epicme.User, error) {
		return scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE issuer = 'local' AND email = $1`, email))
	})
}

// EnsureUser returns the user with this (issuer, subject), creating it on
// first use. Concurrent first calls, from this instance or another, get the
// same user: INSERT ... ON CONFLICT DO NOTHING waits for a concurrent insert
// of the same identity to commit and then inserts nothing, and the SELECT
// that follows (a new snapshot under READ COMMITTED) sees the winner's row.
// The input is epicme.EnsureUserInput's.
func (db *DB) EnsureUser(ctx context.Context, issuer, subject, email string) (*epicme.User, error) {
	in, err := epicme.EnsureUserInput(issuer, subject, email)
	if err != nil {
		return nil, err
	}
	if u, err := db.UserByIdentity(ctx, in.Issuer, in.Subject); epicme.ErrorCode(err) != epicme.ENOTFOUND {
		return u, err
	}
	// Running this twice (after a lost connection) finds the first run's
	// user, so it is idempotent.
	return idempotent(ctx, db, func() (*epicme.User, error) {
		u := db.newUserRow(in)
		tag, err := db.pool.Exec(ctx, `INSERT INTO users (id, issuer, subject, email, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT ON CONSTRAINT users_identity DO NOTHING`,
			u.ID, u.Issuer, u.Subject, u.Email, u.CreatedAt, u.UpdatedAt)
		if err != nil {
			return nil, epicme.Internal(createUserError(err, u))
		}
		if tag.RowsAffected() == 1 {
			return u, nil
		}
		return scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE issuer = $1 AND subject = $2`, in.Issuer, in.Subject))
	})
}

// ListUsers returns every user, oldest first.
func (db *DB) ListUsers(ctx context.Context) ([]*epicme.User, error) {
	return collect(ctx, db, scanUser, `SELECT `+userColumns+` FROM users ORDER BY created_at, rid`)
}

// PasswordHash returns the stored password hash of a user ("" when it has
// none); ENOTFOUND if no such user.
func (db *DB) PasswordHash(ctx context.Context, userID string) (string, error) {
	return idempotent(ctx, db, func() (string, error) { return db.passwordHash(ctx, userID) })
}

func (db *DB) passwordHash(ctx context.Context, userID string) (string, error) {
	var h string
	err := db.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, userID).Scan(&h)
	if errors.Is(err, pgx.ErrNoRows) {
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
	return db.updateUser(ctx, `UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1`, userID, hash)
}

// SetUserDisabled disables or re-enables a user; ENOTFOUND if no such user.
func (db *DB) SetUserDisabled(ctx context.Context, userID string, disabled bool) error {
	return db.updateUser(ctx, `UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1`, userID, disabled)
}

// updateUser sets one column of a user; setting it twice is harmless, so a
// lost connection is retried.
func (db *DB) updateUser(ctx context.Context, sql, userID string, value any) error {
	_, err := idempotent(ctx, db, func() (struct{}, error) {
		tag, err := db.pool.Exec(ctx, sql, userID, value, db.now())
		if err != nil {
			return struct{}{}, epicme.Internal(err)
		}
		if tag.RowsAffected() == 0 {
			return struct{}{}, epicme.UserNotFound()
		}
		return struct{}{}, nil
	})
	return err
}

// DeleteUser deletes a user and, by cascade, the whole journal; ENOTFOUND if
// no such user.
func (db *DB) DeleteUser(ctx context.Context, userID string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, userID)
	if err != nil {
		return epicme.Internal(err)
	}
	if tag.RowsAffected() == 0 {
		return epicme.UserNotFound()
	}
	return nil
}
