package authserver

// VerifierStats describes the in-process verifier, for metrics.
type VerifierStats struct {
	// CacheHits and CacheMisses count lookups of the cache of verified
	// signatures.
	CacheHits, CacheMisses uint64
	// RevokedTokens is the size of the revocation list in memory.
	RevokedTokens int
	// RevocationsStale is true while the list may have missed revocations
	// (see RevocationFeed) and each token is checked against the store.
	RevocationsStale bool
}

// VerifierStats returns the verifier's counters.
func (s *Server) VerifierStats() VerifierStats {
	s.revoked.mu.RLock()
	n := len(s.revoked.jtis)
	s.revoked.mu.RUnlock()
	return VerifierStats{
		CacheHits:        s.verified.hits.Load(),
		CacheMisses:      s.verified.misses.Load(),
		RevokedTokens:    n,
		RevocationsStale: s.revoked.stale.Load(),
	}
}
