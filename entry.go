package epicme

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on journal fields, in characters (runes) unless noted.
const (
	MaxTitleLen       = 200
	MaxContentBytes   = 100 * 1024 // content is capped in bytes: 100 KB
	MaxMetaLen        = 100        // mood, location, weather
	MaxTagNameLen     = 50
	MaxTagDescLen     = 500
	MaxTagsPerRequest = 50 // tag ids on one create_entry
	DefaultPageSize   = 50
	MaxPageSize       = 200
	MaxSearchQueryLen = 200
)

// Entry is a journal entry. IDs are numbered per user (1, 2, 3, ... for each
// user separately), so an id reveals nothing about anyone else's activity.
type Entry struct {
	ID         int64     `json:"id"`
	UserID     string    `json:"userId"`
	Title      string    `json:"title"`
	Content    string    `json:"content"`
	Mood       *string   `json:"mood"`
	Location   *string   `json:"location"`
	Weather    *string   `json:"weather"`
	IsPrivate  bool      `json:"isPrivate"`
	IsFavorite bool      `json:"isFavorite"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
	// Tags are the entry's tags, by name; filled by GetEntry.
	Tags []TagRef `json:"tags,omitempty"`
}

// TagRef is the short form of a tag used in lists and on entries.
type TagRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// NewEntry is the input to create an entry.
type NewEntry struct {
	Title      string
	Content    string
	Mood       *string
	Location   *string
	Weather    *string
	IsPrivate  bool
	IsFavorite bool
	// TagIDs are tags (of the same user) to link to the new entry.
	TagIDs []int64
}

// Validate checks the input against the field rules.
func (e *NewEntry) Validate() error {
	if err := validateTitle(e.Title); err != nil {
		return err
	}
	if err := validateContent(e.Content); err != nil {
		return err
	}
	if err := validateMeta(e.Mood, e.Location, e.Weather); err != nil {
		return err
	}
	if len(e.TagIDs) > MaxTagsPerRequest {
		return Invalid("tags", "at most %d tags may be given", MaxTagsPerRequest)
	}
	for _, id := range e.TagIDs {
		if id <= 0 {
			return Invalid("tags", "tag ids must be positive integers")
		}
	}
	return nil
}

// EntryUpdate changes some fields of an entry. A nil field is left as it is;
// for Mood, Location and Weather, a pointer to nil clears the field.
type EntryUpdate struct {
	Title      *string
	Content    *string
	Mood       **string
	Location   **string
	Weather    **string
	IsPrivate  *bool
	IsFavorite *bool
}

// Validate checks the fields that are set.
func (u *EntryUpdate) Validate() error {
	if u.Title != nil {
		if err := validateTitle(*u.Title); err != nil {
			return err
		}
	}
	if u.Content != nil {
		if err := validateContent(*u.Content); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		v    **string
	}{{"mood", u.Mood}, {"location", u.Location}, {"weather", u.Weather}} {
		if f.v != nil && *f.v != nil {
			if err := validateMetaField(f.name, **f.v); err != nil {
				return err
			}
		}
	}
	return nil
}

// Empty reports whether the update changes nothing.
func (u *EntryUpdate) Empty() bool {
	return u.Title == nil && u.Content == nil && u.Mood == nil && u.Location == nil &&
		u.Weather == nil && u.IsPrivate == nil && u.IsFavorite == nil
}

// Apply writes the fields set in u into e and stamps e.UpdatedAt with now.
// It returns by how many bytes the title and content grew (negative when they
// shrank), which the store checks against the quota, and whether either
// changed, which tells the store to reindex the entry for search.
func (u *EntryUpdate) Apply(e *Entry, now time.Time) (grow int64, textChanged bool) {
	before := EntryBytes(e.Title, e.Content)
	if u.Title != nil {
		textChanged = textChanged || e.Title != *u.Title
		e.Title = *u.Title
	}
	if u.Content != nil {
		textChanged = textChanged || e.Content != *u.Content
		e.Content = *u.Content
	}
	if u.Mood != nil {
		e.Mood = *u.Mood
	}
	if u.Location != nil {
		e.Location = *u.Location
	}
	if u.Weather != nil {
		e.Weather = *u.Weather
	}
	if u.IsPrivate != nil {
		e.IsPrivate = *u.IsPrivate
	}
	if u.IsFavorite != nil {
		e.IsFavorite = *u.IsFavorite
	}
	e.UpdatedAt = now
	return EntryBytes(e.Title, e.Content) - before, textChanged
}

func validateTitle(t string) error {
	if !utf8.ValidString(t) {
		return Invalid("title", "title must be valid UTF-8")
	}
	if hasNUL(t) {
		return Invalid("title", "title must not contain NUL characters")
	}
	n := utf8.RuneCountInString(t)
	if n < 1 {
		return Invalid("title", "title is required (1-%d characters)", MaxTitleLen)
	}
	if n > MaxTitleLen {
		return Invalid("title", "title must be at most %d characters (got %d)", MaxTitleLen, n)
	}
	return nil
}

func validateContent(c string) error {
	if !utf8.ValidString(c) {
		return Invalid("content", "content must be valid UTF-8")
	}
	if hasNUL(c) {
		return Invalid("content", "content must not contain NUL characters")
	}
	if c == "" {
		return Invalid("content", "content is required")
	}
	if len(c) > MaxContentBytes {
		return Invalid("content", "content must be at most %d bytes (got %d)", MaxContentBytes, len(c))
	}
	return nil
}

func validateMeta(mood, location, weather *string) error {
	for _, f := range []struct {
		name string
		v    *string
	}{{"mood", mood}, {"location", location}, {"weather", weather}} {
		if f.v != nil {
			if err := validateMetaField(f.name, *f.v); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateMetaField(name, v string) error {
	if !utf8.ValidString(v) {
		return Invalid(name, "%s must be valid UTF-8", name)
	}
	if hasNUL(v) {
		return Invalid(name, "%s must not contain NUL characters", name)
	}
	if n := utf8.RuneCountInString(v); n > MaxMetaLen {
		return Invalid(name, "%s must be at most %d characters (got %d)", name, MaxMetaLen, n)
	}
	return nil
}

// EntryFilter selects and pages entries. Entries come newest first (by
// creation time, then id).
type EntryFilter struct {
	// TagIDs keeps entries that have every one of these tags.
	TagIDs []int64
	// From and To bound the creation time: From <= createdAt < To. Zero: open.
	From, To time.Time
	// FavoritesOnly keeps favorite entries only.
	FavoritesOnly bool
	// Limit is the page size (DefaultPageSize when 0, at most MaxPageSize).
	Limit int
	// Cursor is the opaque cursor of the previous page's NextCursor ("" for
	// the first page).
	Cursor string
}

// Validate checks the filter and fills in the default limit.
func (f *EntryFilter) Validate() error {
	if err := validatePageSize(&f.Limit); err != nil {
		return err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return Invalid("to", "to must be after from")
	}
	for _, id := range f.TagIDs {
		if id <= 0 {
			return Invalid("tagIds", "tag ids must be positive integers")
		}
	}
	return nil
}

// hasNUL reports whether s holds a NUL character. Text is refused with one
// whatever the store: PostgreSQL cannot keep it in a text column, and no
// journal needs it.
func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }

func validatePageSize(limit *int) error {
	if *limit == 0 {
		*limit = DefaultPageSize
	}
	if *limit < 1 || *limit > MaxPageSize {
		return Invalid("limit", "limit must be between 1 and %d", MaxPageSize)
	}
	return nil
}

// EntrySummary is one row of an entry list.
type EntrySummary struct {
	ID         int64     `json:"id"`
	Title      string    `json:"title"`
	TagCount   int       `json:"tagCount"`
	IsFavorite bool      `json:"isFavorite"`
	CreatedAt  time.Time `json:"createdAt"`
}

// EntryPage is one page of entries.
type EntryPage struct {
	Entries []EntrySummary `json:"entries"`
	// NextCursor fetches the next page; "" on the last page.
	NextCursor string `json:"nextCursor,omitempty"`
}

// SearchQuery is a full-text search of one user's entries.
type SearchQuery struct {
	// Text is what the user typed: words, matched as prefixes-free terms, all
	// of which must appear in the title or content. Search operators are not
	// interpreted.
	Text   string
	Limit  int
	Cursor string
}

// Validate checks the query and fills in the default limit.
func (q *SearchQuery) Validate() error {
	if !utf8.ValidString(q.Text) {
		return Invalid("query", "query must be valid UTF-8")
	}
	n := utf8.RuneCountInString(q.Text)
	if n == 0 || len(SearchTerms(q.Text)) == 0 {
		return Invalid("query", "query must contain at least one word")
	}
	if n > MaxSearchQueryLen {
		return Invalid("query", "query must be at most %d characters", MaxSearchQueryLen)
	}
	return validatePageSize(&q.Limit)
}

// SearchHit is one search result.
type SearchHit struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	Snippet   string    `json:"snippet"`
	CreatedAt time.Time `json:"createdAt"`
}

// SearchPage is one page of search results, best match first.
type SearchPage struct {
	Results    []SearchHit `json:"results"`
	NextCursor string      `json:"nextCursor,omitempty"`
}

// EntryService stores journal entries. Every method is scoped to one user:
// a row of another user is indistinguishable from a missing one (ENOTFOUND).
type EntryService interface {
	CreateEntry(ctx context.Context, userID string, in NewEntry) (*Entry, error)
	// GetEntry returns the entry with its tags.
	GetEntry(ctx context.Context, userID string, id int64) (*Entry, error)
	ListEntries(ctx context.Context, userID string, f EntryFilter) (*EntryPage, error)
	UpdateEntry(ctx context.Context, userID string, id int64, u EntryUpdate) (*Entry, error)
	// DeleteEntry deletes the entry and its tag links and returns what it was.
	DeleteEntry(ctx context.Context, userID string, id int64) (*Entry, error)
	// SearchEntries ranks the user's entries against the query. Ranking
	// depends on this user's entries only.
	SearchEntries(ctx context.Context, userID string, q SearchQuery) (*SearchPage, error)
}

// EntryNotFound is the error for an entry id the user does not have.
func EntryNotFound(id int64) error {
	return Errorf(ENOTFOUND, "Entry with ID %q not found", strconv.FormatInt(id, 10))
}

// UniqueIDs returns ids without repeats, in first-seen order: a tag named
// twice in one request links once.
func UniqueIDs(ids []int64) []int64 {
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// BulkLoader loads a user's tags and entries in one transaction, for
// fixtures and imports: all or nothing, and much faster than one call per
// row. Both stores implement it.
//
// Tags are created first, numbered after the user's existing tags, so
// entries[i].TagIDs may name them (the first new tag of a user with no tags
// is 1). Entries are numbered in slice order and dated one minute apart, the
// last one now, so the last entry is the newest. Every entry and tag is
// validated as by CreateEntry and CreateTag, with the same errors
// (ValidateBulk); ENOTFOUND if the user does not exist.
type BulkLoader interface {
	BulkInsert(ctx context.Context, userID string, entries []NewEntry, tags []NewTag) error
}

// ValidateBulk checks a bulk load's tags and entries as CreateTag and
// CreateEntry would, before a store opens its transaction.
func ValidateBulk(entries []NewEntry, tags []NewTag) error {
	for i := range tags {
		if err := tags[i].Validate(); err != nil {
			return err
		}
	}
	for i := range entries {
		if err := entries[i].Validate(); err != nil {
			return err
		}
	}
	return nil
}
