package epicme

import (
	"strings"
	"unicode"
)

// maxSearchTerms bounds how many words one query may match on.
const maxSearchTerms = 16

// SearchTerms splits a search query into lower-case words of letters and
// digits. Everything else (quotes, operators such as AND, NEAR, *, ^, column
// filters) is a separator, so a query can never be interpreted as search
// syntax by the database. Stores build their full-text query from these terms
// alone; every term must match.
func SearchTerms(q string) []string {
	words := strings.FieldsFunc(strings.ToLower(q), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	if len(words) > maxSearchTerms {
		words = words[:maxSearchTerms]
	}
	return words
}
