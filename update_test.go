package epicme_test

import (
	"testing"
	"time"

	"github.com/epicme/epicme"
)

func TestRule_EntryUpdateApplyChangesOnlySetFields(t *testing.T) {
	mood := "calm"
	var noWeather *string
	was := time.Unix(1, 0).UTC()
	now := time.Unix(2, 0).UTC()
	e := &epicme.Entry{Title: "ab", Content: "cd", Weather: &mood, UpdatedAt: was}

	title := "abcd"
	u := epicme.EntryUpdate{Title: &title, Mood: &[]*string{&mood}[0], Weather: &noWeather}
	grow, changed := u.Apply(e, now)
	if grow != 2 || !changed {
		t.Fatalf("grow %d, changed %v; want 2, true", grow, changed)
	}
	if e.Title != "abcd" || e.Content != "cd" || e.Mood == nil || *e.Mood != "calm" || e.Weather != nil || !e.UpdatedAt.Equal(now) {
		t.Fatalf("entry after update: %+v", e)
	}

	// Same text again, only a flag: no growth, nothing to reindex.
	fav := true
	u = epicme.EntryUpdate{Content: &e.Content, IsFavorite: &fav}
	if grow, changed := u.Apply(e, now); grow != 0 || changed || !e.IsFavorite {
		t.Fatalf("grow %d, changed %v, favorite %v; want 0, false, true", grow, changed, e.IsFavorite)
	}
}

func TestRule_TagUpdateApplyChangesOnlySetFields(t *testing.T) {
	desc := "old"
	tag := &epicme.Tag{Name: "a", Description: &desc}
	name := "b"
	u := epicme.TagUpdate{Name: &name}
	if u.Empty() {
		t.Fatal("update with a name reported empty")
	}
	now := time.Unix(3, 0).UTC()
	u.Apply(tag, now)
	if tag.Name != "b" || tag.Description == nil || *tag.Description != "old" || !tag.UpdatedAt.Equal(now) {
		t.Fatalf("tag after update: %+v", tag)
	}
	if epicme.TagNameKey("Work") != epicme.TagNameKey("wORK") {
		t.Fatal("tag names must compare case-insensitively")
	}
}
