// Package postgres stores EpicMe's journal and users in PostgreSQL.
//
// It implements epicme.Store on github.com/jackc/pgx/v5 with a connection
// pool (pgxpool), so any number of EpicMe instances can share one database.
// It keeps exactly the rules of the sqlite package, checked by the same
// contract suite (package storetest): per-user ids from per-user counters,
// the same error messages, cursors, filters and search ranking.
//
// The schema is a sequence of embedded migrations (migrations/NNNN_name.sql)
// applied when the database is opened, in one transaction under an advisory
// lock, so instances starting together apply each migration once and a
// failed migration leaves the schema as it was.
//
// Writes run in READ COMMITTED transactions, and every write to a user's
// journal first locks the user's row (which holds the user's id counters)
// until it commits: one user's writes queue behind each other, whatever
// instance runs them, while other users' writes do not wait. Since each
// transaction locks one user row before anything else, they cannot deadlock,
// and a row read at the start of a write cannot change before it ends.
//
// When the server ends the pool's sessions (a restart, a failover), the pool
// is emptied and the call that noticed runs once more on a new connection:
// reads and idempotent writes always, other writes only if the connection
// was lost before COMMIT, so a write is never applied twice.
//
// cmd/epicme selects this store with --database-url postgres://... (or
// EPICME_DATABASE_URL); pool settings go in the URL (pool_max_conns=8,
// pool_max_conn_idle_time=5m, connect_timeout=5, statement_timeout=30000)
// or in Options.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/epicme/epicme"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options tune the connection pool. Zero values take the defaults; settings
// given in the URL (pool_max_conns, pool_max_conn_idle_time, connect_timeout,
// statement_timeout, ...) apply first and a non-zero option overrides them.
type Options struct {
	// MaxConns bounds the pool (default: the URL's pool_max_conns, else
	// max(4, 2*GOMAXPROCS)). Every instance holds up to this many
	// connections: keep instances × MaxConns under the server's
	// max_connections.
	MaxConns int32
	// MinConns connections are kept open even when idle (default 0).
	MinConns int32
	// ConnectTimeout bounds opening one connection, TLS included
	// (default 5s).
	ConnectTimeout time.Duration
	// MaxConnLifetime closes connections older than this (default 1h), so
	// that a failover or a DNS change is picked up.
	MaxConnLifetime time.Duration
	// MaxConnIdleTime closes connections idle for this long (default 30m).
	MaxConnIdleTime time.Duration
	// StatementTimeout makes the server cancel any statement running longer
	// (default 30s; negative: no limit). Requests carry their own deadlines
	// too; this bounds work whose client went away.
	StatementTimeout time.Duration
}

// Defaults of Options.
const (
	defaultConnectTimeout   = 5 * time.Second
	defaultStatementTimeout = 30 * time.Second
)

// DB is an open EpicMe database on PostgreSQL. It implements epicme.Store and
// is safe for concurrent use.
type DB struct {
	pool   *pgxpool.Pool
	target string // host:port/database, for messages (never the password)
	nowFn  func() time.Time
	quota  epicme.Quota // see SetQuota
}

var _ epicme.Store = (*DB)(nil)

// Open connects to the database at url (postgres://user@host:port/db?...,
// or any form pgx accepts) with default Options and brings its schema up to
// date.
func Open(ctx context.Context, url string) (*DB, error) {
	return OpenWithOptions(ctx, url, Options{})
}

// OpenWithOptions is Open with pool settings.
func OpenWithOptions(ctx context.Context, url string, o Options) (*DB, error) {
	return open(ctx, url, o, migrationFS)
}

func open(ctx context.Context, rawURL string, o Options, migrations migrationSource) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, fmt.Errorf("postgres: the database URL is not valid: use postgres://user@host:5432/database?sslmode=...")
	}
	_, hasMax := urlParam(rawURL, "pool_max_conns")
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	} else if !hasMax {
		cfg.MaxConns = int32(max(4, 2*runtime.GOMAXPROCS(0)))
	}
	if o.MinConns > 0 {
		cfg.MinConns = min(o.MinConns, cfg.MaxConns)
	}
	if o.MaxConnLifetime > 0 {
		cfg.MaxConnLifetime = o.MaxConnLifetime
	}
	if o.MaxConnIdleTime > 0 {
		cfg.MaxConnIdleTime = o.MaxConnIdleTime
	}
	if o.ConnectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	} else if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["statement_timeout"]; !ok || o.StatementTimeout != 0 {
		st := o.StatementTimeout
		if st == 0 {
			st = defaultStatementTimeout
		}
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(max(st, 0).Milliseconds())
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "epicme"
	}
	// Times are exchanged as UTC instants; the session zone only matters to
	// someone reading the tables with psql.
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"

	db := &DB{
		target: fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database),
		nowFn:  time.Now,
	}
	if db.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, db.connectError(err)
	}
	if err := db.migrate(ctx, migrations); err != nil {
		db.pool.Close()
		return nil, err
	}
	return db, nil
}

// urlParam returns a query parameter of a URL-form connection string.
func urlParam(raw, name string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", false
	}
	v, ok := u.Query()[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// connectError says what to check when the server cannot be reached or
// refuses us. It names the server but never repeats the URL, which may
// hold a password.
func (db *DB) connectError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01", "28000":
			return fmt.Errorf("postgres: %s refused the credentials (%s): check the user and password in the database URL", db.target, pe.Message)
		case "3D000":
			return fmt.Errorf("postgres: %s: %s: create it (createdb) or fix the database URL", db.target, pe.Message)
		}
		return fmt.Errorf("postgres: %s: %s (SQLSTATE %s)", db.target, pe.Message, pe.Code)
	}
	return fmt.Errorf("postgres: cannot reach %s: %w: check that PostgreSQL is running and the database URL", db.target, err)
}

