package pgtest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Link forwards TCP connections from a loopback port to the database
// server, so that a test can take the server away and bring it back: Cut
// closes the port and every open connection, as when the server goes down
// or the network between fails; Restore listens on the same port again.
type Link struct {
	tb     testing.TB
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

// NewLink starts forwarding to target (host:port) from a new loopback
// port; it is cut when the test ends.
func NewLink(tb testing.TB, target string) *Link {
	tb.Helper()
	l := &Link{tb: tb, target: target}
	l.listen("127.0.0.1:0")
	tb.Cleanup(l.Cut)
	return l
}

// Addr is the loopback host:port to connect to instead of target.
func (l *Link) Addr() string { return l.addr }

func (l *Link) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		l.tb.Fatal(err)
	}
	l.mu.Lock()
	l.ln, l.addr = ln, ln.Addr().String()
	l.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", l.target)
			if err != nil {
				c.Close()
				continue
			}
			l.mu.Lock()
			l.conns = append(l.conns, c, s)
			l.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
}

// Cut closes the port and every connection through it.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
	}
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// Restore listens on the same port again after Cut.
func (l *Link) Restore() { l.listen(l.addr) }
