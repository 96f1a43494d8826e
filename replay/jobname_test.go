package replay

import (
	"strings"
	"testing"
	"time"

	"github.com/weftstream/weft/statestore"
)

func TestJobName(t *testing.T) {
	at := time.Date(2026, 12, 2, 3, 4, 5, 999, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		mode, app string
		pipelines []string
		want      string
	}{
		{"into", "bank-v2", nil, "into:bank-v2@20261202T020405Z"},
		{"in-place", "bank", []string{"totals", "fees"}, "in-place:bank/totals+fees@20261202T020405Z"},
	} {
		if got := JobName(tc.mode, tc.app, tc.pipelines, at); got != tc.want {
			t.Errorf("JobName(%s, %s, %v) = %q, want %q", tc.mode, tc.app, tc.pipelines, got, tc.want)
		}
	}
	// Too many pipelines to name: the mode, the app and the time stay.
	long := JobName("into", "bank-v2", []string{strings.Repeat("p", 300)}, at)
	if long != "into:bank-v2@20261202T020405Z" {
		t.Errorf("a name past the bound: %q", long)
	}
	if got := jobName("mine", "into", "x", nil, at); got != "mine" {
		t.Errorf("a given name: %q, want it as given", got)
	}
}

func TestCheckJobName(t *testing.T) {
	for name, ok := range map[string]bool{
		"fix-balances-2026-05-28":       true,
		"into:bank-v2@20261202T020405Z": true,
		"":                              false,
		"two words":                     false,
		"tab\tin":                       false,
		"\xff\xfe":                      false,
		strings.Repeat("j", statestore.MaxReplayJobLen):   true,
		strings.Repeat("j", statestore.MaxReplayJobLen+1): false,
	} {
		if err := CheckJobName(name); (err == nil) != ok {
			t.Errorf("CheckJobName(%.20q) = %v, want ok %v", name, err, ok)
		}
	}
}
