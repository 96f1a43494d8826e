package topofile

import (
	"fmt"
	"strings"

	"github.com/weftstream/weft/internal/yamlpos"
)

// ConfigError is a mistake in a topology file, at a position (line and
// column 1-based; the column counts characters). Its Error is
// "file:line:col: msg".
type ConfigError = yamlpos.Error

// ConfigErrors are all the mistakes found in a topology file, sorted by
// position. Load returns them as its error; get them back with errors.As.
type ConfigErrors = yamlpos.Errors

// suggest returns the candidate closest to word when it is close enough to
// be a likely typo, or "".
func suggest(word string, candidates []string) string {
	best, bestD := "", -1
	lw := strings.ToLower(word)
	for _, c := range candidates {
		d := editDistance(lw, strings.ToLower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD == 0 && best == word {
		return ""
	}
	limit := 2
	if n := len([]rune(word)); n <= 2 {
		limit = 1
	} else if n >= 9 {
		limit = 3
	}
	if bestD > limit {
		return ""
	}
	return best
}

// didYouMean returns `, did you mean "x"?` or "".
func didYouMean(word string, candidates []string) string {
	if s := suggest(word, candidates); s != "" {
		return fmt.Sprintf(", did you mean %q?", s)
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in runes
// (bounded inputs: names and keys).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 256 || len(rb) > 256 {
		return 1 << 20
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
