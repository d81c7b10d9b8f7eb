package bench

import (
	"math/rand/v2"
	"strings"
	"unicode"
	"unicode/utf8"
)

// zipfS is the exponent of the word frequency law. Natural language is close
// to 1; slightly above keeps the long tail rare enough that a search for a
// tail word matches a few percent of a user's entries.
const zipfS = 1.1

// textGen writes journal-like text deterministically from its random source.
type textGen struct {
	r    *rand.Rand
	zipf *rand.Zipf
}

func newTextGen(seed, stream uint64) *textGen {
	r := rand.New(rand.NewPCG(seed, stream))
	return &textGen{r: r, zipf: rand.NewZipf(r, zipfS, 1, uint64(len(vocabulary)-1))}
}

func (g *textGen) word() string { return vocabulary[g.zipf.Uint64()] }

// sentence writes one sentence of 5 to 16 words.
func (g *textGen) sentence(b *strings.Builder) {
	n := 5 + g.r.IntN(12)
	for i := 0; i < n; i++ {
		w := g.word()
		if i == 0 {
			b.WriteString(capitalize(w))
		} else {
			b.WriteByte(' ')
			b.WriteString(w)
		}
		if i < n-1 && i > 1 && g.r.IntN(9) == 0 {
			b.WriteByte(',')
		}
	}
	switch g.r.IntN(10) {
	case 0:
		b.WriteByte('!')
	case 1:
		b.WriteByte('?')
	default:
		b.WriteByte('.')
	}
}

// content writes paragraphs of sentences until about size bytes.
func (g *textGen) content(size int) string {
	var b strings.Builder
	b.Grow(size + 128)
	for b.Len() < size {
		if b.Len() > 0 {
			if g.r.IntN(4) == 0 {
				b.WriteString("\n\n")
			} else {
				b.WriteByte(' ')
			}
		}
		g.sentence(&b)
	}
	return b.String()
}

// title writes 2 to 6 words.
func (g *textGen) title() string {
	n := 2 + g.r.IntN(5)
	words := make([]string, n)
	for i := range words {
		words[i] = g.word()
	}
	words[0] = capitalize(words[0])
	return strings.Join(words, " ")
}

// pick returns one of list, or nil with probability pNil.
func (g *textGen) pick(list []string, pNil float64) *string {
	if g.r.Float64() < pNil {
		return nil
	}
	s := list[g.r.IntN(len(list))]
	return &s
}

func capitalize(w string) string {
	r, n := utf8.DecodeRuneInString(w)
	return string(unicode.ToUpper(r)) + w[n:]
}

// Query words are drawn from this band of the vocabulary: rarer words than
// "the" or "walk", common enough to match something in a user's journal. With
// 100 entries of about 1 KB, a one-word query matches a few to a few tens of
// entries, and a two-word query a few.
const (
	queryRankMin = 40
	queryRankMax = 400
)

// query returns a search query of n words.
func (g *textGen) query(n int) string {
	words := make([]string, n)
	for i := range words {
		words[i] = vocabulary[queryRankMin+g.r.IntN(queryRankMax-queryRankMin)]
	}
	return strings.Join(words, " ")
}
