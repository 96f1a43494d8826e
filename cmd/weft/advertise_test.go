package main

import (
	"errors"
	"testing"
)

// TestForwardAdvertisedURL checks the URL weft run advertises to its
// groups for the other instances to forward keys to.
func TestForwardAdvertisedURL(t *testing.T) {
	for _, c := range []struct {
		addr, advertise, cert, want string
	}{
		{addr: "127.0.0.1:7070", want: "http://127.0.0.1:7070"},
		{addr: "10.0.0.5:7070", cert: "c.pem", want: "https://10.0.0.5:7070"},
		{addr: "0.0.0.0:7070", want: ""},
		{addr: ":7070", want: ""},
		{addr: "[::]:7070", want: ""},
		{addr: "127.0.0.1:0", want: ""},
		{addr: "0.0.0.0:7070", advertise: "weft-1.svc:7070", want: "http://weft-1.svc:7070"},
		{addr: "", advertise: "weft-1.svc:7070", want: ""}, // no API, nothing to advertise
	} {
		q := queryAPIFlags{addr: c.addr, advertise: c.advertise, certFile: c.cert, keyFile: c.cert}
		if got := q.advertisedURL(); got != c.want {
			t.Errorf("--http-addr %q --http-advertise %q: advertised %q, want %q", c.addr, c.advertise, got, c.want)
		}
	}
	for _, bad := range []string{"weft-1", ":7070", "host:0", "host:"} {
		q := queryAPIFlags{addr: defaultHTTPAddr, advertise: bad}
		var u *usageError
		if err := q.check(); !errors.As(err, &u) {
			t.Errorf("--http-advertise %q: %v, want a usage error", bad, err)
		}
	}
}