// Target names the database as host:port/database, for messages and logs;
// unlike the URL it never holds a password.
func (db *DB) Target() string { return db.target }

// Pool returns the connection pool, for statistics (pool.Stat()).
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Ping reports whether the database answers a query.
func (db *DB) Ping(ctx context.Context) error {
	_, err := idempotent(ctx, db, func() (struct{}, error) { return struct{}{}, db.pool.Ping(ctx) })
	if err != nil {
		return epicme.Internal(err)
	}
	return nil
}

// connectionLost reports whether err means that the connection a statement
// ran on is gone (the server restarted, failed over or ended the session)
// rather than that the statement failed. After a restart every pooled
// connection is dead, though the pool only finds out one use at a time.
func connectionLost(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 57P: the server is shutting down or ended the session;
		// class 08: connection exceptions.
		return strings.HasPrefix(pe.Code, "57P") || strings.HasPrefix(pe.Code, "08")
	}
	var ne net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// idempotent runs fn, a read or a write that may run twice with the same
// outcome, and when the connection was lost under it closes every pooled
// connection (they are likely dead too) and runs it once more on a new one.
// If the server is really down, the second try fails as well and the caller
// gets an EUNAVAILABLE error (HTTP 503, try again).
func idempotent[T any](ctx context.Context, db *DB, fn func() (T, error)) (T, error) {
	v, err := fn()
	if err != nil && connectionLost(err) && ctx.Err() == nil {
		db.pool.Reset()
		if v, err = fn(); err != nil && connectionLost(err) && ctx.Err() == nil {
			return v, epicme.Unavailable(err)
		}
	}
	return v, err
}

// Close releases the connections; it waits for queries in flight.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// update runs fn in a READ COMMITTED transaction and commits when fn
// returns nil. Errors from fn are returned as they are (application errors
// keep their code); database errors become EINTERNAL.
//
// When the connection is lost before COMMIT is sent, the server has rolled
// the transaction back, so it is run once more on a fresh connection (see
// idempotent). A connection lost during COMMIT leaves the outcome unknown: that
// error goes to the caller, never a second attempt that could write twice.
// When the second attempt too fails before COMMIT, nothing was written and
// the caller gets an EUNAVAILABLE error (HTTP 503, try again); an unknown
// outcome stays EINTERNAL, since a retry could write twice.
func (db *DB) update(ctx context.Context, fn func(tx *Tx) error) error {
	committing, err := db.tryUpdate(ctx, fn)
	if err != nil && !committing && connectionLost(err) && ctx.Err() == nil {
		db.pool.Reset()
		if committing, err = db.tryUpdate(ctx, fn); err != nil && !committing && connectionLost(err) && ctx.Err() == nil {
			return epicme.Unavailable(err)
		}
	}
	return err
}

func (db *DB) tryUpdate(ctx context.Context, fn func(tx *Tx) error) (committing bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, epicme.Internal(err)
	}
	ptx, err := db.pool.Begin(ctx)
	if err != nil {
		return false, epicme.Internal(err)
	}
	tx := &Tx{Tx: ptx, ctx: ctx, now: db.now(), quota: db.quota.OrDefault()}
	if err := fn(tx); err != nil {
		// Roll back even when ctx is done, or the connection would go back
		// to the pool inside the transaction.
		if rerr := ptx.Rollback(context.WithoutCancel(ctx)); rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) && !connectionLost(rerr) {
			err = errors.Join(err, rerr)
		}
		return false, epicme.Internal(err)
	}
	if err := ptx.Commit(ctx); err != nil {
		return true, epicme.Internal(err)
	}
	return true, nil
}

// updateJournal is update for a write to one user's journal: it first locks
// the user's row (FOR NO KEY UPDATE: foreign keys to the row are not
// blocked) and records the user's rid in tx.rid, 0 when there is no such
// user (fn then reports whatever is not found).
func (db *DB) updateJournal(ctx context.Context, userID string, fn func(tx *Tx) error) error {
	return db.update(ctx, func(tx *Tx) error {
		err := tx.queryRow(`SELECT rid FROM users WHERE id = $1 FOR NO KEY UPDATE`, userID).Scan(&tx.rid)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return fn(tx)
	})
}

// Tx is a write transaction.
type Tx struct {
	pgx.Tx
	ctx context.Context
	now time.Time
	rid int64 // the user's rid, under updateJournal

	quota epicme.Quota // the store's, defaults filled in
}

func (tx *Tx) queryRow(sql string, args ...any) pgx.Row { return tx.QueryRow(tx.ctx, sql, args...) }

func (tx *Tx) exec(sql string, args ...any) (pgconn.CommandTag, error) {
	return tx.Exec(tx.ctx, sql, args...)
}

// now returns the current time in UTC, truncated to what PostgreSQL keeps
// (microseconds), so a value returned by a write equals the value read back.
func (db *DB) now() time.Time { return db.nowFn().UTC().Truncate(time.Microsecond) }

// utc drops the location pgx gives scanned times (Local), so times compare
// equal with reflect.DeepEqual and print as UTC.
func utc(t time.Time) time.Time { return t.UTC() }

// ceilMicro rounds t up to a whole microsecond. Stored times are whole
// microseconds, so for any stored c, c >= t ⇔ c >= ceilMicro(t), and
// likewise for <: a filter bound with nanoseconds selects what it would on
// SQLite, although pgx would drop the nanoseconds.
func ceilMicro(t time.Time) time.Time {
	if r := t.Truncate(time.Microsecond); !r.Equal(t) {
		return r.Add(time.Microsecond)
	}
	return t
}

// isUnique reports whether err violates the named unique constraint or index.
func isUnique(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == constraint
}
