package sqlite

import (
	"context"
	"database/sql/driver"
	"testing"

	"github.com/epicme/epicme"
)

// TestReaderConnClosesItsStatements: when the pool drops a reader
// connection (as it does after an interrupted query), the statements
// rawQuery prepared on it are finalized with it, and reads go on, on
// another connection, until Close.
func TestReaderConnClosesItsStatements(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t)
	u, err := db.CreateUser(ctx, epicme.NewUser{Issuer: epicme.LocalIssuer, Subject: "s", Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := db.CreateEntry(ctx, u.ID, epicme.NewEntry{Title: "t", Content: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetEntry(ctx, u.ID, e.ID); err != nil {
		t.Fatal(err)
	}
	conn, err := db.read.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var dropped *readerConn
	err = conn.Raw(func(dc any) error {
		dropped = dc.(*readerConn)
		if _, err := dropped.stmt(ctx, getEntrySQL); err != nil {
			return err
		}
		return driver.ErrBadConn // the pool closes this connection
	})
	if err != driver.ErrBadConn {
		t.Fatalf("Raw = %v", err)
	}
	conn.Close()
	if dropped.stmts != nil {
		t.Fatalf("a dropped connection kept %d statements", len(dropped.stmts))
	}
	for range 10 {
		got, err := db.GetEntry(ctx, u.ID, e.ID)
		if err != nil || got.Title != "t" {
			t.Fatalf("GetEntry after a dropped connection = %+v, %v", got, err)
		}
		if _, err := db.ListEntries(ctx, u.ID, epicme.EntryFilter{Limit: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
