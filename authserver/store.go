package authserver

import (
	"context"
	"errors"
	"time"
)

// Store keeps everything the authorization server must remember across
// restarts: clients, authorization codes, grants (refresh-token families),
// the access tokens issued from them and those revoked early, consents,
// signing keys and rate-limit counters. The sqlite package implements it.
//
// Tokens and codes reach the store only as SHA-256 hashes (see [HashToken]);
// client secrets only as keyed hashes. All times are supplied by the caller,
// so that the server's clock is the only clock.
//
// Methods return an *epicme.Error with code ENOTFOUND for a missing row and
// ECONFLICT for a duplicate key.
type Store interface {
	// CreateClient stores a new client.
	CreateClient(ctx context.Context, c *Client) error
	// CreateMachineClient stores a machine client (c.ActsAs set) and the
	// consent of the user it acts for (c.Scope, at c.CreatedAt), in one
	// transaction, unless that user already holds max machine clients
	// (0: no bound): then ECONFLICT, and nothing is stored. Concurrent
	// creations for one user on any instance cannot pass max together.
	CreateMachineClient(ctx context.Context, c *Client, max int) error
	// ClientByID returns a stored client.
	ClientByID(ctx context.Context, id string) (*Client, error)
	// ListClients returns every stored client, oldest first.
	ListClients(ctx context.Context) ([]*Client, error)
	// DeleteClient removes a client with its codes, grants, refresh tokens
	// and consents, and puts the unexpired access tokens issued to it on the
	// revocation list.
	DeleteClient(ctx context.Context, id string, now time.Time) error
	// MarkClientUsed records the first time a client completed a flow.
	MarkClientUsed(ctx context.Context, id string, now time.Time) error
	// CountDynamicClients counts clients registered by RFC 7591.
	CountDynamicClients(ctx context.Context) (int, error)
	// DeleteUnusedDynamicClients removes dynamically registered clients
	// created before the given time that never completed a flow.
	DeleteUnusedDynamicClients(ctx context.Context, createdBefore time.Time) (int, error)

	// CreateCode stores an authorization code.
	CreateCode(ctx context.Context, c *AuthCode) error
	// CodeByHash returns a code, used or not.
	CodeByHash(ctx context.Context, hash string) (*AuthCode, error)
	// RedeemCode marks the code used and stores the grant, refresh token and
	// access token it produced, in one transaction. When the code was already
	// used it changes nothing and returns a *CodeReusedError naming the grant
	// of the first redemption. Exactly one of any number of concurrent calls
	// succeeds.
	RedeemCode(ctx context.Context, codeHash string, now time.Time, g *Grant, rt *RefreshToken, at *AccessToken) error

	// RefreshTokenByHash returns a refresh token with its grant.
	RefreshTokenByHash(ctx context.Context, hash string) (*RefreshToken, *Grant, error)
	// RotateRefreshToken replaces the current refresh token of a grant by
	// next and records the access token issued with it, atomically. See
	// [Rotation] for the rules; exactly one of concurrent rotations of the
	// same token succeeds unless the grace period allows the others.
	RotateRefreshToken(ctx context.Context, r *Rotation) (*Grant, error)
	// RevokeGrant revokes a grant: its refresh tokens stop working and its
	// unexpired access tokens go on the revocation list. Revoking a revoked
	// or missing grant is not an error.
	RevokeGrant(ctx context.Context, grantID string, now time.Time) error

	// MarkAccessTokensUsed records when access tokens (by jti) were last
	// used: each one's grant gets that time as its last use, unless it has
	// a later one.
	MarkAccessTokensUsed(ctx context.Context, uses map[string]time.Time) error
	// ListGrants returns the grants the filter selects, newest first.
	ListGrants(ctx context.Context, f GrantFilter) ([]*Grant, error)
	// RevokeUserGrants revokes every grant of a user, as RevokeGrant does
	// each, and keeps the user's consents.
	RevokeUserGrants(ctx context.Context, userID string, now time.Time) error
	// DeleteAccount revokes every grant of a user, as RevokeUserGrants, and
	// deletes the user with their journal, codes, grants and consents, in
	// one transaction; ENOTFOUND if no such user. The revocation list keeps
	// the user's unexpired access tokens.
	DeleteAccount(ctx context.Context, userID string, now time.Time) error

	// RevokeAccessToken puts one access token on the revocation list until
	// its expiry.
	RevokeAccessToken(ctx context.Context, jti string, expiresAt, now time.Time) error
	// RevokedAccessTokens lists revoked, unexpired access tokens revoked at
	// or after since.
	RevokedAccessTokens(ctx context.Context, since, now time.Time) ([]RevokedToken, error)
	// IsAccessTokenRevoked reports whether one access token is revoked.
	IsAccessTokenRevoked(ctx context.Context, jti string) (bool, error)

	// Consent returns what a user granted a client; ENOTFOUND if nothing.
	Consent(ctx context.Context, userID, clientID string) (*Consent, error)
	// SaveConsent creates or replaces a consent.
	SaveConsent(ctx context.Context, c *Consent) error
	// ListConsents returns the consents a user gave, newest first.
	ListConsents(ctx context.Context, userID string) ([]*Consent, error)
	// DeleteConsent withdraws a consent and revokes every grant the user
	// gave the client. A machine client acting for the user (Client.ActsAs)
	// exists for that consent only, and is deleted with it as DeleteClient
	// deletes.
	DeleteConsent(ctx context.Context, userID, clientID string, now time.Time) error

	// SigningKeys returns every stored signing key, oldest first.
	SigningKeys(ctx context.Context) ([]*SigningKey, error)
	// CreateSigningKey stores a new signing key.
	CreateSigningKey(ctx context.Context, k *SigningKey) error
	// RetireSigningKey records when a key stopped signing.
	RetireSigningKey(ctx context.Context, kid string, at time.Time) error
	// DeleteSigningKey removes a key no token can need any more.
	DeleteSigningKey(ctx context.Context, kid string) error

	// CountEvent records one event under key in the fixed window that
	// contains now and returns how many the window holds, this one
	// included.
	CountEvent(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
	// ResetEvents forgets the events counted under key.
	ResetEvents(ctx context.Context, key string) error

	// CreateSignInSession stores a session of the sign-in pages.
	CreateSignInSession(ctx context.Context, s *SignInSession) error
	// SignInSession returns the session with this hash, expired or not;
	// ENOTFOUND if there is none.
	SignInSession(ctx context.Context, hash string) (*SignInSession, error)
	// DeleteSignInSession ends one session; ending a missing one is not an
	// error.
	DeleteSignInSession(ctx context.Context, hash string) error
	// DeleteUserSignInSessions ends every session of a user but the one
	// with hash keep ("" keeps none). Deleting the user deletes them too.
	DeleteUserSignInSessions(ctx context.Context, userID, keep string) error

	// CreateGrant stores a grant that no code or refresh token stands
	// behind, with the access token issued from it, in one transaction:
	// what the client credentials grant issues (RFC 6749 §4.4). GrantIDs
	// are filled in by the caller.
	CreateGrant(ctx context.Context, g *Grant, at *AccessToken) error
	// UseOnce records key as used until expiresAt and reports whether this
	// was its first use; exactly one of concurrent calls with the same key
	// gets true, on every instance sharing the store. It keeps the jti of
	// client assertions single-use (RFC 7523 §3).
	UseOnce(ctx context.Context, key string, expiresAt time.Time) (bool, error)

	// SaveIdentityProvider creates or replaces a trusted identity provider.
	SaveIdentityProvider(ctx context.Context, p *IdentityProvider) error
	// IdentityProvider returns the trusted identity provider with this
	// issuer; ENOTFOUND if there is none.
	IdentityProvider(ctx context.Context, issuer string) (*IdentityProvider, error)
	// ListIdentityProviders returns every trusted identity provider,
	// oldest first.
	ListIdentityProviders(ctx context.Context) ([]*IdentityProvider, error)
	// DeleteIdentityProvider stops trusting an identity provider and
	// revokes every grant of its users (the users whose issuer is its),
	// as RevokeGrant does each; ENOTFOUND if there is none.
	DeleteIdentityProvider(ctx context.Context, issuer string, now time.Time) error

	// PurgeExpired deletes expired codes, refresh tokens, access-token
	// records, revocation-list entries, rate-limit windows, sessions of
	// the sign-in pages and used keys (UseOnce).
	PurgeExpired(ctx context.Context, now time.Time) error
}

// Client kinds: how a client came to be known.
const (
	ClientPreregistered = "preregistered" // added by the operator (epicme client add), or an automation a user made on the account page
	ClientDynamic       = "dynamic"       // registered by RFC 7591
	ClientMetadataDoc   = "metadata"      // a Client ID Metadata Document; never stored
)

// Token endpoint authentication methods (RFC 7591 §2).
const (
	AuthNone              = "none"
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	// AuthPrivateKeyJWT: the client signs an assertion with a key it
	// registered (RFC 7523 §2.2, OpenID Connect Core §9).
	AuthPrivateKeyJWT = "private_key_jwt"
)

// GrantClientCredentials is the grant type of machine clients (RFC 6749
// §4.4).
const GrantClientCredentials = "client_credentials"

// Client is an OAuth client.
type Client struct {
	ID   string
	Kind string
	Name string
	// SecretHash is the keyed hash of the client secret; "" for a public
	// client.
	SecretHash string
	// RedirectURIs are the exact redirect URIs (RFC 6749 §3.1.2).
	RedirectURIs []string
	// AuthMethod is the token_endpoint_auth_method.
	AuthMethod string
	// GrantTypes are the grant types the client may use.
	GrantTypes []string
	// Scope limits the scopes the client may ask for ("" = any).
	Scope string
	// ClientURI, LogoURI, Contacts, SoftwareID, SoftwareVersion are RFC 7591
	// metadata echoed back and shown on the consent page.
	ClientURI       string
	LogoURI         string
	Contacts        []string
	SoftwareID      string
	SoftwareVersion string
	// ResourceServer marks a client that may call the introspection
	// endpoint about tokens for Resource.
	ResourceServer bool
	Resource       string
	// ActsAs is the user a machine client acts for: the only user whose
	// journal its client credentials tokens reach ("" for every other
	// client).
	ActsAs string
	// JWKS is the JSON Web Key Set (RFC 7517 §5) of the public keys a
	// private_key_jwt client signs its assertions with, or ""; JWKSURI is
	// where to fetch it instead.
	JWKS    string
	JWKSURI string
	// RegisteredFrom is the network source of a dynamic registration.
	RegisteredFrom string
	CreatedAt      time.Time
	// UsedAt is when the client first completed a flow (zero: never).
	UsedAt time.Time
}

// Public reports whether the client authenticates with nothing: no secret
// and no registered key.
func (c *Client) Public() bool { return c.SecretHash == "" && c.AuthMethod != AuthPrivateKeyJWT }

// Machine reports whether the client is a machine client, acting for one
// user by the client credentials grant.
func (c *Client) Machine() bool { return c.ActsAs != "" }

// AuthCode is an authorization code (RFC 6749 §4.1.2), bound to everything
// the token request must repeat.
type AuthCode struct {
	Hash        string
	ClientID    string
	UserID      string
	RedirectURI string
	// RedirectGiven is whether redirect_uri was in the authorization
	// request; if so the token request must repeat it (RFC 6749 §4.1.3).
	RedirectGiven bool
	CodeChallenge string
	// DPoPJKT is the thumbprint of the DPoP key the authorization request
	// bound the code to (dpop_jkt, RFC 9449 §10), or "".
	DPoPJKT   string
	Resource  string
	Scope     string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
	// GrantID is the grant the code produced, once redeemed.
	GrantID string
}

// Grant is what one authorization gave one client: the family of refresh
// tokens that descend from one code, and the access tokens issued from them.
type Grant struct {
	ID         string
	ClientID   string
	UserID     string
	Scope      string
	Resource   string
	CreatedAt  time.Time
	LastUsedAt time.Time
	RevokedAt  time.Time
}

// GrantFilter selects grants for [Store.ListGrants]. Zero fields select
// everything.
type GrantFilter struct {
	UserID   string
	ClientID string
	// IncludeRevoked lists revoked grants too.
	IncludeRevoked bool
}

// Revoked reports whether the grant was revoked.
func (g *Grant) Revoked() bool { return !g.RevokedAt.IsZero() }

// RefreshToken is one refresh token of a grant.
type RefreshToken struct {
	Hash      string
	GrantID   string
	CreatedAt time.Time
	ExpiresAt time.Time
	// RotatedAt is when the token was exchanged for its successor (zero
	// while it is the current one).
	RotatedAt time.Time
	// JKT is the thumbprint of the DPoP key a public client's token is
	// bound to (RFC 9449 §5), or "".
	JKT string
}

// AccessToken records an issued access token so that revoking its grant can
// revoke it too.
type AccessToken struct {
	JTI       string
	GrantID   string
	ExpiresAt time.Time
}

// RevokedToken is an entry of the access-token revocation list.
type RevokedToken struct {
	JTI       string
	ExpiresAt time.Time
	RevokedAt time.Time
}

// Rotation is the input to [Store.RotateRefreshToken].
//
// The store looks up OldHash. It fails with ErrInvalidGrant when the token
// is unknown or expired, its grant revoked, or its grant belongs to another
// client than ClientID. When the token was already rotated, it succeeds only
// if that happened no more than Grace ago (a client retrying a refresh
// whose answer it did not get) and no token of the grant was rotated since
// (the chain has not moved on); the successors issued before then are
// superseded (their rotation time set to SupersededAt), so that one chain
// is live at a time. Otherwise it revokes the whole grant and fails with
// ErrRefreshReused (OAuth 2.1 §4.3.1, refresh token rotation; RFC 9700
// §4.14.2): presenting a superseded token is such a reuse.
type Rotation struct {
	OldHash  string
	ClientID string
	Now      time.Time
	Grace    time.Duration
	Next     *RefreshToken // GrantID is filled in by Rotate
	Access   *AccessToken  // GrantID is filled in by Rotate
}

// IdentityProvider is an enterprise identity provider the operator trusts
// to vouch for its users by Identity Assertion JWT Authorization Grants
// (ID-JAG, the jwt-bearer grant of RFC 7523): its users sign in there, and
// it decides which of them may use EpicMe, through which clients, with at
// most which scopes.
type IdentityProvider struct {
	// Issuer is the IdP's issuer identifier: the iss of its assertions,
	// and the issuer of the users it vouches for.
	Issuer string
	// JWKSURI is where its signing keys are; "" finds them in its metadata
	// (RFC 8414, then OpenID Connect Discovery).
	JWKSURI string
	// Clients are the EpicMe client ids it may vouch for.
	Clients []string
	// Scope is the most it may grant ("" for every scope).
	Scope     string
	CreatedAt time.Time
}

// Consent is what a user allowed a client.
type Consent struct {
	UserID    string
	ClientID  string
	Scope     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SignInSession is a session of the sign-in and account pages. The
// browser's cookie holds a random id; the store keeps only its hash
// ([HashToken]), so the server can end a session whatever cookies were
// copied.
type SignInSession struct {
	Hash      string
	UserID    string
	CreatedAt time.Time
	// ExpiresAt bounds the session's life (Config.SessionTTL after sign-in).
	ExpiresAt time.Time
}

// SigningKey is a key that signs access tokens. The private key is stored
// only encrypted with the key-encryption key.
type SigningKey struct {
	KID string
	Alg string
	// PrivateSealed is the PKCS #8 private key sealed with AES-256-GCM.
	PrivateSealed []byte
	// PublicJWK is the public key as a JSON Web Key (RFC 7517).
	PublicJWK []byte
	CreatedAt time.Time
	// ActiveAt is when the key starts signing; it is published in the JWKS
	// from CreatedAt, so verifiers can fetch it before they meet it.
	ActiveAt time.Time
	// RetiredAt is when a newer key took over (zero while signing).
	RetiredAt time.Time
}

// Store errors that carry meaning for the token endpoint.
var (
	// ErrInvalidGrant: the code or refresh token is unknown, expired,
	// revoked or bound to another client.
	ErrInvalidGrant = errors.New("authserver: invalid grant")
	// ErrRefreshReused: a rotated refresh token was presented again; the
	// grant has been revoked.
	ErrRefreshReused = errors.New("authserver: refresh token reused")
)

// CodeReusedError reports a second redemption of an authorization code.
type CodeReusedError struct {
	// GrantID is the grant of the first redemption ("" if unknown).
	GrantID string
}

// Error implements the error interface.
func (e *CodeReusedError) Error() string { return "authserver: authorization code already used" }

// Is makes errors.Is(err, ErrInvalidGrant) true.
func (e *CodeReusedError) Is(target error) bool { return target == ErrInvalidGrant }

// GrantTx is what a store offers [StoreGrant] within one transaction: the
// inserts; the SQL is the store's.
type GrantTx interface {
	// InsertGrant stores a grant.
	InsertGrant(g *Grant) error
	// InsertRefresh stores a refresh token (its hash) of a stored grant.
	InsertRefresh(rt *RefreshToken) error
	// InsertAccess records the jti of an access token of a stored grant,
	// so that revoking the grant can list it.
	InsertAccess(at *AccessToken) error
}

// StoreGrant stores g and the tokens issued under it (rt may be nil), each
// made to point at g: what Store.CreateGrant and Store.RedeemCode store.
func StoreGrant(tx GrantTx, g *Grant, rt *RefreshToken, at *AccessToken) error {
	if err := tx.InsertGrant(g); err != nil {
		return err
	}
	if rt != nil {
		rt.GrantID = g.ID
		if err := tx.InsertRefresh(rt); err != nil {
			return err
		}
	}
	at.GrantID = g.ID
	return tx.InsertAccess(at)
}

// Update is how a store runs fn in one read-write transaction of its type
// T: committed when fn returns nil, rolled back when it returns an error.
// A store may run fn again, in a new transaction, after a lost connection.
type Update[T any] func(ctx context.Context, fn func(tx T) error) error

// RedeemTx is what a store offers [Redeem] within the one transaction of a
// Store.RedeemCode.
type RedeemTx interface {
	GrantTx
	// SpendCode marks the code with hash used at now by grantID if it is
	// unused and unexpired, and reports whether it did.
	SpendCode(hash string, now time.Time, grantID string) (bool, error)
	// CodeState describes the code's row: whether there is one, whether it
	// was used, and by which grant.
	CodeState(hash string) (found, used bool, grantID string, err error)
}

// Redeem is Store.RedeemCode in one transaction of update: it spends the
// code with hash and stores the grant and tokens it produced. It returns a
// *CodeReusedError when the code had been used (so the caller can revoke
// what the first redemption issued, RFC 6749 §4.1.2) and ErrInvalidGrant
// when it is unknown or expired (nothing is stored then): outcomes, which
// do not roll the transaction back, unlike a store error.
func Redeem[T RedeemTx](ctx context.Context, update Update[T], hash string, now time.Time, g *Grant, rt *RefreshToken, at *AccessToken) error {
	var outcome error
	err := update(ctx, func(tx T) (err error) {
		outcome, err = redeem(tx, hash, now, g, rt, at)
		return err
	})
	if err != nil {
		return err
	}
	return outcome
}

// redeem is Redeem's rule within tx: outcome is what Redeem returns once
// tx has committed, err a store error.
func redeem(tx RedeemTx, hash string, now time.Time, g *Grant, rt *RefreshToken, at *AccessToken) (outcome, err error) {
	spent, err := tx.SpendCode(hash, now, g.ID)
	if err != nil {
		return nil, err
	}
	if !spent {
		found, used, grantID, err := tx.CodeState(hash)
		if err != nil {
			return nil, err
		}
		if found && used {
			return &CodeReusedError{GrantID: grantID}, nil
		}
		return ErrInvalidGrant, nil
	}
	return nil, StoreGrant(tx, g, rt, at)
}

// SupersededAt is the rotation time (Unix nanoseconds: the epoch) a store
// gives the refresh tokens a grace retry superseded (see [Rotation]): a
// time beyond any grace period, so that presenting one is a reuse.
const SupersededAt int64 = 0
