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
// prepared once on each reader connection, kept by the connection itself
// (readerConn), and its rows are read as the driver returns them.
// Everything else goes through database/sql.

// errStopRows ends a rawQuery early without an error.
var errStopRows = errors.New("stop")

// rawQuery runs query with args on a reader connection and calls row with
// each row's values, as the driver returns them (int64, float64, string,
// []byte or nil), until row returns errStopRows or an error, or the rows
// end. The values are valid only during the call.
func (db *DB) rawQuery(ctx context.Context, query string, args []driver.NamedValue, columns int, row func(dest []driver.Value) error) error {
	conn, err := db.read.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		rc, ok := dc.(*readerConn)
		if !ok {
			return fmt.Errorf("sqlite: reader connection is a %T", dc)
		}
		st, err := rc.stmt(ctx, query)
		if err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, args)
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

// driverConn is what database/sql uses of the driver's connection
// (modernc.org/sqlite's implements all of it).
type driverConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// rawStmt is a prepared statement that queries with a context.
type rawStmt interface {
	driver.Stmt
	driver.StmtQueryContext
}

// readerConn is a connection of the reader pool: the driver's connection
// and the statements rawQuery prepared on it, which it finalizes before it
// closes (the pool closes a connection whose query was interrupted).
// stmts is used only by the goroutine that holds the connection.
type readerConn struct {
	driverConn
	stmts map[string]rawStmt
}

// stmt returns query prepared on c, preparing it the first time.
func (c *readerConn) stmt(ctx context.Context, query string) (rawStmt, error) {
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	st, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	q, ok := st.(rawStmt)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("sqlite: driver statement %T cannot query with a context", st)
	}
	if c.stmts == nil {
		c.stmts = map[string]rawStmt{}
	}
	c.stmts[query] = q
	return q, nil
}

// Close finalizes the connection's statements, then closes it.
func (c *readerConn) Close() error {
	for _, st := range c.stmts {
		st.Close()
	}
	c.stmts = nil
	return c.driverConn.Close()
}

// readerConnector opens the reader pool's connections (database/sql's
// driver.Connector).
type readerConnector struct {
	dsn    string
	driver driver.Driver
}

// Connect opens a reader connection.
func (c readerConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.driver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	dc, ok := conn.(driverConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("sqlite: driver connection %T lacks what the reader pool needs", conn)
	}
	return &readerConn{driverConn: dc}, nil
}

// Driver returns the driver the connections come from.
func (c readerConnector) Driver() driver.Driver { return c.driver }

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
