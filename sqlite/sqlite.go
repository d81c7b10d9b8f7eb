// Package sqlite stores EpicMe's journal and users in one SQLite file.
//
// It implements epicme.Store on modernc.org/sqlite (pure Go, no cgo). The
// database runs in WAL mode: any number of readers work beside one writer.
// The package keeps a pool of read-only connections and a single writer
// connection, so writes queue in the program instead of failing with
// SQLITE_BUSY, and every write transaction starts with BEGIN IMMEDIATE.
//
// The schema is a sequence of embedded migrations (migrations/NNNN_name.sql)
// applied in order when the database is opened.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/epicme/epicme"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

// busyTimeout is how long a connection waits for a lock held by another
// process before SQLITE_BUSY (within this process, writes never contend).
const busyTimeout = 5 * time.Second

// DB is an open EpicMe database. It implements epicme.Store and is safe for
// concurrent use.
type DB struct {
	path  string
	read  *sql.DB  // query_only connections, one per concurrent reader
	stmts sync.Map // stmtKey -> *sql.Stmt, prepared on the reader pool
	nowFn func() time.Time
	quota epicme.Quota // see SetQuota

	// The writer: one connection, held for the life of the DB. Write
	// transactions take mu, so they queue here rather than in SQLite.
	write      *sql.DB
	mu         sync.Mutex
	conn       *sql.Conn
	writeStmts map[string]*sql.Stmt // prepared on conn; guarded by mu

	closed sync.Once
}

var _ epicme.Store = (*DB)(nil)

// Open opens (creating if needed) the database file at path and brings its
// schema up to date. Before touching the file it checks that the directory
// exists, that the file and directory are writable, and that an existing file
// is a SQLite database, and says what to do when one of these fails; a file
// that fails a check is left unchanged.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: no database path given: pass the path of the database file")
	}
	if strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: database path %q must be a plain file path (no URI, no '?' or '#')", path)
	}
	if err := checkPath(path); err != nil {
		return nil, err
	}
	db := &DB{path: path, nowFn: time.Now}

	var err error
	db.write, err = sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	db.write.SetConnMaxIdleTime(0)

	if err := db.migrate(ctx, migrationFS); err != nil {
		db.write.Close()
		return nil, err
	}
	if db.conn, err = db.write.Conn(ctx); err != nil {
		db.write.Close()
		return nil, openError(path, err)
	}
	db.writeStmts = map[string]*sql.Stmt{}

	// Readers open after the writer has migrated the file and put it in WAL
	// mode, so their journal_mode pragma finds WAL set and writes nothing.
	db.read = sql.OpenDB(readerConnector{dsn: dsn(path, true), driver: db.write.Driver()})
	n := max(4, 2*runtime.GOMAXPROCS(0))
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)
	db.read.SetConnMaxLifetime(0)
	db.read.SetConnMaxIdleTime(0)
	if err := db.read.PingContext(ctx); err != nil {
		db.Close()
		return nil, openError(path, err)
	}
	return db, nil
}

// dsn returns the connection string. The pragmas are set on every new
// connection by the driver, so a connection the pool opens later has them too.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "temp_store(MEMORY)")
	// Reading pages through a memory map instead of a read(2) each saves a
	// system call per page that misses SQLite's own cache, which is most of
	// them on a database larger than that cache.
	q.Add("_pragma", fmt.Sprintf("mmap_size(%d)", mmapSize))
	if readOnly {
		q.Add("_pragma", "query_only(ON)")
	} else {
		// The writer updates indexes keyed by random user ids, all over
		// the file: a larger cache keeps their inner pages in memory.
		q.Add("_pragma", fmt.Sprintf("cache_size(%d)", -writerCacheKiB))
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	if !filepath.IsAbs(path) {
		u = url.URL{Scheme: "file", Opaque: path, RawQuery: q.Encode()}
	}
	return u.String()
}

// sqliteHeader opens every SQLite 3 database file (file format §1.3).
//
// https://www.sqlite.org/fileformat.html#the_database_header
const sqliteHeader = "SQLite format 3\x00"

