package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/epicme/epicme"
	"github.com/jackc/pgx/v5"
)

// Notify sends payload (at most 7999 bytes) to every session listening on
// channel in this database, which is every instance of EpicMe sharing it.
// PostgreSQL delivers notifications when the sending transaction commits,
// in commit order; this one commits at once.
//
// https://www.postgresql.org/docs/15/sql-notify.html
func (db *DB) Notify(ctx context.Context, channel, payload string) error {
	if _, err := db.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		return epicme.Internal(err)
	}
	return nil
}

// Listener receives the notifications of one channel (see Listen).
type Listener struct {
	// Notify is called with each payload, in the order the sending
	// transactions committed, one at a time.
	Notify func(payload string)
	// Ready is called each time LISTEN is in place on a connection: once at
	// the start, then after every reconnection. From then on no
	// notification is missed.
	Ready func()
	// Lost is called as soon as the connection is found dead, before
	// reconnecting. Notifications sent until the next Ready are missed, so
	// whoever keeps a cache that a notification would correct must drop it
	// and fail closed until Ready.
	Lost func(err error)
	// HealthCheck is how often an idle connection is checked (default 1s):
	// a connection that died without a word (a cable, a firewall) is found
	// within about twice this.
	HealthCheck time.Duration
}

// Listen receives notifications on channel until ctx is done, on a
// connection of its own (outside the pool), and returns ctx's error. It
// reconnects by itself, waiting up to 5s between attempts; Lost and Ready
// bracket every gap.
func (db *DB) Listen(ctx context.Context, channel string, l Listener) error {
	every := l.HealthCheck
	if every <= 0 {
		every = time.Second
	}
	backoff := 100 * time.Millisecond
	for {
		err := db.listenOnce(ctx, channel, l, every)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if l.Lost != nil {
			l.Lost(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		if err == nil {
			backoff = 100 * time.Millisecond
		}
	}
}

// errHealthCheck says that a listening connection did not answer a ping.
var errHealthCheck = errors.New("postgres: the listening connection did not answer")

// listenOnce connects, listens and delivers until the connection fails.
func (db *DB) listenOnce(ctx context.Context, channel string, l Listener, every time.Duration) error {
	cfg := db.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "epicme-listen"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return db.connectError(err)
	}
	defer func() {
		// Bounded: on a dead path even the goodbye may not get through.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return fmt.Errorf("postgres: LISTEN %s: %w", channel, err)
	}
	if l.Ready != nil {
		l.Ready()
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, every)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		// A notification can come with an error (it was read just as
		// the deadline passed): deliver it all the same.
		if n != nil && l.Notify != nil {
			l.Notify(n.Payload)
		}
		switch {
		case err == nil:
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded):
			return err
		}
		// Nothing for a while: check that the connection still answers.
		pctx, cancel := context.WithTimeout(ctx, every)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errors.Join(errHealthCheck, err)
		}
	}
}
