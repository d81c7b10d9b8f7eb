package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
)

// The hottest reads (GetEntry, ListEntries) go to the driver directly:
// database/sql wraps each query in a Rows with its own locks and converts
// every column of every row through reflection, which cost about as much
// as SQLite's own work for a page of 50 entries. Here a statement is
// prepared once on each reader connection and its rows are read as the
// driver returns them. Everything else goes through database/sql.

// rawStmtKey names a statement prepared on one reader's driver connection.
type rawStmtKey struct {
	conn  any // the driver connection
	query string
}

// errStopRows ends a rawQuery early without an error.
var errStopRows = errors.New("stop")

// rawQuery runs query with args on a reader connection and calls row with
// each row's values, as the driver returns them (int64, float64, string,
// []byte or nil), until row returns errStopRows or an error, or the rows
// end. The values are valid only during the call.
//
// The statement stays prepared on that connection for the next call; the
// pool never closes reader connections (no lifetime, no idle limit), and
// Close finalizes the statements.
func (db *DB) rawQuery(ctx context.Context, query string, args []driver.NamedValue, columns int, row func(dest []driver.Value) error) error {
	conn, err := db.read.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		st, err := db.rawStmt(ctx, dc, query)
		if err != nil {
			return err
		}
		q, ok := st.(driver.StmtQueryContext)
		if !ok {
			return fmt.Errorf("sqlite: driver statement %T cannot query with a context", st)
		}
		rows, err := q.QueryContext(ctx, args)
		if err != nil {
			return err
		}
		defer rows.Close()
		dest := make([]driver.Value, columns)
		for {
			switch err := rows.Next(dest); {
			case err == io.EOF:
				return nil
			case err != nil:
				return err
			}
			switch err := row(dest); {
			case errors.Is(err, errStopRows):
				return nil
			case err != nil:
				return err
			}
		}
	})
}

// rawStmt returns query prepared on the driver connection dc, preparing it
// the first time.
func (db *DB) rawStmt(ctx context.Context, dc any, query string) (driver.Stmt, error) {
	k := rawStmtKey{dc, query}
	if st, ok := db.rawStmts.Load(k); ok {
		return st.(driver.Stmt), nil
	}
	p, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, fmt.Errorf("sqlite: driver connection %T cannot prepare with a context", dc)
	}
	st, err := p.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	// Only this goroutine holds dc (conn.Raw), so no one else stores k.
	db.rawStmts.Store(k, st)
	return st, nil
}

// closeRawStmts finalizes the statements rawQuery prepared.
func (db *DB) closeRawStmts() {
	db.rawStmts.Range(func(k, st any) bool {
		st.(driver.Stmt).Close()
		db.rawStmts.Delete(k)
		return true
	})
}

// rawColumnError reports a column whose value has a type its schema does
// not allow: the database was changed behind the program's back.
func rawColumnError(column string, v driver.Value) error {
	return fmt.Errorf("sqlite: column %s holds a %T", column, v)
}

// rawString reads a TEXT column.
func rawString(column string, v driver.Value) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	}
	return "", rawColumnError(column, v)
}

// rawOptString reads a TEXT column that may be NULL.
func rawOptString(column string, v driver.Value) (*string, error) {
	if v == nil {
		return nil, nil
	}
	s, err := rawString(column, v)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// rawInt reads an INTEGER column.
func rawInt(column string, v driver.Value) (int64, error) {
	if n, ok := v.(int64); ok {
		return n, nil
	}
	return 0, rawColumnError(column, v)
}
