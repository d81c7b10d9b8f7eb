package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/epicme/epicme"
	"github.com/epicme/epicme/auth"
	"github.com/epicme/epicme/authserver"
	"github.com/epicme/epicme/httpserver"
	"github.com/epicme/epicme/sqlite"
)

// kekFile holds the key-encryption key of the embedded authorization
// server: it seals the token-signing keys in the database and keys the
// hashes of client secrets and the sign-in cookies. Losing it signs every
// client out; leaking it with the database leaks the signing keys.
const kekFile = "keys.kek"

// authServerFlags configure the embedded authorization server.
type authServerFlags struct {
	accessTokenTTL      time.Duration
	disableRegistration bool
	devPrivateMetadocs  bool
	disableMetadataDocs bool
}

func (c *authServerFlags) register(fs *flagSet) {
	fs.DurationVar(&c.accessTokenTTL, "access-token-ttl", 15*time.Minute, "lifetime of the access tokens the embedded authorization server issues")
	fs.bindEnv("access-token-ttl", "EPICME_ACCESS_TOKEN_TTL")
	fs.BoolVar(&c.disableRegistration, "disable-registration", false, "turn off Dynamic Client Registration (RFC 7591); clients then come from\n`epicme client add` or Client ID Metadata Documents")
	fs.bindEnv("disable-registration", "EPICME_DISABLE_REGISTRATION")
	fs.BoolVar(&c.disableMetadataDocs, "disable-client-metadata-documents", false, "refuse clients identified by a Client ID Metadata Document (an https client_id)")
	fs.bindEnv("disable-client-metadata-documents", "EPICME_DISABLE_CLIENT_METADATA_DOCUMENTS")
	fs.BoolVar(&c.devPrivateMetadocs, "dev-allow-private-metadata-documents", false, "DEVELOPMENT ONLY: fetch Client ID Metadata Documents from loopback and private\naddresses (otherwise refused, so that nobody can make the server fetch from its own network)")
	fs.bindEnv("dev-allow-private-metadata-documents", "EPICME_DEV_ALLOW_PRIVATE_METADATA_DOCUMENTS")
}

// embeddedAuth runs the authorization server inside this process: its
// issuer is the public URL, its tokens are for <public URL>/mcp, and /mcp
// checks them in process, so revocation takes effect at once.
func embeddedAuth(ctx context.Context, c *authServerFlags, publicURL, dir string, store *sqlite.DB, logger *slog.Logger) (*authSetup, error) {
	kek, err := loadKEK(dir)
	if err != nil {
		return nil, err
	}
	resource := publicURL + httpserver.MCPPath
	as, err := authserver.New(ctx, authserver.Config{
		Issuer:            publicURL,
		Resource:          resource,
		Store:             store,
		Users:             store,
		KEK:               kek,
		Logger:            logger,
		AccessTokenTTL:    c.accessTokenTTL,
		Registration:      authserver.RegistrationLimits{Disabled: c.disableRegistration},
		MetadataDocuments: authserver.MetadataDocumentOptions{Disabled: c.disableMetadataDocs, AllowPrivateAddresses: c.devPrivateMetadocs},
	})
	if err != nil {
		return nil, usagef("%v (set --public-url to the https URL clients use)", err)
	}
	go as.Maintain(ctx, 0)
	rs, err := auth.NewResourceServer(as.Verifier(), auth.Options{
		ResourceURL:           resource,
		AuthorizationServers:  []string{as.Issuer()},
		ScopesSupported:       epicme.AllScopes,
		ResourceName:          "EpicMe Journal",
		ResourceDocumentation: "https://github.com/epicme/epicme#readme",
		Realm:                 "EpicMe",
		ScopeMap:              epicmeScopeMap(),
		Logger:                logger,
	})
	if err != nil {
		return nil, err
	}
	notice := fmt.Sprintf("OAuth: the embedded authorization server %s issues the tokens of %s.\nUsers sign in with local accounts (epicme user add).", as.Issuer(), resource)
	setup := &authSetup{
		Middleware: rs.Protect,
		Callers:    authserver.Callers(store, as.Issuer()),
		Mount: func(s *httpserver.Server) {
			as.Register(s.Mux)
			md := rs.MetadataHandler()
			for _, p := range rs.MetadataPaths() {
				s.Handle(p, md)
			}
		},
		Notice: notice,
	}
	if c.devPrivateMetadocs {
		setup.Warning = "WARNING: --dev-allow-private-metadata-documents lets any client make this server fetch\nURLs on its own network. Never use it outside development."
	}
	return setup, nil
}

// loadKEK returns the key-encryption key of the data directory, creating it
// (mode 0600) on first use.
func loadKEK(dir string) ([]byte, error) {
	path := filepath.Join(dir, kekFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != authserver.KEKSize {
			return nil, fmt.Errorf("%s holds %d bytes, want %d: restore it from a backup (deleting it signs every client out)", path, len(b), authserver.KEKSize)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the key-encryption key: %w", err)
	}
	b = make([]byte, authserver.KEKSize)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	// O_EXCL: of two processes starting at once, one writes and the other
	// reads what it wrote.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadKEK(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the key-encryption key: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("writing the key-encryption key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return b, nil
}
