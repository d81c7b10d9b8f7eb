package bench

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/epicme/epicme"
)

// FixtureOptions sizes a benchmark fixture. Zero fields take the defaults of
// the full fixture: 10,000 users, 100 entries of about 1 KB each, 10 tags.
type FixtureOptions struct {
	Users          int
	EntriesPerUser int
	TagsPerUser    int
	// EntryBytes is the typical size of an entry's content.
	EntryBytes int
	// Seed makes the text; the same seed and sizes give the same journals.
	Seed uint64
	// Logger receives a progress line every ProgressEvery. Nil: no progress.
	Logger        *slog.Logger
	ProgressEvery time.Duration
}

func (o *FixtureOptions) setDefaults() {
	if o.Users <= 0 {
		o.Users = 10000
	}
	if o.EntriesPerUser <= 0 {
		o.EntriesPerUser = 100
	}
	if o.TagsPerUser <= 0 {
		o.TagsPerUser = 10
	}
	if o.TagsPerUser > len(tagNames) {
		o.TagsPerUser = len(tagNames)
	}
	if o.EntryBytes <= 0 {
		o.EntryBytes = 1024
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// DevUserEmail is the email of fixture user 0. It is the account a server in
// development mode acts as, so such a server, pointed at a fixture, serves a
// journal of the fixture.
const DevUserEmail = "dev@epicme.local"

// UserEmail returns the email of fixture user i.
func UserEmail(i int) string {
	if i == 0 {
		return DevUserEmail
	}
	return fmt.Sprintf("bench%05d@epicme.local", i)
}

// journal is one fixture user's data, generated ahead of writing.
type journal struct {
	index   int
	tags    []epicme.NewTag
	entries []epicme.NewEntry
	// entryTags[j] are indexes into tags for entries[j].
	entryTags [][]int
}

// genJournal makes user i's journal. It depends only on the seed, the sizes
// and i, so any user can be regenerated alone.
func genJournal(o *FixtureOptions, i int) *journal {
	g := newTextGen(o.Seed, uint64(i))
	j := &journal{index: i}
	perm := g.r.Perm(len(tagNames))
	for _, k := range perm[:o.TagsPerUser] {
		j.tags = append(j.tags, epicme.NewTag{Name: tagNames[k]})
	}
	for range o.EntriesPerUser {
		size := o.EntryBytes*7/10 + g.r.IntN(o.EntryBytes*6/10+1)
		e := epicme.NewEntry{
			Title:      g.title(),
			Content:    g.content(size),
			Mood:       g.pick(moods, 0.3),
			Location:   g.pick(places, 0.4),
			Weather:    g.pick(weathers, 0.5),
			IsPrivate:  g.r.IntN(5) != 0,
			IsFavorite: g.r.IntN(10) == 0,
		}
		n := 1 + g.r.IntN(min(4, len(j.tags)))
		j.entries = append(j.entries, e)
		j.entryTags = append(j.entryTags, g.r.Perm(len(j.tags))[:n])
	}
	return j
}

// FixtureStats says what BuildFixture wrote.
type FixtureStats struct {
	Users, Entries, Tags int
	Elapsed              time.Duration
}

// BuildFixture fills an empty store with o.Users journals. Text is generated
// on one goroutine while another writes, so the database is the bottleneck.
// It refuses a store that already has users: fixtures are built once, into a
// fresh data directory.
func BuildFixture(ctx context.Context, store epicme.Store, o FixtureOptions) (*FixtureStats, error) {
	o.setDefaults()
	existing, err := store.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		return nil, fmt.Errorf("the database already has %d users; build a fixture into an empty data directory", len(existing))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	journals := make(chan *journal, 8)
	go func() {
		defer close(journals)
		for i := range o.Users {
			select {
			case journals <- genJournal(&o, i):
			case <-ctx.Done():
				return
			}
		}
	}()

	start := time.Now()
	last := start
	st := &FixtureStats{}
	for j := range journals {
		if err := writeJournal(ctx, store, j, st); err != nil {
			return nil, fmt.Errorf("user %d: %w", j.index, err)
		}
		if now := time.Now(); now.Sub(last) >= o.ProgressEvery {
			last = now
			elapsed := now.Sub(start)
			rate := float64(st.Entries) / elapsed.Seconds()
			left := time.Duration(float64(o.Users*o.EntriesPerUser-st.Entries)/rate) * time.Second
			o.Logger.Info("fixture progress", "users", fmt.Sprintf("%d/%d", st.Users, o.Users),
				"entries", st.Entries, "entries_per_s", int(rate), "eta", left.Round(time.Second).String())
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st.Elapsed = time.Since(start)
	return st, nil
}

// bulkLoader is implemented by stores that load a user's journal in one
// transaction (sqlite.DB). New tags are numbered 1, 2, ... for a user without
// tags, so entries can name them before they exist.
type bulkLoader interface {
	BulkInsert(ctx context.Context, userID string, entries []epicme.NewEntry, tags []epicme.NewTag) error
}

func writeJournal(ctx context.Context, store epicme.Store, j *journal, st *FixtureStats) error {
	u, err := store.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Email: UserEmail(j.index)})
	if err != nil {
		return err
	}
	st.Users++
	if bl, ok := store.(bulkLoader); ok {
		for k := range j.entries {
			for _, t := range j.entryTags[k] {
				j.entries[k].TagIDs = append(j.entries[k].TagIDs, int64(t+1))
			}
		}
		if err := bl.BulkInsert(ctx, u.ID, j.entries, j.tags); err != nil {
			return err
		}
		st.Tags += len(j.tags)
		st.Entries += len(j.entries)
		return nil
	}
	// Any other store: one call per row.
	tagIDs := make([]int64, len(j.tags))
	for k, t := range j.tags {
		tag, err := store.CreateTag(ctx, u.ID, t)
		if err != nil {
			return err
		}
		tagIDs[k] = tag.ID
		st.Tags++
	}
	for k, e := range j.entries {
		for _, t := range j.entryTags[k] {
			e.TagIDs = append(e.TagIDs, tagIDs[t])
		}
		if _, err := store.CreateEntry(ctx, u.ID, e); err != nil {
			return err
		}
		st.Entries++
	}
	return nil
}