// checkPath refuses paths SQLite would fail on later with a vaguer message.
func checkPath(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("sqlite: cannot create database %s: directory %s does not exist; create it (mkdir -p %s) or choose another path", path, dir, dir)
	case err != nil:
		return fmt.Errorf("sqlite: cannot use database directory %s: %w", dir, err)
	case !st.IsDir():
		return fmt.Errorf("sqlite: cannot create database %s: %s is not a directory", path, dir)
	case st.Mode().Perm()&0o222 == 0:
		// WAL mode creates path-wal and path-shm beside the database.
		return fmt.Errorf("sqlite: database directory %s is read-only; SQLite needs to create its -wal and -shm files there: make it writable (chmod u+w %s) or move the database", dir, dir)
	}

	st, err = os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite: cannot use database file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("sqlite: database path %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o222 == 0 {
		return fmt.Errorf("sqlite: database file %s is read-only; make it writable (chmod u+w %s) or open a copy", path, path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("sqlite: database file %s is not writable by this user; fix its owner or mode", path)
		}
		return fmt.Errorf("sqlite: cannot open database file %s: %w", path, err)
	}
	defer f.Close()
	if st.Size() == 0 {
		return nil // a new, empty file: SQLite initialises it
	}
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != sqliteHeader {
		return fmt.Errorf("sqlite: %s is not a SQLite database (its header is wrong): restore it from a backup, or move it away to start an empty journal", path)
	}
	return nil
}

// openError turns an error from the first statements on a file into advice.
func openError(path string, err error) error {
	var se *sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3lib.SQLITE_NOTADB, sqlite3lib.SQLITE_CORRUPT:
			return fmt.Errorf("sqlite: %s is corrupt or not a SQLite database (%v): restore it from a backup, or move it away to start an empty journal", path, err)
		case sqlite3lib.SQLITE_READONLY, sqlite3lib.SQLITE_PERM, sqlite3lib.SQLITE_CANTOPEN:
			return fmt.Errorf("sqlite: cannot write database %s or its directory (%v): make both writable by this user", path, err)
		case sqlite3lib.SQLITE_BUSY, sqlite3lib.SQLITE_LOCKED:
			return fmt.Errorf("sqlite: database %s is locked by another process (%v): stop it, or wait and retry", path, err)
		}
	}
	return fmt.Errorf("sqlite: open %s: %w", path, err)
}

// mmapSize is how much of the file each connection maps (address space, not
// memory: the pages are the operating system's shared page cache).
const mmapSize = 4 << 30

// writerCacheKiB is the page cache of the writer connection.
const writerCacheKiB = 64 << 10

// Optimize merges the full-text index into one segment. Run it after loading many entries at once
// (BulkInsert) so that searches do not have to visit many small index
// segments; it rewrites the whole index, which takes a while on a large
// database, and ordinary use never needs it (FTS5 merges as it goes).
//
// https://www.sqlite.org/fts5.html#the_optimize_command
func (db *DB) Optimize(ctx context.Context) error {
	return db.update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`INSERT INTO entries_fts (entries_fts) VALUES ('optimize')`)
		return err
	})
}

// Path returns the file the database was opened from.
func (db *DB) Path() string { return db.path }

// Ping reports whether the database answers a query.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.queryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		return epicme.Internal(err)
	}
	return nil
}

// Close releases the database.
//
// It deliberately never runs ANALYZE or PRAGMA optimize: statistics taken
// while the journal is small would stay in the file and steer the planner to
// table scans once it is large. Without statistics SQLite assumes large
// tables and uses the indexes every query here is written for (a test checks
// the plans).
func (db *DB) Close() error {
	var err error
	db.closed.Do(func() {
		db.stmts.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
		if db.read != nil {
			err = db.read.Close()
		}
		if db.conn != nil {
			db.mu.Lock()
			for _, st := range db.writeStmts {
				st.Close()
			}
			db.writeStmts = nil
			db.conn.Close()
			db.mu.Unlock()
		}
		if db.write != nil {
			if werr := db.write.Close(); err == nil {
				err = werr
			}
		}
	})
	return err
}

type stmtKey struct {
	pool *sql.DB
	sql  string
}

// stmt returns the prepared statement for query on pool, preparing it once.
// Queries are the fixed strings of this package (a bounded set), so the cache
// never grows without bound; database/sql prepares a statement again on each
// connection that runs it.
func (db *DB) stmt(ctx context.Context, pool *sql.DB, query string) (*sql.Stmt, error) {
	k := stmtKey{pool, query}
	if s, ok := db.stmts.Load(k); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if old, loaded := db.stmts.LoadOrStore(k, s); loaded {
		s.Close()
		return old.(*sql.Stmt), nil
	}
	return s, nil
}

