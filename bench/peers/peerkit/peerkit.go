// Package peerkit is what the benchmark peers in bench/peers share: the
// flags, the token table, the SQLite read of one entry and the shape of the
// get_entry result. Each peer does the same work per call as EpicMe's
// get_entry: hash the bearer token with SHA-256 and look the hash up, read
// the entry and its tags in one statement, and encode a tool result with a
// resource link and the entry as JSON text and structured content.
//
// The peers exist only to be measured against EpicMe by "epicme-bench
// peers"; they serve loopback only and are not examples of a complete
// server (no Origin check, no protected resource metadata).
package peerkit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/epicme/epicme"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Flags are every peer's command-line flags.
type Flags struct {
	// DB is the fixture's SQLite file.
	DB string
	// Tokens is the token table: lines of "<hex SHA-256 of the token> <user id>".
	Tokens string
	// Addr is the loopback address to listen on.
	Addr string
	// Tools is a file holding the "tools" array of EpicMe's tools/list
	// (optional): a peer lists these tools, so that every contestant's
	// tools/list encodes the same definitions. Only get_entry is served.
	Tools string
}

// ParseFlags parses the command line.
func ParseFlags() *Flags {
	f := &Flags{}
	flag.StringVar(&f.DB, "db", "", "the fixture's SQLite `file`")
	flag.StringVar(&f.Tokens, "tokens", "", "token table `file`: lines of <hex sha256 of token> <user id>")
	flag.StringVar(&f.Addr, "addr", "127.0.0.1:0", "loopback `address` to listen on")
	flag.StringVar(&f.Tools, "tools", "", "`file` of the tools to list: the \"tools\" array of EpicMe's tools/list\n(default: get_entry alone)")
	flag.Parse()
	if f.DB == "" || f.Tokens == "" {
		fmt.Fprintln(os.Stderr, "both -db and -tokens are required")
		os.Exit(2)
	}
	return f
}

// TokenTable maps the SHA-256 of a bearer token to its user's id.
type TokenTable map[[sha256.Size]byte]string

// LoadTokens reads a token table file.
func LoadTokens(path string) (TokenTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t := TokenTable{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		h, user, ok := strings.Cut(sc.Text(), " ")
		var k [sha256.Size]byte
		if b, err := hex.DecodeString(h); !ok || err != nil || len(b) != len(k) || user == "" {
			return nil, fmt.Errorf("%s:%d: want <hex sha256> <user id>", path, n)
		}
		hex.Decode(k[:], []byte(h))
		t[k] = user
	}
	return t, sc.Err()
}

// LoadTools reads the tools of Flags.Tools, one raw JSON object each, or
// returns nil when path is empty.
func LoadTools(path string) ([]json.RawMessage, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tools []json.RawMessage
	if err := json.Unmarshal(b, &tools); err != nil {
		return nil, fmt.Errorf("%s: want a JSON array of tools: %w", path, err)
	}
	return tools, nil
}

// ToolNameOf returns the name of a raw tool definition.
func ToolNameOf(tool json.RawMessage) string {
	var t struct {
		Name string `json:"name"`
	}
	json.Unmarshal(tool, &t)
	return t.Name
}

// Unserved is the error text of a listed tool that a peer does not serve.
func Unserved(name string) string { return "tool " + name + " is listed, not served, by this peer" }

// Lookup returns the user of a token, or "" when the token is unknown. It
// hashes the token as a verifier that stores only hashes must.
func (t TokenTable) Lookup(token string) string {
	return t[sha256.Sum256([]byte(token))]
}

// BearerToken returns the token of an "Authorization: Bearer" header
// (RFC 6750 §2.1), or "".
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// TokenExpiry is the expiry peers report for table tokens, which do not
// expire during a run; some stacks refuse a token without one.
var TokenExpiry = time.Now().Add(24 * time.Hour)

// Store reads entries from the fixture.
type Store struct {
	db  *sql.DB
	get *sql.Stmt
}

// getEntrySQL is the statement EpicMe reads an entry with: one row, its
// tags column holding the JSON array of its tags ordered by name (kept by
// the triggers of EpicMe's SQLite migration 0005).
const getEntrySQL = `SELECT e.id, e.title, e.content, e.mood, e.location, e.weather,
	e.is_private, e.is_favorite, e.created_at, e.updated_at, e.tags
FROM entries e WHERE e.user_id = ? AND e.id = ?`

// OpenStore opens the fixture read-only, with the pragmas and pool size
// EpicMe's readers use.
func OpenStore(path string) (*Store, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Add("_pragma", fmt.Sprintf("mmap_size(%d)", int64(4<<30)))
	q.Add("_pragma", "query_only(ON)")
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	get, err := db.Prepare(getEntrySQL)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("preparing the entry query on %s: %w", path, err)
	}
	return &Store{db: db, get: get}, nil
}

// Entry is an entry as EpicMe's get_entry returns it: EpicMe's own domain
// type, so every peer writes the same JSON.
type Entry = epicme.Entry

// TagRef is a tag on an entry.
type TagRef = epicme.TagRef

// ErrNotFound is returned for an entry the user does not have.
var ErrNotFound = errors.New("not found")

// GetEntry reads the user's entry.
func (s *Store) GetEntry(ctx context.Context, userID string, id int64) (*Entry, error) {
	e := Entry{UserID: userID}
	var created, updated int64
	var tags string
	err := s.get.QueryRowContext(ctx, userID, id).Scan(&e.ID, &e.Title, &e.Content, &e.Mood, &e.Location, &e.Weather,
		&e.IsPrivate, &e.IsFavorite, &created, &updated, &tags)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	e.CreatedAt, e.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	if tags != "" && tags != "[]" {
		if err := json.Unmarshal([]byte(tags), &e.Tags); err != nil {
			return nil, err
		}
	}
	return &e, nil
}

// NotFoundText is the tool error text for a missing entry, as EpicMe words it.
func NotFoundText(id int64) string {
	return fmt.Sprintf("Entry with ID %q not found", strconv.FormatInt(id, 10))
}

// EntryURI is the entry's resource URI.
func EntryURI(id int64) string { return "epicme://entries/" + strconv.FormatInt(id, 10) }

// LinkDescription is the description of the entry's resource link.
func LinkDescription(title string) string { return `Journal Entry: "` + title + `"` }

// Structured returns the structured content of the result, {"entry": e},
// encoded once: the text content carries the same bytes.
func Structured(e *Entry) (json.RawMessage, error) {
	return json.Marshal(struct {
		Entry *Entry `json:"entry"`
	}{e})
}

// Tool description and input schema shared by every peer.
const (
	ToolName        = "get_entry"
	ToolDescription = "Get a journal entry by id, with its tags."
)

// Listen listens on the loopback address and prints the MCP endpoint's URL
// on the first line of standard output, which is how the harness learns
// the port.
func Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("-addr %q: peers listen on loopback only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	fmt.Printf("listening http://%s/mcp\n", ln.Addr())
	return ln, nil
}

// Fatal prints the error and exits.
func Fatal(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}
