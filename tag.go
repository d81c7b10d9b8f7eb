package epicme

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Tag is a label a user puts on entries. Names are unique per user (compared
// case-insensitively). IDs are numbered per user.
type Tag struct {
	ID          int64     `json:"id"`
	UserID      string    `json:"userId"`
	Name        string    `json:"name"`
	Description *string   `json:"description"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// EntryTag links a tag to an entry of the same user.
type EntryTag struct {
	ID        int64     `json:"id"`
	UserID    string    `json:"userId"`
	EntryID   int64     `json:"entryId"`
	TagID     int64     `json:"tagId"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// NewTag is the input to create a tag.
type NewTag struct {
	Name        string
	Description *string
}

// Validate checks the input and trims the name.
func (t *NewTag) Validate() error {
	t.Name = strings.TrimSpace(t.Name)
	if err := validateTagName(t.Name); err != nil {
		return err
	}
	return validateTagDescription(t.Description)
}

// TagUpdate changes some fields of a tag; nil leaves a field as it is, and a
// pointer to nil clears the description.
type TagUpdate struct {
	Name        *string
	Description **string
}

// Validate checks the fields that are set.
func (u *TagUpdate) Validate() error {
	if u.Name != nil {
		n := strings.TrimSpace(*u.Name)
		u.Name = &n
		if err := validateTagName(n); err != nil {
			return err
		}
	}
	if u.Description != nil {
		return validateTagDescription(*u.Description)
	}
	return nil
}

func validateTagName(n string) error {
	if !utf8.ValidString(n) {
		return Invalid("name", "name must be valid UTF-8")
	}
	if hasNUL(n) {
		return Invalid("name", "name must not contain NUL characters")
	}
	c := utf8.RuneCountInString(n)
	if c < 1 {
		return Invalid("name", "name is required (1-%d characters)", MaxTagNameLen)
	}
	if c > MaxTagNameLen {
		return Invalid("name", "name must be at most %d characters (got %d)", MaxTagNameLen, c)
	}
	return nil
}

func validateTagDescription(d *string) error {
	if d == nil {
		return nil
	}
	if !utf8.ValidString(*d) {
		return Invalid("description", "description must be valid UTF-8")
	}
	if hasNUL(*d) {
		return Invalid("description", "description must not contain NUL characters")
	}
	if c := utf8.RuneCountInString(*d); c > MaxTagDescLen {
		return Invalid("description", "description must be at most %d characters (got %d)", MaxTagDescLen, c)
	}
	return nil
}

// TagService stores tags and their links to entries. Every method is scoped to
// one user: another user's row is indistinguishable from a missing one.
type TagService interface {
	// CreateTag creates a tag; ECONFLICT if the user has a tag of that name.
	CreateTag(ctx context.Context, userID string, in NewTag) (*Tag, error)
	GetTag(ctx context.Context, userID string, id int64) (*Tag, error)
	// ListTags returns all the user's tags, by name.
	ListTags(ctx context.Context, userID string) ([]TagRef, error)
	UpdateTag(ctx context.Context, userID string, id int64, u TagUpdate) (*Tag, error)
	// DeleteTag deletes the tag and its links and returns what it was.
	DeleteTag(ctx context.Context, userID string, id int64) (*Tag, error)
	// AddTagToEntry links a tag to an entry. It is idempotent: linking twice
	// returns the existing link. Both must belong to the user (ENOTFOUND).
	AddTagToEntry(ctx context.Context, userID string, entryID, tagID int64) (*EntryTag, error)
	// RemoveTagFromEntry unlinks a tag from an entry. It returns ENOTFOUND if
	// the entry or tag is not the user's, and removed=false if they were not
	// linked.
	RemoveTagFromEntry(ctx context.Context, userID string, entryID, tagID int64) (removed bool, err error)
}

// Store is everything EpicMe keeps: the journal and its users. The sqlite
// package implements it; a second database implements the same contract
// (package storetest).
type Store interface {
	UserService
	EntryService
	TagService
	// Ping reports whether the database answers (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}

// TagNotFound is the error for a tag id the user does not have.
func TagNotFound(id int64) error {
	return Errorf(ENOTFOUND, "Tag ID %q not found", strconv.FormatInt(id, 10))
}

// TagExists is the error for a tag name the user already has.
func TagExists(name string) error {
	return Errorf(ECONFLICT, "Tag %q already exists", name)
}

// TagNameKey folds a tag name for the uniqueness rule (case-insensitive).
// Stores compare this key, computed here rather than with SQL's lower(),
// whose result depends on the database's locale.
func TagNameKey(name string) string { return strings.ToLower(name) }

// Apply writes the fields set in u into t and stamps t.UpdatedAt with now.
func (u *TagUpdate) Apply(t *Tag, now time.Time) {
	if u.Name != nil {
		t.Name = *u.Name
	}
	if u.Description != nil {
		t.Description = *u.Description
	}
	t.UpdatedAt = now
}

// Empty reports whether the update changes nothing.
func (u *TagUpdate) Empty() bool { return u.Name == nil && u.Description == nil }