// shortRead returns the context for a read whose work is bounded by an
// index (one entry, one page of at most 201 index entries): ctx's values
// without its cancellation. With a cancellable context, database/sql and
// the driver each start a goroutine per query to watch it, which cost more
// than such a read (about a tenth of a get_entry call); a read this short
// finishes as soon as cancelling it would.
func shortRead(ctx context.Context) context.Context {
	return context.WithoutCancel(ctx)
}

// queryRow runs a one-row query on a reader connection.
func (db *DB) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := db.stmt(ctx, db.read, query)
	if err != nil {
		// The unprepared query reports the same error through Scan.
		return db.read.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// query runs a query on a reader connection.
func (db *DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := db.stmt(ctx, db.read, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// rowScanner is a row of a query, of *sql.Row or *sql.Rows.
type rowScanner = interface{ Scan(...any) error }

// collect runs a read query and scans every row with scan; no row gives an
// empty, non-nil slice (a JSON array, as the PostgreSQL store returns).
func collect[T any](ctx context.Context, db *DB, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.query(ctx, query, args...)
	if err != nil {
		return nil, epicme.Internal(err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, epicme.Internal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, epicme.Internal(err)
	}
	return out, nil
}

// Tx is a write transaction on the writer connection. Its statements are
// prepared once on that connection and reused by every transaction.
type Tx struct {
	db  *DB
	ctx context.Context
	now time.Time
}

func (tx *Tx) stmt(query string) (*sql.Stmt, error) {
	if s, ok := tx.db.writeStmts[query]; ok {
		return s, nil
	}
	s, err := tx.db.conn.PrepareContext(tx.ctx, query)
	if err != nil {
		return nil, err
	}
	tx.db.writeStmts[query] = s
	return s, nil
}

func (tx *Tx) queryRow(query string, args ...any) *sql.Row {
	s, err := tx.stmt(query)
	if err != nil {
		// The unprepared query reports the same error through Scan.
		return tx.db.conn.QueryRowContext(tx.ctx, query, args...)
	}
	return s.QueryRowContext(tx.ctx, args...)
}

func (tx *Tx) query(query string, args ...any) (*sql.Rows, error) {
	s, err := tx.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(tx.ctx, args...)
}

func (tx *Tx) exec(query string, args ...any) (sql.Result, error) {
	s, err := tx.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(tx.ctx, args...)
}

// update runs fn in a write transaction and commits when it returns nil.
// Errors from fn are returned as they are (application errors keep their
// code); database errors become EINTERNAL.
//
// The transaction is plain BEGIN IMMEDIATE / COMMIT on the writer
// connection: IMMEDIATE takes SQLite's write lock at the start, so another
// process's writer makes it wait (busy_timeout) rather than fail halfway.
func (db *DB) update(ctx context.Context, fn func(tx *Tx) error) error {
	if err := ctx.Err(); err != nil {
		return epicme.Internal(err)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.writeStmts == nil {
		return epicme.Internal(errors.New("sqlite: database is closed"))
	}
	tx := &Tx{db: db, ctx: ctx, now: db.now()}
	if _, err := tx.exec(`BEGIN IMMEDIATE`); err != nil {
		return epicme.Internal(err)
	}
	err := fn(tx)
	if err == nil {
		if _, err = tx.exec(`COMMIT`); err == nil {
			return nil
		}
	}
	// Roll back even when ctx is done, or the connection would stay in the
	// transaction.
	if _, rerr := db.conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`); rerr != nil && !isNoTransaction(rerr) {
		err = errors.Join(err, rerr)
	}
	return epicme.Internal(err)
}

// isNoTransaction reports the error of a ROLLBACK after SQLite already rolled
// the transaction back by itself.
func isNoTransaction(err error) bool {
	return strings.Contains(err.Error(), "no transaction is active")
}

// now returns the current time in UTC, truncated to what the database keeps
// (nanoseconds) and without a monotonic reading, so a value returned by a
// write equals the value read back later.
func (db *DB) now() time.Time { return db.nowFn().UTC().Round(0) }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func toNanos(t time.Time) int64 { return t.UnixNano() }

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation of one of
// the given columns ("users.email").
func isUnique(err error, column string) bool {
	var se *sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code()
	if c != sqlite3lib.SQLITE_CONSTRAINT_UNIQUE && c != sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY {
		return false
	}
	return column == "" || strings.Contains(se.Error(), column)
}
