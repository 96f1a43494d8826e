package processors

// Which constructor uses which Option: one Option type configures
// NewRuntime, NewProcessor, StartView, NewEmitter and NewCoalescer, and
// each refuses, with an error, an option it does not use (instead of
// ignoring it silently).

import (
	"fmt"
	"strings"
)

// optionSet is a set of Options, one bit per With... function.
type optionSet uint32

const (
	optKafka optionSet = 1 << iota
	optStateDir
	optLogger
	optTracerProvider
	optRuntime
	optStopOnRejection
	optCoalescer
	optStoreOptions
	optGokaOptions
	optRecordCache
	optReconnectBackoff
	optGiveUpAfter
	optReplay
	optRestoreProgress
	optCount = iota
)

// optionNames are the names of the options, by bit.
var optionNames = [optCount]string{"WithKafka", "WithStateDir", "WithLogger", "WithTracerProvider", "WithRuntime",
	"StopOnRejection", "WithCoalescer", "WithStoreOptions", "WithGokaOptions", "WithRecordCache",
	"WithReconnectBackoff", "WithGiveUpAfter", "WithReplay", "WithRestoreProgress"}

// The options each constructor uses.
const (
	runtimeOptions   = optKafka | optLogger | optTracerProvider | optStopOnRejection | optReplay
	processorOptions = optKafka | optStateDir | optLogger | optRuntime | optCoalescer | optStoreOptions |
		optGokaOptions | optRecordCache | optReconnectBackoff | optGiveUpAfter
	viewOptions    = optKafka | optStateDir | optLogger | optStoreOptions | optRestoreProgress
	emitterOptions = optKafka | optTracerProvider
)

// constructors name the constructors by the options they use, for errors.
var constructors = []struct {
	name string
	uses optionSet
}{
	{"NewRuntime", runtimeOptions}, {"NewProcessor", processorOptions}, {"StartView", viewOptions},
	{"NewEmitter (and NewCoalescer)", emitterOptions},
}

// option makes the Option bit that sets what set sets.
func option(bit optionSet, set func(*config)) Option {
	return func(c *config) {
		c.given |= bit
		set(c)
	}
}

// unused returns the error of options given to constructor that it does not
// use (uses), or nil.
func (c *config) unused(constructor string, uses optionSet) error {
	extra := c.given &^ uses
	if extra == 0 {
		return nil
	}
	var names []string
	for i, name := range optionNames {
		if extra&(1<<i) == 0 {
			continue
		}
		var by []string
		for _, k := range constructors {
			if k.uses&(1<<i) != 0 {
				by = append(by, k.name)
			}
		}
		names = append(names, fmt.Sprintf("%s (an option of %s)", name, strings.Join(by, ", ")))
	}
	return fmt.Errorf("processors.%s does not use %s: leave it out", constructor, strings.Join(names, ", nor "))
}

// EmitterOptions returns the options of opts that NewEmitter and
// NewCoalescer use (WithKafka, WithTracerProvider), for a list made for
// runtimes or processors.
func EmitterOptions(opts []Option) []Option {
	var out []Option
	for _, o := range opts {
		var c config
		o(&c)
		if c.given&^emitterOptions == 0 {
			out = append(out, o)
		}
	}
	return out
}
