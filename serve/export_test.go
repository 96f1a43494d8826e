package serve

import "time"

// WithTimeouts sets the read and write timeouts of Run's server (tests).
func WithTimeouts(read, write time.Duration) Option {
	return func(c *config) { c.readTimeout, c.writeTimeout = read, write }
}
